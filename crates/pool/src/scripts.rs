//! The Lua scripts that make every pool change atomic inside Redis.
//!
//! Each runs with `EVALSHA` and falls back to loading itself on `NOSCRIPT`
//! (a restarted Redis has an empty script cache), which `redis::Script`
//! does for us. The claim script is the public one: `docs/FLEET.md` quotes
//! it so routers in any language can claim.

use std::sync::LazyLock;

use redis::Script;

/// The prefix of every key the pool writes.
pub const KEY_PREFIX: &str = "seatkeeper:pool:";

/// Source of the claim script, for routers that load it themselves.
pub const CLAIM_LUA: &str = include_str!("lua/claim.lua");

pub(crate) static CLAIM: LazyLock<Script> = LazyLock::new(|| Script::new(CLAIM_LUA));
pub(crate) static LS: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/ls.lua")));
pub(crate) static HEARTBEAT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/heartbeat.lua")));
pub(crate) static REDEEM: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/redeem.lua")));
pub(crate) static RELEASE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/release.lua")));
pub(crate) static DEREGISTER: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/deregister.lua")));

/// The SHA-1 a router passes to `EVALSHA` for the claim script.
pub fn claim_sha1() -> &'static str {
    CLAIM.get_hash()
}
