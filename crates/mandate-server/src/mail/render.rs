//! Mails from templates: `mail/message.txt` and `mail/message.html` lay out any mail, in the
//! words of the message catalogue (`mail_{template}_subject`, `_heading`, `_body`, `_action`,
//! with `{tenant}`, `{minutes}`, `{name}` … filled in). An operator overrides the layout in
//! `--templates-dir` (`mail/message.html`), or one mail (`mail/{template}.html`, `.txt`), and
//! the words in the locale files.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use mandate_core::mail::{Content, Message, Notice, one_line};
use minijinja::Environment;

use crate::ui::templates::Templates;
use crate::ui::words::when;

const EMBEDDED: [(&str, &str); 2] = [
    (
        "mail/message.txt",
        include_str!("../../templates/mail/message.txt"),
    ),
    (
        "mail/message.html",
        include_str!("../../templates/mail/message.html"),
    ),
];

/// A rendered mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// One line, without control characters.
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The mail templates with the message catalogue.
pub struct MailTemplates {
    env: Environment<'static>,
    texts: Arc<Templates>,
}

impl MailTemplates {
    /// The built-in layouts; files under `override_dir/mail/` win.
    pub fn new(override_dir: Option<PathBuf>, texts: Arc<Templates>) -> Result<Self, String> {
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
                .find(|(n, _)| *n == name)
                .map(|(_, s)| s.to_string()))
        });
        let t = MailTemplates { env, texts };
        for (name, _) in EMBEDDED {
            t.env
                .get_template(name)
                .map_err(|e| format!("template {name}: {e}"))?;
        }
        Ok(t)
    }

    /// The template of one mail and format: its own when the operator gave one, else the
    /// shared layout.
    fn template(
        &self,
        name: &str,
        ext: &str,
    ) -> Result<minijinja::Template<'_, '_>, minijinja::Error> {
        match self.env.get_template(&format!("mail/{name}.{ext}")) {
            Ok(t) => Ok(t),
            Err(e) if e.kind() == minijinja::ErrorKind::TemplateNotFound => {
                self.env.get_template(&format!("mail/message.{ext}"))
            }
            Err(e) => Err(e),
        }
    }

    /// Render a mail in its locale (the default when it names none or an unknown one).
    pub fn render(&self, m: &Message) -> Result<Rendered, minijinja::Error> {
        let lang = self.texts.locale(m.lang.as_deref(), None);
        let msgs = self.texts.messages(&lang);
        let name = m.content.template();
        let mut vars: Vec<(&str, String)> = vec![("tenant", one_line(&m.tenant_name, 100))];
        let (mut link, mut code) = (None, None);
        match &m.content {
            Content::VerifyEmail { link: l, minutes }
            | Content::PasswordReset { link: l, minutes } => {
                link = Some(l.clone());
                vars.push(("minutes", minutes.to_string()));
                vars.push(("hours", (minutes / 60).to_string()));
            }
            Content::SignInCode { code: c, minutes } => {
                code = Some(c.clone());
                vars.push(("minutes", minutes.to_string()));
            }
            Content::Notice(n) => match n {
                Notice::NewSignIn { ip, user_agent } => {
                    vars.push(("ip", one_line(ip.as_deref().unwrap_or("?"), 64)));
                    vars.push((
                        "browser",
                        one_line(user_agent.as_deref().unwrap_or("?"), 160),
                    ));
                }
                Notice::PasskeyAdded { name } | Notice::PasskeyRemoved { name } => {
                    vars.push(("name", one_line(name, 64)));
                }
                Notice::SecondFactorAdded { method } | Notice::SecondFactorRemoved { method } => {
                    vars.push(("method", one_line(method, 64)));
                }
                Notice::LockedOut { until } => vars.push(("until", when(*until))),
                Notice::RecoveryCodesGenerated
                | Notice::PasswordChanged
                | Notice::PasswordRemoved => {}
            },
        }
        vars.push(("when", when(mandate_core::time::now())));
        let fill = |key: &str| -> String {
            let mut s = msgs.get(key).cloned().unwrap_or_default();
            for (k, v) in &vars {
                s = s.replace(&format!("{{{k}}}"), v);
            }
            s
        };
        let subject = one_line(&fill(&format!("mail_{name}_subject")), 200);
        let heading = fill(&format!("mail_{name}_heading"));
        let paragraphs: Vec<String> = fill(&format!("mail_{name}_body"))
            .split("\n\n")
            .map(str::to_string)
            .filter(|p| !p.trim().is_empty())
            .collect();
        // Links go into `href` unescaped (HTML escaping would write every `/` as an entity):
        // only one made of URL characters that cannot end the attribute.
        let link = link.filter(|l| {
            l.chars()
                .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '<' | '>' | '`'))
        });
        let is_notice = matches!(m.content, Content::Notice(_));
        let ctx = minijinja::context! {
            lang,
            tenant => one_line(&m.tenant_name, 100),
            subject,
            heading => if heading.is_empty() { subject.clone() } else { heading },
            paragraphs,
            link,
            code,
            action => fill(&format!("mail_{name}_action")),
            notice_hint => is_notice.then(|| fill("mail_notice_hint")),
            footer => fill(if is_notice { "mail_footer_notice" } else { "mail_footer_ignore" }),
            vars => vars.iter().cloned().collect::<BTreeMap<_, _>>(),
            t => msgs,
        };
        let text = self.template(name, "txt")?.render(&ctx)?;
        let html = self.template(name, "html")?.render(&ctx)?;
        Ok(Rendered {
            subject,
            text,
            html,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_contents() -> Vec<Content> {
        let link = "https://id.example/t/acme/account/password/reset?token=abc".to_string();
        vec![
            Content::VerifyEmail {
                link: link.clone(),
                minutes: 1440,
            },
            Content::PasswordReset { link, minutes: 30 },
            Content::SignInCode {
                code: "012345".into(),
                minutes: 10,
            },
            Content::Notice(Notice::NewSignIn {
                ip: Some("192.0.2.1".into()),
                user_agent: Some("Firefox <script>".into()),
            }),
            Content::Notice(Notice::PasskeyAdded {
                name: "<b>Laptop</b>".into(),
            }),
            Content::Notice(Notice::PasskeyRemoved {
                name: "Phone".into(),
            }),
            Content::Notice(Notice::SecondFactorAdded {
                method: "totp".into(),
            }),
            Content::Notice(Notice::SecondFactorRemoved {
                method: "totp".into(),
            }),
            Content::Notice(Notice::RecoveryCodesGenerated),
            Content::Notice(Notice::PasswordChanged),
            Content::Notice(Notice::PasswordRemoved),
            Content::Notice(Notice::LockedOut {
                until: 1_700_000_000,
            }),
        ]
    }

    fn message(content: Content, lang: &str) -> Message {
        Message {
            tenant_id: "t".into(),
            tenant_name: "acme\r\nBcc: eve@evil.test".into(),
            user_id: Some("u1".into()),
            to: "alice@example.com".into(),
            lang: Some(lang.into()),
            content,
        }
    }

    #[test]
    fn every_mail_renders_in_every_locale() {
        let texts = Arc::new(Templates::new(None).unwrap());
        let mt = MailTemplates::new(None, texts.clone()).unwrap();
        let en = texts.messages("en");
        for lang in texts.locales().map(str::to_string).collect::<Vec<_>>() {
            let msgs = texts.messages(&lang);
            for c in all_contents() {
                let name = c.template();
                for part in ["subject", "body"] {
                    let key = format!("mail_{name}_{part}");
                    assert!(en.contains_key(&key), "en lacks {key}");
                    assert!(texts_has(&texts, &lang, &key), "{lang} lacks {key}");
                }
                let r = mt.render(&message(c.clone(), &lang)).unwrap();
                assert!(!r.subject.is_empty());
                assert!(
                    !r.subject.contains(['\r', '\n']),
                    "{lang} {name}: {:?}",
                    r.subject
                );
                assert!(
                    !r.subject.contains('{'),
                    "{lang} {name}: unfilled {:?}",
                    r.subject
                );
                assert!(!r.text.contains("{tenant}") && !r.html.contains("{tenant}"));
                assert!(r.html.contains(&format!("lang=\"{lang}\"")));
                match &c {
                    Content::PasswordReset { link, .. } | Content::VerifyEmail { link, .. } => {
                        assert!(r.text.contains(link.as_str()));
                        assert!(r.html.contains(&format!("href=\"{link}\"")));
                        assert!(msgs.contains_key(&format!("mail_{name}_action")));
                    }
                    Content::SignInCode { code, .. } => {
                        assert!(r.text.contains(code.as_str()) && r.html.contains(code.as_str()));
                    }
                    Content::Notice(_) => {}
                }
                assert!(!r.html.contains("<b>Laptop"), "escaped");
                assert!(!r.html.contains("<script>"), "escaped");
            }
        }
    }

    fn texts_has(texts: &Templates, lang: &str, key: &str) -> bool {
        // The locale's own file, not the English fallback.
        let own = match lang {
            "en" => include_str!("../../locales/en.json"),
            "de" => include_str!("../../locales/de.json"),
            _ => return texts.messages(lang).contains_key(key),
        };
        serde_json::from_str::<BTreeMap<String, String>>(own)
            .unwrap()
            .contains_key(key)
    }

    #[test]
    fn operators_override_one_mail() {
        let dir = std::env::temp_dir().join(format!("mandate-mail-tpl-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("mail")).unwrap();
        std::fs::write(
            dir.join("mail/password_reset.txt"),
            "Reset at {{ tenant }}: {{ link }}",
        )
        .unwrap();
        let texts = Arc::new(Templates::new(None).unwrap());
        let mt = MailTemplates::new(Some(dir.clone()), texts).unwrap();
        let r = mt
            .render(&message(
                Content::PasswordReset {
                    link: "https://x/y".into(),
                    minutes: 30,
                },
                "en",
            ))
            .unwrap();
        assert!(
            r.text
                .starts_with("Reset at acme  Bcc: eve@evil.test: https://x/y")
        );
        assert!(
            r.html.contains("https://x/y"),
            "the HTML layout is the built-in one"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
