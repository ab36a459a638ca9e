//! The `wisp-server` binary: parse flags, set up logging, run until a signal.

use clap::Parser;
use tracing_subscriber::EnvFilter;
use wisp_server::cli::Cli;
use wisp_server::memory_bound::{human, machine_memory, MemoryBound};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if cli.print_default_config {
        print!("{}", wisp_server::Config::default_toml());
        return std::process::ExitCode::SUCCESS;
    }
    let config = match cli.config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wisp-server: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if cli.check_config {
        println!("configuration is valid");
        let bound = MemoryBound::of(&config);
        println!(
            "worst-case buffer memory: {} per connection, {} for limits.max_connections = {}",
            human(bound.per_connection),
            human(bound.total),
            config.limits.max_connections
        );
        if let Some(warning) = machine_memory().and_then(|m| bound.warning(m)) {
            println!("warning: {warning}");
        }
        return std::process::ExitCode::SUCCESS;
    }
    // RUST_LOG, when set, wins over the configured level.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(&config.server.log_level));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    match wisp_server::run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wisp-server: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
