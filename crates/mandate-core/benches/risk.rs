//! What the risk engine costs per sign-in attempt, next to one password verification (Argon2id,
//! m = 19 MiB, t = 2, p = 1) on one core: every signal of a sign-in with a full history (50
//! earlier sign-ins, 100 recent failures from the address), the GeoIP lookup, the common-password
//! check, the device digest, and the policy's decision; and an agent's token request with 500
//! earlier requests. The store reads the engine needs are not included (they are a few indexed
//! queries, measured with the server in docs/benchmarks.md). The aim: under 5% of a password
//! check (docs/benchmarks.md).
//!
//! ```sh
//! cargo bench -p mandate-core --bench risk            # BENCH_SECS=3 per measurement
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use mandate_core::crypto::secret::{keyed_digest, password};
use mandate_core::domain::password_policy::is_common;
use mandate_core::geo::{GeoPoint, Locator, MaxMind, mmdb};
use mandate_core::risk::RiskPolicy;
use mandate_core::risk::engine::{
    AgentFacts, PastRequest, PastSignIn, SignInFacts, agent_signals, decide, sign_in_signals,
};

/// Run `f` for about `secs` seconds; nanoseconds per call.
fn per_call(secs: f64, mut f: impl FnMut()) -> f64 {
    // Warm-up.
    for _ in 0..100 {
        f();
    }
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut n = 0u64;
    while Instant::now() < end {
        for _ in 0..100 {
            f();
        }
        n += 100;
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

fn main() {
    let secs: f64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3.0);
    let policy = RiskPolicy::default();
    // A GeoIP database of 1,000 networks.
    let nets: Vec<(mmdb::Net, GeoPoint)> = (0..1000u32)
        .map(|i| {
            let net = format!("10.{}.{}.0/24", i / 256, i % 256);
            (
                net.parse().unwrap(),
                GeoPoint {
                    lat: (i % 180) as f64 - 90.0,
                    lon: (i % 360) as f64 - 180.0,
                },
            )
        })
        .collect();
    let geo = MaxMind::from_bytes(mmdb::write(&nets).unwrap()).unwrap();
    let now = 1_800_000_000;
    let history: Vec<PastSignIn> = (0..50)
        .map(|i| PastSignIn {
            at: now - 3600 * (i + 1),
            place: Some(GeoPoint::from_coarse(525, 134)),
            device: Some(vec![i as u8; 32]),
        })
        .collect();
    let secret = [7u8; 32];

    let sign_in_ns = per_call(secs, || {
        let place = geo.locate(black_box("10.1.77.9".parse().unwrap()));
        let device = keyed_digest(&secret, "device:Zm9vYmFyYmF6cXV4");
        let facts = SignInFacts {
            now,
            account_failures: 3,
            address_failures: 100,
            address_accounts: 7,
            history: Some(&history),
            place,
            device: Some(&device),
            breached_password: is_common(black_box("correct horse battery staple")),
        };
        black_box(decide(&policy, sign_in_signals(&policy, &facts)));
    });

    let requests: Vec<PastRequest> = (0..500)
        .map(|i| PastRequest {
            at: now - i * 30,
            mandate_id: format!("m{}", i % 3),
            resources: vec![
                "https://mail.example".into(),
                "https://files.example".into(),
            ],
            allowed: true,
            approved: false,
        })
        .collect();
    let resources = vec!["https://mail.example".to_string()];
    let agent_ns = per_call(secs, || {
        let facts = AgentFacts {
            now,
            mandate_id: "m1",
            resources: &resources,
            history: &requests,
        };
        black_box(decide(&policy, agent_signals(&policy, &facts)));
    });

    // One password verification on one core, as a sign-in pays it.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let phc = rt
        .block_on(password::hash_bounded("the password".into()))
        .expect("hash");
    let rounds = 20;
    let start = Instant::now();
    for _ in 0..rounds {
        let ok = rt
            .block_on(password::verify_bounded("wrong".into(), Some(phc.clone())))
            .expect("within the bound");
        assert!(!ok);
    }
    let argon_ns = start.elapsed().as_nanos() as f64 / rounds as f64;

    println!(
        "risk engine, sign-in (50 sign-ins, 100 failures, GeoIP, common list, device digest): {:.1} µs",
        sign_in_ns / 1000.0
    );
    println!(
        "risk engine, agent token request (500 earlier requests): {:.1} µs",
        agent_ns / 1000.0
    );
    println!(
        "one Argon2id verification (m=19MiB t=2 p=1): {:.1} ms",
        argon_ns / 1e6
    );
    println!(
        "sign-in engine / password check: {:.3}%",
        100.0 * sign_in_ns / argon_ns
    );
}
