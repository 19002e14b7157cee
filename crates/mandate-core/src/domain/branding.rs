//! A tenant's look on its pages (display name, logo, colours, an extra stylesheet) and its own
//! plain-language descriptions of scopes, with the rules that make them safe to put on a page:
//! colours are only `#rgb`/`#rrggbb` (so a generated stylesheet cannot carry anything else),
//! URLs are `https` without credentials (their origins go into the page's CSP), a logo given
//! inline is a small base64 `data:` image, and texts are bounded plain text.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Longest display name (characters).
pub const MAX_DISPLAY_NAME: usize = 100;
/// Longest `https` URL for a logo or stylesheet (bytes).
pub const MAX_URL: usize = 2048;
/// Largest inline (`data:`) logo, as written (bytes of the whole URL).
pub const MAX_DATA_LOGO: usize = 32 * 1024;
/// Most scopes a tenant describes.
pub const MAX_SCOPE_DESCRIPTIONS: usize = 200;
/// Most languages per scope.
pub const MAX_LANGUAGES: usize = 20;
/// Longest scope description (characters).
pub const MAX_DESCRIPTION: usize = 200;
/// Smallest contrast between the text and background colours (WCAG 2.2 AA, normal text).
pub const MIN_TEXT_CONTRAST: f64 = 4.5;

/// The image types a `data:` logo may have (rendered by `<img>`, so an SVG cannot run script).
const LOGO_TYPES: [&str; 5] = [
    "image/png",
    "image/svg+xml",
    "image/webp",
    "image/jpeg",
    "image/gif",
];

/// What a tenant changes about its pages. Every field is optional; unset ones keep Mandate's
/// own look.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Branding {
    /// The name pages show for the tenant (header, titles, "this organization").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The logo: an `https` URL, or a small base64 `data:image/…` URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_url: Option<String>,
    /// The colour of primary buttons, links and focus rings, `#rrggbb`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_color: Option<String>,
    /// The page background, `#rrggbb`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background_color: Option<String>,
    /// The text colour, `#rrggbb`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_color: Option<String>,
    /// An extra stylesheet (`https`) loaded after Mandate's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stylesheet_url: Option<String>,
}

/// A tenant's descriptions of its own scopes: scope → language tag → text.
pub type ScopeDescriptions = BTreeMap<String, BTreeMap<String, String>>;

/// Why branding or scope descriptions were refused; each names the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BrandingError {
    #[error("{field} must be 1-{max} characters of plain text")]
    Text { field: &'static str, max: usize },
    #[error("{field} must be a colour written #rgb or #rrggbb")]
    Color { field: &'static str },
    #[error("{field} must be an https URL without user name or password (at most {MAX_URL} bytes)")]
    Url { field: &'static str },
    #[error(
        "logo_url must be an https URL or a base64 data: URL of a PNG, SVG, WebP, JPEG or GIF image of at most {MAX_DATA_LOGO} bytes"
    )]
    Logo,
    #[error(
        "text_color and background_color have a contrast of {ratio:.2}:1; at least {MIN_TEXT_CONTRAST}:1 is needed"
    )]
    Contrast { ratio: f64 },
    #[error("invalid scope name {0:?} in scope_descriptions")]
    ScopeName(String),
    #[error("invalid language tag {0:?} in scope_descriptions (use e.g. en, de, pt-BR)")]
    Language(String),
    #[error(
        "too many scope_descriptions: at most {MAX_SCOPE_DESCRIPTIONS} scopes of {MAX_LANGUAGES} languages each"
    )]
    TooMany,
}

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    /// Parse `#rgb` or `#rrggbb` (nothing else: no names, functions or alpha).
    pub fn parse(s: &str) -> Option<Rgb> {
        let hex = s.strip_prefix('#')?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let digit = |i: usize, n: usize| u8::from_str_radix(&hex[i..i + n], 16).ok();
        match hex.len() {
            3 => Some(Rgb(digit(0, 1)? * 17, digit(1, 1)? * 17, digit(2, 1)? * 17)),
            6 => Some(Rgb(digit(0, 2)?, digit(2, 2)?, digit(4, 2)?)),
            _ => None,
        }
    }

    /// `#rrggbb`, lowercase: the only form that reaches a stylesheet.
    pub fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }

    /// WCAG 2.2 relative luminance.
    pub fn luminance(self) -> f64 {
        let channel = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * channel(self.0) + 0.7152 * channel(self.1) + 0.0722 * channel(self.2)
    }

    /// WCAG 2.2 contrast ratio between two colours (1 to 21).
    pub fn contrast(self, other: Rgb) -> f64 {
        let (a, b) = (self.luminance(), other.luminance());
        let (hi, lo) = if a > b { (a, b) } else { (b, a) };
        (hi + 0.05) / (lo + 0.05)
    }

    /// Of near-black and white, the text colour that reads best on this colour.
    pub fn readable_text(self) -> Rgb {
        let (dark, light) = (Rgb(0x11, 0x11, 0x11), Rgb(0xff, 0xff, 0xff));
        if self.contrast(dark) >= self.contrast(light) {
            dark
        } else {
            light
        }
    }
}

/// Plain text: no control characters, not blank, at most `max` characters.
fn plain_text(s: &str, max: usize) -> bool {
    !s.trim().is_empty() && s.chars().count() <= max && !s.chars().any(char::is_control)
}

/// An `https` URL with a host and no credentials; its origin (`https://host[:port]`).
pub fn https_origin(s: &str) -> Option<String> {
    if s.len() > MAX_URL || s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return None;
    }
    let u = url::Url::parse(s).ok()?;
    if u.scheme() != "https" || !u.username().is_empty() || u.password().is_some() {
        return None;
    }
    u.host_str()?;
    let origin = u.origin().ascii_serialization();
    // A host may hold `;`, `,` or `'`, which would end a CSP directive or source: only plain
    // (punycode) names and IP addresses go into a header.
    origin
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'/' | b'[' | b']'))
        .then_some(origin)
}

/// A base64 `data:` URL of one of [`LOGO_TYPES`], within [`MAX_DATA_LOGO`].
fn data_logo(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("data:") else {
        return false;
    };
    let Some((kind, data)) = rest.split_once(";base64,") else {
        return false;
    };
    s.len() <= MAX_DATA_LOGO
        && LOGO_TYPES.contains(&kind)
        && !data.is_empty()
        && data
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
}

/// A language tag as pages match it: a 2-3 letter language, optionally with subtags
/// (`en`, `de`, `pt-BR`, `zh-Hant`).
fn language_tag(s: &str) -> bool {
    let mut parts = s.split('-');
    let first = parts.next().unwrap_or_default();
    s.len() <= 35
        && (2..=3).contains(&first.len())
        && first.bytes().all(|b| b.is_ascii_lowercase())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// A scope token (RFC 6749 §3.3), at most 128 bytes.
fn scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

impl Branding {
    /// Is nothing set?
    pub fn is_empty(&self) -> bool {
        *self == Branding::default()
    }

    /// Check every field (see the module's rules).
    pub fn validate(&self) -> Result<(), BrandingError> {
        if let Some(n) = &self.display_name
            && !plain_text(n, MAX_DISPLAY_NAME)
        {
            return Err(BrandingError::Text {
                field: "display_name",
                max: MAX_DISPLAY_NAME,
            });
        }
        if let Some(l) = &self.logo_url
            && https_origin(l).is_none()
            && !data_logo(l)
        {
            return Err(BrandingError::Logo);
        }
        for (field, v) in [
            ("primary_color", &self.primary_color),
            ("background_color", &self.background_color),
            ("text_color", &self.text_color),
        ] {
            if let Some(c) = v
                && Rgb::parse(c).is_none()
            {
                return Err(BrandingError::Color { field });
            }
        }
        if let Some(u) = &self.stylesheet_url
            && https_origin(u).is_none()
        {
            return Err(BrandingError::Url {
                field: "stylesheet_url",
            });
        }
        let (text, background) = self.text_and_background();
        let ratio = text.contrast(background);
        if ratio < MIN_TEXT_CONTRAST {
            return Err(BrandingError::Contrast { ratio });
        }
        Ok(())
    }

    /// The text and background colours pages use: the tenant's, or the light scheme's
    /// defaults for the one not set.
    pub fn text_and_background(&self) -> (Rgb, Rgb) {
        let colour =
            |v: &Option<String>, default| v.as_deref().and_then(Rgb::parse).unwrap_or(default);
        (
            colour(&self.text_color, Rgb(0x1b, 0x1d, 0x21)),
            colour(&self.background_color, Rgb(0xff, 0xff, 0xff)),
        )
    }

    /// Does the tenant set any colour (so pages need its generated stylesheet)?
    pub fn has_colors(&self) -> bool {
        self.primary_color.is_some() || self.background_color.is_some() || self.text_color.is_some()
    }

    /// The logo's origin when it is an `https` URL (a `data:` logo needs none).
    pub fn logo_origin(&self) -> Option<String> {
        self.logo_url.as_deref().and_then(https_origin)
    }

    /// The extra stylesheet's origin.
    pub fn stylesheet_origin(&self) -> Option<String> {
        self.stylesheet_url.as_deref().and_then(https_origin)
    }
}

/// Check a tenant's scope descriptions: scope names, language tags, lengths, counts.
pub fn validate_scope_descriptions(d: &ScopeDescriptions) -> Result<(), BrandingError> {
    if d.len() > MAX_SCOPE_DESCRIPTIONS {
        return Err(BrandingError::TooMany);
    }
    for (scope, texts) in d {
        if !scope_token(scope) {
            return Err(BrandingError::ScopeName(
                crate::untrusted::clip(scope, 64).into(),
            ));
        }
        if texts.len() > MAX_LANGUAGES {
            return Err(BrandingError::TooMany);
        }
        for (lang, text) in texts {
            if !language_tag(lang) {
                return Err(BrandingError::Language(
                    crate::untrusted::clip(lang, 64).into(),
                ));
            }
            if !plain_text(text, MAX_DESCRIPTION) {
                return Err(BrandingError::Text {
                    field: "scope_descriptions",
                    max: MAX_DESCRIPTION,
                });
            }
        }
    }
    Ok(())
}

/// The tenant's description of `scope` for a page in `lang` (a primary language such as `de`):
/// the text for exactly `lang`, else one for a regional form of it (`de-CH`), else English.
pub fn scope_description<'a>(d: &'a ScopeDescriptions, scope: &str, lang: &str) -> Option<&'a str> {
    let texts = d.get(scope)?;
    let regional = |l: &str| {
        texts
            .iter()
            .find(|(tag, _)| tag.split('-').next() == Some(l))
            .map(|(_, t)| t.as_str())
    };
    texts
        .get(lang)
        .map(String::as_str)
        .or_else(|| regional(lang))
        .or_else(|| texts.get("en").map(String::as_str))
        .or_else(|| regional("en"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_only_hex() {
        assert_eq!(Rgb::parse("#0b57d0"), Some(Rgb(0x0b, 0x57, 0xd0)));
        assert_eq!(Rgb::parse("#FFF"), Some(Rgb(255, 255, 255)));
        assert_eq!(Rgb::parse("#fff").unwrap().hex(), "#ffffff");
        for bad in [
            "",
            "#",
            "red",
            "#12345",
            "#1234567",
            "#ggg",
            "0b57d0",
            "#fff;}",
            "#fff\n",
            "rgb(1,2,3)",
            "#ffff",
            "#０００",
        ] {
            assert_eq!(Rgb::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn contrast_follows_wcag() {
        let (black, white) = (Rgb(0, 0, 0), Rgb(255, 255, 255));
        assert!((black.contrast(white) - 21.0).abs() < 1e-9);
        assert!((white.contrast(white) - 1.0).abs() < 1e-9);
        // #767676 on white is the classic 4.54:1.
        let grey = Rgb::parse("#767676").unwrap();
        assert!((grey.contrast(white) - 4.54).abs() < 0.01);
        assert_eq!(
            Rgb::parse("#ffd700").unwrap().readable_text(),
            Rgb(0x11, 0x11, 0x11)
        );
        assert_eq!(Rgb::parse("#0b57d0").unwrap().readable_text(), white);
    }

    fn branding(f: impl FnOnce(&mut Branding)) -> Result<(), BrandingError> {
        let mut b = Branding::default();
        f(&mut b);
        b.validate()
    }

    #[test]
    fn branding_is_checked() {
        assert_eq!(branding(|_| {}), Ok(()));
        assert_eq!(
            branding(|b| {
                b.display_name = Some("Acme Corp".into());
                b.logo_url = Some("https://cdn.acme.test/logo.svg".into());
                b.primary_color = Some("#0b57d0".into());
                b.stylesheet_url = Some("https://cdn.acme.test:8443/brand.css".into());
            }),
            Ok(())
        );
        assert_eq!(
            branding(|b| b.logo_url = Some("data:image/png;base64,iVBORw0KGgo=".into())),
            Ok(())
        );
        for bad in ["", "   ", "a\u{0}b", "new\nline"] {
            assert!(
                matches!(
                    branding(|b| b.display_name = Some(bad.into())),
                    Err(BrandingError::Text { .. })
                ),
                "{bad:?}"
            );
        }
        let long = "x".repeat(MAX_DISPLAY_NAME + 1);
        assert!(branding(|b| b.display_name = Some(long)).is_err());
        for bad in [
            "http://cdn.acme.test/logo.png",
            "javascript:alert(1)",
            "https://user:pw@cdn.acme.test/logo.png",
            "data:text/html;base64,PHNjcmlwdD4=",
            "data:image/png,rawdata",
            "data:image/png;base64,<script>",
            "//cdn.acme.test/logo.png",
            "https://cdn.acme.test/a b.png",
            "https://a;script-src*.test/logo.png",
            "https://a,b.test/logo.png",
            "https://a'unsafe-inline'.test/logo.png",
        ] {
            assert_eq!(
                branding(|b| b.logo_url = Some(bad.into())),
                Err(BrandingError::Logo),
                "{bad:?}"
            );
        }
        let huge = format!("data:image/png;base64,{}", "A".repeat(MAX_DATA_LOGO));
        assert_eq!(
            branding(|b| b.logo_url = Some(huge)),
            Err(BrandingError::Logo)
        );
        assert_eq!(
            branding(|b| b.primary_color = Some("blue".into())),
            Err(BrandingError::Color {
                field: "primary_color"
            })
        );
        assert_eq!(
            branding(|b| b.stylesheet_url = Some("http://x.test/a.css".into())),
            Err(BrandingError::Url {
                field: "stylesheet_url"
            })
        );
        // Unreadable text is refused, whether both colours are given or one meets a default.
        assert!(matches!(
            branding(|b| {
                b.text_color = Some("#777".into());
                b.background_color = Some("#888".into());
            }),
            Err(BrandingError::Contrast { .. })
        ));
        assert!(matches!(
            branding(|b| b.background_color = Some("#222".into())),
            Err(BrandingError::Contrast { .. })
        ));
        assert_eq!(
            branding(|b| {
                b.text_color = Some("#f5f5f5".into());
                b.background_color = Some("#222".into());
            }),
            Ok(())
        );
    }

    #[test]
    fn origins_for_the_csp() {
        let b = Branding {
            logo_url: Some("https://cdn.acme.test/img/logo.png?v=1".into()),
            stylesheet_url: Some("https://style.acme.test:8443/x.css".into()),
            ..Branding::default()
        };
        assert_eq!(b.logo_origin().as_deref(), Some("https://cdn.acme.test"));
        assert_eq!(
            b.stylesheet_origin().as_deref(),
            Some("https://style.acme.test:8443")
        );
        let inline = Branding {
            logo_url: Some("data:image/png;base64,AAAA".into()),
            ..Branding::default()
        };
        assert_eq!(inline.logo_origin(), None);
    }

    fn descriptions(pairs: &[(&str, &str, &str)]) -> ScopeDescriptions {
        let mut d = ScopeDescriptions::new();
        for (scope, lang, text) in pairs {
            d.entry(scope.to_string())
                .or_default()
                .insert(lang.to_string(), text.to_string());
        }
        d
    }

    #[test]
    fn scope_descriptions_are_checked() {
        let ok = descriptions(&[
            ("calendar.read", "en", "See your calendar"),
            ("calendar.read", "pt-BR", "Ver sua agenda"),
            ("urn:acme:files", "ja", "ファイルを見る"),
        ]);
        assert_eq!(validate_scope_descriptions(&ok), Ok(()));
        for (pairs, want) in [
            (
                descriptions(&[("two words", "en", "x")]),
                BrandingError::ScopeName("two words".into()),
            ),
            (
                descriptions(&[("q\"uote", "en", "x")]),
                BrandingError::ScopeName("q\"uote".into()),
            ),
            (
                descriptions(&[("a", "EN", "x")]),
                BrandingError::Language("EN".into()),
            ),
            (
                descriptions(&[("a", "english", "x")]),
                BrandingError::Language("english".into()),
            ),
            (
                descriptions(&[("a", "en-", "x")]),
                BrandingError::Language("en-".into()),
            ),
            (
                descriptions(&[("a", "en", "")]),
                BrandingError::Text {
                    field: "scope_descriptions",
                    max: MAX_DESCRIPTION,
                },
            ),
        ] {
            assert_eq!(validate_scope_descriptions(&pairs), Err(want));
        }
        let long = "x".repeat(MAX_DESCRIPTION + 1);
        assert!(validate_scope_descriptions(&descriptions(&[("a", "en", &long)])).is_err());
        let many: ScopeDescriptions = (0..=MAX_SCOPE_DESCRIPTIONS)
            .map(|i| (format!("s{i}"), BTreeMap::new()))
            .collect();
        assert_eq!(
            validate_scope_descriptions(&many),
            Err(BrandingError::TooMany)
        );
    }

    #[test]
    fn scope_description_falls_back_to_english() {
        let d = descriptions(&[
            ("calendar.read", "en", "See your calendar"),
            ("calendar.read", "de-CH", "Ihre Agenda sehen"),
            ("calendar.read", "ja", "カレンダーを見る"),
            ("files", "fr", "Voir vos fichiers"),
        ]);
        assert_eq!(
            scope_description(&d, "calendar.read", "ja"),
            Some("カレンダーを見る")
        );
        assert_eq!(
            scope_description(&d, "calendar.read", "de"),
            Some("Ihre Agenda sehen")
        );
        assert_eq!(
            scope_description(&d, "calendar.read", "es"),
            Some("See your calendar")
        );
        assert_eq!(scope_description(&d, "files", "es"), None);
        assert_eq!(scope_description(&d, "other", "en"), None);
    }
}
