//! Runtime policy with [Cedar](https://www.cedarpolicy.com): per-tenant guardrails over what the
//! relationship graph cannot see (the act chain, mandate constraints, `acr`/`amr`, risk, time,
//! network, request attributes such as an amount).
//!
//! A [`TenantPolicy`] is a Cedar policy set validated (strict mode) against a Cedar schema when it
//! is created, so a tenant's upload is rejected with Cedar's own diagnostics
//! ([`PolicyError`]) instead of failing later at request time. With no schema, the built-in
//! [`DEFAULT_SCHEMA`] is used; a tenant that needs its own resource types, actions or request
//! attributes uploads a complete schema (start from [`DEFAULT_SCHEMA`]), in the human-readable
//! Cedar schema format or the JSON schema format (text starting with `{`).
//!
//! # Guardrail semantics
//!
//! The policy layer is a **guardrail** on top of the graph, not a second source of grants:
//!
//! - a matching `forbid` denies;
//! - if the policy set has **no `permit` policy at all**, the absence of a permit means "no
//!   objection": the request is allowed unless a `forbid` matches (guardrail mode);
//! - once the tenant writes at least one `permit`, Cedar's default-deny applies: some `permit`
//!   must match (allow-list mode);
//! - any evaluation error (a missing attribute, a value of the wrong type, an overflow) denies and
//!   is reported in [`PolicyDecision::errors`]: Cedar itself would skip an erroring `forbid`, which
//!   would fail open.
//!
//! # Approval: `@approval("required")`
//!
//! A policy annotated `@approval("required")` is one a person's fresh approval (for example a
//! CIBA request to them) can settle:
//!
//! - on a `forbid`: it denies unless the request says the person approved
//!   ([`PolicyContext::approved`]);
//! - on a `permit`: it permits only if the person approved.
//!
//! When the decision is deny and approval alone would turn it into allow (no unannotated
//! `forbid` matched and nothing errored), [`PolicyDecision::approval_required`] is true and
//! [`PolicyDecision::approval_policies`] names the policies asking for it; the caller asks the
//! person and evaluates again with `approved = true`. Any other value of the annotation is
//! rejected on upload (so a typo cannot silently turn a soft rule into a hard one or back).
//! `context.approved` is also visible to policies for rules of their own.
//!
//! Policies may carry `@id("...")` (their id in decisions and diagnostics, instead of Cedar's
//! `policy0`, `policy1`, ...) and `@reason("...")` (a message for the person or the audit trail,
//! reported in [`PolicyDecision::reasons`]).
//!
//! ```
//! use mandate_authz::policy::{PolicyContext, PolicyEntity, PolicyRequest, TenantPolicy};
//!
//! let policy = TenantPolicy::new(
//!     r#"
//!     @id("agents-may-not-delete")
//!     @reason("agents may not delete")
//!     forbid (principal is Mandate::Agent, action == Mandate::Action::"delete", resource);
//!
//!     @id("payments-over-100-need-mfa")
//!     forbid (principal, action == Mandate::Action::"pay", resource)
//!     when { context.request has amount && context.request.amount > 100 }
//!     unless { context.acr == "urn:mandate:acr:mfa" };
//!
//!     @id("sharing-needs-approval")
//!     @approval("required")
//!     forbid (principal is Mandate::Agent, action == Mandate::Action::"share", resource);
//!     "#,
//!     None,
//! )?;
//!
//! let doc = PolicyEntity::resource("document", "d1");
//! let by_agent = |action: &str| {
//!     PolicyRequest::new(PolicyEntity::agent("planner"), action, doc.clone())
//!         .with_context(PolicyContext::delegated("alice", ["planner"]))
//! };
//! // A person deleting directly: no objection; an agent: forbidden.
//! let direct = PolicyRequest::new(PolicyEntity::user("alice"), "delete", doc.clone());
//! assert!(policy.evaluate(&direct).allowed);
//! let denied = policy.evaluate(&by_agent("delete"));
//! assert!(!denied.allowed);
//! assert_eq!(denied.forbidden_by, ["agents-may-not-delete"]);
//! // Sharing by an agent waits for the person's approval.
//! let pending = policy.evaluate(&by_agent("share"));
//! assert!(!pending.allowed && pending.approval_required);
//! let mut approved = by_agent("share");
//! approved.context.approved = true;
//! assert!(policy.evaluate(&approved).allowed);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Requests
//!
//! A [`PolicyRequest`] becomes a Cedar request: principal `Mandate::User`, `Mandate::Agent` or
//! `Mandate::Client`; action `Mandate::Action::"<id>"`; the resource (`Mandate::Resource` with a
//! `type` attribute by default, or any type the tenant's schema declares); the context record
//! described in [`DEFAULT_SCHEMA`]. Actions the schema does not declare are still evaluated:
//! policies that do not constrain the action apply to them. Entity and request attributes are
//! JSON values converted as Cedar's JSON format does (use `{"__entity": {"type", "id"}}` and
//! `{"__extn": {"fn", "arg"}}` for entity references and extension values; integral numbers are
//! `Long`, other numbers `decimal` when they have at most four decimals; `null` means absent).
//! They are not checked against the schema, so an AuthZEN request may carry properties no policy
//! uses; a policy reaching a value of the wrong type errors and therefore denies.

use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Effect, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicyId,
    PolicySet, Request, Schema, ValidationMode, Validator,
};
use miette::Diagnostic;
use serde_json::{Map, Value, json};
use thiserror::Error;

/// Mandate's built-in Cedar schema (namespace `Mandate`), used when a tenant uploads none.
///
/// Principals are people (`User`), agents (`Agent`) and OAuth clients acting for themselves
/// (`Client`); resources are `Resource` (its `type` attribute carries the AuthZEN resource type)
/// or a principal or mandate (for administrative actions). The context record is what
/// [`PolicyContext`] fills in: `act_chain` (every agent of the chain; Cedar sets are unordered,
/// so `hop` gives the principal's place: 1 is the agent the person delegated to, `chain_length`
/// the outermost, 0 a direct request), `mandate` (the delegation's constraints), `acr`, `amr`,
/// `risk` (0–100), `time` (Unix seconds) and `now` (the same as a Cedar `datetime`, for
/// time-of-day rules: `context.now.toTime() < duration("8h")`), `ip`, `approved` and `request` (request-specific
/// attributes, such as an `amount` in minor units).
pub const DEFAULT_SCHEMA: &str = r#"namespace Mandate {
  entity User = {
    "name"?: String,
    "email"?: String,
    "roles"?: Set<String>,
  };
  entity Agent = {
    "name"?: String,
    "provider"?: String,
    "model"?: String,
    "version"?: String,
    "owner"?: User,
    "tenant_owned"?: Bool,
    "scope_ceiling"?: Set<String>,
  };
  entity Client = {
    "name"?: String,
  };
  entity Mandate = {
    "user"?: User,
    "agent"?: Agent,
    "scopes"?: Set<String>,
    "resources"?: Set<String>,
  };
  entity Resource in [Resource] = {
    "type"?: String,
    "owner"?: User,
  };

  // One RFC 9396 authorization detail; members other than these are passed through untyped.
  type AuthorizationDetail = {
    "type": String,
    "actions"?: Set<String>,
    "locations"?: Set<String>,
    "datatypes"?: Set<String>,
    "identifier"?: String,
    "privileges"?: Set<String>,
  };
  type MandateConstraints = {
    "id": String,
    "scopes": Set<String>,
    "resources": Set<String>,
    "authorization_details": Set<AuthorizationDetail>,
    // Cedar has no quantifier over a set of records, so details are also flattened:
    // their types, and "type:action" for each action (e.g. "calendar:write").
    "detail_types": Set<String>,
    "detail_actions": Set<String>,
    "approval_required": Set<String>,
    "max_delegation_depth"?: Long,
    "expires_at"?: Long,
  };
  type RequestAttrs = {
    "amount"?: Long,
    "currency"?: String,
    "recipient"?: String,
    "count"?: Long,
    "purpose"?: String,
  };
  type Context = {
    "subject"?: User,
    "client"?: Client,
    "act_chain": Set<Agent>,
    "chain_length": Long,
    "hop": Long,
    "delegated": Bool,
    "mandate"?: MandateConstraints,
    "acr": String,
    "amr": Set<String>,
    "risk": Long,
    "time": Long,
    "now": datetime,
    "ip"?: ipaddr,
    "approved": Bool,
    "request": RequestAttrs,
  };

  action "read", "list", "search", "create", "write", "update", "delete", "share",
         "pay", "transfer", "send", "execute", "approve", "admin"
    appliesTo {
      principal: [User, Agent, Client],
      resource: [Resource, User, Agent, Client, Mandate],
      context: Context,
    };
}
"#;

/// Cedar type of people.
pub const USER_TYPE: &str = "Mandate::User";
/// Cedar type of agents.
pub const AGENT_TYPE: &str = "Mandate::Agent";
/// Cedar type of OAuth clients acting for themselves.
pub const CLIENT_TYPE: &str = "Mandate::Client";
/// Cedar type of mandates (as resources of administrative actions).
pub const MANDATE_TYPE: &str = "Mandate::Mandate";
/// Cedar type of generic resources (the AuthZEN resource type is its `type` attribute).
pub const RESOURCE_TYPE: &str = "Mandate::Resource";
/// Cedar type of actions: `Mandate::Action::"read"`.
pub const ACTION_TYPE: &str = "Mandate::Action";

/// The annotation marking a policy a person's approval can settle.
pub const APPROVAL_ANNOTATION: &str = "approval";
/// The only accepted value of [`APPROVAL_ANNOTATION`].
pub const APPROVAL_REQUIRED: &str = "required";

/// One problem Cedar found, readable on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDiagnostic {
    /// The policy at fault (its `@id` or Cedar's `policyN`), when the problem is in one policy.
    pub policy_id: Option<String>,
    /// 1-based line and column in the uploaded text, when Cedar points at a place.
    pub location: Option<(usize, usize)>,
    /// Cedar's message, with its help text when it has one.
    pub message: String,
}

impl std::fmt::Display for PolicyDiagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(id) = &self.policy_id {
            write!(f, "policy `{id}`: ")?;
        }
        if let Some((line, col)) = self.location {
            write!(f, "line {line}, column {col}: ")?;
        }
        f.write_str(&self.message)
    }
}

fn join(diags: &[PolicyDiagnostic]) -> String {
    diags
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why a tenant's policies or schema were rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PolicyError {
    /// The schema text is not a valid Cedar schema (either format).
    #[error("invalid Cedar schema: {}", join(.0))]
    Schema(Vec<PolicyDiagnostic>),
    /// The policy text does not parse as Cedar policies.
    #[error("invalid Cedar policies: {}", join(.0))]
    Parse(Vec<PolicyDiagnostic>),
    /// The policies parse but do not validate against the schema (strict mode).
    #[error("Cedar policies do not validate against the schema: {}", join(.0))]
    Validation(Vec<PolicyDiagnostic>),
    /// Two policies share an `@id`, or an annotation has a value Mandate does not accept.
    #[error("{}", join(.0))]
    Annotation(Vec<PolicyDiagnostic>),
}

impl PolicyError {
    /// The individual diagnostics, for an API response listing each.
    pub fn diagnostics(&self) -> &[PolicyDiagnostic] {
        match self {
            Self::Schema(d) | Self::Parse(d) | Self::Validation(d) | Self::Annotation(d) => d,
        }
    }
}

/// 1-based (line, column) of a byte offset in `src`.
fn line_col(src: &str, offset: usize) -> Option<(usize, usize)> {
    let before = src.get(..offset)?;
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some((line, col))
}

/// Render a Cedar (miette) diagnostic: message, help, and the first labelled place in `src`.
fn diagnostic(d: &(dyn Diagnostic + '_), src: &str, policy_id: Option<String>) -> PolicyDiagnostic {
    let mut message = d.to_string();
    if let Some(help) = d.help() {
        message.push_str(&format!(" (help: {help})"));
    }
    if let Some(id) = &policy_id {
        // Cedar repeats the id inside its messages; it is already given once.
        message = message.replace(&format!("for policy `{id}`, "), "");
    }
    let location = d
        .labels()
        .and_then(|mut l| l.next())
        .and_then(|l| line_col(src, l.offset()));
    PolicyDiagnostic {
        policy_id,
        location,
        message,
    }
}

/// A tenant's validated Cedar policy set and the schema it was validated against.
#[derive(Debug, Clone)]
pub struct TenantPolicy {
    schema: Schema,
    forbids: PolicySet,
    permits: PolicySet,
    has_permits: bool,
    actions: Entities,
    warnings: Vec<PolicyDiagnostic>,
}

impl TenantPolicy {
    /// Parse and validate (strict mode) `policies_text` against `schema_text` (Cedar schema or
    /// JSON schema format; `None`: [`DEFAULT_SCHEMA`]). Rejected with Cedar's diagnostics.
    pub fn new(policies_text: &str, schema_text: Option<&str>) -> Result<Self, PolicyError> {
        let schema_text = schema_text.unwrap_or(DEFAULT_SCHEMA);
        let schema = parse_schema(schema_text)?;
        let parsed = PolicySet::from_str(policies_text).map_err(|e| {
            PolicyError::Parse(
                e.iter()
                    .map(|p| diagnostic(p, policies_text, None))
                    .collect(),
            )
        })?;
        let set = rename_and_check(parsed)?;

        let validator = Validator::new(schema.clone());
        let result = validator.validate(&set, ValidationMode::Strict);
        if !result.validation_passed() {
            return Err(PolicyError::Validation(
                result
                    .validation_errors()
                    .map(|e| diagnostic(e, policies_text, Some(e.policy_id().to_string())))
                    .collect(),
            ));
        }
        let warnings = result
            .validation_warnings()
            .map(|w| diagnostic(w, policies_text, Some(w.policy_id().to_string())))
            .collect();

        let mut forbids = PolicySet::new();
        let mut permits = PolicySet::new();
        for p in set.policies() {
            let target = match p.effect() {
                Effect::Forbid => &mut forbids,
                Effect::Permit => &mut permits,
            };
            // Ids are unique in `set`, so adding to a fresh set cannot fail.
            let _ = target.add(p.clone());
        }
        let has_permits = !permits.is_empty();
        let actions = schema
            .action_entities()
            .map_err(|e| PolicyError::Schema(vec![diagnostic(&e, schema_text, None)]))?;
        Ok(Self {
            schema,
            forbids,
            permits,
            has_permits,
            actions,
            warnings,
        })
    }

    /// Validator warnings (strict mode passed, but Cedar flags something, such as a policy
    /// that can never apply); worth showing to whoever uploaded the policies.
    pub fn warnings(&self) -> &[PolicyDiagnostic] {
        &self.warnings
    }

    /// The schema the policies were validated against.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Whether the tenant wrote any `permit` (allow-list mode) or only `forbid`s (guardrail
    /// mode, where no matching permit means no objection).
    pub fn has_permits(&self) -> bool {
        self.has_permits
    }

    /// The `@reason` annotation of a policy, if any.
    pub fn reason(&self, policy_id: &str) -> Option<&str> {
        let id = PolicyId::new(policy_id);
        self.forbids
            .annotation(&id, "reason")
            .or_else(|| self.permits.annotation(&id, "reason"))
    }

    /// Decide one request. Never fails: a request Cedar cannot take, or an evaluation error,
    /// denies with the problem in [`PolicyDecision::errors`].
    pub fn evaluate(&self, req: &PolicyRequest) -> PolicyDecision {
        let (request, entities) = match self.to_cedar(req) {
            Ok(x) => x,
            Err(e) => {
                return PolicyDecision {
                    errors: vec![e],
                    ..PolicyDecision::default()
                };
            }
        };
        let authorizer = Authorizer::new();
        let mut errors = Vec::new();
        let mut matched = |set: &PolicySet| -> Vec<String> {
            let resp = authorizer.is_authorized(&request, set, &entities);
            errors.extend(resp.diagnostics().errors().map(ToString::to_string));
            // With only one effect in the set, the reasons are exactly the satisfied policies.
            let mut ids: Vec<String> = resp
                .diagnostics()
                .reason()
                .map(ToString::to_string)
                .collect();
            ids.sort();
            ids
        };
        let forbids = matched(&self.forbids);
        let permits = if self.has_permits {
            matched(&self.permits)
        } else {
            Vec::new()
        };

        let soft = |set: &PolicySet, id: &str| {
            set.annotation(&PolicyId::new(id), APPROVAL_ANNOTATION) == Some(APPROVAL_REQUIRED)
        };
        let (soft_forbids, hard_forbids): (Vec<_>, Vec<_>) =
            forbids.into_iter().partition(|id| soft(&self.forbids, id));
        let (soft_permits, hard_permits): (Vec<_>, Vec<_>) =
            permits.into_iter().partition(|id| soft(&self.permits, id));

        let approved = req.context.approved;
        let clean = errors.is_empty() && hard_forbids.is_empty();
        let permitted = |with_approval: bool| {
            !self.has_permits
                || !hard_permits.is_empty()
                || (with_approval && !soft_permits.is_empty())
        };
        let allowed = clean && (approved || soft_forbids.is_empty()) && permitted(approved);
        let approval_required = !allowed && !approved && clean && permitted(true);

        let mut forbidden_by = hard_forbids;
        if !approved {
            forbidden_by.extend(soft_forbids.iter().cloned());
        }
        let mut approval_policies = Vec::new();
        if approval_required {
            approval_policies.extend(soft_forbids);
            if hard_permits.is_empty() {
                approval_policies.extend(soft_permits.iter().cloned());
            }
        }
        let mut reasons: Vec<String> = forbidden_by
            .iter()
            .chain(&approval_policies)
            .filter_map(|id| self.reason(id))
            .map(str::to_string)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if !allowed && forbidden_by.is_empty() && errors.is_empty() && !approval_required {
            reasons.push("no permit policy matched".to_string());
        }
        PolicyDecision {
            allowed,
            forbidden_by,
            approval_required,
            approval_policies,
            reasons,
            errors,
        }
    }

    fn to_cedar(&self, req: &PolicyRequest) -> Result<(Request, Entities), String> {
        let principal = req.principal.uid.to_cedar()?;
        let resource = req.resource.uid.to_cedar()?;
        let action = EntityRef::new(ACTION_TYPE, &req.action).to_cedar()?;
        let mut list = Vec::with_capacity(2 + req.entities.len());
        let mut seen = HashSet::new();
        for e in [&req.principal, &req.resource]
            .into_iter()
            .chain(&req.entities)
        {
            // The same entity given twice (e.g. the resource's owner as principal): first wins.
            if seen.insert(&e.uid) {
                list.push(e.to_cedar()?);
            }
        }
        let entities = self
            .actions
            .clone()
            .add_entities(list, None)
            .map_err(|e| format!("entities: {e}"))?;
        let context = Context::from_json_value(req.context.to_json(&req.principal.uid)?, None)
            .map_err(|e| format!("context: {e}"))?;
        let request = Request::new(principal, action, resource, context, None)
            .map_err(|e| format!("request: {e}"))?;
        Ok((request, entities))
    }
}

/// Parse a schema in the Cedar format, or the JSON format when the text starts with `{`.
fn parse_schema(text: &str) -> Result<Schema, PolicyError> {
    if text.trim_start().starts_with('{') {
        Schema::from_json_str(text)
            .map_err(|e| PolicyError::Schema(vec![diagnostic(&e, text, None)]))
    } else {
        Schema::from_cedarschema_str(text)
            .map(|(s, _warnings)| s)
            .map_err(|e| PolicyError::Schema(vec![diagnostic(&e, text, None)]))
    }
}

/// Give policies their `@id`, reject duplicate ids and unknown `@approval` values.
fn rename_and_check(parsed: PolicySet) -> Result<PolicySet, PolicyError> {
    let mut problems = Vec::new();
    let mut set = PolicySet::new();
    for t in parsed.templates() {
        problems.push(PolicyDiagnostic {
            policy_id: Some(t.id().to_string()),
            location: None,
            message: "templates (policies with ?principal or ?resource slots) are not supported"
                .to_string(),
        });
    }
    let mut policies: Vec<_> = parsed.policies().collect();
    // Keep the text order for stable diagnostics (Cedar numbers policies in order).
    policies.sort_by_key(|p| {
        let id = p.id().to_string();
        (
            id.strip_prefix("policy")
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(usize::MAX),
            id,
        )
    });
    for p in policies {
        let p = match p.annotation("id") {
            Some(id) if !id.is_empty() => p.new_id(PolicyId::new(id)),
            _ => p.clone(),
        };
        let id = p.id().to_string();
        if let Some(v) = p.annotation(APPROVAL_ANNOTATION)
            && v != APPROVAL_REQUIRED
        {
            problems.push(PolicyDiagnostic {
                policy_id: Some(id.clone()),
                location: None,
                message: format!(
                    "@{APPROVAL_ANNOTATION}(\"{v}\"): the only accepted value is \"{APPROVAL_REQUIRED}\""
                ),
            });
        }
        if set.add(p).is_err() {
            problems.push(PolicyDiagnostic {
                policy_id: Some(id.clone()),
                location: None,
                message: format!("two policies have the id `{id}`"),
            });
        }
    }
    if problems.is_empty() {
        Ok(set)
    } else {
        Err(PolicyError::Annotation(problems))
    }
}

/// A Cedar entity reference: a fully-qualified type (`Mandate::User`) and an id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntityRef {
    /// Fully-qualified Cedar type, e.g. [`USER_TYPE`].
    pub entity_type: String,
    /// The entity's id (any string).
    pub id: String,
}

impl EntityRef {
    /// Any type and id.
    pub fn new(entity_type: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            entity_type: entity_type.into(),
            id: id.into(),
        }
    }

    /// A person.
    pub fn user(id: impl Into<String>) -> Self {
        Self::new(USER_TYPE, id)
    }

    /// An agent.
    pub fn agent(id: impl Into<String>) -> Self {
        Self::new(AGENT_TYPE, id)
    }

    /// An OAuth client.
    pub fn client(id: impl Into<String>) -> Self {
        Self::new(CLIENT_TYPE, id)
    }

    /// This reference as a Cedar JSON attribute value (`{"__entity": ...}`).
    pub fn to_value(&self) -> Value {
        json!({"__entity": {"type": self.entity_type, "id": self.id}})
    }

    fn to_cedar(&self) -> Result<EntityUid, String> {
        let ty = EntityTypeName::from_str(&self.entity_type)
            .map_err(|e| format!("entity type `{}`: {e}", self.entity_type))?;
        Ok(EntityUid::from_type_name_and_id(
            ty,
            EntityId::new(&self.id),
        ))
    }
}

/// An entity with its attributes and parents (Cedar `in` hierarchy).
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyEntity {
    /// Who or what it is.
    pub uid: EntityRef,
    /// Attributes as JSON (see the module docs for the conversion).
    pub attrs: Map<String, Value>,
    /// Entities it is `in` (groups, folders, ...).
    pub parents: Vec<EntityRef>,
}

impl PolicyEntity {
    /// An entity with no attributes and no parents.
    pub fn new(uid: EntityRef) -> Self {
        Self {
            uid,
            attrs: Map::new(),
            parents: Vec::new(),
        }
    }

    /// A person.
    pub fn user(id: impl Into<String>) -> Self {
        Self::new(EntityRef::user(id))
    }

    /// An agent.
    pub fn agent(id: impl Into<String>) -> Self {
        Self::new(EntityRef::agent(id))
    }

    /// An OAuth client.
    pub fn client(id: impl Into<String>) -> Self {
        Self::new(EntityRef::client(id))
    }

    /// A generic `Mandate::Resource` whose `type` attribute is `kind` (the AuthZEN resource
    /// type, e.g. `document`).
    pub fn resource(kind: impl Into<String>, id: impl Into<String>) -> Self {
        Self::new(EntityRef::new(RESOURCE_TYPE, id)).with_attr("type", Value::String(kind.into()))
    }

    /// Set an attribute.
    pub fn with_attr(mut self, name: impl Into<String>, value: Value) -> Self {
        self.attrs.insert(name.into(), value);
        self
    }

    /// Add a parent.
    pub fn with_parent(mut self, parent: EntityRef) -> Self {
        self.parents.push(parent);
        self
    }

    fn to_cedar(&self) -> Result<Entity, String> {
        let mut attrs = Map::new();
        for (k, v) in &self.attrs {
            if let Some(v) = cedar_json(v).map_err(|e| format!("attribute `{k}`: {e}"))? {
                attrs.insert(k.clone(), v);
            }
        }
        let parents: Vec<Value> = self
            .parents
            .iter()
            .map(|p| json!({"type": p.entity_type, "id": p.id}))
            .collect();
        Entity::from_json_value(
            json!({
                "uid": {"type": self.uid.entity_type, "id": self.uid.id},
                "attrs": attrs,
                "parents": parents,
            }),
            None,
        )
        .map_err(|e| format!("entity {}::{:?}: {e}", self.uid.entity_type, self.uid.id))
    }
}

/// A mandate's terms as the decision and policies see them (`context.mandate`): what the person
/// granted, or, for the agent holding a token, what that token was narrowed to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MandateGrant {
    /// The mandate id.
    pub id: String,
    /// Scopes it grants.
    pub scopes: Vec<String>,
    /// RFC 8707 resources it allows (empty: only the issuer).
    pub resources: Vec<String>,
    /// RFC 9396 details it allows (JSON objects with a `type`).
    pub authorization_details: Vec<Value>,
    /// Actions (or scopes) that need the person's fresh approval each time.
    pub approval_required: Vec<String>,
    /// Further agents it may be handed on to.
    pub max_delegation_depth: Option<u32>,
    /// Expiry, Unix seconds.
    pub expires_at: Option<i64>,
}

/// The request context: who acts for whom, how the person authenticated, risk, time, network.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyContext {
    /// The person on whose behalf (the token's `sub`); `None` for a client acting for itself.
    pub subject: Option<String>,
    /// The OAuth client the request came through.
    pub client: Option<String>,
    /// Agent ids of the act chain, outermost (current) actor first; empty: no agent.
    pub act_chain: Vec<String>,
    /// The mandate the agent acts under.
    pub mandate: Option<MandateGrant>,
    /// The token's `acr` (empty when unknown).
    pub acr: String,
    /// The token's `amr`.
    pub amr: Vec<String>,
    /// Risk score, 0–100.
    pub risk: u8,
    /// Request time, Unix seconds.
    pub time: i64,
    /// Client IP address.
    pub ip: Option<IpAddr>,
    /// The person approved this request (e.g. through CIBA); lifts `@approval("required")`.
    pub approved: bool,
    /// Request-specific attributes (`context.request`), e.g. `amount`.
    pub request: Map<String, Value>,
}

impl PolicyContext {
    /// A person acting directly.
    pub fn direct(user: impl Into<String>) -> Self {
        Self {
            subject: Some(user.into()),
            ..Self::default()
        }
    }

    /// Agents acting for `user`; `chain` outermost first.
    pub fn delegated<I, S>(user: impl Into<String>, chain: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            subject: Some(user.into()),
            act_chain: chain.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    fn to_json(&self, principal: &EntityRef) -> Result<Value, String> {
        let len = self.act_chain.len();
        // Place of the principal in the chain counted from the person: innermost agent = 1.
        let hop = if principal.entity_type == AGENT_TYPE {
            self.act_chain
                .iter()
                .position(|a| *a == principal.id)
                .map_or(0, |i| len - i)
        } else {
            0
        };
        let mut ctx = Map::new();
        if let Some(s) = &self.subject {
            ctx.insert("subject".into(), EntityRef::user(s).to_value());
        }
        if let Some(c) = &self.client {
            ctx.insert("client".into(), EntityRef::client(c).to_value());
        }
        let chain: Vec<Value> = self
            .act_chain
            .iter()
            .map(|a| EntityRef::agent(a).to_value())
            .collect();
        ctx.insert("act_chain".into(), Value::Array(chain));
        ctx.insert("chain_length".into(), json!(len));
        ctx.insert("hop".into(), json!(hop));
        ctx.insert("delegated".into(), json!(len > 0));
        if let Some(m) = &self.mandate {
            let details = m
                .authorization_details
                .iter()
                .map(|d| cedar_json(d).map(|v| v.unwrap_or(Value::Null)))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("mandate authorization_details: {e}"))?;
            let mut rec = Map::new();
            rec.insert("id".into(), json!(m.id));
            rec.insert("scopes".into(), json!(m.scopes));
            rec.insert("resources".into(), json!(m.resources));
            rec.insert("authorization_details".into(), Value::Array(details));
            let mut types = BTreeSet::new();
            let mut actions = BTreeSet::new();
            for d in &m.authorization_details {
                let Some(ty) = d.get("type").and_then(Value::as_str) else {
                    continue;
                };
                types.insert(ty.to_string());
                for a in d
                    .get("actions")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    actions.insert(format!("{ty}:{a}"));
                }
            }
            rec.insert("detail_types".into(), json!(types));
            rec.insert("detail_actions".into(), json!(actions));
            rec.insert("approval_required".into(), json!(m.approval_required));
            if let Some(d) = m.max_delegation_depth {
                rec.insert("max_delegation_depth".into(), json!(d));
            }
            if let Some(e) = m.expires_at {
                rec.insert("expires_at".into(), json!(e));
            }
            ctx.insert("mandate".into(), Value::Object(rec));
        }
        ctx.insert("acr".into(), json!(self.acr));
        ctx.insert("amr".into(), json!(self.amr));
        ctx.insert("risk".into(), json!(self.risk.min(100)));
        ctx.insert("time".into(), json!(self.time));
        ctx.insert(
            "now".into(),
            json!({"__extn": {"fn": "datetime", "arg": rfc3339(self.time)}}),
        );
        if let Some(ip) = self.ip {
            ctx.insert(
                "ip".into(),
                json!({"__extn": {"fn": "ip", "arg": ip.to_string()}}),
            );
        }
        ctx.insert("approved".into(), json!(self.approved));
        let request = cedar_json(&Value::Object(self.request.clone()))
            .map_err(|e| format!("request attributes: {e}"))?
            .unwrap_or_else(|| json!({}));
        ctx.insert("request".into(), request);
        Ok(Value::Object(ctx))
    }
}

/// One authorization question for the policy layer.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyRequest {
    /// Who acts: a person, an agent (one hop of a chain) or a client.
    pub principal: PolicyEntity,
    /// Action id, `Mandate::Action::"<action>"`.
    pub action: String,
    /// What it acts on.
    pub resource: PolicyEntity,
    /// The rest of what policies may look at.
    pub context: PolicyContext,
    /// Further entities policies may reach (groups, parents, owners, the chain's agents).
    pub entities: Vec<PolicyEntity>,
}

impl PolicyRequest {
    /// A request with an empty context (time 0, no chain, no IP).
    pub fn new(principal: PolicyEntity, action: impl Into<String>, resource: PolicyEntity) -> Self {
        Self {
            principal,
            action: action.into(),
            resource,
            context: PolicyContext::default(),
            entities: Vec::new(),
        }
    }

    /// Replace the context.
    pub fn with_context(mut self, context: PolicyContext) -> Self {
        self.context = context;
        self
    }

    /// Add an entity policies may reach.
    pub fn with_entity(mut self, entity: PolicyEntity) -> Self {
        self.entities.push(entity);
        self
    }
}

/// What the policy layer says about one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyDecision {
    /// No forbid applies, nothing errored, and (allow-list mode) some permit applies.
    pub allowed: bool,
    /// Ids of the forbids that apply (including `@approval` ones not yet approved).
    pub forbidden_by: Vec<String>,
    /// Denied, but a person's approval alone would allow it.
    pub approval_required: bool,
    /// The `@approval("required")` policies asking for that approval.
    pub approval_policies: Vec<String>,
    /// `@reason` messages of the policies above (or why nothing permitted).
    pub reasons: Vec<String>,
    /// Evaluation errors (each denies): Cedar's message with the policy id.
    pub errors: Vec<String>,
}

/// Unix seconds as `YYYY-MM-DDThh:mm:ssZ` (UTC), the form Cedar's `datetime` takes.
fn rfc3339(t: i64) -> String {
    // Clamp to years 0000-9999, the range the format can express.
    let t = t.clamp(-62_167_219_200, 253_402_300_799);
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Convert a JSON value to Cedar's JSON value format; `Ok(None)` for `null` (absent).
fn cedar_json(v: &Value) -> Result<Option<Value>, String> {
    Ok(Some(match v {
        Value::Null => return Ok(None),
        Value::Bool(_) | Value::String(_) => v.clone(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                json!(i)
            } else if let Some(d) = decimal(n) {
                json!({"__extn": {"fn": "decimal", "arg": d}})
            } else {
                return Err(format!(
                    "number {n} is neither a 64-bit integer nor a decimal with at most 4 places"
                ));
            }
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .filter_map(|i| cedar_json(i).transpose())
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(o) if o.contains_key("__entity") || o.contains_key("__extn") => v.clone(),
        Value::Object(o) => {
            let mut out = Map::new();
            for (k, v) in o {
                if let Some(v) = cedar_json(v)? {
                    out.insert(k.clone(), v);
                }
            }
            Value::Object(out)
        }
    }))
}

/// A number as a Cedar `decimal` literal, when it has at most four decimal places.
fn decimal(n: &serde_json::Number) -> Option<String> {
    let s = n.to_string();
    if s.contains(['e', 'E']) {
        return None;
    }
    let (int, frac) = s.split_once('.')?;
    let frac = frac.trim_end_matches('0');
    (frac.len() <= 4).then(|| format!("{int}.{}", if frac.is_empty() { "0" } else { frac }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent_req(action: &str) -> PolicyRequest {
        PolicyRequest::new(
            PolicyEntity::agent("a1"),
            action,
            PolicyEntity::resource("document", "d1"),
        )
        .with_context(PolicyContext::delegated("alice", ["a1"]))
    }

    #[test]
    fn default_schema_parses_and_empty_set_allows() {
        let p = TenantPolicy::new("", None).unwrap();
        assert!(!p.has_permits());
        let d = p.evaluate(&agent_req("read"));
        assert!(d.allowed, "{d:?}");
        assert!(d.forbidden_by.is_empty() && d.errors.is_empty());
    }

    #[test]
    fn parse_errors_carry_location() {
        let err =
            TenantPolicy::new("permit(principal, action, resource)\nwhen { ", None).unwrap_err();
        assert!(matches!(err, PolicyError::Parse(_)), "{err}");
        assert!(err.diagnostics()[0].location.is_some(), "{err:?}");
    }

    #[test]
    fn validation_errors_name_the_policy() {
        let err = TenantPolicy::new(
            r#"@id("bad") forbid(principal, action, resource) when { context.nope == 1 };"#,
            None,
        )
        .unwrap_err();
        let PolicyError::Validation(d) = &err else {
            panic!("{err}")
        };
        assert_eq!(d[0].policy_id.as_deref(), Some("bad"));
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn unknown_approval_value_and_duplicate_ids_rejected() {
        let err = TenantPolicy::new(
            r#"@approval("maybe") forbid(principal, action, resource);"#,
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("approval"), "{err}");
        let err = TenantPolicy::new(
            r#"@id("x") forbid(principal, action, resource); @id("x") forbid(principal, action, resource);"#,
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("`x`"), "{err}");
    }

    #[test]
    fn allow_list_mode_denies_without_permit() {
        let p = TenantPolicy::new(
            r#"permit(principal, action == Mandate::Action::"read", resource);"#,
            None,
        )
        .unwrap();
        assert!(p.has_permits());
        assert!(p.evaluate(&agent_req("read")).allowed);
        let d = p.evaluate(&agent_req("write"));
        assert!(!d.allowed && !d.approval_required);
        assert_eq!(d.reasons, ["no permit policy matched"]);
    }

    #[test]
    fn approval_on_permit() {
        let p = TenantPolicy::new(
            r#"permit(principal, action == Mandate::Action::"read", resource);
               @id("pay-with-approval") @approval("required")
               permit(principal, action == Mandate::Action::"pay", resource);"#,
            None,
        )
        .unwrap();
        let d = p.evaluate(&agent_req("pay"));
        assert!(!d.allowed && d.approval_required, "{d:?}");
        assert_eq!(d.approval_policies, ["pay-with-approval"]);
        let mut r = agent_req("pay");
        r.context.approved = true;
        assert!(p.evaluate(&r).allowed);
        // Approval is pointless when nothing would permit.
        let d = p.evaluate(&agent_req("delete"));
        assert!(!d.allowed && !d.approval_required);
    }

    #[test]
    fn hard_forbid_beats_approval() {
        let p = TenantPolicy::new(
            r#"@id("soft") @approval("required") forbid(principal, action == Mandate::Action::"delete", resource);
               @id("hard") forbid(principal is Mandate::Agent, action == Mandate::Action::"delete", resource);"#,
            None,
        )
        .unwrap();
        let d = p.evaluate(&agent_req("delete"));
        assert!(!d.allowed && !d.approval_required);
        assert_eq!(d.forbidden_by, ["hard", "soft"]);
        let mut r = agent_req("delete");
        r.context.approved = true;
        let d = p.evaluate(&r);
        assert!(!d.allowed);
        assert_eq!(d.forbidden_by, ["hard"]);
    }

    #[test]
    fn json_conversion() {
        assert_eq!(cedar_json(&json!(null)).unwrap(), None);
        assert_eq!(
            cedar_json(&json!(12.5)).unwrap(),
            Some(json!({"__extn": {"fn": "decimal", "arg": "12.5"}}))
        );
        assert!(cedar_json(&json!(1.23456)).is_err());
        assert_eq!(
            cedar_json(&json!({"a": [1, null], "b": null})).unwrap(),
            Some(json!({"a": [1]}))
        );
        assert_eq!(line_col("ab\ncd", 4), Some((2, 2)));
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(i64::MAX), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn json_schema_format_accepted() {
        let schema = json!({"Mandate": {
            "entityTypes": {"User": {}, "Agent": {}, "Resource": {}},
            "actions": {"read": {"appliesTo": {
                "principalTypes": ["User", "Agent"], "resourceTypes": ["Resource"],
                "context": {"type": "Record", "attributes": {"risk": {"type": "Long"}}}
            }}}
        }});
        let p = TenantPolicy::new(
            r#"forbid(principal, action, resource) when { context.risk > 50 };"#,
            Some(&schema.to_string()),
        )
        .unwrap();
        let mut r = agent_req("read");
        r.context.risk = 80;
        assert!(!p.evaluate(&r).allowed);
        r.context.risk = 10;
        assert!(p.evaluate(&r).allowed);
    }
}
