//! The plain TCP relay baseline: what a server that does no WebSocket and no Wisp framing
//! costs on this machine. One task per direction, each a read/write loop over a 64 KiB buffer
//! (the largest read our Wisp server makes from a target), with Nagle off on both sides as our
//! server has it.

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Binds 127.0.0.1 port 0 and relays every connection to `to`; returns the bound address.
pub async fn spawn(to: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(target) = TcpStream::connect(to).await else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = target.set_nodelay(true);
                let (cr, cw) = client.into_split();
                let (tr, tw) = target.into_split();
                tokio::select! {
                    () = copy(cr, tw) => {}
                    () = copy(tr, cw) => {}
                }
            });
        }
    });
    Ok(addr)
}

async fn copy(mut from: impl AsyncRead + Unpin, mut to: impl AsyncWrite + Unpin) {
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
