//! The account page as the person's home, and their signed-in devices: each session with its
//! browser, address and start; signing one out ends it (and its grants), as does "sign out
//! everywhere else", which keeps this one. Both databases.

use crate::common::*;

async fn sign_in_with(ua: &str, issuer: &str) -> Browser {
    let b = Browser {
        http: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(ua)
            .build()
            .unwrap(),
    };
    let (_, page, _) = b
        .get(&format!("{issuer}/account/login?return_to=/account"))
        .await;
    let csrf = hidden(&page, "csrf").unwrap();
    let (status, _, loc) = b
        .post_form(
            &format!("{issuer}/account/login"),
            &[
                ("csrf", &csrf),
                ("return_to", "/account"),
                ("username", "ada"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!((status, loc), (303, Some(format!("{issuer}/account"))));
    b
}

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0";
const SAFARI: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1";
const EDGE: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36 Edg/140.0.0.0";

async fn devices(backend: Backend) {
    let s = Server::start(backend).await;
    let issuer = s.issuer("default");
    s.create_user("default", "ada");
    let laptop = sign_in_with(FIREFOX, &issuer).await;
    let phone = sign_in_with(SAFARI, &issuer).await;
    let work = sign_in_with(EDGE, &issuer).await;

    // The account page: who, and the way into each section.
    let (status, home, _) = laptop.get(&format!("{issuer}/account")).await;
    assert_eq!(status, 200, "{home}");
    assert!(home.contains("Signed in as ada"), "{home}");
    for section in [
        "/account/passkeys",
        "/account/sessions",
        "/account/consents",
        "/account/agents",
    ] {
        assert!(
            home.contains(&format!("{issuer}{section}").replace('/', "&#x2f;")),
            "{section}: {home}"
        );
    }

    let (status, page, _) = laptop.get(&format!("{issuer}/account/sessions")).await;
    assert_eq!(status, 200);
    for device in ["Firefox · Linux", "Safari · iOS", "Edge · Windows"] {
        assert!(page.contains(device), "{device}: {page}");
    }
    assert_eq!(page.matches("this device").count(), 1, "{page}");
    assert!(page.contains("127.0.0.1"));

    // Sign the phone out from the laptop: the phone is signed out, the others are not.
    let phone_sid = page
        .split("data-sid=\"")
        .skip(1)
        .find(|chunk| chunk.contains("Safari · iOS"))
        .and_then(|chunk| chunk.split('"').next())
        .unwrap()
        .to_string();
    let csrf = hidden(&page, "csrf").unwrap();
    let (status, _, _) = laptop
        .post_form(
            &format!("{issuer}/account/sessions/end"),
            &[("csrf", &csrf), ("sid", &phone_sid)],
        )
        .await;
    assert_eq!(status, 303);
    let signed_out = |b: &Browser| {
        let url = format!("{issuer}/account/sessions");
        let b = b.http.clone();
        async move { b.get(url).send().await.unwrap().status() == 303 }
    };
    assert!(signed_out(&phone).await);
    assert!(!signed_out(&work).await);
    // Someone else's session id changes nothing.
    let (_, page, _) = work.get(&format!("{issuer}/account/sessions")).await;
    assert!(!page.contains("Safari · iOS"), "{page}");
    // Everywhere else: the work browser goes, the laptop stays.
    let csrf = hidden(&page, "csrf").unwrap();
    let (_, laptop_page, _) = laptop.get(&format!("{issuer}/account/sessions")).await;
    let laptop_csrf = hidden(&laptop_page, "csrf").unwrap();
    let (status, _, _) = laptop
        .post_form(
            &format!("{issuer}/account/sessions/end-others"),
            &[("csrf", &laptop_csrf)],
        )
        .await;
    assert_eq!(status, 303);
    assert!(signed_out(&work).await);
    assert!(!signed_out(&laptop).await);
    let _ = csrf;
    let (_, page, _) = laptop.get(&format!("{issuer}/account/sessions")).await;
    assert_eq!(page.matches("data-sid=").count(), 1, "{page}");
    assert!(!page.contains("Sign out everywhere else"));
    // Each ending is a recorded logout.
    let (ok, out, e) = s.cli_raw(
        &[
            "audit",
            "export",
            "--tenant",
            "default",
            "--event",
            "session_ended",
        ],
        None,
    );
    assert!(ok, "{e}");
    assert_eq!(out.lines().count(), 2, "{out}");
}

#[tokio::test]
async fn signed_in_devices_can_be_signed_out_sqlite() {
    devices(Backend::Sqlite).await;
}

#[tokio::test]
async fn signed_in_devices_can_be_signed_out_postgres() {
    devices(Backend::Postgres).await;
}

/// Many people behind one address sign in at once (an office, a NAT): each attempt is counted
/// against the address before its password is checked and given back when it succeeds, so
/// their successes never add up to a delay or a lockout for the address.
async fn busy_address(backend: Backend) {
    let s = Server::start(backend).await;
    let issuer = s.issuer("default");
    let names: Vec<String> = (0..6).map(|i| format!("staff{i}")).collect();
    for n in &names {
        s.create_user("default", n);
    }
    for _round in 0..4 {
        let attempts = names.iter().map(|n| {
            let (issuer, n) = (issuer.clone(), n.clone());
            async move {
                let b = Browser::new();
                let (_, page, _) = b.get(&format!("{issuer}/account/login")).await;
                let csrf = hidden(&page, "csrf").unwrap();
                b.post_form(
                    &format!("{issuer}/account/login"),
                    &[
                        ("csrf", &csrf),
                        ("return_to", "/account"),
                        ("username", &n),
                        ("password", PASSWORD),
                    ],
                )
                .await
                .0
            }
        });
        let statuses = futures_join_all(attempts).await;
        assert!(statuses.iter().all(|s| *s == 303), "{statuses:?}");
    }
    let failures: Option<i64> = sqlx::query_scalar(
        "SELECT failures FROM login_throttle WHERE throttle_key = 'ip:127.0.0.1'",
    )
    .fetch_optional(&s.db().await)
    .await
    .unwrap();
    assert!(
        failures.unwrap_or(0) == 0,
        "{failures:?} failures left on the address"
    );
}

async fn futures_join_all<F: std::future::Future<Output = u16>>(
    fs: impl IntoIterator<Item = F>,
) -> Vec<u16> {
    // All at once on this task (the Browser's futures are not Send).
    let fs: Vec<_> = fs.into_iter().map(Box::pin).collect();
    let mut out = vec![0; fs.len()];
    let mut pending: Vec<_> = fs.into_iter().enumerate().collect();
    std::future::poll_fn(|cx| {
        pending.retain_mut(|(i, f)| match f.as_mut().poll(cx) {
            std::task::Poll::Ready(s) => {
                out[*i] = s;
                false
            }
            std::task::Poll::Pending => true,
        });
        if pending.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out
}

#[tokio::test]
async fn successes_from_one_busy_address_do_not_add_up_sqlite() {
    busy_address(Backend::Sqlite).await;
}

#[tokio::test]
async fn successes_from_one_busy_address_do_not_add_up_postgres() {
    busy_address(Backend::Postgres).await;
}
