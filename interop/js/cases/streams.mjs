// Helpers for clients that expose a TCP/UDP stream as a WHATWG { readable, writable } pair.
import { assert, concat, equalBytes, firstDiff, pattern, withTimeout } from "./util.mjs";

/**
 * Writes `data` in `chunk`-byte pieces while reading until as many bytes came back; compares.
 * With `lockStep`, each piece's whole echo is read before the next is written, so the server
 * never holds more than `chunk` bytes of this stream to send. Used against wisp-python, which
 * loses streams once its socket to us backs up (peer bug 4 in interop/README.md).
 */
export async function echoThrough(readable, writable, data, chunk = 16384, { lockStep = false } = {}) {
  const writer = writable.getWriter();
  const reader = readable.getReader();
  const chunks = [];
  let got = 0;
  const readUntil = async (want) => {
    while (got < want) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`stream ended after ${got} of ${data.length} bytes`);
      const bytes = new Uint8Array(value);
      chunks.push(bytes);
      got += bytes.length;
    }
  };
  if (lockStep) {
    for (let at = 0; at < data.length; at += chunk) {
      await writer.write(data.slice(at, at + chunk));
      await readUntil(Math.min(at + chunk, data.length));
    }
  } else {
    const writing = (async () => {
      for (let at = 0; at < data.length; at += chunk) await writer.write(data.slice(at, at + chunk));
    })();
    await readUntil(data.length);
    await writing;
  }
  const all = concat(chunks);
  assert(equalBytes(all, data), `echo differs at byte ${firstDiff(all, data)} (${all.length} bytes back)`);
  reader.releaseLock();
  writer.releaseLock();
}

/** Sends datagrams of several sizes and expects each back whole, one chunk per datagram. */
export async function udpEcho(readable, writable, sizes = [1, 512, 1400, 8000]) {
  const writer = writable.getWriter();
  const reader = readable.getReader();
  for (const n of sizes) {
    const dgram = pattern(n, n);
    await writer.write(dgram);
    const { value, done } = await withTimeout(reader.read(), 5000, `${n}-byte datagram`);
    assert(!done, `stream ended waiting for the ${n}-byte datagram`);
    const got = new Uint8Array(value);
    assert(equalBytes(got, dgram), `${n}-byte datagram came back as ${got.length} bytes`);
  }
  reader.releaseLock();
  writer.releaseLock();
  return `${sizes.length} datagrams (${sizes.join(", ")} bytes) byte-exact`;
}
