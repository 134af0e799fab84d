//! Fuzzes what a model writes back to the triage agent: the verdict parser and its checks.
//! No answer panics; an accepted verdict keeps only cited events the agent knows, and a
//! confidence between 0 and 1.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(m) = rempart_triage::verdict::parse(text) else { return };
    let known: HashSet<String> = ["e1".to_owned()].into_iter().collect();
    let v = rempart_triage::verdict::from_model(
        m,
        &known,
        rempart_triage::verdict::Provenance {
            incident: rempart_model::EventId::generate(),
            created: jiff::Timestamp::UNIX_EPOCH,
            provider: None,
            model: None,
            domain: None,
            queries: Vec::new(),
            steps: 1,
            tokens: 0,
            flags: Vec::new(),
            injection: Vec::new(),
        },
    );
    assert!((0.0..=1.0).contains(&v.confidence));
    assert!(v.evidence.iter().flat_map(|e| &e.events).all(|e| known.contains(e)));
    assert!(v.timeline.iter().flat_map(|t| &t.events).all(|e| known.contains(e)));
});
