//! Wall-clock time as Unix seconds, the unit of every JWT and stored timestamp.

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A point in time given as Unix seconds or an RFC 3339 timestamp (`2026-12-01T10:00:00Z`).
pub fn parse_instant(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i64>() {
        return Some(n);
    }
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// Unix seconds as RFC 3339 in UTC; the number itself when out of range.
pub fn format_instant(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_parse_and_format() {
        assert_eq!(parse_instant("1764583200"), Some(1_764_583_200));
        assert_eq!(parse_instant("2025-12-01T10:00:00Z"), Some(1_764_583_200));
        assert_eq!(
            parse_instant("2025-12-01T11:00:00+01:00"),
            Some(1_764_583_200)
        );
        assert_eq!(parse_instant("yesterday"), None);
        assert_eq!(format_instant(1_764_583_200), "2025-12-01T10:00:00Z");
    }
}
