//! The signed-in user's account pages: which applications hold consent, and withdrawing it
//! (which also revokes what the consent gave: `mandate_core::account::withdraw_consent`).
//! Signed-out people are sent to the account sign-in page and come back here.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mandate_core::account::{self, ACCOUNT_HOME};
use minijinja::context;

use super::signin::sign_in_first;
use super::{pages, words};
use crate::client_ip::Meta;
use crate::session::account_session;
use crate::state::AppState;
use crate::tenant::Tenant;

/// The sections of the account page, in order: (message key of the title, of the
/// description, path). Other features add theirs here.
const SECTIONS: [(&str, &str, &str); 6] = [
    ("profile_title", "account_profile_text", "/account/profile"),
    (
        "security_title",
        "account_security_text",
        "/account/security",
    ),
    (
        "passkeys_title",
        "account_passkeys_text",
        "/account/passkeys",
    ),
    (
        "sessions_title",
        "account_sessions_text",
        "/account/sessions",
    ),
    (
        "consents_title",
        "account_consents_text",
        "/account/consents",
    ),
    ("agents_title", "account_agents_text", "/account/agents"),
];

/// `GET {issuer}/account`: the person's home: who they are and a way into every section.
pub async fn home_page(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    headers: HeaderMap,
) -> Response {
    let session = match account_session(&s, &t, &headers).await {
        Ok(Some(session)) => session,
        Ok(None) => return sign_in_first(&t, ACCOUNT_HOME),
        Err(e) => return pages::error_page(&s, &headers, &e),
    };
    let user = match s.provider.store.user(t.id(), &session.user_id).await {
        Ok(Some(u)) => u,
        Ok(None) => return sign_in_first(&t, ACCOUNT_HOME),
        Err(e) => return pages::error_page(&s, &headers, &e.into()),
    };
    let lang = pages::locale(&s, &headers, None);
    let sections: Vec<_> = SECTIONS
        .iter()
        .map(|(title, text, path)| {
            context! {
                title => s.templates.message(&lang, title),
                text => s.templates.message(&lang, text),
                url => t.url(path),
            }
        })
        .collect();
    let (csrf, set) = pages::csrf_token(&s, &headers);
    let page = pages::render(
        &s,
        StatusCode::OK,
        "account.html",
        &lang,
        context! {
            name => user.name.clone().unwrap_or_else(|| user.username.clone()),
            username => user.username,
            email => user.email,
            sections,
            csrf,
            logout_action => t.url("/account/sessions/end"),
            sid => session.sid,
        },
    );
    pages::with_cookies(page, set)
}

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
    let lang = pages::locale(&s, &headers, None);
    let mut rows = Vec::new();
    for c in consents {
        let name = match s.provider.client(&t, &c.client_id).await {
            Ok(Some(cl)) => cl.name.clone(),
            _ => c.client_id.clone(),
        };
        let scopes: Vec<String> = c
            .scope
            .iter()
            .map(|sc| words::scope_words(&s, &t, &lang, sc))
            .collect();
        rows.push(context! {
            client_id => c.client_id,
            client_name => name,
            scope => c.scope.to_string(),
            scopes,
        });
    }
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
