// The control page in a real browser (Debian's headless Chromium, driven by
// playwright-core) against the real `intercom` binary:
// pair the phone with the link `intercom pair` prints; type a length (`2h` opens for two
// hours, `13h` and `2x` are refused in words, next to the box); press a duration button,
// see the countdown, let a simulated intercom call come in, see it in the history, press
// close, see it closed; then make a guest code, copy it, delete it (and share one where
// the phone has the Web Share API); a schedule opens the door, the page offers to pause it
// and, with the server stopped, says so in its last-known sentence; at last the server's
// wall clock jumps six hours forward (libfaketime, Debian's faketime) and the page says
// why schedules and codes wait. Screenshots (390 px wide) go to target/browser-artifacts/.
//
// Env: INTERCOM_BIN (default target/debug/intercom), CHROMIUM (default /usr/bin/chromium),
// ARTIFACTS (default target/browser-artifacts). Exits non-zero on any failure.

import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync, mkdirSync, rmSync, readFileSync, renameSync } from "node:fs";
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
const LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
// A zone far from the server's UTC, so "times in the phone's local time zone" is checked.
const PHONE_TZ = "Pacific/Auckland";
// Every wait is bounded; the whole run too.
const STEP_TIMEOUT_MS = 20_000;
const RUN_TIMEOUT_MS = 180_000;
// How the page shows every time: the phone's locale and zone (page.html's HOUR_MINUTE).
const HOUR_MINUTE = { hour: "numeric", minute: "2-digit" };
const phoneTime = (t, options = HOUR_MINUTE) => new Date(t).toLocaleString("en-US", { timeZone: PHONE_TZ, ...options }).replace(/\s+/g, " ");

const watchdog = setTimeout(() => fail(new Error(`the browser test took over ${RUN_TIMEOUT_MS} ms`)), RUN_TIMEOUT_MS);
let server, browser, dir;

function log(msg) {
  console.log(`[browser-test] ${msg}`);
}

async function cleanup() {
  clearTimeout(watchdog);
  if (browser) await browser.close().catch(() => {});
  if (server && server.exitCode === null) server.kill("SIGTERM");
  if (dir) rmSync(dir, { recursive: true, force: true });
}

async function fail(e) {
  console.error(`[browser-test] FAILED: ${e && e.stack ? e.stack : e}`);
  if (server) console.error(`[browser-test] server log:\n${serverLog.join("\n")}`);
  await cleanup();
  process.exit(1);
}

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

const serverLog = [];
// Errors in the page (the browser logs every refused request as one).
const pageErrors = [];

/// The refusals a step provoked on purpose (by status), out of the page's errors.
function forgive(status) {
  const left = pageErrors.filter(e => !e.includes(`status of ${status}`));
  pageErrors.splice(0, pageErrors.length, ...left);
}

/// Starts `intercom serve` (see server.mjs); resolves with both addresses.
function startServer(configPath, env) {
  const started = spawnServer(BIN, configPath, serverLog, STEP_TIMEOUT_MS, env);
  server = started.process;
  return started.ready;
}

async function main() {
  dir = mkdtempSync(join(tmpdir(), "intercom-browser-"));
  const configPath = join(dir, "intercom.json");
  const config = {
    intercom_number: INTERCOM,
    forward_to: ["+15552223333"],
    state_dir: join(dir, "state"),
    webhook: { listen: "127.0.0.1:0", allow_unsigned: true }, // unsigned webhooks below, allowed by name
    control: { listen: "127.0.0.1:0" }, // no token: generated, as on a real first start
  };
  writeFileSync(configPath, JSON.stringify(config));
  // The server's wall clock, offset by what this file says; its monotonic clock is real.
  const fakeClock = join(dir, "faketime.rc");
  writeFileSync(fakeClock, "+0\n");
  const addrs = await startServer(configPath, { LD_PRELOAD: LIBFAKETIME, FAKETIME_TIMESTAMP_FILE: fakeClock,
    FAKETIME_NO_CACHE: "1", FAKETIME_DONT_FAKE_MONOTONIC: "1" });
  log(`server: webhook ${addrs.webhook}, control ${addrs.control}`);
  // `intercom url` reads the config: give it the port the OS chose.
  config.control.listen = addrs.control;
  config.webhook.listen = addrs.webhook;
  writeFileSync(configPath, JSON.stringify(config));
  const url = execFileSync(BIN, ["url", "--config", configPath], { encoding: "utf8", timeout: STEP_TIMEOUT_MS }).split("\n")[0];
  check(url === `http://${addrs.control}/`, `intercom url prints the page's address and no token: ${url}`);
  // For the checks on the server's side; the page itself never sees it.
  const token = readFileSync(join(dir, "state", "control-token"), "utf8").trim();

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: STEP_TIMEOUT_MS,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  log(`browser: Chromium ${browser.version()}`);
  const context = await browser.newContext({
    viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true,
    locale: "en-US", timezoneId: PHONE_TZ,
  });
  // Headless Chromium on Linux has no Web Share API; make sure, so "Copy" is what we test.
  await context.addInitScript(() => { delete Navigator.prototype.share; });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: `http://${addrs.control}` });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.on("pageerror", e => pageErrors.push(String(e)));
  page.on("console", m => { if (m.type() === "error") pageErrors.push(m.text()); });
  // Deleting a guest code asks once; the person says yes.
  page.on("dialog", d => d.accept());

  await page.goto(url);
  await page.locator("#unpaired").waitFor();
  // The browser logs the refusal that showed "not paired"; from here on, nothing may fail.
  check(pageErrors.every(e => e.includes("401")), `only the refusal before pairing: ${pageErrors.join("; ")}`);
  pageErrors.length = 0;
  await pair(page, configPath, "Test phone");
  check((await page.locator("#headline").textContent()).startsWith("Closed"), "the page starts closed");
  check((await page.locator("#error").textContent()) === "", "no error shown");
  check(page.url() === url, `the address bar holds the bare page (${page.url()})`);
  const api = (path, method = "GET", body) => fetch(`http://${addrs.control}${path}`, {
    method, body: body && JSON.stringify(body),
    headers: { Authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
  }).then(r => r.status === 204 ? {} : r.json());
  await typedLength(page, api);

  // Open for 30 minutes.
  await page.getByRole("button", { name: "30 min" }).click();
  await page.locator("#state.open").waitFor();
  const first = await page.locator("#countdown").textContent();
  check(/^(29:[0-5]\d|30:00)$/.test(first), `the countdown starts near 30:00 (${first})`);
  await page.waitForFunction(prev => document.getElementById("countdown").textContent !== prev, first, { timeout: 5000 });
  const later = await page.locator("#countdown").textContent();
  check(later < first || later.length < first.length, `the countdown counts down (${first} → ${later})`);
  check(await page.locator("#once").isHidden(), "no \"Let the next visitor in\" while the window lets everyone in");
  const until = await page.locator("#until").textContent();
  const opened = await api("/api/status");
  check(until.replace(/\s+/g, " ") === `until ${phoneTime(opened.open_until)}`, `the end in the phone's format: ${until}`);
  log(`window open, countdown ${first} → ${later}, ${until}`);

  // A call from the intercom, as Twilio would send it.
  const resp = await fetch(`http://${addrs.webhook}/voice`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ CallSid: "CAbrowser", From: INTERCOM, To: "+15550001111" }),
    signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
  });
  const twiml = await resp.text();
  check(resp.status === 200 && twiml.includes("<Play digits="), `the call is let in: ${twiml}`);

  // The page refreshes its history on its own.
  const letIn = page.locator("#events li", { hasText: "Let a visitor in" });
  await letIn.first().waitFor();
  check(!(await page.locator("#history-title").isHidden()), "the history has its heading");
  const items = await page.locator("#events li").allTextContents();
  log(`history: ${JSON.stringify(items)}`);
  check(items[0].includes("Let a visitor in") && items[1].includes("Window opened for 30m by Test phone"), "newest first");

  // The time shown is the phone's, not the server's (UTC).
  const events = await (await fetch(`http://${addrs.control}/api/events?limit=1`, {
    headers: { Authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
  })).json();
  const shown = (await letIn.first().locator("time").textContent()).replace(/\s+/g, " ");
  const expected = phoneTime(events.events[0].time, { weekday: "short", ...HOUR_MINUTE });
  check(shown === expected, `the call's time (${shown}) is ${PHONE_TZ} time ${expected}`);

  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, "control-page.png"), fullPage: true });

  // Close.
  await page.getByRole("button", { name: "Close now" }).click();
  await page.locator("#state.closed").waitFor();
  check((await page.locator("#countdown").textContent()) === "", "no countdown once closed");
  await page.locator("#events li", { hasText: "Window closed by Test phone" }).first().waitFor();
  await page.screenshot({ path: join(ARTIFACTS, "control-page-closed.png"), fullPage: true });

  // The command line on the server's own machine, in the server's words.
  for (const args of [["open", "5m"], ["close"]]) {
    execFileSync(BIN, [...args, "--config", configPath], { encoding: "utf8", timeout: STEP_TIMEOUT_MS });
  }
  await page.locator("#events li", { hasText: "Window closed from the command line on the Pi" }).first().waitFor();
  const history = (await page.locator("#events").textContent());
  check(history.includes("Window opened for 5m from the command line on the Pi") && !history.includes("CLI"), `the history says where: ${history}`);

  await guestCodes(page, context, { url, addrs, token, configPath });
  await household(page, { api, configPath });
  check(pageErrors.length === 0, `no errors in the page: ${pageErrors.join("; ")}`);

  // A state disk that takes no writes (a directory where the temp file goes): opening
  // fails with the cause, nothing opens, and the banner says what is wrong until fixed.
  check(await page.locator("#storage").isHidden(), "no storage banner while the disk works");
  const obstruction = join(dir, "state", ".state.json.tmp");
  mkdirSync(join(obstruction, "x"), { recursive: true });
  await page.getByRole("button", { name: "30 min" }).click();
  await page.locator("#storage").waitFor();
  const error = await page.locator("#error").textContent();
  check(error.includes("not opened") && error.includes("a directory is in the way"), `the open error says why: ${error}`);
  check((await page.locator("#storage-text").textContent()).includes(".state.json.tmp"), "the banner names the file");
  check(await page.locator("#state.closed").isVisible(), "still closed");
  await page.screenshot({ path: join(ARTIFACTS, "control-page-storage.png"), fullPage: true });
  rmSync(obstruction, { recursive: true });
  // The disk watcher retries every 5 s and the page refreshes every 5 s.
  await page.locator("#storage").waitFor({ state: "hidden" });

  // A bad NTP answer: the server's clock jumps six hours forward. The page says why
  // schedules, quiet hours and guest codes wait, near the door's state.
  check(await page.locator("#clock-doubt").isHidden(), "no clock line while the clock is trusted");
  writeFileSync(fakeClock + ".tmp", "+6h\n");
  renameSync(fakeClock + ".tmp", fakeClock);
  const doubt = page.locator("#clock-doubt", { hasText: "The clock jumped 6h forward at " });
  await doubt.waitFor();
  check((await doubt.textContent()).includes("schedules, quiet hours and guest codes wait"), await doubt.textContent());
  await page.screenshot({ path: join(ARTIFACTS, "control-page-clock.png"), fullPage: true });
  const unexpected = pageErrors.filter(e => !e.includes("503"));
  check(unexpected.length === 0, `no errors in the page but the refused open: ${unexpected.join("; ")}`);
  log(`ok; screenshots in ${ARTIFACTS}`);
}

/// Pairs the phone `page` is on, as a person does: the link `intercom pair` prints, then
/// the tap; the page then shows the door.
async function pair(page, configPath, name) {
  const printed = execFileSync(BIN, ["pair", name, "--config", configPath], { encoding: "utf8", timeout: STEP_TIMEOUT_MS });
  const link = printed.split("\n").map(l => l.trim()).find(l => l.startsWith("http://"));
  check(link && link.includes("/pair#c="), "intercom pair prints a pairing link");
  await page.goto(link);
  await page.getByRole("button", { name: "Pair this phone" }).click();
  await page.locator("#state.closed").waitFor();
}

/// Guest codes at phone size: create one for a day, copy it, see it on the server, delete it.
async function guestCodes(page, context, { url, addrs, token, configPath }) {
  const apiCodes = async () => (await (await fetch(`http://${addrs.control}/api/codes`, {
    headers: { Authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
  })).json()).codes;

  // More uses than the intercom allows: refused under the form, nothing made.
  await page.getByLabel("uses").fill("25");
  await page.getByRole("button", { name: "Create code" }).click();
  check((await page.locator("#code-error").textContent()) === "Pick 1 to 20 uses.", "too many uses, in words");
  await rightUnder(page, "#code-form", "#code-error");
  check((await apiCodes()).length === 0, "no code made");
  await page.getByLabel("uses").fill("1");

  await page.getByLabel("label").fill("plumber");
  await page.getByRole("button", { name: "1 day" }).click();
  await page.getByRole("button", { name: "Create code" }).click();
  const item = page.locator("#codes li", { hasText: "plumber" });
  await item.waitFor();
  const digits = (await item.locator(".digits").textContent()).trim();
  check(/^\d{6}$/.test(digits), `six digits shown (${digits})`);
  const about = await item.locator(".about").textContent();
  check(/plumber · (23 h 59 min|1 d 0 h) left · 1 use left/.test(about), `time and uses left shown: ${about}`);
  const onServer = await apiCodes();
  check(onServer.length === 1 && onServer[0].code === digits && onServer[0].uses_left === 1, `the server has it: ${JSON.stringify(onServer.map(c => c.label))}`);
  check(Math.abs(onServer[0].remaining_seconds - 86400) < 60, "valid for a day");

  await item.getByRole("button", { name: "Copy" }).click();
  await page.locator("#code-note", { hasText: "Copied" }).waitFor();
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  check(copied.includes(digits) && copied.includes("once"), `the clipboard holds the code and how to use it: ${copied.replace(digits, "######")}`);
  await page.screenshot({ path: join(ARTIFACTS, "control-page-codes.png"), fullPage: true });

  await item.getByRole("button", { name: "Delete the code for plumber" }).click();
  await item.waitFor({ state: "detached" });
  check((await apiCodes()).length === 0, "deleted on the server");
  log(`guest code created, copied and deleted`);

  // A phone with the Web Share API gets "Share" and the share sheet.
  const sharing = await context.browser().newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  await sharing.addInitScript(() => { navigator.share = async data => { window.sharedWith = data; }; });
  const phone = await sharing.newPage();
  phone.setDefaultTimeout(STEP_TIMEOUT_MS);
  await phone.goto(url);
  await pair(phone, configPath, "Sharing phone");
  await phone.getByRole("button", { name: "1 week" }).click();
  await phone.getByRole("button", { name: "Create code" }).click();
  const shared = phone.locator("#codes li", { hasText: "guest" });
  await shared.getByRole("button", { name: "Share" }).click();
  await phone.waitForFunction(() => window.sharedWith !== undefined);
  const data = await phone.evaluate(() => window.sharedWith);
  const code = (await shared.locator(".digits").textContent()).trim();
  check(data.text.includes(code), "the share sheet gets the code");
  check(/6 d 23 h|7 d 0 h/.test(await shared.locator(".about").textContent()), "a week");

  // Five wrong codes from five calls lock the codes: the page says why the listed code
  // does not work (within its 5 s refresh).
  const wrong = code === "100000" ? "100001" : "100000";
  for (let n = 0; n < 5; n++) {
    const body = new URLSearchParams({ CallSid: `CAbrowserwrong${"abcde"[n]}`, From: INTERCOM, Digits: wrong });
    const r = await fetch(`http://${addrs.webhook}/voice/code`, { method: "POST", body, signal: AbortSignal.timeout(STEP_TIMEOUT_MS) });
    check(r.status === 200, `wrong code ${n} answered`);
  }
  const paused = phone.locator("#codes-paused", { hasText: "locked after 5 wrong codes" });
  await paused.waitFor({ timeout: 15000 });
  check(await paused.isVisible(), "the page says why codes do not work");
  await phone.screenshot({ path: join(ARTIFACTS, "control-page-codes-paused.png"), fullPage: true });
  log(`locked codes shown as paused`);
  await sharing.close();
}

/// `el` sits right under `above` on the screen: an error next to the control that caused it.
async function rightUnder(page, above, el) {
  const [a, b] = [await page.locator(above).boundingBox(), await page.locator(el).boundingBox()];
  check(a && b && b.y >= a.y + a.height && b.y - (a.y + a.height) < 40, `${el} is right under ${above}: ${JSON.stringify([a, b])}`);
}

/// What an error must never show: JSON, a field name, an HTTP status.
function inWords(text, what) {
  check(text && !/[{}"]|\bminutes:|\b[45]\d\d\b|send |label:/.test(text), `${what} in words: ${text}`);
}

/// The length box: the page reads lengths as the command line does (the cases of
/// `util::time::parse_human`'s own test, read from src/util/time.rs), shows what it will do
/// before it opens, and refuses the rest in words next to the box, asking nothing.
async function typedLength(page, api) {
  const source = readFileSync(join(repo, "src/util/time.rs"), "utf8");
  const table = source.slice(source.indexOf("fn lengths_read_and_print_as_people_write_them"));
  const good = [...table.matchAll(/\("([^"]*)", ([\d_]+)\),/g)].map(m => [m[1], Number(m[2].replace(/_/g, ""))]);
  const bad = [.../for bad in \[([^\]]*)\]/.exec(table)[1].matchAll(/"([^"]*)"/g)].map(m => m[1]);
  check(good.length >= 10 && bad.length >= 5, `the cases of parse_human: ${good.length} good, ${bad.length} bad`);
  const wrong = await page.evaluate(([good, bad]) => [
    ...good.filter(([text, secs]) => parseHuman(text) !== secs),
    ...bad.filter(text => parseHuman(text) !== null),
  ], [good, bad]);
  check(wrong.length === 0, `the page reads lengths as util::time::parse_human does; not: ${JSON.stringify(wrong)}`);

  const box = page.getByLabel("how long");
  const go = page.locator("#custom-open");
  await box.fill("2h");
  check((await go.textContent()) === "Open for 2 hours", `what 2h means, before it opens: ${await go.textContent()}`);
  await page.screenshot({ path: join(ARTIFACTS, "control-page-length.png"), fullPage: true });
  await go.click();
  await page.locator("#state.open").waitFor();
  const status = await api("/api/status");
  check(status.open && status.remaining_seconds > 119 * 60 && status.remaining_seconds <= 120 * 60, `open for 2 hours: ${status.remaining_seconds} s`);
  check((await box.inputValue()) === "" && (await go.textContent()) === "Open for…", "the box is emptied once opened");
  await page.getByRole("button", { name: "Close now" }).click();
  await page.locator("#state.closed").waitFor();

  // Refused in words, next to the box, and nothing asked of the intercom.
  check(status.max_window_minutes === 720, `the status says the longest window: ${status.max_window_minutes}`);
  for (const [typed, says] of [["", "Type how long"], ["2x", "\"2x\" is not a length of time"], ["90s", "Pick whole minutes"], ["13h", "Pick up to 12 hours."]]) {
    await box.fill(typed);
    await box.press("Enter");
    const error = await page.locator("#error").textContent();
    check(error.startsWith(says), `${typed} is refused: ${error}`);
    check((await box.getAttribute("aria-invalid")) === "true", `${typed}: the box is marked`);
    if (typed === "13h") await page.screenshot({ path: join(ARTIFACTS, "control-page-length-refused.png"), fullPage: true });
  }
  await rightUnder(page, "#custom", "#error");
  check(!(await api("/api/status")).open, "nothing opened");
  await box.fill("");
  check((await page.locator("#error").textContent()) === "", "typing again clears the refusal");

  // A window the intercom refuses although the page let it through (its limit changed
  // since the page asked): the household's words, never the API's.
  await page.evaluate(() => open(100000));
  const refusal = await page.locator("#error").textContent();
  check(refusal === "The door was not opened: pick up to 12 hours.", `the intercom's refusal in words: ${refusal}`);
  inWords(refusal, "the refusal");
  forgive(400);
  await box.fill("");
  log("typed lengths: 2h opens for 2 hours; 13h, 2x, 90s refused in words");
}

/// "Let the next visitor in" and a schedule, at phone size, checked on the server.
async function household(page, { api, configPath }) {
  await page.getByRole("button", { name: "Let the next visitor in" }).click();
  await page.locator("#headline", { hasText: "Open for the next visitor only" }).waitFor();
  const status = await api("/api/status");
  check(status.open && status.once, `the server holds a one-shot window: ${JSON.stringify(status)}`);
  check(status.remaining_seconds > 29 * 60 && status.remaining_seconds <= 30 * 60, "within 30 minutes");
  check(await page.locator("#once").isHidden(), "no second \"Let the next visitor in\" while one waits");
  await page.getByRole("button", { name: "Close now" }).click();
  await page.locator("#state.closed").waitFor();
  check(await page.locator("#once").isVisible(), "\"Let the next visitor in\" is back once closed");

  // The form: from and to labelled, wide enough for "06:00 PM" at 390 px.
  await page.getByLabel("what the schedule is for").fill("deliveries");
  await page.getByLabel("days").selectOption("mon-fri");
  await page.getByLabel("From", { exact: true }).fill("08:00");
  await page.getByLabel("To", { exact: true }).fill("08:00");
  await page.getByRole("button", { name: "Add schedule" }).click();
  check((await page.locator("#sched-error").textContent()) === "Pick an end time other than the start time.", "from = to is refused in words");
  await rightUnder(page, "#sched-form", "#sched-error");
  await page.getByLabel("To", { exact: true }).fill("18:00");
  const widths = await page.evaluate(() => ["sched-from", "sched-to"].map(id => {
    // The width the browser gives a time box of this style on its own: room for its text.
    const box = document.getElementById(id), probe = box.cloneNode();
    probe.style.width = "auto";
    box.parentElement.append(probe);
    const sizes = [box.getBoundingClientRect().width, probe.getBoundingClientRect().width];
    probe.remove();
    return sizes;
  }));
  check(widths.every(([has, needs]) => has >= needs), `the time boxes have room for their text: ${JSON.stringify(widths)}`);
  await page.getByRole("button", { name: "Add schedule" }).click();
  const item = page.locator("#schedules li", { hasText: "deliveries" });
  await item.waitFor();
  check((await page.locator("#sched-error").textContent()) === "", "the error goes once it is added");
  // A time of day on the intercom's clock, as the phone writes it.
  const wall = hhmm => new Date(`2026-01-01T${hhmm}:00Z`).toLocaleTimeString("en-US", { timeZone: "UTC", ...HOUR_MINUTE }).replace(/\s+/g, " ");
  const line = (await item.textContent()).replace(/\s+/g, " ");
  check(line.includes(`Mon–Fri ${wall("08:00")} – ${wall("18:00")}`), `the schedule is listed in the phone's format: ${line}`);
  check((await page.locator("#sched-about").textContent()).includes("Local time"), "the page shows the server's clock");
  let listed = (await api("/api/schedules")).schedules;
  check(listed.length === 1 && listed[0].from === "08:00" && listed[0].to === "18:00" && listed[0].days === "mon-fri", "the server has it");
  await item.getByRole("button", { name: "Pause" }).click();
  await item.getByRole("button", { name: "Resume" }).waitFor();
  check((await api("/api/schedules")).schedules[0].paused === true, "paused on the server");
  await page.screenshot({ path: join(ARTIFACTS, "control-page-schedules.png"), fullPage: true });
  await item.getByRole("button", { name: "Delete the schedule deliveries" }).click();
  await item.waitFor({ state: "detached" });
  listed = (await api("/api/schedules")).schedules;
  check(listed.length === 0, "deleted on the server");

  // A schedule that opens the door all day: the door panel says so, and offers to pause
  // it (closing is for the window).
  execFileSync(BIN, ["schedule", "add", "daily", "00:00-24:00", "--label", "all day", "--config", configPath], { encoding: "utf8", timeout: STEP_TIMEOUT_MS });
  await page.locator("#headline", { hasText: "Open by schedule: all day" }).waitFor();
  const pause = page.getByRole("button", { name: "Pause this schedule" });
  check(await pause.isEnabled(), "the schedule can be paused from the door panel");
  check(await page.locator("#close").isHidden() && await page.locator("#once").isHidden(), "no close, no next visitor while the schedule lets everyone in");
  const until = (await page.locator("#until").textContent()).replace(/\s+/g, " ");
  const open = (await api("/api/status")).schedule;
  check(until === `until ${phoneTime(open.open_until)}`, `the schedule's end in the phone's format: ${until}`);
  await page.screenshot({ path: join(ARTIFACTS, "control-page-schedule-open.png"), fullPage: true });

  // The server stops answering (stopped, not gone): the page says what it last knew,
  // the schedule included.
  server.kill("SIGSTOP");
  try {
    await page.locator("#headline", { hasText: "Can't reach the intercom" }).waitFor({ timeout: STEP_TIMEOUT_MS });
    const lastKnown = (await page.locator("#until").textContent()).replace(/\s+/g, " ");
    check(lastKnown.includes(`open by the schedule “all day” until ${phoneTime(open.open_until)}`), `the last-known sentence has the schedule: ${lastKnown}`);
    check(!lastKnown.includes("closed"), lastKnown);
    check(await pause.isDisabled(), "nothing to press while the state is unknown");
    await page.screenshot({ path: join(ARTIFACTS, "control-page-offline-schedule.png"), fullPage: true });
  } finally {
    server.kill("SIGCONT");
  }
  await pause.waitFor();
  await page.waitForFunction(() => !document.getElementById("pause-schedule").disabled);
  await pause.click();
  await page.locator("#state.closed").waitFor();
  listed = (await api("/api/schedules")).schedules;
  check(listed.length === 1 && listed[0].paused, "paused on the server");
  check(await page.locator("#close").isVisible(), "Close now is back");

  // The 21st schedule: the intercom's sentence, under the form, not at the top.
  for (let n = 1; n < 20; n++) {
    await api("/api/schedules", "POST", { label: `s${n}`, days: "sun", from: "10:00", to: "11:00" });
  }
  await page.getByLabel("what the schedule is for").fill("one too many");
  await page.getByRole("button", { name: "Add schedule" }).click();
  const full = page.locator("#sched-error", { hasText: "there are already 20 schedules" });
  await full.waitFor();
  inWords(await full.textContent(), "the schedule's refusal");
  await rightUnder(page, "#sched-form", "#sched-error");
  check((await page.locator("#error").textContent()) === "", "nothing at the top");
  await page.screenshot({ path: join(ARTIFACTS, "control-page-schedule-error.png"), fullPage: true });
  forgive(409);
  for (const s of (await api("/api/schedules")).schedules) await api(`/api/schedules/${s.id}`, "DELETE");
  check((await api("/api/schedules")).schedules.length === 0, "all deleted");
  log("one-shot window opened and closed; schedule added, paused and deleted; an open schedule paused from the door panel");
}

main().then(async () => { await cleanup(); process.exit(0); }, fail);
