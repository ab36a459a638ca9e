//! The real `wisp-server` binary as a child process, for tests that need its own memory figures,
//! signals or several servers. It is killed when dropped, so no test leaves one behind.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use wisp_server::Config;

pub struct Binary {
    pub child: Child,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Binary {
    /// Starts the binary with `config` (its `server.bind` should have port 0) and waits for the
    /// address it logs.
    pub fn start(config: &Config) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wisp.toml");
        std::fs::write(&path, toml::to_string(config).unwrap()).unwrap();
        Self::start_file(&path, dir)
    }

    fn start_file(path: &Path, dir: tempfile::TempDir) -> Self {
        // Logs go to stdout and start-up errors to stderr: read both as one stream. `exec`
        // keeps the PID, so signals reach the server itself.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("exec \"$0\" --config \"$1\" 2>&1")
            .arg(env!("CARGO_BIN_EXE_wisp-server"))
            .arg(path)
            .env("RUST_LOG", "warn,wisp_server::server=info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the binary starts");
        let stderr = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        // Keep draining stderr for the life of the child, so that logging never blocks it.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(t) = &tx {
                    if let Some(addr) = listening_addr(&line) {
                        let _ = t.send(Ok(addr));
                        tx = None;
                    } else if line.starts_with("wisp-server:") {
                        let _ = t.send(Err(line));
                        tx = None;
                    }
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(a)) => a,
            Ok(Err(line)) => {
                let _ = child.kill();
                panic!("the binary refused to start: {line}");
            }
            Err(_) => {
                let _ = child.kill();
                panic!("the binary never logged its address");
            }
        };
        Self {
            child,
            addr,
            _dir: dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory now, in KiB.
    pub fn rss_kib(&self) -> u64 {
        super::bystander::proc_status_kib(&self.pid().to_string(), "VmRSS:")
    }

    /// Peak resident memory, in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        super::bystander::proc_status_kib(&self.pid().to_string(), "VmHWM:")
    }

    /// Sends `signal` (e.g. "TERM") with kill(1).
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{signal}");
    }

    /// Waits for the process to exit, at most `limit`; returns its exit status.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address in the `listening` log line (`... listening addr=127.0.0.1:1234 ...`).
fn listening_addr(line: &str) -> Option<SocketAddr> {
    if !line.contains("listening") || line.contains("unix socket") {
        return None;
    }
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("addr="))
        .and_then(|a| a.parse().ok())
}

/// A config for the binary: 127.0.0.1 port 0, loopback targets allowed.
pub fn binary_config() -> Config {
    super::local_config()
}
