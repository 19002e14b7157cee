//! The signed-in user's account pages: which applications hold consent, and withdrawing it
//! (which also revokes what the consent gave: `mandate_core::account::withdraw_consent`).
//! Signed-out people are sent to the account sign-in page and come back here.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mandate_core::account;
use minijinja::context;

use super::pages;
use super::signin::sign_in_first;
use crate::client_ip::Meta;
use crate::session::account_session;
use crate::state::AppState;
use crate::tenant::Tenant;

/// `GET {issuer}/account/consents`.
pub async fn consents_page(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    headers: HeaderMap,
) -> Response {
    let session = match account_session(&s, &t, &headers).await {
        Ok(Some(session)) => session,
        Ok(None) => return sign_in_first(&t, "/account/consents"),
        Err(e) => return pages::error_page(&s, &headers, &e),
    };
    let consents = match s.provider.store.consents(t.id(), &session.user_id).await {
        Ok(c) => c,
        Err(e) => return pages::error_page(&s, &headers, &e.into()),
    };
    let mut rows = Vec::new();
    for c in consents {
        let name = match s.provider.client(&t, &c.client_id).await {
            Ok(Some(cl)) => cl.name.clone(),
            _ => c.client_id.clone(),
        };
        rows.push(context! { client_id => c.client_id, client_name => name, scope => c.scope.to_string() });
    }
    let lang = pages::locale(&s, &headers, None);
    let (csrf, set) = pages::csrf_token(&s, &headers);
    let page = pages::render(
        &s,
        StatusCode::OK,
        "consents.html",
        &lang,
        context! {
            consents => rows,
            csrf,
            action => t.url("/account/consents/withdraw"),
            agents_url => t.url("/account/agents"),
        },
    );
    pages::with_cookies(page, set)
}

/// `POST {issuer}/account/consents/withdraw`.
pub async fn withdraw(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(form) = pages::checked_form(&s, &headers, &body) else {
        return pages::form_expired(&s, &headers);
    };
    let Some(session) = account_session(&s, &t, &headers).await.ok().flatten() else {
        return sign_in_first(&t, "/account/consents");
    };
    let client_id = form.get("client_id").unwrap_or_default();
    if let Err(e) =
        account::withdraw_consent(&s.provider, &t, &session.user_id, client_id, &meta).await
    {
        return pages::error_page(&s, &headers, &e);
    }
    pages::see_other(&t.url("/account/consents"))
}
