//! The multiplexer: [`ServerMux`], [`ClientMux`], the handshake drivers and the actor.

mod actor;
mod client;
pub(crate) mod data_packets;
mod options;
mod server;
pub(crate) mod state;
pub(crate) mod wakes;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};

pub use actor::MultiplexorActorFuture;
pub use client::ClientMux;
pub use options::MuxOptions;
pub use server::ServerMux;

use crate::extensions::confirmation::StreamConfirmationProtocolExtension;
use crate::extensions::udp::UdpProtocolExtension;
use crate::extensions::AnyProtocolExtension;
use crate::handshake::Negotiated;
use crate::packet::{self, CloseReason, WispVersion};
use crate::ws::{TransportRead, TransportWrite};
use crate::{Role, WispError};
use state::ConnState;
use wakes::Wakes;

/// What the stream handles and the actor share: the connection state behind its one lock.
pub(crate) struct Shared {
    state: Mutex<ConnState>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, ConnState> {
        // A panic while the lock was held leaves plain data behind; keep serving it rather than
        // spreading the panic to every stream.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks the actor to close the connection with CLOSE on stream 0.
    pub(crate) fn request_close(&self, reason: CloseReason) -> Result<(), WispError> {
        if self.with(|state, w| state.request_close(reason, w)) {
            Ok(())
        } else {
            Err(WispError::MuxTaskEnded)
        }
    }

    /// Runs `f` under the lock and wakes what it collected after releasing it.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut ConnState, &mut Wakes) -> T) -> T {
        let mut w = Wakes::default();
        let out = f(&mut self.lock(), &mut w);
        w.wake_all();
        out
    }
}

/// What the handshake agreed, kept by the mux handle.
#[derive(Debug)]
pub(crate) struct Agreed {
    pub(crate) version: WispVersion,
    pub(crate) downgraded: bool,
    pub(crate) extensions: Vec<AnyProtocolExtension>,
}

impl Agreed {
    fn has<T: crate::extensions::ProtocolExtension>(&self) -> bool {
        self.extensions
            .iter()
            .any(|e| e.downcast_ref::<T>().is_some())
    }

    pub(crate) fn ids(&self) -> Vec<u8> {
        self.extensions.iter().map(|e| e.id()).collect()
    }

    /// The `Debug` output of a mux handle named `name`.
    fn describe(&self, f: &mut std::fmt::Formatter<'_>, name: &str) -> std::fmt::Result {
        f.debug_struct(name)
            .field("version", &self.version)
            .field("downgraded", &self.downgraded)
            .field("extensions", &self.ids())
            .finish()
    }
}

/// The result of [`ServerMux::new`] or [`ClientMux::new`]: the handshake is done, and the
/// caller decides whether the extensions it requires are there.
#[must_use = "call with_no_required_extensions or with_required_extensions to get the mux"]
pub struct MuxResult<M, R, W> {
    mux: M,
    rx: R,
    tx: W,
    shared: Arc<Shared>,
    final_packets: Vec<Bytes>,
    negotiated_ids: Vec<u8>,
}

impl<M, R: TransportRead, W: TransportWrite> MuxResult<M, R, W> {
    /// Accepts whatever extensions were negotiated. Returns the mux handle and the actor future,
    /// which must be spawned or awaited.
    pub fn with_no_required_extensions(self) -> (M, MultiplexorActorFuture<R, W>) {
        self.shared.with(|state, w| {
            for p in self.final_packets {
                state.push_control(p, w);
            }
        });
        (
            self.mux,
            MultiplexorActorFuture::new(self.rx, self.tx, self.shared),
        )
    }

    /// Requires these extension IDs. If the peer lacks any, sends CLOSE 0x04 on stream 0,
    /// closes the transport and fails with [`WispError::ExtensionsNotSupported`] listing the
    /// missing ones.
    pub async fn with_required_extensions(
        mut self,
        required: &[u8],
    ) -> Result<(M, MultiplexorActorFuture<R, W>), WispError> {
        let missing: Vec<u8> = required
            .iter()
            .copied()
            .filter(|id| !self.negotiated_ids.contains(id))
            .collect();
        if missing.is_empty() {
            return Ok(self.with_no_required_extensions());
        }
        reject(&mut self.tx, Some(CloseReason::IncompatibleExtensions)).await;
        Err(WispError::ExtensionsNotSupported(missing))
    }
}

fn build<M, R, W>(
    role: Role,
    rx: R,
    tx: W,
    opts: MuxOptions,
    negotiated: Negotiated,
    final_packets: Vec<Bytes>,
    make: impl FnOnce(Arc<Shared>, Agreed) -> M,
) -> Result<MuxResult<M, R, W>, WispError> {
    let agreed = Agreed {
        version: negotiated.version,
        downgraded: negotiated.downgraded,
        extensions: negotiated.extensions,
    };
    let udp = agreed.version.major == 1 || agreed.has::<UdpProtocolExtension>();
    let confirmation = agreed.has::<StreamConfirmationProtocolExtension>();
    let shared = Arc::new(Shared {
        state: Mutex::new(ConnState::new(
            role,
            opts,
            negotiated.buffer_size,
            udp,
            confirmation,
        )),
    });
    if let Some(message) = negotiated.leftover {
        shared.with(|state, w| state.handle_message(message, w))?;
    }
    let negotiated_ids = agreed.ids();
    Ok(MuxResult {
        mux: make(shared.clone(), agreed),
        rx,
        tx,
        shared,
        final_packets,
        negotiated_ids,
    })
}

/// Reads the next whole message during the handshake.
async fn next_message<R: TransportRead>(rx: &mut R) -> Result<Bytes, WispError> {
    match rx.next().await {
        Some(Ok(message)) => Ok(message),
        Some(Err(e)) => Err(e),
        None => Err(WispError::WsImplSocketClosed),
    }
}

async fn send_all<W: TransportWrite>(tx: &mut W, messages: Vec<Bytes>) -> Result<(), WispError> {
    for m in messages {
        tx.feed(m).await?;
    }
    tx.flush().await
}

/// Ends a connection during the handshake: CLOSE on stream 0 if a reason is given, then the
/// transport's own close. Errors are ignored: the connection is being given up anyway.
async fn reject<W: TransportWrite>(tx: &mut W, reason: Option<CloseReason>) {
    if let Some(reason) = reason {
        let _ = tx.send(packet::encode_close(0, reason)).await;
    }
    let _ = tx.close().await;
}
