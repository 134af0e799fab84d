//! Rempart's privacy engine.
pub mod checks;
pub mod cryptopan;
pub mod recognize;
pub mod redact;
pub mod vault;

use recognize::{Entity, RecognizerConfig, Recognizers};
use redact::{Domain, Redactor};

/// Builds a redactor for `domain` from configuration values and the instance's keyring.
pub fn redactor(
    keyring: &rempart_audit::Keyring,
    domain: &str,
    epoch: u32,
    internal_suffixes: &[String],
    allow: &[String],
    disabled: &[String],
) -> Result<Redactor, PrivacyError> {
    let disabled = disabled
        .iter()
        .map(|d| {
            Entity::from_prefix(d)
                .filter(|e| *e != Entity::Secret)
                .ok_or_else(|| PrivacyError::Config(format!("`{d}` is not an entity type that can be disabled")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let recognizers = Recognizers::new(&RecognizerConfig {
        internal_suffixes: internal_suffixes.to_vec(),
        allow: allow.to_vec(),
        disabled,
    })?;
    let secret = keyring.derive_secret("pseudonym domains");
    Ok(Redactor::new(recognizers, Domain::derive(&secret, domain, epoch)))
}

/// What can go wrong in the privacy engine.
#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    #[error("privacy configuration: {0}")]
    Config(String),
    #[error("text of {len} bytes is larger than the {max} bytes redacted in one piece; nothing was released")]
    TooLarge { len: usize, max: usize },
    #[error("pseudonym collision in the vault for {0:?}: nothing was released")]
    Collision(Vec<String>),
    #[error(transparent)]
    Audit(#[from] rempart_audit::AuditError),
    #[error(transparent)]
    Store(#[from] rempart_store::StoreError),
}
