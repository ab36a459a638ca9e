//! The seed API document's v2 server example, run against a real client over a real WebSocket
//! on loopback. The example file is compiled into this test, so what runs is its own code;
//! only the listening socket is the test's (port 0).

#![allow(dead_code, unused_imports)]

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

    /// A TCP echo target on loopback.
    async fn echo_target() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0; 65536];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        port
    }

    /// Serves WebSocket connections on a loopback port with `handler`.
    async fn serve<F, Fut>(handler: F) -> u16
    where
        F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<(), Box<dyn std::error::Error + Send + Sync>>>
            + Send
            + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(handler(tcp));
            }
        });
        port
    }

    async fn connect(
        port: u16,
        v2: Option<WispV2Handshake>,
    ) -> Result<ClientMux<impl wisp_core::ws::TransportWrite>, WispError> {
        let uri = format!("ws://127.0.0.1:{port}/");
        let (ws, _) = tokio_websockets::ClientBuilder::new()
            .uri(&uri)
            .unwrap()
            .connect()
            .await
            .map_err(WispError::ws)?;
        let (rx, tx) = TokioWebsocketsTransport(ws).split_fast();
        let (mux, actor) = ClientMux::new(rx, tx, v2)
            .await?
            .with_no_required_extensions();
        tokio::spawn(actor);
        Ok(mux)
    }

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
