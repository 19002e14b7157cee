//! Tuple storage: the [`TupleReader`] trait the evaluator reads through, an indexed in-memory
//! implementation ([`MemoryTuples`]) and the per-request overlay of contextual tuples.

use std::collections::{HashMap, HashSet};

use crate::error::AuthzError;
use crate::hash::FxHashMap;
use crate::model::AuthorizationModel;
use crate::tuple::{ObjectRef, Tuple, TupleCondition, TupleRef, UserRef};

/// Read access to relationship tuples, as the evaluator needs it.
///
/// Synchronous on purpose: evaluation does many tiny lookups, so implementations are expected to
/// answer from memory (e.g. a per-tenant snapshot advanced by revision). Callbacks return `false`
/// to stop early. Readers return what is stored; the evaluator itself drops tuples the current
/// model does not allow, as OpenFGA does.
pub trait TupleReader {
    /// Every tuple on `object#relation`.
    fn read_users<'s>(
        &'s self,
        object: ObjectRef<'_>,
        relation: &str,
        f: &mut dyn FnMut(TupleRef<'s>) -> bool,
    );

    /// Tuples on `object#relation` whose user is a wildcard or a userset. Override when the
    /// index can skip plain users (an object may have many direct users and few usersets).
    fn read_usersets<'s>(
        &'s self,
        object: ObjectRef<'_>,
        relation: &str,
        f: &mut dyn FnMut(TupleRef<'s>) -> bool,
    ) {
        self.read_users(object, relation, &mut |t| match t.user {
            UserRef::Object(_) => true,
            _ => f(t),
        });
    }

    /// The stored tuple `object#relation@user`, if any (exact match on the user string).
    fn find<'s>(
        &'s self,
        object: ObjectRef<'_>,
        relation: &str,
        user: UserRef<'_>,
    ) -> Option<TupleRef<'s>>;

    /// Tuples of `object_type#relation` whose user is exactly `user` (reverse lookup, used by
    /// ListObjects).
    fn read_objects<'s>(
        &'s self,
        object_type: &str,
        relation: &str,
        user: UserRef<'_>,
        f: &mut dyn FnMut(TupleRef<'s>) -> bool,
    );

    /// The reader's own copy of `s`, if it stores that string. The evaluator passes request
    /// strings through this once, so readers that recognise their own strings (as
    /// [`MemoryTuples`] does by address) skip re-hashing them on every lookup.
    fn canonical<'s>(&'s self, s: &str) -> Option<&'s str> {
        let _ = s;
        None
    }
}

impl<T: TupleReader + ?Sized> TupleReader for &T {
    fn read_users<'s>(
        &'s self,
        object: ObjectRef<'_>,
        relation: &str,
        f: &mut dyn FnMut(TupleRef<'s>) -> bool,
    ) {
        (**self).read_users(object, relation, f)
    }
    fn read_usersets<'s>(
        &'s self,
        object: ObjectRef<'_>,
        relation: &str,
        f: &mut dyn FnMut(TupleRef<'s>) -> bool,
    ) {
        (**self).read_usersets(object, relation, f)
    }
    fn find<'s>(
        &'s self,
        object: ObjectRef<'_>,
        relation: &str,
        user: UserRef<'_>,
    ) -> Option<TupleRef<'s>> {
        (**self).find(object, relation, user)
    }
    fn read_objects<'s>(
        &'s self,
        object_type: &str,
        relation: &str,
        user: UserRef<'_>,
        f: &mut dyn FnMut(TupleRef<'s>) -> bool,
    ) {
        (**self).read_objects(object_type, relation, user, f)
    }
    fn canonical<'s>(&'s self, s: &str) -> Option<&'s str> {
        (**self).canonical(s)
    }
}

/// Stored tuples plus a request's contextual tuples, read as one set.
pub struct Layered<'a, A: ?Sized, B: ?Sized> {
    /// Stored tuples.
    pub base: &'a A,
    /// Contextual tuples of the request.
    pub extra: &'a B,
}

impl<A: TupleReader + ?Sized, B: TupleReader + ?Sized> TupleReader for Layered<'_, A, B> {
    fn read_users<'s>(
        &'s self,
        object: ObjectRef<'_>,
        relation: &str,
        f: &mut dyn FnMut(TupleRef<'s>) -> bool,
    ) {
        let mut go = true;
        self.extra.read_users(object, relation, &mut |t| {
            go = f(t);
            go
        });
        if go {
            self.base.read_users(object, relation, f);
        }
    }
    fn read_usersets<'s>(
        &'s self,
        object: ObjectRef<'_>,
        relation: &str,
        f: &mut dyn FnMut(TupleRef<'s>) -> bool,
    ) {
        let mut go = true;
        self.extra.read_usersets(object, relation, &mut |t| {
            go = f(t);
            go
        });
        if go {
            self.base.read_usersets(object, relation, f);
        }
    }
    fn find<'s>(
        &'s self,
        object: ObjectRef<'_>,
        relation: &str,
        user: UserRef<'_>,
    ) -> Option<TupleRef<'s>> {
        self.extra
            .find(object, relation, user)
            .or_else(|| self.base.find(object, relation, user))
    }
    fn read_objects<'s>(
        &'s self,
        object_type: &str,
        relation: &str,
        user: UserRef<'_>,
        f: &mut dyn FnMut(TupleRef<'s>) -> bool,
    ) {
        let mut go = true;
        self.extra
            .read_objects(object_type, relation, user, &mut |t| {
                go = f(t);
                go
            });
        if go {
            self.base.read_objects(object_type, relation, user, f);
        }
    }
    fn canonical<'s>(&'s self, s: &str) -> Option<&'s str> {
        self.base.canonical(s)
    }
}

const NONE: u32 = u32::MAX;
/// Bytes of symbol header before each interned string (6 bits each, ASCII).
const SYM_HDR: usize = 6;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct UserIds {
    ty: u32,
    id: u32,
    rel: u32,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    user: UserIds,
    cond: u32,
}

#[derive(Default, Debug)]
struct Users {
    /// Plain `type:id` users.
    direct: Vec<Entry>,
    /// Wildcards and usersets.
    indirect: Vec<Entry>,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct FwdKey {
    ty: u32,
    id: u32,
    rel: u32,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct RevKey {
    ty: u32,
    rel: u32,
    user: UserIds,
}

/// Filter for [`MemoryTuples::read`]; `None` fields match anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadFilter {
    /// Object type.
    pub object_type: Option<String>,
    /// Object id (with `object_type`).
    pub object_id: Option<String>,
    /// Relation.
    pub relation: Option<String>,
    /// Exact user string (`type:id`, `type:*`, `type:id#rel`).
    pub user: Option<String>,
}

/// An indexed in-memory tuple set.
///
/// Strings are interned once; a forward index (`object#relation` → users, with usersets kept
/// apart from plain users) serves Check, a reverse index (`type#relation@user` → objects) serves
/// ListObjects. Batches are atomic with OpenFGA's rules: writing a stored tuple or deleting a
/// missing one fails the whole batch and changes nothing.
pub struct MemoryTuples {
    /// Interned text: each string is preceded by its symbol in `SYM_HDR` ASCII bytes, so a
    /// string this set handed out maps back to its symbol from its address alone.
    arena: String,
    /// Symbol -> (start, len) in `arena`.
    strings: Vec<(u32, u32)>,
    // Caller-controlled strings: keep the DoS-resistant default hasher here.
    syms: HashMap<Box<str>, u32>,
    fwd: FxHashMap<FwdKey, Users>,
    rev: FxHashMap<RevKey, Vec<(u32, u32)>>,
    /// Symbol of "*" (`NONE` until interned).
    star: u32,
    contexts: FxHashMap<(FwdKey, UserIds), serde_json::Map<String, serde_json::Value>>,
    len: usize,
}

impl std::fmt::Debug for MemoryTuples {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTuples")
            .field("len", &self.len)
            .finish()
    }
}

impl Default for MemoryTuples {
    fn default() -> Self {
        MemoryTuples {
            arena: String::new(),
            strings: Vec::new(),
            syms: HashMap::new(),
            fwd: FxHashMap::default(),
            rev: FxHashMap::default(),
            star: NONE,
            contexts: FxHashMap::default(),
            len: 0,
        }
    }
}

impl MemoryTuples {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of stored tuples.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no tuple is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.syms.get(s) {
            return i;
        }
        let i = self.strings.len() as u32;
        let mut v = i;
        for _ in 0..SYM_HDR {
            self.arena.push(char::from(b'0' + (v & 63) as u8));
            v >>= 6;
        }
        let start = self.arena.len() as u32;
        self.arena.push_str(s);
        self.strings.push((start, s.len() as u32));
        self.syms.insert(s.into(), i);
        if s == "*" {
            self.star = i;
        }
        i
    }

    #[inline]
    fn sym(&self, s: &str) -> Option<u32> {
        // Fast path: `s` is a slice of our arena (a string we handed out); read the header.
        let off = (s.as_ptr() as usize).wrapping_sub(self.arena.as_ptr() as usize);
        if off >= SYM_HDR && off < self.arena.len() {
            let b = &self.arena.as_bytes()[off - SYM_HDR..off];
            let mut v = 0u32;
            for &c in b.iter().rev() {
                v = (v << 6) | u32::from(c.wrapping_sub(b'0') & 63);
            }
            if self.strings.get(v as usize) == Some(&(off as u32, s.len() as u32)) {
                return Some(v);
            }
        }
        self.syms.get(s).copied()
    }

    #[inline]
    fn s(&self, i: u32) -> &str {
        let (start, len) = self.strings[i as usize];
        &self.arena[start as usize..(start + len) as usize]
    }

    fn user_ids(&self, u: &UserRef<'_>) -> Option<UserIds> {
        Some(match u {
            UserRef::Object(o) => UserIds {
                ty: self.sym(o.object_type)?,
                id: self.sym(o.object_id)?,
                rel: NONE,
            },
            UserRef::Wildcard(t) => UserIds {
                ty: self.sym(t)?,
                id: if self.star == NONE {
                    return None;
                } else {
                    self.star
                },
                rel: NONE,
            },
            UserRef::Userset { object, relation } => UserIds {
                ty: self.sym(object.object_type)?,
                id: self.sym(object.object_id)?,
                rel: self.sym(relation)?,
            },
        })
    }

    fn intern_user(&mut self, u: &UserRef<'_>) -> UserIds {
        match u {
            UserRef::Object(o) => UserIds {
                ty: self.intern(o.object_type),
                id: self.intern(o.object_id),
                rel: NONE,
            },
            UserRef::Wildcard(t) => UserIds {
                ty: self.intern(t),
                id: self.intern("*"),
                rel: NONE,
            },
            UserRef::Userset { object, relation } => UserIds {
                ty: self.intern(object.object_type),
                id: self.intern(object.object_id),
                rel: self.intern(relation),
            },
        }
    }

    fn user_ref(&self, u: UserIds) -> UserRef<'_> {
        let ty = self.s(u.ty);
        let id = self.s(u.id);
        if u.rel != NONE {
            UserRef::Userset {
                object: ObjectRef::new(ty, id),
                relation: self.s(u.rel),
            }
        } else if u.id == self.star {
            UserRef::Wildcard(ty)
        } else {
            UserRef::Object(ObjectRef::new(ty, id))
        }
    }

    fn tuple_ref(&self, k: FwdKey, e: &Entry) -> TupleRef<'_> {
        TupleRef {
            object: ObjectRef::new(self.s(k.ty), self.s(k.id)),
            relation: self.s(k.rel),
            user: self.user_ref(e.user),
            condition: if e.cond == NONE {
                None
            } else {
                Some(self.s(e.cond))
            },
        }
    }

    fn fwd_key(&self, object: ObjectRef<'_>, relation: &str) -> Option<FwdKey> {
        Some(FwdKey {
            ty: self.sym(object.object_type)?,
            id: self.sym(object.object_id)?,
            rel: self.sym(relation)?,
        })
    }

    fn locate(&self, k: FwdKey, u: UserIds) -> Option<Entry> {
        let users = self.fwd.get(&k)?;
        let list = if u.rel == NONE && u.id != self.star {
            &users.direct
        } else {
            &users.indirect
        };
        // Scan the shorter of the forward list and the reverse list (an org may have many
        // members, a user is in few orgs).
        if list.len() > 8 {
            let rk = RevKey {
                ty: k.ty,
                rel: k.rel,
                user: u,
            };
            let rev = self.rev.get(&rk)?;
            if rev.len() < list.len() {
                let (_, cond) = rev.iter().find(|(id, _)| *id == k.id)?;
                return Some(Entry {
                    user: u,
                    cond: *cond,
                });
            }
        }
        list.iter().find(|e| e.user == u).copied()
    }

    /// Whether the tuple (by identity, ignoring condition) is stored.
    pub fn contains(&self, t: &Tuple) -> bool {
        match t.parse() {
            Ok(p) => self.find(p.object, p.relation, p.user).is_some(),
            Err(_) => false,
        }
    }

    /// Applies a batch: every write is validated against `model` (syntax, types, type
    /// restrictions), then all-or-nothing: a write of a stored tuple, a delete of a missing one,
    /// or the same tuple twice in the batch fails the batch and nothing changes.
    pub fn write(
        &mut self,
        model: &AuthorizationModel,
        writes: &[Tuple],
        deletes: &[Tuple],
    ) -> Result<(), AuthzError> {
        for t in writes {
            model
                .validate_tuple(t)
                .map_err(|error| AuthzError::InvalidTuple {
                    tuple: t.key(),
                    error,
                })?;
        }
        self.write_unchecked(writes, deletes)
    }

    /// Like [`write`](Self::write) but checks syntax only: for loading tuples that were validated
    /// when first written (a snapshot), or for contextual tuples already validated.
    pub fn write_unchecked(
        &mut self,
        writes: &[Tuple],
        deletes: &[Tuple],
    ) -> Result<(), AuthzError> {
        let mut seen = HashSet::new();
        for t in writes.iter().chain(deletes) {
            t.parse().map_err(|error| AuthzError::InvalidTuple {
                tuple: t.key(),
                error,
            })?;
            let key = t.key();
            if !seen.insert(key.clone()) {
                return Err(AuthzError::DuplicateInBatch(key));
            }
        }
        for t in writes {
            if self.contains(t) {
                return Err(AuthzError::TupleExists(t.key()));
            }
        }
        for t in deletes {
            if !self.contains(t) {
                return Err(AuthzError::TupleNotFound(t.key()));
            }
        }
        for t in deletes {
            self.remove(t);
        }
        for t in writes {
            self.insert(t);
        }
        Ok(())
    }

    /// Inserts without batch checks; returns false if the tuple was already there.
    pub(crate) fn insert(&mut self, t: &Tuple) -> bool {
        let Ok(p) = t.parse() else { return false };
        if self.find(p.object, p.relation, p.user).is_some() {
            return false;
        }
        let k = FwdKey {
            ty: self.intern(p.object.object_type),
            id: self.intern(p.object.object_id),
            rel: self.intern(p.relation),
        };
        let user = self.intern_user(&p.user);
        let cond = match &t.condition {
            Some(c) => self.intern(&c.name),
            None => NONE,
        };
        if let Some(TupleCondition {
            context: Some(ctx), ..
        }) = &t.condition
        {
            self.contexts.insert((k, user), ctx.clone());
        }
        let e = Entry { user, cond };
        let users = self.fwd.entry(k).or_default();
        if matches!(p.user, UserRef::Object(_)) {
            users.direct.push(e);
        } else {
            users.indirect.push(e);
        }
        self.rev
            .entry(RevKey {
                ty: k.ty,
                rel: k.rel,
                user,
            })
            .or_default()
            .push((k.id, cond));
        self.len += 1;
        true
    }

    fn remove(&mut self, t: &Tuple) -> bool {
        let Ok(p) = t.parse() else { return false };
        let (Some(k), Some(u)) = (self.fwd_key(p.object, p.relation), self.user_ids(&p.user))
        else {
            return false;
        };
        let Some(users) = self.fwd.get_mut(&k) else {
            return false;
        };
        let list = if matches!(p.user, UserRef::Object(_)) {
            &mut users.direct
        } else {
            &mut users.indirect
        };
        let Some(pos) = list.iter().position(|e| e.user == u) else {
            return false;
        };
        list.swap_remove(pos);
        if users.direct.is_empty() && users.indirect.is_empty() {
            self.fwd.remove(&k);
        }
        let rk = RevKey {
            ty: k.ty,
            rel: k.rel,
            user: u,
        };
        if let Some(v) = self.rev.get_mut(&rk) {
            if let Some(pos) = v.iter().position(|(id, _)| *id == k.id) {
                v.swap_remove(pos);
            }
            if v.is_empty() {
                self.rev.remove(&rk);
            }
        }
        self.contexts.remove(&(k, u));
        self.len -= 1;
        true
    }

    fn owned(&self, k: FwdKey, e: &Entry) -> Tuple {
        let mut t = self.tuple_ref(k, e).to_tuple();
        if let Some(c) = &mut t.condition {
            c.context = self.contexts.get(&(k, e.user)).cloned();
        }
        t
    }

    /// Tuples matching the filter (unordered). Uses an index when the filter names an object and
    /// relation, or a user with object type and relation; otherwise scans.
    pub fn read(&self, filter: &ReadFilter) -> Vec<Tuple> {
        let mut out = Vec::new();
        let user = filter
            .user
            .as_deref()
            .and_then(|u| crate::tuple::parse_user(u).ok());
        if filter.user.is_some() && user.is_none() {
            return out;
        }
        if let (Some(t), Some(id), Some(r)) =
            (&filter.object_type, &filter.object_id, &filter.relation)
        {
            let o = ObjectRef::new(t, id);
            if let Some(k) = self.fwd_key(o, r)
                && let Some(users) = self.fwd.get(&k)
            {
                for e in users.direct.iter().chain(&users.indirect) {
                    if user.is_none() || Some(self.user_ref(e.user)) == user {
                        out.push(self.owned(k, e));
                    }
                }
            }
            return out;
        }
        if let (Some(t), Some(r), Some(u), None) = (
            &filter.object_type,
            &filter.relation,
            user,
            &filter.object_id,
        ) {
            if let (Some(ty), Some(rel), Some(uid)) = (self.sym(t), self.sym(r), self.user_ids(&u))
                && let Some(v) = self.rev.get(&RevKey { ty, rel, user: uid })
            {
                for (id, cond) in v {
                    let k = FwdKey { ty, id: *id, rel };
                    out.push(self.owned(
                        k,
                        &Entry {
                            user: uid,
                            cond: *cond,
                        },
                    ));
                }
            }
            return out;
        }
        for (k, users) in &self.fwd {
            if filter
                .object_type
                .as_deref()
                .is_some_and(|t| t != self.s(k.ty))
                || filter
                    .object_id
                    .as_deref()
                    .is_some_and(|t| t != self.s(k.id))
                || filter
                    .relation
                    .as_deref()
                    .is_some_and(|t| t != self.s(k.rel))
            {
                continue;
            }
            for e in users.direct.iter().chain(&users.indirect) {
                if user.is_none() || Some(self.user_ref(e.user)) == user {
                    out.push(self.owned(*k, e));
                }
            }
        }
        out
    }

    /// Every stored tuple (unordered).
    pub fn iter(&self) -> impl Iterator<Item = TupleRef<'_>> + '_ {
        self.fwd.iter().flat_map(move |(k, users)| {
            users
                .direct
                .iter()
                .chain(users.indirect.iter())
                .map(move |e| self.tuple_ref(*k, e))
        })
    }
}

impl TupleReader for MemoryTuples {
    fn canonical<'s>(&'s self, s: &str) -> Option<&'s str> {
        self.syms.get(s).map(|&i| self.s(i))
    }

    fn read_users<'s>(
        &'s self,
        object: ObjectRef<'_>,
        relation: &str,
        f: &mut dyn FnMut(TupleRef<'s>) -> bool,
    ) {
        let Some(k) = self.fwd_key(object, relation) else {
            return;
        };
        let Some(users) = self.fwd.get(&k) else {
            return;
        };
        for e in users.indirect.iter().chain(&users.direct) {
            if !f(self.tuple_ref(k, e)) {
                return;
            }
        }
    }

    fn read_usersets<'s>(
        &'s self,
        object: ObjectRef<'_>,
        relation: &str,
        f: &mut dyn FnMut(TupleRef<'s>) -> bool,
    ) {
        let Some(k) = self.fwd_key(object, relation) else {
            return;
        };
        let Some(users) = self.fwd.get(&k) else {
            return;
        };
        for e in &users.indirect {
            if !f(self.tuple_ref(k, e)) {
                return;
            }
        }
    }

    fn find<'s>(
        &'s self,
        object: ObjectRef<'_>,
        relation: &str,
        user: UserRef<'_>,
    ) -> Option<TupleRef<'s>> {
        let k = self.fwd_key(object, relation)?;
        let u = self.user_ids(&user)?;
        let e = self.locate(k, u)?;
        Some(self.tuple_ref(k, &e))
    }

    fn read_objects<'s>(
        &'s self,
        object_type: &str,
        relation: &str,
        user: UserRef<'_>,
        f: &mut dyn FnMut(TupleRef<'s>) -> bool,
    ) {
        let (Some(ty), Some(rel), Some(u)) = (
            self.sym(object_type),
            self.sym(relation),
            self.user_ids(&user),
        ) else {
            return;
        };
        let Some(v) = self.rev.get(&RevKey { ty, rel, user: u }) else {
            return;
        };
        for &(id, cond) in v {
            let k = FwdKey { ty, id, rel };
            if !f(self.tuple_ref(k, &Entry { user: u, cond })) {
                return;
            }
        }
    }
}
