// One browser benchmark case, chosen by the query string; the page reports to the bench's own
// HTTP server (POST /mark when measuring starts, POST /report with the figure), never through
// an automation API that would copy every frame.
//
// ?client=ceiling|ceiling-relay|ours|wisp-js|epoxy2|epoxy1|epoxy1-ws &dir=down|up &streams=N &ws=WISP_URL
// &ceiling=WS_URL &source=PORT &sink=PORT &warmup=S &duration=S
//
// A client that cannot do a case reports { ok: false, unsupported: REASON } at once.
const q = new URLSearchParams(location.search);
const client = q.get("client");
const dir = q.get("dir");
const streams = Number(q.get("streams") || 1);
const warmup = Number(q.get("warmup") || 1) * 1000;
const duration = Number(q.get("duration") || 4) * 1000;
const CHUNK = 60 * 1024; // fits one Wisp packet in a 64 KiB frame for every client
const HIGH_WATER = 4 << 20;
const out = document.getElementById("out");
let bytes = 0;
let stop = false;
let broken = null; // set by a client whose stream ended or failed before the window closed
const fail = (what) => (e) => { if (!stop && !broken) broken = `${what}: ${e && e.message || e}`; };

const post = (path, body) => fetch(path, { method: "POST", body: JSON.stringify(body) });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const chunk = new Uint8Array(CHUNK).map((_, i) => i % 251);

async function ceiling() {
  const ws = new WebSocket(q.get("ceiling") + (dir === "up" ? "up" : "down"));
  ws.binaryType = "arraybuffer";
  await new Promise((ok, err) => { ws.onopen = ok; ws.onerror = err; });
  if (dir === "down") {
    ws.onmessage = (e) => { bytes += e.data.byteLength; };
  } else {
    let sent = 0;
    const pump = () => {
      while (!stop && ws.bufferedAmount < HIGH_WATER) { ws.send(chunk); sent += CHUNK; }
      bytes = sent - ws.bufferedAmount;
      if (!stop) setTimeout(pump, 0);
    };
    pump();
  }
}

async function ours() {
  const mod = await import("/pkg/wisp_wasm.js");
  await mod.default();
  const c = await mod.WispClient.connect(q.get("ws"), { v2: true, udp: false });
  for (let i = 0; i < streams; i++) {
    const s = await c.openTcp("127.0.0.1", Number(dir === "down" ? q.get("source") : q.get("sink")));
    if (dir === "down") {
      (async () => {
        const r = s.readable.getReader();
        for (;;) { const { value, done } = await r.read(); if (done || stop) break; bytes += value.byteLength; }
      })();
    } else {
      (async () => {
        const w = s.writable.getWriter();
        while (!stop) { await w.write(chunk); bytes += CHUNK; }
      })();
    }
  }
}

async function wispJs() {
  const { client } = await import("/wisp-js/wisp-client.mjs");
  const conn = new client.ClientConnection(q.get("ws"));
  await new Promise((ok, err) => { conn.onopen = ok; conn.onerror = err; });
  for (let i = 0; i < streams; i++) {
    const s = conn.create_stream("127.0.0.1", Number(dir === "down" ? q.get("source") : q.get("sink")));
    if (dir === "down") {
      s.onmessage = (data) => { bytes += data.length; };
    } else {
      // wisp-js queues without bound while a stream has no credit: send only with credit and
      // while the WebSocket's own buffer is low, and try again on CONTINUE or soon after.
      const pump = () => {
        while (!stop && s.buffer_size > 0 && s.send_buffer.length === 0 && conn.ws.bufferedAmount < HIGH_WATER) {
          s.send(chunk); bytes += CHUNK;
        }
        if (!stop) setTimeout(pump, 1);
      };
      const cont = s.continue_received.bind(s);
      s.continue_received = (n) => { cont(n); pump(); };
      pump();
    }
  }
}

// epoxy-tls 2.x: EpoxyClient.connect_tcp("tcp://host:port") resolves to { read, write }, a
// ReadableStream and a WritableStream of bytes over one Wisp TCP stream. wisp_v2 makes it offer a
// Sec-WebSocket-Protocol, so our default server answers it in the draft-6 v2 order.
async function epoxy2() {
  const { default: init, EpoxyClient, EpoxyClientOptions } = await import("/epoxy2/epoxy.js");
  await init({ module_or_path: "/epoxy2/epoxy.wasm" });
  const o = new EpoxyClientOptions();
  o.wisp_v2 = true;
  o.udp_extension_required = false;
  o.user_agent = navigator.userAgent;
  const c = new EpoxyClient(q.get("ws"), o);
  for (let i = 0; i < streams; i++) {
    const io = await c.connect_tcp(`tcp://127.0.0.1:${dir === "down" ? q.get("source") : q.get("sink")}`);
    if (dir === "down") {
      (async () => {
        const r = io.read.getReader();
        for (;;) { const { value, done } = await r.read(); if (stop) break; if (done) throw "ended"; bytes += value.byteLength; }
      })().catch(fail(`stream ${i}`));
    } else {
      (async () => {
        const w = io.write.getWriter();
        while (!stop) { await w.write(chunk); bytes += CHUNK; }
      })().catch(fail(`stream ${i}`));
    }
  }
}

// epoxy-tls 1.5 (a Wisp v1 client): its EpoxyClient(wsUrl, userAgent, redirectLimit) offers
// fetch, connect_ws, connect_tls and connect_udp, and no raw TCP stream. This checks that on
// the loaded module rather than assuming it.
async function loadEpoxy1() {
  const { default: epoxy } = await import("/epoxy1/epoxy-module-bundled.js");
  const mod = await epoxy();
  const c = await new mod.EpoxyClient(q.get("ws"), navigator.userAgent, 10);
  return { mod, c };
}
async function epoxy1() {
  const { mod, c } = await loadEpoxy1();
  const raw = ["connect_tcp", "connect_raw", "connect_stream"].filter((m) => typeof c[m] === "function");
  if (raw.length) throw new Error(`epoxy-tls 1.5 now has ${raw.join(", ")}: add it to bench.mjs`);
  const api = Object.getOwnPropertyNames(mod.EpoxyClient.prototype).filter((m) => m.startsWith("connect_") || m === "fetch");
  throw { unsupported: "no raw TCP stream API", detail: `EpoxyClient has only ${api.join(", ")}` };
}

// epoxy-tls 1.5's nearest path to a raw stream: connect_ws opens a WebSocket (ws://, no TLS)
// inside one Wisp TCP stream, here to the ceiling's own WebSocket server on loopback, which sends
// 60 KiB messages on /down and discards what /up gets. The WebSocket framing inside the stream is
// epoxy's own work (in wasm), so this is not the raw-TCP case.
async function epoxy1Ws() {
  const { c } = await loadEpoxy1();
  const url = q.get("ceiling") + (dir === "up" ? "up" : "down");
  for (let i = 0; i < streams; i++) {
    let opened, failed;
    const open = new Promise((ok, err) => { opened = ok; failed = err; });
    const ws = await c.connect_ws(
      () => opened(),
      () => failed(new Error("connect_ws closed")),
      (e) => failed(new Error(`connect_ws error: ${e}`)),
      (data) => { bytes += data.byteLength ?? data.length ?? 0; },
      url, [], location.origin,
    );
    await open;
    failed = fail(`connect_ws ${i}`);
    if (dir === "up") {
      (async () => {
        while (!stop) { await ws.send_binary(chunk); bytes += CHUNK; }
      })().catch(fail(`connect_ws ${i}`));
    }
  }
}

try {
  await ({ ceiling, "ceiling-relay": ceiling, ours, "wisp-js": wispJs, epoxy2, epoxy1, "epoxy1-ws": epoxy1Ws })[client]();
  await sleep(warmup);
  await post("/mark", {});
  const b0 = bytes, t0 = performance.now();
  await sleep(duration);
  const secs = (performance.now() - t0) / 1000;
  const mib_s = (bytes - b0) / (1 << 20) / secs;
  stop = true;
  if (broken) throw new Error(broken);
  out.textContent = `OK ${mib_s.toFixed(1)} MiB/s`;
  await post("/report", { ok: true, mib_s });
} catch (e) {
  if (e && e.unsupported) {
    out.textContent = "UNSUPPORTED " + e.unsupported;
    await post("/report", { ok: false, unsupported: e.unsupported, detail: e.detail });
  } else {
    out.textContent = "ERROR " + e;
    await post("/report", { ok: false, error: String(e && e.message || e) });
  }
}
