//! DPoP (RFC 9449): verification of the proof JWTs by which a client shows it holds the private
//! key a token is (or is about to be) bound to, and stateless server nonces (RFC 9449 §8, §9).
//!
//! Everything here is a pure function of its inputs: the caller reads the headers, records
//! `(jkt, jti)` in its replay store, puts `cnf.jkt` into the tokens it issues and renders errors.
//! Signatures are checked with aws-lc-rs against the key the proof itself carries; the
//! verification algorithm is fixed by the header `alg` *and* must suit the key type, so a proof
//! can neither pick a symmetric algorithm nor pair a key with an algorithm meant for another.

use std::fmt;

use aws_lc_rs::{hmac, signature};
use serde_json::{Map, Value};

use crate::crypto::secret::{b64, b64_decode, ct_eq, sha256};
use mandate_token::jwk::Alg;

/// The media type a proof's `typ` header must carry (RFC 9449 §4.2).
pub const DPOP_TYP: &str = "dpop+jwt";

/// Longest proof accepted, in bytes: a proof with a 8192-bit RSA key stays well below it, and the
/// bound keeps a hostile header from costing more than a small parse.
pub const MAX_PROOF_LEN: usize = 8 * 1024;

/// Default for [`DpopConfig::max_age`]: a proof is made just before the request it accompanies,
/// so one minute covers slow networks while keeping the replay store small.
pub const DEFAULT_MAX_AGE: i64 = 60;

/// Default for [`DpopConfig::max_future`]: a little tolerance for clients whose clock runs ahead.
pub const DEFAULT_MAX_FUTURE: i64 = 5;

/// Default for [`DpopConfig::max_jti_len`]: room for any UUID or random id, but no more.
pub const DEFAULT_MAX_JTI_LEN: usize = 256;

/// Length of a server nonce's time slot: every node hands out the same nonce within a slot.
pub const NONCE_SLOT_SECS: i64 = 60;

/// Default `max_age` for [`check_nonce`]: accepts the current and the previous slot, so a nonce
/// stays usable for one to two slots after it was handed out.
pub const DEFAULT_NONCE_MAX_AGE: i64 = 2 * NONCE_SLOT_SECS;

/// Domain separation for nonce MACs, so the secret can be shared with other keyed digests.
const NONCE_LABEL: &[u8] = b"mandate/dpop-nonce/v1\0";
/// Bytes of HMAC-SHA-256 kept in a nonce: 128 bits cannot be guessed.
const NONCE_MAC_LEN: usize = 16;
/// JWK members that only a private (or symmetric) key has (RFC 7518 §6.2.2, §6.3.2, §6.4).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Why a proof was refused. Each variant maps to the OAuth error a client acts on, through
/// [`DpopError::error_code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DpopError {
    /// A DPoP-bound request came without a `DPoP` header.
    #[error("no DPoP proof")]
    MissingProof,
    /// More than one `DPoP` header, or several proofs joined in one (RFC 9449 §4.3 check 1).
    #[error("more than one DPoP proof")]
    MultipleProofs,
    /// Not a compact JWS with JSON object header and claims, or too large.
    #[error("DPoP proof is not a well-formed JWS")]
    Malformed,
    /// `typ` is not `dpop+jwt`: this JWT was made for something else.
    #[error("DPoP proof typ is not dpop+jwt")]
    WrongType,
    /// `alg` is missing, symmetric, `none`, or not in the configured list.
    #[error("DPoP proof algorithm is not supported")]
    UnsupportedAlg,
    /// The header names extensions in `crit`; none are understood, so the proof must be refused
    /// (RFC 7515 §4.1.11).
    #[error("DPoP proof has critical header parameters")]
    CriticalHeader,
    /// The `jwk` header is missing or not a JSON object.
    #[error("DPoP proof has no jwk header")]
    MissingJwk,
    /// The `jwk` header holds private or symmetric key material.
    #[error("DPoP proof jwk contains private key material")]
    PrivateKey,
    /// The `jwk` is malformed, of an unsupported type or curve, or does not suit `alg`.
    #[error("DPoP proof jwk is invalid or does not suit the algorithm")]
    InvalidJwk,
    /// The signature does not verify with the proof's own key.
    #[error("DPoP proof signature does not verify")]
    BadSignature,
    /// A required claim is absent or not of the right JSON type.
    #[error("DPoP proof lacks a valid {0} claim")]
    MissingClaim(&'static str),
    /// `jti` is empty or longer than [`DpopConfig::max_jti_len`].
    #[error("DPoP proof jti is empty or too long")]
    InvalidJti,
    /// `htm` is not the request's method.
    #[error("DPoP proof htm does not match the request method")]
    HtmMismatch,
    /// `htu` is not the request's URI (or either is not an absolute http(s) URI).
    #[error("DPoP proof htu does not match the request URI")]
    HtuMismatch,
    /// `iat` is older than [`DpopConfig::max_age`].
    #[error("DPoP proof is too old")]
    IatTooOld,
    /// `iat` is further ahead than [`DpopConfig::max_future`].
    #[error("DPoP proof is issued in the future")]
    IatInFuture,
    /// An optional `nbf` is ahead of now or an optional `exp` has passed (RFC 7519 §4.1.4–5),
    /// beyond [`DpopConfig::max_future`] of clock skew.
    #[error("DPoP proof is outside its nbf/exp validity window")]
    OutsideValidity,
    /// `ath` is not the hash of the access token sent with the proof.
    #[error("DPoP proof ath does not match the access token")]
    AthMismatch,
    /// The proof's key is not the key the token or grant is bound to.
    #[error("DPoP proof key does not match the key binding")]
    KeyMismatch,
    /// A server nonce is required and the proof carries none.
    #[error("a DPoP nonce is required")]
    NonceMissing,
    /// The proof's nonce is not one the server handed out, or it has expired.
    #[error("DPoP nonce is invalid or expired")]
    NonceInvalid,
}

/// Where a proof was presented: the error code and status differ (RFC 9449 §5, §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// The authorization server's token endpoint (and PAR): errors are JSON bodies, status 400.
    Token,
    /// A protected resource (userinfo, APIs): errors go in `WWW-Authenticate: DPoP`, status 401.
    Resource,
}

impl DpopError {
    /// The OAuth error code to send: `use_dpop_nonce` tells the client to retry with the nonce
    /// in the `DPoP-Nonce` response header; a key-binding mismatch is a token (resource) or grant
    /// (token endpoint) problem, not a proof problem; anything else is `invalid_dpop_proof`.
    pub fn error_code(&self, at: Endpoint) -> &'static str {
        match self {
            DpopError::NonceMissing | DpopError::NonceInvalid => "use_dpop_nonce",
            DpopError::KeyMismatch => match at {
                Endpoint::Token => "invalid_grant",
                Endpoint::Resource => "invalid_token",
            },
            _ => "invalid_dpop_proof",
        }
    }

    /// The HTTP status to answer with: 400 at the token endpoint, 401 (with
    /// `WWW-Authenticate: DPoP error="..."`) at a resource.
    pub fn http_status(&self, at: Endpoint) -> u16 {
        match at {
            Endpoint::Token => 400,
            Endpoint::Resource => 401,
        }
    }

    /// Whether the response must carry a fresh `DPoP-Nonce` header for the client to retry with.
    pub fn needs_nonce(&self) -> bool {
        matches!(self, DpopError::NonceMissing | DpopError::NonceInvalid)
    }
}

/// Limits applied to every proof. Operators tune them; [`Default`] gives the documented values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopConfig {
    /// Algorithms accepted for proofs (advertised as `dpop_signing_alg_values_supported`).
    /// Only asymmetric ones exist in [`Alg`], so `none` and `HS*` can never be configured.
    pub algs: Vec<Alg>,
    /// Oldest `iat` accepted, in seconds before now. Also how long the caller must remember a
    /// `jti` (see [`VerifiedProof::replay_until`]). Default [`DEFAULT_MAX_AGE`].
    pub max_age: i64,
    /// Newest `iat` accepted, in seconds after now. Default [`DEFAULT_MAX_FUTURE`].
    pub max_future: i64,
    /// Longest `jti` accepted, in bytes. Default [`DEFAULT_MAX_JTI_LEN`].
    pub max_jti_len: usize,
}

impl Default for DpopConfig {
    fn default() -> Self {
        Self {
            algs: Alg::ALL.to_vec(),
            max_age: DEFAULT_MAX_AGE,
            max_future: DEFAULT_MAX_FUTURE,
            max_jti_len: DEFAULT_MAX_JTI_LEN,
        }
    }
}

impl DpopConfig {
    /// The accepted algorithm names, for discovery metadata and the `algs` parameter of
    /// `WWW-Authenticate: DPoP`.
    pub fn alg_names(&self) -> Vec<&'static str> {
        self.algs.iter().map(|a| a.as_str()).collect()
    }
}

/// The nonce a proof must carry, when the server requires one (RFC 9449 §8, §9).
#[derive(Clone, Copy)]
pub enum ExpectedNonce<'a> {
    /// Exactly this value (a nonce the caller handed out and remembers).
    Exact(&'a str),
    /// Any nonce from [`new_nonce`] under `secret` that [`check_nonce`] accepts with `max_age`.
    Stateless {
        /// The server-side secret the nonces are MACed with (the same on every node).
        secret: &'a [u8],
        /// Passed to [`check_nonce`]; [`DEFAULT_NONCE_MAX_AGE`] unless tuned.
        max_age: i64,
    },
}

impl fmt::Debug for ExpectedNonce<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedNonce::Exact(n) => f.debug_tuple("Exact").field(n).finish(),
            ExpectedNonce::Stateless { max_age, .. } => f
                .debug_struct("Stateless")
                .field("max_age", max_age)
                .finish_non_exhaustive(),
        }
    }
}

/// The parts of the HTTP request a proof must match.
#[derive(Clone, Copy)]
pub struct ProofRequest<'a> {
    /// The request method, compared exactly with `htm` (methods are case-sensitive).
    pub method: &'a str,
    /// The absolute URI the request was sent to, as the server sees itself (its public base URL
    /// plus the path); query and fragment are ignored.
    pub uri: &'a str,
    /// The access token sent with the proof to a protected resource; then `ath` is required.
    pub access_token: Option<&'a str>,
    /// The thumbprint the token (`cnf.jkt`) or grant (`dpop_jkt`) is bound to, if any; the
    /// proof's key must have it.
    pub bound_jkt: Option<&'a str>,
    /// The nonce required, if the server requires one.
    pub nonce: Option<ExpectedNonce<'a>>,
}

impl<'a> ProofRequest<'a> {
    /// A request with no token, binding or nonce (a token request without nonces).
    pub fn new(method: &'a str, uri: &'a str) -> Self {
        Self {
            method,
            uri,
            access_token: None,
            bound_jkt: None,
            nonce: None,
        }
    }

    /// Require `ath` to match this access token.
    pub fn with_access_token(mut self, token: &'a str) -> Self {
        self.access_token = Some(token);
        self
    }

    /// Require the proof's key to have this RFC 7638 thumbprint.
    pub fn bound_to(mut self, jkt: &'a str) -> Self {
        self.bound_jkt = Some(jkt);
        self
    }

    /// Require a server nonce.
    pub fn with_nonce(mut self, nonce: ExpectedNonce<'a>) -> Self {
        self.nonce = Some(nonce);
        self
    }
}

impl fmt::Debug for ProofRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The access token is a bearer credential until the proof checks out: never log it.
        f.debug_struct("ProofRequest")
            .field("method", &self.method)
            .field("uri", &self.uri)
            .field("access_token", &self.access_token.map(|_| "<redacted>"))
            .field("bound_jkt", &self.bound_jkt)
            .field("nonce", &self.nonce)
            .finish()
    }
}

/// A proof that passed every check: what the caller needs for replay protection and binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    /// RFC 7638 SHA-256 thumbprint of the proof's key, base64url: the `cnf.jkt` to bind to.
    pub jkt: String,
    /// The proof's unique id; `(jkt, jti)` must not be seen twice before `replay_until`.
    pub jti: String,
    /// When the client says it made the proof.
    pub iat: i64,
    /// Until when the caller must remember `(jkt, jti)`: after it, the proof is refused as too
    /// old anyway.
    pub replay_until: i64,
    /// The algorithm the proof was signed with.
    pub alg: Alg,
    /// The proof's public key, reduced to its required members (e.g. for `cnf.jwk` or audit).
    pub jwk: Value,
    /// The nonce the proof carried, if any.
    pub nonce: Option<String>,
}

impl VerifiedProof {
    /// The key under which to record this proof in the replay store (`ReplayStore::first_use`):
    /// scoped by key, since `jti` uniqueness is only expected per key.
    pub fn replay_key(&self) -> String {
        format!("dpop:{}:{}", self.jkt, self.jti)
    }
}

/// The authentication scheme of an `Authorization` header carrying an access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `Bearer` (RFC 6750): a DPoP-bound token must not be accepted this way (RFC 9449 §7.2).
    Bearer,
    /// `DPoP` (RFC 9449 §7.1): the token comes with a proof in the `DPoP` header.
    DPoP,
}

/// Split an `Authorization` header into scheme and token, for `Bearer` and `DPoP` only. The
/// scheme is case-insensitive (RFC 9110 §11.1); the token must be a token68. `None` for anything
/// else, so the caller answers with a challenge instead of guessing.
pub fn parse_authorization(header: &str) -> Option<(Scheme, &str)> {
    let (scheme, rest) = header.trim_matches(' ').split_once(' ')?;
    let scheme = if scheme.eq_ignore_ascii_case("Bearer") {
        Scheme::Bearer
    } else if scheme.eq_ignore_ascii_case("DPoP") {
        Scheme::DPoP
    } else {
        return None;
    };
    let token = rest.trim_start_matches(' ');
    is_token68(token).then_some((scheme, token))
}

/// RFC 9110 §11.2: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_token68(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// Pick the single proof among the `DPoP` header values of a request: none or several is an
/// error (RFC 9449 §4.3 check 1), so a client cannot make the server choose.
pub fn single_proof<'a, I>(values: I) -> Result<&'a str, DpopError>
where
    I: IntoIterator<Item = &'a str>,
{
    let mut it = values.into_iter();
    let first = it.next().ok_or(DpopError::MissingProof)?;
    if it.next().is_some() {
        return Err(DpopError::MultipleProofs);
    }
    Ok(first)
}

/// The `ath` claim for an access token: base64url(SHA-256(token)) (RFC 9449 §4.2).
pub fn access_token_hash(token: &str) -> String {
    b64(&sha256(token.as_bytes()))
}

/// RFC 7638 thumbprint (SHA-256, base64url) of a public JWK: the required members of its key
/// type, in lexicographic order, without whitespace. EC (`crv`, `kty`, `x`, `y`), OKP (`crv`,
/// `kty`, `x`) and RSA (`e`, `kty`, `n`) keys; other members are ignored.
pub fn jwk_thumbprint(jwk: &Value) -> Result<String, DpopError> {
    let obj = jwk.as_object().ok_or(DpopError::InvalidJwk)?;
    let canonical = Value::Object(required_members(obj)?);
    // The members were inserted in lexicographic order, so the serialization is RFC 7638's
    // whether or not serde_json's `preserve_order` is on; the RFC vector test guards this.
    let text = serde_json::to_string(&canonical).map_err(|_| DpopError::InvalidJwk)?;
    Ok(b64(&sha256(text.as_bytes())))
}

/// The members RFC 7638 hashes for the key's type, all strings.
fn required_members(obj: &Map<String, Value>) -> Result<Map<String, Value>, DpopError> {
    let names: &[&str] = match obj.get("kty").and_then(Value::as_str) {
        Some("EC") => &["crv", "kty", "x", "y"],
        Some("OKP") => &["crv", "kty", "x"],
        Some("RSA") => &["e", "kty", "n"],
        _ => return Err(DpopError::InvalidJwk),
    };
    names
        .iter()
        .map(|n| match obj.get(*n) {
            Some(v @ Value::String(_)) => Ok(((*n).to_string(), v.clone())),
            _ => Err(DpopError::InvalidJwk),
        })
        .collect()
}

/// A stateless server nonce for `now`: the start of its time slot and a MAC of it, so every
/// node with `secret` issues the same nonce within a slot and can check any node's nonces.
pub fn new_nonce(secret: &[u8], now: i64) -> String {
    let slot_start = now.div_euclid(NONCE_SLOT_SECS) * NONCE_SLOT_SECS;
    let mut raw = slot_start.to_be_bytes().to_vec();
    raw.extend_from_slice(&nonce_mac(secret, slot_start));
    b64(&raw)
}

/// Whether `nonce` came from [`new_nonce`] under `secret` and its slot started at most
/// `max_age` seconds before `now` (exclusive): [`DEFAULT_NONCE_MAX_AGE`] accepts the current and
/// the previous slot. A nonce of the next slot is accepted too, for a node whose clock is ahead.
/// The MAC is compared in constant time.
pub fn check_nonce(secret: &[u8], nonce: &str, now: i64, max_age: i64) -> bool {
    if nonce.len() > 64 {
        return false;
    }
    let Some(raw) = b64_decode(nonce) else {
        return false;
    };
    if raw.len() != 8 + NONCE_MAC_LEN {
        return false;
    }
    let (slot, mac) = raw.split_at(8);
    let slot_start = i64::from_be_bytes(slot.try_into().expect("8 bytes"));
    if !ct_eq(mac, &nonce_mac(secret, slot_start)) {
        return false;
    }
    let age = now.saturating_sub(slot_start);
    age >= -NONCE_SLOT_SECS && age < max_age
}

fn nonce_mac(secret: &[u8], slot_start: i64) -> [u8; NONCE_MAC_LEN] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(NONCE_LABEL);
    ctx.update(&slot_start.to_be_bytes());
    let tag = ctx.sign();
    let mut out = [0u8; NONCE_MAC_LEN];
    out.copy_from_slice(&tag.as_ref()[..NONCE_MAC_LEN]);
    out
}

/// Verify a DPoP proof against the request it came with (RFC 9449 §4.3, plus §7.1's `ath` and
/// key-binding checks). `proof` is the single `DPoP` header value (see [`single_proof`]); `now`
/// is the server's time in seconds. Replay of `jti` is left to the caller, who has the store.
pub fn verify_proof(
    proof: &str,
    req: &ProofRequest<'_>,
    now: i64,
    cfg: &DpopConfig,
) -> Result<VerifiedProof, DpopError> {
    if proof.is_empty() {
        return Err(DpopError::MissingProof);
    }
    if proof.contains(',') {
        // Two header lines folded into one: `DPoP: a.b.c, d.e.f`.
        return Err(DpopError::MultipleProofs);
    }
    if proof.len() > MAX_PROOF_LEN {
        return Err(DpopError::Malformed);
    }
    let mut parts = proof.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(DpopError::Malformed);
    };
    let header = decode_object(h)?;

    // Header checks (§4.3 checks 4-7).
    let typ = header.get("typ").and_then(Value::as_str);
    if !typ.is_some_and(is_dpop_typ) {
        return Err(DpopError::WrongType);
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(Alg::parse)
        .filter(|a| cfg.algs.contains(a))
        .ok_or(DpopError::UnsupportedAlg)?;
    if header.contains_key("crit") {
        return Err(DpopError::CriticalHeader);
    }
    let jwk = header
        .get("jwk")
        .and_then(Value::as_object)
        .ok_or(DpopError::MissingJwk)?;
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err(DpopError::PrivateKey);
    }
    let key = ProofKey::from_jwk(jwk, alg)?;

    // Signature (§4.3 check 8).
    let sig = b64_decode(s).ok_or(DpopError::Malformed)?;
    if !key.verify(alg, &proof.as_bytes()[..h.len() + 1 + p.len()], &sig) {
        return Err(DpopError::BadSignature);
    }
    let claims = decode_object(p)?;

    // Claims (§4.3 checks 9-12).
    let jti = claim_str(&claims, "jti")?;
    if jti.is_empty() || jti.len() > cfg.max_jti_len {
        return Err(DpopError::InvalidJti);
    }
    if claim_str(&claims, "htm")? != req.method {
        return Err(DpopError::HtmMismatch);
    }
    let htu = normalize_htu(claim_str(&claims, "htu")?).ok_or(DpopError::HtuMismatch)?;
    if normalize_htu(req.uri).is_none_or(|want| want != htu) {
        return Err(DpopError::HtuMismatch);
    }
    let iat = claims
        .get("iat")
        .and_then(numeric_date)
        .ok_or(DpopError::MissingClaim("iat"))?;
    if iat > now.saturating_add(cfg.max_future) {
        return Err(DpopError::IatInFuture);
    }
    if iat < now.saturating_sub(cfg.max_age) {
        return Err(DpopError::IatTooOld);
    }
    // RFC 9449 needs neither, but a proof that says it is not valid yet, or no longer, is not
    // valid (RFC 7519 §4.1.4–5); a malformed one is refused, not ignored.
    if let Some(v) = claims.get("nbf") {
        let nbf = numeric_date(v).ok_or(DpopError::MissingClaim("nbf"))?;
        if nbf > now.saturating_add(cfg.max_future) {
            return Err(DpopError::OutsideValidity);
        }
    }
    if let Some(v) = claims.get("exp") {
        let exp = numeric_date(v).ok_or(DpopError::MissingClaim("exp"))?;
        if exp < now.saturating_sub(cfg.max_future) {
            return Err(DpopError::OutsideValidity);
        }
    }
    let nonce = claims.get("nonce").and_then(Value::as_str);
    if let Some(expected) = req.nonce {
        if !claims.contains_key("nonce") {
            return Err(DpopError::NonceMissing);
        }
        let n = nonce.ok_or(DpopError::NonceInvalid)?;
        let ok = match expected {
            ExpectedNonce::Exact(want) => ct_eq(n.as_bytes(), want.as_bytes()),
            ExpectedNonce::Stateless { secret, max_age } => check_nonce(secret, n, now, max_age),
        };
        if !ok {
            return Err(DpopError::NonceInvalid);
        }
    }
    if let Some(token) = req.access_token {
        let ath = claim_str(&claims, "ath")?;
        if !ct_eq(ath.as_bytes(), access_token_hash(token).as_bytes()) {
            return Err(DpopError::AthMismatch);
        }
    }

    let public = required_members(jwk)?;
    let jkt = jwk_thumbprint(&Value::Object(public.clone()))?;
    if let Some(bound) = req.bound_jkt
        && !ct_eq(bound.as_bytes(), jkt.as_bytes())
    {
        return Err(DpopError::KeyMismatch);
    }
    Ok(VerifiedProof {
        jkt,
        jti: jti.to_string(),
        iat,
        replay_until: iat.saturating_add(cfg.max_age),
        alg,
        jwk: Value::Object(public),
        nonce: nonce.map(str::to_string),
    })
}

/// `typ` compares like a media type: case-insensitively, `application/` optional (RFC 7515
/// §4.1.9).
fn is_dpop_typ(typ: &str) -> bool {
    let t = match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &typ[12..],
        _ => typ,
    };
    t.eq_ignore_ascii_case(DPOP_TYP)
}

fn decode_object(part: &str) -> Result<Map<String, Value>, DpopError> {
    match b64_decode(part).and_then(|b| serde_json::from_slice(&b).ok()) {
        Some(Value::Object(m)) => Ok(m),
        _ => Err(DpopError::Malformed),
    }
}

fn claim_str<'c>(claims: &'c Map<String, Value>, name: &'static str) -> Result<&'c str, DpopError> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .ok_or(DpopError::MissingClaim(name))
}

/// A JWT NumericDate (RFC 7519 §2): seconds, possibly fractional (truncated).
fn numeric_date(v: &Value) -> Option<i64> {
    if let Some(i) = v.as_i64() {
        return Some(i);
    }
    let f = v.as_f64()?;
    (f.is_finite() && f.abs() < 1e15).then_some(f.trunc() as i64)
}

/// The comparable form of an `htu` or request URI (RFC 9449 §4.3 check 9): scheme, host,
/// non-default port and path, without query or fragment, after RFC 3986 §6.2.2 syntax-based
/// normalization (case, percent-encoding, dot segments) and §6.2.3 scheme-based normalization
/// (default port, empty path). Only absolute http(s) URIs without userinfo qualify.
fn normalize_htu(uri: &str) -> Option<String> {
    if uri.len() > MAX_PROOF_LEN {
        return None;
    }
    // The url crate lower-cases scheme and host, drops default ports, turns an empty path into
    // "/" and removes dot segments (also percent-encoded ones).
    let u = url::Url::parse(uri).ok()?;
    if !matches!(u.scheme(), "http" | "https") || !u.username().is_empty() || u.password().is_some()
    {
        return None;
    }
    let mut out = format!("{}://{}", u.scheme(), u.host_str()?);
    if let Some(port) = u.port() {
        out.push_str(&format!(":{port}"));
    }
    out.push_str(&normalize_percent(u.path())?);
    Some(out)
}

/// Decode percent-encoded unreserved characters and upper-case the hex of the rest
/// (RFC 3986 §6.2.2.1, §6.2.2.2).
fn normalize_percent(path: &str) -> Option<String> {
    let b = path.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let escape = (b[i] == b'%' && i + 2 < b.len())
            .then(|| Some((hex_val(b[i + 1])? << 4) | hex_val(b[i + 2])?))
            .flatten();
        match escape {
            Some(v) if v.is_ascii_alphanumeric() || b"-._~".contains(&v) => out.push(v),
            Some(_) => out.extend_from_slice(&[
                b'%',
                b[i + 1].to_ascii_uppercase(),
                b[i + 2].to_ascii_uppercase(),
            ]),
            None => {
                out.push(b[i]);
                i += 1;
                continue;
            }
        }
        i += 3;
    }
    String::from_utf8(out).ok()
}

fn hex_val(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// A proof's public key, checked against its algorithm.
enum ProofKey {
    /// SEC1 uncompressed point.
    Ec(Vec<u8>),
    Ed(Vec<u8>),
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
}

impl ProofKey {
    fn from_jwk(jwk: &Map<String, Value>, alg: Alg) -> Result<ProofKey, DpopError> {
        let bad = DpopError::InvalidJwk;
        let member = |name: &str| jwk.get(name).and_then(Value::as_str);
        let bytes = |name: &str| {
            member(name)
                .and_then(b64_decode)
                .ok_or(DpopError::InvalidJwk)
        };
        // Optional members, when present, must agree with how the key is used here.
        if member("alg").is_some_and(|a| a != alg.as_str())
            || jwk.get("alg").is_some_and(|a| !a.is_string())
            || jwk.get("use").is_some_and(|u| u.as_str() != Some("sig"))
        {
            return Err(bad);
        }
        let kty = member("kty").ok_or(DpopError::InvalidJwk)?;
        match (alg, kty) {
            (Alg::ES256, "EC") => {
                let (x, y) = (bytes("x")?, bytes("y")?);
                if member("crv") != Some("P-256") || x.len() != 32 || y.len() != 32 {
                    return Err(bad);
                }
                let mut point = Vec::with_capacity(65);
                point.push(4);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                Ok(ProofKey::Ec(point))
            }
            (Alg::EdDSA, "OKP") => {
                let x = bytes("x")?;
                if member("crv") != Some("Ed25519") || x.len() != 32 {
                    return Err(bad);
                }
                Ok(ProofKey::Ed(x))
            }
            (Alg::RS256 | Alg::PS256, "RSA") => {
                let (n, e) = (bytes("n")?, bytes("e")?);
                // Minimal big-endian encodings (RFC 7518 §6.3.1), 2048 to 8192 bits.
                if n.first().is_none_or(|b| *b == 0)
                    || e.first().is_none_or(|b| *b == 0)
                    || !(256..=1024).contains(&n.len())
                    || e.len() > 8
                {
                    return Err(bad);
                }
                Ok(ProofKey::Rsa { n, e })
            }
            _ => Err(bad),
        }
    }

    fn verify(&self, alg: Alg, msg: &[u8], sig: &[u8]) -> bool {
        match self {
            ProofKey::Ec(point) => {
                signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(msg, sig)
                    .is_ok()
            }
            ProofKey::Ed(x) => signature::UnparsedPublicKey::new(&signature::ED25519, x)
                .verify(msg, sig)
                .is_ok(),
            ProofKey::Rsa { n, e } => {
                let params = match alg {
                    Alg::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
                    _ => &signature::RSA_PKCS1_2048_8192_SHA256,
                };
                signature::RsaPublicKeyComponents { n, e }
                    .verify(params, msg, sig)
                    .is_ok()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use serde_json::json;

    use super::*;
    use mandate_token::jwk::{self, LoadedKey};

    const NOW: i64 = 1_700_000_000;
    const TOKEN_URI: &str = "https://as.example.com/token";

    // RFC 9449 §4.1 (token request) and §7.1 (resource request) example proofs, their key's
    // thumbprint (§6.1) and the access token of §7.1.
    const RFC_TOKEN_PROOF: &str = concat!(
        "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0",
        "VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10",
        "NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoi",
        "UE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.",
        "2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg",
    );
    const RFC_RESOURCE_PROOF: &str = concat!(
        "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0",
        "VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10",
        "NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoi",
        "R0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6",
        "MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.",
        "2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA",
    );
    const RFC_JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
    const RFC_ACCESS_TOKEN: &str = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";
    const RFC_ATH: &str = "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo";

    /// One generated key per algorithm, shared by the tests (RSA generation is slow).
    fn key(alg: Alg) -> &'static LoadedKey {
        static KEYS: [OnceLock<LoadedKey>; 4] = [const { OnceLock::new() }; 4];
        let i = Alg::ALL.iter().position(|a| *a == alg).unwrap();
        KEYS[i].get_or_init(|| fresh_key(alg))
    }

    fn fresh_key(alg: Alg) -> LoadedKey {
        jwk::load(&jwk::generate("t", alg, 0).unwrap()).unwrap()
    }

    fn enc(v: &Value) -> String {
        b64(v.to_string().as_bytes())
    }

    /// A compact JWS of `header` and `claims`, signed by `k`.
    fn jws(k: &LoadedKey, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", enc(header), enc(claims));
        let sig = k.sign(input.as_bytes());
        format!("{input}.{}", b64(&sig))
    }

    fn header(k: &LoadedKey) -> Value {
        json!({"typ": "dpop+jwt", "alg": k.alg.as_str(), "jwk": k.public_jwk()})
    }

    fn claims(htm: &str, htu: &str, iat: i64) -> Value {
        json!({"jti": crate::crypto::secret::random_token(12), "htm": htm, "htu": htu, "iat": iat})
    }

    /// A valid token-endpoint proof by `k` at NOW.
    fn proof(k: &LoadedKey, claims: &Value) -> String {
        jws(k, &header(k), claims)
    }

    fn verify(proof: &str, req: &ProofRequest<'_>) -> Result<VerifiedProof, DpopError> {
        verify_proof(proof, req, NOW, &DpopConfig::default())
    }

    fn token_req() -> ProofRequest<'static> {
        ProofRequest::new("POST", TOKEN_URI)
    }

    fn with_claim(name: &str, value: Value) -> Value {
        let mut c = claims("POST", TOKEN_URI, NOW);
        c[name] = value;
        c
    }

    fn without_claim(name: &str) -> Value {
        let mut c = claims("POST", TOKEN_URI, NOW);
        c.as_object_mut().unwrap().remove(name);
        c
    }

    #[test]
    fn a_valid_proof_verifies_for_every_algorithm() {
        for alg in Alg::ALL {
            let k = key(alg);
            let c = claims("POST", TOKEN_URI, NOW);
            let v = verify(&proof(k, &c), &token_req()).unwrap_or_else(|e| panic!("{alg}: {e}"));
            assert_eq!(v.alg, alg);
            assert_eq!(v.jti, c["jti"].as_str().unwrap());
            assert_eq!(v.iat, NOW);
            assert_eq!(v.replay_until, NOW + DEFAULT_MAX_AGE);
            assert_eq!(v.nonce, None);
            // Same thumbprint as the key module computes for our own keys.
            assert_eq!(v.jkt, k.thumbprint(), "{alg}");
            assert_eq!(v.jkt, jwk_thumbprint(k.public_jwk()).unwrap());
            assert_eq!(jwk_thumbprint(&v.jwk).unwrap(), v.jkt);
            assert!(v.jwk.get("kid").is_none() && v.jwk.get("use").is_none());
            assert_eq!(v.replay_key(), format!("dpop:{}:{}", v.jkt, v.jti));
        }
    }

    #[test]
    fn rfc9449_token_request_example_verifies() {
        let cfg = DpopConfig::default();
        let at = 1_562_262_616;
        let req = ProofRequest::new("POST", "https://server.example.com/token");
        let v = verify_proof(RFC_TOKEN_PROOF, &req, at, &cfg).unwrap();
        assert_eq!(v.jkt, RFC_JKT);
        assert_eq!(v.jti, "-BwC3ESc6acc2lTc");
        assert_eq!(v.alg, Alg::ES256);
        // Same request URI written differently: scheme/host case, default port, query, fragment.
        let req = ProofRequest::new("POST", "HTTPS://Server.Example.COM:443/token?x=1#frag");
        assert!(verify_proof(RFC_TOKEN_PROOF, &req, at, &cfg).is_ok());
        // Bound to the RFC's thumbprint, and not to another.
        let req = ProofRequest::new("POST", "https://server.example.com/token");
        assert!(verify_proof(RFC_TOKEN_PROOF, &req.bound_to(RFC_JKT), at, &cfg).is_ok());
        assert_eq!(
            verify_proof(RFC_TOKEN_PROOF, &req.bound_to(&k_jkt()), at, &cfg),
            Err(DpopError::KeyMismatch)
        );
    }

    fn k_jkt() -> String {
        key(Alg::ES256).thumbprint()
    }

    #[test]
    fn rfc9449_resource_request_example_verifies_with_ath() {
        assert_eq!(access_token_hash(RFC_ACCESS_TOKEN), RFC_ATH);
        let cfg = DpopConfig::default();
        let at = 1_562_262_618;
        let req = ProofRequest::new("GET", "https://resource.example.org/protectedresource")
            .with_access_token(RFC_ACCESS_TOKEN)
            .bound_to(RFC_JKT);
        let v = verify_proof(RFC_RESOURCE_PROOF, &req, at, &cfg).unwrap();
        assert_eq!(v.jkt, RFC_JKT);
        let other = req.with_access_token("another-token");
        assert_eq!(
            verify_proof(RFC_RESOURCE_PROOF, &other, at, &cfg),
            Err(DpopError::AthMismatch)
        );
        let post = ProofRequest {
            method: "POST",
            ..req
        };
        assert_eq!(
            verify_proof(RFC_RESOURCE_PROOF, &post, at, &cfg),
            Err(DpopError::HtmMismatch)
        );
    }

    #[test]
    fn rfc7638_thumbprint_vector() {
        // RFC 7638 §3.1; "alg" and "kid" are not part of the thumbprint.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            jwk_thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        // RFC 9449 §6.1: the example proof key's thumbprint, members in any order.
        let ec = json!({
            "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA",
            "crv": "P-256",
            "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
            "kty": "EC"
        });
        assert_eq!(jwk_thumbprint(&ec).unwrap(), RFC_JKT);
        // Unknown key types, missing or non-string members are refused.
        for bad in [
            json!({"kty": "oct", "k": "AAAA"}),
            json!({"kty": "EC", "crv": "P-256", "x": "AA"}),
            json!({"kty": "OKP", "crv": "Ed25519", "x": 5}),
            json!({"crv": "Ed25519", "x": "AA"}),
            json!("not an object"),
        ] {
            assert_eq!(jwk_thumbprint(&bad), Err(DpopError::InvalidJwk), "{bad}");
        }
    }

    #[test]
    fn two_proofs_from_one_key_share_the_jkt() {
        let k = key(Alg::ES256);
        let a = verify(&proof(k, &claims("POST", TOKEN_URI, NOW)), &token_req()).unwrap();
        let b = verify(&proof(k, &claims("POST", TOKEN_URI, NOW - 3)), &token_req()).unwrap();
        assert_eq!(a.jkt, b.jkt);
        assert_ne!(a.jti, b.jti);
        let other = fresh_key(Alg::ES256);
        let c = verify(
            &proof(&other, &claims("POST", TOKEN_URI, NOW)),
            &token_req(),
        )
        .unwrap();
        assert_ne!(a.jkt, c.jkt);
        // A token bound to the first key cannot be used with the other.
        let bound = token_req().bound_to(&a.jkt);
        let p = proof(&other, &claims("POST", TOKEN_URI, NOW));
        let err = verify(&p, &bound).unwrap_err();
        assert_eq!(err, DpopError::KeyMismatch);
        assert_eq!(err.error_code(Endpoint::Resource), "invalid_token");
        assert_eq!(err.error_code(Endpoint::Token), "invalid_grant");
    }

    #[test]
    fn typ_must_be_dpop_jwt() {
        let k = key(Alg::ES256);
        let c = claims("POST", TOKEN_URI, NOW);
        for typ in [
            json!("JWT"),
            json!("at+jwt"),
            json!("dpop"),
            json!(1),
            Value::Null,
        ] {
            let mut h = header(k);
            h["typ"] = typ.clone();
            assert_eq!(
                verify(&jws(k, &h, &c), &token_req()),
                Err(DpopError::WrongType),
                "{typ}"
            );
        }
        let mut h = header(k);
        h.as_object_mut().unwrap().remove("typ");
        assert_eq!(
            verify(&jws(k, &h, &c), &token_req()),
            Err(DpopError::WrongType)
        );
        // Media type comparison: case-insensitive, "application/" optional.
        for typ in ["application/dpop+jwt", "DPoP+JWT", "Application/DPOP+jwt"] {
            let mut h = header(k);
            h["typ"] = json!(typ);
            assert!(verify(&jws(k, &h, &c), &token_req()).is_ok(), "{typ}");
        }
    }

    #[test]
    fn none_symmetric_and_unsupported_algorithms_are_refused() {
        let k = key(Alg::ES256);
        let c = claims("POST", TOKEN_URI, NOW);
        // alg none, unsigned.
        let mut h = header(k);
        h["alg"] = json!("none");
        let unsigned = format!("{}.{}.", enc(&h), enc(&c));
        assert_eq!(
            verify(&unsigned, &token_req()),
            Err(DpopError::UnsupportedAlg)
        );
        // HS256 keyed with the public key's bytes (the classic confusion attack).
        h["alg"] = json!("HS256");
        let input = format!("{}.{}", enc(&h), enc(&c));
        let mac_key = hmac::Key::new(hmac::HMAC_SHA256, k.public_jwk().to_string().as_bytes());
        let hs = format!(
            "{input}.{}",
            b64(hmac::sign(&mac_key, input.as_bytes()).as_ref())
        );
        assert_eq!(verify(&hs, &token_req()), Err(DpopError::UnsupportedAlg));
        for alg in [json!("HS512"), json!("ES384"), json!("es256"), json!(7)] {
            h["alg"] = alg.clone();
            assert_eq!(
                verify(&jws(k, &h, &c), &token_req()),
                Err(DpopError::UnsupportedAlg),
                "{alg}"
            );
        }
        // An algorithm the operator turned off.
        let only_es = DpopConfig {
            algs: vec![Alg::ES256],
            ..DpopConfig::default()
        };
        let ed = proof(key(Alg::EdDSA), &c);
        assert_eq!(
            verify_proof(&ed, &token_req(), NOW, &only_es),
            Err(DpopError::UnsupportedAlg)
        );
        assert_eq!(only_es.alg_names(), vec!["ES256"]);
        assert_eq!(
            DpopConfig::default().alg_names(),
            vec!["ES256", "EdDSA", "RS256", "PS256"]
        );
    }

    #[test]
    fn the_key_must_suit_the_algorithm() {
        let c = claims("POST", TOKEN_URI, NOW);
        // EdDSA key claimed as ES256.
        let ed = key(Alg::EdDSA);
        let mut h = header(ed);
        h["alg"] = json!("ES256");
        h["jwk"].as_object_mut().unwrap().remove("alg");
        assert_eq!(
            verify(&jws(ed, &h, &c), &token_req()),
            Err(DpopError::InvalidJwk)
        );
        // The JWK's own "alg" disagrees with the header's.
        let rs = key(Alg::RS256);
        let mut h = header(rs);
        h["alg"] = json!("PS256");
        assert_eq!(
            verify(&jws(rs, &h, &c), &token_req()),
            Err(DpopError::InvalidJwk)
        );
        // Without a JWK "alg", an RS256 signature presented as PS256 fails the signature.
        h["jwk"].as_object_mut().unwrap().remove("alg");
        assert_eq!(
            verify(&jws(rs, &h, &c), &token_req()),
            Err(DpopError::BadSignature)
        );
        // An encryption key, a wrong curve, a short coordinate.
        let ec = key(Alg::ES256);
        for (member, value) in [
            ("use", json!("enc")),
            ("crv", json!("P-384")),
            ("x", json!("AAAA")),
            ("kty", json!("oct")),
        ] {
            let mut h = header(ec);
            h["jwk"][member] = value;
            assert_eq!(
                verify(&jws(ec, &h, &c), &token_req()),
                Err(DpopError::InvalidJwk),
                "{member}"
            );
        }
        // A point not on the curve does not verify.
        let mut h = header(ec);
        h["jwk"]["y"] = json!(b64(&[7u8; 32]));
        assert_eq!(
            verify(&jws(ec, &h, &c), &token_req()),
            Err(DpopError::BadSignature)
        );
    }

    #[test]
    fn private_key_material_in_the_jwk_is_refused() {
        let k = key(Alg::ES256);
        let c = claims("POST", TOKEN_URI, NOW);
        for member in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            let mut h = header(k);
            h["jwk"][member] = json!("AAAA");
            assert_eq!(
                verify(&jws(k, &h, &c), &token_req()),
                Err(DpopError::PrivateKey),
                "{member}"
            );
        }
        // Even a null "d" is a private-key JWK shape.
        let mut h = header(k);
        h["jwk"]["d"] = Value::Null;
        assert_eq!(
            verify(&jws(k, &h, &c), &token_req()),
            Err(DpopError::PrivateKey)
        );
        let mut h = header(k);
        h.as_object_mut().unwrap().remove("jwk");
        assert_eq!(
            verify(&jws(k, &h, &c), &token_req()),
            Err(DpopError::MissingJwk)
        );
        h["jwk"] = json!(k.thumbprint());
        assert_eq!(
            verify(&jws(k, &h, &c), &token_req()),
            Err(DpopError::MissingJwk)
        );
    }

    #[test]
    fn bad_signatures_are_refused() {
        for alg in Alg::ALL {
            let k = key(alg);
            let good = proof(k, &claims("POST", TOKEN_URI, NOW));
            let parts: Vec<&str> = good.split('.').collect();
            // Claims swapped under the same signature.
            let forged = format!(
                "{}.{}.{}",
                parts[0],
                enc(&claims("POST", TOKEN_URI, NOW)),
                parts[2]
            );
            assert_eq!(
                verify(&forged, &token_req()),
                Err(DpopError::BadSignature),
                "{alg}"
            );
            // Signed by another key than the one in the header.
            let other = if alg == Alg::PS256 {
                key(Alg::RS256)
            } else {
                key(Alg::PS256)
            };
            let input = format!("{}.{}", parts[0], parts[1]);
            let wrong = format!("{input}.{}", b64(&other.sign(input.as_bytes())));
            assert_eq!(
                verify(&wrong, &token_req()),
                Err(DpopError::BadSignature),
                "{alg}"
            );
            // Truncated and empty signatures.
            let sig = b64_decode(parts[2]).unwrap();
            let truncated = format!("{input}.{}", b64(&sig[..sig.len() - 1]));
            assert_eq!(
                verify(&truncated, &token_req()),
                Err(DpopError::BadSignature),
                "{alg}"
            );
            let empty = format!("{input}.");
            assert_eq!(
                verify(&empty, &token_req()),
                Err(DpopError::BadSignature),
                "{alg}"
            );
        }
    }

    #[test]
    fn malformed_or_multiple_proofs_are_refused() {
        let k = key(Alg::ES256);
        let good = proof(k, &claims("POST", TOKEN_URI, NOW));
        assert_eq!(verify("", &token_req()), Err(DpopError::MissingProof));
        for bad in ["a", "a.b", "a.b.c.d", "!!.??.xx", "e30.e30.e30"] {
            assert!(verify(bad, &token_req()).is_err(), "{bad}");
        }
        assert_eq!(verify("e30.e30.", &token_req()), Err(DpopError::WrongType));
        assert_eq!(verify("a.b.c.d", &token_req()), Err(DpopError::Malformed));
        let not_json = format!("{}.e30.AA", b64(b"not json"));
        assert_eq!(verify(&not_json, &token_req()), Err(DpopError::Malformed));
        let array = format!("{}.e30.AA", b64(b"[1,2]"));
        assert_eq!(verify(&array, &token_req()), Err(DpopError::Malformed));
        // Claims that are not an object, under a good signature.
        let input = format!("{}.{}", enc(&header(k)), b64(b"\"claims\""));
        let signed = format!("{input}.{}", b64(&k.sign(input.as_bytes())));
        assert_eq!(verify(&signed, &token_req()), Err(DpopError::Malformed));
        // Two proofs folded into one header value, or an oversized one.
        let folded = format!("{good}, {good}");
        assert_eq!(
            verify(&folded, &token_req()),
            Err(DpopError::MultipleProofs)
        );
        let huge = format!("{good}{}", "A".repeat(MAX_PROOF_LEN));
        assert_eq!(verify(&huge, &token_req()), Err(DpopError::Malformed));
        // Critical header extensions are not understood.
        let mut h = header(k);
        h["crit"] = json!(["b64"]);
        h["b64"] = json!(false);
        let c = claims("POST", TOKEN_URI, NOW);
        assert_eq!(
            verify(&jws(k, &h, &c), &token_req()),
            Err(DpopError::CriticalHeader)
        );
    }

    #[test]
    fn single_proof_needs_exactly_one_header() {
        assert_eq!(single_proof([]), Err(DpopError::MissingProof));
        assert_eq!(single_proof(["a.b.c"]), Ok("a.b.c"));
        assert_eq!(
            single_proof(["a.b.c", "a.b.c"]),
            Err(DpopError::MultipleProofs)
        );
    }

    #[test]
    fn htm_must_match_exactly() {
        let k = key(Alg::EdDSA);
        let p = proof(k, &claims("POST", TOKEN_URI, NOW));
        for method in ["GET", "post", "PUT"] {
            let req = ProofRequest::new(method, TOKEN_URI);
            assert_eq!(verify(&p, &req), Err(DpopError::HtmMismatch), "{method}");
        }
        let p = proof(k, &without_claim("htm"));
        assert_eq!(
            verify(&p, &token_req()),
            Err(DpopError::MissingClaim("htm"))
        );
        let p = proof(k, &with_claim("htm", json!(["POST"])));
        assert_eq!(
            verify(&p, &token_req()),
            Err(DpopError::MissingClaim("htm"))
        );
    }

    #[test]
    fn htu_is_compared_without_query_and_after_normalization() {
        let k = key(Alg::ES256);
        let accept = |htu: &str, uri: &str| {
            let p = proof(k, &claims("GET", htu, NOW));
            verify(&p, &ProofRequest::new("GET", uri))
        };
        let same = [
            (
                "https://rs.example.com/api/v1",
                "https://rs.example.com/api/v1",
            ),
            // Query and fragment are ignored on either side.
            (
                "https://rs.example.com/api/v1?a=1#x",
                "https://rs.example.com/api/v1",
            ),
            (
                "https://rs.example.com/api/v1",
                "https://rs.example.com/api/v1?b=2",
            ),
            // Scheme and host case, default ports, empty path.
            (
                "HTTPS://RS.Example.COM/api/v1",
                "https://rs.example.com/api/v1",
            ),
            (
                "https://rs.example.com:443/api/v1",
                "https://rs.example.com/api/v1",
            ),
            ("http://rs.example.com:80/x", "http://rs.example.com/x"),
            ("https://rs.example.com", "https://rs.example.com/"),
            (
                "https://rs.example.com:8443/x",
                "https://RS.example.com:8443/x",
            ),
            // Percent-encoding: unreserved characters decoded, hex case normalized.
            (
                "https://rs.example.com/%7Euser/a%2fb",
                "https://rs.example.com/~user/a%2Fb",
            ),
            ("https://rs.example.com/%61pi", "https://rs.example.com/api"),
            // Dot segments.
            (
                "https://rs.example.com/a/./b/../c",
                "https://rs.example.com/a/c",
            ),
        ];
        for (htu, uri) in same {
            assert!(accept(htu, uri).is_ok(), "{htu} vs {uri}");
        }
        let different = [
            (
                "https://rs.example.com/api/v2",
                "https://rs.example.com/api/v1",
            ),
            (
                "http://rs.example.com/api/v1",
                "https://rs.example.com/api/v1",
            ),
            (
                "https://rs.example.com:8443/api/v1",
                "https://rs.example.com/api/v1",
            ),
            (
                "https://rs.example.com:80/api/v1",
                "https://rs.example.com/api/v1",
            ),
            (
                "https://other.example.com/api/v1",
                "https://rs.example.com/api/v1",
            ),
            (
                "https://rs.example.com/api/v1/",
                "https://rs.example.com/api/v1",
            ),
            (
                "https://rs.example.com/API/v1",
                "https://rs.example.com/api/v1",
            ),
            ("https://rs.example.com/a%2Fb", "https://rs.example.com/a/b"),
            // Only absolute http(s) URIs without userinfo.
            (
                "https://user@rs.example.com/api/v1",
                "https://rs.example.com/api/v1",
            ),
            ("/api/v1", "https://rs.example.com/api/v1"),
            ("ftp://rs.example.com/api/v1", "ftp://rs.example.com/api/v1"),
            ("https://rs.example.com/api/v1", "not a uri"),
        ];
        for (htu, uri) in different {
            assert_eq!(
                accept(htu, uri),
                Err(DpopError::HtuMismatch),
                "{htu} vs {uri}"
            );
        }
        let p = proof(k, &without_claim("htu"));
        assert_eq!(
            verify(&p, &token_req()),
            Err(DpopError::MissingClaim("htu"))
        );
    }

    #[test]
    fn iat_must_be_recent() {
        let k = key(Alg::ES256);
        let at = |iat: Value| verify(&proof(k, &with_claim("iat", iat)), &token_req());
        assert!(at(json!(NOW - DEFAULT_MAX_AGE)).is_ok());
        assert_eq!(
            at(json!(NOW - DEFAULT_MAX_AGE - 1)),
            Err(DpopError::IatTooOld)
        );
        assert_eq!(at(json!(0)), Err(DpopError::IatTooOld));
        assert_eq!(at(json!(i64::MIN)), Err(DpopError::IatTooOld));
        assert!(at(json!(NOW + DEFAULT_MAX_FUTURE)).is_ok());
        assert_eq!(
            at(json!(NOW + DEFAULT_MAX_FUTURE + 1)),
            Err(DpopError::IatInFuture)
        );
        assert_eq!(at(json!(i64::MAX)), Err(DpopError::IatInFuture));
        // A fractional NumericDate is fine; a string or a missing iat is not.
        assert_eq!(at(json!(NOW as f64 - 0.5)).unwrap().iat, NOW - 1);
        assert_eq!(
            at(json!(NOW.to_string())),
            Err(DpopError::MissingClaim("iat"))
        );
        assert_eq!(at(json!(f64::MAX)), Err(DpopError::MissingClaim("iat")));
        let p = proof(k, &without_claim("iat"));
        assert_eq!(
            verify(&p, &token_req()),
            Err(DpopError::MissingClaim("iat"))
        );
        // A configured window.
        let cfg = DpopConfig {
            max_age: 300,
            max_future: 0,
            ..DpopConfig::default()
        };
        let p = proof(k, &with_claim("iat", json!(NOW - 299)));
        let v = verify_proof(&p, &token_req(), NOW, &cfg).unwrap();
        assert_eq!(v.replay_until, NOW + 1);
        let p = proof(k, &with_claim("iat", json!(NOW + 1)));
        assert_eq!(
            verify_proof(&p, &token_req(), NOW, &cfg),
            Err(DpopError::IatInFuture)
        );
    }

    #[test]
    fn nbf_and_exp_are_honoured_when_present() {
        let k = key(Alg::ES256);
        let at = |name: &str, v: Value| verify(&proof(k, &with_claim(name, v)), &token_req());
        assert!(at("nbf", json!(NOW - 10)).is_ok());
        assert!(at("nbf", json!(NOW + DEFAULT_MAX_FUTURE)).is_ok());
        assert_eq!(
            at("nbf", json!(NOW + DEFAULT_MAX_FUTURE + 1)),
            Err(DpopError::OutsideValidity)
        );
        assert_eq!(
            at("nbf", json!("soon")),
            Err(DpopError::MissingClaim("nbf"))
        );
        assert!(at("exp", json!(NOW + 60)).is_ok());
        assert_eq!(
            at("exp", json!(NOW - DEFAULT_MAX_FUTURE - 1)),
            Err(DpopError::OutsideValidity)
        );
        assert_eq!(at("exp", json!(null)), Err(DpopError::MissingClaim("exp")));
    }

    #[test]
    fn jti_is_required_and_bounded() {
        let k = key(Alg::ES256);
        let p = proof(k, &without_claim("jti"));
        assert_eq!(
            verify(&p, &token_req()),
            Err(DpopError::MissingClaim("jti"))
        );
        let p = proof(k, &with_claim("jti", json!(42)));
        assert_eq!(
            verify(&p, &token_req()),
            Err(DpopError::MissingClaim("jti"))
        );
        let p = proof(k, &with_claim("jti", json!("")));
        assert_eq!(verify(&p, &token_req()), Err(DpopError::InvalidJti));
        let p = proof(
            k,
            &with_claim("jti", json!("x".repeat(DEFAULT_MAX_JTI_LEN + 1))),
        );
        assert_eq!(verify(&p, &token_req()), Err(DpopError::InvalidJti));
        let p = proof(
            k,
            &with_claim("jti", json!("x".repeat(DEFAULT_MAX_JTI_LEN))),
        );
        assert!(verify(&p, &token_req()).is_ok());
    }

    #[test]
    fn ath_is_required_with_an_access_token() {
        let k = key(Alg::ES256);
        let token = "eyJhbGciOiJFUzI1NiJ9.access.token";
        let uri = "https://rs.example.com/resource";
        let req = ProofRequest::new("GET", uri).with_access_token(token);
        let mut c = claims("GET", uri, NOW);
        // Missing.
        assert_eq!(
            verify(&proof(k, &c), &req),
            Err(DpopError::MissingClaim("ath"))
        );
        // Hash of another token, or of the token in another encoding.
        c["ath"] = json!(access_token_hash("another"));
        assert_eq!(verify(&proof(k, &c), &req), Err(DpopError::AthMismatch));
        c["ath"] = json!(crate::crypto::secret::b64(token.as_bytes()));
        assert_eq!(verify(&proof(k, &c), &req), Err(DpopError::AthMismatch));
        // Right.
        c["ath"] = json!(access_token_hash(token));
        assert!(verify(&proof(k, &c), &req).is_ok());
        // Without an access token (token endpoint), an ath is not checked.
        assert!(verify(&proof(k, &c), &ProofRequest::new("GET", uri)).is_ok());
        // The error codes at a resource.
        let err = DpopError::AthMismatch;
        assert_eq!(err.error_code(Endpoint::Resource), "invalid_dpop_proof");
        assert_eq!(err.http_status(Endpoint::Resource), 401);
        assert_eq!(err.http_status(Endpoint::Token), 400);
    }

    #[test]
    fn a_required_nonce_must_be_present_and_right() {
        let k = key(Alg::ES256);
        let secret = b"tenant nonce secret";
        let stateless = ExpectedNonce::Stateless {
            secret,
            max_age: DEFAULT_NONCE_MAX_AGE,
        };
        for expected in [ExpectedNonce::Exact("server-nonce-1"), stateless] {
            let req = token_req().with_nonce(expected);
            // Missing: the client is told to use a nonce.
            let err = verify(&proof(k, &claims("POST", TOKEN_URI, NOW)), &req).unwrap_err();
            assert_eq!(err, DpopError::NonceMissing);
            assert_eq!(err.error_code(Endpoint::Token), "use_dpop_nonce");
            assert_eq!(err.error_code(Endpoint::Resource), "use_dpop_nonce");
            assert!(err.needs_nonce());
            // Wrong value or type.
            for wrong in [
                json!("server-nonce-2"),
                json!(new_nonce(b"other", NOW)),
                json!(1),
            ] {
                let err = verify(&proof(k, &with_claim("nonce", wrong)), &req).unwrap_err();
                assert_eq!(err, DpopError::NonceInvalid);
                assert_eq!(err.error_code(Endpoint::Token), "use_dpop_nonce");
            }
        }
        // Right.
        let req = token_req().with_nonce(ExpectedNonce::Exact("server-nonce-1"));
        let v = verify(
            &proof(k, &with_claim("nonce", json!("server-nonce-1"))),
            &req,
        )
        .unwrap();
        assert_eq!(v.nonce.as_deref(), Some("server-nonce-1"));
        let req = token_req().with_nonce(stateless);
        let fresh = new_nonce(secret, NOW - 30);
        assert!(verify(&proof(k, &with_claim("nonce", json!(fresh))), &req).is_ok());
        // Expired: handed out three slots ago.
        let old = new_nonce(secret, NOW - 3 * NONCE_SLOT_SECS);
        let p = proof(k, &with_claim("nonce", json!(old)));
        assert_eq!(verify(&p, &req), Err(DpopError::NonceInvalid));
        // Not required: a nonce the client sends anyway is reported, not checked.
        let v = verify(&p, &token_req()).unwrap();
        assert_eq!(v.nonce, Some(old));
    }

    #[test]
    fn stateless_nonces_last_the_current_and_previous_slot() {
        let s = b"secret";
        let t = 1_700_000_020; // 40 s into the slot starting at 1_699_999_980
        let n = new_nonce(s, t);
        assert_eq!(n, new_nonce(s, t - 40), "one nonce per slot, on every node");
        assert_ne!(n, new_nonce(s, t + 20), "the next slot has another");
        assert_ne!(n, new_nonce(b"other", t));
        assert!(
            n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
        );
        let max = DEFAULT_NONCE_MAX_AGE;
        assert!(check_nonce(s, &n, t, max));
        assert!(check_nonce(s, &n, t + 20, max), "previous slot");
        assert!(
            check_nonce(s, &n, t + 79, max),
            "previous slot, last second"
        );
        assert!(!check_nonce(s, &n, t + 80, max), "two slots ago");
        assert!(check_nonce(s, &n, t - 100, max), "next slot (a node ahead)");
        assert!(!check_nonce(s, &n, t - 101, max), "further ahead");
        assert!(!check_nonce(s, &n, t + 30, 60), "a shorter max_age");
        assert!(!check_nonce(b"other", &n, t, max));
        // Tampered, truncated, garbage.
        let mut raw = b64_decode(&n).unwrap();
        raw[7] ^= 60; // another slot start under the old MAC
        assert!(!check_nonce(s, &b64(&raw), t, max));
        assert!(!check_nonce(s, &n[..n.len() - 2], t, max));
        assert!(!check_nonce(s, "", t, max));
        assert!(!check_nonce(s, "not base64!", t, max));
        assert!(!check_nonce(s, &"A".repeat(100), t, max));
        // Slots before the epoch work too.
        assert!(check_nonce(s, &new_nonce(s, -1), 0, max));
    }

    #[test]
    fn authorization_header_schemes() {
        assert_eq!(
            parse_authorization("DPoP abc.def-ghi_~+/=="),
            Some((Scheme::DPoP, "abc.def-ghi_~+/=="))
        );
        assert_eq!(
            parse_authorization("dpop  tok"),
            Some((Scheme::DPoP, "tok"))
        );
        assert_eq!(
            parse_authorization("Bearer tok"),
            Some((Scheme::Bearer, "tok"))
        );
        assert_eq!(
            parse_authorization("BEARER tok "),
            Some((Scheme::Bearer, "tok"))
        );
        for bad in [
            "",
            "Bearer",
            "Bearer ",
            "DPoP a b",
            "Basic dXNlcjpwYXNz",
            "DPoPtok",
            "Bearer tok,en",
            "Bearer ==",
            "Bearer\ttok",
        ] {
            assert_eq!(parse_authorization(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn debug_output_hides_the_access_token_and_nonce_secret() {
        let req = ProofRequest::new("GET", "https://rs.example.com/")
            .with_access_token("secret-access-token")
            .with_nonce(ExpectedNonce::Stateless {
                secret: b"nonce-secret",
                max_age: 120,
            });
        let dbg = format!("{req:?}");
        assert!(!dbg.contains("secret-access-token"), "{dbg}");
        assert!(!dbg.contains("nonce-secret"), "{dbg}");
        assert!(dbg.contains("redacted"));
    }
}
