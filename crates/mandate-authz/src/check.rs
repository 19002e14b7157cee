//! Check: is `user` related to `object` by `relation`?
//!
//! Follows OpenFGA's semantics: the resolve depth counts dispatches (following a userset tuple or
//! a tuple-to-userset edge; computed usersets are free) and exceeding it is an error, distinct
//! from `false`; revisiting an `object#relation` already on the current path is a cycle, which
//! evaluates to `false` and makes an enclosing intersection or exclusion `false` too. Union
//! short-circuits on the first `true`, intersection on the first `false`; errors only surface if
//! no short-circuit decides the answer. Stored tuples that the current model's type restrictions
//! do not allow are ignored.
//!
//! Work is bounded: every resolution step and every tuple read counts against
//! [`ResolutionLimits::max_work`]; when it is spent the whole request fails with
//! [`AuthzError::BudgetExceeded`] (never a partial answer). Results cut by a cycle are memoised
//! too, but only as long as they are valid: a result that depends on nodes still on the
//! resolution stack is kept while those frames live, and becomes final once it depends on none
//! (see [`Cuts`]). Without this, a dense cycle (n folders, each the parent of every other) costs
//! time exponential in n.

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
    /// Work budget of one request (one Check, or one whole ListObjects/ListUsers): resolution
    /// steps plus tuples read. Spending it fails the request with
    /// [`AuthzError::BudgetExceeded`], so no request can occupy a thread for long.
    pub max_work: u64,
}

/// Default [`ResolutionLimits::max_work`]: far above what real checks need (a check through a
/// few thousand groups costs a few thousand steps), tens of milliseconds at most.
pub const DEFAULT_MAX_WORK: u64 = 200_000;

impl Default for ResolutionLimits {
    fn default() -> Self {
        ResolutionLimits {
            max_depth: 25,
            max_work: DEFAULT_MAX_WORK,
        }
    }
}

/// Guard against native stack exhaustion on pathological models (long computed chains on every
/// level): nested resolutions beyond this fail with [`AuthzError::TooComplex`].
const MAX_FRAMES: u32 = 200;

/// Which frames of the resolution stack a cycle-cut result depends on (a bit per stack position,
/// positions < `MAX_FRAMES`), and whether a cut reached the subtrahend of an exclusion, where a
/// cut and a plain `false` give different answers (such results are never memoised).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Cuts {
    bits: [u64; 4],
    nonmono: bool,
}

impl Cuts {
    fn at(pos: usize) -> Self {
        let mut c = Cuts::default();
        c.bits[pos / 64] |= 1 << (pos % 64);
        c
    }

    fn add(&mut self, o: Cuts) {
        for (a, b) in self.bits.iter_mut().zip(o.bits) {
            *a |= b;
        }
        self.nonmono |= o.nonmono;
    }

    fn without(mut self, pos: usize) -> Self {
        self.bits[pos / 64] &= !(1 << (pos % 64));
        self
    }

    /// The highest stack position depended on.
    fn top(&self) -> Option<usize> {
        (0..4)
            .rev()
            .find(|&i| self.bits[i] != 0)
            .map(|i| i * 64 + 63 - self.bits[i].leading_zeros() as usize)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Out {
    True,
    False,
    /// False because a cycle was cut somewhere below: valid while the frames in `Cuts` are on
    /// the stack.
    Cycle(Cuts),
}

#[derive(Clone, Copy)]
enum Memo {
    /// On the stack at this position.
    InProgress(usize),
    Done(bool),
    /// Cut by a cycle; valid while the frame `frame` is still at stack position `pos` (all
    /// frames below it are then unchanged too). `pos == usize::MAX`: valid in any context.
    Cycle {
        cuts: Cuts,
        pos: usize,
        frame: u64,
    },
}

const ANY_CONTEXT: usize = usize::MAX;

/// One resolution context: a fixed user, memoising `object#relation` results for that user.
/// Memoised results are path independent (only plain true/false are kept), so one checker can
/// serve many checks of the same user (ListObjects does this).
pub(crate) struct Checker<'a, R: TupleReader + ?Sized> {
    model: &'a AuthorizationModel,
    reader: &'a R,
    user: UserRef<'a>,
    max_depth: u32,
    memo: FxHashMap<(ObjectRef<'a>, RelId), Memo>,
    /// Frame ids of the resolutions in progress, by stack position.
    stack: Vec<u64>,
    next_frame: u64,
    /// Work left (steps plus tuples read) and the budget it started from.
    work_left: u64,
    max_work: u64,
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
            stack: Vec::with_capacity(32),
            next_frame: 0,
            work_left: limits.max_work,
            max_work: limits.max_work,
            rel_names: vec![None; model.rel_count()],
        }
    }

    /// Continue from another checker's remaining budget (one budget per request).
    pub(crate) fn with_work_left(mut self, left: u64) -> Self {
        self.work_left = left;
        self
    }

    /// Budget not yet spent.
    pub(crate) fn work_left(&self) -> u64 {
        self.work_left
    }

    /// Count `n` units of work; `Err` once the budget is spent.
    #[inline]
    pub(crate) fn spend(&mut self, n: u64) -> Result<(), AuthzError> {
        match self.work_left.checked_sub(n) {
            Some(left) => {
                self.work_left = left;
                Ok(())
            }
            None => {
                self.work_left = 0;
                Err(AuthzError::BudgetExceeded(self.max_work))
            }
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
        self.spend(1)?;
        let key = (obj, rel);
        let model = self.model;
        let r = model.rel(rel);
        if let UserRef::Userset { object, relation } = self.user
            && object == obj
            && relation == r.name
        {
            return Ok(Out::True);
        }
        let pos = self.stack.len();
        match self.memo.get(&key) {
            Some(Memo::InProgress(at)) => return Ok(Out::Cycle(Cuts::at(*at))),
            Some(Memo::Done(true)) => return Ok(Out::True),
            Some(Memo::Done(false)) => return Ok(Out::False),
            Some(Memo::Cycle {
                cuts,
                pos: p,
                frame,
            }) if *p == ANY_CONTEXT || self.stack.get(*p) == Some(frame) => {
                return Ok(Out::Cycle(*cuts));
            }
            Some(Memo::Cycle { .. }) | None => {}
        }
        if pos >= MAX_FRAMES as usize {
            return Err(AuthzError::TooComplex);
        }
        self.memo.insert(key, Memo::InProgress(pos));
        let frame = self.next_frame;
        self.next_frame += 1;
        self.stack.push(frame);
        let res = self.eval(obj, rel, &r.rewrite, depth);
        self.stack.pop();
        match res {
            Ok(Out::True) => {
                self.memo.insert(key, Memo::Done(true));
                Ok(Out::True)
            }
            Ok(Out::False) => {
                self.memo.insert(key, Memo::Done(false));
                Ok(Out::False)
            }
            Ok(Out::Cycle(cuts)) => {
                // Cuts at this node itself are resolved now that it is done.
                let cuts = cuts.without(pos);
                if cuts.nonmono {
                    self.memo.remove(&key);
                } else {
                    let (p, frame) = match cuts.top() {
                        None => (ANY_CONTEXT, 0),
                        Some(p) => (p, self.stack[p]),
                    };
                    self.memo.insert(
                        key,
                        Memo::Cycle {
                            cuts,
                            pos: p,
                            frame,
                        },
                    );
                }
                Ok(Out::Cycle(cuts))
            }
            Err(e) => {
                self.memo.remove(&key);
                Err(e)
            }
        }
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
                let mut cycle: Option<Cuts> = None;
                for c in children {
                    match self.eval(obj, rel, c, depth) {
                        Ok(Out::True) => return Ok(Out::True),
                        Ok(Out::Cycle(k)) => cycle.get_or_insert_default().add(k),
                        Ok(Out::False) => {}
                        Err(e) if e.is_fatal() => return Err(e),
                        Err(e) => {
                            err.get_or_insert(e);
                        }
                    }
                }
                match (err, cycle) {
                    (Some(e), _) => Err(e),
                    (None, Some(k)) => Ok(Out::Cycle(k)),
                    (None, None) => Ok(Out::False),
                }
            }
            Rewrite::Intersection(children) => {
                let mut err = None;
                for c in children {
                    match self.eval(obj, rel, c, depth) {
                        Ok(Out::True) => {}
                        Ok(other) => return Ok(other),
                        Err(e) if e.is_fatal() => return Err(e),
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
            Rewrite::Difference(base, sub) => {
                // A cut in the subtrahend turns what would be `true` into a cut: path dependent.
                let nonmono = |mut k: Cuts| {
                    k.nonmono = true;
                    Out::Cycle(k)
                };
                match self.eval(obj, rel, base, depth) {
                    Ok(Out::False) => Ok(Out::False),
                    Ok(Out::Cycle(k)) => Ok(Out::Cycle(k)),
                    Ok(Out::True) => match self.eval(obj, rel, sub, depth)? {
                        Out::True => Ok(Out::False),
                        Out::False => Ok(Out::True),
                        Out::Cycle(k) => Ok(nonmono(k)),
                    },
                    Err(e) if e.is_fatal() => Err(e),
                    Err(e) => match self.eval(obj, rel, sub, depth) {
                        Ok(Out::True) => Ok(Out::False),
                        Ok(Out::Cycle(k)) => Ok(nonmono(k)),
                        Err(f) if f.is_fatal() => Err(f),
                        _ => Err(e),
                    },
                }
            }
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
        let mut cycle: Option<Cuts> = None;
        let mut fatal: Option<AuthzError> = None;
        reader.read_usersets(obj, name, &mut |t| {
            if let Err(e) = self.spend(1) {
                fatal = Some(e);
                return false;
            }
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
                        Ok(Out::Cycle(k)) => {
                            cycle.get_or_insert_default().add(k);
                            true
                        }
                        Ok(Out::False) => true,
                        Err(e) if e.is_fatal() => {
                            fatal = Some(e);
                            false
                        }
                        Err(e) => {
                            err.get_or_insert(e);
                            true
                        }
                    }
                }
                _ => true,
            }
        });
        if let Some(e) = fatal {
            return Err(e);
        }
        if found {
            return Ok(Out::True);
        }
        match (err, cycle) {
            (Some(e), _) => Err(e),
            (None, Some(k)) => Ok(Out::Cycle(k)),
            (None, None) => Ok(Out::False),
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
        let mut cycle: Option<Cuts> = None;
        let mut fatal: Option<AuthzError> = None;
        reader.read_users(obj, ts_name, &mut |t| {
            if let Err(e) = self.spend(1) {
                fatal = Some(e);
                return false;
            }
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
                Ok(Out::Cycle(k)) => {
                    cycle.get_or_insert_default().add(k);
                    true
                }
                Ok(Out::False) => true,
                Err(e) if e.is_fatal() => {
                    fatal = Some(e);
                    false
                }
                Err(e) => {
                    err.get_or_insert(e);
                    true
                }
            }
        });
        if let Some(e) = fatal {
            return Err(e);
        }
        if found {
            return Ok(Out::True);
        }
        match (err, cycle) {
            (Some(e), _) => Err(e),
            (None, Some(k)) => Ok(Out::Cycle(k)),
            (None, None) => Ok(Out::False),
        }
    }
}
