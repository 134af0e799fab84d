//! A provider's OpenAI-compatible fine-tuning API: files (`POST /files`, purpose
//! `fine-tune`) and jobs (`POST /fine_tuning/jobs`, `GET /fine_tuning/jobs/{id}`), as
//! OpenAI's API reference describes them. `rempart tuning submit` decides with the gateway's
//! policy whether a data set may go to the provider at all; this only speaks the wire format,
//! over the same TLS and with the same key as inference.

use std::time::Duration;

use rand::Rng as _;
use rempart_config::gateway::Provider;
use serde_json::Value;

use crate::GatewayError;

/// Largest answer read from the provider.
const MAX_ANSWER: usize = 4 * 1024 * 1024;

/// Why a call to the fine-tuning API failed.
#[derive(Debug, thiserror::Error)]
pub enum TuningApiError {
    #[error("{0}")]
    Config(#[from] GatewayError),
    #[error("cannot reach provider `{provider}`: {reason}")]
    Unreachable { provider: String, reason: String },
    #[error("provider `{provider}` answered {status} to {what}: {message}")]
    Refused {
        provider: String,
        what: &'static str,
        status: u16,
        message: String,
    },
    #[error("provider `{provider}` answered {what} with something other than the API's object: {reason}")]
    Malformed {
        provider: String,
        what: &'static str,
        reason: String,
    },
}

/// The fine-tuning API of one provider.
#[derive(Debug)]
pub struct TuningApi {
    provider: String,
    base: String,
    http: reqwest::Client,
    key: Option<String>,
}

impl TuningApi {
    pub fn new(p: &Provider) -> Result<TuningApi, TuningApiError> {
        let key = crate::upstream::api_key(p)?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(crate::upstream::tls(p.ca_file.as_deref())?)
            .connect_timeout(Duration::from_secs(p.timeout_secs.min(10)))
            .timeout(Duration::from_secs(p.timeout_secs.max(120)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                GatewayError::Config(format!("provider `{}`: {}", p.name, crate::upstream::error_chain(&e)))
            })?;
        Ok(TuningApi {
            provider: p.name.clone(),
            base: p.base_url.trim_end_matches('/').to_owned(),
            http,
            key,
        })
    }

    /// Uploads `bytes` as file `name` for fine-tuning; the provider's file object (`id`, …).
    pub async fn upload(&self, name: &str, bytes: Vec<u8>) -> Result<Value, TuningApiError> {
        let boundary = format!("rempart-{:032x}", rand::rng().random::<u128>());
        let mut body = Vec::with_capacity(bytes.len() + 512);
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nfine-tune\r\n").as_bytes(),
        );
        // The name is ours (`train.jsonl`); quotes and line breaks could not be in it anyway.
        let name = name.replace(['"', '\r', '\n'], "_");
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/jsonl\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(&bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let rb = self
            .http
            .post(format!("{}/files", self.base))
            .header("content-type", format!("multipart/form-data; boundary={boundary}"))
            .body(body);
        self.call(rb, "a file upload", "file").await
    }

    /// Creates a fine-tuning job (`body` as `POST /fine_tuning/jobs` takes it).
    pub async fn create_job(&self, body: &Value) -> Result<Value, TuningApiError> {
        let rb = self.http.post(format!("{}/fine_tuning/jobs", self.base)).json(body);
        self.call(rb, "a fine-tuning job", "fine_tuning.job").await
    }

    /// A fine-tuning job as the provider sees it now.
    pub async fn job(&self, id: &str) -> Result<Value, TuningApiError> {
        // An id is the provider's (`ftjob-…`); anything that could leave the path is refused.
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(TuningApiError::Malformed {
                provider: self.provider.clone(),
                what: "a job id",
                reason: format!("`{id}` is not a job id"),
            });
        }
        let rb = self.http.get(format!("{}/fine_tuning/jobs/{id}", self.base));
        self.call(rb, "a job's status", "fine_tuning.job").await
    }

    async fn call(
        &self,
        rb: reqwest::RequestBuilder,
        what: &'static str,
        object: &str,
    ) -> Result<Value, TuningApiError> {
        let rb = match &self.key {
            Some(k) => rb.bearer_auth(k),
            None => rb,
        };
        let resp = rb.send().await.map_err(|e| TuningApiError::Unreachable {
            provider: self.provider.clone(),
            reason: crate::upstream::error_chain(&e),
        })?;
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        let mut resp = resp;
        while let Some(chunk) = resp.chunk().await.map_err(|e| TuningApiError::Unreachable {
            provider: self.provider.clone(),
            reason: crate::upstream::error_chain(&e),
        })? {
            if body.len() + chunk.len() > MAX_ANSWER {
                return Err(TuningApiError::Malformed {
                    provider: self.provider.clone(),
                    what,
                    reason: format!("an answer over {MAX_ANSWER} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        let value: Result<Value, _> = serde_json::from_slice(&body);
        if !(200..300).contains(&status) {
            let message = value
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned());
            return Err(TuningApiError::Refused {
                provider: self.provider.clone(),
                what,
                status,
                message,
            });
        }
        let value = value.map_err(|e| TuningApiError::Malformed {
            provider: self.provider.clone(),
            what,
            reason: e.to_string(),
        })?;
        if value["object"] != object || !value["id"].is_string() {
            return Err(TuningApiError::Malformed {
                provider: self.provider.clone(),
                what,
                reason: format!("expected an `{object}` object with an `id`"),
            });
        }
        Ok(value)
    }
}
