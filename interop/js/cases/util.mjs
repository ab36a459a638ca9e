// Helpers shared by the interop cases; loaded both by node and by the test page in Chromium,
// so it uses only what both have (no node: imports, no DOM).

/** Deterministic test data: the same generator as `pattern` in interop/src/lib.rs. */
export function pattern(seed, len) {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) {
    out[i] = (Math.imul(i, 2654435761) ^ Math.imul(seed, 40503)) & 0xff;
  }
  return out;
}

export function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Index of the first differing byte, or -1. */
export function firstDiff(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

export function concat(chunks) {
  let len = 0;
  for (const c of chunks) len += c.length;
  const out = new Uint8Array(len);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

export const hex = (n) => (n === undefined || n === null ? String(n) : "0x" + n.toString(16).padStart(2, "0"));

/**
 * Collects the outcome of each feature check: `await c.check("tcp echo", async () => {...})`.
 * A check passes when its function resolves; the resolved string (if any) is kept as detail.
 * `peerBug` marks a check that documents a peer's own bug and verifies our side degrades cleanly.
 */
export class Checks {
  constructor(log = () => {}) {
    this.results = [];
    this.log = log;
  }
  async check(feature, fn, { timeoutMs = 30000, peerBug } = {}) {
    const start = Date.now();
    let ok = false;
    let detail = "";
    try {
      detail = (await withTimeout(Promise.resolve().then(fn), timeoutMs, feature)) || "";
      ok = true;
    } catch (e) {
      detail = String(e && e.stack ? e.message : e);
    }
    const r = { feature, ok, detail, ms: Date.now() - start };
    if (peerBug) r.peerBug = peerBug;
    this.results.push(r);
    this.log(`${ok ? "ok  " : "FAIL"} ${feature}${detail ? " — " + detail : ""}`);
    return ok;
  }
}

export function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}
