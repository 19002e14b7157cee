//! The query API: Check, BatchCheck, ListObjects, ListUsers, Expand.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::check::{Checker, ResolutionLimits};
use crate::error::{AuthzError, TupleError};
use crate::hash::FxHashSet;
use crate::model::{AuthorizationModel, RelId, Rewrite};
use crate::store::{Layered, MemoryTuples, TupleReader};
use crate::tuple::{
    ObjectRef, Tuple, UserRef, allowed_by, parse_object, parse_relation, parse_user,
};

/// Check request: is `user` related to `object` as `relation`?
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CheckRequest {
    /// `type:id`.
    pub object: String,
    /// Relation on the object's type.
    pub relation: String,
    /// `type:id`, `type:*` or `type:id#relation`.
    pub user: String,
    /// Tuples that hold for this request only (validated like writes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contextual_tuples: Vec<Tuple>,
}

impl CheckRequest {
    /// A request without contextual tuples.
    pub fn new(
        object: impl Into<String>,
        relation: impl Into<String>,
        user: impl Into<String>,
    ) -> Self {
        CheckRequest {
            object: object.into(),
            relation: relation.into(),
            user: user.into(),
            contextual_tuples: Vec::new(),
        }
    }

    /// Adds contextual tuples.
    pub fn with_contextual_tuples(mut self, tuples: Vec<Tuple>) -> Self {
        self.contextual_tuples = tuples;
        self
    }
}

/// ListObjects request: every object of `object_type` that `user` has `relation` on.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ListObjectsRequest {
    /// Object type to list.
    pub object_type: String,
    /// Relation on that type.
    pub relation: String,
    /// `type:id`, `type:*` or `type:id#relation`.
    pub user: String,
    /// Tuples that hold for this request only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contextual_tuples: Vec<Tuple>,
}

/// A ListUsers filter: a user type (`user`) or a userset type (`group#member`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UserFilter {
    /// User type.
    pub type_name: String,
    /// Relation for userset results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relation: Option<String>,
}

impl UserFilter {
    /// Parses `type` or `type#relation`.
    pub fn parse(s: &str) -> Self {
        match s.split_once('#') {
            Some((t, r)) => UserFilter {
                type_name: t.to_string(),
                relation: Some(r.to_string()),
            },
            None => UserFilter {
                type_name: s.to_string(),
                relation: None,
            },
        }
    }
}

/// ListUsers request: every user (of the filter types) related to `object` as `relation`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ListUsersRequest {
    /// `type:id`.
    pub object: String,
    /// Relation on the object's type.
    pub relation: String,
    /// Which users to return.
    pub user_filters: Vec<UserFilter>,
    /// Tuples that hold for this request only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contextual_tuples: Vec<Tuple>,
}

/// A node of an Expand tree (OpenFGA's UsersetTree node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandNode {
    /// `object#relation` this node describes.
    pub name: String,
    /// Leaf or set operation.
    pub kind: ExpandKind,
}

/// What an Expand node holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpandKind {
    /// Directly related users (`user:anne`, `user:*`, `group:x#member`).
    Users(Vec<String>),
    /// Another relation of the same object (`document:1#editor`).
    Computed(String),
    /// Tupleset (`document:1#parent`) and the usersets it points to (`folder:x#viewer`).
    TupleToUserset {
        /// The tupleset, `object#relation`.
        tupleset: String,
        /// Resulting usersets.
        computed: Vec<String>,
    },
    /// Any of the children.
    Union(Vec<ExpandNode>),
    /// All of the children.
    Intersection(Vec<ExpandNode>),
    /// Base minus subtract.
    Difference {
        /// Base.
        base: Box<ExpandNode>,
        /// Subtract.
        subtract: Box<ExpandNode>,
    },
}

impl ExpandNode {
    /// OpenFGA's JSON shape (`{"name", "leaf": {...}}` or `{"name", "union": {"nodes": [...]}}`).
    pub fn to_json(&self) -> Value {
        let body = match &self.kind {
            ExpandKind::Users(u) => ("leaf", json!({ "users": { "users": u } })),
            ExpandKind::Computed(c) => ("leaf", json!({ "computed": { "userset": c } })),
            ExpandKind::TupleToUserset { tupleset, computed } => (
                "leaf",
                json!({ "tupleToUserset": {
                    "tupleset": tupleset,
                    "computed": computed.iter().map(|c| json!({ "userset": c })).collect::<Vec<_>>()
                } }),
            ),
            ExpandKind::Union(n) => (
                "union",
                json!({ "nodes": n.iter().map(ExpandNode::to_json).collect::<Vec<_>>() }),
            ),
            ExpandKind::Intersection(n) => (
                "intersection",
                json!({ "nodes": n.iter().map(ExpandNode::to_json).collect::<Vec<_>>() }),
            ),
            ExpandKind::Difference { base, subtract } => (
                "difference",
                json!({ "base": base.to_json(), "subtract": subtract.to_json() }),
            ),
        };
        let mut o = serde_json::Map::new();
        o.insert("name".into(), json!(self.name));
        o.insert(body.0.into(), body.1);
        Value::Object(o)
    }
}

/// Evaluates queries for one model over one tuple source.
///
/// Cheap to build (borrows only); build one per request or keep one around.
pub struct Engine<'a, R: TupleReader + ?Sized> {
    model: &'a AuthorizationModel,
    reader: &'a R,
    limits: ResolutionLimits,
}

/// Most contextual tuples one request may carry (OpenFGA's limit too); more are refused with
/// [`AuthzError::TooManyContextualTuples`] before any evaluation.
pub const MAX_CONTEXTUAL_TUPLES: usize = 100;

fn invalid_request(e: TupleError) -> AuthzError {
    AuthzError::InvalidRequest(e)
}

impl<'a, R: TupleReader + ?Sized> Engine<'a, R> {
    /// An engine with default limits (resolve depth 25).
    pub fn new(model: &'a AuthorizationModel, reader: &'a R) -> Self {
        Engine {
            model,
            reader,
            limits: ResolutionLimits::default(),
        }
    }

    /// Overrides the resolution limits.
    pub fn with_limits(mut self, limits: ResolutionLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The model this engine evaluates.
    pub fn model(&self) -> &'a AuthorizationModel {
        self.model
    }

    fn contextual(&self, tuples: &[Tuple]) -> Result<Option<MemoryTuples>, AuthzError> {
        if tuples.is_empty() {
            return Ok(None);
        }
        if tuples.len() > MAX_CONTEXTUAL_TUPLES {
            return Err(AuthzError::TooManyContextualTuples {
                max: MAX_CONTEXTUAL_TUPLES,
                got: tuples.len(),
            });
        }
        let mut m = MemoryTuples::new();
        for t in tuples {
            self.model
                .validate_tuple(t)
                .map_err(|error| AuthzError::InvalidTuple {
                    tuple: t.key(),
                    error,
                })?;
            // Duplicates are tolerated, as in OpenFGA.
            m.insert(t);
        }
        Ok(Some(m))
    }

    /// Check. `Ok(false)` also covers cycles; exceeding the depth is an error.
    pub fn check(&self, req: &CheckRequest) -> Result<bool, AuthzError> {
        let object = parse_object(&req.object).map_err(invalid_request)?;
        let relation = parse_relation(&req.relation).map_err(invalid_request)?;
        let user = parse_user(&req.user).map_err(invalid_request)?;
        let rel = self
            .model
            .check_object_relation(object.object_type, relation)
            .map_err(invalid_request)?;
        self.model
            .check_user_exists(&user)
            .map_err(invalid_request)?;
        let ctx = self.contextual(&req.contextual_tuples)?;
        match &ctx {
            None => Checker::new(self.model, self.reader, user, self.limits).check(object, rel),
            Some(extra) => {
                let layered = Layered {
                    base: self.reader,
                    extra,
                };
                Checker::new(self.model, &layered, user, self.limits).check(object, rel)
            }
        }
    }

    /// Several checks; each has its own result.
    pub fn batch_check(&self, reqs: &[CheckRequest]) -> Vec<Result<bool, AuthzError>> {
        reqs.iter().map(|r| self.check(r)).collect()
    }

    /// ListObjects: object ids as `type:id`, sorted.
    pub fn list_objects(&self, req: &ListObjectsRequest) -> Result<Vec<String>, AuthzError> {
        if self.model.type_id(&req.object_type).is_none() {
            return Err(AuthzError::TypeNotFound(req.object_type.clone()));
        }
        let Some(rel) = self.model.rel_id(&req.object_type, &req.relation) else {
            return Err(AuthzError::RelationNotFound {
                type_name: req.object_type.clone(),
                relation: req.relation.clone(),
            });
        };
        let user = parse_user(&req.user).map_err(invalid_request)?;
        self.model
            .check_user_exists(&user)
            .map_err(invalid_request)?;
        let ctx = self.contextual(&req.contextual_tuples)?;
        match &ctx {
            None => list_objects(self.model, self.reader, user, rel, self.limits),
            Some(extra) => {
                let layered = Layered {
                    base: self.reader,
                    extra,
                };
                list_objects(self.model, &layered, user, rel, self.limits)
            }
        }
    }

    /// ListUsers: `type:id`, `type:*` and `type:id#relation` results, sorted.
    pub fn list_users(&self, req: &ListUsersRequest) -> Result<Vec<String>, AuthzError> {
        let object = parse_object(&req.object).map_err(invalid_request)?;
        if self.model.type_id(object.object_type).is_none() {
            return Err(AuthzError::TypeNotFound(object.object_type.to_string()));
        }
        let Some(rel) = self.model.rel_id(object.object_type, &req.relation) else {
            return Err(AuthzError::RelationNotFound {
                type_name: object.object_type.to_string(),
                relation: req.relation.clone(),
            });
        };
        if req.user_filters.is_empty() {
            return Err(AuthzError::InvalidRequest(TupleError::Malformed {
                field: "user_filters",
                value: String::new(),
                reason: "at least one filter is required",
            }));
        }
        for f in &req.user_filters {
            if self.model.type_id(&f.type_name).is_none() {
                return Err(AuthzError::TypeNotFound(f.type_name.clone()));
            }
            if let Some(r) = &f.relation
                && self.model.rel_id(&f.type_name, r).is_none()
            {
                return Err(AuthzError::RelationNotFound {
                    type_name: f.type_name.clone(),
                    relation: r.clone(),
                });
            }
        }
        let ctx = self.contextual(&req.contextual_tuples)?;
        match &ctx {
            None => list_users(
                self.model,
                self.reader,
                object,
                rel,
                &req.user_filters,
                self.limits,
            ),
            Some(extra) => {
                let layered = Layered {
                    base: self.reader,
                    extra,
                };
                list_users(
                    self.model,
                    &layered,
                    object,
                    rel,
                    &req.user_filters,
                    self.limits,
                )
            }
        }
    }

    /// Expand: one level of the userset tree of `object#relation`.
    pub fn expand(&self, object: &str, relation: &str) -> Result<ExpandNode, AuthzError> {
        let obj = parse_object(object).map_err(invalid_request)?;
        let rel = self
            .model
            .check_object_relation(obj.object_type, relation)
            .map_err(invalid_request)?;
        let r = self.model.rel(rel);
        Ok(expand_rewrite(
            self.model,
            self.reader,
            obj,
            rel,
            &r.rewrite,
        ))
    }
}

/// Work list of `object#relation` nodes reached by reverse expansion.
/// Every tuple read and node expanded counts against `work_left` (the request's budget).
#[derive(Default)]
struct Frontier<'a> {
    visited: FxHashSet<(ObjectRef<'a>, RelId)>,
    stack: Vec<(ObjectRef<'a>, RelId)>,
    work_left: u64,
}

impl<'a> Frontier<'a> {
    fn push(&mut self, o: ObjectRef<'a>, r: RelId) {
        self.work_left = self.work_left.saturating_sub(1);
        if self.visited.insert((o, r)) {
            self.stack.push((o, r));
        }
    }

    /// Objects related to `u` directly through each of `rels`.
    fn seed<X: TupleReader + ?Sized>(
        &mut self,
        model: &'a AuthorizationModel,
        reader: &'a X,
        rels: &[RelId],
        u: UserRef<'_>,
    ) {
        for &rid in rels {
            let r = model.rel(rid);
            reader.read_objects(model.type_name(r.type_id), &r.name, u, &mut |t| {
                if allowed_by(r, &t.user, t.condition) {
                    self.push(t.object, rid);
                }
                true
            });
        }
    }
}

fn list_objects<'a, X: TupleReader + ?Sized>(
    model: &'a AuthorizationModel,
    reader: &'a X,
    user: UserRef<'a>,
    target: RelId,
    limits: ResolutionLimits,
) -> Result<Vec<String>, AuthzError> {
    // Reverse expansion from the user collects candidates; Check then decides each one, so
    // intersections, exclusions, cycles and type restrictions behave exactly as in Check.
    let mut fr = Frontier {
        work_left: limits.max_work,
        ..Frontier::default()
    };
    let mut candidates: Vec<ObjectRef<'a>> = Vec::new();
    match user {
        UserRef::Object(o) => {
            if let Some(ut) = model.type_id(o.object_type) {
                fr.seed(model, reader, model.direct_dependents(ut), user);
                fr.seed(
                    model,
                    reader,
                    model.wildcard_dependents(ut),
                    UserRef::Wildcard(o.object_type),
                );
            }
        }
        UserRef::Wildcard(t) => {
            if let Some(ut) = model.type_id(t) {
                fr.seed(model, reader, model.wildcard_dependents(ut), user);
            }
        }
        UserRef::Userset { object, relation } => {
            if let Some(rid) = model.rel_id(object.object_type, relation) {
                fr.push(object, rid);
            }
        }
    }
    while let Some((o, x)) = fr.stack.pop() {
        if fr.work_left == 0 {
            return Err(AuthzError::BudgetExceeded(limits.max_work));
        }
        fr.work_left -= 1;
        if x == target {
            candidates.push(o);
        }
        let rx = model.rel(x);
        for &y in &rx.computed_dependents {
            fr.push(o, y);
        }
        for &z in &rx.userset_dependents {
            let rz = model.rel(z);
            let u = UserRef::Userset {
                object: o,
                relation: &rx.name,
            };
            reader.read_objects(model.type_name(rz.type_id), &rz.name, u, &mut |t| {
                if allowed_by(rz, &t.user, t.condition) {
                    fr.push(t.object, z);
                }
                true
            });
        }
        for &(w, ts) in &rx.ttu_dependents {
            let rts = model.rel(ts);
            reader.read_objects(
                model.type_name(rts.type_id),
                &rts.name,
                UserRef::Object(o),
                &mut |t| {
                    if allowed_by(rts, &t.user, t.condition) {
                        fr.push(t.object, w);
                    }
                    true
                },
            );
        }
    }
    if fr.work_left == 0 {
        return Err(AuthzError::BudgetExceeded(limits.max_work));
    }
    let mut checker = Checker::new(model, reader, user, limits).with_work_left(fr.work_left);
    let mut out = Vec::new();
    for o in candidates {
        if checker.check(o, target)? {
            out.push(o.to_string());
        }
    }
    out.sort();
    Ok(out)
}

fn list_users<'a, X: TupleReader + ?Sized>(
    model: &'a AuthorizationModel,
    reader: &'a X,
    object: ObjectRef<'a>,
    target: RelId,
    filters: &'a [UserFilter],
    limits: ResolutionLimits,
) -> Result<Vec<String>, AuthzError> {
    // Forward expansion from the object collects candidate users of the filter types; Check
    // then decides each one.
    let direct_types: Vec<&str> = filters
        .iter()
        .filter(|f| f.relation.is_none())
        .map(|f| f.type_name.as_str())
        .collect();
    let userset_types: Vec<(&str, &str)> = filters
        .iter()
        .filter_map(|f| f.relation.as_deref().map(|r| (f.type_name.as_str(), r)))
        .collect();
    let mut work_left = limits.max_work;
    let mut visited: FxHashSet<(ObjectRef<'a>, RelId)> = FxHashSet::default();
    let mut stack = vec![(object, target)];
    visited.insert((object, target));
    let mut candidates: BTreeSet<UserRef<'a>> = BTreeSet::new();
    while let Some((o, x)) = stack.pop() {
        if work_left == 0 {
            return Err(AuthzError::BudgetExceeded(limits.max_work));
        }
        work_left -= 1;
        let rx = model.rel(x);
        if userset_types.contains(&(o.object_type, rx.name.as_str())) {
            candidates.insert(UserRef::Userset {
                object: o,
                relation: &rx.name,
            });
        }
        let mut todo: Vec<&Rewrite> = vec![&rx.rewrite];
        while let Some(rw) = todo.pop() {
            match rw {
                Rewrite::This => reader.read_users(o, &rx.name, &mut |t| {
                    work_left = work_left.saturating_sub(1);
                    if !allowed_by(rx, &t.user, t.condition) {
                        return true;
                    }
                    match t.user {
                        UserRef::Object(u) => {
                            if direct_types.contains(&u.object_type) {
                                candidates.insert(t.user);
                            }
                        }
                        UserRef::Wildcard(wt) => {
                            if direct_types.contains(&wt) {
                                candidates.insert(t.user);
                            }
                        }
                        UserRef::Userset { object, relation } => {
                            if userset_types.contains(&(object.object_type, relation)) {
                                candidates.insert(t.user);
                            }
                            if let Some(rid) = model.rel_id(object.object_type, relation)
                                && visited.insert((object, rid))
                            {
                                stack.push((object, rid));
                            }
                        }
                    }
                    true
                }),
                Rewrite::Computed(y) => {
                    if visited.insert((o, *y)) {
                        stack.push((o, *y));
                    }
                }
                Rewrite::Ttu { tupleset, computed } => {
                    let rts = model.rel(*tupleset);
                    reader.read_users(o, &rts.name, &mut |t| {
                        work_left = work_left.saturating_sub(1);
                        if allowed_by(rts, &t.user, t.condition)
                            && let UserRef::Object(p) = t.user
                            && let Some(rid) = model.rel_id(p.object_type, computed)
                            && visited.insert((p, rid))
                        {
                            stack.push((p, rid));
                        }
                        true
                    });
                }
                Rewrite::Union(c) | Rewrite::Intersection(c) => todo.extend(c.iter()),
                Rewrite::Difference(b, _) => todo.push(b),
            }
        }
    }
    if work_left == 0 {
        return Err(AuthzError::BudgetExceeded(limits.max_work));
    }
    let mut out = Vec::new();
    for u in candidates {
        let mut checker = Checker::new(model, reader, u, limits).with_work_left(work_left);
        if checker.check(object, target)? {
            out.push(u.to_string());
        }
        work_left = checker.work_left();
    }
    out.sort();
    Ok(out)
}

fn expand_rewrite<X: TupleReader + ?Sized>(
    model: &AuthorizationModel,
    reader: &X,
    obj: ObjectRef<'_>,
    rel: RelId,
    rw: &Rewrite,
) -> ExpandNode {
    let r = model.rel(rel);
    let name = format!("{obj}#{}", r.name);
    let kind = match rw {
        Rewrite::This => {
            let mut users = Vec::new();
            reader.read_users(obj, &r.name, &mut |t| {
                if allowed_by(r, &t.user, t.condition) {
                    users.push(t.user.to_string());
                }
                true
            });
            users.sort();
            ExpandKind::Users(users)
        }
        Rewrite::Computed(y) => ExpandKind::Computed(format!("{obj}#{}", model.rel(*y).name)),
        Rewrite::Ttu { tupleset, computed } => {
            let rts = model.rel(*tupleset);
            let mut out = Vec::new();
            reader.read_users(obj, &rts.name, &mut |t| {
                if allowed_by(rts, &t.user, t.condition)
                    && let UserRef::Object(p) = t.user
                    && model.rel_id(p.object_type, computed).is_some()
                {
                    out.push(format!("{p}#{computed}"));
                }
                true
            });
            out.sort();
            ExpandKind::TupleToUserset {
                tupleset: format!("{obj}#{}", rts.name),
                computed: out,
            }
        }
        Rewrite::Union(c) => ExpandKind::Union(
            c.iter()
                .map(|x| expand_rewrite(model, reader, obj, rel, x))
                .collect(),
        ),
        Rewrite::Intersection(c) => ExpandKind::Intersection(
            c.iter()
                .map(|x| expand_rewrite(model, reader, obj, rel, x))
                .collect(),
        ),
        Rewrite::Difference(b, s) => ExpandKind::Difference {
            base: Box::new(expand_rewrite(model, reader, obj, rel, b)),
            subtract: Box::new(expand_rewrite(model, reader, obj, rel, s)),
        },
    };
    ExpandNode { name, kind }
}
