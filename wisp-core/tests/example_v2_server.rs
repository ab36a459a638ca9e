//! The seed API document's v2 server example, run against a real client over a real WebSocket
//! on loopback. The example file is compiled into this test, so what runs is its own code;
//! only the listening socket is the test's (port 0).

#![allow(dead_code, unused_imports)]

#[path = "common/example_harness.rs"]
mod example_harness;

include!("../examples/v2_server.rs");

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

    fn client_v2(password: &str) -> Option<WispV2Handshake> {
        Some(WispV2Handshake::new(vec![
            B::new(UdpProtocolExtensionBuilder),
            B::new(MotdProtocolExtensionBuilder::Client),
            B::new(PasswordProtocolExtensionBuilder::new_client(
                "alice", password,
            )),
        ]))
    }

    async fn v2_example_port() -> u16 {
        serve(|tcp| async move {
            let (_req, ws) = tokio_websockets::ServerBuilder::new().accept(tcp).await?;
            let (rx, tx) = TokioWebsocketsTransport(ws).split_fast();
            serve_v2(rx, tx).await
        })
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn v2_example_negotiates_motd_password_and_udp() {
        tokio::time::timeout(Duration::from_secs(60), async {
            let port = v2_example_port().await;
            let mux = connect(port, client_v2("hunter2")).await.unwrap();
            assert_eq!(mux.motd(), Some("Welcome to the Wisp server!"));
            let mut ids = mux.get_extension_ids();
            ids.sort();
            assert_eq!(ids, vec![1, 2, 4]);
            assert!(!mux.was_downgraded());
            let mut udp = mux.new_stream(StreamType::Udp, "any", 9).await.unwrap();
            udp.send(Bytes::from_static(b"datagram")).await.unwrap();
            assert_eq!(&udp.next().await.unwrap().unwrap()[..], b"datagram");

            let refused = connect(port, client_v2("wrong")).await;
            assert!(
                matches!(refused, Err(WispError::PasswordExtensionCredsInvalid)),
                "{refused:?}"
            );
        })
        .await
        .expect("timed out");
    }
}
