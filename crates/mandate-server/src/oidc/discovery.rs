//! Provider metadata: OIDC Discovery 1.0 under the issuer, and RFC 8414 at the path-inserted
//! well-known URL. Lists exactly what is implemented.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use mandate_core::settings::STANDARD_SCOPES;
use mandate_core::{TenantCtx, login};
use serde_json::{Value, json};

use crate::state::AppState;
use crate::tenant::Tenant;

fn metadata(s: &AppState, t: &TenantCtx) -> Value {
    let grant_types: Vec<&str> = s.grants.types().collect();
    let algs: Vec<&str> = t.keys.algs().iter().map(|a| a.as_str()).collect();
    let auth_methods = [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "none",
    ];
    // Introspection answers confidential clients only (`mandate_core::oauth::introspect`), so `none`
    // is not offered there; revocation lets a public client revoke its own tokens.
    let introspection_auth_methods = &auth_methods[..3];
    let assertion_algs = [
        "ES256", "ES384", "EdDSA", "RS256", "RS384", "PS256", "PS384",
    ];
    let mut m = json!({
        "issuer": t.issuer,
        "authorization_endpoint": t.url("/authorize"),
        "token_endpoint": t.url("/token"),
        "userinfo_endpoint": t.url("/userinfo"),
        "jwks_uri": t.url("/jwks.json"),
        "introspection_endpoint": t.url("/introspect"),
        "revocation_endpoint": t.url("/revoke"),
        "end_session_endpoint": t.url("/logout"),
        "scopes_supported": STANDARD_SCOPES,
        "response_types_supported": ["code"],
        "dpop_signing_alg_values_supported":
            mandate_core::oauth::dpop::proof::DpopConfig::default().alg_names(),
        "response_modes_supported": ["query"],
        // The token endpoint's registry: every grant it dispatches to, and no other.
        "grant_types_supported": grant_types,
        // CIBA Core §4; signed authentication requests are not supported, so no
        // backchannel_authentication_request_signing_alg_values_supported.
        "backchannel_authentication_endpoint": t.url("/bc-authorize"),
        "backchannel_token_delivery_modes_supported": ["poll", "ping"],
        "backchannel_user_code_parameter_supported": false,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
        "token_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "introspection_endpoint_auth_methods_supported": introspection_auth_methods,
        "introspection_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "at_hash",
            "name", "preferred_username", "updated_at", "email", "email_verified"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "ui_locales_supported": ["en", "de"],
        "acr_values_supported": login::method::acr_values(&login::offered(&s.provider, t)),
    });
    // RFC 9396 §10: the types accepted; omitted when the tenant accepts any type (an empty
    // list would say none is).
    let types = &t.tenant.settings.authorization_details_types;
    if !types.is_empty() {
        m["authorization_details_types_supported"] = json!(types);
    }
    m
}

/// `GET {issuer}/.well-known/openid-configuration`.
pub async fn openid_configuration(State(s): State<AppState>, Tenant(t): Tenant) -> Response {
    Json(metadata(&s, &t)).into_response()
}

/// `GET /.well-known/oauth-authorization-server/t/{tenant}` (RFC 8414 §3).
pub async fn oauth_metadata(State(s): State<AppState>, Tenant(t): Tenant) -> Response {
    Json(metadata(&s, &t)).into_response()
}
