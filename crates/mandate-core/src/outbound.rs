//! Rules for every request Mandate sends out (SSF push, CIBA pings and webhooks): `https`, or
//! plain `http` only on a loopback host (development, tests); never a private, link-local or
//! otherwise internal address, so that whoever registers a URL cannot make the server reach
//! into the network it runs in (SECURITY-CHECKLIST: outbound fetches). Literal addresses are
//! checked here; names are checked again on every resolution by the HTTP client.

use std::net::IpAddr;

/// May an outbound request connect to `ip`? Public addresses and loopback yes; private,
/// link-local, shared (RFC 6598), unspecified, multicast, broadcast and documentation ones no.
pub fn address_allowed(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let [first, second, ..] = a.octets();
            let shared = first == 100 && (64..128).contains(&second);
            a.is_loopback()
                || !(a.is_private()
                    || a.is_link_local()
                    || a.is_unspecified()
                    || a.is_broadcast()
                    || a.is_multicast()
                    || a.is_documentation()
                    || shared
                    || first == 0)
        }
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => address_allowed(IpAddr::V4(v4)),
            None => {
                a.is_loopback()
                    || !(a.is_unspecified()
                        || a.is_multicast()
                        || a.is_unique_local()
                        || a.is_unicast_link_local())
            }
        },
    }
}

/// Check a URL Mandate will send to; the error says what is wrong (after the URL's name).
pub fn check_url(url: &str) -> Result<(), String> {
    let Ok(u) = url::Url::parse(url) else {
        return Err("is not a valid URL".into());
    };
    if u.fragment().is_some() || !u.username().is_empty() || u.password().is_some() {
        return Err("must not carry a fragment or credentials".into());
    }
    let ip = match u.host() {
        Some(url::Host::Ipv4(a)) => Some(IpAddr::V4(a)),
        Some(url::Host::Ipv6(a)) => Some(IpAddr::V6(a)),
        Some(url::Host::Domain(_)) => None,
        None => return Err("has no host".into()),
    };
    if ip.is_some_and(|ip| !address_allowed(ip)) {
        return Err("must not name a private or link-local address".into());
    }
    let loopback = match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        _ => ip.is_some_and(|ip| ip.is_loopback()),
    };
    match u.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err("must use https (http only on a loopback address)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_and_plain_http_are_refused() {
        for ok in [
            "https://rs.example/ssf",
            "http://127.0.0.1:8080/ssf",
            "http://[::1]/ssf",
            "http://localhost/cb",
            "https://93.184.216.34/x",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://rs.example/ssf",
            "ftp://127.0.0.1/",
            "https://10.0.0.5/x",
            "https://192.168.1.1/x",
            "https://169.254.169.254/latest/meta-data",
            "https://100.64.0.1/x",
            "https://[fd00::1]/x",
            "https://[fe80::1]/x",
            "https://[::ffff:10.0.0.1]/x",
            "https://0.0.0.0/x",
            "https://user:pw@rs.example/x",
            "https://rs.example/x#f",
            "not a url",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}
