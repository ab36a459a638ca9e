//! [`WispClient`]: one Wisp connection over one browser `WebSocket`.

use std::cell::Cell;
use std::rc::Rc;

use ed25519_dalek::SigningKey;
use js_sys::{Array, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wisp_core::extensions::cert::{CertAuthProtocolExtensionBuilder, KeyHash};
use wisp_core::extensions::confirmation::StreamConfirmationProtocolExtensionBuilder;
use wisp_core::extensions::motd::MotdProtocolExtensionBuilder;
use wisp_core::extensions::password::PasswordProtocolExtensionBuilder;
use wisp_core::extensions::udp::UdpProtocolExtensionBuilder;
use wisp_core::extensions::AnyProtocolExtensionBuilder;
use wisp_core::{ClientMux, CloseReason, MuxOptions, StreamType, WispError, WispV2Handshake};

use crate::error::{reason_error, to_js, type_error};
use crate::stream::WispStream;
use crate::transport::{self, WsWatch, WsWrite};
use crate::{Settle, StreamPromise, VoidPromise, WispConnectOptions};

/// The subprotocol offered when v2 is on; the server speaks v2 only to clients that offer one.
const V2_SUBPROTOCOL: &str = "wisp-v2";

pub(crate) struct ClientInner {
    pub(crate) mux: ClientMux<WsWrite>,
    pub(crate) ended: Cell<bool>,
    closing: Cell<bool>,
    closed: Settle,
    watch: WsWatch,
}

impl ClientInner {
    /// Whether the connection has ended (the actor is done or the mux says so).
    pub(crate) fn is_ended(&self) -> bool {
        self.ended.get() || self.mux.is_closed()
    }
}

/// A Wisp connection. Create it with `WispClient.connect(url, options)`.
#[wasm_bindgen]
pub struct WispClient {
    inner: Rc<ClientInner>,
}

struct Options {
    v2: bool,
    udp: bool,
    motd: bool,
    password: Option<(String, String)>,
    key: Option<(SigningKey, KeyHash)>,
    required: Vec<u8>,
    confirmation: bool,
    mux: MuxOptions,
}

fn get(obj: &JsValue, key: &str) -> Result<Option<JsValue>, JsValue> {
    if obj.is_undefined() || obj.is_null() {
        return Ok(None);
    }
    let v = Reflect::get(obj, &JsValue::from_str(key))?;
    Ok(if v.is_undefined() || v.is_null() {
        None
    } else {
        Some(v)
    })
}

fn get_bool(obj: &JsValue, key: &str, default: bool) -> Result<bool, JsValue> {
    match get(obj, key)? {
        None => Ok(default),
        Some(v) => v
            .as_bool()
            .ok_or_else(|| type_error(&format!("option {key} must be a boolean"))),
    }
}

fn get_string(obj: &JsValue, key: &str) -> Result<String, JsValue> {
    get(obj, key)?
        .and_then(|v| v.as_string())
        .ok_or_else(|| type_error(&format!("{key} must be a string")))
}

fn get_size(obj: &JsValue, key: &str) -> Result<Option<usize>, JsValue> {
    match get(obj, key)? {
        None => Ok(None),
        Some(v) => match v.as_f64() {
            Some(n) if n >= 1.0 && n.fract() == 0.0 && n <= u32::MAX as f64 => Ok(Some(n as usize)),
            _ => Err(type_error(&format!(
                "option {key} must be a positive integer"
            ))),
        },
    }
}

fn extension_id(v: &JsValue) -> Result<u8, JsValue> {
    if let Some(n) = v.as_f64() {
        if (0.0..=255.0).contains(&n) && n.fract() == 0.0 {
            return Ok(n as u8);
        }
    }
    match v.as_string().as_deref() {
        Some("udp") => Ok(0x01),
        Some("password") => Ok(0x02),
        Some("key") | Some("cert") => Ok(0x03),
        Some("motd") => Ok(0x04),
        Some("confirmation") | Some("streamConfirmation") => Ok(0x05),
        _ => Err(type_error(
            "requiredExtensions entries must be extension IDs (0-255) or names \
             (udp, password, key, motd, confirmation)",
        )),
    }
}

fn parse_options(o: &JsValue) -> Result<Options, JsValue> {
    let password = match get(o, "password")? {
        None => None,
        Some(p) => Some((get_string(&p, "username")?, get_string(&p, "password")?)),
    };
    let key = match get(o, "key")? {
        None => None,
        Some(k) => {
            let seed = get(&k, "seed")?
                .and_then(|s| s.dyn_into::<Uint8Array>().ok())
                .ok_or_else(|| type_error("key.seed must be a Uint8Array"))?;
            let seed: [u8; 32] = seed
                .to_vec()
                .try_into()
                .map_err(|_| type_error("key.seed must be 32 bytes"))?;
            let hash = match get(&k, "hash")?.and_then(|h| h.as_string()).as_deref() {
                None | Some("sha256") => KeyHash::Sha256,
                Some("sha512") => KeyHash::Sha512,
                Some(_) => return Err(type_error("key.hash must be \"sha256\" or \"sha512\"")),
            };
            Some((SigningKey::from_bytes(&seed), hash))
        }
    };
    let required = match get(o, "requiredExtensions")? {
        None => Vec::new(),
        Some(list) => {
            if !Array::is_array(&list) {
                return Err(type_error("requiredExtensions must be an array"));
            }
            Array::from(&list)
                .iter()
                .map(|v| extension_id(&v))
                .collect::<Result<_, _>>()?
        }
    };
    let mut mux = MuxOptions::default();
    if let Some(n) = get_size(o, "streamBufferBytes")? {
        mux.stream_receive_buffer = n;
    }
    if let Some(n) = get_size(o, "connectionBufferBytes")? {
        mux.connection_receive_buffer = n;
    }
    if let Some(n) = get_size(o, "maxStreams")? {
        mux.max_streams = n;
    }
    Ok(Options {
        v2: get_bool(o, "v2", true)?,
        udp: get_bool(o, "udp", true)?,
        motd: get_bool(o, "motd", true)?,
        password,
        key,
        required,
        confirmation: get_bool(o, "streamConfirmation", true)?,
        mux,
    })
}

fn handshake(o: &mut Options) -> Option<WispV2Handshake> {
    if !o.v2 {
        return None;
    }
    let mut builders = Vec::new();
    if o.udp {
        builders.push(AnyProtocolExtensionBuilder::new(
            UdpProtocolExtensionBuilder,
        ));
    }
    if o.motd {
        builders.push(AnyProtocolExtensionBuilder::new(
            MotdProtocolExtensionBuilder::Client,
        ));
    }
    if let Some((user, pass)) = o.password.take() {
        builders.push(AnyProtocolExtensionBuilder::new(
            PasswordProtocolExtensionBuilder::new_client(user, pass),
        ));
    }
    if let Some((key, hash)) = o.key.take() {
        builders.push(AnyProtocolExtensionBuilder::new(
            CertAuthProtocolExtensionBuilder::new_client(key).key_hash(hash),
        ));
    }
    if o.confirmation {
        builders.push(AnyProtocolExtensionBuilder::new(
            StreamConfirmationProtocolExtensionBuilder,
        ));
    }
    Some(WispV2Handshake::new(builders))
}

#[wasm_bindgen]
impl WispClient {
    /// Opens a WebSocket to `url` and performs the Wisp handshake. Resolves once the handshake
    /// is done; rejects with a `WispError` (for example code 0xc0 for a refused password, 0x04
    /// when a required extension is missing, 0x03 when the WebSocket cannot be opened).
    pub async fn connect(
        url: String,
        options: Option<WispConnectOptions>,
    ) -> Result<WispClient, JsValue> {
        let options: JsValue = options.map_or(JsValue::UNDEFINED, Into::into);
        let mut o = parse_options(&options)?;
        let v2 = handshake(&mut o);
        let protocol = o.v2.then_some(V2_SUBPROTOCOL);
        // A browser fails the opening handshake when it offered a subprotocol and the server
        // selected none, which v1-only servers (wisp-python) do: then try once more without it,
        // as a v1 client; the handshake below reports the connection as downgraded.
        let opened = match transport::connect(&url, protocol).await {
            Err(_) if protocol.is_some() => transport::connect(&url, None).await,
            other => other,
        };
        let (rx, tx) = opened.map_err(|e| to_js(&e, Some(CloseReason::Unexpected)))?;
        let watch = rx.watch();
        let result = ClientMux::new_with_options(rx, tx, o.mux, v2)
            .await
            .map_err(|e| handshake_error(&e))?;
        let (mux, actor) = if o.required.is_empty() {
            result.with_no_required_extensions()
        } else {
            result
                .with_required_extensions(&o.required)
                .await
                .map_err(|e| handshake_error(&e))?
        };
        let inner = Rc::new(ClientInner {
            mux,
            ended: Cell::new(false),
            closing: Cell::new(false),
            closed: Settle::new(),
            watch,
        });
        let weak = Rc::downgrade(&inner);
        // On the receive path's executor: a message event runs the actor at once.
        crate::executor::spawn(async move {
            let result = actor.await;
            let Some(inner) = weak.upgrade() else { return };
            inner.ended.set(true);
            match result {
                Err(e) => inner.closed.reject(&to_js(&e, None)),
                Ok(()) => {
                    let end = inner.watch.end();
                    let lost = !inner.closing.get()
                        && end.as_ref().is_some_and(|e| e.error || e.code != 1000);
                    if lost {
                        let code = end.map_or(0, |e| e.code);
                        inner.closed.reject(&reason_error(
                            &format!("the Wisp connection was lost (WebSocket close code {code})"),
                            CloseReason::Unexpected,
                        ));
                    } else {
                        inner.closed.resolve();
                    }
                }
            }
        });
        Ok(WispClient { inner })
    }

    /// The protocol version in use, as "major.minor".
    #[wasm_bindgen(getter, js_name = protocolVersion)]
    pub fn protocol_version(&self) -> String {
        let v = self.inner.mux.get_protocol_version();
        format!("{}.{}", v.major, v.minor)
    }

    /// The IDs of the extensions both sides agreed on (0x01 UDP, 0x02 password, 0x03 key,
    /// 0x04 MOTD, 0x05 stream confirmation).
    #[wasm_bindgen(getter)]
    pub fn extensions(&self) -> Vec<u8> {
        self.inner.mux.get_extension_ids()
    }

    /// The server's message of the day, if it sent one.
    #[wasm_bindgen(getter)]
    pub fn motd(&self) -> Option<String> {
        self.inner.mux.motd().map(String::from)
    }

    /// Whether v2 was offered and the server speaks only v1.
    #[wasm_bindgen(getter)]
    pub fn downgraded(&self) -> bool {
        self.inner.mux.was_downgraded()
    }

    /// Whether UDP streams may be opened.
    #[wasm_bindgen(getter, js_name = supportsUdp)]
    pub fn supports_udp(&self) -> bool {
        self.inner.mux.supports_udp()
    }

    /// Resolves when the connection has ended cleanly (by `close()` or by the server), rejects
    /// with a `WispError` (code 0x03) when it was lost.
    #[wasm_bindgen(getter)]
    pub fn closed(&self) -> VoidPromise {
        self.inner.closed.promise().unchecked_into()
    }

    /// Closes the connection (CLOSE 0x02 on stream 0); every open stream ends.
    pub fn close(&self) {
        self.inner.closing.set(true);
        // The close is queued synchronously; the future only reports whether the mux still ran.
        let _ = futures::FutureExt::now_or_never(
            self.inner.mux.close_with_reason(CloseReason::Voluntary),
        );
    }

    /// Opens a TCP stream to `host:port`. With stream confirmation negotiated it resolves once
    /// the server has connected, and rejects with a `WispError` carrying the server's reason
    /// (0x44 refused, 0x48 blocked, 0x42 unreachable, ...).
    #[wasm_bindgen(js_name = openTcp)]
    pub fn open_tcp(&self, host: String, port: u16) -> StreamPromise {
        self.open(StreamType::Tcp, host, port)
    }

    /// Opens a UDP stream to `host:port`: each chunk written is one datagram, each chunk read
    /// is one datagram.
    #[wasm_bindgen(js_name = openUdp)]
    pub fn open_udp(&self, host: String, port: u16) -> StreamPromise {
        self.open(StreamType::Udp, host, port)
    }
}

impl WispClient {
    fn open(&self, kind: StreamType, host: String, port: u16) -> StreamPromise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let stream = inner
                .mux
                .new_stream(kind, &host, port)
                .await
                .map_err(|e| to_js(&e, None))?;
            Ok(WispStream::new(stream, inner).into())
        })
        .unchecked_into()
    }
}

/// The error for a failed handshake.
fn handshake_error(e: &WispError) -> JsValue {
    to_js(e, None)
}
