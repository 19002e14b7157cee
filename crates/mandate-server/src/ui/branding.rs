//! A tenant's branding on its pages: the tenant a page belongs to (known for the whole request
//! so every page, error pages included, carries it), what templates see of it (`brand`), the
//! page's Content-Security-Policy (which allows the logo's and extra stylesheet's origins only
//! when they are configured) and `GET {issuer}/branding.css`, the tenant's colours as CSS
//! custom properties (pages allow no inline styles). Rules for the values are in
//! `mandate_core::domain::branding`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use mandate_core::TenantCtx;
use mandate_core::domain::branding::{Branding, Rgb};
use minijinja::context;

use crate::state::AppState;
use crate::tenant::Tenant;

tokio::task_local! {
    /// The tenant whose page is being answered (set by [`tenant_pages`]).
    static PAGE_TENANT: Arc<TenantCtx>;
}

/// Layer of the tenant routes: the rest of the request knows its tenant, so
/// `pages::render` and `pages::html` brand the page without every handler passing it on.
pub async fn tenant_pages(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let name = Path::<HashMap<String, String>>::from_request_parts(&mut parts, &s)
        .await
        .ok()
        .and_then(|Path(p)| p.get("tenant").cloned());
    let req = Request::from_parts(parts, body);
    // An unknown tenant or a store error: the handler answers it; the page is unbranded.
    let tenant = match name {
        Some(n) => s.provider.tenant(&n).await.ok().flatten(),
        None => None,
    };
    match tenant {
        Some(t) => PAGE_TENANT.scope(t, next.run(req)).await,
        None => next.run(req).await,
    }
}

/// The branding of the page being answered, if it belongs to a tenant.
pub fn current() -> Option<Arc<TenantCtx>> {
    PAGE_TENANT.try_with(Arc::clone).ok()
}

/// A short digest of the colours: the `v` of the branding stylesheet's URL, so a change is
/// fetched at once.
fn version(b: &Branding) -> String {
    use std::hash::{Hash, Hasher};
    // Not a security digest: only tells one set of colours from another.
    let mut h = std::hash::DefaultHasher::new();
    (&b.primary_color, &b.background_color, &b.text_color).hash(&mut h);
    format!("{:012x}", h.finish() & 0xffff_ffff_ffff)
}

/// What templates see as `brand`: `name` (display name), `alt` (the logo's text alternative),
/// `logo_url`, `css_url` (the tenant's colours), `stylesheet_url` (its extra stylesheet); each
/// absent when not configured.
pub fn context(t: Option<&TenantCtx>) -> minijinja::Value {
    let Some(t) = t else {
        return context! {};
    };
    let b = &t.tenant.settings.branding;
    context! {
        name => b.display_name,
        // The logo's text alternative: the display name, else the tenant's name.
        alt => b.display_name.clone().unwrap_or_else(|| t.tenant.name.clone()),
        logo_url => b.logo_url,
        css_url => b.has_colors().then(|| t.url(&format!("/branding.css?v={}", version(b)))),
        stylesheet_url => b.stylesheet_url,
    }
}

/// The Content-Security-Policy of a page: only our own scripts and styles, images from us or
/// inline `data:`; a configured logo's and stylesheet's origins are added for that tenant.
pub fn content_security_policy(b: Option<&Branding>) -> String {
    let mut style = String::from("'self'");
    let mut img = String::from("'self' data:");
    if let Some(b) = b {
        if let Some(o) = b.stylesheet_origin() {
            style.push(' ');
            style.push_str(&o);
        }
        if let Some(o) = b.logo_origin() {
            img.push(' ');
            img.push_str(&o);
        }
    }
    format!(
        "default-src 'none'; script-src 'self'; style-src {style}; img-src {img}; \
         connect-src 'self'; base-uri 'none'; frame-ancestors 'none'"
    )
}

/// The defaults of `mandate.css` that branding may replace, per colour scheme (surface behind
/// text, link, focus ring), to decide whether the brand colour is readable on them.
const LIGHT: Palette = Palette {
    surface: Rgb(0xff, 0xff, 0xff),
    link: Rgb(0x0b, 0x57, 0xd0),
};
const DARK: Palette = Palette {
    surface: Rgb(0x1d, 0x20, 0x26),
    link: Rgb(0x8a, 0xb4, 0xf8),
};

struct Palette {
    surface: Rgb,
    link: Rgb,
}

/// The custom properties for the primary colour on `surface`: buttons always take it (with
/// readable text); links and focus rings only when it contrasts enough (4.5:1 for text, 3:1
/// for the ring), else the scheme's own.
fn primary_vars(out: &mut String, primary: Rgb, on: &Palette) {
    let ratio = primary.contrast(on.surface);
    let link = if ratio >= 4.5 { primary } else { on.link };
    let focus = if ratio >= 3.0 { primary } else { on.link };
    out.push_str(&format!(
        "--mandate-primary:{};--mandate-on-primary:{};--mandate-link:{};--mandate-focus:{};",
        primary.hex(),
        primary.readable_text().hex(),
        link.hex(),
        focus.hex()
    ));
}

/// The tenant's colours as a stylesheet. Only colours parsed as `#rgb`/`#rrggbb` and written
/// back as `#rrggbb` reach it, so nothing a tenant writes can add a rule.
pub fn stylesheet(b: &Branding) -> String {
    let primary = b.primary_color.as_deref().and_then(Rgb::parse);
    let custom_surface = b.background_color.is_some() || b.text_color.is_some();
    let mut css = String::from("/* this tenant's colours (mandate tenant set) */\n:root{");
    if custom_surface {
        // The tenant chose its page colours: they hold in both schemes.
        let (text, background) = b.text_and_background();
        let scheme = if background.luminance() > 0.18 {
            "light"
        } else {
            "dark"
        };
        // Error and success texts: the scheme's own when readable on this background, else
        // the text colour (the messages still say what they are).
        let readable = |choices: [Rgb; 2]| {
            choices
                .into_iter()
                .find(|c| c.contrast(background) >= 4.5)
                .unwrap_or(text)
        };
        let error = readable([Rgb(0xb3, 0x26, 0x1e), Rgb(0xf2, 0xb8, 0xb5)]);
        let success = readable([Rgb(0x14, 0x6c, 0x2e), Rgb(0x6d, 0xd5, 0x8c)]);
        css.push_str(&format!(
            "color-scheme:{scheme};--mandate-bg:{bg};--mandate-surface:{bg};--mandate-text:{text};\
             --mandate-muted:{text};--mandate-border:{text};--mandate-error:{error};\
             --mandate-success:{success};--mandate-link:{text};--mandate-focus:{text};\
             --mandate-primary:{text};--mandate-on-primary:{bg};",
            bg = background.hex(),
            text = text.hex(),
            error = error.hex(),
            success = success.hex(),
        ));
        if let Some(p) = primary {
            let on = Palette {
                surface: background,
                link: text,
            };
            primary_vars(&mut css, p, &on);
        }
        css.push_str("}\n");
        return css;
    }
    if let Some(p) = primary {
        primary_vars(&mut css, p, &LIGHT);
    }
    css.push_str("}\n");
    if let Some(p) = primary {
        css.push_str("@media (prefers-color-scheme: dark){:root{");
        primary_vars(&mut css, p, &DARK);
        css.push_str("}}\n");
    }
    css
}

/// `GET {issuer}/branding.css`: the tenant's colours (empty when it sets none).
pub async fn css(Tenant(t): Tenant) -> Response {
    let body = stylesheet(&t.tenant.settings.branding);
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    // Pages link it with a digest of the colours, so a change is a new URL.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=600"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brand(primary: Option<&str>, bg: Option<&str>, text: Option<&str>) -> Branding {
        Branding {
            primary_color: primary.map(str::to_string),
            background_color: bg.map(str::to_string),
            text_color: text.map(str::to_string),
            ..Branding::default()
        }
    }

    /// Nothing but custom properties with `#rrggbb` values (and the scheme) reaches the sheet.
    fn only_colours(css: &str) {
        let body: String = css
            .lines()
            .filter(|l| !l.starts_with("/*"))
            .collect::<Vec<_>>()
            .join("");
        let decls = body
            .replace("@media (prefers-color-scheme: dark){", "")
            .replace(":root{", "")
            .replace('}', "");
        for d in decls.split(';').filter(|d| !d.is_empty()) {
            let (k, v) = d
                .split_once(':')
                .unwrap_or_else(|| panic!("{d:?} in {css}"));
            assert!(
                (k.starts_with("--mandate-")
                    && k[10..].bytes().all(|b| b.is_ascii_lowercase() || b == b'-'))
                    || k == "color-scheme",
                "{k:?}"
            );
            assert!(
                (v.len() == 7 && Rgb::parse(v).is_some() && v == v.to_lowercase())
                    || v == "light"
                    || v == "dark",
                "{v:?} in {css}"
            );
        }
    }

    #[test]
    fn the_stylesheet_holds_only_colours() {
        for b in [
            brand(None, None, None),
            brand(Some("#0b57d0"), None, None),
            brand(Some("#FD0"), None, None),
            brand(Some("#0b57d0"), Some("#101010"), Some("#eeeeee")),
            brand(None, Some("#ffffff"), None),
            // Refused by validation, but even so nothing of it is written.
            brand(
                Some("#fff;}body{background:url(x)"),
                Some("red"),
                Some("</style>"),
            ),
        ] {
            only_colours(&stylesheet(&b));
        }
        let css = stylesheet(&brand(Some("#FD0"), None, None));
        assert!(css.contains("--mandate-primary:#ffdd00;"), "{css}");
        // Yellow buttons get dark text; yellow is too light for links on white, fine on dark.
        assert!(css.contains("--mandate-on-primary:#111111;"), "{css}");
        assert!(css.contains("--mandate-link:#0b57d0;"), "{css}");
        assert!(css.contains("@media (prefers-color-scheme: dark){:root{--mandate-primary:#ffdd00;--mandate-on-primary:#111111;--mandate-link:#ffdd00;"), "{css}");
        let css = stylesheet(&brand(Some("#0b57d0"), None, None));
        assert!(
            css.contains("--mandate-on-primary:#ffffff;--mandate-link:#0b57d0;"),
            "{css}"
        );
        let css = stylesheet(&brand(None, Some("#101010"), Some("#eeeeee")));
        assert!(
            css.contains("color-scheme:dark;--mandate-bg:#101010;"),
            "{css}"
        );
        assert!(!css.contains("@media"), "{css}");
    }

    #[test]
    fn the_csp_names_configured_origins_only() {
        assert_eq!(
            content_security_policy(None),
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; base-uri 'none'; frame-ancestors 'none'"
        );
        let b = Branding {
            logo_url: Some("https://cdn.acme.test/logo.png".into()),
            stylesheet_url: Some("https://style.acme.test/brand.css".into()),
            ..Branding::default()
        };
        let csp = content_security_policy(Some(&b));
        assert!(
            csp.contains("style-src 'self' https://style.acme.test;"),
            "{csp}"
        );
        assert!(
            csp.contains("img-src 'self' data: https://cdn.acme.test;"),
            "{csp}"
        );
        let inline = Branding {
            logo_url: Some("data:image/png;base64,AAAA".into()),
            ..Branding::default()
        };
        assert_eq!(
            content_security_policy(Some(&inline)),
            content_security_policy(None)
        );
    }
}
