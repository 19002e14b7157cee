//! Signing in to the account pages without an OAuth client: `GET|POST {issuer}/account/login`
//! shows the same login form as `/authorize` and, once the password is right, starts the same
//! browser session and returns to the page the person opened (`return_to`, a path under this
//! issuer only: `mandate_core::account::safe_return_to`). `GET {issuer}/`,
//! `GET {issuer}/account` and `GET /` (the default tenant) lead to the account page.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use mandate_core::OAuthError;
use mandate_core::TenantCtx;
use mandate_core::account::{ACCOUNT_HOME, safe_return_to};
use mandate_core::domain::model::Session;
use mandate_core::login::method::sign_in_ids;
use mandate_core::login::{self, LoginError};
use minijinja::context;

use super::pages;
use super::second_factor::{self, Carry};
use crate::client_ip::Meta;
use crate::session::current_session;
use crate::state::AppState;
use crate::tenant::Tenant;

/// Routes under `{issuer}`; merged into the tenant router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/account/", get(home))
        .route("/account/login", get(page).post(submit))
}

/// `GET /`: the default tenant's account page.
pub async fn root(State(s): State<AppState>) -> Response {
    let base = s.config.public_url.trim_end_matches('/');
    pages::see_other(&format!(
        "{base}/t/{}{ACCOUNT_HOME}",
        mandate_core::registry::DEFAULT_TENANT
    ))
}

/// `GET {issuer}/` and `GET {issuer}/account/`: to the account page.
pub async fn home(Tenant(t): Tenant) -> Response {
    pages::see_other(&t.url(ACCOUNT_HOME))
}

/// The answer to a signed-out person on an account page: the sign-in page, which brings them
/// back to `return_to` (a path under the issuer) afterwards.
pub fn sign_in_first(t: &TenantCtx, return_to: &str) -> Response {
    let back = safe_return_to(return_to).unwrap_or(ACCOUNT_HOME);
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("return_to", back)
        .finish();
    pages::see_other(&t.url(&format!("/account/login?{q}")))
}

/// The account sign-in page (again, with an error when one is given).
pub(crate) fn render(
    s: &AppState,
    t: &TenantCtx,
    headers: &HeaderMap,
    return_to: &str,
    username: &str,
    error: Option<&str>,
) -> Response {
    let lang = pages::locale(s, headers, None);
    let (csrf, set) = pages::csrf_token(s, headers);
    let error_key = error;
    let error = error.map(|k| s.templates.message(&lang, k));
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let page = pages::render(
        s,
        status,
        "login.html",
        &lang,
        context! {
            action => t.url("/account/login"),
            client_name => match &t.tenant.settings.branding.display_name {
                Some(name) => s.templates.message(&lang, "your_account_at").replace("{tenant}", name),
                None => s.templates.message(&lang, "your_account"),
            },
            username,
            return_to,
            csrf,
            error,
            methods => sign_in_ids(&login::offered(&s.provider, t)),
            passkey_options => t.url("/login/passkey/options"),
            passkey_action => t.url("/login/passkey"),
            error_key,
            forgot_url => super::recovery::forgot_url(s, t),
        },
    );
    pages::with_cookies(page, set)
}

/// `GET {issuer}/account/login?return_to=…`: the sign-in form, or straight back when signed in.
pub async fn page(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    headers: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let back = q
        .get("return_to")
        .and_then(|r| safe_return_to(r))
        .unwrap_or(ACCOUNT_HOME);
    // `again=1`: confirm who you are (a recent sign-in is needed) even when signed in.
    let again = q.get("again").is_some_and(|v| v == "1");
    match current_session(&s, &t, &headers).await {
        Ok(Some(sess)) if again => {
            let username = match s.provider.store.user(t.id(), &sess.user_id).await {
                Ok(u) => u.map(|u| u.username).unwrap_or_default(),
                Err(e) => return pages::error_page(&s, &headers, &e.into()),
            };
            render(&s, &t, &headers, back, &username, None)
        }
        Ok(Some(session)) => second_step_or_back(&s, &t, &headers, &session, back).await,
        Ok(None) => render(&s, &t, &headers, back, "", None),
        Err(e) => pages::error_page(&s, &headers, &e),
    }
}

/// Signed in: the second factor the account pages still need (asked here, then back to
/// `back`), or straight back.
async fn second_step_or_back(
    s: &AppState,
    t: &TenantCtx,
    headers: &HeaderMap,
    session: &Session,
    back: &str,
) -> Response {
    match login::second_factor::outstanding(&s.provider, t, session, None).await {
        Ok(None) => pages::see_other(&t.url(back)),
        Ok(Some((user, step))) => {
            second_factor::ask(s, t, headers, &user, &step, &Carry::ReturnTo(back.into())).await
        }
        Err(e) => pages::error_page(s, headers, &OAuthError::from(e)),
    }
}

/// `POST {issuer}/account/login`: check the password (as the `/authorize` login does: same
/// audit records, same answer whether or not the account exists), start a new session and go
/// back to `return_to`.
pub async fn submit(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    Meta(mut meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(form) = pages::checked_form(&s, &headers, &body) else {
        return pages::form_expired(&s, &headers);
    };
    let device = crate::session::mint_device(&s, &mut meta);
    let back = form
        .get("return_to")
        .and_then(safe_return_to)
        .unwrap_or(ACCOUNT_HOME)
        .to_string();
    let username = form.get("username").unwrap_or_default();
    let password = form.get("password").unwrap_or_default();
    let user = match login::password_login(&s.provider, &t, username, password, &meta).await {
        Ok(u) => u,
        Err(LoginError::Store(e)) => return pages::error_page(&s, &headers, &e.into()),
        Err(e) => {
            let shown: String = username.chars().take(256).collect();
            // The same answers as the /authorize login: 401 for bad credentials, 429 with
            // Retry-After when throttled or busy.
            let (key, retry_after) = match e {
                LoginError::Throttled { retry_after } => ("too_many_attempts", Some(retry_after)),
                LoginError::Busy { retry_after } => ("try_again_shortly", Some(retry_after)),
                _ => ("invalid_credentials", None),
            };
            let r = render(&s, &t, &headers, &back, &shown, Some(key));
            return match retry_after {
                Some(secs) => pages::too_many(r, secs),
                None => r,
            };
        }
    };
    let (session, set) = match crate::session::begin_owing(
        &s,
        &t,
        &headers,
        &user.user,
        &login::method::Proof::of(&login::method::Password),
        user.owed_acr,
        &meta,
    )
    .await
    {
        Ok(x) => x,
        Err(e) => return pages::error_page(&s, &headers, &e),
    };
    let next = second_step_or_back(&s, &t, &headers, &session, &back).await;
    pages::with_cookies(next, [set].into_iter().chain(device))
}
