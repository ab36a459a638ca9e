//! Hostile Wisp packets: every packet type malformed or truncated, every field at its limits,
//! packets a client must not send (CONTINUE, INFO after the handshake), and v2 INFO packets whose
//! extension records lie about their lengths. Each case asserts the server's answer; the shared
//! harness (`common::bystander`) checks that a bystander lost no byte and nothing leaked.

mod common;

use std::time::Duration;

use common::bystander::hostile_case;
use common::raw::*;
use common::*;

fn name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("hostile")
        .to_owned()
}

/// The answer to a CONNECT: the reason of the server's CLOSE for `id`.
async fn refusal(ws: &mut Ws, id: u32, connect: bytes::Bytes) -> Option<u8> {
    send(ws, connect).await;
    close_reason_of(ws, id).await
}

// ------------------------------------------------------------------ CONNECT

#[tokio::test]
async fn connect_truncated_at_every_length() {
    hostile_case(&name(), local_config(), |env| async move {
        let mut ws = raw(env.addr).await;
        // Header only, then 1 and 2 bytes of the 3-byte fixed part: invalid, 0x41 each.
        for (id, payload) in [(11u32, &[][..]), (12, &[0x01][..]), (13, &[0x01, 0x50][..])] {
            send(&mut ws, packet(0x01, id, payload)).await;
            assert_eq!(close_reason_of(&mut ws, id).await, Some(0x41), "id {id}");
        }
        // A CONNECT shorter than its 5-byte header is a broken packet: the connection ends.
        still_serves(&mut ws, 14, env.echo).await;
        send(&mut ws, bytes::Bytes::from_static(&[0x01, 1, 0])).await;
        let end = ending(&mut ws).await;
        assert_eq!(end.close_0(), None, "no CLOSE is owed to a broken peer");
    })
    .await;
}

#[tokio::test]
async fn connect_port_limits() {
    hostile_case(&name(), local_config(), |env| async move {
        let mut ws = raw(env.addr).await;
        let closed = closed_port().await;
        for (id, port, want) in [(1u32, 0u16, 0x41u8), (2, closed, 0x44), (3, 65535, 0x44)] {
            let got = refusal(&mut ws, id, connect_packet(id, 0x01, port, b"127.0.0.1")).await;
            assert_eq!(got, Some(want), "port {port}");
        }
        // Port 25 is refused by the default policy whatever the host.
        let got = refusal(&mut ws, 4, connect_packet(4, 0x01, 25, b"127.0.0.1")).await;
        assert_eq!(got, Some(0x48));
        still_serves(&mut ws, 5, env.echo).await;
    })
    .await;
}

#[tokio::test]
async fn connect_host_lengths() {
    hostile_case(&name(), local_config(), |env| async move {
        let mut ws = raw(env.addr).await;
        let label63 = "a".repeat(63);
        // 255 bytes in valid labels, under .invalid, which never resolves (RFC 6761).
        let long_name = format!("{label63}.{label63}.{label63}.{}.invalid", "b".repeat(55));
        assert_eq!(long_name.len(), 255);
        let cases: Vec<(u32, Vec<u8>, u8)> = vec![
            (1, Vec::new(), 0x41),
            (2, vec![b'a'; 255], 0x41), // one label over 63 bytes: not a name
            (3, vec![b'a'; 1000], 0x41), // longer than any name
            (4, long_name.into_bytes(), 0x42),
            (5, vec![b'a'; 60_000], 0x41), // nearly a whole frame of host
            (6, b"127.0.0.1\0.example".to_vec(), 0x41),
            (7, b"exa mple.com".to_vec(), 0x41),
            // An IPv6 literal without its closing bracket.
            (8, b"[::1".to_vec(), 0x41),
        ];
        for (id, host, want) in cases {
            let len = host.len();
            let got = refusal(&mut ws, id, connect_packet(id, 0x01, env.echo, &host)).await;
            assert_eq!(got, Some(want), "host of {len} bytes (id {id})");
        }
        still_serves(&mut ws, 9, env.echo).await;
    })
    .await;
}

#[tokio::test]
async fn stream_id_limits() {
    hostile_case(&name(), local_config(), |env| async move {
        let mut ws = raw(env.addr).await;
        // u32::MAX and 1 are ordinary IDs; 0 is the connection and is ignored in CONNECT.
        still_serves(&mut ws, u32::MAX, env.echo).await;
        still_serves(&mut ws, 1, env.echo).await;
        send(&mut ws, connect_packet(0, 0x01, env.echo, b"127.0.0.1")).await;
        send(&mut ws, data_packet(0, b"to stream zero")).await;
        still_serves(&mut ws, u32::MAX - 1, env.echo).await;
    })
    .await;
}

#[tokio::test]
async fn udp_refused_when_disabled() {
    let mut c = local_config();
    c.policy.udp = false;
    hostile_case(&name(), c, |env| async move {
        let mut ws = raw(env.addr).await;
        let udp = udp_echo().await;
        let got = refusal(&mut ws, 1, connect_packet(1, 0x02, udp, b"127.0.0.1")).await;
        assert_eq!(got, Some(0x48), "UDP off is a policy refusal");
        still_serves(&mut ws, 2, env.echo).await;
    })
    .await;
}

#[tokio::test]
async fn stream_id_reused_after_close() {
    hostile_case(&name(), local_config(), |env| async move {
        let mut ws = raw(env.addr).await;
        for _ in 0..20 {
            still_serves(&mut ws, 9, env.echo).await;
            send(&mut ws, close_packet(9, 0x02)).await;
        }
        still_serves(&mut ws, 9, env.echo).await;
    })
    .await;
}

// ------------------------------------------------------------------ DATA

#[tokio::test]
async fn data_empty_and_after_close() {
    hostile_case(&name(), local_config(), |env| async move {
        let mut ws = raw(env.addr).await;
        still_serves(&mut ws, 1, env.echo).await;
        // An empty DATA is no data; the stream goes on.
        send(&mut ws, data_packet(1, b"")).await;
        send(&mut ws, data_packet(1, b"x")).await;
        assert_eq!(
            &next_for(&mut ws, 1).await.unwrap()[..],
            &data_packet(1, b"x")[..]
        );
        // DATA after our CLOSE goes nowhere.
        send(&mut ws, close_packet(1, 0x02)).await;
        send(&mut ws, data_packet(1, b"late")).await;
        still_serves(&mut ws, 2, env.echo).await;
    })
    .await;
}

#[tokio::test]
async fn data_ignoring_flow_control() {
    hostile_case(&name(), local_config(), |env| async move {
        let mut ws = raw(env.addr).await;
        send(&mut ws, connect_packet(1, 0x01, env.echo, b"127.0.0.1")).await;
        // 2,000 packets with no regard for the 64 packets of credit: the server stops reading
        // the WebSocket instead of queueing them, and loses none.
        let mut src = common::bystander::Source::new(3);
        let mut verify = common::bystander::Verifier::new(3);
        let total = 2_000usize * 1000;
        let (mut tx, mut rx) = futures::StreamExt::split(ws);
        let writer = async {
            for _ in 0..2_000 {
                let p = data_packet(1, &src.take(1000));
                futures::SinkExt::send(&mut tx, tokio_websockets::Message::binary(p))
                    .await
                    .unwrap();
            }
        };
        let reader = async {
            while (verify.bytes as usize) < total {
                let m = futures::StreamExt::next(&mut rx).await.unwrap().unwrap();
                let p: bytes::Bytes = m.into_payload().into();
                if p[0] == 0x02 {
                    verify.check(&p[5..]);
                } else {
                    assert!(
                        p[0] == 0x03 || p[0] == 0x05,
                        "only CONTINUE/INFO besides: {p:?}"
                    );
                }
            }
        };
        tokio::join!(writer, reader);
        assert_eq!(verify.bytes as usize, total);
    })
    .await;
}

// ------------------------------------------------------------------ CONTINUE, CLOSE, INFO

#[tokio::test]
async fn continue_from_the_client_is_ignored() {
    hostile_case(&name(), local_config(), |env| async move {
        let mut ws = raw(env.addr).await;
        still_serves(&mut ws, 1, env.echo).await;
        for payload in [
            &[][..],
            &[1, 2, 3][..],
            &[0, 0, 0, 0][..],
            &[0xff; 4][..],
            &[9; 40][..],
        ] {
            send(&mut ws, packet(0x03, 1, payload)).await;
            send(&mut ws, packet(0x03, 0, payload)).await;
            send(&mut ws, packet(0x03, 77, payload)).await;
        }
        send(&mut ws, data_packet(1, b"after continue")).await;
        let p = next_for(&mut ws, 1).await.unwrap();
        assert_eq!(&p[..], &data_packet(1, b"after continue")[..]);
    })
    .await;
}

#[tokio::test]
async fn close_lengths() {
    hostile_case(&name(), local_config(), |env| async move {
        let mut ws = raw(env.addr).await;
        // A CLOSE without a reason byte, with a long tail, with reasons 0x00 and 0xff, and for a
        // stream that does not exist: each closes its stream (or nothing) and nothing else.
        for (id, payload) in [
            (1u32, &[][..]),
            (2, &[0x02; 300][..]),
            (3, &[0x00][..]),
            (4, &[0xff][..]),
        ] {
            still_serves(&mut ws, id, env.echo).await;
            send(&mut ws, packet(0x04, id, payload)).await;
            send(&mut ws, data_packet(id, b"after close")).await;
        }
        send(&mut ws, close_packet(4242, 0x02)).await;
        still_serves(&mut ws, 5, env.echo).await;
        // No CLOSE answers a CLOSE, and nothing came back for the closed streams.
        send(&mut ws, data_packet(5, b"mark")).await;
        let p = next_packet(&mut ws).await.expect("the mark comes back");
        assert_eq!(
            &p[..],
            &data_packet(5, b"mark")[..],
            "nothing else came first"
        );
    })
    .await;
}

#[tokio::test]
async fn close_on_stream_0_without_reason() {
    hostile_case(&name(), local_config(), |env| async move {
        let mut ws = raw(env.addr).await;
        still_serves(&mut ws, 1, env.echo).await;
        send(&mut ws, packet(0x04, 0, &[])).await;
        ending(&mut ws).await;
    })
    .await;
}

#[tokio::test]
async fn info_after_the_handshake_is_ignored() {
    hostile_case(&name(), local_config(), |env| async move {
        let mut ws = raw(env.addr).await;
        still_serves(&mut ws, 1, env.echo).await;
        send(&mut ws, info_packet(2, 0, &[(0x01, 0, b"")])).await;
        send(&mut ws, info_packet(2, 0, &[(0x02, u32::MAX, b"lie")])).await;
        send(&mut ws, packet(0x05, 3, &[])).await;
        still_serves(&mut ws, 2, env.echo).await;
    })
    .await;
}

// ------------------------------------------------------------------ v2 handshake

/// What a v2 handshake came to: `Ok(())` when the server accepted (CONTINUE on stream 0),
/// otherwise how the connection ended.
async fn v2_outcome(
    addr: std::net::SocketAddr,
    reply: bytes::Bytes,
    echo: u16,
) -> Result<(), Ending> {
    let mut ws = raw_v2(addr).await;
    let info = next_packet(&mut ws).await.expect("server INFO");
    assert_eq!(info[0], 0x05);
    try_send(&mut ws, reply).await;
    match next_packet(&mut ws).await {
        Some(p) if p[0] == 0x03 && p[1..5] == [0, 0, 0, 0] => {
            // Accepted: then the connection must really work.
            still_serves(&mut ws, 1, echo).await;
            Ok(())
        }
        Some(p) => {
            let mut end = ending(&mut ws).await;
            end.packets.insert(0, p);
            Err(end)
        }
        None => Err(Ending::default()),
    }
}

/// The server's first packet to a v2 client is its INFO; answer with `reply` and return how the
/// connection ended.
async fn v2_reply(addr: std::net::SocketAddr, reply: bytes::Bytes) -> Ending {
    let mut ws = raw_v2(addr).await;
    let info = next_packet(&mut ws).await.expect("server INFO");
    assert_eq!(info[0], 0x05);
    try_send(&mut ws, reply).await;
    ending(&mut ws).await
}

#[tokio::test]
async fn v2_info_records_with_lying_lengths() {
    hostile_case(&name(), local_config(), |env| async move {
        for records in [
            vec![(0x01u8, 1u32, &b""[..])],
            vec![(0x01, u32::MAX, &b"x"[..])],
            vec![(0x04, 0x8000_0000, &b"motd"[..])],
            vec![(0x05, 0, &b""[..]), (0x01, 10, &b"short"[..])],
        ] {
            let end = v2_reply(env.addr, info_packet(2, 0, &records)).await;
            assert_eq!(end.close_0(), Some(0x01), "{records:?}");
        }
        // A record header cut short.
        let mut p = info_packet(2, 0, &[]).to_vec();
        p.extend_from_slice(&[0x01, 0, 0]);
        let end = v2_reply(env.addr, p.into()).await;
        assert_eq!(end.close_0(), Some(0x01));
    })
    .await;
}

#[tokio::test]
async fn v2_info_truncated_and_wrong_version() {
    hostile_case(&name(), local_config(), |env| async move {
        for payload in [&[][..], &[2][..]] {
            let end = v2_reply(env.addr, packet(0x05, 0, payload)).await;
            assert_eq!(end.close_0(), Some(0x01), "INFO payload {payload:?}");
        }
        let end = v2_reply(env.addr, info_packet(3, 0, &[])).await;
        assert_eq!(end.close_0(), Some(0x04), "an unknown major version");
        // A v2 client that answers INFO with anything else.
        let end = v2_reply(env.addr, connect_packet(1, 0x01, env.echo, b"127.0.0.1")).await;
        assert_eq!(end.close_0(), Some(0x01));
    })
    .await;
}

#[tokio::test]
async fn v2_extension_payloads_that_lie() {
    let mut c = local_config();
    c.auth.users.insert("alice".into(), "secret".into());
    hostile_case(&name(), c, |env| async move {
        // Password records: user length past the end, password length past the end, empty:
        // refused as malformed (0x01) or as failed credentials (0xc0), never accepted.
        let lies: [&[u8]; 3] = [&[200, 3, 0, b'a'], &[5, 0xff, 0xff, b'a', b'l'], &[]];
        for payload in lies {
            let rec = [(0x02u8, payload.len() as u32, payload)];
            let got = v2_outcome(env.addr, info_packet(2, 0, &rec), env.echo).await;
            let reason = got.as_ref().err().and_then(Ending::close_0);
            assert!(
                matches!(reason, Some(0x01) | Some(0xc0)),
                "password record {payload:?}: {got:?}"
            );
        }
        // Junk in the UDP and MOTD records (empty from a client): refused or ignored, and if
        // ignored the connection must work.
        for (id, payload) in [
            (0x01u8, &b"junk"[..]),
            (0x04, &[0xff; 32][..]),
            (0x05, &[1; 9][..]),
        ] {
            let rec = [(id, payload.len() as u32, payload)];
            match v2_outcome(env.addr, info_packet(2, 0, &rec), env.echo).await {
                Ok(()) => {}
                Err(end) => assert_eq!(end.close_0(), Some(0x01), "record {id:#x}: {end:?}"),
            }
        }
    })
    .await;
}

#[tokio::test]
async fn v2_cert_auth_payloads_that_lie() {
    let mut c = local_config();
    c.auth.authorized_keys =
        vec!["3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29".into()];
    hostile_case(&name(), c, |env| async move {
        for payload in [
            &[][..],
            &[0x01][..],
            &[0x01; 64][..],
            &[0x01; 129][..],
            &[0xff; 1000][..],
        ] {
            let rec = [(0x03u8, payload.len() as u32, payload)];
            let end = v2_reply(env.addr, info_packet(2, 0, &rec)).await;
            let got = end.close_0();
            assert!(
                matches!(got, Some(0x01) | Some(0xc1)),
                "key record of {} bytes: {got:?}",
                payload.len()
            );
        }
    })
    .await;
}

#[tokio::test]
async fn slow_v2_client_times_out_in_the_handshake() {
    let mut c = local_config();
    c.limits.handshake_timeout_ms = 300;
    hostile_case(&name(), c, |env| async move {
        let mut ws = raw_v2(env.addr).await;
        let started = tokio::time::Instant::now();
        let end = ending(&mut ws).await;
        assert_eq!(end.packets.len(), 1, "INFO only: {:?}", end.packets);
        assert!(started.elapsed() < Duration::from_secs(5));
    })
    .await;
}
