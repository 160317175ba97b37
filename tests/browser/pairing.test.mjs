// Paired phones in a real browser (Debian's headless Chromium, driven by playwright-core,
// at phone size) against the real `intercom` binary:
// `intercom pair` → open the link → tap "Pair this phone" → the door, with the address
// bar at the bare URL; reload; a bookmark-style visit of the bare URL; history says who;
// "Pair another phone" from the page; pages on other origins (127.0.0.2, and another port
// of 127.0.0.1, which is the same *site*, so the cookie is sent) try a form POST and
// fetch; the cookie that the page on another port of 127.0.0.1 received, replayed from
// outside a browser with the right Origin, Host and JSON, opens nothing (the page key in
// the paired page's own storage is missing); the server stopped ("Can't reach the intercom", controls disabled) and started
// again (the truth); the phone revoked (the "not paired" screen, no door state); the
// browser's own history file holds no usable credential.
//
// Env: INTERCOM_BIN, CHROMIUM, ARTIFACTS as for control-page.test.mjs.

import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync, mkdirSync, rmSync, readFileSync, readdirSync } from "node:fs";
import { createServer, request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { spawnServer } from "./server.mjs";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const BIN = process.env.INTERCOM_BIN || join(repo, "target/debug/intercom");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const ARTIFACTS = process.env.ARTIFACTS || join(repo, "target/browser-artifacts");
const STEP_TIMEOUT_MS = 20_000;
const RUN_TIMEOUT_MS = 180_000;
// The page polls every 4 s and calls the intercom unreachable after 12 s without an
// answer; a refused connection is noticed at the next poll.
const UNREACHABLE_WITHIN_MS = 8_000;

const watchdog = setTimeout(() => fail(new Error(`the pairing test took over ${RUN_TIMEOUT_MS} ms`)), RUN_TIMEOUT_MS);
let server, context, browser, dir;
const attackers = [];
const received = []; // the Cookie headers the attackers' servers were sent
const serverLog = [];

function log(msg) { console.log(`[pairing-test] ${msg}`); }
function check(cond, what) { if (!cond) throw new Error(`check failed: ${what}`); }

async function cleanup() {
  clearTimeout(watchdog);
  if (context) await context.close().catch(() => {});
  if (browser) await browser.close().catch(() => {});
  for (const a of attackers) a.close();
  if (server && server.exitCode === null) server.kill("SIGTERM");
  if (dir) rmSync(dir, { recursive: true, force: true });
}

async function fail(e) {
  console.error(`[pairing-test] FAILED: ${e && e.stack ? e.stack : e}`);
  console.error(`[pairing-test] server log:\n${serverLog.join("\n")}`);
  await cleanup();
  process.exit(1);
}

/// Starts `intercom serve` (see server.mjs); resolves with both addresses.
function startServer(configPath) {
  const started = spawnServer(BIN, configPath, serverLog, STEP_TIMEOUT_MS);
  server = started.process;
  return started.ready;
}

function stopServer() {
  return new Promise(ok => { server.once("exit", ok); server.kill("SIGTERM"); });
}

function cli(configPath, args) {
  return execFileSync(BIN, [...args, "--config", configPath], { encoding: "utf8", timeout: STEP_TIMEOUT_MS });
}

/// A page on another origin that tries, with the paired browser's cookie, to open the door:
/// a form POST with a JSON-looking text/plain body, a no-cors fetch, and a JSON fetch.
function attackerPage(target) {
  return `<!doctype html><meta charset="utf-8"><title>free wifi</title><body><h1>Totally harmless page</h1><p id="out">trying…</p>
<iframe name="sink" style="width:100%;height:6rem"></iframe>
<form id="f" method="POST" action="${target}/api/open" enctype="text/plain" target="sink"><input name='{"minutes": 60, "x": "' value='"}'></form>
<script>
const out = [];
(async () => {
  document.getElementById("f").submit();
  try { await fetch("${target}/api/open", {method: "POST", mode: "no-cors", credentials: "include", headers: {"Content-Type": "text/plain"}, body: '{"minutes": 60}'}); out.push("no-cors fetch sent"); } catch (e) { out.push("no-cors fetch failed"); }
  try { const r = await fetch("${target}/api/open", {method: "POST", credentials: "include", headers: {"Content-Type": "application/json"}, body: '{"minutes": 60}'}); out.push("json fetch " + r.status); } catch (e) { out.push("json fetch blocked"); }
  setTimeout(() => { document.getElementById("out").textContent = "done: " + out.join(", "); }, 500);
})();
</script>`;
}

function serveAttacker(host, target) {
  return new Promise(ok => {
    const s = createServer((req, res) => { received.push(req.headers.cookie || ""); res.writeHead(200, { "Content-Type": "text/html" }); res.end(attackerPage(target)); });
    s.listen(0, host, () => { attackers.push(s); ok(`http://${host}:${s.address().port}/`); });
  });
}

/// A request as a program sends it, outside any browser: whatever headers it likes.
function raw(base, method, path, headers, body) {
  return new Promise((ok, ko) => {
    const req = httpRequest(base + path, { method, headers, timeout: STEP_TIMEOUT_MS }, res => {
      let text = "";
      res.on("data", c => text += c);
      res.on("end", () => ok({ status: res.statusCode, body: text }));
    });
    req.on("error", ko);
    req.end(body);
  });
}

async function api(base, token, method, path) {
  const r = await fetch(base + path, { method, headers: { Authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(STEP_TIMEOUT_MS) });
  return r.status === 204 ? {} : r.json();
}

async function main() {
  dir = mkdtempSync(join(tmpdir(), "intercom-pairing-"));
  mkdirSync(ARTIFACTS, { recursive: true });
  const shot = async (page, name) => page.screenshot({ path: join(ARTIFACTS, `pairing-${name}.png`), fullPage: true });
  const configPath = join(dir, "intercom.json");
  const config = {
    intercom_number: "+15558889999", forward_to: ["+15552223333"], state_dir: join(dir, "state"),
    webhook: { listen: "127.0.0.1:0", allow_unsigned: true }, control: { listen: "127.0.0.1:0" }, // no auth token: allowed by name
  };
  writeFileSync(configPath, JSON.stringify(config));
  const addrs = await startServer(configPath);
  // The CLI and the restart below use the ports the OS chose.
  config.control.listen = addrs.control;
  config.webhook.listen = addrs.webhook;
  writeFileSync(configPath, JSON.stringify(config));
  const base = `http://${addrs.control}`;
  const token = readFileSync(join(dir, "state", "control-token"), "utf8").trim();

  const printed = cli(configPath, ["pair", "Anna's phone"]);
  check(printed.includes("█"), "the CLI prints a QR code");
  const link = printed.split("\n").map(l => l.trim()).find(l => l.startsWith("http://"));
  check(link && link.startsWith(`${base}/pair#c=`), `the CLI prints the pairing link (${link && link.replace(/#c=.*/, "#c=…")})`);
  const code = link.split("#c=")[1];

  // A persistent profile, as a phone's browser is, so its history file can be read after.
  const profile = join(dir, "profile");
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, timeout: STEP_TIMEOUT_MS,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, locale: "en-US", timezoneId: "Europe/Berlin",
  });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
  const pageErrors = [];
  const watch = p => {
    p.setDefaultTimeout(STEP_TIMEOUT_MS);
    p.on("pageerror", e => pageErrors.push(String(e)));
    p.on("dialog", d => d.accept(d.type() === "prompt" ? "Ben's phone" : undefined));
  };
  let page = context.pages()[0] || await context.newPage();
  watch(page);

  // 1. Pairing: the link shows a button and no door state; the tap pairs.
  await page.goto(link);
  await page.getByRole("button", { name: "Pair this phone" }).waitFor();
  check(await page.locator("#door").isHidden(), "the pairing screen shows no door state");
  await shot(page, "1-link");
  await page.getByRole("button", { name: "Pair this phone" }).click();
  await page.locator("#state.closed").waitFor();
  check(page.url() === `${base}/`, `the address bar holds the bare page, not the link (${page.url()})`);
  const cookies = await context.cookies(base);
  const cookie = cookies.find(c => c.name === "intercom_device");
  check(cookie && cookie.httpOnly && cookie.sameSite === "Strict" && cookie.path === "/", `an HttpOnly SameSite=Strict cookie (${JSON.stringify(cookies.map(c => [c.name, c.httpOnly, c.sameSite]))})`);
  check(!(await page.evaluate(() => document.cookie)).includes("intercom_device"), "scripts cannot read the cookie");
  const pageKey = await page.evaluate(() => localStorage.getItem("intercom_key"));
  check(pageKey && pageKey.length === 64 && pageKey !== cookie.value, "the page keeps its own key in its origin's storage");
  await shot(page, "2-paired");
  log("paired");

  // 2. Reload, and a bookmark-style visit of the bare URL in a new tab.
  await page.reload();
  await page.locator("#state.closed").waitFor();
  await page.close();
  page = await context.newPage();
  watch(page);
  await page.goto(`${base}/`);
  await page.locator("#state.closed").waitFor();
  check(await page.locator("#unpaired").isHidden(), "still paired on the bare URL");
  log("reload and bare URL: still in");

  // 3. Open; the history says who.
  await page.getByRole("button", { name: "Open for 30 min" }).click();
  await page.locator("#state.open").waitFor();
  await page.locator("#events li", { hasText: "Window opened for 30m by Anna's phone" }).first().waitFor();
  await page.locator("#devices li", { hasText: "Anna's phone (this phone)" }).waitFor();
  await shot(page, "3-open");

  // 4. Pair another phone from the page: a QR code and a link, used by a second browser.
  await page.getByRole("button", { name: "Pair another phone" }).click();
  await page.locator("#pair-offer").waitFor();
  check(await page.locator("#pair-qr").isVisible(), "the page shows a QR code");
  await page.getByRole("button", { name: "Copy link" }).click();
  const benLink = await page.evaluate(() => navigator.clipboard.readText());
  check(benLink.startsWith(`${base}/pair#c=`), "the copied link is a pairing link");
  await shot(page, "4-pair-another");
  const ben = await browser_context_for_ben();
  const benPage = await ben.newPage();
  benPage.setDefaultTimeout(STEP_TIMEOUT_MS);
  // A preview bot fetching the link spends nothing (the code is in the fragment).
  const preview = await fetch(benLink, { signal: AbortSignal.timeout(STEP_TIMEOUT_MS) });
  check(preview.status === 200, "the link's page loads for anyone");
  await benPage.goto(benLink);
  await benPage.getByRole("button", { name: "Pair this phone" }).click();
  await benPage.locator("#state.open").waitFor();
  await page.locator("#devices li", { hasText: "Ben's phone" }).waitFor();
  await page.locator("#pair-offer").waitFor({ state: "hidden" });
  log("second phone paired from the page; the offer went away");

  // 5. Another origin tries to use Anna's cookie. Close first, so an open would show.
  await page.getByRole("button", { name: "Close now" }).click();
  await page.locator("#state.closed").waitFor();
  check(await page.locator("#close").isDisabled(), "Close now is disabled while closed");
  const port = Number(addrs.control.split(":").pop());
  for (const host of ["127.0.0.2", "127.0.0.1"]) {
    const evil = await serveAttacker(host, base);
    check(!evil.endsWith(`:${port}/`), "another origin");
    const tab = await context.newPage();
    tab.setDefaultTimeout(STEP_TIMEOUT_MS);
    await tab.goto(evil);
    await tab.locator("#out", { hasText: "done" }).waitFor();
    const outcome = await tab.locator("#out").textContent();
    // The form's answer, which the attacker cannot read but we can: another port of the
    // same address is the same site, so the browser sent the cookie and the Origin check
    // refused it; from 127.0.0.2 (another site) SameSite kept the cookie home.
    const sink = tab.frame({ name: "sink" });
    await sink.waitForFunction(() => document.body && document.body.textContent.includes("error"));
    const answer = await sink.evaluate(() => document.body.textContent);
    const expected = host === "127.0.0.1" ? "another site" : "missing or wrong token";
    check(answer.includes(expected), `the form POST from ${host} was refused (${expected}): ${answer.trim()}`);
    await tab.screenshot({ path: join(ARTIFACTS, `pairing-5-cross-origin-${host}.png`), fullPage: true });
    await tab.close();
    const st = await api(base, token, "GET", "/api/status");
    check(st.open === false, `a page on ${evil} could not open the door (${outcome})`);
    log(`attack from ${evil}: ${outcome}; form answered ${answer.trim()}; still closed`);
  }
  // The server on another port of 127.0.0.1 was sent Anna's cookie (cookies know no
  // port). Replayed by a program with the right Origin, Host and a JSON body, it opens
  // nothing and reads nothing: the page key lives in the page origin's own storage.
  const stolen = received.find(c => c.includes(`intercom_device=${cookie.value}`));
  check(stolen, `the page on another port received the cookie (${received.length} requests)`);
  check(!received.some(c => c.includes(pageKey)), "no other port ever received the page key");
  const headers = { Cookie: stolen, Origin: base, Host: addrs.control, "Content-Type": "application/json" };
  for (const [method, path, body] of [["POST", "/api/open", '{"minutes": 60}'], ["GET", "/api/status", undefined], ["GET", "/api/events", undefined]]) {
    const r = await raw(base, method, path, headers, body);
    check(r.status === 401, `the stolen cookie alone: ${method} ${path} answered ${r.status} ${r.body.trim()}`);
  }
  check((await api(base, token, "GET", "/api/status")).open === false, "the stolen cookie opened nothing");
  const byAnna = (await api(base, token, "GET", "/api/events?limit=50")).events.filter(e => e.message.startsWith("Window opened") && e.message.includes("by Anna's phone"));
  check(byAnna.length === 1, `the history has only Anna's own opening (${byAnna.map(e => e.message).join("; ")})`);
  log("the cookie another port received, replayed with Origin, Host and JSON: 401, nothing opened");

  // 6. An action the intercom does not answer (the network drops every request from now
  // on): the page says what failed in words and shows no door state until it hears back.
  await page.getByRole("button", { name: "Open for 1 hour" }).click();
  await page.locator("#state.open").waitFor();
  await page.route("**/api/**", r => r.abort());
  await page.getByRole("button", { name: "Close now" }).click();
  await page.locator("#error", { hasText: "The door was not closed: the intercom did not answer, so the door state is unknown." }).waitFor();
  check(await page.locator("#state.unknown").isVisible(), "no door state after an unanswered close");
  await shot(page, "6-action-failed");
  await page.unroute("**/api/**");
  await page.locator("#state.open").waitFor();
  await page.locator("#error", { hasText: "did not answer" }).waitFor({ state: "detached" }).catch(() => {});
  check((await page.locator("#error").textContent()) === "", "the error goes once the intercom answers again");
  log("an unanswered action is said in words; the truth comes back with the next answer");

  // 7. The server stops: "Can't reach the intercom", controls disabled, last known time.
  await stopServer();
  const stoppedAt = Date.now();
  await page.locator("#state.unknown").waitFor({ timeout: UNREACHABLE_WITHIN_MS });
  log(`unreachable shown after ${Date.now() - stoppedAt} ms`);
  check((await page.locator("#headline").textContent()) === "Can't reach the intercom", "says it cannot reach the intercom");
  check((await page.locator("#until").textContent()).startsWith("Last known at"), "says when it last knew");
  check(await page.getByRole("button", { name: "Open for 30 min" }).isDisabled(), "open is disabled");
  check(await page.locator("#close").isDisabled(), "close is disabled");
  check((await page.locator("#countdown").textContent()) === "", "no countdown runs");
  await shot(page, "7-unreachable");
  // Started again: the same page finds the truth by itself at its next poll.
  await startServer(configPath);
  await page.locator("#state.open").waitFor();
  check(await page.getByRole("button", { name: "Open for 30 min" }).isEnabled(), "the buttons work again");
  log("server back: the page shows the truth (open)");
  await shot(page, "8-back");

  // 8. Revoke Anna's phone: out on the next request, a clear screen, no door state.
  const list = cli(configPath, ["devices"]);
  const anna = list.split("\n").find(l => l.includes("Anna's phone"));
  check(anna, `devices lists Anna's phone: ${list}`);
  cli(configPath, ["devices", "rm", anna.split(/\s+/)[0]]);
  await page.locator("#unpaired").waitFor();
  check(await page.locator("#door").isHidden(), "no door state once revoked");
  check((await page.locator("#unpaired").textContent()).includes("not paired"), "says the phone is not paired");
  await shot(page, "9-revoked");
  await benPage.reload();
  await benPage.locator("#state.open").waitFor();
  log("revoked phone shut out; the other still in");
  await ben.close();
  await api(base, token, "POST", "/api/close");

  // 9. The spent link again: refused in words.
  await page.goto(link);
  await page.getByRole("button", { name: "Pair this phone" }).click();
  await page.locator("#pair-error", { hasText: "used up" }).waitFor();
  await shot(page, "10-spent-link");

  check(pageErrors.length === 0, `no script errors: ${pageErrors.join("; ")}`);
  // The browser's history file: the spent link at most, never the cookie or the token.
  await context.close();
  context = null;
  const historyFile = join(profile, "Default", "History");
  const history = readFileSync(historyFile).toString("latin1");
  check(history.includes(`${base}/`), "the history file was written");
  check(![cookie.value, pageKey, token].some(s => history.includes(s)), "the history holds no device secret and no token");
  log(`the spent pairing link is ${history.includes(code) ? "" : "not "}in the history file`);
  const spent = await fetch(`${base}/api/pair`, {
    method: "POST", headers: { "Content-Type": "application/json", Origin: base }, body: JSON.stringify({ code }),
    signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
  });
  check(spent.status === 403, "what the history holds is spent");
  log(`history file checked (${readdirSync(join(profile, "Default")).length} files in the profile); ok; screenshots in ${ARTIFACTS}`);

  async function browser_context_for_ben() {
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, timeout: STEP_TIMEOUT_MS, args: ["--no-sandbox", "--disable-gpu"] });
    return browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  }
}

main().then(async () => { await cleanup(); process.exit(0); }, fail);
