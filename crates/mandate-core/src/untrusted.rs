//! Text that came from outside (request parameters, header values, receivers' answers) on its
//! way into audit records, error descriptions and logs: clipped to a bound so that one request
//! cannot write a record of many kilobytes, and escaped for logs so that it cannot forge log
//! lines or send terminal escape sequences (SECURITY-CHECKLIST: resource bounds, logging).

use std::borrow::Cow;
use std::fmt;

/// Longest untrusted string kept in an error description or an audit field (bytes).
pub const MAX_TEXT: usize = 256;

/// `s` cut to at most `max` bytes (on a character boundary), marked with `…` when cut.
pub fn clip(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max {
        return Cow::Borrowed(s);
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…", &s[..end]))
}

/// [`clip`] in place.
pub fn clip_string(s: &mut String, max: usize) {
    if let Cow::Owned(c) = clip(s, max) {
        *s = c;
    }
}

/// Untrusted text for a log line: clipped to 1024 bytes, control characters (line breaks,
/// ESC, C1 controls, Unicode line and paragraph separators, bidirectional overrides) written
/// as `\u{..}` escapes, so one field stays one field on one line.
pub fn for_log(s: &str) -> LogText<'_> {
    LogText(clip(s, 1024))
}

/// See [`for_log`].
pub struct LogText<'a>(Cow<'a, str>);

impl fmt::Display for LogText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        for c in self.0.chars() {
            let escape = c.is_control()
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}')
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c);
            match c {
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                c if escape => write!(f, "\\u{{{:x}}}", c as u32)?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

impl fmt::Debug for LogText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Bound a JSON value in place: every string clipped to [`MAX_TEXT`], member names to 64
/// bytes, arrays and objects to 32 entries and nesting to 4 levels: what an audit record's
/// `detail` may hold whatever a request sent. A value already within the bounds (the usual
/// case) is not copied.
pub fn bound_json(v: &mut serde_json::Value) {
    bound_at(v, 0)
}

fn bound_at(v: &mut serde_json::Value, depth: usize) {
    use serde_json::Value;
    const ITEMS: usize = 32;
    match v {
        Value::String(s) => clip_string(s, MAX_TEXT),
        _ if depth >= 4 && (v.is_array() || v.is_object()) => *v = Value::String("…".into()),
        Value::Array(a) => {
            a.truncate(ITEMS);
            a.iter_mut().for_each(|x| bound_at(x, depth + 1));
        }
        Value::Object(o) => {
            if o.len() > ITEMS || o.keys().any(|k| k.len() > 64) {
                *o = std::mem::take(o)
                    .into_iter()
                    .take(ITEMS)
                    .map(|(k, x)| (clip(&k, 64).into_owned(), x))
                    .collect();
            }
            o.values_mut().for_each(|x| bound_at(x, depth + 1));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_short_text_and_cuts_long_on_a_boundary() {
        assert_eq!(clip("abc", 10), "abc");
        let long = "é".repeat(300);
        let c = clip(&long, 100);
        assert!(c.len() <= 100 && c.ends_with('…'), "{c}");
    }

    #[test]
    fn log_text_has_no_raw_controls() {
        let s = for_log("a\nb\r\x1b[31mred\u{2028}\u{202e}x\\").to_string();
        assert_eq!(s, "a\\nb\\r\\u{1b}[31mred\\u{2028}\\u{202e}x\\\\");
        assert!(!s.chars().any(char::is_control));
    }

    #[test]
    fn json_is_bounded() {
        let big = serde_json::json!({"k".repeat(1000): "v".repeat(50_000),
            "list": vec![1; 1000], "deep": {"a": {"b": {"c": {"d": {"e": 1}}}}}});
        let mut b = big.clone();
        bound_json(&mut b);
        let b = b.to_string();
        assert!(b.len() < 1024, "{}", b.len());
    }
}
