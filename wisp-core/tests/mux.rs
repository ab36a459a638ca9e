//! The async multiplexer, both sides, over an in-memory transport of tiny capacity: data
//! integrity under load, flow control, close semantics, limits and hostile packets.

use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use wisp_core::extensions::confirmation::StreamConfirmationProtocolExtensionBuilder;
use wisp_core::extensions::motd::MotdProtocolExtensionBuilder;
use wisp_core::extensions::udp::UdpProtocolExtensionBuilder;
use wisp_core::extensions::AnyProtocolExtensionBuilder as B;
use wisp_core::packet::RawPacket;
use wisp_core::stream::MuxStream;
use wisp_core::ws::memory::{duplex, MemoryRead, MemoryWrite};
use wisp_core::{
    ClientMux, CloseReason, DataBuf, MuxOptions, Packet, PacketType, ServerMux, StreamType,
    WispError, WispV2Handshake,
};

type Server = ServerMux<MemoryWrite>;
type Client = ClientMux<MemoryWrite>;

const LIMIT: Duration = Duration::from_secs(60);

async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("test timed out")
}

/// A connected server and client with both actors spawned.
async fn pair(
    capacity: usize,
    server_opts: MuxOptions,
    server_v2: Option<WispV2Handshake>,
    client_opts: MuxOptions,
    client_v2: Option<WispV2Handshake>,
) -> (Server, Client) {
    let ((s_rx, s_tx), (c_rx, c_tx)) = duplex(capacity);
    // The server's actor sends the final CONTINUE of a v2 handshake, so the server side must
    // get to its actor while the client is still waiting.
    let (server, client) = tokio::join!(
        async {
            let (server, actor) = ServerMux::new_with_options(s_rx, s_tx, server_opts, server_v2)
                .await
                .unwrap()
                .with_no_required_extensions();
            tokio::spawn(actor);
            server
        },
        ClientMux::new_with_options(c_rx, c_tx, client_opts, client_v2),
    );
    let (client, c_actor) = client.unwrap().with_no_required_extensions();
    tokio::spawn(c_actor);
    (server, client)
}

async fn v1_pair(capacity: usize, buffer_size: u32) -> (Server, Client) {
    pair(
        capacity,
        MuxOptions::with_buffer_size(buffer_size),
        None,
        MuxOptions::default(),
        None,
    )
    .await
}

/// Accepts every stream and echoes it until the client closes it.
fn spawn_echo_server(server: Server) {
    tokio::spawn(async move {
        while let Some((_, stream)) = server.wait_for_stream().await {
            tokio::spawn(async move {
                let (mut rx, mut tx) = stream.into_split();
                while let Some(Ok(data)) = rx.next().await {
                    if tx.send(data).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
}

/// Deterministic test data: byte `i` of stream `s` is a function of both.
fn pattern(stream: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2_654_435_761)
                .wrapping_add(stream as u32 * 7919) as u8
        })
        .map(|b| b ^ (len as u8))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_echo_is_byte_exact() {
    bounded(async {
        let (server, client) = v1_pair(1, 16).await;
        spawn_echo_server(server);
        let mut stream = client.new_stream(StreamType::Tcp, "echo", 7).await.unwrap();
        let data = pattern(0, 300_000);
        let (mut rx, mut tx) = {
            let s: MuxStream<_> = std::mem::replace(
                &mut stream,
                client.new_stream(StreamType::Tcp, "x", 1).await.unwrap(),
            );
            s.into_split()
        };
        let sender = tokio::spawn({
            let data = data.clone();
            async move {
                tx.send(Bytes::from(data)).await.unwrap();
                tx
            }
        });
        let mut got = Vec::new();
        while got.len() < data.len() {
            got.extend_from_slice(&rx.next().await.unwrap().unwrap());
        }
        assert_eq!(got, data);
        drop(sender.await.unwrap());
        drop(stream);
    })
    .await;
}

/// 256 MiB through 100 concurrent streams, echoed, over a transport that holds one message at a
/// time and with little credit, so that every wait and wake-up is exercised.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_streams_move_256_mib_byte_exact_without_deadlock() {
    const STREAMS: usize = 100;
    const PER_STREAM: usize = 256 * 1024 * 1024 / STREAMS;
    bounded(async {
        let (server, client) = pair(
            1,
            MuxOptions::with_buffer_size(4),
            None,
            MuxOptions::default(),
            None,
        )
        .await;
        spawn_echo_server(server);
        let client = std::sync::Arc::new(client);
        let mut tasks = Vec::new();
        for s in 0..STREAMS {
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                let stream = client.new_stream(StreamType::Tcp, "echo", 7).await.unwrap();
                let (mut rx, mut tx) = stream.into_split();
                let data = Bytes::from(pattern(s, PER_STREAM));
                let writer = tokio::spawn({
                    let data = data.clone();
                    async move {
                        // Writes of varied sizes, some larger than one packet.
                        let mut off = 0;
                        let mut n = 1 + s * 977;
                        while off < data.len() {
                            let len = (n % 150_000 + 1).min(data.len() - off);
                            tx.feed(data.slice(off..off + len)).await.unwrap();
                            off += len;
                            n = n.wrapping_mul(31).wrapping_add(17);
                        }
                        tx.flush().await.unwrap();
                        tx
                    }
                });
                let mut got = Vec::with_capacity(PER_STREAM);
                while got.len() < PER_STREAM {
                    got.extend_from_slice(&rx.next().await.expect("stream ended early").unwrap());
                }
                assert!(got == data[..], "stream {s} corrupted");
                drop(writer.await.unwrap());
                got.len()
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        assert_eq!(total, STREAMS * PER_STREAM);
    })
    .await;
}

/// A raw client: the server mux on one end, bare packets on the other.
async fn raw_server(
    opts: MuxOptions,
    v2: Option<WispV2Handshake>,
) -> (Server, MemoryRead, MemoryWrite) {
    let ((s_rx, s_tx), (mut c_rx, c_tx)) = duplex(64);
    let server = tokio::spawn(ServerMux::new_with_options(s_rx, s_tx, opts, v2));
    // The v1 handshake: one CONTINUE on stream 0.
    let first = Packet::decode(c_rx.next().await.unwrap().unwrap()).unwrap();
    assert_eq!(first, Packet::continue_(0, first_credit(&first)));
    let (server, actor) = server.await.unwrap().unwrap().with_no_required_extensions();
    tokio::spawn(actor);
    (server, c_rx, c_tx)
}

fn first_credit(p: &Packet) -> u32 {
    match p.packet_type {
        PacketType::Continue(c) => c.buffer_remaining,
        _ => panic!("expected CONTINUE, got {p:?}"),
    }
}

async fn next_packet(rx: &mut MemoryRead) -> Packet {
    Packet::decode(rx.next().await.expect("transport closed").unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credit_is_returned_as_the_server_reads() {
    bounded(async {
        let (server, mut rx, mut tx) = raw_server(MuxOptions::with_buffer_size(8), None).await;
        tx.send(Packet::connect(5, StreamType::Tcp, "h", 1).to_bytes())
            .await
            .unwrap();
        let (_, mut stream) = server.wait_for_stream().await.unwrap();
        for i in 0..8u8 {
            tx.send(Packet::data(5, Bytes::from(vec![i])).to_bytes())
                .await
                .unwrap();
        }
        // Nothing is announced until the reader takes a quarter of the credit (2 packets).
        assert_eq!(stream.next().await.unwrap().unwrap()[..], [0]);
        let quiet = tokio::time::timeout(Duration::from_millis(150), rx.next()).await;
        assert!(quiet.is_err(), "credit announced too early: {quiet:?}");
        assert_eq!(stream.next().await.unwrap().unwrap()[..], [1]);
        // The announcement is the buffer less what is still queued (0 to 6 packets, depending
        // on how many of the 8 the server has read from the transport by then).
        let p = next_packet(&mut rx).await;
        let PacketType::Continue(c) = p.packet_type else {
            panic!("{p:?}")
        };
        assert_eq!(p.stream_id, 5);
        assert!((2..=8).contains(&c.buffer_remaining), "{c:?}");
        for i in 2..8u8 {
            assert_eq!(stream.next().await.unwrap().unwrap()[..], [i]);
        }
    })
    .await;
}

/// The client sends no more than its credit and resumes when credit returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_stops_at_its_credit_and_resumes() {
    bounded(async {
        let ((mut s_rx, mut s_tx), (c_rx, c_tx)) = duplex(64);
        s_tx.send(Packet::continue_(0, 3).to_bytes()).await.unwrap();
        let (client, actor) = ClientMux::new(c_rx, c_tx, None)
            .await
            .unwrap()
            .with_no_required_extensions();
        tokio::spawn(actor);
        let mut stream = client.new_stream(StreamType::Tcp, "h", 1).await.unwrap();
        for i in 0..10u8 {
            stream.feed(Bytes::from(vec![i])).await.unwrap();
        }
        stream.flush().now_or_never_ok();
        let connect = next_packet(&mut s_rx).await;
        let id = connect.stream_id;
        assert!(matches!(connect.packet_type, PacketType::Connect(_)));
        for i in 0..3u8 {
            assert_eq!(
                next_packet(&mut s_rx).await,
                Packet::data(id, Bytes::from(vec![i]))
            );
        }
        // Out of credit: nothing more arrives.
        let quiet = tokio::time::timeout(Duration::from_millis(200), s_rx.next()).await;
        assert!(quiet.is_err(), "client sent past its credit: {quiet:?}");
        s_tx.send(Packet::continue_(id, 7).to_bytes())
            .await
            .unwrap();
        for i in 3..10u8 {
            assert_eq!(
                next_packet(&mut s_rx).await,
                Packet::data(id, Bytes::from(vec![i]))
            );
        }
    })
    .await;
}

trait NowOrNever {
    fn now_or_never_ok(self);
}
impl<F: std::future::Future> NowOrNever for F {
    fn now_or_never_ok(self) {
        let _ = futures::FutureExt::now_or_never(self);
    }
}

/// A client that ignores credit makes the server stop reading, not grow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_ignoring_credit_is_held_back_not_buffered() {
    bounded(async {
        let (server, _rx, mut tx) = raw_server(MuxOptions::with_buffer_size(4), None).await;
        tx.send(Packet::connect(1, StreamType::Tcp, "h", 1).to_bytes())
            .await
            .unwrap();
        let (_, mut stream) = server.wait_for_stream().await.unwrap();
        // The server queues at most 2 * 4 + 1 packets and the transport holds 64 more (plus one
        // per sender); anything past that cannot be sent while the reader is idle.
        let mut sent = 0;
        loop {
            let send = tx.send(Packet::data(1, Bytes::from_static(b"x")).to_bytes());
            match tokio::time::timeout(Duration::from_millis(300), send).await {
                Ok(r) => {
                    r.unwrap();
                    sent += 1;
                }
                Err(_) => break,
            }
            assert!(sent < 200, "the server kept reading past the cap");
        }
        assert!(sent >= 9, "only {sent} packets went through");
        // Reading resumes the flow.
        for _ in 0..sent {
            stream.next().await.unwrap().unwrap();
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_reasons_travel_both_ways() {
    bounded(async {
        let (server, client) = v1_pair(4, 16).await;
        let a = client.new_stream(StreamType::Tcp, "a", 1).await.unwrap();
        let b = client.new_stream(StreamType::Tcp, "b", 2).await.unwrap();
        let (ca, sa) = server.wait_for_stream().await.unwrap();
        let (cb, mut sb) = server.wait_for_stream().await.unwrap();
        assert_eq!((ca.host.as_str(), ca.port), ("a", 1));
        assert_eq!((cb.host.as_str(), cb.port), ("b", 2));
        // Server closes a with 0x44: the client's reader ends and reports it.
        sa.close(CloseReason::ServerStreamConnectionRefused)
            .await
            .unwrap();
        let (mut a_rx, a_tx) = a.into_split();
        assert!(a_rx.next().await.is_none());
        assert_eq!(
            a_rx.get_close_reason(),
            Some(CloseReason::ServerStreamConnectionRefused)
        );
        assert!(matches!(
            a_tx.close(CloseReason::Voluntary).await,
            Err(WispError::StreamAlreadyClosed)
        ));
        // Client closes b with an unknown reason: it survives.
        b.close(CloseReason(0x99)).await.unwrap();
        assert!(sb.next().await.is_none());
        assert_eq!(sb.get_close_reason(), Some(CloseReason(0x99)));
    })
    .await;
}

/// A target that finishes: every queued byte is delivered, then CLOSE 0x02.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_writer_closes_after_the_data() {
    bounded(async {
        let (server, client) = v1_pair(1, 16).await;
        let stream = client.new_stream(StreamType::Tcp, "t", 1).await.unwrap();
        let (_, s) = server.wait_for_stream().await.unwrap();
        let (_s_rx, mut s_tx) = s.into_split();
        let data = pattern(3, 1_000_000);
        s_tx.send(Bytes::from(data.clone())).await.unwrap();
        drop(s_tx);
        let (mut rx, _tx) = stream.into_split();
        let mut got = Vec::new();
        while let Some(chunk) = rx.next().await {
            got.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(got.len(), data.len());
        assert!(got == data);
        assert_eq!(rx.get_close_reason(), Some(CloseReason::Voluntary));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_packets_are_refused_without_killing_the_connection() {
    bounded(async {
        let opts = MuxOptions {
            max_streams: 2,
            ..MuxOptions::with_buffer_size(8)
        };
        let (server, mut rx, mut tx) = raw_server(opts, None).await;
        let send = |p: Bytes| p;
        // CONNECT on stream 0: ignored (a CLOSE on stream 0 would end the connection).
        tx.send(send(Packet::connect(0, StreamType::Tcp, "h", 1).to_bytes()))
            .await
            .unwrap();
        // Unknown packet type and DATA on an unknown stream: ignored.
        tx.send(Bytes::from_static(&[0x7f, 1, 0, 0, 0, 1, 2]))
            .await
            .unwrap();
        tx.send(Packet::data(77, Bytes::from_static(b"?")).to_bytes())
            .await
            .unwrap();
        // Invalid UTF-8 host and an unknown stream type: CLOSE 0x41 for that stream.
        tx.send(Bytes::from_static(&[0x01, 3, 0, 0, 0, 1, 80, 0, 0xff]))
            .await
            .unwrap();
        assert_eq!(
            next_packet(&mut rx).await,
            Packet::close(3, CloseReason::ServerStreamInvalidInfo)
        );
        tx.send(Packet::connect(4, StreamType::Unknown(9), "h", 1).to_bytes())
            .await
            .unwrap();
        assert_eq!(
            next_packet(&mut rx).await,
            Packet::close(4, CloseReason::ServerStreamInvalidInfo)
        );
        // A duplicate ID ends both the old and the new stream.
        tx.send(Packet::connect(5, StreamType::Tcp, "h", 1).to_bytes())
            .await
            .unwrap();
        let (_, mut first) = server.wait_for_stream().await.unwrap();
        tx.send(Packet::connect(5, StreamType::Tcp, "h", 1).to_bytes())
            .await
            .unwrap();
        assert_eq!(
            next_packet(&mut rx).await,
            Packet::close(5, CloseReason::ServerStreamInvalidInfo)
        );
        assert!(first.next().await.is_none());
        assert_eq!(
            first.get_close_reason(),
            Some(CloseReason::ServerStreamInvalidInfo)
        );
        drop(first);
        // The stream limit: the third open stream is throttled.
        tx.send(Packet::connect(6, StreamType::Tcp, "h", 1).to_bytes())
            .await
            .unwrap();
        tx.send(Packet::connect(7, StreamType::Tcp, "h", 1).to_bytes())
            .await
            .unwrap();
        tx.send(Packet::connect(8, StreamType::Tcp, "h", 1).to_bytes())
            .await
            .unwrap();
        assert_eq!(
            next_packet(&mut rx).await,
            Packet::close(8, CloseReason::ServerStreamThrottled)
        );
        // The connection still works: stream 6 carries data.
        let (c6, mut s6) = server.wait_for_stream().await.unwrap();
        assert_eq!(c6.host, "h");
        tx.send(Packet::data(6, Bytes::from_static(b"still here")).to_bytes())
            .await
            .unwrap();
        assert_eq!(&s6.next().await.unwrap().unwrap()[..], b"still here");
        // Stream 7 waits to be accepted; take it before the connection ends, since streams
        // nobody accepted are discarded with it.
        let (c7, _s7) = server.wait_for_stream().await.unwrap();
        assert_eq!(c7.port, 1);
        // A message shorter than a header is fatal: the connection ends.
        tx.send(Bytes::from_static(&[0x02])).await.unwrap();
        assert!(server.wait_for_stream().await.is_none());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_keeps_datagram_boundaries_and_needs_the_extension_in_v2() {
    bounded(async {
        let (server, client) = v1_pair(4, 16).await;
        spawn_echo_server(server);
        let mut udp = client.new_stream(StreamType::Udp, "u", 53).await.unwrap();
        for n in [1usize, 1000, 65_000] {
            udp.send(Bytes::from(pattern(n, n))).await.unwrap();
            assert_eq!(
                udp.next().await.unwrap().unwrap(),
                Bytes::from(pattern(n, n))
            );
        }
        assert!(matches!(
            udp.send(Bytes::from(vec![0; 70_000])).await,
            Err(WispError::DatagramTooLarge(70_000))
        ));

        // v2 without UDP on the server: the client refuses to open UDP streams.
        let (_server, client) = pair(
            4,
            MuxOptions::default(),
            Some(WispV2Handshake::new(vec![])),
            MuxOptions::default(),
            Some(WispV2Handshake::new(vec![B::new(
                UdpProtocolExtensionBuilder,
            )])),
        )
        .await;
        assert!(!client.supports_udp());
        assert!(matches!(
            client.new_stream(StreamType::Udp, "u", 53).await,
            Err(WispError::UdpNotSupported)
        ));
    })
    .await;
}

/// Payloads sent from a `DataBuf` arrive byte-exact: one packet when they fit, several when they
/// do not (TCP), one datagram or `DatagramTooLarge` (UDP).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_from_a_data_buf_arrive_intact() {
    bounded(async {
        let (server, client) = v1_pair(4, 16).await;
        spawn_echo_server(server);
        let mut tcp = client.new_stream(StreamType::Tcp, "t", 1).await.unwrap();
        for n in [1usize, 65_530, 65_531, 200_000] {
            let mut buf = DataBuf::with_capacity(1024);
            buf.buf_mut().extend_from_slice(&pattern(n, n));
            tcp.feed_buf(buf).await.unwrap();
            let mut got = Vec::new();
            while got.len() < n {
                got.extend_from_slice(&tcp.next().await.unwrap().unwrap());
            }
            assert_eq!(got, pattern(n, n), "{n} bytes");
        }
        let mut udp = client.new_stream(StreamType::Udp, "u", 53).await.unwrap();
        for n in [0usize, 65_530] {
            udp.feed_buf(DataBuf::from(&pattern(n, n)[..]))
                .await
                .unwrap();
            assert_eq!(
                udp.next().await.unwrap().unwrap(),
                Bytes::from(pattern(n, n))
            );
        }
        assert!(matches!(
            udp.feed_buf(DataBuf::from(&[0u8; 65_531][..])).await,
            Err(WispError::DatagramTooLarge(65_531))
        ));
    })
    .await;
}

/// A reader that stops for good gets its stream closed with 0x81 and an error; the others
/// carry on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_reader_is_closed_with_0x81_and_others_continue() {
    bounded(async {
        let client_opts = MuxOptions {
            stream_receive_buffer: 256 * 1024,
            ..MuxOptions::default()
        };
        let (server, client) = pair(4, MuxOptions::default(), None, client_opts, None).await;
        let stalled = client.new_stream(StreamType::Tcp, "slow", 1).await.unwrap();
        let mut live = client.new_stream(StreamType::Tcp, "live", 2).await.unwrap();
        let (_, s_stalled) = server.wait_for_stream().await.unwrap();
        let (_, mut s_live) = server.wait_for_stream().await.unwrap();
        let (mut s_stalled_rx, mut s_stalled_tx) = s_stalled.into_split();
        let flood = tokio::spawn(async move {
            let chunk = Bytes::from(vec![7u8; 64 * 1024]);
            let mut sent = 0;
            while s_stalled_tx.send(chunk.clone()).await.is_ok() {
                sent += chunk.len();
                if sent > 64 * 1024 * 1024 {
                    panic!("the client never pushed back");
                }
            }
            sent
        });
        // The live stream still works while the flood is in progress.
        for i in 0..20u8 {
            s_live.send(Bytes::from(vec![i; 10])).await.unwrap();
            assert_eq!(live.next().await.unwrap().unwrap()[..], [i; 10]);
        }
        let sent = flood.await.unwrap();
        assert!(sent >= 256 * 1024, "closed after {sent} bytes");
        assert!(s_stalled_rx.next().await.is_none());
        assert_eq!(
            s_stalled_rx.get_close_reason(),
            Some(CloseReason::ClientUnexpected)
        );
        let (mut rx, _tx) = stalled.into_split();
        assert!(matches!(
            rx.next().await,
            Some(Err(WispError::StreamReceiveOverflow))
        ));
        assert!(rx.next().await.is_none());
        assert_eq!(rx.get_close_reason(), Some(CloseReason::ClientUnexpected));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_extension_missing_is_closed_with_0x04() {
    bounded(async {
        let ((s_rx, s_tx), (c_rx, c_tx)) = duplex(4);
        let server = async {
            ServerMux::new(
                s_rx,
                s_tx,
                8,
                Some(WispV2Handshake::new(vec![B::new(
                    UdpProtocolExtensionBuilder,
                )])),
            )
            .await
            .unwrap()
            .with_required_extensions(&[0x01])
            .await
        };
        let client = ClientMux::new(c_rx, c_tx, Some(WispV2Handshake::new(vec![])));
        let (server, client) = tokio::join!(server, client);
        assert!(matches!(server, Err(WispError::ExtensionsNotSupported(ref ids)) if ids == &[1]));
        assert!(matches!(client, Err(WispError::ExtensionsNotSupported(_))));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmation_opens_after_the_server_confirms_and_refusals_carry_the_reason() {
    bounded(async {
        let ext = || {
            Some(WispV2Handshake::new(vec![
                B::new(StreamConfirmationProtocolExtensionBuilder),
                B::new(MotdProtocolExtensionBuilder::Server("welcome".into())),
            ]))
        };
        let client_ext = Some(WispV2Handshake::new(vec![
            B::new(StreamConfirmationProtocolExtensionBuilder),
            B::new(MotdProtocolExtensionBuilder::Client),
        ]));
        let (server, client) = pair(
            4,
            MuxOptions::default(),
            ext(),
            MuxOptions::default(),
            client_ext,
        )
        .await;
        assert_eq!(client.motd(), Some("welcome"));
        assert_eq!(client.get_extension_ids(), vec![5, 4]);
        let server_side = tokio::spawn(async move {
            let (c, s) = server.wait_for_stream().await.unwrap();
            assert_eq!(c.port, 1);
            s.close(CloseReason::ServerStreamConnectionRefused)
                .await
                .unwrap();
            let (c, mut s) = server.wait_for_stream().await.unwrap();
            assert_eq!(c.port, 2);
            s.confirm();
            s.send(Bytes::from_static(b"hi")).await.unwrap();
            server
        });
        assert!(matches!(
            client.new_stream(StreamType::Tcp, "h", 1).await,
            Err(WispError::StreamRefused(
                CloseReason::ServerStreamConnectionRefused
            ))
        ));
        let mut ok = client.new_stream(StreamType::Tcp, "h", 2).await.unwrap();
        assert_eq!(&ok.next().await.unwrap().unwrap()[..], b"hi");
        drop(server_side.await.unwrap());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_connection_ends_every_stream() {
    bounded(async {
        let (server, client) = v1_pair(4, 16).await;
        let mut a = client.new_stream(StreamType::Tcp, "a", 1).await.unwrap();
        let (_, _sa) = server.wait_for_stream().await.unwrap();
        server
            .close_with_reason(CloseReason::ServerStreamThrottled)
            .await
            .unwrap();
        assert!(a.next().await.is_none());
        assert_eq!(
            a.get_close_reason(),
            Some(CloseReason::ServerStreamThrottled)
        );
        assert!(server.wait_for_stream().await.is_none());
        // A closed client cannot open streams.
        assert!(client.new_stream(StreamType::Tcp, "b", 2).await.is_err());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_handle_can_wait_for_the_end_of_its_stream() {
    bounded(async {
        let (server, client) = v1_pair(4, 16).await;
        let a = client.new_stream(StreamType::Tcp, "a", 1).await.unwrap();
        let b = client.new_stream(StreamType::Tcp, "b", 2).await.unwrap();
        let (_, sa) = server.wait_for_stream().await.unwrap();
        let (_, _sb) = server.wait_for_stream().await.unwrap();
        // Closed by the peer.
        let waiter = tokio::spawn({
            let closer = a.get_close_handle();
            async move { closer.closed().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "resolved while the stream was open");
        sa.close(CloseReason::ServerStreamConnectionRefused)
            .await
            .unwrap();
        assert_eq!(
            waiter.await.unwrap(),
            Some(CloseReason::ServerStreamConnectionRefused)
        );
        // Closed locally.
        let closer = b.get_close_handle();
        b.close(CloseReason(0x42)).await.unwrap();
        assert_eq!(closer.closed().await, Some(CloseReason(0x42)));
        // Ended with the connection (closed by this side, so with its reason).
        let c = client.new_stream(StreamType::Tcp, "c", 3).await.unwrap();
        let closer = c.get_close_handle();
        let waiter = tokio::spawn(async move { closer.closed().await });
        client.close().await.unwrap();
        assert_eq!(waiter.await.unwrap(), Some(CloseReason::Voluntary));
        drop(server);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_transport_gives_every_stream_an_error() {
    bounded(async {
        let ((s_rx, mut s_tx), (c_rx, c_tx)) = duplex(4);
        s_tx.send(Packet::continue_(0, 8).to_bytes()).await.unwrap();
        let (client, actor) = ClientMux::new(c_rx, c_tx, None)
            .await
            .unwrap()
            .with_no_required_extensions();
        let actor = tokio::spawn(actor);
        let mut streams = Vec::new();
        for i in 0..3 {
            streams.push(client.new_stream(StreamType::Tcp, "h", i).await.unwrap());
        }
        drop((s_rx, s_tx));
        for s in &mut streams {
            assert!(matches!(
                s.next().await,
                Some(Err(WispError::WsImplSocketClosed))
            ));
            assert!(s.next().await.is_none());
        }
        // The actor ends on its own (with the transport's error, since the client still had
        // CONNECTs to send).
        let _ = actor.await.unwrap();
        assert!(client.is_closed());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_actor_ends_when_nothing_can_use_the_connection() {
    bounded(async {
        let ((s_rx, s_tx), (c_rx, c_tx)) = duplex(4);
        let (server, client) = tokio::join!(
            ServerMux::new(s_rx, s_tx, 8, None),
            ClientMux::new(c_rx, c_tx, None)
        );
        let (server, s_actor) = server.unwrap().with_no_required_extensions();
        let (client, c_actor) = client.unwrap().with_no_required_extensions();
        let s_actor = tokio::spawn(s_actor);
        let c_actor = tokio::spawn(c_actor);
        let stream = client.new_stream(StreamType::Tcp, "h", 1).await.unwrap();
        drop(client);
        assert!(!c_actor.is_finished());
        drop(stream);
        c_actor.await.unwrap().unwrap();
        // The server sees the transport end and ends too.
        s_actor.await.unwrap().unwrap();
        assert!(server.wait_for_stream().await.is_none());
    })
    .await;
}

#[test]
fn raw_packet_helper_reports_the_stream() {
    let raw = RawPacket::parse(Packet::close(9, CloseReason::Voluntary).to_bytes()).unwrap();
    assert_eq!(raw.stream_id, 9);
}
