//! Browser clients in headless Chromium against our server: our wasm client, the wisp-js
//! browser client, and the browser's own ceiling (a plain WebSocket carrying 60 KiB binary
//! messages from and to this process), each downloading from a source target and uploading to
//! a sink target for a fixed time. One Chromium per case, so its CPU is the case's alone.
//!
//! The page (`bench/browser/`) reports over HTTP to this process: `POST /mark` when the
//! measured window starts and `POST /report` with its figure when it ends.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::procs;
use crate::procstat::Watch;
use crate::report::{self, num, ratio, Table};

/// Arguments of `wisp-bench browser`.
#[derive(clap::Args, Debug)]
pub struct BrowserArgs {
    /// Our server's binary.
    #[arg(long)]
    server_bin: PathBuf,
    /// The page (index.html, bench.mjs).
    #[arg(long, default_value = "bench/browser")]
    site: PathBuf,
    /// Our wasm client, built with `wasm-pack build --target web`.
    #[arg(long)]
    wasm_pkg: PathBuf,
    /// The wisp-js package's `dist` directory.
    #[arg(
        long,
        default_value = "interop/node_modules/@mercuryworkshop/wisp-js/dist"
    )]
    wisp_js_dist: PathBuf,
    /// Chromium.
    #[arg(long, default_value = "chromium")]
    chromium: PathBuf,
    /// Seconds before measuring.
    #[arg(long, default_value_t = 1.5)]
    warmup: f64,
    /// Seconds measured per case.
    #[arg(long, default_value_t = 4.0)]
    duration: f64,
}

enum Event {
    Mark,
    Report(serde_json::Value),
}

#[derive(Serialize)]
struct Line<'a> {
    kind: &'static str,
    client: &'a str,
    case: &'a str,
    mib_s: Option<f64>,
    browser_cpu_pct: Option<f64>,
    error: Option<String>,
}

const CLIENTS: [(&str, &str); 3] = [
    ("ceiling", "plain WebSocket (ceiling)"),
    ("ours", "wisp-wasm (ours)"),
    ("wisp-js", "wisp-js 0.5.0"),
];
const CASES: [(&str, usize, &str); 3] = [
    ("down", 1, "download, 1 stream"),
    ("down", 10, "download, 10 streams"),
    ("up", 1, "upload, 1 stream"),
];

/// Runs every client in every case and prints the table.
pub async fn run(a: BrowserArgs) -> Result<(), String> {
    let abs = |p: &Path| std::fs::canonicalize(p).map_err(|e| format!("{}: {e}", p.display()));
    let mut roots = HashMap::new();
    roots.insert("/pkg/", abs(&a.wasm_pkg)?);
    roots.insert("/wisp-js/", abs(&a.wisp_js_dist)?);
    roots.insert("/", abs(&a.site)?);
    let source = procs::helper(&["target", "source"], "source target").await?;
    let sink = procs::helper(&["target", "sink"], "sink target").await?;
    let server = procs::our_server(&abs(&a.server_bin)?, "").await?;
    let (tx, mut rx) = mpsc::channel(16);
    let http = spawn_http(Arc::new(roots), tx).await?;
    let ceiling = spawn_ceiling().await?;

    let mut figures: HashMap<(&str, usize), f64> = HashMap::new();
    let mut cpu: HashMap<(&str, usize), f64> = HashMap::new();
    for (ci, (dir, streams, case)) in CASES.iter().enumerate() {
        for (client, name) in CLIENTS {
            if client == "ceiling" && *streams > 1 {
                continue; // one WebSocket is the ceiling of any number of streams over it
            }
            let url = format!(
                "http://{http}/?client={client}&dir={dir}&streams={streams}&ws={}&ceiling=ws://{ceiling}/&source={}&sink={}&warmup={}&duration={}",
                server.url,
                source.addr().port(),
                sink.addr().port(),
                a.warmup,
                a.duration
            );
            eprint!("\r\x1b[Kbrowser: {name}, {case}");
            let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
            let browser = procs::chromium(&a.chromium, &url, profile.path())?;
            let pid = browser.pid();
            let limit = Duration::from_secs_f64(a.warmup + a.duration + 30.0);
            let outcome = tokio::time::timeout(limit, async {
                let mut watch = None;
                loop {
                    match rx.recv().await {
                        Some(Event::Mark) => watch = pid.map(Watch::start),
                        Some(Event::Report(v)) => return (v, watch.map(Watch::finish)),
                        None => return (serde_json::Value::Null, None),
                    }
                }
            })
            .await;
            drop(browser);
            let (value, usage) = outcome.unwrap_or((serde_json::Value::Null, None));
            let mib_s = value["mib_s"].as_f64().filter(|_| value["ok"] == true);
            let error = if mib_s.is_none() {
                Some(
                    value["error"]
                        .as_str()
                        .unwrap_or("no report in time")
                        .to_owned(),
                )
            } else {
                None
            };
            if let Some(e) = &error {
                eprintln!("\rbrowser: {name}, {case}: {e}");
            }
            report::record(&Line {
                kind: "browser",
                client: name,
                case,
                mib_s,
                browser_cpu_pct: usage.map(|u| u.cpu_pct),
                error,
            });
            if let Some(v) = mib_s {
                figures.insert((client, ci), v);
            }
            if let Some(u) = usage {
                cpu.insert((client, ci), u.cpu_pct);
            }
            // Drain a late event of this case so that it is not taken for the next one's.
            tokio::time::sleep(Duration::from_millis(300)).await;
            while rx.try_recv().is_ok() {}
        }
    }
    eprint!("\r\x1b[K");

    println!(
        "### Browser clients in headless Chromium through wisp-server (ours), MiB/s ({:.0} s after {:.1} s warm-up; browser CPU in % of one core)\n",
        a.duration, a.warmup
    );
    let mut head = vec!["client".to_owned()];
    head.extend(CASES.iter().map(|c| c.2.to_owned()));
    let head_ref: Vec<&str> = head.iter().map(String::as_str).collect();
    let mut t = Table::new(&head_ref);
    for (client, name) in CLIENTS {
        let mut cells = vec![name.to_owned()];
        for (ci, (dir, _, _)) in CASES.iter().enumerate() {
            let v = figures.get(&(client, ci)).copied();
            let ceil_ci = CASES
                .iter()
                .position(|c| c.0 == *dir && c.1 == 1)
                .unwrap_or(0);
            let ceil = figures.get(&("ceiling", ceil_ci)).copied();
            let ours = figures.get(&("ours", ci)).copied();
            let mut notes = Vec::new();
            if client != "ceiling" && v.is_some() {
                notes.push(format!("{} of ceiling", ratio(v, ceil)));
            }
            if client == "wisp-js" && v.is_some() {
                notes.push(format!("ours {}", ratio(ours, v)));
            }
            if let Some(c) = cpu.get(&(client, ci)) {
                notes.push(format!("CPU {c:.0}%"));
            }
            let cell = if client == "ceiling" && ci == 1 {
                "(as 1 stream)".to_owned()
            } else if notes.is_empty() {
                num(v)
            } else {
                format!("{} ({})", num(v), notes.join(", "))
            };
            cells.push(cell);
        }
        t.row(cells);
    }
    t.print();
    Ok(())
}

/// The page's HTTP server: static files from `roots` (longest prefix first) and the two
/// report endpoints.
async fn spawn_http(
    roots: Arc<HashMap<&'static str, PathBuf>>,
    tx: mpsc::Sender<Event>,
) -> Result<std::net::SocketAddr, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(serve_http(sock, roots.clone(), tx.clone()));
        }
    });
    Ok(addr)
}

async fn serve_http(
    mut sock: TcpStream,
    roots: Arc<HashMap<&'static str, PathBuf>>,
    tx: mpsc::Sender<Event>,
) {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    loop {
        let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n");
        if let Some(end) = head_end {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let mut parts = head.split_whitespace();
            let method = parts.next().unwrap_or("").to_owned();
            let target = parts.next().unwrap_or("/").to_owned();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                match sock.read(&mut tmp).await {
                    Ok(n @ 1..) => buf.extend_from_slice(&tmp[..n]),
                    _ => return,
                }
            }
            let body = buf[end + 4..end + 4 + len].to_vec();
            buf.drain(..end + 4 + len);
            let path = target.split('?').next().unwrap_or("/").to_owned();
            let (status, ctype, content) = if method == "POST" {
                let event = if path == "/mark" {
                    Event::Mark
                } else {
                    Event::Report(serde_json::from_slice(&body).unwrap_or_default())
                };
                let _ = tx.send(event).await;
                ("200 OK", "text/plain", b"ok".to_vec())
            } else {
                file(&roots, &path)
            };
            let head = format!(
                "HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\ncache-control: no-store\r\n\r\n",
                content.len()
            );
            if sock.write_all(head.as_bytes()).await.is_err()
                || sock.write_all(&content).await.is_err()
            {
                return;
            }
            continue;
        }
        match sock.read(&mut tmp).await {
            Ok(n @ 1..) => buf.extend_from_slice(&tmp[..n]),
            _ => return,
        }
    }
}

fn file(
    roots: &HashMap<&'static str, PathBuf>,
    path: &str,
) -> (&'static str, &'static str, Vec<u8>) {
    let not_found = ("404 Not Found", "text/plain", b"not found".to_vec());
    let mut prefixes: Vec<&&str> = roots.keys().collect();
    prefixes.sort_by_key(|p| std::cmp::Reverse(p.len()));
    let Some(prefix) = prefixes.into_iter().find(|p| path.starts_with(**p)) else {
        return not_found;
    };
    let rel = &path[prefix.len()..];
    let rel = if rel.is_empty() { "index.html" } else { rel };
    if rel.split('/').any(|c| c == ".." || c.is_empty()) {
        return not_found;
    }
    let ctype = match rel.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript",
        Some("wasm") => "application/wasm",
        Some("json" | "map") => "application/json",
        _ => "application/octet-stream",
    };
    match std::fs::read(roots[*prefix].join(rel)) {
        Ok(bytes) => ("200 OK", ctype, bytes),
        Err(_) => not_found,
    }
}

/// The ceiling: a WebSocket that streams 60 KiB binary messages to `/down` and discards what
/// `/up` sends.
async fn spawn_ceiling() -> Result<std::net::SocketAddr, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let message = Bytes::from(vec![0x42u8; 60 * 1024]);
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let _ = sock.set_nodelay(true);
            let message = message.clone();
            tokio::spawn(async move {
                let Ok((req, mut ws)) = tokio_websockets::ServerBuilder::new()
                    .limits(tokio_websockets::Limits::default().max_payload_len(Some(1 << 20)))
                    .accept(sock)
                    .await
                else {
                    return;
                };
                if req.uri().path().ends_with("up") {
                    while let Some(Ok(_)) = ws.next().await {}
                } else {
                    loop {
                        for _ in 0..15 {
                            if ws
                                .feed(tokio_websockets::Message::binary(message.clone()))
                                .await
                                .is_err()
                            {
                                return;
                            }
                        }
                        if ws
                            .send(tokio_websockets::Message::binary(message.clone()))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            });
        }
    });
    Ok(addr)
}
