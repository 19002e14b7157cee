//! 20 simultaneous refreshes with the same refresh token: exactly one succeeds.

mod common;

use common::*;

async fn race(backend: Backend) {
    let s = Server::start(backend).await;
    let issuer = s.issuer("default");
    s.create_user("default", "dave");
    let web = s.create_web_client("default", &[]);
    let tokens = code_flow_tokens(&s, &Browser::new(), "default", &web, "dave").await;
    let rt = tokens["refresh_token"].as_str().unwrap().to_string();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (issuer, web, rt) = (issuer.clone(), web.clone(), rt.clone());
        tasks.push(tokio::spawn(async move {
            token(
                &issuer,
                &web,
                &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
            )
            .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            200 => ok += 1,
            400 => assert_eq!(body["error"], "invalid_grant", "{body}"),
            other => panic!("unexpected status {other}: {body}"),
        }
    }
    assert_eq!(ok, 1, "exactly one concurrent refresh may succeed");
}

#[tokio::test]
async fn concurrent_refresh_sqlite() {
    race(Backend::Sqlite).await;
}

#[tokio::test]
async fn concurrent_refresh_postgres() {
    race(Backend::Postgres).await;
}
