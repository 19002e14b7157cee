//! Passkeys in Chromium with the DevTools virtual authenticator (CTAP2, resident keys, user
//! verification): adding one from the offer after a password sign-in, signing in with it by
//! autofill (conditional mediation) with no username typed, a step-up to `phr` from
//! `acr_values`, removal on the account page, and refusal when user verification fails.

use serde_json::json;

use crate::common::*;

/// Sign in with the password on the page the browser shows, and add a passkey on the offer.
async fn password_then_add_passkey(c: &Chromium, name: &str) {
    c.fill("input[name=username]", "alice").await;
    c.fill("input[name=password]", PASSWORD).await;
    c.click("role=button[name='Sign in']").await;
    c.wait_for_selector("h1:has-text('Sign in faster next time')")
        .await;
    c.wait_for_selector_state("[data-passkey-register]", "visible")
        .await;
    c.fill("input[name=name]", name).await;
    // One test's offer is the docs' picture.
    if name == "Test laptop" {
        c.screenshot_for_docs("offer", "passkey-offer").await;
    } else {
        c.screenshot("offer").await;
    }
    c.click("[data-passkey-register] [data-passkey-button]")
        .await;
}

/// The audit records of one kind.
fn audit_events(s: &Server, kind: &str) -> Vec<serde_json::Value> {
    let (ok, out, e) = s.cli_raw(
        &["audit", "export", "--tenant", "default", "--event", kind],
        None,
    );
    assert!(ok, "{e}");
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Drop the browser's cookies: a new visit, the authenticator (and its passkeys) kept.
async fn forget_cookies(c: &Chromium) {
    c.cdp("Network.clearBrowserCookies", json!({})).await;
}

#[tokio::test]
async fn passkey_added_after_a_password_sign_in_then_autofill_sign_in_and_removal() {
    let (s, c) = super::start(
        Backend::Sqlite,
        "passkey_added_after_a_password_sign_in_then_autofill_sign_in_and_removal",
    )
    .await;
    let issuer = s.issuer("default");
    let alice = s.create_user("default", "alice");
    let web = s.create_web_client("default", &[]);
    let auth = c.add_virtual_authenticator(true).await;
    c.capture_redirects(REDIRECT).await;

    // 1. Password, then "Add a passkey" on the offer, then on with the request.
    let (_, challenge) = pkce();
    c.goto(&auth_url(&issuer, &web.0, &challenge, "openid", &[]))
        .await;
    // The username field offers passkeys (autofill), the button too.
    assert_eq!(
        c.attribute("input[name=username]", "autocomplete")
            .await
            .as_deref(),
        Some("username webauthn")
    );
    password_then_add_passkey(&c, "Test laptop").await;
    c.wait_for_selector("button[value=approve]").await;
    let creds = c.authenticator_credentials(&auth).await;
    assert_eq!(creds.len(), 1, "{creds:?}");
    assert_eq!(creds[0]["isResidentCredential"], true);
    assert_eq!(creds[0]["rpId"], "localhost");
    c.click("button[value=approve]").await;
    c.next_redirect().await;

    // 2. A new visit: the sign-in page's autofill finds the passkey (the virtual
    //    authenticator answers the conditional request at once) and signs in, no name typed.
    forget_cookies(&c).await;
    let (verifier, challenge) = pkce();
    c.goto(&auth_url(
        &issuer,
        &web.0,
        &challenge,
        "openid profile",
        &[],
    ))
    .await;
    c.wait_for_selector("button[value=approve]").await;
    c.screenshot("consent-after-passkey").await;
    c.click("button[value=approve]").await;
    let back = c.next_redirect().await;
    let code = query_param(&back, "code").expect("code");
    let (status, tokens) = token(
        &issuer,
        &web,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["sub"], alice.as_str());
    assert_eq!(id["acr"], "phr");
    let amr = id["amr"].as_array().unwrap();
    assert!(amr.contains(&json!("user")), "{id}");
    assert!(
        amr.contains(&json!("hwk")) || amr.contains(&json!("swk")),
        "{id}"
    );

    // 3. The account page lists it; removing it there ends its use.
    c.goto(&format!("{issuer}/account/passkeys")).await;
    c.wait_for_selector("text=Test laptop").await;
    c.screenshot_for_docs("account-passkeys", "account-passkeys")
        .await;
    c.click("role=button[name='Remove the passkey Test laptop']")
        .await;
    c.wait_for_selector("text=You have no passkeys yet.").await;
    forget_cookies(&c).await;
    c.goto(&auth_url(&issuer, &web.0, &challenge, "openid", &[]))
        .await;
    // The authenticator still offers it; the server no longer knows it.
    c.wait_for_selector("role=alert").await;
    assert!(
        c.text("role=alert").await.contains("not registered"),
        "{}",
        c.text("role=alert").await
    );
    c.screenshot("removed-passkey-refused").await;
    // Refused once, and autofill does not try again by itself.
    assert_eq!(
        audit_events(&s, "login_failed")
            .iter()
            .filter(|e| e["detail"]["method"] == "passkey")
            .count(),
        1
    );
}

#[tokio::test]
async fn a_passkey_needs_user_verification() {
    let (s, c) = super::start(Backend::Sqlite, "a_passkey_needs_user_verification").await;
    let issuer = s.issuer("default");
    s.create_user("default", "alice");
    let web = s.create_web_client("default", &[]);
    // An authenticator whose user verification fails: no passkey can be made.
    let auth = c.add_virtual_authenticator(false).await;
    let (_, challenge) = pkce();
    c.goto(&auth_url(&issuer, &web.0, &challenge, "openid", &[]))
        .await;
    password_then_add_passkey(&c, "No UV").await;
    c.wait_for_selector("[data-passkey-register] [data-passkey-error]:not([hidden])")
        .await;
    c.screenshot("refused").await;
    assert!(c.authenticator_credentials(&auth).await.is_empty());
    assert_eq!(
        s.cli(
            &[
                "audit",
                "query",
                "--tenant",
                "default",
                "--event",
                "passkey_registered"
            ],
            None
        )
        .as_array()
        .map_or(0, Vec::len),
        0
    );

    // A passkey made while verification works is refused once it fails.
    c.cdp(
        "WebAuthn.setUserVerified",
        json!({"authenticatorId": auth, "isUserVerified": true}),
    )
    .await;
    c.click("[data-passkey-register] [data-passkey-button]")
        .await;
    c.wait_for_selector("button[value=approve]").await;
    assert_eq!(c.authenticator_credentials(&auth).await.len(), 1);
    c.cdp(
        "WebAuthn.setUserVerified",
        json!({"authenticatorId": auth, "isUserVerified": false}),
    )
    .await;
    forget_cookies(&c).await;
    c.goto(&auth_url(&issuer, &web.0, &challenge, "openid", &[]))
        .await;
    // Autofill cannot finish; the button's request is refused by the authenticator.
    c.wait_for_selector_state("[data-passkey-signin]", "visible")
        .await;
    c.click("[data-passkey-signin] [data-passkey-button]").await;
    c.wait_for_selector("[data-passkey-signin] [data-passkey-error]:not([hidden])")
        .await;
    assert_eq!(c.count("button[value=approve]").await, 0);
    assert!(c.url().await.starts_with(&issuer));
}

#[tokio::test]
async fn step_up_to_a_passkey_from_acr_values() {
    let (s, c) = super::start(Backend::Postgres, "step_up_to_a_passkey_from_acr_values").await;
    let issuer = s.issuer("default");
    s.create_user("default", "alice");
    let web = s.create_web_client("default", &[]);
    let auth = c.add_virtual_authenticator(true).await;
    c.capture_redirects(REDIRECT).await;
    let (_, challenge) = pkce();
    c.goto(&auth_url(&issuer, &web.0, &challenge, "openid", &[]))
        .await;
    password_then_add_passkey(&c, "Phone").await;
    c.click("button[value=approve]").await;
    c.next_redirect().await;
    assert_eq!(c.authenticator_credentials(&auth).await.len(), 1);
    // Signed in with a password; the client now asks for phishing resistance. Keep the
    // authenticator from answering until the page is seen.
    c.cdp(
        "WebAuthn.setAutomaticPresenceSimulation",
        json!({"authenticatorId": auth, "enabled": false}),
    )
    .await;
    let (verifier, challenge) = pkce();
    c.goto(&auth_url(
        &issuer,
        &web.0,
        &challenge,
        "openid",
        &[("acr_values", "phr")],
    ))
    .await;
    c.wait_for_selector_state("[data-passkey-signin]", "visible")
        .await;
    assert_eq!(c.count("input[name=password]").await, 0);
    assert!(
        c.text("p.lead").await.contains("stronger sign-in"),
        "the page says why"
    );
    c.screenshot_for_docs("step-up", "step-up-passkey").await;
    c.cdp(
        "WebAuthn.setAutomaticPresenceSimulation",
        json!({"authenticatorId": auth, "enabled": true}),
    )
    .await;
    c.click("[data-passkey-signin] [data-passkey-button]").await;
    let back = c.next_redirect().await;
    let code = query_param(&back, "code").expect("code");
    let (status, tokens) = token(
        &issuer,
        &web,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["acr"], "phr");
    assert_eq!(id["amr"][0], "pwd", "{id}");
}
