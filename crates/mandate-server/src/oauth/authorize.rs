//! `GET|POST {issuer}/authorize` (RFC 6749 §4.1.1, OIDC Core §3.1.2.1): validate, then log in,
//! ask consent, or answer the client, as `mandate_core::oauth::authorize::next_step` decides.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use mandate_core::audit::{AuditEvent, EventKind, Outcome, Principal, RequestMeta};
use mandate_core::domain::model::{Client, Session};
use mandate_core::oauth::authorize::{
    self, AuthorizeError, AuthorizeRequest, Interaction, Next, Situation,
};
use mandate_core::{OAuthError, TenantCtx, login, oidc::logout};

use crate::client_ip::Meta;
use crate::params::{self, Params};
use crate::state::AppState;
use crate::tenant::Tenant;
use crate::ui::{consent, login as login_page, pages};

pub async fn authorize_get(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    Meta(meta): Meta,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let params = Params::parse(q.unwrap_or_default().as_bytes());
    run(&s, &t, &meta, &headers, params).await
}

pub async fn authorize_post(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !params::is_form(&headers) {
        return pages::error_page(
            &s,
            &headers,
            &OAuthError::invalid_request("Content-Type must be application/x-www-form-urlencoded"),
        );
    }
    run(&s, &t, &meta, &headers, Params::parse(&body)).await
}

async fn run(
    s: &AppState,
    t: &TenantCtx,
    meta: &RequestMeta,
    headers: &HeaderMap,
    params: Result<Params, OAuthError>,
) -> Response {
    let params = match params {
        Ok(p) => p,
        Err(e) => return pages::error_page(s, headers, &e),
    };
    match authorize::validate_request(&s.provider, t, &params.single, &params.all("resource")).await
    {
        Ok((client, req)) => {
            let session = match current_session(s, t, headers).await {
                Ok(sess) => sess,
                Err(e) => return pages::error_page(s, headers, &e),
            };
            proceed(s, t, meta, headers, &client, req, session, false).await
        }
        Err(AuthorizeError::Page(e)) => {
            audit_failure(s, t, meta, params.get("client_id"), &e).await;
            pages::error_page(s, headers, &e)
        }
        Err(AuthorizeError::Redirect {
            redirect_uri,
            state,
            error,
        }) => {
            audit_failure(s, t, meta, params.get("client_id"), &error).await;
            pages::see_other(&authorize::error_redirect(
                t,
                &redirect_uri,
                state.as_deref(),
                &error,
            ))
        }
    }
}

async fn audit_failure(
    s: &AppState,
    t: &TenantCtx,
    meta: &RequestMeta,
    client_id: Option<&str>,
    e: &OAuthError,
) {
    let mut ev = AuditEvent::new(
        t.id(),
        EventKind::AuthorizationFailed,
        Outcome::Failure,
        Principal::Anonymous,
        meta,
    )
    .reason(e.code.as_str());
    ev.client_id = client_id.map(|c| c.chars().take(256).collect());
    ev.detail = serde_json::json!({"error_description": e.description});
    if let Err(err) = s.provider.store.record(&ev).await {
        tracing::error!(error = %err, "audit write failed");
    }
}

/// The session behind the tenant's session cookie.
pub async fn current_session(
    s: &AppState,
    t: &TenantCtx,
    headers: &HeaderMap,
) -> Result<Option<Session>, OAuthError> {
    match crate::cookies::get(
        headers,
        &crate::cookies::session_name(&s.config, &t.tenant.name),
    ) {
        Some(v) => Ok(login::current_session(&s.provider, t, &v).await?),
        None => Ok(None),
    }
}

/// Decide and perform the next step of a validated request.
#[allow(clippy::too_many_arguments)]
pub async fn proceed(
    s: &AppState,
    t: &TenantCtx,
    meta: &RequestMeta,
    headers: &HeaderMap,
    client: &Client,
    req: AuthorizeRequest,
    session: Option<Session>,
    logged_in_now: bool,
) -> Response {
    let now = s.provider.now();
    let hint = req
        .id_token_hint
        .as_deref()
        .map(|h| logout::id_token_hint(t, h, now).map(|(sub, _)| sub));
    // An unverifiable hint matches nobody.
    let hint_sub = match &hint {
        Some(Some(sub)) => Some(sub.as_str()),
        Some(None) => Some(""),
        None => None,
    };
    let consent = match &session {
        Some(sess) => match s
            .provider
            .store
            .consent(t.id(), &sess.user_id, &client.client_id)
            .await
        {
            Ok(c) => c,
            Err(e) => return pages::error_page(s, headers, &e.into()),
        },
        None => None,
    };
    // A registered agent's request: consent names the agent and approving records a mandate.
    let agent = match authorize::agent_client(&s.provider, t, &client.client_id).await {
        Ok(a) => a,
        Err(e) if e.code == mandate_core::ErrorCode::ServerError => {
            return pages::error_page(s, headers, &e);
        }
        Err(e) => {
            return pages::see_other(&authorize::error_redirect(
                t,
                &req.redirect_uri,
                req.state.as_deref(),
                &e,
            ));
        }
    };
    let situation = Situation {
        session: session.as_ref(),
        consent: consent.as_ref(),
        logged_in_now,
        hint_sub,
        agent: agent.is_some(),
        now,
    };
    match authorize::next_step(&req, &situation) {
        Next::Login => login_page::render(
            s,
            t,
            headers,
            client,
            &Interaction::new(&s.provider, req),
            None,
        ),
        Next::Consent => {
            let sess = session.expect("consent implies a session");
            let mut i = Interaction::new(&s.provider, req);
            i.sid = Some(sess.sid.clone());
            consent::render(s, t, headers, client, agent.as_ref(), &i, &sess).await
        }
        Next::Issue => {
            let sess = session.expect("issue implies a session");
            match authorize::issue_code(&s.provider, t, &req, &sess, None, meta).await {
                Ok(url) => pages::see_other(&url),
                Err(e) => pages::error_page(s, headers, &e),
            }
        }
        Next::Fail(e) => pages::see_other(&authorize::error_redirect(
            t,
            &req.redirect_uri,
            req.state.as_deref(),
            &e,
        )),
    }
}
