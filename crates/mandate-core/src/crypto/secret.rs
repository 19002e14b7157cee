//! Random values, one-way digests of secrets and constant-time comparison.
//!
//! Codes, refresh tokens, session ids and client secrets are high-entropy random strings, so a
//! fast keyed digest (HMAC-SHA-256) is the right way to store them: a password hash would cap
//! the token endpoint at a few dozen requests per second for no gain in security.

use aws_lc_rs::{hmac, rand::SecureRandom};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use subtle::ConstantTimeEq;

/// `n` random bytes from the system CSPRNG.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut buf)
        .expect("system random source failed");
    buf
}

/// A random URL-safe string carrying `bytes * 8` bits of entropy.
pub fn random_token(bytes: usize) -> String {
    URL_SAFE_NO_PAD.encode(random_bytes(bytes))
}

/// Digest of a high-entropy secret under a key, used as its stored form and lookup key.
pub fn keyed_digest(key: &[u8], secret: &str) -> Vec<u8> {
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::sign(&k, secret.as_bytes()).as_ref().to_vec()
}

/// Unkeyed SHA-256 (for values that are only lookup handles, e.g. assertion `jti`s) and
/// base64url: the token crate's, so there is one of each.
pub use mandate_token::b64::{b64, b64_decode, sha256};

/// Compare two byte strings in time independent of where they differ.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Password hashing with Argon2id (OWASP parameters: m=19 MiB, t=2, p=1).
///
/// Every hash and check in the process goes through one bound: at most
/// [`HashLimits::concurrency`] run at once (by default one per core), a short queue waits for
/// them, and anything beyond that is refused with [`Busy`] at once, so a burst of logins can
/// neither starve the blocking pool nor grow memory without limit. The Argon2 working memory
/// (19 MiB per running hash) is kept in a pool and reused, so memory stays flat after a burst.
pub mod password {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex, OnceLock};
    use std::time::Duration;

    use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
    use argon2::{Algorithm, Argon2, Block, Params, Version};
    use tokio::sync::Semaphore;

    /// m_cost of new hashes, in KiB (19 MiB).
    const M_COST: u32 = 19 * 1024;
    /// Largest m_cost accepted in a stored hash (64 MiB): a stored hash cannot make one check
    /// take unbounded memory.
    const MAX_M_COST: u32 = 64 * 1024;
    const MAX_T_COST: u32 = 10;
    /// The longest a request waits in the queue before it is refused.
    const MAX_QUEUE_WAIT: Duration = Duration::from_secs(10);

    /// The hashing capacity is in use and the queue is full: try again after `retry_after`
    /// seconds (HTTP 429 with `Retry-After`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
    #[error("password hashing is busy; retry after {retry_after} s")]
    pub struct Busy {
        /// Seconds to wait before retrying.
        pub retry_after: u64,
    }

    /// How much hashing may run at once and how many may wait for it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct HashLimits {
        /// Hashes running at once. Default: the number of cores.
        pub concurrency: usize,
        /// Requests waiting beyond those. Default: 4 per running hash.
        pub queue: usize,
    }

    impl Default for HashLimits {
        fn default() -> Self {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            Self {
                concurrency: cores,
                queue: 4 * cores,
            }
        }
    }

    struct Limiter {
        limits: HashLimits,
        permits: Arc<Semaphore>,
        /// Admitted and not yet finished (running or queued).
        admitted: AtomicUsize,
        /// Argon2 working memory, one buffer per hash that ran at once (at most `concurrency`).
        memory: Mutex<Vec<Vec<Block>>>,
    }

    static LIMITER: OnceLock<Limiter> = OnceLock::new();

    /// Set the limits of this process; false when hashing already started with other limits.
    /// Call once at startup, before the first hash.
    pub fn configure(limits: HashLimits) -> bool {
        let limits = HashLimits {
            concurrency: limits.concurrency.max(1),
            queue: limits.queue,
        };
        limiter_with(limits).limits == limits
    }

    /// The limits in force.
    pub fn limits() -> HashLimits {
        limiter().limits
    }

    fn limiter_with(limits: HashLimits) -> &'static Limiter {
        LIMITER.get_or_init(|| Limiter {
            limits,
            permits: Arc::new(Semaphore::new(limits.concurrency)),
            admitted: AtomicUsize::new(0),
            memory: Mutex::new(Vec::new()),
        })
    }

    /// The limiter, created with the default limits if [`configure`] was not called.
    fn limiter() -> &'static Limiter {
        match LIMITER.get() {
            Some(l) => l,
            None => limiter_with(HashLimits::default()),
        }
    }

    /// A place among the hashes running or queued, held until dropped. Taken before any other
    /// work of a request that will hash, so that a request refused for lack of capacity costs
    /// nothing else (no store reads or writes).
    pub struct Ticket(&'static Limiter);

    impl Drop for Ticket {
        fn drop(&mut self) {
            self.0.admitted.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// A place for one hash or check, or [`Busy`] at once when the running hashes and the
    /// queue are full.
    pub fn admit() -> Result<Ticket, Busy> {
        let l = limiter();
        let before = l.admitted.fetch_add(1, Ordering::AcqRel);
        let ticket = Ticket(l);
        if before >= l.limits.concurrency + l.limits.queue {
            return Err(Busy { retry_after: 1 });
        }
        Ok(ticket)
    }

    impl Ticket {
        /// Run `f` with a reusable Argon2 buffer on a blocking thread once a hash may run;
        /// [`Busy`] when none could start within the queue wait.
        async fn run<T: Send + 'static>(
            self,
            f: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
        ) -> Result<T, Busy> {
            let l = self.0;
            let permit = tokio::time::timeout(MAX_QUEUE_WAIT, l.permits.clone().acquire_owned())
                .await
                .map_err(|_| Busy { retry_after: 1 })?
                .map_err(|_| Busy { retry_after: 1 })?;
            // The permit and the ticket move into the blocking task: a caller that goes away
            // (client disconnected) does not free a slot while its hash still runs.
            tokio::task::spawn_blocking(move || {
                let mut mem = l
                    .memory
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .pop()
                    .unwrap_or_default();
                let out = f(&mut mem);
                l.memory.lock().unwrap_or_else(|e| e.into_inner()).push(mem);
                drop(permit);
                drop(self);
                out
            })
            .await
            .map_err(|_| Busy { retry_after: 1 })
        }

        /// Hash a password within the bound.
        pub async fn hash(self, password: String) -> Result<String, Busy> {
            self.run(move |mem| hash_with(&password, mem)).await
        }

        /// Check a password within the bound. With no stored hash (unknown user, or one
        /// without a password) a dummy hash is checked and the answer is false, so that the
        /// work and time are the same either way.
        pub async fn verify(self, password: String, phc: Option<String>) -> Result<bool, Busy> {
            self.run(move |mem| match phc {
                Some(phc) => verify_with(&password, &phc, mem),
                None => {
                    let dummy = dummy_hash(mem);
                    let _ = verify_with(&password, dummy, mem);
                    false
                }
            })
            .await
        }
    }

    fn new_params() -> Params {
        Params::new(M_COST, 2, 1, Some(32)).expect("valid argon2 params")
    }

    fn grow(mem: &mut Vec<Block>, blocks: usize) -> &mut [Block] {
        if mem.len() < blocks {
            mem.resize(blocks, Block::default());
        }
        &mut mem[..blocks]
    }

    /// Hash a password to a PHC string using `mem` as working memory.
    fn hash_with(password: &str, mem: &mut Vec<Block>) -> String {
        let params = new_params();
        let salt_bytes = super::random_bytes(16);
        let salt = SaltString::encode_b64(&salt_bytes).expect("salt");
        let mut out = [0u8; 32];
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
            .hash_password_into_with_memory(
                password.as_bytes(),
                &salt_bytes,
                &mut out,
                grow(mem, params.block_count()),
            )
            .expect("argon2 hashing");
        PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).expect("params"),
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&out).expect("output")),
        }
        .to_string()
    }

    /// Check a password against a PHC string using `mem`; false on any malformed hash or
    /// parameters beyond the accepted maximum.
    fn verify_with(password: &str, phc: &str, mem: &mut Vec<Block>) -> bool {
        let Ok(h) = PasswordHash::new(phc) else {
            return false;
        };
        let Ok(alg) = Algorithm::try_from(h.algorithm) else {
            return false;
        };
        let version = match h.version.map(Version::try_from) {
            None => Version::V0x13,
            Some(Ok(v)) => v,
            Some(Err(_)) => return false,
        };
        let (Ok(params), Some(salt), Some(expected)) = (Params::try_from(&h), h.salt, h.hash)
        else {
            return false;
        };
        if params.m_cost() > MAX_M_COST || params.t_cost() > MAX_T_COST {
            return false;
        }
        let mut salt_buf = [0u8; 64];
        let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
            return false;
        };
        let mut out = vec![0u8; expected.len()];
        let blocks = params.block_count();
        Argon2::new(alg, version, params)
            .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, grow(mem, blocks))
            .is_ok()
            && super::ct_eq(&out, expected.as_bytes())
    }

    /// The hash checked when the account does not exist, so that failures take similar time
    /// either way.
    fn dummy_hash(mem: &mut Vec<Block>) -> &'static str {
        static DUMMY: OnceLock<String> = OnceLock::new();
        DUMMY.get_or_init(|| hash_with(&super::random_token(16), mem))
    }

    /// Hash a password to a PHC string (synchronous, unbounded: for tests and tools; servers
    /// use [`hash_bounded`]).
    pub fn hash(password: &str) -> String {
        hash_with(password, &mut Vec::new())
    }

    /// Check a password against a PHC string (synchronous, unbounded); false on any malformed
    /// hash.
    pub fn verify(password: &str, phc: &str) -> bool {
        verify_with(password, phc, &mut Vec::new())
    }

    /// Hash a password within the process-wide bound ([`admit`], then [`Ticket::hash`]).
    pub async fn hash_bounded(password: String) -> Result<String, Busy> {
        admit()?.hash(password).await
    }

    /// Check a password within the process-wide bound ([`admit`], then [`Ticket::verify`]).
    pub async fn verify_bounded(password: String, phc: Option<String>) -> Result<bool, Busy> {
        admit()?.verify(password, phc).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_differ_by_key_and_compare_in_constant_time() {
        let a = keyed_digest(b"k1", "secret");
        let b = keyed_digest(b"k2", "secret");
        assert_ne!(a, b);
        assert!(ct_eq(&a, &keyed_digest(b"k1", "secret")));
        assert!(!ct_eq(&a, &b));
        assert_eq!(random_token(32).len(), 43);
    }

    #[test]
    fn password_round_trip() {
        let h = password::hash("correct horse");
        assert!(h.starts_with("$argon2id$"));
        assert!(password::verify("correct horse", &h));
        assert!(!password::verify("wrong", &h));
        assert!(!password::verify("x", "not a hash"));
        // Hashes made by the argon2 crate's own API (older rows) still verify.
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let old = argon2::Argon2::default()
            .hash_password(b"pw-old", &salt)
            .unwrap()
            .to_string();
        assert!(password::verify("pw-old", &old));
        assert!(!password::verify("pw-new", &old));
    }

    #[tokio::test]
    async fn bounded_hashing_refuses_beyond_the_queue() {
        let h = password::hash_bounded("correct horse".into())
            .await
            .unwrap();
        assert!(
            password::verify_bounded("correct horse".into(), Some(h.clone()))
                .await
                .unwrap()
        );
        assert!(!password::verify_bounded("x".into(), None).await.unwrap());
        let l = password::limits();
        let n = l.concurrency + l.queue + 8;
        let all: Vec<_> = (0..n)
            .map(|_| tokio::spawn(password::verify_bounded("x".into(), Some(h.clone()))))
            .collect();
        let mut busy = 0;
        for t in all {
            if t.await.unwrap().is_err() {
                busy += 1;
            }
        }
        assert!(
            busy >= 1,
            "beyond concurrency + queue, requests are refused"
        );
    }
}
