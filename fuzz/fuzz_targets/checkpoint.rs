//! Fuzzes what an auditor hands the ledger: checkpoint notes (`audit verify --checkpoint`,
//! `export --previous`), verifier keys (`--trust`), and the pure verifier fed arbitrary
//! records.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rempart_audit::{Anchor, Checkpoint, NoteVerifier, Signer, Verifier};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = NoteVerifier::parse(text);
    let Ok(signer) = Signer::new("rempart/fuzz", ed25519_seed()) else { return };
    let _ = Checkpoint::open(text, &[signer.verifier()]);
    // A note as an outside anchor must be refused or held, never panic.
    let anchors = vec![Anchor::outside(text.to_owned(), "fuzz")];
    if let Ok(v) = Verifier::new(vec![signer.verifier()], anchors) {
        let _ = v.finish();
    }
});

fn ed25519_seed() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[7; 32])
}
