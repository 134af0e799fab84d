//! Rempart's audit ledger: every consequential step on a record that nobody, an administrator
//! with database access included, can alter or remove without it being detected, and that an
//! erasure under GDPR Art. 17 does not break.
//!
//! - [`record`]: what a record commits to; records form a hash chain.
//! - [`seal`]: payloads sealed under per-subject keys; destroying a key erases its payloads.
//! - [`merkle`]: the RFC 9162 tree over records, with inclusion and consistency proofs.
//! - [`checkpoint`]: Ed25519-signed tree heads in the C2SP checkpoint / signed-note formats.
//! - [`verify`]: a pure verifier that names the first bad record and why.
//! - [`ledger`]: the service: one ordered writer, group commit, checkpoints, proofs.
//! - [`export`]: the self-contained document an outside party verifies.
//!
//! Storage is the [`rempart_store::LedgerStore`] trait; this crate does no other I/O than the
//! key files it is pointed at and the witness file.

pub mod checkpoint;
pub mod export;
pub mod keys;
pub mod ledger;
pub mod merkle;
pub mod record;
pub mod seal;
pub mod verify;

pub use checkpoint::{Checkpoint, NoteVerifier, Signer};
pub use keys::Keyring;
pub use ledger::{Ledger, LedgerOptions, PayloadView, Receipt};
pub use record::{Draft, kind};
pub use seal::MasterKey;
pub use verify::{Anchor, Problem, Report, Verifier};

/// The name erasure and subject keys use for a person or a thing: `user:alice`,
/// `host:ws1.corp.example.eu`, `ip:10.1.2.3`, `phone:33612345678`. Names of accounts, hosts,
/// mailboxes and people are case-insensitive, so lowercased; numbers (phones, cards, IBANs,
/// national identifiers) are compacted to their letters and digits; the rest is kept as written.
pub fn subject_id(kind: &str, value: &str) -> String {
    let value = value.trim();
    let normalized = match kind {
        "user" | "host" | "email" | "person" => value.to_lowercase(),
        "mac" => value.to_ascii_lowercase().replace('-', ":"),
        // One address, one subject, however it is written (`FE80:0::1`, `::ffff:10.0.0.5`).
        "ip" => value
            .parse::<std::net::IpAddr>()
            .map_or_else(|_| value.to_owned(), |ip| ip.to_canonical().to_string()),
        "phone" | "card" | "iban" | "natid" => value
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_uppercase())
            .collect(),
        _ => value.to_owned(),
    };
    format!("{kind}:{normalized}")
}

/// What can go wrong using the ledger.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Store(#[from] rempart_store::StoreError),
    #[error("ledger key `{path}`: {reason}")]
    Key { path: String, reason: String },
    #[error("{0}")]
    Config(String),
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    #[error("cannot open {what}: {reason}")]
    Unseal { what: String, reason: String },
    #[error("no record {0} in the ledger")]
    NoSuchRecord(u64),
    #[error("the ledger is damaged: {0}")]
    Corrupt(String),
    #[error("the ledger could not record this, so it was not done: {0}")]
    AppendFailed(String),
    #[error("the ledger is closed")]
    Closed,
}
