//! Property test: Check and ListObjects agree with a naive reference evaluator (set semantics,
//! fixpoints for the recursive group/folder relations) on random models and tuples.
//!
//! Data is acyclic here (groups and folders nest only "upwards"), so plain set semantics is the
//! right reference; cycle semantics (OpenFGA's "cycle means false") is covered by the
//! conformance suite and `tests/engine.rs`.

use std::collections::{BTreeSet, HashMap};

use mandate_authz::{
    AuthorizationModel, CheckRequest, Engine, ListObjectsRequest, MemoryTuples, RelationDef,
    RestrictionKind, Tuple, TypeDef, TypeRestriction, Userset,
};
use proptest::prelude::*;

const USERS: usize = 4;
const GROUPS: usize = 3;
const FOLDERS: usize = 3;
const DOCS: usize = 3;

#[derive(Debug, Clone)]
enum E {
    This,
    Comp(usize),
    Ttu,
    Union(Vec<E>),
    Inter(Vec<E>),
    Diff(Box<E>, Box<E>),
}

fn expr() -> impl Strategy<Value = E> {
    let leaf = prop_oneof![Just(E::This), (0usize..8).prop_map(E::Comp), Just(E::Ttu)];
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(E::Union),
            prop::collection::vec(inner.clone(), 2..4).prop_map(E::Inter),
            (inner.clone(), inner).prop_map(|(a, b)| E::Diff(Box::new(a), Box::new(b))),
        ]
    })
}

fn to_userset(e: &E, i: usize) -> Userset {
    match e {
        E::This => Userset::This,
        E::Comp(k) if i > 0 => Userset::Computed(format!("r{}", k % i)),
        E::Comp(_) => Userset::This,
        E::Ttu => Userset::TupleToUserset {
            tupleset: "parent".into(),
            computed: "viewer".into(),
        },
        E::Union(c) => Userset::Union(c.iter().map(|x| to_userset(x, i)).collect()),
        E::Inter(c) => Userset::Intersection(c.iter().map(|x| to_userset(x, i)).collect()),
        E::Diff(a, b) => Userset::Difference {
            base: Box::new(to_userset(a, i)),
            subtract: Box::new(to_userset(b, i)),
        },
    }
}

fn has_this(u: &Userset) -> bool {
    match u {
        Userset::This => true,
        Userset::Union(c) | Userset::Intersection(c) => c.iter().any(has_this),
        Userset::Difference { base, subtract } => has_this(base) || has_this(subtract),
        _ => false,
    }
}

fn restr(t: &str, kind: RestrictionKind) -> TypeRestriction {
    TypeRestriction {
        type_name: t.into(),
        kind,
        condition: None,
    }
}

fn rel(name: &str, rewrite: Userset, directly_related: Vec<TypeRestriction>) -> RelationDef {
    RelationDef {
        name: name.into(),
        rewrite,
        directly_related,
    }
}

fn build_model(rels: &[(E, u8)]) -> Option<(AuthorizationModel, Vec<Userset>)> {
    let direct_user = || restr("user", RestrictionKind::Direct);
    let group_member = || restr("group", RestrictionKind::Userset("member".into()));
    let mut doc_rels = vec![rel(
        "parent",
        Userset::This,
        vec![restr("folder", RestrictionKind::Direct)],
    )];
    let mut rewrites = Vec::new();
    for (i, (e, mask)) in rels.iter().enumerate() {
        let u = to_userset(e, i);
        let mut rs = Vec::new();
        if has_this(&u) {
            let options = [
                direct_user(),
                restr("user", RestrictionKind::Wildcard),
                group_member(),
                restr("folder", RestrictionKind::Userset("viewer".into())),
            ];
            for (b, o) in options.into_iter().enumerate() {
                if mask & (1 << b) != 0 {
                    rs.push(o);
                }
            }
            if rs.is_empty() {
                rs.push(direct_user());
            }
        }
        rewrites.push(u.clone());
        doc_rels.push(rel(&format!("r{i}"), u, rs));
    }
    let types = vec![
        TypeDef {
            name: "user".into(),
            relations: vec![],
        },
        TypeDef {
            name: "group".into(),
            relations: vec![rel(
                "member",
                Userset::This,
                vec![direct_user(), group_member()],
            )],
        },
        TypeDef {
            name: "folder".into(),
            relations: vec![
                rel(
                    "parent",
                    Userset::This,
                    vec![restr("folder", RestrictionKind::Direct)],
                ),
                rel(
                    "viewer",
                    Userset::Union(vec![
                        Userset::This,
                        Userset::TupleToUserset {
                            tupleset: "parent".into(),
                            computed: "viewer".into(),
                        },
                    ]),
                    vec![direct_user(), group_member()],
                ),
            ],
        },
        TypeDef {
            name: "doc".into(),
            relations: doc_rels,
        },
    ];
    AuthorizationModel::new("1.1".into(), types, vec![])
        .ok()
        .map(|m| (m, rewrites))
}

type Set = BTreeSet<usize>;

struct Reference {
    group: Vec<Set>,
    folder: Vec<Set>,
    doc_parent: Vec<Vec<usize>>,
    doc: Vec<Vec<Set>>, // [relation][doc]
}

fn user_set(user: &str, group: &[Set], folder: &[Set]) -> Set {
    let (t, rest) = user.split_once(':').expect("typed user");
    if t == "user" {
        if rest == "*" {
            return (0..USERS).collect();
        }
        return [rest[1..].parse::<usize>().expect("id")].into();
    }
    let (id, _) = rest.split_once('#').expect("userset");
    let n: usize = id[1..].parse().expect("id");
    match t {
        "group" => group[n].clone(),
        "folder" => folder[n].clone(),
        _ => unreachable!(),
    }
}

fn reference(rewrites: &[Userset], tuples: &[Tuple]) -> Reference {
    let mut group = vec![Set::new(); GROUPS];
    let mut folder = vec![Set::new(); FOLDERS];
    let idx = |s: &str| {
        s.split_once(':')
            .map(|(_, id)| id[1..].parse::<usize>().expect("id"))
            .expect("obj")
    };
    // Fixpoints for the recursive relations.
    loop {
        let before = (group.clone(), folder.clone());
        for t in tuples {
            if t.object.starts_with("group:") {
                let add = user_set(&t.user, &group, &folder);
                group[idx(&t.object)].extend(add);
            } else if t.object.starts_with("folder:") && t.relation == "viewer" {
                let add = user_set(&t.user, &group, &folder);
                folder[idx(&t.object)].extend(add);
            } else if t.object.starts_with("folder:") && t.relation == "parent" {
                let add = folder[idx(&t.user)].clone();
                folder[idx(&t.object)].extend(add);
            }
        }
        if (group.clone(), folder.clone()) == before {
            break;
        }
    }
    let mut doc_parent = vec![Vec::new(); DOCS];
    let mut direct: HashMap<(usize, usize), Set> = HashMap::new();
    for t in tuples.iter().filter(|t| t.object.starts_with("doc:")) {
        let d = idx(&t.object);
        if t.relation == "parent" {
            doc_parent[d].push(idx(&t.user));
        } else {
            let r: usize = t.relation[1..].parse().expect("rel");
            direct
                .entry((r, d))
                .or_default()
                .extend(user_set(&t.user, &group, &folder));
        }
    }
    let mut doc: Vec<Vec<Set>> = Vec::new();
    for (i, rw) in rewrites.iter().enumerate() {
        let mut per_doc = Vec::new();
        for d in 0..DOCS {
            per_doc.push(eval(rw, i, d, &doc, &direct, &folder, &doc_parent));
        }
        doc.push(per_doc);
    }
    Reference {
        group,
        folder,
        doc_parent,
        doc,
    }
}

fn eval(
    u: &Userset,
    i: usize,
    d: usize,
    doc: &[Vec<Set>],
    direct: &HashMap<(usize, usize), Set>,
    folder: &[Set],
    parents: &[Vec<usize>],
) -> Set {
    match u {
        Userset::This => direct.get(&(i, d)).cloned().unwrap_or_default(),
        Userset::Computed(r) => doc[r[1..].parse::<usize>().expect("rel")][d].clone(),
        Userset::TupleToUserset { .. } => parents[d]
            .iter()
            .flat_map(|f| folder[*f].iter().copied())
            .collect(),
        Userset::Union(c) => c
            .iter()
            .flat_map(|x| eval(x, i, d, doc, direct, folder, parents))
            .collect(),
        Userset::Intersection(c) => {
            let mut sets = c
                .iter()
                .map(|x| eval(x, i, d, doc, direct, folder, parents));
            let first = sets.next().unwrap_or_default();
            sets.fold(first, |a, b| a.intersection(&b).copied().collect())
        }
        Userset::Difference { base, subtract } => {
            let b = eval(base, i, d, doc, direct, folder, parents);
            let s = eval(subtract, i, d, doc, direct, folder, parents);
            b.difference(&s).copied().collect()
        }
    }
}

fn raw_tuple(kind: u8, a: u8, b: u8, c: u8, nrels: usize) -> Tuple {
    let u = |x: u8| format!("user:u{}", x as usize % USERS);
    let g = |x: u8| x as usize % GROUPS;
    let f = |x: u8| x as usize % FOLDERS;
    match kind % 6 {
        // Groups and folders nest upwards only (acyclic data).
        0 => Tuple::new(format!("group:g{}", g(a)), "member", u(b)),
        1 => {
            let (lo, hi) = (g(a).min(g(b)), g(a).max(g(b)));
            if lo == hi {
                return Tuple::new(format!("group:g{lo}"), "member", u(c));
            }
            Tuple::new(
                format!("group:g{lo}"),
                "member",
                format!("group:g{hi}#member"),
            )
        }
        2 => {
            let (lo, hi) = (f(a).min(f(b)), f(a).max(f(b)));
            if lo == hi {
                return Tuple::new(format!("folder:f{lo}"), "viewer", u(c));
            }
            Tuple::new(format!("folder:f{lo}"), "parent", format!("folder:f{hi}"))
        }
        3 => {
            if c.is_multiple_of(2) {
                Tuple::new(format!("folder:f{}", f(a)), "viewer", u(b))
            } else {
                Tuple::new(
                    format!("folder:f{}", f(a)),
                    "viewer",
                    format!("group:g{}#member", g(b)),
                )
            }
        }
        4 => Tuple::new(
            format!("doc:d{}", a as usize % DOCS),
            "parent",
            format!("folder:f{}", f(b)),
        ),
        _ => {
            let user = match c % 5 {
                0 | 1 => u(b),
                2 => "user:*".to_string(),
                3 => format!("group:g{}#member", g(b)),
                _ => format!("folder:f{}#viewer", f(b)),
            };
            Tuple::new(
                format!("doc:d{}", a as usize % DOCS),
                format!("r{}", c as usize % nrels),
                user,
            )
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn check_and_list_objects_match_reference(
        rels in prop::collection::vec((expr(), 1u8..16), 1..6),
        raw in prop::collection::vec((any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>()), 0..40),
    ) {
        let built = build_model(&rels);
        prop_assume!(built.is_some());
        let (model, rewrites) = built.unwrap();
        let mut tuples: Vec<Tuple> = Vec::new();
        for (k, a, b, c) in raw {
            let t = raw_tuple(k, a, b, c, rels.len());
            if model.validate_tuple(&t).is_ok() && !tuples.contains(&t) {
                tuples.push(t);
            }
        }
        let mut store = MemoryTuples::new();
        store.write(&model, &tuples, &[]).expect("valid tuples");
        let want = reference(&rewrites, &tuples);
        let engine = Engine::new(&model, &store);
        let _ = &want.doc_parent;
        for u in 0..USERS {
            let user = format!("user:u{u}");
            for (g, members) in want.group.iter().enumerate() {
                let got = engine.check(&CheckRequest::new(format!("group:g{g}"), "member", &user)).unwrap();
                prop_assert_eq!(got, members.contains(&u), "group:g{} member {}", g, user);
            }
            for (f, viewers) in want.folder.iter().enumerate() {
                let got = engine.check(&CheckRequest::new(format!("folder:f{f}"), "viewer", &user)).unwrap();
                prop_assert_eq!(got, viewers.contains(&u), "folder:f{} viewer {}", f, user);
            }
            for (i, per_doc) in want.doc.iter().enumerate() {
                let mut expected = Vec::new();
                for (d, set) in per_doc.iter().enumerate() {
                    let got = engine.check(&CheckRequest::new(format!("doc:d{d}"), format!("r{i}"), &user)).unwrap();
                    prop_assert_eq!(got, set.contains(&u), "doc:d{} r{} {}\nmodel:\n{}\ntuples: {:?}", d, i, user, model.to_dsl(), tuples);
                    if set.contains(&u) {
                        expected.push(format!("doc:d{d}"));
                    }
                }
                let listed = engine.list_objects(&ListObjectsRequest {
                    object_type: "doc".into(),
                    relation: format!("r{i}"),
                    user: user.clone(),
                    contextual_tuples: vec![],
                }).unwrap();
                prop_assert_eq!(listed, expected, "list_objects r{} {}", i, user);
            }
        }
    }
}
