//! Fuzzes the recognizers and the pseudonymizer on arbitrary lines (text or JSON): no panic, and
//! every finding lies on character boundaries inside the input.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rempart_privacy::recognize::{RecognizerConfig, Recognizers};
use rempart_privacy::redact::{Domain, Redactor};

fn redactor() -> &'static Redactor {
    static R: OnceLock<Redactor> = OnceLock::new();
    R.get_or_init(|| {
        let r = Recognizers::new(&RecognizerConfig {
            internal_suffixes: vec!["corp.example.eu".into()],
            ..RecognizerConfig::default()
        })
        .expect("built-in recognizers compile");
        Redactor::new(r, Domain::derive(&[3; 32], "fuzz", 0))
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for f in redactor().recognizers().find(text) {
        assert!(f.start < f.end && f.end <= text.len());
        assert!(text.is_char_boundary(f.start) && text.is_char_boundary(f.end));
    }
    let _ = redactor().redact_line(text);
});
