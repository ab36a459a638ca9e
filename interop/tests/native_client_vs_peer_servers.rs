//! Our native client (wisp-core over tokio-websockets) against every published server that
//! installs here: TCP echo byte-exact, v2 negotiation or clean fallback to v1, UDP where the
//! peer supports it, and the close reason each peer gives for a refused port.

use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use wisp_core::extensions::motd::MotdProtocolExtensionBuilder;
use wisp_core::extensions::udp::UdpProtocolExtensionBuilder;
use wisp_core::extensions::AnyProtocolExtensionBuilder as B;
use wisp_core::stream::MuxStreamRead;
use wisp_core::{CloseReason, StreamType, WispV2Handshake};
use wisp_interop::{
    closed_port, connect, connect_gated, pattern, tcp_echo, udp_echo, Peer, Record,
};

async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(90), f)
        .await
        .expect("timed out")
}

fn v2() -> Option<WispV2Handshake> {
    Some(WispV2Handshake::new(vec![
        B::new(UdpProtocolExtensionBuilder),
        B::new(MotdProtocolExtensionBuilder::Client),
    ]))
}

/// How a stream paces its writes against the echo coming back.
#[derive(Clone, Copy)]
enum Pacing {
    /// Writes 50 KiB chunks as fast as the credit allows while reading the echo.
    Stream,
    /// Writes one chunk of this size, then reads its whole echo back before the next. With three
    /// streams the peer never has more than 3 x chunk bytes to send us, which keeps wisp-python
    /// under the 64 KiB write buffer at which its WebSocket library pauses the socket; past that
    /// it loses streams (peer bug 4 in interop/README.md).
    LockStep(usize),
}

/// Reads the echo into `got` until it holds `want` bytes; panics if the stream ends first.
async fn read_until<W>(rx: &mut MuxStreamRead<W>, got: &mut Vec<u8>, want: usize) {
    while got.len() < want {
        match rx.next().await {
            Some(Ok(chunk)) => got.extend_from_slice(&chunk),
            other => panic!(
                "stream ended after {} bytes: {other:?} ({:?})",
                got.len(),
                rx.get_close_reason()
            ),
        }
    }
}

/// Three concurrent streams each echo 2 MiB through the peer, byte-exact.
async fn tcp_echo_through(peer: &Peer, v2: Option<WispV2Handshake>, pacing: Pacing) {
    let target = tcp_echo().await;
    let mux = connect(&peer.url, v2)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", peer.name));
    let mut tasks = Vec::new();
    for s in 0..3u32 {
        let stream = mux
            .new_stream(StreamType::Tcp, "127.0.0.1", target)
            .await
            .unwrap();
        tasks.push(tokio::spawn(async move {
            let data = Bytes::from(pattern(s, 2 * 1024 * 1024));
            let (mut rx, mut tx) = stream.into_split();
            let mut got = Vec::with_capacity(data.len());
            match pacing {
                Pacing::Stream => {
                    let writer = tokio::spawn({
                        let data = data.clone();
                        async move {
                            for chunk in data.chunks(50 * 1024) {
                                tx.send(Bytes::copy_from_slice(chunk)).await.unwrap();
                            }
                            tx
                        }
                    });
                    read_until(&mut rx, &mut got, data.len()).await;
                    drop(writer.await.unwrap());
                }
                Pacing::LockStep(size) => {
                    let mut sent = 0;
                    for chunk in data.chunks(size) {
                        tx.send(Bytes::copy_from_slice(chunk)).await.unwrap();
                        sent += chunk.len();
                        read_until(&mut rx, &mut got, sent).await;
                    }
                }
            }
            assert!(got == data[..], "echo differs");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

async fn refused_reason(peer: &Peer) -> Option<CloseReason> {
    let mux = connect(&peer.url, None).await.unwrap();
    let mut stream = mux
        .new_stream(StreamType::Tcp, "127.0.0.1", closed_port())
        .await
        .unwrap();
    let _ = stream.send(Bytes::from_static(b"hello")).await;
    while let Some(Ok(_)) = stream.next().await {}
    stream.get_close_reason()
}

async fn udp_echo_through(peer: &Peer, v2: Option<WispV2Handshake>) -> Result<(), String> {
    let target = udp_echo().await;
    let mux = connect(&peer.url, v2).await.map_err(|e| e.to_string())?;
    let mut udp = mux
        .new_stream(StreamType::Udp, "127.0.0.1", target)
        .await
        .map_err(|e| e.to_string())?;
    for n in [1usize, 512, 1400, 8000] {
        let datagram = Bytes::from(pattern(n as u32, n));
        udp.send(datagram.clone())
            .await
            .map_err(|e| e.to_string())?;
        match tokio::time::timeout(Duration::from_secs(5), udp.next()).await {
            Ok(Some(Ok(got))) if got == datagram => {}
            Ok(other) => {
                return Err(format!(
                    "{n}-byte datagram: {other:?}, close {:?}",
                    udp.get_close_reason()
                ))
            }
            Err(_) => return Err(format!("{n}-byte datagram: no answer")),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- wisp-js

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wisp_js_v1_tcp_echo() {
    let _r = Record {
        client: "wisp-core client (ours)",
        client_version: "workspace",
        server: "wisp-js",
        server_version: "0.5.0",
        feature: "v1 tcp echo",
        test: "wisp_js_v1_tcp_echo",
        peer_bug: None,
        detail: "3 streams x 2 MiB byte-exact".into(),
    };
    bounded(async {
        let peer = Peer::wisp_js(1, None).await;
        tcp_echo_through(&peer, None, Pacing::Stream).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wisp_js_v2_negotiates_udp_and_motd() {
    let _r = Record {
        client: "wisp-core client (ours)",
        client_version: "workspace",
        server: "wisp-js",
        server_version: "0.5.0",
        feature: "v2 (no fallback), motd, tcp + udp echo",
        test: "wisp_js_v2_negotiates_udp_and_motd",
        peer_bug: None,
        detail: "v2, MOTD, UDP; 3 x 2 MiB and 4 datagrams byte-exact".into(),
    };
    bounded(async {
        let peer = Peer::wisp_js(2, Some("hello from wisp-js")).await;
        let mux = connect(&peer.url, v2()).await.unwrap();
        assert_eq!(mux.get_protocol_version().major, 2);
        assert!(!mux.was_downgraded());
        assert_eq!(mux.motd(), Some("hello from wisp-js"));
        assert!(mux.supports_udp());
        drop(mux);
        tcp_echo_through(&peer, v2(), Pacing::Stream).await;
        udp_echo_through(&peer, v2()).await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wisp_js_refused_port_reason() {
    let _r = Record {
        client: "wisp-core client (ours)",
        client_version: "workspace",
        server: "wisp-js",
        server_version: "0.5.0",
        feature: "refused port close reason",
        test: "wisp_js_refused_port_reason",
        peer_bug: None,
        detail: "0x03 (wisp-js reports every failed connect as a network error)".into(),
    };
    bounded(async {
        let peer = Peer::wisp_js(2, None).await;
        // wisp-js reports every failed connect as a network error (0x03), not 0x44.
        assert_eq!(refused_reason(&peer).await, Some(CloseReason::Unexpected));
    })
    .await;
}

// ---------------------------------------------------------------- wisp-server-node

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wisp_server_node_tcp_echo_and_fallback_to_v1() {
    let _r = Record {
        client: "wisp-core client (ours)",
        client_version: "workspace",
        server: "wisp-server-node",
        server_version: "1.1.8",
        feature: "tcp echo, clean fallback to v1",
        test: "wisp_server_node_tcp_echo_and_fallback_to_v1",
        peer_bug: None,
        detail: "v1 and v2-offered (downgraded) 3 x 2 MiB byte-exact".into(),
    };
    bounded(async {
        let peer = Peer::wisp_server_node().await;
        tcp_echo_through(&peer, None, Pacing::Stream).await;
        let mux = connect(&peer.url, v2()).await.unwrap();
        assert!(mux.was_downgraded(), "wisp-server-node speaks only v1");
        assert_eq!(mux.get_protocol_version().major, 1);
        drop(mux);
        tcp_echo_through(&peer, v2(), Pacing::Stream).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wisp_server_node_refused_port_reason() {
    let _r = Record {
        client: "wisp-core client (ours)",
        client_version: "workspace",
        server: "wisp-server-node",
        server_version: "1.1.8",
        feature: "refused port close reason",
        test: "wisp_server_node_refused_port_reason",
        peer_bug: None,
        detail: "0x44".into(),
    };
    bounded(async {
        let peer = Peer::wisp_server_node().await;
        assert_eq!(
            refused_reason(&peer).await,
            Some(CloseReason::ServerStreamConnectionRefused)
        );
    })
    .await;
}

// ---------------------------------------------------------------- wisp-python

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wisp_python_tcp_echo_and_fallback_to_v1() {
    let _r = Record {
        client: "wisp-core client (ours)",
        client_version: "workspace",
        server: "wisp-python",
        server_version: "0.9.0",
        feature: "tcp echo, clean fallback to v1",
        test: "wisp_python_tcp_echo_and_fallback_to_v1",
        peer_bug: None,
        detail: "v1 and v2-offered (downgraded) 3 x 2 MiB byte-exact, lock-step in 16 KiB chunks"
            .into(),
    };
    bounded(async {
        let peer = Peer::wisp_python().await;
        tcp_echo_through(&peer, None, Pacing::LockStep(16 * 1024)).await;
        let mux = connect(&peer.url, v2()).await.unwrap();
        assert!(mux.was_downgraded(), "wisp-python speaks only v1");
        drop(mux);
        tcp_echo_through(&peer, v2(), Pacing::LockStep(16 * 1024)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wisp_python_udp_echo() {
    let _r = Record {
        client: "wisp-core client (ours)",
        client_version: "workspace",
        server: "wisp-python",
        server_version: "0.9.0",
        feature: "udp echo (v1)",
        test: "wisp_python_udp_echo",
        peer_bug: None,
        detail: "4 datagrams byte-exact".into(),
    };
    bounded(async {
        let peer = Peer::wisp_python().await;
        udp_echo_through(&peer, None).await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wisp_python_refused_port_reason() {
    let _r = Record {
        client: "wisp-core client (ours)",
        client_version: "workspace",
        server: "wisp-python",
        server_version: "0.9.0",
        feature: "refused port close reason",
        test: "wisp_python_refused_port_reason",
        peer_bug: None,
        detail: "0x42".into(),
    };
    bounded(async {
        let peer = Peer::wisp_python().await;
        assert_eq!(
            refused_reason(&peer).await,
            Some(CloseReason::ServerStreamUnreachable)
        );
    })
    .await;
}

/// Peer bug 4 in interop/README.md, reproduced: our side stops reading for two seconds while
/// four streams echo through wisp-python, so its socket to us backs up. Passes while wisp-python
/// loses at least one of those streams for good, and while our client still degrades cleanly:
/// the lost streams stall without breaking the connection, and a new stream on it echoes
/// byte-exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wisp_python_loses_streams_when_its_socket_backs_up() {
    const STREAMS: u32 = 4;
    const LEN: usize = 2 * 1024 * 1024;
    /// A stream that brings nothing for this long is taken as lost.
    const STALL: Duration = Duration::from_secs(3);
    let mut record = Record {
        client: "wisp-core client (ours)",
        client_version: "workspace",
        server: "wisp-python",
        server_version: "0.9.0",
        feature: "streams lost when its socket to the client backs up",
        test: "wisp_python_loses_streams_when_its_socket_backs_up",
        peer_bug: Some(
            "with websockets 17's legacy server, when two of wisp-python's send tasks wait on a \
             full socket at once the library's drain() raises AssertionError; the task dies \
             silently and its stream never sends again, without a CLOSE",
        ),
        detail: String::new(),
    };
    record.detail = bounded(async {
        let peer = Peer::wisp_python().await;
        let target = tcp_echo().await;
        let (mux, gate) = connect_gated(&peer.url).await.unwrap();
        gate.shut();
        let mut streams = Vec::new();
        for s in 0..STREAMS {
            let stream = mux
                .new_stream(StreamType::Tcp, "127.0.0.1", target)
                .await
                .unwrap();
            let data = Bytes::from(pattern(100 + s, LEN));
            let (rx, mut tx) = stream.into_split();
            let writer = tokio::spawn({
                let data = data.clone();
                async move {
                    for chunk in data.chunks(50 * 1024) {
                        tx.send(Bytes::copy_from_slice(chunk)).await.unwrap();
                    }
                    tx // kept open: only the echo should end the exchange
                }
            });
            streams.push((rx, writer, data));
        }
        // wisp-python echoes 8 MiB at us, far more than the kernel's socket buffers hold.
        tokio::time::sleep(Duration::from_secs(2)).await;
        gate.open();
        let outcomes = futures::future::join_all(streams.into_iter().map(
            |(mut rx, writer, data)| async move {
                let mut got = Vec::with_capacity(LEN);
                while got.len() < LEN {
                    match tokio::time::timeout(STALL, rx.next()).await {
                        Ok(Some(Ok(chunk))) => got.extend_from_slice(&chunk),
                        Ok(other) => panic!(
                            "the stream ended after {} bytes instead of stalling: {other:?} ({:?})",
                            got.len(),
                            rx.get_close_reason()
                        ),
                        Err(_) => return Err(got.len()),
                    }
                }
                assert!(got == data[..], "echo differs");
                drop(writer.await.unwrap());
                Ok(())
            },
        ))
        .await;
        let stalled: Vec<usize> = outcomes.iter().filter_map(|o| o.err()).collect();
        assert!(
            !stalled.is_empty(),
            "every stream completed: wisp-python no longer loses streams under backpressure; \
             update peer bug 4 in interop/README.md"
        );
        // The connection is intact: a new stream echoes byte-exact.
        let fresh = mux
            .new_stream(StreamType::Tcp, "127.0.0.1", target)
            .await
            .unwrap();
        let (mut rx, mut tx) = fresh.into_split();
        let data = pattern(7, 64 * 1024);
        let mut got = Vec::new();
        for (i, chunk) in data.chunks(16 * 1024).enumerate() {
            tx.send(Bytes::copy_from_slice(chunk)).await.unwrap();
            let want = (i + 1) * 16 * 1024;
            tokio::time::timeout(STALL, read_until(&mut rx, &mut got, want))
                .await
                .expect("a new stream after the loss stalled too");
        }
        assert!(got == data, "echo differs on the new stream");
        format!(
            "{} of {STREAMS} streams stalled for good (at {stalled:?} of {LEN} bytes) after 2 s \
             of backpressure; the rest and a new stream on the same connection echoed byte-exact",
            stalled.len()
        )
    })
    .await;
}
