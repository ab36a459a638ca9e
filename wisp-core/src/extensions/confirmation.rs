//! Stream-open confirmation (0x05): the server sends a CONTINUE on a new stream once its socket
//! is connected, so the client knows the stream really opened. No payload.

super::flag_extension!(
    /// The stream-open confirmation extension.
    StreamConfirmationProtocolExtension,
    /// Announces stream-open confirmation.
    StreamConfirmationProtocolExtensionBuilder,
    0x05
);
