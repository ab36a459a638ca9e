//! The connection state of one multiplexer: the stream table, each stream's queues, credits and
//! lifecycle, and the outgoing schedule. It is plain data behind the connection's one lock; the
//! actor and the stream handles call into it and wake whatever it hands back once the lock is
//! released.
//!
//! # A stream's life
//!
//! A stream lives in a *slot*, found by slot number from its handles and by wire ID from
//! incoming packets (the *mapping*). The mapping ends when a CLOSE for the stream is received
//! or sent, so the ID can be used again at once; the slot ends when it is also unmapped, both
//! handles (read and write) are gone and nothing is left to send.
//!
//! - A CLOSE from the peer closes the stream: queued outgoing data is dropped, the reader gets
//!   what was already received and then the end.
//! - `close(reason)` or dropping the write half queues a CLOSE *behind* the data already
//!   written, so no byte is overtaken.
//! - Dropping the read half discards what arrives from then on (returning credit).
//! - When the connection ends, every open stream ends: with the reason of a CLOSE on stream 0,
//!   or with an error once if the transport was lost.
//!
//! # Flow control
//!
//! Server: each TCP stream starts with `buffer_size` credit on the client. Every packet the
//! reader takes counts; after a quarter of the credit has been taken the server announces
//! `buffer_size - queued` again. A client cannot have more than `buffer_size` packets in flight
//! after a CONTINUE, so at most twice that many are ever queued; past that the actor stops
//! reading the WebSocket (backpressure) instead of growing.
//!
//! Client: DATA for a TCP stream leaves only while the stream has credit; a CONTINUE sets the
//! credit to its value. Incoming data has no protocol credit: a stream whose reader falls
//! `stream_receive_buffer` bytes behind is closed with 0x81 (and its reader gets
//! [`WispError::StreamReceiveOverflow`]), and past `connection_receive_buffer` on all streams the
//! stream holding the most is closed the same way, so one stuck reader never stalls the others.
//!
//! # Scheduling
//!
//! Control packets (CONTINUE, refusals) go first. Then streams with something to send take turns,
//! one packet each (round robin), so a new stream's first bytes never wait behind a bulk
//! transfer.

use std::collections::{HashMap, VecDeque};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;

use super::data_packets::DataPackets;
use super::options::MuxOptions;
use super::wakes::{register, Wakes};
use crate::packet::{self, CloseReason, ConnectPacket, PacketType, RawPacket, StreamType};
use crate::{Role, WispError};

pub(crate) type SlotId = u64;

/// Server, TCP: the packet size the byte cap of a stream's queue assumes (a full DATA packet),
/// so that a client sending huge messages is held to the same bytes as one sending normal ones.
const STREAM_CAP_PACKET_BYTES: usize = 64 * 1024;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum OutKind {
    Connect,
    Data,
    Close,
}

struct Out {
    bytes: Bytes,
    kind: OutKind,
}

/// How the connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// A CLOSE on stream 0, sent or received, with this reason.
    Closed(CloseReason),
    /// The transport closed or failed without a CLOSE on stream 0.
    Lost,
}

struct Slot {
    wire_id: u32,
    kind: StreamType,
    mapped: bool,
    rx: VecDeque<Bytes>,
    rx_bytes: usize,
    rx_waker: Option<Waker>,
    reader_alive: bool,
    /// Server, TCP: packets taken since the last CONTINUE.
    consumed: u32,
    /// Server, TCP: queued past twice the credit (the client ignores flow control).
    over_cap: bool,
    tx: VecDeque<Out>,
    tx_bytes: usize,
    tx_waker: Option<Waker>,
    writer_alive: bool,
    in_ring: bool,
    /// Client, TCP: packets we may still send.
    credit: u32,
    /// Why the stream closed, once it has.
    close: Option<CloseReason>,
    /// The connection ended without a CLOSE for this stream.
    lost: bool,
    /// The client closed the stream with 0x81 because its reader fell behind.
    overflowed: bool,
    error_reported: bool,
    /// Client: the server confirmed the open (or confirmation is not in use).
    /// Server: the confirmation was sent (or is not in use).
    confirmed: bool,
    open_waker: Option<Waker>,
    /// A task waiting for the stream to end (`MuxStreamCloser::closed`).
    closed_waker: Option<Waker>,
}

impl Slot {
    fn new(wire_id: u32, kind: StreamType, credit: u32, confirmed: bool) -> Self {
        Self {
            wire_id,
            kind,
            mapped: true,
            rx: VecDeque::new(),
            rx_bytes: 0,
            rx_waker: None,
            reader_alive: true,
            consumed: 0,
            over_cap: false,
            tx: VecDeque::new(),
            tx_bytes: 0,
            tx_waker: None,
            writer_alive: true,
            in_ring: false,
            credit,
            close: None,
            lost: false,
            overflowed: false,
            error_reported: false,
            confirmed,
            open_waker: None,
            closed_waker: None,
        }
    }

    fn finished(&self) -> bool {
        self.close.is_some() || self.lost
    }

    fn wake_all(&mut self, w: &mut Wakes) {
        w.push(self.rx_waker.take());
        w.push(self.tx_waker.take());
        w.push(self.open_waker.take());
        w.push(self.closed_waker.take());
    }
}

/// The state of one connection.
pub(crate) struct ConnState {
    role: Role,
    opts: MuxOptions,
    /// Server: the credit it announces. Client: the credit the server announced.
    buffer_size: u32,
    udp: bool,
    confirmation: bool,
    slots: HashMap<SlotId, Slot>,
    by_wire: HashMap<u32, SlotId>,
    next_slot: SlotId,
    next_wire_id: u32,
    control: VecDeque<Bytes>,
    ring: VecDeque<SlotId>,
    accept_queue: VecDeque<(ConnectPacket, SlotId)>,
    accept_waker: Option<Waker>,
    mux_alive: bool,
    actor_waker: Option<Waker>,
    end: Option<End>,
    close_request: Option<CloseReason>,
    /// Bytes queued for readers on all streams.
    rx_total: usize,
    /// Server: streams over their queue cap; while non-zero the actor does not read.
    over_cap: usize,
}

impl ConnState {
    pub(crate) fn new(
        role: Role,
        opts: MuxOptions,
        buffer_size: u32,
        udp: bool,
        confirmation: bool,
    ) -> Self {
        Self {
            role,
            opts,
            buffer_size,
            udp,
            confirmation,
            slots: HashMap::new(),
            by_wire: HashMap::new(),
            next_slot: 1,
            next_wire_id: 1,
            control: VecDeque::new(),
            ring: VecDeque::new(),
            accept_queue: VecDeque::new(),
            accept_waker: None,
            mux_alive: true,
            actor_waker: None,
            end: None,
            close_request: None,
            rx_total: 0,
            over_cap: 0,
        }
    }

    // ------------------------------------------------------------------ actor side

    pub(crate) fn register_actor(&mut self, waker: &Waker) {
        register(&mut self.actor_waker, waker);
    }

    fn wake_actor(&mut self, w: &mut Wakes) {
        w.push(self.actor_waker.take());
    }

    /// Queues a control packet (sent before any stream's data).
    pub(crate) fn push_control(&mut self, bytes: Bytes, w: &mut Wakes) {
        self.control.push_back(bytes);
        self.wake_actor(w);
    }

    /// Whether the actor should stop reading the transport for now.
    pub(crate) fn read_paused(&self) -> bool {
        self.over_cap > 0
            || self.control.len() >= self.opts.max_pending_control
            || (self.role == Role::Server && self.rx_total > self.opts.connection_receive_buffer)
    }

    /// Server, TCP: packets a stream may queue before the actor stops reading. A client that
    /// respects its credit never reaches it (see the module docs).
    fn stream_cap_packets(&self) -> usize {
        2 * self.buffer_size as usize + 1
    }

    pub(crate) fn end(&self) -> Option<End> {
        self.end
    }

    pub(crate) fn take_close_request(&mut self) -> Option<CloseReason> {
        self.close_request.take()
    }

    pub(crate) fn request_close(&mut self, reason: CloseReason, w: &mut Wakes) -> bool {
        if self.end.is_some() {
            return false;
        }
        self.close_request = Some(reason);
        self.wake_actor(w);
        true
    }

    /// Nothing can use the connection any more: the mux handle and every stream are gone.
    pub(crate) fn abandoned(&self) -> bool {
        !self.mux_alive && self.slots.is_empty()
    }

    /// Handles one whole message from the peer. An error is fatal to the connection.
    pub(crate) fn handle_message(
        &mut self,
        message: Bytes,
        w: &mut Wakes,
    ) -> Result<(), WispError> {
        let raw = RawPacket::parse(message)?;
        let id = raw.stream_id;
        match raw.packet_type {
            packet::CONNECT if self.role == Role::Server => self.on_connect(raw, w),
            packet::DATA if id != 0 => self.on_data(id, raw.payload, w),
            packet::CONTINUE if self.role == Role::Client && id != 0 => {
                if let Ok(crate::Packet {
                    packet_type: PacketType::Continue(c),
                    ..
                }) = raw.decode()
                {
                    self.on_continue(id, c.buffer_remaining, w);
                }
            }
            packet::CLOSE => {
                // A CLOSE without its reason byte is still a CLOSE.
                let reason = raw
                    .payload
                    .first()
                    .map_or(CloseReason::Unknown, |&b| CloseReason(b));
                if id == 0 {
                    self.finish(End::Closed(reason), w);
                } else {
                    self.on_remote_close(id, reason, w);
                }
            }
            // CONNECT to a client, CONTINUE to a server, DATA on stream 0, INFO after the
            // handshake and packet types from extensions we do not speak are ignored.
            _ => {}
        }
        Ok(())
    }

    fn refuse(&mut self, id: u32, reason: CloseReason, w: &mut Wakes) {
        self.push_control(packet::encode_close(id, reason), w);
    }

    fn on_connect(&mut self, raw: RawPacket, w: &mut Wakes) {
        let id = raw.stream_id;
        if id == 0 {
            // Refusing it would need a CLOSE on stream 0, which ends the connection.
            return;
        }
        if self.by_wire.contains_key(&id) {
            // The client believes this ID is free and we do not: end both, so that both sides
            // agree again.
            self.on_remote_close(id, CloseReason::ServerStreamInvalidInfo, w);
            self.refuse(id, CloseReason::ServerStreamInvalidInfo, w);
            return;
        }
        let connect = match raw.decode() {
            Ok(crate::Packet {
                packet_type: PacketType::Connect(c),
                ..
            }) => c,
            _ => return self.refuse(id, CloseReason::ServerStreamInvalidInfo, w),
        };
        let supported = match connect.stream_type {
            StreamType::Tcp => true,
            StreamType::Udp => self.udp,
            StreamType::Unknown(_) => false,
        };
        if !supported {
            return self.refuse(id, CloseReason::ServerStreamInvalidInfo, w);
        }
        if !self.mux_alive {
            return self.refuse(id, CloseReason::Unknown, w);
        }
        if self.slots.len() >= self.opts.max_streams {
            return self.refuse(id, CloseReason::ServerStreamThrottled, w);
        }
        let slot = self.insert_slot(id, connect.stream_type, 0, !self.confirmation);
        self.accept_queue.push_back((connect, slot));
        w.push(self.accept_waker.take());
    }

    fn insert_slot(
        &mut self,
        wire_id: u32,
        kind: StreamType,
        credit: u32,
        confirmed: bool,
    ) -> SlotId {
        let slot = self.next_slot;
        self.next_slot += 1;
        self.slots
            .insert(slot, Slot::new(wire_id, kind, credit, confirmed));
        self.by_wire.insert(wire_id, slot);
        slot
    }

    fn on_data(&mut self, id: u32, payload: Bytes, w: &mut Wakes) {
        let Some(&slot_id) = self.by_wire.get(&id) else {
            return; // unknown, or closed while the packet was in flight
        };
        let role = self.role;
        let cap = self.stream_cap_packets();
        let s = self.slots.get_mut(&slot_id).expect("mapped slot exists");
        if s.close.is_some() {
            return; // we closed it; the peer has not seen our CLOSE yet
        }
        let len = payload.len();
        if !s.reader_alive {
            if role == Role::Server && s.kind == StreamType::Tcp {
                s.consumed += 1;
                self.maybe_announce(slot_id, w);
            }
            return;
        }
        if s.kind == StreamType::Udp && s.rx_bytes + len > self.opts.stream_receive_buffer {
            return; // a datagram the reader has no room for is lost, as on a socket
        }
        s.rx.push_back(payload);
        s.rx_bytes += len;
        self.rx_total += len;
        w.push(s.rx_waker.take());
        match role {
            Role::Server => {
                let over = s.rx.len() > cap || s.rx_bytes > cap * STREAM_CAP_PACKET_BYTES;
                if s.kind == StreamType::Tcp && over && !s.over_cap {
                    s.over_cap = true;
                    self.over_cap += 1;
                }
            }
            Role::Client => {
                if s.kind == StreamType::Tcp && s.rx_bytes > self.opts.stream_receive_buffer {
                    self.overflow(slot_id, w);
                } else if self.rx_total > self.opts.connection_receive_buffer {
                    let largest = self
                        .slots
                        .iter()
                        .filter(|(_, s)| s.close.is_none())
                        .max_by_key(|(_, s)| s.rx_bytes)
                        .map(|(&id, _)| id);
                    if let Some(largest) = largest {
                        self.overflow(largest, w);
                    }
                }
            }
        }
    }

    /// Client: the reader of `slot_id` fell too far behind. Close the stream with 0x81 and free
    /// what it held; its reader gets an error instead of the rest of the data.
    fn overflow(&mut self, slot_id: SlotId, w: &mut Wakes) {
        let s = self.slots.get_mut(&slot_id).expect("slot exists");
        s.overflowed = true;
        self.rx_total -= s.rx_bytes;
        s.rx.clear();
        s.rx_bytes = 0;
        s.tx.clear();
        s.tx_bytes = 0;
        self.close_slot(slot_id, CloseReason::ClientUnexpected, w);
    }

    fn on_continue(&mut self, id: u32, credit: u32, w: &mut Wakes) {
        let Some(&slot_id) = self.by_wire.get(&id) else {
            return;
        };
        let s = self.slots.get_mut(&slot_id).expect("mapped slot exists");
        s.confirmed = true;
        w.push(s.open_waker.take());
        if s.kind == StreamType::Tcp {
            s.credit = credit;
            if credit > 0 && !s.tx.is_empty() && !s.in_ring {
                s.in_ring = true;
                self.ring.push_back(slot_id);
                self.wake_actor(w);
            }
        }
    }

    fn on_remote_close(&mut self, id: u32, reason: CloseReason, w: &mut Wakes) {
        let Some(slot_id) = self.by_wire.remove(&id) else {
            return;
        };
        let s = self.slots.get_mut(&slot_id).expect("mapped slot exists");
        s.mapped = false;
        s.close.get_or_insert(reason);
        s.tx.clear();
        s.tx_bytes = 0;
        s.wake_all(w);
        self.clear_over_cap(slot_id);
        self.maybe_reap(slot_id);
    }

    fn clear_over_cap(&mut self, slot_id: SlotId) {
        if let Some(s) = self.slots.get_mut(&slot_id) {
            if s.over_cap {
                s.over_cap = false;
                self.over_cap -= 1;
            }
        }
    }

    /// Server, TCP: returns credit once a quarter of it has been taken by the reader.
    fn maybe_announce(&mut self, slot_id: SlotId, w: &mut Wakes) {
        let threshold = (self.buffer_size / 4).max(1);
        let b = self.buffer_size;
        let s = self.slots.get_mut(&slot_id).expect("slot exists");
        if s.consumed >= threshold && s.mapped && s.close.is_none() {
            s.consumed = 0;
            let remaining = b.saturating_sub(s.rx.len() as u32);
            let bytes = packet::encode_continue(s.wire_id, remaining);
            self.push_control(bytes, w);
        }
    }

    /// The next packet to send: control first, then one packet from the next stream in turn.
    pub(crate) fn next_outgoing(&mut self, w: &mut Wakes) -> Option<Bytes> {
        if let Some(bytes) = self.control.pop_front() {
            return Some(bytes);
        }
        let credit_limited = self.role == Role::Client;
        let cap = self.opts.stream_send_buffer;
        while let Some(slot_id) = self.ring.pop_front() {
            let Some(s) = self.slots.get_mut(&slot_id) else {
                continue;
            };
            s.in_ring = false;
            let Some(front) = s.tx.front() else {
                continue;
            };
            let needs_credit =
                credit_limited && front.kind == OutKind::Data && s.kind == StreamType::Tcp;
            if needs_credit && s.credit == 0 {
                continue; // parked until a CONTINUE
            }
            let out = s.tx.pop_front().expect("front exists");
            s.tx_bytes -= out.bytes.len();
            if needs_credit {
                s.credit -= 1;
            }
            if s.tx_bytes < cap {
                w.push(s.tx_waker.take());
            }
            if !s.tx.is_empty() {
                s.in_ring = true;
                self.ring.push_back(slot_id);
            }
            if out.kind == OutKind::Close {
                let wire_id = s.wire_id;
                s.mapped = false;
                if self.by_wire.get(&wire_id) == Some(&slot_id) {
                    self.by_wire.remove(&wire_id);
                }
                self.clear_over_cap(slot_id);
                self.maybe_reap(slot_id);
            }
            return Some(out.bytes);
        }
        None
    }

    /// Ends the connection: every open stream ends and every waiting task is woken.
    pub(crate) fn finish(&mut self, end: End, w: &mut Wakes) {
        if self.end.is_some() {
            return;
        }
        self.end = Some(end);
        self.by_wire.clear();
        self.ring.clear();
        self.over_cap = 0;
        for s in self.slots.values_mut() {
            s.mapped = false;
            s.over_cap = false;
            if s.close.is_none() {
                match end {
                    End::Closed(reason) => s.close = Some(reason),
                    End::Lost => s.lost = true,
                }
            }
            s.tx.clear();
            s.tx_bytes = 0;
            s.wake_all(w);
        }
        for (_, slot_id) in std::mem::take(&mut self.accept_queue) {
            self.slots.remove(&slot_id);
        }
        self.slots.retain(|_, s| s.reader_alive || s.writer_alive);
        w.push(self.accept_waker.take());
    }

    // ------------------------------------------------------------------ server side

    pub(crate) fn poll_accept(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<(ConnectPacket, SlotId)>> {
        if let Some(item) = self.accept_queue.pop_front() {
            return Poll::Ready(Some(item));
        }
        if self.end.is_some() {
            return Poll::Ready(None);
        }
        register(&mut self.accept_waker, cx.waker());
        Poll::Pending
    }

    /// Server: sends the stream-open confirmation if it is in use and not yet sent.
    pub(crate) fn confirm(&mut self, slot_id: SlotId, w: &mut Wakes) {
        let b = self.buffer_size;
        let Some(s) = self.slots.get_mut(&slot_id) else {
            return;
        };
        if s.confirmed || !s.mapped || s.close.is_some() || self.role != Role::Server {
            return;
        }
        s.confirmed = true;
        let remaining = if s.kind == StreamType::Tcp {
            b.saturating_sub(s.rx.len() as u32)
        } else {
            0
        };
        let bytes = packet::encode_continue(s.wire_id, remaining);
        self.push_control(bytes, w);
    }

    // ------------------------------------------------------------------ client side

    /// Client: opens a stream, queueing its CONNECT.
    pub(crate) fn open(
        &mut self,
        kind: StreamType,
        host: &str,
        port: u16,
        w: &mut Wakes,
    ) -> Result<SlotId, WispError> {
        if self.end.is_some() {
            return Err(WispError::MuxTaskEnded);
        }
        match kind {
            StreamType::Udp if !self.udp => return Err(WispError::UdpNotSupported),
            StreamType::Unknown(t) => return Err(WispError::InvalidStreamType(t)),
            _ => {}
        }
        if self.slots.len() >= self.opts.max_streams {
            return Err(WispError::MaxStreamCountReached);
        }
        let mut wire_id = self.next_wire_id;
        while wire_id == 0 || self.by_wire.contains_key(&wire_id) {
            wire_id = wire_id.wrapping_add(1);
        }
        self.next_wire_id = wire_id.wrapping_add(1);
        let slot_id = self.insert_slot(wire_id, kind, self.buffer_size, !self.confirmation);
        let bytes = crate::Packet::connect(wire_id, kind, host, port).to_bytes();
        self.enqueue(
            slot_id,
            Out {
                bytes,
                kind: OutKind::Connect,
            },
            w,
        );
        Ok(slot_id)
    }

    /// Client: resolves once the server confirmed the stream (at once without confirmation).
    pub(crate) fn poll_opened(
        &mut self,
        slot_id: SlotId,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), WispError>> {
        let Some(s) = self.slots.get_mut(&slot_id) else {
            return Poll::Ready(Err(WispError::MuxTaskEnded));
        };
        if s.confirmed {
            Poll::Ready(Ok(()))
        } else if let Some(reason) = s.close {
            Poll::Ready(Err(WispError::StreamRefused(reason)))
        } else if s.lost {
            Poll::Ready(Err(WispError::MuxTaskEnded))
        } else {
            register(&mut s.open_waker, cx.waker());
            Poll::Pending
        }
    }

    // ------------------------------------------------------------------ stream handles

    pub(crate) fn wire_id(&self, slot_id: SlotId) -> u32 {
        self.slots.get(&slot_id).map_or(0, |s| s.wire_id)
    }

    pub(crate) fn close_reason(&self, slot_id: SlotId) -> Option<CloseReason> {
        self.slots.get(&slot_id).and_then(|s| s.close)
    }

    /// Resolves once the stream has ended: closed by either side, or the connection lost.
    pub(crate) fn poll_closed(&mut self, slot_id: SlotId, cx: &mut Context<'_>) -> Poll<()> {
        match self.slots.get_mut(&slot_id) {
            Some(s) if !s.finished() => {
                register(&mut s.closed_waker, cx.waker());
                Poll::Pending
            }
            _ => Poll::Ready(()),
        }
    }

    pub(crate) fn poll_read(
        &mut self,
        slot_id: SlotId,
        cx: &mut Context<'_>,
        w: &mut Wakes,
    ) -> Poll<Option<Result<Bytes, WispError>>> {
        self.confirm(slot_id, w);
        let role = self.role;
        let Some(s) = self.slots.get_mut(&slot_id) else {
            return Poll::Ready(None);
        };
        if let Some(bytes) = s.rx.pop_front() {
            s.rx_bytes -= bytes.len();
            let conn_cap = self.opts.connection_receive_buffer;
            let was_over = self.rx_total > conn_cap;
            self.rx_total -= bytes.len();
            let mut resume = was_over && self.rx_total <= conn_cap;
            let server_tcp = role == Role::Server && s.kind == StreamType::Tcp;
            if server_tcp {
                s.consumed += 1;
                let cap = 2 * self.buffer_size as usize + 1;
                if s.over_cap && s.rx.len() < cap && s.rx_bytes <= cap * STREAM_CAP_PACKET_BYTES {
                    s.over_cap = false;
                    self.over_cap -= 1;
                    resume = true;
                }
            }
            if role == Role::Server && resume {
                self.wake_actor(w);
            }
            if server_tcp {
                self.maybe_announce(slot_id, w);
            }
            return Poll::Ready(Some(Ok(bytes)));
        }
        if s.finished() {
            if (s.lost || s.overflowed) && !s.error_reported {
                s.error_reported = true;
                return Poll::Ready(Some(Err(if s.overflowed {
                    WispError::StreamReceiveOverflow
                } else {
                    WispError::WsImplSocketClosed
                })));
            }
            return Poll::Ready(None);
        }
        register(&mut s.rx_waker, cx.waker());
        Poll::Pending
    }

    pub(crate) fn poll_write_ready(
        &mut self,
        slot_id: SlotId,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), WispError>> {
        let cap = self.opts.stream_send_buffer;
        let Some(s) = self.slots.get_mut(&slot_id) else {
            return Poll::Ready(Err(WispError::StreamAlreadyClosed));
        };
        if s.finished() {
            return Poll::Ready(Err(WispError::StreamAlreadyClosed));
        }
        if s.tx_bytes >= cap {
            register(&mut s.tx_waker, cx.waker());
            return Poll::Pending;
        }
        Poll::Ready(Ok(()))
    }

    /// Queues DATA packets that the writer encoded outside the lock (see `DataPackets`).
    pub(crate) fn write(
        &mut self,
        slot_id: SlotId,
        packets: DataPackets,
        w: &mut Wakes,
    ) -> Result<(), WispError> {
        self.confirm(slot_id, w);
        let Some(s) = self.slots.get_mut(&slot_id) else {
            return Err(WispError::StreamAlreadyClosed);
        };
        if s.finished() {
            return Err(WispError::StreamAlreadyClosed);
        }
        for bytes in packets {
            self.enqueue(
                slot_id,
                Out {
                    bytes,
                    kind: OutKind::Data,
                },
                w,
            );
        }
        Ok(())
    }

    fn enqueue(&mut self, slot_id: SlotId, out: Out, w: &mut Wakes) {
        let s = self.slots.get_mut(&slot_id).expect("slot exists");
        s.tx_bytes += out.bytes.len();
        s.tx.push_back(out);
        if !s.in_ring {
            s.in_ring = true;
            self.ring.push_back(slot_id);
            self.wake_actor(w);
        }
    }

    pub(crate) fn poll_write_flush(
        &mut self,
        slot_id: SlotId,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), WispError>> {
        let Some(s) = self.slots.get_mut(&slot_id) else {
            return Poll::Ready(Ok(()));
        };
        if s.tx.is_empty() || s.finished() && !s.mapped {
            return Poll::Ready(Ok(()));
        }
        register(&mut s.tx_waker, cx.waker());
        Poll::Pending
    }

    /// Closes the stream from this side, behind the data already written.
    pub(crate) fn close_stream(
        &mut self,
        slot_id: SlotId,
        reason: CloseReason,
        w: &mut Wakes,
    ) -> Result<(), WispError> {
        match self.slots.get(&slot_id) {
            Some(s) if !s.finished() => {
                self.close_slot(slot_id, reason, w);
                Ok(())
            }
            _ => Err(WispError::StreamAlreadyClosed),
        }
    }

    fn close_slot(&mut self, slot_id: SlotId, reason: CloseReason, w: &mut Wakes) {
        let s = self.slots.get_mut(&slot_id).expect("slot exists");
        s.close = Some(reason);
        w.push(s.rx_waker.take());
        w.push(s.open_waker.take());
        w.push(s.closed_waker.take());
        if s.mapped {
            let bytes = packet::encode_close(s.wire_id, reason);
            self.enqueue(
                slot_id,
                Out {
                    bytes,
                    kind: OutKind::Close,
                },
                w,
            );
        } else {
            self.maybe_reap(slot_id);
        }
    }

    pub(crate) fn drop_reader(&mut self, slot_id: SlotId, w: &mut Wakes) {
        let role = self.role;
        let Some(s) = self.slots.get_mut(&slot_id) else {
            return;
        };
        s.reader_alive = false;
        let discarded = s.rx.len() as u32;
        let bytes = s.rx_bytes;
        s.rx.clear();
        s.rx_bytes = 0;
        self.rx_total -= bytes;
        if role == Role::Server {
            if s.kind == StreamType::Tcp {
                s.consumed += discarded;
                self.clear_over_cap(slot_id);
                self.maybe_announce(slot_id, w);
            }
            self.wake_actor(w);
        }
        self.after_handle_drop(slot_id, w);
    }

    pub(crate) fn drop_writer(&mut self, slot_id: SlotId, w: &mut Wakes) {
        let Some(s) = self.slots.get_mut(&slot_id) else {
            return;
        };
        s.writer_alive = false;
        self.after_handle_drop(slot_id, w);
    }

    /// A stream whose writer is gone is closed (0x02, after its data), as a socket would be.
    fn after_handle_drop(&mut self, slot_id: SlotId, w: &mut Wakes) {
        let s = self.slots.get(&slot_id).expect("slot exists");
        if !s.writer_alive && !s.finished() {
            self.close_slot(slot_id, CloseReason::Voluntary, w);
        }
        self.maybe_reap(slot_id);
    }

    fn maybe_reap(&mut self, slot_id: SlotId) {
        if let Some(s) = self.slots.get(&slot_id) {
            if !s.reader_alive && !s.writer_alive && !s.mapped && s.tx.is_empty() {
                self.slots.remove(&slot_id);
            }
        }
    }

    /// The mux handle is gone: refuse what waits to be accepted and accept nothing more.
    pub(crate) fn drop_mux(&mut self, w: &mut Wakes) {
        self.mux_alive = false;
        for (_, slot_id) in std::mem::take(&mut self.accept_queue) {
            let _ = self.close_stream(slot_id, CloseReason::Unknown, w);
            if let Some(s) = self.slots.get_mut(&slot_id) {
                s.reader_alive = false;
                s.writer_alive = false;
            }
            self.maybe_reap(slot_id);
        }
        self.wake_actor(w);
    }

    /// Streams open now (for tests and metrics).
    pub(crate) fn stream_count(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    //! The connection state driven directly, without an executor or a transport.

    use super::*;
    use crate::Packet;
    use futures::task::noop_waker_ref;

    fn server(buffer_size: u32, opts: MuxOptions) -> ConnState {
        ConnState::new(Role::Server, opts, buffer_size, true, false)
    }

    fn feed(state: &mut ConnState, packet: Packet) {
        let mut w = Wakes::default();
        state
            .handle_message(packet.to_bytes(), &mut w)
            .expect("not fatal");
    }

    fn accept(state: &mut ConnState) -> SlotId {
        let mut cx = Context::from_waker(noop_waker_ref());
        match state.poll_accept(&mut cx) {
            Poll::Ready(Some((_, slot))) => slot,
            other => panic!("no stream to accept: {other:?}"),
        }
    }

    fn read(state: &mut ConnState, slot: SlotId) -> usize {
        let mut cx = Context::from_waker(noop_waker_ref());
        let mut w = Wakes::default();
        match state.poll_read(slot, &mut cx, &mut w) {
            Poll::Ready(Some(Ok(b))) => b.len(),
            other => panic!("nothing to read: {other:?}"),
        }
    }

    #[test]
    fn huge_messages_beyond_credit_pause_reading_by_bytes() {
        // Credit 4: the queue may hold 9 packets, or 9 x 64 KiB of bytes.
        let mut state = server(4, MuxOptions::default());
        feed(&mut state, Packet::connect(1, StreamType::Tcp, "h", 1));
        let slot = accept(&mut state);
        let big = Bytes::from(vec![0u8; 200 * 1024]);
        for _ in 0..2 {
            feed(&mut state, Packet::data(1, big.clone()));
            assert!(!state.read_paused());
        }
        feed(&mut state, Packet::data(1, big.clone()));
        assert!(
            state.read_paused(),
            "600 KiB queued on a stream capped at 576 KiB"
        );
        assert_eq!(read(&mut state, slot), big.len());
        assert!(
            !state.read_paused(),
            "reading resumes once the reader takes data"
        );
    }

    #[test]
    fn the_connection_wide_byte_cap_pauses_reading() {
        let opts = MuxOptions {
            connection_receive_buffer: 100 * 1024,
            ..MuxOptions::default()
        };
        let mut state = server(64, opts);
        feed(&mut state, Packet::connect(1, StreamType::Tcp, "h", 1));
        feed(&mut state, Packet::connect(2, StreamType::Tcp, "h", 1));
        let a = accept(&mut state);
        let _b = accept(&mut state);
        let chunk = Bytes::from(vec![0u8; 60 * 1024]);
        feed(&mut state, Packet::data(1, chunk.clone()));
        assert!(!state.read_paused());
        feed(&mut state, Packet::data(2, chunk.clone()));
        assert!(
            state.read_paused(),
            "120 KiB queued on a connection capped at 100 KiB"
        );
        read(&mut state, a);
        assert!(!state.read_paused());
    }

    #[test]
    fn credit_is_announced_after_a_quarter_is_taken() {
        let mut state = server(8, MuxOptions::default());
        feed(&mut state, Packet::connect(3, StreamType::Tcp, "h", 1));
        let slot = accept(&mut state);
        for _ in 0..8 {
            feed(&mut state, Packet::data(3, Bytes::from_static(b"x")));
        }
        let mut w = Wakes::default();
        read(&mut state, slot);
        assert!(
            state.next_outgoing(&mut w).is_none(),
            "announced after one packet"
        );
        read(&mut state, slot);
        let announced = state.next_outgoing(&mut w).expect("a CONTINUE");
        assert_eq!(announced, Packet::continue_(3, 8 - 6).to_bytes());
    }
}
