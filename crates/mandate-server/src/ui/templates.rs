//! minijinja templates (embedded defaults an operator can override from a directory) and the
//! message catalogue: every user-visible text comes from `locales/{lang}.json`, so a new locale
//! is a translation only.

use std::collections::BTreeMap;
use std::path::PathBuf;

use minijinja::{Environment, Value};

const EMBEDDED: [(&str, &str); 13] = [
    ("base.html", include_str!("../../templates/base.html")),
    ("login.html", include_str!("../../templates/login.html")),
    ("consent.html", include_str!("../../templates/consent.html")),
    ("error.html", include_str!("../../templates/error.html")),
    ("message.html", include_str!("../../templates/message.html")),
    (
        "logout_confirm.html",
        include_str!("../../templates/logout_confirm.html"),
    ),
    (
        "consents.html",
        include_str!("../../templates/consents.html"),
    ),
    ("agents.html", include_str!("../../templates/agents.html")),
    ("ciba.html", include_str!("../../templates/ciba.html")),
    (
        "passkey_signin.html",
        include_str!("../../templates/passkey_signin.html"),
    ),
    (
        "passkey_register.html",
        include_str!("../../templates/passkey_register.html"),
    ),
    (
        "passkey_offer.html",
        include_str!("../../templates/passkey_offer.html"),
    ),
    (
        "passkeys.html",
        include_str!("../../templates/passkeys.html"),
    ),
];

/// The pages of account recovery, the profile and e-mail verification.
const ACCOUNT_PAGES: [(&str, &str); 5] = [
    (
        "forgot_link.html",
        include_str!("../../templates/forgot_link.html"),
    ),
    (
        "password_forgot.html",
        include_str!("../../templates/password_forgot.html"),
    ),
    (
        "password_reset.html",
        include_str!("../../templates/password_reset.html"),
    ),
    (
        "email_verify.html",
        include_str!("../../templates/email_verify.html"),
    ),
    ("profile.html", include_str!("../../templates/profile.html")),
];

const LOCALES: [(&str, &str); 2] = [
    ("en", include_str!("../../locales/en.json")),
    ("de", include_str!("../../locales/de.json")),
];

/// Templates and translations.
pub struct Templates {
    env: Environment<'static>,
    catalog: BTreeMap<String, BTreeMap<String, String>>,
}

impl Templates {
    /// Load the embedded templates; files in `override_dir` with the same names win.
    pub fn new(override_dir: Option<PathBuf>) -> Result<Self, String> {
        let mut env = Environment::new();
        env.set_loader(move |name| {
            if let Some(dir) = &override_dir
                && !name.contains("..")
            {
                match std::fs::read_to_string(dir.join(name)) {
                    Ok(s) => return Ok(Some(s)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(minijinja::Error::new(
                            minijinja::ErrorKind::TemplateNotFound,
                            e.to_string(),
                        ));
                    }
                }
            }
            Ok(EMBEDDED
                .iter()
                .chain(ACCOUNT_PAGES.iter())
                .find(|(n, _)| *n == name)
                .map(|(_, s)| s.to_string()))
        });
        let mut catalog = BTreeMap::new();
        for (lang, json) in LOCALES {
            let msgs: BTreeMap<String, String> =
                serde_json::from_str(json).map_err(|e| format!("locale {lang}: {e}"))?;
            catalog.insert(lang.to_string(), msgs);
        }
        let t = Templates { env, catalog };
        for (name, _) in EMBEDDED.iter().chain(ACCOUNT_PAGES.iter()) {
            t.env
                .get_template(name)
                .map_err(|e| format!("template {name}: {e}"))?;
        }
        Ok(t)
    }

    /// Pick the first supported locale from `ui_locales` (space-separated) or `Accept-Language`.
    pub fn locale(&self, ui_locales: Option<&str>, accept_language: Option<&str>) -> String {
        let wanted = ui_locales.into_iter().flat_map(|s| s.split(' ')).chain(
            accept_language
                .into_iter()
                .flat_map(|s| s.split(','))
                .map(|s| s.split(';').next().unwrap_or("")),
        );
        for w in wanted {
            let base = w
                .trim()
                .split(['-', '_'])
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            if self.catalog.contains_key(&base) {
                return base;
            }
        }
        "en".into()
    }

    /// A message in a locale, falling back to English.
    pub fn message(&self, lang: &str, key: &str) -> String {
        self.catalog
            .get(lang)
            .and_then(|m| m.get(key))
            .or_else(|| self.catalog.get("en").and_then(|m| m.get(key)))
            .cloned()
            .unwrap_or_else(|| key.to_string())
    }

    /// Every message of a locale, English for the keys it lacks.
    pub fn messages(&self, lang: &str) -> BTreeMap<String, String> {
        let mut msgs = self.catalog.get("en").cloned().unwrap_or_default();
        if let Some(m) = self.catalog.get(lang) {
            msgs.extend(m.clone());
        }
        msgs
    }

    /// The locales there are messages for.
    pub fn locales(&self) -> impl Iterator<Item = &str> {
        self.catalog.keys().map(String::as_str)
    }

    /// Render a page with `t` bound to the locale's messages (English for missing keys).
    pub fn render(&self, name: &str, lang: &str, ctx: Value) -> Result<String, minijinja::Error> {
        let msgs = self.messages(lang);
        let full = minijinja::context! { t => msgs, ..ctx };
        self.env.get_template(name)?.render(full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locales_and_fallback() {
        let t = Templates::new(None).unwrap();
        assert_eq!(t.locale(Some("se de"), None), "de");
        assert_eq!(t.locale(None, Some("fr-CH, de;q=0.8")), "de");
        assert_eq!(t.locale(Some("se"), None), "en");
        let html = t
            .render(
                "message.html",
                "de",
                minijinja::context! { title => "X", message => "<b>" },
            )
            .unwrap();
        assert!(html.contains("lang=\"de\""));
        assert!(html.contains("&lt;b&gt;"), "autoescape");
    }
}
