//! `mandate audit verify|checkpoint|query|export`.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use mandate_core::audit::chain::{self, Checkpoint, GENESIS};
use mandate_core::audit::{EventKind, MAX_QUERY_LIMIT, Principal};
use mandate_core::store::{AuditQuery, AuditRecord, Store};
use mandate_core::time::{format_instant, parse_instant};
use serde_json::json;

use super::print;

#[derive(Debug, clap::Subcommand)]
pub enum AuditCmd {
    /// Walk a tenant's hash chain and report the first bad record (exit status 1).
    Verify {
        #[arg(long)]
        tenant: String,
        /// A head printed earlier by `mandate audit checkpoint` (SEQ:HASH): the chain must still
        /// hold that record with that hash (detects a truncated or rewritten log).
        #[arg(long)]
        checkpoint: Option<String>,
    },
    /// Print the head of a tenant's chain (SEQ:HASH), to keep elsewhere as a witness.
    Checkpoint {
        #[arg(long)]
        tenant: String,
    },
    /// Records matching every filter given, newest first.
    Query {
        #[command(flatten)]
        filter: Filter,
        /// At most this many records (1-1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Every record matching the filters, oldest first, as JSON Lines.
    Export {
        #[command(flatten)]
        filter: Filter,
        /// Write to this file instead of standard output.
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
}

/// Filters shared by `query` and `export`.
#[derive(Debug, clap::Args)]
pub struct Filter {
    #[arg(long)]
    tenant: String,
    /// Who performed it (a user, client, agent or admin id).
    #[arg(long)]
    actor: Option<String>,
    /// On whose behalf (a user id).
    #[arg(long)]
    subject: Option<String>,
    /// An agent anywhere in the act chain.
    #[arg(long)]
    agent: Option<String>,
    #[arg(long)]
    mandate: Option<String>,
    /// An event kind (repeatable), e.g. token_issued.
    #[arg(long = "event", value_parser = parse_kind)]
    events: Vec<EventKind>,
    /// From this time on (Unix seconds or RFC 3339).
    #[arg(long, value_parser = parse_time)]
    since: Option<i64>,
    /// Before this time (Unix seconds or RFC 3339).
    #[arg(long, value_parser = parse_time)]
    until: Option<i64>,
}

fn parse_kind(s: &str) -> Result<EventKind, String> {
    EventKind::parse(s).ok_or_else(|| {
        let names: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        format!("unknown event kind; one of: {}", names.join(", "))
    })
}

fn parse_time(s: &str) -> Result<i64, String> {
    parse_instant(s).ok_or_else(|| "expected Unix seconds or an RFC 3339 time".into())
}

impl Filter {
    fn query(&self, limit: u32, ascending: bool) -> AuditQuery {
        AuditQuery {
            actor: self.actor.clone(),
            subject: self.subject.clone(),
            agent: self.agent.clone(),
            mandate: self.mandate.clone(),
            kinds: self.events.clone(),
            since: self.since,
            until: self.until,
            cursor: None,
            ascending,
            limit,
        }
    }
}

fn principal(p: &Principal) -> String {
    match p.parts() {
        (kind, Some(id)) => format!("{kind}:{id}"),
        (kind, None) => kind.to_string(),
    }
}

/// One line per record for people.
fn text_line(r: &AuditRecord) -> String {
    let e = &r.event;
    let mut line = format!(
        "{} {} {} {} actor={}",
        r.seq,
        format_instant(e.time),
        e.kind.as_str(),
        e.outcome.as_str(),
        principal(&e.actor)
    );
    if let Some(s) = &e.subject {
        line.push_str(&format!(" subject={}", principal(s)));
    }
    if !e.act_chain.is_empty() {
        let chain: Vec<String> = e.act_chain.iter().map(principal).collect();
        line.push_str(&format!(" chain={}", chain.join(">")));
    }
    for (k, v) in [
        ("client", &e.client_id),
        ("mandate", &e.mandate_id),
        ("reason", &e.reason),
        ("ip", &e.personal.ip),
    ] {
        if let Some(v) = v {
            line.push_str(&format!(" {k}={v:?}"));
        }
    }
    line
}

async fn tenant_id(store: &Arc<dyn Store>, name: &str) -> Result<String> {
    Ok(store
        .tenant_by_name(name)
        .await?
        .with_context(|| format!("tenant {name} not found"))?
        .id)
}

pub async fn run(cmd: AuditCmd, store: &Arc<dyn Store>, json_out: bool) -> Result<()> {
    match cmd {
        AuditCmd::Verify { tenant, checkpoint } => {
            let checkpoint = checkpoint
                .map(|c| c.parse::<Checkpoint>())
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let id = tenant_id(store, &tenant).await?;
            let outcome = chain::verify_stored(store.as_ref(), &id, checkpoint, chain::VERIFY_PAGE)
                .await
                .context("cannot read the audit log")?;
            match outcome {
                Ok(report) => print(
                    json_out,
                    json!({
                        "ok": true,
                        "tenant": tenant,
                        "records": report.records,
                        "head": {"seq": report.head.seq, "hash": chain::hex(&report.head.hash)},
                    }),
                    || {
                        format!(
                            "ok: {} records, head {} {}",
                            report.records,
                            report.head.seq,
                            chain::hex(&report.head.hash)
                        )
                    },
                ),
                Err(broken) => {
                    if json_out {
                        println!(
                            "{}",
                            json!({
                                "ok": false,
                                "tenant": tenant,
                                "seq": broken.seq,
                                "reason": broken.reason,
                            })
                        );
                    }
                    bail!("{broken}");
                }
            }
        }
        AuditCmd::Query { filter, limit } => {
            if !(1..=MAX_QUERY_LIMIT).contains(&limit) {
                bail!("--limit must be 1-{MAX_QUERY_LIMIT}");
            }
            let id = tenant_id(store, &filter.tenant).await?;
            let records = store.audit_query(&id, &filter.query(limit, false)).await?;
            if json_out {
                let all: Vec<_> = records.iter().map(AuditRecord::to_json).collect();
                println!("{}", serde_json::Value::Array(all));
            } else {
                for r in &records {
                    println!("{}", text_line(r));
                }
            }
        }
        AuditCmd::Export { filter, output } => {
            let id = tenant_id(store, &filter.tenant).await?;
            let mut out: Box<dyn Write> = match &output {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path)
                        .with_context(|| format!("cannot create {}", path.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let mut q = filter.query(MAX_QUERY_LIMIT, true);
            let mut n = 0u64;
            loop {
                let page = store.audit_query(&id, &q).await?;
                for r in &page {
                    writeln!(out, "{}", r.to_json())?;
                }
                n += page.len() as u64;
                match page.last() {
                    Some(r) if page.len() as u32 == q.limit => q.cursor = Some(r.seq),
                    _ => break,
                }
            }
            out.flush()?;
            if output.is_some() {
                eprintln!("exported {n} records");
            }
        }
        AuditCmd::Checkpoint { tenant } => {
            let id = tenant_id(store, &tenant).await?;
            let head = store.audit_head(&id).await?.unwrap_or(Checkpoint {
                seq: 0,
                hash: GENESIS.to_vec(),
            });
            print(
                json_out,
                json!({
                    "tenant": tenant,
                    "seq": head.seq,
                    "hash": chain::hex(&head.hash),
                    "checkpoint": head.to_string(),
                }),
                || head.to_string(),
            );
        }
    }
    Ok(())
}
