//! Applying DPoP (RFC 9449, verification in [`proof`]) where tokens are issued and used:
//! a proof at the token endpoint binds the new access token to its key (`cnf.jkt`); a bound
//! token is accepted at a resource only with the `DPoP` scheme and a fresh proof by that key
//! for that request and token. Proof `jti`s are remembered until the proof would be too old.

pub mod proof;

use std::sync::Arc;

use mandate_token::claims::AccessTokenClaims;
use serde_json::json;

use crate::audit::{AuditEvent, EventKind, Outcome, Principal, RequestMeta};
use crate::error::{ErrorCode, OAuthError};
use crate::oauth::introspect::access_token_claims;
use crate::provider::{Provider, TenantCtx};
use crate::store::{AuditSink, MandateStore, ReplayStore};
use proof::{DpopConfig, DpopError, Endpoint, ExpectedNonce, ProofRequest, Scheme};

/// RFC 9449 §7.1's `error_description` when a token and the way it was presented disagree
/// about its key binding; resources answer it with a `DPoP` challenge.
pub const KEY_BINDING_ERROR: &str = "Invalid DPoP key binding";

/// Is this a resource's key-binding refusal (answered with a `DPoP` challenge)?
pub fn is_key_binding_error(e: &OAuthError) -> bool {
    e.code == ErrorCode::InvalidToken && e.description.as_deref() == Some(KEY_BINDING_ERROR)
}

fn refused(e: &DpopError, at: Endpoint) -> OAuthError {
    let code = match e.error_code(at) {
        "use_dpop_nonce" => ErrorCode::UseDpopNonce,
        "invalid_grant" => ErrorCode::InvalidGrant,
        "invalid_token" => return OAuthError::invalid_token(KEY_BINDING_ERROR),
        _ => ErrorCode::InvalidDpopProof,
    };
    OAuthError::new(code, e.to_string())
}

/// A fresh server nonce for the `DPoP-Nonce` header, when the tenant requires nonces.
pub fn nonce<S: ?Sized>(p: &Provider<S>, t: &TenantCtx) -> Option<String> {
    p.settings
        .dpop_require_nonce
        .then(|| proof::new_nonce(&t.tenant.secret_key, p.now()))
}

async fn verify<S: ReplayStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    proof: &str,
    req: ProofRequest<'_>,
    at: Endpoint,
) -> Result<proof::VerifiedProof, OAuthError> {
    let secret = t.tenant.secret_key.clone();
    // Nonces are required at the token endpoint only: resources do not hand them out (yet).
    let req = if p.settings.dpop_require_nonce && at == Endpoint::Token {
        req.with_nonce(ExpectedNonce::Stateless {
            secret: &secret,
            max_age: proof::DEFAULT_NONCE_MAX_AGE,
        })
    } else {
        req
    };
    let v = proof::verify_proof(proof, &req, p.now(), &DpopConfig::default())
        .map_err(|e| refused(&e, at))?;
    if !p
        .store
        .first_use(t.id(), &v.replay_key(), v.replay_until)
        .await?
    {
        return Err(OAuthError::new(
            ErrorCode::InvalidDpopProof,
            "the DPoP proof was already used",
        ));
    }
    Ok(v)
}

/// Verify a token request's proof (`POST` to the token endpoint); returns the key thumbprint
/// to bind the access token to.
pub async fn token_endpoint_proof<S: ReplayStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    proof: &str,
) -> Result<String, OAuthError> {
    let uri = t.url("/token");
    let v = verify(
        p,
        t,
        proof,
        ProofRequest::new("POST", &uri),
        Endpoint::Token,
    )
    .await?;
    Ok(v.jkt)
}

/// An access token as presented to a resource of this server.
#[derive(Debug, Clone)]
pub struct Presented<'a> {
    pub scheme: Scheme,
    pub token: &'a str,
    /// The `DPoP` header, if any.
    pub proof: Option<&'a str>,
    pub method: &'a str,
    /// The absolute URI of the request as the server is published.
    pub uri: &'a str,
}

/// The claims of a valid access token presented to one of this server's resources, enforcing
/// its DPoP binding: a bound token needs the `DPoP` scheme and a proof by its key for this
/// request; an unbound token must come as `Bearer`. `None`: invalid, expired or revoked.
pub async fn resource_claims<S: MandateStore + ReplayStore + AuditSink + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    presented: &Presented<'_>,
) -> Result<Option<Arc<AccessTokenClaims>>, OAuthError> {
    let Some(claims) = access_token_claims(p, t, presented.token).await? else {
        return Ok(None);
    };
    let checked = binding(p, t, presented, claims.jkt()).await;
    if let Err(e) = &checked {
        // Who presented a valid token the wrong way: on the trail, with its person and chain.
        let chain = claims.chain();
        let client = claims.client_id.as_str();
        let actor = match chain.first() {
            Some(a) => Principal::Agent { id: a.to_string() },
            None => Principal::Client {
                id: client.to_string(),
            },
        };
        let mut ev = AuditEvent::new(
            t.id(),
            EventKind::AuthorizationFailed,
            Outcome::Failure,
            actor,
            &RequestMeta::default(),
        )
        .client(client.to_string())
        .reason(e.code.as_str())
        .detail(
            json!({"resource": presented.uri, "method": presented.method,
            "error_description": e.description, "jti": claims.jti}),
        )
        .subject(Principal::User {
            id: claims.sub.clone(),
        });
        ev.act_chain = chain
            .into_iter()
            .map(|id| Principal::Agent { id: id.to_string() })
            .collect();
        ev.mandate_id = claims.mandate.clone();
        p.store.record(&ev).await?;
    }
    checked.map(|()| Some(claims))
}

/// The binding rule of [`resource_claims`] for a token bound to `bound` (its `cnf.jkt`).
async fn binding<S: ReplayStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    presented: &Presented<'_>,
    bound: Option<&str>,
) -> Result<(), OAuthError> {
    match (bound, presented.scheme) {
        (None, Scheme::Bearer) => Ok(()),
        (None, Scheme::DPoP) => Err(OAuthError::invalid_token(
            "the access token is not DPoP-bound: present it as a Bearer token",
        )),
        // Bound, presented as Bearer: RFC 9449 §7.2.
        (Some(_), Scheme::Bearer) => Err(OAuthError::invalid_token(KEY_BINDING_ERROR)
            .with_debug("DPoP-bound token presented as Bearer")),
        (Some(jkt), Scheme::DPoP) => {
            let proof = presented.proof.ok_or_else(|| {
                OAuthError::new(ErrorCode::InvalidDpopProof, "a DPoP proof is required")
            })?;
            let req = ProofRequest::new(presented.method, presented.uri)
                .with_access_token(presented.token)
                .bound_to(jkt);
            verify(p, t, proof, req, Endpoint::Resource).await?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    //! The binding rule at a resource over the in-memory store: a bound token needs the DPoP
    //! scheme, an unbound one the Bearer scheme, and a refusal of a valid token is recorded
    //! with its person, chain and mandate.

    use super::*;
    use crate::audit::EventKind;
    use crate::domain::agents::AgentStatus;
    use crate::testing::{Fake, access_token, agent, client, mandate, provider};

    fn presented(token: &str, scheme: Scheme) -> Presented<'_> {
        Presented {
            scheme,
            token,
            proof: None,
            method: "GET",
            uri: "https://id.example/t/acme/userinfo",
        }
    }

    #[tokio::test]
    async fn the_scheme_must_match_the_binding_and_refusals_are_recorded() {
        let store = Fake {
            agents: vec![agent("a1", AgentStatus::Active)],
            mandates: std::sync::Mutex::new(vec![mandate("m1", "a1", i64::MAX)]),
            ..Fake::default()
        };
        let (p, t) = provider(store);
        let c = client("a1", false);
        let bound = access_token(&p, &t, &c, Some("a1"), Some("m1"), Some("jkt-1"));
        let e = resource_claims(&p, &t, &presented(&bound.token, Scheme::Bearer))
            .await
            .unwrap_err();
        assert!(is_key_binding_error(&e));
        let e = resource_claims(&p, &t, &presented(&bound.token, Scheme::DPoP))
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidDpopProof);
        let records = p.store.recorded(EventKind::AuthorizationFailed);
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].actor, Principal::Agent { id: "a1".into() });
        assert_eq!(
            records[0].subject,
            Some(Principal::User { id: "u1".into() })
        );
        assert_eq!(
            records[0].act_chain,
            vec![Principal::Agent { id: "a1".into() }]
        );
        assert_eq!(records[0].mandate_id.as_deref(), Some("m1"));

        let plain = access_token(&p, &t, &client("web", false), None, None, None);
        let e = resource_claims(&p, &t, &presented(&plain.token, Scheme::DPoP))
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidToken);
        let ok = resource_claims(&p, &t, &presented(&plain.token, Scheme::Bearer))
            .await
            .unwrap()
            .expect("live");
        assert_eq!((ok.sub.as_str(), ok.client_id.as_str()), ("u1", "web"));
        // An unknown token is no refusal to record: `None`.
        assert!(
            resource_claims(&p, &t, &presented("x.y.z", Scheme::Bearer))
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(p.store.recorded(EventKind::AuthorizationFailed).len(), 3);
    }
}
