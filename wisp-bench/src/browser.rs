//! Browser clients in headless Chromium against our server: our wasm client, the wisp-js
//! browser client, the epoxy-tls wasm client (the 2.x prerelease over raw TCP streams; 1.5, which
//! has no raw TCP stream, through its WebSocket-in-Wisp path), and the browser's own ceiling (a
//! plain WebSocket carrying 60 KiB binary messages from and to this process), each downloading
//! from a source target and uploading to a sink target for a fixed time. One Chromium per case,
//! so its CPU is the case's alone.
//!
//! The page (`bench/browser/`) reports over HTTP to this process: `POST /mark` when the
//! measured window starts and `POST /report` with its figure when it ends, or at once with
//! `unsupported` when the client cannot do the case.

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
    /// The epoxy-tls 1.5 package (npm `latest`; its `pkg` directory is served).
    #[arg(long, default_value = "interop/node_modules/epoxy-tls-1")]
    epoxy1: PathBuf,
    /// The epoxy-tls 2.x prerelease package (its `full` directory is served).
    #[arg(long, default_value = "interop/node_modules/epoxy-tls-2")]
    epoxy2: PathBuf,
    /// Chromium.
    #[arg(long, default_value = "chromium")]
    chromium: PathBuf,
    /// Seconds before measuring.
    #[arg(long, default_value_t = 1.5)]
    warmup: f64,
    /// Seconds measured per case.
    #[arg(long, default_value_t = 4.0)]
    duration: f64,
    /// Only these clients (comma-separated keys: ceiling, ceiling-relay, ours, wisp-js, epoxy2,
    /// epoxy1, epoxy1-ws); all by default.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
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
    unsupported: Option<String>,
    error: Option<String>,
}

struct Client {
    /// The page's `client=` key.
    key: &'static str,
    name: String,
    /// Marks the row for the note under the table.
    mark: &'static str,
}

const CASES: [(&str, usize, &str); 3] = [
    ("down", 1, "download, 1 stream"),
    ("down", 10, "download, 10 streams"),
    ("up", 1, "upload, 1 stream"),
];

/// What one client did in one case.
enum Outcome {
    Figure(f64),
    Unsupported(String),
    Failed,
}

/// The `version` field of the package.json in `dir`.
fn package_version(dir: &Path) -> Result<String, String> {
    let path = dir.join("package.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    json["version"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{}: no version", path.display()))
}

/// Runs every client in every case and prints the table.
pub async fn run(a: BrowserArgs) -> Result<(), String> {
    let abs = |p: &Path| std::fs::canonicalize(p).map_err(|e| format!("{}: {e}", p.display()));
    let epoxy1 = abs(&a.epoxy1)?;
    let epoxy2 = abs(&a.epoxy2)?;
    let v1 = package_version(&epoxy1)?;
    let v2 = package_version(&epoxy2)?;
    let mut roots = HashMap::new();
    roots.insert("/pkg/", abs(&a.wasm_pkg)?);
    roots.insert("/wisp-js/", abs(&a.wisp_js_dist)?);
    roots.insert("/epoxy1/", epoxy1.join("pkg"));
    roots.insert("/epoxy2/", epoxy2.join("full"));
    roots.insert("/", abs(&a.site)?);
    let clients: Vec<Client> = [
        ("ceiling", "plain WebSocket (ceiling)".to_owned(), ""),
        (
            "ceiling-relay",
            "plain WebSocket through a TCP relay".to_owned(),
            " ⁴",
        ),
        ("ours", "wisp-wasm (ours)".to_owned(), ""),
        ("wisp-js", "wisp-js 0.5.0".to_owned(), ""),
        ("epoxy2", format!("epoxy-tls {v2}, connect_tcp"), " ²"),
        ("epoxy1", format!("epoxy-tls {v1}, raw TCP"), " ¹"),
        (
            "epoxy1-ws",
            format!("epoxy-tls {v1}, connect_ws (WebSocket inside Wisp)"),
            " ¹ ³",
        ),
    ]
    .into_iter()
    .filter(|c| a.only.is_empty() || a.only.iter().any(|o| o == c.0))
    .map(|(key, name, mark)| Client { key, name, mark })
    .collect();

    let source = procs::helper(&["target", "source"], "source target").await?;
    let sink = procs::helper(&["target", "sink"], "sink target").await?;
    let bin = abs(&a.server_bin)?;
    let server = procs::our_server(&bin, "").await?;
    let (tx, mut rx) = mpsc::channel(16);
    let http = spawn_http(Arc::new(roots), tx).await?;
    let ceiling = spawn_ceiling().await?;
    let relayed_ceiling = if clients.iter().any(|c| c.key == "ceiling-relay") {
        Some(procs::helper(&["relay", &ceiling.to_string()], "relay").await?)
    } else {
        None
    };

    let mut outcomes: HashMap<(&str, usize), Outcome> = HashMap::new();
    let mut cpu: HashMap<(&str, usize), f64> = HashMap::new();
    let mut details: Vec<String> = Vec::new();
    for (ci, (dir, streams, case)) in CASES.iter().enumerate() {
        for c in &clients {
            let client = c.key;
            if client.starts_with("ceiling") && *streams > 1 {
                continue; // one WebSocket is the ceiling of any number of streams over it
            }
            // A client that said it cannot do a case of this direction is not asked again.
            let earlier = CASES[..ci]
                .iter()
                .enumerate()
                .filter(|(_, e)| e.0 == *dir)
                .find_map(|(ei, _)| match outcomes.get(&(client, ei)) {
                    Some(Outcome::Unsupported(r)) => Some(r.clone()),
                    _ => None,
                });
            if let Some(reason) = earlier {
                record(c, case, None, None, Some(reason.clone()), None);
                outcomes.insert((client, ci), Outcome::Unsupported(reason));
                continue;
            }
            let wisp_url = &server.url;
            let ceiling = match &relayed_ceiling {
                Some(relay) if client == "ceiling-relay" => relay.addr(),
                _ => ceiling,
            };
            let url = format!(
                "http://{http}/?client={client}&dir={dir}&streams={streams}&ws={wisp_url}&ceiling=ws://{ceiling}/&source={}&sink={}&warmup={}&duration={}",
                source.addr().port(),
                sink.addr().port(),
                a.warmup,
                a.duration
            );
            eprint!("\r\x1b[Kbrowser: {}, {case}", c.name);
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
            let unsupported = value["unsupported"].as_str().map(str::to_owned);
            let error = if mib_s.is_none() && unsupported.is_none() {
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
                eprintln!("\rbrowser: {}, {case}: {e}", c.name);
            }
            if let Some(d) = value["detail"].as_str() {
                let d = format!("{}: {d}", c.name);
                if !details.contains(&d) {
                    details.push(d);
                }
            }
            let usage = usage.filter(|_| mib_s.is_some());
            record(
                c,
                case,
                mib_s,
                usage.as_ref().map(|u| u.cpu_pct),
                unsupported.clone(),
                error,
            );
            let o = match (mib_s, unsupported) {
                (Some(v), _) => Outcome::Figure(v),
                (None, Some(r)) => Outcome::Unsupported(r),
                (None, None) => Outcome::Failed,
            };
            outcomes.insert((client, ci), o);
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
    let figure = |client: &str, ci: usize| match outcomes.get(&(client, ci)) {
        Some(Outcome::Figure(v)) => Some(*v),
        _ => None,
    };
    for c in &clients {
        let client = c.key;
        let mut cells = vec![format!("{}{}", c.name, c.mark)];
        for (ci, (dir, _, _)) in CASES.iter().enumerate() {
            let v = figure(client, ci);
            let ceil_ci = CASES
                .iter()
                .position(|e| e.0 == *dir && e.1 == 1)
                .unwrap_or(0);
            let ceil = figure("ceiling", ceil_ci);
            let ours = figure("ours", ci);
            let mut notes = Vec::new();
            if client != "ceiling" && v.is_some() {
                notes.push(format!("{} of ceiling", ratio(v, ceil)));
            }
            if client != "ceiling" && client != "ours" && v.is_some() {
                notes.push(format!("ours {}", ratio(ours, v)));
            }
            if let Some(u) = cpu.get(&(client, ci)) {
                notes.push(format!("CPU {u:.0}%"));
            }
            let cell = if client.starts_with("ceiling") && ci == 1 {
                "(as 1 stream)".to_owned()
            } else if let Some(Outcome::Unsupported(r)) = outcomes.get(&(client, ci)) {
                format!("n/a: {r}")
            } else if let Some(Outcome::Failed) = outcomes.get(&(client, ci)) {
                "failed (see log)".to_owned()
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
    let marks: String = clients.iter().map(|c| c.mark).collect();
    let footnotes = [
        (
            '¹',
            format!("¹ epoxy-tls {v1} speaks only v1 and sends no `Sec-WebSocket-Protocol`; the default server answers such a browser client as a plain v1 server (on the legacy v2 order, INFO after CONTINUE, epoxy 1.5 ends its multiplexor)."),
        ),
        (
            '²',
            format!("² epoxy-tls {v2} with `wisp_v2 = true` offers a subprotocol, so the default server answers it in the draft-6 v2 order; `connect_tcp(\"tcp://127.0.0.1:PORT\")` gives a ReadableStream/WritableStream pair."),
        ),
        (
            '³',
            "³ Not the raw-TCP case: `connect_ws` opens a plain `ws://` WebSocket inside one Wisp TCP stream to the ceiling's WebSocket server (60 KiB messages), so epoxy also parses (download) or builds and masks (upload) WebSocket frames in wasm; \"ours\" is our client over raw TCP streams.".to_owned(),
        ),
        (
            '⁴',
            "⁴ The ceiling's WebSocket through the bench's plain TCP relay (a tokio copy loop in its own process; no WebSocket or Wisp parsing): the extra loopback hop and process that any proxy adds on this machine. Against this row, \"ours\" shows what Wisp itself costs.".to_owned(),
        ),
    ];
    for (mark, text) in footnotes {
        if marks.contains(mark) {
            println!("{text}\n");
        }
    }
    for d in &details {
        println!("- {d}");
    }
    if !details.is_empty() {
        println!();
    }
    Ok(())
}

fn record(
    c: &Client,
    case: &str,
    mib_s: Option<f64>,
    browser_cpu_pct: Option<f64>,
    unsupported: Option<String>,
    error: Option<String>,
) {
    report::record(&Line {
        kind: "browser",
        client: &c.name,
        case,
        mib_s,
        browser_cpu_pct,
        unsupported,
        error,
    });
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
