//! Fuzzes the json decoder (format forced, so every input reaches it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rempart_ingest::decode::{DecodeOptions, decode_bytes};
use rempart_model::Format;

fuzz_target!(|data: &[u8]| {
    let opts = DecodeOptions { format: Some(Format::Json), ..DecodeOptions::default() };
    decode_bytes("fuzz", data, &opts, jiff::Timestamp::UNIX_EPOCH, &mut |d| {
        std::hint::black_box(d);
    });
});
