//! The comparison: several subjects (plain TCP straight to the echo target, the plain relay,
//! Wisp servers with our client, our server with the wisp-js client) run the same columns of
//! load, interleaved round by round so that a busy machine slows them alike, then one table.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::latency::{self, Latency};
use crate::load::{self, Outcome, Path, Spec};
use crate::procstat::Usage;
use crate::report::{self, num, ratio, Table};

/// How a subject is driven.
#[derive(Debug, Clone)]
pub enum Driver {
    /// Our load generator in this process.
    Native(Path),
    /// The wisp-js client from node against this Wisp URL.
    WispJs {
        /// Server URL.
        url: String,
        /// The node script.
        script: PathBuf,
        /// Where the package is installed.
        interop: PathBuf,
        /// The echo target.
        target: std::net::SocketAddr,
    },
}

/// One thing measured.
#[derive(Debug, Clone)]
pub struct Subject {
    /// Server name in tables.
    pub server: String,
    /// Client name in tables.
    pub client: String,
    /// How to drive it.
    pub driver: Driver,
    /// The server's PID, for CPU and RSS.
    pub pid: Option<u32>,
    /// What this subject is: "direct", "relay", "ours" or "peer".
    pub role: &'static str,
}

#[derive(Serialize)]
struct Line<'a> {
    kind: &'static str,
    server: &'a str,
    client: &'a str,
    column: String,
    round: usize,
    #[serde(flatten)]
    outcome: Outcome,
}

#[derive(Serialize)]
struct LatencyLine<'a> {
    kind: &'static str,
    server: &'a str,
    client: &'a str,
    #[serde(flatten)]
    latency: Latency,
}

/// The load columns, as (connections, streams per connection).
pub fn column_name((m, n): (usize, usize)) -> String {
    if m == 1 {
        format!("{n} stream{}", if n == 1 { "" } else { "s" })
    } else {
        format!("{m}×{n} streams")
    }
}

/// Runs every subject in every column, `rounds` times interleaved, prints the tables and
/// returns the mean echoed MiB/s per (subject, column).
pub async fn run(
    subjects: &[Subject],
    columns: &[(usize, usize)],
    base: Spec,
    rounds: usize,
    latency_count: usize,
) -> Vec<Vec<Option<f64>>> {
    let mut all: Vec<Vec<Vec<Outcome>>> = vec![vec![Vec::new(); columns.len()]; subjects.len()];
    for round in 0..rounds {
        for (ci, &(m, n)) in columns.iter().enumerate() {
            for (si, s) in subjects.iter().enumerate() {
                let spec = Spec {
                    connections: m,
                    streams: n,
                    ..base
                };
                let label = format!(
                    "round {}/{rounds} {} ← {} ({})",
                    round + 1,
                    s.server,
                    s.client,
                    column_name((m, n))
                );
                let outcome = drive(s, spec, &label).await;
                report::record(&Line {
                    kind: "throughput",
                    server: &s.server,
                    client: &s.client,
                    column: column_name((m, n)),
                    round,
                    outcome,
                });
                all[si][ci].push(outcome);
                // Let sockets in TIME_WAIT and the servers' tasks settle between runs.
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    }

    let mean = |v: &[Outcome], f: fn(&Outcome) -> Option<f64>| -> Option<f64> {
        let xs: Vec<f64> = v.iter().filter_map(f).collect();
        (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
    };
    let echoed: Vec<Vec<Option<f64>>> = all
        .iter()
        .map(|cols| cols.iter().map(|v| mean(v, |o| Some(o.mib_s))).collect())
        .collect();
    let find = |role: &str| subjects.iter().position(|s| s.role == role);
    let (direct, relay, ours) = (find("direct"), find("relay"), find("ours"));

    println!("### Echo throughput, MiB/s (mean of {rounds} interleaved rounds, {:.0} s each after {:.0} s warm-up, {} KiB writes)\n",
        base.duration.as_secs_f64(), base.warmup.as_secs_f64(), base.chunk / 1024);
    let mut head = vec!["server ← client".to_owned()];
    head.extend(columns.iter().map(|c| column_name(*c)));
    let head_ref: Vec<&str> = head.iter().map(String::as_str).collect();
    let mut t = Table::new(&head_ref);
    for (si, s) in subjects.iter().enumerate() {
        let mut cells = vec![format!("{} ← {}", s.server, s.client)];
        for (ci, &v) in echoed[si].iter().enumerate() {
            let mut cell = num(v);
            let vs = |other: Option<usize>, what: &str| {
                other
                    .and_then(|o| echoed[o][ci])
                    .map(|b| format!("{} {what}", ratio(v, Some(b))))
            };
            let mut notes: Vec<String> = match s.role {
                "ours" => vec![vs(relay, "of relay"), vs(direct, "of direct")],
                "peer" => vec![ours
                    .and_then(|o| echoed[o][ci])
                    .map(|o| format!("ours {}", ratio(Some(o), v)))],
                "relay" => vec![vs(direct, "of direct")],
                _ => vec![],
            }
            .into_iter()
            .flatten()
            .collect();
            let stalled: u64 = all[si][ci].iter().map(|o| o.stalled).sum();
            if stalled > 0 {
                // The figure is what the surviving streams carried; say so beside it.
                notes.push(format!("{stalled} streams stalled"));
            }
            if !notes.is_empty() {
                cell = format!("{cell} ({})", notes.join(", "));
            }
            cells.push(cell);
        }
        t.row(cells);
    }
    t.print();

    println!(
        "### Detail per run (means): per direction, server CPU (% of one core) and peak RSS\n"
    );
    let mut d = Table::new(&[
        "server ← client",
        "column",
        "echoed MiB/s",
        "written MiB/s",
        "server CPU %",
        "server peak RSS MiB",
        "MiB/s per server CPU-second",
        "stream errors",
        "streams stalled",
    ]);
    for (si, s) in subjects.iter().enumerate() {
        for (ci, c) in columns.iter().enumerate() {
            let v = &all[si][ci];
            let cpu = mean(v, |o| o.server.map(|u: Usage| u.cpu_pct));
            let rss = v
                .iter()
                .filter_map(|o| o.server.map(|u| u.peak_rss_mib))
                .fold(None, |a: Option<f64>, b| Some(a.map_or(b, |a| a.max(b))));
            let echoed_v = echoed[si][ci];
            let per_cpu = match (echoed_v, cpu) {
                (Some(e), Some(c)) if c > 0.0 => Some(e / (c / 100.0)),
                _ => None,
            };
            d.row(vec![
                format!("{} ← {}", s.server, s.client),
                column_name(*c),
                num(echoed_v),
                num(mean(v, |o| Some(o.up_mib_s))),
                num(cpu),
                num(rss),
                num(per_cpu),
                v.iter().map(|o| o.errors).sum::<u64>().to_string(),
                v.iter().map(|o| o.stalled).sum::<u64>().to_string(),
            ]);
        }
    }
    d.print();

    if latency_count > 0 {
        println!("### Stream open: CONNECT (or TCP connect) to the first echoed byte, one at a time, µs\n");
        let mut l = Table::new(&["server ← client", "p50 µs", "p99 µs", "samples"]);
        for s in subjects {
            let Driver::Native(path) = &s.driver else {
                continue;
            };
            eprint!("\r\x1b[Kstream-open latency: {}", s.server);
            let r = latency::probe(path, latency_count, Duration::from_secs(15)).await;
            eprint!("\r\x1b[K");
            if let Some(lat) = r {
                report::record(&LatencyLine {
                    kind: "open_latency",
                    server: &s.server,
                    client: &s.client,
                    latency: lat,
                });
            }
            l.row(vec![
                format!("{} ← {}", s.server, s.client),
                num(r.map(|x| x.p50_us)),
                num(r.map(|x| x.p99_us)),
                r.map_or(0, |x| x.samples).to_string(),
            ]);
        }
        l.print();
    }
    echoed
}

async fn drive(s: &Subject, spec: Spec, label: &str) -> Outcome {
    match &s.driver {
        Driver::Native(path) => load::run(path, spec, s.pid, label).await,
        Driver::WispJs {
            url,
            script,
            interop,
            target,
        } => {
            let args = vec![
                url.clone(),
                target.ip().to_string(),
                target.port().to_string(),
                spec.connections.to_string(),
                spec.streams.to_string(),
                spec.chunk.to_string(),
                spec.warmup.as_secs_f64().to_string(),
                spec.duration.as_secs_f64().to_string(),
            ];
            eprint!("\r\x1b[K{label}: node");
            // The server is watched over the measured part of the node run: node starts in
            // well under the warm-up's slack of a quarter second.
            let watch = async {
                tokio::time::sleep(spec.warmup + Duration::from_millis(250)).await;
                let mut w = s.pid.map(crate::procstat::Watch::start);
                let until = tokio::time::Instant::now() + spec.duration;
                while tokio::time::Instant::now() < until {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    if let Some(w) = w.as_mut() {
                        w.sample();
                    }
                }
                w.map(crate::procstat::Watch::finish)
            };
            let limit = spec.warmup + spec.duration + Duration::from_secs(30);
            let (result, server) = tokio::join!(
                crate::procs::node_client(script, interop, &args, limit),
                watch
            );
            eprint!("\r\x1b[K");
            match result {
                Ok(v) => Outcome {
                    mib_s: v["mib_s"].as_f64().unwrap_or(0.0),
                    up_mib_s: v["up_mib_s"].as_f64().unwrap_or(0.0),
                    errors: v["errors"].as_u64().unwrap_or(0),
                    stalled: v["stalled"].as_u64().unwrap_or(0),
                    server,
                },
                Err(e) => {
                    eprintln!("{label}: {e}");
                    Outcome {
                        errors: 1,
                        ..Outcome::default()
                    }
                }
            }
        }
    }
}
