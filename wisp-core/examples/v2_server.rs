// The seed API document's "Wisp v2 server setup" (MOTD, password, UDP), with only the crate
// path changed (`wisp_mux` → `wisp_core`), wrapped in a program: it accepts WebSocket
// connections on 127.0.0.1:4001, runs the v2 handshake, prints what was negotiated, and echoes
// every stream back to the client (in place of a real target, so the example stays
// self-contained). Run it with
// `cargo run -p wisp-core --features tokio-websockets --example v2_server`.

use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use wisp_core::ws::{TokioWebsocketsTransport, TransportExt, TransportRead, TransportWrite};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let listener = TcpListener::bind("127.0.0.1:4001").await?;
    println!("Wisp v2 server listening on {}", listener.local_addr()?);
    loop {
        let (tcp, _) = listener.accept().await?;
        tokio::spawn(async move {
            if let Err(e) = handle_connection(tcp).await {
                eprintln!("connection error: {e}");
            }
        });
    }
}

async fn handle_connection(tcp: TcpStream) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (_request, ws) = tokio_websockets::ServerBuilder::new().accept(tcp).await?;
    let (rx, tx) = TokioWebsocketsTransport(ws).split_fast();
    serve_v2(rx, tx).await
}

async fn serve_v2<R: TransportRead + Send + 'static, W: TransportWrite + Send + 'static>(
    rx: R,
    tx: W,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // ---- the seed document's v2 setup, unchanged but for the crate path ----
    use wisp_core::{
        extensions::{
            motd::{MotdProtocolExtension, MotdProtocolExtensionBuilder},
            password::PasswordProtocolExtensionBuilder,
            udp::UdpProtocolExtensionBuilder,
            AnyProtocolExtensionBuilder,
        },
        ServerMux, WispV2Handshake,
    };

    let extensions: Vec<AnyProtocolExtensionBuilder> = vec![
        AnyProtocolExtensionBuilder::new(UdpProtocolExtensionBuilder),
        // Serve a message-of-the-day to connecting clients
        AnyProtocolExtensionBuilder::new(MotdProtocolExtensionBuilder::Server(
            "Welcome to the Wisp server!".to_string(),
        )),
        // Require password authentication from clients
        AnyProtocolExtensionBuilder::new(PasswordProtocolExtensionBuilder::new_server(
            |username, password| {
                Box::pin(async move {
                    // Return Ok(()) to accept, Err(WispError::PasswordExtensionCredsInvalid) to reject
                    if username == "alice" && password == "hunter2" {
                        Ok(())
                    } else {
                        Err(wisp_core::WispError::PasswordExtensionCredsInvalid)
                    }
                })
            },
        )),
    ];

    let (mux, actor_fut) = ServerMux::new(rx, tx, 128, Some(WispV2Handshake::new(extensions)))
        .await?
        .with_no_required_extensions();

    println!("negotiated extensions: {:?}", mux.get_extension_ids());
    println!("client downgraded to v1: {}", mux.was_downgraded());
    // ---- end of the seed document's setup ----
    let _ = std::any::type_name::<MotdProtocolExtension>();

    tokio::spawn(actor_fut);
    while let Some((_connect, stream)) = mux.wait_for_stream().await {
        tokio::spawn(async move {
            let (mut read, mut write) = stream.into_split();
            while let Some(Ok(data)) = read.next().await {
                if write.send(data).await.is_err() {
                    break;
                }
            }
        });
    }
    Ok(())
}
