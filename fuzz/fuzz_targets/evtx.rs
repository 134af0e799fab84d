//! Fuzzes the evtx decoder (format forced, so every input reaches it), on the calling thread
//! and with a file's chunks on several threads: both must give the same events and rejections.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rempart_ingest::decode::{DecodeOptions, Decoded, decode_bytes};
use rempart_model::Format;

/// What decoding gives, reduced to what the input determines (ids are drawn anew each time).
fn decoded(data: &[u8], threads: usize) -> Vec<String> {
    let opts = DecodeOptions { format: Some(Format::Evtx), threads, ..DecodeOptions::default() };
    let mut out = Vec::new();
    decode_bytes("fuzz", data, &opts, jiff::Timestamp::UNIX_EPOCH, &mut |d| {
        out.push(match d {
            Decoded::Event(e) => format!("{:?} {:?} {:?}", e.origin, e.normalized, e.fields),
            Decoded::Rejected(r) => format!("{:?} {}", r.origin, r.reason),
        });
    });
    out
}

fuzz_target!(|data: &[u8]| {
    assert_eq!(decoded(data, 1), decoded(data, 3));
});
