//! API errors and their one mapping to HTTP status codes.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Everything an API handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or malformed `Authorization: Bearer` token (or no console session)")]
    Unauthenticated,
    #[error("token role `{held}` may not do this (requires `{required}`)")]
    Forbidden { held: String, required: String },
    /// A state-changing request through a console session without proof it came from the
    /// console's own pages.
    #[error("{0}")]
    Csrf(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0} not found")]
    NotFound(String),
    /// The request is well formed but the resource's state does not allow it.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The caller made more requests this minute than `server.requests_per_minute`.
    #[error("more than {limit} requests a minute from this caller: retry in {retry} s")]
    RateLimited { limit: u32, retry: u64 },
    /// Every slot for this kind of work is taken; retry shortly.
    #[error("{0}")]
    Busy(String),
    /// Too many failed authentications from this address lately.
    #[error("too many failed sign-ins from this address: retry in {0} s")]
    TooManyFailures(u64),
    #[error("unsupported `Content-Encoding: {0}` (send gzip or identity)")]
    UnsupportedEncoding(String),
    #[error("store unavailable: {0}")]
    Store(#[from] rempart_store::StoreError),
    #[error("audit ledger: {0}")]
    Audit(#[from] rempart_audit::AuditError),
    /// A service this request needs (the identity provider) did not answer.
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.status_and_code().0
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            ApiError::Forbidden { .. } => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::Csrf(_) => (StatusCode::FORBIDDEN, "csrf"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::TooManyFailures(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_failures"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::UnsupportedEncoding(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_encoding"),
            ApiError::Store(rempart_store::StoreError::InvalidQuery(_)) => (StatusCode::BAD_REQUEST, "invalid_query"),
            ApiError::Store(rempart_store::StoreError::Interrupted(_)) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "query_budget_exceeded")
            }
            ApiError::Busy(_) => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            ApiError::Store(rempart_store::StoreError::Damaged(_)) => {
                (StatusCode::SERVICE_UNAVAILABLE, "store_damaged")
            }
            ApiError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
            ApiError::Audit(rempart_audit::AuditError::NoSuchRecord(_)) => (StatusCode::NOT_FOUND, "not_found"),
            // A sequence number past what a ledger can hold (above 2^63): the caller's error.
            ApiError::Audit(rempart_audit::AuditError::Store(rempart_store::StoreError::InvalidQuery(_))) => {
                (StatusCode::BAD_REQUEST, "invalid_query")
            }
            ApiError::Audit(rempart_audit::AuditError::Config(_) | rempart_audit::AuditError::Checkpoint(_)) => {
                (StatusCode::BAD_REQUEST, "bad_request")
            }
            ApiError::Audit(_) => (StatusCode::SERVICE_UNAVAILABLE, "audit_unavailable"),
            ApiError::Unavailable(_) => (StatusCode::BAD_GATEWAY, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let mut resp = (
            status,
            Json(json!({"error": {"code": code, "message": self.to_string()}})),
        )
            .into_response();
        let retry = match &self {
            ApiError::TooManyFailures(secs) | ApiError::RateLimited { retry: secs, .. } => Some(*secs),
            ApiError::Busy(_) => Some(5),
            _ => None,
        };
        if let Some(secs) = retry
            && let Ok(v) = secs.to_string().parse()
        {
            resp.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
        }
        if status == StatusCode::UNAUTHORIZED
            && let Ok(v) = "Bearer realm=\"rempart\"".parse()
        {
            resp.headers_mut().insert(axum::http::header::WWW_AUTHENTICATE, v);
        }
        resp
    }
}
