//! The opt-in refresh rotation grace period (decision in OIDC-CONFORMANCE-CHECKLIST.md): the
//! immediately previous refresh token is accepted once more within the client's grace period;
//! anything else still revokes the family. Clients without it stay strict.

use crate::common::*;

async fn refresh(issuer: &str, c: &(String, String), rt: &str) -> (u16, serde_json::Value) {
    token(
        issuer,
        c,
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
    )
    .await
}

async fn grace(backend: Backend) {
    let s = Server::start(backend).await;
    let issuer = s.issuer("default");
    s.create_user("default", "nia");
    let lenient = s.create_web_client("default", &["--refresh-grace-seconds", "30"]);
    let b = Browser::new();

    // Lost response: rt1 → rt2 (never received), rt1 again → accepted once.
    let t = code_flow_tokens(&s, &b, "default", &lenient, "nia").await;
    let rt1 = t["refresh_token"].as_str().unwrap().to_string();
    let (st, r2) = refresh(&issuer, &lenient, &rt1).await;
    assert_eq!(st, 200);
    let (st, r2b) = refresh(&issuer, &lenient, &rt1).await;
    assert_eq!(
        st, 200,
        "previous token accepted once within the grace period: {r2b}"
    );
    // A third presentation is a replay: the family dies, including both successors.
    let (st, body) = refresh(&issuer, &lenient, &rt1).await;
    assert_eq!((st, body["error"].as_str()), (400, Some("invalid_grant")));
    for rt in [&r2["refresh_token"], &r2b["refresh_token"]] {
        assert_eq!(
            refresh(&issuer, &lenient, rt.as_str().unwrap()).await.0,
            400
        );
    }

    // Once the successor has been used, the older token is no longer "the previous one".
    let t = code_flow_tokens(&s, &b, "default", &lenient, "nia").await;
    let rt1 = t["refresh_token"].as_str().unwrap().to_string();
    let (_, r2) = refresh(&issuer, &lenient, &rt1).await;
    let (st, _) = refresh(&issuer, &lenient, r2["refresh_token"].as_str().unwrap()).await;
    assert_eq!(st, 200);
    assert_eq!(refresh(&issuer, &lenient, &rt1).await.0, 400);

    // Strict clients (the default) get no grace.
    let strict = s.create_web_client("default", &[]);
    let t = code_flow_tokens(&s, &Browser::new(), "default", &strict, "nia").await;
    let rt1 = t["refresh_token"].as_str().unwrap().to_string();
    let (_, r2) = refresh(&issuer, &strict, &rt1).await;
    assert_eq!(refresh(&issuer, &strict, &rt1).await.0, 400);
    assert_eq!(
        refresh(&issuer, &strict, r2["refresh_token"].as_str().unwrap())
            .await
            .0,
        400,
        "family revoked"
    );

    // The grace period is bounded.
    let (ok, _, err) = s.cli_raw(
        &[
            "client",
            "create",
            "--tenant",
            "default",
            "--name",
            "x",
            "--redirect-uri",
            REDIRECT,
            "--refresh-grace-seconds",
            "61",
        ],
        None,
    );
    assert!(!ok && err.contains("0 to 60"), "{err}");
}

#[tokio::test]
async fn grace_sqlite() {
    grace(Backend::Sqlite).await;
}

#[tokio::test]
async fn grace_postgres() {
    grace(Backend::Postgres).await;
}
