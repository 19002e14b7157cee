//! Check: is `user` related to `object` by `relation`?
//!
//! Follows OpenFGA's semantics: the resolve depth counts dispatches (following a userset tuple or
//! a tuple-to-userset edge; computed usersets are free) and exceeding it is an error, distinct
//! from `false`; revisiting an `object#relation` already on the current path is a cycle, which
//! evaluates to `false` and makes an enclosing intersection or exclusion `false` too. Union
//! short-circuits on the first `true`, intersection on the first `false`; errors only surface if
//! no short-circuit decides the answer. Stored tuples that the current model's type restrictions
//! do not allow are ignored.

use crate::error::AuthzError;
use crate::hash::FxHashMap;
use crate::model::{AuthorizationModel, Rel, RelId, RestrictionKind, Rewrite};
use crate::store::TupleReader;
use crate::tuple::{ObjectRef, UserRef, allowed_by};

/// Bounds on a single resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolutionLimits {
    /// Maximum nested dispatches (OpenFGA's `resolveNodeLimit`, default 25).
    pub max_depth: u32,
}

impl Default for ResolutionLimits {
    fn default() -> Self {
        ResolutionLimits { max_depth: 25 }
    }
}

/// Guard against native stack exhaustion on pathological models (long computed chains on every
/// level): nested resolutions beyond this fail with [`AuthzError::TooComplex`].
const MAX_FRAMES: u32 = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Out {
    True,
    False,
    /// False because a cycle was cut somewhere below; path dependent, never memoised.
    Cycle,
}

#[derive(Clone, Copy)]
enum Memo {
    InProgress,
    Done(bool),
}

/// One resolution context: a fixed user, memoising `object#relation` results for that user.
/// Memoised results are path independent (only plain true/false are kept), so one checker can
/// serve many checks of the same user (ListObjects does this).
pub(crate) struct Checker<'a, R: TupleReader + ?Sized> {
    model: &'a AuthorizationModel,
    reader: &'a R,
    user: UserRef<'a>,
    max_depth: u32,
    memo: FxHashMap<(ObjectRef<'a>, RelId), Memo>,
    frames: u32,
    /// Relation names as the reader stores them, by `RelId`, filled on first use: lookups
    /// with the reader's own string skip hashing the name on every read.
    rel_names: Vec<Option<&'a str>>,
}

/// Whether the relation allows the user's kind and type (ignoring conditions); only then can an
/// exact tuple for this user be valid.
fn kind_allowed(rel: &Rel, user: &UserRef<'_>) -> bool {
    let ut = user.user_type();
    rel.restrictions.iter().any(|r| {
        r.type_name == ut
            && match (&r.kind, user) {
                (RestrictionKind::Direct, UserRef::Object(_)) => true,
                (RestrictionKind::Wildcard, UserRef::Wildcard(_)) => true,
                (RestrictionKind::Userset(a), UserRef::Userset { relation, .. }) => a == relation,
                _ => false,
            }
    })
}

fn canonical_object<'a, R: TupleReader + ?Sized>(reader: &'a R, o: ObjectRef<'a>) -> ObjectRef<'a> {
    ObjectRef::new(
        reader.canonical(o.object_type).unwrap_or(o.object_type),
        reader.canonical(o.object_id).unwrap_or(o.object_id),
    )
}

fn canonical_user<'a, R: TupleReader + ?Sized>(reader: &'a R, u: UserRef<'a>) -> UserRef<'a> {
    match u {
        UserRef::Object(o) => UserRef::Object(canonical_object(reader, o)),
        UserRef::Wildcard(t) => UserRef::Wildcard(reader.canonical(t).unwrap_or(t)),
        UserRef::Userset { object, relation } => UserRef::Userset {
            object: canonical_object(reader, object),
            relation: reader.canonical(relation).unwrap_or(relation),
        },
    }
}

impl<'a, R: TupleReader + ?Sized> Checker<'a, R> {
    pub(crate) fn new(
        model: &'a AuthorizationModel,
        reader: &'a R,
        user: UserRef<'a>,
        limits: ResolutionLimits,
    ) -> Self {
        let user = canonical_user(reader, user);
        Checker {
            model,
            reader,
            user,
            max_depth: limits.max_depth,
            memo: FxHashMap::with_capacity_and_hasher(64, Default::default()),
            frames: 0,
            rel_names: vec![None; model.rel_count()],
        }
    }

    /// The name of `rel` for reading tuples: the reader's copy when it has one.
    #[inline]
    fn rel_name(&mut self, rel: RelId) -> &'a str {
        if let Some(n) = self.rel_names[rel as usize] {
            return n;
        }
        let name: &'a str = &self.model.rel(rel).name;
        let n = self.reader.canonical(name).unwrap_or(name);
        self.rel_names[rel as usize] = Some(n);
        n
    }

    /// Top-level check: cycles are `false`.
    pub(crate) fn check(&mut self, object: ObjectRef<'a>, rel: RelId) -> Result<bool, AuthzError> {
        let object = canonical_object(self.reader, object);
        Ok(self.resolve(object, rel, 0)? == Out::True)
    }

    pub(crate) fn resolve(
        &mut self,
        obj: ObjectRef<'a>,
        rel: RelId,
        depth: u32,
    ) -> Result<Out, AuthzError> {
        if depth >= self.max_depth {
            return Err(AuthzError::DepthExceeded(self.max_depth));
        }
        let key = (obj, rel);
        let model = self.model;
        let r = model.rel(rel);
        if let UserRef::Userset { object, relation } = self.user
            && object == obj
            && relation == r.name
        {
            return Ok(Out::True);
        }
        match self.memo.entry(key) {
            std::collections::hash_map::Entry::Occupied(e) => {
                return Ok(match e.get() {
                    Memo::InProgress => Out::Cycle,
                    Memo::Done(true) => Out::True,
                    Memo::Done(false) => Out::False,
                });
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                if self.frames >= MAX_FRAMES {
                    return Err(AuthzError::TooComplex);
                }
                v.insert(Memo::InProgress);
            }
        }
        self.frames += 1;
        let res = self.eval(obj, rel, &r.rewrite, depth);
        self.frames -= 1;
        match res {
            Ok(Out::True) => {
                self.memo.insert(key, Memo::Done(true));
            }
            Ok(Out::False) => {
                self.memo.insert(key, Memo::Done(false));
            }
            _ => {
                self.memo.remove(&key);
            }
        }
        res
    }

    fn eval(
        &mut self,
        obj: ObjectRef<'a>,
        rel: RelId,
        rw: &'a Rewrite,
        depth: u32,
    ) -> Result<Out, AuthzError> {
        match rw {
            Rewrite::This => self.direct(obj, rel, depth),
            Rewrite::Computed(r2) => self.resolve(obj, *r2, depth),
            Rewrite::Ttu { tupleset, computed } => self.ttu(obj, *tupleset, computed, depth),
            Rewrite::Union(children) => {
                let mut err = None;
                let mut cycle = false;
                for c in children {
                    match self.eval(obj, rel, c, depth) {
                        Ok(Out::True) => return Ok(Out::True),
                        Ok(Out::Cycle) => cycle = true,
                        Ok(Out::False) => {}
                        Err(e) => {
                            err.get_or_insert(e);
                        }
                    }
                }
                match err {
                    Some(e) => Err(e),
                    None if cycle => Ok(Out::Cycle),
                    None => Ok(Out::False),
                }
            }
            Rewrite::Intersection(children) => {
                let mut err = None;
                for c in children {
                    match self.eval(obj, rel, c, depth) {
                        Ok(Out::True) => {}
                        Ok(other) => return Ok(other),
                        Err(e) => {
                            err.get_or_insert(e);
                        }
                    }
                }
                match err {
                    Some(e) => Err(e),
                    None => Ok(Out::True),
                }
            }
            Rewrite::Difference(base, sub) => match self.eval(obj, rel, base, depth) {
                Ok(Out::False) => Ok(Out::False),
                Ok(Out::Cycle) => Ok(Out::Cycle),
                Ok(Out::True) => match self.eval(obj, rel, sub, depth)? {
                    Out::True => Ok(Out::False),
                    Out::False => Ok(Out::True),
                    Out::Cycle => Ok(Out::Cycle),
                },
                Err(e) => match self.eval(obj, rel, sub, depth) {
                    Ok(Out::True) => Ok(Out::False),
                    Ok(Out::Cycle) => Ok(Out::Cycle),
                    _ => Err(e),
                },
            },
        }
    }

    fn direct(&mut self, obj: ObjectRef<'a>, rel: RelId, depth: u32) -> Result<Out, AuthzError> {
        let model = self.model;
        let reader = self.reader;
        let r = model.rel(rel);
        let user = self.user;
        let name = self.rel_name(rel);
        let mut err: Option<AuthzError> = None;
        if kind_allowed(r, &user)
            && let Some(t) = reader.find(obj, name, user)
            && allowed_by(r, &t.user, t.condition)
        {
            match t.condition {
                None => return Ok(Out::True),
                Some(c) => err = Some(AuthzError::ConditionUnsupported(c.to_string())),
            }
        }
        if !r.has_indirect {
            return match err {
                Some(e) => Err(e),
                None => Ok(Out::False),
            };
        }
        let user_type = user.user_type();
        let mut found = false;
        let mut cycle = false;
        reader.read_usersets(obj, name, &mut |t| {
            if !allowed_by(r, &t.user, t.condition) {
                return true;
            }
            match t.user {
                UserRef::Wildcard(wt) if wt == user_type => {
                    if let Some(c) = t.condition {
                        err.get_or_insert(AuthzError::ConditionUnsupported(c.to_string()));
                        return true;
                    }
                    found = true;
                    false
                }
                UserRef::Userset { object, relation } => {
                    if let Some(c) = t.condition {
                        err.get_or_insert(AuthzError::ConditionUnsupported(c.to_string()));
                        return true;
                    }
                    let Some(rid) = model.rel_id(object.object_type, relation) else {
                        return true;
                    };
                    match self.resolve(object, rid, depth + 1) {
                        Ok(Out::True) => {
                            found = true;
                            false
                        }
                        Ok(Out::Cycle) => {
                            cycle = true;
                            true
                        }
                        Ok(Out::False) => true,
                        Err(e) => {
                            err.get_or_insert(e);
                            true
                        }
                    }
                }
                _ => true,
            }
        });
        if found {
            return Ok(Out::True);
        }
        match err {
            Some(e) => Err(e),
            None if cycle => Ok(Out::Cycle),
            None => Ok(Out::False),
        }
    }

    fn ttu(
        &mut self,
        obj: ObjectRef<'a>,
        tupleset: RelId,
        computed: &str,
        depth: u32,
    ) -> Result<Out, AuthzError> {
        let model = self.model;
        let reader = self.reader;
        let ts = model.rel(tupleset);
        let ts_name = self.rel_name(tupleset);
        let mut err: Option<AuthzError> = None;
        let mut found = false;
        let mut cycle = false;
        reader.read_users(obj, ts_name, &mut |t| {
            if !allowed_by(ts, &t.user, t.condition) {
                return true;
            }
            let UserRef::Object(parent) = t.user else {
                return true;
            };
            let Some(rid) = model.rel_id(parent.object_type, computed) else {
                return true;
            };
            if let Some(c) = t.condition {
                err.get_or_insert(AuthzError::ConditionUnsupported(c.to_string()));
                return true;
            }
            match self.resolve(parent, rid, depth + 1) {
                Ok(Out::True) => {
                    found = true;
                    false
                }
                Ok(Out::Cycle) => {
                    cycle = true;
                    true
                }
                Ok(Out::False) => true,
                Err(e) => {
                    err.get_or_insert(e);
                    true
                }
            }
        });
        if found {
            return Ok(Out::True);
        }
        match err {
            Some(e) => Err(e),
            None if cycle => Ok(Out::Cycle),
            None => Ok(Out::False),
        }
    }
}
