//! OpenFGA's conformance suite through the store-backed decision point ([`Pdp`]), on SQLite and
//! on PostgreSQL: each stage's model and tuples go through validation into the database, and
//! every assertion is answered from the snapshot caught up from the database to the write's
//! revision. The in-memory run is `openfga_conformance.rs`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mandate_authz::AuthzStore;
use mandate_authz::{
    AuthorizationModel, CheckRequest, ListObjectsRequest, ListUsersRequest, Pdp, PdpError, Tuple,
    UserFilter,
};
use mandate_store::SqlStore;
use serde_json::Value;

fn tuples(v: Option<&Value>) -> Vec<Tuple> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|t| {
                    Tuple::new(
                        t["object"].as_str().unwrap_or_default(),
                        t["relation"].as_str().unwrap_or_default(),
                        t["user"].as_str().unwrap_or_default(),
                    )
                })
                .collect()
        })
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

fn code(e: &PdpError) -> Option<u64> {
    match e {
        PdpError::Authz(a) => Some(u64::from(a.openfga_code())),
        _ => None,
    }
}

async fn run(url: &str) -> [usize; 4] {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance/openfga/consolidated.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("conformance data missing at {}: {e}", path.display()));
    let suite: Value = serde_json::from_str(&text).unwrap();
    let store: Arc<dyn AuthzStore> = Arc::new(SqlStore::connect(url).await.expect("store"));
    let pdp = Pdp::new(store, Duration::from_secs(60));
    let mut failures = Vec::new();
    let mut pass = [0usize; 4];
    for (ti, test) in suite["tests"].as_array().unwrap().iter().enumerate() {
        let name = test["name"].as_str().unwrap_or("?");
        let tenant = format!("conformance-{ti}");
        for (si, stage) in test["stages"].as_array().unwrap().iter().enumerate() {
            let ctx = format!("{name}[{si}]");
            let model = AuthorizationModel::from_json(&stage["model_json"]).expect("model");
            pdp.write_model(&tenant, &model, format!("m{si}"), si as i64)
                .await
                .unwrap();
            pass[0] += 1;
            let writes = tuples(stage.get("tuples"));
            let rev = if writes.is_empty() {
                None
            } else {
                Some(
                    pdp.write_tuples(&tenant, &writes, &[])
                        .await
                        .unwrap_or_else(|e| panic!("{ctx}: {e}")),
                )
            };
            for a in stage["checkAssertions"].as_array().into_iter().flatten() {
                let t = &a["tuple"];
                let req = CheckRequest::new(
                    t["object"].as_str().unwrap_or_default(),
                    t["relation"].as_str().unwrap_or_default(),
                    t["user"].as_str().unwrap_or_default(),
                )
                .with_contextual_tuples(tuples(a.get("contextualTuples")));
                let got = pdp.check(&tenant, &req, rev, None).await;
                let ok = match (&got, a.get("expectation"), a.get("errorCode")) {
                    (Ok(b), Some(Value::Bool(e)), _) => b == e,
                    (Err(e), _, Some(c)) => c.as_u64() == code(e),
                    _ => false,
                };
                if ok {
                    pass[1] += 1
                } else {
                    failures.push(format!("{ctx}: check {t} => {got:?}"))
                }
            }
            for a in stage["listObjectsAssertions"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let r = &a["request"];
                let mut ct = tuples(a.get("contextualTuples"));
                ct.extend(tuples(r.get("contextualTuples")));
                let req = ListObjectsRequest {
                    object_type: r["type"].as_str().unwrap_or_default().into(),
                    relation: r["relation"].as_str().unwrap_or_default().into(),
                    user: r["user"].as_str().unwrap_or_default().into(),
                    contextual_tuples: ct,
                };
                let got = pdp.list_objects(&tenant, &req, rev).await;
                let ok = match (&got, a.get("errorCode")) {
                    (Err(e), Some(c)) => c.as_u64() == code(e),
                    (Ok(v), None) => {
                        v.iter().cloned().collect::<BTreeSet<_>>() == set(&a["expectation"])
                    }
                    _ => false,
                };
                if ok {
                    pass[2] += 1
                } else {
                    failures.push(format!("{ctx}: list_objects {r} => {got:?}"))
                }
            }
            for a in stage["listUsersAssertions"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let r = &a["request"];
                let mut ct = tuples(a.get("contextualTuples"));
                ct.extend(tuples(r.get("contextualTuples")));
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
                    contextual_tuples: ct,
                };
                let got = pdp.list_users(&tenant, &req, rev).await;
                let want = a
                    .get("expectation")
                    .or_else(|| r.get("expectation"))
                    .unwrap_or(&Value::Null);
                let ok = match (&got, a.get("errorCode")) {
                    (Err(e), Some(c)) => c.as_u64() == code(e),
                    (Ok(v), None) => v.iter().cloned().collect::<BTreeSet<_>>() == set(want),
                    _ => false,
                };
                if ok {
                    pass[3] += 1
                } else {
                    failures.push(format!("{ctx}: list_users {r} => {got:?}"))
                }
            }
        }
    }
    for f in &failures {
        eprintln!("FAIL {f}");
    }
    println!(
        "{url}: stages {} check {} list_objects {} list_users {}",
        pass[0], pass[1], pass[2], pass[3]
    );
    assert!(
        failures.is_empty(),
        "{} conformance failures",
        failures.len()
    );
    pass
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    let dir = std::env::temp_dir().join(format!("mandate_fga_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pass = run(&format!("sqlite://{}", dir.join("fga.db").display())).await;
    assert_eq!(pass, [160, 360, 270, 295]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let schema = format!("fga_{}_{nanos}", std::process::id());
    let url = format!("postgres://postgres@127.0.0.1:5432/test?schema={schema}");
    let pass = run(&url).await;
    // Leave the shared test database as it was.
    let _ = std::process::Command::new("psql")
        .args([
            "-q",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "test",
            "-c",
        ])
        .arg(format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    assert_eq!(pass, [160, 360, 270, 295]);
}
