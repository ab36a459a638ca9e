//! Address policy over the wire: every spelling of a non-global target is refused with 0x48
//! by default (before any packet is sent to it), and the loopback ones work when allowed.
//! Non-loopback targets are never contacted: their "allowed" decisions are unit tests in
//! `src/policy.rs`.

mod common;

use common::*;
use tokio::net::TcpListener;
use wisp_core::{CloseReason, StreamType};

const SPELLINGS: &[&str] = &[
    "127.0.0.1",
    "127.1",
    "0.0.0.0",
    "[::1]",
    "::1",
    "[::ffff:127.0.0.1]",
    "10.0.0.1",
    "169.254.169.254",
    "localhost",
    "LOCALHOST.",
    "100.64.0.1",
    "[fe80::1]",
];

#[tokio::test]
async fn non_global_targets_refused_by_default() {
    bounded(async {
        let mut c = local_config();
        c.policy.allow_loopback = false;
        let server = start(c).await;
        let mux = client(addr(&server)).await;
        for host in SPELLINGS {
            assert_eq!(
                outcome(&mux, StreamType::Tcp, host, 80).await,
                CloseReason::ServerStreamBlockedAddress,
                "{host}"
            );
            assert_eq!(
                outcome(&mux, StreamType::Udp, host, 53).await,
                CloseReason::ServerStreamBlockedAddress,
                "udp {host}"
            );
        }
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn loopback_spellings_work_when_allowed() {
    bounded(async {
        let server = start(local_config()).await;
        let echo4 = tcp_echo().await;
        let mux = client(addr(&server)).await;
        for host in ["127.0.0.1", "127.1", "[::ffff:127.0.0.1]", "localhost"] {
            let mut s = mux.new_stream(StreamType::Tcp, host, echo4).await.unwrap();
            assert_eq!(
                echo_roundtrip(&mut s, host.as_bytes()).await,
                host.as_bytes()
            );
        }
        // An echo on ::1 for the IPv6 spellings.
        let l6 = TcpListener::bind("[::1]:0").await.unwrap();
        let port6 = l6.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l6.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        for host in ["[::1]", "::1"] {
            let mut s = mux.new_stream(StreamType::Tcp, host, port6).await.unwrap();
            assert_eq!(echo_roundtrip(&mut s, b"six").await, b"six");
        }
        // Private and link-local stay closed with only loopback allowed.
        for host in ["10.0.0.1", "169.254.169.254"] {
            assert_eq!(
                outcome(&mux, StreamType::Tcp, host, 80).await,
                CloseReason::ServerStreamBlockedAddress
            );
        }
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn host_and_port_lists() {
    bounded(async {
        let echo = tcp_echo().await;
        let mut c = local_config();
        c.policy.allow_loopback = false;
        c.policy.allow_hosts = vec!["localhost".into()];
        c.policy.block_hosts = vec!["*.blocked.test".into()];
        c.policy.block_ports = vec![format!("{}-{}", echo + 1, echo + 1)];
        let server = start(c).await;
        let mux = client(addr(&server)).await;
        // allow_hosts exempts a name from the address checks...
        let mut s = mux
            .new_stream(StreamType::Tcp, "localhost", echo)
            .await
            .unwrap();
        assert_eq!(echo_roundtrip(&mut s, b"exempt").await, b"exempt");
        // ...but not the literal it resolves to.
        assert_eq!(
            outcome(&mux, StreamType::Tcp, "127.0.0.1", echo).await,
            CloseReason::ServerStreamBlockedAddress
        );
        assert_eq!(
            outcome(&mux, StreamType::Tcp, "a.blocked.test", 80).await,
            CloseReason::ServerStreamBlockedAddress
        );
        assert_eq!(
            outcome(&mux, StreamType::Tcp, "localhost", echo + 1).await,
            CloseReason::ServerStreamBlockedAddress
        );
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn port_zero_is_invalid() {
    bounded(async {
        let server = start(local_config()).await;
        let mux = client(addr(&server)).await;
        assert_eq!(
            outcome(&mux, StreamType::Tcp, "127.0.0.1", 0).await,
            CloseReason::ServerStreamInvalidInfo
        );
        server.shutdown().await;
    })
    .await;
}
