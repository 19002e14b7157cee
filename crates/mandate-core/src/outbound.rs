//! Rules for every request Mandate sends out (SSF push, CIBA pings and webhooks): `https` to a
//! public address, never a loopback, private, link-local or otherwise internal one, so that
//! whoever registers a URL cannot make the server reach into the network it runs in
//! (SECURITY-CHECKLIST: outbound fetches). IPv6 forms that embed an IPv4 address (IPv4-mapped,
//! -compatible and -translated, NAT64, 6to4, Teredo) are unwrapped and the IPv4 address is
//! checked too.
//!
//! Loopback (and plain `http` to it) is allowed only behind the explicit development switch
//! [`set_allow_loopback`] (`MANDATE_DEV_ALLOW_LOOPBACK_OUTBOUND`), for tests and local
//! receivers. Literal addresses are checked here when a URL is registered; the HTTP client
//! checks every address again when it connects.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};

static ALLOW_LOOPBACK: AtomicBool = AtomicBool::new(false);

/// Development switch: let outbound requests go to loopback addresses (and over plain `http`
/// there). Off by default; process-wide because the rule holds for every sender alike.
pub fn set_allow_loopback(on: bool) {
    ALLOW_LOOPBACK.store(on, Ordering::Relaxed);
}

/// Whether the development switch [`set_allow_loopback`] is on.
pub fn loopback_allowed() -> bool {
    ALLOW_LOOPBACK.load(Ordering::Relaxed)
}

/// May an outbound request connect to `ip`? Public unicast addresses yes; loopback only with
/// the development switch; private, link-local, shared (RFC 6598), unspecified, multicast,
/// broadcast, reserved and documentation ones never.
pub fn address_allowed(ip: IpAddr) -> bool {
    address_allowed_with(ip, loopback_allowed())
}

/// [`address_allowed`] with the switch given (pure, for tests).
pub fn address_allowed_with(ip: IpAddr, loopback: bool) -> bool {
    match ip {
        IpAddr::V4(a) => v4_allowed(a, loopback),
        IpAddr::V6(a) => v6_allowed(a, loopback),
    }
}

fn v4_allowed(a: Ipv4Addr, loopback: bool) -> bool {
    if a.is_loopback() {
        return loopback;
    }
    let [o0, o1, o2, _] = a.octets();
    let internal = a.is_private()
        || a.is_link_local()
        || a.is_unspecified()
        || a.is_broadcast()
        || a.is_multicast()
        || a.is_documentation()
        || o0 == 0
        // Shared address space (RFC 6598).
        || (o0 == 100 && (64..128).contains(&o1))
        // IETF protocol assignments (RFC 6890), incl. DS-Lite and NAT64 discovery.
        || (o0 == 192 && o1 == 0 && o2 == 0)
        // 6to4 relay anycast (RFC 7526).
        || (o0 == 192 && o1 == 88 && o2 == 99)
        // Benchmarking (RFC 2544).
        || (o0 == 198 && (o1 & 0xfe) == 18)
        // Reserved (240.0.0.0/4).
        || o0 >= 240;
    !internal
}

/// The IPv4 address an IPv6 address carries, for the forms a packet may be routed by:
/// IPv4-mapped `::ffff:0:0/96`, IPv4-translated `::ffff:0:0:0/96`, IPv4-compatible `::/96`,
/// NAT64 `64:ff9b::/96`, 6to4 `2002::/16`, and Teredo `2001::/32` (server and client).
fn embedded_v4(a: Ipv6Addr) -> Vec<Ipv4Addr> {
    let s = a.segments();
    let o = a.octets();
    let last = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] => vec![last],
        [0, 0, 0, 0, 0xffff, 0, _, _] => vec![last],
        [0, 0, 0, 0, 0, 0, _, _] => vec![last],
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => vec![last],
        [0x2002, ..] => vec![Ipv4Addr::new(o[2], o[3], o[4], o[5])],
        [0x2001, 0, ..] => vec![
            Ipv4Addr::new(o[4], o[5], o[6], o[7]),
            Ipv4Addr::new(!o[12], !o[13], !o[14], !o[15]),
        ],
        _ => vec![],
    }
}

fn v6_allowed(a: Ipv6Addr, loopback: bool) -> bool {
    if a.is_loopback() {
        return loopback;
    }
    if a.is_unspecified() {
        return false;
    }
    let s = a.segments();
    let internal = a.is_multicast()
        || a.is_unique_local()
        || a.is_unicast_link_local()
        // Site-local (deprecated, fec0::/10).
        || (s[0] & 0xffc0) == 0xfec0
        // Documentation (2001:db8::/32, 3fff::/20).
        || (s[0] == 0x2001 && s[1] == 0x0db8)
        || (s[0] == 0x3fff && s[1] < 0x1000)
        // Discard-only (100::/64).
        || (s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0)
        // Local-use NAT64 (64:ff9b:1::/48, RFC 8215): translates into private networks.
        || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1)
        // IETF protocol assignments other than Teredo (2001::/23 minus 2001::/32): ORCHID,
        // benchmarking, AMT and the like, never a web server.
        || (s[0] == 0x2001 && s[1] != 0 && s[1] < 0x0200);
    if internal {
        return false;
    }
    embedded_v4(a)
        .into_iter()
        .all(|v4| v4_allowed(v4, loopback))
}

/// Check a URL Mandate will send to; the error says what is wrong (after the URL's name).
pub fn check_url(url: &str) -> Result<(), String> {
    check_url_with(url, loopback_allowed())
}

/// [`check_url`] with the development switch given (pure, for tests).
pub fn check_url_with(url: &str, allow_loopback: bool) -> Result<(), String> {
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
    let loopback = match u.host() {
        Some(url::Host::Domain(d)) => is_localhost(d),
        _ => ip.is_some_and(is_loopback),
    };
    if loopback && !allow_loopback {
        return Err("must not name a loopback address (development switch \
                    MANDATE_DEV_ALLOW_LOOPBACK_OUTBOUND is off)"
            .into());
    }
    if ip.is_some_and(|ip| !address_allowed_with(ip, allow_loopback)) {
        return Err("must not name a private, link-local or reserved address".into());
    }
    match u.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err("must use https (http only on loopback in development)".into()),
    }
}

/// Whether a scheme may be used for a host: `https` always, plain `http` only to loopback
/// with the development switch on. The HTTP client applies this at send time too.
pub fn scheme_allowed(scheme: &str, host: &str) -> bool {
    match scheme {
        "https" => true,
        "http" => {
            loopback_allowed()
                && (is_localhost(host)
                    || host
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .parse::<IpAddr>()
                        .is_ok_and(is_loopback))
        }
        _ => false,
    }
}

fn is_localhost(host: &str) -> bool {
    let h = host.trim_end_matches('.');
    h.eq_ignore_ascii_case("localhost") || h.to_ascii_lowercase().ends_with(".localhost")
}

/// Loopback, including IPv6 forms that embed a loopback IPv4 address.
fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_loopback(),
        IpAddr::V6(a) => a.is_loopback() || embedded_v4(a).iter().any(Ipv4Addr::is_loopback),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_and_plain_http_are_refused() {
        for ok in [
            "https://rs.example/ssf",
            "https://93.184.216.34/x",
            "https://[2606:4700::1111]/x",
            "https://[64:ff9b::5db8:d822]/x",
            "https://[2002:5db8:d822::1]/x",
        ] {
            assert!(check_url_with(ok, false).is_ok(), "{ok}");
        }
        for bad in [
            "http://rs.example/ssf",
            "http://127.0.0.1:8080/ssf",
            "https://127.0.0.1:8080/any/path",
            "https://127.1.2.3/x",
            "http://[::1]/ssf",
            "https://[::1]/ssf",
            "http://localhost/cb",
            "https://localhost/cb",
            "https://api.localhost/cb",
            "ftp://127.0.0.1/",
            "https://10.0.0.5/x",
            "https://192.168.1.1/x",
            "https://172.16.0.1/x",
            "https://169.254.169.254/latest/meta-data",
            "https://100.64.0.1/x",
            "https://192.0.0.8/x",
            "https://198.18.0.1/x",
            "https://240.0.0.1/x",
            "https://255.255.255.255/x",
            "https://224.0.0.1/x",
            "https://192.0.2.1/x",
            "https://[fd00::1]/x",
            "https://[fe80::1]/x",
            "https://[fec0::1]/x",
            "https://[ff02::1]/x",
            "https://[2001:db8::1]/x",
            "https://[100::1]/x",
            "https://[::ffff:10.0.0.1]/x",
            "https://[::ffff:127.0.0.1]/x",
            "https://[::ffff:0:127.0.0.1]/x",
            "https://[::ffff:0:10.0.0.1]/x",
            "https://[::127.0.0.1]/x",
            "https://[::10.0.0.1]/x",
            "https://[64:ff9b::7f00:1]/x",
            "https://[64:ff9b::a9fe:a9fe]/x",
            "https://[64:ff9b:1::a00:1]/x",
            "https://[2002:7f00:1::1]/x",
            "https://[2002:a00:1::]/x",
            "https://[2001:0:7f00:1::1]/x",
            "https://[2001:0:5db8:d822::80ff:fffe]/x",
            "https://[::]/x",
            "https://0.0.0.0/x",
            "https://user:pw@rs.example/x",
            "https://rs.example/x#f",
            "not a url",
        ] {
            assert!(check_url_with(bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_only_behind_the_development_switch() {
        for ok in [
            "http://127.0.0.1:8080/ssf",
            "http://[::1]/ssf",
            "http://localhost/cb",
            "https://127.0.0.1/x",
        ] {
            assert!(check_url_with(ok, true).is_ok(), "{ok}");
        }
        for bad in [
            "http://rs.example/ssf",
            "https://10.0.0.5/x",
            "http://10.0.0.5/x",
            "https://[64:ff9b::a00:1]/x",
        ] {
            assert!(check_url_with(bad, true).is_err(), "{bad}");
        }
    }

    #[test]
    fn address_table() {
        let cases: &[(&str, bool)] = &[
            ("8.8.8.8", true),
            ("127.0.0.1", false),
            ("10.1.2.3", false),
            ("100.100.0.1", false),
            ("169.254.0.1", false),
            ("0.1.2.3", false),
            ("2606:4700::1111", true),
            ("::1", false),
            ("::", false),
            ("::ffff:8.8.8.8", true),
            ("::ffff:192.168.0.1", false),
            ("::ffff:0:192.168.0.1", false),
            ("::192.168.0.1", false),
            ("64:ff9b::808:808", true),
            ("64:ff9b::c0a8:1", false),
            ("64:ff9b:1::808:808", false),
            ("2002:808:808::1", true),
            ("2002:c0a8:1::1", false),
            ("2001:0:808:808::f7f7:f7f7", true),
            ("2001:0:c0a8:1::f7f7:f7f7", false),
            ("2001:0:808:808::80ff:fffe", false),
            ("2001:db8::1", false),
            ("fc00::1", false),
            ("fe80::1", false),
        ];
        for (ip, want) in cases {
            let got = address_allowed_with(ip.parse().unwrap(), false);
            assert_eq!(got, *want, "{ip}");
        }
        assert!(address_allowed_with("127.0.0.1".parse().unwrap(), true));
        assert!(address_allowed_with(
            "::ffff:127.0.0.1".parse().unwrap(),
            true
        ));
        assert!(!address_allowed_with("10.0.0.1".parse().unwrap(), true));
    }
}
