//! The README's and docs' shell commands, run as written.
//!
//! Every ```` ```sh ```` block of a page runs, in order, in one bash session (`set -eo pipefail`)
//! in a fresh working directory, so a variable set by one block is there for the next, as for a
//! reader at a terminal. What the runner provides, and nothing else:
//! - `./target/release/mandate`, `mandate` on `PATH` and `cargo build|run --release` all run the
//!   binary under test; `mandate … serve` starts it in the background and waits until it answers;
//! - `127.0.0.1:8080` (and `localhost:8080`) in a page is replaced by a free port;
//! - `curl` fails on an HTTP error status (`--fail-with-body`), so an error answer fails the page.
//!
//! Directives are HTML comments, invisible when the page is rendered:
//! - `<!-- docs-test: skip REASON -->` on the line before a fence: the block is not run;
//! - `<!-- docs-test: run` … `-->`: commands run at that point but not shown (the state a page
//!   says it assumes, such as a running server or the tokens of an earlier page);
//! - `<!-- docs-test: browser VAR USER -->`: a person opens the URL in `$VAR` in a browser,
//!   signs in as USER and approves; the runner then sets `$REDIRECTED` to the address the browser
//!   was sent to, which the page's next block reads (as the reader copies it from the address bar).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::common::Browser;

/// One step of a page.
#[derive(Debug)]
enum Step {
    Run { line: usize, text: String },
    Browser { var: String, user: String },
}

/// A page's steps.
fn parse(page: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    let lines: Vec<&str> = page.lines().collect();
    let mut i = 0;
    let mut skip_next = false;
    while i < lines.len() {
        let l = lines[i].trim();
        if let Some(rest) = l.strip_prefix("<!-- docs-test:") {
            let rest = rest.trim();
            if rest.starts_with("skip") {
                skip_next = true;
            } else if let Some(b) = rest.strip_prefix("browser") {
                let words: Vec<&str> = b.trim_end_matches("-->").split_whitespace().collect();
                assert_eq!(words.len(), 2, "browser directive needs VAR USER: {l}");
                steps.push(Step::Browser {
                    var: words[0].into(),
                    user: words[1].into(),
                });
            } else if rest == "run" {
                let line = i + 1;
                let mut text = String::new();
                i += 1;
                while i < lines.len() && lines[i].trim() != "-->" {
                    text.push_str(lines[i]);
                    text.push('\n');
                    i += 1;
                }
                steps.push(Step::Run { line, text });
            } else {
                panic!("unknown docs-test directive: {l}");
            }
        } else if l == "```sh" {
            let start = i + 1;
            let mut text = String::new();
            i += 1;
            while i < lines.len() && lines[i].trim() != "```" {
                text.push_str(lines[i]);
                text.push('\n');
                i += 1;
            }
            if !std::mem::take(&mut skip_next) {
                steps.push(Step::Run { line: start, text });
            }
        } else if !l.is_empty() && !l.starts_with("<!--") {
            skip_next = false;
        }
        i += 1;
    }
    steps
}

/// The `mandate` stand-in: the binary under test, with `serve` started in the background.
fn write_wrapper(dir: &Path, port: u16) -> std::path::PathBuf {
    let bin = env!("CARGO_BIN_EXE_mandate");
    let wrapper = dir.join("target/release/mandate");
    std::fs::create_dir_all(wrapper.parent().unwrap()).unwrap();
    let script = format!(
        r#"#!/usr/bin/env bash
export MANDATE_LISTEN=127.0.0.1:{port}
for a in "$@"; do
  if [ "$a" = serve ]; then
    "{bin}" "$@" >>"{log}" 2>&1 &
    echo $! >>"{pids}"
    for _ in $(seq 1 300); do
      command curl -sf http://127.0.0.1:{port}/healthz >/dev/null && exit 0
      kill -0 $! 2>/dev/null || {{ echo "mandate serve exited:" >&2; cat "{log}" >&2; exit 1; }}
      sleep 0.1
    done
    echo "mandate serve did not answer" >&2; exit 1
  fi
done
exec "{bin}" "$@"
"#,
        log = dir.join("serve.log").display(),
        pids = dir.join("serve.pids").display(),
    );
    std::fs::write(&wrapper, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path_bin = dir.join("bin");
    std::fs::create_dir_all(&path_bin).unwrap();
    std::os::unix::fs::symlink(&wrapper, path_bin.join("mandate")).unwrap();
    path_bin
}

const PRELUDE: &str = r#"
exec 2>&1
set -eo pipefail
curl() { command curl --fail-with-body "$@"; }
cargo() {
  case "$1" in
    build) return 0 ;;
    run) shift; while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do shift; done; shift; ./target/release/mandate "$@" ;;
    *) echo "docs-test: cargo $1 is not provided" >&2; return 1 ;;
  esac
}
"#;

const DONE: &str = "__DOCS_TEST_DONE__";

/// A bash session fed one block at a time.
struct Session {
    stdin: std::process::ChildStdin,
    lines: mpsc::Receiver<String>,
    child: std::process::Child,
    transcript: String,
}

impl Session {
    /// Run `text`; the output, or None when bash exited (a command failed).
    fn run(&mut self, text: &str) -> Option<String> {
        // The marker on a line of its own, even after output without a final newline.
        let ok = writeln!(self.stdin, "{text}\nprintf '\\n%s\\n' {DONE}").is_ok()
            && self.stdin.flush().is_ok();
        let mut out = String::new();
        loop {
            match self.lines.recv_timeout(Duration::from_secs(120)) {
                Ok(l) if l == DONE => break,
                Ok(l) => {
                    out.push_str(&l);
                    out.push('\n');
                }
                Err(_) => {
                    self.transcript.push_str(&out);
                    return None;
                }
            }
        }
        self.transcript.push_str(&out);
        ok.then_some(out)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Run one page; panics with the failing block and the session's output.
async fn run_page(name: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let page = std::fs::read_to_string(root.join(name)).unwrap();
    let steps = parse(&page);
    let port = free_port();
    let dir = std::env::temp_dir().join(format!(
        "mandate_docs_{}_{}",
        name.replace(['/', '.'], "_"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path_bin = write_wrapper(&dir, port);
    let mut child = Command::new("bash")
        .args(["--noprofile", "--norc"])
        .current_dir(&dir)
        .env(
            "PATH",
            format!("{}:{}", path_bin.display(), std::env::var("PATH").unwrap()),
        )
        .env_remove("MANDATE_DATA_DIR")
        .env_remove("MANDATE_DATABASE_URL")
        .env_remove("MANDATE_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let mut s = Session {
        stdin,
        lines: rx,
        child,
        transcript: String::new(),
    };
    let local = |t: &str| {
        t.replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
            .replace("localhost:8080", &format!("localhost:{port}"))
    };
    let fail = |s: &Session, what: &str| -> ! {
        let log = std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default();
        let tail: String = log.lines().rev().take(20).collect::<Vec<_>>().join("\n");
        panic!(
            "{name}: {what} failed.\n--- session output ---\n{}\n--- server log (last lines, newest first) ---\n{tail}",
            s.transcript
        )
    };
    s.run(PRELUDE).expect("prelude");
    for step in &steps {
        match step {
            Step::Run { line, text } => {
                s.transcript
                    .push_str(&format!("$ # {name}:{line}\n{}", local(text)));
                if s.run(&local(text)).is_none() {
                    fail(&s, &format!("the block at line {line}"));
                }
            }
            Step::Browser { var, user } => {
                let url = s
                    .run(&format!("printf '%s\\n' \"${var}\""))
                    .unwrap_or_else(|| fail(&s, "reading the browser URL"));
                let url = url.trim();
                let issuer = url.split("/authorize").next().unwrap().to_string();
                let to = Browser::new().authorize(&issuer, url, user).await;
                assert!(!to.contains('\''), "{to}");
                s.run(&format!("REDIRECTED='{to}'"))
                    .unwrap_or_else(|| fail(&s, "setting REDIRECTED"));
            }
        }
    }
    drop(s);
    if let Ok(pids) = std::fs::read_to_string(dir.join("serve.pids")) {
        for pid in pids.split_whitespace() {
            let _ = Command::new("kill").arg(pid).status();
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

macro_rules! pages {
    ($($test:ident => $page:literal),* $(,)?) => {$(
        #[tokio::test]
        async fn $test() {
            run_page($page).await;
        }
    )*};
}

pages! {
    readme_commands_run => "README.md",
    getting_started_commands_run => "docs/getting-started.md",
    agents_commands_run => "docs/agents.md",
    audit_commands_run => "docs/audit.md",
    authorization_commands_run => "docs/authorization.md",
    ciba_commands_run => "docs/ciba.md",
    cli_commands_run => "docs/cli.md",
    configuration_commands_run => "docs/configuration.md",
    dpop_commands_run => "docs/dpop.md",
    email_commands_run => "docs/email.md",
    endpoints_commands_run => "docs/endpoints.md",
    operations_commands_run => "docs/operations.md",
    second_factors_commands_run => "docs/second-factors.md",
    passkeys_commands_run => "docs/passkeys.md",
    pages_commands_run => "docs/pages.md",
    risk_commands_run => "docs/risk.md",
    ssf_commands_run => "docs/ssf.md",
    tenants_commands_run => "docs/tenants.md",
    tokens_and_keys_commands_run => "docs/tokens-and-keys.md",
}

#[test]
fn directives_are_parsed() {
    let page = "<!-- docs-test: run\nmandate serve\n-->\n```sh\na\n```\n<!-- docs-test: skip why -->\n```sh\nb\n```\n<!-- docs-test: browser URL alice -->\n```sh\nc\n```\n";
    let steps = parse(page);
    assert_eq!(steps.len(), 4, "{steps:?}");
    assert!(matches!(&steps[0], Step::Run { text, .. } if text == "mandate serve\n"));
    assert!(matches!(&steps[1], Step::Run { text, .. } if text == "a\n"));
    assert!(matches!(&steps[2], Step::Browser { var, user } if var == "URL" && user == "alice"));
    assert!(matches!(&steps[3], Step::Run { text, .. } if text == "c\n"));
}

/// The pictures in the docs: every `![alt](images/….png)` of README.md and docs/*.md has alt
/// text and a file in docs/images of at most 80 KiB (scripts/docs-screenshots.sh makes them),
/// and every picture there is shown by some page.
#[test]
fn docs_images() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let images = root.join("docs/images");
    let mut pages = vec![root.join("README.md")];
    for e in std::fs::read_dir(root.join("docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            pages.push(p);
        }
    }
    let mut shown = std::collections::BTreeSet::new();
    let mut problems = Vec::new();
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        let name = page.strip_prefix(&root).unwrap().display().to_string();
        for (i, _) in text.match_indices("![") {
            let rest = &text[i + 2..];
            let Some((alt, after)) = rest.split_once("](") else {
                continue;
            };
            let Some((target, _)) = after.split_once(')') else {
                continue;
            };
            if !target.ends_with(".png") || target.contains("://") {
                continue;
            }
            if alt.trim().is_empty() {
                problems.push(format!("{name}: {target} has no alt text"));
            }
            let file = page.parent().unwrap().join(target);
            match std::fs::metadata(&file) {
                Ok(m) if m.len() > 80 * 1024 => problems.push(format!(
                    "{name}: {target} is {} KiB, over 80",
                    m.len() / 1024
                )),
                Ok(_) => {}
                Err(e) => problems.push(format!("{name}: {target}: {e}")),
            }
            if let Ok(f) = file.canonicalize() {
                shown.insert(f);
            }
        }
    }
    for e in std::fs::read_dir(&images).unwrap() {
        let p = e.unwrap().path().canonicalize().unwrap();
        if !shown.contains(&p) {
            problems.push(format!("{} is shown by no page", p.display()));
        }
    }
    assert!(!shown.is_empty(), "no pictures found in the docs");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
