//! Authorization model: types, relations and their rewrites (OpenFGA schema 1.1).
//!
//! A model is parsed from the OpenFGA DSL ([`AuthorizationModel::from_dsl`]) or JSON API form
//! ([`AuthorizationModel::from_json`]); both paths build the same value and run the same
//! validation, so a model that loads is one the evaluator can trust (every referenced type and
//! relation exists, tuplesets are direct, no computed cycles, every relation has an entrypoint).

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Map, Value, json};

use crate::error::ModelError;
use crate::hash::FxHashMap;

/// The only supported schema version.
pub const SCHEMA_VERSION: &str = "1.1";

/// How a relation's users are computed (OpenFGA's userset rewrite).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Userset {
    /// Users directly assigned by tuples (`[user, group#member]`).
    This,
    /// Users of another relation of the same object (`define viewer: editor`).
    Computed(String),
    /// Users of `computed` on each object related through `tupleset` (`viewer from parent`).
    TupleToUserset {
        /// The relation whose tuples point to parent objects.
        tupleset: String,
        /// The relation evaluated on each parent.
        computed: String,
    },
    /// Users in any child (`or`).
    Union(Vec<Userset>),
    /// Users in every child (`and`).
    Intersection(Vec<Userset>),
    /// Users in `base` and not in `subtract` (`but not`).
    Difference {
        /// Granting side.
        base: Box<Userset>,
        /// Excluding side.
        subtract: Box<Userset>,
    },
}

/// What kind of user a type restriction admits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RestrictionKind {
    /// A concrete object of the type (`user`).
    Direct,
    /// The public wildcard of the type (`user:*`).
    Wildcard,
    /// A userset of the type (`group#member`).
    Userset(String),
}

/// One allowed user type on a directly assignable relation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TypeRestriction {
    /// The user's type.
    pub type_name: String,
    /// Object, wildcard or userset.
    pub kind: RestrictionKind,
    /// Condition a tuple of this kind must carry (`with cond`), if any.
    pub condition: Option<String>,
}

impl TypeRestriction {
    /// The restriction as the DSL writes it, without condition (`user`, `user:*`, `group#member`).
    pub fn display(&self) -> String {
        match &self.kind {
            RestrictionKind::Direct => self.type_name.clone(),
            RestrictionKind::Wildcard => format!("{}:*", self.type_name),
            RestrictionKind::Userset(r) => format!("{}#{}", self.type_name, r),
        }
    }
}

/// A relation of a type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationDef {
    /// Relation name.
    pub name: String,
    /// How its users are computed.
    pub rewrite: Userset,
    /// Allowed user types for direct assignment (empty unless the rewrite contains `This`).
    pub directly_related: Vec<TypeRestriction>,
}

/// A type and its relations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeDef {
    /// Type name.
    pub name: String,
    /// Relations in definition order.
    pub relations: Vec<RelationDef>,
}

/// Type of a condition parameter, as OpenFGA's JSON spells it (`TYPE_NAME_INT`, generics for
/// `list<T>`/`map<T>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionParamType {
    /// `TYPE_NAME_*`.
    pub type_name: String,
    /// Element types of `list`/`map`.
    pub generic_types: Vec<ConditionParamType>,
}

/// A named condition (CEL expression). Parsed and stored, not evaluated yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionDef {
    /// Condition name.
    pub name: String,
    /// CEL expression source.
    pub expression: String,
    /// Parameters by name.
    pub parameters: BTreeMap<String, ConditionParamType>,
}

/// Global index of a relation in a compiled model.
pub(crate) type RelId = u32;
/// Index of a type in a compiled model.
pub(crate) type TypeId = u32;

/// Compiled rewrite: relation names resolved to ids.
#[derive(Debug, Clone)]
pub(crate) enum Rewrite {
    This,
    Computed(RelId),
    Ttu { tupleset: RelId, computed: String },
    Union(Vec<Rewrite>),
    Intersection(Vec<Rewrite>),
    Difference(Box<Rewrite>, Box<Rewrite>),
}

/// Compiled relation: what the evaluator looks at.
#[derive(Debug, Clone)]
pub(crate) struct Rel {
    pub type_id: TypeId,
    pub name: String,
    pub rewrite: Rewrite,
    pub restrictions: Vec<TypeRestriction>,
    /// Whether any restriction admits usersets or wildcards (else the userset read is skipped).
    pub has_indirect: bool,
    /// Relations `Y` of the same type whose rewrite references this one (not only as subtract).
    pub computed_dependents: Vec<RelId>,
    /// Relations `Z` (any type) that allow `this_type#this_relation` as a userset.
    pub userset_dependents: Vec<RelId>,
    /// `(W, tupleset)`: relations `W` with `this_relation from tupleset` where tupleset allows this type.
    pub ttu_dependents: Vec<(RelId, RelId)>,
}

/// A validated authorization model, with indexes for evaluation.
#[derive(Debug, Clone)]
pub struct AuthorizationModel {
    schema_version: String,
    types: Vec<TypeDef>,
    conditions: BTreeMap<String, ConditionDef>,
    type_ids: FxHashMap<String, TypeId>,
    /// Per type: relation name -> global id.
    rel_ids: Vec<FxHashMap<String, RelId>>,
    rels: Vec<Rel>,
    /// Per user type: relations allowing it directly / as wildcard.
    direct_dependents: Vec<Vec<RelId>>,
    wildcard_dependents: Vec<Vec<RelId>>,
}

impl PartialEq for AuthorizationModel {
    fn eq(&self, other: &Self) -> bool {
        self.to_json() == other.to_json()
    }
}

fn valid_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && !s.chars().any(|c| {
            c.is_whitespace() || matches!(c, ':' | '#' | '@' | '*' | '(' | ')' | '[' | ']' | ',')
        })
}

impl AuthorizationModel {
    /// Parses OpenFGA's JSON API form (`{"schema_version","type_definitions","conditions"}`).
    pub fn from_json(value: &Value) -> Result<Self, ModelError> {
        let (schema, types, conditions) = parse_json(value)?;
        Self::new(schema, types, conditions)
    }

    /// Parses the JSON form from text.
    pub fn from_json_str(src: &str) -> Result<Self, ModelError> {
        let v: Value = serde_json::from_str(src).map_err(|e| ModelError::Json(e.to_string()))?;
        Self::from_json(&v)
    }

    /// Builds and validates a model from its parts.
    pub fn new(
        schema_version: String,
        types: Vec<TypeDef>,
        conditions: Vec<ConditionDef>,
    ) -> Result<Self, ModelError> {
        if schema_version != SCHEMA_VERSION {
            return Err(ModelError::SchemaVersion(schema_version));
        }
        let mut cond_map = BTreeMap::new();
        for c in conditions {
            if !valid_name(&c.name, 50) {
                return Err(ModelError::InvalidName {
                    what: "condition",
                    name: c.name,
                });
            }
            if c.expression.trim().is_empty() {
                return Err(ModelError::InvalidCondition {
                    name: c.name,
                    reason: "empty expression".into(),
                });
            }
            if cond_map.contains_key(&c.name) {
                return Err(ModelError::InvalidCondition {
                    name: c.name,
                    reason: "defined twice".into(),
                });
            }
            cond_map.insert(c.name.clone(), c);
        }
        let mut m = AuthorizationModel {
            schema_version,
            types,
            conditions: cond_map,
            type_ids: FxHashMap::default(),
            rel_ids: Vec::new(),
            rels: Vec::new(),
            direct_dependents: Vec::new(),
            wildcard_dependents: Vec::new(),
        };
        m.validate()?;
        m.compile();
        Ok(m)
    }

    /// Schema version (always "1.1").
    pub fn schema_version(&self) -> &str {
        &self.schema_version
    }

    /// Type definitions in model order.
    pub fn types(&self) -> &[TypeDef] {
        &self.types
    }

    /// Conditions by name.
    pub fn conditions(&self) -> &BTreeMap<String, ConditionDef> {
        &self.conditions
    }

    /// Looks up a type definition.
    pub fn type_def(&self, name: &str) -> Option<&TypeDef> {
        self.type_ids.get(name).map(|&i| &self.types[i as usize])
    }

    /// Looks up a relation definition.
    pub fn relation(&self, type_name: &str, relation: &str) -> Option<&RelationDef> {
        let td = self.type_def(type_name)?;
        td.relations.iter().find(|r| r.name == relation)
    }

    // ---- compiled accessors (crate-internal) ----

    #[inline]
    pub(crate) fn type_id(&self, name: &str) -> Option<TypeId> {
        self.type_ids.get(name).copied()
    }

    #[inline]
    pub(crate) fn rel_id(&self, type_name: &str, relation: &str) -> Option<RelId> {
        let t = self.type_id(type_name)?;
        self.rel_ids[t as usize].get(relation).copied()
    }

    /// Number of relations over all types (`RelId`s are `0..rel_count()`).
    pub(crate) fn rel_count(&self) -> usize {
        self.rels.len()
    }

    #[inline]
    pub(crate) fn rel(&self, id: RelId) -> &Rel {
        &self.rels[id as usize]
    }

    #[inline]
    pub(crate) fn type_name(&self, id: TypeId) -> &str {
        &self.types[id as usize].name
    }

    pub(crate) fn direct_dependents(&self, user_type: TypeId) -> &[RelId] {
        &self.direct_dependents[user_type as usize]
    }

    pub(crate) fn wildcard_dependents(&self, user_type: TypeId) -> &[RelId] {
        &self.wildcard_dependents[user_type as usize]
    }

    // ---- validation ----

    fn validate(&mut self) -> Result<(), ModelError> {
        let mut seen = HashSet::new();
        for t in &self.types {
            if t.name == "self" || t.name == "this" {
                return Err(ModelError::ReservedKeyword(t.name.clone()));
            }
            if !valid_name(&t.name, 254) {
                return Err(ModelError::InvalidName {
                    what: "type",
                    name: t.name.clone(),
                });
            }
            if !seen.insert(t.name.as_str()) {
                return Err(ModelError::DuplicateType(t.name.clone()));
            }
            let mut rseen = HashSet::new();
            for r in &t.relations {
                if r.name == "self" || r.name == "this" {
                    return Err(ModelError::ReservedKeyword(r.name.clone()));
                }
                if !valid_name(&r.name, 50) {
                    return Err(ModelError::InvalidName {
                        what: "relation",
                        name: r.name.clone(),
                    });
                }
                if !rseen.insert(r.name.as_str()) {
                    return Err(ModelError::DuplicateRelation {
                        type_name: t.name.clone(),
                        relation: r.name.clone(),
                    });
                }
            }
        }
        let v = Validator::new(&self.types, &self.conditions);
        let facts = v.facts(&self.types);
        // Deterministic order, like OpenFGA: types then relations sorted by name.
        let mut tnames: Vec<&TypeDef> = self.types.iter().collect();
        tnames.sort_by(|a, b| a.name.cmp(&b.name));
        for t in tnames {
            let mut rels: Vec<&RelationDef> = t.relations.iter().collect();
            rels.sort_by(|a, b| a.name.cmp(&b.name));
            for r in rels {
                v.validate_relation(&t.name, r, &facts)?;
            }
        }
        Ok(())
    }

    fn compile(&mut self) {
        let mut type_ids = FxHashMap::default();
        for (i, t) in self.types.iter().enumerate() {
            type_ids.insert(t.name.clone(), i as TypeId);
        }
        let mut rel_ids = Vec::with_capacity(self.types.len());
        let mut next: RelId = 0;
        for t in &self.types {
            let mut m = FxHashMap::default();
            for r in &t.relations {
                m.insert(r.name.clone(), next);
                next += 1;
            }
            rel_ids.push(m);
        }
        self.type_ids = type_ids;
        self.rel_ids = rel_ids;
        let mut rels = Vec::with_capacity(next as usize);
        for (ti, t) in self.types.iter().enumerate() {
            for r in &t.relations {
                let rewrite = self.compile_rewrite(ti as TypeId, &r.rewrite);
                rels.push(Rel {
                    type_id: ti as TypeId,
                    name: r.name.clone(),
                    rewrite,
                    restrictions: r.directly_related.clone(),
                    has_indirect: r
                        .directly_related
                        .iter()
                        .any(|x| x.kind != RestrictionKind::Direct),
                    computed_dependents: Vec::new(),
                    userset_dependents: Vec::new(),
                    ttu_dependents: Vec::new(),
                });
            }
        }
        let ntypes = self.types.len();
        let mut direct = vec![Vec::new(); ntypes];
        let mut wild = vec![Vec::new(); ntypes];
        // Reverse edges for ListObjects.
        let mut edges: Vec<(RelId, Edge)> = Vec::new();
        for (id, rel) in rels.iter().enumerate() {
            let id = id as RelId;
            for res in &rel.restrictions {
                let Some(ut) = self.type_ids.get(&res.type_name).copied() else {
                    continue;
                };
                match &res.kind {
                    RestrictionKind::Direct => push_unique(&mut direct[ut as usize], id),
                    RestrictionKind::Wildcard => push_unique(&mut wild[ut as usize], id),
                    RestrictionKind::Userset(ur) => {
                        if let Some(src) = self.rel_ids[ut as usize].get(ur) {
                            edges.push((*src, Edge::Userset(id)));
                        }
                    }
                }
            }
            let mut refs = Vec::new();
            positive_refs(&rel.rewrite, &mut refs);
            for rf in refs {
                match rf {
                    PosRef::Computed(src) => edges.push((src, Edge::Computed(id))),
                    PosRef::Ttu(ts, computed) => {
                        for res in &rels[ts as usize].restrictions {
                            if let Some(pt) = self.type_ids.get(&res.type_name)
                                && let Some(src) = self.rel_ids[*pt as usize].get(computed)
                            {
                                edges.push((*src, Edge::Ttu(id, ts)));
                            }
                        }
                    }
                }
            }
        }
        for (src, e) in edges {
            let r = &mut rels[src as usize];
            match e {
                Edge::Computed(d) => push_unique(&mut r.computed_dependents, d),
                Edge::Userset(d) => push_unique(&mut r.userset_dependents, d),
                Edge::Ttu(d, ts) => {
                    if !r.ttu_dependents.contains(&(d, ts)) {
                        r.ttu_dependents.push((d, ts));
                    }
                }
            }
        }
        self.rels = rels;
        self.direct_dependents = direct;
        self.wildcard_dependents = wild;
    }

    fn compile_rewrite(&self, t: TypeId, u: &Userset) -> Rewrite {
        let m = &self.rel_ids[t as usize];
        match u {
            Userset::This => Rewrite::This,
            Userset::Computed(r) => Rewrite::Computed(m[r]),
            Userset::TupleToUserset { tupleset, computed } => Rewrite::Ttu {
                tupleset: m[tupleset],
                computed: computed.clone(),
            },
            Userset::Union(c) => {
                Rewrite::Union(c.iter().map(|x| self.compile_rewrite(t, x)).collect())
            }
            Userset::Intersection(c) => {
                Rewrite::Intersection(c.iter().map(|x| self.compile_rewrite(t, x)).collect())
            }
            Userset::Difference { base, subtract } => Rewrite::Difference(
                Box::new(self.compile_rewrite(t, base)),
                Box::new(self.compile_rewrite(t, subtract)),
            ),
        }
    }

    /// The model in OpenFGA's JSON API form (what `from_json` reads back).
    pub fn to_json(&self) -> Value {
        let mut tds = Vec::new();
        for t in &self.types {
            let mut relations = Map::new();
            let mut meta = Map::new();
            for r in &t.relations {
                relations.insert(r.name.clone(), userset_to_json(&r.rewrite));
                let drut: Vec<Value> = r
                    .directly_related
                    .iter()
                    .map(|x| {
                        let mut o = Map::new();
                        o.insert("type".into(), json!(x.type_name));
                        match &x.kind {
                            RestrictionKind::Direct => {}
                            RestrictionKind::Wildcard => {
                                o.insert("wildcard".into(), json!({}));
                            }
                            RestrictionKind::Userset(rel) => {
                                o.insert("relation".into(), json!(rel));
                            }
                        }
                        if let Some(c) = &x.condition {
                            o.insert("condition".into(), json!(c));
                        }
                        Value::Object(o)
                    })
                    .collect();
                meta.insert(
                    r.name.clone(),
                    json!({ "directly_related_user_types": drut }),
                );
            }
            let metadata = if t.relations.is_empty() {
                Value::Null
            } else {
                json!({ "relations": meta })
            };
            tds.push(json!({ "type": t.name, "relations": relations, "metadata": metadata }));
        }
        let mut out = Map::new();
        out.insert("schema_version".into(), json!(self.schema_version));
        out.insert("type_definitions".into(), Value::Array(tds));
        if !self.conditions.is_empty() {
            let mut cs = Map::new();
            for (name, c) in &self.conditions {
                let mut params = Map::new();
                for (p, ty) in &c.parameters {
                    params.insert(p.clone(), param_to_json(ty));
                }
                cs.insert(
                    name.clone(),
                    json!({ "name": c.name, "expression": c.expression, "parameters": params }),
                );
            }
            out.insert("conditions".into(), Value::Object(cs));
        }
        Value::Object(out)
    }
}

enum Edge {
    Computed(RelId),
    Userset(RelId),
    Ttu(RelId, RelId),
}

enum PosRef<'a> {
    Computed(RelId),
    Ttu(RelId, &'a str),
}

/// References that can grant (everything except what sits under a `but not` subtract).
fn positive_refs<'a>(r: &'a Rewrite, out: &mut Vec<PosRef<'a>>) {
    match r {
        Rewrite::This => {}
        Rewrite::Computed(id) => out.push(PosRef::Computed(*id)),
        Rewrite::Ttu { tupleset, computed } => out.push(PosRef::Ttu(*tupleset, computed)),
        Rewrite::Union(c) | Rewrite::Intersection(c) => {
            c.iter().for_each(|x| positive_refs(x, out))
        }
        Rewrite::Difference(b, _) => positive_refs(b, out),
    }
}

fn push_unique(v: &mut Vec<RelId>, x: RelId) {
    if !v.contains(&x) {
        v.push(x);
    }
}

fn param_to_json(p: &ConditionParamType) -> Value {
    let mut o = Map::new();
    o.insert("type_name".into(), json!(p.type_name));
    if !p.generic_types.is_empty() {
        o.insert(
            "generic_types".into(),
            Value::Array(p.generic_types.iter().map(param_to_json).collect()),
        );
    }
    Value::Object(o)
}

fn userset_to_json(u: &Userset) -> Value {
    match u {
        Userset::This => json!({ "this": {} }),
        Userset::Computed(r) => json!({ "computedUserset": { "relation": r } }),
        Userset::TupleToUserset { tupleset, computed } => json!({
            "tupleToUserset": {
                "tupleset": { "relation": tupleset },
                "computedUserset": { "relation": computed }
            }
        }),
        Userset::Union(c) => {
            json!({ "union": { "child": c.iter().map(userset_to_json).collect::<Vec<_>>() } })
        }
        Userset::Intersection(c) => {
            json!({ "intersection": { "child": c.iter().map(userset_to_json).collect::<Vec<_>>() } })
        }
        Userset::Difference { base, subtract } => json!({
            "difference": { "base": userset_to_json(base), "subtract": userset_to_json(subtract) }
        }),
    }
}

// ---------------- JSON parsing ----------------

type Parts = (String, Vec<TypeDef>, Vec<ConditionDef>);

fn jerr(msg: impl Into<String>) -> ModelError {
    ModelError::Json(msg.into())
}

fn get_str<'a>(o: &'a Map<String, Value>, key: &str, ctx: &str) -> Result<&'a str, ModelError> {
    o.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| jerr(format!("{ctx}: missing string field '{key}'")))
}

fn parse_json(v: &Value) -> Result<Parts, ModelError> {
    let o = v
        .as_object()
        .ok_or_else(|| jerr("model must be a JSON object"))?;
    let schema = get_str(o, "schema_version", "model")?.to_string();
    let tds = o
        .get("type_definitions")
        .and_then(Value::as_array)
        .ok_or_else(|| jerr("model: missing array 'type_definitions'"))?;
    let mut types = Vec::with_capacity(tds.len());
    for td in tds {
        let td = td
            .as_object()
            .ok_or_else(|| jerr("type definition must be an object"))?;
        let name = get_str(td, "type", "type definition")?.to_string();
        let mut meta: HashMap<&str, &Value> = HashMap::new();
        if let Some(md) = td.get("metadata").and_then(Value::as_object)
            && let Some(rm) = md.get("relations").and_then(Value::as_object)
        {
            for (k, v) in rm {
                meta.insert(k.as_str(), v);
            }
        }
        let mut relations = Vec::new();
        match td.get("relations") {
            None | Some(Value::Null) => {}
            Some(Value::Object(rels)) => {
                for (rname, rw) in rels {
                    let ctx = format!("{name}#{rname}");
                    let rewrite = parse_userset(rw, &ctx, 0)?;
                    let mut directly_related = Vec::new();
                    if let Some(m) = meta.get(rname.as_str())
                        && let Some(list) = m.get("directly_related_user_types")
                    {
                        match list {
                            Value::Null => {}
                            Value::Array(items) => {
                                for it in items {
                                    directly_related.push(parse_restriction(it, &ctx)?);
                                }
                            }
                            _ => {
                                return Err(jerr(format!(
                                    "{ctx}: directly_related_user_types must be an array"
                                )));
                            }
                        }
                    }
                    relations.push(RelationDef {
                        name: rname.clone(),
                        rewrite,
                        directly_related,
                    });
                }
            }
            Some(_) => return Err(jerr(format!("type '{name}': relations must be an object"))),
        }
        types.push(TypeDef { name, relations });
    }
    let mut conditions = Vec::new();
    match o.get("conditions") {
        None | Some(Value::Null) => {}
        Some(Value::Object(cs)) => {
            for (key, c) in cs {
                let co = c
                    .as_object()
                    .ok_or_else(|| jerr(format!("condition '{key}' must be an object")))?;
                let name = co
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or(key)
                    .to_string();
                if name != *key {
                    return Err(ModelError::InvalidCondition {
                        name: key.clone(),
                        reason: format!("key does not match name '{name}'"),
                    });
                }
                let expression =
                    get_str(co, "expression", &format!("condition '{key}'"))?.to_string();
                let mut parameters = BTreeMap::new();
                if let Some(ps) = co.get("parameters").and_then(Value::as_object) {
                    for (p, t) in ps {
                        parameters.insert(p.clone(), parse_param(t, key)?);
                    }
                }
                conditions.push(ConditionDef {
                    name,
                    expression,
                    parameters,
                });
            }
        }
        Some(_) => return Err(jerr("conditions must be an object")),
    }
    Ok((schema, types, conditions))
}

fn parse_param(v: &Value, cond: &str) -> Result<ConditionParamType, ModelError> {
    let o = v
        .as_object()
        .ok_or_else(|| jerr(format!("condition '{cond}': parameter must be an object")))?;
    let type_name = get_str(o, "type_name", &format!("condition '{cond}' parameter"))?.to_string();
    let mut generic_types = Vec::new();
    if let Some(g) = o.get("generic_types").and_then(Value::as_array) {
        for x in g {
            generic_types.push(parse_param(x, cond)?);
        }
    }
    Ok(ConditionParamType {
        type_name,
        generic_types,
    })
}

fn parse_restriction(v: &Value, ctx: &str) -> Result<TypeRestriction, ModelError> {
    let o = v
        .as_object()
        .ok_or_else(|| jerr(format!("{ctx}: type restriction must be an object")))?;
    let type_name = get_str(o, "type", ctx)?.to_string();
    let relation = o
        .get("relation")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let wildcard = matches!(o.get("wildcard"), Some(Value::Object(_)));
    let kind = match (relation, wildcard) {
        (Some(_), true) => {
            return Err(jerr(format!(
                "{ctx}: restriction cannot be both userset and wildcard"
            )));
        }
        (Some(r), false) => RestrictionKind::Userset(r.to_string()),
        (None, true) => RestrictionKind::Wildcard,
        (None, false) => RestrictionKind::Direct,
    };
    let condition = o
        .get("condition")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    Ok(TypeRestriction {
        type_name,
        kind,
        condition,
    })
}

fn object_relation(v: &Value, ctx: &str) -> Result<String, ModelError> {
    let r = v
        .as_object()
        .and_then(|o| o.get("relation"))
        .and_then(Value::as_str)
        .ok_or_else(|| jerr(format!("{ctx}: expected {{\"relation\": ...}}")))?;
    if r.is_empty() {
        return Err(jerr(format!("{ctx}: empty relation reference")));
    }
    Ok(r.to_string())
}

const MAX_REWRITE_NESTING: usize = 64;

fn parse_userset(v: &Value, ctx: &str, depth: usize) -> Result<Userset, ModelError> {
    if depth > MAX_REWRITE_NESTING {
        return Err(jerr(format!("{ctx}: rewrite nested too deeply")));
    }
    let o = v
        .as_object()
        .ok_or_else(|| jerr(format!("{ctx}: rewrite must be an object")))?;
    let keys: Vec<&String> = o.keys().filter(|k| !o[k.as_str()].is_null()).collect();
    if keys.len() != 1 {
        return Err(jerr(format!(
            "{ctx}: rewrite must have exactly one of this, computedUserset, tupleToUserset, union, intersection, difference"
        )));
    }
    let key = keys[0].as_str();
    let inner = &o[key];
    let children = |name: &str| -> Result<Vec<Userset>, ModelError> {
        let c = inner
            .get("child")
            .and_then(Value::as_array)
            .ok_or_else(|| jerr(format!("{ctx}: {name} needs a 'child' array")))?;
        if c.is_empty() {
            return Err(jerr(format!("{ctx}: {name} needs at least one child")));
        }
        c.iter().map(|x| parse_userset(x, ctx, depth + 1)).collect()
    };
    Ok(match key {
        "this" => Userset::This,
        "computedUserset" => Userset::Computed(object_relation(inner, ctx)?),
        "tupleToUserset" => {
            let tupleset = object_relation(inner.get("tupleset").unwrap_or(&Value::Null), ctx)?;
            let computed =
                object_relation(inner.get("computedUserset").unwrap_or(&Value::Null), ctx)?;
            Userset::TupleToUserset { tupleset, computed }
        }
        "union" => Userset::Union(children("union")?),
        "intersection" => Userset::Intersection(children("intersection")?),
        "difference" => {
            let base = inner
                .get("base")
                .ok_or_else(|| jerr(format!("{ctx}: difference needs 'base'")))?;
            let sub = inner
                .get("subtract")
                .ok_or_else(|| jerr(format!("{ctx}: difference needs 'subtract'")))?;
            Userset::Difference {
                base: Box::new(parse_userset(base, ctx, depth + 1)?),
                subtract: Box::new(parse_userset(sub, ctx, depth + 1)?),
            }
        }
        other => return Err(jerr(format!("{ctx}: unknown rewrite '{other}'"))),
    })
}

// ---------------- validation (OpenFGA's rules) ----------------

struct Validator<'a> {
    rels: HashMap<&'a str, HashMap<&'a str, &'a RelationDef>>,
    conditions: &'a BTreeMap<String, ConditionDef>,
    /// Tupleset relations per type.
    tuplesets: HashMap<&'a str, HashSet<&'a str>>,
    steps: std::cell::Cell<u32>,
}

fn contains_this(u: &Userset) -> bool {
    match u {
        Userset::This => true,
        Userset::Computed(_) | Userset::TupleToUserset { .. } => false,
        Userset::Union(c) | Userset::Intersection(c) => c.iter().any(contains_this),
        Userset::Difference { base, subtract } => contains_this(base) || contains_this(subtract),
    }
}

fn collect_tuplesets<'a>(u: &'a Userset, out: &mut HashSet<&'a str>) {
    match u {
        Userset::TupleToUserset { tupleset, .. } => {
            out.insert(tupleset);
        }
        Userset::Union(c) | Userset::Intersection(c) => {
            c.iter().for_each(|x| collect_tuplesets(x, out))
        }
        Userset::Difference { base, subtract } => {
            collect_tuplesets(base, out);
            collect_tuplesets(subtract, out);
        }
        _ => {}
    }
}

type Visited<'a> = HashSet<(&'a str, &'a str)>;

struct Facts<'a> {
    entry: HashSet<(&'a str, &'a str)>,
    reaches_cycle: HashSet<(&'a str, &'a str)>,
}

fn computed_targets<'a>(u: &'a Userset, out: &mut Vec<&'a str>) {
    match u {
        Userset::Computed(c) => out.push(c),
        Userset::Union(c) | Userset::Intersection(c) => {
            c.iter().for_each(|x| computed_targets(x, out))
        }
        Userset::Difference { base, subtract } => {
            computed_targets(base, out);
            computed_targets(subtract, out);
        }
        _ => {}
    }
}

impl<'a> Validator<'a> {
    fn new(types: &'a [TypeDef], conditions: &'a BTreeMap<String, ConditionDef>) -> Self {
        let mut rels = HashMap::new();
        let mut tuplesets = HashMap::new();
        for t in types {
            let mut m = HashMap::new();
            let mut ts = HashSet::new();
            for r in &t.relations {
                m.insert(r.name.as_str(), r);
                collect_tuplesets(&r.rewrite, &mut ts);
            }
            rels.insert(t.name.as_str(), m);
            tuplesets.insert(t.name.as_str(), ts);
        }
        Validator {
            rels,
            conditions,
            tuplesets,
            steps: std::cell::Cell::new(0),
        }
    }

    fn get(&self, t: &str, r: &str) -> Option<&'a RelationDef> {
        self.rels.get(t).and_then(|m| m.get(r)).copied()
    }

    fn validate_relation(
        &self,
        t: &'a str,
        r: &'a RelationDef,
        facts: &Facts<'a>,
    ) -> Result<(), ModelError> {
        self.rewrite_valid(t, &r.name, &r.rewrite)?;
        self.restrictions_valid(t, r)?;
        if !facts.entry.contains(&(t, r.name.as_str())) {
            // Only on failure: the path-based walk tells whether a loop is to blame.
            let mut visited = Visited::new();
            let (_, via_loop) = self.has_entrypoint(t, &r.name, &r.rewrite, &mut visited);
            return Err(ModelError::NoEntrypoint {
                type_name: t.to_string(),
                relation: r.name.clone(),
                via_loop,
            });
        }
        if facts.reaches_cycle.contains(&(t, r.name.as_str())) {
            return Err(ModelError::Cycle {
                type_name: t.to_string(),
                relation: r.name.clone(),
            });
        }
        Ok(())
    }

    /// Facts computed once for the whole model (linear-ish instead of OpenFGA's per-relation
    /// path enumeration, which is exponential on adversarial models): which relations have an
    /// entrypoint (least fixpoint of the same rules), and which reach a cycle of computed usersets.
    fn facts(&self, types: &'a [TypeDef]) -> Facts<'a> {
        let mut entry: HashSet<(&'a str, &'a str)> = HashSet::new();
        loop {
            let mut changed = false;
            for t in types {
                for r in &t.relations {
                    let key = (t.name.as_str(), r.name.as_str());
                    if !entry.contains(&key)
                        && self.entry_eval(t.name.as_str(), r, &r.rewrite, &entry)
                    {
                        entry.insert(key);
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        let mut reaches_cycle = HashSet::new();
        for t in types {
            // Computed-userset graph of this type; a relation is invalid if a cycle is reachable.
            let mut state: HashMap<&'a str, u8> = HashMap::new(); // 1 = on stack, 2 = done
            let mut bad: HashSet<&'a str> = HashSet::new();
            for r in &t.relations {
                self.cycle_dfs(t.name.as_str(), r.name.as_str(), &mut state, &mut bad);
            }
            for b in bad {
                reaches_cycle.insert((t.name.as_str(), b));
            }
        }
        Facts {
            entry,
            reaches_cycle,
        }
    }

    fn cycle_dfs(
        &self,
        t: &'a str,
        rel: &'a str,
        state: &mut HashMap<&'a str, u8>,
        bad: &mut HashSet<&'a str>,
    ) -> bool {
        match state.get(rel) {
            Some(1) => return true,
            Some(_) => return bad.contains(rel),
            None => {}
        }
        state.insert(rel, 1);
        let mut targets = Vec::new();
        if let Some(r) = self.get(t, rel) {
            computed_targets(&r.rewrite, &mut targets);
        }
        let mut found = false;
        for c in targets {
            if self.get(t, c).is_some() && self.cycle_dfs(t, c, state, bad) {
                found = true;
            }
        }
        state.insert(rel, 2);
        if found {
            bad.insert(rel);
        }
        found
    }

    fn entry_eval(
        &self,
        t: &str,
        rel: &RelationDef,
        u: &Userset,
        entry: &HashSet<(&'a str, &'a str)>,
    ) -> bool {
        match u {
            Userset::This => rel.directly_related.iter().any(|x| match &x.kind {
                RestrictionKind::Direct | RestrictionKind::Wildcard => true,
                RestrictionKind::Userset(ur) => {
                    entry.contains(&(x.type_name.as_str(), ur.as_str()))
                }
            }),
            Userset::Computed(c) => entry.contains(&(t, c.as_str())),
            Userset::TupleToUserset { tupleset, computed } => {
                self.get(t, tupleset).is_some_and(|ts| {
                    ts.directly_related
                        .iter()
                        .any(|x| entry.contains(&(x.type_name.as_str(), computed.as_str())))
                })
            }
            Userset::Union(c) => c.iter().any(|x| self.entry_eval(t, rel, x, entry)),
            Userset::Intersection(c) => c.iter().all(|x| self.entry_eval(t, rel, x, entry)),
            Userset::Difference { base, subtract } => {
                self.entry_eval(t, rel, base, entry) && self.entry_eval(t, rel, subtract, entry)
            }
        }
    }

    fn rewrite_valid(&self, t: &str, rel: &str, u: &Userset) -> Result<(), ModelError> {
        match u {
            Userset::This => Ok(()),
            Userset::Computed(c) => {
                if c == rel {
                    return Err(ModelError::SelfReference {
                        type_name: t.into(),
                        relation: rel.into(),
                    });
                }
                if self.get(t, c).is_none() {
                    return Err(ModelError::UndefinedRelation {
                        type_name: t.into(),
                        relation: rel.into(),
                        referenced: c.clone(),
                    });
                }
                Ok(())
            }
            Userset::TupleToUserset { tupleset, computed } => {
                let Some(ts) = self.get(t, tupleset) else {
                    return Err(ModelError::UndefinedRelation {
                        type_name: t.into(),
                        relation: rel.into(),
                        referenced: tupleset.clone(),
                    });
                };
                if ts.rewrite != Userset::This {
                    return Err(ModelError::TuplesetNotDirect {
                        type_name: t.into(),
                        tupleset: tupleset.clone(),
                    });
                }
                if ts
                    .directly_related
                    .iter()
                    .any(|x| self.get(&x.type_name, computed).is_some())
                {
                    Ok(())
                } else {
                    Err(ModelError::TtuComputedUndefined {
                        type_name: t.into(),
                        relation: rel.into(),
                        tupleset: tupleset.clone(),
                        computed: computed.clone(),
                    })
                }
            }
            Userset::Union(c) | Userset::Intersection(c) => {
                c.iter().try_for_each(|x| self.rewrite_valid(t, rel, x))
            }
            Userset::Difference { base, subtract } => {
                self.rewrite_valid(t, rel, base)?;
                self.rewrite_valid(t, rel, subtract)
            }
        }
    }

    fn restrictions_valid(&self, t: &str, r: &RelationDef) -> Result<(), ModelError> {
        let assignable = contains_this(&r.rewrite);
        if assignable && r.directly_related.is_empty() {
            return Err(ModelError::MissingTypeRestrictions {
                type_name: t.into(),
                relation: r.name.clone(),
            });
        }
        if !assignable && !r.directly_related.is_empty() {
            return Err(ModelError::UnexpectedTypeRestrictions {
                type_name: t.into(),
                relation: r.name.clone(),
            });
        }
        let is_tupleset = self
            .tuplesets
            .get(t)
            .is_some_and(|s| s.contains(r.name.as_str()));
        let mut seen = HashSet::new();
        for x in &r.directly_related {
            let bad = || ModelError::InvalidTypeRestriction {
                type_name: t.into(),
                relation: r.name.clone(),
                restriction: x.display(),
            };
            if !self.rels.contains_key(x.type_name.as_str()) {
                return Err(bad());
            }
            if x.kind != RestrictionKind::Direct && is_tupleset {
                return Err(ModelError::TuplesetRestriction {
                    type_name: t.into(),
                    tupleset: r.name.clone(),
                    restriction: x.display(),
                });
            }
            if let RestrictionKind::Userset(ur) = &x.kind
                && self.get(&x.type_name, ur).is_none()
            {
                return Err(bad());
            }
            if let Some(c) = &x.condition
                && !self.conditions.contains_key(c)
            {
                return Err(ModelError::UndefinedCondition {
                    type_name: t.into(),
                    relation: r.name.clone(),
                    condition: c.clone(),
                });
            }
            if !seen.insert(x) {
                return Err(ModelError::InvalidTypeRestriction {
                    type_name: t.into(),
                    relation: r.name.clone(),
                    restriction: format!("{} (listed twice)", x.display()),
                });
            }
        }
        Ok(())
    }

    /// OpenFGA's entrypoint analysis: can any concrete user ever be related? Returns
    /// (has_entrypoint, missing_due_to_loop).
    fn has_entrypoint(
        &self,
        t: &'a str,
        rel: &'a str,
        u: &'a Userset,
        visited: &mut Visited<'a>,
    ) -> (bool, bool) {
        // Only used to word an error; bounded so an adversarial model cannot make it explode.
        let steps = self.steps.get() + 1;
        self.steps.set(steps);
        if steps > 100_000 {
            return (false, false);
        }
        let mut v = visited.clone();
        v.insert((t, rel));
        let Some(relation) = self.get(t, rel) else {
            return (false, false);
        };
        match u {
            Userset::This => {
                for x in &relation.directly_related {
                    match &x.kind {
                        RestrictionKind::Direct | RestrictionKind::Wildcard => {
                            return (true, false);
                        }
                        RestrictionKind::Userset(ur) => {
                            let Some(target) = self.get(&x.type_name, ur) else {
                                continue;
                            };
                            if v.contains(&(x.type_name.as_str(), ur.as_str())) {
                                continue;
                            }
                            if self
                                .has_entrypoint(&x.type_name, ur, &target.rewrite, &mut v)
                                .0
                            {
                                return (true, false);
                            }
                        }
                    }
                }
                (false, false)
            }
            Userset::Computed(c) => {
                let Some(target) = self.get(t, c) else {
                    return (false, false);
                };
                if v.contains(&(t, c.as_str())) {
                    return (false, true);
                }
                self.has_entrypoint(t, c, &target.rewrite, &mut v)
            }
            Userset::TupleToUserset { tupleset, computed } => {
                let Some(ts) = self.get(t, tupleset) else {
                    return (false, false);
                };
                for x in &ts.directly_related {
                    if let Some(target) = self.get(&x.type_name, computed) {
                        if v.contains(&(x.type_name.as_str(), computed.as_str())) {
                            continue;
                        }
                        if self
                            .has_entrypoint(&x.type_name, computed, &target.rewrite, &mut v)
                            .0
                        {
                            return (true, false);
                        }
                    }
                }
                (false, false)
            }
            Userset::Union(c) => {
                let mut lp = false;
                for x in c {
                    let mut vv = visited.clone();
                    let (ok, l) = self.has_entrypoint(t, rel, x, &mut vv);
                    if ok {
                        return (true, false);
                    }
                    lp |= l;
                }
                (false, lp)
            }
            Userset::Intersection(c) => {
                for x in c {
                    let mut vv = visited.clone();
                    let (ok, l) = self.has_entrypoint(t, rel, x, &mut vv);
                    if !ok {
                        return (false, l);
                    }
                }
                (true, false)
            }
            Userset::Difference { base, subtract } => {
                let mut vv = visited.clone();
                let (ok, l) = self.has_entrypoint(t, rel, base, &mut vv);
                if !ok {
                    return (false, l);
                }
                let (ok, l) = self.has_entrypoint(t, rel, subtract, &mut vv);
                if !ok {
                    return (false, l);
                }
                (true, false)
            }
        }
    }
}
