// The seed API document's "minimal TCP-forwarding server", with only the crate path changed
// (`wisp_mux` → `wisp_core`). Run it with
// `cargo run -p wisp-core --features tokio-websockets --example tcp_forward_server`.
// It forwards to any address: an example, not something to expose to the internet.

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wisp_core::{
    packet::{CloseReason, StreamType},
    ws::{TokioWebsocketsTransport, TransportExt},
    ServerMux, WispError,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // Listen for plain TCP connections that will be upgraded to WebSocket
    let listener = TcpListener::bind("0.0.0.0:4000").await?;
    println!("Wisp server listening on :4000");

    loop {
        let (tcp, _peer) = listener.accept().await?;
        tokio::spawn(async move {
            if let Err(e) = handle_connection(tcp).await {
                eprintln!("connection error: {e}");
            }
        });
    }
}

async fn handle_connection(tcp: TcpStream) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // Upgrade TCP → WebSocket
    let (_request, ws) = tokio_websockets::ServerBuilder::new().accept(tcp).await?;

    let (rx, tx) = TokioWebsocketsTransport(ws).split_fast();

    // Create the ServerMux (Wisp v1, buffer_size = 128)
    let (mux, actor_fut) = ServerMux::new(rx, tx, 128, None)
        .await?
        .with_no_required_extensions();

    // Spawn the actor
    tokio::spawn(actor_fut);

    // Accept streams
    while let Some((connect_pkt, stream)) = mux.wait_for_stream().await {
        tokio::spawn(async move {
            if let Err(e) = forward_stream(connect_pkt, stream).await {
                eprintln!("stream error: {e}");
            }
        });
    }

    Ok(())
}

async fn forward_stream(
    connect_pkt: wisp_core::packet::ConnectPacket,
    stream: wisp_core::stream::MuxStream<impl wisp_core::ws::TransportWrite>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    if connect_pkt.stream_type != StreamType::Tcp {
        // UDP forwarding requires the UDP extension on both sides
        stream.close(CloseReason::ServerStreamInvalidInfo).await?;
        return Ok(());
    }

    let target = format!("{}:{}", connect_pkt.host, connect_pkt.port);
    let tcp = TcpStream::connect(&target).await?;
    let (mut tcp_rx, mut tcp_tx) = tcp.into_split();
    let (mut wisp_rx, mut wisp_tx) = stream.into_split();

    // Wisp → TCP
    let wisp_to_tcp = tokio::spawn(async move {
        while let Some(chunk) = wisp_rx.next().await {
            let data = chunk?;
            tcp_tx.write_all(&data).await?;
        }
        Result::<(), Box<dyn std::error::Error + Send + Sync>>::Ok(())
    });

    // TCP → Wisp
    let tcp_to_wisp = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let n = tcp_rx.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            wisp_tx.feed(Bytes::copy_from_slice(&buf[..n])).await?;
        }
        wisp_tx.flush().await?;
        Result::<(), Box<dyn std::error::Error + Send + Sync>>::Ok(())
    });

    // Wait for either direction to finish
    tokio::select! {
        res = wisp_to_tcp => { res??; }
        res = tcp_to_wisp => { res??; }
    }

    Ok(())
}

// The seed example imports WispError without using it; keep the import as written.
#[allow(dead_code)]
type Unused = WispError;
