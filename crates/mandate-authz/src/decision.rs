//! One decision for every request, combining the relationship graph, the mandate, the agent's
//! ceiling and the tenant's Cedar policy.
//!
//! - A person acting directly: graph ∧ policy (the person is the policy principal).
//! - Agents acting for a person: the person is allowed by the graph ∧ the mandate covers the
//!   request (scopes, RFC 8707 resource, RFC 9396 details) ∧ every agent's scope ceiling covers
//!   it ∧ no policy forbids it **for any hop** (each agent of the chain is a policy principal in
//!   turn, with the whole chain in `context.act_chain`).
//!
//! Every failed part adds a [`Reason`], so a refusal says which part denied. Approval is
//! reported, never assumed: [`Decision::approval_required`] is true when the only objections are
//! ones a person's approval settles (an `@approval("required")` policy, or an action the
//! mandate lists as needing approval); the caller asks the person (CIBA) and decides again with
//! [`crate::policy::PolicyContext::approved`] set.
//!
//! The graph check itself is the caller's (it has the [`crate::Engine`] and tuples); this module
//! is pure and takes its answer as a bool.

use serde_json::Value;

use crate::policy::{PolicyEntity, PolicyRequest, TenantPolicy};

/// Which part of the decision objected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    /// The relationship graph does not allow the person.
    Graph,
    /// The mandate does not cover the request (or there is none, or it asks for approval).
    Mandate,
    /// An agent's scope ceiling does not cover the request.
    Ceiling,
    /// A Cedar policy forbids it, errored, or asks for approval.
    Policy,
}

impl Part {
    /// Lower-case name for APIs and the audit trail.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Graph => "graph",
            Self::Mandate => "mandate",
            Self::Ceiling => "ceiling",
            Self::Policy => "policy",
        }
    }
}

/// Why a part objected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// The part.
    pub part: Part,
    /// The agent (hop) concerned, for ceiling and policy reasons in a chain.
    pub agent: Option<String>,
    /// Human-readable explanation.
    pub message: String,
    /// A person's approval would settle this objection.
    pub approvable: bool,
}

/// The combined answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    /// Allowed.
    pub decision: bool,
    /// Every objection (empty when allowed).
    pub reasons: Vec<Reason>,
    /// Denied, and a person's approval alone would allow it.
    pub approval_required: bool,
    /// The `@approval` policies asking for approval (by id).
    pub approval_policies: Vec<String>,
}

pub use crate::policy::MandateGrant;

/// One agent of the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Hop {
    /// The agent as a policy entity (`Mandate::Agent` with its attributes).
    pub agent: PolicyEntity,
    /// The most the agent may ever be granted.
    pub scope_ceiling: Vec<String>,
}

/// What the request needs in delegation terms (beyond the action and resource).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Needs {
    /// Scopes the action needs.
    pub scopes: Vec<String>,
    /// RFC 8707 resource (audience) the request is for, if any.
    pub resource: Option<String>,
    /// RFC 9396 details the request relies on.
    pub authorization_details: Vec<Value>,
}

/// Everything the combined decision looks at.
#[derive(Debug, Clone)]
pub struct DecisionRequest<'a> {
    /// The graph's answer for the person (computed by the caller with [`crate::Engine`]).
    pub person_allowed: bool,
    /// The agents, outermost (current) first; empty: the person acts directly.
    pub chain: Vec<Hop>,
    /// The mandate the chain acts under.
    pub mandate: Option<MandateGrant>,
    /// Scopes, resource and details the request needs.
    pub needs: Needs,
    /// The tenant's policy, if it has one.
    pub policy: Option<&'a TenantPolicy>,
    /// The policy request with the person as principal; for a chain, each hop's request is
    /// derived from it (principal = the agent, `act_chain` and `mandate` filled in).
    pub request: PolicyRequest,
}

/// Decide. Pure: the same input gives the same decision.
pub fn decide(req: &DecisionRequest<'_>) -> Decision {
    let mut reasons = Vec::new();
    let mut approval_policies = Vec::new();
    let mut add = |part, agent: Option<&str>, message: String, approvable| {
        reasons.push(Reason {
            part,
            agent: agent.map(str::to_string),
            message,
            approvable,
        });
    };
    let approved = req.request.context.approved;

    if !req.person_allowed {
        add(
            Part::Graph,
            None,
            "the person is not allowed by the relationship graph".into(),
            false,
        );
    }

    let mut policy_requests = Vec::new();
    if req.chain.is_empty() {
        policy_requests.push((None, req.request.clone()));
    } else {
        match &req.mandate {
            None => add(Part::Mandate, None, "no mandate".into(), false),
            Some(m) => {
                for problem in mandate_gaps(m, &req.needs) {
                    add(Part::Mandate, None, problem, false);
                }
                let action = &req.request.action;
                let listed = m
                    .approval_required
                    .iter()
                    .find(|a| *a == action || req.needs.scopes.contains(a));
                if let (Some(a), false) = (listed, approved) {
                    add(
                        Part::Mandate,
                        None,
                        format!("the mandate asks for approval of `{a}`"),
                        true,
                    );
                }
            }
        }
        let ids: Vec<String> = req.chain.iter().map(|h| h.agent.uid.id.clone()).collect();
        for hop in &req.chain {
            let id = hop.agent.uid.id.as_str();
            let over: Vec<&str> = req
                .needs
                .scopes
                .iter()
                .filter(|s| !hop.scope_ceiling.contains(s))
                .map(String::as_str)
                .collect();
            if !over.is_empty() {
                add(
                    Part::Ceiling,
                    Some(id),
                    format!("beyond the agent's scope ceiling: {}", over.join(" ")),
                    false,
                );
            }
            let mut r = req.request.clone();
            r.principal = hop.agent.clone();
            r.context.act_chain = ids.clone();
            if r.context.mandate.is_none() {
                r.context.mandate = req.mandate.clone();
            }
            policy_requests.push((Some(id), r));
        }
    }

    if let Some(policy) = req.policy {
        for (agent, r) in &policy_requests {
            let d = policy.evaluate(r);
            if d.allowed {
                continue;
            }
            for e in &d.errors {
                add(Part::Policy, *agent, format!("policy error: {e}"), false);
            }
            for id in &d.forbidden_by {
                let approvable = d.approval_policies.contains(id);
                let why = policy
                    .reason(id)
                    .map_or(String::new(), |r| format!(": {r}"));
                add(
                    Part::Policy,
                    *agent,
                    format!("forbidden by policy `{id}`{why}"),
                    approvable,
                );
            }
            if d.forbidden_by.is_empty() && d.errors.is_empty() {
                // Allow-list mode: no permit matched (or only `@approval` permits did).
                let message = if d.approval_required {
                    format!("policy {} needs approval", d.approval_policies.join(", "))
                } else {
                    "no permit policy matched".to_string()
                };
                add(Part::Policy, *agent, message, d.approval_required);
            }
            for id in d.approval_policies {
                if !approval_policies.contains(&id) {
                    approval_policies.push(id);
                }
            }
        }
    }

    let decision = reasons.is_empty();
    let approval_required = !decision && !approved && reasons.iter().all(|r| r.approvable);
    if !approval_required {
        approval_policies.clear();
    }
    Decision {
        decision,
        reasons,
        approval_required,
        approval_policies,
    }
}

/// What the mandate does not cover, one message per gap.
fn mandate_gaps(m: &MandateGrant, needs: &Needs) -> Vec<String> {
    let mut gaps = Vec::new();
    let missing: Vec<&str> = needs
        .scopes
        .iter()
        .filter(|s| !m.scopes.contains(s))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        gaps.push(format!(
            "scope not granted by the mandate: {}",
            missing.join(" ")
        ));
    }
    if let Some(r) = &needs.resource
        && !m.resources.contains(r)
    {
        gaps.push(format!(
            "resource `{r}` is not among the mandate's resources"
        ));
    }
    if !details_covered(&m.authorization_details, &needs.authorization_details) {
        gaps.push("authorization_details not covered by the mandate's".into());
    }
    gaps
}

// What a mandate's `authorization_details` cover is the token exchange's rule, shared.
pub use mandate_core::domain::agents::{detail_covers, details_covered};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicyContext;
    use serde_json::json;

    fn base(chain: &[&str]) -> DecisionRequest<'static> {
        DecisionRequest {
            person_allowed: true,
            chain: chain
                .iter()
                .map(|a| Hop {
                    agent: PolicyEntity::agent(*a),
                    scope_ceiling: vec!["calendar.read".into(), "calendar.write".into()],
                })
                .collect(),
            mandate: Some(MandateGrant {
                id: "m1".into(),
                scopes: vec!["calendar.read".into()],
                resources: vec!["https://cal.example".into()],
                ..MandateGrant::default()
            }),
            needs: Needs {
                scopes: vec!["calendar.read".into()],
                resource: Some("https://cal.example".into()),
                authorization_details: vec![],
            },
            policy: None,
            request: PolicyRequest::new(
                PolicyEntity::user("alice"),
                "read",
                PolicyEntity::resource("calendar", "c1"),
            )
            .with_context(PolicyContext::direct("alice")),
        }
    }

    fn parts(d: &Decision) -> Vec<Part> {
        d.reasons.iter().map(|r| r.part).collect()
    }

    #[test]
    fn covered_delegation_is_allowed() {
        let d = decide(&base(&["a1"]));
        assert!(d.decision, "{d:?}");
    }

    #[test]
    fn person_allowed_but_mandate_narrower_denies_with_mandate() {
        let mut r = base(&["a1"]);
        r.needs.scopes = vec!["calendar.write".into()];
        let d = decide(&r);
        assert!(!d.decision && !d.approval_required);
        assert_eq!(parts(&d), [Part::Mandate]);
        assert!(d.reasons[0].message.contains("calendar.write"));
        // The same request by the person directly is allowed.
        let mut direct = base(&[]);
        direct.needs.scopes = vec!["calendar.write".into()];
        assert!(decide(&direct).decision);
    }

    #[test]
    fn graph_denial_applies_to_people_and_agents() {
        for chain in [&[][..], &["a1"][..]] {
            let mut r = base(chain);
            r.person_allowed = false;
            let d = decide(&r);
            assert_eq!(parts(&d), [Part::Graph]);
        }
    }

    #[test]
    fn missing_mandate_resource_and_details() {
        let mut r = base(&["a1"]);
        r.mandate = None;
        assert_eq!(parts(&decide(&r)), [Part::Mandate]);
        let mut r = base(&["a1"]);
        r.needs.resource = Some("https://evil.example".into());
        r.needs.authorization_details = vec![json!({"type": "calendar", "actions": ["read"]})];
        let d = decide(&r);
        assert_eq!(parts(&d), [Part::Mandate, Part::Mandate]);
        r.needs.resource = None;
        r.mandate.as_mut().unwrap().authorization_details =
            vec![json!({"type": "calendar", "actions": ["read", "list"]})];
        assert!(decide(&r).decision);
    }

    #[test]
    fn each_hops_ceiling_is_checked() {
        let mut r = base(&["b", "a"]);
        r.chain[0].scope_ceiling = vec!["mail.read".into()];
        let d = decide(&r);
        assert_eq!(parts(&d), [Part::Ceiling]);
        assert_eq!(d.reasons[0].agent.as_deref(), Some("b"));
    }

    #[test]
    fn policy_checked_per_hop_and_approval_reported() {
        let policy = TenantPolicy::new(
            r#"@id("no-shady") forbid(principal == Mandate::Agent::"shady", action, resource);
               @id("delete-approval") @approval("required")
               forbid(principal is Mandate::Agent, action == Mandate::Action::"delete", resource);"#,
            None,
        )
        .unwrap();
        let mut r = base(&["b", "shady"]);
        r.policy = Some(&policy);
        let d = decide(&r);
        assert_eq!(parts(&d), [Part::Policy]);
        assert_eq!(d.reasons[0].agent.as_deref(), Some("shady"));

        let mut r = base(&["a1"]);
        r.policy = Some(&policy);
        r.request.action = "delete".into();
        let d = decide(&r);
        assert!(!d.decision && d.approval_required, "{d:?}");
        assert_eq!(d.approval_policies, ["delete-approval"]);
        r.request.context.approved = true;
        assert!(decide(&r).decision);

        // Approval cannot fix a mandate gap at the same time.
        r.request.context.approved = false;
        r.needs.scopes = vec!["calendar.write".into()];
        let d = decide(&r);
        assert!(!d.decision && !d.approval_required);
        assert_eq!(parts(&d), [Part::Mandate, Part::Policy]);

        // A person deleting directly: no objection.
        let mut direct = base(&[]);
        direct.policy = Some(&policy);
        direct.request.action = "delete".into();
        assert!(decide(&direct).decision);
    }

    #[test]
    fn mandate_listed_approval() {
        let mut r = base(&["a1"]);
        r.mandate.as_mut().unwrap().approval_required = vec!["calendar.read".into()];
        let d = decide(&r);
        assert!(!d.decision && d.approval_required);
        assert_eq!(parts(&d), [Part::Mandate]);
        r.request.context.approved = true;
        assert!(decide(&r).decision);
    }
}
