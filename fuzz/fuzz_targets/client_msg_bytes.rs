//! `ClientMsg::parse` on arbitrary bytes: valid UTF-8 is parsed as it is,
//! anything else after lossy repair, so mutations that break UTF-8 half-way
//! through a multi-byte character still reach the parser.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| match std::str::from_utf8(data) {
    Ok(text) => seatkeeper_fuzz::client_msg::check(text),
    Err(_) => seatkeeper_fuzz::client_msg::check(&String::from_utf8_lossy(data)),
});
