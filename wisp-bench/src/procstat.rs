//! CPU time and resident memory of a process and its descendants, read from `/proc`.
//!
//! A server may fork workers (the Python peer does), so every figure covers the whole tree
//! rooted at the given PID as it is at the moment of reading.

use std::fs;
use std::time::{Duration, Instant};

/// Clock ticks per second of `utime`/`stime` in `/proc/PID/stat`; 100 on every Linux build
/// this runs on (USER_HZ), which is fixed by the kernel ABI.
const TICKS_PER_SEC: f64 = 100.0;

/// The PIDs of `root` and all its descendants.
pub fn tree(root: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(dir) = fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(ppid) = stat_fields(pid).and_then(|f| f.get(1).and_then(|s| s.parse().ok()))
            {
                parents.push((pid, ppid));
            }
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    out
}

/// The fields of `/proc/PID/stat` after the command name: index 0 is the state, 1 the parent.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// CPU seconds (user + system) used so far by one process.
fn cpu_secs(pid: u32) -> f64 {
    stat_fields(pid)
        .and_then(|f| {
            let u: f64 = f.get(11)?.parse().ok()?;
            let s: f64 = f.get(12)?.parse().ok()?;
            Some((u + s) / TICKS_PER_SEC)
        })
        .unwrap_or(0.0)
}

/// A `kB` line of `/proc/PID/status`, in bytes.
fn status_kb(pid: u32, key: &str) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Resident memory of the tree now, in bytes.
pub fn rss(root: u32) -> u64 {
    tree(root).into_iter().map(|p| status_kb(p, "VmRSS:")).sum()
}

/// CPU seconds of the tree so far.
pub fn tree_cpu(root: u32) -> f64 {
    tree(root).into_iter().map(cpu_secs).sum()
}

/// Watches a process tree over a measurement window: CPU used and the highest RSS sampled.
#[derive(Debug)]
pub struct Watch {
    root: u32,
    start: Instant,
    cpu0: f64,
    peak_rss: u64,
}

/// What a [`Watch`] saw.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Usage {
    /// CPU used over the window, in percent of one core.
    pub cpu_pct: f64,
    /// The highest RSS sampled, in MiB.
    pub peak_rss_mib: f64,
}

impl Watch {
    /// Starts watching `root` now.
    pub fn start(root: u32) -> Self {
        Self {
            root,
            start: Instant::now(),
            cpu0: tree_cpu(root),
            peak_rss: rss(root),
        }
    }

    /// Takes an RSS sample (call it periodically during the window).
    pub fn sample(&mut self) {
        self.peak_rss = self.peak_rss.max(rss(self.root));
    }

    /// Ends the window.
    pub fn finish(mut self) -> Usage {
        self.sample();
        let secs = self
            .start
            .elapsed()
            .max(Duration::from_millis(1))
            .as_secs_f64();
        Usage {
            cpu_pct: (tree_cpu(self.root) - self.cpu0) / secs * 100.0,
            peak_rss_mib: self.peak_rss as f64 / (1024.0 * 1024.0),
        }
    }
}
