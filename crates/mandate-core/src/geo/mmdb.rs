//! A minimal MaxMind DB writer (format 2.0, <https://maxmind.github.io/MaxMind-DB/>): an IPv6
//! search tree with 24-bit records, IPv4 networks in `::/96`, and one record per network
//! holding `location.latitude` and `location.longitude`. Enough for tests and for an operator
//! who places their own networks (offices, VPN exits) on the map; not a GeoIP2 database.

use std::net::IpAddr;

use super::GeoPoint;

/// A network as `address/prefix` (`192.0.2.0/24`, `2001:db8::/32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl std::str::FromStr for Net {
    type Err = String;
    fn from_str(s: &str) -> Result<Net, String> {
        let (a, p) = s.split_once('/').unwrap_or((s, ""));
        let addr: IpAddr = a.parse().map_err(|_| format!("invalid address {a:?}"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = if p.is_empty() {
            max
        } else {
            p.parse().map_err(|_| format!("invalid prefix {p:?}"))?
        };
        if prefix == 0 || prefix > max {
            return Err(format!("prefix must be 1 to {max}"));
        }
        Ok(Net { addr, prefix })
    }
}

impl Net {
    /// Its 128 bits in the tree (IPv4 under `::/96`) and how many of them count.
    fn bits(&self) -> (u128, u32) {
        match self.addr {
            IpAddr::V4(v4) => (u32::from(v4) as u128, 96 + u32::from(self.prefix)),
            IpAddr::V6(v6) => (u128::from(v6), u32::from(self.prefix)),
        }
    }
}

/// Why a database could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("network {0} overlaps another")]
    Overlap(String),
    #[error("too many networks for 24-bit records")]
    TooLarge,
}

#[derive(Clone, Copy)]
enum Rec {
    Empty,
    Node(usize),
    Data(usize),
}

/// The database for these networks (none may contain another).
pub fn write(entries: &[(Net, GeoPoint)]) -> Result<Vec<u8>, WriteError> {
    let mut nodes: Vec<[Rec; 2]> = vec![[Rec::Empty, Rec::Empty]];
    for (i, (net, _)) in entries.iter().enumerate() {
        let (bits, depth) = net.bits();
        let mut node = 0;
        for d in 0..depth {
            let bit = ((bits >> (127 - d)) & 1) as usize;
            let last = d + 1 == depth;
            match nodes[node][bit] {
                Rec::Empty if last => nodes[node][bit] = Rec::Data(i),
                Rec::Empty => {
                    nodes.push([Rec::Empty, Rec::Empty]);
                    let n = nodes.len() - 1;
                    nodes[node][bit] = Rec::Node(n);
                    node = n;
                }
                Rec::Node(n) if !last => node = n,
                _ => return Err(WriteError::Overlap(format!("{}/{}", net.addr, net.prefix))),
            }
        }
    }
    let mut data = Vec::new();
    let mut offsets = Vec::with_capacity(entries.len());
    for (_, p) in entries {
        offsets.push(data.len());
        map(&mut data, 1);
        string(&mut data, "location");
        map(&mut data, 2);
        string(&mut data, "latitude");
        double(&mut data, p.lat);
        string(&mut data, "longitude");
        double(&mut data, p.lon);
    }
    let count = nodes.len();
    if count + 16 + data.len() >= 1 << 24 {
        return Err(WriteError::TooLarge);
    }
    let mut out = Vec::with_capacity(count * 6 + 16 + data.len() + 256);
    for pair in &nodes {
        for rec in pair {
            let v = match *rec {
                Rec::Empty => count,
                Rec::Node(n) => n,
                Rec::Data(i) => count + 16 + offsets[i],
            };
            out.extend_from_slice(&(v as u32).to_be_bytes()[1..]);
        }
    }
    out.extend_from_slice(&[0; 16]);
    out.extend_from_slice(&data);
    out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
    map(&mut out, 9);
    string(&mut out, "binary_format_major_version");
    uint(&mut out, 5, 2);
    string(&mut out, "binary_format_minor_version");
    uint(&mut out, 5, 0);
    string(&mut out, "build_epoch");
    uint(&mut out, 9, 0);
    string(&mut out, "database_type");
    string(&mut out, "Mandate-Locations");
    string(&mut out, "description");
    map(&mut out, 1);
    string(&mut out, "en");
    string(&mut out, "Networks placed by their operator");
    string(&mut out, "ip_version");
    uint(&mut out, 5, 6);
    string(&mut out, "languages");
    control(&mut out, 11, 1);
    string(&mut out, "en");
    string(&mut out, "node_count");
    uint(&mut out, 6, count as u64);
    string(&mut out, "record_size");
    uint(&mut out, 5, 24);
    Ok(out)
}

/// A control byte (and the extended type byte for types above 7); sizes below 29 only.
fn control(out: &mut Vec<u8>, ty: u8, size: usize) {
    debug_assert!(size < 29);
    if ty <= 7 {
        out.push((ty << 5) | size as u8);
    } else {
        out.push(size as u8);
        out.push(ty - 7);
    }
}

fn map(out: &mut Vec<u8>, pairs: usize) {
    control(out, 7, pairs);
}

fn string(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    if b.len() < 29 {
        control(out, 2, b.len());
    } else {
        out.push((2 << 5) | 29);
        out.push((b.len() - 29) as u8);
    }
    out.extend_from_slice(b);
}

fn double(out: &mut Vec<u8>, v: f64) {
    control(out, 3, 8);
    out.extend_from_slice(&v.to_be_bytes());
}

/// An unsigned integer of type `ty` (5: 16 bits, 6: 32, 9: 64) in as few bytes as it needs.
fn uint(out: &mut Vec<u8>, ty: u8, v: u64) {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    control(out, ty, 8 - skip);
    out.extend_from_slice(&bytes[skip..]);
}
