//! Hostile clients with raw WebSocket frames. In each test a well-behaved client moves
//! checksummed data through the same server the whole time and must lose no byte; a newcomer
//! must be served afterwards (see `common::bystander`). More cases: `hostile_*.rs`.

mod common;

use bytes::Bytes;
use common::bystander::hostile_case;
use common::raw::*;
use common::*;
use futures::SinkExt;
use std::net::SocketAddr;
use tokio_websockets::Message;

/// Runs `hostile` as a case of the shared harness (a bystander moving checksummed data the
/// whole time, a newcomer afterwards, no leaked slot), named after the test.
async fn with_bystander<F, Fut>(config: wisp_server::Config, hostile: F)
where
    F: FnOnce(SocketAddr, u16) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let name = std::thread::current()
        .name()
        .unwrap_or("hostile")
        .to_owned();
    hostile_case(&name, config, |env| hostile(env.addr, env.echo)).await;
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
