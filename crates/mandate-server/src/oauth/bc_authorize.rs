//! `POST {issuer}/bc-authorize`: the CIBA backchannel authentication endpoint (CIBA Core §7).
//! The caller authenticates as at the token endpoint; the rules are in `mandate_core::ciba`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use mandate_core::ciba::{self, BackchannelRequest};

use super::authenticated_form;
use crate::client_ip::Meta;
use crate::error::ApiError;
use crate::notify;
use crate::state::AppState;
use crate::tenant::Tenant;

pub async fn bc_authorize(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (p, client) = authenticated_form(&s, &t, &meta, &headers, &body, "/bc-authorize").await?;
    let req = BackchannelRequest {
        scope: p.opt("scope"),
        login_hint: p.opt("login_hint"),
        login_hint_token: p.opt("login_hint_token"),
        id_token_hint: p.opt("id_token_hint"),
        binding_message: p.opt("binding_message"),
        authorization_details: p.opt("authorization_details"),
        resources: p.all("resource"),
        requested_expiry: p.opt("requested_expiry"),
        client_notification_token: p.opt("client_notification_token"),
    };
    let accepted = ciba::backchannel_authorize(&s.provider, &t, &client, &req, &meta).await?;
    if let Some(url) = &s.provider.settings.ciba_webhook_url {
        notify::ciba_webhook(url.clone(), accepted.notice.clone());
    }
    let mut r = Json(accepted.to_json()).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}
