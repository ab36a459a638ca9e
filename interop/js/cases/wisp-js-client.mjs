// The wisp-js client (npm @mercuryworkshop/wisp-js) against our wisp-server. The same code runs
// in node (wisp-js's node build, over the `ws` package) and in Chromium (its browser build, over
// the browser's WebSocket); `lib` is the module that exports `client`.
import { Checks, assert, concat, equalBytes, firstDiff, hex, pattern, sleep, withTimeout } from "./util.mjs";

function open(lib, url, version) {
  return new Promise((resolve, reject) => {
    const conn = new lib.client.ClientConnection(url, { wisp_version: version });
    conn.onopen = () => resolve(conn);
    conn.onerror = () => reject(new Error(`wisp-js could not connect to ${url}`));
    conn.onclose = () => reject(new Error(`connection to ${url} closed during the handshake`));
  });
}

/** Opens a stream and resolves with everything it received once `want` bytes arrived. */
function collect(stream, want) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let got = 0;
    stream.onmessage = (data) => {
      chunks.push(new Uint8Array(data));
      got += data.length;
      if (got >= want) resolve(concat(chunks));
    };
    stream.onclose = (reason) => reject(new Error(`stream closed with ${hex(reason)} after ${got} of ${want} bytes`));
  });
}

function closeReason(stream) {
  return new Promise((resolve) => {
    stream.onclose = (reason) => resolve(reason);
  });
}

async function tcpEcho(conn, env, streams, len) {
  await Promise.all(
    Array.from({ length: streams }, async (_, s) => {
      const data = pattern(s + 1, len);
      const stream = conn.create_stream("127.0.0.1", env.echoPort);
      const done = collect(stream, data.length);
      for (let at = 0; at < data.length; at += 16384) stream.send(data.subarray(at, at + 16384));
      const got = await done;
      assert(equalBytes(got, data), `stream ${s}: echo differs at byte ${firstDiff(got, data)}`);
      stream.close(0x02);
    }),
  );
  return `${streams} streams x ${len} bytes byte-exact`;
}

async function watchCount(env) {
  const r = await fetch(`${env.controlBase}/watch`);
  return (await r.json()).closed;
}

export async function run(lib, env, log) {
  const c = new Checks(log);
  let v1, v2;

  // v1: no subprotocol; our server sends CONTINUE first, the client stays on v1.
  await c.check("v1 handshake", async () => {
    v1 = await open(lib, env.wsUrl, 1);
    assert(v1.wisp_version === 1, `wisp_version ${v1.wisp_version}`);
    assert(v1.max_buffer_size > 0, `initial credit ${v1.max_buffer_size}`);
    return `v1, credit ${v1.max_buffer_size}`;
  });
  if (v1) {
    await c.check("v1 tcp echo", () => tcpEcho(v1, env, 3, 1 << 20));
    v1.close();
  }

  // v2: offers `wisp-v2`; our server echoes it and sends INFO first (draft-6 order).
  await c.check("v2 handshake (no fallback)", async () => {
    v2 = await open(lib, env.wsUrl, 2);
    assert(v2.wisp_version === 2, `fell back to v${v2.wisp_version}`);
    assert(v2.info_received, "no INFO received");
    return "v2";
  });
  if (!v2) return c.results;
  await c.check("v2 motd", async () => {
    assert(v2.server_motd === env.motd, `motd ${JSON.stringify(v2.server_motd)}`);
    return JSON.stringify(v2.server_motd);
  });
  await c.check("v2 tcp echo", () => tcpEcho(v2, env, 3, 1 << 20));
  await c.check("v2 udp echo", async () => {
    assert(v2.udp_enabled, "server did not announce UDP");
    const udp = v2.create_stream("127.0.0.1", env.udpPort, "udp");
    const queue = [];
    let wake = null;
    udp.onmessage = (d) => { queue.push(new Uint8Array(d)); wake?.(); };
    for (const n of [1, 512, 1400, 8000]) {
      const dgram = pattern(n, n);
      udp.send(dgram);
      while (!queue.length) await withTimeout(new Promise((r) => (wake = r)), 5000, `${n}-byte datagram`);
      const got = queue.shift();
      assert(equalBytes(got, dgram), `${n}-byte datagram came back as ${got.length} bytes`);
    }
    udp.close(0x02);
    return "4 datagrams (1..8000 bytes) byte-exact, one per DATA";
  });
  await c.check("close 0x02 after target ends, every byte first", async () => {
    const stream = v2.create_stream("127.0.0.1", env.sourcePort);
    const chunks = [];
    stream.onmessage = (d) => chunks.push(new Uint8Array(d));
    const reason = await closeReason(stream);
    const got = concat(chunks);
    const want = pattern(env.sourceSeed, env.sourceLen);
    assert(equalBytes(got, want), `got ${got.length} of ${want.length} bytes, first diff ${firstDiff(got, want)}`);
    assert(reason === 0x02, `reason ${hex(reason)}`);
    return `${got.length} bytes then ${hex(reason)}`;
  });
  await c.check("close 0x44 for a refused port", async () => {
    const reason = await closeReason(v2.create_stream("127.0.0.1", env.refusedPort));
    assert(reason === 0x44, `reason ${hex(reason)}`);
    return hex(reason);
  });
  await c.check("close 0x48 for a host blocked by policy", async () => {
    const reason = await closeReason(v2.create_stream(env.blockedHost, 80));
    assert(reason === 0x48, `reason ${hex(reason)}`);
    return hex(reason);
  });
  await c.check("client CLOSE ends the target connection", async () => {
    const before = await watchCount(env);
    const stream = v2.create_stream("127.0.0.1", env.watchPort);
    const echoed = collect(stream, 5);
    stream.send(new TextEncoder().encode("hello"));
    await echoed;
    stream.close(0x02);
    for (let i = 0; i < 100; i++) {
      if ((await watchCount(env)) > before) return "target saw EOF";
      await sleep(50);
    }
    throw new Error("the target connection stayed open after CLOSE");
  });
  v2.close();

  // A v2 client against a v1-only server: CONTINUE comes first, the client must fall back.
  await c.check("v2 client falls back against a v1-only server", async () => {
    const conn = await open(lib, env.v1OnlyUrl, 2);
    assert(conn.wisp_version === 1, `wisp_version ${conn.wisp_version}`);
    const r = await tcpEcho(conn, env, 1, 64 * 1024);
    conn.close();
    return `v1; ${r}`;
  });
  return c.results;
}
