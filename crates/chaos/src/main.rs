//! `seatkeeper-chaos`: the `chaos` and `load` subcommands as a standalone
//! program, for the benchmark suite and the tests (the `seatkeeper` binary
//! offers the same two subcommands).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use seatkeeper_chaos::{load::LoadArgs, ChaosArgs};

/// Chaos scenarios and load generation against a seatkeeper-contract server.
#[derive(Debug, Parser)]
#[command(name = "seatkeeper-chaos", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Play one client behaviour and print its verdict as JSON.
    Chaos(ChaosArgs),
    /// Open N sessions, read and ack, report delivery figures as JSON.
    Load(LoadArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Chaos(a) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(seatkeeper_chaos::run(a)))
            .map(|v| v.pass),
        Command::Load(a) => seatkeeper_chaos::load::run_blocking(a).map(|r| r.errors == 0),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("seatkeeper-chaos: {e:#}");
            ExitCode::from(2)
        }
    }
}
