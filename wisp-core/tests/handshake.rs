//! Every handshake path, with the server and client machines back to back and no executor:
//! what crosses the wire, in which order, and what each side concludes.

use std::collections::VecDeque;

use bytes::Bytes;
use ed25519_dalek::SigningKey;
use wisp_core::extensions::cert::{CertAuthProtocolExtensionBuilder, KeyHash};
use wisp_core::extensions::confirmation::StreamConfirmationProtocolExtensionBuilder;
use wisp_core::extensions::motd::{MotdProtocolExtension, MotdProtocolExtensionBuilder};
use wisp_core::extensions::password::PasswordProtocolExtensionBuilder;
use wisp_core::extensions::udp::UdpProtocolExtensionBuilder;
use wisp_core::extensions::AnyProtocolExtensionBuilder as B;
use wisp_core::handshake::{ClientHandshake, ClientStep, Negotiated, ServerHandshake, ServerStep};
use wisp_core::packet::{ExtensionRecord, RawPacket};
use wisp_core::{
    CloseReason, Packet, PacketType, StreamType, WispError, WispV2Handshake, WispVersion,
};

/// One message on the wire: who sent it, its type, its stream, and (for CLOSE) the reason.
#[derive(Debug, PartialEq, Eq)]
struct Seen(char, &'static str, u32, Option<u8>);

#[derive(Default)]
struct Outcome {
    server: Option<Result<Negotiated, WispError>>,
    client: Option<Result<Negotiated, WispError>>,
    wire: Vec<Seen>,
}

fn seen(from: char, m: &Bytes) -> Seen {
    let raw = RawPacket::parse(m.clone()).unwrap();
    let reason = (raw.packet_type == 0x04).then(|| raw.payload[0]);
    Seen(
        from,
        wisp_core::packet::type_name(raw.packet_type),
        raw.stream_id,
        reason,
    )
}

/// Runs both machines until neither can move. `then_client_sends` is what a client that finished
/// its handshake sends next (a v1 client's first CONNECT).
fn run_with(
    server: Option<ServerHandshake>,
    client: ClientHandshake,
    then_client_sends: Option<Bytes>,
) -> Outcome {
    let mut out = Outcome::default();
    let mut client = Some(client);
    let mut server = server;
    let mut to_client = VecDeque::new();
    let mut to_server = VecDeque::new();
    let mut step = ServerStep::NeedMessage;
    if let Some(s) = server.as_mut() {
        let (first, st) = s.start().unwrap();
        step = st;
        to_client.extend(first);
    }
    let mut extra = then_client_sends;
    loop {
        let mut moved = false;
        while let Some(m) = to_client.pop_front() {
            moved = true;
            out.wire.push(seen('S', &m));
            let Some(c) = client.as_mut() else { continue };
            match c.receive(m) {
                Ok(ClientStep::Reply(r)) => to_server.push_back(r),
                Ok(ClientStep::Done) => {
                    out.client = Some(Ok(client.take().unwrap().into_negotiated()));
                    if let Some(e) = extra.take() {
                        to_server.push_back(e);
                    }
                }
                Err(e) => {
                    client = None;
                    out.client = Some(Err(e));
                }
            }
        }
        if let Some(s) = server.as_mut() {
            match std::mem::replace(&mut step, ServerStep::NeedMessage) {
                ServerStep::NeedMessage => match to_server.pop_front() {
                    Some(m) => {
                        out.wire.push(seen('C', &m));
                        step = s.receive(m);
                        moved = true;
                    }
                    None => step = ServerStep::NeedMessage,
                },
                ServerStep::CheckPassword { username, password } => {
                    let r = futures::executor::block_on(s.check_password(username, password));
                    step = s.password_checked(r);
                    moved = true;
                }
                ServerStep::Done => {
                    to_client.extend(s.final_packets());
                    out.server = Some(Ok(server.take().unwrap().into_negotiated()));
                    moved = true;
                }
                ServerStep::Reject { reason, error } => {
                    if let Some(r) = reason {
                        to_client.push_back(Packet::close(0, r).to_bytes());
                    }
                    out.server = Some(Err(error));
                    server = None;
                    moved = true;
                }
            }
        }
        if !moved {
            return out;
        }
    }
}

fn run(server: ServerHandshake, client: ClientHandshake) -> Outcome {
    run_with(Some(server), client, None)
}

fn v2(builders: Vec<B>) -> Option<WispV2Handshake> {
    Some(WispV2Handshake::new(builders))
}

fn ids(n: &Negotiated) -> Vec<u8> {
    n.extensions.iter().map(|e| e.id()).collect()
}

fn password_server() -> B {
    B::new(PasswordProtocolExtensionBuilder::new_server(
        |user, pass| async move {
            if user == "alice" && pass == "hunter2" {
                Ok(())
            } else {
                Err(WispError::PasswordExtensionCredsInvalid)
            }
        },
    ))
}

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn key_server(required: bool) -> B {
    B::new(
        CertAuthProtocolExtensionBuilder::new_server(vec![key(1).verifying_key()], vec![7u8; 64])
            .required(required),
    )
}

#[test]
fn v1_server_sends_continue_and_both_speak_v1() {
    let o = run(ServerHandshake::new(32, None), ClientHandshake::new(None));
    assert_eq!(o.wire, vec![Seen('S', "CONTINUE", 0, None)]);
    let c = o.client.unwrap().unwrap();
    assert_eq!(
        (c.version.major, c.buffer_size, c.downgraded),
        (1, 32, false)
    );
    assert_eq!(o.server.unwrap().unwrap().version.major, 1);
}

#[test]
fn v2_draft_order_negotiates_the_common_extensions() {
    let server = ServerHandshake::new(
        64,
        v2(vec![
            B::new(UdpProtocolExtensionBuilder),
            B::new(MotdProtocolExtensionBuilder::Server("hello there".into())),
            B::new(StreamConfirmationProtocolExtensionBuilder),
        ]),
    );
    let client = ClientHandshake::new(v2(vec![
        B::new(MotdProtocolExtensionBuilder::Client),
        B::new(StreamConfirmationProtocolExtensionBuilder),
    ]));
    let o = run(server, client);
    assert_eq!(
        o.wire,
        vec![
            Seen('S', "INFO", 0, None),
            Seen('C', "INFO", 0, None),
            Seen('S', "CONTINUE", 0, None)
        ]
    );
    let c = o.client.unwrap().unwrap();
    let s = o.server.unwrap().unwrap();
    assert_eq!(c.version, WispVersion { major: 2, minor: 0 });
    assert_eq!(c.buffer_size, 64);
    assert!(!c.downgraded && !s.downgraded);
    assert_eq!(ids(&c), vec![4, 5]);
    assert_eq!(ids(&s), vec![4, 5], "UDP was offered only by the server");
    let motd = c.extensions[0]
        .downcast_ref::<MotdProtocolExtension>()
        .unwrap();
    assert_eq!(motd.motd, "hello there");
}

#[test]
fn legacy_order_sends_continue_then_info_and_a_v2_client_falls_back_to_v1() {
    let server = ServerHandshake::new(
        16,
        Some(
            WispV2Handshake::new(vec![B::new(UdpProtocolExtensionBuilder)]).with_legacy_order(true),
        ),
    );
    let client = ClientHandshake::new(v2(vec![B::new(UdpProtocolExtensionBuilder)]));
    let connect = Packet::connect(1, StreamType::Tcp, "example.com", 80).to_bytes();
    let o = run_with(Some(server), client, Some(connect.clone()));
    assert_eq!(
        o.wire,
        vec![
            Seen('S', "CONTINUE", 0, None),
            Seen('S', "INFO", 0, None),
            Seen('C', "CONNECT", 1, None)
        ]
    );
    let c = o.client.unwrap().unwrap();
    assert!(c.downgraded);
    assert_eq!(c.version.major, 1);
    let s = o.server.unwrap().unwrap();
    assert!(s.downgraded);
    assert_eq!(s.leftover, Some(connect), "the CONNECT is kept for the mux");
}

#[test]
fn v2_client_against_a_v1_server_is_downgraded() {
    let o = run(
        ServerHandshake::new(8, None),
        ClientHandshake::new(v2(vec![B::new(UdpProtocolExtensionBuilder)])),
    );
    let c = o.client.unwrap().unwrap();
    assert!(c.downgraded);
    assert_eq!(c.version.major, 1);
    assert!(c.extensions.is_empty());
}

#[test]
fn v1_client_that_gets_info_first_answers_with_an_empty_info() {
    let o = run(
        ServerHandshake::new(8, v2(vec![B::new(UdpProtocolExtensionBuilder)])),
        ClientHandshake::new(None),
    );
    let c = o.client.unwrap().unwrap();
    assert_eq!(c.version.major, 2);
    assert!(ids(&c).is_empty());
    assert!(ids(&o.server.unwrap().unwrap()).is_empty());
}

#[test]
fn password_accepted() {
    let o = run(
        ServerHandshake::new(8, v2(vec![password_server()])),
        ClientHandshake::new(v2(vec![B::new(
            PasswordProtocolExtensionBuilder::new_client("alice", "hunter2"),
        )])),
    );
    assert!(o.server.unwrap().is_ok());
    assert!(o.client.unwrap().is_ok());
    assert_eq!(o.wire.last(), Some(&Seen('S', "CONTINUE", 0, None)));
}

#[test]
fn wrong_password_is_closed_with_0xc0() {
    let o = run(
        ServerHandshake::new(8, v2(vec![password_server()])),
        ClientHandshake::new(v2(vec![B::new(
            PasswordProtocolExtensionBuilder::new_client("alice", "wrong"),
        )])),
    );
    assert!(matches!(
        o.server,
        Some(Err(WispError::PasswordExtensionCredsInvalid))
    ));
    assert!(matches!(
        o.client,
        Some(Err(WispError::PasswordExtensionCredsInvalid))
    ));
    assert_eq!(o.wire.last(), Some(&Seen('S', "CLOSE", 0, Some(0xc0))));
}

#[test]
fn missing_required_login_is_closed_with_0xc2() {
    let o = run(
        ServerHandshake::new(8, v2(vec![password_server()])),
        ClientHandshake::new(v2(vec![B::new(UdpProtocolExtensionBuilder)])),
    );
    assert!(matches!(
        o.server,
        Some(Err(WispError::ExtensionsAuthRequired))
    ));
    assert!(matches!(
        o.client,
        Some(Err(WispError::ExtensionsAuthRequired))
    ));
    assert_eq!(o.wire.last(), Some(&Seen('S', "CLOSE", 0, Some(0xc2))));
}

#[test]
fn optional_login_may_be_skipped() {
    let server = B::new(
        PasswordProtocolExtensionBuilder::new_server(|_, _| async { Ok(()) }).required(false),
    );
    let o = run(
        ServerHandshake::new(8, v2(vec![server])),
        ClientHandshake::new(v2(vec![])),
    );
    assert!(o.server.unwrap().is_ok());
    assert!(o.client.unwrap().is_ok());
}

#[test]
fn key_login_with_sha256_and_with_epoxys_sha512_hash() {
    for hash in [KeyHash::Sha256, KeyHash::Sha512] {
        let o = run(
            ServerHandshake::new(8, v2(vec![key_server(true)])),
            ClientHandshake::new(v2(vec![B::new(
                CertAuthProtocolExtensionBuilder::new_client(key(1)).key_hash(hash),
            )])),
        );
        assert!(o.server.unwrap().is_ok(), "{hash:?}");
        assert!(o.client.unwrap().is_ok(), "{hash:?}");
    }
}

#[test]
fn key_login_with_an_unknown_key_is_closed_with_0xc1() {
    let o = run(
        ServerHandshake::new(8, v2(vec![key_server(true)])),
        ClientHandshake::new(v2(vec![B::new(
            CertAuthProtocolExtensionBuilder::new_client(key(2)),
        )])),
    );
    assert!(matches!(
        o.server,
        Some(Err(WispError::CertAuthExtensionSigInvalid))
    ));
    assert!(matches!(
        o.client,
        Some(Err(WispError::CertAuthExtensionSigInvalid))
    ));
    assert_eq!(o.wire.last(), Some(&Seen('S', "CLOSE", 0, Some(0xc1))));
}

#[test]
fn key_login_with_a_forged_signature_is_closed_with_0xc1() {
    // A record naming the authorized key's hash with a signature made by another key.
    let mut server = ServerHandshake::new(8, v2(vec![key_server(true)]));
    server.start().unwrap();
    let forged = key(2).sign_bytes();
    let record = [
        &[1u8][..],
        &KeyHash::Sha256.of(&key(1).verifying_key()),
        &forged,
    ]
    .concat();
    let info = Packet::info(
        WispVersion { major: 2, minor: 0 },
        vec![ExtensionRecord {
            id: 3,
            payload: record.into(),
        }],
    );
    match server.receive(info.to_bytes()) {
        ServerStep::Reject { reason, error } => {
            assert_eq!(reason, Some(CloseReason::ExtensionsCertAuthFailed));
            assert!(matches!(error, WispError::CertAuthExtensionSigInvalid));
        }
        other => panic!("forged signature accepted: {other:?}"),
    }
}

trait SignBytes {
    fn sign_bytes(&self) -> Vec<u8>;
}
impl SignBytes for SigningKey {
    fn sign_bytes(&self) -> Vec<u8> {
        use ed25519_dalek::Signer;
        self.sign(&[7u8; 64]).to_bytes().to_vec()
    }
}

#[test]
fn either_method_satisfies_when_both_are_offered() {
    let o = run(
        ServerHandshake::new(8, v2(vec![password_server(), key_server(true)])),
        ClientHandshake::new(v2(vec![B::new(
            CertAuthProtocolExtensionBuilder::new_client(key(1)),
        )])),
    );
    assert!(o.server.unwrap().is_ok());
}

#[test]
fn an_incompatible_version_is_refused() {
    let mut server = ServerHandshake::new(8, v2(vec![]));
    server.start().unwrap();
    let info = Packet::info(WispVersion { major: 3, minor: 0 }, vec![]);
    assert!(matches!(
        server.receive(info.to_bytes()),
        ServerStep::Reject {
            reason: Some(CloseReason::IncompatibleExtensions),
            error: WispError::IncompatibleProtocolVersion(..)
        }
    ));
}

#[test]
fn garbage_instead_of_info_is_refused() {
    for garbage in [&[0x05][..], &[0x02, 1, 0, 0, 0, 1], &[0x05, 0, 0, 0, 0]] {
        let mut server = ServerHandshake::new(8, v2(vec![]));
        server.start().unwrap();
        assert!(
            matches!(
                server.receive(Bytes::copy_from_slice(garbage)),
                ServerStep::Reject { .. }
            ),
            "{garbage:?}"
        );
    }
}

#[test]
fn a_client_close_during_the_handshake_is_reported() {
    let mut server = ServerHandshake::new(8, v2(vec![]));
    server.start().unwrap();
    assert!(matches!(
        server.receive(Packet::close(0, CloseReason::IncompatibleExtensions).to_bytes()),
        ServerStep::Reject {
            reason: None,
            error: WispError::HandshakeClosed(CloseReason::IncompatibleExtensions)
        }
    ));
}

#[test]
fn the_client_refuses_unexpected_packets() {
    let mut client = ClientHandshake::new(None);
    let err = client
        .receive(Packet::new(0, PacketType::Data(Bytes::new())).to_bytes())
        .unwrap_err();
    assert!(matches!(err, WispError::HandshakeUnexpectedPacket("DATA")));
}
