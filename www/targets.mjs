// Loopback targets for the demo page, started next to wisp-server by `npm start` and the e2e
// tests. Everything binds 127.0.0.1 on a port the system picks (port 0).
//
// - echo (TCP):     sends back everything it receives.
// - chargen (TCP):  sends bytes as fast as the reader takes them, until the client goes away
//                   (download throughput).
// - discard (TCP):  reads and drops everything (upload throughput).
// - udp (UDP):      sends every datagram back to its sender.
// - refused (TCP):  a port that was bound and released, so nothing listens there and a
//                   connect is refused (close reason 0x44).
//
// Prints one JSON line with the ports on stdout, and with `--out FILE` also writes it to FILE
// (the page reads `targets.json` next to itself). Runs until killed.

import net from "node:net";
import dgram from "node:dgram";
import fs from "node:fs";

const outIdx = process.argv.indexOf("--out");
const outFile = outIdx > 0 ? process.argv[outIdx + 1] : null;

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(server.address().port));
  });
}

const echo = net.createServer((s) => {
  s.on("error", () => {});
  s.pipe(s);
});

// One 1 MiB block of a visible pattern (printable ASCII lines, like RFC 864 chargen).
const block = Buffer.alloc(1 << 20);
{
  const line = [];
  for (let c = 0x21; c < 0x7f; c++) line.push(c);
  for (let i = 0; i < block.length; i++) {
    block[i] = i % 73 === 72 ? 0x0a : line[(i + Math.floor(i / 73)) % line.length];
  }
}

const chargen = net.createServer((s) => {
  let open = true;
  s.on("error", () => {
    open = false;
  });
  s.on("close", () => {
    open = false;
  });
  s.on("data", () => {}); // ignore whatever the client sends
  const pump = () => {
    while (open && s.write(block)) {
      /* keep writing until the socket buffers */
    }
    if (open) s.once("drain", pump);
  };
  pump();
});

const discard = net.createServer((s) => {
  s.on("error", () => {});
  s.resume();
});

const udp = dgram.createSocket("udp4");
udp.on("error", () => {});
udp.on("message", (msg, rinfo) => udp.send(msg, rinfo.port, rinfo.address));
const udpPort = await new Promise((resolve) =>
  udp.bind(0, "127.0.0.1", () => resolve(udp.address().port)),
);

const refused = net.createServer();
const refusedPort = await listen(refused);
await new Promise((resolve) => refused.close(resolve));

const ports = {
  echo: await listen(echo),
  chargen: await listen(chargen),
  discard: await listen(discard),
  udp: udpPort,
  refused: refusedPort,
};
const line = JSON.stringify(ports);
if (outFile) fs.writeFileSync(outFile, line + "\n");
process.stdout.write(line + "\n");

const stop = () => {
  if (outFile) {
    try {
      fs.unlinkSync(outFile);
    } catch {}
  }
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
