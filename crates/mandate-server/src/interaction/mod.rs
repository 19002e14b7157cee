//! The login interaction pipeline: after a request is validated (`oauth::authorize`) or a
//! login method succeeded, the core decides what comes next
//! (`mandate_core::oauth::authorize::next_step`: log in with the methods on offer, step up to a
//! requested `acr`, add a second factor, consent, issue or fail) and this
//! module performs it; the pages in `ui` only render. Login methods are submodules (password
//! first), so a new method is one more file here, and nothing in `ui` calls back into the flow.

pub mod passkey;
pub mod password;
pub mod second_factor;

use axum::http::HeaderMap;
use axum::response::Response;
use mandate_core::audit::RequestMeta;
use mandate_core::domain::model::{Client, Session, User};
use mandate_core::login::method::{Factor, LoginMethod, SecondFactorStep, second_factor_ids};
use mandate_core::login::second_factor as factors;
use mandate_core::oauth::authorize::{self, AuthorizeRequest, Interaction, Next, Situation};
use mandate_core::{TenantCtx, oidc::logout};

use axum::body::Bytes;
use axum::extract::State;
use mandate_core::OAuthError;
use mandate_core::login::webauthn;

use crate::client_ip::Meta;
use crate::session::current_session;
use crate::state::AppState;
use crate::tenant::Tenant;
use crate::ui::second_factor::{self as second_factor_page, Carry};
use crate::ui::{consent, login as login_page, pages, passkeys as passkeys_page};

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
    // With a session: what its person can use, and whether this sign-in needs a second factor.
    let person = match &session {
        Some(sess) => match factors::enrolment_of(&s.provider, t, &sess.user_id).await {
            Ok(p) => p,
            Err(e) => return pages::error_page(s, headers, &e.into()),
        },
        None => None,
    };
    let methods: Vec<&dyn LoginMethod> = match &person {
        Some((_, e)) => e.methods(&s.provider, t),
        None => mandate_core::login::offered(&s.provider, t),
    };
    let situation = Situation {
        session: session.as_ref(),
        consent: consent.as_ref(),
        logged_in_now,
        hint_sub,
        agent: agent.is_some(),
        methods: &methods,
        second_factor_required: person.as_ref().is_some_and(|(_, e)| {
            factors::required(&t.tenant.settings, Some(&client.client_id), e)
        }),
        enrol: factors::enrolable(),
        risk_fallback: person
            .as_ref()
            .map_or(&[], |(_, e)| factors::risk_fallback(e)),
        now,
    };
    // A page of the second-factor step carries the request, bound to the session when it
    // started in this interaction (so `prompt=login` is not asked again).
    let carry = |req: AuthorizeRequest| {
        let mut i = Interaction::new(&s.provider, req);
        if logged_in_now {
            i.sid = session.as_ref().map(|x| x.sid.clone());
        }
        Carry::Interaction(i.seal(t))
    };
    match authorize::next_step(&req, &situation) {
        // A step-up a second factor can give: asked for on the second-factor page (the person
        // is signed in), offering those.
        Next::StepUp { methods: up, .. }
            if person.is_some()
                && methods
                    .iter()
                    .any(|m| up.contains(&m.id()) && m.factor() == Factor::Second) =>
        {
            let second: Vec<&dyn LoginMethod> = methods
                .iter()
                .copied()
                .filter(|m| up.contains(&m.id()))
                .collect();
            let step = SecondFactorStep::Verify(second_factor_ids(&second));
            let user = &person.as_ref().expect("a session's person").0;
            second_factor_page::ask(s, t, headers, user, &step, &carry(req)).await
        }
        Next::Login { methods } => login_page::render(
            s,
            t,
            headers,
            client,
            &Interaction::new(&s.provider, req),
            &methods,
            None,
        ),
        // Signing in again with a method that reaches the `acr` asked for: the ones that do.
        Next::StepUp { methods, .. } => {
            // The same person signs in again: their username is filled in.
            let mut req = req;
            if let Some(sess) = &session {
                match s.provider.store.user(t.id(), &sess.user_id).await {
                    Ok(user) => req.login_hint = user.map(|u| u.username),
                    Err(e) => return pages::error_page(s, headers, &e.into()),
                }
            }
            login_page::render_step_up(
                s,
                t,
                headers,
                client,
                &Interaction::new(&s.provider, req),
                &methods,
            )
        }
        Next::SecondFactor { methods } => {
            let user = &person.as_ref().expect("a session's person").0;
            let step = SecondFactorStep::Verify(methods);
            second_factor_page::ask(s, t, headers, user, &step, &carry(req)).await
        }
        // A passkey the risk decision owed and the person has none: recorded, the session now
        // owes a second factor, asked for (their own, else the code by e-mail).
        Next::RiskFallback { reason, methods } => {
            let sess = session.as_ref().expect("a risk step implies a session");
            let step = mandate_core::login::RiskStep::SecondFactor;
            let cid = Some(client.client_id.as_str());
            if let Err(e) =
                mandate_core::login::risk_step(&s.provider, t, sess, cid, step, reason, meta).await
            {
                return pages::error_page(s, headers, &e.into());
            }
            let user = &person.as_ref().expect("a session's person").0;
            let step = SecondFactorStep::Verify(methods);
            second_factor_page::ask(s, t, headers, user, &step, &carry(req)).await
        }
        // Nothing the person has meets the step the risk decision owed: recorded, refused.
        Next::RiskRefused { error, reason } => {
            let sess = session.as_ref().expect("a risk step implies a session");
            let step = mandate_core::login::RiskStep::Refused;
            let cid = Some(client.client_id.as_str());
            if let Err(e) =
                mandate_core::login::risk_step(&s.provider, t, sess, cid, step, reason, meta).await
            {
                return pages::error_page(s, headers, &e.into());
            }
            pages::see_other(&authorize::error_redirect(
                t,
                &req.redirect_uri,
                req.state.as_deref(),
                &error,
            ))
        }
        Next::EnrolSecondFactor { methods } => {
            let user = &person.as_ref().expect("a session's person").0;
            let step = SecondFactorStep::Enrol(methods);
            second_factor_page::ask(s, t, headers, user, &step, &carry(req)).await
        }
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

/// How long "not now" to the offer of a passkey is remembered (seconds).
const PASSKEY_LATER: i64 = 30 * 24 * 3600;

/// After a first sign-in with a password: offer to add a passkey (when passkeys work on this
/// issuer, the person has none and did not say "not now" lately), else go on with the request.
#[allow(clippy::too_many_arguments)]
pub async fn after_sign_in(
    s: &AppState,
    t: &TenantCtx,
    meta: &RequestMeta,
    headers: &HeaderMap,
    client: &Client,
    mut i: Interaction,
    session: Session,
    user: &User,
) -> Response {
    let later = crate::cookies::get(
        headers,
        &crate::cookies::passkey_later_name(&s.config, &t.tenant.name),
    )
    .is_some();
    let none_yet = matches!(
        s.provider
            .store
            .passkeys(t.id(), &user.id)
            .await
            .map(|k| k.is_empty()),
        Ok(true)
    );
    let prompt_none = i.req.prompt.iter().any(|p| p == "none");
    // A second factor still owed comes first (and a passkey is not offered before it).
    let owes = !matches!(
        factors::outstanding(&s.provider, t, &session, Some(&client.client_id)).await,
        Ok(None)
    );
    // A sign-in the risk policy asks more of is offered nothing: it goes to the step-up.
    let owing = mandate_core::login::owes_risk_step(&session);
    if later || !none_yet || prompt_none || owes || owing || !webauthn::available(t) {
        return proceed(s, t, meta, headers, client, i.req, Some(session), true).await;
    }
    i.sid = Some(session.sid.clone());
    passkeys_page::offer(s, t, headers, &i)
}

/// `POST {issuer}/login/continue`: go on with a request after a page that interrupted it (the
/// passkey offer). Only the session that signed in within this interaction may continue it.
pub async fn continue_request(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(form) = pages::checked_form(&s, &headers, &body) else {
        return pages::form_expired(&s, &headers);
    };
    let (i, session, client) = match resumed(&s, &t, &headers, &form).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let resp = proceed(&s, &t, &meta, &headers, &client, i.req, Some(session), true).await;
    if form.get("skip_passkey").is_some() {
        let later = crate::cookies::set(
            &s.config,
            &crate::cookies::passkey_later_name(&s.config, &t.tenant.name),
            "1",
            Some(PASSKEY_LATER),
        );
        return pages::with_cookies(resp, [later]);
    }
    resp
}

/// The client an interaction's request names, or the page to answer with (unknown client: an
/// error page, never a redirect).
pub(crate) async fn client_of(
    s: &AppState,
    t: &TenantCtx,
    headers: &HeaderMap,
    i: &Interaction,
) -> Result<std::sync::Arc<Client>, Response> {
    match s.provider.client(t, &i.req.client_id).await {
        Ok(Some(c)) => Ok(c),
        Ok(None) => Err(pages::error_page(
            s,
            headers,
            &OAuthError::invalid_request("unknown client"),
        )),
        Err(e) => Err(pages::error_page(s, headers, &e.into())),
    }
}

/// A page that interrupted a sign-in (the passkey offer) going on: the interaction its form
/// carries, the session that signed in within it (no other may go on with it) and the client;
/// else the page to answer with.
pub(crate) async fn resumed(
    s: &AppState,
    t: &TenantCtx,
    headers: &HeaderMap,
    form: &crate::params::Params,
) -> Result<(Interaction, Session, std::sync::Arc<Client>), Response> {
    let expired = || pages::form_expired(s, headers);
    let i = form
        .get("interaction")
        .and_then(|v| Interaction::open(&s.provider, t, v))
        .ok_or_else(expired)?;
    let session = match current_session(s, t, headers).await {
        Ok(Some(sess)) if i.sid.as_deref() == Some(sess.sid.as_str()) => sess,
        Ok(_) => return Err(expired()),
        Err(e) => return Err(pages::error_page(s, headers, &e)),
    };
    let client = client_of(s, t, headers, &i).await?;
    Ok((i, session, client))
}
