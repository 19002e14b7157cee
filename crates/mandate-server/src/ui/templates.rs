//! minijinja templates (embedded defaults an operator can override from a directory) and the
//! message catalogue: every user-visible text comes from `locales/{lang}.json`, so a new locale
//! is a translation only.

use std::collections::BTreeMap;
use std::path::PathBuf;

use minijinja::{Environment, Value};

const EMBEDDED: [(&str, &str); 21] = [
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
        "second_factor.html",
        include_str!("../../templates/second_factor.html"),
    ),
    (
        "second_factor_done.html",
        include_str!("../../templates/second_factor_done.html"),
    ),
    (
        "totp_enrol.html",
        include_str!("../../templates/totp_enrol.html"),
    ),
    (
        "recovery_codes.html",
        include_str!("../../templates/recovery_codes.html"),
    ),
    (
        "continue_form.html",
        include_str!("../../templates/continue_form.html"),
    ),
    (
        "security.html",
        include_str!("../../templates/security.html"),
    ),
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
    ("account.html", include_str!("../../templates/account.html")),
    (
        "sessions.html",
        include_str!("../../templates/sessions.html"),
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

/// The message catalogues; English is the reference every other one matches key for key.
const LOCALES: [(&str, &str); 5] = [
    ("en", include_str!("../../locales/en.json")),
    ("de", include_str!("../../locales/de.json")),
    ("fr", include_str!("../../locales/fr.json")),
    ("es", include_str!("../../locales/es.json")),
    ("ja", include_str!("../../locales/ja.json")),
];

/// Templates and translations.
pub struct Templates {
    env: Environment<'static>,
    catalog: BTreeMap<String, BTreeMap<String, String>>,
    /// Each locale's messages (English for the keys it lacks) as one template value, made once:
    /// a page binds it as `t` without copying the catalogue.
    bound: BTreeMap<String, Value>,
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
        let mut t = Templates {
            env,
            catalog,
            bound: BTreeMap::new(),
        };
        t.bound = t
            .catalog
            .keys()
            .map(|lang| (lang.clone(), Value::from_serialize(t.messages(lang))))
            .collect();
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

    /// A message in a locale (falling back to English), or `None` when no catalogue has `key`.
    pub fn message_opt(&self, lang: &str, key: &str) -> Option<String> {
        self.catalog
            .get(lang)
            .and_then(|m| m.get(key))
            .or_else(|| self.catalog.get("en").and_then(|m| m.get(key)))
            .cloned()
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
        let msgs = self
            .bound
            .get(lang)
            .or_else(|| self.bound.get("en"))
            .cloned()
            .unwrap_or_default();
        let full = minijinja::context! { t => msgs, ..ctx };
        self.env.get_template(name)?.render(full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `{name}` placeholders of a message, sorted.
    fn placeholders(s: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = s;
        while let Some(start) = rest.find('{') {
            let Some(len) = rest[start..].find('}') else {
                break;
            };
            out.push(rest[start..start + len + 1].to_string());
            rest = &rest[start + len + 1..];
        }
        out.sort();
        out
    }

    #[test]
    fn every_locale_has_exactly_the_english_keys_and_placeholders() {
        let t = Templates::new(None).unwrap();
        let en = &t.catalog["en"];
        assert!(t.catalog.len() >= 5, "en, de, fr, es, ja");
        for (lang, msgs) in &t.catalog {
            let missing: Vec<_> = en.keys().filter(|k| !msgs.contains_key(*k)).collect();
            let extra: Vec<_> = msgs.keys().filter(|k| !en.contains_key(*k)).collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "{lang}: missing {missing:?}, extra {extra:?}"
            );
            assert_eq!(msgs["lang"], *lang);
            for (k, v) in msgs {
                assert_eq!(placeholders(v), placeholders(&en[k]), "{lang}.{k}: {v}");
                assert!(!v.trim().is_empty(), "{lang}.{k} is empty");
            }
        }
    }

    #[test]
    fn the_locale_is_chosen_for_every_catalogue() {
        let t = Templates::new(None).unwrap();
        assert_eq!(t.locale(Some("fr-CA"), None), "fr");
        assert_eq!(t.locale(None, Some("es-MX,es;q=0.9,en;q=0.5")), "es");
        assert_eq!(t.locale(Some("ja"), Some("de")), "ja");
        assert_eq!(t.locale(None, Some("ja-JP")), "ja");
    }

    /// A context with every variable a built-in template reads.
    fn full_context() -> Value {
        let agent = minijinja::context! {
            id => "ag1", name => "Planner", provider => "Acme AI", model => "planner-2",
            version => "7", owner => "alice", status => "suspended",
        };
        minijinja::context! {
            assets => "https://id.test/assets/v1",
            brand => minijinja::context! {
                name => "Acme", alt => "Acme", logo_url => "https://cdn.acme.test/l.png",
                css_url => "https://id.test/t/acme/branding.css?v=1",
                stylesheet_url => "https://cdn.acme.test/b.css",
            },
            action => "https://id.test/t/acme/login",
            client_name => "Web App",
            username => "alice",
            methods => vec!["password"],
            interaction => "sealed",
            return_to => "/account/agents",
            csrf => "token",
            error => "Invalid username or password.",
            error_key => "invalid_credentials",
            switch_account_url => "https://id.test/t/acme/authorize?prompt=login",
            agent => agent.clone(),
            agent_id => "ag1",
            scopes => vec!["See your calendar"],
            details => vec!["Read (“calendar”)"],
            resources => vec!["https://api.test/"],
            minutes => "60",
            delegates => true,
            asks => vec!["See your calendar"],
            binding_message => "Book lunch, code 4711",
            expires => "2030-01-01 00:00:00 UTC",
            message => "A message",
            title => "A title",
            description => "unknown client",
            redirect => "post_logout_redirect_uri=x",
            consents => vec![minijinja::context! {
                client_id => "c1", client_name => "Web App", scope => "openid", scopes => vec!["Confirm your identity"],
            }],
            agents_url => "https://id.test/t/acme/account/agents",
            consents_url => "https://id.test/t/acme/account/consents",
            revoke_action => "https://id.test/t/acme/account/agents/revoke",
            revoke_all_action => "https://id.test/t/acme/account/agents/revoke-all",
            mandates => vec![minijinja::context! {
                id => "m1", agent_id => "ag1", agent => agent, scopes => vec!["See your calendar"],
                details => Vec::<String>::new(), resources => vec!["https://api.test/"],
                until => "2030-01-01 00:00:00 UTC", last_acted => "2029-12-31 00:00:00 UTC",
                sub_delegation => true, origin => "consent",
            }],
            pending => vec![minijinja::context! {
                agent => "Planner", binding_message => "Book lunch", asks => vec!["See your calendar"],
                url => "https://id.test/t/acme/account/ciba/r1",
            }],
        }
    }

    /// Every visible input of a page has a `<label for>` naming its id.
    pub(crate) fn unlabelled_inputs(html: &str) -> Vec<String> {
        let mut missing = Vec::new();
        for (i, _) in html.match_indices("<input") {
            let tag = &html[i..i + html[i..].find('>').unwrap_or(0)];
            if tag.contains("type=\"hidden\"") {
                continue;
            }
            let id = tag
                .split("id=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or_default();
            if id.is_empty() || !html.contains(&format!("<label for=\"{id}\"")) {
                missing.push(tag.to_string());
            }
        }
        missing
    }

    #[test]
    fn every_template_renders_in_every_locale() {
        let t = Templates::new(None).unwrap();
        for lang in t.catalog.keys() {
            for (name, src) in EMBEDDED {
                let html = t
                    .render(name, lang, full_context())
                    .unwrap_or_else(|e| panic!("{name} in {lang}: {e}"));
                // Parts other pages include (a form, the passkey section): labels only.
                if name != "base.html" && !src.contains("{% extends") {
                    assert!(
                        unlabelled_inputs(&html).is_empty(),
                        "{name}: {:?}",
                        unlabelled_inputs(&html)
                    );
                    continue;
                }
                assert!(
                    html.contains(&format!("<html lang=\"{lang}\">")),
                    "{name} {lang}"
                );
                // The layout has no heading of its own; every page has exactly one h1.
                let h1 = if name == "base.html" { 0 } else { 1 };
                assert_eq!(html.matches("<h1").count(), h1, "{name} in {lang}");
                assert!(
                    unlabelled_inputs(&html).is_empty(),
                    "{name}: {:?}",
                    unlabelled_inputs(&html)
                );
                // Every placeholder was filled in.
                for p in [
                    "{client}",
                    "{user}",
                    "{agent}",
                    "{time}",
                    "{minutes}",
                    "{scope}",
                    "{tenant}",
                ] {
                    assert!(!html.contains(p), "{name} in {lang} shows {p}");
                }
                assert!(
                    html.contains("alt=\"Acme\""),
                    "{name}: the logo has alt text"
                );
            }
        }
    }

    #[test]
    fn error_codes_have_plain_words_in_every_locale() {
        let t = Templates::new(None).unwrap();
        for code in [
            "invalid_request",
            "invalid_client",
            "access_denied",
            "server_error",
            "invalid_scope",
        ] {
            for lang in t.catalog.keys() {
                assert!(
                    t.catalog[lang].contains_key(&format!("error_{code}")),
                    "{lang} {code}"
                );
            }
        }
        assert_eq!(t.message_opt("ja", "error_no_such_code"), None);
        assert_eq!(
            t.message_opt("ja", "error_access_denied").as_deref(),
            Some("アクセスが拒否されました。")
        );
    }

    #[test]
    fn locales_and_fallback() {
        let t = Templates::new(None).unwrap();
        assert_eq!(t.locale(Some("se de"), None), "de");
        assert_eq!(t.locale(None, Some("fr-CH, de;q=0.8")), "fr");
        assert_eq!(t.locale(None, Some("sv-SE, de;q=0.8")), "de");
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
