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

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Chaos(a) => seatkeeper_chaos::run(a).await.map(|v| v.pass),
        Command::Load(a) => seatkeeper_chaos::load::run(a).await.map(|r| r.errors == 0),
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
