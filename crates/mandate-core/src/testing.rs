//! An in-memory store for the core's unit tests: the ports the rules under test name (users,
//! agents, mandates, grants and tokens, replay, audit), each as simply as its contract allows.
//! A method no rule under test reaches panics, so a test that starts needing one says so.
//! The real stores are proven against the same contracts in mandate-store's contract tests.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::audit::AuditEvent;
use crate::domain::agents::{Agent, AgentStatus, Mandate};
use crate::domain::model::Session;
use crate::domain::model::{AuthCode, Client, ClientAuthMethod, Grant, RefreshToken, Tenant, User};
use crate::domain::scope::Scope;
use crate::login::recovery::store::{AccountToken, Purpose};
use crate::login::totp::store::{TotpCredential, TotpStore};
use crate::provider::{Provider, TenantCtx};
use crate::settings::Settings;
use crate::store::{
    AccountTokenStore, AgentStore, AuditSink, ExchangeLookup, GrantStore, LoginCounter,
    LoginThrottleStore, MandateSelector, MandateStore, ReplayStore, SessionStore, Spend,
    StoreResult, UserStore,
};
use mandate_token::jwk::{Alg, KeySet, generate};

/// The tenant every fake holds data for.
pub const TENANT: &str = "t";

/// The store: plain collections behind locks.
#[derive(Default)]
pub struct Fake {
    pub users: Vec<User>,
    pub agents: Vec<Agent>,
    pub mandates: Mutex<Vec<Mandate>>,
    pub audit: Mutex<Vec<AuditEvent>>,
    pub grants: Mutex<Vec<Grant>>,
    pub refresh: Mutex<Vec<RefreshToken>>,
    /// Revoked access tokens: jti → until.
    pub revoked: Mutex<BTreeMap<String, i64>>,
    pub replay: Mutex<BTreeSet<String>>,
    /// TOTP credentials by person.
    pub totp: Mutex<BTreeMap<String, TotpCredential>>,
    /// Recovery-code digests by person.
    pub recovery: Mutex<BTreeMap<String, Vec<Vec<u8>>>>,
    /// Password hashes set since the users were made: user id → hash.
    pub passwords: Mutex<BTreeMap<String, Option<String>>>,
    /// Users whose address was verified since they were made, with the address.
    pub verified: Mutex<BTreeMap<String, String>>,
    pub sessions: Mutex<Vec<Session>>,
    pub counters: Mutex<BTreeMap<String, LoginCounter>>,
    pub account_tokens: Mutex<Vec<AccountToken>>,
    pub sign_ins: Mutex<Vec<crate::risk::store::SignInRow>>,
    pub failures: Mutex<Vec<crate::risk::store::FailureRow>>,
    pub agent_requests: Mutex<Vec<crate::risk::store::AgentRequestRow>>,
    /// Agents the risk policy suspended: id → reason.
    pub suspended: Mutex<BTreeMap<String, String>>,
}

impl Fake {
    /// A user as stored now (with the changes made since).
    fn current(&self, u: &User) -> User {
        let mut u = u.clone();
        if let Some(h) = self.passwords.lock().unwrap().get(&u.id) {
            u.password_hash = h.clone();
        }
        if self.verified.lock().unwrap().get(&u.id) == u.email.as_ref() {
            u.email_verified = true;
        }
        u
    }

    /// The audit records of one kind.
    pub fn recorded(&self, kind: crate::audit::EventKind) -> Vec<AuditEvent> {
        let all = self.audit.lock().unwrap();
        all.iter().filter(|e| e.kind == kind).cloned().collect()
    }
}

/// A person of the tenant.
pub fn user(id: &str, username: &str) -> User {
    User {
        tenant_id: TENANT.into(),
        id: id.into(),
        username: username.into(),
        email: None,
        email_verified: false,
        name: None,
        password_hash: None,
        created_at: 0,
        updated_at: 0,
    }
}

/// An agent owned by `u1` with the ceiling `read write`.
pub fn agent(id: &str, status: AgentStatus) -> Agent {
    Agent {
        tenant_id: TENANT.into(),
        id: id.into(),
        name: id.into(),
        owner_user_id: Some("u1".into()),
        provider: None,
        model: None,
        version: None,
        scope_ceiling: Scope::parse("read write").unwrap(),
        require_dpop: false,
        status,
        status_reason: None,
        created_at: 0,
        updated_at: 0,
    }
}

/// A mandate in force from `u1` to `agent_id` for `read`, until `expires_at`.
pub fn mandate(id: &str, agent_id: &str, expires_at: i64) -> Mandate {
    Mandate {
        tenant_id: TENANT.into(),
        id: id.into(),
        user_id: "u1".into(),
        agent_id: agent_id.into(),
        scope: Scope::parse("read").unwrap(),
        authorization_details: vec![],
        resources: vec![],
        expires_at,
        max_token_lifetime: 300,
        max_delegation_depth: 0,
        approval_required: vec![],
        origin: crate::domain::agents::MandateOrigin::Api,
        created_at: 0,
        revoked_at: None,
        allow_refresh: false,
    }
}

/// An access token for `u1` issued to `client`, delegated to `act` under `mandate` when given.
pub fn access_token(
    p: &Provider<Fake>,
    t: &TenantCtx,
    client: &Client,
    act: Option<&str>,
    mandate: Option<&str>,
    jkt: Option<&str>,
) -> crate::oauth::tokens::IssuedAccessToken {
    use crate::oauth::tokens::{DelegatedClaims, TokenSubject, access_token_with};
    let subject = TokenSubject {
        sub: "u1".into(),
        auth_time: None,
        acr: None,
        amr: vec![],
        sid: None,
        cnf_jkt: jkt.map(str::to_string),
    };
    let delegated = DelegatedClaims {
        act: act.map(mandate_token::act::Act::new),
        mandate: mandate.map(str::to_string),
        authorization_details: None,
    };
    access_token_with(
        p,
        t,
        client,
        &subject,
        &Scope::parse("read").unwrap(),
        &[],
        300,
        delegated,
    )
    .unwrap()
}

/// A client of the tenant: confidential (secret) or public.
pub fn client(id: &str, public: bool) -> Client {
    Client {
        tenant_id: TENANT.into(),
        client_id: id.into(),
        name: id.into(),
        secret_digest: (!public).then(|| vec![0; 32]),
        auth_method: if public {
            ClientAuthMethod::None
        } else {
            ClientAuthMethod::ClientSecretBasic
        },
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        grant_types: vec![],
        scopes: Scope::parse("openid read write").unwrap(),
        jwks: None,
        id_token_alg: None,
        web_origins: vec![],
        refresh_grace_seconds: 0,
        created_at: 0,
    }
}

/// A provider over `store` and the tenant it serves, with an ES256 key.
pub fn provider(store: Fake) -> (Provider<Fake>, TenantCtx) {
    let p = Provider::new(
        Arc::new(store),
        Settings::default(),
        "https://id.example",
        std::time::Duration::from_secs(60),
    );
    let tenant = Tenant {
        id: TENANT.into(),
        name: "acme".into(),
        secret_key: vec![7; 32],
        access_token_alg: Alg::ES256,
        created_at: 0,
        settings: Default::default(),
    };
    let keys = KeySet::load(&[generate(TENANT, Alg::ES256, 0).unwrap()]).unwrap();
    let t = TenantCtx {
        issuer: p.issuer_for(&tenant.name),
        tenant,
        keys,
    };
    (p, t)
}

fn unused<T>(what: &str) -> T {
    unreachable!("{what}: not a port of the rules under test")
}

#[async_trait]
impl UserStore for Fake {
    async fn create_user(&self, _: &User) -> StoreResult<()> {
        unused("create_user")
    }
    async fn user_by_username(&self, t: &str, name: &str) -> StoreResult<Option<User>> {
        let found = self
            .users
            .iter()
            .find(|u| u.tenant_id == t && u.username == name);
        Ok(found.map(|u| self.current(u)))
    }
    async fn user(&self, t: &str, id: &str) -> StoreResult<Option<User>> {
        Ok(self
            .users
            .iter()
            .find(|u| u.tenant_id == t && u.id == id)
            .map(|u| self.current(u)))
    }
    async fn set_password_hash(
        &self,
        t: &str,
        id: &str,
        hash: Option<&str>,
        _: i64,
    ) -> StoreResult<bool> {
        if !self.users.iter().any(|u| u.tenant_id == t && u.id == id) {
            return Ok(false);
        }
        let mut pw = self.passwords.lock().unwrap();
        pw.insert(id.to_string(), hash.map(str::to_string));
        Ok(true)
    }
    async fn users_by_email(&self, t: &str, email: &str) -> StoreResult<Vec<User>> {
        Ok(self
            .users
            .iter()
            .filter(|u| u.tenant_id == t && u.email.as_deref() == Some(email))
            .take(2)
            .map(|u| self.current(u))
            .collect())
    }
    async fn set_email_verified(
        &self,
        t: &str,
        id: &str,
        email: &str,
        _: i64,
    ) -> StoreResult<bool> {
        let ok = self
            .users
            .iter()
            .any(|u| u.tenant_id == t && u.id == id && u.email.as_deref() == Some(email));
        if ok {
            let mut v = self.verified.lock().unwrap();
            v.insert(id.to_string(), email.to_string());
        }
        Ok(ok)
    }
    async fn erase_user(&self, _: &str, _: &User, _: i64) -> StoreResult<bool> {
        unused("erase_user")
    }
}

#[async_trait]
impl AgentStore for Fake {
    async fn create_agent(&self, _: &Agent) -> StoreResult<()> {
        unused("create_agent")
    }
    async fn agent(&self, t: &str, id: &str) -> StoreResult<Option<Agent>> {
        Ok(self
            .agents
            .iter()
            .find(|a| a.tenant_id == t && a.id == id)
            .cloned())
    }
    async fn list_agents(&self, t: &str) -> StoreResult<Vec<Agent>> {
        Ok(self
            .agents
            .iter()
            .filter(|a| a.tenant_id == t)
            .cloned()
            .collect())
    }
    async fn set_agent_status(
        &self,
        _: &str,
        _: &str,
        _: AgentStatus,
        _: i64,
    ) -> StoreResult<bool> {
        unused("set_agent_status")
    }
}

#[async_trait]
impl MandateStore for Fake {
    async fn create_mandate(&self, m: &Mandate) -> StoreResult<()> {
        self.mandates.lock().unwrap().push(m.clone());
        Ok(())
    }
    async fn mandate(&self, t: &str, id: &str) -> StoreResult<Option<Mandate>> {
        let all = self.mandates.lock().unwrap();
        Ok(all.iter().find(|m| m.tenant_id == t && m.id == id).cloned())
    }
    async fn user_mandates(&self, t: &str, user: &str) -> StoreResult<Vec<Mandate>> {
        let all = self.mandates.lock().unwrap();
        let mine = all.iter().filter(|m| m.tenant_id == t && m.user_id == user);
        // Newest first.
        Ok(mine.rev().cloned().collect())
    }
    async fn revoke_mandates(
        &self,
        t: &str,
        which: MandateSelector<'_>,
        now: i64,
    ) -> StoreResult<Vec<String>> {
        let mut ids = Vec::new();
        for m in self.mandates.lock().unwrap().iter_mut() {
            let chosen = match which {
                MandateSelector::One(id) => m.id == id,
                MandateSelector::Agent(a) => m.agent_id == a,
                MandateSelector::User(u) => m.user_id == u,
            };
            if m.tenant_id == t && chosen && m.is_active(now) {
                m.revoked_at = Some(now);
                ids.push(m.id.clone());
            }
        }
        Ok(ids)
    }
    async fn delegation_inactive(
        &self,
        t: &str,
        agents: &[String],
        mandate: Option<&str>,
        now: i64,
    ) -> StoreResult<bool> {
        let agent_dead = agents.iter().any(|id| {
            !self
                .agents
                .iter()
                .any(|a| a.tenant_id == t && &a.id == id && a.status == AgentStatus::Active)
        });
        let mandate_dead = match mandate {
            None => false,
            Some(id) => self.mandate(t, id).await?.is_none_or(|m| !m.is_active(now)),
        };
        Ok(agent_dead || mandate_dead)
    }
    async fn exchange_context(
        &self,
        _: &str,
        _: ExchangeLookup<'_>,
        _: i64,
    ) -> StoreResult<(bool, Vec<Mandate>)> {
        unused("exchange_context")
    }
    async fn access_token_inactive(
        &self,
        t: &str,
        jti: &str,
        agents: &[String],
        mandate: Option<&str>,
        now: i64,
    ) -> StoreResult<bool> {
        Ok(self.access_token_revoked(t, jti).await?
            || self.delegation_inactive(t, agents, mandate, now).await?)
    }
}

#[async_trait]
impl GrantStore for Fake {
    async fn create_grant(&self, g: &Grant) -> StoreResult<()> {
        self.grants.lock().unwrap().push(g.clone());
        Ok(())
    }
    async fn grant(&self, t: &str, id: &str) -> StoreResult<Option<Grant>> {
        let all = self.grants.lock().unwrap();
        Ok(all.iter().find(|g| g.tenant_id == t && g.id == id).cloned())
    }
    async fn revoke_grant(&self, t: &str, id: &str, now: i64) -> StoreResult<bool> {
        let mut all = self.grants.lock().unwrap();
        let live = all
            .iter_mut()
            .find(|g| g.tenant_id == t && g.id == id && g.revoked_at.is_none());
        Ok(live.map(|g| g.revoked_at = Some(now)).is_some())
    }
    async fn revoke_session_grants(&self, _: &str, _: &str, _: i64) -> StoreResult<u64> {
        Ok(0)
    }
    async fn revoke_client_grants(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: i64,
    ) -> StoreResult<Vec<String>> {
        unused("revoke_client_grants")
    }
    async fn insert_code(&self, _: &AuthCode) -> StoreResult<()> {
        unused("insert_code")
    }
    async fn code(&self, _: &str, _: &[u8]) -> StoreResult<Option<(AuthCode, bool)>> {
        unused("code")
    }
    async fn consume_code(&self, _: &str, _: &[u8], _: i64) -> StoreResult<Spend<AuthCode>> {
        unused("consume_code")
    }
    async fn insert_refresh(&self, r: &RefreshToken) -> StoreResult<()> {
        self.refresh.lock().unwrap().push(r.clone());
        Ok(())
    }
    async fn refresh(&self, t: &str, digest: &[u8]) -> StoreResult<Option<RefreshToken>> {
        let all = self.refresh.lock().unwrap();
        Ok(all
            .iter()
            .find(|r| r.tenant_id == t && r.digest == digest)
            .cloned())
    }
    async fn spend_refresh(&self, _: &str, _: &[u8], _: i64) -> StoreResult<Spend<RefreshToken>> {
        unused("spend_refresh")
    }
    async fn spend_refresh_in_grace(
        &self,
        _: &str,
        _: &[u8],
        _: i64,
        _: i64,
    ) -> StoreResult<Option<RefreshToken>> {
        unused("spend_refresh_in_grace")
    }
    async fn record_access_token(&self, _: &str, _: &str, _: &str, _: i64) -> StoreResult<()> {
        unused("record_access_token")
    }
    async fn revoke_access_token(&self, _: &str, jti: &str, until: i64) -> StoreResult<()> {
        self.revoked.lock().unwrap().insert(jti.to_string(), until);
        Ok(())
    }
    async fn access_token_revoked(&self, _: &str, jti: &str) -> StoreResult<bool> {
        Ok(self.revoked.lock().unwrap().contains_key(jti))
    }
}

#[async_trait]
impl ReplayStore for Fake {
    async fn first_use(&self, t: &str, key: &str, _: i64) -> StoreResult<bool> {
        Ok(self.replay.lock().unwrap().insert(format!("{t}/{key}")))
    }
}

#[async_trait]
impl SessionStore for Fake {
    async fn create_session(&self, s: &Session) -> StoreResult<()> {
        self.sessions.lock().unwrap().push(s.clone());
        Ok(())
    }
    async fn session(&self, t: &str, digest: &[u8]) -> StoreResult<Option<Session>> {
        let all = self.sessions.lock().unwrap();
        Ok(all
            .iter()
            .find(|s| s.tenant_id == t && s.digest == digest)
            .cloned())
    }
    async fn update_session(&self, _: &Session) -> StoreResult<bool> {
        unused("update_session")
    }
    async fn user_sessions(
        &self,
        t: &str,
        user_id: &str,
        now: i64,
        limit: u32,
    ) -> StoreResult<Vec<Session>> {
        let all = self.sessions.lock().unwrap();
        Ok(all
            .iter()
            .filter(|s| s.tenant_id == t && s.user_id == user_id && s.expires_at > now)
            .take(limit as usize)
            .cloned()
            .collect())
    }
    async fn delete_session(&self, t: &str, digest: &[u8]) -> StoreResult<bool> {
        let mut all = self.sessions.lock().unwrap();
        let before = all.len();
        all.retain(|s| !(s.tenant_id == t && s.digest == digest));
        Ok(all.len() < before)
    }
    async fn delete_user_sessions(
        &self,
        t: &str,
        user_id: &str,
        keep: Option<&[u8]>,
    ) -> StoreResult<Vec<String>> {
        let mut all = self.sessions.lock().unwrap();
        let (gone, kept): (Vec<Session>, Vec<Session>) = all.drain(..).partition(|s| {
            s.tenant_id == t && s.user_id == user_id && Some(s.digest.as_slice()) != keep
        });
        *all = kept;
        Ok(gone.into_iter().map(|s| s.sid).collect())
    }
}

#[async_trait]
impl LoginThrottleStore for Fake {
    async fn login_counter(&self, t: &str, key: &str) -> StoreResult<Option<LoginCounter>> {
        Ok(self
            .counters
            .lock()
            .unwrap()
            .get(&format!("{t}/{key}"))
            .copied())
    }
    async fn swap_login_counter(
        &self,
        t: &str,
        key: &str,
        old: Option<&LoginCounter>,
        new: Option<&LoginCounter>,
    ) -> StoreResult<bool> {
        let mut all = self.counters.lock().unwrap();
        let k = format!("{t}/{key}");
        if all.get(&k) != old {
            return Ok(false);
        }
        match new {
            Some(n) => all.insert(k, *n),
            None => all.remove(&k),
        };
        Ok(true)
    }
}

#[async_trait]
impl AccountTokenStore for Fake {
    async fn put_account_token(&self, token: &AccountToken) -> StoreResult<()> {
        let mut all = self.account_tokens.lock().unwrap();
        all.retain(|k| {
            !(k.tenant_id == token.tenant_id
                && k.user_id == token.user_id
                && k.purpose == token.purpose)
        });
        all.push(token.clone());
        Ok(())
    }
    async fn account_token(
        &self,
        t: &str,
        purpose: Purpose,
        digest: &[u8],
        now: i64,
    ) -> StoreResult<Option<AccountToken>> {
        let all = self.account_tokens.lock().unwrap();
        Ok(all
            .iter()
            .find(|k| {
                k.tenant_id == t && k.purpose == purpose && k.digest == digest && k.expires_at > now
            })
            .cloned())
    }
    async fn take_account_token(
        &self,
        t: &str,
        purpose: Purpose,
        digest: &[u8],
        now: i64,
    ) -> StoreResult<Option<AccountToken>> {
        let mut all = self.account_tokens.lock().unwrap();
        let Some(i) = all
            .iter()
            .position(|k| k.tenant_id == t && k.purpose == purpose && k.digest == digest)
        else {
            return Ok(None);
        };
        let k = all.remove(i);
        Ok((k.expires_at > now).then_some(k))
    }
    async fn delete_account_tokens(
        &self,
        t: &str,
        user_id: &str,
        purpose: Option<Purpose>,
    ) -> StoreResult<u64> {
        let mut all = self.account_tokens.lock().unwrap();
        let before = all.len();
        all.retain(|k| {
            !(k.tenant_id == t && k.user_id == user_id && purpose.is_none_or(|p| p == k.purpose))
        });
        Ok((before - all.len()) as u64)
    }
}

#[async_trait]
impl AuditSink for Fake {
    async fn record(&self, e: &AuditEvent) -> StoreResult<()> {
        self.audit.lock().unwrap().push(e.clone());
        Ok(())
    }
}

#[async_trait]
impl TotpStore for Fake {
    async fn totp(&self, _: &str, u: &str) -> StoreResult<Option<TotpCredential>> {
        Ok(self.totp.lock().unwrap().get(u).cloned())
    }
    async fn put_pending_totp(&self, c: &TotpCredential) -> StoreResult<bool> {
        let mut all = self.totp.lock().unwrap();
        if all.get(&c.user_id).is_some_and(TotpCredential::enrolled) {
            return Ok(false);
        }
        all.insert(c.user_id.clone(), c.clone());
        Ok(true)
    }
    async fn confirm_totp(&self, _: &str, u: &str, step: i64, now: i64) -> StoreResult<bool> {
        let mut all = self.totp.lock().unwrap();
        match all.get_mut(u) {
            Some(c) if !c.enrolled() && c.pending_until.is_some_and(|p| p > now) => {
                c.confirmed_at = Some(now);
                c.pending_until = None;
                c.last_step = step;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn spend_totp_step(&self, _: &str, u: &str, step: i64) -> StoreResult<bool> {
        let mut all = self.totp.lock().unwrap();
        match all.get_mut(u) {
            Some(c) if c.enrolled() && c.last_step < step => {
                c.last_step = step;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn remove_totp(&self, _: &str, u: &str) -> StoreResult<bool> {
        let enrolled = self
            .totp
            .lock()
            .unwrap()
            .remove(u)
            .is_some_and(|c| c.enrolled());
        let codes = self
            .recovery
            .lock()
            .unwrap()
            .remove(u)
            .is_some_and(|c| !c.is_empty());
        Ok(enrolled || codes)
    }
    async fn replace_recovery_codes(
        &self,
        _: &str,
        u: &str,
        digests: &[Vec<u8>],
        _: i64,
    ) -> StoreResult<()> {
        self.recovery
            .lock()
            .unwrap()
            .insert(u.to_string(), digests.to_vec());
        Ok(())
    }
    async fn spend_recovery_code(&self, _: &str, u: &str, digest: &[u8]) -> StoreResult<bool> {
        let mut all = self.recovery.lock().unwrap();
        let Some(codes) = all.get_mut(u) else {
            return Ok(false);
        };
        let before = codes.len();
        codes.retain(|d| d != digest);
        Ok(codes.len() < before)
    }
    async fn recovery_codes_left(&self, _: &str, u: &str) -> StoreResult<i64> {
        Ok(self
            .recovery
            .lock()
            .unwrap()
            .get(u)
            .map_or(0, |c| c.len() as i64))
    }
}

#[async_trait]
impl crate::risk::store::RiskStore for Fake {
    async fn add_sign_in(&self, row: &crate::risk::store::SignInRow) -> StoreResult<()> {
        self.sign_ins.lock().unwrap().push(row.clone());
        Ok(())
    }
    async fn sign_ins(
        &self,
        t: &str,
        user_id: &str,
        limit: i64,
    ) -> StoreResult<Vec<crate::risk::store::SignInRow>> {
        let all = self.sign_ins.lock().unwrap();
        let mut v: Vec<_> = all
            .iter()
            .filter(|r| r.tenant_id == t && r.user_id == user_id)
            .cloned()
            .collect();
        v.reverse();
        v.truncate(limit as usize);
        Ok(v)
    }
    async fn add_failure(&self, row: &crate::risk::store::FailureRow) -> StoreResult<()> {
        self.failures.lock().unwrap().push(row.clone());
        Ok(())
    }
    async fn failures_from(
        &self,
        t: &str,
        address: &str,
        since: i64,
    ) -> StoreResult<crate::risk::store::AddressFailures> {
        let all = self.failures.lock().unwrap();
        let recent: Vec<_> = all
            .iter()
            .filter(|r| r.tenant_id == t && r.address == address && r.at > since)
            .collect();
        let names: std::collections::BTreeSet<&str> =
            recent.iter().map(|r| r.account.as_str()).collect();
        Ok(crate::risk::store::AddressFailures {
            failures: recent.len() as i64,
            accounts: names.len() as i64,
        })
    }
    async fn failures_of(&self, t: &str, account: &str, since: i64) -> StoreResult<i64> {
        let all = self.failures.lock().unwrap();
        Ok(all
            .iter()
            .filter(|r| r.tenant_id == t && r.account == account && r.at > since)
            .count() as i64)
    }
    async fn add_agent_request(
        &self,
        row: &crate::risk::store::AgentRequestRow,
    ) -> StoreResult<()> {
        self.agent_requests.lock().unwrap().push(row.clone());
        Ok(())
    }
    async fn approve_agent_requests(
        &self,
        t: &str,
        agent_id: &str,
        user_id: &str,
        until: i64,
    ) -> StoreResult<()> {
        for r in self.agent_requests.lock().unwrap().iter_mut() {
            if r.tenant_id == t && r.agent_id == agent_id && r.user_id == user_id && r.at <= until {
                r.approved = true;
            }
        }
        Ok(())
    }
    async fn agent_requests(
        &self,
        t: &str,
        agent_id: &str,
        user_id: &str,
    ) -> StoreResult<Vec<crate::risk::store::AgentRequestRow>> {
        let all = self.agent_requests.lock().unwrap();
        let mut v: Vec<_> = all
            .iter()
            .filter(|r| r.tenant_id == t && r.agent_id == agent_id && r.user_id == user_id)
            .cloned()
            .collect();
        v.reverse();
        Ok(v)
    }
    async fn suspend_agent_with_reason(
        &self,
        _: &str,
        agent_id: &str,
        reason: &str,
        _: i64,
    ) -> StoreResult<bool> {
        let mut s = self.suspended.lock().unwrap();
        if s.contains_key(agent_id) {
            return Ok(false);
        }
        s.insert(agent_id.into(), reason.into());
        Ok(true)
    }
}
