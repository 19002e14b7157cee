//! The recovery rules over the in-memory store, with a mailer that keeps what it is given.

use std::sync::{Arc, Mutex};

use super::*;
use crate::audit::EventKind;
use crate::mail::{MailError, Notice};
use crate::testing::{Fake, provider, user};

#[derive(Default)]
struct Outbox(Mutex<Vec<Message>>);

impl Mailer for Outbox {
    fn send(&self, m: Message) -> Result<(), MailError> {
        self.0.lock().unwrap().push(m);
        Ok(())
    }
}

impl Outbox {
    fn last(&self) -> Message {
        self.0.lock().unwrap().last().cloned().expect("a mail")
    }
    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

fn alice() -> User {
    let mut u = user("u1", "alice");
    u.email = Some("alice@example.com".into());
    u.password_hash = Some(password::hash("correct horse battery"));
    u
}

fn setup() -> (Provider<Fake>, TenantCtx, Arc<Outbox>) {
    let fake = Fake {
        users: vec![alice()],
        ..Fake::default()
    };
    let (p, t) = provider(fake);
    let outbox = Arc::new(Outbox::default());
    (p.with_mailer(outbox.clone()), t, outbox)
}

fn meta() -> RequestMeta {
    RequestMeta {
        ip: Some("192.0.2.1".into()),
        ..RequestMeta::default()
    }
}

fn token_of(link: &str) -> String {
    link.split_once("token=").unwrap().1.to_string()
}

fn reset_link(m: &Message) -> String {
    match &m.content {
        Content::PasswordReset { link, minutes } => {
            assert_eq!(*minutes, 30);
            link.clone()
        }
        other => panic!("not a reset mail: {other:?}"),
    }
}

#[tokio::test]
async fn reset_link_works_once_and_ends_sessions() {
    let (p, t, outbox) = setup();
    let s = Session {
        digest: vec![1],
        tenant_id: t.id().into(),
        sid: "sid1".into(),
        user_id: "u1".into(),
        auth_time: 0,
        amr: vec![],
        acr: String::new(),
        expires_at: i64::MAX,
    };
    p.store.create_session(&s).await.unwrap();
    request_password_reset(&p, &t, "alice", Some("de"), &meta())
        .await
        .unwrap();
    let m = outbox.last();
    assert_eq!(m.to, "alice@example.com");
    assert_eq!(m.lang.as_deref(), Some("de"));
    let link = reset_link(&m);
    assert!(link.starts_with("https://id.example/t/acme/account/password/reset?token="));
    let token = token_of(&link);
    assert!(token.len() >= 43, "at least 256 bits");
    // Only a digest is stored.
    let stored = p.store.account_tokens.lock().unwrap()[0].clone();
    assert!(
        !stored
            .digest
            .windows(token.len())
            .any(|w| w == token.as_bytes())
    );

    // A refused password leaves the link working.
    assert!(matches!(
        reset_password(&p, &t, &token, "password", &meta()).await,
        Err(RecoveryError::Rejected(_))
    ));
    reset_password(&p, &t, &token, "a new long passphrase", &meta())
        .await
        .unwrap();
    let u = p.store.user(t.id(), "u1").await.unwrap().unwrap();
    assert!(password::verify(
        "a new long passphrase",
        u.password_hash.as_deref().unwrap()
    ));
    assert!(
        p.store.sessions.lock().unwrap().is_empty(),
        "sessions ended"
    );
    // Once only.
    assert!(matches!(
        reset_password(&p, &t, &token, "another long passphrase", &meta()).await,
        Err(RecoveryError::InvalidToken)
    ));
    assert_eq!(p.store.recorded(EventKind::PasswordChanged).len(), 1);
    assert_eq!(p.store.recorded(EventKind::PasswordResetRequested).len(), 1);
    assert_eq!(
        outbox.last().content,
        Content::Notice(Notice::PasswordChanged)
    );
}

#[tokio::test]
async fn expired_and_replaced_links_are_refused() {
    let (p, t, outbox) = setup();
    request_password_reset(&p, &t, "alice@example.com", None, &meta())
        .await
        .unwrap();
    let first = token_of(&reset_link(&outbox.last()));
    request_password_reset(&p, &t, "alice", None, &meta())
        .await
        .unwrap();
    let second = token_of(&reset_link(&outbox.last()));
    assert!(matches!(
        reset_account(&p, &t, &first).await,
        Err(RecoveryError::InvalidToken)
    ));
    assert!(reset_account(&p, &t, &second).await.is_ok());
    // Expired: move the stored expiry into the past.
    p.store.account_tokens.lock().unwrap()[0].expires_at = p.now() - 1;
    assert!(matches!(
        reset_password(&p, &t, &second, "a new long passphrase", &meta()).await,
        Err(RecoveryError::InvalidToken)
    ));
    for junk in ["", "x", &"a".repeat(500)] {
        assert!(matches!(
            reset_account(&p, &t, junk).await,
            Err(RecoveryError::InvalidToken)
        ));
    }
}

#[tokio::test]
async fn unknown_accounts_get_the_same_answer_and_no_mail() {
    let (p, t, outbox) = setup();
    request_password_reset(&p, &t, "mallory", None, &meta())
        .await
        .unwrap();
    request_password_reset(&p, &t, "nobody@example.com", None, &meta())
        .await
        .unwrap();
    assert_eq!(outbox.count(), 0);
    let recorded = p.store.recorded(EventKind::PasswordResetRequested);
    assert_eq!(recorded.len(), 2);
    assert!(recorded.iter().all(|e| e.outcome == Outcome::Failure));
}

#[tokio::test]
async fn reset_requests_are_limited_per_name() {
    let (p, t, _outbox) = setup();
    let mut throttled = false;
    for _ in 0..6 {
        if let Err(RecoveryError::Throttled { .. }) =
            request_password_reset(&p, &t, "alice", None, &meta()).await
        {
            throttled = true;
        }
    }
    assert!(throttled);
}

#[tokio::test]
async fn nothing_is_offered_without_mail() {
    let (p, t) = provider(Fake {
        users: vec![alice()],
        ..Fake::default()
    });
    assert!(matches!(
        request_password_reset(&p, &t, "alice", None, &meta()).await,
        Err(RecoveryError::Unavailable)
    ));
}

#[tokio::test]
async fn verification_link_confirms_the_address_it_was_sent_to() {
    let (p, t, outbox) = setup();
    let u = alice();
    request_email_verification(&p, &t, &u, None).await.unwrap();
    let link = match outbox.last().content {
        Content::VerifyEmail { link, .. } => link,
        other => panic!("{other:?}"),
    };
    assert!(link.contains(VERIFY_PATH));
    let token = token_of(&link);
    let verified = verify_email(&p, &t, &token, &meta()).await.unwrap();
    assert!(verified.email_verified);
    assert!(matches!(
        verify_email(&p, &t, &token, &meta()).await,
        Err(RecoveryError::InvalidToken)
    ));
    assert_eq!(p.store.recorded(EventKind::EmailVerified).len(), 1);
}

#[tokio::test]
async fn sign_in_codes_are_single_use_and_guesses_are_limited() {
    let (p, t, outbox) = setup();
    let u = alice();
    send_sign_in_code(&p, &t, &u, None).await.unwrap();
    let code = match outbox.last().content {
        Content::SignInCode { code, minutes } => {
            assert_eq!(minutes, 10);
            code
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(code.len(), CODE_DIGITS);
    assert!(code.bytes().all(|b| b.is_ascii_digit()));
    let wrong = if code == "000000" { "000001" } else { "000000" };
    assert!(matches!(
        check_sign_in_code(&p, &t, &u, wrong, &meta()).await,
        Err(RecoveryError::InvalidCode)
    ));
    check_sign_in_code(&p, &t, &u, &code, &meta())
        .await
        .unwrap();
    assert!(matches!(
        check_sign_in_code(&p, &t, &u, &code, &meta()).await,
        Err(RecoveryError::InvalidCode)
    ));
    // Guessing runs into the limits.
    send_sign_in_code(&p, &t, &u, None).await.unwrap();
    let mut throttled = false;
    for _ in 0..12 {
        if let Err(RecoveryError::Throttled { .. }) =
            check_sign_in_code(&p, &t, &u, "12345x", &meta()).await
        {
            throttled = true;
            break;
        }
    }
    assert!(throttled);
}

#[tokio::test]
async fn expired_codes_are_refused() {
    let (p, t, outbox) = setup();
    let u = alice();
    send_sign_in_code(&p, &t, &u, None).await.unwrap();
    let Content::SignInCode { code, .. } = outbox.last().content else {
        panic!()
    };
    p.store.account_tokens.lock().unwrap()[0].expires_at = p.now() - 1;
    assert!(matches!(
        check_sign_in_code(&p, &t, &u, &code, &meta()).await,
        Err(RecoveryError::InvalidCode)
    ));
}

#[tokio::test]
async fn password_change_needs_the_current_one_and_keeps_this_session() {
    let (p, t, outbox) = setup();
    let mk = |d: u8, sid: &str| Session {
        digest: vec![d],
        tenant_id: t.id().into(),
        sid: sid.into(),
        user_id: "u1".into(),
        auth_time: p.now(),
        amr: vec![],
        acr: String::new(),
        expires_at: i64::MAX,
    };
    let (here, other) = (mk(1, "here"), mk(2, "other"));
    p.store.create_session(&here).await.unwrap();
    p.store.create_session(&other).await.unwrap();
    let u = alice();
    assert!(matches!(
        change_password(&p, &t, &u, &here, "wrong", "a new long passphrase", &meta()).await,
        Err(RecoveryError::WrongPassword)
    ));
    change_password(
        &p,
        &t,
        &u,
        &here,
        "correct horse battery",
        "a new long passphrase",
        &meta(),
    )
    .await
    .unwrap();
    let left = p.store.sessions.lock().unwrap().clone();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].sid, "here");
    assert_eq!(
        outbox.last().content,
        Content::Notice(Notice::PasswordChanged)
    );
}

#[test]
fn codes_are_uniform_digits() {
    for _ in 0..200 {
        let c = random_code();
        assert_eq!(c.len(), CODE_DIGITS);
        assert!(c.bytes().all(|b| b.is_ascii_digit()));
    }
}
