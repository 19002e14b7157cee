//! OpenFGA's own authorization-model conformance suite (consolidated_1_1_tests), converted to
//! JSON in `shared/conformance/openfga/`. Every stage writes its model (from the DSL and from the
//! JSON form, which must agree), writes its tuples into the store that persists across stages,
//! and every check / list-objects / list-users assertion must hold.

use std::collections::BTreeSet;
use std::path::PathBuf;

use mandate_authz::{
    AuthorizationModel, CheckRequest, Engine, ListObjectsRequest, ListUsersRequest, MemoryTuples,
    Tuple, UserFilter,
};
use serde_json::Value;

fn suite_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance/openfga/consolidated.json")
}

fn tuple(v: &Value) -> Tuple {
    Tuple::new(
        v["object"].as_str().unwrap_or_default(),
        v["relation"].as_str().unwrap_or_default(),
        v["user"].as_str().unwrap_or_default(),
    )
}

fn tuples(v: Option<&Value>) -> Vec<Tuple> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().map(tuple).collect())
        .unwrap_or_default()
}

fn set(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[derive(Default)]
struct Tally {
    pass: usize,
    fail: usize,
}

#[test]
fn openfga_consolidated_1_1() {
    let path = suite_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("conformance data missing at {}: {e}", path.display()));
    let suite: Value = serde_json::from_str(&text).expect("valid JSON");
    let tests = suite["tests"].as_array().expect("tests array");
    let only = std::env::var("CONFORMANCE_ONLY").ok();

    let (mut models, mut checks, mut lists, mut users) = (
        Tally::default(),
        Tally::default(),
        Tally::default(),
        Tally::default(),
    );
    let mut failures: Vec<String> = Vec::new();
    let mut stages = 0;

    for test in tests {
        let name = test["name"].as_str().unwrap_or("?");
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let mut store = MemoryTuples::new();
        for (si, stage) in test["stages"]
            .as_array()
            .expect("stages")
            .iter()
            .enumerate()
        {
            stages += 1;
            let ctx = format!("{name}[{si}]");
            let dsl = stage["model"].as_str().unwrap_or_default();
            let from_dsl = AuthorizationModel::from_dsl(dsl);
            let from_json = AuthorizationModel::from_json(&stage["model_json"]);
            let model = match (from_dsl, from_json) {
                (Ok(a), Ok(b)) => {
                    if a.to_json() != b.to_json() {
                        models.fail += 1;
                        failures.push(format!(
                            "{ctx}: DSL and JSON models differ:\n{}\n{}",
                            a.to_json(),
                            b.to_json()
                        ));
                        continue;
                    }
                    // Round trip: JSON output reads back to the same model, and so does the DSL we render.
                    let again = AuthorizationModel::from_json(&a.to_json()).expect("round trip");
                    let rendered =
                        AuthorizationModel::from_dsl(&a.to_dsl()).expect("rendered DSL parses");
                    if again != a || rendered != a {
                        models.fail += 1;
                        failures.push(format!("{ctx}: model does not round-trip"));
                        continue;
                    }
                    models.pass += 1;
                    a
                }
                (a, b) => {
                    models.fail += 1;
                    failures.push(format!(
                        "{ctx}: model rejected: dsl={:?} json={:?}",
                        a.err(),
                        b.err()
                    ));
                    continue;
                }
            };
            let writes = tuples(stage.get("tuples"));
            if let Err(e) = store.write(&model, &writes, &[]) {
                failures.push(format!("{ctx}: writing tuples failed: {e}"));
                models.fail += 1;
                continue;
            }
            let engine = Engine::new(&model, &store);

            for a in stage["checkAssertions"].as_array().into_iter().flatten() {
                let t = tuple(&a["tuple"]);
                let req = CheckRequest::new(t.object, t.relation, t.user)
                    .with_contextual_tuples(tuples(a.get("contextualTuples")));
                let got = engine.check(&req);
                let ok = match (&got, a.get("expectation"), a.get("errorCode")) {
                    (Ok(b), Some(Value::Bool(e)), _) => b == e,
                    (Err(e), _, Some(code)) => code.as_u64() == Some(u64::from(e.openfga_code())),
                    _ => false,
                };
                if ok {
                    checks.pass += 1;
                } else {
                    checks.fail += 1;
                    failures.push(format!(
                        "{ctx}: check {} => {got:?}, want {}",
                        a["tuple"], a
                    ));
                }
            }

            for a in stage["listObjectsAssertions"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let r = &a["request"];
                let mut ctx_tuples = tuples(a.get("contextualTuples"));
                ctx_tuples.extend(tuples(r.get("contextualTuples")));
                let req = ListObjectsRequest {
                    object_type: r["type"].as_str().unwrap_or_default().into(),
                    relation: r["relation"].as_str().unwrap_or_default().into(),
                    user: r["user"].as_str().unwrap_or_default().into(),
                    contextual_tuples: ctx_tuples,
                };
                let got = engine.list_objects(&req);
                let ok = match (&got, a.get("errorCode")) {
                    (Err(e), Some(code)) => code.as_u64() == Some(u64::from(e.openfga_code())),
                    (Ok(v), None) => {
                        v.iter().cloned().collect::<BTreeSet<_>>() == set(&a["expectation"])
                    }
                    _ => false,
                };
                if ok {
                    lists.pass += 1;
                } else {
                    lists.fail += 1;
                    failures.push(format!("{ctx}: list_objects {r} => {got:?}, want {a}"));
                }
            }

            for a in stage["listUsersAssertions"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let r = &a["request"];
                let mut ctx_tuples = tuples(a.get("contextualTuples"));
                ctx_tuples.extend(tuples(r.get("contextualTuples")));
                let req = ListUsersRequest {
                    object: r["object"].as_str().unwrap_or_default().into(),
                    relation: r["relation"].as_str().unwrap_or_default().into(),
                    user_filters: r["filters"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(UserFilter::parse)
                        .collect(),
                    contextual_tuples: ctx_tuples,
                };
                let got = engine.list_users(&req);
                // One assertion in the data carries its expectation inside the request.
                let expectation = a
                    .get("expectation")
                    .or_else(|| r.get("expectation"))
                    .unwrap_or(&Value::Null);
                let ok = match (&got, a.get("errorCode")) {
                    (Err(e), Some(code)) => code.as_u64() == Some(u64::from(e.openfga_code())),
                    (Ok(v), None) => v.iter().cloned().collect::<BTreeSet<_>>() == set(expectation),
                    _ => false,
                };
                if ok {
                    users.pass += 1;
                } else {
                    users.fail += 1;
                    failures.push(format!("{ctx}: list_users {r} => {got:?}, want {a}"));
                }
            }
        }
    }

    for f in &failures {
        eprintln!("FAIL {f}");
    }
    println!("stages: {stages}");
    println!(
        "models:       {} passed, {} failed",
        models.pass, models.fail
    );
    println!(
        "check:        {} passed, {} failed",
        checks.pass, checks.fail
    );
    println!("list_objects: {} passed, {} failed", lists.pass, lists.fail);
    println!("list_users:   {} passed, {} failed", users.pass, users.fail);
    assert!(
        failures.is_empty(),
        "{} conformance failures",
        failures.len()
    );
    if only.is_none() {
        assert_eq!(stages, 160, "stage count");
        assert_eq!(checks.pass, 360, "check assertions");
        assert_eq!(lists.pass, 270, "list objects assertions");
        assert_eq!(users.pass, 295, "list users assertions");
    }
}
