// Loopback targets for the browser tests of wisp-wasm. Started by scripts/test-wasm.sh.
//
// - TCP echo: sends back everything it receives.
// - TCP source: reads a u32 LE count N, then sends N bytes of the pattern (i * 7 + 3) & 0xff,
//   then ends the connection.
// - UDP echo: sends every datagram back to its sender.
// - A refused port: a port that was bound and released, so nothing listens on it.
// - An HTTP control endpoint: `POST /report` prints its body to stderr as `REPORT <body>` (the
//   package check page reports its verdict there); `POST /kill` kills the process given as the first argument (the
//   wisp-server the "server goes away" test connects to). Answers with CORS headers so the
//   test page may call it.
// - The Ed25519 key pair for key login: a random 32-byte seed and its public key.
//
// Prints one JSON line with the ports, the seed (hex) and the public key (hex), then runs until
// killed. Binds 127.0.0.1 only.

import net from "node:net";
import dgram from "node:dgram";
import http from "node:http";
import crypto from "node:crypto";

const killPid = Number(process.argv[2] || 0);

function listen(server) {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server.address().port)));
}

const echo = net.createServer((s) => {
  s.on("error", () => {});
  s.pipe(s);
});

const source = net.createServer((s) => {
  s.on("error", () => {});
  let head = Buffer.alloc(0);
  const onData = (d) => {
    head = Buffer.concat([head, d]);
    if (head.length < 4) return;
    s.off("data", onData);
    let remaining = head.readUInt32LE(0);
    let offset = 0;
    const chunk = 64 * 1024;
    const pump = () => {
      while (remaining > 0) {
        const n = Math.min(chunk, remaining);
        const buf = Buffer.allocUnsafe(n);
        for (let i = 0; i < n; i++) buf[i] = ((offset + i) * 7 + 3) & 0xff;
        offset += n;
        remaining -= n;
        if (!s.write(buf)) {
          s.once("drain", pump);
          return;
        }
      }
      s.end();
    };
    pump();
  };
  s.on("data", onData);
});

const udp = dgram.createSocket("udp4");
udp.on("message", (msg, rinfo) => udp.send(msg, rinfo.port, rinfo.address));
const udpPort = await new Promise((resolve) =>
  udp.bind(0, "127.0.0.1", () => resolve(udp.address().port)),
);

// A minimal Wisp v1 server that, like wisp-python, never selects the WebSocket subprotocol the
// client offers: it answers the upgrade without Sec-WebSocket-Protocol and sends CONTINUE(0).
const noEcho = http.createServer((req, res) => res.end());
noEcho.on("upgrade", (req, socket) => {
  const accept = crypto
    .createHash("sha1")
    .update(req.headers["sec-websocket-key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
    .digest("base64");
  socket.on("error", () => {});
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
  // One binary frame: CONTINUE (0x03) on stream 0 with a credit of 64.
  socket.write(Buffer.from([0x82, 9, 0x03, 0, 0, 0, 0, 64, 0, 0, 0]));
});

const refused = net.createServer();
const refusedPort = await listen(refused);
await new Promise((resolve) => refused.close(resolve));

const control = http.createServer((req, res) => {
  const headers = {
    "access-control-allow-origin": "*",
    "access-control-allow-methods": "POST, GET, OPTIONS",
  };
  if (req.method === "OPTIONS") {
    res.writeHead(204, headers).end();
    return;
  }
  if (req.url === "/report" && req.method === "POST") {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      process.stderr.write(`REPORT ${body.replace(/\n/g, " ")}\n`);
      res.writeHead(204, headers).end();
    });
    return;
  }
  if (req.url === "/kill" && killPid) {
    let ok = true;
    try {
      process.kill(killPid, "SIGKILL");
    } catch {
      ok = false;
    }
    res.writeHead(ok ? 200 : 500, headers).end(ok ? "killed" : "kill failed");
    return;
  }
  res.writeHead(404, headers).end("not found");
});

const seed = crypto.randomBytes(32);
const pkcs8 = Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), seed]);
const priv = crypto.createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" });
const pub = Buffer.from(crypto.createPublicKey(priv).export({ format: "jwk" }).x, "base64url");

const ports = {
  echo: await listen(echo),
  source: await listen(source),
  udp: udpPort,
  refused: refusedPort,
  control: await listen(control),
  noecho: await listen(noEcho),
  seed: seed.toString("hex"),
  pubkey: pub.toString("hex"),
};
console.log(JSON.stringify(ports));
