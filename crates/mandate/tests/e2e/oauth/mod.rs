//! OAuth 2.x at the endpoints: authorization code with PKCE, bad requests, DPoP (RFC 9449), refresh rotation.

mod dpop;
mod negative;
mod refresh_grace;
mod token_exchange;
