//! What Argon2id with Mandate's parameters (m = 19 MiB, t = 2, p = 1) allows on this machine:
//! password checks per second through the server's own path (the process-wide bound, one hash
//! per core, pooled working memory), with nothing else running. The ceiling that a login burst
//! is compared with (docs/benchmarks.md).
//!
//! ```sh
//! cargo bench -p mandate-core --bench argon2            # BENCH_SECS=10
//! ```

use std::time::{Duration, Instant};

use mandate_core::crypto::secret::password;

fn main() {
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let cores = password::limits().concurrency;
    let (checks, took) = rt.block_on(async move {
        let phc = password::hash_bounded("the password".into())
            .await
            .expect("hash");
        // Warm-up: every core's buffer allocated once.
        let warm: Vec<_> = (0..cores)
            .map(|_| tokio::spawn(password::verify_bounded("x".into(), Some(phc.clone()))))
            .collect();
        for w in warm {
            let _ = w.await;
        }
        let start = Instant::now();
        let end = start + Duration::from_secs(secs);
        let workers: Vec<_> = (0..cores)
            .map(|_| {
                let phc = phc.clone();
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while Instant::now() < end {
                        let ok = password::verify_bounded("wrong".into(), Some(phc.clone()))
                            .await
                            .expect("within the bound");
                        assert!(!ok);
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let mut checks = 0;
        for w in workers {
            checks += w.await.expect("worker");
        }
        (checks, start.elapsed())
    });
    println!(
        "argon2id m=19MiB t=2 p=1: {:.1} checks/s on {cores} cores ({checks} in {:.1} s)",
        checks as f64 / took.as_secs_f64(),
        took.as_secs_f64()
    );
}
