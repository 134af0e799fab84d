//! Rempart's privacy engine.
pub mod checks;
pub mod cryptopan;
pub mod recognize;

/// What can go wrong in the privacy engine.
#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    #[error("privacy configuration: {0}")]
    Config(String),
}
