//! Harness for the interop tests: starts the published Wisp implementations as child processes
//! on loopback, runs echo targets, and connects our native client.
//!
//! The peers are installed at exact versions by `scripts/setup.sh`: the npm packages into
//! `interop/node_modules`, the PyPI `wisp-python` server into `interop/.venv`.

use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::task::AtomicWaker;
use futures::Stream;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::process::{Child, Command};
use wisp_core::ws::{TokioWebsocketsTransport, TokioWebsocketsWrite, TransportExt};
use wisp_core::{ClientMux, MultiplexorActorFuture, WispError, WispV2Handshake};

/// How long a peer may take to start.
const START_LIMIT: Duration = Duration::from_secs(30);

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
        }
    }
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A peer server running as a child process in its own process group; the whole group is
/// killed when this is dropped (the Python server forks workers that outlive their parent).
pub struct Peer {
    child: Child,
    /// The WebSocket URL to connect to.
    pub url: String,
    /// The peer's name and version, for messages and the compatibility table.
    pub name: &'static str,
}

async fn first_line(child: &mut Child) -> String {
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    tokio::time::timeout(START_LIMIT, lines.next_line())
        .await
        .expect("the peer did not start in time")
        .expect("reading the peer's stdout")
        .expect("the peer exited before printing its URL")
}

async fn node_peer(script: &str, args: &[&str], name: &'static str) -> Peer {
    let mut child = Command::new("node")
        .arg(dir().join("peers").join(script))
        .args(args)
        .current_dir(dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .process_group(0)
        .spawn()
        .expect("node must be installed");
    let url = first_line(&mut child).await;
    Peer { child, url, name }
}

impl Peer {
    /// The wisp-js server (npm `@mercuryworkshop/wisp-js` 0.5.0), speaking v1 or v2.
    pub async fn wisp_js(version: u8, motd: Option<&str>) -> Peer {
        let version = version.to_string();
        let mut args = vec![version.as_str()];
        args.extend(motd);
        node_peer("wisp-js-server.mjs", &args, "wisp-js 0.5.0").await
    }

    /// wisp-server-node (npm `wisp-server-node` 1.1.8).
    pub async fn wisp_server_node() -> Peer {
        node_peer("wisp-server-node.cjs", &[], "wisp-server-node 1.1.8").await
    }

    /// The Python server (PyPI `wisp-python` 0.9.0), allowing loopback targets.
    pub async fn wisp_python() -> Peer {
        // The Python server takes a fixed port: borrow a free one from the kernel.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let python = dir().join(".venv").join("bin").join("python");
        let child = Command::new(python)
            .args(["-m", "wisp.server", "--host", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .args(["--allow-loopback", "--allow-private", "--threads", "1"])
            .args(["--log-level", "error"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .process_group(0)
            .spawn()
            .expect("interop/.venv must exist (scripts/setup.sh creates it)");
        tokio::time::timeout(START_LIMIT, async {
            while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .expect("wisp-python did not start in time");
        Peer {
            child,
            url: format!("ws://127.0.0.1:{port}/"),
            name: "wisp-python 0.9.0",
        }
    }
}

/// Our client's write half over tokio-websockets.
pub type Tx = TokioWebsocketsWrite<tokio_websockets::MaybeTlsStream<TcpStream>>;
/// Our client's actor over tokio-websockets.
pub type Actor = MultiplexorActorFuture<
    wisp_core::ws::TokioWebsocketsRead<tokio_websockets::MaybeTlsStream<TcpStream>>,
    Tx,
>;

/// Connects our native client. With `v2` given, offers the `Sec-WebSocket-Protocol` header so
/// that a v2 server uses the draft-6 order.
pub async fn connect(url: &str, v2: Option<WispV2Handshake>) -> Result<ClientMux<Tx>, WispError> {
    let mut builder = tokio_websockets::ClientBuilder::new()
        .uri(url)
        .map_err(WispError::ws)?;
    if v2.is_some() {
        builder = builder
            .add_header(
                http::header::SEC_WEBSOCKET_PROTOCOL,
                http::HeaderValue::from_static("wisp-v2"),
            )
            .map_err(WispError::ws)?;
    }
    let (ws, _) = builder.connect().await.map_err(WispError::ws)?;
    let (rx, tx) = TokioWebsocketsTransport(ws).split_fast();
    let (mux, actor) = ClientMux::new(rx, tx, v2)
        .await?
        .with_no_required_extensions();
    tokio::spawn(actor);
    Ok(mux)
}

/// Connects our native client (v1) with a [`ReadGate`] on its read half, so that a test can make
/// the peer's socket back up: while the gate is shut our side reads nothing from the WebSocket.
pub async fn connect_gated(url: &str) -> Result<(ClientMux<Tx>, ReadGate), WispError> {
    let (ws, _) = tokio_websockets::ClientBuilder::new()
        .uri(url)
        .map_err(WispError::ws)?
        .connect()
        .await
        .map_err(WispError::ws)?;
    let (rx, tx) = TokioWebsocketsTransport(ws).split_fast();
    let gate = ReadGate::default();
    let rx = Gated {
        inner: rx,
        gate: gate.clone(),
    };
    let (mux, actor) = ClientMux::new(rx, tx, None)
        .await?
        .with_no_required_extensions();
    tokio::spawn(actor);
    Ok((mux, gate))
}

/// Opens and shuts a transport's read half (see [`connect_gated`]).
#[derive(Clone, Default)]
pub struct ReadGate(Arc<GateState>);

#[derive(Default)]
struct GateState {
    shut: AtomicBool,
    waker: AtomicWaker,
}

impl ReadGate {
    /// From now on the read half returns `Pending` without reading.
    pub fn shut(&self) {
        self.0.shut.store(true, Ordering::SeqCst);
    }

    /// Lets the read half read again.
    pub fn open(&self) {
        self.0.shut.store(false, Ordering::SeqCst);
        self.0.waker.wake();
    }
}

struct Gated<R> {
    inner: R,
    gate: ReadGate,
}

impl<R: Stream + Unpin> Stream for Gated<R> {
    type Item = R::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<R::Item>> {
        let state = &self.gate.0;
        if state.shut.load(Ordering::SeqCst) {
            state.waker.register(cx.waker());
            // Opened between the check and the registration: read now.
            if state.shut.load(Ordering::SeqCst) {
                return Poll::Pending;
            }
        }
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

/// A TCP echo target on 127.0.0.1; returns its port.
pub async fn tcp_echo() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0; 65536];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

/// A UDP echo target on 127.0.0.1; returns its port.
pub async fn udp_echo() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = socket.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut buf = vec![0; 65536];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let _ = socket.send_to(&buf[..n], from).await;
        }
    });
    port
}

/// A loopback port with nothing listening on it.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Deterministic test data.
pub fn pattern(seed: u32, len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) ^ seed.wrapping_mul(40_503)) as u8)
        .collect()
}

/// Records one check's outcome for the compatibility table: writes
/// `interop/results/rust-<test>.json` when dropped, as a failure if the test is panicking.
pub struct Record {
    pub client: &'static str,
    pub client_version: &'static str,
    pub server: &'static str,
    pub server_version: &'static str,
    pub feature: &'static str,
    pub test: &'static str,
    /// What passed, for the table.
    pub detail: String,
    /// For a check that documents a defect of the peer: the defect, for the table.
    pub peer_bug: Option<&'static str>,
}

impl Drop for Record {
    fn drop(&mut self) {
        let ok = !std::thread::panicking();
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let detail = if ok {
            self.detail.clone()
        } else {
            format!("test {} failed", self.test)
        };
        let json = format!(
            "{{\"generated\":\"{}\",\"source\":\"cargo test -p wisp-interop ({})\",\"entries\":[{{\"client\":\"{}\",\"clientVersion\":\"{}\",\"server\":\"{}\",\"serverVersion\":\"{}\",\"runtime\":\"native (tokio)\",\"feature\":\"{}\",\"ok\":{},\"detail\":\"{}\"{}}}]}}\n",
            now_rfc3339(),
            esc(self.test),
            esc(self.client),
            esc(self.client_version),
            esc(self.server),
            esc(self.server_version),
            esc(self.feature),
            ok,
            esc(&detail),
            self.peer_bug
                .map(|bug| format!(",\"peerBug\":\"{}\"", esc(bug)))
                .unwrap_or_default(),
        );
        let dir = dir().join("results");
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(dir.join(format!("rust-{}.json", self.test)), json);
    }
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SSZ` (civil-from-days, no date crate needed).
fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
