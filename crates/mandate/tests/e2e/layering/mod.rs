//! The layering rule, read from the code: no module of a crate may import, directly or through
//! others, a module that imports it back (no cycles), and mandate-core's folders import only
//! lower layers ([`CORE_LAYERS`]) and storage ports. Edges are the `crate::` and `super::`
//! paths a module names outside its `#[cfg(test)]` part, as `../shared/tools/modcycles.py`
//! reads them; a parent naming its own children is not an edge.
//!
//! No crate has a cycle; [`KNOWN`] and [`KNOWN_LAYER_BREAKS`] are empty and must stay so (an
//! exception listed there may only shrink).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Cycles tolerated (crate, modules); each found cycle must lie within one of these. None: the
/// server's last one (login pages ↔ `oauth::authorize`) went with the login interaction
/// pipeline (`interaction/`: the pipeline decides, pages render).
const KNOWN: &[(&str, &[&str])] = &[];

/// mandate-core's top-level modules by layer, lowest first. A module may name modules of its own
/// top-level folder, of a lower layer, and storage ports from anywhere: a port (a module named
/// `store`, or `model` for a flow's stored data) sits just above the root `store` layer
/// whatever its folder, so it may itself name only what lies below that, and other ports.
/// A new top-level module must be placed here.
const CORE_LAYERS: &[&[&str]] = &[
    &["geo"],
    &["error", "time", "untrusted", "settings", "outbound"],
    &["crypto"],
    &["domain"],
    &["audit"],
    &["mail"],
    &["store"],
    &["provider"],
    &["risk"],
    &["registry", "login"],
    &["agents"],
    &["oauth"],
    &["oidc", "access"],
    &["account"],
    &["ciba"],
    &["ssf"],
    // The unit tests' in-memory store (`#[cfg(test)]`): above everything, imported by none.
    &["testing"],
];

/// Imports against [`CORE_LAYERS`] that exist today (`from -> to`); the list may only shrink.
const KNOWN_LAYER_BREAKS: &[&str] = &[];

/// A storage port: a module named `store`, or a flow's stored data (`ciba::model`,
/// `ssf::model`). `domain::model` is plain data of its own layer, not a port: it is held to
/// the domain layer's imports.
fn is_port(module: &str) -> bool {
    match module.rsplit("::").next() {
        Some("store") => true,
        Some("model") => !module.starts_with("domain::"),
        _ => false,
    }
}

/// The imports of mandate-core that break [`CORE_LAYERS`], as `from -> to`.
fn layer_violations(mods: &BTreeMap<String, String>) -> Vec<String> {
    let rank = |top: &str| CORE_LAYERS.iter().position(|layer| layer.contains(&top));
    let top = |m: &str| m.split("::").next().unwrap_or_default().to_string();
    let store_rank = rank("store").expect("the store layer");
    let mut out = Vec::new();
    for (me, text) in mods {
        if me.is_empty() {
            continue;
        }
        let Some(own) = rank(&top(me)) else {
            out.push(format!("{me}: top-level module `{}` has no layer", top(me)));
            continue;
        };
        let mine = if is_port(me) { store_rank + 1 } else { own };
        for t in targets(me, text, mods) {
            let Some(theirs) = rank(&top(&t)) else {
                continue;
            };
            let ok = (top(&t) == top(me) && !is_port(me)) || is_port(&t) || theirs < mine;
            if !ok {
                out.push(format!("{me} -> {t}"));
            }
        }
    }
    out
}

/// Module path (`a::b`) → source text, for every file under `src`.
fn modules(src: &Path) -> BTreeMap<String, String> {
    fn walk(dir: &Path, src: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, src, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(src).unwrap().with_extension("");
                let mut parts: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                if matches!(
                    parts.last().map(String::as_str),
                    Some("lib" | "main" | "mod")
                ) {
                    parts.pop();
                }
                let text = std::fs::read_to_string(&path).unwrap();
                out.insert(parts.join("::"), code_part(&text).to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(src, src, &mut out);
    out
}

/// A file's text before its first `#[cfg(test)]` (tests may import anything).
fn code_part(text: &str) -> &str {
    text.find("#[cfg(test)]").map_or(text, |cut| &text[..cut])
}

fn ident_end(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && (s[i].is_ascii_alphanumeric() || s[i] == b'_') {
        i += 1;
    }
    i
}

/// The paths named from `i` on (just after `crate::` or `super::`), expanding `{a, b::c}`.
fn use_tree(s: &[u8], mut i: usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    let mut path = prefix;
    loop {
        if s.get(i) == Some(&b'{') {
            i += 1;
            loop {
                while i < s.len() && s[i].is_ascii_whitespace() {
                    i += 1;
                }
                if i >= s.len() || s[i] == b'}' {
                    return i + 1;
                }
                i = use_tree(s, i, path.clone(), out);
                while i < s.len() && (s[i].is_ascii_whitespace() || s[i] == b',') {
                    i += 1;
                }
            }
        }
        let end = ident_end(s, i);
        if end == i {
            out.push(path);
            return i;
        }
        let word = std::str::from_utf8(&s[i..end]).unwrap();
        if word != "self" {
            path.push(word.to_string());
        }
        i = end;
        if s[i..].starts_with(b"::") {
            i += 2;
        } else {
            out.push(path);
            return i;
        }
    }
}

/// The modules `me` names.
fn targets(me: &str, text: &str, mods: &BTreeMap<String, String>) -> BTreeSet<String> {
    let s = text.as_bytes();
    let mut paths = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let boundary = i == 0 || !(s[i - 1].is_ascii_alphanumeric() || s[i - 1] == b'_');
        let base = if boundary && s[i..].starts_with(b"crate::") {
            Some((Vec::new(), 7))
        } else if boundary && s[i..].starts_with(b"super::") {
            let mut parent: Vec<String> = me.split("::").map(str::to_string).collect();
            parent.pop();
            Some((parent, 7))
        } else {
            None
        };
        match base {
            Some((prefix, skip)) => i = use_tree(s, i + skip, prefix, &mut paths),
            None => i += 1,
        }
    }
    paths
        .into_iter()
        .filter_map(|parts| {
            (1..=parts.len())
                .rev()
                .map(|k| parts[..k].join("::"))
                .find(|cand| mods.contains_key(cand))
        })
        .filter(|t| !t.is_empty() && t != me && !me.is_empty())
        .filter(|t| !t.starts_with(&format!("{me}::")))
        .collect()
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    struct T<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<BTreeSet<String>>,
    }
    fn strong<'a>(t: &mut T<'a>, v: &'a str) {
        let n = t.index.len();
        t.index.insert(v, n);
        t.low.insert(v, n);
        t.stack.push(v);
        t.on.insert(v);
        for w in t.g.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !t.index.contains_key(w) {
                strong(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = BTreeSet::new();
            loop {
                let w = t.stack.pop().unwrap();
                t.on.remove(w);
                comp.insert(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        g: graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            strong(&mut t, v);
        }
    }
    t.out
}

/// Every crate's module cycles.
fn workspace_cycles() -> Vec<(String, BTreeSet<String>)> {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut found = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(&crates)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("src").is_dir())
        .collect();
    names.sort();
    for dir in names {
        let mods = modules(&dir.join("src"));
        let graph: BTreeMap<String, BTreeSet<String>> = mods
            .iter()
            .map(|(me, text)| (me.clone(), targets(me, text, &mods)))
            .collect();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        found.extend(cycles(&graph).into_iter().map(|c| (name.clone(), c)));
    }
    found
}

#[test]
fn no_new_module_cycles() {
    let found = workspace_cycles();
    for (krate, comp) in &found {
        let within_known = KNOWN
            .iter()
            .any(|(k, mods)| k == krate && comp.iter().all(|m| mods.contains(&m.as_str())));
        assert!(
            within_known,
            "{krate} has a module cycle that was not there before: {comp:?}. \
             Break it (import one way only; see docs/architecture.md)."
        );
    }
}

#[test]
fn core_imports_only_lower_layers_and_ports() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../mandate-core/src");
    let found: Vec<String> = layer_violations(&modules(&src))
        .into_iter()
        .filter(|v| !KNOWN_LAYER_BREAKS.contains(&v.as_str()))
        .collect();
    assert!(
        found.is_empty(),
        "mandate-core imports from a higher layer (see CORE_LAYERS and docs/architecture.md):\n{}",
        found.join("\n")
    );
}

/// The layer rule itself: a lower layer naming a higher one fails, a port may be named from
/// below, and a port naming its own flow fails.
#[test]
fn the_layer_rule_reads_right() {
    let mods: BTreeMap<String, String> = [
        ("", "mod crypto; mod oauth; mod ciba; mod store;"),
        ("crypto", "use crate::oauth::x;"),
        ("oauth", "use crate::{crypto, ciba::model::Stored};"),
        ("ciba", "use crate::oauth;"),
        ("ciba::model", "use crate::ciba::flow;"),
        ("ciba::flow", ""),
        ("store", "use crate::ciba::model;"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(
        layer_violations(&mods),
        vec![
            "ciba::model -> ciba::flow".to_string(),
            "crypto -> oauth".to_string()
        ]
    );
}

/// The reader itself: it finds a cycle through grouped and nested imports, and ignores a
/// parent naming its children and everything after `#[cfg(test)]`.
#[test]
fn the_reader_finds_cycles() {
    let mods: BTreeMap<String, String> = [
        ("", "mod a; mod b;"),
        ("a", "use crate::{b::{self, x}, c};"),
        ("a::inner", "use super::super::c;"),
        ("b", "fn f() { crate::a::g() }"),
        ("c", "#[cfg(test)] use crate::a;"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let graph: BTreeMap<String, BTreeSet<String>> = mods
        .iter()
        .map(|(me, text)| (me.clone(), targets(me, code_part(text), &mods)))
        .collect();
    assert_eq!(graph["a"], BTreeSet::from(["b".into(), "c".into()]));
    assert!(graph["c"].is_empty());
    let found = cycles(&graph);
    assert_eq!(found, vec![BTreeSet::from(["a".into(), "b".into()])]);
}

/// docs/security.md shows each condition with the test that holds it: every end-to-end test it
/// names (`file.rs::name`, `file.rs::*::name`, `name_*`, `name_{sqlite,postgres}`) exists, so a
/// renamed or split test cannot leave a condition pointing at nothing.
#[test]
fn the_security_checklist_names_real_tests() {
    let e2e = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e");
    let doc = std::fs::read_to_string(e2e.join("../../../../docs/security.md")).unwrap();
    let mut checked = 0;
    let mut missing = Vec::new();
    for span in doc.split('`').skip(1).step_by(2) {
        let Some((file, rest)) = span.split_once(".rs::") else {
            continue;
        };
        let path = e2e.join(format!("{file}.rs"));
        let Ok(text) = std::fs::read_to_string(&path) else {
            missing.push(format!("{span}: no file {}", path.display()));
            continue;
        };
        let name = rest.rsplit("::").next().unwrap_or_default();
        if name == "*" {
            continue;
        }
        // `a_{x,y}` names `a_x` and `a_y`; `a_*` any test starting `a_`.
        let names: Vec<String> = match name.split_once('{') {
            Some((head, tail)) => tail
                .trim_end_matches('}')
                .split(',')
                .map(|alt| format!("{head}{alt}"))
                .collect(),
            None => vec![name.to_string()],
        };
        for n in names {
            checked += 1;
            let found = match n.strip_suffix('*') {
                Some(prefix) => text.contains(&format!("fn {prefix}")),
                None => {
                    text.contains(&format!("fn {n}("))
                        || text.contains(&format!("fn {n}<"))
                        || text.contains(&format!(" {n},"))
                        || text.contains(&format!("({n})"))
                }
            };
            if !found {
                missing.push(format!("{span}: no test {n} in {file}.rs"));
            }
        }
    }
    assert!(checked > 30, "the references were read ({checked})");
    assert!(
        missing.is_empty(),
        "docs/security.md names tests that do not exist:\n{}",
        missing.join("\n")
    );
}

/// docs/architecture.md's map of where each specification lives names only paths that exist.
#[test]
fn the_architecture_map_names_real_paths() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let doc = std::fs::read_to_string(root.join("docs/architecture.md")).unwrap();
    let named: Vec<&str> = doc
        .match_indices("`crates/")
        .filter_map(|(i, _)| doc[i + 1..].split('`').next())
        .collect();
    assert!(named.len() > 20, "the map names its paths: {named:?}");
    let missing: Vec<&&str> = named.iter().filter(|p| !root.join(p).exists()).collect();
    assert!(
        missing.is_empty(),
        "docs/architecture.md names paths that do not exist: {missing:?}"
    );
}
