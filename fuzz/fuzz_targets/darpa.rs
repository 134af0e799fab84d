//! Fuzzes the labelled edge-stream reader: no line panics, refusals say why, accepted edges
//! have a tick from 1.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut ticks = rempart_anomaly::datasets::Ticks::default();
    for line in text.lines() {
        match rempart_anomaly::datasets::darpa_line(line, &mut ticks) {
            Ok(e) => assert!(e.tick >= 1),
            Err(why) => assert!(!why.is_empty()),
        }
    }
});
