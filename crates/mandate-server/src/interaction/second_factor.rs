//! The second-factor step: `POST {issuer}/login/second-factor` checks a TOTP or recovery code
//! (guessing limits in the core), adds it to the session (`login::add_factor`: `amr` gains
//! `otp`, `acr` becomes mfa, `auth_time` now) and goes on; `POST …/login/second-factor/enrol`
//! confirms the authenticator app a person who must have one enrols during the sign-in, then
//! shows their recovery codes; `POST …/login/second-factor/continue` goes on after a page in between;
//! `POST …/login/second-factor/email-code` mails a one-time code (again: a new one) and shows
//! the field for it, which posts to the first. Each goes on with the authorization request in
//! flight (`proceed`) or back to the account page the person opened (`return_to`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mandate_core::account::safe_return_to;
use mandate_core::audit::RequestMeta;
use mandate_core::domain::model::{Client, Session, User};
use mandate_core::login::email_code::mask_address;
use mandate_core::login::method::{Proof, SecondFactorStep};
use mandate_core::login::recovery::RecoveryError;
use mandate_core::login::second_factor::{self, Enrolment, SecondFactorError};
use mandate_core::login::totp::{self, TotpError, TotpMethod};
use mandate_core::oauth::authorize::Interaction;
use mandate_core::{OAuthError, TenantCtx, login};

use super::proceed;
use crate::client_ip::Meta;
use crate::params::Params;
use crate::session::{current_session, signing_in_session};
use crate::state::AppState;
use crate::tenant::Tenant;
use crate::ui::pages;
use crate::ui::second_factor::{Carry, codes_page, used_page, verify_page};

/// What a second-factor form continues.
enum Flow {
    Authorize(Box<Interaction>, Arc<Client>),
    Account(String),
}

impl Flow {
    fn carry(&self, t: &TenantCtx) -> Carry {
        match self {
            Flow::Authorize(i, _) => Carry::Interaction(i.seal(t)),
            Flow::Account(r) => Carry::ReturnTo(r.clone()),
        }
    }

    fn client_id(&self) -> Option<&str> {
        match self {
            Flow::Authorize(_, c) => Some(&c.client_id),
            Flow::Account(_) => None,
        }
    }
}

/// The form's flow and the session it belongs to; `Err` is the page to answer with (the form
/// expired, or the person is not signed in).
async fn opened(
    s: &AppState,
    t: &TenantCtx,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Params, Flow, Session), Response> {
    let expired = || pages::form_expired(s, headers);
    let form = pages::checked_form(s, headers, body).ok_or_else(expired)?;
    let flow = if let Some(sealed) = form.get("interaction") {
        let i = Interaction::open(&s.provider, t, sealed).ok_or_else(expired)?;
        let client = match s.provider.client(t, &i.req.client_id).await {
            Ok(Some(c)) => c,
            Ok(None) => return Err(expired()),
            Err(e) => return Err(pages::error_page(s, headers, &e.into())),
        };
        Flow::Authorize(Box::new(i), client)
    } else {
        let back = form
            .get("return_to")
            .and_then(safe_return_to)
            .ok_or_else(expired)?;
        Flow::Account(back.to_string())
    };
    // The sign-in that started a session may still owe the step its risk decision asked for:
    // its own forms (bound to it) see it; nothing else does.
    let bound = matches!(&flow, Flow::Authorize(i, _) if i.sid.is_some());
    let found = if bound {
        signing_in_session(s, t, headers).await
    } else {
        current_session(s, t, headers).await
    };
    let session = match found {
        Ok(Some(sess)) => sess,
        Ok(None) => return Err(expired()),
        Err(e) => return Err(pages::error_page(s, headers, &e)),
    };
    // A form of the sign-in that started a session belongs to that session only.
    if let Flow::Authorize(i, _) = &flow
        && i.sid.as_deref().is_some_and(|sid| sid != session.sid)
    {
        return Err(expired());
    }
    Ok((form, flow, session))
}

/// Go on with the flow once the session has what it needs.
async fn go_on(
    s: &AppState,
    t: &TenantCtx,
    meta: &RequestMeta,
    headers: &HeaderMap,
    flow: Flow,
    session: Session,
) -> Response {
    match flow {
        Flow::Authorize(i, client) => {
            let logged_in_now = i.sid.is_some();
            proceed(
                s,
                t,
                meta,
                headers,
                &client,
                i.req,
                Some(session),
                logged_in_now,
            )
            .await
        }
        Flow::Account(back) => pages::see_other(&t.url(&back)),
    }
}

/// [`opened`], with the person the session is of and what they enrolled.
async fn opened_by(
    s: &AppState,
    t: &TenantCtx,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Params, Flow, Session, User, Enrolment), Response> {
    let (form, flow, session) = opened(s, t, headers, body).await?;
    match second_factor::enrolment_of(&s.provider, t, &session.user_id).await {
        Ok(Some((user, enrolled))) => Ok((form, flow, session, user, enrolled)),
        Ok(None) => Err(pages::form_expired(s, headers)),
        Err(e) => Err(pages::error_page(s, headers, &e.into())),
    }
}

/// `POST {issuer}/login/second-factor` (`method`: `totp`, `recovery_code` or `email_code`,
/// `code`).
pub async fn verify(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (form, flow, session, user, enrolled) = match opened_by(&s, &t, &headers, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let method = form.get("method").unwrap_or_default();
    let code = form.get("code").unwrap_or_default();
    // Asked again: the same page, with the field for the mailed code when that was typed.
    let sent_to = (method == "email_code")
        .then(|| user.email.as_deref().map(mask_address))
        .flatten();
    let again = |key: &str, status: StatusCode| {
        let methods = second_factor::page_methods(&s.provider, &t, &session, &enrolled);
        verify_page(
            &s,
            &t,
            &headers,
            &methods,
            &flow.carry(&t),
            sent_to.as_deref(),
            Some(key),
            status,
        )
    };
    let verified = match second_factor::verify(&s.provider, &t, &user, method, code, &meta).await {
        Ok(v) => v,
        Err(SecondFactorError::Invalid) => return again("wrong_code", StatusCode::UNAUTHORIZED),
        Err(SecondFactorError::Throttled { retry_after }) => {
            return pages::too_many(
                again("too_many_codes", StatusCode::TOO_MANY_REQUESTS),
                retry_after,
            );
        }
        Err(SecondFactorError::Store(e)) => return pages::error_page(&s, &headers, &e.into()),
    };
    let session = match login::add_factor(&s.provider, &t, &session, &verified.proof, &meta).await {
        Ok(sess) => sess,
        Err(e) => return pages::error_page(&s, &headers, &e.into()),
    };
    match verified.recovery_codes_left {
        // The person learns how many recovery codes are left, then goes on.
        Some(left) => used_page(&s, &t, &headers, left, &flow.carry(&t), None),
        None => go_on(&s, &t, &meta, &headers, flow, session).await,
    }
}

/// `POST {issuer}/login/second-factor/email-code`: mail the person a one-time code (a new one
/// replaces the last, within the sending limit), then the field to type it in; never the full
/// address, only `k•••@example.com`.
pub async fn send_email_code(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (_, flow, session, user, enrolled) = match opened_by(&s, &t, &headers, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let methods = second_factor::page_methods(&s.provider, &t, &session, &enrolled);
    let lang = pages::locale(&s, &headers, None);
    let page = |sent_to: Option<&str>, error: Option<&str>, status: StatusCode| {
        verify_page(
            &s,
            &t,
            &headers,
            &methods,
            &flow.carry(&t),
            sent_to,
            error,
            status,
        )
    };
    match second_factor::send_email_code(
        &s.provider,
        &t,
        &session,
        &user,
        &enrolled,
        Some(lang.as_str()),
    )
    .await
    {
        Ok(masked) => page(Some(&masked), None, StatusCode::OK),
        Err(RecoveryError::Throttled { retry_after } | RecoveryError::Busy { retry_after }) => {
            pages::too_many(
                page(
                    None,
                    Some("email_code_too_many"),
                    StatusCode::TOO_MANY_REQUESTS,
                ),
                retry_after,
            )
        }
        Err(RecoveryError::Store(e)) => pages::error_page(&s, &headers, &e.into()),
        // Not offered to this session (or mail stopped working): as a stale form.
        Err(_) => pages::form_expired(&s, &headers),
    }
}

/// `POST {issuer}/login/second-factor/enrol` (`code`): confirm the authenticator app enrolled
/// during the sign-in; it counts as this sign-in's second factor. Then the recovery codes.
pub async fn enrol(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (form, flow, session) = match opened(&s, &t, &headers, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    // Only a person asked to enrol may enrol here (one who has a second factor proves it).
    let user = match second_factor::outstanding(&s.provider, &t, &session, flow.client_id()).await {
        Ok(Some((user, SecondFactorStep::Enrol(_)))) => user,
        Ok(None) => return go_on(&s, &t, &meta, &headers, flow, session).await,
        Ok(Some(_)) => return pages::form_expired(&s, &headers),
        Err(e) => return pages::error_page(&s, &headers, &e.into()),
    };
    let carry = flow.carry(&t);
    let code = form.get("code").unwrap_or_default();
    let codes = match totp::confirm_enrolment(&s.provider, &t, &user, code, &meta).await {
        Ok(codes) => codes,
        Err(TotpError::WrongCode) => {
            return crate::ui::second_factor::enrol(
                &s,
                &t,
                &headers,
                &user,
                &carry,
                Some("wrong_code"),
            )
            .await;
        }
        Err(TotpError::NotPending) => {
            return crate::ui::second_factor::enrol(
                &s,
                &t,
                &headers,
                &user,
                &carry,
                Some("totp_enrol_expired"),
            )
            .await;
        }
        Err(TotpError::AlreadyEnrolled) => return pages::form_expired(&s, &headers),
        Err(TotpError::Store(e)) => return pages::error_page(&s, &headers, &e.into()),
    };
    if let Err(e) =
        login::add_factor(&s.provider, &t, &session, &Proof::of(&TotpMethod), &meta).await
    {
        return pages::error_page(&s, &headers, &OAuthError::from(e));
    }
    codes_page(&s, &t, &headers, &codes, &carry, None)
}

/// `POST {issuer}/login/second-factor/continue`: on after a page in between (recovery codes shown, a
/// recovery code accepted).
pub async fn go_on_after(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match opened(&s, &t, &headers, &body).await {
        Ok((_, flow, session)) => go_on(&s, &t, &meta, &headers, flow, session).await,
        Err(r) => r,
    }
}
