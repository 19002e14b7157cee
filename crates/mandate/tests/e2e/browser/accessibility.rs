//! Accessibility checks that can fail, computed by Chromium on the pages as rendered: the page
//! says its language; every field and button has an accessible name; the text and the primary
//! button's label contrast with what is behind them (WCAG 2.2 relative luminance: 4.5:1, 3:1
//! for large text); the primary button is reached with Tab and then shows a focus ring (an
//! outline or a shadow, 3:1 against the page). In light and dark colour schemes, on the sign-in,
//! second-factor (set-up, recovery codes, code), consent and account pages (passkeys too).

use serde_json::{Value, json};

use crate::common::*;

/// Runs in the page with the primary button's CSS selector; a list of problems (empty: none).
const AUDIT: &str = r#"(primary) => {
  const problems = [];
  const lang = (document.documentElement.getAttribute('lang') || '').trim();
  if (!lang) problems.push('the page has no lang attribute');
  const shown = (e) => e.checkVisibility({ visibilityProperty: true, opacityProperty: true });
  const text = (e) => (e ? e.textContent : '').replace(/\s+/g, ' ').trim();
  const describe = (e) => e.outerHTML.replace(/\s+/g, ' ').slice(0, 140);

  // Accessible names, the ways HTML gives them (no placeholder: it is no label).
  const nameOf = (e) => {
    const by = e.getAttribute('aria-labelledby');
    if (by) {
      const t = by.split(/\s+/).map((id) => text(document.getElementById(id))).join(' ').trim();
      if (t) return t;
    }
    const aria = (e.getAttribute('aria-label') || '').trim();
    if (aria) return aria;
    if (e.labels) {
      const t = [...e.labels].map(text).join(' ').trim();
      if (t) return t;
    }
    if (e.matches('button, summary')) return text(e);
    if (e.matches('input[type=submit], input[type=button]')) return (e.value || '').trim();
    return (e.getAttribute('title') || '').trim();
  };
  const controls = [...document.querySelectorAll(
    'input:not([type=hidden]), select, textarea, button, summary')].filter(shown);
  for (const c of controls) {
    if (!nameOf(c)) problems.push(`no accessible name: ${describe(c)}`);
  }

  // Colours: sRGB from the computed style, composited over what is behind.
  const parse = (c) => {
    const m = /^rgba?\(([^)]*)\)$/.exec(c.trim());
    if (!m) return null;
    const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const over = (top, under) => ({
    r: top.r * top.a + under.r * (1 - top.a),
    g: top.g * top.a + under.g * (1 - top.a),
    b: top.b * top.a + under.b * (1 - top.a),
    a: 1,
  });
  const background = (e) => {
    const layers = [];
    for (let n = e; n; n = n.parentElement) {
      const c = parse(getComputedStyle(n).backgroundColor);
      if (c === null) return null;
      if (c.a > 0) layers.push(c);
      if (c.a >= 1) break;
    }
    const dark = matchMedia('(prefers-color-scheme: dark)').matches;
    let bg = dark ? { r: 0, g: 0, b: 0, a: 1 } : { r: 255, g: 255, b: 255, a: 1 };
    for (const l of layers.reverse()) bg = over(l, bg);
    return bg;
  };
  const luminance = (c) => {
    const lin = (v) => {
      const s = v / 255;
      return s <= 0.04045 ? s / 12.92 : Math.pow((s + 0.055) / 1.055, 2.4);
    };
    return 0.2126 * lin(c.r) + 0.7152 * lin(c.g) + 0.0722 * lin(c.b);
  };
  const ratio = (a, b) => {
    const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  };
  const contrast = (e) => {
    const s = getComputedStyle(e);
    const fg = parse(s.color);
    const bg = background(e);
    if (!fg || !bg) return { error: `colours not in rgb(): ${s.color} on ${s.backgroundColor}` };
    return { ratio: ratio(over(fg, bg), bg), fg: s.color, size: parseFloat(s.fontSize), weight: Number(s.fontWeight) };
  };

  // Every element that holds text of its own.
  const texts = [...document.body.querySelectorAll('*')].filter((e) =>
    [...e.childNodes].some((n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim()) && shown(e));
  if (!texts.length) problems.push('no text on the page');
  for (const e of texts) {
    const c = contrast(e);
    if (c.error) { problems.push(`${c.error}: ${describe(e)}`); continue; }
    const large = c.size >= 24 || (c.size >= 18.66 && c.weight >= 700);
    const need = large ? 3 : 4.5;
    if (c.ratio < need) problems.push(`contrast ${c.ratio.toFixed(2)}:1 < ${need}:1 for ${c.fg}: ${describe(e)}`);
  }

  // The primary button.
  const button = document.querySelector(primary);
  if (!button) {
    problems.push(`no primary button ${primary}`);
  } else {
    const c = contrast(button);
    if (c.error) problems.push(`${c.error}: ${describe(button)}`);
    else if (c.ratio < 4.5) problems.push(`primary button text contrast ${c.ratio.toFixed(2)}:1 < 4.5:1`);
  }
  return problems;
}"#;

/// Runs in the page once the primary button has the keyboard's focus: what is wrong with its
/// focus ring (empty: nothing).
const FOCUS_RING: &str = r#"() => {
  const e = document.activeElement;
  const s = getComputedStyle(e);
  const parse = (c) => {
    const m = /^rgba?\(([^)]*)\)$/.exec(c.trim());
    if (!m) return null;
    const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2] };
  };
  const luminance = (c) => {
    const lin = (v) => { const x = v / 255; return x <= 0.04045 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); };
    return 0.2126 * lin(c.r) + 0.7152 * lin(c.g) + 0.0722 * lin(c.b);
  };
  const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0;
  const shadow = s.boxShadow && s.boxShadow !== 'none';
  if (!outline && !shadow) return [`no focus ring on ${e.outerHTML.slice(0, 120)}`];
  if (!outline) return [];
  // The ring is drawn outside the button, on what holds it: find the first opaque background.
  let bg = null;
  for (let n = e.parentElement; n && !bg; n = n.parentElement) {
    const c = getComputedStyle(n).backgroundColor;
    const m = /rgba\([^)]*,\s*0\)$/.test(c);
    if (!m) bg = parse(c);
  }
  const ring = parse(s.outlineColor);
  if (!ring || !bg) return [`focus ring colours not in rgb(): ${s.outlineColor}`];
  const [hi, lo] = [luminance(ring), luminance(bg)].sort((x, y) => y - x);
  const r = (hi + 0.05) / (lo + 0.05);
  return r >= 3 ? [] : [`focus ring contrast ${r.toFixed(2)}:1 < 3:1 (${s.outlineColor})`];
}"#;

/// Check the page the browser shows, in light and dark colour schemes; `primary` selects its
/// primary button. Screenshots `<name>.png` and `<name>-dark.png`; panics with every problem.
pub(super) async fn audit(c: &Chromium, name: &str, primary: &str) {
    let mut problems = Vec::new();
    for scheme in ["light", "dark"] {
        c.cdp(
            "Emulation.setEmulatedMedia",
            json!({ "features": [{ "name": "prefers-color-scheme", "value": scheme }] }),
        )
        .await;
        let found = c.evaluate_with(AUDIT, json!(primary)).await;
        let mut found: Vec<String> = serde_json::from_value(found).unwrap();
        // From the top of the page, by keyboard only.
        c.evaluate("document.activeElement && document.activeElement.blur()")
            .await;
        c.evaluate("window.scrollTo(0, 0)").await;
        c.tab_to(primary).await;
        let ring: Vec<String> =
            serde_json::from_value(c.evaluate_with(FOCUS_RING, Value::Null).await).unwrap();
        found.extend(ring);
        let shot = if scheme == "light" {
            name.to_string()
        } else {
            format!("{name}-dark")
        };
        c.screenshot(&shot).await;
        problems.extend(found.into_iter().map(|p| format!("{name} ({scheme}): {p}")));
    }
    c.cdp("Emulation.setEmulatedMedia", json!({ "features": [] }))
        .await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn code_now(key: &str, offset_steps: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    mandate_core::login::totp::code_for_key(key, ((now / 30 + offset_steps) * 30) as u64).unwrap()
}

#[tokio::test]
async fn the_pages_pass_accessibility_checks() {
    let (s, c) = super::start(Backend::Sqlite, "the_pages_pass_accessibility_checks").await;
    let issuer = s.issuer("default");
    s.create_user("default", "alice");
    let web = s.create_web_client("default", &[]);
    s.cli(
        &["tenant", "set", "default", "--second-factor", "required"],
        None,
    );
    c.capture_redirects(REDIRECT).await;
    let (_, challenge) = pkce();
    let url = auth_url(&issuer, &web.0, &challenge, "openid profile", &[]);

    c.goto(&url).await;
    c.wait_for_selector("input[name=username]").await;
    audit(&c, "sign-in", "button.button--primary").await;
    c.fill("input[name=username]", "alice").await;
    c.fill("input[name=password]", PASSWORD).await;
    c.keyboard("Enter").await;
    c.wait_for_selector("#totp-secret").await;
    audit(&c, "totp-enrol", "button.button--primary").await;
    let key = c.text("#totp-secret").await;
    c.fill("#totp-code", &code_now(&key, 0)).await;
    c.keyboard("Enter").await;
    c.wait_for_selector("ul.recovery-codes").await;
    audit(&c, "recovery-codes", "button[type=submit]").await;
    c.keyboard("Enter").await;
    // (No passkey offer after a second factor: the account page's passkeys are checked below.)
    c.wait_for_selector("button[value=approve]").await;
    audit(&c, "consent", "button[value=approve]").await;
    c.keyboard("Enter").await;
    c.next_redirect().await;
    c.wait_for_url(REDIRECT).await;

    for (page, primary) in [
        ("account", "form button[type=submit]"),
        ("account/security", "form button[type=submit]"),
        ("account/profile", "form button[type=submit]"),
        ("account/passkeys", "[data-passkey-register] button"),
    ] {
        c.goto(&format!("{issuer}/{page}")).await;
        c.wait_for_selector(primary).await;
        audit(&c, &page.replace('/', "-"), primary).await;
    }

    // The code asked at the next sign-in.
    c.cdp("Network.clearBrowserCookies", Value::Null).await;
    c.goto(&url).await;
    c.fill("input[name=username]", "alice").await;
    c.fill("input[name=password]", PASSWORD).await;
    c.keyboard("Enter").await;
    c.wait_for_selector("#totp-code").await;
    audit(&c, "second-factor", "#totp button.button--primary").await;
}
