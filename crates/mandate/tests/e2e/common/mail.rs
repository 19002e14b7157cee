//! The file outbox as the tests read it: a server started with `MANDATE_MAIL_OUTBOX` writes
//! each mail as an `.eml` file there; [`Outbox`] waits for them and reads the headers and the
//! quoted-printable text and HTML parts back.

use std::path::PathBuf;
use std::time::Duration;

use super::{Backend, PublicUrl, Server, unique};

/// One mail, decoded.
#[derive(Debug, Clone)]
pub struct Mail {
    pub raw: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Mail {
    /// The first link in the text part that starts with `prefix`.
    pub fn link(&self, prefix: &str) -> Option<String> {
        let at = self.text.find(prefix)?;
        let rest = &self.text[at..];
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        Some(rest[..end].to_string())
    }
}

/// A directory the server writes mails into.
pub struct Outbox {
    pub dir: PathBuf,
}

impl Outbox {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(unique("mandate_outbox"));
        std::fs::create_dir_all(&dir).unwrap();
        Outbox { dir }
    }

    /// The environment that sends a server's mail here.
    pub fn env(&self) -> (&'static str, String) {
        ("MANDATE_MAIL_OUTBOX", self.dir.display().to_string())
    }

    /// A server whose mail comes here.
    pub async fn server(&self, backend: Backend, public_url: PublicUrl) -> Server {
        let (k, v) = self.env();
        Server::start_at(backend, public_url, &[(k, &v)]).await
    }

    /// Every mail written so far, oldest first.
    pub fn mails(&self) -> Vec<Mail> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|f| parse(&std::fs::read_to_string(f).unwrap()))
            .collect()
    }

    /// Wait until there are `n` mails; return them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Mail> {
        for _ in 0..250 {
            let m = self.mails();
            if m.len() >= n {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "expected {n} mails in {}, got {}",
            self.dir.display(),
            self.mails().len()
        );
    }

    /// Wait for mail number `n` (from 1) and return it.
    pub async fn nth(&self, n: usize) -> Mail {
        self.wait_for(n).await[n - 1].clone()
    }

    /// Wait for the `n`th mail (from 1) whose subject contains `subject` (other mails, such as
    /// security notices, may come in between) and return it.
    pub async fn nth_of(&self, n: usize, subject: &str) -> Mail {
        for _ in 0..250 {
            let m: Vec<Mail> = self
                .mails()
                .into_iter()
                .filter(|m| m.subject.contains(subject))
                .collect();
            if m.len() >= n {
                return m[n - 1].clone();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "expected {n} mails about {subject:?} in {}",
            self.dir.display()
        );
    }

    /// No new mail whose subject contains `subject` arrives within a while: there stay `n`.
    pub async fn stays_at_of(&self, n: usize, subject: &str) {
        tokio::time::sleep(Duration::from_millis(600)).await;
        let m = self.mails();
        let of = m.iter().filter(|m| m.subject.contains(subject)).count();
        assert_eq!(of, n, "unexpected mail about {subject:?}");
    }

    /// No new mail arrives within a while (the worker had time to write one).
    pub async fn stays_at(&self, n: usize) {
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(self.mails().len(), n, "unexpected mail");
    }
}

impl Default for Outbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn header(head: &str, name: &str) -> String {
    // Unfold continuation lines first.
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    unfolded
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
        .unwrap_or_default()
}

/// Quoted-printable decoding (RFC 2045 §6.7).
fn qp(s: &str) -> String {
    let s = s.replace("=\r\n", "").replace("=\n", "");
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'='
            && i + 2 < b.len()
            && let Ok(v) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or(""), 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// The decoded body of the part with this content type.
fn part(raw: &str, content_type: &str) -> String {
    let at = raw
        .find(&format!("Content-Type: {content_type}"))
        .unwrap_or_else(|| panic!("no {content_type} part in {raw}"));
    let rest = &raw[at..];
    let body_at = rest.find("\r\n\r\n").unwrap() + 4;
    let body = &rest[body_at..];
    let end = body.find("\r\n--").unwrap_or(body.len());
    qp(&body[..end])
}

/// Read an `.eml` file as lettre writes it.
pub fn parse(raw: &str) -> Mail {
    let head = &raw[..raw.find("\r\n\r\n").expect("headers end")];
    Mail {
        raw: raw.to_string(),
        to: header(head, "To"),
        subject: header(head, "Subject"),
        text: part(raw, "text/plain"),
        html: part(raw, "text/html"),
    }
}
