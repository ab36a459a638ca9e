//! Limits and buffer sizes of one multiplexer.

/// Limits and buffer sizes of one multiplexer, with defaults fit for a public server.
///
/// Memory per connection is bounded by these numbers (see each field), never by what the peer
/// sends.
#[derive(Debug, Clone)]
pub struct MuxOptions {
    /// Server: the credit announced for each TCP stream, in packets. A client may have at most
    /// this many packets in flight per stream; the server queues at most `2 * buffer_size + 1`
    /// packets, and at most that many times 64 KiB, before it stops reading the WebSocket.
    pub buffer_size: u32,
    /// Server: how many streams may be open (or waiting in `wait_for_stream`) at once; CONNECTs
    /// beyond it are refused with CLOSE 0x49. Client: how many streams `new_stream` opens before
    /// failing with [`MaxStreamCountReached`](crate::WispError::MaxStreamCountReached).
    pub max_streams: usize,
    /// Bytes queued per stream toward the WebSocket before the stream's writer waits.
    pub stream_send_buffer: usize,
    /// Client: bytes received and not yet read per stream before the stream is closed with
    /// 0x81. Both sides: bytes of UDP datagrams queued per stream before further datagrams are
    /// dropped.
    pub stream_receive_buffer: usize,
    /// Bytes received and not yet read on all streams together. Client: past it the stream
    /// holding the most is closed with 0x81. Server: past it the mux stops reading the
    /// WebSocket until the readers catch up.
    pub connection_receive_buffer: usize,
    /// Control packets (CONTINUE, refusals) waiting to be sent before the mux stops reading
    /// the WebSocket until the peer reads its own replies.
    pub max_pending_control: usize,
}

impl Default for MuxOptions {
    fn default() -> Self {
        Self {
            buffer_size: 128,
            max_streams: 4096,
            stream_send_buffer: 128 * 1024,
            stream_receive_buffer: 4 * 1024 * 1024,
            connection_receive_buffer: 64 * 1024 * 1024,
            max_pending_control: 1024,
        }
    }
}

impl MuxOptions {
    /// Defaults, with this credit per TCP stream.
    pub fn with_buffer_size(buffer_size: u32) -> Self {
        Self {
            buffer_size,
            ..Self::default()
        }
    }
}
