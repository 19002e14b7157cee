//! Delivering mail ([`mandate_core::mail::Mailer`]): a bounded queue that requests hand mails
//! to without waiting, and a worker that renders each ([`render`]), sends it through SMTP
//! (lettre over rustls: STARTTLS or implicit TLS, optional AUTH) or writes it into a
//! directory as an `.eml` file (development and tests), within a timeout, and records the
//! outcome (`email_sent`). A mail that cannot be delivered is logged and recorded, never an
//! error of the request that caused it.

pub mod render;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use mandate_core::audit::{AuditEvent, EventKind, Outcome, Principal, RequestMeta};
use mandate_core::mail::{MailError, Mailer, Message, check_address};
use mandate_core::store::AuditSink;
use serde_json::json;
use tokio::sync::{Semaphore, mpsc};

pub use render::{MailTemplates, Rendered};

/// Mails waiting to be sent; more are refused ([`MailError::QueueFull`]).
const QUEUE: usize = 1000;
/// Mails being sent at once.
const PARALLEL: usize = 4;

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// `smtp://`: plain connect, then STARTTLS, required (port 587 by default).
    StartTls,
    /// `smtps://`: TLS from the first byte (port 465 by default).
    Implicit,
    /// `?tls=none`: no TLS at all; only for a relay on the same host or network.
    None,
}

/// An SMTP server and how to log in to it.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "…"))
            .finish()
    }
}

impl SmtpSettings {
    /// Read `smtp://[user[:password]@]host[:port][?tls=starttls|none]` or
    /// `smtps://…`; `password` (from a file) is used when the URL has none.
    pub fn parse(url: &str, password: Option<String>) -> Result<Self, String> {
        let u = url::Url::parse(url).map_err(|e| format!("invalid SMTP URL: {e}"))?;
        let mut tls = match u.scheme() {
            "smtp" => SmtpTls::StartTls,
            "smtps" => SmtpTls::Implicit,
            s => {
                return Err(format!(
                    "the SMTP URL must be smtp:// or smtps://, not {s}://"
                ));
            }
        };
        for (k, v) in u.query_pairs() {
            match (k.as_ref(), v.as_ref()) {
                ("tls", "starttls") if tls == SmtpTls::StartTls => {}
                ("tls", "none") if tls == SmtpTls::StartTls => tls = SmtpTls::None,
                ("tls", "implicit") => tls = SmtpTls::Implicit,
                _ => return Err(format!("unknown SMTP URL parameter {k}={v}")),
            }
        }
        let host = u
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("the SMTP URL has no host")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = u.port().unwrap_or(match tls {
            SmtpTls::Implicit => 465,
            SmtpTls::StartTls => 587,
            SmtpTls::None => 25,
        });
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let username = (!u.username().is_empty()).then(|| decode(u.username()));
        let password = u.password().map(decode).or(password);
        if password.is_some() && username.is_none() {
            return Err("an SMTP password needs a user name in the URL".into());
        }
        Ok(SmtpSettings {
            host,
            port,
            tls,
            username,
            password,
        })
    }
}

/// Where mail goes.
#[derive(Debug, Clone)]
pub enum MailTransport {
    Smtp(SmtpSettings),
    /// Each mail written as `{time}-{random}.eml` into this directory.
    Outbox(PathBuf),
}

/// Mail settings.
#[derive(Debug, Clone)]
pub struct MailConfig {
    pub transport: MailTransport,
    /// The sender, `Name <address>` or an address.
    pub from: String,
    /// How long one SMTP connection step may take.
    pub timeout: Duration,
}

/// A transport ready to send.
enum Sender {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(PathBuf),
}

impl Sender {
    fn kind(&self) -> &'static str {
        match self {
            Sender::Smtp(_) => "smtp",
            Sender::Outbox(_) => "outbox",
        }
    }

    async fn send(&self, email: lettre::Message) -> Result<(), String> {
        match self {
            Sender::Smtp(t) => t.send(email).await.map(|_| ()).map_err(|e| e.to_string()),
            Sender::Outbox(dir) => write_eml(dir, &email.formatted())
                .await
                .map_err(|e| e.to_string()),
        }
    }
}

/// Write one mail into the outbox: a hidden temporary file, then renamed, so a reader never
/// sees half a mail.
async fn write_eml(dir: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let name = format!(
        "{millis:015}-{}",
        mandate_core::crypto::secret::random_token(6)
    );
    let tmp = dir.join(format!(".{name}.tmp"));
    tokio::fs::write(&tmp, bytes).await?;
    tokio::fs::rename(&tmp, dir.join(format!("{name}.eml"))).await
}

fn smtp_transport(
    s: &SmtpSettings,
    timeout: Duration,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let params = || {
        TlsParameters::builder(s.host.clone())
            .build_rustls()
            .map_err(|e| format!("SMTP TLS: {e}"))
    };
    let tls = match s.tls {
        SmtpTls::StartTls => Tls::Required(params()?),
        SmtpTls::Implicit => Tls::Wrapper(params()?),
        SmtpTls::None => Tls::None,
    };
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.clone())
        .port(s.port)
        .tls(tls)
        .timeout(Some(timeout));
    if let (Some(u), Some(p)) = (&s.username, &s.password) {
        b = b.credentials(Credentials::new(u.clone(), p.clone()));
    }
    Ok(b.build())
}

/// The queue requests hand mails to.
pub struct MailQueue {
    tx: mpsc::Sender<Message>,
}

impl Mailer for MailQueue {
    fn send(&self, m: Message) -> Result<(), MailError> {
        check_address(&m.to)?;
        self.tx.try_send(m).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => MailError::QueueFull,
            mpsc::error::TrySendError::Closed(_) => MailError::NotConfigured,
        })
    }
}

/// Everything the worker needs.
struct Worker {
    sender: Sender,
    from: Mailbox,
    templates: MailTemplates,
    audit: Arc<dyn AuditSink>,
    /// Longest time for one mail, connection and all.
    deadline: Duration,
}

/// Check the settings and start the worker (within a tokio runtime); the queue to hand to
/// `Provider::with_mailer`.
pub fn start(
    cfg: MailConfig,
    templates: MailTemplates,
    audit: Arc<dyn AuditSink>,
) -> Result<Arc<MailQueue>, String> {
    let from: Mailbox = cfg
        .from
        .parse()
        .map_err(|e| format!("invalid sender address {:?}: {e}", cfg.from))?;
    let sender = match &cfg.transport {
        MailTransport::Smtp(s) => Sender::Smtp(smtp_transport(s, cfg.timeout)?),
        MailTransport::Outbox(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create the outbox {}: {e}", dir.display()))?;
            Sender::Outbox(dir.clone())
        }
    };
    let worker = Arc::new(Worker {
        sender,
        from,
        templates,
        audit,
        deadline: cfg.timeout * 3,
    });
    let (tx, mut rx) = mpsc::channel::<Message>(QUEUE);
    let slots = Arc::new(Semaphore::new(PARALLEL));
    tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let w = worker.clone();
            tokio::spawn(async move {
                w.deliver(m).await;
                drop(slot);
            });
        }
    });
    Ok(Arc::new(MailQueue { tx }))
}

/// Build the RFC 5322 message: `multipart/alternative` with a `text/plain` and a
/// `text/html` part, quoted-printable. lettre encodes every header; the address was checked.
pub fn build(from: &Mailbox, to: &str, r: &Rendered) -> Result<lettre::Message, String> {
    check_address(to).map_err(|e| e.to_string())?;
    let to: Mailbox = to.parse().map_err(|e| format!("recipient: {e}"))?;
    let part = |ct: ContentType, body: &str| {
        SinglePart::builder()
            .header(ct)
            .header(ContentTransferEncoding::QuotedPrintable)
            .body(body.to_string())
    };
    lettre::Message::builder()
        .from(from.clone())
        .to(to)
        .subject(r.subject.clone())
        .multipart(
            MultiPart::alternative()
                .singlepart(part(ContentType::TEXT_PLAIN, &r.text))
                .singlepart(part(ContentType::TEXT_HTML, &r.html)),
        )
        .map_err(|e| e.to_string())
}

impl Worker {
    async fn deliver(&self, m: Message) {
        let template = m.content.template();
        let outcome = match self.templates.render(&m) {
            Err(e) => Err(format!("template: {e}")),
            Ok(r) => match build(&self.from, &m.to, &r) {
                Err(e) => Err(e),
                Ok(email) => {
                    match tokio::time::timeout(self.deadline, self.sender.send(email)).await {
                        Ok(r) => r,
                        Err(_) => Err("timed out".into()),
                    }
                }
            },
        };
        if let Err(e) = &outcome {
            tracing::warn!(template, transport = self.sender.kind(), error = %mandate_core::untrusted::for_log(e), "mail not sent");
        }
        let mut ev = AuditEvent::new(
            &m.tenant_id,
            EventKind::EmailSent,
            if outcome.is_ok() {
                Outcome::Success
            } else {
                Outcome::Failure
            },
            Principal::Anonymous,
            &RequestMeta::default(),
        )
        .email(Some(&m.to))
        .detail(json!({"template": template, "transport": self.sender.kind()}));
        if let Some(id) = &m.user_id {
            ev = ev.subject(Principal::User { id: id.clone() });
        }
        if let Err(e) = &outcome {
            ev = ev.reason(mandate_core::untrusted::clip(e, 200).into_owned());
        }
        if let Err(e) = self.audit.record(&ev).await {
            tracing::error!(error = %e, "recording a sent mail");
        }
    }
}

#[cfg(test)]
mod tests;
