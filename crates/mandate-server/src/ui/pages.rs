//! Page responses with the headers every credential or consent page needs: no framing, no
//! referrer, no caching; CSRF tokens as a double-submit cookie.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mandate_core::OAuthError;
use mandate_core::crypto::secret::{ct_eq, random_token};
use minijinja::context;

use super::branding;
use crate::cookies;
use crate::params::{Params, is_form};
use crate::state::AppState;

/// An HTML page with security headers. Its Content-Security-Policy allows a tenant's logo and
/// stylesheet origins only when the page belongs to a tenant that configured them
/// (`branding::content_security_policy`).
pub fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    let tenant = branding::current();
    let csp =
        branding::content_security_policy(tenant.as_ref().map(|t| &t.tenant.settings.branding));
    // Origins are checked to be header-safe when set; the plain policy if one ever is not.
    let csp = HeaderValue::from_str(&csp).unwrap_or_else(|_| {
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; base-uri 'none'; frame-ancestors 'none'",
        )
    });
    h.insert(header::CONTENT_SECURITY_POLICY, csp);
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// Render a template into a page, or a plain 500 if the template itself is broken.
pub fn render(
    s: &AppState,
    status: StatusCode,
    name: &str,
    lang: &str,
    ctx: minijinja::Value,
) -> Response {
    let tenant = branding::current();
    let ctx = context! {
        assets => super::assets::base(&s.config.public_url),
        brand => branding::context(tenant.as_deref()),
        ..ctx
    };
    match s.templates.render(name, lang, ctx) {
        Ok(body) => html(status, body),
        Err(e) => {
            tracing::error!(template = name, error = %e, "template failed");
            html(StatusCode::INTERNAL_SERVER_ERROR, "template error".into())
        }
    }
}

/// The user's locale from `ui_locales` and `Accept-Language`.
pub fn locale(s: &AppState, headers: &HeaderMap, ui_locales: Option<&str>) -> String {
    let al = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    s.templates.locale(ui_locales, al)
}

/// An error page (never a redirect).
pub fn error_page(s: &AppState, headers: &HeaderMap, e: &OAuthError) -> Response {
    crate::error::log(e);
    let lang = locale(s, headers, None);
    let status = StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    let status = if status == StatusCode::UNAUTHORIZED {
        StatusCode::BAD_REQUEST
    } else {
        status
    };
    // In plain words for the person, per error code; the code and the description (for
    // whoever supports them) in small print.
    let message = s
        .templates
        .message_opt(&lang, &format!("error_{}", e.code.as_str()));
    render(
        s,
        status,
        "error.html",
        &lang,
        context! {
            error => e.code.as_str(),
            description => e.description.as_deref().map(|d| mandate_core::untrusted::clip(d, 512).into_owned()),
            message,
        },
    )
}

/// A page telling the user something (signed out, form expired …).
pub fn message_page(
    s: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    title_key: &str,
    message_key: &str,
) -> Response {
    let lang = locale(s, headers, None);
    let title = s.templates.message(&lang, title_key);
    let message = s.templates.message(&lang, message_key);
    render(
        s,
        status,
        "message.html",
        &lang,
        context! { title, message },
    )
}

/// `r` as a 429 with `Retry-After` (throttled, busy or blocked: try again in `retry_after` s).
pub fn too_many(mut r: Response, retry_after: i64) -> Response {
    *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    r.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(retry_after.max(1) as u64),
    );
    r
}

/// 303 See Other (the right answer after a POST). A target that cannot be a `Location`
/// header (control characters, non-ASCII) is a 400 page, never a redirect without a target.
pub fn see_other(location: &str) -> Response {
    let Ok(target) = HeaderValue::from_str(location) else {
        tracing::warn!("refused to redirect to a URI that is not a valid Location header");
        let e = crate::error::ApiError::from(OAuthError::invalid_request(
            "the redirect target is not a valid URI",
        ));
        return e.into_response();
    };
    let mut r = StatusCode::SEE_OTHER.into_response();
    let h = r.headers_mut();
    h.insert(header::LOCATION, target);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The CSRF token for a form: the existing cookie's, or a new one to be set.
pub fn csrf_token(s: &AppState, headers: &HeaderMap) -> (String, Option<String>) {
    let name = cookies::csrf_name(&s.config);
    match cookies::get(headers, &name).filter(|v| v.len() >= 22 && v.len() <= 64) {
        Some(v) => (v, None),
        None => {
            let v = random_token(24);
            let set = cookies::set(&s.config, &name, &v, None);
            (v, Some(set))
        }
    }
}

/// Does the submitted CSRF token match the cookie?
pub fn csrf_ok(s: &AppState, headers: &HeaderMap, submitted: Option<&str>) -> bool {
    let cookie = cookies::get(headers, &cookies::csrf_name(&s.config));
    matches!((cookie, submitted), (Some(c), Some(f)) if !c.is_empty() && ct_eq(c.as_bytes(), f.as_bytes()))
}

/// The "this form has expired" page (bad or missing CSRF token or interaction).
pub fn form_expired(s: &AppState, headers: &HeaderMap) -> Response {
    message_page(
        s,
        headers,
        StatusCode::BAD_REQUEST,
        "error_title",
        "form_expired",
    )
}

/// A posted page form: a form body whose CSRF token matches the cookie (else `None`: show
/// [`form_expired`]).
pub fn checked_form(s: &AppState, headers: &HeaderMap, body: &[u8]) -> Option<Params> {
    is_form(headers)
        .then(|| Params::parse(body).ok())
        .flatten()
        .filter(|f| csrf_ok(s, headers, f.get("csrf")))
}

/// Add `Set-Cookie` headers to a response.
pub fn with_cookies(mut r: Response, cookies: impl IntoIterator<Item = String>) -> Response {
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(&c) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}
