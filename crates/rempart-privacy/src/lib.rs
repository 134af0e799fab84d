//! Rempart's privacy engine.
pub mod checks;
pub mod cryptopan;
pub mod erase;
pub mod json_text;
mod recent;
pub mod recognize;
pub mod redact;
pub mod service;
pub mod vault;

pub use service::{Privacy, TuningSet, tuning_history};

/// What can go wrong in the privacy engine.
#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    #[error("privacy configuration: {0}")]
    Config(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("text of {len} bytes is larger than the {max} bytes redacted in one piece; nothing was released")]
    TooLarge { len: usize, max: usize },
    #[error("pseudonym collision in the vault for {0:?}: nothing was released")]
    Collision(Vec<String>),
    #[error(transparent)]
    Audit(#[from] rempart_audit::AuditError),
    #[error(transparent)]
    Store(#[from] rempart_store::StoreError),
}
