// Drives one headless Chromium for Mandate's end-to-end tests (crates/mandate/tests/e2e/common/
// chromium.rs is the other end). A long-lived process: one browser, one context, one page.
//
// Protocol: one JSON object a line on stdin, `{"id": 1, "cmd": "goto", ...}`; one line back on
// stdout for each, `{"id": 1, "ok": true, "value": ...}` or `{"id": 1, "ok": false, "error": "..."}`.
// The first line out is `{"id": 0, "ok": true, "value": {"version": ...}}` once the browser runs.
// Commands run as they arrive (not one after another), so that a failure screenshot still works
// while an earlier command hangs. The process ends when stdin closes.
//
// Options come as one JSON argument: executablePath, locale, timeoutMs, headless.

import { chromium } from 'playwright-core';
import { createInterface } from 'node:readline';

const options = JSON.parse(process.argv[2] ?? '{}');
const timeoutMs = options.timeoutMs ?? 15000;

const browser = await chromium.launch({
  executablePath: options.executablePath ?? '/usr/bin/chromium',
  headless: options.headless ?? true,
  // Tests run as root, where Chromium's sandbox cannot start.
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});

// Everything below belongs to the current context and is replaced by new_context.
let context;
let page;
let cdpSession;
// The session that intercepts requests (captures, reroutes).
let net;
// Console messages and page errors, oldest first.
let logs = [];
// Requests to captured prefixes ({url, method, body, resourceType}), oldest first, and how many
// of them next_redirect returned.
const captures = [];
const captured = [];
let consumed = 0;
let waiters = [];
// CDP events the test subscribed to, by name, and what has come of them.
const cdpEvents = new Map();
// Origins whose requests go elsewhere (two nodes behind one public URL): from -> to.
const reroutes = new Map();

async function newContext(opts) {
  if (context) await context.close();
  cdpSession = undefined;
  context = await browser.newContext({
    locale: opts.locale ?? options.locale ?? 'en-US',
    viewport: opts.viewport ?? { width: 800, height: 700 },
  });
  context.setDefaultTimeout(timeoutMs);
  context.setDefaultNavigationTimeout(timeoutMs);
  page = await context.newPage();
  page.on('console', (m) => {
    const loc = m.location();
    logs.push({ kind: 'console', type: m.type(), text: m.text(), url: loc?.url ?? '' });
  });
  page.on('pageerror', (e) => logs.push({ kind: 'pageerror', type: 'error', text: String(e?.stack ?? e), url: page.url() }));
  // Captures and reroutes go through Chromium's Fetch domain on a session of their own, not
  // page.route: route handlers never see a redirect's target, and a client's redirect_uri is
  // always reached by a redirect.
  net = await context.newCDPSession(page);
  net.on('Fetch.requestPaused', (e) => intercept(e).catch((err) => logs.push({ kind: 'driver', type: 'error', text: `interception of ${e.request.url}: ${err}`, url: page.url() })));
  await interceptPatterns();
}

async function interceptPatterns() {
  const patterns = [
    ...captures.map((p) => ({ urlPattern: `${wildcardEscape(p)}*`, requestStage: 'Request' })),
    ...[...reroutes.keys()].map((o) => ({ urlPattern: `${o}/*`, requestStage: 'Request' })),
  ];
  if (patterns.length) await net.send('Fetch.enable', { patterns });
  else await net.send('Fetch.disable');
}

// In Fetch's URL patterns `*` and `?` are wildcards and `\` escapes.
function wildcardEscape(s) {
  return s.replace(/[*?\\]/g, '\\$&');
}

async function intercept({ requestId, request, resourceType }) {
  if (captures.some((p) => request.url.startsWith(p))) {
    record({ url: request.url, method: request.method, body: request.postData ?? null, resourceType });
    const body = `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>Captured redirect</title><h1>Captured redirect</h1><p id="captured-url">${escapeHtml(request.url)}</p>`;
    await net.send('Fetch.fulfillRequest', {
      requestId,
      responseCode: 200,
      responseHeaders: [{ name: 'Content-Type', value: 'text/html; charset=utf-8' }],
      body: Buffer.from(body).toString('base64'),
    });
    return;
  }
  const url = new URL(request.url);
  const to = reroutes.get(url.origin);
  // The page keeps seeing the public URL; only the connection goes to the other node.
  if (to) await net.send('Fetch.continueRequest', { requestId, url: to + url.pathname + url.search });
  else await net.send('Fetch.continueRequest', { requestId });
}

function record(entry) {
  captured.push(entry);
  const ready = waiters;
  waiters = [];
  for (const w of ready) w();
}

function escapeHtml(s) {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
}

async function cdp() {
  if (!cdpSession) {
    cdpSession = await context.newCDPSession(page);
    for (const [name, list] of cdpEvents) cdpSession.on(name, (e) => list.push(e));
  }
  return cdpSession;
}

function urlMatcher(pattern) {
  // A glob when it has a `*`, else a prefix.
  if (pattern.includes('*')) return pattern;
  return (u) => u.href.startsWith(pattern);
}

const commands = {
  async goto({ url }) {
    const r = await page.goto(url);
    return { url: page.url(), status: r ? r.status() : null };
  },
  async click({ selector }) { await page.locator(selector).click(); return null; },
  async fill({ selector, value }) { await page.locator(selector).fill(value); return null; },
  async press({ selector, key }) { await page.locator(selector).press(key); return null; },
  async check({ selector }) { await page.locator(selector).check(); return null; },
  async text({ selector }) { return await page.locator(selector).innerText(); },
  async attribute({ selector, name }) { return await page.locator(selector).getAttribute(name); },
  async value({ selector }) { return await page.locator(selector).inputValue(); },
  async count({ selector }) { return await page.locator(selector).count(); },
  async url() { return page.url(); },
  async title() { return await page.title(); },
  async content() { return await page.content(); },
  async wait_for_selector({ selector, state }) {
    await page.locator(selector).first().waitFor({ state: state ?? 'visible' });
    return null;
  },
  async wait_for_url({ url }) { await page.waitForURL(urlMatcher(url)); return page.url(); },
  async wait_for_load() { await page.waitForLoadState('load'); return page.url(); },
  // An async JS expression in the page (its value, awaited, as JSON); with `arg`, `expression`
  // is a function called with it.
  async evaluate({ expression, arg }) {
    const src = arg === undefined ? expression : `(${expression})(${JSON.stringify(arg)})`;
    return await page.evaluate(src);
  },
  async screenshot({ path, fullPage }) {
    await page.screenshot({ path, fullPage: fullPage ?? true });
    return path;
  },
  // The page's card (`main`) with the brand header above it and a margin around: what the docs
  // show of a page.
  async screenshot_card({ path, margin }) {
    const m = margin ?? 16;
    const box = await page.evaluate(() => {
      const parts = [document.querySelector('header.brand'), document.querySelector('main')]
        .filter((e) => e && e.getClientRects().length)
        .map((e) => e.getBoundingClientRect());
      if (!parts.length) return null;
      return {
        left: Math.min(...parts.map((r) => r.left)) + window.scrollX,
        top: Math.min(...parts.map((r) => r.top)) + window.scrollY,
        right: Math.max(...parts.map((r) => r.right)) + window.scrollX,
        bottom: Math.max(...parts.map((r) => r.bottom)) + window.scrollY,
      };
    });
    if (!box) throw new Error('no main element to screenshot');
    const x = Math.max(0, Math.floor(box.left - m));
    const y = Math.max(0, Math.floor(box.top - m));
    const clip = { x, y, width: Math.ceil(box.right + m) - x, height: Math.ceil(box.bottom + m) - y };
    await page.screenshot({ path, fullPage: true, clip });
    return path;
  },
  // A key pressed on the page, wherever the focus is (`Tab`, `Enter`, `Shift+Tab`).
  async keyboard({ key }) { await page.keyboard.press(key); return null; },
  async new_context(opts) { await newContext(opts); return null; },
  async set_locale({ locale }) { await newContext({ locale }); return null; },
  async cdp({ method, params }) { return await (await cdp()).send(method, params ?? {}); },
  // Record the CDP event `event` (e.g. WebAuthn.credentialAdded) from now on.
  async cdp_subscribe({ event }) {
    if (!cdpEvents.has(event)) {
      const list = [];
      cdpEvents.set(event, list);
      if (cdpSession) cdpSession.on(event, (e) => list.push(e));
    }
    await cdp();
    return null;
  },
  async cdp_events({ event, clear }) {
    const list = cdpEvents.get(event) ?? [];
    const out = [...list];
    if (clear) list.length = 0;
    return out;
  },
  async capture_redirects({ prefix }) {
    if (!captures.includes(prefix)) {
      captures.push(prefix);
      await interceptPatterns();
    }
    return null;
  },
  async captured() { return captured; },
  // The next captured request not yet returned, waiting for it if need be.
  async next_redirect({ timeoutMs: wait }) {
    const deadline = Date.now() + (wait ?? timeoutMs);
    while (consumed >= captured.length) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no redirect to ${captures.join(', ') || '(nothing captured)'} within ${wait ?? timeoutMs} ms`);
      await new Promise((resolve) => {
        const t = setTimeout(resolve, left);
        waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
    return captured[consumed++];
  },
  // Send the requests for origin `from` to origin `to` (or to `from` again when `to` is null);
  // the page still sees `from`.
  async reroute({ from, to }) {
    const origin = new URL(from).origin;
    if (to) reroutes.set(origin, new URL(to).origin); else reroutes.delete(origin);
    await interceptPatterns();
    return null;
  },
  // Console messages and page errors since the start (or the last clear).
  async logs({ clear }) {
    const out = logs;
    if (clear) logs = [];
    return out;
  },
};

function send(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

async function handle(line) {
  let msg;
  try {
    msg = JSON.parse(line);
  } catch (e) {
    send({ id: null, ok: false, error: `bad JSON: ${e.message}` });
    return;
  }
  const { id, cmd, ...args } = msg;
  const fn = commands[cmd];
  if (!fn) {
    send({ id, ok: false, error: `unknown command ${JSON.stringify(cmd)}` });
    return;
  }
  try {
    const value = await fn(args);
    send({ id, ok: true, value: value ?? null });
  } catch (e) {
    // Playwright colours its call logs for terminals.
    send({ id, ok: false, error: String(e?.message ?? e).replace(/\u001b\[[0-9;]*m/g, '') });
  }
}

let closing = false;
async function shutdown() {
  if (closing) return;
  closing = true;
  try { await browser.close(); } finally { process.exit(0); }
}

await newContext({});
send({ id: 0, ok: true, value: { version: browser.version() } });
// Commands still running; the last ones (a failure screenshot) finish before the browser closes.
const pending = new Set();
const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (!line.trim()) return;
  const p = handle(line).finally(() => pending.delete(p));
  pending.add(p);
});
rl.on('close', async () => {
  const grace = new Promise((resolve) => setTimeout(resolve, 3000).unref());
  await Promise.race([Promise.allSettled([...pending]), grace]);
  await shutdown();
});
