//! Behaviour tests: operators, edges, validation, limits.

use mandate_authz::{
    AuthorizationModel, AuthzError, CheckRequest, Engine, ExpandKind, ListObjectsRequest,
    ListUsersRequest, MemoryTuples, ModelError, ReadFilter, ResolutionLimits, Tuple,
    TupleCondition, TupleError, UserFilter,
};

fn model(dsl: &str) -> AuthorizationModel {
    AuthorizationModel::from_dsl(dsl).unwrap_or_else(|e| panic!("model should load: {e}\n{dsl}"))
}

fn store(m: &AuthorizationModel, ts: &[(&str, &str, &str)]) -> MemoryTuples {
    let mut s = MemoryTuples::new();
    let ts: Vec<Tuple> = ts.iter().map(|(o, r, u)| Tuple::new(*o, *r, *u)).collect();
    s.write(m, &ts, &[]).expect("tuples valid");
    s
}

fn check(m: &AuthorizationModel, s: &MemoryTuples, o: &str, r: &str, u: &str) -> bool {
    Engine::new(m, s)
        .check(&CheckRequest::new(o, r, u))
        .expect("check ok")
}

fn objects(m: &AuthorizationModel, s: &MemoryTuples, t: &str, r: &str, u: &str) -> Vec<String> {
    Engine::new(m, s)
        .list_objects(&ListObjectsRequest {
            object_type: t.into(),
            relation: r.into(),
            user: u.into(),
            contextual_tuples: vec![],
        })
        .expect("list ok")
}

fn users(m: &AuthorizationModel, s: &MemoryTuples, o: &str, r: &str, f: &str) -> Vec<String> {
    Engine::new(m, s)
        .list_users(&ListUsersRequest {
            object: o.into(),
            relation: r.into(),
            user_filters: vec![UserFilter::parse(f)],
            contextual_tuples: vec![],
        })
        .expect("list users ok")
}

const DOCS: &str = "model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type folder
  relations
    define parent: [folder]
    define owner: [user]
    define viewer: [user, group#member] or owner or viewer from parent
type document
  relations
    define parent: [folder]
    define owner: [user]
    define editor: [user, group#member] or owner
    define viewer: [user, user:*, group#member] or editor or viewer from parent
    define blocked: [user]
    define active: [user]
    define can_view: viewer but not blocked
    define can_edit: editor and active
    define strict: (viewer but not blocked) and active
";

#[test]
fn union_computed_ttu_userset() {
    let m = model(DOCS);
    let s = store(
        &m,
        &[
            ("group:eng", "member", "user:anne"),
            ("group:all", "member", "group:eng#member"),
            ("folder:root", "viewer", "group:all#member"),
            ("folder:sub", "parent", "folder:root"),
            ("document:1", "parent", "folder:sub"),
            ("document:2", "owner", "user:bob"),
        ],
    );
    assert!(
        check(&m, &s, "document:1", "viewer", "user:anne"),
        "via TTU x2 + nested groups"
    );
    assert!(!check(&m, &s, "document:1", "viewer", "user:bob"));
    assert!(
        check(&m, &s, "document:2", "viewer", "user:bob"),
        "owner -> editor -> viewer"
    );
    assert!(check(&m, &s, "document:2", "editor", "user:bob"));
    assert!(!check(&m, &s, "document:2", "editor", "user:anne"));
    assert_eq!(
        objects(&m, &s, "document", "viewer", "user:anne"),
        vec!["document:1"]
    );
    assert_eq!(
        objects(&m, &s, "folder", "viewer", "user:anne"),
        vec!["folder:root", "folder:sub"]
    );
    assert_eq!(
        users(&m, &s, "document:1", "viewer", "user"),
        vec!["user:anne"]
    );
    assert_eq!(
        users(&m, &s, "document:1", "viewer", "group#member"),
        vec!["group:all#member", "group:eng#member"]
    );
    // A userset as the user: group:eng#member is inside group:all#member.
    assert!(check(&m, &s, "group:all", "member", "group:eng#member"));
    assert!(check(&m, &s, "document:1", "viewer", "group:eng#member"));
    assert!(
        check(&m, &s, "group:eng", "member", "group:eng#member"),
        "a userset contains itself"
    );
}

#[test]
fn intersection_and_exclusion() {
    let m = model(DOCS);
    let s = store(
        &m,
        &[
            ("document:1", "viewer", "user:anne"),
            ("document:1", "viewer", "user:bob"),
            ("document:1", "blocked", "user:bob"),
            ("document:1", "editor", "user:carl"),
            ("document:1", "active", "user:carl"),
            ("document:1", "editor", "user:dora"),
            ("document:1", "active", "user:anne"),
        ],
    );
    assert!(check(&m, &s, "document:1", "can_view", "user:anne"));
    assert!(
        !check(&m, &s, "document:1", "can_view", "user:bob"),
        "blocked"
    );
    assert!(check(&m, &s, "document:1", "can_edit", "user:carl"));
    assert!(
        !check(&m, &s, "document:1", "can_edit", "user:dora"),
        "not active"
    );
    // Exclusion inside intersection.
    assert!(check(&m, &s, "document:1", "strict", "user:anne"));
    assert!(!check(&m, &s, "document:1", "strict", "user:bob"));
    assert!(!check(&m, &s, "document:1", "strict", "user:dora"));
    assert_eq!(
        objects(&m, &s, "document", "can_view", "user:bob"),
        Vec::<String>::new()
    );
    assert_eq!(
        users(&m, &s, "document:1", "can_edit", "user"),
        vec!["user:carl"]
    );
    assert_eq!(
        users(&m, &s, "document:1", "can_view", "user"),
        vec!["user:anne", "user:carl", "user:dora"]
    );
}

#[test]
fn wildcards() {
    let m = model(DOCS);
    let s = store(
        &m,
        &[
            ("document:pub", "viewer", "user:*"),
            ("document:pub", "blocked", "user:eve"),
        ],
    );
    assert!(check(&m, &s, "document:pub", "viewer", "user:anyone"));
    assert!(check(&m, &s, "document:pub", "viewer", "user:*"));
    assert!(check(&m, &s, "document:pub", "can_view", "user:anyone"));
    assert!(!check(&m, &s, "document:pub", "can_view", "user:eve"));
    assert_eq!(
        objects(&m, &s, "document", "viewer", "user:zed"),
        vec!["document:pub"]
    );
    assert_eq!(
        users(&m, &s, "document:pub", "viewer", "user"),
        vec!["user:*"]
    );
    // A wildcard only matches wildcard tuples when checked as the user.
    let s2 = store(&m, &[("document:1", "viewer", "user:anne")]);
    assert!(!check(&m, &s2, "document:1", "viewer", "user:*"));
}

#[test]
fn cycles_terminate_false() {
    let m = model(
        "model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type document
  relations
    define restricted: [user, document#viewer]
    define viewer: [user] but not restricted
",
    );
    let s = store(
        &m,
        &[
            ("group:a", "member", "group:b#member"),
            ("group:b", "member", "group:a#member"),
            ("group:b", "member", "user:anne"),
            ("document:1", "viewer", "user:jon"),
            ("document:1", "restricted", "document:1#viewer"),
        ],
    );
    assert!(
        check(&m, &s, "group:a", "member", "user:anne"),
        "cycle elsewhere does not hide a path"
    );
    assert!(!check(&m, &s, "group:a", "member", "user:bob"));
    assert!(
        !check(&m, &s, "document:1", "viewer", "user:jon"),
        "true but not cycle is false"
    );
    assert_eq!(
        objects(&m, &s, "group", "member", "user:anne"),
        vec!["group:a", "group:b"]
    );
}

#[test]
fn depth_limit_is_an_error() {
    let m = model(
        "model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
",
    );
    let mut ts = vec![Tuple::new("group:0", "member", "user:anne")];
    for i in 1..40 {
        ts.push(Tuple::new(
            format!("group:{i}"),
            "member",
            format!("group:{}#member", i - 1),
        ));
    }
    let mut s = MemoryTuples::new();
    s.write(&m, &ts, &[]).unwrap();
    let e = Engine::new(&m, &s);
    // 24 dispatches are fine; 25 exceed OpenFGA's default resolve depth.
    assert!(
        e.check(&CheckRequest::new("group:24", "member", "user:anne"))
            .unwrap()
    );
    let err = e
        .check(&CheckRequest::new("group:25", "member", "user:anne"))
        .unwrap_err();
    assert_eq!(err, AuthzError::DepthExceeded(25));
    assert_eq!(err.openfga_code(), 2002);
    let e2 = Engine::new(&m, &s).with_limits(ResolutionLimits {
        max_depth: 50,
        ..Default::default()
    });
    assert!(
        e2.check(&CheckRequest::new("group:39", "member", "user:anne"))
            .unwrap()
    );
    // A user that is nowhere: the walk still hits the depth limit rather than answering false.
    assert!(
        e.check(&CheckRequest::new("group:30", "member", "user:nobody"))
            .is_err()
    );
}

#[test]
fn long_computed_chains_do_not_overflow_the_stack() {
    let mut dsl = String::from(
        "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define r0: [user]\n",
    );
    for i in 1..600 {
        dsl.push_str(&format!("    define r{i}: r{}\n", i - 1));
    }
    let m = model(&dsl);
    let s = store(&m, &[("doc:1", "r0", "user:a")]);
    let e = Engine::new(&m, &s);
    assert!(
        e.check(&CheckRequest::new("doc:1", "r150", "user:a"))
            .unwrap()
    );
    assert_eq!(
        e.check(&CheckRequest::new("doc:1", "r599", "user:a"))
            .unwrap_err(),
        AuthzError::TooComplex
    );
}

#[test]
fn contextual_tuples() {
    let m = model(DOCS);
    let s = store(&m, &[("group:eng", "member", "user:anne")]);
    let e = Engine::new(&m, &s);
    let req = CheckRequest::new("document:1", "viewer", "user:anne")
        .with_contextual_tuples(vec![Tuple::new("document:1", "viewer", "group:eng#member")]);
    assert!(e.check(&req).unwrap());
    assert!(
        !e.check(&CheckRequest::new("document:1", "viewer", "user:anne"))
            .unwrap(),
        "only for that request"
    );
    let lo = e
        .list_objects(&ListObjectsRequest {
            object_type: "document".into(),
            relation: "viewer".into(),
            user: "user:anne".into(),
            contextual_tuples: vec![
                Tuple::new("document:7", "parent", "folder:x"),
                Tuple::new("folder:x", "viewer", "user:anne"),
                Tuple::new("folder:x", "viewer", "user:anne"),
            ],
        })
        .unwrap();
    assert_eq!(lo, vec!["document:7"]);
    // Contextual tuples are validated like writes.
    let bad = CheckRequest::new("document:1", "viewer", "user:anne")
        .with_contextual_tuples(vec![Tuple::new("document:1", "parent", "user:anne")]);
    let err = e.check(&bad).unwrap_err();
    assert!(
        matches!(
            err,
            AuthzError::InvalidTuple {
                error: TupleError::NotAllowed { .. },
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.openfga_code(), 2027);
}

#[test]
fn tuples_violating_type_restrictions_are_rejected() {
    let m = model(DOCS);
    let mut s = MemoryTuples::new();
    for (t, why) in [
        (
            Tuple::new("document:1", "viewer", "folder:x"),
            "folder not allowed",
        ),
        (
            Tuple::new("document:1", "viewer", "group:x"),
            "group needs #member",
        ),
        (
            Tuple::new("document:1", "parent", "folder:x#viewer"),
            "tupleset takes objects",
        ),
        (
            Tuple::new("document:1", "owner", "user:*"),
            "no wildcard on owner",
        ),
        (
            Tuple::new("document:1", "can_view", "user:a"),
            "computed relation",
        ),
        (
            Tuple::new("document:1", "nope", "user:a"),
            "unknown relation",
        ),
        (Tuple::new("widget:1", "viewer", "user:a"), "unknown type"),
        (
            Tuple::new("document:1", "viewer", "group:x#nope"),
            "unknown userset relation",
        ),
        (
            Tuple::new("document", "viewer", "user:a"),
            "object without id",
        ),
        (
            Tuple::new("document:*", "viewer", "user:a"),
            "wildcard object",
        ),
        (
            Tuple::new("document:1", "viewer", "a:b:c"),
            "malformed user",
        ),
        (
            Tuple::new("document:1", "viewer", "user:*#member"),
            "wildcard userset",
        ),
    ] {
        let r = s.write(&m, std::slice::from_ref(&t), &[]);
        assert!(
            matches!(r, Err(AuthzError::InvalidTuple { .. })),
            "{why}: {r:?}"
        );
    }
    assert!(s.is_empty());
    let cond = Tuple {
        condition: Some(TupleCondition {
            name: "c".into(),
            context: None,
        }),
        ..Tuple::new("document:1", "viewer", "user:a")
    };
    assert!(matches!(
        m.validate_tuple(&cond),
        Err(TupleError::ConditionNotFound(c)) if c == "c"
    ));
}

#[test]
fn batch_writes_are_atomic() {
    let m = model(DOCS);
    let mut s = store(&m, &[("document:1", "owner", "user:a")]);
    let w = |o: &str, u: &str| Tuple::new(o, "owner", u);
    // Writing an existing tuple fails the whole batch.
    let r = s.write(
        &m,
        &[w("document:2", "user:b"), w("document:1", "user:a")],
        &[],
    );
    assert!(matches!(r, Err(AuthzError::TupleExists(_))));
    assert_eq!(s.len(), 1);
    // Deleting a missing tuple fails too.
    let r = s.write(
        &m,
        &[w("document:2", "user:b")],
        &[w("document:9", "user:z")],
    );
    assert!(matches!(r, Err(AuthzError::TupleNotFound(_))));
    assert_eq!(s.len(), 1);
    // Same tuple twice in a batch.
    let r = s.write(
        &m,
        &[w("document:2", "user:b")],
        &[w("document:2", "user:b")],
    );
    assert!(matches!(r, Err(AuthzError::DuplicateInBatch(_))));
    // A good batch: delete + write.
    s.write(
        &m,
        &[w("document:2", "user:b")],
        &[w("document:1", "user:a")],
    )
    .unwrap();
    assert_eq!(s.len(), 1);
    assert!(!check(&m, &s, "document:1", "owner", "user:a"));
    assert!(check(&m, &s, "document:2", "owner", "user:b"));
    let read = s.read(&ReadFilter {
        object_type: Some("document".into()),
        relation: Some("owner".into()),
        user: Some("user:b".into()),
        ..Default::default()
    });
    assert_eq!(read, vec![w("document:2", "user:b")]);
    assert_eq!(s.read(&ReadFilter::default()).len(), 1);
}

#[test]
fn stored_tuples_invalid_under_a_new_model_are_ignored() {
    let m1 = model(
        "model\n  schema 1.1\ntype user\ntype employee\ntype doc\n  relations\n    define viewer: [user]\n",
    );
    let s = store(&m1, &[("doc:1", "viewer", "user:a")]);
    let m2 = model(
        "model\n  schema 1.1\ntype user\ntype employee\ntype doc\n  relations\n    define viewer: [employee]\n",
    );
    assert!(check(&m1, &s, "doc:1", "viewer", "user:a"));
    assert!(!check(&m2, &s, "doc:1", "viewer", "user:a"));
}

#[test]
fn request_validation_errors() {
    let m = model(DOCS);
    let s = MemoryTuples::new();
    let e = Engine::new(&m, &s);
    let code = |r: Result<bool, AuthzError>| r.unwrap_err().openfga_code();
    assert_eq!(
        code(e.check(&CheckRequest::new("document:1", "nope", "user:a"))),
        2000
    );
    assert_eq!(
        code(e.check(&CheckRequest::new("widget:1", "viewer", "user:a"))),
        2000
    );
    assert_eq!(
        code(e.check(&CheckRequest::new("document:1", "viewer", "widget:a"))),
        2000
    );
    assert_eq!(
        code(e.check(&CheckRequest::new("document:1", "viewer", "bad"))),
        2000
    );
    let lo = |t: &str, r: &str, u: &str| {
        e.list_objects(&ListObjectsRequest {
            object_type: t.into(),
            relation: r.into(),
            user: u.into(),
            contextual_tuples: vec![],
        })
        .unwrap_err()
        .openfga_code()
    };
    assert_eq!(lo("widget", "viewer", "user:a"), 2021);
    assert_eq!(lo("document", "nope", "user:a"), 2022);
    assert_eq!(lo("document", "viewer", "widget:a"), 2000);
    let lu = |f: &str| {
        e.list_users(&ListUsersRequest {
            object: "document:1".into(),
            relation: "viewer".into(),
            user_filters: vec![UserFilter::parse(f)],
            contextual_tuples: vec![],
        })
        .unwrap_err()
        .openfga_code()
    };
    assert_eq!(lu("widget"), 2021);
    assert_eq!(lu("group#nope"), 2022);
}

#[test]
fn expand_tree() {
    let m = model(DOCS);
    let s = store(
        &m,
        &[
            ("document:1", "viewer", "user:anne"),
            ("document:1", "viewer", "group:eng#member"),
            ("document:1", "parent", "folder:x"),
        ],
    );
    let t = Engine::new(&m, &s).expand("document:1", "viewer").unwrap();
    assert_eq!(t.name, "document:1#viewer");
    let ExpandKind::Union(children) = &t.kind else {
        panic!("union expected: {t:?}")
    };
    assert_eq!(
        children[0].kind,
        ExpandKind::Users(vec!["group:eng#member".into(), "user:anne".into()])
    );
    assert_eq!(
        children[1].kind,
        ExpandKind::Computed("document:1#editor".into())
    );
    assert_eq!(
        children[2].kind,
        ExpandKind::TupleToUserset {
            tupleset: "document:1#parent".into(),
            computed: vec!["folder:x#viewer".into()]
        }
    );
    let j = t.to_json();
    assert_eq!(
        j["union"]["nodes"][2]["leaf"]["tupleToUserset"]["computed"][0]["userset"],
        "folder:x#viewer"
    );
    let t = Engine::new(&m, &s)
        .expand("document:1", "can_view")
        .unwrap();
    assert!(matches!(t.kind, ExpandKind::Difference { .. }));
}

/// Predicate on the expected model error.
type Expect = fn(&ModelError) -> bool;

fn model_err(dsl: &str) -> ModelError {
    match AuthorizationModel::from_dsl(dsl) {
        Ok(_) => panic!("model should be rejected:\n{dsl}"),
        Err(e) => e,
    }
}

#[test]
fn invalid_models_are_rejected() {
    let h = "model\n  schema 1.1\ntype user\n";
    let cases: Vec<(String, Expect)> = vec![
        ("model\n  schema 1.0\ntype user\n".into(), |e| {
            matches!(e, ModelError::SchemaVersion(_))
        }),
        (format!("{h}type user\n"), |e| {
            matches!(e, ModelError::DuplicateType(_))
        }),
        (
            format!("{h}type doc\n  relations\n    define a: [user]\n    define a: [user]\n"),
            |e| matches!(e, ModelError::DuplicateRelation { .. }),
        ),
        (
            format!("{h}type doc\n  relations\n    define a: b\n"),
            |e| matches!(e, ModelError::UndefinedRelation { .. }),
        ),
        (
            format!("{h}type doc\n  relations\n    define a: [widget]\n"),
            |e| matches!(e, ModelError::InvalidTypeRestriction { .. }),
        ),
        (
            format!("{h}type doc\n  relations\n    define a: [user#nope]\n"),
            |e| matches!(e, ModelError::InvalidTypeRestriction { .. }),
        ),
        (
            format!("{h}type doc\n  relations\n    define a: a\n"),
            |e| matches!(e, ModelError::SelfReference { .. }),
        ),
        (
            format!("{h}type doc\n  relations\n    define a: b\n    define b: a\n"),
            |e| matches!(e, ModelError::NoEntrypoint { via_loop: true, .. }),
        ),
        (
            format!("{h}type doc\n  relations\n    define a: [user] or b\n    define b: a\n"),
            |e| matches!(e, ModelError::Cycle { .. }),
        ),
        (
            format!("{h}type doc\n  relations\n    define a: [doc#a]\n"),
            |e| matches!(e, ModelError::NoEntrypoint { .. }),
        ),
        (
            format!(
                "{h}type doc\n  relations\n    define a: [user] and b\n    define b: [doc#b]\n"
            ),
            |e| matches!(e, ModelError::NoEntrypoint { .. }),
        ),
        (
            format!(
                "{h}type folder\n  relations\n    define v: [user]\ntype doc\n  relations\n    define p: [folder] or q\n    define q: [folder]\n    define v: v from p\n"
            ),
            |e| matches!(e, ModelError::TuplesetNotDirect { .. }),
        ),
        (
            format!(
                "{h}type folder\n  relations\n    define v: [user]\ntype doc\n  relations\n    define p: [folder, folder#v]\n    define v: v from p\n"
            ),
            |e| matches!(e, ModelError::TuplesetRestriction { .. }),
        ),
        (
            format!(
                "{h}type folder\n  relations\n    define v: [user]\ntype doc\n  relations\n    define p: [folder]\n    define v: nope from p\n"
            ),
            |e| matches!(e, ModelError::TtuComputedUndefined { .. }),
        ),
        (
            format!("{h}type doc\n  relations\n    define self: [user]\n"),
            |e| matches!(e, ModelError::ReservedKeyword(_)),
        ),
        (
            format!("{h}type doc\n  relations\n    define a: [user with c]\n"),
            |e| matches!(e, ModelError::UndefinedCondition { .. }),
        ),
        (
            format!("{h}type doc\n  relations\n    define a: [user] or b and c\n"),
            |e| matches!(e, ModelError::Syntax { line: 6, .. }),
        ),
        (
            format!("{h}type doc\n  relations\n    define a: [user] but not\n"),
            |e| matches!(e, ModelError::Syntax { .. }),
        ),
        ("type user\n".into(), |e| {
            matches!(e, ModelError::Syntax { .. })
        }),
    ];
    for (dsl, ok) in cases {
        let e = model_err(&dsl);
        assert!(ok(&e), "unexpected error {e:?} for\n{dsl}");
    }
    // JSON form: same rules; non-assignable relation with types.
    let j = serde_json::json!({
        "schema_version": "1.1",
        "type_definitions": [
            {"type": "user"},
            {"type": "doc", "relations": {"a": {"this": {}}, "b": {"computedUserset": {"relation": "a"}}},
             "metadata": {"relations": {"a": {"directly_related_user_types": [{"type": "user"}]},
                                        "b": {"directly_related_user_types": [{"type": "user"}]}}}}
        ]
    });
    assert!(matches!(
        AuthorizationModel::from_json(&j),
        Err(ModelError::UnexpectedTypeRestrictions { .. })
    ));
    let j = serde_json::json!({"schema_version": "1.1", "type_definitions": [{"type": "doc", "relations": {"a": {"this": {}}}}]});
    assert!(matches!(
        AuthorizationModel::from_json(&j),
        Err(ModelError::MissingTypeRestrictions { .. })
    ));
    assert!(matches!(
        AuthorizationModel::from_json(&serde_json::json!([])),
        Err(ModelError::Json(_))
    ));
}

#[test]
fn dsl_comments_conditions_and_round_trip() {
    let src = "# leading comment
model
  schema 1.1  # trailing
type user
type group
  relations
    define member: [user, user with in_office, group#member] # comment after group#member
type doc
  relations
    define viewer: ([user] or member from parent) but not (blocked and blocked2)
    define parent: [group]
    define blocked: [user]
    define blocked2: [user]

condition in_office(ip: ipaddress, cidrs: list<string>, m: map<int>) {
  ip.in_cidr(\"10.0.0.0/8\") &&
    true
}
";
    let m = model(src);
    let j = m.to_json();
    assert_eq!(
        j["conditions"]["in_office"]["parameters"]["ip"]["type_name"],
        "TYPE_NAME_IPADDRESS"
    );
    assert_eq!(
        j["conditions"]["in_office"]["parameters"]["cidrs"]["generic_types"][0]["type_name"],
        "TYPE_NAME_STRING"
    );
    assert_eq!(
        j["type_definitions"][1]["metadata"]["relations"]["member"]["directly_related_user_types"]
            [1]["condition"],
        "in_office"
    );
    assert_eq!(AuthorizationModel::from_json(&j).unwrap(), m);
    assert_eq!(AuthorizationModel::from_dsl(&m.to_dsl()).unwrap(), m);
    // Conditional tuples are stored but not evaluated: a check depending on one is an error.
    let mut s = MemoryTuples::new();
    let t = Tuple {
        condition: Some(TupleCondition {
            name: "in_office".into(),
            context: None,
        }),
        ..Tuple::new("group:a", "member", "user:anne")
    };
    s.write(&m, std::slice::from_ref(&t), &[]).unwrap();
    let e = Engine::new(&m, &s);
    assert!(matches!(
        e.check(&CheckRequest::new("group:a", "member", "user:anne")),
        Err(AuthzError::ConditionUnsupported(_))
    ));
    assert!(
        !e.check(&CheckRequest::new("group:a", "member", "user:bob"))
            .unwrap()
    );
    let read = s.read(&ReadFilter {
        object_type: Some("group".into()),
        object_id: Some("a".into()),
        relation: Some("member".into()),
        user: None,
    });
    assert_eq!(read, vec![t]);
}

const FOLDERS: &str = "model
  schema 1.1
type user
type folder
  relations
    define parent: [folder]
    define viewer: [user] or viewer from parent
";

/// n folders, each the parent of every other (issue 12, item 1).
fn dense_cycle(n: usize) -> Vec<Tuple> {
    let mut ts = Vec::new();
    for i in 0..n {
        for j in 0..n {
            if i != j {
                ts.push(Tuple::new(
                    format!("folder:{i}"),
                    "parent",
                    format!("folder:{j}"),
                ));
            }
        }
    }
    ts
}

#[test]
fn dense_cycles_are_memoised_not_exponential() {
    // Before results cut by a cycle were memoised, 11 folders took seconds and each further
    // folder ×10; memoised (while valid), 13 folders take a few thousand steps, and the budget
    // bounds the rest.
    let m = model(FOLDERS);
    let mut s = MemoryTuples::new();
    s.write(&m, &dense_cycle(13), &[]).unwrap();
    let e = Engine::new(&m, &s);
    assert!(
        !e.check(&CheckRequest::new("folder:0", "viewer", "user:anne"))
            .unwrap()
    );
    // Larger: answered, or refused by the budget; never a hang.
    let mut s = MemoryTuples::new();
    s.write(&m, &dense_cycle(20), &[]).unwrap();
    match Engine::new(&m, &s).check(&CheckRequest::new("folder:0", "viewer", "user:anne")) {
        Ok(allowed) => assert!(!allowed),
        Err(e) => assert_eq!(
            e,
            AuthzError::BudgetExceeded(mandate_authz::DEFAULT_MAX_WORK)
        ),
    }
    let mut s = MemoryTuples::new();
    s.write(&m, &dense_cycle(13), &[]).unwrap();
    s.write(&m, &[Tuple::new("folder:12", "viewer", "user:anne")], &[])
        .unwrap();
    let e = Engine::new(&m, &s);
    for i in 0..13 {
        assert!(
            e.check(&CheckRequest::new(
                format!("folder:{i}"),
                "viewer",
                "user:anne"
            ))
            .unwrap()
        );
    }
    assert!(
        !e.check(&CheckRequest::new("folder:3", "viewer", "user:bob"))
            .unwrap()
    );
    assert_eq!(
        objects(&m, &s, "folder", "viewer", "user:anne").len(),
        13,
        "ListObjects over the cycle"
    );
    assert_eq!(
        users(&m, &s, "folder:0", "viewer", "user"),
        vec!["user:anne".to_string()]
    );
    // The same graph as contextual tuples (90 of them, under the cap of 100).
    let none = MemoryTuples::new();
    let e = Engine::new(&m, &none);
    let req = CheckRequest::new("folder:0", "viewer", "user:anne")
        .with_contextual_tuples(dense_cycle(10));
    assert!(!e.check(&req).unwrap());
}

#[test]
fn work_budget_ends_the_request_with_an_error() {
    let m = model(FOLDERS);
    let mut s = MemoryTuples::new();
    s.write(&m, &dense_cycle(12), &[]).unwrap();
    s.write(&m, &[Tuple::new("folder:11", "viewer", "user:anne")], &[])
        .unwrap();
    let tight = ResolutionLimits {
        max_work: 50,
        ..Default::default()
    };
    let e = Engine::new(&m, &s).with_limits(tight);
    let err = e
        .check(&CheckRequest::new("folder:0", "viewer", "user:anne"))
        .unwrap_err();
    assert_eq!(err, AuthzError::BudgetExceeded(50));
    assert_eq!(err.openfga_code(), 2002);
    assert!(err.is_fatal() && err.is_resource_limit());
    assert_eq!(
        e.list_objects(&ListObjectsRequest {
            object_type: "folder".into(),
            relation: "viewer".into(),
            user: "user:anne".into(),
            contextual_tuples: vec![],
        })
        .unwrap_err(),
        AuthzError::BudgetExceeded(50)
    );
    assert_eq!(
        e.list_users(&ListUsersRequest {
            object: "folder:0".into(),
            relation: "viewer".into(),
            user_filters: vec![UserFilter::parse("user")],
            contextual_tuples: vec![],
        })
        .unwrap_err(),
        AuthzError::BudgetExceeded(50)
    );
    // Deeper than the resolve depth (40 folders): an error either way, never a hang.
    let mut s = MemoryTuples::new();
    s.write(&m, &dense_cycle(40), &[]).unwrap();
    let err = Engine::new(&m, &s)
        .check(&CheckRequest::new("folder:0", "viewer", "user:anne"))
        .unwrap_err();
    assert!(err.is_resource_limit(), "{err:?}");
}

#[test]
fn contextual_tuples_are_capped() {
    let m = model(FOLDERS);
    let s = MemoryTuples::new();
    let e = Engine::new(&m, &s);
    let ts: Vec<Tuple> = (0..=mandate_authz::MAX_CONTEXTUAL_TUPLES)
        .map(|i| Tuple::new(format!("folder:{i}"), "viewer", "user:anne"))
        .collect();
    let err = e
        .check(
            &CheckRequest::new("folder:0", "viewer", "user:anne")
                .with_contextual_tuples(ts.clone()),
        )
        .unwrap_err();
    assert_eq!(
        err,
        AuthzError::TooManyContextualTuples { max: 100, got: 101 }
    );
    assert!(
        e.check(
            &CheckRequest::new("folder:0", "viewer", "user:anne")
                .with_contextual_tuples(ts[..100].to_vec())
        )
        .unwrap()
    );
}

#[test]
fn cycle_results_inside_exclusions_stay_path_dependent() {
    // A cut under an exclusion's subtrahend is not memoised: whatever order questions come in
    // (ListObjects shares one memo across its candidates), each answer is the one a fresh
    // check gives.
    let m = model(
        "model
  schema 1.1
type user
type doc
  relations
    define blocked: [user] or blocked from parent
    define parent: [doc]
    define viewer: ([user] or viewer from parent) but not blocked
",
    );
    let mut ts = vec![
        ("doc:0", "viewer", "user:a"),
        ("doc:3", "blocked", "user:a"),
    ];
    let names: Vec<String> = (0..6).map(|i| format!("doc:{i}")).collect();
    for i in 0..6 {
        ts.push((names[i].as_str(), "parent", names[(i + 1) % 6].as_str()));
        ts.push((names[i].as_str(), "parent", names[(i + 2) % 6].as_str()));
    }
    let s = store(&m, &ts);
    for rel in ["viewer", "blocked"] {
        let fresh: Vec<String> = names
            .iter()
            .filter(|d| check(&m, &s, d, rel, "user:a"))
            .cloned()
            .collect();
        assert_eq!(objects(&m, &s, "doc", rel, "user:a"), fresh, "{rel}");
    }
}
