//! Fuzzes what the console does with outside input: a `Cookie` header's parsing, and the
//! rendering of any text from telemetry, which must come out with no markup of its own and
//! no hidden character.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rempart_server::console::session::{COOKIE, cookie};
use rempart_server::console::text::{Text, hidden};

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    std::hint::black_box(cookie(&s, COOKIE));
    let html = Text::new(s.as_ref()).to_string();
    let mut rest = html.as_str();
    let marker = "<span class=\"cc\" title=\"hidden character\">U+";
    while let Some(i) = rest.find('<') {
        assert!(rest[i..].starts_with(marker) || rest[i..].starts_with("</span>"), "{html}");
        rest = &rest[i + 1..];
    }
    assert!(!html.chars().any(hidden));
});
