//! The password login method: `POST {issuer}/login` checks the password (bounded Argon2id,
//! guessing limits), starts a new session and hands the request back to the pipeline.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use mandate_core::login::method::{Proof, sign_in_ids};
use mandate_core::login::{self, LoginError};
use mandate_core::oauth::authorize::Interaction;

use crate::client_ip::Meta;
use crate::session::begin_owing;
use crate::state::AppState;
use crate::tenant::Tenant;
use crate::ui::login::{refused, render};
use crate::ui::pages;

/// `POST {issuer}/login`.
pub async fn login(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    Meta(mut meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let device = crate::session::mint_device(&s, &mut meta);
    let Some(form) = pages::checked_form(&s, &headers, &body) else {
        return pages::form_expired(&s, &headers);
    };
    let Some(i) = form
        .get("interaction")
        .and_then(|v| Interaction::open(&s.provider, &t, v))
    else {
        return pages::form_expired(&s, &headers);
    };
    let client = match super::client_of(&s, &t, &headers, &i).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    let username = form.get("username").unwrap_or_default();
    let user = match login::password_login(
        &s.provider,
        &t,
        username,
        form.get("password").unwrap_or_default(),
        &meta,
    )
    .await
    {
        Ok(signed_in) => signed_in,
        Err(LoginError::InvalidCredentials) => {
            let mut again = i.clone();
            again.req.login_hint = Some(username.to_string());
            return render(
                &s,
                &t,
                &headers,
                &client,
                &again,
                &sign_in_ids(&login::offered(&s.provider, &t)),
                Some("invalid_credentials"),
            );
        }
        Err(LoginError::Throttled { retry_after }) => {
            return refused(
                &s,
                &t,
                &headers,
                &client,
                &i,
                username,
                "too_many_attempts",
                retry_after,
            );
        }
        Err(LoginError::Busy { retry_after }) => {
            return refused(
                &s,
                &t,
                &headers,
                &client,
                &i,
                username,
                "try_again_shortly",
                retry_after,
            );
        }
        Err(LoginError::Store(e)) => return pages::error_page(&s, &headers, &e.into()),
    };
    // The risk decision may owe the session a second factor or a passkey: the pipeline
    // asks for it (`next_step` reads `Session::risk_acr`).
    let (session, set) = match begin_owing(
        &s,
        &t,
        &headers,
        &user.user,
        &Proof::of(&login::method::Password),
        user.owed_acr,
        &meta,
    )
    .await
    {
        Ok(v) => v,
        Err(e) => return pages::error_page(&s, &headers, &e),
    };
    let resp = super::after_sign_in(&s, &t, &meta, &headers, &client, i, session, &user.user).await;
    pages::with_cookies(resp, [set].into_iter().chain(device))
}
