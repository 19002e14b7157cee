//! The account pages in Chromium: an authenticator app set up from the sign-in security page
//! (not while signing in), its recovery codes shown once, then removed after confirming who one
//! is (a recent sign-in is needed), by keyboard; and the e-mail address verified through the
//! mailed link (file outbox), the link refused when used again.

use mandate_core::login::totp::code_for_key;

use crate::common::mail::Outbox;
use crate::common::*;

fn code_now(key: &str, offset_steps: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    code_for_key(key, ((now / 30 + offset_steps) * 30) as u64).unwrap()
}

/// Seconds a sign-in counts as recent in the security test: long enough to set the app up,
/// short enough to wait out.
const RECENT: u64 = 5;

#[tokio::test]
async fn an_authenticator_app_set_up_and_removed_on_the_security_page() {
    let recent = RECENT.to_string();
    let env = [("MANDATE_RECENT_SIGN_IN", recent.as_str())];
    let (s, c) = tokio::join!(
        Server::start_at(Backend::Sqlite, PublicUrl::Localhost, &env),
        Chromium::launch("an_authenticator_app_set_up_and_removed_on_the_security_page")
    );
    let issuer = s.issuer("default");
    s.create_user("default", "alice");

    // 1. Signed in to the account, the way there from its home page, by keyboard.
    c.goto(&format!("{issuer}/account")).await;
    c.fill("input[name=username]", "alice").await;
    c.fill("input[name=password]", PASSWORD).await;
    c.keyboard("Enter").await;
    c.wait_for_url(&format!("{issuer}/account")).await;
    c.wait_for_selector("h1:has-text('Your account')").await;
    c.screenshot("account").await;
    c.tab_to("a[href$='/account/security']").await;
    c.keyboard("Enter").await;
    c.wait_for_url(&format!("{issuer}/account/security")).await;
    assert_eq!(c.text("h1").await, "Sign-in security");
    assert_eq!(
        c.text("#totp-status").await,
        "Authenticator app: not set up."
    );
    c.screenshot("not-set-up").await;

    // 2. Set up: QR code and key, a first code confirms; the recovery codes, once.
    c.tab_to("button.button--primary").await;
    assert_eq!(
        c.evaluate("document.activeElement.textContent").await,
        "Set up an authenticator app"
    );
    c.keyboard("Enter").await;
    c.wait_for_selector("#totp-secret").await;
    assert_eq!(c.count("figure.qr svg").await, 1, "the QR code is drawn");
    c.screenshot("enrol").await;
    let key = c.text("#totp-secret").await;
    // Autofocus: the code field has the focus already.
    assert_eq!(c.evaluate("document.activeElement.id").await, "totp-code");
    c.fill("#totp-code", &code_now(&key, 0)).await;
    c.keyboard("Enter").await;
    c.wait_for_selector("ul.recovery-codes code").await;
    let codes: Vec<String> = serde_json::from_value(
        c.evaluate(
            "[...document.querySelectorAll('ul.recovery-codes code')].map(e => e.textContent)",
        )
        .await,
    )
    .unwrap();
    assert_eq!(codes.len(), 10);
    c.screenshot_for_docs("recovery-codes", "recovery-codes")
        .await;
    c.tab_to("a.button--primary").await;
    c.keyboard("Enter").await;
    c.wait_for_url(&format!("{issuer}/account/security")).await;
    let status = c.text("#totp-status").await;
    assert!(status.starts_with("Authenticator app: set up "), "{status}");
    assert_eq!(c.text("#recovery-left").await, "Recovery codes left: 10.");
    c.screenshot_for_docs("set-up", "account-security").await;
    // Shown once: the page does not show them again.
    for code in &codes {
        assert!(!c.content().await.contains(code.as_str()));
    }

    // 3. Later, removing it needs a fresh sign-in first: password and a code from the app.
    // The server counts whole seconds: wait past RECENT whatever fraction the sign-in had.
    tokio::time::sleep(std::time::Duration::from_millis(RECENT * 1000 + 1600)).await;
    c.tab_to("button.button--danger").await;
    c.keyboard("Enter").await;
    c.wait_for_url(&format!("{issuer}/account/login")).await;
    assert!(c.url().await.contains("again=1"), "{}", c.url().await);
    assert_eq!(c.value("input[name=username]").await, "alice");
    c.screenshot("confirm-its-you").await;
    let shown = s.cli(&["user", "methods", "alice", "--tenant", "default"], None);
    assert!(
        !shown["totp_enrolled_at"].is_null(),
        "not removed yet: {shown}"
    );
    c.fill("input[name=password]", PASSWORD).await;
    c.keyboard("Enter").await;
    c.wait_for_selector("#totp-code").await;
    c.fill("#totp-code", &code_now(&key, 1)).await;
    c.keyboard("Enter").await;
    c.wait_for_url(&format!("{issuer}/account/security")).await;

    // 4. Now it goes, and the page says so.
    c.tab_to("button.button--danger").await;
    c.keyboard("Enter").await;
    c.wait_for_selector("[data-totp-removed]").await;
    assert_eq!(
        c.text("[data-totp-removed]").await,
        "The authenticator app is removed, and with it your recovery codes."
    );
    assert_eq!(
        c.attribute("[data-totp-removed]", "role").await.as_deref(),
        Some("status")
    );
    assert_eq!(
        c.text("#totp-status").await,
        "Authenticator app: not set up."
    );
    c.screenshot("removed").await;
    let shown = s.cli(&["user", "methods", "alice", "--tenant", "default"], None);
    assert!(shown["totp_enrolled_at"].is_null(), "{shown}");
    assert_eq!(shown["recovery_codes_left"], 0, "{shown}");
    // The notice is for the removal only: the page opened again says nothing of it.
    c.goto(&format!("{issuer}/account/security")).await;
    assert_eq!(c.count("[data-totp-removed]").await, 0);
    assert!(c.errors().await.is_empty(), "{:?}", c.errors().await);
}

#[tokio::test]
async fn the_e_mail_address_is_verified_through_the_mailed_link() {
    let outbox = Outbox::new();
    let (s, c) = tokio::join!(
        outbox.server(Backend::Sqlite, PublicUrl::Localhost),
        Chromium::launch("the_e_mail_address_is_verified_through_the_mailed_link")
    );
    let issuer = s.issuer("default");
    s.create_user("default", "alice");

    c.goto(&format!("{issuer}/account/profile")).await;
    c.fill("input[name=username]", "alice").await;
    c.fill("input[name=password]", PASSWORD).await;
    c.keyboard("Enter").await;
    c.wait_for_url(&format!("{issuer}/account/profile")).await;
    assert_eq!(
        c.text("[data-email]").await,
        "alice@example.com (not verified)"
    );
    c.screenshot("unverified").await;
    c.click("role=button[name='Verify my e-mail address']")
        .await;
    c.wait_for_selector("role=status").await;
    assert_eq!(
        c.text("role=status").await,
        "We sent a link to alice@example.com. Open it to confirm the address."
    );
    c.screenshot("link-sent").await;

    let mail = outbox.nth(1).await;
    assert_eq!(mail.to, "alice@example.com");
    let link = mail
        .link(&format!("{issuer}/account/email/verify?token="))
        .unwrap_or_else(|| panic!("{}", mail.text));
    // Opening the link changes nothing yet (mail scanners open links): a button confirms.
    assert_eq!(c.goto(&link).await, Some(200));
    assert_eq!(c.text("h1").await, "Confirm your e-mail address");
    c.screenshot_for_docs("confirm", "email-verify").await;
    c.goto(&format!("{issuer}/account/profile")).await;
    assert_eq!(c.count("[data-verified]").await, 0);
    c.goto(&link).await;
    c.click("role=button[name='Confirm my address']").await;
    c.wait_for_selector("[data-verify-done]").await;
    assert_eq!(
        c.text("[data-verify-done]").await,
        "Your e-mail address is confirmed."
    );
    c.screenshot("verified").await;
    c.click("text=Your profile").await;
    c.wait_for_url(&format!("{issuer}/account/profile")).await;
    assert_eq!(c.text("[data-email]").await, "alice@example.com (verified)");
    assert_eq!(
        c.count("role=button[name='Verify my e-mail address']")
            .await,
        0
    );

    // The same link again: refused politely, in words, and nothing changes.
    c.goto(&link).await;
    c.click("role=button[name='Confirm my address']").await;
    c.wait_for_selector("role=alert").await;
    assert_eq!(
        c.text("role=alert").await,
        "This link is invalid, has expired, or was used already. Ask for a new one."
    );
    assert_eq!(c.count("[data-verify-done]").await, 0);
    assert_eq!(c.text("h1").await, "Confirm your e-mail address");
    c.screenshot("used-twice").await;
    // A way on: the profile, where a new link is asked for.
    c.click("text=Your profile").await;
    c.wait_for_url(&format!("{issuer}/account/profile")).await;
    outbox.stays_at(1).await;
}
