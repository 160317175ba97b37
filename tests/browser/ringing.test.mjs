// The page's "Someone is at the door" banner (issue 27) in Debian's headless Chromium
// against the real `intercom` binary and a small stand-in for Twilio's Calls resource:
// a forwarded call shows the banner within a second, the end of its ringing hides it, and
// "Let them in" makes Twilio play the entrance's tones on that call, once.
//
// Env: INTERCOM_BIN (default target/debug/intercom), CHROMIUM (default /usr/bin/chromium),
// ARTIFACTS (default target/browser-artifacts). Exits non-zero on any failure.

import { execFileSync } from "node:child_process";
import { createServer } from "node:http";
import { mkdtempSync, writeFileSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { spawnServer } from "./server.mjs";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const BIN = process.env.INTERCOM_BIN || join(repo, "target/debug/intercom");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const ARTIFACTS = process.env.ARTIFACTS || join(repo, "target/browser-artifacts");
const INTERCOM = "+15558889999";
// The promise: the banner shows (and goes) within a second.
const BANNER_MS = 1000;
const STEP_TIMEOUT_MS = 20_000;
const RUN_TIMEOUT_MS = 90_000;

const watchdog = setTimeout(() => fail(new Error(`the browser test took over ${RUN_TIMEOUT_MS} ms`)), RUN_TIMEOUT_MS);
const serverLog = [];
let server, browser, dir, twilio;

function log(msg) {
  console.log(`[ringing-test] ${msg}`);
}

async function cleanup() {
  clearTimeout(watchdog);
  if (browser) await browser.close().catch(() => {});
  if (server && server.exitCode === null) server.kill("SIGTERM");
  if (twilio) twilio.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
}

async function fail(e) {
  console.error(`[ringing-test] FAILED: ${e && e.stack ? e.stack : e}`);
  console.error(`[ringing-test] server log:\n${serverLog.join("\n")}`);
  await cleanup();
  process.exit(1);
}

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

/// Twilio's "update a call in progress", as far as the test needs it: each update is kept.
function startTwilio(updates) {
  return new Promise(ok => {
    const s = createServer((req, res) => {
      let body = "";
      req.on("data", c => { body += c; });
      req.on("end", () => {
        const m = req.url.match(/^\/2010-04-01\/Accounts\/ACtest\/Calls\/(CA[0-9a-f]{32})\.json$/);
        if (req.method !== "POST" || !m) { res.writeHead(404).end(); return; }
        updates.push({ sid: m[1], twiml: new URLSearchParams(body).get("Twiml") });
        res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ sid: m[1], status: "in-progress" }));
      });
    });
    s.listen(0, "127.0.0.1", () => ok(s));
  });
}

let calls = 0;
/// A call from the intercom, as Twilio sends it (unsigned: the config allows it).
async function ring(addrs) {
  const sid = "CA" + String(++calls).padStart(32, "0");
  const resp = await fetch(`http://${addrs.webhook}/voice`, {
    method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ CallSid: sid, From: INTERCOM, To: "+15550001111" }),
    signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
  });
  const twiml = await resp.text();
  check(twiml.includes("<Dial") && twiml.includes("/voice/next"), `forwarded with a dial action: ${twiml}`);
  return sid;
}

/// Twilio's `<Dial action>`: nobody answered.
async function dialEnded(addrs, sid) {
  const resp = await fetch(`http://${addrs.webhook}/voice/next?step=1`, {
    method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ CallSid: sid, From: INTERCOM, DialCallStatus: "no-answer" }),
    signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
  });
  check((await resp.text()).includes("<Say>"), "the no-answer message");
}

async function main() {
  const updates = [];
  twilio = await startTwilio(updates);
  dir = mkdtempSync(join(tmpdir(), "intercom-ringing-"));
  const configPath = join(dir, "intercom.json");
  const config = {
    intercoms: [{ name: "street gate", number: INTERCOM, unlock_digits: "9" }],
    forward_to: ["+15552223333"],
    state_dir: join(dir, "state"),
    // Unsigned webhooks, as a test setup may have them: the calls below come from here.
    webhook: { listen: "127.0.0.1:0", allow_unsigned: true },
    control: { listen: "127.0.0.1:0" },
    twilio: { account_sid: "ACtest", api_key_sid: "SKtest", api_key_secret: "test-secret-not-used-elsewhere",
      api_base: `http://127.0.0.1:${twilio.address().port}` },
  };
  writeFileSync(configPath, JSON.stringify(config));
  const started = spawnServer(BIN, configPath, serverLog, STEP_TIMEOUT_MS);
  server = started.process;
  const addrs = await started.ready;
  config.control.listen = addrs.control;
  config.webhook.listen = addrs.webhook;
  writeFileSync(configPath, JSON.stringify(config));
  // A paired phone, as a person pairs it: the link `intercom pair` prints, then the tap.
  const printed = execFileSync(BIN, ["pair", "Anna's phone", "--config", configPath], { encoding: "utf8", timeout: STEP_TIMEOUT_MS });
  const link = printed.split("\n").map(l => l.trim()).find(l => l.startsWith("http://"));
  check(link && link.includes("/pair#c="), "intercom pair prints a pairing link");

  browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true, timeout: STEP_TIMEOUT_MS,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const pageErrors = [];
  page.on("pageerror", e => pageErrors.push(String(e)));
  page.on("console", m => { if (m.type() === "error") pageErrors.push(m.text()); });
  await page.goto(link);
  await page.getByRole("button", { name: "Pair this phone" }).click();
  await page.locator("#state.closed").waitFor();
  check(await page.locator("#ringing").isHidden(), "no banner while nothing rings");
  const banner = page.locator("#ringing");

  // A ring shows within a second, naming the entrance; the ringing's end hides it.
  let sid = await ring(addrs);
  let rang = Date.now();
  await banner.waitFor({ state: "visible", timeout: BANNER_MS });
  log(`banner after ${Date.now() - rang} ms`);
  const text = await page.locator("#ringing-text").textContent();
  check(text === "Someone is at the street gate", `the banner names the entrance: ${text}`);
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, "ringing-banner.png"), fullPage: true });
  await dialEnded(addrs, sid);
  let ended = Date.now();
  await banner.waitFor({ state: "hidden", timeout: BANNER_MS });
  log(`gone ${Date.now() - ended} ms after the dial ended`);
  check(updates.length === 0, "nothing reached Twilio");

  // "Let them in": Twilio plays the entrance's tones on that call, once; the banner goes.
  sid = await ring(addrs);
  await banner.waitFor({ state: "visible", timeout: BANNER_MS });
  await page.getByRole("button", { name: "Let them in" }).click();
  await banner.waitFor({ state: "hidden", timeout: BANNER_MS });
  check(updates.length === 1 && updates[0].sid === sid, `one update for ${sid}: ${JSON.stringify(updates)}`);
  check(updates[0].twiml.includes('<Play digits="9"/>'), `the street gate's tones: ${updates[0].twiml}`);
  await page.locator("#events li", { hasText: "Let a visitor in while it rang, by Anna's phone" }).first().waitFor();
  check((await page.locator("#error").textContent()) === "", "no error shown");
  await page.screenshot({ path: join(ARTIFACTS, "ringing-let-in.png"), fullPage: true });
  check(pageErrors.length === 0, `no errors in the page: ${pageErrors.join("; ")}`);
  log(`ok; screenshots in ${ARTIFACTS}`);
}

main().then(cleanup, fail);
