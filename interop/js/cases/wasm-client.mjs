// Our wasm client (wisp-wasm, built with `wasm-pack build --target web`) in Chromium against a
// peer server: TCP echo byte-exact, v2 negotiation or a clean fallback to v1, UDP where the peer
// supports it, and the close reason the peer gives for a refused port. `lib` is our package's
// JS module; `env.peer` names the peer.
import { Checks, assert, hex, pattern } from "./util.mjs";
import { echoThrough, udpEcho } from "./streams.mjs";

const EXPECT = {
  // peer: v2 spoken, refused-port reason, echo in lock-step (peer bug 4 in interop/README.md)
  "wisp-js": { v2: true, refused: 0x03 },
  "wisp-server-node": { v2: false, refused: 0x44 },
  "wisp-python": { v2: false, refused: 0x42, lockStep: true },
};

export async function run(lib, env, log) {
  const c = new Checks(log);
  const { default: init, WispClient } = lib;
  await init();
  const expect = EXPECT[env.peer];
  let client;
  await c.check(expect.v2 ? "v2 handshake (no fallback)" : "v2 offered, clean fallback to v1", async () => {
    client = await WispClient.connect(env.wsUrl, { v2: true, udp: true });
    if (expect.v2) {
      assert(client.protocolVersion === "2.0" && !client.downgraded, `protocol ${client.protocolVersion}, downgraded ${client.downgraded}`);
    } else {
      assert(client.protocolVersion.startsWith("1.") && client.downgraded, `protocol ${client.protocolVersion}, downgraded ${client.downgraded}`);
    }
    return `protocol ${client.protocolVersion}${client.downgraded ? " (downgraded)" : ""}, extensions [${Array.from(client.extensions).map(hex).join(", ")}]`;
  });
  if (!client) return c.results;
  if (expect.v2) {
    await c.check("v2 motd", async () => {
      assert(client.motd === env.peerMotd, `motd ${JSON.stringify(client.motd)}`);
      return JSON.stringify(client.motd);
    });
  }
  const pacing = expect.lockStep ? ", lock-step in 16 KiB chunks" : "";
  await c.check(`tcp echo, 3 streams x 1 MiB byte-exact${pacing}`, async () => {
    await Promise.all([1, 2, 3].map(async (s) => {
      const stream = await client.openTcp("127.0.0.1", env.echoPort);
      await echoThrough(stream.readable, stream.writable, pattern(50 + s, 1 << 20), 16384, { lockStep: expect.lockStep });
      await stream.close();
    }));
    return "3 x 1048576 bytes";
  });
  await c.check("close 0x02 after target ends, every byte first", async () => {
    const stream = await client.openTcp("127.0.0.1", env.sourcePort);
    const reader = stream.readable.getReader();
    let got = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      got += value.length;
    }
    await stream.closed;
    assert(got === env.sourceLen, `got ${got} of ${env.sourceLen} bytes`);
    return `${got} bytes, clean end`;
  });
  await c.check(`refused port: close reason ${hex(expect.refused)}`, async () => {
    let code;
    try {
      const stream = await client.openTcp("127.0.0.1", env.refusedPort);
      await stream.closed.catch((e) => { code = e.code; });
      if (code === undefined) {
        const reader = stream.readable.getReader();
        await reader.read().catch((e) => { code = e.code; });
      }
    } catch (e) {
      code = e.code;
    }
    assert(code === expect.refused, `reason ${hex(code)}`);
    return hex(code);
  });
  if (env.peer === "wisp-server-node") {
    // wisp-server-node 1.1.8 on Node 20: the first UDP DATA packet makes its dgram send throw
    // ERR_SOCKET_DGRAM_IS_CONNECTED, and its catch-all closes the whole WebSocket (no CLOSE for
    // the stream). Our side must report the loss (0x03) on the stream and the connection, not hang.
    await c.check(
      "udp: peer drops the whole connection; our client reports 0x03 and reconnects",
      async () => {
        let code;
        const udp = await client.openUdp("127.0.0.1", env.udpPort);
        try {
          await udpEcho(udp.readable, udp.writable, [16]);
        } catch (e) {
          code = e.code;
        }
        assert(code !== undefined, "the datagram came back: wisp-server-node's UDP works now, update this check and interop/README.md");
        assert(code === 0x03, `stream error ${hex(code)}`);
        let connCode;
        await client.closed.then(() => (connCode = "resolved"), (e) => (connCode = e.code));
        assert(connCode === 0x03, `connection closed promise: ${connCode}`);
        const fresh = await WispClient.connect(env.wsUrl, { v2: true });
        const s = await fresh.openTcp("127.0.0.1", env.echoPort);
        await echoThrough(s.readable, s.writable, pattern(60, 4096));
        fresh.close();
        return "stream and connection rejected with 0x03 (connection lost); a new connection echoes";
      },
      { timeoutMs: 20000, peerBug: "wisp-server-node 1.1.8 on Node 20: the first UDP DATA packet throws ERR_SOCKET_DGRAM_IS_CONNECTED in dgram send(payload, undefined, undefined, cb) on its connected socket; its catch-all then closes the whole WebSocket without a CLOSE packet, ending every stream" },
    );
    return c.results;
  } else {
    await c.check("udp echo", async () => {
      const udp = await client.openUdp("127.0.0.1", env.udpPort);
      const r = await udpEcho(udp.readable, udp.writable);
      await udp.close();
      return r;
    });
  }
  client.close();
  return c.results;
}
