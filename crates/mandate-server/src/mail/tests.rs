//! The transports: the file outbox, SMTP against a tiny listener, and what reaches the wire.

use std::sync::Mutex;

use async_trait::async_trait;
use mandate_core::mail::{Content, Notice};
use mandate_core::store::StoreResult;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::*;
use crate::ui::templates::Templates;

#[derive(Default)]
struct Trail(Mutex<Vec<AuditEvent>>);

#[async_trait]
impl AuditSink for Trail {
    async fn record(&self, e: &AuditEvent) -> StoreResult<()> {
        self.0.lock().unwrap().push(e.clone());
        Ok(())
    }
}

fn templates() -> MailTemplates {
    MailTemplates::new(None, Arc::new(Templates::new(None).unwrap())).unwrap()
}

fn reset_mail(to: &str) -> Message {
    Message {
        tenant_id: "t1".into(),
        tenant_name: "acme".into(),
        user_id: Some("u1".into()),
        to: to.into(),
        lang: Some("de".into()),
        content: Content::PasswordReset {
            link: "https://id.example/t/acme/account/password/reset?token=abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG".into(),
            minutes: 30,
        },
    }
}

async fn wait_for<T>(mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..200 {
        if let Some(v) = f() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting");
}

#[test]
fn smtp_urls() {
    let s = SmtpSettings::parse(
        "smtp://mailer%40acme.example@mail.example:2525",
        Some("p@ss".into()),
    )
    .unwrap();
    assert_eq!(s.host, "mail.example");
    assert_eq!(s.port, 2525);
    assert_eq!(s.tls, SmtpTls::StartTls);
    assert_eq!(s.username.as_deref(), Some("mailer@acme.example"));
    assert_eq!(s.password.as_deref(), Some("p@ss"));
    assert!(
        !format!("{s:?}").contains("p@ss"),
        "the password stays out of logs"
    );
    let s = SmtpSettings::parse("smtps://mail.example", None).unwrap();
    assert_eq!((s.port, s.tls), (465, SmtpTls::Implicit));
    let s = SmtpSettings::parse("smtp://localhost?tls=none", None).unwrap();
    assert_eq!((s.port, s.tls), (25, SmtpTls::None));
    assert_eq!(
        SmtpSettings::parse("smtp://u:pw@h", None)
            .unwrap()
            .password
            .as_deref(),
        Some("pw")
    );
    for bad in [
        "http://mail.example",
        "smtp://",
        "smtps://h?tls=none",
        "smtp://h?x=1",
        "not a url",
    ] {
        assert!(SmtpSettings::parse(bad, None).is_err(), "{bad}");
    }
    assert!(
        SmtpSettings::parse("smtp://h", Some("pw".into())).is_err(),
        "password without user"
    );
}

#[test]
fn recipients_cannot_add_headers() {
    let from: Mailbox = "Mandate <no-reply@id.example>".parse().unwrap();
    let r = templates()
        .render(&reset_mail("alice@example.com"))
        .unwrap();
    for to in [
        "alice@example.com\r\nBcc: eve@evil.test",
        "alice@example.com, eve@evil.test",
        "Eve <eve@evil.test>",
    ] {
        assert!(build(&from, to, &r).is_err(), "{to:?}");
    }
    let mut evil = r.clone();
    evil.subject = "Hi\r\nBcc: eve@evil.test".into();
    let bytes = build(&from, "alice@example.com", &evil)
        .unwrap()
        .formatted();
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        !text
            .lines()
            .any(|l| l.to_ascii_lowercase().starts_with("bcc:")),
        "{text}"
    );
}

#[tokio::test]
async fn the_outbox_gets_one_eml_per_mail() {
    let dir = std::env::temp_dir().join(format!(
        "mandate-outbox-{}",
        mandate_core::crypto::secret::random_token(6)
    ));
    let trail = Arc::new(Trail::default());
    let q = start(
        MailConfig {
            transport: MailTransport::Outbox(dir.clone()),
            from: "Mandate <no-reply@id.example>".into(),
            timeout: Duration::from_secs(5),
        },
        templates(),
        trail.clone(),
    )
    .unwrap();
    assert_eq!(
        q.send(reset_mail("alice@example.com\nBcc: x@y")),
        Err(MailError::InvalidAddress)
    );
    q.send(reset_mail("alice@example.com")).unwrap();
    let file = wait_for(|| {
        std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "eml"))
    })
    .await;
    let eml = std::fs::read_to_string(&file).unwrap();
    assert!(eml.contains("To: alice@example.com"), "{eml}");
    assert!(eml.contains("From: Mandate <no-reply@id.example>"));
    assert!(eml.contains("Subject:"));
    assert!(eml.contains("multipart/alternative"));
    assert!(eml.contains("Content-Type: text/plain; charset=utf-8"));
    assert!(eml.contains("Content-Type: text/html; charset=utf-8"));
    assert!(eml.contains("Date:"));
    let ev = wait_for(|| trail.0.lock().unwrap().first().cloned()).await;
    assert_eq!(ev.kind, EventKind::EmailSent);
    assert_eq!(ev.outcome, Outcome::Success);
    assert_eq!(ev.personal.email.as_deref(), Some("alice@example.com"));
    assert_eq!(ev.detail["template"], "password_reset");
    std::fs::remove_dir_all(dir).unwrap();
}

/// A minimal SMTP server: accepts one mail and returns what the client said.
async fn one_smtp_session(listener: tokio::net::TcpListener) -> Vec<String> {
    let (sock, _) = listener.accept().await.unwrap();
    let (r, mut w) = sock.into_split();
    let mut lines = BufReader::new(r).lines();
    let mut said = Vec::new();
    w.write_all(b"220 test ESMTP\r\n").await.unwrap();
    let mut in_data = false;
    while let Ok(Some(line)) = lines.next_line().await {
        said.push(line.clone());
        if in_data {
            if line == "." {
                in_data = false;
                w.write_all(b"250 queued\r\n").await.unwrap();
            }
            continue;
        }
        let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
        let answer: &[u8] = match verb.as_str() {
            "EHLO" => b"250-test\r\n250 AUTH PLAIN\r\n",
            "AUTH" => b"235 ok\r\n",
            "DATA" => {
                in_data = true;
                b"354 go on\r\n"
            }
            "QUIT" => {
                w.write_all(b"221 bye\r\n").await.unwrap();
                break;
            }
            _ => b"250 ok\r\n",
        };
        w.write_all(answer).await.unwrap();
    }
    said
}

#[tokio::test]
async fn smtp_delivers_to_a_server() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(one_smtp_session(listener));
    let trail = Arc::new(Trail::default());
    let smtp = SmtpSettings::parse(
        &format!("smtp://mailer@127.0.0.1:{port}?tls=none"),
        Some("secret".into()),
    )
    .unwrap();
    let q = start(
        MailConfig {
            transport: MailTransport::Smtp(smtp),
            from: "no-reply@id.example".into(),
            timeout: Duration::from_secs(5),
        },
        templates(),
        trail.clone(),
    )
    .unwrap();
    let mut notice = reset_mail("bob@example.com");
    notice.content = Content::Notice(Notice::PasswordChanged);
    q.send(notice).unwrap();
    let said = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap();
    let all = said.join("\n");
    assert!(all.contains("MAIL FROM:<no-reply@id.example>"), "{all}");
    assert!(all.contains("RCPT TO:<bob@example.com>"), "{all}");
    assert!(all.contains("AUTH PLAIN"), "{all}");
    assert!(all.contains("text/html"), "{all}");
    let ev = wait_for(|| trail.0.lock().unwrap().first().cloned()).await;
    assert_eq!(ev.outcome, Outcome::Success, "{ev:?}");
    assert_eq!(ev.detail["transport"], "smtp");
}

#[tokio::test]
async fn an_unreachable_server_is_recorded_not_raised() {
    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let trail = Arc::new(Trail::default());
    let q = start(
        MailConfig {
            transport: MailTransport::Smtp(
                SmtpSettings::parse(&format!("smtp://127.0.0.1:{port}?tls=none"), None).unwrap(),
            ),
            from: "no-reply@id.example".into(),
            timeout: Duration::from_secs(2),
        },
        templates(),
        trail.clone(),
    )
    .unwrap();
    q.send(reset_mail("carol@example.com")).unwrap();
    let ev = wait_for(|| trail.0.lock().unwrap().first().cloned()).await;
    assert_eq!(ev.outcome, Outcome::Failure);
    assert!(ev.reason.is_some());
}
