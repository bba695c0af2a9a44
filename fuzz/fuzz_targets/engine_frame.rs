//! The engine link's frame reader on arbitrary byte streams, limits and
//! read shapes (see `seatkeeper_fuzz::engine_frame` for the input layout).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| seatkeeper_fuzz::engine_frame::check(data));
