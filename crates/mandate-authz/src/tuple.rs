//! Relationship tuples: `object#relation@user`, their syntax, and their validation against a model.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::TupleError;
use crate::model::{AuthorizationModel, Rel, RestrictionKind};

/// A condition attached to a tuple (`with` in OpenFGA): name plus stored context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TupleCondition {
    /// Condition name (must be defined in the model).
    pub name: String,
    /// Parameter values stored with the tuple.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A relationship tuple as clients send and read it (OpenFGA's TupleKey).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tuple {
    /// `type:id`.
    pub object: String,
    /// Relation name on the object's type.
    pub relation: String,
    /// `type:id`, `type:*` or `type:id#relation`.
    pub user: String,
    /// Optional condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<TupleCondition>,
}

impl Tuple {
    /// A tuple without condition.
    pub fn new(
        object: impl Into<String>,
        relation: impl Into<String>,
        user: impl Into<String>,
    ) -> Self {
        Tuple {
            object: object.into(),
            relation: relation.into(),
            user: user.into(),
            condition: None,
        }
    }

    /// `object#relation@user`, the tuple's identity (conditions are not part of it).
    pub fn key(&self) -> String {
        format!("{}#{}@{}", self.object, self.relation, self.user)
    }

    /// Checks syntax only (no model).
    pub fn parse(&self) -> Result<TupleRef<'_>, TupleError> {
        Ok(TupleRef {
            object: parse_object(&self.object)?,
            relation: parse_relation(&self.relation)?,
            user: parse_user(&self.user)?,
            condition: self.condition.as_ref().map(|c| c.name.as_str()),
        })
    }
}

impl fmt::Display for Tuple {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}@{}", self.object, self.relation, self.user)
    }
}

/// A borrowed object `type:id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef<'a> {
    /// Object type.
    pub object_type: &'a str,
    /// Object id.
    pub object_id: &'a str,
}

impl<'a> ObjectRef<'a> {
    /// Builds a reference from parts.
    pub fn new(object_type: &'a str, object_id: &'a str) -> Self {
        ObjectRef {
            object_type,
            object_id,
        }
    }
}

impl fmt::Display for ObjectRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.object_type, self.object_id)
    }
}

/// A borrowed user: a concrete object, a type's public wildcard, or a userset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UserRef<'a> {
    /// `type:id`.
    Object(ObjectRef<'a>),
    /// `type:*`: every object of the type.
    Wildcard(&'a str),
    /// `type:id#relation`: everyone with `relation` on the object.
    Userset {
        /// The object.
        object: ObjectRef<'a>,
        /// The relation on it.
        relation: &'a str,
    },
}

impl<'a> UserRef<'a> {
    /// The user's type.
    pub fn user_type(&self) -> &'a str {
        match self {
            UserRef::Object(o) => o.object_type,
            UserRef::Wildcard(t) => t,
            UserRef::Userset { object, .. } => object.object_type,
        }
    }
}

impl fmt::Display for UserRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserRef::Object(o) => write!(f, "{o}"),
            UserRef::Wildcard(t) => write!(f, "{t}:*"),
            UserRef::Userset { object, relation } => write!(f, "{object}#{relation}"),
        }
    }
}

/// A borrowed tuple, as readers yield them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TupleRef<'a> {
    /// Object.
    pub object: ObjectRef<'a>,
    /// Relation.
    pub relation: &'a str,
    /// User.
    pub user: UserRef<'a>,
    /// Condition name, if the tuple is conditional.
    pub condition: Option<&'a str>,
}

impl TupleRef<'_> {
    /// Owned copy (the condition's stored context is not carried by a `TupleRef`).
    pub fn to_tuple(&self) -> Tuple {
        Tuple {
            object: self.object.to_string(),
            relation: self.relation.to_string(),
            user: self.user.to_string(),
            condition: self.condition.map(|c| TupleCondition {
                name: c.to_string(),
                context: None,
            }),
        }
    }
}

fn bad(field: &'static str, value: &str, reason: &'static str) -> TupleError {
    TupleError::Malformed {
        field,
        value: value.to_string(),
        reason,
    }
}

fn type_ok(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 254
        && !t
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, ':' | '#' | '@' | '*'))
}

fn id_ok(id: &str) -> bool {
    !id.is_empty()
        && !id
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, ':' | '#'))
}

/// Parses `type:id` (no wildcard, no userset).
pub fn parse_object(s: &str) -> Result<ObjectRef<'_>, TupleError> {
    if s.len() > 256 {
        return Err(bad("object", s, "longer than 256 bytes"));
    }
    let (t, id) = s
        .split_once(':')
        .ok_or_else(|| bad("object", s, "expected 'type:id'"))?;
    if !type_ok(t) {
        return Err(bad("object", s, "invalid type"));
    }
    if id == "*" {
        return Err(bad("object", s, "an object cannot be a wildcard"));
    }
    if !id_ok(id) {
        return Err(bad("object", s, "invalid id"));
    }
    Ok(ObjectRef::new(t, id))
}

/// Checks a relation name's syntax.
pub fn parse_relation(s: &str) -> Result<&str, TupleError> {
    if s.is_empty()
        || s.len() > 50
        || s.chars()
            .any(|c| c.is_whitespace() || matches!(c, ':' | '#' | '@' | '*'))
    {
        return Err(bad("relation", s, "invalid relation name"));
    }
    Ok(s)
}

/// Parses `type:id`, `type:*` or `type:id#relation`.
pub fn parse_user(s: &str) -> Result<UserRef<'_>, TupleError> {
    if s.len() > 512 {
        return Err(bad("user", s, "longer than 512 bytes"));
    }
    let (obj, rel) = match s.split_once('#') {
        Some((o, r)) => (o, Some(r)),
        None => (s, None),
    };
    let (t, id) = obj.split_once(':').ok_or_else(|| {
        bad(
            "user",
            s,
            "expected 'type:id', 'type:*' or 'type:id#relation'",
        )
    })?;
    if !type_ok(t) {
        return Err(bad("user", s, "invalid type"));
    }
    match rel {
        None if id == "*" => Ok(UserRef::Wildcard(t)),
        None => {
            if !id_ok(id) {
                return Err(bad("user", s, "invalid id"));
            }
            Ok(UserRef::Object(ObjectRef::new(t, id)))
        }
        Some(r) => {
            if id == "*" {
                return Err(bad("user", s, "a wildcard cannot have a relation"));
            }
            if !id_ok(id) {
                return Err(bad("user", s, "invalid id"));
            }
            parse_relation(r).map_err(|_| bad("user", s, "invalid relation"))?;
            Ok(UserRef::Userset {
                object: ObjectRef::new(t, id),
                relation: r,
            })
        }
    }
}

/// Whether the relation's type restrictions admit this user (and condition), as OpenFGA checks
/// on write and when filtering stored tuples on read.
pub(crate) fn allowed_by(rel: &Rel, user: &UserRef<'_>, condition: Option<&str>) -> bool {
    let ut = user.user_type();
    rel.restrictions.iter().any(|r| {
        r.type_name == ut
            && r.condition.as_deref() == condition
            && match (&r.kind, user) {
                (RestrictionKind::Direct, UserRef::Object(_)) => true,
                (RestrictionKind::Wildcard, UserRef::Wildcard(_)) => true,
                (RestrictionKind::Userset(a), UserRef::Userset { relation, .. }) => a == relation,
                _ => false,
            }
    })
}

impl AuthorizationModel {
    /// Validates a tuple for writing: syntax, types and relations exist, the user type is allowed
    /// by the relation's type restrictions (with the same condition), the condition exists.
    pub fn validate_tuple(&self, t: &Tuple) -> Result<(), TupleError> {
        let p = t.parse()?;
        self.validate_tuple_ref(&p)
    }

    pub(crate) fn validate_tuple_ref(&self, p: &TupleRef<'_>) -> Result<(), TupleError> {
        let rel_id = self.check_object_relation(p.object.object_type, p.relation)?;
        self.check_user_exists(&p.user)?;
        if let Some(c) = p.condition
            && !self.conditions().contains_key(c)
        {
            return Err(TupleError::ConditionNotFound(c.to_string()));
        }
        let rel = self.rel(rel_id);
        if !allowed_by(rel, &p.user, p.condition) {
            let user = match &p.user {
                UserRef::Object(o) => o.object_type.to_string(),
                UserRef::Wildcard(t) => format!("{t}:*"),
                UserRef::Userset { object, relation } => {
                    format!("{}#{}", object.object_type, relation)
                }
            };
            let user = match p.condition {
                Some(c) => format!("{user} with {c}"),
                None => user,
            };
            return Err(TupleError::NotAllowed {
                object_type: p.object.object_type.to_string(),
                relation: p.relation.to_string(),
                user,
            });
        }
        Ok(())
    }

    pub(crate) fn check_object_relation(
        &self,
        object_type: &str,
        relation: &str,
    ) -> Result<crate::model::RelId, TupleError> {
        if self.type_id(object_type).is_none() {
            return Err(TupleError::TypeNotFound(object_type.to_string()));
        }
        self.rel_id(object_type, relation)
            .ok_or_else(|| TupleError::RelationNotFound {
                type_name: object_type.to_string(),
                relation: relation.to_string(),
            })
    }

    pub(crate) fn check_user_exists(&self, user: &UserRef<'_>) -> Result<(), TupleError> {
        let ut = user.user_type();
        if self.type_id(ut).is_none() {
            return Err(TupleError::TypeNotFound(ut.to_string()));
        }
        if let UserRef::Userset { relation, .. } = user
            && self.rel_id(ut, relation).is_none()
        {
            return Err(TupleError::RelationNotFound {
                type_name: ut.to_string(),
                relation: relation.to_string(),
            });
        }
        Ok(())
    }
}
