//! The consent page and its form post.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mandate_core::domain::agents::Agent;
use mandate_core::domain::model::{Client, Session};
use mandate_core::oauth::authorize::{self, Interaction};
use mandate_core::{OAuthError, TenantCtx};
use minijinja::context;

use super::pages;
use super::words;
use crate::client_ip::Meta;
use crate::session::current_session;
use crate::state::AppState;
use crate::tenant::Tenant;

/// Render the consent form; for a registered agent's request it names the agent (name,
/// provider, model, owner) and says what it would be delegated, on which resources, how long.
pub async fn render(
    s: &AppState,
    t: &TenantCtx,
    headers: &HeaderMap,
    client: &Client,
    agent: Option<&Agent>,
    i: &Interaction,
    session: &Session,
) -> Response {
    let lang = pages::locale(s, headers, i.req.ui_locales.as_deref());
    let username = match s.provider.store.user(t.id(), &session.user_id).await {
        Ok(Some(u)) => u.username,
        Ok(None) => String::new(),
        Err(e) => return pages::error_page(s, headers, &e.into()),
    };
    let scopes: Vec<String> = i
        .req
        .scope
        .iter()
        .map(|sc| words::scope_words(s, t, &lang, sc))
        .collect();
    // Whether approving would delegate anything (an agent asking only who the person is gets no
    // mandate, so no duration is shown).
    let delegates = agent.is_some_and(|a| authorize::consent_mandate_terms(&i.req, a).is_some());
    let agent = match agent {
        None => None,
        Some(a) => match words::agent_view(s, t, &lang, a).await {
            Ok(v) => Some(v),
            Err(e) => return pages::error_page(s, headers, &e),
        },
    };
    let details: Vec<String> = i
        .req
        .authorization_details
        .iter()
        .map(|d| words::detail_words(s, &lang, d))
        .collect();
    let minutes = (authorize::CONSENT_MANDATE_SECONDS / 60).to_string();
    let (csrf, set) = pages::csrf_token(s, headers);
    let page = pages::render(
        s,
        StatusCode::OK,
        "consent.html",
        &lang,
        context! {
            action => t.url("/consent"),
            client_name => client.name,
            scopes,
            username,
            interaction => i.seal(t),
            csrf,
            agent,
            resources => i.req.resources,
            details,
            minutes,
            delegates,
        },
    );
    pages::with_cookies(page, set)
}

/// `POST {issuer}/consent`.
pub async fn consent(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(form) = pages::checked_form(&s, &headers, &body) else {
        return pages::form_expired(&s, &headers);
    };
    let interaction = form
        .get("interaction")
        .and_then(|v| Interaction::open(&s.provider, &t, v));
    let session = current_session(&s, &t, &headers).await.ok().flatten();
    // The interaction must belong to the session that saw the consent page.
    let (Some(i), Some(session)) = (interaction, session) else {
        return pages::form_expired(&s, &headers);
    };
    if i.sid.as_deref() != Some(session.sid.as_str()) {
        return pages::form_expired(&s, &headers);
    }
    match form.get("decision") {
        Some("approve") => {
            // An agent's approval records a mandate (and is never remembered as consent).
            let agent = match authorize::agent_client(&s.provider, &t, &i.req.client_id).await {
                Ok(a) => a,
                Err(e) => return pages::error_page(&s, &headers, &e),
            };
            let given = match agent {
                Some(_) => {
                    authorize::approve_agent(&s.provider, &t, &i.req, &session.user_id, &meta).await
                }
                None => authorize::give_consent(&s.provider, &t, &i.req, &session.user_id, &meta)
                    .await
                    .map(|()| None),
            };
            let mandate = match given {
                Ok(m) => m,
                Err(e) => return pages::error_page(&s, &headers, &e),
            };
            match authorize::issue_code(&s.provider, &t, &i.req, &session, mandate.as_ref(), &meta)
                .await
            {
                Ok(url) => pages::see_other(&url),
                Err(e) => pages::error_page(&s, &headers, &e),
            }
        }
        Some("deny") => {
            let err = match authorize::deny_consent(&s.provider, &t, &i.req, &session, &meta).await
            {
                Ok(err) => err,
                Err(e) => return pages::error_page(&s, &headers, &e.into()),
            };
            pages::see_other(&authorize::error_redirect(
                &t,
                &i.req.redirect_uri,
                i.req.state.as_deref(),
                &err,
            ))
        }
        _ => pages::error_page(
            &s,
            &headers,
            &OAuthError::invalid_request("decision must be approve or deny"),
        ),
    }
}
