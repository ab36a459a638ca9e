//! Hostile clients with raw WebSocket frames. In each test a well-behaved client keeps a
//! stream open on the same server, and must still be served afterwards, as must a new one.

mod common;

use bytes::{BufMut, Bytes, BytesMut};
use common::*;
use futures::{SinkExt, StreamExt};
use std::net::SocketAddr;
use tokio_websockets::Message;
use wisp_core::StreamType;

fn connect_packet(id: u32, kind: u8, port: u16, host: &[u8]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_u8(0x01);
    b.put_u32_le(id);
    b.put_u8(kind);
    b.put_u16_le(port);
    b.put_slice(host);
    b.freeze()
}

fn data_packet(id: u32, payload: &[u8]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_u8(0x02);
    b.put_u32_le(id);
    b.put_slice(payload);
    b.freeze()
}

/// A raw v1-speaking client: no subprotocol, so the server sends CONTINUE then INFO and takes
/// our first non-INFO packet as v1 traffic.
async fn raw(addr: SocketAddr) -> Ws {
    ws(addr, "/", None).await.unwrap()
}

async fn send(ws: &mut Ws, packet: Bytes) {
    ws.send(Message::binary(packet)).await.unwrap();
}

/// Reads packets until one for `id` of type DATA or CLOSE; returns it.
async fn next_for(ws: &mut Ws, id: u32) -> Option<Bytes> {
    while let Some(Ok(m)) = ws.next().await {
        if !m.is_binary() {
            continue;
        }
        let p: Bytes = m.into_payload().into();
        if p.len() >= 5
            && u32::from_le_bytes([p[1], p[2], p[3], p[4]]) == id
            && (p[0] == 0x02 || p[0] == 0x04)
        {
            return Some(p);
        }
    }
    None
}

/// The connection still works: a fresh stream to the echo target echoes.
async fn still_serves(ws: &mut Ws, id: u32, echo: u16) {
    send(ws, connect_packet(id, 0x01, echo, b"127.0.0.1")).await;
    send(ws, data_packet(id, b"still here")).await;
    let p = next_for(ws, id).await.expect("connection alive");
    assert_eq!(&p[..], &data_packet(id, b"still here")[..]);
}

/// Runs `hostile` next to a bystander connection and checks that the server serves the
/// bystander and a newcomer afterwards.
async fn with_bystander<F, Fut>(config: wisp_server::Config, hostile: F)
where
    F: FnOnce(SocketAddr, u16) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    bounded(async {
        let server = start(config).await;
        let echo = tcp_echo().await;
        let mux = client(addr(&server)).await;
        let mut s = mux
            .new_stream(StreamType::Tcp, "127.0.0.1", echo)
            .await
            .unwrap();
        assert_eq!(echo_roundtrip(&mut s, b"before").await, b"before");
        hostile(addr(&server), echo).await;
        assert_eq!(echo_roundtrip(&mut s, b"after").await, b"after");
        let newcomer = client(addr(&server)).await;
        let mut n = newcomer
            .new_stream(StreamType::Tcp, "127.0.0.1", echo)
            .await
            .unwrap();
        assert_eq!(echo_roundtrip(&mut n, b"new").await, b"new");
        assert!(
            server.shutdown().await,
            "every task ended within the grace period"
        );
    })
    .await;
}

#[tokio::test]
async fn one_byte_first_frame() {
    with_bystander(local_config(), |addr, _| async move {
        let mut ws = raw(addr).await;
        send(&mut ws, Bytes::from_static(&[0x01])).await;
        let got = drain(&mut ws).await;
        assert_eq!(
            got.last().map(|p| p[0]),
            Some(0x04),
            "ends with a CLOSE: {got:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn one_byte_frame_after_the_handshake() {
    with_bystander(local_config(), |addr, echo| async move {
        let mut ws = raw(addr).await;
        still_serves(&mut ws, 1, echo).await;
        send(&mut ws, Bytes::from_static(&[0x02])).await;
        drain(&mut ws).await;
    })
    .await;
}

#[tokio::test]
async fn text_frame() {
    with_bystander(local_config(), |addr, echo| async move {
        let mut ws = raw(addr).await;
        still_serves(&mut ws, 1, echo).await;
        ws.send(Message::text("hello")).await.unwrap();
        drain(&mut ws).await;
    })
    .await;
}

#[tokio::test]
async fn unknown_packet_type_is_ignored() {
    with_bystander(local_config(), |addr, echo| async move {
        let mut ws = raw(addr).await;
        send(&mut ws, Bytes::from_static(&[0x99, 1, 0, 0, 0, 1, 2, 3])).await;
        still_serves(&mut ws, 1, echo).await;
    })
    .await;
}

#[tokio::test]
async fn connect_on_stream_0_is_ignored() {
    with_bystander(local_config(), |addr, echo| async move {
        let mut ws = raw(addr).await;
        send(&mut ws, connect_packet(0, 0x01, echo, b"127.0.0.1")).await;
        still_serves(&mut ws, 1, echo).await;
    })
    .await;
}

#[tokio::test]
async fn duplicate_stream_id_is_refused() {
    with_bystander(local_config(), |addr, echo| async move {
        let mut ws = raw(addr).await;
        still_serves(&mut ws, 7, echo).await;
        send(&mut ws, connect_packet(7, 0x01, echo, b"127.0.0.1")).await;
        let p = next_for(&mut ws, 7).await.unwrap();
        assert_eq!(&p[..], &[0x04, 7, 0, 0, 0, 0x41]);
        still_serves(&mut ws, 8, echo).await;
    })
    .await;
}

#[tokio::test]
async fn data_on_unknown_stream_is_ignored() {
    with_bystander(local_config(), |addr, echo| async move {
        let mut ws = raw(addr).await;
        send(&mut ws, data_packet(42, b"nobody")).await;
        send(&mut ws, data_packet(0, b"stream zero")).await;
        still_serves(&mut ws, 1, echo).await;
    })
    .await;
}

#[tokio::test]
async fn frame_over_the_limit() {
    let mut c = local_config();
    c.limits.max_message_size = 2048;
    with_bystander(c, |addr, echo| async move {
        let mut ws = raw(addr).await;
        still_serves(&mut ws, 1, echo).await;
        send(&mut ws, data_packet(1, &[0u8; 4096])).await;
        drain(&mut ws).await;
    })
    .await;
}

#[tokio::test]
async fn invalid_utf8_host_is_refused() {
    with_bystander(local_config(), |addr, echo| async move {
        let mut ws = raw(addr).await;
        send(&mut ws, connect_packet(3, 0x01, 80, &[0xff, 0xfe, b'a'])).await;
        let p = next_for(&mut ws, 3).await.unwrap();
        assert_eq!(&p[..], &[0x04, 3, 0, 0, 0, 0x41]);
        still_serves(&mut ws, 4, echo).await;
    })
    .await;
}

#[tokio::test]
async fn port_0_and_bad_stream_type_are_refused() {
    with_bystander(local_config(), |addr, echo| async move {
        let mut ws = raw(addr).await;
        send(&mut ws, connect_packet(5, 0x01, 0, b"127.0.0.1")).await;
        assert_eq!(
            &next_for(&mut ws, 5).await.unwrap()[..],
            &[0x04, 5, 0, 0, 0, 0x41]
        );
        send(&mut ws, connect_packet(6, 0x09, 80, b"127.0.0.1")).await;
        assert_eq!(
            &next_for(&mut ws, 6).await.unwrap()[..],
            &[0x04, 6, 0, 0, 0, 0x41]
        );
        send(&mut ws, connect_packet(9, 0x01, echo, b"")).await;
        assert_eq!(
            &next_for(&mut ws, 9).await.unwrap()[..],
            &[0x04, 9, 0, 0, 0, 0x41]
        );
        still_serves(&mut ws, 10, echo).await;
    })
    .await;
}

#[tokio::test]
async fn client_that_never_finishes_the_handshake() {
    let mut c = local_config();
    c.limits.handshake_timeout_ms = 300;
    with_bystander(c, |addr, _| async move {
        let mut ws = ws(addr, "/", Some("wisp-v2")).await.unwrap();
        let got = drain(&mut ws).await;
        assert_eq!(got.len(), 1, "INFO, then nothing until the timeout");
    })
    .await;
}

#[tokio::test]
async fn garbage_instead_of_http() {
    with_bystander(local_config(), |addr, _| async move {
        let resp = raw_http(addr, "\x16\x03\x01\x02\x00garbage\r\n\r\n").await;
        assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    })
    .await;
}

#[tokio::test]
async fn close_on_stream_0_then_more() {
    with_bystander(local_config(), |addr, echo| async move {
        let mut ws = raw(addr).await;
        still_serves(&mut ws, 1, echo).await;
        send(&mut ws, Bytes::from_static(&[0x04, 0, 0, 0, 0])).await;
        let _ = ws
            .send(Message::binary(connect_packet(2, 0x01, echo, b"127.0.0.1")))
            .await;
        drain(&mut ws).await;
    })
    .await;
}
