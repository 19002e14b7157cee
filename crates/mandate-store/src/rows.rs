//! Mapping between database rows and domain records: column decoding, JSON lists, enums.

use mandate_core::StoreError;
use mandate_core::domain::model::{
    AuthCode, Client, ClientAuthMethod, Consent, Grant, GrantType, RefreshToken, Session, Tenant,
    TenantSettings, User,
};
use mandate_core::domain::scope::Scope;
use mandate_token::jwk::{Alg, KeyRecord};
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{Any, Decode, Row, Type};

/// Decode one column; a value of the wrong type is corrupt data.
pub(crate) fn col<'r, T>(row: &'r AnyRow, name: &str) -> Result<T, StoreError>
where
    T: Decode<'r, Any> + Type<Any>,
{
    row.try_get(name)
        .map_err(|e| StoreError::Corrupt(format!("{name}: {e}")))
}

pub(crate) fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what}: unexpected value `{value}`"))
}

/// A list of strings as JSON text.
pub(crate) fn json_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    Value::from(items.into_iter().collect::<Vec<_>>()).to_string()
}

/// A boolean as 0/1.
pub(crate) fn flag(b: bool) -> i64 {
    i64::from(b)
}

pub(crate) fn list(row: &AnyRow, name: &str) -> Result<Vec<String>, StoreError> {
    let text: String = col(row, name)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("{name}: {e}")))
}

pub(crate) fn scope(row: &AnyRow, name: &str) -> Result<Scope, StoreError> {
    let text: String = col(row, name)?;
    Scope::parse(&text).ok_or_else(|| corrupt(name, &text))
}

fn alg(text: &str, name: &str) -> Result<Alg, StoreError> {
    Alg::parse(text).ok_or_else(|| corrupt(name, text))
}

pub(crate) fn tenant(row: &AnyRow) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        id: col(row, "id")?,
        name: col(row, "name")?,
        secret_key: col(row, "secret_key")?,
        access_token_alg: alg(&col::<String>(row, "access_token_alg")?, "access_token_alg")?,
        created_at: col(row, "created_at")?,
        settings: {
            let text: String = col(row, "settings")?;
            serde_json::from_str(&text).map_err(|_| corrupt("settings", &text))?
        },
    })
}

/// A tenant's settings as stored.
pub(crate) fn settings_text(s: &TenantSettings) -> Result<String, StoreError> {
    serde_json::to_string(s).map_err(|e| StoreError::Backend(format!("encoding settings: {e}")))
}

pub(crate) fn key(row: &AnyRow) -> Result<KeyRecord, StoreError> {
    Ok(KeyRecord {
        tenant_id: col(row, "tenant_id")?,
        kid: col(row, "kid")?,
        alg: alg(&col::<String>(row, "alg")?, "alg")?,
        private_pkcs8: col(row, "private_pkcs8")?,
        created_at: col(row, "created_at")?,
        retired_at: col(row, "retired_at")?,
        publish_until: col(row, "publish_until")?,
    })
}

pub(crate) fn client(row: &AnyRow) -> Result<Client, StoreError> {
    let method: String = col(row, "auth_method")?;
    let grant_types = list(row, "grant_types")?
        .iter()
        .map(|g| GrantType::parse(g).ok_or_else(|| corrupt("grant_types", g)))
        .collect::<Result<_, _>>()?;
    let jwks = col::<Option<String>>(row, "jwks")?
        .map(|j| serde_json::from_str(&j).map_err(|e| StoreError::Corrupt(format!("jwks: {e}"))))
        .transpose()?;
    let id_token_alg = col::<Option<String>>(row, "id_token_alg")?
        .map(|a| alg(&a, "id_token_alg"))
        .transpose()?;
    Ok(Client {
        tenant_id: col(row, "tenant_id")?,
        client_id: col(row, "client_id")?,
        name: col(row, "name")?,
        secret_digest: col(row, "secret_digest")?,
        auth_method: ClientAuthMethod::parse(&method)
            .ok_or_else(|| corrupt("auth_method", &method))?,
        redirect_uris: list(row, "redirect_uris")?,
        post_logout_redirect_uris: list(row, "post_logout_redirect_uris")?,
        grant_types,
        scopes: scope(row, "scopes")?,
        jwks,
        id_token_alg,
        web_origins: list(row, "web_origins")?,
        refresh_grace_seconds: col(row, "refresh_grace_seconds")?,
        created_at: col(row, "created_at")?,
    })
}

pub(crate) fn user(row: &AnyRow) -> Result<User, StoreError> {
    Ok(User {
        tenant_id: col(row, "tenant_id")?,
        id: col(row, "id")?,
        username: col(row, "username")?,
        email: col(row, "email")?,
        email_verified: col::<i64>(row, "email_verified")? != 0,
        name: col(row, "name")?,
        password_hash: col(row, "password_hash")?,
        created_at: col(row, "created_at")?,
        updated_at: col(row, "updated_at")?,
    })
}

pub(crate) fn session(row: &AnyRow) -> Result<Session, StoreError> {
    Ok(Session {
        digest: col(row, "digest")?,
        tenant_id: col(row, "tenant_id")?,
        sid: col(row, "sid")?,
        user_id: col(row, "user_id")?,
        auth_time: col(row, "auth_time")?,
        amr: list(row, "amr")?,
        acr: col(row, "acr")?,
        expires_at: col(row, "expires_at")?,
        created_at: col(row, "created_at")?,
        user_agent: col(row, "user_agent")?,
        ip: col(row, "ip")?,
        risk_acr: col(row, "risk_acr")?,
    })
}

pub(crate) fn consent(row: &AnyRow) -> Result<Consent, StoreError> {
    Ok(Consent {
        tenant_id: col(row, "tenant_id")?,
        user_id: col(row, "user_id")?,
        client_id: col(row, "client_id")?,
        scope: scope(row, "scope")?,
        granted_at: col(row, "granted_at")?,
    })
}

pub(crate) fn grant(row: &AnyRow) -> Result<Grant, StoreError> {
    Ok(Grant {
        id: col(row, "id")?,
        tenant_id: col(row, "tenant_id")?,
        client_id: col(row, "client_id")?,
        user_id: col(row, "user_id")?,
        sid: col(row, "sid")?,
        created_at: col(row, "created_at")?,
        revoked_at: col(row, "revoked_at")?,
    })
}

/// An authorization code and whether it was consumed.
pub(crate) fn code(row: &AnyRow) -> Result<(AuthCode, bool), StoreError> {
    let code = AuthCode {
        digest: col(row, "digest")?,
        tenant_id: col(row, "tenant_id")?,
        grant_id: col(row, "grant_id")?,
        client_id: col(row, "client_id")?,
        user_id: col(row, "user_id")?,
        redirect_uri: col(row, "redirect_uri")?,
        code_challenge: col(row, "code_challenge")?,
        scope: scope(row, "scope")?,
        nonce: col(row, "nonce")?,
        sid: col(row, "sid")?,
        auth_time: col(row, "auth_time")?,
        acr: col(row, "acr")?,
        amr: list(row, "amr")?,
        expires_at: col(row, "expires_at")?,
        resources: list(row, "resources")?,
        mandate_id: col(row, "mandate_id")?,
    };
    let consumed = col::<Option<i64>>(row, "consumed_at")?.is_some();
    Ok((code, consumed))
}

pub(crate) fn refresh(row: &AnyRow) -> Result<RefreshToken, StoreError> {
    Ok(RefreshToken {
        digest: col(row, "digest")?,
        tenant_id: col(row, "tenant_id")?,
        grant_id: col(row, "grant_id")?,
        client_id: col(row, "client_id")?,
        user_id: col(row, "user_id")?,
        scope: scope(row, "scope")?,
        sid: col(row, "sid")?,
        auth_time: col(row, "auth_time")?,
        acr: col(row, "acr")?,
        amr: list(row, "amr")?,
        expires_at: col(row, "expires_at")?,
        created_at: col(row, "created_at")?,
        spent_at: col(row, "spent_at")?,
        delegation: match col::<Option<String>>(row, "delegation")? {
            None => None,
            Some(text) => {
                Some(serde_json::from_str(&text).map_err(|_| corrupt("delegation", &text))?)
            }
        },
        dpop_jkt: col(row, "dpop_jkt")?,
        resources: list(row, "resources")?,
    })
}
