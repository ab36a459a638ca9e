// Interop runner for the JavaScript peers: starts our wisp-server (and, for our wasm client, the
// peer servers), loopback targets and a small site, then runs the cases in node and in headless
// Chromium (playwright-core driving Debian's /usr/bin/chromium), writes the results to a JSON
// file and ends with `interop: N passed, N failed`.
//
// Usage: node js/run.mjs   (from interop/; scripts/test-interop.sh sets the environment)
//   WISP_SERVER_BIN   our wisp-server binary (required)
//   WISP_WASM_PKG     directory of our wasm package built with `wasm-pack build --target web`
//                     (the wasm-client cases are skipped without it)
//   INTEROP_RESULTS   where to write the results (default results/js.json)
//   INTEROP_ONLY      comma-separated case names to run (default: all)
//   CHROMIUM          the browser binary (default /usr/bin/chromium)
// Everything binds 127.0.0.1 port 0; every child runs in its own process group and is killed on
// exit; the whole run is bounded by INTEROP_DEADLINE_S (default 600).
import { spawn } from "node:child_process";
import { createReadStream, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import dgram from "node:dgram";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import { pattern } from "./cases/util.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const INTEROP = path.resolve(HERE, "..");
const NM = path.join(INTEROP, "node_modules");
const ONLY = process.env.INTEROP_ONLY ? process.env.INTEROP_ONLY.split(",") : null;
const DEADLINE_S = Number(process.env.INTEROP_DEADLINE_S || 600);
const MOTD = "hello from wisp-server";
const BLOCKED_HOST = "blocked.test";
const SOURCE_LEN = 3 * 1024 * 1024 + 17;
const SOURCE_SEED = 7;

const version = (pkgDir) => JSON.parse(readFileSync(path.join(NM, pkgDir, "package.json"), "utf8")).version;
const PEERS = {
  wispJs: { name: "wisp-js", version: version("@mercuryworkshop/wisp-js") },
  wispServerNode: { name: "wisp-server-node", version: version("wisp-server-node") },
  wispPython: { name: "wisp-python", version: readFileSync(path.join(INTEROP, "requirements.txt"), "utf8").match(/wisp-python==(\S+)/)[1] },
  epoxy1: { name: "epoxy-tls", version: version("epoxy-tls-1") },
  epoxy2: { name: "epoxy-tls", version: version("epoxy-tls-2") },
  libcurl: { name: "libcurl.js", version: version("libcurl.js") },
};
const OURS_SERVER = { name: "wisp-server (ours)", version: "workspace" };
const OURS_WASM = { name: "wisp-wasm (ours)", version: "workspace" };

// ------------------------------------------------------------------ process bookkeeping

const children = [];
const tmp = mkdtempSync(path.join(os.tmpdir(), "wisp-interop-"));
let browser = null;

function killAll() {
  for (const child of children) {
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {}
  }
  children.length = 0;
}
async function shutdown(code) {
  if (browser) await Promise.race([browser.close().catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
  killAll();
  rmSync(tmp, { recursive: true, force: true });
  process.exit(code);
}
process.on("SIGINT", () => shutdown(130));
process.on("SIGTERM", () => shutdown(143));
process.on("exit", killAll);
setTimeout(() => {
  console.error(`interop: the run exceeded ${DEADLINE_S} s`);
  console.log("interop: 0 passed, 1 failed");
  shutdown(1);
}, DEADLINE_S * 1000).unref();

/** Spawns a child in its own process group; resolves with the first stdout/stderr line matching `re`. */
function start(name, cmd, args, re, opts = {}) {
  const child = spawn(cmd, args, { detached: true, stdio: ["ignore", "pipe", "pipe"], ...opts });
  children.push(child);
  const log = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start:\n${log.join("\n")}`)), 30000);
    const onLine = (line) => {
      if (log.length < 200) log.push(line);
      if (process.env.INTEROP_VERBOSE) console.error(`[${name}] ${line}`);
      const m = line.match(re);
      if (m) {
        clearTimeout(timer);
        resolve({ child, match: m, log });
      }
    };
    readline.createInterface({ input: child.stdout }).on("line", onLine);
    readline.createInterface({ input: child.stderr }).on("line", onLine);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code}):\n${log.join("\n")}`));
    });
  });
}

async function ourServer(name, extraWisp = "", extraLimits = "") {
  const config = path.join(tmp, `${name}.toml`);
  writeFileSync(
    config,
    `[server]\nbind = "127.0.0.1:0"\n\n[wisp]\nmotd = "${MOTD}"\n${extraWisp}\n\n[policy]\nallow_loopback = true\nblock_hosts = ["${BLOCKED_HOST}"]\n\n` +
      `[limits]\nmax_connections_per_ip = 512\nmax_streams_per_connection = 512\n${extraLimits}\n`,
  );
  const { match } = await start(name, process.env.WISP_SERVER_BIN, ["--config", config], /listening.*addr=127\.0\.0\.1:(\d+)/, {
    env: { ...process.env, NO_COLOR: "1", RUST_LOG: process.env.WISP_SERVER_LOG || "warn,wisp_server=info" },
  });
  return `ws://127.0.0.1:${match[1]}/`;
}

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function peerServers() {
  const wispJs = start("wisp-js server", "node", [path.join(INTEROP, "peers/wisp-js-server.mjs"), "2", "hello from wisp-js"], /^(ws:\S+)/, { cwd: INTEROP });
  const wsn = start("wisp-server-node", "node", [path.join(INTEROP, "peers/wisp-server-node.cjs")], /^(ws:\S+)/, { cwd: INTEROP });
  const pyPort = await freePort();
  const py = start(
    "wisp-python",
    path.join(INTEROP, ".venv/bin/python"),
    ["-m", "wisp.server", "--host", "127.0.0.1", "--port", String(pyPort), "--allow-loopback", "--allow-private", "--threads", "1", "--log-level", "info"],
    /./,
  );
  const [a, b] = await Promise.all([wispJs, wsn, py]);
  for (let i = 0; i < 200; i++) {
    const up = await new Promise((r) => {
      const s = net.connect(pyPort, "127.0.0.1", () => (s.destroy(), r(true))).on("error", () => r(false));
    });
    if (up) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return { wispJs: a.match[1], wispServerNode: b.match[1], wispPython: `ws://127.0.0.1:${pyPort}/` };
}

// ------------------------------------------------------------------ loopback targets

function listen(server) {
  return new Promise((r) => server.listen(0, "127.0.0.1", () => r(server.address().port)));
}

async function targets() {
  const echoPort = await listen(net.createServer((s) => s.on("error", () => {}).pipe(s)));
  const source = pattern(SOURCE_SEED, SOURCE_LEN);
  const sourcePort = await listen(net.createServer((s) => s.on("error", () => {}).end(source)));
  const watch = { accepted: 0, closed: 0 };
  const watchPort = await listen(
    net.createServer((s) => {
      watch.accepted++;
      s.on("error", () => {});
      s.on("close", () => watch.closed++);
      s.pipe(s);
    }),
  );
  const udp = dgram.createSocket("udp4");
  udp.on("message", (msg, from) => udp.send(msg, from.port, from.address));
  const udpPort = await new Promise((r) => udp.bind(0, "127.0.0.1", () => r(udp.address().port)));
  const refusedPort = await freePort();
  return { echoPort, sourcePort, sourceSeed: SOURCE_SEED, sourceLen: SOURCE_LEN, watchPort, watch, udpPort, refusedPort };
}

// The site: serves the cases and the peers' browser builds to the page, the control endpoint the
// cases read, and, reached *through Wisp* by the HTTP clients (libcurl.js, epoxy), /echo (the
// request body back) and /bytes (a fixed pattern).
const TYPES = { ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".html": "text/html", ".json": "application/json" };
function site(env, roots) {
  return http.createServer((req, res) => {
    const url = new URL(req.url, "http://x");
    if (url.pathname === "/echo") {
      const chunks = [];
      req.on("data", (c) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks);
        res.writeHead(200, { "content-type": "application/octet-stream", "content-length": body.length, "x-got-bytes": String(body.length) });
        res.end(body);
      });
      return;
    }
    if (url.pathname === "/bytes") {
      const n = Number(url.searchParams.get("n") || 1024);
      const body = pattern(Number(url.searchParams.get("seed") || 1), n);
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": n });
      res.end(body);
      return;
    }
    if (url.pathname === "/control/watch") {
      res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" });
      res.end(JSON.stringify(env.watch));
      return;
    }
    if (url.pathname === "/" || url.pathname === "/index.html") {
      res.writeHead(200, { "content-type": "text/html" });
      res.end('<!doctype html><meta charset="utf-8"><title>wisp interop</title><pre id="out">ready</pre>');
      return;
    }
    const [, root, ...rest] = url.pathname.split("/");
    const base = roots[root];
    const file = base && path.resolve(base, ...rest);
    if (!file || !file.startsWith(base) || !statSync(file, { throwIfNoEntry: false })?.isFile()) {
      res.writeHead(404);
      res.end();
      return;
    }
    res.writeHead(200, { "content-type": TYPES[path.extname(file)] || "application/octet-stream", "cache-control": "no-store" });
    createReadStream(file).pipe(res);
  });
}

// ------------------------------------------------------------------ running cases

const entries = [];
function record(meta, results) {
  for (const r of results) entries.push({ ...meta, ...r });
}

function caseLog(label) {
  return (line) => console.log(`  [${label}] ${line}`);
}

async function runInPage(label, pageUrl, caseModule, libModule, env, timeoutMs = 180000) {
  const page = await browser.newPage();
  page.on("console", (m) => {
    if (process.env.INTEROP_VERBOSE || m.type() === "error") console.log(`  [${label} console.${m.type()}] ${m.text()}`);
  });
  page.on("pageerror", (e) => console.log(`  [${label} pageerror] ${e.message}`));
  await page.exposeFunction("__interopLog", caseLog(label));
  try {
    await page.goto(pageUrl);
    return await page.evaluate(
      async ({ caseModule, libModule, env, timeoutMs }) => {
        const timer = new Promise((_, reject) => setTimeout(() => reject(new Error(`case did not finish in ${timeoutMs} ms`)), timeoutMs));
        const m = await import(caseModule);
        const lib = libModule ? await import(libModule) : null;
        return Promise.race([m.run(lib, env, (l) => window.__interopLog(l)), timer]);
      },
      { caseModule, libModule, env, timeoutMs },
    );
  } catch (e) {
    return [{ feature: "case ran to completion", ok: false, detail: String(e.message || e).split("\n")[0] }];
  } finally {
    await page.close().catch(() => {});
  }
}

const want = (name) => !ONLY || ONLY.includes(name);

async function main() {
  if (!process.env.WISP_SERVER_BIN) throw new Error("WISP_SERVER_BIN is not set");
  const env0 = await targets();
  const ours = await ourServer("ours");
  const oursV1 = await ourServer("ours-v1", "v2 = false");
  // The legacy v2 order for browsers too, where epoxy-tls 1.5 breaks (interop/README.md, peer bug 2).
  const oursLegacy = await ourServer("ours-legacy", "legacy_order_for_browsers = true");
  // For clients that send whole request bodies as one DATA packet (epoxy's fetch).
  const oursBig = await ourServer("ours-big", "", "max_message_size = 4194304");
  const roots = {
    cases: path.join(HERE, "cases"),
    "wisp-js": path.join(NM, "@mercuryworkshop/wisp-js/dist"),
    epoxy1: path.join(NM, "epoxy-tls-1/pkg"),
    epoxy2: path.join(NM, "epoxy-tls-2/full"),
    libcurl: path.join(NM, "libcurl.js"),
  };
  if (process.env.WISP_WASM_PKG) roots.wasm = path.resolve(process.env.WISP_WASM_PKG);
  const siteServer = site(env0, roots);
  const sitePort = await listen(siteServer);
  const origin = `http://127.0.0.1:${sitePort}`;
  const env = {
    ...env0,
    watch: undefined,
    wsUrl: ours,
    v1OnlyUrl: oursV1,
    legacyOrderUrl: oursLegacy,
    bigMessageUrl: oursBig,
    motd: MOTD,
    blockedHost: BLOCKED_HOST,
    controlBase: `${origin}/control`,
    sitePort,
  };
  console.log(`== our wisp-server ${ours} (v1-only instance ${oursV1}); site ${origin}`);

  // 1. wisp-js client in node.
  if (want("wisp-js-node")) {
    console.log(`== wisp-js ${PEERS.wispJs.version} client in node -> our wisp-server`);
    const lib = await import("@mercuryworkshop/wisp-js/client");
    const { run } = await import("./cases/wisp-js-client.mjs");
    record({ client: PEERS.wispJs.name, clientVersion: PEERS.wispJs.version, server: OURS_SERVER.name, serverVersion: OURS_SERVER.version, runtime: "node " + process.version },
      await run(lib, env, caseLog("wisp-js node")));
  }

  const browserCases = [];
  if (want("wisp-js-browser"))
    browserCases.push(["wisp-js-browser", PEERS.wispJs, OURS_SERVER, "/cases/wisp-js-client.mjs", "/wisp-js/wisp-client.mjs", env]);
  if (want("epoxy1")) browserCases.push(["epoxy1", PEERS.epoxy1, OURS_SERVER, "/cases/epoxy1.mjs", null, env]);
  if (want("epoxy2")) browserCases.push(["epoxy2", PEERS.epoxy2, OURS_SERVER, "/cases/epoxy2.mjs", null, env]);
  if (want("libcurl")) browserCases.push(["libcurl", PEERS.libcurl, OURS_SERVER, "/cases/libcurl.mjs", null, env]);
  if (roots.wasm && (want("wasm-vs-peers"))) {
    const peers = await peerServers();
    console.log(`== peer servers: ${JSON.stringify(peers)}`);
    browserCases.push(["wasm-vs-wisp-js", OURS_WASM, PEERS.wispJs, "/cases/wasm-client.mjs", "/wasm/wisp_wasm.js", { ...env, peer: "wisp-js", wsUrl: peers.wispJs, peerMotd: "hello from wisp-js" }]);
    browserCases.push(["wasm-vs-wisp-server-node", OURS_WASM, PEERS.wispServerNode, "/cases/wasm-client.mjs", "/wasm/wisp_wasm.js", { ...env, peer: "wisp-server-node", wsUrl: peers.wispServerNode }]);
    browserCases.push(["wasm-vs-wisp-python", OURS_WASM, PEERS.wispPython, "/cases/wasm-client.mjs", "/wasm/wisp_wasm.js", { ...env, peer: "wisp-python", wsUrl: peers.wispPython }]);
  }

  if (browserCases.length) {
    const { chromium } = await import("playwright-core");
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    const chromiumVersion = "chromium " + browser.version();
    for (const [label, client, server, caseModule, libModule, caseEnv] of browserCases) {
      console.log(`== ${client.name} ${client.version} in ${chromiumVersion} -> ${server.name} ${server.version}`);
      const results = await runInPage(label, `${origin}/`, caseModule, libModule, caseEnv);
      record({ client: client.name, clientVersion: client.version, server: server.name, serverVersion: server.version, runtime: chromiumVersion }, results);
    }
  }

  const out = process.env.INTEROP_RESULTS || path.join(INTEROP, "results", "js.json");
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ generated: new Date().toISOString(), source: "js/run.mjs", entries }, null, 2) + "\n");
  const passed = entries.filter((e) => e.ok).length;
  const failed = entries.length - passed;
  for (const e of entries.filter((e) => !e.ok)) console.log(`FAILED: ${e.client} ${e.clientVersion} -> ${e.server} ${e.serverVersion} (${e.runtime}): ${e.feature}: ${e.detail}`);
  console.log(`results: ${out}`);
  console.log(`interop: ${passed} passed, ${failed} failed`);
  await shutdown(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  console.log("interop: 0 passed, 1 failed");
  shutdown(1);
});
