//! The server side: [`ServerMux`].

use std::marker::PhantomData;
use std::sync::Arc;

use super::{build, next_message, reject, send_all, Agreed, MuxOptions, MuxResult, Shared};
use crate::extensions::AnyProtocolExtension;
use crate::handshake::{ServerHandshake, ServerStep, WispV2Handshake};
use crate::packet::{CloseReason, ConnectPacket, WispVersion};
use crate::stream::MuxStream;
use crate::ws::{TransportRead, TransportWrite};
use crate::{Role, WispError};

/// The server side of a Wisp connection: performs the handshake, then hands out the streams
/// the client opens, one at a time, through [`wait_for_stream`](Self::wait_for_stream).
pub struct ServerMux<W> {
    shared: Arc<Shared>,
    agreed: Agreed,
    _transport: PhantomData<fn() -> W>,
}

impl<W: TransportWrite> ServerMux<W> {
    /// Performs the server handshake with `buffer_size` packets of credit per TCP stream, as v1
    /// (`wisp_v2: None`) or v2. Authentication failures send the matching CLOSE on stream 0,
    /// close the transport and return the error.
    pub async fn new<R: TransportRead>(
        rx: R,
        tx: W,
        buffer_size: u32,
        wisp_v2: Option<WispV2Handshake>,
    ) -> Result<MuxResult<Self, R, W>, WispError> {
        Self::new_with_options(rx, tx, MuxOptions::with_buffer_size(buffer_size), wisp_v2).await
    }

    /// [`new`](Self::new) with every limit given.
    pub async fn new_with_options<R: TransportRead>(
        mut rx: R,
        mut tx: W,
        opts: MuxOptions,
        wisp_v2: Option<WispV2Handshake>,
    ) -> Result<MuxResult<Self, R, W>, WispError> {
        let mut hs = ServerHandshake::new(opts.buffer_size, wisp_v2);
        let (first, mut step) = hs.start()?;
        send_all(&mut tx, first).await?;
        loop {
            step = match step {
                ServerStep::NeedMessage => hs.receive(next_message(&mut rx).await?),
                ServerStep::CheckPassword { username, password } => {
                    let result = hs.check_password(username, password).await;
                    hs.password_checked(result)
                }
                ServerStep::Done => break,
                ServerStep::Reject { reason, error } => {
                    reject(&mut tx, reason).await;
                    return Err(error);
                }
            };
        }
        let final_packets = hs.final_packets();
        let negotiated = hs.into_negotiated();
        build(
            Role::Server,
            rx,
            tx,
            opts,
            negotiated,
            final_packets,
            |shared, agreed| Self {
                shared,
                agreed,
                _transport: PhantomData,
            },
        )
    }

    /// The next stream the client opened, or `None` once the connection has ended. Only one
    /// task should wait at a time.
    pub async fn wait_for_stream(&self) -> Option<(ConnectPacket, MuxStream<W>)> {
        let (connect, slot) =
            futures::future::poll_fn(|cx| self.shared.lock().poll_accept(cx)).await?;
        let wire_id = self.shared.lock().wire_id(slot);
        let stream = MuxStream::new(self.shared.clone(), slot, wire_id, connect.stream_type);
        Some((connect, stream))
    }

    /// The IDs of the extensions both sides agreed on.
    pub fn get_extension_ids(&self) -> Vec<u8> {
        self.agreed.ids()
    }

    /// The client's records of the extensions both sides agreed on.
    pub fn get_extensions(&self) -> &[AnyProtocolExtension] {
        &self.agreed.extensions
    }

    /// Whether v2 was offered and the client speaks only v1.
    pub fn was_downgraded(&self) -> bool {
        self.agreed.downgraded
    }

    /// The protocol version in use.
    pub fn get_protocol_version(&self) -> WispVersion {
        self.agreed.version
    }

    /// The number of streams that hold resources now (open, or closed with live handles).
    pub fn stream_count(&self) -> usize {
        self.shared.lock().stream_count()
    }

    /// Closes the connection: CLOSE 0x02 on stream 0, which closes every stream.
    pub async fn close(&self) -> Result<(), WispError> {
        self.close_with_reason(CloseReason::Voluntary).await
    }

    /// Closes the connection with CLOSE on stream 0 carrying `reason`.
    pub async fn close_with_reason(&self, reason: CloseReason) -> Result<(), WispError> {
        self.shared.request_close(reason)
    }
}

impl<W> Drop for ServerMux<W> {
    fn drop(&mut self) {
        self.shared.with(|state, w| state.drop_mux(w));
    }
}

impl<W> std::fmt::Debug for ServerMux<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.agreed.describe(f, "ServerMux")
    }
}
