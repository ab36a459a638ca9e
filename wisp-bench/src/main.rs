//! `wisp-bench`: throughput, stream-open latency and memory of Wisp servers and clients, each
//! shown beside the plain TCP limit of the same machine measured in the same run.
//!
//! - `wisp-bench run --url ws://…` drives one Wisp server with our native client, with the
//!   direct and relay baselines interleaved.
//! - `wisp-bench matrix` starts our `wisp-server` and the published peers and runs the WispMark
//!   columns (1, 10, 5×10 streams) against each, plus the wisp-js client against ours.
//! - `wisp-bench memory` measures our server's RSS per idle connection and per open stream.
//! - `wisp-bench browser` runs browser clients in headless Chromium against our server.
//! - `wisp-bench target` / `relay` are the helpers the others start as child processes.
//!
//! Tables go to stdout as Markdown, progress to stderr, JSON lines to `--json FILE`.

#![warn(missing_docs)]

mod browser;
mod client;
mod latency;
mod load;
mod matrix;
mod memory;
mod procs;
mod procstat;
mod relay;
mod report;
mod targets;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use load::{Path, Spec};
use matrix::{Driver, Subject};

#[derive(Parser, Debug)]
#[command(
    name = "wisp-bench",
    about = "Benchmarks Wisp servers and clients against the plain TCP limit"
)]
struct Cli {
    /// Append one JSON object per measurement to this file.
    #[arg(long, global = true, value_name = "FILE")]
    json: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug, Clone)]
struct LoadArgs {
    /// Bytes per write (WispMark writes 50 KiB).
    #[arg(long, default_value_t = 50 * 1024)]
    chunk: usize,
    /// Seconds before measuring.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Seconds measured per run.
    #[arg(long, default_value_t = 3.0)]
    duration: f64,
    /// Interleaved rounds; figures are their mean.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Streams opened one at a time for the latency probe (0: no probe).
    #[arg(long, default_value_t = 300)]
    latency_streams: usize,
}

impl LoadArgs {
    fn spec(&self) -> Spec {
        Spec {
            connections: 1,
            streams: 1,
            chunk: self.chunk,
            warmup: Duration::from_secs_f64(self.warmup),
            duration: Duration::from_secs_f64(self.duration),
        }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve a TCP target on 127.0.0.1 (port 0) and print its address.
    Target {
        /// What to do with connections.
        #[arg(value_enum)]
        kind: targets::Kind,
    },
    /// Relay TCP from 127.0.0.1 (port 0) to an address, printing the bound address.
    Relay {
        /// Where to relay to.
        to: std::net::SocketAddr,
    },
    /// Drive one Wisp server URL with our client, beside the direct and relay baselines.
    Run {
        /// The Wisp server.
        #[arg(long)]
        url: String,
        /// The server's PID, for its CPU and peak RSS.
        #[arg(long)]
        server_pid: Option<u32>,
        /// WebSocket connections.
        #[arg(short = 'm', long, default_value_t = 1)]
        connections: usize,
        /// Streams per connection.
        #[arg(short = 'n', long, default_value_t = 1)]
        streams: usize,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// Our wisp-server and the published peers, WispMark columns, one table.
    Matrix {
        /// Our server's binary (a release build).
        #[arg(long)]
        server_bin: PathBuf,
        /// The interop directory holding the peers (node_modules, .venv, peers/).
        #[arg(long, default_value = "interop")]
        interop: PathBuf,
        /// The node load client script.
        #[arg(long, default_value = "bench/wisp-js-client.mjs")]
        node_client: PathBuf,
        /// Peers to include.
        #[arg(long, value_enum, value_delimiter = ',', default_values_t = [procs::Peer::Js, procs::Peer::ServerNode, procs::Peer::Python])]
        peers: Vec<procs::Peer>,
        /// Leave out the wisp-js client column.
        #[arg(long)]
        no_node_client: bool,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// Our server's RSS per idle connection and per open stream.
    Memory {
        /// Our server's binary.
        #[arg(long)]
        server_bin: PathBuf,
        /// Idle connections, and streams, to open.
        #[arg(long, default_value_t = 1000)]
        count: usize,
    },
    /// Browser clients in headless Chromium against our server, beside a plain WebSocket.
    Browser(browser::BrowserArgs),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    report::json_to(cli.json.clone());
    // On SIGINT or SIGTERM (a `timeout` around the bench) the command's future is dropped,
    // and with it every child process handle, which kills each child's process group.
    let stop = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    let result = tokio::select! {
        r = command(cli.command) => r,
        () = stop => Err("stopped by a signal; every child process was killed".into()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wisp-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn command(command: Command) -> Result<(), String> {
    match command {
        Command::Target { kind } => serve_forever(targets::spawn(kind).await).await,
        Command::Relay { to } => serve_forever(relay::spawn(to).await).await,
        Command::Run {
            url,
            server_pid,
            connections,
            streams,
            load,
        } => run(url, server_pid, (connections, streams), load).await,
        Command::Matrix {
            server_bin,
            interop,
            node_client,
            peers,
            no_node_client,
            load,
        } => {
            matrix_mode(
                &server_bin,
                &interop,
                (!no_node_client).then_some(node_client),
                &peers,
                load,
            )
            .await
        }
        Command::Memory { server_bin, count } => memory::run(&server_bin, count).await,
        Command::Browser(args) => browser::run(args).await,
    }
}

async fn serve_forever(addr: std::io::Result<std::net::SocketAddr>) -> Result<(), String> {
    let addr = addr.map_err(|e| e.to_string())?;
    println!("{addr}");
    std::future::pending::<()>().await;
    Ok(())
}

/// The echo target and the relay in front of it, as child processes.
async fn baselines() -> Result<(procs::Proc, procs::Proc, Vec<Subject>), String> {
    let echo = procs::helper(&["target", "echo"], "echo target").await?;
    let relay = procs::helper(&["relay", &echo.url], "relay").await?;
    let subjects = vec![
        Subject {
            server: "direct (no relay)".into(),
            client: "tcp".into(),
            driver: Driver::Native(Path::Tcp(echo.addr())),
            pid: echo.pid(),
            role: "direct",
        },
        Subject {
            server: "plain TCP relay".into(),
            client: "tcp".into(),
            driver: Driver::Native(Path::Tcp(relay.addr())),
            pid: relay.pid(),
            role: "relay",
        },
    ];
    Ok((echo, relay, subjects))
}

async fn run(
    url: String,
    pid: Option<u32>,
    column: (usize, usize),
    load: LoadArgs,
) -> Result<(), String> {
    let (echo, _relay, mut subjects) = baselines().await?;
    subjects.push(Subject {
        server: url.clone(),
        client: "wisp-core".into(),
        driver: Driver::Native(Path::Wisp(url, echo.addr())),
        pid,
        role: "ours",
    });
    matrix::run(
        &subjects,
        &[column],
        load.spec(),
        load.rounds,
        load.latency_streams,
    )
    .await;
    Ok(())
}

/// `path` made absolute, since children run in other directories.
fn absolute(path: &std::path::Path) -> Result<PathBuf, String> {
    std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))
}

async fn matrix_mode(
    server_bin: &std::path::Path,
    interop: &std::path::Path,
    node_client: Option<PathBuf>,
    peers: &[procs::Peer],
    load: LoadArgs,
) -> Result<(), String> {
    let server_bin = &absolute(server_bin)?;
    let interop = &absolute(interop)?;
    let node_client = node_client.map(|p| absolute(&p)).transpose()?;
    let (echo, _relay, mut subjects) = baselines().await?;
    let ours = procs::our_server(server_bin, "max_streams_per_connection = 1024").await?;
    subjects.push(Subject {
        server: "wisp-server (ours)".into(),
        client: "wisp-core".into(),
        driver: Driver::Native(Path::Wisp(ours.url.clone(), echo.addr())),
        pid: ours.pid(),
        role: "ours",
    });
    let mut running = Vec::new();
    for &p in peers {
        match procs::peer(p, interop).await {
            Ok(proc) => {
                subjects.push(Subject {
                    server: p.name().into(),
                    client: "wisp-core".into(),
                    driver: Driver::Native(Path::Wisp(proc.url.clone(), echo.addr())),
                    pid: proc.pid(),
                    role: "peer",
                });
                running.push(proc);
            }
            Err(e) => eprintln!("skipping {}: {e}", p.name()),
        }
    }
    if let Some(script) = node_client {
        subjects.push(Subject {
            server: "wisp-server (ours)".into(),
            client: "wisp-js (node)".into(),
            driver: Driver::WispJs {
                url: ours.url.clone(),
                script,
                interop: interop.to_path_buf(),
                target: echo.addr(),
            },
            pid: ours.pid(),
            role: "ours-js",
        });
    }
    matrix::run(
        &subjects,
        &[(1, 1), (1, 10), (5, 10)],
        load.spec(),
        load.rounds,
        load.latency_streams,
    )
    .await;
    Ok(())
}
