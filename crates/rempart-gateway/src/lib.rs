//! The sovereignty gateway: the one door through which Rempart and the institution's tools reach
//! AI models.
//!
//! A request arrives in OpenAI (Chat Completions or Responses) or Anthropic form and is read into the gateway's own form
//! ([`chat`]). Its data class (the client's, raised by what the request declares) and its
//! route's purpose decide, provider by provider, where it may go ([`policy`]); if nothing may
//! receive it, nothing is sent. Before it leaves for a provider outside the premises its
//! personal data is pseudonymized, the originals sealed in the vault first. The route's chain
//! is tried in order, each provider behind a circuit breaker ([`breaker`]) and with retries on
//! retryable errors ([`upstream`]); the answer is checked against the requested JSON Schema,
//! re-identified for the client from the request's own replacements, and written back in the
//! client's format. Every call is recorded in the audit ledger.

pub mod anthropic;
pub mod breaker;
pub mod chat;
mod gateway;
pub mod openai;
pub mod policy;
pub mod responses;
mod reveal;
pub mod sse;
pub mod tuning;
pub mod upstream;
mod wire;

pub use gateway::{Answer, Attempt, Call, Caller, Format, Gateway, ProviderStatus, ROUTE_PREFIX};

use serde_json::Value;

/// A request or an answer that does not follow its wire format.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WireError {
    #[error("invalid request: {0}")]
    Request(String),
    #[error("provider answer not understood: {0}")]
    Upstream(String),
}

/// Why the gateway did not serve a request.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("{0}")]
    BadRequest(String),
    #[error("model `{0}` is not a route of this gateway (see GET /v1/models)")]
    UnknownModel(String),
    #[error("the policy allows no provider for this request: {}", .0.iter().map(|v| format!("{}: {}", v.provider, v.reason)).collect::<Vec<_>>().join("; "))]
    Refused(Vec<policy::Verdict>),
    #[error("{message}")]
    Quota { message: String, retry_after_secs: u64 },
    #[error("degraded: no model could serve this request ({})", .attempts.iter().map(|a| format!("{}: {}", a.provider, a.error)).collect::<Vec<_>>().join("; "))]
    Degraded {
        attempts: Vec<Attempt>,
        /// Providers of the route the policy did not allow, with why.
        refused: Vec<policy::Verdict>,
    },
    #[error("the privacy engine failed; nothing was sent: {0}")]
    Privacy(#[from] rempart_privacy::PrivacyError),
    #[error("the audit ledger is unavailable; nothing was sent: {0}")]
    Audit(#[from] rempart_audit::AuditError),
    #[error("configuration: {0}")]
    Config(String),
}

impl GatewayError {
    /// The HTTP status a client receives.
    pub fn status(&self) -> u16 {
        match self {
            GatewayError::BadRequest(_) => 400,
            GatewayError::UnknownModel(_) => 404,
            GatewayError::Refused(_) => 403,
            GatewayError::Quota { .. } => 429,
            GatewayError::Degraded { .. } | GatewayError::Audit(_) => 503,
            GatewayError::Privacy(_) | GatewayError::Config(_) => 500,
        }
    }

    /// The error body in the client's format.
    pub fn body(&self, format: Format) -> Value {
        let message = self.to_string();
        match format {
            Format::OpenAi | Format::Responses => {
                let (kind, code) = match self {
                    GatewayError::BadRequest(_) => ("invalid_request_error", "invalid_request"),
                    GatewayError::UnknownModel(_) => ("invalid_request_error", "model_not_found"),
                    GatewayError::Refused(_) => ("policy_refused", "policy_refused"),
                    GatewayError::Quota { .. } => ("rate_limit_error", "quota_exceeded"),
                    GatewayError::Degraded { .. } => ("rempart_degraded", "no_model_available"),
                    GatewayError::Audit(_) => ("server_error", "audit_unavailable"),
                    GatewayError::Privacy(_) | GatewayError::Config(_) => ("server_error", "internal"),
                };
                let mut v = openai::error_body(&message, kind, code);
                self.details(&mut v["error"]);
                v
            }
            Format::Anthropic => {
                let kind = match self {
                    GatewayError::BadRequest(_) => "invalid_request_error",
                    GatewayError::UnknownModel(_) => "not_found_error",
                    GatewayError::Refused(_) => "permission_error",
                    GatewayError::Quota { .. } => "rate_limit_error",
                    GatewayError::Degraded { .. } | GatewayError::Audit(_) => "overloaded_error",
                    GatewayError::Privacy(_) | GatewayError::Config(_) => "api_error",
                };
                let mut v = anthropic::error_body(&message, kind);
                self.details(&mut v["error"]);
                v
            }
        }
    }

    fn details(&self, into: &mut Value) {
        match self {
            GatewayError::Refused(verdicts) => into["policy"] = serde_json::json!(verdicts),
            GatewayError::Degraded { attempts, refused } => {
                into["degraded"] = Value::Bool(true);
                into["attempts"] = serde_json::json!(attempts);
                into["policy"] = serde_json::json!(refused);
            }
            _ => {}
        }
    }
}

impl From<WireError> for GatewayError {
    fn from(e: WireError) -> Self {
        GatewayError::BadRequest(e.to_string())
    }
}
