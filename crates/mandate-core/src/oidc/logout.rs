//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): validate `id_token_hint` and
//! `post_logout_redirect_uri`, then end the session.

use std::collections::BTreeMap;

use crate::error::OAuthError;
use crate::provider::{Provider, TenantCtx};
use crate::store::ClientStore;
use mandate_token::id_token;

/// `sub` and `aud` (client_id) of an ID token this tenant issued; expiry is not checked, as a
/// hint may be old (OIDC Core §3.1.2.1).
pub fn id_token_hint(t: &TenantCtx, token: &str, now: i64) -> Option<(String, String)> {
    let c = id_token::verify_hint(&t.keys, token, &t.issuer, now).ok()?;
    let aud = c.aud.list().first()?.to_string();
    Some((c.sub, aud))
}

/// What a logout request asks for, once validated.
#[derive(Debug, Clone, Default)]
pub struct LogoutPlan {
    /// `sub` of a valid hint; a matching session may be ended without asking.
    pub hint_sub: Option<String>,
    /// Where to send the browser afterwards (with `state`).
    pub redirect: Option<String>,
    pub client_id: Option<String>,
}

/// Validate the logout parameters (each at most once).
pub async fn plan<S: ClientStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    params: &BTreeMap<String, String>,
) -> Result<LogoutPlan, OAuthError> {
    let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let hint = match get("id_token_hint") {
        Some(h) => Some(
            id_token_hint(t, h, p.now())
                .ok_or_else(|| OAuthError::invalid_request("id_token_hint is not valid"))?,
        ),
        None => None,
    };
    let client_id = match (get("client_id"), &hint) {
        (Some(c), Some((_, aud))) if c != aud => {
            return Err(OAuthError::invalid_request(
                "client_id does not match id_token_hint",
            ));
        }
        (Some(c), _) => Some(c.to_string()),
        (None, Some((_, aud))) => Some(aud.clone()),
        (None, None) => None,
    };
    let redirect = match get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let cid = client_id.as_deref().ok_or_else(|| {
                OAuthError::invalid_request(
                    "post_logout_redirect_uri needs id_token_hint or client_id",
                )
            })?;
            let client = p
                .client(t, cid)
                .await?
                .ok_or_else(|| OAuthError::invalid_request("unknown client"))?;
            if !client.post_logout_redirect_uris.iter().any(|r| r == uri) {
                return Err(OAuthError::invalid_request(
                    "post_logout_redirect_uri is not registered",
                ));
            }
            let mut ser = url::form_urlencoded::Serializer::new(String::new());
            if let Some(s) = get("state") {
                ser.append_pair("state", s);
            }
            let q = ser.finish();
            Some(if q.is_empty() {
                uri.to_string()
            } else {
                format!("{uri}{}{q}", if uri.contains('?') { '&' } else { '?' })
            })
        }
    };
    Ok(LogoutPlan {
        hint_sub: hint.map(|h| h.0),
        redirect,
        client_id,
    })
}
