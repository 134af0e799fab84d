//! HTTP handlers.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use jiff::Timestamp;
use rempart_ingest::{DecodeOptions, decode_bytes};
use rempart_model::{EventId, Format};
use rempart_store::{AlertQuery, EventQuery, FieldFilter, Role};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::page::List;
use crate::pipeline::{Batch, Detectors};
use crate::{ApiError, AppState, auth};

/// Rejections listed in an ingest response; the rest are counted and quarantined.
const LISTED_REJECTIONS: usize = 20;

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.store.ping().await?;
    if let Some(bus) = &state.bus
        && !bus.connected()
    {
        return Err(ApiError::Busy("the bus is unreachable: reconnecting".into()));
    }
    Ok(Json(json!({"status": "ready"})))
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// `GET /openapi.json`: the document, stating this server's gateway routes and levels as
/// the caller may use them.
pub async fn openapi(State(state): State<AppState>, Extension(caller): Extension<auth::Caller>) -> impl IntoResponse {
    let terms = state
        .gateway
        .as_ref()
        .map(|g| crate::openapi::GatewayTerms {
            models: g.models(&rempart_gateway::Caller {
                id: caller.0.id.clone(),
                name: caller.0.name.clone(),
            }),
            levels: g.levels(),
        })
        .unwrap_or_default();
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::document_for(&terms),
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestParams {
    /// Force a format instead of detecting it.
    format: Option<String>,
    /// Name of the source, recorded with each event (default `http`).
    source: Option<String>,
}

#[derive(Debug, Serialize)]
struct RejectionView {
    location: Option<String>,
    reason: String,
}

/// `POST /api/v1/events`: NDJSON, a JSON array, or any format the decoders read. Answers only
/// once every event and rejection is durable.
pub async fn ingest_events(
    State(state): State<AppState>,
    Query(params): Query<IngestParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    let gzipped = match encoding.as_deref() {
        None | Some("identity") => false,
        Some("gzip" | "x-gzip") => true,
        Some(other) => return Err(ApiError::UnsupportedEncoding(other.to_owned())),
    };
    // A body labelled JSON is an object or an array (or objects, one per line): anything
    // else is refused before a decoder named by `format` reads it as something else.
    let labelled_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if labelled_json
        && !gzipped
        && let Some(first) = body.iter().find(|b| !b.is_ascii_whitespace())
        && !matches!(first, b'{' | b'[')
    {
        return Err(ApiError::BadRequest(
            "a body sent as application/json holds a JSON object or an array of them".into(),
        ));
    }
    let mut opts: DecodeOptions = (*state.decode).clone();
    if let Some(f) = params.format.as_deref() {
        opts.format = Some(f.parse::<Format>().map_err(|e| ApiError::BadRequest(e.to_string()))?);
    }
    let source = params.source.unwrap_or_else(|| "http".to_owned());
    if source.chars().count() > 256 {
        return Err(ApiError::BadRequest("`source` is longer than 256 characters".into()));
    }
    let cap = state.max_inflated_bytes;
    let _slot = state
        .decode_slots
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(format!("decode slots: {e}")))?;
    // In a cluster, the `detect` processes detect; here only what is decoded is handed on.
    let detectors = match state.bus {
        None => state.detectors(),
        Some(_) => Detectors::default(),
    };
    // Decoding (and inflating) is CPU-bound: keep it off the async workers.
    let mut batch = tokio::task::spawn_blocking(move || {
        let body = if gzipped {
            rempart_ingest::capped::gunzip(&body, cap).map_err(|e| match e.kind() {
                // Past the cap: too large. Anything else: the body is not valid gzip, the
                // client's error.
                std::io::ErrorKind::FileTooLarge => ApiError::PayloadTooLarge(format!("gzip body: {e}")),
                _ => ApiError::BadRequest(format!("gzip body does not inflate: {e}")),
            })?
        } else {
            body.to_vec()
        };
        let mut batch = Batch::default();
        decode_bytes(&source, &body, &opts, Timestamp::now(), &mut |d| batch.push(d));
        batch.detect_with(&detectors);
        Ok::<_, ApiError>(batch)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("decoder task failed: {e}")))??;
    match &state.bus {
        None => {
            batch
                .commit(
                    &*state.store,
                    &state.ledger,
                    &state.metrics,
                    "http",
                    state.incidents.as_ref(),
                )
                .await?
        }
        Some(_) => crate::pipeline::deliver(&mut batch, &state, "http").await?,
    }
    let status = if batch.events.is_empty() && !batch.rejected.is_empty() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let rejections: Vec<RejectionView> = batch
        .rejected
        .iter()
        .take(LISTED_REJECTIONS)
        .map(|r| RejectionView {
            location: r.origin.location.clone(),
            reason: r.reason.clone(),
        })
        .collect();
    Ok((
        status,
        Json(json!({
            "accepted": batch.events.len(),
            "rejected": batch.rejected.len(),
            "alerts": batch.alerts.len(),
            "by_format": batch.by_format(),
            "rejections": rejections,
        })),
    ))
}

/// `GET /api/v1/events?since=…&until=…&filter=field=value&q=text&limit=N`. `filter` may repeat.
pub async fn query_events(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<Json<Value>, ApiError> {
    let mut q = EventQuery::default();
    for (key, value) in form_pairs(raw.as_deref().unwrap_or("")) {
        match key.as_str() {
            "since" => q.since = Some(parse_time("since", &value)?),
            "until" => q.until = Some(parse_time("until", &value)?),
            "filter" => q.filters.push(FieldFilter::parse(&value)?),
            "q" => q.text = Some(value),
            "cursor" => q.before = Some(List::Events.position(&value)?),
            "limit" => {
                let n = value
                    .parse()
                    .map_err(|_| ApiError::BadRequest(format!("`limit` `{value}` is not a number")))?;
                q.limit = Some(crate::error::limit(Some(n), 100, EventQuery::MAX_LIMIT)?);
            }
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown query parameter `{other}` (expected since, until, filter, q, limit, cursor)"
                )));
            }
        }
    }
    let events = state.search_events(&q).await?;
    let next = List::Events.next(&events, q.effective_limit(), |e| (e.time, e.id));
    Ok(Json(json!({"count": events.len(), "events": events, "next": next})))
}

fn parse_time(name: &str, value: &str) -> Result<Timestamp, ApiError> {
    value
        .parse()
        .map_err(|e| ApiError::BadRequest(format!("`{name}` `{value}` is not an RFC 3339 time: {e}")))
}

/// Decodes `application/x-www-form-urlencoded` pairs, keeping repeated keys.
fn form_pairs(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 3 <= bytes.len() => match (hex_digit(bytes[i + 1]), hex_digit(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_digit(b: u8) -> Option<u8> {
    (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertParams {
    since: Option<String>,
    until: Option<String>,
    /// Minimum level.
    level: Option<String>,
    rule: Option<String>,
    limit: Option<u32>,
    /// Where the page starts: the `next` of the page before.
    cursor: Option<String>,
}

/// `GET /api/v1/alerts?since=…&until=…&level=high&rule=ID&limit=N`, newest first.
pub async fn query_alerts(
    State(state): State<AppState>,
    Query(p): Query<AlertParams>,
) -> Result<Json<Value>, ApiError> {
    let q = AlertQuery {
        since: p.since.as_deref().map(|s| parse_time("since", s)).transpose()?,
        until: p.until.as_deref().map(|s| parse_time("until", s)).transpose()?,
        min_level: p.level,
        rule_id: p.rule,
        before: List::Alerts.past(p.cursor.as_deref())?,
        limit: Some(crate::error::limit(p.limit, 100, EventQuery::MAX_LIMIT)?),
    };
    let alerts = state.store.query_alerts(&q).await?;
    let next = List::Alerts.next(&alerts, q.effective_limit(), |a| (a.time, a.id));
    Ok(Json(json!({"count": alerts.len(), "alerts": alerts, "next": next})))
}

pub async fn get_event(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id: EventId = id
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("`{id}` is not an event id")))?;
    let event = state
        .store
        .get_event(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("event `{id}`")))?;
    Ok(Json(json!(event)))
}

pub async fn stats(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({
        "events": state.store.count_events().await?,
        "quarantined": state.store.count_quarantine().await?,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    limit: Option<u32>,
    /// Where the page starts: the `next` of the page before.
    cursor: Option<String>,
}

pub async fn list_quarantine(
    State(state): State<AppState>,
    Query(p): Query<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let limit = crate::error::limit(p.limit, 100, 10_000)?;
    let items = state
        .store
        .list_quarantine(List::Quarantine.past(p.cursor.as_deref())?, limit)
        .await?;
    let next = List::Quarantine.next(&items, limit, |q| (q.received, q.id));
    Ok(Json(json!({"count": items.len(), "items": items, "next": next})))
}

pub async fn list_tokens(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"tokens": state.store.list_tokens().await?})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    name: String,
    role: String,
    /// The person the token acts for (approvals count people); the caller when absent.
    owner: Option<String>,
}

pub async fn create_token(
    State(state): State<AppState>,
    Extension(caller): Extension<auth::Caller>,
    Json(req): Json<CreateToken>,
) -> Result<impl IntoResponse, ApiError> {
    let role: Role = req.role.parse().map_err(ApiError::BadRequest)?;
    if req.name.is_empty() || req.name.chars().count() > 128 {
        return Err(ApiError::BadRequest("`name` must be 1 to 128 characters".into()));
    }
    let (actor, person) = (caller.actor(), caller.person());
    let by = auth::By {
        actor: &actor,
        person: &person,
    };
    let new = auth::NewToken {
        name: &req.name,
        role,
        owner: req.owner.as_deref(),
    };
    let (record, secret) = auth::create_token(&*state.store, &state.ledger, by, new).await?;
    tracing::info!(token_id = %record.id, role = %record.role, "token created");
    let mut body: BTreeMap<&str, Value> = BTreeMap::new();
    body.insert("token", json!(record));
    body.insert("secret", json!(secret));
    Ok((StatusCode::CREATED, Json(body)))
}

pub async fn revoke_token(
    State(state): State<AppState>,
    Extension(caller): Extension<auth::Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if auth::revoke_token(&*state.store, &state.ledger, &caller.actor(), &id).await? {
        state.tokens.clear();
        tracing::info!(token_id = %id, "token revoked");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("token `{id}`")))
    }
}
