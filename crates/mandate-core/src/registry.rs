//! Administrative operations shared by the CLI and the admin API: tenants, clients, users and
//! key rotation. Each validates its input, writes once and records an audit event.

use serde_json::json;

use crate::audit::{AuditEvent, EventKind, Outcome, Principal, RequestMeta};
use crate::crypto::secret::{keyed_digest, password, random_bytes, random_token};
use crate::domain::branding::validate_scope_descriptions;
use crate::domain::model::{Client, ClientAuthMethod, GrantType, Tenant, TenantSettings, User};
use crate::domain::scope::Scope;
use crate::error::AdminError;
use crate::settings::Settings;
use crate::store::{AuditSink, ClientStore, KeyStore, TenantStore, UserStore};
use crate::time::now;
use mandate_token::jwk::{self, Alg};

/// The tenant every installation starts with.
pub const DEFAULT_TENANT: &str = "default";

fn admin_event(
    tenant_id: &str,
    kind: EventKind,
    actor: &str,
    detail: serde_json::Value,
) -> AuditEvent {
    AuditEvent::new(
        tenant_id,
        kind,
        Outcome::Success,
        Principal::Admin {
            id: actor.to_string(),
        },
        &RequestMeta::default(),
    )
    .detail(detail)
}

/// One new key per supported algorithm (RSA generation is slow: off the async threads).
async fn generate_keys(tenant_id: &str, now: i64) -> Result<Vec<jwk::KeyRecord>, AdminError> {
    let id = tenant_id.to_string();
    tokio::task::spawn_blocking(move || {
        Alg::ALL
            .iter()
            .map(|a| jwk::generate(&id, *a, now))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| AdminError::Crypto(e.to_string()))?
    .map_err(|e| AdminError::Crypto(e.0))
}

/// Is this a valid tenant name (it becomes a URL path segment)?
pub fn valid_tenant_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
}

/// Create a tenant with fresh keys for every supported algorithm.
pub async fn create_tenant<S>(
    store: &S,
    name: &str,
    access_token_alg: Alg,
    actor: &str,
) -> Result<Tenant, AdminError>
where
    S: AuditSink + TenantStore + ?Sized,
{
    if !valid_tenant_name(name) {
        return Err(AdminError::Invalid(format!(
            "invalid tenant name {name:?}: use 1-63 lowercase letters, digits and '-'"
        )));
    }
    if store.tenant_by_name(name).await?.is_some() {
        return Err(AdminError::Conflict(format!("tenant {name}")));
    }
    let now = now();
    let tenant = Tenant {
        id: random_token(12),
        name: name.to_string(),
        secret_key: random_bytes(32),
        access_token_alg,
        created_at: now,
        settings: TenantSettings::default(),
    };
    let keys = generate_keys(&tenant.id, now).await?;
    store.create_tenant(&tenant, &keys).await?;
    store
        .record(&admin_event(
            &tenant.id,
            EventKind::TenantCreated,
            actor,
            json!({"name": name}),
        ))
        .await?;
    Ok(tenant)
}

/// Replace a tenant's settings (recorded with the old and new values). Other nodes see them
/// within their tenant cache lifetime.
pub async fn set_tenant_settings<S>(
    store: &S,
    name: &str,
    settings: TenantSettings,
    actor: &str,
) -> Result<Tenant, AdminError>
where
    S: AuditSink + TenantStore + ?Sized,
{
    let mut t = tenant(store, name).await?;
    if !(crate::settings::MIN_PASSWORD_LENGTH..=256).contains(&settings.min_password_length) {
        return Err(AdminError::Invalid(format!(
            "the minimum password length must be {}-256 characters",
            crate::settings::MIN_PASSWORD_LENGTH
        )));
    }
    for ty in &settings.authorization_details_types {
        if ty.is_empty() || ty.len() > 128 || ty.chars().any(char::is_whitespace) {
            return Err(AdminError::Invalid(format!(
                "invalid authorization_details type {ty:?}"
            )));
        }
    }
    settings
        .branding
        .validate()
        .map_err(|e| AdminError::Invalid(e.to_string()))?;
    validate_scope_descriptions(&settings.scope_descriptions)
        .map_err(|e| AdminError::Invalid(e.to_string()))?;
    if settings.second_factor_clients.len() > 100
        || settings
            .second_factor_clients
            .iter()
            .any(|c| c.is_empty() || c.len() > 256 || c.chars().any(char::is_control))
    {
        return Err(AdminError::Invalid(
            "invalid second_factor_clients (at most 100 client ids)".into(),
        ));
    }
    settings.risk.check().map_err(AdminError::Invalid)?;
    if !store.set_tenant_settings(&t.id, &settings).await? {
        return Err(AdminError::NotFound(format!("tenant {name}")));
    }
    store
        .record(&admin_event(
            &t.id,
            EventKind::TenantSettingsChanged,
            actor,
            json!({"before": t.settings, "after": settings}),
        ))
        .await?;
    t.settings = settings;
    Ok(t)
}

/// Change some of a tenant's settings: `patch` is an RFC 7396 JSON merge patch of the settings
/// as [`TenantSettings`] serializes them (a member set to `null` goes back to its default;
/// unknown members are refused), then checked and recorded as [`set_tenant_settings`] does.
pub async fn patch_tenant_settings<S>(
    store: &S,
    name: &str,
    patch: &serde_json::Value,
    actor: &str,
) -> Result<Tenant, AdminError>
where
    S: AuditSink + TenantStore + ?Sized,
{
    if !patch.is_object() {
        return Err(AdminError::Invalid(
            "the settings patch must be a JSON object".into(),
        ));
    }
    let t = tenant(store, name).await?;
    let mut merged = serde_json::to_value(&t.settings)
        .map_err(|e| AdminError::Invalid(format!("settings: {e}")))?;
    merge_patch(&mut merged, patch);
    let settings: TenantSettings = serde_json::from_value(merged).map_err(|e| {
        AdminError::Invalid(format!(
            "invalid settings: {}",
            crate::untrusted::clip(&e.to_string(), 300)
        ))
    })?;
    set_tenant_settings(store, name, settings, actor).await
}

/// RFC 7396 §2: apply a JSON merge patch to `target`.
fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    let serde_json::Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = serde_json::Value::Object(serde_json::Map::new());
    }
    let serde_json::Value::Object(t) = target else {
        return;
    };
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(serde_json::Value::Null), v);
        }
    }
}

/// Create the default tenant on first start; no-op when it exists.
pub async fn ensure_default_tenant<S>(store: &S) -> Result<bool, AdminError>
where
    S: AuditSink + TenantStore + ?Sized,
{
    if store.tenant_by_name(DEFAULT_TENANT).await?.is_some() {
        return Ok(false);
    }
    match create_tenant(store, DEFAULT_TENANT, Alg::ES256, "system").await {
        Ok(_) => Ok(true),
        // Another node created it first.
        Err(AdminError::Conflict(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

async fn tenant<S>(store: &S, name: &str) -> Result<Tenant, AdminError>
where
    S: TenantStore + ?Sized,
{
    store
        .tenant_by_name(name)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("tenant {name}")))
}

/// What to register for a new client.
#[derive(Debug, Clone, Default)]
pub struct ClientSpec {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub public: bool,
    /// Empty: authorization_code + refresh_token with redirect URIs, else client_credentials.
    pub grant_types: Vec<String>,
    /// Empty: the standard OIDC scopes.
    pub scopes: Vec<String>,
    pub auth_method: Option<String>,
    /// Public JWK Set for private_key_jwt.
    pub jwks: Option<serde_json::Value>,
    pub id_token_alg: Option<String>,
    pub web_origins: Vec<String>,
    /// Refresh rotation grace period in seconds (0–60; default 0, strict).
    pub refresh_grace_seconds: i64,
}

/// Register a client. Returns it and, for secret-based clients, the secret (shown once).
pub async fn create_client<S>(
    store: &S,
    tenant_name: &str,
    spec: ClientSpec,
    actor: &str,
) -> Result<(Client, Option<String>), AdminError>
where
    S: AuditSink + ClientStore + TenantStore + ?Sized,
{
    let t = tenant(store, tenant_name).await?;
    if spec.name.trim().is_empty() || spec.name.len() > 200 {
        return Err(AdminError::Invalid(
            "client name must be 1-200 characters".into(),
        ));
    }
    for uri in spec
        .redirect_uris
        .iter()
        .chain(&spec.post_logout_redirect_uris)
    {
        if let Err(why) = crate::domain::redirect::check_for_registration(uri) {
            return Err(AdminError::Invalid(format!(
                "invalid redirect URI {:?}: {why}",
                uri.chars().take(200).collect::<String>()
            )));
        }
    }
    if !(0..=60).contains(&spec.refresh_grace_seconds) {
        return Err(AdminError::Invalid(
            "the refresh grace period is 0 to 60 seconds".into(),
        ));
    }
    for o in &spec.web_origins {
        let ok = url::Url::parse(o).is_ok_and(|u| u.origin().ascii_serialization() == *o);
        if !ok {
            return Err(AdminError::Invalid(format!(
                "invalid web origin {o:?}: use scheme://host[:port]"
            )));
        }
    }
    let grant_types: Vec<GrantType> = if spec.grant_types.is_empty() {
        if spec.redirect_uris.is_empty() {
            vec![GrantType::ClientCredentials]
        } else {
            vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
        }
    } else {
        spec.grant_types
            .iter()
            .map(|g| GrantType::parse(g).ok_or_else(|| AdminError::Invalid(format!("unsupported grant type {g:?} (authorization_code, refresh_token, client_credentials)"))))
            .collect::<Result<_, _>>()?
    };
    if grant_types.contains(&GrantType::AuthorizationCode) && spec.redirect_uris.is_empty() {
        return Err(AdminError::Invalid(
            "the authorization_code grant needs at least one redirect URI".into(),
        ));
    }
    let auth_method = match (&spec.auth_method, spec.public) {
        (_, true) => ClientAuthMethod::None,
        (Some(m), false) => ClientAuthMethod::parse(m)
            .filter(|m| *m != ClientAuthMethod::None)
            .ok_or_else(|| AdminError::Invalid(format!("unsupported auth method {m:?}")))?,
        (None, false) if spec.jwks.is_some() => ClientAuthMethod::PrivateKeyJwt,
        (None, false) => ClientAuthMethod::ClientSecretBasic,
    };
    if spec.public && grant_types.contains(&GrantType::ClientCredentials) {
        return Err(AdminError::Invalid(
            "a public client cannot use client_credentials".into(),
        ));
    }
    if auth_method == ClientAuthMethod::PrivateKeyJwt && spec.jwks.is_none() {
        return Err(AdminError::Invalid(
            "private_key_jwt needs a JWK Set".into(),
        ));
    }
    let scope_list: Vec<String> = if spec.scopes.is_empty() {
        crate::settings::STANDARD_SCOPES
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        spec.scopes.clone()
    };
    let scopes = Scope::parse(&scope_list.join(" "))
        .ok_or_else(|| AdminError::Invalid("invalid scope".into()))?;
    let id_token_alg = match &spec.id_token_alg {
        None => None,
        Some(a) => Some(
            Alg::parse(a)
                .ok_or_else(|| AdminError::Invalid(format!("unsupported algorithm {a:?}")))?,
        ),
    };
    let secret = matches!(
        auth_method,
        ClientAuthMethod::ClientSecretBasic | ClientAuthMethod::ClientSecretPost
    )
    .then(|| random_token(32));
    let client = Client {
        tenant_id: t.id.clone(),
        client_id: random_token(16),
        name: spec.name.clone(),
        secret_digest: secret.as_ref().map(|s| keyed_digest(&t.secret_key, s)),
        auth_method,
        redirect_uris: spec.redirect_uris,
        post_logout_redirect_uris: spec.post_logout_redirect_uris,
        grant_types,
        scopes,
        jwks: spec.jwks,
        id_token_alg,
        web_origins: spec.web_origins,
        refresh_grace_seconds: spec.refresh_grace_seconds,
        created_at: now(),
    };
    store.create_client(&client).await?;
    store
        .record(
            &admin_event(
                &t.id,
                EventKind::ClientCreated,
                actor,
                json!({"client_id": client.client_id, "name": client.name}),
            )
            .client(client.client_id.clone()),
        )
        .await?;
    Ok((client, secret))
}

/// Create a user with a password.
pub async fn create_user<S>(
    store: &S,
    tenant_name: &str,
    username: &str,
    email: Option<&str>,
    pw: &str,
    actor: &str,
) -> Result<User, AdminError>
where
    S: AuditSink + TenantStore + UserStore + ?Sized,
{
    let t = tenant(store, tenant_name).await?;
    if username.is_empty() || username.len() > 256 || username.chars().any(char::is_control) {
        return Err(AdminError::Invalid(
            "username must be 1-256 printable characters".into(),
        ));
    }
    if let Some(e) = email
        && (!e.contains('@') || e.len() > 320)
    {
        return Err(AdminError::Invalid(format!("invalid email {e:?}")));
    }
    crate::domain::password_policy::check(pw, username, email, t.settings.min_password_length)
        .map_err(|e| AdminError::Invalid(e.to_string()))?;
    if store.user_by_username(&t.id, username).await?.is_some() {
        return Err(AdminError::Conflict(format!("user {username}")));
    }
    let hash = password::hash_bounded(pw.to_string())
        .await
        .map_err(|e| AdminError::Busy(e.retry_after))?;
    let now = now();
    let user = User {
        tenant_id: t.id.clone(),
        id: random_token(16),
        username: username.to_string(),
        email: email.map(str::to_string),
        email_verified: false,
        name: None,
        password_hash: Some(hash),
        created_at: now,
        updated_at: now,
    };
    store.create_user(&user).await?;
    store
        .record(
            &admin_event(
                &t.id,
                EventKind::UserCreated,
                actor,
                json!({"user_id": user.id}),
            )
            .subject(Principal::User {
                id: user.id.clone(),
            })
            .username(&user.username)
            .email(user.email.as_deref()),
        )
        .await?;
    Ok(user)
}

/// Erase a user (GDPR Art. 17): the account, its sessions, consents and tokens, and the
/// personal data of every audit record about them. The audit records stay (pseudonymous, by
/// user id) and the chain still verifies; the erasure itself is recorded.
pub async fn erase_user<S>(
    store: &S,
    tenant_name: &str,
    username: &str,
    actor: &str,
) -> Result<String, AdminError>
where
    S: AuditSink + TenantStore + UserStore + ?Sized,
{
    let t = tenant(store, tenant_name).await?;
    let user = store
        .user_by_username(&t.id, username)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("user {username}")))?;
    store.erase_user(&t.id, &user, now()).await?;
    store
        .record(
            &admin_event(
                &t.id,
                EventKind::UserErased,
                actor,
                json!({"user_id": user.id}),
            )
            .subject(Principal::User {
                id: user.id.clone(),
            }),
        )
        .await?;
    Ok(user.id)
}

/// Rotate a tenant's signing keys: new keys sign from now on; old ones stay published until
/// every token they signed has expired.
pub async fn rotate_keys<S>(
    store: &S,
    tenant_name: &str,
    settings: &Settings,
    actor: &str,
) -> Result<Vec<String>, AdminError>
where
    S: AuditSink + KeyStore + TenantStore + ?Sized,
{
    let t = tenant(store, tenant_name).await?;
    let now = now();
    let new = generate_keys(&t.id, now).await?;
    store
        .rotate_keys(&t.id, &new, now, now + settings.key_publish_window())
        .await?;
    let kids: Vec<String> = new.iter().map(|k| k.kid.clone()).collect();
    store
        .record(&admin_event(
            &t.id,
            EventKind::KeysRotated,
            actor,
            json!({"new_kids": kids}),
        ))
        .await?;
    Ok(kids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patched(patch: serde_json::Value) -> Result<TenantSettings, serde_json::Error> {
        let mut v = serde_json::to_value(TenantSettings::default()).unwrap();
        merge_patch(&mut v, &patch);
        serde_json::from_value(v)
    }

    #[test]
    fn settings_merge_patch_follows_rfc_7396() {
        let s = patched(json!({
            "branding": {"display_name": "Acme", "primary_color": "#0b57d0"},
            "scope_descriptions": {"calendar.read": {"en": "See your calendar"}},
        }))
        .unwrap();
        assert_eq!(s.branding.display_name.as_deref(), Some("Acme"));
        assert_eq!(
            s.min_password_length,
            TenantSettings::default().min_password_length
        );
        // A member set to null goes back to its default; others stay.
        let mut v = serde_json::to_value(&s).unwrap();
        merge_patch(&mut v, &json!({"branding": {"display_name": null}}));
        let s: TenantSettings = serde_json::from_value(v).unwrap();
        assert_eq!(s.branding.display_name, None);
        assert_eq!(s.branding.primary_color.as_deref(), Some("#0b57d0"));
        assert_eq!(s.scope_descriptions.len(), 1);
        // Unknown members are refused rather than ignored.
        assert!(patched(json!({"branding": {"logo": "x"}})).is_err());
        assert!(patched(json!({"colour": "x"})).is_err());
        assert!(patched(json!({"min_password_length": "long"})).is_err());
    }
}
