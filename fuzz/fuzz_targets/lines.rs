//! Fuzzes the reading of a file of lines in blocks on several threads: whatever the bytes, it
//! gives what reading the file whole gives, item by item; and an event that kept its line's
//! text reads back from that text to its fields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rempart_ingest::decode::{DecodeOptions, Decoded};
use rempart_ingest::files::{decode_file, decode_file_blocks};

fn summary(d: Decoded) -> String {
    match d {
        Decoded::Event(e) => {
            if let Some(text) = e.fields.text() {
                let back: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_str(text).unwrap_or_else(|err| panic!("{err}: {text}"));
                assert_eq!(back, *e.fields, "{text}");
            }
            format!("event {:?} {:?} {:?}", e.origin, e.fields, e.normalized)
        }
        Decoded::Rejected(r) => format!("rejected {:?} {} {:?}", r.origin, r.reason, r.raw),
    }
}

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("rempart-fuzz-lines-{}", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let opts = DecodeOptions::default();
    let now = jiff::Timestamp::UNIX_EPOCH;
    let mut whole = Vec::new();
    decode_file(&path, &opts, now, &mut |d| whole.push(summary(d)));
    if let Some(blocks) = decode_file_blocks(&path, &opts, now, 2, |t: &mut Vec<String>, d| t.push(summary(d))) {
        assert_eq!(blocks.concat(), whole);
    }
});
