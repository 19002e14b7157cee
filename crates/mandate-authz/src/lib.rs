//! Relationship-graph authorization for Mandate, compatible with OpenFGA authorization models
//! (schema 1.1).
//!
//! Models come from the OpenFGA DSL or its JSON API form and are validated on load the way
//! OpenFGA validates them on write; tuples are validated against the model's type restrictions;
//! queries (Check, BatchCheck, ListObjects, ListUsers, Expand) follow OpenFGA's semantics,
//! including contextual tuples, the resolve-depth limit (an error, not `false`) and cycle
//! handling (`false`). OpenFGA's own conformance suite runs in `tests/all/openfga_conformance.rs`.
//!
//! The evaluator reads tuples through the small synchronous [`TupleReader`] trait so a store can
//! supply its own index; [`MemoryTuples`] is an indexed in-memory implementation with OpenFGA's
//! atomic batch semantics.
//!
//! ```
//! use mandate_authz::{AuthorizationModel, CheckRequest, Engine, MemoryTuples, Tuple};
//!
//! let model = AuthorizationModel::from_dsl(
//!     "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define viewer: [user, user:*]\n",
//! )?;
//! let mut tuples = MemoryTuples::new();
//! tuples.write(&model, &[Tuple::new("doc:1", "viewer", "user:anne")], &[])?;
//! let engine = Engine::new(&model, &tuples);
//! assert!(engine.check(&CheckRequest::new("doc:1", "viewer", "user:anne"))?);
//! assert!(!engine.check(&CheckRequest::new("doc:1", "viewer", "user:bob"))?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Entry points:
//! - [`AuthorizationModel::from_dsl`], [`AuthorizationModel::from_json`],
//!   [`AuthorizationModel::to_json`], [`AuthorizationModel::to_dsl`],
//!   [`AuthorizationModel::validate_tuple`];
//! - [`MemoryTuples::write`] (atomic batch), [`MemoryTuples::read`] ([`ReadFilter`]);
//! - [`Engine::new`]`(&model, &reader)` then [`Engine::check`], [`Engine::batch_check`],
//!   [`Engine::list_objects`], [`Engine::list_users`], [`Engine::expand`];
//!   [`Engine::with_limits`] sets [`ResolutionLimits`] (default resolve depth 25, as OpenFGA, and
//!   a work budget per request, [`DEFAULT_MAX_WORK`]); at most [`MAX_CONTEXTUAL_TUPLES`]
//!   contextual tuples per request.
//! - Errors are [`AuthzError`] (with [`AuthzError::openfga_code`]), [`ModelError`], [`TupleError`].
//!
//! Performance notes: `examples/bench_graph.rs` builds a ~1M-tuple graph and reports Check
//! latency and throughput, ListObjects time and RSS. ListObjects expands backwards from the user
//! to candidate objects, then confirms each with Check (sharing one memo for the user), so its
//! answers always agree with Check.
//!
//! Conditions (`with cond`, `condition` blocks) are parsed, validated and stored, but not
//! evaluated: a check that depends on a conditional tuple fails with
//! [`AuthzError::ConditionUnsupported`] rather than guessing.

#![warn(missing_docs)]

pub mod admin;
pub mod authzen;
mod check;
pub mod decision;
mod dsl;
mod engine;
mod error;
mod hash;
mod model;
pub mod pdp;
pub mod policy;
mod storage;
mod store;
mod tuple;

pub use check::{DEFAULT_MAX_WORK, ResolutionLimits};
pub use decision::{Decision, DecisionRequest, Part, Reason, decide};
pub use engine::{
    CheckRequest, Engine, ExpandKind, ExpandNode, ListObjectsRequest, ListUsersRequest,
    MAX_CONTEXTUAL_TUPLES, UserFilter,
};
pub use error::{AuthzError, ModelError, TupleError};
pub use model::{
    AuthorizationModel, ConditionDef, ConditionParamType, RelationDef, RestrictionKind,
    SCHEMA_VERSION, TypeDef, TypeRestriction, Userset,
};
pub use pdp::{Pdp, PdpError};
pub use policy::{
    MandateGrant, PolicyContext, PolicyDecision, PolicyEntity, PolicyError, PolicyRequest,
    TenantPolicy,
};
pub use storage::{AuthzStore, StoredModel, StoredPolicy, StoredTuple, TupleChange};
pub use store::{Layered, MemoryTuples, ReadFilter, TupleReader};
pub use tuple::{
    ObjectRef, Tuple, TupleCondition, TupleRef, UserRef, parse_object, parse_relation, parse_user,
};
