//! The DevTools virtual authenticator on the issuer's origin: the harness the passkey tests
//! stand on.

use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn the_virtual_authenticator_works_on_the_issuer_origin() {
    let (s, c) = super::start(
        Backend::Sqlite,
        "the_virtual_authenticator_works_on_the_issuer_origin",
    )
    .await;
    let issuer = s.issuer("default");
    // Any page of the issuer's origin without a ceremony of its own (the sign-in page starts
    // passkey autofill, which would hold the authenticator): discovery.
    assert_eq!(
        c.goto(&format!("{issuer}/.well-known/openid-configuration"))
            .await,
        Some(200)
    );
    assert!(c.url().await.starts_with("http://localhost:"));
    assert_eq!(c.evaluate("window.isSecureContext").await, true);
    assert_eq!(
        c.evaluate("typeof window.PublicKeyCredential").await,
        "function"
    );

    let id = c.add_virtual_authenticator(true).await;
    assert!(!id.is_empty());
    assert!(c.authenticator_credentials(&id).await.is_empty());
    assert_eq!(
        c.evaluate("PublicKeyCredential.isConditionalMediationAvailable()")
            .await,
        true
    );
    assert_eq!(
        c.evaluate("PublicKeyCredential.isUserVerifyingPlatformAuthenticatorAvailable()")
            .await,
        true
    );

    // A credential made in the page lands in the authenticator: WebAuthn works on this origin
    // (the relying party is the host, `localhost`).
    c.cdp_subscribe("WebAuthn.credentialAdded").await;
    let made = c
        .evaluate(
            "(async () => {
                const cred = await navigator.credentials.create({ publicKey: {
                    rp: { name: 'Mandate test' },
                    user: { id: new Uint8Array([1, 2, 3]), name: 'alice', displayName: 'Alice' },
                    challenge: crypto.getRandomValues(new Uint8Array(32)),
                    pubKeyCredParams: [{ type: 'public-key', alg: -7 }],
                    authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
                }});
                return { type: cred.type, attachment: cred.authenticatorAttachment };
            })()",
        )
        .await;
    assert_eq!(
        made,
        json!({ "type": "public-key", "attachment": "platform" })
    );
    let creds = c.authenticator_credentials(&id).await;
    assert_eq!(creds.len(), 1, "{creds:?}");
    assert_eq!(creds[0]["rpId"], "localhost");
    assert_eq!(creds[0]["isResidentCredential"], true);
    assert_eq!(c.cdp_events("WebAuthn.credentialAdded").await.len(), 1);
    c.cdp(
        "WebAuthn.removeCredential",
        json!({ "authenticatorId": id, "credentialId": creds[0]["credentialId"] }),
    )
    .await;
    assert!(c.authenticator_credentials(&id).await.is_empty());
    assert!(c.errors().await.is_empty(), "{:?}", c.errors().await);
}
