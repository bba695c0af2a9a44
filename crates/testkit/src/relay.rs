//! The tunnel stand-in. It lives in the chaos crate (the `tunnel` scenario
//! of `seatkeeper chaos` uses it too); re-exported here so tests keep
//! writing `seatkeeper_testkit::Relay`.

pub use seatkeeper_chaos::relay::Relay;
