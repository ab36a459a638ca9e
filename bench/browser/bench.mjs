// One browser benchmark case, chosen by the query string; the page reports to the bench's own
// HTTP server (POST /mark when measuring starts, POST /report with the figure), never through
// an automation API that would copy every frame.
//
// ?client=ceiling|ours|wisp-js &dir=down|up &streams=N &ws=WISP_URL &ceiling=WS_URL
// &source=PORT &sink=PORT &warmup=S &duration=S
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

try {
  await ({ ceiling, ours, "wisp-js": wispJs })[client]();
  await sleep(warmup);
  await post("/mark", {});
  const b0 = bytes, t0 = performance.now();
  await sleep(duration);
  const secs = (performance.now() - t0) / 1000;
  const mib_s = (bytes - b0) / (1 << 20) / secs;
  stop = true;
  out.textContent = `OK ${mib_s.toFixed(1)} MiB/s`;
  await post("/report", { ok: true, mib_s });
} catch (e) {
  out.textContent = "ERROR " + e;
  await post("/report", { ok: false, error: String(e && e.message || e) });
}
