//! UDP (0x01): both sides support UDP streams. No payload.

super::flag_extension!(
    /// The UDP extension: present when the peer supports UDP streams.
    UdpProtocolExtension,
    /// Announces UDP support.
    UdpProtocolExtensionBuilder,
    0x01
);
