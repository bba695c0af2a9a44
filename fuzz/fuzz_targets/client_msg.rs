//! `ClientMsg::parse` on arbitrary UTF-8: a text frame is UTF-8 by the time
//! the parser sees it (the WebSocket layer checks), so this is its real input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| seatkeeper_fuzz::client_msg::check(text));
