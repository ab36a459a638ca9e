//! Wakers collected while the connection lock is held and woken after it is released, so that
//! no task is woken (and perhaps run on another thread) while the lock is taken.

use std::task::Waker;

/// A small set of wakers to wake later. Holds four inline; more spill to the heap.
#[derive(Default)]
pub(crate) struct Wakes {
    inline: [Option<Waker>; 4],
    len: usize,
    spill: Vec<Waker>,
}

impl Wakes {
    pub(crate) fn push(&mut self, waker: Option<Waker>) {
        let Some(waker) = waker else { return };
        if self.len < self.inline.len() {
            self.inline[self.len] = Some(waker);
            self.len += 1;
        } else {
            self.spill.push(waker);
        }
    }

    pub(crate) fn wake_all(self) {
        for w in self.inline.into_iter().flatten() {
            w.wake();
        }
        for w in self.spill {
            w.wake();
        }
    }
}

/// Stores `cx`'s waker in `slot` unless an equivalent one is there already.
pub(crate) fn register(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(w) if w.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}
