//! Passkeys over HTTP with a software authenticator (`common::webauthn`): registration from the
//! account page and from the offer after a password sign-in, usernameless sign-in through the
//! authorization-code flow, step-up to the phishing-resistant `acr`, removal, passkey-only
//! accounts, ceremonies finished on another node, and the refusals (no user verification, a
//! replayed answer, a cloned authenticator's counter, another origin, a tampered signature).
//! Both databases. The browser side (autofill, the virtual authenticator) is in `browser::`.

use serde_json::Value;

use crate::common::webauthn::{BE, SoftPasskey, UV};
use crate::common::*;

/// The origin a browser would report for a server (its public URL without a path).
pub(super) fn origin(s: &Server) -> String {
    s.public_base()
}

pub(super) fn audit(s: &Server) -> Vec<Value> {
    let (ok, out, e) = s.cli_raw(&["audit", "export", "--tenant", "default"], None);
    assert!(ok, "{e}");
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn kinds(s: &Server) -> Vec<String> {
    audit(s)
        .iter()
        .map(|e| e["event"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// POST a page form and read the JSON answer (the script's `fetch`).
pub(super) async fn post_json(b: &Browser, url: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = b.http.post(url).form(form).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Sign in to the account pages with the password (the account sign-in page).
pub(super) async fn account_sign_in(b: &Browser, issuer: &str, username: &str) {
    let (status, page, _) = b
        .get(&format!(
            "{issuer}/account/login?return_to=/account/passkeys"
        ))
        .await;
    assert_eq!(status, 200, "{page}");
    let csrf = hidden(&page, "csrf").unwrap();
    let (status, _, loc) = b
        .post_form(
            &format!("{issuer}/account/login"),
            &[
                ("csrf", &csrf),
                ("return_to", "/account/passkeys"),
                ("username", username),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(status, 303);
    assert!(loc.unwrap().ends_with("/account/passkeys"));
}

/// Add a passkey from the account page; returns it and the page after.
pub(super) async fn add_passkey(
    b: &Browser,
    issuer: &str,
    origin: &str,
    name: &str,
    flags: u8,
) -> (SoftPasskey, u16, String) {
    let (status, page, _) = b.get(&format!("{issuer}/account/passkeys")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("data-passkey-register"), "{page}");
    let csrf = hidden(&page, "csrf").unwrap();
    let (status, options) = post_json(
        b,
        &format!("{issuer}/account/passkeys/options"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(status, 200, "{options}");
    assert_eq!(
        options["publicKey"]["authenticatorSelection"]["residentKey"],
        "required"
    );
    assert_eq!(
        options["publicKey"]["authenticatorSelection"]["userVerification"],
        "required"
    );
    let ceremony = options["ceremony"].as_str().unwrap().to_string();
    let (key, answer) = SoftPasskey::register(&options, origin, flags);
    let (status, page, _) = b
        .post_form(
            &format!("{issuer}/account/passkeys"),
            &[
                ("csrf", &csrf),
                ("ceremony", &ceremony),
                ("credential", &answer),
                ("name", name),
            ],
        )
        .await;
    (key, status, page)
}

/// Start a usernameless sign-in on a sign-in page: (csrf, interaction, options).
pub(super) async fn passkey_options(
    b: &Browser,
    issuer: &str,
    page: &str,
) -> (String, String, Value) {
    assert!(page.contains("data-passkey-signin"), "{page}");
    // Autofill: the username field, where there is one, offers passkeys.
    assert!(
        !page.contains("name=\"username\"") || page.contains("autocomplete=\"username webauthn\""),
        "{page}"
    );
    let csrf = hidden(page, "csrf").unwrap();
    let interaction = hidden(page, "interaction").unwrap();
    let (status, options) = post_json(
        b,
        &format!("{issuer}/login/passkey/options"),
        &[("csrf", &csrf), ("interaction", &interaction)],
    )
    .await;
    assert_eq!(status, 200, "{options}");
    assert_eq!(options["publicKey"]["userVerification"], "required");
    assert!(
        options["publicKey"]["allowCredentials"]
            .as_array()
            .is_none_or(|a| a.is_empty()),
        "usernameless: no credentials named: {options}"
    );
    (csrf, interaction, options)
}

pub(super) async fn post_assertion(
    b: &Browser,
    issuer: &str,
    csrf: &str,
    interaction: &str,
    options: &Value,
    answer: &str,
) -> (u16, String, Option<String>) {
    b.post_form(
        &format!("{issuer}/login/passkey"),
        &[
            ("csrf", csrf),
            ("interaction", interaction),
            ("ceremony", options["ceremony"].as_str().unwrap()),
            ("credential", answer),
        ],
    )
    .await
}

/// Through consent (if asked) to the client's redirect; returns the code's token response.
pub(super) async fn finish_flow(
    s: &Server,
    b: &Browser,
    verifier: &str,
    web: &(String, String),
    answer: (u16, String, Option<String>),
) -> Value {
    let issuer = s.issuer("default");
    let (mut status, body, mut loc) = answer;
    if status == 200 && body.contains("name=\"decision\"") {
        (status, _, loc) = b.consent(&issuer, &body, "approve").await;
    }
    assert_eq!(status, 303, "{body}");
    let code = query_param(&loc.unwrap(), "code").expect("code");
    let (status, tokens) = token(
        &issuer,
        web,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

async fn register_then_sign_in(backend: Backend) {
    let s = Server::start_localhost(backend).await;
    let issuer = s.issuer("default");
    assert!(issuer.starts_with("http://localhost:"));
    let kim = s.create_user("default", "kim");
    let web = s.create_web_client("default", &[]);
    // Discovery advertises the phishing-resistant acr.
    let d: Value = reqwest::get(format!("{issuer}/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        d["acr_values_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == "phr"),
        "{d}"
    );

    let b = Browser::new();
    account_sign_in(&b, &issuer, "kim").await;
    let (mut key, status, page) = add_passkey(&b, &issuer, &origin(&s), "Laptop", UV).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Laptop"), "{page}");
    assert!(page.contains("not used yet"), "{page}");

    // A new browser signs in with the passkey, no username typed.
    let b2 = Browser::new();
    let (verifier, challenge) = pkce();
    let (status, page, _) = b2
        .get(&auth_url(
            &issuer,
            &web.0,
            &challenge,
            "openid profile",
            &[],
        ))
        .await;
    assert_eq!(status, 200);
    let (csrf, interaction, options) = passkey_options(&b2, &issuer, &page).await;
    let answer = key.sign_in(&options, &origin(&s));
    let res = post_assertion(&b2, &issuer, &csrf, &interaction, &options, &answer).await;
    let tokens = finish_flow(&s, &b2, &verifier, &web, res).await;
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["sub"], kim.as_str());
    assert_eq!(id["acr"], "phr");
    assert_eq!(id["amr"], serde_json::json!(["hwk", "user"]));
    let at = claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(at["acr"], "phr", "{at}");

    // The list shows the use; the audit trail has the registration and the sign-in.
    let (_, page, _) = b.get(&format!("{issuer}/account/passkeys")).await;
    assert!(page.contains("last used"), "{page}");
    let events = audit(&s);
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "passkey_registered" && e["detail"]["name"] == "Laptop")
    );
    assert!(events.iter().any(|e| e["event"] == "login_succeeded"
        && e["detail"]["method"] == "passkey"
        && e["subject"]["id"] == kim.as_str()));
}

#[tokio::test]
async fn a_passkey_registered_on_the_account_page_signs_in_without_a_username_sqlite() {
    register_then_sign_in(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_passkey_registered_on_the_account_page_signs_in_without_a_username_postgres() {
    register_then_sign_in(Backend::Postgres).await;
}

async fn refusals(backend: Backend) {
    let s = Server::start_localhost(backend).await;
    let issuer = s.issuer("default");
    s.create_user("default", "lee");
    let web = s.create_web_client("default", &[]);
    let b = Browser::new();
    account_sign_in(&b, &issuer, "lee").await;
    // Registration without user verification is refused.
    let (_, status, page) = add_passkey(&b, &issuer, &origin(&s), "No UV", 0).await;
    assert_eq!(status, 409, "{page}");
    assert!(page.contains("could not be used"), "{page}");
    assert!(page.contains("You have no passkeys yet"), "{page}");
    let (mut key, status, _) = add_passkey(&b, &issuer, &origin(&s), "Phone", UV | BE).await;
    assert_eq!(status, 200);

    let sign_in_page = || async {
        let b2 = Browser::new();
        let (_, challenge) = pkce();
        let (_, page, _) = b2
            .get(&auth_url(&issuer, &web.0, &challenge, "openid", &[]))
            .await;
        let (csrf, interaction, options) = passkey_options(&b2, &issuer, &page).await;
        (b2, csrf, interaction, options)
    };
    let refused = |r: &(u16, String, Option<String>)| r.0 == 401 && r.2.is_none();

    // No user verification at sign-in.
    let (b2, csrf, i, o) = sign_in_page().await;
    let answer = key.assert_with(&o, &origin(&s), 0x01, 10);
    let r = post_assertion(&b2, &issuer, &csrf, &i, &o, &answer).await;
    assert!(refused(&r), "{r:?}");
    assert!(r.1.contains("could not be used"), "{}", r.1);
    // Another origin (a phishing site relaying the challenge).
    let (b2, csrf, i, o) = sign_in_page().await;
    let answer = key.assert_with(&o, "http://localhost.evil.example", 0x05, 11);
    assert!(refused(
        &post_assertion(&b2, &issuer, &csrf, &i, &o, &answer).await
    ));
    // A tampered signature.
    let (b2, csrf, i, o) = sign_in_page().await;
    let mut answer: Value = serde_json::from_str(&key.sign_in(&o, &origin(&s))).unwrap();
    answer["response"]["clientDataJSON"] = Value::from(base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        format!(
            r#"{{"type":"webauthn.get","challenge":"{}","origin":"{}","crossOrigin":false,"x":1}}"#,
            o["publicKey"]["challenge"].as_str().unwrap(),
            origin(&s)
        ),
    ));
    assert!(refused(
        &post_assertion(&b2, &issuer, &csrf, &i, &o, &answer.to_string()).await
    ));
    // A good answer works once; the same ceremony answered again is refused.
    let (b2, csrf, i, o) = sign_in_page().await;
    let answer = key.sign_in(&o, &origin(&s));
    let ok = post_assertion(&b2, &issuer, &csrf, &i, &o, &answer).await;
    assert_eq!(ok.0, 200, "consent page expected: {}", ok.1);
    let again = post_assertion(&b2, &issuer, &csrf, &i, &o, &answer).await;
    assert!(refused(&again), "{again:?}");
    assert!(again.1.contains("expired"), "{}", again.1);
    // A counter that goes back (a cloned authenticator) is refused.
    let (b2, csrf, i, o) = sign_in_page().await;
    let answer = key.assert_with(&o, &origin(&s), 0x05 | BE, 1);
    assert!(refused(
        &post_assertion(&b2, &issuer, &csrf, &i, &o, &answer).await
    ));
    // An answer naming a credential nobody registered.
    let (b2, csrf, i, o) = sign_in_page().await;
    let mut stranger: Value = serde_json::from_str(&key.sign_in(&o, &origin(&s))).unwrap();
    stranger["id"] = "AAAA".into();
    stranger["rawId"] = "AAAA".into();
    let r = post_assertion(&b2, &issuer, &csrf, &i, &o, &stranger.to_string()).await;
    assert!(refused(&r));
    assert!(r.1.contains("not registered"), "{}", r.1);
    // Garbage is a refusal, never a server error; options need the page's CSRF token.
    let (b2, csrf, i, o) = sign_in_page().await;
    assert!(refused(
        &post_assertion(&b2, &issuer, &csrf, &i, &o, "{not json").await
    ));
    let (status, _) = post_json(
        &b2,
        &format!("{issuer}/login/passkey/options"),
        &[("csrf", "wrong"), ("interaction", &i)],
    )
    .await;
    assert_eq!(status, 400);
    let failures = audit(&s)
        .into_iter()
        .filter(|e| e["event"] == "login_failed" && e["detail"]["method"] == "passkey")
        .count();
    assert!(failures >= 6, "{failures}");
}

#[tokio::test]
async fn passkey_answers_that_do_not_verify_are_refused_and_audited_sqlite() {
    refusals(Backend::Sqlite).await;
}

#[tokio::test]
async fn passkey_answers_that_do_not_verify_are_refused_and_audited_postgres() {
    refusals(Backend::Postgres).await;
}

#[tokio::test]
async fn ceremonies_started_on_one_node_finish_on_another() {
    let a = Server::start_localhost(Backend::Postgres).await;
    let b_node = a.second_node_same_public_url(&[]).await;
    let issuer_a = a.issuer("default");
    // Node B by name (same host, so the browser's cookies go with it), behind A's public URL.
    let issuer_b = format!("{}/t/default", b_node.localhost_base());
    a.create_user("default", "ana");
    let web = a.create_web_client("default", &[]);
    // Registration: options from A, answer to B.
    let br = Browser::new();
    account_sign_in(&br, &issuer_a, "ana").await;
    let (_, page, _) = br.get(&format!("{issuer_a}/account/passkeys")).await;
    let csrf = hidden(&page, "csrf").unwrap();
    let (_, options) = post_json(
        &br,
        &format!("{issuer_a}/account/passkeys/options"),
        &[("csrf", &csrf)],
    )
    .await;
    let (mut key, answer) = SoftPasskey::register(&options, &a.public_base(), UV);
    let (status, page, _) = br
        .post_form(
            &format!("{issuer_b}/account/passkeys"),
            &[
                ("csrf", &csrf),
                ("ceremony", options["ceremony"].as_str().unwrap()),
                ("credential", &answer),
                ("name", "Key"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Key"));
    // Sign-in: options from B, answer to A.
    let bs = Browser::new();
    let (verifier, challenge) = pkce();
    let (_, page, _) = bs
        .get(&auth_url(&issuer_a, &web.0, &challenge, "openid", &[]))
        .await;
    let csrf = hidden(&page, "csrf").unwrap();
    let interaction = hidden(&page, "interaction").unwrap();
    let (status, options) = post_json(
        &bs,
        &format!("{issuer_b}/login/passkey/options"),
        &[("csrf", &csrf), ("interaction", &interaction)],
    )
    .await;
    assert_eq!(status, 200, "{options}");
    let answer = key.sign_in(&options, &a.public_base());
    let res = post_assertion(&bs, &issuer_a, &csrf, &interaction, &options, &answer).await;
    let tokens = finish_flow(&a, &bs, &verifier, &web, res).await;
    assert_eq!(claims(tokens["id_token"].as_str().unwrap())["acr"], "phr");
}

async fn step_up_offer_and_removal(backend: Backend) {
    let s = Server::start_localhost(backend).await;
    let issuer = s.issuer("default");
    s.create_user("default", "max");
    let web = s.create_web_client("default", &[]);
    let b = Browser::new();
    // A password sign-in in the flow is followed by the offer of a passkey; adding one there
    // goes on with the request.
    let (verifier, challenge) = pkce();
    let (_, page, _) = b
        .get(&auth_url(&issuer, &web.0, &challenge, "openid", &[]))
        .await;
    let (status, offer, _) = b.login(&issuer, &page, "max", PASSWORD).await;
    assert_eq!(status, 200);
    assert!(offer.contains("data-passkey-register"), "{offer}");
    let csrf = hidden(&offer, "csrf").unwrap();
    let interaction = hidden(&offer, "interaction").unwrap();
    let (_, options) = post_json(
        &b,
        &format!("{issuer}/account/passkeys/options"),
        &[("csrf", &csrf), ("interaction", &interaction)],
    )
    .await;
    let (mut key, answer) = SoftPasskey::register(&options, &origin(&s), UV);
    let res = b
        .post_form(
            &format!("{issuer}/login/passkey/register"),
            &[
                ("csrf", &csrf),
                ("interaction", &interaction),
                ("ceremony", options["ceremony"].as_str().unwrap()),
                ("credential", &answer),
                ("name", "Offered"),
            ],
        )
        .await;
    let tokens = finish_flow(&s, &b, &verifier, &web, res).await;
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["amr"], serde_json::json!(["pwd"]));
    assert_eq!(id["acr"], "urn:mandate:acr:pwd");

    // Step-up: the client asks for `phr`; only the passkey is offered, and it joins the
    // session (amr pwd + hwk + user).
    let (verifier, challenge) = pkce();
    let (status, page, _) = b
        .get(&auth_url(
            &issuer,
            &web.0,
            &challenge,
            "openid",
            &[("acr_values", "phr")],
        ))
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(!page.contains("name=\"password\""), "{page}");
    // The page says why the person signed in already is asked again.
    assert!(
        page.contains("asks you to confirm it is you with a stronger sign-in"),
        "{page}"
    );
    let (csrf, interaction, options) = passkey_options(&b, &issuer, &page).await;
    let answer = key.sign_in(&options, &origin(&s));
    let res = post_assertion(&b, &issuer, &csrf, &interaction, &options, &answer).await;
    let tokens = finish_flow(&s, &b, &verifier, &web, res).await;
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["acr"], "phr");
    assert_eq!(id["amr"], serde_json::json!(["pwd", "hwk", "user"]));
    assert!(kinds(&s).contains(&"session_factor_added".to_string()));

    // Passkey-only: the password goes; the last passkey cannot go; the password no longer
    // signs in.
    let (_, page, _) = b.get(&format!("{issuer}/account/passkeys")).await;
    let csrf = hidden(&page, "csrf").unwrap();
    let (status, _, _) = b
        .post_form(
            &format!("{issuer}/account/password/remove"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(status, 303);
    let (status, page, _) = b
        .post_form(
            &format!("{issuer}/account/passkeys/remove"),
            &[("csrf", &csrf), ("id", &base64_id(&key))],
        )
        .await;
    assert_eq!(status, 409, "{page}");
    assert!(page.contains("only way to sign in"), "{page}");
    let b3 = Browser::new();
    let (_, challenge) = pkce();
    let (_, page, _) = b3
        .get(&auth_url(&issuer, &web.0, &challenge, "openid", &[]))
        .await;
    let (status, _, _) = b3.login(&issuer, &page, "max", PASSWORD).await;
    assert_eq!(status, 401);
    // With a second passkey, the first can go (recorded).
    let (_, status, _) = add_passkey(&b, &issuer, &origin(&s), "Second", UV).await;
    assert_eq!(status, 200);
    let (status, _, _) = b
        .post_form(
            &format!("{issuer}/account/passkeys/remove"),
            &[("csrf", &csrf), ("id", &base64_id(&key))],
        )
        .await;
    assert_eq!(status, 303);
    let (_, page, _) = b.get(&format!("{issuer}/account/passkeys")).await;
    assert!(
        !page.contains("Offered") && page.contains("Second"),
        "{page}"
    );
    let k = kinds(&s);
    assert!(k.contains(&"passkey_removed".to_string()));
    assert!(k.contains(&"password_changed".to_string()));
    // The removed passkey no longer signs in.
    let b4 = Browser::new();
    let (_, challenge) = pkce();
    let (_, page, _) = b4
        .get(&auth_url(&issuer, &web.0, &challenge, "openid", &[]))
        .await;
    let (csrf, interaction, options) = passkey_options(&b4, &issuer, &page).await;
    let answer = key.sign_in(&options, &origin(&s));
    let r = post_assertion(&b4, &issuer, &csrf, &interaction, &options, &answer).await;
    assert_eq!(r.0, 401);
}

fn base64_id(key: &SoftPasskey) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &key.id)
}

#[tokio::test]
async fn passkey_offer_step_up_and_passkey_only_accounts_sqlite() {
    step_up_offer_and_removal(Backend::Sqlite).await;
}

#[tokio::test]
async fn passkey_offer_step_up_and_passkey_only_accounts_postgres() {
    step_up_offer_and_removal(Backend::Postgres).await;
}

#[tokio::test]
async fn not_now_to_the_offer_goes_on_and_is_remembered() {
    let s = Server::start_localhost(Backend::Sqlite).await;
    let issuer = s.issuer("default");
    s.create_user("default", "ola");
    let web = s.create_web_client("default", &[]);
    let b = Browser::new();
    let (_, challenge) = pkce();
    let url = auth_url(&issuer, &web.0, &challenge, "openid", &[]);
    let (_, page, _) = b.get(&url).await;
    let (_, offer, _) = b.login(&issuer, &page, "ola", PASSWORD).await;
    let csrf = hidden(&offer, "csrf").unwrap();
    let interaction = hidden(&offer, "interaction").unwrap();
    // Another browser cannot continue this interaction (its session did not sign in).
    let other = Browser::new();
    let (_, p, _) = other.get(&url).await;
    let other_csrf = hidden(&p, "csrf").unwrap();
    let (status, _, _) = other
        .post_form(
            &format!("{issuer}/login/continue"),
            &[("csrf", &other_csrf), ("interaction", &interaction)],
        )
        .await;
    assert_eq!(status, 400);
    let (status, page, _) = b
        .post_form(
            &format!("{issuer}/login/continue"),
            &[
                ("csrf", &csrf),
                ("interaction", &interaction),
                ("skip_passkey", "1"),
            ],
        )
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("name=\"decision\""), "{page}");
    // Next sign-in: no offer.
    let b_again = &b;
    let (_, challenge) = pkce();
    let (_, page, _) = b_again
        .get(&auth_url(
            &issuer,
            &web.0,
            &challenge,
            "openid",
            &[("prompt", "login")],
        ))
        .await;
    let (status, page, _) = b_again.login(&issuer, &page, "ola", PASSWORD).await;
    assert_eq!(status, 200);
    assert!(page.contains("name=\"decision\""), "{page}");
}

#[tokio::test]
async fn no_passkeys_on_an_ip_address() {
    let s = Server::start(Backend::Sqlite).await;
    let issuer = s.issuer("default");
    s.create_user("default", "ip");
    let web = s.create_web_client("default", &[]);
    let b = Browser::new();
    let (_, challenge) = pkce();
    let (_, page, _) = b
        .get(&auth_url(&issuer, &web.0, &challenge, "openid", &[]))
        .await;
    assert!(!page.contains("data-passkey-signin"), "{page}");
    let d: Value = reqwest::get(format!("{issuer}/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // No `phr` (TOTP's `mfa` stays: it needs no domain name).
    assert_eq!(
        d["acr_values_supported"],
        serde_json::json!(["urn:mandate:acr:pwd", "urn:mandate:acr:mfa"])
    );
    // The options endpoint says so in JSON.
    let csrf = hidden(&page, "csrf").unwrap();
    let interaction = hidden(&page, "interaction").unwrap();
    let (status, body) = post_json(
        &b,
        &format!("{issuer}/login/passkey/options"),
        &[("csrf", &csrf), ("interaction", &interaction)],
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"], "passkeys_unavailable");
}

#[tokio::test]
async fn changing_sign_in_methods_needs_a_recent_sign_in() {
    let s = Server::start_at(
        Backend::Sqlite,
        PublicUrl::Localhost,
        &[("MANDATE_RECENT_SIGN_IN", "1")],
    )
    .await;
    let issuer = s.issuer("default");
    s.create_user("default", "rio");
    let b = Browser::new();
    account_sign_in(&b, &issuer, "rio").await;
    let (key, status, _) = add_passkey(&b, &issuer, &origin(&s), "Desk", UV).await;
    assert_eq!(status, 200);
    // Later, the session alone (a stolen cookie, say) cannot change how rio signs in.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, page, _) = b.get(&format!("{issuer}/account/passkeys")).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Desk") && page.contains("Confirm it is you"),
        "{page}"
    );
    assert!(!page.contains("data-passkey-register"), "{page}");
    // The browser's CSRF token, from any form (this page shows none).
    let (_, form_page, _) = b
        .get(&format!(
            "{issuer}/account/login?return_to=/account/passkeys&again=1"
        ))
        .await;
    let csrf = hidden(&form_page, "csrf").unwrap();
    let (status, body) = post_json(
        &b,
        &format!("{issuer}/account/passkeys/options"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("login_required"))
    );
    for (path, form) in [
        (
            "/account/passkeys/remove",
            vec![("csrf", csrf.as_str()), ("id", "x")],
        ),
        ("/account/password/remove", vec![("csrf", csrf.as_str())]),
    ] {
        let (status, _, loc) = b.post_form(&format!("{issuer}{path}"), &form).await;
        assert_eq!(status, 303, "{path}");
        assert!(
            loc.unwrap()
                .ends_with("/account/login?return_to=/account/passkeys&again=1")
        );
    }
    assert!(!kinds(&s).contains(&"password_changed".to_string()));
    // Confirming (the form shows even though rio is signed in) makes the changes possible.
    let (status, page, _) = b
        .get(&format!(
            "{issuer}/account/login?return_to=/account/passkeys&again=1"
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        hidden(&page, "username").as_deref(),
        Some("rio"),
        "filled in"
    );
    let (status, _, _) = b
        .post_form(
            &format!("{issuer}/account/login"),
            &[
                ("csrf", &hidden(&page, "csrf").unwrap()),
                ("return_to", "/account/passkeys"),
                ("username", "rio"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let (_, page, _) = b.get(&format!("{issuer}/account/passkeys")).await;
    assert!(page.contains("data-passkey-register"), "{page}");
    let csrf = hidden(&page, "csrf").unwrap();
    let (status, _, loc) = b
        .post_form(
            &format!("{issuer}/account/passkeys/remove"),
            &[("csrf", &csrf), ("id", &base64_id(&key))],
        )
        .await;
    assert_eq!(
        (status, loc.unwrap().ends_with("/account/passkeys")),
        (303, true)
    );
}

#[tokio::test]
async fn passkey_ceremonies_in_flight_are_bounded_per_address() {
    let s = Server::start_localhost(Backend::Sqlite).await;
    let issuer = s.issuer("default");
    let b = Browser::new();
    let (_, page, _) = b
        .get(&format!(
            "{issuer}/account/login?return_to=/account/passkeys"
        ))
        .await;
    let csrf = hidden(&page, "csrf").unwrap();
    let url = format!("{issuer}/login/passkey/options");
    let form = [("csrf", csrf.as_str()), ("return_to", "/account/passkeys")];
    let start = || post_json(&b, &url, &form);
    // Each request keeps a ceremony in the store; one address cannot keep more than 30.
    for _ in 0..30 {
        assert_eq!(start().await.0, 200);
    }
    let (status, body) = start().await;
    assert_eq!(
        (status, body["error"].as_str()),
        (429, Some("slow_down")),
        "{body}"
    );
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webauthn_ceremonies")
        .fetch_one(&s.db().await)
        .await
        .unwrap();
    assert_eq!(n, 30);
}
