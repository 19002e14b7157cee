//! Access tokens presented to this server's resources (userinfo, admin API): RFC 6750 `Bearer`
//! or RFC 9449 `DPoP` with its proof header.

use axum::http::{HeaderMap, Uri, header};
use mandate_core::OAuthError;
use mandate_core::oauth::dpop::Presented;
use mandate_core::oauth::dpop::proof::{self, Scheme};

use crate::error::{ApiError, bearer_error};

/// A token from the `Authorization` header, with the `DPoP` proof if one was sent.
pub struct PresentedToken {
    pub scheme: Scheme,
    pub token: String,
    pub proof: Option<String>,
}

impl PresentedToken {
    /// Read the headers; `None` without an `Authorization` header.
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<Self>, ApiError> {
        let Some(v) = headers.get(header::AUTHORIZATION) else {
            return Ok(None);
        };
        let (scheme, token) = v
            .to_str()
            .ok()
            .and_then(proof::parse_authorization)
            .ok_or_else(|| {
                bearer_error(OAuthError::invalid_request(
                    "unsupported authorization scheme",
                ))
            })?;
        let proofs = headers
            .get_all("dpop")
            .iter()
            .map(|v| v.to_str().unwrap_or(""));
        let proof = match headers.get("dpop") {
            None => None,
            Some(_) => Some(
                proof::single_proof(proofs)
                    .map_err(|e| {
                        bearer_error(OAuthError::new(
                            mandate_core::ErrorCode::InvalidDpopProof,
                            e.to_string(),
                        ))
                    })?
                    .to_string(),
            ),
        };
        Ok(Some(PresentedToken {
            scheme,
            token: token.trim().to_string(),
            proof,
        }))
    }

    /// The core's view, for a request of `method` to `public_uri` (without query).
    pub fn presented<'a>(&'a self, method: &'a str, public_uri: &'a str) -> Presented<'a> {
        Presented {
            scheme: self.scheme,
            token: &self.token,
            proof: self.proof.as_deref(),
            method,
            uri: public_uri,
        }
    }
}

/// The public URI of a request: the configured public URL plus the request path.
pub fn public_uri(public_url: &str, uri: &Uri) -> String {
    format!("{}{}", public_url.trim_end_matches('/'), uri.path())
}
