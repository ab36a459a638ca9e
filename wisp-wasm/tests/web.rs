//! wisp-wasm in headless Chromium against a real wisp-server and real loopback targets.
//!
//! Run with `scripts/test-wasm.sh`, which starts everything and bakes the addresses in through
//! these environment variables (read with `option_env!` at compile time):
//! `WISP_URL` (open server), `WISP_AUTH_URL` (server requiring a password or key),
//! `WISP_DOOMED_URL` (server the last test kills), `WISP_ECHO_PORT`, `WISP_SOURCE_PORT`,
//! `WISP_UDP_PORT`, `WISP_REFUSED_PORT`, `WISP_CONTROL_URL`, `WISP_KEY_SEED`.
//!
//! Streams are used through their JavaScript surface (`readable`, `writable`, `closed`,
//! `close()`), as a page would.

#![cfg(target_arch = "wasm32")]

use std::future::Future;

use futures::future::{join_all, select, Either};
use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;
use web_sys::{ReadableStreamDefaultReader, WritableStreamDefaultWriter};
use wisp_wasm::WispClient;

wasm_bindgen_test_configure!(run_in_browser);

const HOST: &str = "127.0.0.1";

fn env(name: &str, value: Option<&'static str>) -> &'static str {
    value.unwrap_or_else(|| panic!("build with {name} set (run scripts/test-wasm.sh)"))
}

fn port(name: &str, value: Option<&'static str>) -> u16 {
    env(name, value).parse().expect("a port number")
}

fn open_url() -> &'static str {
    env("WISP_URL", option_env!("WISP_URL"))
}
fn auth_url() -> &'static str {
    env("WISP_AUTH_URL", option_env!("WISP_AUTH_URL"))
}
fn doomed_url() -> &'static str {
    env("WISP_DOOMED_URL", option_env!("WISP_DOOMED_URL"))
}
fn echo_port() -> u16 {
    port("WISP_ECHO_PORT", option_env!("WISP_ECHO_PORT"))
}
fn source_port() -> u16 {
    port("WISP_SOURCE_PORT", option_env!("WISP_SOURCE_PORT"))
}
fn udp_port() -> u16 {
    port("WISP_UDP_PORT", option_env!("WISP_UDP_PORT"))
}
fn refused_port() -> u16 {
    port("WISP_REFUSED_PORT", option_env!("WISP_REFUSED_PORT"))
}
fn control_url() -> &'static str {
    env("WISP_CONTROL_URL", option_env!("WISP_CONTROL_URL"))
}
fn key_seed() -> Vec<u8> {
    let hex = env("WISP_KEY_SEED", option_env!("WISP_KEY_SEED"));
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

// ------------------------------------------------------------------ helpers

trait ExpectFailure {
    /// The error, or a panic saying what should have failed.
    fn expect_failure(self, what: &str) -> JsValue;
}

impl<T> ExpectFailure for Result<T, JsValue> {
    fn expect_failure(self, what: &str) -> JsValue {
        match self {
            Ok(_) => panic!("expected a failure: {what}"),
            Err(e) => e,
        }
    }
}

fn obj(fields: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in fields {
        Reflect::set(&o, &JsValue::from_str(k), v).unwrap();
    }
    o.into()
}

fn get(o: &JsValue, key: &str) -> JsValue {
    Reflect::get(o, &JsValue::from_str(key)).unwrap()
}

async fn sleep(ms: i32) {
    let p = Promise::new(&mut |resolve, _| {
        let global = js_sys::global();
        let set_timeout: Function = get(&global, "setTimeout").unchecked_into();
        set_timeout
            .call2(&global, &resolve, &JsValue::from(ms))
            .unwrap();
    });
    JsFuture::from(p).await.unwrap();
}

/// Fails the test if `fut` takes longer than `ms`.
async fn within<T>(ms: i32, what: &str, fut: impl Future<Output = T>) -> T {
    let fut = std::pin::pin!(fut);
    let timer = std::pin::pin!(sleep(ms));
    match select(fut, timer).await {
        Either::Left((v, _)) => v,
        Either::Right(_) => panic!("{what}: no result within {ms} ms"),
    }
}

async fn connect(url: &str, options: JsValue) -> Result<WispClient, JsValue> {
    WispClient::connect(url.to_string(), Some(options.unchecked_into())).await
}

async fn connect_ok(url: &str, options: JsValue) -> WispClient {
    match within(10_000, "connect", connect(url, options)).await {
        Ok(c) => c,
        Err(e) => panic!("connect to {url} failed: {}", describe(&e)),
    }
}

fn describe(e: &JsValue) -> String {
    let code = get(e, "code");
    format!(
        "{} (code {:?}, name {:?})",
        get(e, "message")
            .as_string()
            .unwrap_or_else(|| format!("{e:?}")),
        code.as_f64(),
        get(e, "reasonName").as_string()
    )
}

/// The `code` of a `WispError`, checking that it is one.
fn wisp_code(e: &JsValue) -> u8 {
    assert!(e.is_instance_of::<js_sys::Error>(), "not an Error: {e:?}");
    assert!(
        wisp_wasm_is_wisp_error(e),
        "not a WispError: {}",
        describe(e)
    );
    get(e, "code").as_f64().expect("code is a number") as u8
}

fn wisp_wasm_is_wisp_error(e: &JsValue) -> bool {
    get(e, "name").as_string().as_deref() == Some("WispError") && wisp_wasm::is_wisp_error(e)
}

async fn await_promise(p: JsValue) -> Result<JsValue, JsValue> {
    JsFuture::from(p.unchecked_into::<Promise>()).await
}

async fn open_tcp(client: &WispClient, port: u16) -> Result<JsValue, JsValue> {
    await_promise(client.open_tcp(HOST.into(), port).into()).await
}

async fn open_tcp_ok(client: &WispClient, port: u16) -> JsValue {
    match within(10_000, "openTcp", open_tcp(client, port)).await {
        Ok(s) => s,
        Err(e) => panic!("openTcp to port {port} failed: {}", describe(&e)),
    }
}

fn reader(stream: &JsValue) -> ReadableStreamDefaultReader {
    let readable: web_sys::ReadableStream = get(stream, "readable").unchecked_into();
    readable.get_reader().unchecked_into()
}

fn writer(stream: &JsValue) -> WritableStreamDefaultWriter {
    let writable: web_sys::WritableStream = get(stream, "writable").unchecked_into();
    writable.get_writer().unwrap()
}

/// The next chunk, `None` at the end, `Err` if the readable errored.
async fn read_chunk(r: &ReadableStreamDefaultReader) -> Result<Option<Vec<u8>>, JsValue> {
    let result = JsFuture::from(r.read()).await?;
    if get(&result, "done").as_bool() == Some(true) {
        return Ok(None);
    }
    let value = get(&result, "value");
    let chunk: Uint8Array = value.dyn_into().expect("readable chunks are Uint8Array");
    Ok(Some(chunk.to_vec()))
}

/// Reads exactly `n` bytes (fails on end or error before).
async fn read_exact(r: &ReadableStreamDefaultReader, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        match read_chunk(r).await {
            Ok(Some(c)) => out.extend_from_slice(&c),
            Ok(None) => panic!("stream ended after {} of {n} bytes", out.len()),
            Err(e) => panic!(
                "read failed after {} of {n} bytes: {}",
                out.len(),
                describe(&e)
            ),
        }
    }
    out
}

async fn write(w: &WritableStreamDefaultWriter, data: &[u8]) {
    let chunk = Uint8Array::from(data);
    if let Err(e) = JsFuture::from(w.write_with_chunk(&chunk)).await {
        panic!("write failed: {}", describe(&e));
    }
}

fn close_stream(stream: &JsValue) {
    let close: Function = get(stream, "close").unchecked_into();
    close.call0(stream).unwrap();
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// What the source target sends: `(i * 7 + 3) & 0xff`.
fn source_byte(i: usize) -> u8 {
    (i.wrapping_mul(7).wrapping_add(3) & 0xff) as u8
}

async fn ask_source(stream: &JsValue, n: u32) {
    let w = writer(stream);
    write(&w, &n.to_le_bytes()).await;
    w.release_lock();
}

// ------------------------------------------------------------------ tests

#[wasm_bindgen_test]
async fn tcp_echo_roundtrip() {
    let client = connect_ok(open_url(), obj(&[])).await;
    let stream = open_tcp_ok(&client, echo_port()).await;
    let (r, w) = (reader(&stream), writer(&stream));
    write(&w, b"hello wisp").await;
    let got = within(10_000, "echo", read_exact(&r, 10)).await;
    assert_eq!(got, b"hello wisp");
    close_stream(&stream);
    within(5_000, "closed", await_promise(get(&stream, "closed")))
        .await
        .expect("closed resolves after close()");
    client.close();
}

#[wasm_bindgen_test]
async fn tcp_echo_16_mib_byte_exact() {
    const TOTAL: usize = 16 * 1024 * 1024;
    const CHUNK: usize = 64 * 1024;
    let client = connect_ok(open_url(), obj(&[])).await;
    let stream = open_tcp_ok(&client, echo_port()).await;
    let data = pattern(TOTAL, 16);
    let (r, w) = (reader(&stream), writer(&stream));
    let send = async {
        for c in data.chunks(CHUNK) {
            write(&w, c).await;
        }
    };
    let receive = read_exact(&r, TOTAL);
    let ((), got) = within(90_000, "16 MiB echo", futures::future::join(send, receive)).await;
    assert_eq!(got.len(), TOTAL);
    if let Some(i) = got.iter().zip(&data).position(|(a, b)| a != b) {
        panic!("echo differs at byte {i}");
    }
    client.close();
}

#[wasm_bindgen_test]
async fn hundred_concurrent_streams() {
    let client = connect_ok(open_url(), obj(&[])).await;
    let streams = within(
        20_000,
        "opening 100 streams",
        join_all((0..100).map(|_| open_tcp(&client, echo_port()))),
    )
    .await;
    let streams: Vec<JsValue> = streams
        .into_iter()
        .map(|s| s.unwrap_or_else(|e| panic!("openTcp failed: {}", describe(&e))))
        .collect();
    let ids: std::collections::HashSet<u32> = streams
        .iter()
        .map(|s| get(s, "id").as_f64().unwrap() as u32)
        .collect();
    assert_eq!(ids.len(), 100, "stream ids are distinct");
    let runs = streams.iter().enumerate().map(|(i, s)| async move {
        let data = pattern(32 * 1024 + i, i as u32);
        let (r, w) = (reader(s), writer(s));
        let (_, got) = futures::future::join(
            async {
                for c in data.chunks(10_000) {
                    write(&w, c).await;
                }
            },
            read_exact(&r, data.len()),
        )
        .await;
        assert!(got == data, "stream {i} echoed different bytes");
        close_stream(s);
    });
    within(60_000, "100 streams", join_all(runs)).await;
    client.close();
}

#[wasm_bindgen_test]
async fn udp_echo_one_chunk_per_datagram() {
    let client = connect_ok(open_url(), obj(&[])).await;
    assert!(client.supports_udp());
    assert!(client.extensions().contains(&0x01), "UDP negotiated");
    let stream = match within(
        10_000,
        "openUdp",
        await_promise(client.open_udp(HOST.into(), udp_port()).into()),
    )
    .await
    {
        Ok(s) => s,
        Err(e) => panic!("openUdp failed: {}", describe(&e)),
    };
    let (r, w) = (reader(&stream), writer(&stream));
    for (i, len) in [1usize, 100, 1400, 8000].into_iter().enumerate() {
        let datagram = pattern(len, 100 + i as u32);
        write(&w, &datagram).await;
        let got = within(5_000, "datagram echo", read_chunk(&r))
            .await
            .expect("read ok")
            .expect("a datagram");
        assert_eq!(
            got, datagram,
            "datagram {i} came back as one chunk, unchanged"
        );
    }
    client.close();
}

#[wasm_bindgen_test]
async fn password_accepted() {
    let client = connect_ok(
        auth_url(),
        obj(&[(
            "password",
            obj(&[
                ("username", "alice".into()),
                ("password", "correct horse".into()),
            ]),
        )]),
    )
    .await;
    assert!(client.extensions().contains(&0x02), "password negotiated");
    let stream = open_tcp_ok(&client, echo_port()).await;
    let (r, w) = (reader(&stream), writer(&stream));
    write(&w, b"authed").await;
    assert_eq!(within(5_000, "echo", read_exact(&r, 6)).await, b"authed");
    client.close();
}

#[wasm_bindgen_test]
async fn password_refused() {
    let result = within(
        10_000,
        "connect",
        connect(
            auth_url(),
            obj(&[(
                "password",
                obj(&[("username", "alice".into()), ("password", "wrong".into())]),
            )]),
        ),
    )
    .await;
    let err = result.expect_failure("a wrong password is refused");
    assert_eq!(wisp_code(&err), 0xc0, "{}", describe(&err));
    // No credentials at all on a server that requires them.
    let err = within(10_000, "connect", connect(auth_url(), obj(&[])))
        .await
        .expect_failure("no credentials is refused");
    assert_eq!(wisp_code(&err), 0xc2, "{}", describe(&err));
}

#[wasm_bindgen_test]
async fn key_login() {
    let seed = Uint8Array::from(&key_seed()[..]);
    let client = connect_ok(auth_url(), obj(&[("key", obj(&[("seed", seed.into())]))])).await;
    assert!(client.extensions().contains(&0x03), "key auth negotiated");
    let stream = open_tcp_ok(&client, echo_port()).await;
    let (r, w) = (reader(&stream), writer(&stream));
    write(&w, b"signed").await;
    assert_eq!(within(5_000, "echo", read_exact(&r, 6)).await, b"signed");
    client.close();

    // Another key is refused with 0xc1.
    let other = Uint8Array::from(&[7u8; 32][..]);
    let err = within(
        10_000,
        "connect",
        connect(auth_url(), obj(&[("key", obj(&[("seed", other.into())]))])),
    )
    .await
    .expect_failure("an unknown key is refused");
    assert_eq!(wisp_code(&err), 0xc1, "{}", describe(&err));
}

#[wasm_bindgen_test]
async fn motd_and_connection_getters() {
    let client = connect_ok(open_url(), obj(&[])).await;
    assert_eq!(client.motd().as_deref(), Some("hello from wisp-server"));
    assert_eq!(client.protocol_version(), "2.0");
    assert!(!client.downgraded());
    let ext = client.extensions();
    for id in [0x01, 0x04, 0x05] {
        assert!(ext.contains(&id), "extension {id:#04x} negotiated: {ext:?}");
    }
    client.close();
    within(
        5_000,
        "client closed",
        await_promise(client.closed().into()),
    )
    .await
    .expect("closed resolves after close()");

    // Without v2: a v1 connection, no MOTD.
    let v1 = connect_ok(open_url(), obj(&[("v2", false.into())])).await;
    assert_eq!(
        (v1.protocol_version(), v1.motd(), v1.downgraded()),
        ("1.2".to_string(), None, false)
    );
    let stream = open_tcp_ok(&v1, echo_port()).await;
    let (r, w) = (reader(&stream), writer(&stream));
    write(&w, b"v1").await;
    assert_eq!(within(5_000, "v1 echo", read_exact(&r, 2)).await, b"v1");
    v1.close();
}

#[wasm_bindgen_test]
async fn required_extension_missing_is_refused() {
    let err = within(
        10_000,
        "connect",
        connect(
            open_url(),
            obj(&[("requiredExtensions", Array::of1(&"password".into()).into())]),
        ),
    )
    .await
    .expect_failure("the open server has no password extension");
    assert_eq!(wisp_code(&err), 0x04, "{}", describe(&err));
}

#[wasm_bindgen_test]
async fn unreachable_server_rejects_connect() {
    // Nothing listens on the refused port: the WebSocket cannot open.
    let url = format!("ws://{HOST}:{}/", refused_port());
    let err = within(10_000, "connect", connect(&url, obj(&[])))
        .await
        .expect_failure("connect to a closed port");
    assert_eq!(wisp_code(&err), 0x03, "{}", describe(&err));
}

/// Regression (interop with wisp-python): a v1 server that never selects the offered
/// subprotocol makes the browser fail the opening handshake; the client retries without it.
#[wasm_bindgen_test]
async fn v1_server_without_subprotocol_echo_falls_back() {
    let url = format!(
        "ws://{HOST}:{}/",
        port("WISP_NOECHO_PORT", option_env!("WISP_NOECHO_PORT"))
    );
    let client = within(10_000, "connect", connect_ok(&url, obj(&[]))).await;
    assert_eq!(client.protocol_version(), "1.2");
    assert!(client.downgraded());
}

#[wasm_bindgen_test]
async fn refused_port_gives_0x44() {
    let client = connect_ok(open_url(), obj(&[])).await;
    let err = within(10_000, "openTcp", open_tcp(&client, refused_port()))
        .await
        .expect_failure("nothing listens on the refused port");
    assert_eq!(wisp_code(&err), 0x44, "{}", describe(&err));
    assert_eq!(
        get(&err, "reasonName").as_string().as_deref(),
        Some("connection refused")
    );
    // The connection carries on.
    let stream = open_tcp_ok(&client, echo_port()).await;
    let (r, w) = (reader(&stream), writer(&stream));
    write(&w, b"after").await;
    assert_eq!(within(5_000, "echo", read_exact(&r, 5)).await, b"after");
    client.close();
}

#[wasm_bindgen_test]
async fn refused_port_without_confirmation_errors_the_readable() {
    let client = connect_ok(open_url(), obj(&[("streamConfirmation", false.into())])).await;
    assert!(!client.extensions().contains(&0x05));
    let stream = open_tcp_ok(&client, refused_port()).await;
    let r = reader(&stream);
    let err = within(10_000, "read", read_chunk(&r))
        .await
        .expect_failure("the readable errors");
    assert_eq!(wisp_code(&err), 0x44, "{}", describe(&err));
    let err = within(5_000, "closed", await_promise(get(&stream, "closed")))
        .await
        .expect_failure("closed rejects");
    assert_eq!(wisp_code(&err), 0x44);
    client.close();
}

#[wasm_bindgen_test]
async fn blocked_host_gives_0x48() {
    let client = connect_ok(open_url(), obj(&[])).await;
    let err = within(
        10_000,
        "openTcp",
        await_promise(client.open_tcp("blocked.test".into(), 80).into()),
    )
    .await
    .expect_failure("blocked.test is blocked by policy");
    assert_eq!(wisp_code(&err), 0x48, "{}", describe(&err));
    client.close();
}

#[wasm_bindgen_test]
async fn paused_reader_gets_every_byte_in_order() {
    // 3 MiB arrive while the page does not read: below the 4 MiB per-stream cap.
    const TOTAL: usize = 3 * 1024 * 1024;
    let client = connect_ok(
        open_url(),
        obj(&[("streamBufferBytes", (4 * 1024 * 1024).into())]),
    )
    .await;
    let stream = open_tcp_ok(&client, source_port()).await;
    ask_source(&stream, TOTAL as u32).await;
    sleep(2_000).await;
    let r = reader(&stream);
    let got = within(30_000, "reading after the pause", read_exact(&r, TOTAL)).await;
    if let Some(i) = (0..TOTAL).find(|&i| got[i] != source_byte(i)) {
        panic!("byte {i} out of order or lost");
    }
    // The source then ends: the stream closes with 0x02.
    let end = within(10_000, "end", read_chunk(&r)).await;
    assert!(matches!(end, Ok(None)), "the readable ends cleanly");
    within(5_000, "closed", await_promise(get(&stream, "closed")))
        .await
        .expect("closed resolves on 0x02");
    client.close();
}

#[wasm_bindgen_test]
async fn chunks_belong_to_the_page_to_mutate_and_transfer() {
    // Chunks may be views of the WebSocket message they arrived in: the page owns them, so
    // zeroing one or transferring its buffer away must not touch any other chunk.
    const TOTAL: usize = 2 * 1024 * 1024;
    let client = connect_ok(open_url(), obj(&[])).await;
    let stream = open_tcp_ok(&client, source_port()).await;
    ask_source(&stream, TOTAL as u32).await;
    let r = reader(&stream);
    let structured_clone: Function = get(&js_sys::global(), "structuredClone").unchecked_into();
    let mut at = 0;
    while at < TOTAL {
        let result = within(10_000, "read", JsFuture::from(r.read()))
            .await
            .unwrap_or_else(|e| panic!("read failed after {at} bytes: {}", describe(&e)));
        assert_ne!(get(&result, "done").as_bool(), Some(true), "ended at {at}");
        let chunk: Uint8Array = get(&result, "value").unchecked_into();
        let bytes = chunk.to_vec();
        if let Some(i) = (0..bytes.len()).find(|&i| bytes[i] != source_byte(at + i)) {
            panic!("byte {} wrong", at + i);
        }
        at += bytes.len();
        chunk.fill(0, 0, chunk.length());
        let buffer = chunk.buffer();
        let options = obj(&[("transfer", Array::of1(&buffer).into())]);
        structured_clone
            .call2(&JsValue::UNDEFINED, &buffer, &options)
            .expect("a chunk's buffer can be transferred");
        assert_eq!(chunk.length(), 0, "the transferred chunk is detached");
    }
    assert_eq!(at, TOTAL);
    client.close();
}

#[wasm_bindgen_test]
async fn stopped_reader_is_closed_with_0x81_others_carry_on() {
    const CAP: usize = 1024 * 1024;
    stopped_reader(obj(&[("streamBufferBytes", CAP.into())]), CAP).await;
}

#[wasm_bindgen_test]
async fn connection_cap_closes_the_largest_backlog_with_0x81() {
    // The per-stream cap is out of reach; the connection-wide one (1 MiB) is hit first.
    const CAP: usize = 1024 * 1024;
    stopped_reader(
        obj(&[
            ("streamBufferBytes", (64 * CAP).into()),
            ("connectionBufferBytes", CAP.into()),
        ]),
        CAP,
    )
    .await;
}

/// A stream whose reader stops for good while a second stream keeps echoing: the first is
/// closed with 0x81 (seen in `closed` without reading, then in the readable), the second
/// carries on. `CAP` is the smallest receive cap in `options`.
async fn stopped_reader(options: JsValue, cap: usize) {
    let client = connect_ok(open_url(), options).await;
    let stuck = open_tcp_ok(&client, source_port()).await;
    let other = open_tcp_ok(&client, echo_port()).await;
    ask_source(&stuck, (8 * cap) as u32).await;
    // Nobody reads `stuck`. Its `closed` must reject with 0x81 on its own.
    let (r, w) = (reader(&other), writer(&other));
    let err = within(20_000, "stuck stream closed", async {
        let closed = await_promise(get(&stuck, "closed"));
        let mut closed = std::pin::pin!(closed);
        let mut round = 0u32;
        loop {
            // Meanwhile the other stream works.
            let msg = format!("round {round}");
            write(&w, msg.as_bytes()).await;
            assert_eq!(read_exact(&r, msg.len()).await, msg.as_bytes());
            round += 1;
            match select(closed.as_mut(), std::pin::pin!(sleep(20))).await {
                Either::Left((result, _)) => break result,
                Either::Right(_) => continue,
            }
        }
    })
    .await
    .expect_failure("closed rejects");
    assert_eq!(wisp_code(&err), 0x81, "{}", describe(&err));
    // Reading the stuck stream now shows the error, not a silently shortened stream.
    let sr = reader(&stuck);
    let mut read = 0usize;
    let err = loop {
        match within(5_000, "stuck read", read_chunk(&sr)).await {
            Ok(Some(c)) => read += c.len(),
            Ok(None) => panic!("the stuck stream ended cleanly after {read} bytes"),
            Err(e) => break e,
        }
    };
    assert_eq!(wisp_code(&err), 0x81, "{}", describe(&err));
    assert!(read < 8 * cap);
    // The other stream still carries on after the overflow.
    write(&w, b"still here").await;
    assert_eq!(
        within(5_000, "echo", read_exact(&r, 10)).await,
        b"still here"
    );
    client.close();
}

#[wasm_bindgen_test]
async fn server_going_away_errors_every_stream() {
    let client = connect_ok(doomed_url(), obj(&[])).await;
    let mut streams = Vec::new();
    for i in 0..3u8 {
        let s = open_tcp_ok(&client, echo_port()).await;
        let (r, w) = (reader(&s), writer(&s));
        write(&w, &[i; 4]).await;
        assert_eq!(within(5_000, "echo", read_exact(&r, 4)).await, [i; 4]);
        streams.push((s, r, w));
    }
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    let global: web_sys::Window = js_sys::global().unchecked_into();
    let kill = global.fetch_with_str_and_init(&format!("{}/kill", control_url()), &init);
    let response: web_sys::Response = JsFuture::from(kill).await.unwrap().unchecked_into();
    assert!(response.ok(), "the control endpoint killed the server");
    for (i, (s, r, _w)) in streams.iter().enumerate() {
        let err = within(10_000, "read after the server died", read_chunk(r))
            .await
            .err()
            .unwrap_or_else(|| panic!("stream {i}: the readable errors"));
        assert_eq!(wisp_code(&err), 0x03, "{}", describe(&err));
        let err = within(5_000, "closed", await_promise(get(s, "closed")))
            .await
            .err()
            .unwrap_or_else(|| panic!("stream {i}: closed rejects"));
        assert_eq!(wisp_code(&err), 0x03, "{}", describe(&err));
    }
    // Writing fails too, and the client's `closed` rejects.
    let (_, _, w) = &streams[0];
    let chunk = Uint8Array::from(&b"late"[..]);
    assert!(
        within(
            5_000,
            "late write",
            JsFuture::from(w.write_with_chunk(&chunk))
        )
        .await
        .is_err(),
        "writing to a lost stream fails"
    );
    let err = within(
        5_000,
        "client closed",
        await_promise(client.closed().into()),
    )
    .await
    .expect_failure("the client's closed rejects");
    assert_eq!(wisp_code(&err), 0x03, "{}", describe(&err));
    // A new stream on the dead connection fails cleanly.
    assert!(open_tcp(&client, echo_port()).await.is_err());
}
