//! The `seatkeeper` binary: parses the command line, validates it before
//! binding anything, and runs the chosen command.
//!
//! Exit codes: 0 clean shutdown, 1 runtime failure, 2 bad arguments or
//! configuration (one line on stderr), 3 `pool claim` found no free seat.

mod cli;
mod drain;
mod pool;

use std::{
    process::ExitCode,
    sync::{Arc, OnceLock},
};

use clap::Parser;
use seatkeeper_engine::external;
use seatkeeper_server::{Config, Server};
use tokio_util::sync::CancellationToken;
use tracing::info;

use cli::{Cli, Command, LogFormat, ServeArgs};

fn main() -> ExitCode {
    let cli = Cli::parse(); // exits 2 on bad arguments
    match cli.command {
        Command::Serve(args) => serve_main(*args),
        Command::Pool { command } => block_on(pool::run(command)),
        Command::Drain(args) => block_on(drain::run(args)),
        Command::Chaos(args) => block_on(async move {
            match seatkeeper_chaos::run(*args).await {
                Ok(v) if v.pass => ExitCode::SUCCESS,
                Ok(_) => ExitCode::from(1),
                Err(e) => {
                    eprintln!("seatkeeper: {e:#}");
                    ExitCode::from(2)
                }
            }
        }),
        // The load generator runs on one thread of its own runtime, so its
        // figures measure the server, not the generator.
        Command::Load(args) => match seatkeeper_chaos::load::run_blocking(*args) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("seatkeeper: {e:#}");
                ExitCode::from(1)
            }
        },
    }
}

fn block_on(fut: impl std::future::Future<Output = ExitCode>) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(fut),
        Err(e) => {
            eprintln!("seatkeeper: cannot start the runtime: {e}");
            ExitCode::from(1)
        }
    }
}

pub(crate) fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SEATKEEPER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal, never into a log file.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

fn serve_main(args: ServeArgs) -> ExitCode {
    let config = args
        .config()
        .and_then(|c| Ok((args.pool_config(c.seats)?, c)));
    let (pool, config) = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("seatkeeper: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(args.log_format);
    block_on(async move {
        match serve(args, config, pool).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("seatkeeper: {e:#}");
                let config_error = e.downcast_ref::<BadConfig>().is_some();
                ExitCode::from(if config_error { 2 } else { 1 })
            }
        }
    })
}

/// A configuration that passed parsing but cannot be used (exit 2).
#[derive(Debug)]
struct BadConfig(String);

impl std::fmt::Display for BadConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadConfig {}

async fn serve(
    args: ServeArgs,
    config: Config,
    pool: Option<seatkeeper_pool::PoolConfig>,
) -> anyhow::Result<()> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(
            seatkeeper_server::tls::acceptor(cert, key).map_err(|e| BadConfig(e.to_string()))?,
        ),
        _ => None,
    };
    let engine = external::build_for(&args.engine, config.seats as usize)
        .await
        .map_err(|e| BadConfig(format!("cannot set up engine {}: {e}", args.engine)))?;
    // A port that cannot be bound is a start-up problem like any other (exit 2).
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| BadConfig(format!("cannot listen on {}: {e}", args.listen)))?;
    let admin = match &config.admin_listen {
        Some(addr) => Some(
            seatkeeper_server::admin::AdminListener::bind(addr)
                .await
                .map_err(|e| BadConfig(format!("cannot listen on --admin-listen {addr}: {e}")))?,
        ),
        None => None,
    };
    let shutdown = CancellationToken::new();
    // The pod agent outlives the server's shutdown by its own token, so it
    // can publish "draining" and then deregister.
    let pool_shutdown = CancellationToken::new();
    let late_app = Arc::new(OnceLock::new());
    let (admission, agent) = match pool {
        Some(cfg) => {
            let (adm, agent) = pool::admission(cfg, Arc::clone(&late_app), pool_shutdown.clone())
                .map_err(|e| BadConfig(e.to_string()))?;
            (Some(adm), Some(agent))
        }
        None => (None, None),
    };
    let mut server = Server::new(config, engine, admission, shutdown.clone())?;
    if let Some(tls) = tls {
        server = server.with_tls(tls);
    }
    if let Some(admin) = admin {
        server = server.with_admin(admin);
    }
    let _ = late_app.set(server.app());
    if let Some(agent) = &agent {
        // The first heartbeat went out before the server existed (seats
        // unknown, "not ready"): publish the real figures now.
        agent.nudge();
    }
    tokio::spawn(stop_on_signal(shutdown.clone()));
    server.serve(listener).await?;
    if let Some(agent) = agent {
        pool_shutdown.cancel();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), agent.stopped()).await;
    }
    Ok(())
}

/// Cancels `shutdown` on SIGTERM or SIGINT.
pub(crate) async fn stop_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: shutting down"),
        _ = int.recv() => info!("SIGINT: shutting down"),
    }
    shutdown.cancel();
}
