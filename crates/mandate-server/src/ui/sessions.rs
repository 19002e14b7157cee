//! The person's signed-in devices: `GET {issuer}/account/sessions` lists their live sessions
//! (browser, address, when it began, this one marked), `POST …/end` signs one out (its grants
//! revoked, as a logout there), `POST …/end-others` signs out every other one.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mandate_core::login::{self, MAX_LISTED_SESSIONS};
use minijinja::context;

use super::pages;
use super::signin::sign_in_first;
use super::words::{device_words, when};
use crate::client_ip::Meta;
use crate::session::account_session as current_session;
use crate::state::AppState;
use crate::tenant::Tenant;

const PAGE: &str = "/account/sessions";

/// `GET {issuer}/account/sessions`.
pub async fn page(State(s): State<AppState>, Tenant(t): Tenant, headers: HeaderMap) -> Response {
    let current = match current_session(&s, &t, &headers).await {
        Ok(Some(sess)) => sess,
        Ok(None) => return sign_in_first(&t, PAGE),
        Err(e) => return pages::error_page(&s, &headers, &e),
    };
    let sessions = match s
        .provider
        .store
        .user_sessions(
            t.id(),
            &current.user_id,
            s.provider.now(),
            MAX_LISTED_SESSIONS,
        )
        .await
    {
        Ok(v) => v,
        Err(e) => return pages::error_page(&s, &headers, &e.into()),
    };
    let lang = pages::locale(&s, &headers, None);
    let unknown = s.templates.message(&lang, "device_unknown");
    let rows: Vec<_> = sessions
        .iter()
        .map(|x| {
            context! {
                sid => x.sid,
                device => x.user_agent.as_deref().map(device_words).unwrap_or_else(|| unknown.clone()),
                ip => x.ip,
                started => (x.created_at > 0).then(|| when(x.created_at)),
                current => x.sid == current.sid,
            }
        })
        .collect();
    let (csrf, set) = pages::csrf_token(&s, &headers);
    let page = pages::render(
        &s,
        StatusCode::OK,
        "sessions.html",
        &lang,
        context! {
            sessions => rows,
            others => sessions.iter().any(|x| x.sid != current.sid),
            csrf,
            end_action => t.url("/account/sessions/end"),
            end_others_action => t.url("/account/sessions/end-others"),
            account_url => t.url("/account"),
        },
    );
    pages::with_cookies(page, set)
}

/// `POST {issuer}/account/sessions/end` with `sid`: sign that device out (this one too: then
/// the person is signed out).
pub async fn end(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(form) = pages::checked_form(&s, &headers, &body) else {
        return pages::form_expired(&s, &headers);
    };
    let current = match current_session(&s, &t, &headers).await {
        Ok(Some(sess)) => sess,
        Ok(None) => return sign_in_first(&t, PAGE),
        Err(e) => return pages::error_page(&s, &headers, &e),
    };
    let sid = form.get("sid").unwrap_or_default();
    if let Err(e) = login::sign_out_session(&s.provider, &t, &current.user_id, sid, &meta).await {
        return pages::error_page(&s, &headers, &e.into());
    }
    if sid == current.sid {
        let gone = crate::cookies::clear(
            &s.config,
            &crate::cookies::session_name(&s.config, &t.tenant.name),
        );
        let r = pages::message_page(
            &s,
            &headers,
            StatusCode::OK,
            "logged_out_title",
            "logged_out",
        );
        return pages::with_cookies(r, [gone]);
    }
    pages::see_other(&t.url(PAGE))
}

/// `POST {issuer}/account/sessions/end-others`: sign out everywhere but here.
pub async fn end_others(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if pages::checked_form(&s, &headers, &body).is_none() {
        return pages::form_expired(&s, &headers);
    }
    let current = match current_session(&s, &t, &headers).await {
        Ok(Some(sess)) => sess,
        Ok(None) => return sign_in_first(&t, PAGE),
        Err(e) => return pages::error_page(&s, &headers, &e),
    };
    if let Err(e) = login::sign_out_others(&s.provider, &t, &current, &meta).await {
        return pages::error_page(&s, &headers, &e.into());
    }
    pages::see_other(&t.url(PAGE))
}
