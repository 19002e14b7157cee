//! The pages of the second-factor step: asking for a code (TOTP, or a recovery code instead),
//! enrolling an authenticator app (its QR code drawn here as inline SVG, so the secret never
//! leaves the server in a request for an image), the recovery codes shown once, and "recovery
//! code accepted, N left". They serve both the authorization interaction (a sealed
//! `interaction`) and the account sign-in (a `return_to` path); `interaction::second_factor`
//! handles what they post.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mandate_core::TenantCtx;
use mandate_core::domain::model::User;
use mandate_core::login::method::SecondFactorStep;
use mandate_core::login::totp::{self, Enrolling, TotpError};
use minijinja::context;

use super::pages;
use crate::state::AppState;

/// Where a second-factor form goes on afterwards.
#[derive(Debug, Clone)]
pub enum Carry {
    /// An authorization request in flight (sealed).
    Interaction(String),
    /// A path under the issuer (the account sign-in).
    ReturnTo(String),
    /// Nowhere: an account page's own form.
    None,
}

impl Carry {
    fn parts(&self) -> (Option<&str>, Option<&str>) {
        match self {
            Carry::Interaction(i) => (Some(i), None),
            Carry::ReturnTo(r) => (None, Some(r)),
            Carry::None => (None, None),
        }
    }
}

/// The enrolment QR code of an `otpauth://` URI as inline SVG (black on white, quiet zone).
pub fn qr_svg(uri: &str) -> Option<String> {
    let code =
        qrcode::QrCode::with_error_correction_level(uri.as_bytes(), qrcode::EcLevel::M).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    // Inline in HTML: without the XML declaration.
    let start = svg.find("<svg")?;
    Some(svg[start..].to_string())
}

/// Show what a session still owes: the code page, the enrolment page (a new or the pending
/// secret), or a page saying none can be used.
pub async fn ask(
    s: &AppState,
    t: &TenantCtx,
    headers: &HeaderMap,
    user: &User,
    step: &SecondFactorStep,
    carry: &Carry,
) -> Response {
    match step {
        SecondFactorStep::Verify(methods) => {
            verify_page(s, t, headers, methods, carry, None, None, StatusCode::OK)
        }
        SecondFactorStep::Enrol(_) => enrol(s, t, headers, user, carry, None).await,
        SecondFactorStep::Unavailable => pages::message_page(
            s,
            headers,
            StatusCode::FORBIDDEN,
            "second_factor_title",
            "second_factor_unavailable",
        ),
    }
}

/// The enrolment page of the sign-in (posting to `/login/second-factor/enrol`).
pub async fn enrol(
    s: &AppState,
    t: &TenantCtx,
    headers: &HeaderMap,
    user: &User,
    carry: &Carry,
    error: Option<&str>,
) -> Response {
    match totp::start_enrolment(&s.provider, t, user).await {
        Ok(e) => enrol_page(
            s,
            headers,
            &e,
            &t.url("/login/second-factor/enrol"),
            carry,
            true,
            error,
        ),
        Err(TotpError::Store(e)) => pages::error_page(s, headers, &e.into()),
        Err(e) => pages::error_page(
            s,
            headers,
            &mandate_core::OAuthError::invalid_request(e.to_string()),
        ),
    }
}

/// The page asking for a second factor, offering `methods`; `sent_to`: a code was just mailed
/// to this (masked) address, so the field for it comes first.
#[allow(clippy::too_many_arguments)]
pub fn verify_page(
    s: &AppState,
    t: &TenantCtx,
    headers: &HeaderMap,
    methods: &[&str],
    carry: &Carry,
    sent_to: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let lang = pages::locale(s, headers, None);
    let (csrf, set) = pages::csrf_token(s, headers);
    let (interaction, return_to) = carry.parts();
    let error = error.map(|k| s.templates.message(&lang, k));
    let email_code_sent = sent_to.map(|a| {
        s.templates
            .message(&lang, "email_code_sent")
            .replace("{address}", a)
            .replace(
                "{minutes}",
                &(mandate_core::login::recovery::CODE_TTL / 60).to_string(),
            )
    });
    let page = pages::render(
        s,
        status,
        "second_factor.html",
        &lang,
        context! {
            action => t.url("/login/second-factor"),
            email_code_action => t.url("/login/second-factor/email-code"),
            email_code_sent,
            methods,
            passkey_options => t.url("/login/passkey/options"),
            passkey_action => t.url("/login/passkey"),
            interaction,
            return_to,
            csrf,
            error,
        },
    );
    pages::with_cookies(page, set)
}

/// The enrolment page: QR code, the key as text, a field for the first code.
pub fn enrol_page(
    s: &AppState,
    headers: &HeaderMap,
    e: &Enrolling,
    action: &str,
    carry: &Carry,
    required: bool,
    error: Option<&str>,
) -> Response {
    let lang = pages::locale(s, headers, None);
    let (csrf, set) = pages::csrf_token(s, headers);
    let (interaction, return_to) = carry.parts();
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let error = error.map(|k| s.templates.message(&lang, k));
    let qr = qr_svg(&e.uri).map(minijinja::Value::from_safe_string);
    let page = pages::render(
        s,
        status,
        "totp_enrol.html",
        &lang,
        context! {
            action,
            secret => e.secret,
            qr,
            required,
            interaction,
            return_to,
            csrf,
            error,
        },
    );
    pages::with_cookies(page, set)
}

/// The recovery codes, shown once; then on (`/login/second-factor/continue`) or back to `back`.
pub fn codes_page(
    s: &AppState,
    t: &TenantCtx,
    headers: &HeaderMap,
    codes: &[String],
    carry: &Carry,
    back: Option<&str>,
) -> Response {
    next_page(
        s,
        t,
        headers,
        "recovery_codes.html",
        context! { codes },
        carry,
        back,
    )
}

/// "Recovery code accepted: N left", then on.
pub fn used_page(
    s: &AppState,
    t: &TenantCtx,
    headers: &HeaderMap,
    left: i64,
    carry: &Carry,
    back: Option<&str>,
) -> Response {
    let lang = pages::locale(s, headers, None);
    let message = s
        .templates
        .message(&lang, "recovery_code_accepted")
        .replace("{count}", &left.to_string());
    next_page(
        s,
        t,
        headers,
        "second_factor_done.html",
        context! { message, low => left <= 3 },
        carry,
        back,
    )
}

fn next_page(
    s: &AppState,
    t: &TenantCtx,
    headers: &HeaderMap,
    template: &str,
    ctx: minijinja::Value,
    carry: &Carry,
    back: Option<&str>,
) -> Response {
    let lang = pages::locale(s, headers, None);
    let (csrf, set) = pages::csrf_token(s, headers);
    let (interaction, return_to) = carry.parts();
    let action = (!matches!(carry, Carry::None)).then(|| t.url("/login/second-factor/continue"));
    let page = pages::render(
        s,
        StatusCode::OK,
        template,
        &lang,
        context! { action, back, interaction, return_to, csrf, ..ctx },
    );
    pages::with_cookies(page, set)
}
