//! The account's sign-in security page, `{issuer}/account/security`: set up an authenticator
//! app (QR code, the key as text, confirmed with a first code), remove it, and make new
//! recovery codes (shown once). Rules in `mandate_core::login::totp`; every change is on the
//! audit trail there.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use mandate_core::audit::Principal;
use mandate_core::domain::model::{Session, User};
use mandate_core::login::second_factor;
use mandate_core::login::totp::{self, TotpError, TotpMethod, recovery};
use mandate_core::login::{self, method::Proof};
use mandate_core::{OAuthError, TenantCtx};
use minijinja::context;

use super::pages;
use super::second_factor::{Carry, codes_page, enrol_page};
use super::signin::sign_in_first;
use crate::client_ip::Meta;
use crate::session::account_session;
use crate::state::AppState;
use crate::tenant::Tenant;

/// The page's path under the issuer.
pub const PAGE: &str = "/account/security";

/// Routes under `{issuer}`; merged into the tenant router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(PAGE, get(page))
        .route("/account/security/totp", post(start))
        .route("/account/security/totp/confirm", post(confirm))
        .route("/account/security/totp/remove", post(remove))
        .route("/account/security/recovery-codes", post(regenerate))
}

/// The signed-in person (with every factor required of them), or the answer to give.
async fn signed_in(
    s: &AppState,
    t: &TenantCtx,
    headers: &HeaderMap,
) -> Result<(Session, User), Response> {
    let session = match account_session(s, t, headers).await {
        Ok(Some(sess)) => sess,
        Ok(None) => return Err(sign_in_first(t, PAGE)),
        Err(e) => return Err(pages::error_page(s, headers, &e)),
    };
    match s.provider.store.user(t.id(), &session.user_id).await {
        Ok(Some(u)) => Ok((session, u)),
        Ok(None) => Err(sign_in_first(t, PAGE)),
        Err(e) => Err(pages::error_page(s, headers, &e.into())),
    }
}

/// A posted form of this page: CSRF checked, signed in, recently.
async fn posted(
    s: &AppState,
    t: &TenantCtx,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(crate::params::Params, Session, User), Response> {
    let form =
        pages::checked_form(s, headers, body).ok_or_else(|| pages::form_expired(s, headers))?;
    let (session, user) = signed_in(s, t, headers).await?;
    // Changing how one signs in needs a recent sign-in (as for passkeys and the password): a
    // stolen session cookie cannot set up, remove or renew a second factor.
    if !login::signed_in_recently(&s.provider, &session) {
        return Err(pages::see_other(
            &t.url("/account/login?return_to=/account/security&again=1"),
        ));
    }
    Ok((form, session, user))
}

/// `GET {issuer}/account/security`.
pub async fn page(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    headers: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let (_, user) = match signed_in(&s, &t, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let e = match second_factor::enrolment(&s.provider, &t, &user).await {
        Ok(e) => e,
        Err(e) => return pages::error_page(&s, &headers, &e.into()),
    };
    let lang = pages::locale(&s, &headers, None);
    let (csrf, set) = pages::csrf_token(&s, &headers);
    let totp_status = e.totp_enrolled_at.map(|at| {
        s.templates
            .message(&lang, "security_totp_on")
            .replace("{time}", &super::words::when(at))
    });
    let recovery_left = s
        .templates
        .message(&lang, "security_recovery_left")
        .replace("{count}", &e.recovery_codes_left.to_string());
    let page = pages::render(
        &s,
        StatusCode::OK,
        "security.html",
        &lang,
        context! {
            enrolled => e.totp_enrolled_at.is_some(),
            // After a removal (`?removed=totp`), said once the app is indeed gone.
            removed => e.totp_enrolled_at.is_none() && q.get("removed").is_some_and(|v| v == "totp"),
            totp_status,
            recovery_left,
            csrf,
            start_action => t.url("/account/security/totp"),
            remove_action => t.url("/account/security/totp/remove"),
            regenerate_action => t.url("/account/security/recovery-codes"),
            consents_url => t.url("/account/consents"),
            agents_url => t.url("/account/agents"),
        },
    );
    pages::with_cookies(page, set)
}

async fn show_enrolment(
    s: &AppState,
    t: &TenantCtx,
    headers: &HeaderMap,
    user: &User,
    error: Option<&str>,
) -> Response {
    match totp::start_enrolment(&s.provider, t, user).await {
        Ok(e) => enrol_page(
            s,
            headers,
            &e,
            &t.url("/account/security/totp/confirm"),
            &Carry::None,
            false,
            error,
        ),
        Err(TotpError::AlreadyEnrolled) => pages::see_other(&t.url(PAGE)),
        Err(TotpError::Store(e)) => pages::error_page(s, headers, &e.into()),
        Err(e) => pages::error_page(s, headers, &OAuthError::invalid_request(e.to_string())),
    }
}

/// `POST {issuer}/account/security/totp`: a new authenticator app (the enrolment page).
pub async fn start(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match posted(&s, &t, &headers, &body).await {
        Ok((_, _, user)) => show_enrolment(&s, &t, &headers, &user, None).await,
        Err(r) => r,
    }
}

/// `POST {issuer}/account/security/totp/confirm` (`code`): enrolled, and it counts for this
/// session (the person just proved they hold it); the recovery codes, shown once.
pub async fn confirm(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (form, session, user) = match posted(&s, &t, &headers, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let code = form.get("code").unwrap_or_default();
    let codes = match totp::confirm_enrolment(&s.provider, &t, &user, code, &meta).await {
        Ok(codes) => codes,
        Err(TotpError::WrongCode) => {
            return show_enrolment(&s, &t, &headers, &user, Some("wrong_code")).await;
        }
        Err(TotpError::NotPending) => {
            return show_enrolment(&s, &t, &headers, &user, Some("totp_enrol_expired")).await;
        }
        Err(TotpError::AlreadyEnrolled) => return pages::see_other(&t.url(PAGE)),
        Err(TotpError::Store(e)) => return pages::error_page(&s, &headers, &e.into()),
    };
    if let Err(e) =
        login::add_factor(&s.provider, &t, &session, &Proof::of(&TotpMethod), &meta).await
    {
        return pages::error_page(&s, &headers, &e.into());
    }
    codes_page(&s, &t, &headers, &codes, &Carry::None, Some(&t.url(PAGE)))
}

/// `POST {issuer}/account/security/totp/remove`: the authenticator app and the recovery codes
/// go (`second_factor_removed`).
pub async fn remove(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (_, _, user) = match posted(&s, &t, &headers, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let me = Principal::User {
        id: user.id.clone(),
    };
    if let Err(e) = totp::remove(&s.provider, &t, &user.id, me, &meta).await {
        return pages::error_page(&s, &headers, &e.into());
    }
    pages::see_other(&t.url(&format!("{PAGE}?removed=totp")))
}

/// `POST {issuer}/account/security/recovery-codes`: a new set replaces the old, shown once
/// (`recovery_codes_generated`). Only with an authenticator app enrolled.
pub async fn regenerate(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (_, _, user) = match posted(&s, &t, &headers, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match second_factor::enrolment(&s.provider, &t, &user).await {
        Ok(e) if e.totp_enrolled_at.is_some() => {}
        Ok(_) => return pages::see_other(&t.url(PAGE)),
        Err(e) => return pages::error_page(&s, &headers, &e.into()),
    }
    let me = Principal::User {
        id: user.id.clone(),
    };
    match recovery::generate(&s.provider, &t, &user.id, me, &meta).await {
        Ok(codes) => codes_page(&s, &t, &headers, &codes, &Carry::None, Some(&t.url(PAGE))),
        Err(e) => pages::error_page(&s, &headers, &e.into()),
    }
}
