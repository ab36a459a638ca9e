//! Child processes: the servers under test and the bench's own helpers, each in its own
//! process group that is killed (the whole group) when the handle is dropped, so nothing
//! outlives a run, including workers a server forks.

use std::net::SocketAddr;
use std::path::{Path as FsPath, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a child may take to print where it listens.
const START_LIMIT: Duration = Duration::from_secs(30);

/// A running child process.
#[derive(Debug)]
pub struct Proc {
    child: Child,
    /// What it serves: a WebSocket URL or a `host:port`.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl Proc {
    /// The child's PID.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The address of a helper that printed `host:port`.
    pub fn addr(&self) -> SocketAddr {
        self.url.parse().expect("helpers print host:port")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new(program);
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .process_group(0);
    c
}

/// Starts `cmd` and waits for the first stdout line that `pick` accepts.
async fn start(
    mut cmd: Command,
    name: &str,
    pick: impl Fn(&str) -> Option<String>,
    dir: Option<tempfile::TempDir>,
) -> Result<Proc, String> {
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("{name}: cannot start: {e}"))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let found = tokio::time::timeout(START_LIMIT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(url) = pick(&line) {
                return Some(url);
            }
        }
        None
    })
    .await;
    let url = match found {
        Ok(Some(url)) => url,
        _ => return Err(format!("{name}: did not say where it listens")),
    };
    // Keep draining stdout so that a chatty child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Proc {
        child,
        url,
        _dir: dir,
    })
}

/// Headless Chromium on `url` with a fresh profile in `profile` (no sandbox: runs as root
/// here; nothing that would reach the network on its own).
pub fn chromium(bin: &FsPath, url: &str, profile: &FsPath) -> Result<Proc, String> {
    let mut c = command(bin);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .arg(url)
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    let child = c
        .spawn()
        .map_err(|e| format!("chromium: cannot start: {e}"))?;
    Ok(Proc {
        child,
        url: url.to_owned(),
        _dir: None,
    })
}

/// One of this binary's helper subcommands (`target`, `relay`), which print `host:port`.
pub async fn helper(args: &[&str], name: &str) -> Result<Proc, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut c = command(exe);
    c.args(args);
    start(c, name, |l| Some(l.trim().to_owned()), None).await
}

/// Our wisp-server, from `bin`, with loopback targets allowed and limits raised by `extra`
/// (TOML appended to the `[limits]` table).
pub async fn our_server(bin: &FsPath, extra_limits: &str) -> Result<Proc, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let config = dir.path().join("wisp.toml");
    let text = format!(
        "[server]\nbind = \"127.0.0.1:0\"\nlog_level = \"warn\"\n\n[policy]\nallow_loopback = true\n\n\
         [limits]\nmax_connections_per_ip = 4096\nmax_connections = 4096\n{extra_limits}\n"
    );
    std::fs::write(&config, text).map_err(|e| e.to_string())?;
    let mut c = command(bin);
    // The log line that tells the port is at info level (on stdout); everything else stays at warn so
    // that per-stream log lines do not weigh on the figures.
    c.arg("--config")
        .arg(&config)
        .env("RUST_LOG", "warn,wisp_server::server=info")
        .env("NO_COLOR", "1");
    let mut child = c
        .spawn()
        .map_err(|e| format!("wisp-server: cannot start: {e}"))?;
    // tracing's formatter writes to stdout.
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let found = tokio::time::timeout(START_LIMIT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            let line = strip_ansi(&line);
            if let Some(i) = line.find("addr=") {
                let addr: String = line[i + 5..]
                    .chars()
                    .take_while(|c| !c.is_whitespace())
                    .collect();
                return Some(addr);
            }
        }
        None
    })
    .await;
    let Ok(Some(addr)) = found else {
        return Err("wisp-server: did not log its address".into());
    };
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("WARN") || line.contains("ERROR") {
                eprintln!("[wisp-server] {line}");
            }
        }
    });
    Ok(Proc {
        child,
        url: format!("ws://{addr}/"),
        _dir: Some(dir),
    })
}

/// `line` without terminal colour sequences (`ESC [ … letter`), which tracing may emit.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The peers installed under `interop` (see `scripts/setup.sh`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Peer {
    /// npm `@mercuryworkshop/wisp-js` server.
    Js,
    /// npm `wisp-server-node`.
    ServerNode,
    /// PyPI `wisp-python`.
    Python,
}

impl Peer {
    /// Its name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::Js => "wisp-js",
            Self::ServerNode => "wisp-server-node",
            Self::Python => "wisp-python",
        }
    }
}

/// Starts a peer server from the interop directory.
pub async fn peer(peer: Peer, interop: &FsPath) -> Result<Proc, String> {
    let ws = |l: &str| l.starts_with("ws://").then(|| l.trim().to_owned());
    match peer {
        Peer::Js | Peer::ServerNode => {
            let script = if peer == Peer::Js {
                "wisp-js-server.mjs"
            } else {
                "wisp-server-node.cjs"
            };
            let mut c = command("node");
            c.arg(interop.join("peers").join(script))
                .current_dir(interop);
            start(c, peer.name(), ws, None).await
        }
        Peer::Python => {
            // The Python server takes a fixed port: borrow a free one from the kernel.
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| e.to_string())?
                .port();
            let python: PathBuf = interop.join(".venv").join("bin").join("python");
            let mut c = command(python);
            c.args(["-m", "wisp.server", "--host", "127.0.0.1", "--port"])
                .arg(port.to_string())
                .args(["--allow-loopback", "--allow-private", "--threads", "1"])
                .args(["--log-level", "error"])
                .stdout(Stdio::null());
            let child = c
                .spawn()
                .map_err(|e| format!("wisp-python: cannot start: {e}"))?;
            tokio::time::timeout(START_LIMIT, async {
                while tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_err()
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
            .await
            .map_err(|_| "wisp-python: did not start in time".to_owned())?;
            Ok(Proc {
                child,
                url: format!("ws://127.0.0.1:{port}/"),
                _dir: None,
            })
        }
    }
}

/// Runs the wisp-js client from node (`bench/wisp-js-client.mjs`) as the load and returns the
/// JSON line it prints.
pub async fn node_client(
    script: &FsPath,
    interop: &FsPath,
    args: &[String],
    limit: Duration,
) -> Result<serde_json::Value, String> {
    let mut c = command("node");
    c.arg(script).args(args).env("WISP_JS_DIR", interop);
    let child = c.spawn().map_err(|e| format!("node: {e}"))?;
    let out = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .map_err(|_| "wisp-js client: timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().rfind(|l| l.starts_with('{')).ok_or_else(|| {
        format!(
            "wisp-js client printed no result (exit {:?})",
            out.status.code()
        )
    })?;
    serde_json::from_str(line).map_err(|e| e.to_string())
}
