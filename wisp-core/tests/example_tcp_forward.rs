//! The seed API document's tcp forward server example, run against a real client over a real WebSocket
//! on loopback. The example file is compiled into this test, so what runs is its own code;
//! only the listening socket is the test's (port 0).

#![allow(dead_code, unused_imports)]

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
