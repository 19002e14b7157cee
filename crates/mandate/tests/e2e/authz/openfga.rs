//! OpenFGA's own conformance suite through Mandate's HTTP API, on SQLite and PostgreSQL: one
//! tenant per test; each stage's model goes to `POST …/authz/models` and its tuples to
//! `POST …/authz/tuples`, with no waits between writes; check assertions ask
//! `POST …/authz/check` (with the last tuple write's revision, also when a later stage wrote
//! only a model), ListObjects assertions the AuthZEN resource search and ListUsers assertions
//! the AuthZEN subject search (one search per filter, results united). Expected errors must
//! come back as 400 with OpenFGA's code in `openfga_code`.
//!
//! The in-process runs are `crates/mandate-authz/tests/all/openfga_conformance*.rs`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::common::*;
use serde_json::{Value, json};

fn set(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Contextual tuples of an assertion (on the assertion or inside its request).
fn contextual(a: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for v in [
        a.get("contextualTuples"),
        a["request"].get("contextualTuples"),
    ]
    .into_iter()
    .flatten()
    {
        out.extend(v.as_array().cloned().unwrap_or_default());
    }
    out
}

async fn post(http: &reqwest::Client, url: &str, token: &str, body: String) -> (u16, Value) {
    let r = http
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// An answer matches: the expected value, or a 400 carrying the expected OpenFGA error code.
fn matches(status: u16, v: &Value, code: Option<&Value>, ok: impl FnOnce(&Value) -> bool) -> bool {
    match code {
        Some(c) => status == 400 && v["openfga_code"] == *c,
        None => status == 200 && ok(v),
    }
}

/// `type:id` of each AuthZEN search result.
fn ids(v: &Value) -> BTreeSet<String> {
    v["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            format!(
                "{}:{}",
                r["type"].as_str().unwrap_or_default(),
                r["id"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

fn split_user(u: &str) -> (String, String) {
    match u.split_once(':') {
        Some((t, id)) => (t.to_string(), id.to_string()),
        None => (u.to_string(), String::new()),
    }
}

async fn conformance(backend: Backend) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance/openfga/consolidated.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("conformance data missing at {}: {e}", path.display()));
    let suite: Value = serde_json::from_str(&text).unwrap();
    let s = Server::start(backend).await;
    let http = reqwest::Client::new();
    let mut failures = Vec::new();
    let mut pass = [0usize; 4];
    for (ti, test) in suite["tests"].as_array().unwrap().iter().enumerate() {
        let name = test["name"].as_str().unwrap_or("?");
        let tenant = format!("fga{ti}");
        s.create_tenant(&tenant);
        let c = s.cli(
            &[
                "client",
                "create",
                "--tenant",
                &tenant,
                "--name",
                "fga",
                "--grant-type",
                "client_credentials",
                "--scope",
                "mandate:admin",
                "--scope",
                "mandate:authz",
            ],
            None,
        );
        let client = (
            c["client_id"].as_str().unwrap().to_string(),
            c["client_secret"].as_str().unwrap().to_string(),
        );
        let issuer = s.issuer(&tenant);
        let (status, v) = token(&issuer, &client, &[("grant_type", "client_credentials")]).await;
        assert_eq!(status, 200, "{v}");
        let bearer = v["access_token"].as_str().unwrap().to_string();
        let admin = format!("{}/admin/v1/tenants/{tenant}/authz", s.base);
        let mut revision: Option<i64> = None;
        for (si, stage) in test["stages"].as_array().unwrap().iter().enumerate() {
            let ctx = format!("{name}[{si}]");
            let (status, v) = post(
                &http,
                &format!("{admin}/models"),
                &bearer,
                stage["model_json"].to_string(),
            )
            .await;
            assert_eq!(status, 201, "{ctx}: model: {v}");
            pass[0] += 1;
            let writes = stage["tuples"].as_array().cloned().unwrap_or_default();
            if !writes.is_empty() {
                let (status, v) = post(
                    &http,
                    &format!("{admin}/tuples"),
                    &bearer,
                    json!({ "writes": writes }).to_string(),
                )
                .await;
                assert_eq!(status, 200, "{ctx}: tuples: {v}");
                revision = v["revision"].as_i64();
            }
            for a in stage["checkAssertions"].as_array().into_iter().flatten() {
                let t = &a["tuple"];
                let body = json!({
                    "object": t["object"],
                    "relation": t["relation"],
                    "user": t["user"],
                    "contextual_tuples": contextual(a),
                    "revision": revision,
                });
                let (status, v) =
                    post(&http, &format!("{admin}/check"), &bearer, body.to_string()).await;
                if matches(status, &v, a.get("errorCode"), |v| {
                    v["allowed"] == a["expectation"]
                }) {
                    pass[1] += 1;
                } else {
                    failures.push(format!("{ctx}: check {t} => {status} {v}"));
                }
            }
            for a in stage["listObjectsAssertions"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let r = &a["request"];
                let (ut, uid) = split_user(r["user"].as_str().unwrap_or_default());
                let body = json!({
                    "subject": {"type": ut, "id": uid},
                    "action": {"name": r["relation"]},
                    "resource": {"type": r["type"]},
                    "context": {"contextual_tuples": contextual(a), "revision": revision},
                });
                let (status, v) = post(
                    &http,
                    &format!("{issuer}/access/v1/search/resource"),
                    &bearer,
                    body.to_string(),
                )
                .await;
                if matches(status, &v, a.get("errorCode"), |v| {
                    ids(v) == set(&a["expectation"])
                }) {
                    pass[2] += 1;
                } else {
                    failures.push(format!("{ctx}: list_objects {r} => {status} {v}"));
                }
            }
            for a in stage["listUsersAssertions"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let r = &a["request"];
                let (ot, oid) = split_user(r["object"].as_str().unwrap_or_default());
                let want = a
                    .get("expectation")
                    .or_else(|| r.get("expectation"))
                    .unwrap_or(&Value::Null);
                // One search per filter; ListUsers answers their union.
                let mut got = BTreeSet::new();
                let mut refused: Option<(u16, Value)> = None;
                for f in r["filters"].as_array().into_iter().flatten() {
                    let body = json!({
                        "subject": {"type": f},
                        "action": {"name": r["relation"]},
                        "resource": {"type": ot, "id": oid},
                        "context": {"contextual_tuples": contextual(a), "revision": revision},
                    });
                    let (status, v) = post(
                        &http,
                        &format!("{issuer}/access/v1/search/subject"),
                        &bearer,
                        body.to_string(),
                    )
                    .await;
                    if status == 200 {
                        got.extend(ids(&v));
                    } else {
                        refused.get_or_insert((status, v));
                    }
                }
                let ok = match (&refused, a.get("errorCode")) {
                    (Some((status, v)), code) => matches(*status, v, code, |_| false),
                    (None, None) => got == set(want),
                    (None, Some(_)) => false,
                };
                if ok {
                    pass[3] += 1;
                } else {
                    failures.push(format!("{ctx}: list_users {r} => {got:?} {refused:?}"));
                }
            }
        }
    }
    for f in &failures {
        eprintln!("FAIL {f}");
    }
    println!(
        "{backend:?}: stages {} check {} list_objects {} list_users {}",
        pass[0], pass[1], pass[2], pass[3]
    );
    assert!(
        failures.is_empty(),
        "{} conformance failures",
        failures.len()
    );
    assert_eq!(pass, [160, 360, 270, 295]);
}

#[tokio::test]
async fn openfga_suite_over_http_sqlite() {
    conformance(Backend::Sqlite).await;
}

#[tokio::test]
async fn openfga_suite_over_http_postgres() {
    conformance(Backend::Postgres).await;
}
