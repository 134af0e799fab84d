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
    /// This server does not host the service the route belongs to (a cluster node in another
    /// role, or a server started without it).
    #[error("{0}")]
    NotConfigured(String),
    /// The ledger could not record what the request would do, so nothing was done.
    #[error("the ledger refused the record: {0}")]
    LedgerRefused(String),
    /// A service this request needs (the identity provider) did not answer.
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// A list's `limit`: `default` when absent, else 1 to `max` (the bounds the API document
/// states), refused outside them rather than quietly clamped.
pub fn limit(value: Option<u32>, default: u32, max: u32) -> Result<u32, ApiError> {
    match value {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::BadRequest(format!("`limit` {n} is outside 1 to {max}"))),
    }
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
            ApiError::NotConfigured(_) => (StatusCode::NOT_FOUND, "not_configured"),
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
            ApiError::Audit(_) | ApiError::LedgerRefused(_) => (StatusCode::SERVICE_UNAVAILABLE, "audit_unavailable"),
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

/// One error shape for every answer, including those no handler wrote (and a `Retry-After` on
/// every 429 and 503): a body cut off by its
/// clock (408 `body_timeout`, and the connection closed), and the framework's own refusals
/// (a body that is not JSON, a wrong content type, an unknown route or method), which come as
/// plain text or empty. They become `{"error": {"code", "message"}}` (with `type` on the
/// gateway's `/v1/` routes, in Anthropic's shape on `/v1/messages`), as handlers answer.
pub async fn uniform(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use axum::http::header;
    let clock = req.extensions().get::<crate::listen::BodyClock>().cloned();
    let path = req.uri().path().to_owned();
    let resp = next.run(req).await;
    let status = resp.status();
    if let Some(clock) = clock
        && clock.ran_out()
    {
        let mut resp = shaped(
            &path,
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            "the request body came too slowly or paused too long: send it at once (see `server.body_timeout_secs`)",
        );
        resp.headers_mut()
            .insert(header::CONNECTION, header::HeaderValue::from_static("close"));
        return resp;
    }
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let mut resp = resp;
    // Every 429 and 503 says when to come back; those that do not say it themselves (a store
    // or ledger unavailable, a degraded gateway, a process not ready) say half a minute.
    if matches!(status, StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE)
        && !resp.headers().contains_key(header::RETRY_AFTER)
    {
        resp.headers_mut().insert(
            header::RETRY_AFTER,
            header::HeaderValue::from_static(DEFAULT_RETRY_AFTER),
        );
    }
    let content_type = resp.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let plain = content_type.is_some_and(|t| t.starts_with("text/plain"));
    let empty_api = content_type.is_none() && (path.starts_with("/api/") || path.starts_with("/v1/"));
    if !plain && !empty_api {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let message = match text.trim() {
        "" => status.canonical_reason().unwrap_or("error").to_owned(),
        t => t.to_owned(),
    };
    let mut shaped = shaped(&path, status, code_of(status), &message);
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            shaped.headers_mut().insert(name.clone(), value.clone());
        }
    }
    shaped
}

/// Seconds a client waits before trying again after a 429 or 503 that gives no time of its own.
const DEFAULT_RETRY_AFTER: &str = "30";

/// The machine-readable code of an answer no handler wrote, by its status.
fn code_of(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthenticated",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "body_timeout",
        411 => "length_required",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "invalid_body",
        429 => "rate_limited",
        503 => "unavailable",
        s if s >= 500 => "internal",
        _ => "bad_request",
    }
}

/// An error answer in the shape the route's clients read.
fn shaped(path: &str, status: StatusCode, code: &str, message: &str) -> Response {
    let kind = if status.is_server_error() {
        "server_error"
    } else {
        "invalid_request_error"
    };
    let body = if path == "/v1/messages" {
        json!({"type": "error", "error": {"type": kind, "message": message}})
    } else if path.starts_with("/v1/") {
        json!({"error": {"code": code, "message": message, "type": kind, "param": null}})
    } else {
        json!({"error": {"code": code, "message": message}})
    };
    (status, Json(body)).into_response()
}
