//! The client's address for audit and risk: the socket peer, or the `X-Forwarded-For` entry
//! added by the nearest untrusted hop when the peer is a configured trusted proxy.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use mandate_core::audit::RequestMeta;

/// CIDR ranges of trusted reverse proxies.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(pub Vec<ipnet::IpNet>);

impl TrustedProxies {
    /// Parse a list like `10.0.0.0/8, 127.0.0.1`.
    pub fn parse(items: &[String]) -> Result<Self, String> {
        items
            .iter()
            .flat_map(|s| s.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<ipnet::IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| format!("invalid trusted proxy {s:?}"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// Resolve the client address from the peer and the forwarding header.
    pub fn client_ip(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let Some(xff) = forwarded_for else {
            return peer;
        };
        // Walk right to left, skipping our own proxies; the first untrusted hop is the client.
        let mut client = peer;
        for hop in xff.rsplit(',').map(str::trim) {
            match hop.parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !self.trusts(ip) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        client
    }

    /// Did a trusted proxy tell us the original request was https?
    pub fn forwarded_https(&self, peer: IpAddr, proto: Option<&str>) -> bool {
        self.trusts(peer) && proto.is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
    }
}

/// The device cookie's name without its `__Host-` prefix (risk: a new device).
pub const DEVICE_COOKIE: &str = "mandate-device";

/// The device cookie of a request, under either name (whether the deployment is https is not
/// known here), bounded.
fn device(headers: &axum::http::HeaderMap) -> Option<String> {
    let prefixed = format!("__Host-{DEVICE_COOKIE}");
    let cookies: Vec<(&str, &str)> = headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .collect();
    [prefixed.as_str(), DEVICE_COOKIE]
        .iter()
        .find_map(|name| cookies.iter().find(|(k, _)| k == name).map(|(_, v)| *v))
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(str::to_string)
}

/// Per-request context for audit records.
pub struct Meta(pub RequestMeta);

/// An application state that knows which proxies to believe (so that this module, below the
/// state, does not name it).
pub trait ProxyTrust {
    /// The proxies whose forwarding headers are believed.
    fn trusted_proxies(&self) -> &TrustedProxies;
}

impl<S: ProxyTrust + Send + Sync> FromRequestParts<S> for Meta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let header = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok());
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let ip = state
            .trusted_proxies()
            .client_ip(peer, header("x-forwarded-for"));
        Ok(Meta(RequestMeta {
            ip: Some(ip.to_string()),
            user_agent: header("user-agent").map(|s| s.chars().take(512).collect()),
            request_id: header("x-request-id").map(|s| s.chars().take(128).collect()),
            device: device(&parts.headers),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let t = TrustedProxies::parse(&["10.0.0.0/8".into()]).unwrap();
        let ext: IpAddr = "203.0.113.9".parse().unwrap();
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(t.client_ip(ext, Some("1.2.3.4")), ext);
        assert_eq!(t.client_ip(proxy, Some("1.2.3.4, 203.0.113.9")), ext);
        assert_eq!(t.client_ip(proxy, Some("203.0.113.9, 10.9.9.9")), ext);
        assert_eq!(t.client_ip(proxy, Some("garbage")), proxy);
        assert!(t.forwarded_https(proxy, Some("https")));
        assert!(!t.forwarded_https(ext, Some("https")));
    }
}
