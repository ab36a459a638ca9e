// The demo page. It uses the wisp-wasm npm package the way any page would: the `web` build
// (`wasm-pack build --target web`), imported as an ES module from ./pkg/.
import init, { WispClient, isWispError } from "./pkg/wisp_wasm.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const enc = new TextEncoder();

const EXTENSION_NAMES = {
  0x01: "UDP",
  0x02: "password auth",
  0x03: "key auth",
  0x04: "MOTD",
  0x05: "stream confirmation",
};

const hex = (n) => "0x" + n.toString(16).padStart(2, "0");

// "connection refused (0x44)" for a WispError; the message for anything else.
function describeError(e) {
  if (isWispError(e)) {
    const name = e.reasonName || "unknown reason";
    return `${name} (${hex(e.code)})`;
  }
  return e && e.message ? e.message : String(e);
}

function showError(el, text) {
  el.textContent = text;
  el.hidden = !text;
}

function setState(el, state, text) {
  el.dataset.state = state;
  el.textContent = text;
}

function mib(bytes) {
  return bytes / (1024 * 1024);
}

function fmtBytes(n) {
  if (n >= 1 << 30) return (n / (1 << 30)).toFixed(2) + " GiB";
  if (n >= 1 << 20) return (n / (1 << 20)).toFixed(1) + " MiB";
  if (n >= 1 << 10) return (n / (1 << 10)).toFixed(1) + " KiB";
  return n + " B";
}

// ---------------------------------------------------------------------------------------------
// Demo targets: ports from targets.json (written by `npm start`), overridden by the query string
// (?echo=&chargen=&discard=&udp=&refused=&ws=).

const targets = { echo: null, chargen: null, discard: null, udp: null, refused: null };

async function loadTargets() {
  const fromQuery = Object.keys(targets).every((k) => params.get(k));
  if (!fromQuery) {
    try {
      const r = await fetch("targets.json", { cache: "no-store" });
      if (r.ok) Object.assign(targets, await r.json());
    } catch {
      /* no file: the query string or manual entry */
    }
  }
  for (const k of Object.keys(targets)) {
    const v = params.get(k);
    if (v) targets[k] = Number(v);
  }
}

// ---------------------------------------------------------------------------------------------
// Connection

let client = null;

function defaultUrl() {
  if (params.get("ws")) return params.get("ws");
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/`;
}

function setConnected(on) {
  $("conn-connect").disabled = on;
  $("conn-disconnect").disabled = !on;
  for (const id of ["tcp-open", "udp-send", "tp-run"]) $(id).disabled = !on;
  for (const b of document.querySelectorAll(".presets button")) b.disabled = !on;
  if (!on) {
    $("tcp-send").disabled = true;
    $("tcp-close").disabled = true;
  }
}

function setPill(state, text) {
  setState($("conn-pill"), state, text);
  setState($("conn-state"), state, text);
}

async function connect() {
  const url = $("conn-url").value.trim();
  showError($("conn-error"), "");
  setPill("connecting", "connecting…");
  $("conn-connect").disabled = true;
  try {
    const c = await WispClient.connect(url, { udp: true, streamConfirmation: true });
    client = c;
    setPill("connected", "connected");
    $("conn-version").textContent =
      `Wisp ${c.protocolVersion}` + (c.downgraded ? " (server speaks v1 only)" : "");
    const exts = Array.from(c.extensions);
    $("conn-extensions").replaceChildren(
      ...(exts.length
        ? exts.map((id) => {
            const s = document.createElement("span");
            s.className = "tag";
            s.dataset.id = String(id);
            s.textContent = `${EXTENSION_NAMES[id] || "unknown"} ${hex(id)}`;
            return s;
          })
        : [document.createTextNode("none")]),
    );
    $("conn-motd").textContent = c.motd ?? "(none)";
    setConnected(true);
    c.closed.then(
      () => onClosed(c, null),
      (e) => onClosed(c, e),
    );
  } catch (e) {
    setPill("failed", "failed");
    showError($("conn-error"), "Could not connect: " + describeError(e));
    setConnected(false);
  }
}

function onClosed(c, e) {
  if (client !== c) return;
  client = null;
  setConnected(false);
  if (e) {
    setPill("failed", "closed");
    showError($("conn-error"), "Connection lost: " + describeError(e));
  } else {
    setPill("closed", "closed");
  }
}

function disconnect() {
  if (client) client.close();
}

// ---------------------------------------------------------------------------------------------
// TCP

let tcp = null; // { stream, writer }
let tcpText = "";
let tcpBytes = [];
const OUTPUT_LIMIT = 256 * 1024;

function renderTcpOutput() {
  const out = $("tcp-output");
  out.textContent =
    tcpText.length > OUTPUT_LIMIT ? "…" + tcpText.slice(tcpText.length - OUTPUT_LIMIT) : tcpText;
  out.scrollTop = out.scrollHeight;
}

// Shows "HTTP/1.1 200 OK" and the body size when the received bytes are an HTTP response.
function summarizeHttp() {
  const text = tcpText;
  const box = $("tcp-http");
  if (!text.startsWith("HTTP/")) {
    box.hidden = true;
    return;
  }
  const headEnd = text.indexOf("\r\n\r\n");
  const statusLine = text.slice(0, text.indexOf("\r\n") >= 0 ? text.indexOf("\r\n") : text.length);
  $("tcp-http-status").textContent = statusLine;
  let meta = "";
  if (headEnd >= 0) {
    const total = tcpBytes.reduce((s, c) => s + c.byteLength, 0);
    const headLen = enc.encode(text.slice(0, headEnd + 4)).length;
    const type = /\r\ncontent-type:\s*([^\r;]+)/i.exec(text.slice(0, headEnd));
    meta = ` · ${type ? type[1] : "?"} · body ${fmtBytes(total - headLen)}`;
  }
  $("tcp-http-meta").textContent = meta;
  box.hidden = false;
}

async function tcpOpen(host, port) {
  if (!client) return;
  if (tcp) tcpClose();
  showError($("tcp-error"), "");
  tcpText = "";
  tcpBytes = [];
  renderTcpOutput();
  $("tcp-http").hidden = true;
  setState($("tcp-state"), "opening", `opening ${host}:${port}…`);
  $("tcp-open").disabled = true;
  let stream;
  try {
    stream = await client.openTcp(host, port);
  } catch (e) {
    const why = describeError(e);
    setState($("tcp-state"), "error", `failed: ${why}`);
    showError($("tcp-error"), `Could not open ${host}:${port}: ${why}`);
    $("tcp-open").disabled = !client;
    return null;
  }
  const me = { stream, writer: stream.writable.getWriter() };
  tcp = me;
  setState($("tcp-state"), "open", `open to ${host}:${port} (stream ${stream.id})`);
  $("tcp-open").disabled = !client;
  $("tcp-send").disabled = false;
  $("tcp-close").disabled = false;
  const dec = new TextDecoder();
  me.done = (async () => {
    const reader = stream.readable.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        tcpBytes.push(value);
        tcpText += dec.decode(value, { stream: true });
        renderTcpOutput();
        summarizeHttp();
      }
      tcpText += dec.decode();
      renderTcpOutput();
      summarizeHttp();
      if (tcp === me) setState($("tcp-state"), "closed", "closed by the target: voluntary (0x02)");
    } catch (e) {
      if (tcp === me) {
        const why = describeError(e);
        setState($("tcp-state"), "error", `closed: ${why}`);
        showError($("tcp-error"), `The stream ended: ${why}`);
      }
    } finally {
      if (tcp === me) {
        tcp = null;
        $("tcp-send").disabled = true;
        $("tcp-close").disabled = true;
      }
    }
  })();
  return me;
}

function tcpClose() {
  if (!tcp) return;
  const t = tcp;
  tcp = null;
  t.stream.close();
  setState($("tcp-state"), "closed", "closed by you");
  $("tcp-send").disabled = true;
  $("tcp-close").disabled = true;
}

async function tcpSend(text) {
  if (!tcp) return;
  const data = $("tcp-crlf").checked ? text.replace(/\r?\n/g, "\r\n") : text;
  try {
    await tcp.writer.write(enc.encode(data));
  } catch (e) {
    showError($("tcp-error"), "Send failed: " + describeError(e));
  }
}

function httpRequestText() {
  return `GET / HTTP/1.1\nHost: ${location.host}\nUser-Agent: wisp-demo\nConnection: close\n\n`;
}

async function presetHttp() {
  $("tcp-host").value = location.hostname || "127.0.0.1";
  $("tcp-port").value = location.port || (location.protocol === "https:" ? "443" : "80");
  $("tcp-input").value = httpRequestText();
  $("tcp-crlf").checked = true;
  const t = await tcpOpen($("tcp-host").value, Number($("tcp-port").value));
  if (t) await tcpSend($("tcp-input").value);
}

async function presetEcho() {
  $("tcp-host").value = "127.0.0.1";
  $("tcp-port").value = targets.echo ?? "";
  $("tcp-input").value = "Hello, echo!\n";
  const t = await tcpOpen("127.0.0.1", Number(targets.echo));
  if (t) await tcpSend($("tcp-input").value);
}

async function presetRefused() {
  $("tcp-host").value = "127.0.0.1";
  $("tcp-port").value = targets.refused ?? "";
  await tcpOpen("127.0.0.1", Number(targets.refused));
}

// ---------------------------------------------------------------------------------------------
// UDP

let udp = null; // { stream, writer, key }
const udpPending = []; // send times, for the round-trip time of echoes
let udpSent = 0;
let udpReceived = 0;

function udpLog(dir, text) {
  const li = document.createElement("li");
  li.className = dir;
  li.dataset.dir = dir;
  const arrow = document.createElement("span");
  arrow.className = "dir";
  arrow.textContent = dir === "sent" ? "→" : "←";
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  li.append(arrow, body);
  const log = $("udp-log");
  log.prepend(li);
  while (log.children.length > 50) log.lastElementChild.remove();
}

async function udpStream(host, port) {
  const key = `${host}:${port}`;
  if (udp && udp.key === key) return udp;
  if (udp) udp.stream.close();
  udp = null;
  const stream = await client.openUdp(host, port);
  const me = { stream, writer: stream.writable.getWriter(), key };
  udp = me;
  const dec = new TextDecoder();
  (async () => {
    try {
      for await (const datagram of stream.readable) {
        udpReceived++;
        $("udp-received").textContent = String(udpReceived);
        const t0 = udpPending.shift();
        if (t0 !== undefined) $("udp-rtt").textContent = `· round trip ${(performance.now() - t0).toFixed(1)} ms`;
        udpLog("received", dec.decode(datagram));
      }
    } catch (e) {
      if (udp === me) showError($("udp-error"), "UDP stream ended: " + describeError(e));
    } finally {
      if (udp === me) udp = null;
    }
  })();
  return me;
}

async function udpSend() {
  if (!client) return;
  showError($("udp-error"), "");
  const host = $("udp-host").value.trim();
  const port = Number($("udp-port").value);
  const text = $("udp-input").value;
  try {
    const u = await udpStream(host, port);
    udpPending.push(performance.now());
    await u.writer.write(enc.encode(text));
    udpSent++;
    $("udp-sent").textContent = String(udpSent);
    udpLog("sent", text);
  } catch (e) {
    showError($("udp-error"), `UDP to ${host}:${port} failed: ${describeError(e)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Throughput

const chart = { samples: [], duration: 5 };
let tpRun = null; // { stop() }

function drawChart() {
  const canvas = $("tp-chart");
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth;
  const h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const css = getComputedStyle(document.documentElement);
  const grid = css.getPropertyValue("--grid").trim() || "#ddd";
  const ink = css.getPropertyValue("--muted").trim() || "#888";
  const accent = css.getPropertyValue("--accent").trim() || "#36c";
  const pad = { l: 44, r: 10, t: 10, b: 22 };
  const pw = Math.max(10, w - pad.l - pad.r);
  const ph = Math.max(10, h - pad.t - pad.b);
  const s = chart.samples;
  const maxY = niceMax(Math.max(1, ...s.map((p) => p.v)));
  const maxX = Math.max(chart.duration, s.length ? s[s.length - 1].t : 0);
  ctx.font = "11px system-ui, sans-serif";
  ctx.lineWidth = 1;
  ctx.strokeStyle = grid;
  ctx.fillStyle = ink;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (let i = 0; i <= 4; i++) {
    const y = pad.t + ph - (ph * i) / 4;
    ctx.beginPath();
    ctx.moveTo(pad.l, y);
    ctx.lineTo(pad.l + pw, y);
    ctx.stroke();
    ctx.fillText(fmtAxis((maxY * i) / 4), pad.l - 6, y);
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (let t = 0; t <= maxX; t += Math.max(1, Math.ceil(maxX / 6))) {
    ctx.fillText(t + " s", pad.l + (pw * t) / maxX, pad.t + ph + 6);
  }
  ctx.save();
  ctx.translate(10, pad.t + ph / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textBaseline = "middle";
  ctx.fillText("MiB/s", 0, 0);
  ctx.restore();
  if (!s.length) return;
  const X = (t) => pad.l + (pw * t) / maxX;
  const Y = (v) => pad.t + ph - (ph * v) / maxY;
  ctx.beginPath();
  ctx.moveTo(X(0), Y(0));
  for (const p of s) ctx.lineTo(X(p.t), Y(p.v));
  ctx.lineTo(X(s[s.length - 1].t), Y(0));
  ctx.closePath();
  ctx.globalAlpha = 0.15;
  ctx.fillStyle = accent;
  ctx.fill();
  ctx.globalAlpha = 1;
  ctx.beginPath();
  ctx.moveTo(X(0), Y(0));
  for (const p of s) ctx.lineTo(X(p.t), Y(p.v));
  ctx.strokeStyle = accent;
  ctx.lineWidth = 2;
  ctx.lineJoin = "round";
  ctx.stroke();
}

function niceMax(v) {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function fmtAxis(v) {
  return v >= 10 ? v.toFixed(0) : v.toFixed(1);
}

async function runThroughput() {
  if (!client || tpRun) return;
  const direction = $("tp-direction").value;
  const seconds = Math.min(60, Math.max(1, Number($("tp-duration").value) || 5));
  const port = direction === "download" ? targets.chargen : targets.discard;
  showError($("tp-error"), "");
  chart.samples = [];
  chart.duration = seconds;
  drawChart();
  $("tp-result").textContent = "…";
  $("tp-result").removeAttribute("data-mibps");
  $("tp-live").textContent = "—";
  $("tp-bytes").textContent = "—";
  $("tp-run").disabled = true;
  $("tp-stop").disabled = false;
  let stopped = false;
  tpRun = { stop: () => (stopped = true) };
  let total = 0;
  let start = 0;
  let timer = 0;
  let stream = null;
  try {
    if (!port) throw new Error(`no ${direction === "download" ? "chargen" : "discard"} target port (start the demo with npm start)`);
    stream = await client.openTcp("127.0.0.1", port);
    start = performance.now();
    let lastT = start;
    let lastBytes = 0;
    timer = setInterval(() => {
      const now = performance.now();
      const v = mib(total - lastBytes) / ((now - lastT) / 1000);
      lastT = now;
      lastBytes = total;
      chart.samples.push({ t: (now - start) / 1000, v });
      $("tp-live").textContent = `${v.toFixed(1)} MiB/s`;
      $("tp-bytes").textContent = fmtBytes(total);
      drawChart();
    }, 250);
    const deadline = start + seconds * 1000;
    if (direction === "download") {
      const reader = stream.readable.getReader();
      while (!stopped && performance.now() < deadline) {
        const { value, done } = await reader.read();
        if (done) break;
        total += value.byteLength;
      }
      reader.cancel().catch(() => {});
    } else {
      const writer = stream.writable.getWriter();
      const chunk = new Uint8Array(60 * 1024).fill(0x61);
      while (!stopped && performance.now() < deadline) {
        await writer.write(chunk);
        total += chunk.byteLength;
      }
    }
    const elapsed = (performance.now() - start) / 1000;
    const rate = mib(total) / elapsed;
    const el = $("tp-result");
    el.textContent = `${rate.toFixed(1)} MiB/s`;
    el.dataset.mibps = rate.toFixed(3);
    el.dataset.bytes = String(total);
    el.dataset.seconds = elapsed.toFixed(3);
    $("tp-bytes").textContent = `${fmtBytes(total)} in ${elapsed.toFixed(1)} s`;
  } catch (e) {
    $("tp-result").textContent = "failed";
    showError($("tp-error"), "Throughput test failed: " + describeError(e));
  } finally {
    clearInterval(timer);
    if (stream) stream.close();
    drawChart();
    tpRun = null;
    $("tp-run").disabled = !client;
    $("tp-stop").disabled = true;
  }
}

// ---------------------------------------------------------------------------------------------
// Wiring

function wire() {
  $("conn-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    connect();
  });
  $("conn-disconnect").addEventListener("click", disconnect);
  $("tcp-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    tcpOpen($("tcp-host").value.trim(), Number($("tcp-port").value));
  });
  $("tcp-close").addEventListener("click", tcpClose);
  $("tcp-send-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    tcpSend($("tcp-input").value);
  });
  $("tcp-input").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      tcpSend($("tcp-input").value);
    }
  });
  $("tcp-preset-http").addEventListener("click", presetHttp);
  $("tcp-preset-echo").addEventListener("click", presetEcho);
  $("tcp-preset-refused").addEventListener("click", presetRefused);
  $("udp-send-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    udpSend();
  });
  $("tp-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    runThroughput();
  });
  $("tp-stop").addEventListener("click", () => tpRun && tpRun.stop());
  window.addEventListener("resize", drawChart);
}

async function main() {
  wire();
  setConnected(false);
  $("conn-connect").disabled = true;
  $("conn-url").value = defaultUrl();
  drawChart();
  await Promise.all([init(), loadTargets()]);
  $("tcp-port").value = location.port || "";
  $("udp-port").value = targets.udp ?? "";
  $("conn-connect").disabled = false;
  document.body.dataset.ready = "true";
  if (params.get("autoconnect") !== "0") await connect();
}

main().catch((e) => {
  showError($("conn-error"), "The demo failed to start: " + describeError(e));
});
