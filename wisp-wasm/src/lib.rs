//! # wisp-wasm
//!
//! The Wisp client for JavaScript: [`wisp_core`]'s client multiplexer over the browser
//! `WebSocket`, exposed with promises and WHATWG streams.
//!
//! ```js
//! import init, { WispClient } from "wisp-wasm";
//! await init();
//! const client = await WispClient.connect("wss://example.org/wisp/", { udp: true });
//! const { readable, writable, closed } = await client.openTcp("example.com", 80);
//! ```
//!
//! - [`transport`]: the `WebSocket` as a `wisp-core` transport, with send backpressure on
//!   `bufferedAmount`.
//! - [`WispClient`]: the handshake, connection getters and stream opening.
//! - [`WispStream`]: one TCP or UDP stream as `{ readable, writable, closed, close() }`.
//!
//! Received data is pulled: a stream's `ReadableStream` takes data from the multiplexer only
//! when the page reads, so a paused reader loses nothing until it is `streamBufferBytes` behind.
//! Past that the stream is closed with reason 0x81 and its `readable` and `closed` fail with a
//! `WispError` whose `code` is 0x81; other streams are not affected.

#![warn(missing_docs)]

mod client;
mod error;
mod executor;
mod source;
mod stream;
pub mod transport;

pub use client::WispClient;
pub use error::is_wisp_error_js as is_wisp_error;
pub use stream::WispStream;

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** Options of `WispClient.connect`. */
export interface WispConnectOptions {
  /** Offer Wisp v2 (sends `Sec-WebSocket-Protocol: wisp-v2`). Default true. */
  v2?: boolean;
  /** Offer the UDP extension. Default true. */
  udp?: boolean;
  /** Accept the server's message of the day. Default true. */
  motd?: boolean;
  /** Log in with a password (extension 0x02). */
  password?: { username: string; password: string };
  /** Log in with an Ed25519 key (extension 0x03): the 32-byte secret seed. `hash` is the key
   *  hash sent: "sha256" (draft 6, default) or "sha512" (epoxy servers). */
  key?: { seed: Uint8Array; hash?: "sha256" | "sha512" };
  /** Extensions the server must agree to, by ID or by name ("udp", "password", "key",
   *  "motd", "confirmation"); otherwise `connect` rejects with code 0x04. */
  requiredExtensions?: (number | string)[];
  /** Offer stream-open confirmation (0x05), so that `openTcp`/`openUdp` resolve only once
   *  the server has connected. Default true. */
  streamConfirmation?: boolean;
  /** Bytes a stream may hold received and unread before it is closed with 0x81.
   *  Default 4 MiB. */
  streamBufferBytes?: number;
  /** Bytes all streams together may hold received and unread; past it the stream holding
   *  the most is closed with 0x81. Default 64 MiB. */
  connectionBufferBytes?: number;
  /** Streams open at once before `openTcp` fails. Default 4096. */
  maxStreams?: number;
}

/** An error of this package: an `Error` named "WispError". */
export interface WispError extends Error {
  name: "WispError";
  /** The Wisp close reason byte (0x44 refused, 0x48 blocked, 0x81 reader too slow, 0xc0
   *  bad password, ...). A lost connection has 0x03. */
  code: number;
  /** The reason's name ("connection refused", ...), or undefined for an unknown code. */
  reasonName: string | undefined;
}

/** Whether `value` is a `WispError`. */
export function isWispError(value: unknown): value is WispError;
"#;

#[wasm_bindgen]
extern "C" {
    /// Options of `WispClient.connect` (see the TypeScript declaration).
    #[wasm_bindgen(typescript_type = "WispConnectOptions")]
    pub type WispConnectOptions;

    /// A promise that resolves with nothing.
    #[wasm_bindgen(extends = js_sys::Promise, typescript_type = "Promise<void>")]
    pub type VoidPromise;

    /// A promise of a [`WispStream`].
    #[wasm_bindgen(extends = js_sys::Promise, typescript_type = "Promise<WispStream>")]
    pub type StreamPromise;

    /// A `ReadableStream<Uint8Array>`.
    #[wasm_bindgen(extends = web_sys::ReadableStream, typescript_type = "ReadableStream<Uint8Array>")]
    pub type ByteReadable;

    /// A `WritableStream<Uint8Array>`.
    #[wasm_bindgen(extends = web_sys::WritableStream, typescript_type = "WritableStream<Uint8Array>")]
    pub type ByteWritable;
}

thread_local! {
    static NOOP: Closure<dyn FnMut(JsValue)> = Closure::new(|_| {});
}

/// A promise plus its resolve/reject functions, settled at most once.
pub(crate) struct Settle {
    promise: js_sys::Promise,
    resolve: js_sys::Function,
    reject: js_sys::Function,
    done: std::cell::Cell<bool>,
}

impl Settle {
    pub(crate) fn new() -> Self {
        let mut res = None;
        let mut rej = None;
        let promise = js_sys::Promise::new(&mut |resolve, reject| {
            res = Some(resolve);
            rej = Some(reject);
        });
        // Mark the promise as handled, as the Direct Sockets API does for `closed`: a page that
        // never looks at it must not get "unhandled rejection" reports.
        NOOP.with(|noop| {
            let _ = promise.catch(noop);
        });
        Self {
            promise,
            resolve: res.expect("executor runs synchronously"),
            reject: rej.expect("executor runs synchronously"),
            done: std::cell::Cell::new(false),
        }
    }

    pub(crate) fn promise(&self) -> js_sys::Promise {
        self.promise.clone()
    }

    pub(crate) fn is_done(&self) -> bool {
        self.done.get()
    }

    pub(crate) fn resolve(&self) {
        if !self.done.replace(true) {
            let _ = self.resolve.call0(&JsValue::UNDEFINED);
        }
    }

    pub(crate) fn reject(&self, err: &JsValue) {
        if !self.done.replace(true) {
            let _ = self.reject.call1(&JsValue::UNDEFINED, err);
        }
    }
}
