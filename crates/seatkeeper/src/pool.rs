//! Pool mode glue: the pod agent as the server's admission policy, and the
//! `pool` subcommands.

use std::{
    process::ExitCode,
    sync::{Arc, OnceLock},
};

use seatkeeper_engine::BoxFuture;
use seatkeeper_pool::{ClaimError, PodAgent, PodStatus, PoolConfig};
use seatkeeper_protocol::close;
use seatkeeper_server::{Admission, App, Lease, Refusal};
use tokio_util::sync::CancellationToken;

use crate::cli::PoolCommand;

/// A fresh `hello` needs a seat token this pod issued and nobody used.
struct PoolAdmission(PodAgent);

impl Admission for PoolAdmission {
    fn admit(&self, seat_token: Option<String>) -> BoxFuture<Result<Lease, Refusal>> {
        let agent = self.0.clone();
        Box::pin(async move {
            match agent.redeem(seat_token.as_deref().unwrap_or("")).await {
                Ok(lease) => Ok(Box::new(lease) as Lease),
                Err(r) => Err(Refusal {
                    code: r.code().to_owned(),
                    message: r.to_string(),
                    // No pool: try again later. A bad token: policy.
                    close_code: if r.code() == "pool_unavailable" {
                        close::BUSY
                    } else {
                        close::POLICY
                    },
                }),
            }
        })
    }

    fn ready(&self) -> bool {
        self.0.registered()
    }

    fn released(&self) {
        self.0.nudge();
    }

    fn render_metrics(&self, out: &mut String) {
        self.0.metrics().render_prometheus(out);
    }
}

/// Starts the pod agent. Its heartbeat reads the server's seats through
/// `app`, which is filled in once the server exists.
pub(crate) fn admission(
    cfg: PoolConfig,
    app: Arc<OnceLock<Arc<App>>>,
    shutdown: CancellationToken,
) -> Result<(Arc<dyn Admission>, PodAgent), seatkeeper_pool::ConfigError> {
    let status = move || match app.get() {
        Some(app) => PodStatus {
            seats_held: app.registry.count().held,
            engine_ready: app.engine.is_ready(),
            draining: app.is_draining() || app.shutdown.is_cancelled(),
        },
        None => PodStatus {
            seats_held: 0,
            engine_ready: false,
            draining: false,
        },
    };
    let agent = PodAgent::start(cfg, status, shutdown)?;
    Ok((Arc::new(PoolAdmission(agent.clone())), agent))
}

/// Runs a `pool` subcommand.
pub(crate) async fn run(cmd: PoolCommand) -> ExitCode {
    match cmd {
        PoolCommand::Claim { redis } => match seatkeeper_pool::claim(&redis).await {
            Ok(claim) => print_json(&claim, ExitCode::SUCCESS),
            Err(e @ ClaimError::NoFreeSeat) => print_json(&e, ExitCode::from(3)),
            Err(e) => print_json(&e, ExitCode::from(1)),
        },
        PoolCommand::Ls { redis } => match seatkeeper_pool::ls(&redis).await {
            Ok(pods) => print_json(&pods, ExitCode::SUCCESS),
            Err(e) => {
                eprintln!("seatkeeper: {e}");
                ExitCode::from(1)
            }
        },
        PoolCommand::Allocator { redis, listen } => {
            let listener = match tokio::net::TcpListener::bind(listen).await {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("seatkeeper: cannot listen on {listen}: {e}");
                    return ExitCode::from(1);
                }
            };
            let shutdown = CancellationToken::new();
            tokio::spawn(crate::stop_on_signal(shutdown.clone()));
            match seatkeeper_pool::allocator(&redis, listener, shutdown).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("seatkeeper: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

fn print_json(v: &impl serde::Serialize, code: ExitCode) -> ExitCode {
    match serde_json::to_string(v) {
        Ok(line) => {
            println!("{line}");
            code
        }
        Err(e) => {
            eprintln!("seatkeeper: {e}");
            ExitCode::from(1)
        }
    }
}
