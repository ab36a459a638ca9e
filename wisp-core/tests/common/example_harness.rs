//! What the example tests share: a TCP echo target, a WebSocket listener running an example's
//! connection handler, and our client connecting to it.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wisp_core::ws::{TokioWebsocketsTransport, TransportExt};
use wisp_core::{ClientMux, WispError, WispV2Handshake};

/// A TCP echo target on loopback.
pub async fn echo_target() -> u16 {
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
pub async fn serve<F, Fut>(handler: F) -> u16
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

pub async fn connect(
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
