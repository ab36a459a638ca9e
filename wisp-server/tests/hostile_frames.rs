//! Hostile WebSocket framing: text frames, ping floods, messages split into many fragments or
//! fragmented past the message limit, and frames that break RFC 6455 (written byte by byte,
//! since no library sends them). The answer to a framing violation is the WebSocket close code
//! and the end of the connection; the bystander of the shared harness loses no byte.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::bystander::{hostile_case, proc_status_kib, Source, Verifier};
use common::raw::*;
use common::*;
use futures::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_websockets::{ClientBuilder, Message};

fn name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("hostile")
        .to_owned()
}

/// A raw v1 client whose messages go out in frames of `frame_size` bytes.
async fn fragmenting(addr: SocketAddr, frame_size: usize) -> Ws {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (ws, _) = ClientBuilder::new()
        .uri(&format!("ws://{addr}/"))
        .unwrap()
        .config(tokio_websockets::Config::default().frame_size(frame_size))
        .connect_on(tcp)
        .await
        .unwrap();
    ws
}

/// Upgrades by hand, lets the v1 handshake happen with one good stream, then writes `frames`
/// and returns what the server answered before closing.
async fn violation(env: &common::bystander::Env, frames: &[u8]) -> Vec<ServerFrame> {
    let mut ws = raw_upgrade(env.addr, None).await;
    let good = frame(true, 0x2, &connect_packet(1, 0x01, env.echo, b"127.0.0.1"));
    ws.write(&good).await.unwrap();
    let _ = ws.write(frames).await;
    ws.until_eof().await
}

#[tokio::test]
async fn text_frame_in_the_handshake_and_after() {
    hostile_case(&name(), local_config(), |env| async move {
        // As the v2 client's answer to INFO: the handshake fails, the connection ends.
        let mut ws = raw_v2(env.addr).await;
        assert_eq!(next_packet(&mut ws).await.unwrap()[0], 0x05);
        ws.send(Message::text("{\"hello\":1}")).await.unwrap();
        let end = ending(&mut ws).await;
        assert!(end.packets.iter().all(|p| p[0] != 0x02), "{end:?}");
        // After the handshake: a text frame is a protocol violation that ends the connection.
        let mut ws = raw(env.addr).await;
        still_serves(&mut ws, 1, env.echo).await;
        ws.send(Message::text("text")).await.unwrap();
        ending(&mut ws).await;
    })
    .await;
}

#[tokio::test]
async fn ping_flood_while_reading() {
    hostile_case(&name(), local_config(), |env| async move {
        let ws = raw(env.addr).await;
        let (mut tx, mut rx) = ws.split();
        let n = 20_000;
        let pinger = async {
            for i in 0..n {
                tx.feed(Message::ping(Bytes::from(format!("{i:0>120}"))))
                    .await
                    .unwrap();
            }
            tx.flush().await.unwrap();
            tx
        };
        let ponger = async {
            let mut pongs = 0;
            while pongs < n {
                let m = rx.next().await.unwrap().unwrap();
                if m.is_pong() {
                    pongs += 1;
                }
            }
            pongs
        };
        let (tx, pongs) = tokio::join!(pinger, ponger);
        assert_eq!(pongs, n, "every ping answered");
        let mut ws = tx.reunite(rx).unwrap();
        still_serves(&mut ws, 1, env.echo).await;
    })
    .await;
}

#[tokio::test]
async fn ping_flood_without_reading() {
    hostile_case(&name(), local_config(), |env| async move {
        let mut ws = raw_upgrade(env.addr, None).await;
        // 125-byte pings (the largest control frame) in 1 MiB writes, never reading a pong. The
        // server may answer by queueing pongs only as far as its socket takes them; it must stop
        // reading (or end the connection) rather than queue without bound.
        let ping = frame(true, 0x9, &[0x5a; 125]);
        let block: Vec<u8> = ping.iter().copied().cycle().take(ping.len() * 8000).collect();
        let before = proc_status_kib("self", "VmRSS:");
        let mut written = 0usize;
        let budget = 256 * 1024 * 1024;
        while written < budget {
            match tokio::time::timeout(Duration::from_secs(2), ws.sock.write_all(&block)).await {
                Ok(Ok(())) => written += block.len(),
                // Blocked: the server stopped reading. Or it closed: both bound the memory.
                Ok(Err(_)) | Err(_) => break,
            }
        }
        let grown_kib = proc_status_kib("self", "VmRSS:").saturating_sub(before);
        println!("ping flood without reading: {written} bytes written, RSS grew {grown_kib} KiB");
        assert!(
            grown_kib < 48 * 1024,
            "the server queued pongs without bound: RSS grew {grown_kib} KiB after {written} bytes of pings"
        );
    })
    .await;
}

#[tokio::test]
async fn message_in_many_small_fragments() {
    hostile_case(&name(), local_config(), |env| async move {
        // One DATA packet of 8 KiB sent as 8,197 one-byte frames, then one of 100 KiB in 64-byte
        // frames: reassembled exactly.
        for (frame_size, len) in [(1usize, 8 * 1024usize), (64, 100 * 1024)] {
            let mut ws = fragmenting(env.addr, frame_size).await;
            send(&mut ws, connect_packet(1, 0x01, env.echo, b"127.0.0.1")).await;
            let mut src = Source::new(frame_size as u64);
            let mut v = Verifier::new(frame_size as u64);
            send(&mut ws, data_packet(1, &src.take(len))).await;
            while (v.bytes as usize) < len {
                let p = next_for(&mut ws, 1).await.expect("echo");
                assert_eq!(p[0], 0x02);
                v.check(&p[5..]);
            }
        }
    })
    .await;
}

#[tokio::test]
async fn fragmented_message_over_the_limit() {
    hostile_case(&name(), local_config(), |env| async move {
        // 4 MiB in 4 KiB fragments against the message limit (1 MiB by default): the
        // connection ends at the limit with 1009, long before the whole message arrives, as
        // it does for a single frame over the limit (`frame_length_that_lies`).
        let mut ws = fragmenting(env.addr, 4096).await;
        send(&mut ws, connect_packet(1, 0x01, env.echo, b"127.0.0.1")).await;
        try_send(&mut ws, data_packet(1, &vec![7u8; 4 * 1024 * 1024])).await;
        let end = ending(&mut ws).await;
        assert_eq!(end.close_code, Some(1009), "{end:?}");
        assert!(
            end.packets.iter().all(|p| p[0] != 0x02),
            "nothing was forwarded"
        );
    })
    .await;
}

#[tokio::test]
async fn frame_length_that_lies() {
    hostile_case(&name(), local_config(), |env| async move {
        // A 64-bit length of 2^63 - 1, and one of 1 GiB with 10 bytes behind it: refused on the
        // header (1009), without waiting for or allocating the payload.
        for len in [i64::MAX as u64, 1 << 30] {
            let frames = violation(&env, &frame_with_len(true, 0x2, b"0123456789", len)).await;
            assert_eq!(close_code(&frames), Some(1009), "length {len}: {frames:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn framing_violations() {
    hostile_case(&name(), local_config(), |env| async move {
        let data = data_packet(1, b"x");
        let mut unmasked = frame(true, 0x2, &data);
        unmasked[1] &= 0x7f;
        unmasked.drain(2..6);
        let mut rsv = frame(true, 0x2, &data);
        rsv[0] |= 0x40;
        let cases: Vec<(&str, Vec<u8>, u16)> = vec![
            ("unmasked frame", unmasked, 1002),
            ("RSV1 without an extension", rsv, 1002),
            ("reserved data opcode 0x3", frame(true, 0x3, &data), 1002),
            ("reserved control opcode 0xb", frame(true, 0xb, b""), 1002),
            ("fragmented ping", frame(false, 0x9, b"ping"), 1002),
            (
                "control frame over 125 bytes",
                frame(true, 0x9, &[0; 126]),
                1002,
            ),
            (
                "continuation without a start",
                frame(true, 0x0, &data),
                1002,
            ),
            (
                "new message inside a fragmented one",
                [frame(false, 0x2, &data[..3]), frame(true, 0x2, &data)].concat(),
                1002,
            ),
            (
                "close frame with a 1-byte body",
                frame(true, 0x8, &[3]),
                1002,
            ),
            (
                "text frame of invalid UTF-8",
                frame(true, 0x1, &[0xff, 0xfe]),
                1007,
            ),
        ];
        for (what, bytes, code) in cases {
            let frames = violation(&env, &bytes).await;
            assert_eq!(close_code(&frames), Some(code), "{what}: {frames:?}");
            assert!(
                frames.iter().all(|(op, p)| *op != 0x2 || p[0] != 0x02),
                "{what}: nothing forwarded"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn websocket_close_with_streams_open() {
    hostile_case(&name(), local_config(), |env| async move {
        let mut ws = raw(env.addr).await;
        for id in 1..=20 {
            still_serves(&mut ws, id, env.echo).await;
        }
        ws.send(Message::close(None, "")).await.unwrap();
        ending(&mut ws).await;
    })
    .await;
}

#[tokio::test]
async fn socket_dropped_mid_message_with_streams_open() {
    hostile_case(&name(), local_config(), |env| async move {
        let mut ws = raw_upgrade(env.addr, None).await;
        for id in 1..=20u32 {
            let c = frame(true, 0x2, &connect_packet(id, 0x01, env.echo, b"127.0.0.1"));
            ws.write(&c).await.unwrap();
        }
        // Half a frame, then the socket goes away: the 20 streams must be freed (checked by
        // the harness).
        let f = frame(true, 0x2, &data_packet(1, &[1; 1000]));
        ws.write(&f[..500]).await.unwrap();
        drop(ws);
    })
    .await;
}
