//! OpenID Connect beyond OAuth: UserInfo and RP-initiated logout. ID tokens are issued in
//! `oauth::tokens`, discovery is served from the provider's settings.

pub mod logout;
pub mod userinfo;
