// libcurl.js (browser only, its own v1 Wisp client) in Chromium against our wisp-server: HTTP
// requests through our server to the loopback site.
import { Checks, assert, equalBytes, firstDiff, pattern } from "./util.mjs";

export async function run(_lib, env, log) {
  const c = new Checks(log);
  const { libcurl } = await import("/libcurl/libcurl.mjs");
  await libcurl.load_wasm("/libcurl/libcurl.wasm");
  libcurl.set_websocket(env.wsUrl);
  const base = `http://127.0.0.1:${env.sitePort}`;
  await c.check("HTTP GET byte-exact", async () => {
    const n = 2 << 20;
    const res = await libcurl.fetch(`${base}/bytes?n=${n}&seed=5`, { _libcurl_http_version: 1.1 });
    assert(res.status === 200, `status ${res.status}`);
    const got = new Uint8Array(await res.arrayBuffer());
    const want = pattern(5, n);
    assert(equalBytes(got, want), `body differs at byte ${firstDiff(got, want)} (${got.length} bytes)`);
    return `libcurl.js ${libcurl.version.lib}: ${n} bytes`;
  });
  await c.check("HTTP POST echo byte-exact", async () => {
    const body = pattern(13, 1 << 20);
    const res = await libcurl.fetch(`${base}/echo`, { method: "POST", body, _libcurl_http_version: 1.1 });
    const got = new Uint8Array(await res.arrayBuffer());
    assert(equalBytes(got, body), `body differs at byte ${firstDiff(got, body)} (${got.length} bytes)`);
    return `${body.length} bytes up and back`;
  });
  await c.check("refused port fails the request", async () => {
    try {
      await libcurl.fetch(`http://127.0.0.1:${env.refusedPort}/`, { _libcurl_http_version: 1.1 });
    } catch (e) {
      return `rejected: ${String(e.message || e).slice(0, 120)}`;
    }
    throw new Error("fetch to a refused port resolved");
  });
  return c.results;
}
