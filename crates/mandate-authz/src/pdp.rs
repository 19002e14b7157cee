//! The policy decision point over a store: each tenant's model, tuples and Cedar policy kept
//! in memory and caught up from the store's change log, so checks run at in-memory speed on
//! every node. A request may name a revision (returned by a tuple write): the snapshot then
//! catches up to at least that revision before answering, also on another node. Without one,
//! a snapshot older than `refresh_after` is caught up first.
//!
//! Evaluations run on the blocking pool behind a semaphore (one slot per core), each within the
//! work budget of [`ResolutionLimits`], so a costly decision never occupies an async worker.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::storage::{AuthzStore, StoredModel, StoredTuple};
use mandate_core::StoreError;

use crate::check::ResolutionLimits;
use crate::engine::{CheckRequest, Engine, ListObjectsRequest, ListUsersRequest};
use crate::error::{AuthzError, ModelError};
use crate::model::AuthorizationModel;
use crate::policy::{PolicyError, TenantPolicy};
use crate::store::{MemoryTuples, ReadFilter};
use crate::tuple::{Tuple, TupleCondition};

/// Changes read per page while catching up.
const CHANGE_PAGE: u32 = 10_000;

/// Why a PDP operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PdpError {
    /// A request or tuple the engine refuses.
    #[error(transparent)]
    Authz(#[from] AuthzError),
    /// An invalid model.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// An invalid policy set or schema.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// Nothing to check against.
    #[error("the tenant has no authorization model yet")]
    NoModel,
    /// A model id that does not exist.
    #[error("authorization model {0} not found")]
    UnknownModel(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a check reads: the tuples and the model they are evaluated with, updated together.
/// Locked only on blocking threads (a long evaluation holds the read lock), never on the async
/// workers.
struct Data {
    tuples: MemoryTuples,
    model: Option<(String, Arc<AuthorizationModel>)>,
}

/// How current a tenant's snapshot is; locked briefly, also on the async workers.
struct Meta {
    /// Tuple revision the data reflects at least.
    revision: i64,
    /// Model and policy writes the data reflects at least (the store head's `config_seq`).
    config_seq: i64,
    model: Option<(String, Arc<AuthorizationModel>)>,
    policy: Option<(i64, Arc<TenantPolicy>)>,
    refreshed: Instant,
    /// Loaded ahead of use (see [`Pdp::warm`]): the first decision still catches up, so that
    /// preloading never makes a node serve an older state than loading on demand would.
    warmed: bool,
    /// A model or policy was written through this node: catch up before the next use, whatever
    /// revision a request names.
    stale: bool,
}

struct TenantState {
    /// `None` until first loaded.
    meta: Mutex<Option<Meta>>,
    data: Arc<RwLock<Data>>,
    /// One catch-up at a time per tenant.
    refreshing: tokio::sync::Mutex<()>,
}

/// The decision point for every tenant of a store.
pub struct Pdp {
    store: Arc<dyn AuthzStore>,
    refresh_after: Duration,
    tenants: RwLock<HashMap<String, Arc<TenantState>>>,
    limits: ResolutionLimits,
    /// Graph evaluations run on blocking threads, at most this many at once (one per core by
    /// default): a costly decision waits for a slot instead of occupying an async worker, so
    /// it cannot stall other endpoints.
    slots: Arc<tokio::sync::Semaphore>,
}

fn to_stored(t: &Tuple) -> StoredTuple {
    StoredTuple {
        object: t.object.clone(),
        relation: t.relation.clone(),
        user: t.user.clone(),
        condition: t
            .condition
            .as_ref()
            .and_then(|c| serde_json::to_string(c).ok()),
    }
}

fn from_stored(t: &StoredTuple) -> Tuple {
    Tuple {
        object: t.object.clone(),
        relation: t.relation.clone(),
        user: t.user.clone(),
        condition: t
            .condition
            .as_deref()
            .and_then(|c| serde_json::from_str::<TupleCondition>(c).ok()),
    }
}

/// Apply a change tolerantly (a snapshot may already hold it).
fn apply(tuples: &mut MemoryTuples, t: &Tuple, delete: bool) {
    let present = tuples.contains(t);
    let result = match (delete, present) {
        (false, false) => tuples.write_unchecked(std::slice::from_ref(t), &[]),
        (true, true) => tuples.write_unchecked(&[], std::slice::from_ref(t)),
        _ => Ok(()),
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "skipping a stored tuple that does not parse");
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Run `f` on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, PdpError> + Send + 'static,
) -> Result<T, PdpError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        PdpError::Store(StoreError::Backend(format!(
            "authorization evaluation failed: {e}"
        )))
    })?
}

impl Pdp {
    /// A PDP over `store`; snapshots older than `refresh_after` are caught up before use.
    /// Evaluations run on blocking threads, as many at once as the machine has cores.
    pub fn new(store: Arc<dyn AuthzStore>, refresh_after: Duration) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Pdp {
            store,
            refresh_after,
            tenants: RwLock::new(HashMap::new()),
            limits: ResolutionLimits::default(),
            slots: Arc::new(tokio::sync::Semaphore::new(cores.max(1))),
        }
    }

    /// Overrides the resolution limits (depth, work budget) of every evaluation.
    pub fn with_limits(mut self, limits: ResolutionLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Overrides how many evaluations may run at once.
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.slots = Arc::new(tokio::sync::Semaphore::new(n.max(1)));
        self
    }

    /// The limits every evaluation runs with.
    pub fn limits(&self) -> ResolutionLimits {
        self.limits
    }

    fn tenant(&self, tenant_id: &str) -> Arc<TenantState> {
        if let Some(t) = self
            .tenants
            .read()
            .ok()
            .and_then(|m| m.get(tenant_id).cloned())
        {
            return t;
        }
        let mut map = self.tenants.write().unwrap_or_else(|e| e.into_inner());
        map.entry(tenant_id.to_string())
            .or_insert_with(|| {
                Arc::new(TenantState {
                    meta: Mutex::new(None),
                    data: Arc::new(RwLock::new(Data {
                        tuples: MemoryTuples::new(),
                        model: None,
                    })),
                    refreshing: tokio::sync::Mutex::new(()),
                })
            })
            .clone()
    }

    /// Whether the snapshot may answer: with `need` (tuple revision, model/policy writes), it
    /// must hold both; without, it must be recent.
    fn fresh(&self, state: &TenantState, need: Option<(i64, i64)>) -> bool {
        let guard = lock(&state.meta);
        match (&*guard, need) {
            (None, _) => false,
            (Some(s), _) if s.stale => false,
            (Some(s), Some((r, c))) => s.revision >= r && s.config_seq >= c,
            (Some(s), None) => !s.warmed && s.refreshed.elapsed() < self.refresh_after,
        }
    }

    /// Make the tenant's snapshot current enough. With a revision, the snapshot must hold at
    /// least that tuple revision and every model and policy written so far (one read of the
    /// tenant's head row): a model written after the revision's tuples, on any node, is used.
    async fn sync(
        &self,
        tenant_id: &str,
        min_revision: Option<i64>,
    ) -> Result<Arc<TenantState>, PdpError> {
        let state = self.tenant(tenant_id);
        let need = match min_revision {
            None => None,
            Some(r) => Some((r, self.store.authz_head(tenant_id).await?.1)),
        };
        if self.fresh(&state, need) {
            return Ok(state);
        }
        let held = state.clone();
        let _one = held.refreshing.lock().await;
        if self.fresh(&state, need) {
            return Ok(state);
        }
        // The head first: everything read after it reflects it at least.
        let (_, config_seq) = self.store.authz_head(tenant_id).await?;
        let loaded = lock(&state.meta).as_ref().map(|s| s.revision);
        // Tuples: a full load the first time, then the change log.
        let mut full = None;
        let mut revision = match loaded {
            Some(r) => r,
            None => {
                let (r, stored) = self.store.tuples_snapshot(tenant_id).await?;
                full = Some(stored);
                r
            }
        };
        let mut changes = Vec::new();
        loop {
            let page = self
                .store
                .tuple_changes(tenant_id, revision, CHANGE_PAGE)
                .await?;
            let more = page.len() as u32 == CHANGE_PAGE;
            if let Some(last) = page.last() {
                revision = last.revision;
            }
            changes.extend(page);
            if !more {
                break;
            }
        }
        let model = self.store.model(tenant_id, None).await?;
        let policy = self.store.policy(tenant_id).await?;
        let (old_model, old_policy) = {
            let g = lock(&state.meta);
            g.as_ref()
                .map(|s| (s.model.clone(), s.policy.clone()))
                .unwrap_or_default()
        };
        let model = match model {
            Some(m) if old_model.as_ref().is_none_or(|(id, _)| *id != m.id) => {
                let parsed = AuthorizationModel::from_json(&m.model)?;
                Some((m.id, Arc::new(parsed)))
            }
            Some(_) => old_model,
            None => None,
        };
        let policy = match policy {
            Some(p) if old_policy.as_ref().is_none_or(|(v, _)| *v != p.version) => {
                let parsed = TenantPolicy::new(&p.policies, p.schema.as_deref())?;
                Some((p.version, Arc::new(parsed)))
            }
            Some(_) => old_policy,
            None => None,
        };
        // Applying changes (a full load: a million tuples) runs on a blocking thread, and the
        // data lock is only ever taken there.
        let data = state.data.clone();
        let data_model = model.clone();
        blocking(move || {
            let fresh_tuples = full.map(|stored| {
                let mut tuples = MemoryTuples::new();
                for t in &stored {
                    apply(&mut tuples, &from_stored(t), false);
                }
                tuples
            });
            let mut d = data.write().unwrap_or_else(|e| e.into_inner());
            if let Some(t) = fresh_tuples {
                d.tuples = t;
            }
            for c in &changes {
                apply(&mut d.tuples, &from_stored(&c.tuple), c.delete);
            }
            d.model = data_model;
            Ok(())
        })
        .await?;
        *lock(&state.meta) = Some(Meta {
            revision,
            config_seq,
            model,
            policy,
            refreshed: Instant::now(),
            warmed: false,
            stale: false,
        });
        Ok(state)
    }

    /// Run `f` over the tenant's current model (or model `model_id`) and tuples, on a blocking
    /// thread once an evaluation slot is free.
    async fn with<T: Send + 'static>(
        &self,
        tenant_id: &str,
        min_revision: Option<i64>,
        model_id: Option<&str>,
        f: impl FnOnce(&AuthorizationModel, &MemoryTuples) -> Result<T, PdpError> + Send + 'static,
    ) -> Result<T, PdpError> {
        let state = self.sync(tenant_id, min_revision).await?;
        let other_model = match model_id {
            None => None,
            Some(id) => {
                let current = lock(&state.meta)
                    .as_ref()
                    .and_then(|s| s.model.as_ref().map(|(mid, _)| mid == id))
                    .unwrap_or(false);
                if current {
                    None
                } else {
                    let m = self
                        .store
                        .model(tenant_id, Some(id))
                        .await?
                        .ok_or_else(|| PdpError::UnknownModel(id.to_string()))?;
                    Some(Arc::new(AuthorizationModel::from_json(&m.model)?))
                }
            }
        };
        let permit =
            self.slots.clone().acquire_owned().await.map_err(|_| {
                PdpError::Store(StoreError::Backend("evaluation pool closed".into()))
            })?;
        let data = state.data.clone();
        blocking(move || {
            let _permit = permit;
            let d = data.read().unwrap_or_else(|e| e.into_inner());
            let model = match &other_model {
                Some(m) => m.clone(),
                None => d.model.as_ref().ok_or(PdpError::NoModel)?.1.clone(),
            };
            f(&model, &d.tuples)
        })
        .await
    }

    /// Load the tenant's graph now, so that its first decision does not wait for the full
    /// load (seconds for a million tuples). Failures are logged; the next decision retries.
    /// The first decision then only catches up from the change log.
    pub async fn warm(&self, tenant_id: &str) {
        match self.sync(tenant_id, None).await {
            Ok(state) => {
                if let Some(s) = lock(&state.meta).as_mut() {
                    s.warmed = true;
                }
            }
            Err(e) => {
                tracing::warn!(tenant = tenant_id, error = %e, "loading the relationship graph")
            }
        }
    }

    /// Validate and store a new model version; returns its id.
    pub async fn write_model(
        &self,
        tenant_id: &str,
        model: &AuthorizationModel,
        id: String,
        now: i64,
    ) -> Result<String, PdpError> {
        self.store
            .put_model(
                tenant_id,
                &StoredModel {
                    id: id.clone(),
                    model: model.to_json(),
                    created_at: now,
                },
            )
            .await?;
        self.invalidate(tenant_id);
        // This node answers from the new model at once (others see it by the head's
        // config_seq when a request names a revision, else within `refresh_after`).
        self.sync(tenant_id, Some(0)).await?;
        Ok(id)
    }

    /// The newest model (id and model).
    pub async fn current_model(
        &self,
        tenant_id: &str,
    ) -> Result<(String, Arc<AuthorizationModel>), PdpError> {
        let state = self.sync(tenant_id, None).await?;
        lock(&state.meta)
            .as_ref()
            .and_then(|s| s.model.clone())
            .ok_or(PdpError::NoModel)
    }

    fn invalidate(&self, tenant_id: &str) {
        let state = self.tenant(tenant_id);
        if let Some(s) = lock(&state.meta).as_mut() {
            // Force a catch-up (model and policy included) on next use.
            s.stale = true;
        }
    }

    /// Validate a batch against the current model and store it atomically; returns the new
    /// revision (pass it to a check to read your own write, on any node).
    pub async fn write_tuples(
        &self,
        tenant_id: &str,
        writes: &[Tuple],
        deletes: &[Tuple],
    ) -> Result<i64, PdpError> {
        let (_, model) = self.current_model(tenant_id).await?;
        let mut seen = std::collections::HashSet::new();
        for t in writes.iter().chain(deletes) {
            t.parse().map_err(|error| AuthzError::InvalidTuple {
                tuple: t.key(),
                error,
            })?;
            if !seen.insert(t.key()) {
                return Err(AuthzError::DuplicateInBatch(t.key()).into());
            }
        }
        for t in writes {
            model
                .validate_tuple(t)
                .map_err(|error| AuthzError::InvalidTuple {
                    tuple: t.key(),
                    error,
                })?;
        }
        let w: Vec<StoredTuple> = writes.iter().map(to_stored).collect();
        let d: Vec<StoredTuple> = deletes.iter().map(to_stored).collect();
        let revision = match self.store.write_tuples(tenant_id, &w, &d).await {
            Ok(r) => r,
            Err(StoreError::Conflict(k)) => return Err(AuthzError::TupleExists(k).into()),
            Err(StoreError::Missing(k)) => return Err(AuthzError::TupleNotFound(k).into()),
            Err(e) => return Err(e.into()),
        };
        self.sync(tenant_id, Some(revision)).await?;
        Ok(revision)
    }

    /// Stored tuples matching `filter`.
    pub async fn read_tuples(
        &self,
        tenant_id: &str,
        filter: &ReadFilter,
        min_revision: Option<i64>,
    ) -> Result<Vec<Tuple>, PdpError> {
        let filter = filter.clone();
        self.with_tuples(tenant_id, min_revision, move |t| Ok(t.read(&filter)))
            .await
    }

    /// Run `f` over the tenant's tuples on a blocking thread (no model needed).
    async fn with_tuples<T: Send + 'static>(
        &self,
        tenant_id: &str,
        min_revision: Option<i64>,
        f: impl FnOnce(&MemoryTuples) -> Result<T, PdpError> + Send + 'static,
    ) -> Result<T, PdpError> {
        let state = self.sync(tenant_id, min_revision).await?;
        let permit =
            self.slots.clone().acquire_owned().await.map_err(|_| {
                PdpError::Store(StoreError::Backend("evaluation pool closed".into()))
            })?;
        let data = state.data.clone();
        blocking(move || {
            let _permit = permit;
            let d = data.read().unwrap_or_else(|e| e.into_inner());
            f(&d.tuples)
        })
        .await
    }

    /// Check (with contextual tuples).
    pub async fn check(
        &self,
        tenant_id: &str,
        req: &CheckRequest,
        min_revision: Option<i64>,
        model_id: Option<&str>,
    ) -> Result<bool, PdpError> {
        let req = req.clone();
        let limits = self.limits;
        self.with(tenant_id, min_revision, model_id, move |m, t| {
            Ok(Engine::new(m, t).with_limits(limits).check(&req)?)
        })
        .await
    }

    /// Several checks over one snapshot.
    pub async fn batch_check(
        &self,
        tenant_id: &str,
        reqs: &[CheckRequest],
        min_revision: Option<i64>,
    ) -> Result<Vec<Result<bool, AuthzError>>, PdpError> {
        let reqs = reqs.to_vec();
        let limits = self.limits;
        self.with(tenant_id, min_revision, None, move |m, t| {
            Ok(Engine::new(m, t).with_limits(limits).batch_check(&reqs))
        })
        .await
    }

    /// ListObjects.
    pub async fn list_objects(
        &self,
        tenant_id: &str,
        req: &ListObjectsRequest,
        min_revision: Option<i64>,
    ) -> Result<Vec<String>, PdpError> {
        let req = req.clone();
        let limits = self.limits;
        self.with(tenant_id, min_revision, None, move |m, t| {
            Ok(Engine::new(m, t).with_limits(limits).list_objects(&req)?)
        })
        .await
    }

    /// ListUsers.
    pub async fn list_users(
        &self,
        tenant_id: &str,
        req: &ListUsersRequest,
        min_revision: Option<i64>,
    ) -> Result<Vec<String>, PdpError> {
        let req = req.clone();
        let limits = self.limits;
        self.with(tenant_id, min_revision, None, move |m, t| {
            Ok(Engine::new(m, t).with_limits(limits).list_users(&req)?)
        })
        .await
    }

    /// Relations of `object_type` (for action search).
    pub async fn relations(
        &self,
        tenant_id: &str,
        object_type: &str,
    ) -> Result<Vec<String>, PdpError> {
        let (_, model) = self.current_model(tenant_id).await?;
        Ok(model
            .to_json()
            .get("type_definitions")
            .and_then(|v| v.as_array())
            .and_then(|types| {
                types
                    .iter()
                    .find(|t| t.get("type").and_then(|n| n.as_str()) == Some(object_type))
            })
            .and_then(|t| t.get("relations").and_then(|r| r.as_object()))
            .map(|r| r.keys().cloned().collect())
            .unwrap_or_default())
    }

    /// Validate and store a Cedar policy set (and schema); returns its version.
    pub async fn set_policy(
        &self,
        tenant_id: &str,
        policies: &str,
        schema: Option<&str>,
        now: i64,
    ) -> Result<i64, PdpError> {
        TenantPolicy::new(policies, schema)?;
        let v = self
            .store
            .put_policy(tenant_id, policies, schema, now)
            .await?;
        self.invalidate(tenant_id);
        self.sync(tenant_id, Some(0)).await?;
        Ok(v)
    }

    /// The tenant's current policy, if any.
    pub async fn policy(&self, tenant_id: &str) -> Result<Option<Arc<TenantPolicy>>, PdpError> {
        let state = self.sync(tenant_id, None).await?;
        Ok(lock(&state.meta)
            .as_ref()
            .and_then(|s| s.policy.as_ref().map(|(_, p)| p.clone())))
    }
}
