//! The actor: the one future that owns the transport. It reads messages into the connection
//! state and writes what the state schedules, feeding packets to the transport in batches and
//! flushing once per batch.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;

use super::state::End;
use super::wakes::Wakes;
use super::Shared;
use crate::packet::{self, CloseReason};
use crate::ws::{TransportRead, TransportWrite};
use crate::WispError;

/// How many packets the actor takes from the state under one lock.
const BATCH: usize = 32;
/// How many messages or packets the actor handles in one poll before it yields, so that a busy
/// connection cannot starve other tasks on the same executor thread.
const BUDGET: usize = 256;
/// How many message bytes the actor reads in one poll before it yields. Past this, the stream
/// readers it has woken get to run while the data is still in the CPU cache. Without it the actor
/// read up to `BUDGET` messages (16 MiB at 64 KiB) ahead of them, every queue stayed at its cap,
/// and each payload was cold by the time it was written on: with 5 connections of 10 bulk
/// streams the server moved about 30 % less data per CPU-second (measured with wisp-bench).
const READ_BYTES_PER_POLL: usize = 1024 * 1024;

enum Phase {
    Running,
    /// Sending what is left, then closing the transport, then returning this result.
    Closing(Option<WispError>),
    Done,
}

/// The future that runs a multiplexer. Spawn it (or await it beside the code that uses the mux);
/// nothing moves until it runs. It resolves when the connection ends: `Ok(())` after a clean
/// close by either side, an error when the transport failed or the peer broke the protocol.
///
/// It is `Send` when the transport halves are. When closing, it flushes what is queued and closes
/// the transport; if the peer stops reading at that point the future waits, so a server should
/// bound it with a timeout.
#[must_use = "the multiplexer does nothing unless its actor future runs"]
pub struct MultiplexorActorFuture<R, W> {
    rx: R,
    tx: W,
    shared: Arc<Shared>,
    outbox: VecDeque<Bytes>,
    unflushed: bool,
    phase: Phase,
    /// Set by `poll_read` when it stopped at `READ_BYTES_PER_POLL`: the actor yields.
    read_budget_spent: bool,
}

impl<R: TransportRead, W: TransportWrite> MultiplexorActorFuture<R, W> {
    pub(crate) fn new(rx: R, tx: W, shared: Arc<Shared>) -> Self {
        Self {
            rx,
            tx,
            shared,
            outbox: VecDeque::new(),
            unflushed: false,
            phase: Phase::Running,
            read_budget_spent: false,
        }
    }

    fn fail(&mut self, error: Option<WispError>, end: End) {
        let mut w = Wakes::default();
        self.shared.lock().finish(end, &mut w);
        w.wake_all();
        self.phase = Phase::Closing(error);
    }

    /// Writes as much as the transport takes. Ready(Ok(true)) when something was written.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool, WispError>> {
        let mut wrote = false;
        let mut budget = BUDGET;
        loop {
            if self.outbox.is_empty() {
                if !matches!(self.phase, Phase::Running) {
                    break;
                }
                let mut w = Wakes::default();
                {
                    let mut state = self.shared.lock();
                    while self.outbox.len() < BATCH {
                        match state.next_outgoing(&mut w) {
                            Some(b) => self.outbox.push_back(b),
                            None => break,
                        }
                    }
                }
                w.wake_all();
                if self.outbox.is_empty() {
                    break;
                }
            }
            match Pin::new(&mut self.tx).poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
            let bytes = self.outbox.pop_front().expect("outbox is not empty");
            Pin::new(&mut self.tx).start_send(bytes)?;
            self.unflushed = true;
            wrote = true;
            budget -= 1;
            if budget == 0 {
                break;
            }
        }
        if self.unflushed {
            match Pin::new(&mut self.tx).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.unflushed = false,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
        }
        Poll::Ready(Ok(wrote))
    }

    /// Reads what the transport has. Ready(Ok(true)) when something was read.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool, ReadEnd>> {
        let mut read = false;
        let mut bytes = 0usize;
        for _ in 0..BUDGET {
            if bytes >= READ_BYTES_PER_POLL {
                self.read_budget_spent = true;
                return Poll::Ready(Ok(read));
            }
            if self.shared.lock().read_paused() {
                return Poll::Ready(Ok(read));
            }
            match Pin::new(&mut self.rx).poll_next(cx) {
                Poll::Ready(Some(Ok(message))) => {
                    bytes += message.len();
                    let mut w = Wakes::default();
                    let result = {
                        let mut state = self.shared.lock();
                        let r = state.handle_message(message, &mut w);
                        r.map(|()| state.end())
                    };
                    w.wake_all();
                    match result {
                        Ok(None) => read = true,
                        Ok(Some(_)) => return Poll::Ready(Err(ReadEnd::Closed)),
                        Err(e) => return Poll::Ready(Err(ReadEnd::Violation(e))),
                    }
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(ReadEnd::Transport(e))),
                Poll::Ready(None) => return Poll::Ready(Err(ReadEnd::Eof)),
                Poll::Pending => {
                    return if read {
                        Poll::Ready(Ok(true))
                    } else {
                        Poll::Pending
                    }
                }
            }
        }
        Poll::Ready(Ok(read))
    }
}

enum ReadEnd {
    /// A CLOSE on stream 0 arrived.
    Closed,
    /// The transport ended without one.
    Eof,
    Transport(WispError),
    Violation(WispError),
}

impl<R: TransportRead, W: TransportWrite> Future for MultiplexorActorFuture<R, W> {
    type Output = Result<(), WispError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut rounds = 0;
        loop {
            rounds += 1;
            if rounds > 16 {
                // Busy: yield to other tasks and come back at once.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            match &mut this.phase {
                Phase::Done => return Poll::Ready(Ok(())),
                Phase::Closing(_) => {
                    // Send what is already taken from the state, then close.
                    let flushed = match this.poll_write(cx) {
                        Poll::Ready(Ok(_)) => !this.unflushed,
                        Poll::Ready(Err(_)) => true,
                        Poll::Pending => false,
                    };
                    if !flushed {
                        return Poll::Pending;
                    }
                    let _ = futures::ready!(Pin::new(&mut this.tx).poll_close(cx));
                    let Phase::Closing(error) = std::mem::replace(&mut this.phase, Phase::Done)
                    else {
                        unreachable!()
                    };
                    return Poll::Ready(error.map_or(Ok(()), Err));
                }
                Phase::Running => {}
            }

            // Register first, so that a wake-up between the checks below and returning Pending
            // is not lost.
            let (close_request, abandoned) = {
                let mut state = this.shared.lock();
                state.register_actor(cx.waker());
                (state.take_close_request(), state.abandoned())
            };
            if let Some(reason) = close_request {
                this.outbox.clear();
                this.outbox.push_back(packet::encode_close(0, reason));
                this.fail(None, End::Closed(reason));
                continue;
            }
            if abandoned {
                this.fail(None, End::Closed(CloseReason::Voluntary));
                continue;
            }

            let wrote = match this.poll_write(cx) {
                Poll::Ready(Ok(wrote)) => wrote,
                Poll::Ready(Err(e)) => {
                    this.fail(Some(e), End::Lost);
                    continue;
                }
                Poll::Pending => false,
            };
            let read = match this.poll_read(cx) {
                Poll::Ready(Ok(read)) => read,
                Poll::Ready(Err(end)) => {
                    match end {
                        ReadEnd::Closed => this.phase = Phase::Closing(None),
                        ReadEnd::Eof => this.fail(None, End::Lost),
                        ReadEnd::Transport(e) | ReadEnd::Violation(e) => {
                            this.fail(Some(e), End::Lost)
                        }
                    }
                    continue;
                }
                Poll::Pending => false,
            };
            if std::mem::take(&mut this.read_budget_spent) {
                // Yield at once (see READ_BYTES_PER_POLL); more is waiting.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            if !wrote && !read {
                return Poll::Pending;
            }
        }
    }
}
