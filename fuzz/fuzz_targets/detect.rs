//! Fuzzes format detection and every decoder reachable from it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rempart_ingest::decode::{DecodeOptions, decode_bytes};

fuzz_target!(|data: &[u8]| {
    decode_bytes("fuzz", data, &DecodeOptions::default(), jiff::Timestamp::UNIX_EPOCH, &mut |d| {
        std::hint::black_box(d);
    });
});
