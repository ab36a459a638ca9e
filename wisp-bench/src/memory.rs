//! Memory of our server: RSS with `count` idle connections (handshake done, no streams) and
//! with `count` streams open to the echo target (each has echoed one small write), per
//! connection and per stream, measured as differences from the figure before.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde::Serialize;
use wisp_core::StreamType;

use crate::procs;
use crate::procstat::rss;
use crate::report::{self, num, Table};

/// Streams per connection in the stream phase.
const STREAMS_PER_CONNECTION: usize = 100;

#[derive(Serialize)]
struct Line {
    kind: &'static str,
    what: &'static str,
    count: usize,
    rss_before_kib: u64,
    rss_after_kib: u64,
    per_item_kib: f64,
}

/// Runs the memory measurement against a fresh server started from `bin`.
pub async fn run(bin: &Path, count: usize) -> Result<(), String> {
    let bin = std::fs::canonicalize(bin).map_err(|e| format!("{}: {e}", bin.display()))?;
    let echo = procs::helper(&["target", "echo"], "echo target").await?;
    // The defaults (1024 connections, 16 per IP, 128 streams per connection) would refuse
    // this run from one address; raise them for it.
    let server = procs::our_server(
        &bin,
        &format!(
            "max_streams_per_connection = {}\n",
            STREAMS_PER_CONNECTION.max(128)
        ),
    )
    .await?;
    let pid = server.pid().ok_or("wisp-server exited")?;
    let settle = || tokio::time::sleep(Duration::from_millis(1500));

    settle().await;
    let base = rss(pid);
    eprint!("\r\x1b[Kmemory: opening {count} idle connections");
    let mut muxes = Vec::with_capacity(count);
    let mut actors = tokio::task::JoinSet::new();
    // A few at a time, as many clients arriving together would.
    for batch in (0..count).collect::<Vec<_>>().chunks(50) {
        let conns =
            futures::future::join_all(batch.iter().map(|_| crate::client::connect(&server.url)))
                .await;
        for c in conns {
            let (mux, actor) = c.map_err(|e| format!("connect: {e}"))?;
            actors.spawn(actor);
            muxes.push(Arc::new(mux));
        }
    }
    settle().await;
    let idle = rss(pid);

    let streams_wanted = count;
    let conns_needed = streams_wanted.div_ceil(STREAMS_PER_CONNECTION);
    eprint!("\r\x1b[Kmemory: opening {streams_wanted} streams on {conns_needed} of them");
    let payload = Bytes::from_static(&[7u8; 64]);
    let mut streams = Vec::with_capacity(streams_wanted);
    for i in 0..streams_wanted {
        let mux = &muxes[i / STREAMS_PER_CONNECTION];
        let mut s = mux
            .new_stream(
                StreamType::Tcp,
                echo.addr().ip().to_string(),
                echo.addr().port(),
            )
            .await
            .map_err(|e| format!("stream {i}: {e}"))?;
        s.send(payload.clone())
            .await
            .map_err(|e| format!("stream {i}: {e}"))?;
        match tokio::time::timeout(Duration::from_secs(10), s.next()).await {
            Ok(Some(Ok(_))) => {}
            _ => return Err(format!("stream {i}: no echo")),
        }
        streams.push(s);
    }
    settle().await;
    let with_streams = rss(pid);
    eprint!("\r\x1b[K");

    let kib = |b: u64| b / 1024;
    let per_conn = (idle as f64 - base as f64) / count as f64 / 1024.0;
    let per_stream = (with_streams as f64 - idle as f64) / streams_wanted as f64 / 1024.0;
    report::record(&Line {
        kind: "memory",
        what: "idle connection",
        count,
        rss_before_kib: kib(base),
        rss_after_kib: kib(idle),
        per_item_kib: per_conn,
    });
    report::record(&Line {
        kind: "memory",
        what: "open stream",
        count: streams_wanted,
        rss_before_kib: kib(idle),
        rss_after_kib: kib(with_streams),
        per_item_kib: per_stream,
    });
    println!("### Memory of wisp-server (ours): RSS differences\n");
    let mut t = Table::new(&["state", "server RSS MiB", "added", "per item KiB"]);
    let mib = |b: u64| Some(b as f64 / (1024.0 * 1024.0));
    t.row(vec![
        "started, no clients".into(),
        num(mib(base)),
        "–".into(),
        "–".into(),
    ]);
    t.row(vec![
        format!("{count} idle connections"),
        num(mib(idle)),
        format!("{count} connections"),
        num(Some(per_conn)),
    ]);
    t.row(vec![
        format!("+ {streams_wanted} open TCP streams ({STREAMS_PER_CONNECTION} per connection)"),
        num(mib(with_streams)),
        format!("{streams_wanted} streams"),
        num(Some(per_stream)),
    ]);
    t.print();
    drop(streams);
    drop(muxes);
    actors.shutdown().await;
    Ok(())
}
