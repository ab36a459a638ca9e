// Starts wisp-server-node (npm wisp-server-node) on 127.0.0.1, port 0, and prints its
// WebSocket URL on the first line of stdout. It has no address policy to configure.
const http = require("node:http");
const wisp = require("wisp-server-node");

const server = http.createServer((req, res) => res.end("wisp-server-node\n"));
server.on("upgrade", (req, socket, head) => {
  (wisp.default || wisp).routeRequest(req, socket, head, { logLevel: 3 });
});
server.listen(0, "127.0.0.1", () => {
  console.log(`ws://127.0.0.1:${server.address().port}/`);
});
process.on("SIGTERM", () => process.exit(0));
