//! The AuthZEN Authorization API 1.0 evaluation, over the [`Pdp`]: who (a subject, or the
//! person, act chain and mandate of a verified access token), may do what (action) on which
//! resource. The graph answers for the person (`{resource.type}:{resource.id}` with relation =
//! action name, user = `{subject.type}:{subject.id}`); for an agent the mandate, each hop's
//! ceiling and the tenant's Cedar policy are checked too ([`crate::decide`]). The delegation
//! need of an action is the scope `{resource.type}.{action.name}`, or, when the token carries
//! `authorization_details` of the resource's type, a detail of that type listing the action in
//! `actions`.

use std::sync::Arc;

use mandate_token::claims::AccessTokenClaims;
use serde_json::{Map, Value, json};

use mandate_core::StoreError;
use mandate_core::audit::{AuditEvent, EventKind, Outcome, Principal, RequestMeta};
use mandate_core::domain::agents::AgentStatus;
use mandate_core::store::Store;

use crate::decision::{Decision, DecisionRequest, Hop, MandateGrant, Needs, decide};
use crate::engine::CheckRequest;
use crate::pdp::{Pdp, PdpError};
use crate::policy::{PolicyContext, PolicyEntity, PolicyRequest};
use crate::tuple::Tuple;

/// A subject, resource or action as AuthZEN sends it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Entity {
    /// `type` (a subject or resource type; empty for an action).
    pub kind: String,
    /// `id` (for an action: its `name`).
    pub id: String,
    /// `properties`.
    pub properties: Map<String, Value>,
}

/// One evaluation request.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The subject; ignored when `token` is given.
    pub subject: Entity,
    /// The action (its name in `id`).
    pub action: Entity,
    /// The resource.
    pub resource: Entity,
    /// `context`: `request` attributes for policies, `contextual_tuples`, `approved`,
    /// `risk`, `ip`, `revision` (a tuple-write revision to read at least).
    pub context: Map<String, Value>,
    /// The verified claims of the end user's access token, when the caller passed one.
    pub token: Option<Arc<AccessTokenClaims>>,
}

/// Why an evaluation request was refused before deciding.
#[derive(Debug, thiserror::Error)]
pub enum EvaluationError {
    /// The request is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The decision point failed.
    #[error(transparent)]
    Pdp(#[from] PdpError),
    /// The decision's audit record could not be written: no decision is given.
    #[error("the audit record could not be written: {0}")]
    Audit(StoreError),
}

/// Decide one evaluation.
pub async fn evaluate(
    pdp: &Pdp,
    store: &dyn Store,
    tenant_id: &str,
    e: &Evaluation,
    now: i64,
) -> Result<Decision, EvaluationError> {
    if e.resource.kind.is_empty() || e.resource.id.is_empty() || e.action.id.is_empty() {
        return Err(EvaluationError::Invalid(
            "resource.type, resource.id and action.name are required".into(),
        ));
    }
    let revision = e.context.get("revision").and_then(Value::as_i64);
    let contextual: Vec<Tuple> = match e.context.get("contextual_tuples") {
        None => vec![],
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|x| EvaluationError::Invalid(format!("contextual_tuples: {x}")))?,
    };
    // Who: the person (and chain) of a token, or the subject as given.
    let (person, chain, mandate_id, claims) = match &e.token {
        Some(c) => {
            let chain = c.chain().into_iter().map(str::to_string).collect();
            (format!("user:{}", c.sub), chain, c.mandate.clone(), Some(c))
        }
        None => {
            if e.subject.kind.is_empty() || e.subject.id.is_empty() {
                return Err(EvaluationError::Invalid(
                    "subject.type and subject.id are required".into(),
                ));
            }
            (
                format!("{}:{}", e.subject.kind, e.subject.id),
                vec![],
                None,
                None,
            )
        }
    };
    let object = format!("{}:{}", e.resource.kind, e.resource.id);
    let check = CheckRequest::new(object, e.action.id.clone(), person.clone())
        .with_contextual_tuples(contextual);
    let person_allowed = match pdp.check(tenant_id, &check, revision, None).await {
        Ok(b) => b,
        // A relation the model does not define: nobody has it. A request refused for the work
        // it would take (too many contextual tuples) is an error, not a denial.
        Err(PdpError::Authz(err)) if err.openfga_code() == 2000 && !err.is_resource_limit() => {
            false
        }
        Err(x) => return Err(x.into()),
    };
    let policy = pdp.policy(tenant_id).await?;
    let person_id = person
        .split_once(':')
        .map(|(_, id)| id.to_string())
        .unwrap_or_default();
    let mut context = if chain.is_empty() {
        PolicyContext::direct(person_id.clone())
    } else {
        PolicyContext::delegated(person_id.clone(), chain.clone())
    };
    context.time = now;
    context.approved = e
        .context
        .get("approved")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    context.risk = e
        .context
        .get("risk")
        .and_then(Value::as_u64)
        .unwrap_or(0)
        .min(100) as u8;
    context.ip = e
        .context
        .get("ip")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok());
    if let Some(Value::Object(r)) = e.context.get("request") {
        context.request = r.clone();
    }
    if let Some(c) = claims {
        context.acr = c.acr.clone().unwrap_or_default();
        context.amr = c.amr.clone();
        context.client = Some(c.client_id.clone());
    }
    let mut resource = PolicyEntity::resource(e.resource.kind.clone(), e.resource.id.clone());
    for (k, v) in &e.resource.properties {
        resource = resource.with_attr(k.clone(), v.clone());
    }
    let principal = PolicyEntity::user(person_id.clone());
    let mut request = PolicyRequest::new(principal, e.action.id.clone(), resource);
    // Delegation: mandate and hops.
    let mut hops = Vec::new();
    let mut mandate = None;
    let mut needs = Needs::default();
    if !chain.is_empty() {
        for id in &chain {
            match store.agent(tenant_id, id).await.map_err(PdpError::from)? {
                Some(a) if a.status == AgentStatus::Active => {
                    let entity =
                        PolicyEntity::agent(a.id.clone()).with_attr("name", a.name.clone().into());
                    hops.push(Hop {
                        agent: entity.clone(),
                        scope_ceiling: a.scope_ceiling.iter().map(str::to_string).collect(),
                    });
                    request = request.with_entity(entity);
                }
                _ => hops.push(Hop {
                    agent: PolicyEntity::agent(id.clone()),
                    scope_ceiling: vec![],
                }),
            }
        }
        if let Some(mid) = &mandate_id
            && let Some(m) = store
                .mandate(tenant_id, mid)
                .await
                .map_err(PdpError::from)?
            && m.is_active(now)
        {
            context.mandate = Some(MandateGrant {
                id: m.id.clone(),
                scopes: m.scope.iter().map(str::to_string).collect(),
                resources: m.resources.clone(),
                authorization_details: m.authorization_details.clone(),
                approval_required: m.approval_required.clone(),
                max_delegation_depth: Some(m.max_delegation_depth),
                expires_at: Some(m.expires_at),
            });
            // What this token was narrowed to is what the agent may use.
            let token_scopes: Vec<&str> = claims.map(|c| c.scopes().collect()).unwrap_or_default();
            let token_details: Vec<Value> = claims
                .and_then(|c| c.authorization_details.clone())
                .unwrap_or_default();
            mandate = Some(MandateGrant {
                id: m.id.clone(),
                scopes: m
                    .scope
                    .iter()
                    .filter(|s| token_scopes.iter().any(|t| t == s))
                    .map(str::to_string)
                    .collect(),
                resources: m.resources.clone(),
                authorization_details: token_details.clone(),
                approval_required: m.approval_required.clone(),
                max_delegation_depth: Some(m.max_delegation_depth),
                expires_at: Some(m.expires_at),
            });
            let typed = token_details
                .iter()
                .any(|d| d.get("type").and_then(Value::as_str) == Some(e.resource.kind.as_str()));
            if typed {
                needs.authorization_details =
                    vec![json!({"type": e.resource.kind, "actions": [e.action.id]})];
            } else {
                needs.scopes = vec![format!("{}.{}", e.resource.kind, e.action.id)];
            }
        }
    }
    request.context = context;
    Ok(decide(&DecisionRequest {
        person_allowed,
        chain: hops,
        mandate,
        needs,
        policy: policy.as_deref(),
        request,
    }))
}

/// The AuthZEN response body for a decision: `decision` plus `context` with the reasons (for
/// administrators) and whether the person's approval would allow it.
pub fn response(d: &Decision) -> Value {
    json!({
        "decision": d.decision,
        "context": {
            "reason_admin": {
                "reasons": d.reasons.iter().map(|r| json!({
                    "part": r.part.as_str(),
                    "agent": r.agent,
                    "message": r.message,
                })).collect::<Vec<_>>(),
            },
            "approval_required": d.approval_required,
        }
    })
}

/// Who asked for a decision: the policy enforcement point's client and its request, for the
/// audit record.
#[derive(Debug, Clone, Copy)]
pub struct Asker<'a> {
    /// The client whose token called the AuthZEN API.
    pub client_id: &'a str,
    /// Its request's address and user agent.
    pub meta: &'a RequestMeta,
}

/// [`evaluate`], with its audit record: the decision, or the refusal of a request for the work
/// it would take. The record says who acted (the current agent, or the person), for whom, and
/// through whom, never the token itself. One failure policy: an evaluation whose record cannot
/// be written gives no decision ([`EvaluationError::Audit`]).
pub async fn evaluate_audited(
    pdp: &Pdp,
    store: &dyn Store,
    tenant_id: &str,
    asker: Asker<'_>,
    e: &Evaluation,
    now: i64,
) -> Result<Decision, EvaluationError> {
    let target = json!({"type": e.resource.kind, "id": e.resource.id});
    let as_given = || Principal::User {
        id: format!("{}:{}", e.subject.kind, e.subject.id),
    };
    let d = match evaluate(pdp, store, tenant_id, e, now).await {
        Ok(d) => d,
        Err(EvaluationError::Pdp(PdpError::Authz(a))) if a.is_resource_limit() => {
            let actor = match &e.token {
                Some(c) => Principal::User { id: c.sub.clone() },
                None => as_given(),
            };
            let ev = AuditEvent::new(
                tenant_id,
                EventKind::AuthorizationDecision,
                Outcome::Failure,
                actor,
                asker.meta,
            )
            .client(asker.client_id.to_string())
            .reason("too_complex")
            .detail(json!({
                "resource": target,
                "action": e.action.id,
                "error": a.to_string(),
                "openfga_code": a.openfga_code(),
            }));
            store.record(&ev).await.map_err(EvaluationError::Audit)?;
            return Err(EvaluationError::Pdp(PdpError::Authz(a)));
        }
        Err(x) => return Err(x),
    };
    let (actor, subject, chain, mandate) = match &e.token {
        Some(c) => {
            let chain: Vec<Principal> = c
                .chain()
                .into_iter()
                .map(|id| Principal::Agent { id: id.to_string() })
                .collect();
            let person = Principal::User { id: c.sub.clone() };
            let actor = chain.first().cloned().unwrap_or_else(|| person.clone());
            (actor, Some(person), chain, c.mandate.clone())
        }
        None => (as_given(), Some(as_given()), vec![], None),
    };
    let outcome = if d.decision {
        Outcome::Success
    } else {
        Outcome::Failure
    };
    let reasons: Vec<Value> = d
        .reasons
        .iter()
        .map(|r| json!({"part": r.part.as_str(), "agent": r.agent, "message": r.message}))
        .collect();
    let mut ev = AuditEvent::new(
        tenant_id,
        EventKind::AuthorizationDecision,
        outcome,
        actor,
        asker.meta,
    )
    .client(asker.client_id.to_string())
    .detail(json!({
        "resource": target,
        "action": e.action.id,
        "decision": d.decision,
        "approval_required": d.approval_required,
        "reasons": reasons,
    }));
    if !d.decision {
        ev = ev.reason(
            d.reasons
                .first()
                .map(|r| r.part.as_str().to_string())
                .unwrap_or_default(),
        );
    }
    ev.subject = subject;
    ev.act_chain = chain;
    ev.mandate_id = mandate;
    store.record(&ev).await.map_err(EvaluationError::Audit)?;
    Ok(d)
}
