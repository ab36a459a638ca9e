// End-to-end tests of the demo page in headless Chromium (playwright-core, Debian's chromium).
// Started by scripts/test-e2e.sh, which starts wisp-server (www/demo.toml, static dir www/) and
// the demo targets on port-0 ports and passes:
//
//   E2E_URL          the page URL, with the targets' ports in the query string
//   E2E_TARGETS      the targets' ports as JSON ({echo, chargen, discard, udp, refused})
//   E2E_SCREENSHOT   where to save the screenshot (default www/tests/output/screenshot.png;
//                    copy it over www/screenshot.png to refresh the README picture)
//   CHROMIUM         the browser (default /usr/bin/chromium)
//
// Every check has its own timeout; the last line is `e2e: N passed, N failed`. Throughput is
// read from the DOM once, at the end of the run: nothing here records network traffic.

import { chromium } from "playwright-core";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const WWW = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const url = process.env.E2E_URL;
const targets = JSON.parse(process.env.E2E_TARGETS || "{}");
const OUTPUT = path.join(WWW, "tests", "output");
fs.mkdirSync(OUTPUT, { recursive: true });
const screenshot = process.env.E2E_SCREENSHOT || path.join(OUTPUT, "screenshot.png");
const phoneShot = process.env.E2E_PHONE_SCREENSHOT || path.join(OUTPUT, "screenshot-phone.png");
if (!url) {
  console.error("E2E_URL is not set (run scripts/test-e2e.sh)");
  process.exit(2);
}

let passed = 0;
let failed = 0;
const T = 20000;

class CheckError extends Error {}
function expect(cond, message) {
  if (!cond) throw new CheckError(message);
}

// Checks that need a live connection fail at once when the first check could not connect.
let connected = false;
async function check(name, fn, { needsConnection = true } = {}) {
  const start = Date.now();
  try {
    if (needsConnection && !connected) throw new CheckError("skipped: the page is not connected");
    await fn();
    passed++;
    console.log(`ok   ${name} (${Date.now() - start} ms)`);
  } catch (e) {
    failed++;
    const msg = e && e.message ? e.message.split("\n")[0] : String(e);
    console.log(`FAIL ${name} (${Date.now() - start} ms): ${msg}`);
  }
}

// The MOTD configured in www/demo.toml, which the page must show.
const demoToml = fs.readFileSync(path.join(WWW, "demo.toml"), "utf8");
const expectedMotd = /^motd\s*=\s*"(.*)"/m.exec(demoToml)?.[1];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const pageErrors = [];
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: "light" });
  const page = await context.newPage();
  page.setDefaultTimeout(T);
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  page.on("console", (m) => {
    if (m.type() === "error") console.log(`[page console] ${m.text()}`);
  });

  const text = (sel) => page.locator(sel).innerText();

  await check("page loads and connects (version, extensions, MOTD shown)", async () => {
    await page.goto(url);
    await page.waitForFunction(
      () => ["connected", "failed"].includes(document.getElementById("conn-state").dataset.state),
      null,
      { timeout: T },
    );
    const state = await page.getAttribute("#conn-state", "data-state");
    expect(state === "connected", `not connected: ${await text("#conn-error")}`);
    connected = true;
    const version = await text("#conn-version");
    expect(/^Wisp 2\.0\b/.test(version), `version shown is "${version}", expected Wisp 2.0`);
    const ids = await page.$$eval("#conn-extensions .tag", (els) => els.map((e) => Number(e.dataset.id)));
    for (const [id, name] of [
      [0x01, "UDP"],
      [0x04, "MOTD"],
      [0x05, "stream confirmation"],
    ]) {
      expect(ids.includes(id), `extension ${name} (${id}) not shown; shown: ${JSON.stringify(ids)}`);
    }
    const motd = await text("#conn-motd");
    expect(expectedMotd && motd === expectedMotd, `MOTD shown is "${motd}", expected "${expectedMotd}"`);
    expect((await text("#conn-pill")) === "connected", "the header pill does not say connected");
  }, { needsConnection: false });

  await check("TCP echo target echoes text", async () => {
    await page.click("#tcp-preset-echo");
    await page.waitForFunction(
      () =>
        document.getElementById("tcp-output").textContent.includes("Hello, echo!") ||
        document.getElementById("tcp-state").dataset.state === "error",
      null,
      { timeout: T },
    );
    expect(!(await page.locator("#tcp-error").isVisible()), await text("#tcp-error"));
    const out = await page.locator("#tcp-output").textContent();
    expect(out === "Hello, echo!\r\n", `echo output is ${JSON.stringify(out)}`);
    expect((await page.getAttribute("#tcp-state", "data-state")) === "open", "the echo stream is not open");
  });

  await check("a refused port shows the close reason in words (0x44)", async () => {
    await page.click("#tcp-preset-refused");
    await page.waitForSelector('#tcp-state[data-state="error"]', { timeout: T });
    const err = await text("#tcp-error");
    expect(/connection refused/i.test(err) && err.includes("0x44"), `error shown is "${err}"`);
    expect(err.includes(String(targets.refused)), `error does not name the port ${targets.refused}: "${err}"`);
    expect(await page.locator("#tcp-error").isVisible(), "the error is not visible");
  });

  await check("TCP: HTTP GET to the demo server returns the page (status line and body)", async () => {
    await page.click("#tcp-preset-http");
    await page.waitForSelector('#tcp-state[data-state="closed"]', { timeout: T });
    const raw = await page.locator("#tcp-output").textContent();
    const headEnd = raw.indexOf("\r\n\r\n");
    expect(headEnd > 0, `no HTTP head in ${JSON.stringify(raw.slice(0, 200))}`);
    const head = raw.slice(0, headEnd).split("\r\n");
    expect(head[0] === "HTTP/1.1 200 OK", `status line is ${JSON.stringify(head[0])}`);
    const body = raw.slice(headEnd + 4);
    const file = fs.readFileSync(path.join(WWW, "index.html"), "utf8");
    expect(body === file, `body (${body.length} chars) differs from www/index.html (${file.length} chars)`);
    const len = head.find((h) => /^content-length:/i.test(h));
    expect(len && Number(len.split(":")[1]) === Buffer.byteLength(file), `wrong ${len}`);
    const ctype = head.find((h) => /^content-type:/i.test(h)) || "";
    expect(/text\/html/.test(ctype), `content type ${ctype}`);
    expect((await text("#tcp-http-status")) === "HTTP/1.1 200 OK", "the page does not show the status line");
  });

  await check("UDP datagram echoed by the UDP target", async () => {
    const token = `ping-${Math.random().toString(36).slice(2)}`;
    await page.fill("#udp-input", token);
    await page.click("#udp-send");
    await page.waitForFunction(
      (t) => [...document.querySelectorAll('#udp-log li[data-dir="received"]')].some((li) => li.textContent.includes(t)),
      token,
      { timeout: T },
    );
    expect((await text("#udp-sent")) === "1", "sent counter is not 1");
    expect((await text("#udp-received")) === "1", "received counter is not 1");
    // A second one on the same stream.
    await page.fill("#udp-input", "hello over UDP");
    await page.click("#udp-send");
    await page.waitForFunction(() => document.getElementById("udp-received").textContent === "2", null, { timeout: T });
  });

  await check("throughput test shows a final MiB/s figure > 0", async () => {
    await page.fill("#tp-duration", "2");
    await page.selectOption("#tp-direction", "download");
    await page.click("#tp-run");
    await page.waitForFunction(() => !document.getElementById("tp-run").disabled, null, { timeout: 30000 });
    expect(!(await page.locator("#tp-error").isVisible()), await text("#tp-error"));
    const mibps = Number(await page.getAttribute("#tp-result", "data-mibps"));
    const bytes = Number(await page.getAttribute("#tp-result", "data-bytes"));
    const shown = await text("#tp-result");
    expect(mibps > 0 && bytes > 0, `figure ${mibps} MiB/s, ${bytes} bytes`);
    expect(/^\d+(\.\d+)? MiB\/s$/.test(shown), `figure shown as "${shown}"`);
    const errorShown = await page.locator("#tp-error").isVisible();
    expect(!errorShown, `error shown: ${await text("#tp-error")}`);
    console.log(`     download through Wisp: ${shown} (${(bytes / 1048576).toFixed(1)} MiB)`);
  });

  await check("upload throughput test shows a figure > 0", async () => {
    await page.fill("#tp-duration", "1");
    await page.selectOption("#tp-direction", "upload");
    await page.click("#tp-run");
    await page.waitForFunction(() => !document.getElementById("tp-run").disabled, null, { timeout: 30000 });
    const mibps = Number(await page.getAttribute("#tp-result", "data-mibps"));
    expect(!(await page.locator("#tp-error").isVisible()), await text("#tp-error"));
    expect(mibps > 0, `upload figure ${mibps}`);
    console.log(`     upload through Wisp: ${await text("#tp-result")}`);
    // Leave the download result on screen for the screenshot.
    await page.fill("#tp-duration", "2");
    await page.selectOption("#tp-direction", "download");
    await page.click("#tp-run");
    await page.waitForFunction(() => !document.getElementById("tp-run").disabled, null, { timeout: 30000 });
  });

  await check("screenshot saved", async () => {
    await page.click("#tcp-preset-http");
    await page.waitForSelector('#tcp-state[data-state="closed"]', { timeout: T });
    await page.locator("#tcp-output").evaluate((el) => (el.scrollTop = 0));
    await page.screenshot({ path: screenshot, fullPage: true });
    expect(fs.statSync(screenshot).size > 10000, "screenshot is suspiciously small");
    console.log(`     ${path.relative(process.cwd(), screenshot)}`);
  });

  await check("fits a phone-sized screen (390 px, no sideways scrolling)", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(200);
    const { scroll, inner } = await page.evaluate(() => ({
      scroll: document.documentElement.scrollWidth,
      inner: window.innerWidth,
    }));
    expect(scroll <= inner, `page is ${scroll} px wide in a ${inner} px viewport`);
    const canvasW = await page.locator("#tp-chart").evaluate((c) => c.getBoundingClientRect().width);
    expect(canvasW > 200 && canvasW <= inner, `chart is ${canvasW} px wide`);
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: phoneShot, fullPage: false });
  }, { needsConnection: false });

  await check("disconnect shows the closed state", async () => {
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.click("#conn-disconnect");
    await page.waitForSelector('#conn-state[data-state="closed"]', { timeout: T });
    expect(await page.locator("#tcp-open").isDisabled(), "Open stays enabled after disconnect");
  });

  await check("no uncaught errors in the page", async () => {
    expect(pageErrors.length === 0, pageErrors.join("; "));
  }, { needsConnection: false });
} catch (e) {
  failed++;
  console.log(`FAIL e2e runner: ${e && e.stack ? e.stack : e}`);
} finally {
  await browser.close().catch(() => {});
}

console.log(`e2e: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
