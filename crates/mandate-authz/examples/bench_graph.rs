//! Benchmark on a generated graph of about a million tuples: organisations, nested groups,
//! folders five levels deep, documents. Deterministic (fixed seed). Run in release:
//!
//! ```text
//! cargo run -p mandate-authz --release --example bench_graph [-- --checks 200000]
//! ```
//!
//! Prints load time, Check p50/p99/max and single-thread checks/s (a mix of allowed and denied
//! checks), ListObjects time for a user with ~10,000 accessible documents, and process RSS.

use std::time::{Duration, Instant};

use mandate_authz::{
    AuthorizationModel, CheckRequest, Engine, ListObjectsRequest, MemoryTuples, Tuple,
};

const MODEL: &str = "model
  schema 1.1
type user
type org
  relations
    define member: [user]
    define admin: [user]
type group
  relations
    define member: [user, group#member]
type folder
  relations
    define org: [org]
    define parent: [folder]
    define owner: [user]
    define editor: [user, group#member] or owner or editor from parent or admin from org
    define viewer: [user, group#member] or editor or viewer from parent or member from org
type document
  relations
    define parent: [folder]
    define owner: [user]
    define blocked: [user]
    define editor: [user, group#member] or owner or editor from parent
    define viewer: [user, user:*, group#member] or editor or viewer from parent
    define can_view: viewer but not blocked
";

/// splitmix64: tiny deterministic generator (no dependency).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const ORGS: usize = 100;
const USERS_PER_ORG: usize = 1_000;
const GROUPS_PER_ORG: usize = 100;
const GROUP_SIZE: usize = 10;
const FANOUT: usize = 3;
const LEVELS: usize = 5; // 1 + 3 + 9 + 27 + 81 = 121 folders per org
const BIG_ORG_DOCS: usize = 10_000;
const OTHER_ORG_DOCS: usize = 2_400;

struct Graph {
    tuples: Vec<Tuple>,
    /// Leaf folders per org (documents live there).
    docs: Vec<Vec<usize>>,
}

fn user(org: usize, i: usize) -> String {
    format!("user:u{}", org * USERS_PER_ORG + i)
}

fn generate(rng: &mut Rng) -> Graph {
    let mut t = Vec::new();
    let mut docs = Vec::new();
    let mut doc_id = 0usize;
    for org in 0..ORGS {
        let o = format!("org:o{org}");
        for i in 0..USERS_PER_ORG {
            t.push(Tuple::new(&o, "member", user(org, i)));
        }
        t.push(Tuple::new(&o, "admin", user(org, 0)));
        // Groups: a tree (group i is inside group (i-1)/4), each with a few users.
        for g in 0..GROUPS_PER_ORG {
            let gid = format!("group:g{org}_{g}");
            let mut members = std::collections::BTreeSet::new();
            while members.len() < GROUP_SIZE {
                members.insert(rng.below(USERS_PER_ORG));
            }
            for m in members {
                t.push(Tuple::new(&gid, "member", user(org, m)));
            }
            if g > 0 {
                t.push(Tuple::new(
                    format!("group:g{org}_{}", (g - 1) / 4),
                    "member",
                    format!("{gid}#member"),
                ));
            }
        }
        // Folders: a tree five levels deep; the root belongs to the org.
        let mut level = vec![0usize];
        let mut next_id = 1usize;
        let mut leaves = Vec::new();
        t.push(Tuple::new(format!("folder:f{org}_0"), "org", &o));
        for depth in 1..LEVELS {
            let mut next_level = Vec::new();
            for &parent in &level {
                for _ in 0..FANOUT {
                    let id = next_id;
                    next_id += 1;
                    let f = format!("folder:f{org}_{id}");
                    t.push(Tuple::new(&f, "parent", format!("folder:f{org}_{parent}")));
                    t.push(Tuple::new(
                        &f,
                        "viewer",
                        format!("group:g{org}_{}#member", rng.below(GROUPS_PER_ORG)),
                    ));
                    t.push(Tuple::new(
                        &f,
                        "editor",
                        user(org, rng.below(USERS_PER_ORG)),
                    ));
                    next_level.push(id);
                    if depth == LEVELS - 1 {
                        leaves.push(id);
                    }
                }
            }
            level = next_level;
        }
        // Documents in leaf folders.
        let n = if org == 0 {
            BIG_ORG_DOCS
        } else {
            OTHER_ORG_DOCS
        };
        let mut org_docs = Vec::with_capacity(n);
        for _ in 0..n {
            let d = format!("document:d{doc_id}");
            let leaf = leaves[rng.below(leaves.len())];
            t.push(Tuple::new(&d, "parent", format!("folder:f{org}_{leaf}")));
            t.push(Tuple::new(&d, "owner", user(org, rng.below(USERS_PER_ORG))));
            match rng.below(10) {
                0 => t.push(Tuple::new(
                    &d,
                    "viewer",
                    format!("group:g{org}_{}#member", rng.below(GROUPS_PER_ORG)),
                )),
                1 => t.push(Tuple::new(
                    &d,
                    "blocked",
                    user(org, rng.below(USERS_PER_ORG)),
                )),
                _ => t.push(Tuple::new(
                    &d,
                    "viewer",
                    user(rng.below(ORGS), rng.below(USERS_PER_ORG)),
                )),
            }
            org_docs.push(doc_id);
            doc_id += 1;
        }
        docs.push(org_docs);
    }
    Graph { tuples: t, docs }
}

fn rss_kib() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let get = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (get("VmRSS:"), get("VmHWM:"))
}

/// CPU time of this thread (user + system, from `/proc/thread-self/stat`, in clock ticks of
/// 10 ms): checks per CPU-second stay comparable when other processes share the core.
fn thread_cpu() -> Duration {
    let s = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    Duration::from_millis(f.iter().sum::<u64>() * 10)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut checks = 200_000usize;
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--checks") {
        checks = args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(checks);
    }
    let model = AuthorizationModel::from_dsl(MODEL)?;
    let mut rng = Rng(0x5EED_1234);
    let g = generate(&mut rng);
    let n = g.tuples.len();
    let start = Instant::now();
    let mut store = MemoryTuples::new();
    for chunk in g.tuples.chunks(50_000) {
        store.write(&model, chunk, &[])?;
    }
    let load = start.elapsed();
    drop(g.tuples);
    let (rss, _) = rss_kib();
    println!(
        "tuples: {n} (stored {}), load+validate: {:.2?}, RSS after load: {} MiB",
        store.len(),
        load,
        rss / 1024
    );

    let engine = Engine::new(&model, &store);
    for relation in ["viewer", "can_view"] {
        // Half the checks pick a user of the document's org (often allowed), half any user.
        let mut lat = Vec::with_capacity(checks);
        let mut allowed = 0usize;
        let mut reqs = Vec::with_capacity(checks);
        for i in 0..checks {
            let org = rng.below(ORGS);
            let d = g.docs[org][rng.below(g.docs[org].len())];
            let u = if i % 2 == 0 {
                user(org, rng.below(USERS_PER_ORG))
            } else {
                user(rng.below(ORGS), rng.below(USERS_PER_ORG))
            };
            reqs.push(CheckRequest::new(format!("document:d{d}"), relation, u));
        }
        let total = Instant::now();
        let cpu = thread_cpu();
        for r in &reqs {
            let t0 = Instant::now();
            let ok = engine.check(r)?;
            lat.push(t0.elapsed());
            allowed += ok as usize;
        }
        let total = total.elapsed();
        let cpu = thread_cpu().saturating_sub(cpu);
        lat.sort();
        println!(
            "check {relation}: {checks} checks ({allowed} allowed), p50 {:.1?}, p99 {:.1?}, p99.9 {:.1?}, max {:.1?}, {:.0} checks/s single-thread, {:.0} per CPU-second",
            pct(&lat, 0.50),
            pct(&lat, 0.99),
            pct(&lat, 0.999),
            lat[lat.len() - 1],
            checks as f64 / total.as_secs_f64(),
            checks as f64 / cpu.as_secs_f64().max(0.01)
        );
    }

    // ListObjects for a member of the big org: every document of the org via `member from org`.
    let req = ListObjectsRequest {
        object_type: "document".into(),
        relation: "viewer".into(),
        user: user(0, 7),
        contextual_tuples: vec![],
    };
    let mut times = Vec::new();
    let mut count = 0;
    for _ in 0..5 {
        let t0 = Instant::now();
        count = engine.list_objects(&req)?.len();
        times.push(t0.elapsed());
    }
    times.sort();
    println!(
        "list_objects document#viewer for {}: {count} objects, median {:.2?} (min {:.2?}, max {:.2?})",
        req.user, times[2], times[0], times[4]
    );
    let req = ListObjectsRequest {
        relation: "can_view".into(),
        ..req
    };
    let t0 = Instant::now();
    let c = engine.list_objects(&req)?.len();
    println!(
        "list_objects document#can_view for {}: {c} objects in {:.2?}",
        req.user,
        t0.elapsed()
    );
    let (rss, hwm) = rss_kib();
    println!("RSS: {} MiB (peak {} MiB)", rss / 1024, hwm / 1024);
    Ok(())
}
