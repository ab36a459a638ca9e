//! Arbitrary bytes as one Wisp message: decoding must return a packet or an error, never
//! panic, and a decoded packet must encode to a prefix of the input that decodes the same.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use wisp_core::Packet;

fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = Packet::decode(Bytes::copy_from_slice(data)) {
        let again = packet.to_bytes();
        assert!(data.starts_with(&again));
        assert_eq!(Packet::decode(again).unwrap(), packet);
    }
});
