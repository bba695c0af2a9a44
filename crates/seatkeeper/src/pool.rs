//! Pool mode glue: the pod agent as the server's admission policy, and the
//! `pool` subcommands.

use std::{
    process::ExitCode,
    sync::{Arc, OnceLock},
};

use seatkeeper_engine::BoxFuture;
use seatkeeper_pool::{
    AllocatorConfig, ClaimError, ClaimRequest, ClientOptions, PodAgent, PodStatus, PoolConfig,
    PoolError,
};
use seatkeeper_protocol::close;
use seatkeeper_server::{Admission, App, Lease, Refusal};
use tokio_util::sync::CancellationToken;

use crate::cli::PoolCommand;

/// A fresh `hello` needs a seat token this pod issued and nobody used.
struct PoolAdmission(PodAgent, Option<seatkeeper_pool::PoolClient>);

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

    fn reserved(&self) -> u32 {
        self.0.reserved()
    }

    fn released(&self) {
        self.0.nudge();
    }

    fn render_metrics(&self, out: &mut String) {
        self.0.metrics().render_prometheus(out);
    }

    fn fleet(&self) -> BoxFuture<Option<serde_json::Value>> {
        let client = self.1.clone();
        Box::pin(async move {
            // The operator's page polls: a Redis that does not answer
            // within a second shows as no fleet, not as a hung page.
            let client = client?;
            let ls = tokio::time::timeout(std::time::Duration::from_secs(1), client.ls());
            let pods = ls.await.ok()?.ok()?;
            serde_json::to_value(pods).ok()
        })
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
    let lister = seatkeeper_pool::PoolClient::new(&cfg.redis_url).ok();
    let agent = PodAgent::start(cfg, status, shutdown)?;
    Ok((Arc::new(PoolAdmission(agent.clone(), lister)), agent))
}

/// Runs a `pool` subcommand. Every one answers the same way: on success
/// its JSON on stdout and exit 0; on failure one JSON line
/// `{"error": code, "message": ...}` on stdout and exit 1 (Redis down or
/// failing, listener failure), 2 (bad arguments: URL, selector, claim id)
/// or 3 (`no_free_seat`).
pub(crate) async fn run(cmd: PoolCommand) -> ExitCode {
    match cmd {
        PoolCommand::Claim {
            redis,
            selector,
            claim_id,
        } => {
            let selector = match selector.as_deref().map(seatkeeper_pool::parse_labels) {
                None => Default::default(),
                Some(Ok(s)) => s,
                Some(Err(e)) => return fail("bad_request", &format!("--selector: {e}"), 2),
            };
            let req = ClaimRequest { selector, claim_id };
            match seatkeeper_pool::claim_with(&redis, &req).await {
                Ok(claim) => print_json(&claim, ExitCode::SUCCESS),
                Err(e @ ClaimError::NoFreeSeat) => print_json(&e, ExitCode::from(3)),
                Err(ClaimError::Pool(e)) => fail(e.code(), &e.to_string(), exit_code(&e)),
            }
        }
        PoolCommand::Ls { redis } => match seatkeeper_pool::ls(&redis).await {
            Ok(pods) => print_json(&pods, ExitCode::SUCCESS),
            Err(e) => fail(e.code(), &e.to_string(), exit_code(&e)),
        },
        PoolCommand::Allocator(args) => {
            crate::init_logging(args.log_format);
            if !(0.0..=1e9).contains(&args.rate_limit) || !(1.0..=1e9).contains(&args.rate_burst) {
                return fail(
                    "bad_request",
                    "--rate-limit must be 0..1e9 and --rate-burst 1..1e9",
                    2,
                );
            }
            let client = ClientOptions {
                wait_connections: args.redis_wait_connections,
            };
            if client.validate().is_err() {
                let msg = format!(
                    "--redis-wait-connections must be {:?}, got {}",
                    ClientOptions::WAIT_CONNECTIONS,
                    args.redis_wait_connections
                );
                return fail("bad_request", &msg, 2);
            }
            let listener = match tokio::net::TcpListener::bind(args.listen).await {
                Ok(l) => l,
                Err(e) => {
                    let msg = format!("cannot listen on {}: {e}", args.listen);
                    return fail("listen_failed", &msg, 1);
                }
            };
            let shutdown = CancellationToken::new();
            tokio::spawn(crate::stop_on_signal(shutdown.clone()));
            let mut cfg = AllocatorConfig::new(args.redis);
            cfg.token = args.token.filter(|t| !t.is_empty());
            cfg.rate_per_s = args.rate_limit;
            cfg.burst = args.rate_burst;
            cfg.client = client;
            match seatkeeper_pool::allocator(cfg, listener, shutdown).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(e.code(), &e.to_string(), exit_code(&e)),
            }
        }
    }
}

/// 2 for what the caller got wrong, 1 for everything the pool did.
fn exit_code(e: &PoolError) -> u8 {
    match e {
        PoolError::InvalidUrl(_) | PoolError::BadRequest(_) => 2,
        _ => 1,
    }
}

fn fail(code: &str, message: &str, exit: u8) -> ExitCode {
    println!("{}", serde_json::json!({"error": code, "message": message}));
    ExitCode::from(exit)
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
