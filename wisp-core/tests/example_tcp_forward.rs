//! The seed API document's tcp forward server example, run against a real client over a real WebSocket
//! on loopback. The example file is compiled into this test, so what runs is its own code;
//! only the listening socket is the test's (port 0).

#![allow(dead_code, unused_imports)]

#[path = "common/example_harness.rs"]
mod example_harness;

include!("../examples/tcp_forward_server.rs");

mod harness {
    use super::*;

    use std::time::Duration;

    use bytes::Bytes;
    use futures::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use wisp_core::extensions::motd::MotdProtocolExtensionBuilder;
    use wisp_core::extensions::password::PasswordProtocolExtensionBuilder;
    use wisp_core::extensions::udp::UdpProtocolExtensionBuilder;
    use wisp_core::extensions::AnyProtocolExtensionBuilder as B;
    use wisp_core::ws::{TokioWebsocketsTransport, TransportExt};
    use wisp_core::{ClientMux, StreamType, WispError, WispV2Handshake};

    use crate::example_harness::{connect, echo_target, serve};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tcp_forward_example_forwards_to_a_real_target() {
        tokio::time::timeout(Duration::from_secs(60), async {
            let target = echo_target().await;
            let port = serve(handle_connection).await;
            let mux = connect(port, None).await.unwrap();
            let mut stream = mux
                .new_stream(StreamType::Tcp, "127.0.0.1", target)
                .await
                .unwrap();
            let data: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
            let (mut rx, mut tx) = {
                let s = std::mem::replace(
                    &mut stream,
                    mux.new_stream(StreamType::Tcp, "127.0.0.1", target)
                        .await
                        .unwrap(),
                );
                s.into_split()
            };
            let writer = tokio::spawn({
                let data = Bytes::from(data.clone());
                async move {
                    tx.send(data).await.unwrap();
                    tx
                }
            });
            let mut got = Vec::new();
            while got.len() < data.len() {
                got.extend_from_slice(&rx.next().await.unwrap().unwrap());
            }
            assert!(got == data, "echo differs");
            drop(writer.await.unwrap());
            // A UDP stream is refused by the example with 0x41.
            let mut udp = mux
                .new_stream(StreamType::Udp, "127.0.0.1", target)
                .await
                .unwrap();
            assert!(udp.next().await.is_none());
            assert_eq!(
                udp.get_close_reason(),
                Some(wisp_core::CloseReason::ServerStreamInvalidInfo)
            );
        })
        .await
        .expect("timed out");
    }
}
