//! Fuzzes the prompt-injection scanner with any text an attacker can write into a field: no
//! input panics, every sign names the field and a class, phrases stay short, and what a model
//! is sent shows every hidden character (nothing invisible is left in it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rempart_triage::injection;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let signs = injection::scan("f", &text);
    for s in &signs {
        assert_eq!(s.field, "f");
        assert!(s.phrase.chars().count() <= 161);
        assert!((0.0..=1.0).contains(&s.weight));
    }
    let shown = injection::show_hidden(&text);
    assert!(!injection::has_hidden(&shown));
    // Showing is stable: what is shown once is shown as it is.
    assert_eq!(injection::show_hidden(&shown), shown);
});
