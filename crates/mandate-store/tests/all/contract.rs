//! The storage contract, run against both backends: every case runs once on a fresh SQLite
//! file and once on a fresh schema of the local PostgreSQL (`MANDATE_TEST_POSTGRES` overrides
//! `postgres://postgres@127.0.0.1:5432/test`).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use mandate_authz::{AuthzStore, StoredModel, StoredTuple};
use mandate_core::StoreError;
use mandate_core::audit::{AuditEvent, EventKind, Outcome, Personal, Principal};
use mandate_core::domain::model::{
    AuthCode, Client, ClientAuthMethod, Consent, Grant, GrantType, RefreshToken, Session, Tenant,
    User,
};
use mandate_core::domain::scope::Scope;
use mandate_core::login::totp::store::TotpCredential;
use mandate_core::store::*;
use mandate_store::{Backend, SqlStore};
use mandate_token::jwk::{Alg, KeyRecord};
use serde_json::json;
use sqlx::{AnyConnection, Connection, Executor, Row};

const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

fn postgres_url() -> String {
    std::env::var("MANDATE_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_POSTGRES.to_string())
}

/// A name no other test (or concurrent test run) uses.
fn unique() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{}_{}_{}",
        std::process::id(),
        nanos,
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// A store on a fresh database, and what is needed to inspect and remove that database.
struct Db {
    store: Arc<SqlStore>,
    dir: Option<PathBuf>,
    schema: Option<String>,
}

impl Db {
    async fn sqlite() -> Db {
        let dir = std::env::temp_dir().join(format!("mandate-store-test-{}", unique()));
        let store = SqlStore::open_dir(&dir).await.expect("open sqlite");
        assert_eq!(store.backend(), Backend::Sqlite);
        assert!(dir.join("mandate.db").exists());
        Db {
            store: Arc::new(store),
            dir: Some(dir),
            schema: None,
        }
    }

    async fn postgres() -> Db {
        let schema = format!("mandate_test_{}", unique());
        let store = SqlStore::connect(&format!("{}?schema={schema}", postgres_url()))
            .await
            .expect("connect postgres (is it running?)");
        assert_eq!(store.backend(), Backend::Postgres);
        Db {
            store: Arc::new(store),
            dir: None,
            schema: Some(schema),
        }
    }

    fn s(&self) -> &SqlStore {
        &self.store
    }

    /// The URL this database can be reached with, as `SqlStore::connect` takes it.
    fn url(&self) -> String {
        match (&self.dir, &self.schema) {
            (Some(dir), _) => format!("sqlite://{}", dir.join("mandate.db").display()),
            (None, Some(schema)) => format!("{}?schema={schema}", postgres_url()),
            (None, None) => unreachable!(),
        }
    }

    /// A separate raw connection, for checking what was written.
    async fn raw(&self) -> AnyConnection {
        sqlx::any::install_default_drivers();
        match (&self.dir, &self.schema) {
            (Some(dir), _) => {
                let url = format!("sqlite://{}", dir.join("mandate.db").display());
                AnyConnection::connect(&url).await.expect("raw sqlite")
            }
            (None, Some(schema)) => {
                let mut conn = AnyConnection::connect(&postgres_url())
                    .await
                    .expect("raw postgres");
                conn.execute(format!("SET search_path TO \"{schema}\"").as_str())
                    .await
                    .expect("search_path");
                conn
            }
            (None, None) => unreachable!(),
        }
    }

    /// Close the store and drop its database (best effort).
    async fn finish(self) {
        self.store.close().await;
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some(schema) = &self.schema
            && let Ok(mut conn) = AnyConnection::connect(&postgres_url()).await
        {
            let _ = conn
                .execute(format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE").as_str())
                .await;
            let _ = conn.close().await;
        }
    }
}

/// Run a case on its own task so that its database is removed even when it fails.
async fn run<F, Fut>(db: Db, case: F)
where
    F: FnOnce(Arc<Db>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let db = Arc::new(db);
    let outcome = tokio::spawn(case(db.clone())).await;
    if let Ok(db) = Arc::try_unwrap(db) {
        db.finish().await;
    }
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Generates `sqlite::<case>` and `postgres::<case>` for every case.
macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::run(super::Db::sqlite().await, |db| async move {
                        super::$case(&db).await
                    })
                    .await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::run(super::Db::postgres().await, |db| async move {
                        super::$case(&db).await
                    })
                    .await;
                }
            )*
        }
    };
}

contract!(
    tenants,
    tenant_creation_is_atomic,
    key_rotation,
    clients,
    users,
    tenant_isolation,
    sessions,
    consents,
    codes,
    refresh_tokens,
    concurrent_refresh_spend,
    concurrent_code_consume,
    access_token_revocation,
    session_grants,
    replay,
    audit,
    audit_chain,
    audit_chain_concurrent_writers,
    audit_query,
    audit_erasure,
    agents_and_mandates,
    authz_data,
    purge,
    reopen,
    ciba_requests,
    second_factors,
    concurrent_totp_step,
    passkeys,
    password_hash,
    account_tokens,
    user_sessions_and_email,
    risk_records,
);

// ---------------------------------------------------------------------------------------------
// Fixtures

const NOW: i64 = 1_700_000_000;

/// The mandates in force from `user` to `agent`, as token exchange finds them.
async fn in_force(
    s: &SqlStore,
    user: &str,
    agent: &str,
    now: i64,
) -> StoreResult<Vec<mandate_core::domain::agents::Mandate>> {
    let lookup = ExchangeLookup {
        jti: "none",
        agents: &[],
        subject_mandate: None,
        user_id: user,
        agent_id: agent,
    };
    Ok(s.exchange_context("t1", lookup, now).await?.1)
}

fn tenant(id: &str, name: &str) -> Tenant {
    Tenant {
        id: id.into(),
        name: name.into(),
        secret_key: vec![7, 0, 255, 1, 2, 3],
        access_token_alg: Alg::ES256,
        created_at: NOW,
        settings: Default::default(),
    }
}

fn key(tenant_id: &str, kid: &str, alg: Alg, created_at: i64) -> KeyRecord {
    KeyRecord {
        tenant_id: tenant_id.into(),
        kid: kid.into(),
        alg,
        private_pkcs8: format!("pkcs8-of-{kid}").into_bytes(),
        created_at,
        retired_at: None,
        publish_until: None,
    }
}

/// Create tenant `id` named `name-{id}` with one key.
async fn make_tenant(s: &SqlStore, id: &str) -> Tenant {
    let t = tenant(id, &format!("name-{id}"));
    s.create_tenant(&t, &[key(id, &format!("{id}-k"), Alg::ES256, NOW)])
        .await
        .unwrap();
    t
}

fn full_client(tenant_id: &str, client_id: &str) -> Client {
    Client {
        tenant_id: tenant_id.into(),
        client_id: client_id.into(),
        name: "Full \"client\" ü".into(),
        secret_digest: Some(vec![0, 1, 2, 254, 255]),
        auth_method: ClientAuthMethod::PrivateKeyJwt,
        redirect_uris: vec![
            "https://app.example/cb".into(),
            "https://app.example/cb2?x=\"y\"".into(),
        ],
        post_logout_redirect_uris: vec!["https://app.example/bye".into()],
        grant_types: vec![
            GrantType::AuthorizationCode,
            GrantType::RefreshToken,
            GrantType::ClientCredentials,
        ],
        scopes: Scope::parse("openid profile email offline_access").unwrap(),
        jwks: Some(json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "abc", "y": "def"}]})),
        id_token_alg: Some(Alg::PS256),
        web_origins: vec!["https://app.example".into(), "http://localhost:3000".into()],
        refresh_grace_seconds: 30,
        created_at: NOW + 5,
    }
}

fn minimal_client(tenant_id: &str, client_id: &str) -> Client {
    Client {
        tenant_id: tenant_id.into(),
        client_id: client_id.into(),
        name: "Public".into(),
        secret_digest: None,
        auth_method: ClientAuthMethod::None,
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        grant_types: vec![GrantType::AuthorizationCode],
        scopes: Scope::default(),
        jwks: None,
        id_token_alg: None,
        web_origins: vec![],
        refresh_grace_seconds: 0,
        created_at: NOW,
    }
}

fn user(tenant_id: &str, id: &str, username: &str) -> User {
    User {
        tenant_id: tenant_id.into(),
        id: id.into(),
        username: username.into(),
        email: Some(format!("{username}@example.com")),
        email_verified: true,
        name: Some("Ada Lovelace".into()),
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        created_at: NOW,
        updated_at: NOW + 1,
    }
}

fn grant(tenant_id: &str, id: &str, sid: Option<&str>) -> Grant {
    Grant {
        id: id.into(),
        tenant_id: tenant_id.into(),
        client_id: "app".into(),
        user_id: "u1".into(),
        sid: sid.map(Into::into),
        created_at: NOW,
        revoked_at: None,
    }
}

fn code(tenant_id: &str, digest: &[u8], grant_id: &str, expires_at: i64) -> AuthCode {
    AuthCode {
        digest: digest.to_vec(),
        tenant_id: tenant_id.into(),
        grant_id: grant_id.into(),
        client_id: "app".into(),
        user_id: "u1".into(),
        redirect_uri: "https://app.example/cb".into(),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        scope: Scope::parse("openid profile").unwrap(),
        nonce: Some("n-0S6_WzA2Mj".into()),
        sid: Some("sid-1".into()),
        auth_time: NOW - 10,
        acr: "1".into(),
        amr: vec!["pwd".into(), "otp".into()],
        expires_at,
        resources: vec!["https://cal.example".into()],
        mandate_id: Some("m1".into()),
    }
}

fn refresh_token(tenant_id: &str, digest: &[u8], grant_id: &str) -> RefreshToken {
    RefreshToken {
        digest: digest.to_vec(),
        tenant_id: tenant_id.into(),
        grant_id: grant_id.into(),
        client_id: "app".into(),
        user_id: "u1".into(),
        scope: Scope::parse("openid offline_access").unwrap(),
        sid: None,
        auth_time: NOW - 10,
        acr: String::new(),
        amr: vec!["pwd".into()],
        expires_at: NOW + 86_400,
        created_at: NOW,
        spent_at: None,
        delegation: None,
        dpop_jkt: None,
        resources: vec!["https://cal.example".into(), "https://mail.example".into()],
    }
}

fn session(tenant_id: &str, digest: &[u8], expires_at: i64) -> Session {
    Session {
        digest: digest.to_vec(),
        tenant_id: tenant_id.into(),
        sid: "sid-1".into(),
        user_id: "u1".into(),
        auth_time: NOW,
        amr: vec!["pwd".into(), "hwk".into()],
        acr: "urn:acr:2".into(),
        expires_at,
        created_at: NOW - 5,
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0".into()),
        ip: Some("192.0.2.7".into()),
        risk_acr: Some("phr".into()),
    }
}

fn is_conflict<T: std::fmt::Debug>(r: StoreResult<T>) -> bool {
    matches!(r, Err(StoreError::Conflict(_)))
}

// ---------------------------------------------------------------------------------------------
// Cases

async fn tenants(db: &Db) {
    let s = db.s();
    assert!(s.list_tenants().await.unwrap().is_empty());
    assert_eq!(s.tenant_by_name("acme").await.unwrap(), None);

    let acme = tenant("t-acme", "acme");
    let keys = [
        key("t-acme", "k-es", Alg::ES256, NOW),
        key("t-acme", "k-rs", Alg::RS256, NOW),
    ];
    s.create_tenant(&acme, &keys).await.unwrap();
    let beta = tenant("t-beta", "beta");
    s.create_tenant(&beta, &[]).await.unwrap();

    assert_eq!(s.tenant_by_name("acme").await.unwrap(), Some(acme.clone()));
    assert_eq!(s.tenant_by_name("ACME").await.unwrap(), None);
    assert_eq!(s.list_tenants().await.unwrap(), vec![acme.clone(), beta]);

    let mut stored = s.keys("t-acme").await.unwrap();
    stored.sort_by(|a, b| a.kid.cmp(&b.kid));
    assert_eq!(stored, keys.to_vec());
    assert!(s.keys("t-beta").await.unwrap().is_empty());

    // Same name, other id: conflict. Same id, other name: conflict.
    let dup = tenant("t-other", "acme");
    assert!(is_conflict(s.create_tenant(&dup, &[]).await));
    let dup_id = tenant("t-acme", "acme-2");
    assert!(is_conflict(s.create_tenant(&dup_id, &[]).await));
    assert_eq!(s.list_tenants().await.unwrap().len(), 2);
}

async fn tenant_creation_is_atomic(db: &Db) {
    let s = db.s();
    // The second key repeats the kid: the whole creation must roll back.
    let t = tenant("t1", "one");
    let keys = [
        key("t1", "same", Alg::ES256, NOW),
        key("t1", "same", Alg::RS256, NOW),
    ];
    assert!(s.create_tenant(&t, &keys).await.is_err());
    assert_eq!(s.tenant_by_name("one").await.unwrap(), None);
    assert!(s.keys("t1").await.unwrap().is_empty());
    // And the name is still free.
    s.create_tenant(&t, &keys[..1]).await.unwrap();
    assert_eq!(s.keys("t1").await.unwrap().len(), 1);
}

async fn key_rotation(db: &Db) {
    let s = db.s();
    let mut old = key("t1", "k0", Alg::ES256, NOW - 1000);
    old.retired_at = Some(NOW - 500);
    old.publish_until = Some(NOW + 50);
    let current = [
        key("t1", "k1", Alg::ES256, NOW - 100),
        key("t1", "k2", Alg::RS256, NOW - 100),
    ];
    let mut initial = vec![old.clone()];
    initial.extend(current.iter().cloned());
    s.create_tenant(&tenant("t1", "one"), &initial)
        .await
        .unwrap();
    s.create_tenant(
        &tenant("t2", "two"),
        &[key("t2", "other", Alg::ES256, NOW - 100)],
    )
    .await
    .unwrap();

    let new = [
        key("t1", "k3", Alg::ES256, NOW),
        key("t1", "k4", Alg::RS256, NOW),
    ];
    s.rotate_keys("t1", &new, NOW, NOW + 3600).await.unwrap();

    let keys = s.keys("t1").await.unwrap();
    assert_eq!(keys.len(), 5);
    let by = |kid: &str| keys.iter().find(|k| k.kid == kid).cloned().unwrap();
    // Already retired: untouched.
    assert_eq!(by("k0"), old);
    // Current ones: retired now, published for the window.
    for kid in ["k1", "k2"] {
        let k = by(kid);
        assert_eq!(k.retired_at, Some(NOW), "{kid}");
        assert_eq!(k.publish_until, Some(NOW + 3600), "{kid}");
        assert_eq!(k.private_pkcs8, format!("pkcs8-of-{kid}").into_bytes());
    }
    // New ones: unretired, as given.
    assert_eq!(by("k3"), new[0]);
    assert_eq!(by("k4"), new[1]);
    // Newest first.
    assert!(keys[0].created_at >= keys[keys.len() - 1].created_at);
    assert_eq!(keys[0].created_at, NOW);
    // The other tenant is untouched.
    let other = s.keys("t2").await.unwrap();
    assert_eq!(other, vec![key("t2", "other", Alg::ES256, NOW - 100)]);

    // A second rotation retires k3/k4 but leaves k1/k2 with their own window.
    s.rotate_keys(
        "t1",
        &[key("t1", "k5", Alg::EdDSA, NOW + 10)],
        NOW + 10,
        NOW + 999,
    )
    .await
    .unwrap();
    let keys = s.keys("t1").await.unwrap();
    let by = |kid: &str| keys.iter().find(|k| k.kid == kid).cloned().unwrap();
    assert_eq!(by("k1").publish_until, Some(NOW + 3600));
    assert_eq!(by("k3").retired_at, Some(NOW + 10));
    assert_eq!(by("k3").publish_until, Some(NOW + 999));
    assert_eq!(by("k5").retired_at, None);
    assert_eq!(by("k5").alg, Alg::EdDSA);
    let unretired: Vec<_> = keys.iter().filter(|k| k.retired_at.is_none()).collect();
    assert_eq!(unretired.len(), 1);
}

async fn clients(db: &Db) {
    let s = db.s();
    make_tenant(s, "t1").await;
    let full = full_client("t1", "full");
    let min = minimal_client("t1", "min");
    s.create_client(&full).await.unwrap();
    s.create_client(&min).await.unwrap();
    assert_eq!(s.client("t1", "full").await.unwrap(), Some(full.clone()));
    assert_eq!(s.client("t1", "min").await.unwrap(), Some(min));
    assert_eq!(s.client("t1", "nope").await.unwrap(), None);

    let mut again = minimal_client("t1", "full");
    again.name = "Impostor".into();
    assert!(is_conflict(s.create_client(&again).await));
    assert_eq!(s.client("t1", "full").await.unwrap(), Some(full));

    // Every auth method and id_token alg round-trips.
    for (i, method) in [
        ClientAuthMethod::ClientSecretBasic,
        ClientAuthMethod::ClientSecretPost,
        ClientAuthMethod::PrivateKeyJwt,
        ClientAuthMethod::None,
    ]
    .into_iter()
    .enumerate()
    {
        for alg in Alg::ALL {
            let mut c = minimal_client("t1", &format!("c-{i}-{alg}"));
            c.auth_method = method;
            c.id_token_alg = Some(alg);
            s.create_client(&c).await.unwrap();
            assert_eq!(s.client("t1", &c.client_id).await.unwrap(), Some(c));
        }
    }
}

async fn users(db: &Db) {
    let s = db.s();
    make_tenant(s, "t1").await;
    let ada = user("t1", "u1", "ada");
    let mut bob = user("t1", "u2", "bob");
    bob.email = None;
    bob.email_verified = false;
    bob.name = None;
    bob.password_hash = None;
    s.create_user(&ada).await.unwrap();
    s.create_user(&bob).await.unwrap();

    assert_eq!(
        s.user_by_username("t1", "ada").await.unwrap(),
        Some(ada.clone())
    );
    assert_eq!(s.user("t1", "u1").await.unwrap(), Some(ada.clone()));
    assert_eq!(s.user("t1", "u2").await.unwrap(), Some(bob.clone()));
    assert_eq!(s.user_by_username("t1", "bob").await.unwrap(), Some(bob));
    assert_eq!(s.user_by_username("t1", "u1").await.unwrap(), None);
    assert_eq!(s.user("t1", "ada").await.unwrap(), None);

    // Duplicate username (other id) and duplicate id (other username).
    assert!(is_conflict(s.create_user(&user("t1", "u3", "ada")).await));
    assert!(is_conflict(s.create_user(&user("t1", "u1", "carol")).await));
    assert_eq!(s.user("t1", "u3").await.unwrap(), None);
    assert_eq!(s.user_by_username("t1", "carol").await.unwrap(), None);
}

async fn tenant_isolation(db: &Db) {
    let s = db.s();
    make_tenant(s, "a").await;
    make_tenant(s, "b").await;

    // The same username and client_id in two tenants are different records.
    s.create_user(&user("a", "ua", "ada")).await.unwrap();
    s.create_user(&user("b", "ub", "ada")).await.unwrap();
    assert_eq!(
        s.user_by_username("a", "ada").await.unwrap().unwrap().id,
        "ua"
    );
    assert_eq!(
        s.user_by_username("b", "ada").await.unwrap().unwrap().id,
        "ub"
    );
    assert_eq!(s.user("b", "ua").await.unwrap(), None);

    s.create_client(&full_client("a", "only-a")).await.unwrap();
    assert_eq!(s.client("b", "only-a").await.unwrap(), None);
    s.create_client(&minimal_client("b", "shared"))
        .await
        .unwrap();
    s.create_client(&full_client("a", "shared")).await.unwrap();
    assert_eq!(
        s.client("a", "shared").await.unwrap().unwrap().name,
        full_client("a", "x").name
    );
    assert_eq!(
        s.client("b", "shared").await.unwrap().unwrap().name,
        "Public"
    );

    s.create_session(&session("a", b"sess", NOW + 60))
        .await
        .unwrap();
    assert_eq!(s.session("b", b"sess").await.unwrap(), None);
    assert!(!s.delete_session("b", b"sess").await.unwrap());
    assert!(s.session("a", b"sess").await.unwrap().is_some());

    s.put_consent(&Consent {
        tenant_id: "a".into(),
        user_id: "ua".into(),
        client_id: "only-a".into(),
        scope: Scope::parse("openid").unwrap(),
        granted_at: NOW,
    })
    .await
    .unwrap();
    assert_eq!(s.consent("b", "ua", "only-a").await.unwrap(), None);
    assert!(!s.delete_consent("b", "ua", "only-a").await.unwrap());
    assert!(s.consent("a", "ua", "only-a").await.unwrap().is_some());

    s.create_grant(&grant("a", "g", Some("sid-1")))
        .await
        .unwrap();
    assert_eq!(s.grant("b", "g").await.unwrap(), None);
    assert!(!s.revoke_grant("b", "g", NOW).await.unwrap());
    assert_eq!(s.revoke_session_grants("b", "sid-1", NOW).await.unwrap(), 0);
    assert_eq!(s.grant("a", "g").await.unwrap().unwrap().revoked_at, None);

    s.insert_code(&code("a", b"code", "g", NOW + 60))
        .await
        .unwrap();
    assert_eq!(s.code("b", b"code").await.unwrap(), None);
    assert_eq!(
        s.consume_code("b", b"code", NOW).await.unwrap(),
        Spend::Unknown
    );
    assert!(!s.code("a", b"code").await.unwrap().unwrap().1);

    s.insert_refresh(&refresh_token("a", b"rt", "g"))
        .await
        .unwrap();
    assert_eq!(s.refresh("b", b"rt").await.unwrap(), None);
    assert_eq!(
        s.spend_refresh("b", b"rt", NOW).await.unwrap(),
        Spend::Unknown
    );
    assert_eq!(s.refresh("a", b"rt").await.unwrap().unwrap().spent_at, None);

    s.revoke_access_token("a", "jti-a", NOW + 60).await.unwrap();
    assert!(s.access_token_revoked("a", "jti-a").await.unwrap());
    assert!(!s.access_token_revoked("b", "jti-a").await.unwrap());

    // A grant id of tenant A cannot be referenced from tenant B.
    assert!(
        s.record_access_token("b", "jti-b", "g", NOW + 60)
            .await
            .is_err()
    );

    assert!(s.first_use("a", "once", NOW + 60).await.unwrap());
    assert!(s.first_use("b", "once", NOW + 60).await.unwrap());

    assert_eq!(s.keys("a").await.unwrap()[0].kid, "a-k");
    assert_eq!(s.keys("b").await.unwrap()[0].kid, "b-k");
}

async fn sessions(db: &Db) {
    let s = db.s();
    make_tenant(s, "t1").await;
    let digest = [0u8, 1, 2, 3, 255, 254];
    let sess = session("t1", &digest, NOW + 3600);
    s.create_session(&sess).await.unwrap();
    assert_eq!(s.session("t1", &digest).await.unwrap(), Some(sess.clone()));
    assert_eq!(s.session("t1", &digest[..5]).await.unwrap(), None);
    assert!(is_conflict(s.create_session(&sess).await));

    let mut no_amr = session("t1", b"other", NOW + 10);
    no_amr.amr.clear();
    no_amr.acr.clear();
    s.create_session(&no_amr).await.unwrap();
    assert_eq!(s.session("t1", b"other").await.unwrap(), Some(no_amr));

    // A factor joins the session: amr, acr and auth_time change, nothing else.
    let mut stepped = sess.clone();
    stepped.amr.push("otp".into());
    stepped.acr = "urn:mandate:acr:mfa".into();
    stepped.auth_time += 5;
    assert!(s.update_session(&stepped).await.unwrap());
    assert_eq!(
        s.session("t1", &digest).await.unwrap(),
        Some(stepped.clone())
    );
    let mut gone = stepped.clone();
    gone.digest = b"nobody".to_vec();
    assert!(!s.update_session(&gone).await.unwrap());

    assert!(s.delete_session("t1", &digest).await.unwrap());
    assert_eq!(s.session("t1", &digest).await.unwrap(), None);
    assert!(!s.delete_session("t1", &digest).await.unwrap());
    assert!(s.session("t1", b"other").await.unwrap().is_some());
}

async fn consents(db: &Db) {
    let s = db.s();
    make_tenant(s, "t1").await;
    assert_eq!(s.consent("t1", "u1", "app").await.unwrap(), None);
    let mut c = Consent {
        tenant_id: "t1".into(),
        user_id: "u1".into(),
        client_id: "app".into(),
        scope: Scope::parse("openid profile").unwrap(),
        granted_at: NOW,
    };
    s.put_consent(&c).await.unwrap();
    assert_eq!(s.consent("t1", "u1", "app").await.unwrap(), Some(c.clone()));

    c.scope = Scope::parse("openid email").unwrap();
    c.granted_at = NOW + 100;
    s.put_consent(&c).await.unwrap();
    assert_eq!(s.consent("t1", "u1", "app").await.unwrap(), Some(c.clone()));

    let other = Consent {
        client_id: "other".into(),
        ..c.clone()
    };
    s.put_consent(&other).await.unwrap();

    assert!(s.delete_consent("t1", "u1", "app").await.unwrap());
    assert_eq!(s.consent("t1", "u1", "app").await.unwrap(), None);
    assert!(!s.delete_consent("t1", "u1", "app").await.unwrap());
    assert_eq!(s.consent("t1", "u1", "other").await.unwrap(), Some(other));
}

async fn codes(db: &Db) {
    let s = db.s();
    make_tenant(s, "t1").await;
    let g = grant("t1", "g1", Some("sid-1"));
    s.create_grant(&g).await.unwrap();
    assert_eq!(s.grant("t1", "g1").await.unwrap(), Some(g));
    assert_eq!(s.grant("t1", "g2").await.unwrap(), None);
    assert!(is_conflict(s.create_grant(&grant("t1", "g1", None)).await));

    let c = code("t1", b"\x00code\xff", "g1", NOW + 60);
    s.insert_code(&c).await.unwrap();
    let mut bare = code("t1", b"bare", "g1", NOW + 60);
    bare.nonce = None;
    bare.sid = None;
    bare.amr.clear();
    bare.scope = Scope::default();
    s.insert_code(&bare).await.unwrap();
    assert!(is_conflict(s.insert_code(&c).await));

    assert_eq!(
        s.code("t1", &c.digest).await.unwrap(),
        Some((c.clone(), false))
    );
    assert_eq!(
        s.code("t1", b"bare").await.unwrap(),
        Some((bare.clone(), false))
    );
    assert_eq!(s.code("t1", b"nope").await.unwrap(), None);

    assert_eq!(
        s.consume_code("t1", &c.digest, NOW).await.unwrap(),
        Spend::Fresh(c.clone())
    );
    assert_eq!(
        s.consume_code("t1", &c.digest, NOW + 1).await.unwrap(),
        Spend::Replayed(c.clone())
    );
    assert_eq!(
        s.code("t1", &c.digest).await.unwrap(),
        Some((c.clone(), true))
    );
    assert_eq!(
        s.consume_code("t1", b"nope", NOW).await.unwrap(),
        Spend::Unknown
    );
    // The other code is untouched.
    assert_eq!(
        s.code("t1", b"bare").await.unwrap(),
        Some((bare.clone(), false))
    );
    assert_eq!(
        s.consume_code("t1", b"bare", NOW).await.unwrap(),
        Spend::Fresh(bare)
    );

    // A code must belong to an existing grant.
    assert!(
        s.insert_code(&code("t1", b"orphan", "missing", NOW))
            .await
            .is_err()
    );
}

async fn refresh_tokens(db: &Db) {
    let s = db.s();
    make_tenant(s, "t1").await;
    s.create_grant(&grant("t1", "g1", None)).await.unwrap();
    let rt = refresh_token("t1", b"rt-1", "g1");
    s.insert_refresh(&rt).await.unwrap();
    assert!(is_conflict(s.insert_refresh(&rt).await));
    assert_eq!(s.refresh("t1", b"rt-1").await.unwrap(), Some(rt.clone()));
    assert_eq!(s.refresh("t1", b"rt-x").await.unwrap(), None);
    let delegated = RefreshToken {
        digest: b"rt-d".to_vec(),
        delegation: Some(
            json!({"act": {"sub": "a1"}, "mandate": "m1", "aud": ["https://cal.example"]}),
        ),
        dpop_jkt: Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".into()),
        ..rt.clone()
    };
    s.insert_refresh(&delegated).await.unwrap();
    assert_eq!(s.refresh("t1", b"rt-d").await.unwrap(), Some(delegated));

    let spent = RefreshToken {
        spent_at: Some(NOW + 5),
        ..rt.clone()
    };
    assert_eq!(
        s.spend_refresh("t1", b"rt-1", NOW + 5).await.unwrap(),
        Spend::Fresh(spent.clone())
    );
    assert_eq!(
        s.spend_refresh("t1", b"rt-1", NOW + 6).await.unwrap(),
        Spend::Replayed(spent.clone())
    );
    assert_eq!(s.refresh("t1", b"rt-1").await.unwrap(), Some(spent));
    assert_eq!(
        s.spend_refresh("t1", b"rt-x", NOW).await.unwrap(),
        Spend::Unknown
    );

    // Its successor, then the grant is revoked: the unspent successor is a replay now.
    let mut next = refresh_token("t1", b"rt-2", "g1");
    next.sid = Some("sid-9".into());
    next.acr = "urn:acr:2".into();
    s.insert_refresh(&next).await.unwrap();
    assert!(s.revoke_grant("t1", "g1", NOW + 7).await.unwrap());
    assert!(!s.revoke_grant("t1", "g1", NOW + 8).await.unwrap());
    assert_eq!(
        s.grant("t1", "g1").await.unwrap().unwrap().revoked_at,
        Some(NOW + 7)
    );
    assert_eq!(
        s.spend_refresh("t1", b"rt-2", NOW + 9).await.unwrap(),
        Spend::Replayed(next.clone())
    );
    assert_eq!(s.refresh("t1", b"rt-2").await.unwrap(), Some(next));
    assert!(!s.revoke_grant("t1", "missing", NOW).await.unwrap());
}

async fn concurrent_refresh_spend(db: &Db) {
    let s = db.s();
    make_tenant(s, "t1").await;
    s.create_grant(&grant("t1", "g1", None)).await.unwrap();
    s.insert_refresh(&refresh_token("t1", b"race", "g1"))
        .await
        .unwrap();

    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = db.store.clone();
            tokio::spawn(async move { store.spend_refresh("t1", b"race", NOW + i).await })
        })
        .collect();
    let (mut fresh, mut replayed) = (0, 0);
    for t in tasks {
        match t.await.unwrap().unwrap() {
            Spend::Fresh(_) => fresh += 1,
            Spend::Replayed(rt) => {
                assert!(rt.spent_at.is_some());
                replayed += 1
            }
            Spend::Unknown => panic!("token vanished"),
        }
    }
    assert_eq!((fresh, replayed), (1, 19));
}

async fn concurrent_code_consume(db: &Db) {
    let s = db.s();
    make_tenant(s, "t1").await;
    s.create_grant(&grant("t1", "g1", None)).await.unwrap();
    s.insert_code(&code("t1", b"race", "g1", NOW + 60))
        .await
        .unwrap();

    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = db.store.clone();
            tokio::spawn(async move { store.consume_code("t1", b"race", NOW).await })
        })
        .collect();
    let mut fresh = 0;
    for t in tasks {
        match t.await.unwrap().unwrap() {
            Spend::Fresh(_) => fresh += 1,
            Spend::Replayed(_) => {}
            Spend::Unknown => panic!("code vanished"),
        }
    }
    assert_eq!(fresh, 1);
}

async fn access_token_revocation(db: &Db) {
    let s = db.s();
    make_tenant(s, "t1").await;
    s.create_grant(&grant("t1", "g1", None)).await.unwrap();
    s.create_grant(&grant("t1", "g2", None)).await.unwrap();
    s.record_access_token("t1", "at-1", "g1", NOW + 300)
        .await
        .unwrap();
    s.record_access_token("t1", "at-2", "g2", NOW + 300)
        .await
        .unwrap();
    // Recording twice is harmless.
    s.record_access_token("t1", "at-1", "g1", NOW + 300)
        .await
        .unwrap();

    for jti in ["at-1", "at-2", "at-3", "unknown"] {
        assert!(!s.access_token_revoked("t1", jti).await.unwrap(), "{jti}");
    }

    // Directly, by jti (recorded or not), idempotently.
    s.revoke_access_token("t1", "at-3", NOW + 300)
        .await
        .unwrap();
    s.revoke_access_token("t1", "at-3", NOW + 300)
        .await
        .unwrap();
    assert!(s.access_token_revoked("t1", "at-3").await.unwrap());
    s.revoke_access_token("t1", "at-2", NOW + 300)
        .await
        .unwrap();
    assert!(s.access_token_revoked("t1", "at-2").await.unwrap());
    assert!(!s.access_token_revoked("t1", "at-1").await.unwrap());

    // Through the grant.
    assert!(s.revoke_grant("t1", "g1", NOW).await.unwrap());
    assert!(s.access_token_revoked("t1", "at-1").await.unwrap());
    assert!(!s.access_token_revoked("t1", "unknown").await.unwrap());
}

async fn session_grants(db: &Db) {
    let s = db.s();
    make_tenant(s, "t1").await;
    make_tenant(s, "t2").await;
    s.create_grant(&grant("t1", "g1", Some("s1")))
        .await
        .unwrap();
    s.create_grant(&grant("t1", "g2", Some("s1")))
        .await
        .unwrap();
    s.create_grant(&grant("t1", "g3", Some("s2")))
        .await
        .unwrap();
    s.create_grant(&grant("t1", "g4", None)).await.unwrap();
    s.create_grant(&grant("t2", "g5", Some("s1")))
        .await
        .unwrap();
    let mut already = grant("t1", "g6", Some("s1"));
    already.revoked_at = Some(NOW - 100);
    s.create_grant(&already).await.unwrap();
    s.record_access_token("t1", "at-g2", "g2", NOW + 300)
        .await
        .unwrap();
    s.record_access_token("t1", "at-g3", "g3", NOW + 300)
        .await
        .unwrap();

    assert_eq!(s.revoke_session_grants("t1", "s1", NOW).await.unwrap(), 2);
    assert_eq!(
        s.revoke_session_grants("t1", "s1", NOW + 1).await.unwrap(),
        0
    );
    let revoked_at = |t: &'static str, g: &'static str| async move {
        s.grant(t, g).await.unwrap().unwrap().revoked_at
    };
    assert_eq!(revoked_at("t1", "g1").await, Some(NOW));
    assert_eq!(revoked_at("t1", "g2").await, Some(NOW));
    assert_eq!(revoked_at("t1", "g3").await, None);
    assert_eq!(revoked_at("t1", "g4").await, None);
    assert_eq!(revoked_at("t2", "g5").await, None);
    assert_eq!(revoked_at("t1", "g6").await, Some(NOW - 100));
    assert!(s.access_token_revoked("t1", "at-g2").await.unwrap());
    assert!(!s.access_token_revoked("t1", "at-g3").await.unwrap());
}

async fn replay(db: &Db) {
    let s = db.s();
    assert!(s.first_use("t1", "jti-1", NOW + 60).await.unwrap());
    assert!(!s.first_use("t1", "jti-1", NOW + 60).await.unwrap());
    assert!(!s.first_use("t1", "jti-1", NOW + 999).await.unwrap());
    assert!(s.first_use("t1", "jti-2", NOW + 60).await.unwrap());
    assert!(s.first_use("t2", "jti-1", NOW + 60).await.unwrap());
}

async fn audit(db: &Db) {
    let s = db.s();
    let full = AuditEvent {
        time: NOW,
        tenant_id: "t1".into(),
        kind: EventKind::TokenIssued,
        outcome: Outcome::Success,
        reason: Some("because".into()),
        actor: Principal::Agent {
            id: "agent-7".into(),
        },
        subject: Some(Principal::User { id: "u1".into() }),
        act_chain: vec![
            Principal::Agent {
                id: "agent-7".into(),
            },
            Principal::Client { id: "app".into() },
        ],
        client_id: Some("app".into()),
        mandate_id: Some("m-1".into()),
        request_id: Some("req-1".into()),
        detail: json!({"grant_type": "authorization_code", "scope": "openid", "n": 3}),
        personal: Personal {
            ip: Some("2001:db8::1".into()),
            user_agent: Some("curl/8".into()),
            username: Some("alice".into()),
            email: None,
        },
    };
    let minimal = AuditEvent {
        time: NOW + 1,
        tenant_id: "t1".into(),
        kind: EventKind::LoginFailed,
        outcome: Outcome::Failure,
        reason: None,
        actor: Principal::Anonymous,
        subject: None,
        act_chain: vec![],
        client_id: None,
        mandate_id: None,
        request_id: None,
        detail: serde_json::Value::Null,
        personal: Personal::default(),
    };
    s.record(&full).await.unwrap();
    s.record(&minimal).await.unwrap();
    let mut other = minimal.clone();
    other.tenant_id = "t2".into();
    s.record(&other).await.unwrap();

    let mut raw = db.raw().await;
    let rows = sqlx::query(
        "SELECT id, time, tenant_id, kind, outcome, actor_type, actor_id, subject_type, \
         subject_id, act_chain, client_id, mandate_id, request_id, reason, detail, \
         personal_commitment FROM audit_events WHERE tenant_id = $1 ORDER BY id",
    )
    .bind("t1")
    .fetch_all(&mut raw)
    .await
    .unwrap();
    assert_eq!(rows.len(), 2);
    let text = |i: usize, c: &str| rows[i].get::<Option<String>, _>(c);
    let parsed = |i: usize, c: &str| -> serde_json::Value {
        serde_json::from_str(&text(i, c).unwrap()).unwrap()
    };
    assert!(rows[0].get::<i64, _>("id") < rows[1].get::<i64, _>("id"));
    assert_eq!(rows[0].get::<i64, _>("time"), NOW);
    assert_eq!(text(0, "tenant_id").as_deref(), Some("t1"));
    assert_eq!(text(0, "kind").as_deref(), Some("token_issued"));
    assert_eq!(text(0, "outcome").as_deref(), Some("success"));
    assert_eq!(text(0, "actor_type").as_deref(), Some("agent"));
    assert_eq!(text(0, "actor_id").as_deref(), Some("agent-7"));
    assert_eq!(text(0, "subject_type").as_deref(), Some("user"));
    assert_eq!(text(0, "subject_id").as_deref(), Some("u1"));
    assert_eq!(
        parsed(0, "act_chain"),
        json!([{"type": "agent", "id": "agent-7"}, {"type": "client", "id": "app"}])
    );
    assert_eq!(text(0, "client_id").as_deref(), Some("app"));
    assert_eq!(text(0, "mandate_id").as_deref(), Some("m-1"));
    assert_eq!(text(0, "request_id").as_deref(), Some("req-1"));
    assert_eq!(text(0, "reason").as_deref(), Some("because"));
    assert_eq!(parsed(0, "detail"), full.detail);
    assert_eq!(
        rows[0]
            .get::<Option<Vec<u8>>, _>("personal_commitment")
            .map(|c| c.len()),
        Some(32),
        "the chained record holds only a commitment to the personal data"
    );

    assert_eq!(rows[1].get::<i64, _>("time"), NOW + 1);
    assert_eq!(text(1, "kind").as_deref(), Some("login_failed"));
    assert_eq!(text(1, "outcome").as_deref(), Some("failure"));
    assert_eq!(text(1, "actor_type").as_deref(), Some("anonymous"));
    assert_eq!(parsed(1, "act_chain"), json!([]));
    for c in [
        "actor_id",
        "subject_type",
        "subject_id",
        "client_id",
        "mandate_id",
        "request_id",
        "reason",
    ] {
        assert_eq!(text(1, c), None, "{c}");
    }
    assert_eq!(parsed(1, "detail"), serde_json::Value::Null);
    assert_eq!(
        rows[1].get::<Option<Vec<u8>>, _>("personal_commitment"),
        None
    );

    // Personal data is kept in columns the hash does not cover, with a salt only on records
    // that have any.
    let personal = sqlx::query(
        "SELECT seq, data_subject, ip, user_agent, username, email FROM audit_events \
         WHERE tenant_id = $1 AND salt IS NOT NULL",
    )
    .bind("t1")
    .fetch_all(&mut raw)
    .await
    .unwrap();
    assert_eq!(personal.len(), 1);
    let p = |c: &str| personal[0].get::<Option<String>, _>(c);
    assert_eq!(personal[0].get::<i64, _>("seq"), 1);
    assert_eq!(p("data_subject").as_deref(), Some("u1"));
    assert_eq!(p("ip").as_deref(), Some("2001:db8::1"));
    assert_eq!(p("user_agent").as_deref(), Some("curl/8"));
    assert_eq!(p("username").as_deref(), Some("alice"));
    assert_eq!(p("email"), None);
    // And everything reads back as recorded.
    let back = s
        .audit_query(
            "t1",
            &AuditQuery {
                ascending: true,
                limit: 10,
                ..AuditQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        back.iter().map(|r| &r.event).collect::<Vec<_>>(),
        vec![&full, &minimal]
    );

    let total: i64 = sqlx::query("SELECT COUNT(*) AS n FROM audit_events")
        .fetch_one(&mut raw)
        .await
        .unwrap()
        .get("n");
    assert_eq!(total, 3);
    raw.close().await.unwrap();
}

fn chain_event(tenant: &str, n: usize) -> AuditEvent {
    AuditEvent {
        time: NOW + n as i64,
        tenant_id: tenant.into(),
        kind: EventKind::TokenIssued,
        outcome: Outcome::Success,
        reason: None,
        actor: Principal::Client { id: "svc".into() },
        subject: n
            .is_multiple_of(2)
            .then(|| Principal::User { id: "u1".into() }),
        act_chain: vec![],
        client_id: Some("svc".into()),
        mandate_id: None,
        request_id: Some(format!("req-{n}")),
        detail: json!({"scope": "api.read", "n": n, "aud": ["x"]}),
        personal: Personal {
            ip: Some("192.0.2.1".into()),
            ..Personal::default()
        },
    }
}

/// Records come back in order, linked, with the head matching; pages of any size.
async fn audit_chain(db: &Db) {
    use mandate_core::audit::chain::{GENESIS, record_hash, verify_stored};
    let s = db.s();
    assert_eq!(s.audit_head("t1").await.unwrap(), None);
    let events: Vec<_> = (0..12).map(|n| chain_event("t1", n)).collect();
    for e in &events {
        s.record(e).await.unwrap();
    }
    s.record(&chain_event("t2", 0)).await.unwrap();
    let records = s
        .audit_chain("t1", (i64::MIN, i64::MIN), 100)
        .await
        .unwrap();
    assert_eq!(records.len(), 12);
    let mut prev = GENESIS.to_vec();
    for (i, (r, e)) in records.iter().zip(&events).enumerate() {
        assert_eq!(r.seq, i as i64 + 1);
        assert_eq!(r.prev_hash, prev);
        assert_eq!(
            r.full_event().unwrap(),
            *e,
            "stored fields read back unchanged"
        );
        // The detail is stored as its canonical JSON, which verification hashes as is.
        let mut canonical = String::new();
        mandate_core::audit::chain::canonical_json(&e.detail, &mut canonical);
        assert_eq!(r.stored_detail.as_deref(), Some(canonical.as_str()));
        assert_eq!(
            r.hash,
            record_hash(&prev, e, r.seq, r.personal_commitment.as_deref()).to_vec()
        );
        assert!(r.personal_salt.is_some());
        prev = r.hash.clone();
    }
    let head = s.audit_head("t1").await.unwrap().unwrap();
    assert_eq!((head.seq, head.hash), (12, prev));
    // Paging resumes after the given position.
    let page = s
        .audit_chain("t1", (records[4].seq, records[4].row_id), 3)
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![6, 7, 8]
    );
    for size in [1, 5, 12, 10_000] {
        let report = verify_stored(s, "t1", None, size).await.unwrap().unwrap();
        assert_eq!(report.records, 12, "page size {size}");
    }
    let t2 = verify_stored(s, "t2", None, 10).await.unwrap().unwrap();
    assert_eq!(t2.records, 1, "each tenant has its own chain");

    // A changed field shows up in verification.
    let mut raw = db.raw().await;
    sqlx::query("UPDATE audit_events SET detail = $1 WHERE tenant_id = $2 AND seq = 9")
        .bind(r#"{"n": 999}"#)
        .bind("t1")
        .execute(&mut raw)
        .await
        .unwrap();
    let broken = verify_stored(s, "t1", None, 4).await.unwrap().unwrap_err();
    assert_eq!(broken.seq, 9, "{broken}");
    // An undecodable one too.
    sqlx::query("UPDATE audit_events SET actor_type = $1 WHERE tenant_id = $2 AND seq = 3")
        .bind("robot")
        .bind("t1")
        .execute(&mut raw)
        .await
        .unwrap();
    let broken = verify_stored(s, "t1", None, 4).await.unwrap().unwrap_err();
    assert_eq!(broken.seq, 3, "{broken}");
    raw.close().await.unwrap();
}

/// 50 tasks over two stores on the same database (two writer tasks, as two server processes
/// would be) append to two tenants; each tenant gets one gap-free chain that verifies.
async fn audit_chain_concurrent_writers(db: &Db) {
    use mandate_core::audit::chain::verify_stored;
    let other = Arc::new(SqlStore::connect(&db.url()).await.expect("second store"));
    const TASKS: usize = 50;
    const PER_TASK: usize = 10;
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let store = if t % 2 == 0 {
            db.store.clone()
        } else {
            other.clone()
        };
        handles.push(tokio::spawn(async move {
            for i in 0..PER_TASK {
                let tenant = if (t + i) % 3 == 0 { "t2" } else { "t1" };
                store
                    .record(&chain_event(tenant, t * PER_TASK + i))
                    .await
                    .unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    other.close().await;
    let s = db.s();
    let mut total = 0;
    let mut seen = std::collections::HashSet::new();
    for tenant in ["t1", "t2"] {
        let report = verify_stored(s, tenant, None, 97).await.unwrap().unwrap();
        let records = s
            .audit_chain(tenant, (i64::MIN, i64::MIN), 10_000)
            .await
            .unwrap();
        assert_eq!(report.records as usize, records.len());
        let seqs: Vec<i64> = records.iter().map(|r| r.seq).collect();
        assert_eq!(
            seqs,
            (1..=records.len() as i64).collect::<Vec<_>>(),
            "{tenant}"
        );
        for r in &records {
            assert!(seen.insert(r.event.as_ref().unwrap().request_id.clone().unwrap()));
        }
        total += records.len();
    }
    assert_eq!(
        total,
        TASKS * PER_TASK,
        "every acknowledged event is stored once"
    );
}

/// An event for the query tests.
fn query_event(kind: EventKind, actor: Principal, subject: Option<&str>, n: i64) -> AuditEvent {
    AuditEvent {
        subject: subject.map(|id| Principal::User { id: id.into() }),
        kind,
        actor,
        ..chain_event("t1", n as usize)
    }
}

/// Every filter returns exactly the matching records; an agent's action for a user is told
/// apart from the user's own; cursors page without gaps or repeats.
async fn audit_query(db: &Db) {
    let s = db.s();
    let user = |id: &str| Principal::User { id: id.into() };
    let agent = |id: &str| Principal::Agent { id: id.into() };
    let mut direct = query_event(EventKind::LoginSucceeded, user("u1"), Some("u1"), 0);
    direct.time = NOW;
    let mut by_agent = query_event(EventKind::TokenIssued, agent("a1"), Some("u1"), 1);
    by_agent.act_chain = vec![agent("a1")];
    by_agent.mandate_id = Some("m1".into());
    by_agent.time = NOW + 10;
    let mut sub_agent = query_event(EventKind::TokenIssued, agent("a2"), Some("u1"), 2);
    sub_agent.act_chain = vec![agent("a2"), agent("a1")];
    sub_agent.mandate_id = Some("m1".into());
    sub_agent.time = NOW + 20;
    let mut other_user = query_event(EventKind::TokenIssued, user("u2"), Some("u2"), 3);
    other_user.time = NOW + 30;
    // An agent id that differs only in case, and one that is a prefix: neither matches a1.
    let mut lookalike = query_event(EventKind::TokenIssued, agent("A1"), Some("u2"), 4);
    lookalike.act_chain = vec![agent("A1"), agent("a10")];
    lookalike.time = NOW + 40;
    let all = [&direct, &by_agent, &sub_agent, &other_user, &lookalike];
    for e in all {
        s.record(e).await.unwrap();
    }
    s.record(&chain_event("t2", 9)).await.unwrap();
    let run = |q: AuditQuery| async move {
        s.audit_query("t1", &AuditQuery { limit: 100, ..q })
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.seq)
            .collect::<Vec<i64>>()
    };
    assert_eq!(
        run(AuditQuery::default()).await,
        vec![5, 4, 3, 2, 1],
        "newest first"
    );
    assert_eq!(
        run(AuditQuery {
            ascending: true,
            ..Default::default()
        })
        .await,
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(
        run(AuditQuery {
            actor: Some("u1".into()),
            ..Default::default()
        })
        .await,
        vec![1]
    );
    assert_eq!(
        run(AuditQuery {
            subject: Some("u1".into()),
            ..Default::default()
        })
        .await,
        vec![3, 2, 1]
    );
    assert_eq!(
        run(AuditQuery {
            agent: Some("a1".into()),
            ..Default::default()
        })
        .await,
        vec![3, 2],
        "an agent anywhere in the chain, case-sensitive, whole id"
    );
    assert_eq!(
        run(AuditQuery {
            agent: Some("a2".into()),
            ..Default::default()
        })
        .await,
        vec![3]
    );
    assert_eq!(
        run(AuditQuery {
            mandate: Some("m1".into()),
            ..Default::default()
        })
        .await,
        vec![3, 2]
    );
    assert_eq!(
        run(AuditQuery {
            kinds: vec![EventKind::LoginSucceeded, EventKind::TokenRevoked],
            ..Default::default()
        })
        .await,
        vec![1]
    );
    assert_eq!(
        run(AuditQuery {
            since: Some(NOW + 10),
            until: Some(NOW + 30),
            ..Default::default()
        })
        .await,
        vec![3, 2],
        "since inclusive, until exclusive"
    );
    // The user's own action vs the agent's action for that user.
    assert_eq!(
        run(AuditQuery {
            subject: Some("u1".into()),
            actor: Some("u1".into()),
            ..Default::default()
        })
        .await,
        vec![1]
    );
    // Paging.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = s
            .audit_query(
                "t1",
                &AuditQuery {
                    limit: 2,
                    cursor,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        cursor = page.last().map(|r| r.seq);
        seen.extend(page.iter().map(|r| r.seq));
    }
    assert_eq!(seen, vec![5, 4, 3, 2, 1]);
    let back = s
        .audit_query(
            "t1",
            &AuditQuery {
                ascending: true,
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    for (r, e) in back.iter().zip(all) {
        assert_eq!(&r.event, e);
    }
    // Tenants are apart.
    assert_eq!(
        s.audit_query(
            "t2",
            &AuditQuery {
                limit: 100,
                ..Default::default()
            }
        )
        .await
        .unwrap()
        .len(),
        1
    );
}

/// Erasing a user deletes their account, sessions, consents and tokens, and the personal data
/// of their audit records (by id, username and e-mail), keeps everyone else's, and the chain
/// still verifies.
async fn audit_erasure(db: &Db) {
    use mandate_core::audit::chain::verify_stored;
    let s = db.s();
    make_tenant(s, "t1").await;
    let ada = user("t1", "u1", "ada");
    s.create_user(&ada).await.unwrap();
    s.create_user(&user("t1", "u2", "bob")).await.unwrap();
    s.create_session(&session("t1", b"s1", NOW + 600))
        .await
        .unwrap();
    s.create_grant(&grant("t1", "g1", Some("sid-1")))
        .await
        .unwrap();
    let personal = |ip: &str, username: Option<&str>, email: Option<&str>| Personal {
        ip: Some(ip.into()),
        user_agent: Some("Firefox".into()),
        username: username.map(Into::into),
        email: email.map(Into::into),
    };
    let u = |id: &str| Principal::User { id: id.into() };
    let mut login = query_event(EventKind::LoginSucceeded, u("u1"), Some("u1"), 0);
    login.personal = personal("192.0.2.1", Some("ada"), None);
    let mut failed = query_event(EventKind::LoginFailed, Principal::Anonymous, None, 1);
    failed.personal = personal("192.0.2.2", Some("ada"), None);
    let mut admin = query_event(
        EventKind::UserCreated,
        Principal::Admin { id: "cli".into() },
        Some("u1"),
        2,
    );
    admin.personal = personal("192.0.2.3", Some("ada"), Some("ada@example.com"));
    let mut bob = query_event(EventKind::LoginSucceeded, u("u2"), Some("u2"), 3);
    bob.personal = personal("198.51.100.7", Some("bob"), None);
    for e in [&login, &failed, &admin, &bob] {
        s.record(e).await.unwrap();
    }
    assert!(s.erase_user("t1", &ada, NOW + 5).await.unwrap());
    assert_eq!(s.user("t1", "u1").await.unwrap(), None);
    assert!(s.user("t1", "u2").await.unwrap().is_some());
    assert_eq!(s.session("t1", b"s1").await.unwrap(), None);
    assert_eq!(
        s.grant("t1", "g1").await.unwrap().unwrap().revoked_at,
        Some(NOW + 5)
    );
    let back = s
        .audit_query(
            "t1",
            &AuditQuery {
                ascending: true,
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(back.len(), 4, "the records stay");
    for r in &back[..3] {
        assert_eq!(r.event.personal, Personal::default(), "seq {}", r.seq);
    }
    assert_eq!(
        back[3].event.personal, bob.personal,
        "other people's data stays"
    );
    assert_eq!(back[0].event.kind, EventKind::LoginSucceeded);
    let report = verify_stored(s, "t1", None, 2).await.unwrap().unwrap();
    assert_eq!(report.records, 4);
    let mut raw = db.raw().await;
    let left: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM audit_events WHERE tenant_id = $1 AND salt IS NOT NULL",
    )
    .bind("t1")
    .fetch_one(&mut raw)
    .await
    .unwrap()
    .get("n");
    assert_eq!(left, 1);
    raw.close().await.unwrap();
    // Erasing again finds nobody.
    assert!(!s.erase_user("t1", &ada, NOW + 6).await.unwrap());
}

/// Agents and mandates round-trip; status changes, revocation selectors and the one-query
/// liveness check of a delegated token behave on both backends.
async fn agents_and_mandates(db: &Db) {
    use mandate_core::domain::agents::{Agent, AgentStatus, Mandate, MandateOrigin};
    let s = db.s();
    make_tenant(s, "t1").await;
    let agent = |id: &str| Agent {
        tenant_id: "t1".into(),
        id: id.into(),
        name: format!("Agent {id}"),
        owner_user_id: Some("u1".into()),
        provider: Some("Acme".into()),
        model: None,
        version: Some("1".into()),
        scope_ceiling: Scope::parse("calendar.read calendar.write").unwrap(),
        require_dpop: id == "a2",
        status: AgentStatus::Active,
        status_reason: None,
        created_at: NOW,
        updated_at: NOW,
    };
    for id in ["a1", "a2"] {
        s.create_agent(&agent(id)).await.unwrap();
    }
    for (id, name) in [("u1", "ursula"), ("u2", "umberto")] {
        s.create_user(&user("t1", id, name)).await.unwrap();
    }
    assert!(is_conflict(s.create_agent(&agent("a1")).await));
    assert_eq!(s.agent("t1", "a2").await.unwrap(), Some(agent("a2")));
    assert_eq!(s.list_agents("t1").await.unwrap().len(), 2);
    let mandate = |id: &str, user: &str, agent: &str, expires_at: i64| Mandate {
        tenant_id: "t1".into(),
        id: id.into(),
        user_id: user.into(),
        agent_id: agent.into(),
        scope: Scope::parse("calendar.read").unwrap(),
        authorization_details: vec![json!({"type": "calendar", "actions": ["read"]})],
        resources: vec!["https://cal.example".into()],
        expires_at,
        max_token_lifetime: 300,
        max_delegation_depth: 1,
        approval_required: vec!["delete".into()],
        origin: MandateOrigin::Api,
        created_at: NOW,
        revoked_at: None,
        allow_refresh: true,
    };
    s.create_mandate(&mandate("m1", "u1", "a1", NOW + 3600))
        .await
        .unwrap();
    s.create_mandate(&mandate("m2", "u1", "a2", NOW + 3600))
        .await
        .unwrap();
    s.create_mandate(&mandate("m3", "u2", "a1", NOW + 10))
        .await
        .unwrap();
    assert_eq!(
        s.mandate("t1", "m1").await.unwrap(),
        Some(mandate("m1", "u1", "a1", NOW + 3600))
    );
    // A mandate whose person no longer exists is not in force.
    s.create_mandate(&mandate("m-ghost", "ghost", "a1", NOW + 3600))
        .await
        .unwrap();
    assert!(in_force(s, "ghost", "a1", NOW).await.unwrap().is_empty());
    let active = in_force(s, "u1", "a1", NOW).await.unwrap();
    assert_eq!(
        active.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        vec!["m1"]
    );
    assert!(
        in_force(s, "u2", "a1", NOW + 10).await.unwrap().is_empty(),
        "expired"
    );
    assert_eq!(s.user_mandates("t1", "u1").await.unwrap().len(), 2);
    let chain = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // Liveness: all in force; unknown mandate; expired mandate; suspended agent.
    assert!(
        !s.delegation_inactive("t1", &chain(&["a1"]), Some("m1"), NOW)
            .await
            .unwrap()
    );
    assert!(
        !s.delegation_inactive("t1", &chain(&["a2", "a1"]), Some("m1"), NOW)
            .await
            .unwrap()
    );
    assert!(
        s.delegation_inactive("t1", &chain(&["a1"]), Some("nope"), NOW)
            .await
            .unwrap()
    );
    // The same in one query with the token's own revocation.
    for (agents, m, want) in [
        (chain(&["a1"]), Some("m1"), false),
        (chain(&["a2", "a1"]), Some("m1"), false),
        (chain(&["a1"]), Some("nope"), true),
        (vec![], None, false),
    ] {
        assert_eq!(
            s.access_token_inactive("t1", "jti-live", &agents, m, NOW)
                .await
                .unwrap(),
            want,
            "{agents:?} {m:?}"
        );
    }
    // The exchange's one lookup: liveness plus the mandates that could cover it.
    let lookup = |agents: &'static [&'static str], subject_mandate| {
        (
            agents.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            subject_mandate,
        )
    };
    for ((agents, sm), want_dead, want) in [
        (lookup(&["a1"], None), false, vec!["m1"]),
        (lookup(&["a1"], Some("m1")), false, vec!["m1"]),
        (lookup(&["a1"], Some("nope")), true, vec![]),
    ] {
        let (dead, found) = s
            .exchange_context(
                "t1",
                ExchangeLookup {
                    jti: "jti-live",
                    agents: &agents,
                    subject_mandate: sm,
                    user_id: "u1",
                    agent_id: "a1",
                },
                NOW,
            )
            .await
            .unwrap();
        let ids: Vec<&str> = found.iter().map(|m| m.id.as_str()).collect();
        assert_eq!((dead, ids), (want_dead, want), "{agents:?} {sm:?}");
    }
    let (_, none) = s
        .exchange_context(
            "t1",
            ExchangeLookup {
                jti: "jti-live",
                agents: &[],
                subject_mandate: None,
                user_id: "ghost",
                agent_id: "a1",
            },
            NOW,
        )
        .await
        .unwrap();
    assert!(
        none.is_empty(),
        "no mandates for a person who does not exist"
    );
    s.revoke_access_token("t1", "jti-dead", NOW + 300)
        .await
        .unwrap();
    assert!(
        s.access_token_inactive("t1", "jti-dead", &chain(&["a1"]), Some("m1"), NOW)
            .await
            .unwrap()
    );
    assert!(
        s.access_token_inactive("t1", "jti-dead", &[], None, NOW)
            .await
            .unwrap()
    );
    assert!(
        s.delegation_inactive("t1", &chain(&["a1"]), Some("m3"), NOW + 10)
            .await
            .unwrap()
    );
    assert!(
        s.set_agent_status("t1", "a2", AgentStatus::Suspended, NOW + 1)
            .await
            .unwrap()
    );
    assert!(
        s.delegation_inactive("t1", &chain(&["a2", "a1"]), Some("m1"), NOW)
            .await
            .unwrap()
    );
    assert!(
        !s.delegation_inactive("t1", &chain(&["a1"]), Some("m1"), NOW)
            .await
            .unwrap()
    );
    assert!(
        s.delegation_inactive("t2", &chain(&["a1"]), Some("m1"), NOW)
            .await
            .unwrap(),
        "tenants apart"
    );
    assert!(
        s.set_agent_status("t1", "a2", AgentStatus::Active, NOW + 2)
            .await
            .unwrap()
    );
    // Revocation selectors revoke only what is still in force, once.
    assert_eq!(
        s.revoke_mandates("t1", MandateSelector::One("m1"), NOW + 5)
            .await
            .unwrap(),
        vec!["m1".to_string()]
    );
    assert!(
        s.revoke_mandates("t1", MandateSelector::One("m1"), NOW + 6)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.delegation_inactive("t1", &chain(&["a1"]), Some("m1"), NOW)
            .await
            .unwrap()
    );
    let mut revoked = s
        .revoke_mandates("t1", MandateSelector::Agent("a1"), NOW + 7)
        .await
        .unwrap();
    revoked.sort();
    assert_eq!(revoked, vec!["m-ghost".to_string(), "m3".to_string()]);
    assert_eq!(
        s.revoke_mandates("t1", MandateSelector::User("u1"), NOW + 8)
            .await
            .unwrap(),
        vec!["m2".to_string()]
    );
    assert_eq!(
        s.mandate("t1", "m1").await.unwrap().unwrap().revoked_at,
        Some(NOW + 5)
    );
    // Deleted is final.
    assert!(
        s.set_agent_status("t1", "a1", AgentStatus::Deleted, NOW + 9)
            .await
            .unwrap()
    );
    assert!(
        !s.set_agent_status("t1", "a1", AgentStatus::Active, NOW + 10)
            .await
            .unwrap()
    );
    assert!(
        !s.set_agent_status("t1", "zz", AgentStatus::Active, NOW + 10)
            .await
            .unwrap()
    );
}

/// Tuples: atomic batches (a duplicate write or a missing delete changes nothing), a gap-free
/// revision and its change log; model and policy versions; tenants apart.
async fn authz_data(db: &Db) {
    let s = db.s();
    let t = |o: &str, r: &str, u: &str| StoredTuple {
        object: o.into(),
        relation: r.into(),
        user: u.into(),
        condition: None,
    };
    assert_eq!(s.tuple_revision("t1").await.unwrap(), 0);
    let r1 = s
        .write_tuples(
            "t1",
            &[
                t("doc:1", "viewer", "user:a"),
                t("doc:2", "viewer", "user:b"),
            ],
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r1, 1);
    // A batch with one bad part changes nothing.
    let dup = s
        .write_tuples(
            "t1",
            &[
                t("doc:3", "viewer", "user:c"),
                t("doc:1", "viewer", "user:a"),
            ],
            &[],
        )
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(k)) if k == "doc:1#viewer@user:a"));
    let missing = s
        .write_tuples(
            "t1",
            &[t("doc:4", "viewer", "user:d")],
            &[t("doc:9", "viewer", "user:z")],
        )
        .await;
    assert!(matches!(missing, Err(StoreError::Missing(_))));
    assert_eq!(s.tuple_revision("t1").await.unwrap(), 1);
    let r2 = s
        .write_tuples(
            "t1",
            &[t("doc:3", "viewer", "user:c")],
            &[t("doc:2", "viewer", "user:b")],
        )
        .await
        .unwrap();
    assert_eq!(r2, 2);
    let (rev, mut all) = s.tuples_snapshot("t1").await.unwrap();
    all.sort_by(|a, b| a.object.cmp(&b.object));
    assert_eq!(rev, 2);
    assert_eq!(
        all,
        vec![
            t("doc:1", "viewer", "user:a"),
            t("doc:3", "viewer", "user:c")
        ]
    );
    let changes = s.tuple_changes("t1", 1, 100).await.unwrap();
    assert_eq!(changes.len(), 2);
    assert!(changes.iter().all(|c| c.revision == 2));
    assert!(changes[0].delete && changes[0].tuple == t("doc:2", "viewer", "user:b"));
    assert_eq!(s.tuple_changes("t1", 0, 100).await.unwrap().len(), 4);
    assert_eq!(s.tuple_revision("t2").await.unwrap(), 0, "tenants apart");
    // Models and policies are versioned.
    for (i, id) in ["m1", "m2"].iter().enumerate() {
        s.put_model(
            "t1",
            &StoredModel {
                id: id.to_string(),
                model: json!({"n": i}),
                created_at: NOW + i as i64,
            },
        )
        .await
        .unwrap();
    }
    assert_eq!(s.model("t1", None).await.unwrap().unwrap().id, "m2");
    // The last written is the newest, whatever its timestamp (same second, clock skew).
    let (_, before) = s.authz_head("t1").await.unwrap();
    s.put_model(
        "t1",
        &StoredModel {
            id: "a-same-second".into(),
            model: json!({"n": 2}),
            created_at: NOW,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        s.model("t1", None).await.unwrap().unwrap().id,
        "a-same-second"
    );
    assert_eq!(
        s.authz_head("t1").await.unwrap().1,
        before + 1,
        "model writes count"
    );
    assert_eq!(
        s.model("t1", Some("m1")).await.unwrap().unwrap().model,
        json!({"n": 0})
    );
    assert_eq!(s.list_models("t1").await.unwrap().len(), 3);
    assert!(s.model("t2", None).await.unwrap().is_none());
    assert_eq!(
        s.put_policy("t1", "permit(principal, action, resource);", None, NOW)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.put_policy(
            "t1",
            "forbid(principal, action, resource);",
            Some("schema"),
            NOW
        )
        .await
        .unwrap(),
        2
    );
    let p = s.policy("t1").await.unwrap().unwrap();
    assert_eq!((p.version, p.schema.as_deref()), (2, Some("schema")));
    assert!(s.policy("t2").await.unwrap().is_none());
}

async fn purge(db: &Db) {
    let s = db.s();
    make_tenant(s, "t1").await;
    s.create_grant(&grant("t1", "g1", None)).await.unwrap();

    // Codes: long expired (gone), recently expired (kept for reuse detection), live.
    s.insert_code(&code("t1", b"old-code", "g1", NOW - 3601))
        .await
        .unwrap();
    s.insert_code(&code("t1", b"used-old-code", "g1", NOW - 7200))
        .await
        .unwrap();
    s.consume_code("t1", b"used-old-code", NOW - 7250)
        .await
        .unwrap();
    s.insert_code(&code("t1", b"recent-code", "g1", NOW - 60))
        .await
        .unwrap();
    s.insert_code(&code("t1", b"live-code", "g1", NOW + 60))
        .await
        .unwrap();
    // Sessions.
    s.create_session(&session("t1", b"old-sess", NOW - 1))
        .await
        .unwrap();
    s.create_session(&session("t1", b"live-sess", NOW + 60))
        .await
        .unwrap();
    // Replay entries.
    assert!(s.first_use("t1", "old-jti", NOW - 1).await.unwrap());
    assert!(s.first_use("t1", "live-jti", NOW + 60).await.unwrap());
    // Revoked access tokens.
    s.revoke_access_token("t1", "old-at", NOW - 1)
        .await
        .unwrap();
    s.revoke_access_token("t1", "live-at", NOW + 60)
        .await
        .unwrap();
    // Access token → grant records.
    s.record_access_token("t1", "old-rec", "g1", NOW - 1)
        .await
        .unwrap();
    s.record_access_token("t1", "live-rec", "g1", NOW + 60)
        .await
        .unwrap();
    // An expired refresh token goes; its grant stays while codes still refer to it.
    let mut rt = refresh_token("t1", b"rt", "g1");
    rt.expires_at = NOW - 10_000;
    s.insert_refresh(&rt).await.unwrap();

    assert_eq!(s.purge_expired(NOW).await.unwrap(), 2 + 1 + 1 + 1 + 1 + 1);
    assert_eq!(s.purge_expired(NOW).await.unwrap(), 0);

    assert_eq!(s.code("t1", b"old-code").await.unwrap(), None);
    assert_eq!(s.code("t1", b"used-old-code").await.unwrap(), None);
    assert!(s.code("t1", b"recent-code").await.unwrap().is_some());
    assert!(s.code("t1", b"live-code").await.unwrap().is_some());
    assert_eq!(s.session("t1", b"old-sess").await.unwrap(), None);
    assert!(s.session("t1", b"live-sess").await.unwrap().is_some());
    assert!(s.first_use("t1", "old-jti", NOW + 60).await.unwrap());
    assert!(!s.first_use("t1", "live-jti", NOW + 60).await.unwrap());
    assert!(!s.access_token_revoked("t1", "old-at").await.unwrap());
    assert!(s.access_token_revoked("t1", "live-at").await.unwrap());
    assert_eq!(s.refresh("t1", b"rt").await.unwrap(), None);
    assert!(s.grant("t1", "g1").await.unwrap().is_some());

    // The grant link of the purged record is gone; the live one still follows the grant.
    s.revoke_grant("t1", "g1", NOW).await.unwrap();
    assert!(!s.access_token_revoked("t1", "old-rec").await.unwrap());
    assert!(s.access_token_revoked("t1", "live-rec").await.unwrap());

    // An hour later the recent code goes too, with everything that expired at NOW + 60:
    // the live session, both replay entries (old-jti was recorded again), the revoked access
    // token and the access token record. The live code is still in its reuse window.
    assert_eq!(
        s.purge_expired(NOW + 3600).await.unwrap(),
        1 + 1 + 2 + 1 + 1
    );
    assert!(s.code("t1", b"live-code").await.unwrap().is_some());
    assert_eq!(s.code("t1", b"recent-code").await.unwrap(), None);

    // Once the last code has left its reuse window, nothing refers to the grant: it goes too.
    assert_eq!(s.purge_expired(NOW + 7300).await.unwrap(), 1 + 1);
    assert_eq!(s.grant("t1", "g1").await.unwrap(), None);
}

async fn reopen(db: &Db) {
    let s = db.s();
    make_tenant(s, "t1").await;
    // A second store on the same database finds the data and re-runs no migration.
    let again = SqlStore::connect(&db.url()).await.unwrap();
    assert_eq!(again.backend(), s.backend());
    assert_eq!(
        again.tenant_by_name("name-t1").await.unwrap().unwrap().id,
        "t1"
    );
    make_tenant(&again, "t2").await;
    assert_eq!(s.list_tenants().await.unwrap().len(), 2);
    again.close().await;

    let mut raw = db.raw().await;
    let migrations: i64 = sqlx::query("SELECT COUNT(*) AS n FROM _sqlx_migrations")
        .fetch_one(&mut raw)
        .await
        .unwrap()
        .get("n");
    // As many as there are files (counted, so that a branch adding one need not edit this).
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
        })
        .count() as i64;
    assert_eq!(migrations, files, "every migration applied exactly once");
    if s.backend() == Backend::Sqlite {
        let mode: String = sqlx::query("PRAGMA journal_mode")
            .fetch_one(&mut raw)
            .await
            .unwrap()
            .get(0);
        assert_eq!(mode, "wal");
    }
    raw.close().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Connection handling that needs no fixture database.

#[tokio::test]
async fn rejects_unknown_schemes_and_bad_schema_names() {
    assert!(matches!(
        SqlStore::connect("mysql://localhost/db").await,
        Err(StoreError::Backend(_))
    ));
    assert!(matches!(
        SqlStore::connect(&format!("{}?schema=bad;name", postgres_url())).await,
        Err(StoreError::Backend(_))
    ));
}

#[tokio::test]
async fn sqlite_url_creates_the_file_with_wal() {
    let dir = std::env::temp_dir().join(format!("mandate-store-url-{}", unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("via url.db");
    let store = SqlStore::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    assert!(file.exists());
    make_tenant(&store, "t1").await;
    store.close().await;
    let mut raw = AnyConnection::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    let mode: String = sqlx::query("PRAGMA journal_mode")
        .fetch_one(&mut raw)
        .await
        .unwrap()
        .get(0);
    assert_eq!(mode, "wal");
    raw.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

fn ciba_request(tenant_id: &str, id: &str, expires_at: i64) -> mandate_core::ciba::CibaRequest {
    use mandate_core::ciba::{CibaRequest, CibaStatus};
    CibaRequest {
        tenant_id: tenant_id.into(),
        id: id.into(),
        digest: format!("digest-{id}").into_bytes(),
        client_id: "agent1".into(),
        user_id: "u1".into(),
        scope: Scope::parse("openid calendar.read").unwrap(),
        authorization_details: vec![json!({"type": "calendar", "actions": ["read"]})],
        resources: vec!["https://calendar.example".into()],
        binding_message: Some("code 4711".into()),
        notification_token: Some("nt".into()),
        ping_auth_req_id: Some(format!("areq-{id}")),
        status: CibaStatus::Pending,
        interval: 5,
        last_polled_at: None,
        expires_at,
        created_at: NOW,
        decided_at: None,
        approval: None,
    }
}

/// CIBA registrations and requests: round trips, polling intervals, and decisions and
/// redemptions that only one of many concurrent callers wins.
async fn ciba_requests(db: &Db) {
    use mandate_core::ciba::{CibaApproval, CibaRegistration, CibaStatus, DeliveryMode};
    let s = db.s();
    make_tenant(s, "t1").await;
    make_tenant(s, "t2").await;
    let reg = CibaRegistration {
        tenant_id: "t1".into(),
        client_id: "agent1".into(),
        mode: DeliveryMode::Ping,
        notification_endpoint: Some("https://agent.example/cb".into()),
    };
    s.put_ciba_registration(&reg).await.unwrap();
    assert_eq!(
        s.ciba_registration("t1", "agent1").await.unwrap(),
        Some(reg)
    );
    let poll_reg = CibaRegistration {
        tenant_id: "t1".into(),
        client_id: "agent1".into(),
        mode: DeliveryMode::Poll,
        notification_endpoint: None,
    };
    s.put_ciba_registration(&poll_reg).await.unwrap();
    assert_eq!(
        s.ciba_registration("t1", "agent1").await.unwrap(),
        Some(poll_reg)
    );
    assert_eq!(s.ciba_registration("t2", "agent1").await.unwrap(), None);

    let r = ciba_request("t1", "r1", NOW + 300);
    s.insert_ciba_request(&r).await.unwrap();
    assert!(is_conflict(s.insert_ciba_request(&r).await));
    s.insert_ciba_request(&ciba_request("t1", "old", NOW - 1))
        .await
        .unwrap();
    assert_eq!(s.ciba_request("t1", "r1").await.unwrap(), Some(r.clone()));
    assert_eq!(
        s.ciba_request_by_digest("t1", b"digest-r1").await.unwrap(),
        Some(r.clone())
    );
    assert_eq!(s.ciba_request("t2", "r1").await.unwrap(), None);
    let pending = s.pending_ciba_requests("t1", "u1", NOW).await.unwrap();
    assert_eq!(
        pending.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        ["r1"]
    );

    // Polling: in time, too early (interval grows by the step), in time again.
    assert!(s.poll_ciba_request("t1", "r1", NOW, 5).await.unwrap());
    assert!(!s.poll_ciba_request("t1", "r1", NOW + 4, 5).await.unwrap());
    let got = s.ciba_request("t1", "r1").await.unwrap().unwrap();
    assert_eq!((got.interval, got.last_polled_at), (10, Some(NOW + 4)));
    assert!(!s.poll_ciba_request("t1", "r1", NOW + 13, 5).await.unwrap());
    assert!(s.poll_ciba_request("t1", "r1", NOW + 28, 5).await.unwrap());

    // An expired request cannot be decided.
    let approval = CibaApproval {
        mandate_id: "m1".into(),
        auth_time: NOW - 10,
        acr: "urn:mandate:acr:pwd".into(),
        amr: vec!["pwd".into()],
    };
    assert!(
        !s.decide_ciba_request("t1", "old", Some(&approval), NOW)
            .await
            .unwrap()
    );
    // Nothing to consume before approval.
    assert!(!s.consume_ciba_request("t1", "r1", NOW).await.unwrap());

    // Twenty concurrent decisions: one wins.
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = db.store.clone();
            let a = approval.clone();
            tokio::spawn(async move {
                let a = (i % 2 == 0).then_some(a);
                store
                    .decide_ciba_request("t1", "r1", a.as_ref(), NOW + 30)
                    .await
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap().unwrap());
    }
    assert_eq!(won, 1);
    assert!(
        s.pending_ciba_requests("t1", "u1", NOW)
            .await
            .unwrap()
            .is_empty()
    );
    let got = s.ciba_request("t1", "r1").await.unwrap().unwrap();
    assert_eq!(got.decided_at, Some(NOW + 30));
    match got.status {
        CibaStatus::Approved => assert_eq!(got.approval, Some(approval.clone())),
        CibaStatus::Denied => assert_eq!(got.approval, None),
        other => panic!("unexpected {other:?}"),
    }

    // A fresh request approved, then redeemed by twenty concurrent callers: one wins, and the
    // auth_req_id kept for the ping is gone.
    s.insert_ciba_request(&ciba_request("t1", "r2", NOW + 300))
        .await
        .unwrap();
    assert!(
        s.decide_ciba_request("t1", "r2", Some(&approval), NOW)
            .await
            .unwrap()
    );
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = db.store.clone();
            tokio::spawn(async move { store.consume_ciba_request("t1", "r2", NOW + 1).await })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap().unwrap());
    }
    assert_eq!(won, 1);
    let got = s.ciba_request("t1", "r2").await.unwrap().unwrap();
    assert_eq!(got.status, CibaStatus::Consumed);
    assert_eq!(got.ping_auth_req_id, None);
    s.clear_ciba_ping("t1", "r1").await.unwrap();
    assert_eq!(
        s.ciba_request("t1", "r1")
            .await
            .unwrap()
            .unwrap()
            .ping_auth_req_id,
        None
    );
}

/// A column as both databases can describe it: its name, a coarse type, and whether it may
/// be NULL (a primary-key column never may).
type Column = (String, &'static str, bool);

/// The schema after migrating: table → columns, and the names of explicitly created indexes.
type Schema = (
    std::collections::BTreeMap<String, std::collections::BTreeSet<Column>>,
    std::collections::BTreeSet<String>,
);

/// The coarse type of a declared SQL type (what the application relies on).
fn type_class(declared: &str) -> &'static str {
    let t = declared.to_ascii_lowercase();
    if t.contains("int") {
        "integer"
    } else if t.contains("char") || t.contains("text") {
        "text"
    } else if t.contains("blob") || t.contains("bytea") {
        "bytes"
    } else if t.contains("real") || t.contains("double") || t.contains("float") {
        "real"
    } else if t.contains("bool") {
        "boolean"
    } else {
        "other"
    }
}

async fn schema_of(db: &Db) -> Schema {
    use std::collections::{BTreeMap, BTreeSet};
    let mut conn = db.raw().await;
    let mut tables: BTreeMap<String, BTreeSet<Column>> = BTreeMap::new();
    let mut indexes = BTreeSet::new();
    if db.schema.is_none() {
        let names: Vec<String> = sqlx::query(
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect();
        for name in names {
            let rows = sqlx::query("SELECT name, type, \"notnull\", pk FROM pragma_table_info($1)")
                .bind(&name)
                .fetch_all(&mut conn)
                .await
                .unwrap();
            let cols = rows
                .iter()
                .map(|r| {
                    let not_null = r.get::<i64, _>(2) != 0 || r.get::<i64, _>(3) != 0;
                    (
                        r.get::<String, _>(0),
                        type_class(&r.get::<String, _>(1)),
                        !not_null,
                    )
                })
                .collect();
            tables.insert(name, cols);
        }
        for r in
            sqlx::query("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
                .fetch_all(&mut conn)
                .await
                .unwrap()
        {
            indexes.insert(r.get::<String, _>(0));
        }
    } else {
        let schema = db.schema.clone().unwrap();
        for r in sqlx::query(
            "SELECT c.table_name::text, c.column_name::text, c.data_type::text, \
             c.is_nullable::text FROM information_schema.columns c \
             JOIN information_schema.tables t ON t.table_schema = c.table_schema \
             AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE' \
             WHERE c.table_schema = $1 AND c.table_name <> '_sqlx_migrations'",
        )
        .bind(&schema)
        .fetch_all(&mut conn)
        .await
        .unwrap()
        {
            tables.entry(r.get::<String, _>(0)).or_default().insert((
                r.get::<String, _>(1),
                type_class(&r.get::<String, _>(2)),
                r.get::<String, _>(3) == "YES",
            ));
        }
        // Indexes created by CREATE INDEX, not those behind primary keys and constraints.
        for r in sqlx::query(
            "SELECT i.indexname::text FROM pg_indexes i WHERE i.schemaname = $1 \
             AND NOT EXISTS (SELECT 1 FROM pg_constraint k JOIN pg_namespace n \
             ON n.oid = k.connamespace WHERE n.nspname = i.schemaname \
             AND k.conname = i.indexname)",
        )
        .bind(&schema)
        .fetch_all(&mut conn)
        .await
        .unwrap()
        {
            indexes.insert(r.get::<String, _>(0));
        }
    }
    (tables, indexes)
}

/// The two migration folders define the same schema: the same tables, each with the same
/// columns (name, coarse type, nullability), and the same explicitly created indexes.
#[tokio::test]
async fn migrations_define_the_same_schema() {
    let (lite, pg) = (Db::sqlite().await, Db::postgres().await);
    let (a, b) = (schema_of(&lite).await, schema_of(&pg).await);
    lite.finish().await;
    pg.finish().await;
    let names = |s: &Schema| s.0.keys().cloned().collect::<Vec<_>>();
    eprintln!(
        "{} tables, {} columns, {} indexes",
        a.0.len(),
        a.0.values().map(|c| c.len()).sum::<usize>(),
        a.1.len()
    );
    // What is compared was read: every table of the store and its indexes.
    assert!(a.0.contains_key("audit_events") && a.0.contains_key("login_throttle"));
    assert!(a.0.values().all(|c| !c.is_empty()) && !a.1.is_empty());
    assert_eq!(names(&a), names(&b), "tables differ (SQLite, PostgreSQL)");
    for (table, cols) in &a.0 {
        let other = &b.0[table];
        let only_lite: Vec<_> = cols.difference(other).collect();
        let only_pg: Vec<_> = other.difference(cols).collect();
        assert!(
            only_lite.is_empty() && only_pg.is_empty(),
            "table {table}: only in SQLite {only_lite:?}, only in PostgreSQL {only_pg:?}"
        );
    }
    let only_lite: Vec<_> = a.1.difference(&b.1).collect();
    let only_pg: Vec<_> = b.1.difference(&a.1).collect();
    assert!(
        only_lite.is_empty() && only_pg.is_empty(),
        "indexes: only in SQLite {only_lite:?}, only in PostgreSQL {only_pg:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Second factors

fn pending_totp(tenant_id: &str, user_id: &str, secret: &[u8]) -> TotpCredential {
    TotpCredential {
        tenant_id: tenant_id.into(),
        user_id: user_id.into(),
        secret: secret.to_vec(),
        created_at: NOW,
        confirmed_at: None,
        pending_until: Some(NOW + 900),
        last_step: 0,
    }
}

async fn second_factors(db: &Db) {
    let s = db.s();
    make_tenant(s, "t1").await;
    make_tenant(s, "t2").await;
    let ada = user("t1", "u1", "ada");
    s.create_user(&ada).await.unwrap();
    // Pending: replaced by a new enrolment; nothing to spend yet.
    assert!(
        s.put_pending_totp(&pending_totp("t1", "u1", &[1, 2, 3]))
            .await
            .unwrap()
    );
    let again = pending_totp("t1", "u1", &[4, 5, 0, 255]);
    assert!(s.put_pending_totp(&again).await.unwrap());
    assert_eq!(s.totp("t1", "u1").await.unwrap().unwrap(), again);
    assert_eq!(s.totp("t2", "u1").await.unwrap(), None, "tenant isolation");
    assert!(!s.spend_totp_step("t1", "u1", 5).await.unwrap());
    // Confirmed once, while pending.
    assert!(!s.confirm_totp("t1", "u1", 10, NOW + 900).await.unwrap());
    assert!(s.confirm_totp("t1", "u1", 10, NOW + 1).await.unwrap());
    assert!(!s.confirm_totp("t1", "u1", 11, NOW + 2).await.unwrap());
    assert!(
        !s.put_pending_totp(&pending_totp("t1", "u1", &[9]))
            .await
            .unwrap()
    );
    let enrolled = s.totp("t1", "u1").await.unwrap().unwrap();
    assert_eq!(enrolled.secret, vec![4, 5, 0, 255]);
    assert_eq!(enrolled.confirmed_at, Some(NOW + 1));
    assert_eq!(enrolled.pending_until, None);
    assert_eq!(enrolled.last_step, 10);
    // A step is accepted once, and never an earlier one.
    assert!(!s.spend_totp_step("t1", "u1", 10).await.unwrap());
    assert!(!s.spend_totp_step("t1", "u1", 9).await.unwrap());
    assert!(s.spend_totp_step("t1", "u1", 12).await.unwrap());
    assert!(!s.spend_totp_step("t1", "u1", 11).await.unwrap());
    assert!(!s.spend_totp_step("t2", "u1", 13).await.unwrap());

    // Recovery codes: each spent once; a new set replaces the old.
    let d = |b: u8| vec![b; 32];
    s.replace_recovery_codes("t1", "u1", &[d(1), d(2), d(3)], NOW)
        .await
        .unwrap();
    assert_eq!(s.recovery_codes_left("t1", "u1").await.unwrap(), 3);
    assert!(s.spend_recovery_code("t1", "u1", &d(2)).await.unwrap());
    assert!(!s.spend_recovery_code("t1", "u1", &d(2)).await.unwrap());
    assert!(!s.spend_recovery_code("t2", "u1", &d(1)).await.unwrap());
    assert_eq!(s.recovery_codes_left("t1", "u1").await.unwrap(), 2);
    s.replace_recovery_codes("t1", "u1", &[d(9)], NOW)
        .await
        .unwrap();
    assert!(!s.spend_recovery_code("t1", "u1", &d(1)).await.unwrap());
    assert_eq!(s.recovery_codes_left("t1", "u1").await.unwrap(), 1);

    // Removal takes both; a second removal finds nothing.
    assert!(s.remove_totp("t1", "u1").await.unwrap());
    assert_eq!(s.totp("t1", "u1").await.unwrap(), None);
    assert_eq!(s.recovery_codes_left("t1", "u1").await.unwrap(), 0);
    assert!(!s.remove_totp("t1", "u1").await.unwrap());
    // A pending enrolment alone is no second factor to remove.
    assert!(
        s.put_pending_totp(&pending_totp("t1", "u1", &[1]))
            .await
            .unwrap()
    );
    assert!(!s.remove_totp("t1", "u1").await.unwrap());
    assert_eq!(s.totp("t1", "u1").await.unwrap(), None);

    // An unconfirmed enrolment is purged once it lapses; an enrolled one never.
    s.create_user(&user("t1", "u2", "bob")).await.unwrap();
    assert!(
        s.put_pending_totp(&pending_totp("t1", "u1", &[1]))
            .await
            .unwrap()
    );
    assert!(
        s.put_pending_totp(&pending_totp("t1", "u2", &[2]))
            .await
            .unwrap()
    );
    assert!(s.confirm_totp("t1", "u2", 1, NOW).await.unwrap());
    s.purge_expired(NOW + 901).await.unwrap();
    assert_eq!(s.totp("t1", "u1").await.unwrap(), None);
    assert!(s.totp("t1", "u2").await.unwrap().is_some());

    // Erasing a person erases both.
    s.replace_recovery_codes("t1", "u2", &[d(1)], NOW)
        .await
        .unwrap();
    assert!(
        s.erase_user("t1", &user("t1", "u2", "bob"), NOW)
            .await
            .unwrap()
    );
    assert_eq!(s.totp("t1", "u2").await.unwrap(), None);
    assert_eq!(s.recovery_codes_left("t1", "u2").await.unwrap(), 0);
}

async fn concurrent_totp_step(db: &Db) {
    let s = db.s();
    make_tenant(s, "t1").await;
    s.create_user(&user("t1", "u1", "ada")).await.unwrap();
    assert!(
        s.put_pending_totp(&pending_totp("t1", "u1", &[1]))
            .await
            .unwrap()
    );
    assert!(s.confirm_totp("t1", "u1", 1, NOW).await.unwrap());
    s.replace_recovery_codes("t1", "u1", &[vec![7; 32]], NOW)
        .await
        .unwrap();
    let steps: Vec<_> = (0..20)
        .map(|_| {
            let store = db.store.clone();
            tokio::spawn(async move { store.spend_totp_step("t1", "u1", 2).await })
        })
        .collect();
    let codes: Vec<_> = (0..20)
        .map(|_| {
            let store = db.store.clone();
            tokio::spawn(async move { store.spend_recovery_code("t1", "u1", &[7; 32]).await })
        })
        .collect();
    let mut accepted = (0, 0);
    for t in steps {
        accepted.0 += usize::from(t.await.unwrap().unwrap());
    }
    for t in codes {
        accepted.1 += usize::from(t.await.unwrap().unwrap());
    }
    assert_eq!(accepted, (1, 1), "a code is accepted once, whoever asks");
}

async fn passkeys(db: &Db) {
    use mandate_core::login::webauthn::store::{Ceremony, CeremonyKind, StoredPasskey};
    let s = db.s();
    make_tenant(s, "t1").await;
    make_tenant(s, "t2").await;
    let u = user("t1", "u1", "ann");
    s.create_user(&u).await.unwrap();
    let key = |id: &str, at: i64| StoredPasskey {
        tenant_id: "t1".into(),
        id: id.into(),
        user_id: "u1".into(),
        user_handle: "6f1f0e1a-0000-4000-8000-000000000001".into(),
        name: format!("Key {id}"),
        credential: "{}".into(),
        backup_eligible: true,
        backup_state: false,
        counter: 0,
        created_at: at,
        last_used_at: None,
    };
    s.add_passkey(&key("k2", NOW + 1)).await.unwrap();
    s.add_passkey(&key("k1", NOW)).await.unwrap();
    assert!(is_conflict(s.add_passkey(&key("k1", NOW)).await));
    let list = s.passkeys("t1", "u1").await.unwrap();
    assert_eq!(
        list.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(),
        ["k1", "k2"],
        "oldest first"
    );
    assert_eq!(s.passkey("t2", "k1").await.unwrap(), None, "tenants apart");
    let mut used = key("k1", NOW);
    used.counter = u32::MAX;
    used.backup_state = true;
    used.last_used_at = Some(NOW + 9);
    used.credential = "{\"x\":1}".into();
    assert!(s.passkey_used(&used).await.unwrap());
    assert_eq!(s.passkey("t1", "k1").await.unwrap(), Some(used));
    assert!(!s.remove_passkey("t1", "someone-else", "k1").await.unwrap());
    assert!(s.remove_passkey("t1", "u1", "k1").await.unwrap());
    assert!(!s.remove_passkey("t1", "u1", "k1").await.unwrap());

    // A ceremony is taken once; an expired one is gone too.
    let c = Ceremony {
        tenant_id: "t1".into(),
        id: "c1".into(),
        kind: CeremonyKind::Authenticate,
        user_id: None,
        address: Some("ip:192.0.2.1".into()),
        state: "{}".into(),
        expires_at: NOW + 300,
    };
    assert_eq!(
        s.live_ceremonies("t1", Some("ip:192.0.2.1"), NOW)
            .await
            .unwrap(),
        (0, 0)
    );
    s.put_ceremony(&c).await.unwrap();
    s.put_ceremony(&Ceremony {
        id: "other".into(),
        address: None,
        ..c.clone()
    })
    .await
    .unwrap();
    assert_eq!(
        s.live_ceremonies("t1", Some("ip:192.0.2.1"), NOW)
            .await
            .unwrap(),
        (2, 1)
    );
    assert_eq!(s.live_ceremonies("t1", None, NOW).await.unwrap(), (2, 0));
    assert_eq!(
        s.live_ceremonies("t1", Some("ip:192.0.2.1"), NOW + 300)
            .await
            .unwrap(),
        (0, 0)
    );
    assert_eq!(
        s.live_ceremonies("t2", Some("ip:192.0.2.1"), NOW)
            .await
            .unwrap(),
        (0, 0)
    );
    assert_eq!(s.take_ceremony("t2", "c1", NOW).await.unwrap(), None);
    assert_eq!(
        s.take_ceremony("t1", "c1", NOW).await.unwrap(),
        Some(c.clone())
    );
    assert_eq!(s.take_ceremony("t1", "c1", NOW).await.unwrap(), None);
    let reg = Ceremony {
        id: "c2".into(),
        kind: CeremonyKind::Register,
        user_id: Some("u1".into()),
        ..c.clone()
    };
    s.put_ceremony(&reg).await.unwrap();
    assert_eq!(s.take_ceremony("t1", "c2", NOW + 301).await.unwrap(), None);
    assert_eq!(s.take_ceremony("t1", "c2", NOW).await.unwrap(), None);
    // Two nodes taking one ceremony at once: exactly one gets it.
    let race = Ceremony {
        id: "c3".into(),
        ..c.clone()
    };
    s.put_ceremony(&race).await.unwrap();
    let (a, b) = tokio::join!(
        s.take_ceremony("t1", "c3", NOW),
        s.take_ceremony("t1", "c3", NOW)
    );
    assert_eq!(
        [a.unwrap().is_some(), b.unwrap().is_some()]
            .iter()
            .filter(|x| **x)
            .count(),
        1
    );
    // Purged when expired; erased with the person.
    s.put_ceremony(&Ceremony {
        id: "c4".into(),
        expires_at: NOW - 1,
        ..c
    })
    .await
    .unwrap();
    s.purge_expired(NOW).await.unwrap();
    assert_eq!(s.take_ceremony("t1", "c4", NOW - 10).await.unwrap(), None);
    assert!(s.erase_user("t1", &u, NOW).await.unwrap());
    assert!(s.passkeys("t1", "u1").await.unwrap().is_empty());
}

async fn password_hash(db: &Db) {
    let s = db.s();
    make_tenant(s, "t1").await;
    let u = user("t1", "u1", "ann");
    s.create_user(&u).await.unwrap();
    assert!(
        s.set_password_hash("t1", "u1", None, NOW + 5)
            .await
            .unwrap()
    );
    let got = s.user("t1", "u1").await.unwrap().unwrap();
    assert_eq!(got.password_hash, None);
    assert_eq!(got.updated_at, NOW + 5);
    assert!(
        s.set_password_hash("t1", "u1", Some("$argon2id$x"), NOW + 6)
            .await
            .unwrap()
    );
    assert_eq!(
        s.user("t1", "u1")
            .await
            .unwrap()
            .unwrap()
            .password_hash
            .as_deref(),
        Some("$argon2id$x")
    );
    assert!(
        !s.set_password_hash("t1", "nobody", None, NOW)
            .await
            .unwrap()
    );
}

async fn account_tokens(db: &Db) {
    use mandate_core::login::recovery::store::{AccountToken, Purpose};
    let s = db.s();
    make_tenant(s, "t1").await;
    make_tenant(s, "t2").await;
    let u = user("t1", "u1", "ann");
    s.create_user(&u).await.unwrap();
    let tok = |purpose: Purpose, digest: &[u8], expires_at: i64| AccountToken {
        tenant_id: "t1".into(),
        user_id: "u1".into(),
        purpose,
        digest: digest.to_vec(),
        email: "ann@example.com".into(),
        created_at: NOW,
        expires_at,
    };
    let reset = tok(Purpose::PasswordReset, &[1, 2, 0, 255], NOW + 1800);
    s.put_account_token(&reset).await.unwrap();
    assert_eq!(
        s.account_token("t1", Purpose::PasswordReset, &[1, 2, 0, 255], NOW)
            .await
            .unwrap(),
        Some(reset.clone()),
        "looked at, not taken"
    );
    assert_eq!(
        s.account_token("t1", Purpose::VerifyEmail, &[1, 2, 0, 255], NOW)
            .await
            .unwrap(),
        None,
        "purposes apart"
    );
    assert_eq!(
        s.account_token("t2", Purpose::PasswordReset, &[1, 2, 0, 255], NOW)
            .await
            .unwrap(),
        None,
        "tenants apart"
    );
    assert_eq!(
        s.account_token("t1", Purpose::PasswordReset, &[1, 2, 0, 255], NOW + 1800)
            .await
            .unwrap(),
        None,
        "expired"
    );
    // A newer one of the same purpose replaces it; another purpose stays.
    let newer = tok(Purpose::PasswordReset, &[9, 9], NOW + 1800);
    s.put_account_token(&newer).await.unwrap();
    let verify = tok(Purpose::VerifyEmail, &[1, 2, 0, 255], NOW + 60);
    s.put_account_token(&verify).await.unwrap();
    assert_eq!(
        s.take_account_token("t1", Purpose::PasswordReset, &[1, 2, 0, 255], NOW)
            .await
            .unwrap(),
        None,
        "replaced"
    );
    // Taken once, also by two nodes at once.
    let (a, b) = tokio::join!(
        s.take_account_token("t1", Purpose::PasswordReset, &[9, 9], NOW),
        s.take_account_token("t1", Purpose::PasswordReset, &[9, 9], NOW)
    );
    assert_eq!(
        [a.unwrap(), b.unwrap()]
            .iter()
            .flatten()
            .collect::<Vec<_>>(),
        [&newer]
    );
    // An expired one is not given, and gone.
    assert_eq!(
        s.take_account_token("t1", Purpose::VerifyEmail, &[1, 2, 0, 255], NOW + 60)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.account_token("t1", Purpose::VerifyEmail, &[1, 2, 0, 255], NOW)
            .await
            .unwrap(),
        None
    );
    // Deleted by purpose, or all.
    s.put_account_token(&tok(Purpose::SignInCode, &[3], NOW + 600))
        .await
        .unwrap();
    s.put_account_token(&tok(Purpose::PasswordReset, &[4], NOW + 600))
        .await
        .unwrap();
    assert_eq!(
        s.delete_account_tokens("t1", "u1", Some(Purpose::SignInCode))
            .await
            .unwrap(),
        1
    );
    assert_eq!(s.delete_account_tokens("t1", "u1", None).await.unwrap(), 1);
    // Purged when expired; erased with the person.
    s.put_account_token(&tok(Purpose::PasswordReset, &[5], NOW - 1))
        .await
        .unwrap();
    s.put_account_token(&tok(Purpose::VerifyEmail, &[6], NOW + 600))
        .await
        .unwrap();
    s.purge_expired(NOW).await.unwrap();
    assert_eq!(
        s.take_account_token("t1", Purpose::PasswordReset, &[5], NOW - 10)
            .await
            .unwrap(),
        None
    );
    assert!(s.erase_user("t1", &u, NOW).await.unwrap());
    assert_eq!(
        s.account_token("t1", Purpose::VerifyEmail, &[6], NOW)
            .await
            .unwrap(),
        None
    );
}

async fn user_sessions_and_email(db: &Db) {
    let s = db.s();
    make_tenant(s, "t1").await;
    let mut u = user("t1", "u1", "ann");
    u.email_verified = false;
    s.create_user(&u).await.unwrap();
    s.create_user(&user("t1", "u2", "bob")).await.unwrap();
    let mut twin = user("t1", "u3", "ann2");
    twin.email = Some("bob@example.com".into());
    s.create_user(&twin).await.unwrap();
    // By address: at most two, enough to tell one from several.
    let one = s.users_by_email("t1", "ann@example.com").await.unwrap();
    assert_eq!(
        one.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
        ["u1"]
    );
    assert_eq!(
        s.users_by_email("t1", "bob@example.com")
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(
        s.users_by_email("t1", "ANN@example.com")
            .await
            .unwrap()
            .is_empty()
    );
    // Verified only while it is still the address.
    assert!(
        !s.set_email_verified("t1", "u1", "old@example.com", NOW)
            .await
            .unwrap()
    );
    assert!(!s.user("t1", "u1").await.unwrap().unwrap().email_verified);
    assert!(
        s.set_email_verified("t1", "u1", "ann@example.com", NOW + 7)
            .await
            .unwrap()
    );
    let got = s.user("t1", "u1").await.unwrap().unwrap();
    assert!(got.email_verified);
    assert_eq!(got.updated_at, NOW + 7);
    // Every session of one person but the one kept.
    let mk = |d: &[u8], sid: &str, user_id: &str| Session {
        sid: sid.into(),
        user_id: user_id.into(),
        ..session("t1", d, NOW + 100)
    };
    s.create_session(&mk(&[1], "a", "u1")).await.unwrap();
    s.create_session(&mk(&[2], "b", "u1")).await.unwrap();
    s.create_session(&mk(&[3], "c", "u1")).await.unwrap();
    s.create_session(&mk(&[4], "d", "u2")).await.unwrap();
    let mut gone = s
        .delete_user_sessions("t1", "u1", Some(&[2]))
        .await
        .unwrap();
    gone.sort();
    assert_eq!(gone, ["a", "c"]);
    assert!(s.session("t1", &[2]).await.unwrap().is_some());
    assert!(s.session("t1", &[4]).await.unwrap().is_some());
    assert_eq!(
        s.delete_user_sessions("t1", "u1", None).await.unwrap(),
        ["b"]
    );
    assert!(s.session("t1", &[4]).await.unwrap().is_some());
}

/// The risk engine's records: newest first and bounded, per tenant, counted in the window,
/// purged when expired, erased with the person; a suspension with its reason, cleared on resume.
async fn risk_records(db: &Db) {
    use mandate_core::domain::agents::{Agent, AgentStatus};
    use mandate_core::risk::store::{AddressFailures, AgentRequestRow, FailureRow, SignInRow};
    let s = db.s();
    make_tenant(s, "t1").await;
    make_tenant(s, "t2").await;
    let ann = user("t1", "u1", "ann");
    s.create_user(&ann).await.unwrap();
    let sign_in = |tenant: &str, at: i64, place: Option<(i64, i64)>| SignInRow {
        tenant_id: tenant.into(),
        user_id: "u1".into(),
        at,
        address: Some("192.0.2.1".into()),
        place,
        device: Some(vec![7; 32]),
        expires_at: at + 100,
    };
    for i in 0..5 {
        s.add_sign_in(&sign_in("t1", NOW + i, Some((525, -1339))))
            .await
            .unwrap();
    }
    s.add_sign_in(&sign_in("t2", NOW + 9, None)).await.unwrap();
    let got = s.sign_ins("t1", "u1", 3).await.unwrap();
    assert_eq!(
        got.iter().map(|r| r.at).collect::<Vec<_>>(),
        [NOW + 4, NOW + 3, NOW + 2]
    );
    assert_eq!(got[0], sign_in("t1", NOW + 4, Some((525, -1339))));
    assert_eq!(s.sign_ins("t2", "u1", 10).await.unwrap()[0].place, None);
    assert!(s.sign_ins("t1", "u1", 10_000).await.unwrap().len() == 5);

    let failure = |address: &str, account: &str, user: Option<&str>, at: i64| FailureRow {
        tenant_id: "t1".into(),
        address: address.into(),
        account: account.into(),
        user_id: user.map(str::to_string),
        at,
        expires_at: at + 100,
    };
    s.add_failure(&failure("ip:1", "u:a", Some("u1"), NOW))
        .await
        .unwrap();
    s.add_failure(&failure("ip:1", "u:b", None, NOW + 1))
        .await
        .unwrap();
    s.add_failure(&failure("ip:2", "u:a", Some("u1"), NOW + 2))
        .await
        .unwrap();
    s.add_failure(&failure("ip:1", "u:a", Some("u1"), NOW + 3))
        .await
        .unwrap();
    // Counted by the database: how many, how many names.
    let counts = |failures: i64, accounts: i64| AddressFailures { failures, accounts };
    assert_eq!(
        s.failures_from("t1", "ip:1", NOW - 1).await.unwrap(),
        counts(3, 2)
    );
    assert_eq!(
        s.failures_from("t1", "ip:1", NOW).await.unwrap(),
        counts(2, 2),
        "after since"
    );
    assert_eq!(
        s.failures_from("t2", "ip:1", 0).await.unwrap(),
        counts(0, 0)
    );
    assert_eq!(s.failures_of("t1", "u:a", NOW - 1).await.unwrap(), 3);
    assert_eq!(s.failures_of("t1", "u:a", NOW).await.unwrap(), 2);
    assert_eq!(s.failures_of("t2", "u:a", 0).await.unwrap(), 0);

    let request = |agent: &str, at: i64, allowed: bool| AgentRequestRow {
        tenant_id: "t1".into(),
        agent_id: agent.into(),
        user_id: "u1".into(),
        mandate_id: "m1".into(),
        resources: vec!["https://mail".into(), "https://files".into()],
        allowed,
        approved: false,
        at,
        expires_at: at + 100,
    };
    s.add_agent_request(&request("a1", NOW, true))
        .await
        .unwrap();
    s.add_agent_request(&request("a1", NOW + 1, false))
        .await
        .unwrap();
    s.add_agent_request(&request("a2", NOW + 2, true))
        .await
        .unwrap();
    let got = s.agent_requests("t1", "a1", "u1").await.unwrap();
    assert_eq!(
        got,
        [request("a1", NOW + 1, false), request("a1", NOW, true)]
    );
    assert!(s.agent_requests("t1", "a1", "u2").await.unwrap().is_empty());
    // The person approves a1's requests up to NOW: only those, only a1's, only theirs.
    s.approve_agent_requests("t1", "a1", "u1", NOW)
        .await
        .unwrap();
    let approved = AgentRequestRow {
        approved: true,
        ..request("a1", NOW, true)
    };
    assert_eq!(
        s.agent_requests("t1", "a1", "u1").await.unwrap(),
        [request("a1", NOW + 1, false), approved]
    );
    assert!(
        s.agent_requests("t1", "a2", "u1")
            .await
            .unwrap()
            .iter()
            .all(|r| !r.approved)
    );

    // Suspension with a reason: once, only an active agent, cleared when resumed.
    let agent = Agent {
        tenant_id: "t1".into(),
        id: "a1".into(),
        name: "Agent".into(),
        owner_user_id: Some("u1".into()),
        provider: None,
        model: None,
        version: None,
        scope_ceiling: Scope::parse("read").unwrap(),
        require_dpop: false,
        status: AgentStatus::Active,
        status_reason: None,
        created_at: NOW,
        updated_at: NOW,
    };
    s.create_agent(&agent).await.unwrap();
    assert!(
        s.suspend_agent_with_reason("t1", "a1", "too fast", NOW)
            .await
            .unwrap()
    );
    assert!(
        !s.suspend_agent_with_reason("t1", "a1", "again", NOW)
            .await
            .unwrap()
    );
    assert!(
        !s.suspend_agent_with_reason("t1", "nobody", "x", NOW)
            .await
            .unwrap()
    );
    let a = s.agent("t1", "a1").await.unwrap().unwrap();
    assert_eq!(a.status, AgentStatus::Suspended);
    assert_eq!(a.status_reason.as_deref(), Some("too fast"));
    assert!(
        s.set_agent_status("t1", "a1", AgentStatus::Active, NOW + 1)
            .await
            .unwrap()
    );
    assert_eq!(
        s.agent("t1", "a1").await.unwrap().unwrap().status_reason,
        None
    );

    // A session keeps what its risk decision asks of it.
    s.create_session(&session("t1", b"risky", NOW + 100))
        .await
        .unwrap();
    let mut got = s.session("t1", b"risky").await.unwrap().unwrap();
    assert_eq!(got.risk_acr.as_deref(), Some("phr"));
    // ... and what it comes to owe instead (a passkey step met by a second factor).
    got.risk_acr = Some("urn:mandate:acr:mfa".into());
    assert!(s.update_session(&got).await.unwrap());
    let got = s.session("t1", b"risky").await.unwrap().unwrap();
    assert_eq!(got.risk_acr.as_deref(), Some("urn:mandate:acr:mfa"));

    // Erasing the person erases their rows (and the failures of their name); others stay.
    assert!(s.erase_user("t1", &ann, NOW).await.unwrap());
    assert!(s.sign_ins("t1", "u1", 10).await.unwrap().is_empty());
    assert_eq!(s.sign_ins("t2", "u1", 10).await.unwrap().len(), 1);
    assert!(s.agent_requests("t1", "a2", "u1").await.unwrap().is_empty());
    assert_eq!(
        s.failures_from("t1", "ip:1", 0).await.unwrap(),
        counts(1, 1)
    );
    assert_eq!(s.failures_of("t1", "u:a", 0).await.unwrap(), 0);

    // Purged once expired.
    s.add_failure(&failure("ip:3", "u:c", None, NOW + 10))
        .await
        .unwrap();
    s.add_agent_request(&request("a3", NOW + 10, true))
        .await
        .unwrap();
    s.purge_expired(NOW + 110).await.unwrap();
    assert_eq!(
        s.failures_from("t1", "ip:1", 0).await.unwrap(),
        counts(0, 0)
    );
    assert_eq!(
        s.failures_from("t1", "ip:3", 0).await.unwrap(),
        counts(1, 1)
    );
    assert!(s.sign_ins("t2", "u1", 10).await.unwrap().is_empty());
    assert_eq!(s.agent_requests("t1", "a3", "u1").await.unwrap().len(), 1);
    s.purge_expired(NOW + 1000).await.unwrap();
    assert_eq!(
        s.failures_from("t1", "ip:3", 0).await.unwrap(),
        counts(0, 0)
    );
    assert!(s.agent_requests("t1", "a3", "u1").await.unwrap().is_empty());
}
