//! One provider's client: the request in its wire format, retries with jittered backoff on
//! retryable errors only (429, 5xx, Anthropic's 529), `Retry-After` honoured up to a limit, and
//! streams read event by event with an idle timeout.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use rand::Rng;
use rempart_config::gateway::{Provider, ProviderKind, Secret};
use serde_json::Value;

use crate::chat::{ChatRequest, ChatResponse, Delta};
use crate::sse;
use crate::{GatewayError, WireError, anthropic, openai, responses};

/// Largest non-streamed answer read from a provider.
const MAX_RESPONSE: usize = 16 * 1024 * 1024;
/// First backoff step; doubled per attempt, with full jitter, up to [`BACKOFF_CAP`].
const BACKOFF_BASE: Duration = Duration::from_millis(200);
const BACKOFF_CAP: Duration = Duration::from_secs(4);

/// Why a call to a provider failed.
#[derive(Debug, Clone)]
pub struct CallError {
    /// The HTTP status, if the provider answered.
    pub status: Option<u16>,
    pub message: String,
    /// Whether the same request may succeed if repeated (rate limits, overload, server errors,
    /// timeouts, lost connections).
    pub retryable: bool,
    /// How long the provider asked to wait.
    pub retry_after: Option<Duration>,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(s) => write!(f, "HTTP {s}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl CallError {
    fn transport(e: &reqwest::Error) -> CallError {
        let what = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "cannot connect"
        } else {
            "transport error"
        };
        CallError::transient(format!("{what}: {}", error_chain(e)))
    }

    /// A failure worth another try or another provider (a stall, a cut, a garbled answer).
    fn transient(message: impl Into<String>) -> CallError {
        CallError {
            status: None,
            message: message.into(),
            retryable: true,
            retry_after: None,
        }
    }

    fn wire(e: WireError) -> CallError {
        CallError {
            status: None,
            message: e.to_string(),
            retryable: false,
            retry_after: None,
        }
    }

    /// Whether the failure says something about the provider's health (and so counts against
    /// its circuit breaker), rather than about this request.
    pub fn is_health(&self) -> bool {
        self.retryable || matches!(self.status, Some(401 | 403))
    }
}

/// What a provider's error answer says that is safe to keep: its machine-readable type, code
/// and parameter name, in the shapes OpenAI, Anthropic, Mistral, vLLM, llama.cpp, Ollama and
/// FastAPI validation errors use. Its message is never kept: providers quote the request in
/// it ("… '<the prompt>' is too long", a validation error's `input`), and that text must not
/// reach a log, the ledger, the provider status page or another client.
fn error_summary(body: &[u8]) -> String {
    const NOT_KEPT: &str = "its message is not kept: it may quote the request";
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return format!("the provider's error is not JSON ({NOT_KEPT})");
    };
    let token = |v: Option<&Value>| -> Option<String> {
        match v? {
            Value::String(s)
                if (1..=64).contains(&s.len())
                    && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-:[]/".contains(&b)) =>
            {
                Some(s.clone())
            }
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let first = |paths: &[&str]| paths.iter().find_map(|p| token(v.pointer(p)));
    let kind = first(&["/error/type", "/detail/0/type", "/error"]).or_else(|| {
        // `{"type": "error", "error": {…}}` (Anthropic) names its type inside; a top-level
        // `type` is the error's own elsewhere (Mistral, vLLM).
        token(v.get("type")).filter(|t| t != "error")
    });
    let code = first(&["/error/code", "/code"]);
    let param = first(&["/error/param", "/param"]).or_else(|| {
        let loc = v.pointer("/detail/0/loc")?.as_array()?;
        let joined: Vec<String> = loc.iter().filter_map(|p| token(Some(p))).collect();
        token(Some(&Value::String(joined.join("."))))
    });
    let mut said = Vec::new();
    if let Some(k) = kind {
        said.push(format!("type `{k}`"));
    }
    if let Some(c) = code {
        said.push(format!("code `{c}`"));
    }
    if let Some(p) = param {
        said.push(format!("parameter `{p}`"));
    }
    if said.is_empty() {
        format!("the provider's error gives no type or code ({NOT_KEPT})")
    } else {
        format!("provider error {} ({NOT_KEPT})", said.join(", "))
    }
}

/// An error and its causes on one line, joined by `: `.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// `Retry-After` (seconds or an HTTP date) or `retry-after-ms`.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = jiff::fmt::rfc2822::parse(v).ok()?.timestamp();
    let wait = when.as_second() - jiff::Timestamp::now().as_second();
    Some(Duration::from_secs(u64::try_from(wait).unwrap_or(0)))
}

/// A provider's HTTP client.
#[derive(Debug)]
pub struct Upstream {
    pub config: Provider,
    http: reqwest::Client,
    key: Option<String>,
}

/// rustls with the system's roots and, if given, the CA certificates of a PEM file.
pub fn tls(ca_file: Option<&std::path::Path>) -> Result<rustls::ClientConfig, GatewayError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        // A system certificate rustls cannot use is skipped, as every TLS client does.
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        use rustls_pki_types::pem::PemObject;
        let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|e| GatewayError::Config(format!("`{}`: {e}", path.display())))?;
        for cert in certs {
            let cert = cert.map_err(|e| GatewayError::Config(format!("`{}`: {e}", path.display())))?;
            roots
                .add(cert)
                .map_err(|e| GatewayError::Config(format!("`{}`: {e}", path.display())))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| GatewayError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A provider's API key, read from where the configuration says.
pub fn api_key(config: &Provider) -> Result<Option<String>, GatewayError> {
    Ok(match &config.api_key {
        Secret::None => None,
        Secret::Env(var) => Some(std::env::var(var).map_err(|_| {
            GatewayError::Config(format!(
                "provider `{}`: environment variable `{var}` (its API key) is not set",
                config.name
            ))
        })?),
        Secret::File(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| GatewayError::Config(format!("provider `{}`: `{}`: {e}", config.name, path.display())))?
                .trim()
                .to_owned(),
        ),
    })
}

impl Upstream {
    pub fn new(config: Provider) -> Result<Upstream, GatewayError> {
        let key = api_key(&config)?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls(config.ca_file.as_deref())?)
            .connect_timeout(Duration::from_secs(config.timeout_secs.min(10)))
            .pool_idle_timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| GatewayError::Config(format!("provider `{}`: {}", config.name, error_chain(&e))))?;
        Ok(Upstream { config, http, key })
    }

    fn endpoint(&self) -> String {
        match self.config.kind {
            ProviderKind::Anthropic => format!("{}/messages", self.config.base_url),
            ProviderKind::OpenAiResponses => format!("{}/responses", self.config.base_url),
            _ => format!("{}/chat/completions", self.config.base_url),
        }
    }

    fn body(&self, req: &ChatRequest, stream: bool) -> Value {
        match self.config.kind {
            ProviderKind::Anthropic => anthropic::render_request(req, &self.config.model, stream),
            ProviderKind::OpenAiResponses => responses::render_request(req, &self.config.model, stream),
            kind => openai::render_request(req, kind, &self.config.model, stream),
        }
    }

    /// One attempt: the response if its status is a success.
    async fn send(&self, body: &Value, stream: bool) -> Result<reqwest::Response, CallError> {
        let mut rb = self.http.post(self.endpoint()).json(body);
        if !stream {
            rb = rb.timeout(Duration::from_secs(self.config.timeout_secs));
        }
        rb = match (self.config.kind, &self.key) {
            (ProviderKind::Anthropic, Some(k)) => rb.header("x-api-key", k),
            (_, Some(k)) => rb.bearer_auth(k),
            (_, None) => rb,
        };
        if self.config.kind == ProviderKind::Anthropic {
            rb = rb.header("anthropic-version", anthropic::VERSION);
        }
        let send = rb.send();
        let resp = if stream {
            tokio::time::timeout(Duration::from_secs(self.config.timeout_secs), send)
                .await
                .map_err(|_| {
                    CallError::transient(format!("no response headers within {} s", self.config.timeout_secs))
                })?
        } else {
            send.await
        }
        .map_err(|e| CallError::transport(&e))?;
        let status = resp.status().as_u16();
        if resp.status().is_success() {
            return Ok(resp);
        }
        let wait = retry_after(resp.headers());
        let text = read_capped(resp, 64 * 1024).await.unwrap_or_default();
        Err(CallError {
            status: Some(status),
            message: error_summary(&text),
            retryable: matches!(status, 408 | 409 | 429 | 500..=599),
            retry_after: wait,
        })
    }

    /// Sends with retries: the same provider again only on a retryable error, after the wait it
    /// asked for (if no longer than allowed) or a jittered exponential backoff.
    async fn send_with_retries(&self, body: &Value, stream: bool) -> Result<(reqwest::Response, u32), CallError> {
        let mut attempt = 0u32;
        loop {
            match self.send(body, stream).await {
                Ok(r) => return Ok((r, attempt)),
                Err(e) if e.retryable && attempt < self.config.max_retries => {
                    let limit = Duration::from_secs(self.config.max_retry_after_secs);
                    let wait = match e.retry_after {
                        Some(w) if w > limit => return Err(e),
                        Some(w) => w,
                        None => backoff(attempt),
                    };
                    tracing::debug!(provider = %self.config.name, attempt, wait_ms = wait.as_millis(), error = %e, "retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// A complete answer.
    pub async fn complete(&self, req: &ChatRequest) -> Result<(ChatResponse, u32), CallError> {
        let body = self.body(req, false);
        let (resp, retries) = self.send_with_retries(&body, false).await?;
        let bytes = read_capped(resp, MAX_RESPONSE)
            .await
            .map_err(|e| CallError::transport(&e))?;
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| CallError::transient(format!("the provider's answer is not JSON: {e}")))?;
        let parsed = match self.config.kind {
            ProviderKind::Anthropic => anthropic::parse_response(&v),
            ProviderKind::OpenAiResponses => responses::parse_response(&v),
            _ => openai::parse_response(&v),
        }
        .map_err(CallError::wire)?;
        Ok((parsed, retries))
    }

    /// A stream of deltas, once the provider has accepted the request.
    pub async fn stream(&self, req: &ChatRequest) -> Result<(DeltaStream, u32), CallError> {
        let body = self.body(req, true);
        let (resp, retries) = self.send_with_retries(&body, true).await?;
        Ok((
            DeltaStream {
                body: Box::pin(resp.bytes_stream()),
                parser: sse::Parser::default(),
                reader: match self.config.kind {
                    ProviderKind::Anthropic => Reader::Anthropic(anthropic::EventReader::default()),
                    ProviderKind::OpenAiResponses => Reader::Responses(responses::EventReader::default()),
                    _ => Reader::OpenAi(openai::ChunkReader::default()),
                },
                idle: Duration::from_secs(self.config.timeout_secs),
                pending: std::collections::VecDeque::new(),
                done: false,
            },
            retries,
        ))
    }
}

fn backoff(attempt: u32) -> Duration {
    let ceiling = BACKOFF_BASE.saturating_mul(1u32 << attempt.min(16)).min(BACKOFF_CAP);
    let ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(rand::rng().random_range(0..=ms))
}

async fn read_capped(resp: reqwest::Response, max: usize) -> Result<Vec<u8>, reqwest::Error> {
    let mut out = Vec::new();
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        if out.len() + chunk.len() > max {
            out.extend_from_slice(&chunk[..max - out.len()]);
            break;
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[derive(Debug)]
enum Reader {
    OpenAi(openai::ChunkReader),
    Anthropic(anthropic::EventReader),
    Responses(responses::EventReader),
}

type ByteStream = std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Bytes, reqwest::Error>> + Send>>;

/// A provider's streamed answer, as deltas.
pub struct DeltaStream {
    body: ByteStream,
    parser: sse::Parser,
    reader: Reader,
    idle: Duration,
    pending: std::collections::VecDeque<Delta>,
    done: bool,
}

impl std::fmt::Debug for DeltaStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeltaStream")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl DeltaStream {
    /// The provider's id and model for the answer, once known.
    pub fn ids(&self) -> (Option<String>, Option<String>) {
        match &self.reader {
            Reader::OpenAi(r) => (r.id.clone(), r.model.clone()),
            Reader::Anthropic(r) => (r.id.clone(), r.model.clone()),
            Reader::Responses(r) => (r.id.clone(), r.model.clone()),
        }
    }

    /// The next delta; `None` at the end of a complete stream. A stream that stops without
    /// its end marker, stalls longer than the provider's timeout, or carries an error event
    /// is an error.
    pub async fn next(&mut self) -> Option<Result<Delta, CallError>> {
        loop {
            if let Some(d) = self.pending.pop_front() {
                return Some(Ok(d));
            }
            if self.done {
                return None;
            }
            let chunk = match tokio::time::timeout(self.idle, self.body.next()).await {
                Err(_) => {
                    return Some(Err(CallError::transient(format!(
                        "stream stalled for {} s",
                        self.idle.as_secs()
                    ))));
                }
                Ok(None) => {
                    return Some(Err(CallError::transient("stream ended before its end marker")));
                }
                Ok(Some(Err(e))) => return Some(Err(CallError::transport(&e))),
                Ok(Some(Ok(c))) => c,
            };
            let events = match self.parser.feed(&chunk) {
                Ok(e) => e,
                Err(e) => return Some(Err(CallError::wire(e))),
            };
            for ev in events {
                if let Err(e) = self.event(&ev) {
                    return Some(Err(e));
                }
            }
        }
    }

    fn event(&mut self, ev: &sse::Event) -> Result<(), CallError> {
        match &mut self.reader {
            Reader::OpenAi(r) => {
                if ev.data == "[DONE]" {
                    self.done = true;
                    return Ok(());
                }
                let v: Value = serde_json::from_str(&ev.data)
                    .map_err(|e| CallError::transient(format!("stream chunk is not JSON: {e}")))?;
                self.pending.extend(r.read(&v).map_err(CallError::wire)?);
            }
            Reader::Responses(r) => {
                let v: Value = serde_json::from_str(&ev.data)
                    .map_err(|e| CallError::transient(format!("stream event is not JSON: {e}")))?;
                self.pending
                    .extend(r.read(&v).map_err(|e| CallError::transient(e.to_string()))?);
                self.done = r.done;
            }
            Reader::Anthropic(r) => {
                let v: Value = serde_json::from_str(&ev.data)
                    .map_err(|e| CallError::transient(format!("stream event is not JSON: {e}")))?;
                if v.get("type").and_then(Value::as_str) == Some("message_stop") {
                    self.done = true;
                }
                // Anthropic's in-stream `overloaded_error` is worth another provider.
                self.pending
                    .extend(r.read(&v).map_err(|e| CallError::transient(e.to_string()))?);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Providers' error answers that quote the request: what is kept names the error and never
    /// the quoted text.
    #[test]
    fn an_error_answer_keeps_its_codes_and_never_its_message() {
        let prompt = "Analyse host PC-SECRET-0042 for user jan.kowalski";
        for (body, expect) in [
            (
                json!({"error": {"message": format!("This model's maximum context length is 8192 tokens. '{prompt}' is too long"), "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}),
                "type `invalid_request_error`, code `context_length_exceeded`, parameter `messages`",
            ),
            (
                json!({"type": "error", "error": {"type": "invalid_request_error", "message": format!("prompt: {prompt}")}}),
                "type `invalid_request_error`",
            ),
            (
                json!({"object": "error", "message": format!("bad input {prompt}"), "type": "BadRequestError", "param": null, "code": 400}),
                "type `BadRequestError`, code `400`",
            ),
            (
                json!({"detail": [{"type": "string_too_long", "loc": ["body", "messages", 0, "content"], "msg": "too long", "input": prompt}]}),
                "type `string_too_long`, parameter `body.messages.0.content`",
            ),
            (
                json!({"error": format!("model failed on: {prompt}")}),
                "gives no type or code",
            ),
            (
                json!({"error": {"message": prompt, "type": prompt}}),
                "gives no type or code",
            ),
        ] {
            let kept = error_summary(body.to_string().as_bytes());
            assert!(kept.contains(expect), "{body}: {kept}");
            assert!(kept.contains("not kept"), "{kept}");
            for word in ["PC-SECRET", "kowalski", "Analyse"] {
                assert!(!kept.contains(word), "{body}: {kept}");
            }
        }
        let kept = error_summary(format!("<html>{prompt}</html>").as_bytes());
        assert!(!kept.contains("PC-SECRET") && kept.contains("not JSON"), "{kept}");
    }

    #[test]
    fn retry_after_in_seconds_milliseconds_and_dates() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert("retry-after-ms", "250".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::ZERO), "a date in the past means now");
    }

    #[test]
    fn backoff_stays_under_its_ceiling() {
        for attempt in 0..20 {
            assert!(backoff(attempt) <= BACKOFF_CAP);
        }
        assert!(backoff(0) <= BACKOFF_BASE);
    }
}
