//! The handshake order for a client that sends no `Sec-WebSocket-Protocol` header: CONTINUE
//! then INFO by default (the legacy order), CONTINUE alone with `wisp.v2_without_subprotocol`
//! off, as draft 6 prescribes for such clients, and CONTINUE alone for browsers (requests with
//! `Origin`) unless `wisp.legacy_order_for_browsers` is on.

mod common;

use std::time::Duration;

use common::*;
use futures::StreamExt;

/// The type bytes of what the server sends first, until it has been quiet for a while.
async fn first_packets(ws: &mut Ws) -> Vec<u8> {
    let mut types = Vec::new();
    while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_millis(300), ws.next()).await {
        types.push(m.as_payload()[0]);
    }
    types
}

#[tokio::test]
async fn legacy_order_sends_continue_then_info() {
    bounded(async {
        let server = start(local_config()).await;
        let mut ws = ws(addr(&server), "/", None).await.unwrap();
        assert_eq!(first_packets(&mut ws).await, vec![0x03, 0x05]);
        let mut ws = ws_v2(&server).await;
        assert_eq!(
            first_packets(&mut ws).await,
            vec![0x05],
            "draft-6 order with the header"
        );
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn without_the_header_a_spec_v1_answer_can_be_chosen() {
    bounded(async {
        let mut c = local_config();
        c.wisp.v2_without_subprotocol = false;
        let server = start(c).await;
        let mut ws = ws(addr(&server), "/", None).await.unwrap();
        assert_eq!(
            first_packets(&mut ws).await,
            vec![0x03],
            "CONTINUE only, no INFO"
        );
        // Clients that offer the header still get v2.
        let mut ws = ws_v2(&server).await;
        assert_eq!(first_packets(&mut ws).await, vec![0x05]);
        let mux = client(addr(&server)).await;
        assert_eq!(mux.get_protocol_version().major, 2);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn browsers_without_the_header_get_plain_v1() {
    bounded(async {
        let server = start(local_config()).await;
        let mut ws = ws_from_page(&server).await;
        assert_eq!(
            first_packets(&mut ws).await,
            vec![0x03],
            "CONTINUE only, no INFO, for a request with Origin"
        );
        server.shutdown().await;

        let mut c = local_config();
        c.wisp.legacy_order_for_browsers = true;
        let server = start(c).await;
        let mut ws = ws_from_page(&server).await;
        assert_eq!(first_packets(&mut ws).await, vec![0x03, 0x05]);
        server.shutdown().await;
    })
    .await;
}

/// A header-less upgrade as a browser makes it: with `Origin`.
async fn ws_from_page(server: &wisp_server::Server) -> Ws {
    let tcp = tokio::net::TcpStream::connect(addr(server)).await.unwrap();
    let (ws, _) = tokio_websockets::ClientBuilder::new()
        .uri(&format!("ws://{}/", addr(server)))
        .unwrap()
        .add_header(
            http::header::ORIGIN,
            http::HeaderValue::from_static("http://127.0.0.1:8080"),
        )
        .unwrap()
        .connect_on(tcp)
        .await
        .unwrap();
    ws
}

async fn ws_v2(server: &wisp_server::Server) -> Ws {
    ws(addr(server), "/", Some("wisp-v2")).await.unwrap()
}
