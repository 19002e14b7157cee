//! Where an address is on the globe, for the risk signal "impossible travel": a point from a
//! MaxMind-format GeoIP database the operator names (`--geoip-db`), and the great-circle
//! distance between two points. Plain data and arithmetic, so the signal stays a pure function;
//! [`mmdb`] writes small databases of one's own (tests, a company's own address plan).

pub mod mmdb;

use std::fmt;
use std::net::IpAddr;
use std::path::Path;

/// A place in degrees (WGS 84).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeoPoint {
    pub lat: f64,
    pub lon: f64,
}

impl GeoPoint {
    /// Rounded to 0.1° (about 11 km): how places are stored, so no record holds more
    /// precision than the signal needs.
    pub fn coarse(self) -> (i64, i64) {
        (
            (self.lat * 10.0).round() as i64,
            (self.lon * 10.0).round() as i64,
        )
    }

    /// The point a stored coarse place stands for.
    pub fn from_coarse(lat: i64, lon: i64) -> GeoPoint {
        GeoPoint {
            lat: lat as f64 / 10.0,
            lon: lon as f64 / 10.0,
        }
    }
}

/// Mean Earth radius (km), as the haversine formula uses it.
const EARTH_RADIUS_KM: f64 = 6371.0;

/// The great-circle distance between two points in kilometres (haversine).
pub fn distance_km(a: GeoPoint, b: GeoPoint) -> f64 {
    let (p1, p2) = (a.lat.to_radians(), b.lat.to_radians());
    let dp = (b.lat - a.lat).to_radians();
    let dl = (b.lon - a.lon).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

/// Finds where an address is; `None` when unknown.
pub trait Locator: Send + Sync + fmt::Debug {
    fn locate(&self, ip: IpAddr) -> Option<GeoPoint>;
}

/// Why a GeoIP database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum GeoIpError {
    #[error("cannot read the GeoIP database: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a MaxMind DB file: {0}")]
    Format(String),
}

/// A MaxMind DB (GeoLite2-City, GeoIP2-City or any database whose records carry
/// `location.latitude` and `location.longitude`), read into memory once.
pub struct MaxMind {
    reader: maxminddb::Reader<Vec<u8>>,
}

impl fmt::Debug for MaxMind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.reader.metadata();
        write!(f, "MaxMind({}, {} nodes)", m.database_type, m.node_count)
    }
}

#[derive(serde::Deserialize)]
struct Record {
    location: Option<Location>,
}

#[derive(serde::Deserialize)]
struct Location {
    latitude: Option<f64>,
    longitude: Option<f64>,
}

impl MaxMind {
    /// Read a database file.
    pub fn open(path: &Path) -> Result<MaxMind, GeoIpError> {
        Self::from_bytes(std::fs::read(path)?)
    }

    /// A database already in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<MaxMind, GeoIpError> {
        let reader =
            maxminddb::Reader::from_source(bytes).map_err(|e| GeoIpError::Format(e.to_string()))?;
        Ok(MaxMind { reader })
    }
}

impl Locator for MaxMind {
    fn locate(&self, ip: IpAddr) -> Option<GeoPoint> {
        // IPv4-mapped IPv6 addresses are looked up as IPv4 (an IPv4-only database has no
        // other way to answer them).
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let rec: Record = self.reader.lookup(ip).ok()?.decode().ok()??;
        let loc = rec.location?;
        let p = GeoPoint {
            lat: loc.latitude?,
            lon: loc.longitude?,
        };
        (p.lat.is_finite()
            && p.lon.is_finite()
            && (-90.0..=90.0).contains(&p.lat)
            && (-180.0..=180.0).contains(&p.lon))
        .then_some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        let berlin = GeoPoint {
            lat: 52.52,
            lon: 13.405,
        };
        let sydney = GeoPoint {
            lat: -33.8688,
            lon: 151.2093,
        };
        let paris = GeoPoint {
            lat: 48.8566,
            lon: 2.3522,
        };
        let d = distance_km(berlin, sydney);
        assert!((16_000.0..16_200.0).contains(&d), "{d}");
        let d = distance_km(berlin, paris);
        assert!((870.0..890.0).contains(&d), "{d}");
        assert_eq!(distance_km(paris, paris), 0.0);
        // Across the date line.
        let a = GeoPoint {
            lat: 0.0,
            lon: 179.5,
        };
        let b = GeoPoint {
            lat: 0.0,
            lon: -179.5,
        };
        assert!((distance_km(a, b) - 111.2).abs() < 1.0);
        assert_eq!(GeoPoint::from_coarse(525, 134).coarse(), (525, 134));
        assert_eq!(berlin.coarse(), (525, 134));
    }

    #[test]
    fn a_written_database_reads_back() {
        let db = mmdb::write(&[
            (
                "192.0.2.0/24".parse().unwrap(),
                GeoPoint {
                    lat: 52.5,
                    lon: 13.4,
                },
            ),
            (
                "198.51.100.0/24".parse().unwrap(),
                GeoPoint {
                    lat: -33.9,
                    lon: 151.2,
                },
            ),
            (
                "2001:db8::/32".parse().unwrap(),
                GeoPoint {
                    lat: 48.9,
                    lon: 2.4,
                },
            ),
        ])
        .unwrap();
        let m = MaxMind::from_bytes(db).unwrap();
        let at = |s: &str| m.locate(s.parse().unwrap());
        assert_eq!(
            at("192.0.2.77"),
            Some(GeoPoint {
                lat: 52.5,
                lon: 13.4
            })
        );
        assert_eq!(
            at("::ffff:198.51.100.1"),
            Some(GeoPoint {
                lat: -33.9,
                lon: 151.2
            })
        );
        assert_eq!(
            at("2001:db8:1::1"),
            Some(GeoPoint {
                lat: 48.9,
                lon: 2.4
            })
        );
        assert_eq!(at("203.0.113.1"), None);
        assert_eq!(at("2001:db9::1"), None);
        assert!(MaxMind::from_bytes(b"not a database".to_vec()).is_err());
    }
}
