// The wisp-js client (npm @mercuryworkshop/wisp-js, from interop/node_modules) as a load
// client: M connections x N streams to a TCP echo target through a Wisp server, each stream
// writing fixed-size chunks and counting the echo, for a duration after a warm-up. Prints one
// JSON line: {"mib_s": echoed MiB/s, "up_mib_s": written MiB/s, "errors": n, "stalled": n}, where
// "stalled" counts streams that stayed open but echoed nothing while measured.
//
// Usage: node wisp-js-client.mjs URL HOST PORT CONNECTIONS STREAMS CHUNK WARMUP_S DURATION_S
// WISP_JS_DIR names the directory whose node_modules holds the package (default: ../interop).
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const dir = process.env.WISP_JS_DIR || path.join(here, "..", "interop");
const require = createRequire(path.join(dir, "package.json"));
const { client } = require("@mercuryworkshop/wisp-js/client");

const [url, host, port, conns, streams, chunkSize, warmup, duration] = process.argv.slice(2);
const chunk = new Uint8Array(Number(chunkSize)).map((_, i) => i % 253);
// wisp-js queues writes without bound while a stream has no credit, so each stream keeps at
// most this many bytes unechoed and pumps again when the echo or a CONTINUE arrives.
const WINDOW = 1 << 20;
let up = 0, down = 0, errors = 0, stop = false;
const perStream = []; // { received } of every stream, to find the stalled ones

// A stream held back only by the connection's bufferedAmount has nothing in flight, so no event
// of its own would ever wake it; every message on a connection therefore pumps all its streams.
function runStream(conn, pumps) {
  const s = conn.create_stream(host, Number(port));
  let sent = 0, received = 0;
  const echoed = { received: 0 };
  perStream.push(echoed);
  const pump = () => {
    while (!stop && sent - received < WINDOW && s.send_buffer.length < 2 && conn.ws.bufferedAmount < (4 << 20)) {
      s.send(chunk);
      sent += chunk.length;
      up += chunk.length;
    }
  };
  const cont = s.continue_received.bind(s);
  s.continue_received = (n) => { cont(n); pump(); };
  s.onmessage = (data) => {
    received += data.length;
    echoed.received = received;
    down += data.length;
    for (const p of pumps) p();
  };
  pumps.push(pump);
  s.onclose = () => { if (!stop) errors++; };
  pump();
}

function connect() {
  return new Promise((resolve) => {
    const conn = new client.ClientConnection(url);
    conn.onopen = () => {
      const pumps = [];
      for (let i = 0; i < Number(streams); i++) runStream(conn, pumps);
      resolve(conn);
    };
    conn.onerror = () => { errors += Number(streams); resolve(null); };
  });
}

const sleep = (s) => new Promise((r) => setTimeout(r, s * 1000));
const all = await Promise.all(Array.from({ length: Number(conns) }, connect));
await sleep(Number(warmup));
const up0 = up, down0 = down, t0 = performance.now();
const before = perStream.map((s) => s.received);
await sleep(Number(duration));
const secs = (performance.now() - t0) / 1000;
const MIB = 1024 * 1024;
stop = true;
const stalled = before.filter((b, i) => perStream[i].received === b).length;
console.log(JSON.stringify({ mib_s: (down - down0) / MIB / secs, up_mib_s: (up - up0) / MIB / secs, errors, stalled }));
for (const c of all) c?.close();
process.exit(0);
