//! Stream management (SSF 1.0 §8.1) for an authenticated receiver: a client holding a token
//! with [`super::SSF_SCOPE`]. A stream belongs to the client that created it; another client
//! gets "not found" for it, as for a stream that does not exist. Creation, changes and deletion
//! are audited.

use serde_json::{Map, Value, json};

use super::SsfStore;
use super::events::{Subject, verification_claims};
use super::store::QueuedSet;
use super::stream::{ConfigError, Delivery, ReceiverConfig, Stream, StreamStatus};
use super::{EVENTS_SUPPORTED, SET_TYP, jwt_sign};
use crate::access::AdminCaller;
use crate::audit::{AuditEvent, EventKind, Outcome, RequestMeta};
use crate::crypto::secret::random_token;
use crate::error::{OAuthError, StoreError};
use crate::provider::{Provider, TenantCtx};
use crate::store::{AuditLog, AuditSink};

/// Most streams one receiver may hold in a tenant.
pub const MAX_STREAMS_PER_RECEIVER: usize = 20;

/// Why a management request failed.
#[derive(Debug, thiserror::Error)]
pub enum SsfError {
    /// 400 `invalid_request`.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// 404: no such stream of this receiver.
    #[error("no such stream")]
    NotFound,
    /// 409: the receiver holds as many streams as it may.
    #[error("too many streams for this receiver")]
    TooMany,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(m: impl Into<String>) -> SsfError {
    SsfError::Config(ConfigError(m.into()))
}

impl From<SsfError> for OAuthError {
    fn from(e: SsfError) -> Self {
        match e {
            SsfError::Config(c) => OAuthError::invalid_request(c.0),
            SsfError::NotFound => OAuthError::invalid_request("no such stream"),
            SsfError::TooMany => OAuthError::invalid_request("too many streams"),
            SsfError::Store(s) => s.into(),
        }
    }
}

/// The endpoint a poll stream's receiver polls.
pub fn poll_url(t: &TenantCtx, stream_id: &str) -> String {
    t.url(&format!("/ssf/poll/{stream_id}"))
}

/// A stream's configuration as the API returns it.
pub fn stream_json(t: &TenantCtx, s: &Stream) -> Value {
    s.to_json(&t.issuer, &poll_url(t, &s.id))
}

/// A stream's status object (SSF §8.1.2.1).
pub fn status_json(s: &Stream) -> Value {
    let mut v = json!({"stream_id": s.id, "status": s.status.as_str()});
    if let Some(r) = &s.status_reason {
        v["reason"] = r.clone().into();
    }
    v
}

async fn audit<S: AuditSink + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    caller: &AdminCaller,
    meta: &RequestMeta,
    kind: EventKind,
    detail: Value,
) -> Result<(), StoreError> {
    let ev = AuditEvent::new(
        t.id(),
        kind,
        Outcome::Success,
        caller.principal.clone(),
        meta,
    )
    .client(caller.client_id.clone())
    .detail(detail);
    p.store.record(&ev).await
}

fn summary(s: &Stream) -> Value {
    let mut v = json!({
        "stream_id": s.id,
        "method": s.delivery.method(),
        "events_requested": s.events_requested,
        "aud": s.audience(),
        "status": s.status.as_str(),
    });
    if let Delivery::Push { endpoint_url, .. } = &s.delivery {
        v["endpoint_url"] = endpoint_url.clone().into();
    }
    v
}

/// The transmitter sets `aud` (SSF 1.0 §8.1.1: transmitter-supplied): always the receiver's
/// client_id, so that a receiver cannot have SETs addressed to another resource server or to
/// the issuer. A request may repeat that value, nothing else.
fn check_aud(cfg: &ReceiverConfig, caller: &AdminCaller) -> Result<(), SsfError> {
    match &cfg.aud {
        Some(a) if a.len() != 1 || a[0] != caller.client_id => Err(SsfError::Config(ConfigError(
            "aud is set by the transmitter: it is the receiver's client_id".into(),
        ))),
        _ => Ok(()),
    }
}

/// Create a stream (SSF §8.1.1.1). No `delivery` means poll; no `events_requested` means
/// every supported event; `aud` is the receiver's client_id. Only events recorded after
/// creation are delivered.
pub async fn create<S: AuditLog + AuditSink + SsfStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    caller: &AdminCaller,
    meta: &RequestMeta,
    body: &Map<String, Value>,
) -> Result<Stream, SsfError> {
    let cfg = ReceiverConfig::parse(body)?;
    check_aud(&cfg, caller)?;
    let mine = list(p, t, caller).await?;
    if mine.len() >= MAX_STREAMS_PER_RECEIVER {
        return Err(SsfError::TooMany);
    }
    let now = p.now();
    let start_seq = p.store.audit_head(t.id()).await?.map_or(0, |h| h.seq);
    let stream = Stream {
        excluded_subjects: Vec::new(),
        tenant_id: t.id().to_string(),
        id: random_token(16),
        client_id: caller.client_id.clone(),
        aud: vec![caller.client_id.clone()],
        events_requested: cfg
            .events_requested
            .unwrap_or_else(|| EVENTS_SUPPORTED.iter().map(|s| s.to_string()).collect()),
        delivery: cfg.delivery.unwrap_or(Delivery::Poll),
        description: cfg.description.flatten(),
        status: StreamStatus::Enabled,
        status_reason: None,
        start_seq,
        created_at: now,
        updated_at: now,
    };
    p.store.create_stream(&stream).await?;
    audit(
        p,
        t,
        caller,
        meta,
        EventKind::SsfStreamCreated,
        summary(&stream),
    )
    .await?;
    Ok(stream)
}

/// One of the caller's streams.
pub async fn get<S: SsfStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    caller: &AdminCaller,
    id: &str,
) -> Result<Stream, SsfError> {
    match p.store.stream(t.id(), id).await? {
        Some(s) if s.client_id == caller.client_id => Ok(s),
        _ => Err(SsfError::NotFound),
    }
}

/// Every stream of the caller.
pub async fn list<S: SsfStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    caller: &AdminCaller,
) -> Result<Vec<Stream>, SsfError> {
    Ok(p.store
        .streams(t.id())
        .await?
        .into_iter()
        .filter(|s| s.client_id == caller.client_id)
        .collect())
}

/// The `stream_id` member of a request body.
pub fn stream_id(body: &Map<String, Value>) -> Result<&str, SsfError> {
    match body.get("stream_id") {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        _ => Err(invalid("stream_id is required")),
    }
}

/// Update (PATCH: only the members given change) or replace (PUT: members not given return
/// to their defaults) a stream's receiver-supplied configuration (SSF §8.1.1.3–4).
pub async fn update<S: AuditSink + SsfStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    caller: &AdminCaller,
    meta: &RequestMeta,
    body: &Map<String, Value>,
    replace: bool,
) -> Result<Stream, SsfError> {
    let id = stream_id(body)?;
    let cfg = ReceiverConfig::parse(body)?;
    check_aud(&cfg, caller)?;
    let mut s = get(p, t, caller, id).await?;
    if replace {
        s.delivery = cfg.delivery.unwrap_or(Delivery::Poll);
        s.events_requested = cfg
            .events_requested
            .unwrap_or_else(|| EVENTS_SUPPORTED.iter().map(|e| e.to_string()).collect());
        s.description = cfg.description.flatten();
    } else {
        if let Some(d) = cfg.delivery {
            s.delivery = d;
        }
        if let Some(e) = cfg.events_requested {
            s.events_requested = e;
        }
        if let Some(d) = cfg.description {
            s.description = d;
        }
    }
    s.aud = s.audience();
    s.updated_at = p.now();
    if !p.store.update_stream(&s).await? {
        return Err(SsfError::NotFound);
    }
    audit(p, t, caller, meta, EventKind::SsfStreamUpdated, summary(&s)).await?;
    Ok(s)
}

/// Delete a stream and whatever is still queued for it (SSF §8.1.1.5).
pub async fn delete<S: AuditSink + SsfStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    caller: &AdminCaller,
    meta: &RequestMeta,
    id: &str,
) -> Result<(), SsfError> {
    let s = get(p, t, caller, id).await?;
    if !p.store.delete_stream(t.id(), &s.id).await? {
        return Err(SsfError::NotFound);
    }
    audit(
        p,
        t,
        caller,
        meta,
        EventKind::SsfStreamDeleted,
        json!({"stream_id": s.id}),
    )
    .await?;
    Ok(())
}

/// Change a stream's status (SSF §8.1.2.2): body `stream_id`, `status`, optional `reason`.
pub async fn set_status<S: AuditSink + SsfStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    caller: &AdminCaller,
    meta: &RequestMeta,
    body: &Map<String, Value>,
) -> Result<Stream, SsfError> {
    let id = stream_id(body)?;
    let status = body
        .get("status")
        .and_then(Value::as_str)
        .and_then(StreamStatus::parse)
        .ok_or_else(|| invalid("status must be enabled, paused or disabled"))?;
    let reason = match body.get("reason") {
        None | Some(Value::Null) => None,
        Some(Value::String(r)) if r.len() <= 2048 => Some(r.clone()),
        Some(_) => return Err(invalid("reason must be a string of at most 2048 bytes")),
    };
    let mut s = get(p, t, caller, id).await?;
    s.status = status;
    s.status_reason = reason;
    s.updated_at = p.now();
    if !p.store.update_stream(&s).await? {
        return Err(SsfError::NotFound);
    }
    audit(p, t, caller, meta, EventKind::SsfStreamUpdated, summary(&s)).await?;
    Ok(s)
}

/// Queue a verification event for a stream (SSF §8.1.4.2): body `stream_id`, optional `state`
/// that the event echoes.
pub async fn request_verification<S: SsfStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    caller: &AdminCaller,
    body: &Map<String, Value>,
) -> Result<(), SsfError> {
    let id = stream_id(body)?;
    let state = match body.get("state") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.len() <= 2048 => Some(s.as_str()),
        Some(_) => return Err(invalid("state must be a string of at most 2048 bytes")),
    };
    let s = get(p, t, caller, id).await?;
    if s.status == StreamStatus::Disabled {
        return Ok(());
    }
    let key = t
        .keys
        .signer(t.tenant.access_token_alg)
        .ok_or_else(|| StoreError::Corrupt("tenant has no signing key".into()))?;
    let now = p.now();
    let jti = random_token(16);
    let claims = verification_claims(&t.issuer, &s.audience(), &jti, now, &s.id, state);
    let set = QueuedSet {
        tenant_id: t.id().to_string(),
        stream_id: s.id.clone(),
        jti,
        set: jwt_sign(key, SET_TYP, &claims),
        created_at: now,
    };
    p.store.ssf_enqueue(t.id(), None, &[set]).await?;
    Ok(())
}

/// Most subjects one stream may have removed.
pub const MAX_EXCLUDED_SUBJECTS: usize = 1000;

/// Parse a receiver's subject (RFC 9493) into a filter on the subjects of our SETs: `iss_sub`
/// under the tenant's issuer or `opaque` (a user id) name a person; `complex` may name a
/// `user` (either form), an `application` (agent or client id, `opaque`) and a `session`
/// (mandate id, `opaque`).
fn subject_filter(t: &TenantCtx, v: &Value) -> Result<Subject, SsfError> {
    fn person(t: &TenantCtx, v: &Value) -> Result<String, SsfError> {
        let field = |k: &str| v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
        match v.get("format").and_then(Value::as_str) {
            Some("iss_sub") if field("iss") == Some(t.issuer.as_str()) => field("sub")
                .map(str::to_string)
                .ok_or_else(|| invalid("an iss_sub subject needs sub")),
            Some("iss_sub") => Err(invalid("iss_sub subjects must have this tenant's issuer")),
            Some("opaque") => opaque(v),
            _ => Err(invalid("a user subject must be iss_sub or opaque")),
        }
    }
    fn opaque(v: &Value) -> Result<String, SsfError> {
        match (v.get("format").and_then(Value::as_str), v.get("id")) {
            (Some("opaque"), Some(Value::String(id))) if !id.is_empty() => Ok(id.clone()),
            _ => Err(invalid("expected an opaque subject with an id")),
        }
    }
    let filter = match v.get("format").and_then(Value::as_str) {
        Some("complex") => {
            let member = |k: &str, f: &dyn Fn(&Value) -> Result<String, SsfError>| {
                v.get(k).map(f).transpose()
            };
            Subject {
                user: member("user", &|u| person(t, u))?,
                application: member("application", &opaque)?,
                session: member("session", &opaque)?,
            }
        }
        Some("iss_sub" | "opaque") => Subject {
            user: Some(person(t, v)?),
            ..Subject::default()
        },
        _ => {
            return Err(invalid(
                "subject must be an iss_sub, opaque or complex subject",
            ));
        }
    };
    if filter == Subject::default() {
        return Err(invalid("the subject names nobody"));
    }
    Ok(filter)
}

/// Add a subject to a stream or remove it (SSF §8.1.3.2 and §8.1.3.3): body `stream_id`,
/// `subject`, optional `verified`. Every subject is in a stream until removed; adding one back
/// undoes its removal. Both are audited as stream updates.
pub async fn change_subject<S: AuditSink + SsfStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    caller: &AdminCaller,
    meta: &RequestMeta,
    body: &Map<String, Value>,
    add: bool,
) -> Result<(), SsfError> {
    let id = stream_id(body)?;
    let subject = body
        .get("subject")
        .ok_or_else(|| invalid("subject is required"))?;
    let filter = subject_filter(t, subject)?;
    if !matches!(body.get("verified"), None | Some(Value::Bool(_))) {
        return Err(invalid("verified must be a boolean"));
    }
    let mut s = get(p, t, caller, id).await?;
    let present = s.excluded_subjects.contains(&filter);
    match (add, present) {
        (true, true) => s.excluded_subjects.retain(|f| *f != filter),
        (false, false) if s.excluded_subjects.len() >= MAX_EXCLUDED_SUBJECTS => {
            return Err(invalid(format!(
                "a stream may have at most {MAX_EXCLUDED_SUBJECTS} subjects removed"
            )));
        }
        (false, false) => s.excluded_subjects.push(filter.clone()),
        _ => return Ok(()),
    }
    s.updated_at = p.now();
    if !p.store.update_stream(&s).await? {
        return Err(SsfError::NotFound);
    }
    let change = if add {
        "subject_added"
    } else {
        "subject_removed"
    };
    let mut detail = summary(&s);
    detail[change] = serde_json::to_value(&filter).unwrap_or_default();
    audit(p, t, caller, meta, EventKind::SsfStreamUpdated, detail).await?;
    Ok(())
}
