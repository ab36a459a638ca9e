// Starts the wisp-js server (npm @mercuryworkshop/wisp-js) on 127.0.0.1, port 0, allowing
// loopback targets, and prints its WebSocket URL on the first line of stdout.
// Usage: node wisp-js-server.mjs [wisp_version (1|2)] [motd]
import http from "node:http";
import { server as wisp, logging } from "@mercuryworkshop/wisp-js/server";

logging.set_level(logging.WARN);
wisp.options.allow_loopback_ips = true;
wisp.options.allow_private_ips = true;
wisp.options.wisp_version = Number(process.argv[2] || 2);
if (process.argv[3]) wisp.options.wisp_motd = process.argv[3];

const server = http.createServer((req, res) => res.end("wisp-js\n"));
server.on("upgrade", (req, socket, head) => wisp.routeRequest(req, socket, head));
server.listen(0, "127.0.0.1", () => {
  console.log(`ws://127.0.0.1:${server.address().port}/`);
});
process.on("SIGTERM", () => process.exit(0));
