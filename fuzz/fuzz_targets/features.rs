//! Fuzzes the labelled feature-table reader and the ECOD detector behind it: no line panics,
//! refusals say why, accepted rows are finite and score finite and positive.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rempart_anomaly::ecod::{Ecod, Params};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut row = Vec::new();
    let mut detector = Ecod::new(3, Params { warm_up: 2, ..Params::default() });
    for line in text.lines() {
        match rempart_anomaly::datasets::feature_line(line, 3, &mut row) {
            Ok(_) => {
                assert!(row.iter().all(|v| v.is_finite()));
                let s = detector.observe(&row).unwrap_or_else(|e| panic!("{e}"));
                assert!(s.value.is_finite() && s.value > 0.0);
            }
            Err(why) => assert!(!why.is_empty()),
        }
    }
});
