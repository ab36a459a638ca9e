//! Streams end to end: versions, bulk TCP, UDP, and every close reason from a real condition.

mod common;

use bytes::Bytes;
use common::*;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wisp_core::{CloseReason, StreamType, WispError};

#[tokio::test]
async fn v2_with_subprotocol_echoes_tcp() {
    bounded(async {
        let server = start(local_config()).await;
        let echo = tcp_echo().await;
        let mux = client(addr(&server)).await;
        assert_eq!(mux.get_protocol_version().major, 2);
        assert!(!mux.was_downgraded());
        let mut ids = mux.get_extension_ids();
        ids.sort();
        assert_eq!(ids, vec![0x01, 0x05]);
        let mut s = mux
            .new_stream(StreamType::Tcp, "127.0.0.1", echo)
            .await
            .unwrap();
        assert_eq!(echo_roundtrip(&mut s, b"hello wisp").await, b"hello wisp");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn v2_without_subprotocol_uses_legacy_order() {
    bounded(async {
        let server = start(local_config()).await;
        let echo = tcp_echo().await;
        let mux = client_with(addr(&server), Some(client_exts()), false)
            .await
            .unwrap();
        assert_eq!(
            mux.get_protocol_version().major,
            1,
            "CONTINUE first means v1 to our client"
        );
        assert!(mux.was_downgraded());
        let mut s = mux
            .new_stream(StreamType::Tcp, "127.0.0.1", echo)
            .await
            .unwrap();
        assert_eq!(echo_roundtrip(&mut s, b"legacy").await, b"legacy");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn v1_client_works() {
    bounded(async {
        let server = start(local_config()).await;
        let echo = tcp_echo().await;
        let mux = client_with(addr(&server), None, false).await.unwrap();
        assert_eq!(mux.get_protocol_version().major, 1);
        let mut s = mux
            .new_stream(StreamType::Tcp, "127.0.0.1", echo)
            .await
            .unwrap();
        assert_eq!(echo_roundtrip(&mut s, b"v1").await, b"v1");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn v1_only_server_serves_a_v2_client() {
    bounded(async {
        let mut c = local_config();
        c.wisp.v2 = false;
        let server = start(c).await;
        let echo = tcp_echo().await;
        let mux = client(addr(&server)).await;
        assert!(mux.was_downgraded());
        let mut s = mux
            .new_stream(StreamType::Tcp, "127.0.0.1", echo)
            .await
            .unwrap();
        assert_eq!(echo_roundtrip(&mut s, b"down").await, b"down");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn bulk_64_mib_echo_is_byte_exact() {
    bounded(async {
        let server = start(local_config()).await;
        let echo = tcp_echo().await;
        let mux = client(addr(&server)).await;
        let s = mux
            .new_stream(StreamType::Tcp, "127.0.0.1", echo)
            .await
            .unwrap();
        let (mut rx, mut tx) = s.into_split();
        const TOTAL: usize = 64 * 1024 * 1024;
        // A pattern that differs at every offset within a chunk and between chunks.
        let pattern = |i: usize| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1];
        let writer = tokio::spawn(async move {
            let mut sent = 0;
            while sent < TOTAL {
                let n = (TOTAL - sent).min(100_000);
                let chunk: Vec<u8> = (sent..sent + n).map(pattern).collect();
                tx.send(Bytes::from(chunk)).await.unwrap();
                sent += n;
            }
            tx
        });
        let mut got = 0usize;
        while got < TOTAL {
            let b = rx.next().await.expect("data").unwrap();
            for (i, byte) in b.iter().enumerate() {
                assert_eq!(*byte, pattern(got + i), "byte {} differs", got + i);
            }
            got += b.len();
        }
        assert_eq!(got, TOTAL);
        let _tx = writer.await.unwrap();
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn udp_datagrams_round_trip() {
    bounded(async {
        let server = start(local_config()).await;
        let echo = udp_echo().await;
        let mux = client(addr(&server)).await;
        let mut s = mux
            .new_stream(StreamType::Udp, "127.0.0.1", echo)
            .await
            .unwrap();
        for size in [1usize, 100, 1400, 8000] {
            let d: Vec<u8> = (0..size).map(|i| i as u8).collect();
            s.send(Bytes::from(d.clone())).await.unwrap();
            let back = s.next().await.unwrap().unwrap();
            assert_eq!(&back[..], &d[..], "datagram of {size} bytes");
        }
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn udp_can_be_turned_off() {
    bounded(async {
        let mut c = local_config();
        c.policy.udp = false;
        let server = start(c).await;
        let echo = udp_echo().await;
        let mux = client(addr(&server)).await;
        assert!(!mux.get_extension_ids().contains(&0x01));
        // Without the extension our client refuses locally; a v1 client can ask, and is refused.
        let v1 = client_with(addr(&server), None, false).await.unwrap();
        assert_eq!(
            outcome(&v1, StreamType::Udp, "127.0.0.1", echo).await,
            CloseReason::ServerStreamBlockedAddress
        );
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn refused_port_closes_with_0x44() {
    bounded(async {
        let server = start(local_config()).await;
        let mux = client(addr(&server)).await;
        let port = closed_port().await;
        assert_eq!(
            outcome(&mux, StreamType::Tcp, "127.0.0.1", port).await,
            CloseReason::ServerStreamConnectionRefused
        );
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn unresolvable_name_closes_with_0x42() {
    bounded(async {
        let server = start(local_config()).await;
        let mux = client(addr(&server)).await;
        assert_eq!(
            outcome(&mux, StreamType::Tcp, "nonexistent.invalid", 80).await,
            CloseReason::ServerStreamUnreachable
        );
        server.shutdown().await;
    })
    .await;
}

/// A listener whose accept queue is full drops new SYNs, so a connect to it hangs: a connect
/// timeout that never leaves the machine.
#[tokio::test]
async fn connect_timeout_closes_with_0x43() {
    bounded(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(0).unwrap();
        let target = listener.local_addr().unwrap();
        // Fill the accept queue without accepting; keep the sockets alive.
        let mut fillers = Vec::new();
        for _ in 0..4 {
            match tokio::time::timeout(
                std::time::Duration::from_millis(300),
                tokio::net::TcpStream::connect(target),
            )
            .await
            {
                Ok(Ok(s)) => fillers.push(s),
                _ => break,
            }
        }
        let mut c = local_config();
        c.limits.connect_timeout_ms = 300;
        let server = start(c).await;
        let mux = client(addr(&server)).await;
        assert_eq!(
            outcome(&mux, StreamType::Tcp, "127.0.0.1", target.port()).await,
            CloseReason::ServerStreamConnectionTimedOut
        );
        drop(listener);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn blocked_target_closes_with_0x48() {
    bounded(async {
        let mut c = local_config();
        c.policy.allow_loopback = false;
        let server = start(c).await;
        let echo = tcp_echo().await;
        let mux = client(addr(&server)).await;
        assert_eq!(
            outcome(&mux, StreamType::Tcp, "127.0.0.1", echo).await,
            CloseReason::ServerStreamBlockedAddress
        );
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn stream_limit_closes_with_0x49() {
    bounded(async {
        let mut c = local_config();
        c.limits.max_streams_per_connection = 2;
        let server = start(c).await;
        let echo = tcp_echo().await;
        let mux = client(addr(&server)).await;
        let mut a = mux
            .new_stream(StreamType::Tcp, "127.0.0.1", echo)
            .await
            .unwrap();
        let mut b = mux
            .new_stream(StreamType::Tcp, "127.0.0.1", echo)
            .await
            .unwrap();
        assert!(matches!(
            mux.new_stream(StreamType::Tcp, "127.0.0.1", echo).await,
            Err(WispError::StreamRefused(CloseReason::ServerStreamThrottled))
        ));
        // The open ones keep working.
        assert_eq!(echo_roundtrip(&mut a, b"a").await, b"a");
        assert_eq!(echo_roundtrip(&mut b, b"b").await, b"b");
        assert_eq!(
            server
                .metrics()
                .streams_closed(StreamType::Tcp, CloseReason::ServerStreamThrottled),
            0,
            "refused in the mux, before a stream task exists"
        );
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn target_closing_cleanly_delivers_everything_then_0x02() {
    bounded(async {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let payload: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let expected = payload.clone();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            s.write_all(&payload).await.unwrap();
            s.shutdown().await.unwrap();
            // Keep the read side open until the server goes away.
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink).await;
        });
        let server = start(local_config()).await;
        let mux = client(addr(&server)).await;
        let mut s = mux
            .new_stream(StreamType::Tcp, "127.0.0.1", port)
            .await
            .unwrap();
        let mut got = Vec::new();
        while let Some(item) = s.next().await {
            got.extend_from_slice(&item.unwrap());
        }
        assert_eq!(got.len(), expected.len());
        assert!(got == expected);
        assert_eq!(s.get_close_reason(), Some(CloseReason::Voluntary));
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn target_reset_closes_with_0x03() {
    bounded(async {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            // Reset only once the connection is surely established on the server's side.
            let mut one = [0u8; 1];
            s.read_exact(&mut one).await.unwrap();
            // Linger zero turns the close into a RST.
            let s = socket2::Socket::from(s.into_std().unwrap());
            s.set_linger(Some(std::time::Duration::ZERO)).unwrap();
            drop(s);
        });
        let server = start(local_config()).await;
        let mux = client(addr(&server)).await;
        let mut s = mux
            .new_stream(StreamType::Tcp, "127.0.0.1", port)
            .await
            .unwrap();
        s.send(Bytes::from_static(b"x")).await.unwrap();
        assert_eq!(close_reason(&mut s).await, Some(CloseReason::Unexpected));
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn client_close_reaches_the_target() {
    bounded(async {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut got = Vec::new();
            let _ = s.read_to_end(&mut got).await;
            let _ = tx.send(got);
        });
        let server = start(local_config()).await;
        let mux = client(addr(&server)).await;
        let mut s = mux
            .new_stream(StreamType::Tcp, "127.0.0.1", port)
            .await
            .unwrap();
        s.send(Bytes::from_static(b"bye")).await.unwrap();
        s.close(CloseReason::Voluntary).await.unwrap();
        assert_eq!(rx.await.unwrap(), b"bye", "target sees the data, then EOF");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn motd_is_sent() {
    bounded(async {
        let mut c = local_config();
        c.wisp.motd = Some("hello operators".into());
        let server = start(c).await;
        let mux = client(addr(&server)).await;
        assert_eq!(mux.motd(), Some("hello operators"));
        assert!(mux.get_extension_ids().contains(&0x04));
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn without_confirmation_refusal_shows_as_close_reason() {
    bounded(async {
        let mut c = local_config();
        c.wisp.confirmation = false;
        let server = start(c).await;
        let mux = client(addr(&server)).await;
        assert!(!mux.get_extension_ids().contains(&0x05));
        let port = closed_port().await;
        // new_stream succeeds at once; the refusal arrives as the stream's CLOSE.
        let mut s = mux
            .new_stream(StreamType::Tcp, "127.0.0.1", port)
            .await
            .unwrap();
        assert_eq!(
            close_reason(&mut s).await,
            Some(CloseReason::ServerStreamConnectionRefused)
        );
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn many_streams_at_once() {
    bounded(async {
        let server = start(local_config()).await;
        let echo = tcp_echo().await;
        let mux = std::sync::Arc::new(client(addr(&server)).await);
        let mut tasks = Vec::new();
        for i in 0..50u32 {
            let mux = mux.clone();
            tasks.push(tokio::spawn(async move {
                let mut s = mux
                    .new_stream(StreamType::Tcp, "127.0.0.1", echo)
                    .await
                    .unwrap();
                let msg = format!("stream {i}");
                assert_eq!(echo_roundtrip(&mut s, msg.as_bytes()).await, msg.as_bytes());
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        server.shutdown().await;
    })
    .await;
}
