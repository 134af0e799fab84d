//! Fuzzes erasure on an arbitrary subject and text: the first byte picks the subject's type,
//! the rest up to the first newline is its value, the remainder the stored text. No panic; a
//! subject that is accepted leaves no occurrence for a second rewrite to find.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rempart_privacy::erase::Eraser;

const KINDS: &[&str] = &[
    "user", "host", "email", "person", "sid", "ip", "mac", "phone", "iban", "card", "natid", "other",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let Ok(input) = std::str::from_utf8(rest) else { return };
    let (value, text) = input.split_once('\n').unwrap_or((input, ""));
    let kind = KINDS[usize::from(pick) % KINDS.len()];
    let Ok(eraser) = Eraser::new(&format!("{kind}:{value}"), &[]) else { return };
    let mut out = text.to_owned();
    eraser.rewrite(&mut out);
    let mut again = out.clone();
    assert_eq!(eraser.rewrite(&mut again), 0, "a second rewrite finds nothing: {out:?}");
});
