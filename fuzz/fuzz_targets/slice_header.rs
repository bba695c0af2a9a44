//! `SliceHeader::decode` on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| seatkeeper_fuzz::slice_header::check(data));
