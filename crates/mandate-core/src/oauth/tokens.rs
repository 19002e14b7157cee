//! Minting tokens: RFC 9068 JWT access tokens, OIDC ID tokens, opaque refresh tokens, and the
//! token response that carries them.

use mandate_token::act::Act;
use mandate_token::claims::{AccessTokenClaims, Audience, Cnf};
use mandate_token::id_token::IdTokenClaims;
use serde::Serialize;
use serde_json::Value;

use crate::crypto::secret::{b64, keyed_digest, random_token};
use crate::domain::model::{Client, RefreshToken};
use crate::domain::scope::Scope;
use crate::error::OAuthError;
use crate::provider::{Provider, TenantCtx};
use mandate_token::jwk::Alg;

/// The successful token endpoint response (RFC 6749 §5.1).
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
    /// RFC 8693 §2.2.1, token exchange only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
    /// RFC 9396 §7: the authorization details granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_details: Option<Value>,
}

/// Who the access token speaks for and how they authenticated.
#[derive(Debug, Clone)]
pub struct TokenSubject {
    pub sub: String,
    pub auth_time: Option<i64>,
    pub acr: Option<String>,
    pub amr: Vec<String>,
    pub sid: Option<String>,
    /// RFC 9449: the thumbprint of the DPoP key the access token is bound to (`cnf.jkt`).
    pub cnf_jkt: Option<String>,
}

impl TokenSubject {
    /// RFC 9449 §5: `DPoP` for a key-bound access token, else `Bearer`.
    pub fn token_type(&self) -> &'static str {
        if self.cnf_jkt.is_some() {
            "DPoP"
        } else {
            "Bearer"
        }
    }
}

/// A freshly signed access token and the facts audit and storage need about it.
#[derive(Debug, Clone)]
pub struct IssuedAccessToken {
    pub token: String,
    pub jti: String,
    pub expires_at: i64,
    pub audience: Vec<String>,
}

/// Sign an RFC 9068 access token.
pub fn access_token<S: ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    client: &Client,
    subject: &TokenSubject,
    scope: &Scope,
    audience: &[String],
) -> Result<IssuedAccessToken, OAuthError> {
    access_token_with(
        p,
        t,
        client,
        subject,
        scope,
        audience,
        p.settings.access_token_ttl,
        DelegatedClaims::default(),
    )
}

/// What makes an access token delegated (RFC 8693 `act`, the `mandate`, RFC 9396 details);
/// all empty for a token that is not.
#[derive(Debug, Clone, Default)]
pub struct DelegatedClaims {
    pub act: Option<Act>,
    pub mandate: Option<String>,
    pub authorization_details: Option<Vec<Value>>,
}

/// Sign an RFC 9068 access token living `ttl` seconds ([`AccessTokenClaims`], through the
/// token crate), delegated when `delegated` says so.
#[allow(clippy::too_many_arguments)]
pub fn access_token_with<S: ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    client: &Client,
    subject: &TokenSubject,
    scope: &Scope,
    audience: &[String],
    ttl: i64,
    delegated: DelegatedClaims,
) -> Result<IssuedAccessToken, OAuthError> {
    let now = p.now();
    let exp = now + ttl;
    let jti = random_token(16);
    let aud: Vec<String> = if audience.is_empty() {
        vec![t.issuer.clone()]
    } else {
        audience.to_vec()
    };
    let claims = AccessTokenClaims {
        iss: t.issuer.clone(),
        sub: subject.sub.clone(),
        aud: Audience::of(&aud),
        exp,
        iat: now,
        jti: jti.clone(),
        client_id: client.client_id.clone(),
        scope: (!scope.is_empty()).then(|| scope.to_string()),
        auth_time: subject.auth_time,
        acr: subject.acr.clone(),
        amr: subject.amr.clone(),
        sid: subject.sid.clone(),
        cnf: subject.cnf_jkt.clone().map(|jkt| Cnf { jkt }),
        act: delegated.act,
        mandate: delegated.mandate,
        authorization_details: delegated.authorization_details,
    };
    let key = t
        .keys
        .signer(t.tenant.access_token_alg)
        .ok_or_else(|| OAuthError::server_error("no access token signing key"))?;
    Ok(IssuedAccessToken {
        token: mandate_token::jws::sign(key, "at+jwt", &claims),
        jti,
        expires_at: exp,
        audience: aud,
    })
}

/// Inputs of an ID token beyond the subject.
#[derive(Debug, Clone, Default)]
pub struct IdTokenExtras<'a> {
    pub nonce: Option<&'a str>,
    pub access_token: Option<&'a str>,
}

/// Sign an ID token (OIDC Core §2, [`IdTokenClaims`]) with the client's registered algorithm, RS256 by default.
pub fn id_token<S: ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    client: &Client,
    subject: &TokenSubject,
    extras: IdTokenExtras<'_>,
) -> Result<String, OAuthError> {
    let now = p.now();
    let alg = client.id_token_alg.unwrap_or(Alg::RS256);
    let key = t
        .keys
        .signer(alg)
        .ok_or_else(|| OAuthError::server_error(format!("no {alg} key")))?;
    let claims = IdTokenClaims {
        iss: t.issuer.clone(),
        sub: subject.sub.clone(),
        aud: Audience::One(client.client_id.clone()),
        exp: now + p.settings.id_token_ttl,
        iat: now,
        auth_time: subject.auth_time,
        nonce: extras.nonce.map(str::to_string),
        acr: subject.acr.clone(),
        amr: subject.amr.clone(),
        sid: subject.sid.clone(),
        at_hash: extras.access_token.map(|at| token_hash(alg, at)),
    };
    Ok(mandate_token::jws::sign(key, "JWT", &claims))
}

/// `at_hash`/`c_hash`: left half of the hash the signing algorithm uses (OIDC Core §3.1.3.6);
/// SHA-512 for Ed25519.
pub fn token_hash(alg: Alg, token: &str) -> String {
    use aws_lc_rs::digest;
    let d = match alg {
        Alg::EdDSA => digest::digest(&digest::SHA512, token.as_bytes()),
        _ => digest::digest(&digest::SHA256, token.as_bytes()),
    };
    let bytes = d.as_ref();
    b64(&bytes[..bytes.len() / 2])
}

/// A new opaque refresh token and its stored record. A public client's token is bound to the
/// DPoP key its access token is bound to (RFC 9449 §5); a confidential client's is bound by
/// its client authentication, so it may change keys.
pub fn refresh_token<S: ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    grant_id: &str,
    client: &Client,
    subject: &TokenSubject,
    scope: &Scope,
) -> (String, RefreshToken) {
    let now = p.now();
    let value = random_token(32);
    let rec = RefreshToken {
        digest: keyed_digest(&t.tenant.secret_key, &value),
        tenant_id: t.id().to_string(),
        grant_id: grant_id.to_string(),
        client_id: client.client_id.clone(),
        user_id: subject.sub.clone(),
        scope: scope.clone(),
        sid: subject.sid.clone(),
        auth_time: subject.auth_time.unwrap_or(now),
        acr: subject.acr.clone().unwrap_or_default(),
        amr: subject.amr.clone(),
        expires_at: now + p.settings.refresh_token_ttl,
        created_at: now,
        spent_at: None,
        delegation: None,
        dpop_jkt: subject.cnf_jkt.clone().filter(|_| client.is_public()),
        resources: Vec::new(),
    };
    (value, rec)
}

/// Validate RFC 8707 `resource` values: absolute URIs without fragment.
pub fn parse_resources(values: &[String]) -> Result<Vec<String>, OAuthError> {
    let mut out = Vec::new();
    for v in values {
        let ok = url::Url::parse(v)
            .map(|u| u.fragment().is_none())
            .unwrap_or(false);
        if !ok {
            return Err(OAuthError::new(
                crate::error::ErrorCode::InvalidTarget,
                "resource must be an absolute URI without fragment",
            ));
        }
        if !out.contains(v) {
            out.push(v.clone());
        }
    }
    Ok(out)
}

/// RFC 8707 at the token endpoint: the audiences a token of a grant may have, out of the
/// resources the grant authorized (`granted`; empty: none were named, so only the issuer).
/// No `resource` asked: all of them. A resource outside them is `invalid_target`, also when
/// the authorization request named none (RFC 8707 §2.2: the grant is never widened at the
/// token endpoint, so a code or refresh token cannot be pointed at another resource server).
pub fn narrow_resources(
    issuer: &str,
    granted: &[String],
    asked: &[String],
) -> Result<Vec<String>, OAuthError> {
    let asked = parse_resources(asked)?;
    if asked.is_empty() {
        return Ok(granted.to_vec());
    }
    let allowed = |a: &String| {
        if granted.is_empty() {
            a == issuer
        } else {
            granted.contains(a)
        }
    };
    if let Some(bad) = asked.iter().find(|a| !allowed(a)) {
        return Err(OAuthError::new(
            crate::error::ErrorCode::InvalidTarget,
            format!("the grant does not cover the resource {bad}"),
        ));
    }
    Ok(asked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_only_narrow() {
        let iss = "https://id.example";
        let cal = "https://cal.example".to_string();
        let pay = "https://pay.example".to_string();
        let granted = vec![cal.clone(), pay.clone()];
        assert_eq!(narrow_resources(iss, &granted, &[]).unwrap(), granted);
        assert_eq!(
            narrow_resources(iss, &granted, std::slice::from_ref(&cal)).unwrap(),
            vec![cal.clone()]
        );
        let other = vec!["https://bank.example".to_string()];
        assert!(narrow_resources(iss, &granted, &other).is_err());
        assert!(narrow_resources(iss, &[], &other).is_err());
        assert!(narrow_resources(iss, &[], std::slice::from_ref(&cal)).is_err());
        assert_eq!(
            narrow_resources(iss, &[], &[iss.to_string()]).unwrap(),
            vec![iss.to_string()]
        );
        assert!(narrow_resources(iss, &granted, &["https://cal.example#x".into()]).is_err());
    }
}
