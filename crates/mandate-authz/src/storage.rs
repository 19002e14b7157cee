//! What the authorization crate needs from a database: models, tuples with a gap-free
//! revision and their change log, and Cedar policy versions. Owned here, where it is used;
//! mandate-store implements it for SQLite and PostgreSQL.

use async_trait::async_trait;
use mandate_core::store::StoreResult;

/// A relationship tuple as stored (OpenFGA strings: `type:id`, relation, `type:id[#rel]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTuple {
    /// `type:id`.
    pub object: String,
    /// The relation name.
    pub relation: String,
    /// `type:id`, `type:*` or `type:id#relation`.
    pub user: String,
    /// An OpenFGA condition (`{"name", "context"}`) as JSON text.
    pub condition: Option<String>,
}

/// One change of a tuple write: what happened at which revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TupleChange {
    /// The revision the change was made at.
    pub revision: i64,
    /// A delete (else a write).
    pub delete: bool,
    /// The tuple written or deleted.
    pub tuple: StoredTuple,
}

/// One version of a tenant's authorization model (OpenFGA JSON form).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredModel {
    /// The model id (OpenFGA's `authorization_model_id`).
    pub id: String,
    /// The model in OpenFGA's JSON form.
    pub model: serde_json::Value,
    /// Unix seconds.
    pub created_at: i64,
}

/// One version of a tenant's Cedar policy set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPolicy {
    /// 1 for the first version, then one more per write.
    pub version: i64,
    /// The Cedar policy set, as text.
    pub policies: String,
    /// The Cedar schema, if one was given.
    pub schema: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
}

/// Fine-grained authorization data: models, tuples with revisions, policies. Validation is the
/// caller's (the authz crate); the store guarantees atomic batches and a gap-free revision.
#[async_trait]
pub trait AuthzStore: Send + Sync {
    /// Store a model version; it becomes the newest (written last wins, whatever `created_at`).
    async fn put_model(&self, tenant_id: &str, model: &StoredModel) -> StoreResult<()>;
    /// A model by id, or the newest (the last written) when `id` is `None`.
    async fn model(&self, tenant_id: &str, id: Option<&str>) -> StoreResult<Option<StoredModel>>;
    /// Every model version, newest first.
    async fn list_models(&self, tenant_id: &str) -> StoreResult<Vec<StoredModel>>;
    /// Apply a batch atomically: a write of a stored tuple is `Conflict`, a delete of a missing
    /// one `NotFound`, and nothing changes. Returns the tenant's new revision.
    async fn write_tuples(
        &self,
        tenant_id: &str,
        writes: &[StoredTuple],
        deletes: &[StoredTuple],
    ) -> StoreResult<i64>;
    /// The current revision (0 before any write).
    async fn tuple_revision(&self, tenant_id: &str) -> StoreResult<i64>;
    /// The tuple revision and the count of model and policy writes (both 0 before any write):
    /// a snapshot holding both is current.
    async fn authz_head(&self, tenant_id: &str) -> StoreResult<(i64, i64)>;
    /// Every stored tuple and the revision it reflects at least (changes after it may be
    /// partly included; applying them again is harmless).
    async fn tuples_snapshot(&self, tenant_id: &str) -> StoreResult<(i64, Vec<StoredTuple>)>;
    /// Changes after `revision`, in order, at most `limit`.
    async fn tuple_changes(
        &self,
        tenant_id: &str,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<TupleChange>>;
    /// Store a new policy version; returns its number.
    async fn put_policy(
        &self,
        tenant_id: &str,
        policies: &str,
        schema: Option<&str>,
        now: i64,
    ) -> StoreResult<i64>;
    /// The newest policy version.
    async fn policy(&self, tenant_id: &str) -> StoreResult<Option<StoredPolicy>>;
}
