//! Password and Ed25519 key authentication, accepted and refused.

mod common;

use common::*;
use ed25519_dalek::SigningKey;
use futures::StreamExt;
use wisp_core::extensions::cert::CertAuthProtocolExtensionBuilder;
use wisp_core::extensions::password::PasswordProtocolExtensionBuilder;
use wisp_core::extensions::AnyProtocolExtensionBuilder;
use wisp_core::{StreamType, WispError};

fn with(
    mut exts: Vec<AnyProtocolExtensionBuilder>,
    extra: impl wisp_core::extensions::ProtocolExtensionBuilder,
) -> Vec<AnyProtocolExtensionBuilder> {
    exts.push(AnyProtocolExtensionBuilder::new(extra));
    exts
}

fn password_config() -> wisp_server::Config {
    let mut c = local_config();
    c.auth.users.insert("alice".into(), "correct horse".into());
    c.auth.required = true;
    c
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn key_config() -> wisp_server::Config {
    let mut c = local_config();
    c.auth.authorized_keys = vec![hex::encode(key(1).verifying_key().as_bytes())];
    c.auth.required = true;
    c
}

#[tokio::test]
async fn password_accepted() {
    bounded(async {
        let server = start(password_config()).await;
        let echo = tcp_echo().await;
        let exts = with(
            client_exts(),
            PasswordProtocolExtensionBuilder::new_client("alice", "correct horse"),
        );
        let mux = client_with(addr(&server), Some(exts), true).await.unwrap();
        assert!(mux.get_extension_ids().contains(&0x02));
        let mut s = mux
            .new_stream(StreamType::Tcp, "127.0.0.1", echo)
            .await
            .unwrap();
        assert_eq!(echo_roundtrip(&mut s, b"authed").await, b"authed");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn wrong_password_refused() {
    bounded(async {
        let server = start(password_config()).await;
        for (user, pass) in [
            ("alice", "wrong"),
            ("mallory", "correct horse"),
            ("alice", ""),
        ] {
            let exts = with(
                client_exts(),
                PasswordProtocolExtensionBuilder::new_client(user, pass),
            );
            let err = client_with(addr(&server), Some(exts), true)
                .await
                .unwrap_err();
            assert!(
                matches!(err, WispError::PasswordExtensionCredsInvalid),
                "{user}: {err}"
            );
        }
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn missing_credentials_refused_when_required() {
    bounded(async {
        let server = start(password_config()).await;
        let err = client_with(addr(&server), Some(client_exts()), true)
            .await
            .unwrap_err();
        assert!(matches!(err, WispError::ExtensionsAuthRequired), "{err}");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn v1_client_refused_when_auth_required() {
    bounded(async {
        let server = start(password_config()).await;
        let echo = tcp_echo().await;
        // A v1 client gets CONTINUE first (legacy order) and is closed once it shows it is v1.
        let mux = client_with(addr(&server), None, false).await.unwrap();
        let mut s = mux
            .new_stream(StreamType::Tcp, "127.0.0.1", echo)
            .await
            .unwrap();
        use futures::SinkExt;
        let _ = s.send(bytes::Bytes::from_static(b"x")).await;
        let first = s.next().await;
        assert!(!matches!(first, Some(Ok(_))), "no data may flow: {first:?}");
        assert!(mux.is_closed());
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn optional_password_lets_anonymous_in() {
    bounded(async {
        let mut c = password_config();
        c.auth.required = false;
        let server = start(c).await;
        let echo = tcp_echo().await;
        let mux = client(addr(&server)).await;
        let mut s = mux
            .new_stream(StreamType::Tcp, "127.0.0.1", echo)
            .await
            .unwrap();
        assert_eq!(echo_roundtrip(&mut s, b"anon").await, b"anon");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn users_file_is_read() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("users");
        std::fs::write(&file, "# comment\nbob:pa:ss\n").unwrap();
        let mut c = local_config();
        c.auth.users_file = Some(file);
        c.auth.required = true;
        let server = start(c).await;
        let ok = with(
            client_exts(),
            PasswordProtocolExtensionBuilder::new_client("bob", "pa:ss"),
        );
        client_with(addr(&server), Some(ok), true).await.unwrap();
        let bad = with(
            client_exts(),
            PasswordProtocolExtensionBuilder::new_client("bob", "pa"),
        );
        assert!(client_with(addr(&server), Some(bad), true).await.is_err());
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn key_accepted() {
    bounded(async {
        let server = start(key_config()).await;
        let echo = tcp_echo().await;
        let exts = with(
            client_exts(),
            CertAuthProtocolExtensionBuilder::new_client(key(1)),
        );
        let mux = client_with(addr(&server), Some(exts), true).await.unwrap();
        assert!(mux.get_extension_ids().contains(&0x03));
        let mut s = mux
            .new_stream(StreamType::Tcp, "127.0.0.1", echo)
            .await
            .unwrap();
        assert_eq!(echo_roundtrip(&mut s, b"signed").await, b"signed");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn unknown_key_refused() {
    bounded(async {
        let server = start(key_config()).await;
        let exts = with(
            client_exts(),
            CertAuthProtocolExtensionBuilder::new_client(key(2)),
        );
        let err = client_with(addr(&server), Some(exts), true)
            .await
            .unwrap_err();
        assert!(
            matches!(err, WispError::CertAuthExtensionSigInvalid),
            "{err}"
        );
        let err = client_with(addr(&server), Some(client_exts()), true)
            .await
            .unwrap_err();
        assert!(matches!(err, WispError::ExtensionsAuthRequired), "{err}");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn required_extension_missing_is_refused() {
    bounded(async {
        let mut c = local_config();
        c.wisp.required_extensions = vec!["confirmation".into()];
        let server = start(c).await;
        let exts = vec![AnyProtocolExtensionBuilder::new(
            wisp_core::extensions::udp::UdpProtocolExtensionBuilder,
        )];
        let err = client_with(addr(&server), Some(exts), true)
            .await
            .unwrap_err();
        assert!(matches!(err, WispError::ExtensionsNotSupported(_)), "{err}");
        client(addr(&server)).await;
        server.shutdown().await;
    })
    .await;
}
