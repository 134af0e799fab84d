//! Fuzzes the STIX pattern parser, the extraction of matchable alternatives, the import of
//! documents and their lessons for tuning: no input panics, errors point inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match rempart_intel::pattern::parse(text) {
        Ok(p) => {
            let _ = rempart_intel::indicator::alternatives(&p);
        }
        Err(e) => assert!(e.offset <= text.len()),
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        let _ = rempart_intel::import(&v, "fuzz");
        if let Ok(lessons) = rempart_intel::knowledge::lessons(&v) {
            assert!(lessons.iter().all(|l| !l.question.is_empty() && !l.answer.is_empty()));
        }
    }
});
