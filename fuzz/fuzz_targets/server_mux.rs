//! A server-side multiplexer fed arbitrary messages after a v1 handshake, with an application
//! that accepts every stream, reads from it, echoes it, and closes some of them. Nothing may
//! panic or hang: the run ends when the input runs out and the transport closes.
//!
//! Input: a sequence of `length: u8 | message` records (a short last record takes what is left).
#![no_main]

use bytes::Bytes;
use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;
use futures::{SinkExt, StreamExt};
use libfuzzer_sys::fuzz_target;
use wisp_core::ws::memory::duplex;
use wisp_core::{CloseReason, MuxOptions, ServerMux};

fn messages(mut data: &[u8]) -> Vec<Bytes> {
    let mut out = Vec::new();
    while let Some((&len, rest)) = data.split_first() {
        let len = (len as usize).min(rest.len());
        out.push(Bytes::copy_from_slice(&rest[..len]));
        data = &rest[len..];
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let msgs = messages(data);
    let ((s_rx, s_tx), (c_rx, mut c_tx)) = duplex(msgs.len() + 4);
    let mut pool = LocalPool::new();
    let spawner = pool.spawner();
    spawner
        .spawn_local(async move {
            // Keep the client's read half open and drained so the server never blocks on it.
            let mut c_rx = c_rx;
            while c_rx.next().await.is_some() {}
        })
        .unwrap();
    let inner = spawner.clone();
    spawner
        .spawn_local(async move {
            let opts = MuxOptions {
                buffer_size: 4,
                max_streams: 8,
                ..MuxOptions::default()
            };
            let Ok(result) = ServerMux::new_with_options(s_rx, s_tx, opts, None).await else {
                return;
            };
            let (mux, actor) = result.with_no_required_extensions();
            inner.spawn_local(async move { let _ = actor.await; }).unwrap();
            let mut n = 0u32;
            while let Some((_connect, stream)) = mux.wait_for_stream().await {
                n += 1;
                let close_early = n % 3 == 0;
                inner
                    .spawn_local(async move {
                        let (mut rx, mut tx) = stream.into_split();
                        if close_early {
                            let _ = tx.close(CloseReason::ServerStreamConnectionRefused).await;
                            return;
                        }
                        while let Some(Ok(chunk)) = rx.next().await {
                            if tx.send(chunk).await.is_err() {
                                break;
                            }
                        }
                    })
                    .unwrap();
            }
        })
        .unwrap();
    spawner
        .spawn_local(async move {
            for m in msgs {
                if c_tx.send(m).await.is_err() {
                    return;
                }
            }
            // Dropping the client's write half closes the transport.
        })
        .unwrap();
    pool.run_until_stalled();
});
