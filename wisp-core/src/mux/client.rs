//! The client side: [`ClientMux`].

use std::marker::PhantomData;
use std::sync::Arc;

use super::{build, next_message, reject, send_all, Agreed, MuxOptions, MuxResult, Shared};
use crate::extensions::motd::MotdProtocolExtension;
use crate::extensions::AnyProtocolExtension;
use crate::handshake::{ClientHandshake, ClientStep, WispV2Handshake};
use crate::packet::{CloseReason, StreamType, WispVersion};
use crate::stream::MuxStream;
use crate::ws::{TransportRead, TransportWrite};
use crate::{Role, WispError};

/// The client side of a Wisp connection: performs the handshake, then opens streams with
/// [`new_stream`](Self::new_stream).
pub struct ClientMux<W> {
    shared: Arc<Shared>,
    agreed: Agreed,
    _transport: PhantomData<fn() -> W>,
}

impl<W: TransportWrite> ClientMux<W> {
    /// Performs the client handshake, offering v2 when `wisp_v2` is given (the transport should
    /// then have sent a `Sec-WebSocket-Protocol` header). A server that answers with CONTINUE
    /// first is spoken to in v1 and [`was_downgraded`](Self::was_downgraded) says so.
    pub async fn new<R: TransportRead>(
        rx: R,
        tx: W,
        wisp_v2: Option<WispV2Handshake>,
    ) -> Result<MuxResult<Self, R, W>, WispError> {
        Self::new_with_options(rx, tx, MuxOptions::default(), wisp_v2).await
    }

    /// [`new`](Self::new) with every limit given (`buffer_size` is ignored: the server sets it).
    pub async fn new_with_options<R: TransportRead>(
        mut rx: R,
        mut tx: W,
        opts: MuxOptions,
        wisp_v2: Option<WispV2Handshake>,
    ) -> Result<MuxResult<Self, R, W>, WispError> {
        let mut hs = ClientHandshake::new(wisp_v2);
        loop {
            let message = next_message(&mut rx).await?;
            match hs.receive(message) {
                Ok(ClientStep::Reply(reply)) => send_all(&mut tx, vec![reply]).await?,
                Ok(ClientStep::Done) => break,
                Err(e) => {
                    reject(&mut tx, None).await;
                    return Err(e);
                }
            }
        }
        let negotiated = hs.into_negotiated();
        build(
            Role::Client,
            rx,
            tx,
            opts,
            negotiated,
            Vec::new(),
            |shared, agreed| Self {
                shared,
                agreed,
                _transport: PhantomData,
            },
        )
    }

    /// Opens a stream to `host:port`. With stream-open confirmation negotiated this waits for
    /// the server's answer and fails with [`WispError::StreamRefused`] carrying its close
    /// reason; without it, the stream is usable at once and a refusal shows as the stream's
    /// close reason.
    pub async fn new_stream(
        &self,
        stream_type: StreamType,
        host: impl AsRef<str>,
        port: u16,
    ) -> Result<MuxStream<W>, WispError> {
        let slot = self
            .shared
            .with(|state, w| state.open(stream_type, host.as_ref(), port, w))?;
        let wire_id = self.shared.lock().wire_id(slot);
        let stream = MuxStream::new(self.shared.clone(), slot, wire_id, stream_type);
        futures::future::poll_fn(|cx| self.shared.lock().poll_opened(slot, cx)).await?;
        Ok(stream)
    }

    /// The IDs of the extensions both sides agreed on.
    pub fn get_extension_ids(&self) -> Vec<u8> {
        self.agreed.ids()
    }

    /// The server's records of the extensions both sides agreed on.
    pub fn get_extensions(&self) -> &[AnyProtocolExtension] {
        &self.agreed.extensions
    }

    /// The server's message of the day, if it sent one and MOTD was offered.
    pub fn motd(&self) -> Option<&str> {
        self.agreed
            .extensions
            .iter()
            .find_map(|e| e.downcast_ref::<MotdProtocolExtension>())
            .map(|m| m.motd.as_str())
    }

    /// Whether v2 was offered and the server speaks only v1.
    pub fn was_downgraded(&self) -> bool {
        self.agreed.downgraded
    }

    /// The protocol version in use.
    pub fn get_protocol_version(&self) -> WispVersion {
        self.agreed.version
    }

    /// Whether UDP streams may be opened.
    pub fn supports_udp(&self) -> bool {
        self.agreed.version.major == 1
            || self
                .agreed
                .ids()
                .contains(&crate::extensions::udp::UdpProtocolExtension::ID)
    }

    /// The number of streams that hold resources now.
    pub fn stream_count(&self) -> usize {
        self.shared.lock().stream_count()
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().end().is_some()
    }

    /// Closes the connection: CLOSE 0x02 on stream 0.
    pub async fn close(&self) -> Result<(), WispError> {
        self.close_with_reason(CloseReason::Voluntary).await
    }

    /// Closes the connection with CLOSE on stream 0 carrying `reason`.
    pub async fn close_with_reason(&self, reason: CloseReason) -> Result<(), WispError> {
        self.shared.request_close(reason)
    }
}

impl<W> Drop for ClientMux<W> {
    fn drop(&mut self) {
        self.shared.with(|state, w| state.drop_mux(w));
    }
}

impl<W> std::fmt::Debug for ClientMux<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.agreed.describe(f, "ClientMux")
    }
}
