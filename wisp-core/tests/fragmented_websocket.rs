//! Fragmented WebSocket messages: a peer that splits every Wisp packet over several frames (as
//! epoxy and wisp-mux do) is understood, through the tokio-websockets adapter on both sides.

use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_websockets::{ClientBuilder, Config, ServerBuilder};
use wisp_core::extensions::motd::MotdProtocolExtensionBuilder;
use wisp_core::extensions::AnyProtocolExtensionBuilder as B;
use wisp_core::ws::{TokioWebsocketsTransport, TransportExt};
use wisp_core::{ClientMux, ServerMux, StreamType, WispV2Handshake};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packets_split_over_many_frames_are_reassembled() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // The server fragments what it sends into 7-byte frames; the client into 3-byte frames,
        // so that even the 5-byte header of every packet is split.
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let (_, ws) = ServerBuilder::new()
                .config(Config::default().frame_size(7))
                .accept(tcp)
                .await
                .unwrap();
            let (rx, tx) = TokioWebsocketsTransport(ws).split_fast();
            let v2 = WispV2Handshake::new(vec![B::new(MotdProtocolExtensionBuilder::Server(
                "fragments".into(),
            ))]);
            let (mux, actor) = ServerMux::new(rx, tx, 16, Some(v2))
                .await
                .unwrap()
                .with_no_required_extensions();
            tokio::spawn(actor);
            let (_, stream) = mux.wait_for_stream().await.unwrap();
            let (mut rx, mut tx) = stream.into_split();
            while let Some(Ok(data)) = rx.next().await {
                tx.send(data).await.unwrap();
            }
        });
        let (ws, _) = ClientBuilder::new()
            .uri(&format!("ws://{addr}/"))
            .unwrap()
            .config(Config::default().frame_size(3))
            .connect()
            .await
            .unwrap();
        let (rx, tx) = TokioWebsocketsTransport(ws).split_fast();
        let v2 = WispV2Handshake::new(vec![B::new(MotdProtocolExtensionBuilder::Client)]);
        let (mux, actor) = ClientMux::new(rx, tx, Some(v2))
            .await
            .unwrap()
            .with_no_required_extensions();
        tokio::spawn(actor);
        assert_eq!(mux.motd(), Some("fragments"));
        let mut stream = mux.new_stream(StreamType::Tcp, "echo", 7).await.unwrap();
        let data: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 256) as u8).collect();
        stream.send(Bytes::from(data.clone())).await.unwrap();
        let mut got = Vec::new();
        while got.len() < data.len() {
            got.extend_from_slice(&stream.next().await.unwrap().unwrap());
        }
        assert_eq!(got, data);
        drop(stream);
        drop(mux);
        server.await.unwrap();
    })
    .await
    .expect("timed out");
}
