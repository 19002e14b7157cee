//! Password-guessing limits: counters per account name and per client address, kept in the
//! store so that every node enforces the same limits.
//!
//! An attempt is counted *before* its password is checked (compare-and-swap on the stored
//! counter), so parallel guesses on any number of nodes are each counted and none slips past
//! a lockout; a successful login then clears the account's counter and takes its own attempt
//! back from the address's. Account counters are keyed by a keyed digest of the name typed,
//! whether or not such an account exists, so throttling answers the same for both and stores
//! no name in clear.

use std::net::IpAddr;

use crate::crypto::secret::{b64, keyed_digest};
use crate::error::StoreError;
use crate::settings::LoginThrottle;
use crate::store::{LoginCounter, LoginThrottleStore};

/// Which counter an attempt is charged to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One account name (existing or not).
    Account,
    /// One client address (IPv6: its /64).
    Address,
    /// One person's second factor (TOTP or recovery codes), after their first: guessing codes
    /// is limited and locks out like guessing passwords, with the account's thresholds.
    SecondFactor,
}

impl Scope {
    /// The stable name used in audit records.
    pub fn as_str(&self) -> &'static str {
        match self {
            Scope::Account => "account",
            Scope::Address => "address",
            Scope::SecondFactor => "second_factor",
        }
    }
}

/// A counter key with its scope.
#[derive(Debug, Clone)]
pub struct Key {
    pub scope: Scope,
    pub key: String,
}

impl Key {
    /// The same counter kept apart for another purpose (reset requests, code guesses): the
    /// same thresholds, its own count.
    pub fn within(self, purpose: &str) -> Key {
        Key {
            scope: self.scope,
            key: format!("{purpose}/{}", self.key),
        }
    }
}

/// The counter key of an account name: a keyed digest, so the table holds no names.
pub fn account_key(tenant_secret: &[u8], username: &str) -> Key {
    Key {
        scope: Scope::Account,
        key: format!("u:{}", b64(&keyed_digest(tenant_secret, username))),
    }
}

/// The counter key of a person's second factor: a keyed digest of their id.
pub fn second_factor_key(tenant_secret: &[u8], user_id: &str) -> Key {
    Key {
        scope: Scope::SecondFactor,
        key: format!(
            "f2:{}",
            b64(&keyed_digest(
                tenant_secret,
                &format!("second-factor.{user_id}")
            ))
        ),
    }
}

/// The counter key of a client address; IPv6 addresses count per /64 (one subscriber's
/// prefix), IPv4-mapped ones as IPv4. `None` when the address is unknown or unparsable.
pub fn address_key(ip: Option<&str>) -> Option<Key> {
    let ip: IpAddr = ip?.trim().parse().ok()?;
    let key = match ip {
        IpAddr::V4(v4) => format!("ip:{v4}"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("ip:{v4}"),
            None => {
                let s = v6.segments();
                format!("ip:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    };
    Some(Key {
        scope: Scope::Address,
        key,
    })
}

/// Compare-and-swap rounds before an attempt on a contended counter is refused.
const CAS_ROUNDS: usize = 128;

/// What charging an attempt to a counter gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charge {
    /// Counted: the attempt may be checked. `previous` is the counter before, for [`refund`].
    Counted {
        previous: Option<LoginCounter>,
        now: LoginCounter,
    },
    /// Attempts wait until this time; this one is refused unchecked.
    Wait { until: i64 },
}

fn thresholds(limits: &LoginThrottle, scope: &Scope) -> (i64, i64) {
    match scope {
        Scope::Account | Scope::SecondFactor => {
            (limits.failures_before_delay, limits.failures_before_lockout)
        }
        Scope::Address => (
            limits.ip_failures_before_delay,
            limits.ip_failures_before_lockout,
        ),
    }
}

/// Is this counter at or past the lockout threshold of its scope?
pub fn locked_out(limits: &LoginThrottle, key: &Key, c: &LoginCounter) -> bool {
    c.failures >= thresholds(limits, &key.scope).1
}

/// The current wait of a counter, without charging anything.
pub async fn waiting<S: LoginThrottleStore + ?Sized>(
    store: &S,
    tenant_id: &str,
    key: &Key,
    now: i64,
) -> Result<Option<i64>, StoreError> {
    Ok(store
        .login_counter(tenant_id, &key.key)
        .await?
        .filter(|c| c.locked_until > now)
        .map(|c| c.locked_until))
}

/// Charge one attempt to a counter, unless attempts must wait.
pub async fn charge<S: LoginThrottleStore + ?Sized>(
    store: &S,
    limits: &LoginThrottle,
    tenant_id: &str,
    key: &Key,
    now: i64,
) -> Result<Charge, StoreError> {
    let (before_delay, before_lockout) = thresholds(limits, &key.scope);
    // Each round loses only to another attempt that was counted, so some attempt always
    // progresses; many parallel attempts on one counter (one busy address) may need many.
    for round in 0..CAS_ROUNDS {
        if round > 0 {
            tokio::task::yield_now().await;
        }
        let old = store.login_counter(tenant_id, &key.key).await?;
        if let Some(c) = &old
            && c.locked_until > now
        {
            return Ok(Charge::Wait {
                until: c.locked_until,
            });
        }
        let failures = old
            .filter(|c| now - c.last_failure_at <= limits.failure_reset)
            .map_or(0, |c| c.failures)
            .saturating_add(1);
        let wait = limits.wait(failures, before_delay, before_lockout);
        let new = LoginCounter {
            failures,
            last_failure_at: now,
            locked_until: if wait > 0 { now + wait } else { 0 },
            expires_at: now + wait.max(limits.failure_reset),
        };
        if store
            .swap_login_counter(tenant_id, &key.key, old.as_ref(), Some(&new))
            .await?
        {
            return Ok(Charge::Counted {
                previous: old,
                now: new,
            });
        }
    }
    // Heavy contention on one counter is itself a sign of guessing: refuse this attempt.
    Ok(Charge::Wait { until: now + 1 })
}

/// Clear a counter (successful login on the account).
pub async fn clear<S: LoginThrottleStore + ?Sized>(
    store: &S,
    tenant_id: &str,
    key: &Key,
) -> Result<(), StoreError> {
    for _ in 0..16 {
        let Some(old) = store.login_counter(tenant_id, &key.key).await? else {
            return Ok(());
        };
        if store
            .swap_login_counter(tenant_id, &key.key, Some(&old), None)
            .await?
        {
            return Ok(());
        }
    }
    Ok(())
}

/// Take a counted attempt back (it was a successful login, or was not judged): one failure
/// less on the counter as it is now, whatever other attempts were counted since (many people
/// behind one busy address sign in at once; their successes must not add up to a lockout).
/// A wait the remaining failures no longer call for is lifted.
pub async fn refund<S: LoginThrottleStore + ?Sized>(
    store: &S,
    limits: &LoginThrottle,
    tenant_id: &str,
    key: &Key,
    charged: &Charge,
) -> Result<(), StoreError> {
    let Charge::Counted { previous, now } = charged else {
        return Ok(());
    };
    // Nothing counted since: put back exactly what was there.
    if store
        .swap_login_counter(tenant_id, &key.key, Some(now), previous.as_ref())
        .await?
    {
        return Ok(());
    }
    let (before_delay, before_lockout) = thresholds(limits, &key.scope);
    for round in 0..CAS_ROUNDS {
        if round > 0 {
            tokio::task::yield_now().await;
        }
        let Some(cur) = store.login_counter(tenant_id, &key.key).await? else {
            return Ok(());
        };
        if cur.failures <= 0 {
            return Ok(());
        }
        let failures = cur.failures - 1;
        let new = LoginCounter {
            failures,
            locked_until: if limits.wait(failures, before_delay, before_lockout) > 0 {
                cur.locked_until
            } else {
                0
            },
            ..cur
        };
        if store
            .swap_login_counter(tenant_id, &key.key, Some(&cur), Some(&new))
            .await?
        {
            return Ok(());
        }
    }
    Ok(())
}

/// Make attempts on a counter wait until `until` (a risk block), keeping its count.
pub async fn hold<S: LoginThrottleStore + ?Sized>(
    store: &S,
    tenant_id: &str,
    key: &Key,
    now: i64,
    until: i64,
) -> Result<(), StoreError> {
    for _ in 0..16 {
        let old = store.login_counter(tenant_id, &key.key).await?;
        let new = match &old {
            Some(c) if c.locked_until >= until => return Ok(()),
            Some(c) => LoginCounter {
                locked_until: until,
                expires_at: c.expires_at.max(until),
                ..*c
            },
            None => LoginCounter {
                failures: 0,
                last_failure_at: now,
                locked_until: until,
                expires_at: until,
            },
        };
        if store
            .swap_login_counter(tenant_id, &key.key, old.as_ref(), Some(&new))
            .await?
        {
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_keys_group_ipv6_by_prefix() {
        let k = |s: &str| address_key(Some(s)).map(|k| k.key);
        assert_eq!(k("192.0.2.7").unwrap(), "ip:192.0.2.7");
        assert_eq!(k("::ffff:192.0.2.7").unwrap(), "ip:192.0.2.7");
        assert_eq!(k("2001:db8:1:2:aaaa::1"), k("2001:db8:1:2:bbbb::9"));
        assert_ne!(k("2001:db8:1:2::1"), k("2001:db8:1:3::1"));
        assert!(k("not an ip").is_none());
        assert!(address_key(None).is_none());
    }

    #[test]
    fn account_keys_hide_the_name() {
        let k = account_key(b"secret", "alice");
        assert!(!k.key.contains("alice"));
        assert_ne!(k.key, account_key(b"other", "alice").key);
    }
}
