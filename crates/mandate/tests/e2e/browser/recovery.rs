//! "Forgot your password?" in Chromium, with the mail read from the file outbox: the link on
//! the sign-in page, the request, the mail's link, the new password, and signing in with it.

use crate::common::mail::Outbox;
use crate::common::*;

#[tokio::test]
async fn a_forgotten_password_is_reset_through_the_mailed_link() {
    let outbox = Outbox::new();
    let (s, c) = tokio::join!(
        outbox.server(Backend::Sqlite, PublicUrl::Localhost),
        Chromium::launch("a_forgotten_password_is_reset_through_the_mailed_link")
    );
    let issuer = s.issuer("default");
    s.create_user("default", "alice");
    const NEW: &str = "blue harbour lantern 1729";

    c.goto(&format!("{issuer}/account/login")).await;
    c.click("text=Forgot your password?").await;
    c.wait_for_selector("input[name=name]").await;
    c.fill("input[name=name]", "alice").await;
    c.screenshot_for_docs("forgot", "password-forgot").await;
    c.click("role=button[name='Send the link']").await;
    c.wait_for_selector("[data-forgot-sent]").await;
    c.screenshot("link-sent").await;

    let mail = outbox.nth(1).await;
    assert_eq!(mail.to, "alice@example.com");
    let link = mail
        .link(&format!("{issuer}/account/password/reset?token="))
        .unwrap_or_else(|| panic!("{}", mail.text));
    c.goto(&link).await;
    c.wait_for_selector("input[name=password2]").await;
    c.screenshot_for_docs("new-password", "password-reset")
        .await;
    c.fill("input[name=password]", NEW).await;
    c.fill("input[name=password2]", NEW).await;
    c.click("role=button[name='Set the new password']").await;
    c.wait_for_selector("[data-reset-done]").await;
    c.screenshot("done").await;

    // The link works once; the new password signs in.
    c.goto(&link).await;
    assert_eq!(c.count("input[name=password2]").await, 0);
    c.goto(&format!("{issuer}/account/login?return_to=/account"))
        .await;
    c.fill("input[name=username]", "alice").await;
    c.fill("input[name=password]", NEW).await;
    c.click("button[type=submit]").await;
    c.wait_for_url(&format!("{issuer}/account")).await;
    assert_eq!(c.text("h1").await, "Your account");
}
