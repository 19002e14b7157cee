//! The sign-in page of an interaction: one section per login method the pipeline offers.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mandate_core::TenantCtx;
use mandate_core::domain::model::Client;
use mandate_core::login::{self, method::sign_in_ids};
use mandate_core::oauth::authorize::{AuthorizeRequest, Interaction};
use minijinja::context;

use super::pages;
use crate::state::AppState;

/// Render the sign-in page for an interaction, offering `methods` (login method ids).
pub fn render(
    s: &AppState,
    t: &TenantCtx,
    headers: &HeaderMap,
    client: &Client,
    i: &Interaction,
    methods: &[&str],
    error: Option<&str>,
) -> Response {
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    render_with(s, t, headers, client, i, methods, error, status, false)
}

/// The sign-in page of a step-up: the person is signed in, and the client (or the risk policy)
/// asks for a stronger sign-in, with `methods` (those that reach it). The page says why.
pub fn render_step_up(
    s: &AppState,
    t: &TenantCtx,
    headers: &HeaderMap,
    client: &Client,
    i: &Interaction,
    methods: &[&str],
) -> Response {
    render_with(
        s,
        t,
        headers,
        client,
        i,
        methods,
        None,
        StatusCode::OK,
        true,
    )
}

/// [`render`] with a given status (401 for bad credentials, 429 when throttled or busy).
#[allow(clippy::too_many_arguments)]
fn render_with(
    s: &AppState,
    t: &TenantCtx,
    headers: &HeaderMap,
    client: &Client,
    i: &Interaction,
    methods: &[&str],
    error: Option<&str>,
    status: StatusCode,
    step_up: bool,
) -> Response {
    let lang = pages::locale(s, headers, i.req.ui_locales.as_deref());
    let (csrf, set) = pages::csrf_token(s, headers);
    // A username filled in for the person (a `login_hint` or a step-up), not one they typed
    // before an error: shown with a way to use another account instead.
    let switch_account_url = (error.is_none()
        && i.req.login_hint.as_deref().is_some_and(|h| !h.is_empty()))
    .then(|| another_account_url(t, &i.req));
    let error_key = error;
    let error = error.map(|k| s.templates.message(&lang, k));
    let page = pages::render(
        s,
        status,
        "login.html",
        &lang,
        context! {
            action => t.url("/login"),
            client_name => client.name,
            username => i.req.login_hint.clone().unwrap_or_default(),
            methods,
            interaction => i.seal(t),
            csrf,
            error,
            passkey_options => t.url("/login/passkey/options"),
            passkey_action => t.url("/login/passkey"),
            error_key,
            switch_account_url,
            forgot_url => super::recovery::forgot_url(s, t),
            step_up,
        },
    );
    pages::with_cookies(page, set)
}

/// The same authorization request again, without the filled-in username (`login_hint`,
/// `id_token_hint`) and with `prompt=login`: "Not you? Use another account".
pub fn another_account_url(t: &TenantCtx, req: &AuthorizeRequest) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code")
        .append_pair("client_id", &req.client_id)
        .append_pair("redirect_uri", &req.redirect_uri)
        .append_pair("scope", &req.scope.to_string())
        .append_pair("code_challenge", &req.code_challenge)
        .append_pair("code_challenge_method", "S256");
    for (name, value) in [
        ("state", &req.state),
        ("nonce", &req.nonce),
        ("ui_locales", &req.ui_locales),
    ] {
        if let Some(v) = value {
            q.append_pair(name, v);
        }
    }
    let mut prompt: Vec<&str> = req
        .prompt
        .iter()
        .map(String::as_str)
        .filter(|p| !matches!(*p, "login" | "none"))
        .collect();
    prompt.insert(0, "login");
    q.append_pair("prompt", &prompt.join(" "));
    if let Some(m) = req.max_age {
        q.append_pair("max_age", &m.to_string());
    }
    if !req.acr_values.is_empty() {
        q.append_pair("acr_values", &req.acr_values.join(" "));
    }
    for r in &req.resources {
        q.append_pair("resource", r);
    }
    if !req.authorization_details.is_empty() {
        q.append_pair(
            "authorization_details",
            &serde_json::Value::from(req.authorization_details.clone()).to_string(),
        );
    }
    t.url(&format!("/authorize?{}", q.finish()))
}

/// The form again with 429 and `Retry-After` (throttled or busy): the same answer whether or
/// not the account exists.
#[allow(clippy::too_many_arguments)]
pub(crate) fn refused(
    s: &AppState,
    t: &TenantCtx,
    headers: &HeaderMap,
    client: &Client,
    i: &Interaction,
    username: &str,
    message: &str,
    retry_after: i64,
) -> Response {
    let mut again = i.clone();
    again.req.login_hint = Some(username.to_string());
    let r = render_with(
        s,
        t,
        headers,
        client,
        &again,
        &sign_in_ids(&login::offered(&s.provider, t)),
        Some(message),
        StatusCode::TOO_MANY_REQUESTS,
        false,
    );
    pages::too_many(r, retry_after)
}
