//! The codec against the byte layouts of the specification tables, round trips, and hostile
//! input.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use wisp_core::packet::{
    encode_data, ClosePacket, ConnectPacket, ContinuePacket, ExtensionRecord, InfoPacket, RawPacket,
};
use wisp_core::{CloseReason, Packet, PacketType, StreamType, WispError, WispVersion};

fn decode(bytes: &[u8]) -> Result<Packet, WispError> {
    Packet::decode(Bytes::copy_from_slice(bytes))
}

#[test]
fn connect_bytes_match_the_spec_table() {
    // type 0x01 | stream id 0x01020304 LE | stream type 0x01 | port 80 LE | "a.b"
    let wire = [0x01, 0x04, 0x03, 0x02, 0x01, 0x01, 80, 0, b'a', b'.', b'b'];
    let p = Packet::connect(0x0102_0304, StreamType::Tcp, "a.b", 80);
    assert_eq!(&p.to_bytes()[..], &wire);
    assert_eq!(decode(&wire).unwrap(), p);
    let udp = Packet::connect(7, StreamType::Udp, "h", 0x1234);
    assert_eq!(
        &udp.to_bytes()[..],
        &[0x01, 7, 0, 0, 0, 0x02, 0x34, 0x12, b'h']
    );
}

#[test]
fn data_bytes_match_the_spec_table() {
    let wire = [0x02, 0xff, 0xff, 0xff, 0xff, 1, 2, 3];
    let p = Packet::data(u32::MAX, Bytes::from_static(&[1, 2, 3]));
    assert_eq!(&p.to_bytes()[..], &wire);
    assert_eq!(decode(&wire).unwrap(), p);
    assert_eq!(&encode_data(u32::MAX, &[1, 2, 3])[..], &wire);
    // An empty DATA packet is legal.
    assert_eq!(
        decode(&[0x02, 1, 0, 0, 0]).unwrap(),
        Packet::data(1, Bytes::new())
    );
}

#[test]
fn continue_bytes_match_the_spec_table() {
    let wire = [0x03, 0, 0, 0, 0, 0x80, 0, 0, 0];
    let p = Packet::continue_(0, 128);
    assert_eq!(&p.to_bytes()[..], &wire);
    assert_eq!(
        decode(&wire).unwrap().packet_type,
        PacketType::Continue(ContinuePacket {
            buffer_remaining: 128
        })
    );
}

#[test]
fn close_bytes_match_the_spec_table_and_unknown_reasons_survive() {
    for code in 0..=255u8 {
        let wire = [0x04, 5, 0, 0, 0, code];
        let p = decode(&wire).unwrap();
        assert_eq!(
            p.packet_type,
            PacketType::Close(ClosePacket {
                reason: CloseReason(code)
            })
        );
        assert_eq!(&p.to_bytes()[..], &wire);
    }
    assert_eq!(CloseReason::ServerStreamConnectionRefused.0, 0x44);
    assert_eq!(CloseReason(0x99).name(), None);
    assert_eq!(CloseReason(0x48).to_string(), "destination blocked (0x48)");
}

#[test]
fn info_bytes_match_the_spec_table_and_unknown_records_survive() {
    // version 2.0 | UDP (id 1, len 0) | MOTD (id 4, len 2, "hi") | unknown id 0xee (len 1)
    let wire = [
        0x05, 0, 0, 0, 0, 2, 0, 0x01, 0, 0, 0, 0, 0x04, 2, 0, 0, 0, b'h', b'i', 0xee, 1, 0, 0, 0,
        0x7f,
    ];
    let p = decode(&wire).unwrap();
    let PacketType::Info(InfoPacket {
        version,
        extensions,
    }) = &p.packet_type
    else {
        panic!("not INFO: {p:?}")
    };
    assert_eq!(*version, WispVersion { major: 2, minor: 0 });
    assert_eq!(
        extensions,
        &vec![
            ExtensionRecord {
                id: 1,
                payload: Bytes::new()
            },
            ExtensionRecord {
                id: 4,
                payload: Bytes::from_static(b"hi")
            },
            ExtensionRecord {
                id: 0xee,
                payload: Bytes::from_static(&[0x7f])
            },
        ]
    );
    assert_eq!(&p.to_bytes()[..], &wire);
}

#[test]
fn malformed_packets_are_typed_errors() {
    assert!(matches!(
        decode(&[0x02]),
        Err(WispError::PacketTooSmall { needed: 5, got: 1 })
    ));
    assert!(matches!(
        decode(&[0x09, 1, 0, 0, 0]),
        Err(WispError::InvalidPacketType(0x09))
    ));
    assert!(matches!(
        decode(&[0x01, 1, 0, 0, 0, 1, 80]),
        Err(WispError::PacketTooSmall { .. })
    ));
    assert!(matches!(
        decode(&[0x01, 1, 0, 0, 0, 1, 80, 0, 0xff, 0xfe]),
        Err(WispError::Utf8Error(_))
    ));
    assert!(matches!(
        decode(&[0x03, 1, 0, 0, 0, 1, 2]),
        Err(WispError::PacketTooSmall { .. })
    ));
    assert!(matches!(
        decode(&[0x04, 1, 0, 0, 0]),
        Err(WispError::PacketTooSmall { .. })
    ));
    // An extension record whose length lies.
    assert!(matches!(
        decode(&[0x05, 0, 0, 0, 0, 2, 0, 0x04, 0xff, 0xff, 0xff, 0xff, b'x']),
        Err(WispError::InvalidExtensionPayload { id: 4, .. })
    ));
    // A truncated record header.
    assert!(matches!(
        decode(&[0x05, 0, 0, 0, 0, 2, 0, 0x04, 1]),
        Err(WispError::InvalidExtensionPayload { .. })
    ));
    // The stream id of a malformed packet is still known.
    let raw = RawPacket::parse(Bytes::from_static(&[0x01, 9, 0, 0, 0, 1])).unwrap();
    assert_eq!(raw.stream_id, 9);
    assert!(raw.decode().is_err());
}

#[test]
fn data_payload_is_a_slice_of_the_input() {
    let message = Bytes::from(vec![0x02, 1, 0, 0, 0, 9, 9, 9]);
    let start = message.as_ptr() as usize;
    let Packet {
        packet_type: PacketType::Data(payload),
        ..
    } = Packet::decode(message).unwrap()
    else {
        panic!()
    };
    assert_eq!(payload.as_ptr() as usize, start + 5, "payload was copied");
}

fn arb_packet() -> impl Strategy<Value = Packet> {
    let payload = prop::collection::vec(any::<u8>(), 0..300).prop_map(Bytes::from);
    let kind = prop_oneof![
        (any::<u8>(), any::<u16>(), "[a-z0-9.:-]{0,40}").prop_map(|(t, port, host)| {
            PacketType::Connect(ConnectPacket::new(StreamType::from(t), host, port))
        }),
        payload.clone().prop_map(PacketType::Data),
        any::<u32>().prop_map(|n| PacketType::Continue(ContinuePacket {
            buffer_remaining: n
        })),
        any::<u8>().prop_map(|r| PacketType::Close(ClosePacket {
            reason: CloseReason(r)
        })),
        (
            any::<u8>(),
            any::<u8>(),
            prop::collection::vec((any::<u8>(), payload), 0..5)
        )
            .prop_map(|(major, minor, recs)| PacketType::Info(InfoPacket {
                version: WispVersion { major, minor },
                extensions: recs
                    .into_iter()
                    .map(|(id, payload)| ExtensionRecord { id, payload })
                    .collect(),
            })),
    ];
    (any::<u32>(), kind).prop_map(|(id, t)| Packet::new(id, t))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

    /// Arbitrary bytes decode to a packet or an error, never a panic. A decoded packet
    /// encodes to a prefix of its input (CONTINUE and CLOSE ignore trailing bytes) that
    /// decodes to the same packet.
    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(p) = decode(&bytes) {
            let again = p.to_bytes();
            prop_assert!(bytes.starts_with(&again));
            prop_assert_eq!(Packet::decode(again).unwrap(), p);
        }
    }

    /// Typed arbitrary bytes behind a valid header: the payload decoders in particular.
    #[test]
    fn decoding_arbitrary_payloads_never_panics(ty in 0u8..8, bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut message = BytesMut::from(&[ty, 1, 0, 0, 0][..]);
        message.extend_from_slice(&bytes);
        let _ = Packet::decode(message.freeze());
    }

    #[test]
    fn every_packet_round_trips(p in arb_packet()) {
        let bytes = p.to_bytes();
        prop_assert_eq!(bytes.len(), p.encoded_len());
        prop_assert_eq!(Packet::decode(bytes).unwrap(), p);
    }
}
