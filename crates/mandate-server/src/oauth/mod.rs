//! OAuth 2.1 endpoints: authorize, token, introspection, revocation, CIBA backchannel
//! authentication.

pub mod authorize;
pub mod bc_authorize;
pub mod introspect;
pub mod revoke;
pub mod token;

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use std::sync::Arc;

use mandate_core::audit::RequestMeta;
use mandate_core::domain::model::Client;
use mandate_core::oauth::client_auth::{ClientAuthError, ClientCredentials};
use mandate_core::{OAuthError, TenantCtx, oauth::client_auth};

use crate::error::ApiError;
use crate::params::{self, Params};
use crate::state::AppState;

/// Parse a form body, refusing other content types (JSON included) and repeated parameters
/// with 400 `invalid_request` (RFC 6749 §5.2: the request is malformed, whatever its media type).
pub fn form(headers: &HeaderMap, body: &Bytes) -> Result<Params, ApiError> {
    if !params::is_form(headers) {
        return Err(ApiError::from(OAuthError::invalid_request(
            "Content-Type must be application/x-www-form-urlencoded",
        )));
    }
    Ok(Params::parse(body)?)
}

/// The challenge of the client-authenticated endpoints (RFC 6749 §5.2, RFC 7617).
const BASIC_CHALLENGE: &str = "Basic realm=\"mandate\"";

/// Layer of the client-authenticated endpoints (token, introspection, revocation,
/// backchannel authentication): whatever refused the request, a 401 to a request that carried
/// an `Authorization` header names the scheme to use (RFC 6749 §5.2); nothing they answer is
/// cached (RFC 6749 §5.1, RFC 7662 §4). A plain service wrapper rather than `from_fn`: it sits
/// on the token path, where a clone of the inner service and a boxed future per request show.
#[derive(Clone)]
pub struct ClientEndpoint<S>(S);

/// Wrap a route's service in [`ClientEndpoint`].
pub fn client_endpoint<S>() -> tower::layer::LayerFn<fn(S) -> ClientEndpoint<S>> {
    tower::layer::layer_fn(ClientEndpoint)
}

impl<S> tower::Service<Request> for ClientEndpoint<S>
where
    S: tower::Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ClientEndpointFuture<S::Future>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        ClientEndpointFuture {
            sent_authorization: req.headers().contains_key(header::AUTHORIZATION),
            inner: self.0.call(req),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response of a [`ClientEndpoint`], finished when the inner one is ready.
    pub struct ClientEndpointFuture<F> {
        #[pin]
        inner: F,
        sent_authorization: bool,
    }
}

impl<F, E> std::future::Future for ClientEndpointFuture<F>
where
    F: std::future::Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.project();
        let mut r = std::task::ready!(this.inner.poll(cx))?;
        let unauthorized = r.status() == StatusCode::UNAUTHORIZED;
        let h = r.headers_mut();
        if unauthorized && *this.sent_authorization && !h.contains_key(header::WWW_AUTHENTICATE) {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(BASIC_CHALLENGE),
            );
        }
        crate::cache::set_no_store(h);
        std::task::Poll::Ready(Ok(r))
    }
}

/// Parse the form of a client-authenticated endpoint and authenticate the caller; `path` is
/// the endpoint's path under the issuer (an acceptable client assertion audience).
pub async fn authenticated_form(
    s: &AppState,
    t: &TenantCtx,
    meta: &RequestMeta,
    headers: &HeaderMap,
    body: &Bytes,
    path: &str,
) -> Result<(Params, Arc<Client>), ApiError> {
    let p = form(headers, body)?;
    let creds = credentials(headers, &p)?;
    let client = client_auth::authenticate(&s.provider, t, &creds, &t.url(path), meta)
        .await
        .map_err(auth_error)?;
    Ok((p, client))
}

/// Client credentials from the `Authorization: Basic` header and the form. An `Authorization`
/// header is client authentication here: any other form of it (no scheme, another scheme,
/// empty or undecodable credentials, non-ASCII) is `invalid_client` with a Basic challenge,
/// never ignored; two of them are `invalid_request` (which one would count?).
pub fn credentials(headers: &HeaderMap, p: &Params) -> Result<ClientCredentials, ApiError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(ApiError::from(OAuthError::invalid_request(
            "more than one Authorization header",
        )));
    }
    let basic = match first {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|v| v.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
                .and_then(|(_, creds)| decode_basic(creds))
                .ok_or_else(|| ApiError {
                    error: OAuthError::invalid_client(
                        "the Authorization header must carry Basic client credentials",
                    ),
                    challenge: Some(BASIC_CHALLENGE.into()),
                    status: None,
                })?,
        ),
    };
    Ok(ClientCredentials {
        basic,
        client_id: p.opt("client_id"),
        client_secret: p.opt("client_secret"),
        assertion_type: p.opt("client_assertion_type"),
        assertion: p.opt("client_assertion"),
    })
}

/// RFC 6749 §2.3.1: id and secret are form-urlencoded before base64.
fn decode_basic(b64: &str) -> Option<(String, String)> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    let dec = |s: &str| {
        form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    let id = dec(id)?;
    let secret = dec(secret)?;
    (!id.is_empty()).then_some((id, secret))
}

/// Render a client authentication failure with `WWW-Authenticate` when Basic was used.
pub fn auth_error(e: ClientAuthError) -> ApiError {
    ApiError {
        challenge: (e.used_basic && e.error.code == mandate_core::ErrorCode::InvalidClient)
            .then(|| BASIC_CHALLENGE.to_string()),
        error: e.error,
        status: None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn basic_is_form_decoded() {
        use base64::Engine;
        let enc = base64::engine::general_purpose::STANDARD.encode("my%20id:s%3Acret+x");
        assert_eq!(
            super::decode_basic(&enc),
            Some(("my id".into(), "s:cret+x".into()))
        );
    }
}
