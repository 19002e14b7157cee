//! Refresh tokens for delegated tokens, over real HTTP on SQLite and PostgreSQL: none unless the
//! mandate allows them; then each refresh keeps `sub`, `act` and `mandate` exactly, only
//! narrows, rotates (a replay revokes the family), and ends with the mandate. A refused
//! refresh spends nothing: the retry works and is not taken for a replay.

use crate::common::*;
use serde_json::json;

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const AT_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const CALENDAR: &str = "https://calendar.example";

fn mandate(s: &Server, agent: &str, refresh: bool) -> String {
    let mut args = vec![
        "mandate".to_string(),
        "create".into(),
        "--tenant".into(),
        "default".into(),
        "--user".into(),
        "alice".into(),
        format!("--agent={agent}"),
        "--scope".into(),
        "calendar.read".into(),
        "--scope".into(),
        "calendar.write".into(),
        "--resource".into(),
        CALENDAR.into(),
    ];
    if refresh {
        args.push("--allow-refresh".into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    s.cli(&args, None)["id"].as_str().unwrap().to_string()
}

async fn delegated_refresh(backend: Backend) {
    let s = Server::start(backend).await;
    let alice = s.create_user("default", "alice");
    let issuer = s.issuer("default");
    let web = s.create_web_client(
        "default",
        &[
            "--scope",
            "openid",
            "--scope",
            "calendar.read",
            "--scope",
            "calendar.write",
        ],
    );
    let agent_for =
        |name: &str| secret_agent(&s, "default", name, "alice", "calendar.read calendar.write");
    let person = person_token(&s, &web, "alice", "openid calendar.read calendar.write").await;
    let exchange = |agent: (String, String)| {
        let (issuer, person) = (issuer.clone(), person.clone());
        async move {
            token(
                &issuer,
                &agent,
                &[
                    ("grant_type", EXCHANGE),
                    ("subject_token", &person),
                    ("subject_token_type", AT_TYPE),
                ],
            )
            .await
        }
    };

    // A mandate that does not allow refresh: no refresh token.
    let plain = agent_for("Plain");
    mandate(&s, &plain.0, false);
    let (status, v) = exchange(plain.clone()).await;
    assert_eq!(status, 200, "{v}");
    assert!(v.get("refresh_token").is_none(), "{v}");

    // One that allows it.
    let agent = agent_for("Planner");
    let m = mandate(&s, &agent.0, true);
    let (status, v) = exchange(agent.clone()).await;
    assert_eq!(status, 200, "{v}");
    let rt = v["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_string();
    let first = claims(v["access_token"].as_str().unwrap());

    // Refresh, narrowing the scope: same person, same actor, same mandate, same audience.
    let (status, v) = token(
        &issuer,
        &agent,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("scope", "calendar.read"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["scope"], "calendar.read");
    let refreshed = claims(v["access_token"].as_str().unwrap());
    assert_eq!(refreshed["sub"], alice.as_str());
    assert_eq!(refreshed["act"], json!({"sub": agent.0}));
    assert_eq!(refreshed["act"], first["act"]);
    assert_eq!(refreshed["mandate"], m.as_str());
    assert_eq!(refreshed["aud"], CALENDAR);
    let rt2 = v["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rt2, rt);
    let at2 = v["access_token"].as_str().unwrap().to_string();
    assert_eq!(introspect(&issuer, &web, &at2).await["active"], true);

    // Never wider: more scope or another resource is refused, and a refusal spends nothing
    // (issue 12, item 13); another client cannot use it.
    for (extra, error) in [
        (("scope", "calendar.delete"), "invalid_scope"),
        (("resource", "https://mail.example"), "invalid_target"),
        (("resource", "not a uri"), "invalid_target"),
    ] {
        let before = snapshot(&s).await;
        let (status, v) = token(
            &issuer,
            &agent,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt2),
                extra,
            ],
        )
        .await;
        assert_eq!((status, v["error"].as_str()), (400, Some(error)), "{v}");
        let after = snapshot(&s).await;
        let changed: Vec<_> = after.iter().filter(|r| !before.contains(r)).collect();
        assert!(changed.is_empty(), "a refused refresh changed {changed:?}");
    }
    // The retry with the same token works (it was not spent), and narrows to the resource.
    let (status, v) = token(
        &issuer,
        &agent,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt2),
            ("resource", CALENDAR),
        ],
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(claims(v["access_token"].as_str().unwrap())["aud"], CALENDAR);
    let rt2 = v["refresh_token"].as_str().unwrap().to_string();
    let (status, v) = token(
        &issuer,
        &web,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt2)],
    )
    .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_grant")),
        "{v}"
    );

    // Revoking the mandate ends refresh and every token of the grant; the person's own token
    // stays active.
    s.revoke_mandate("default", &m);
    let (status, v) = token(
        &issuer,
        &agent,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt2)],
    )
    .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_grant")),
        "{v}"
    );
    assert_eq!(introspect(&issuer, &web, &at2).await["active"], false);
    assert_eq!(introspect(&issuer, &web, &person).await["active"], true);

    // Rotation: a spent refresh token presented again revokes the family.
    let agent2 = agent_for("Booker");
    mandate(&s, &agent2.0, true);
    let (_, v) = exchange(agent2.clone()).await;
    let rt = v["refresh_token"].as_str().unwrap().to_string();
    let (status, v) = token(
        &issuer,
        &agent2,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let next = v["refresh_token"].as_str().unwrap().to_string();
    let (status, _) = token(
        &issuer,
        &agent2,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
    )
    .await;
    assert_eq!(status, 400, "replay");
    let (status, v) = token(
        &issuer,
        &agent2,
        &[("grant_type", "refresh_token"), ("refresh_token", &next)],
    )
    .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_grant")),
        "{v}"
    );
}

#[tokio::test]
async fn delegated_refresh_sqlite() {
    delegated_refresh(Backend::Sqlite).await;
}

#[tokio::test]
async fn delegated_refresh_postgres() {
    delegated_refresh(Backend::Postgres).await;
}
