//! The field network of the reaper's tests (see
//! [`seatkeeper_chaos::field`]), and the server started inside it.

use tokio::process::Command;

pub use seatkeeper_chaos::field::{Field, PORT};

use crate::Server;

/// Builds a field namespace on the first free tag below 40; panics with the
/// reason when it cannot (a test that cannot build its network fails, it
/// does not skip).
pub fn create() -> Field {
    Field::create_free(1..40)
        .unwrap_or_else(|e| panic!("field network (root and iproute2 needed): {e}"))
}

/// Starts `bin serve` inside the namespace on every address, port [`PORT`],
/// and waits until it answers over the control link.
pub async fn serve(f: &Field, bin: &str, args: &[&str]) -> Server {
    let log = std::env::temp_dir().join(format!(
        "seatkeeper-field-{}-{}.log",
        f.name(),
        std::process::id()
    ));
    let [ip, netns, exec, name] = f.exec_prefix();
    let mut cmd = Command::new(ip);
    cmd.args([netns, exec, name])
        .args([bin, "serve", "--listen"])
        .arg(format!("0.0.0.0:{PORT}"))
        .args(args);
    Server::spawn(cmd, f.control_addr(), log).await
}
