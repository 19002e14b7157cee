//! Typed errors. Each maps to the OpenFGA API error code a client of an OpenFGA-compatible API
//! expects ([`AuthzError::openfga_code`]), so the HTTP layer needs no string matching.

use thiserror::Error;

/// Why an authorization model was rejected (on parse or on write).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ModelError {
    /// The DSL text could not be parsed.
    #[error("line {line}: {message}")]
    Syntax {
        /// 1-based line number in the DSL source.
        line: usize,
        /// What was wrong.
        message: String,
    },
    /// The JSON form is not a well-formed model.
    #[error("invalid JSON model: {0}")]
    Json(String),
    /// Only schema 1.1 is supported (as in current OpenFGA).
    #[error("unsupported schema version '{0}' (only 1.1 is supported)")]
    SchemaVersion(String),
    /// Two type definitions share a name.
    #[error("duplicate type '{0}'")]
    DuplicateType(String),
    /// Two relations of one type share a name.
    #[error("duplicate relation '{relation}' in type '{type_name}'")]
    DuplicateRelation {
        /// Type holding the duplicate.
        type_name: String,
        /// Relation defined twice.
        relation: String,
    },
    /// A type, relation or condition name is empty or has forbidden characters.
    #[error("invalid {what} name '{name}'")]
    InvalidName {
        /// "type", "relation" or "condition".
        what: &'static str,
        /// The offending name.
        name: String,
    },
    /// `self` and `this` cannot name types or relations.
    #[error("'{0}' is a reserved keyword and cannot name a type or relation")]
    ReservedKeyword(String),
    /// A rewrite references a relation the type does not define.
    #[error(
        "relation '{type_name}#{relation}' references undefined relation '{type_name}#{referenced}'"
    )]
    UndefinedRelation {
        /// Type of the relation being defined.
        type_name: String,
        /// Relation being defined.
        relation: String,
        /// Missing relation.
        referenced: String,
    },
    /// A computed userset rewrites a relation to itself.
    #[error("relation '{type_name}#{relation}' cannot be defined as itself")]
    SelfReference {
        /// Type name.
        type_name: String,
        /// Relation name.
        relation: String,
    },
    /// The tupleset of `X from Y` must be a plain direct relation.
    #[error(
        "'{type_name}#{tupleset}' is used as a tupleset ('from {tupleset}') and must be a direct relation"
    )]
    TuplesetNotDirect {
        /// Type name.
        type_name: String,
        /// The tupleset relation.
        tupleset: String,
    },
    /// The tupleset of `X from Y` may only relate plain objects.
    #[error(
        "'{type_name}#{tupleset}' is used as a tupleset and cannot allow '{restriction}' (usersets and wildcards are not allowed)"
    )]
    TuplesetRestriction {
        /// Type name.
        type_name: String,
        /// The tupleset relation.
        tupleset: String,
        /// The forbidden restriction.
        restriction: String,
    },
    /// `X from Y`: no type allowed on `Y` defines `X`.
    #[error(
        "'{computed} from {tupleset}' in '{type_name}#{relation}': no type allowed on '{tupleset}' defines relation '{computed}'"
    )]
    TtuComputedUndefined {
        /// Type name.
        type_name: String,
        /// Relation being defined.
        relation: String,
        /// Tupleset relation.
        tupleset: String,
        /// Computed relation looked up on the parent.
        computed: String,
    },
    /// A directly assignable relation lists no allowed user types.
    #[error("assignable relation '{type_name}#{relation}' must allow at least one user type")]
    MissingTypeRestrictions {
        /// Type name.
        type_name: String,
        /// Relation name.
        relation: String,
    },
    /// A relation without direct assignment lists allowed user types.
    #[error(
        "relation '{type_name}#{relation}' is not directly assignable and cannot list user types"
    )]
    UnexpectedTypeRestrictions {
        /// Type name.
        type_name: String,
        /// Relation name.
        relation: String,
    },
    /// A type restriction names a type or relation that does not exist.
    #[error(
        "type restriction '{restriction}' on '{type_name}#{relation}' refers to an undefined type or relation"
    )]
    InvalidTypeRestriction {
        /// Type name.
        type_name: String,
        /// Relation name.
        relation: String,
        /// The restriction as written (`group#member`, `user:*`).
        restriction: String,
    },
    /// A type restriction names a condition the model does not define.
    #[error("condition '{condition}' used on '{type_name}#{relation}' is not defined")]
    UndefinedCondition {
        /// Type name.
        type_name: String,
        /// Relation name.
        relation: String,
        /// Missing condition.
        condition: String,
    },
    /// No user could ever be related: the rewrite never reaches a direct assignment.
    #[error("relation '{type_name}#{relation}' has no entrypoint{}", if *.via_loop { " (potential loop)" } else { "" })]
    NoEntrypoint {
        /// Type name.
        type_name: String,
        /// Relation name.
        relation: String,
        /// Whether the missing entrypoint is due to a loop of references.
        via_loop: bool,
    },
    /// Relations rewrite to each other through computed usersets.
    #[error("relation '{type_name}#{relation}' is part of a cycle of computed relations")]
    Cycle {
        /// Type name.
        type_name: String,
        /// Relation name.
        relation: String,
    },
    /// A condition definition is malformed.
    #[error("invalid condition '{name}': {reason}")]
    InvalidCondition {
        /// Condition name.
        name: String,
        /// What was wrong.
        reason: String,
    },
}

/// Why a tuple (or a request's object/relation/user) is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TupleError {
    /// Syntax: not `type:id`, `type:*` or `type:id#relation`, bad characters, too long.
    #[error("invalid {field} '{value}': {reason}")]
    Malformed {
        /// "object", "relation" or "user".
        field: &'static str,
        /// The offending value.
        value: String,
        /// What was wrong.
        reason: &'static str,
    },
    /// The model has no such type.
    #[error("type '{0}' is not defined in the model")]
    TypeNotFound(String),
    /// The type has no such relation.
    #[error("relation '{type_name}#{relation}' is not defined in the model")]
    RelationNotFound {
        /// Type name.
        type_name: String,
        /// Relation name.
        relation: String,
    },
    /// The user's type is not allowed on that relation by the model's type restrictions.
    #[error("'{user}' is not an allowed user type for '{object_type}#{relation}'")]
    NotAllowed {
        /// Object type.
        object_type: String,
        /// Relation.
        relation: String,
        /// The user type as a restriction would spell it (`user`, `user:*`, `group#member`).
        user: String,
    },
    /// The tuple names a condition the model does not define.
    #[error("condition '{0}' is not defined in the model")]
    ConditionNotFound(String),
}

/// Any failure of an authorization operation.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum AuthzError {
    /// The model is invalid.
    #[error("invalid authorization model: {0}")]
    Model(#[from] ModelError),
    /// The request's own object/relation/user is invalid for the model.
    #[error("invalid request: {0}")]
    InvalidRequest(TupleError),
    /// A tuple to write, or a contextual tuple, is invalid.
    #[error("invalid tuple '{tuple}': {error}")]
    InvalidTuple {
        /// The tuple, as `object#relation@user`.
        tuple: String,
        /// Why.
        error: TupleError,
    },
    /// A list request names an undefined type.
    #[error("type '{0}' is not defined in the model")]
    TypeNotFound(String),
    /// A list request names an undefined relation.
    #[error("relation '{type_name}#{relation}' is not defined in the model")]
    RelationNotFound {
        /// Type name.
        type_name: String,
        /// Relation name.
        relation: String,
    },
    /// A batch writes a tuple that is already stored.
    #[error("cannot write tuple '{0}': it already exists")]
    TupleExists(String),
    /// A batch deletes a tuple that is not stored.
    #[error("cannot delete tuple '{0}': it does not exist")]
    TupleNotFound(String),
    /// A batch names the same tuple twice.
    #[error("tuple '{0}' appears more than once in the batch")]
    DuplicateInBatch(String),
    /// Resolution needed more nested dispatches than allowed (OpenFGA's resolve depth).
    #[error("resolution depth of {0} exceeded")]
    DepthExceeded(u32),
    /// Resolution nesting exceeded the engine's stack guard (a pathological model).
    #[error("authorization model too complex to resolve")]
    TooComplex,
    /// The request spent its work budget ([`crate::ResolutionLimits::max_work`]): the graph it
    /// touches is too large or too densely cyclic to answer within bounds. Nothing is decided.
    #[error(
        "authorization resolution too complex: the work budget of {0} steps was spent before an answer was found"
    )]
    BudgetExceeded(u64),
    /// More contextual tuples than a request may carry ([`crate::MAX_CONTEXTUAL_TUPLES`]).
    #[error("at most {max} contextual tuples per request (got {got})")]
    TooManyContextualTuples {
        /// The cap.
        max: usize,
        /// What the request carried.
        got: usize,
    },
    /// A relationship needed for the answer carries a condition; conditions are not evaluated yet.
    #[error("condition '{0}' cannot be evaluated: conditions are not supported yet")]
    ConditionUnsupported(String),
}

impl AuthzError {
    /// The OpenFGA API error code for this error (e.g. 2000 validation_error, 2002 resolution
    /// too complex, 2021 type not found, 2022 relation not found, 2027 invalid tuple).
    pub fn openfga_code(&self) -> u32 {
        match self {
            AuthzError::Model(_) | AuthzError::InvalidRequest(_) => 2000,
            AuthzError::ConditionUnsupported(_) => 2000,
            AuthzError::InvalidTuple { .. } => 2027,
            AuthzError::TypeNotFound(_) => 2021,
            AuthzError::RelationNotFound { .. } => 2022,
            AuthzError::TupleExists(_) | AuthzError::TupleNotFound(_) => 2017,
            AuthzError::DuplicateInBatch(_) => 2004,
            AuthzError::DepthExceeded(_) | AuthzError::TooComplex => 2002,
            AuthzError::BudgetExceeded(_) => 2002,
            AuthzError::TooManyContextualTuples { .. } => 2000,
        }
    }

    /// Whether the error ends the whole request at once (a spent budget), rather than being
    /// one branch's error that another branch may still outweigh.
    pub fn is_fatal(&self) -> bool {
        matches!(self, AuthzError::BudgetExceeded(_))
    }

    /// Whether the request was refused for the work it would take (budget, depth, nesting or
    /// too many contextual tuples) rather than for what it asks: callers report these as
    /// "too complex", not as a decision.
    pub fn is_resource_limit(&self) -> bool {
        matches!(
            self,
            AuthzError::BudgetExceeded(_)
                | AuthzError::DepthExceeded(_)
                | AuthzError::TooComplex
                | AuthzError::TooManyContextualTuples { .. }
        )
    }
}
