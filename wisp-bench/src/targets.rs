//! TCP targets on 127.0.0.1: an echo (the WispMark target), a source that sends without end
//! (downloads) and a sink that discards (uploads). Each connection gets its own task and
//! 64 KiB buffers, so the target is never what limits a run.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What a target does with a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Writes back what it reads.
    Echo,
    /// Writes without end, ignoring what it reads.
    Source,
    /// Reads and discards.
    Sink,
}

const BUF: usize = 64 * 1024;

/// Binds 127.0.0.1 port 0 and serves `kind` on it from a spawned task; returns the address.
pub async fn spawn(kind: Kind) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let _ = sock.set_nodelay(true);
            tokio::spawn(serve(kind, sock));
        }
    });
    Ok(addr)
}

async fn serve(kind: Kind, mut sock: TcpStream) {
    let mut buf = vec![0u8; BUF];
    match kind {
        Kind::Echo => {
            while let Ok(n) = sock.read(&mut buf).await {
                if n == 0 || sock.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
        Kind::Source => {
            // Fill with something other than zeros so that nothing on the way can shortcut it.
            for (i, b) in buf.iter_mut().enumerate() {
                *b = (i * 31 % 251) as u8;
            }
            let (mut rd, mut wr) = sock.into_split();
            let drain = tokio::spawn(async move {
                let mut sink = vec![0u8; 4096];
                while let Ok(n) = rd.read(&mut sink).await {
                    if n == 0 {
                        break;
                    }
                }
            });
            while wr.write_all(&buf).await.is_ok() {}
            drain.abort();
        }
        Kind::Sink => while let Ok(1..) = sock.read(&mut buf).await {},
    }
}
