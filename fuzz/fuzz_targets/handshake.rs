//! Arbitrary messages into both handshake machines, and arbitrary extension payloads into every
//! builder on both sides: each must answer with a step or an error, never panic.
//!
//! Input: the first byte picks the target; the rest is split into `length: u8 | message` records.
#![no_main]

use bytes::Bytes;
use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;
use wisp_core::extensions::cert::CertAuthProtocolExtensionBuilder;
use wisp_core::extensions::confirmation::StreamConfirmationProtocolExtensionBuilder;
use wisp_core::extensions::motd::MotdProtocolExtensionBuilder;
use wisp_core::extensions::password::PasswordProtocolExtensionBuilder;
use wisp_core::extensions::udp::UdpProtocolExtensionBuilder;
use wisp_core::extensions::{AnyProtocolExtensionBuilder as B, ProtocolExtensionBuilder};
use wisp_core::handshake::{ClientHandshake, ServerHandshake, ServerStep};
use wisp_core::{Role, WispError, WispV2Handshake};

fn messages(mut data: &[u8]) -> Vec<Bytes> {
    let mut out = Vec::new();
    while let Some((&len, rest)) = data.split_first() {
        let len = (len as usize).min(rest.len());
        out.push(Bytes::copy_from_slice(&rest[..len]));
        data = &rest[len..];
    }
    out
}

fn key() -> SigningKey {
    SigningKey::from_bytes(&[3; 32])
}

fn server_builders(legacy: bool) -> WispV2Handshake {
    WispV2Handshake::new(vec![
        B::new(UdpProtocolExtensionBuilder),
        B::new(MotdProtocolExtensionBuilder::Server("motd".into())),
        B::new(PasswordProtocolExtensionBuilder::new_server(|u, p| async move {
            if u == p { Ok(()) } else { Err(WispError::PasswordExtensionCredsInvalid) }
        })),
        B::new(CertAuthProtocolExtensionBuilder::new_server(vec![key().verifying_key()], vec![1; 64]).required(false)),
        B::new(StreamConfirmationProtocolExtensionBuilder),
    ])
    .with_legacy_order(legacy)
}

fn client_builders() -> WispV2Handshake {
    WispV2Handshake::new(vec![
        B::new(UdpProtocolExtensionBuilder),
        B::new(MotdProtocolExtensionBuilder::Client),
        B::new(PasswordProtocolExtensionBuilder::new_client("a", "a")),
        B::new(CertAuthProtocolExtensionBuilder::new_client(key())),
        B::new(StreamConfirmationProtocolExtensionBuilder),
    ])
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    let msgs = messages(rest);
    match which % 3 {
        0 => {
            let mut hs = ServerHandshake::new(8, Some(server_builders(which & 4 != 0)));
            let _ = hs.start();
            for m in msgs {
                let mut step = hs.receive(m);
                while let ServerStep::CheckPassword { username, password } = step {
                    let r = futures::executor::block_on(hs.check_password(username, password));
                    step = hs.password_checked(r);
                }
                if !matches!(step, ServerStep::NeedMessage) {
                    return;
                }
            }
        }
        1 => {
            let mut hs = ClientHandshake::new(Some(client_builders()));
            for m in msgs {
                if hs.receive(m).is_err() {
                    return;
                }
            }
        }
        _ => {
            for m in msgs {
                for role in [Role::Client, Role::Server] {
                    let _ = PasswordProtocolExtensionBuilder::new_client("u", "p").build_from_bytes(m.clone(), role);
                    let _ = CertAuthProtocolExtensionBuilder::new_client(key()).build_from_bytes(m.clone(), role);
                    let mut server = CertAuthProtocolExtensionBuilder::new_server(vec![key().verifying_key()], m.clone());
                    let _ = server.build_from_bytes(m.clone(), role);
                    let _ = MotdProtocolExtensionBuilder::Client.build_from_bytes(m.clone(), role);
                }
            }
        }
    }
});
