//! The sovereignty gateway over HTTP: OpenAI's `POST /v1/chat/completions`, `POST /v1/responses`
//! and `GET /v1/models` and Anthropic's `POST /v1/messages` for `gateway-client` tokens (sent as `Authorization:
//! Bearer` or `x-api-key`, as each SDK does), and the providers' state and revocation for
//! administrators. Errors on the compatible endpoints come in the client's own format.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use rempart_gateway::{Call, Caller, Format, Gateway, GatewayError, anthropic, openai, responses};
use serde_json::{Value, json};

use crate::{ApiError, AppState, auth};

/// Header by which a request declares its data class (a TLP label or one of the institution's
/// levels); it can only raise the client's own.
pub const CLASS_HEADER: &str = "x-rempart-data-class";

fn engine(state: &AppState) -> Result<&Gateway, ApiError> {
    state.gateway.as_ref().ok_or_else(|| {
        ApiError::NotConfigured("this server runs no gateway (no `[gateway]` routes are configured)".to_owned())
    })
}

fn failure(format: Format, e: &GatewayError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status.is_server_error() {
        tracing::warn!(error = %e, "gateway request not served");
    }
    let mut resp = (status, Json(e.body(format))).into_response();
    if let GatewayError::Quota { retry_after_secs, .. } = e
        && let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

async fn serve(state: AppState, caller: auth::Caller, headers: HeaderMap, body: Bytes, format: Format) -> Response {
    let Some(gateway) = state.gateway.clone() else {
        return failure(format, &GatewayError::UnknownModel("(no routes configured)".into()));
    };
    let parsed: Result<Value, _> = serde_json::from_slice(&body);
    let request = match parsed
        .map_err(|e| GatewayError::BadRequest(format!("the body is not JSON: {e}")))
        .and_then(|v| {
            match format {
                Format::OpenAi => openai::parse_request(&v),
                Format::Responses => responses::parse_request(&v),
                Format::Anthropic => anthropic::parse_request(&v),
            }
            .map_err(GatewayError::from)
        }) {
        Ok(r) => r,
        Err(e) => return failure(format, &e),
    };
    let declared_class = match headers.get(CLASS_HEADER).map(|v| v.to_str()) {
        None => None,
        Some(Ok(v)) => Some(v.trim().to_owned()),
        Some(Err(_)) => {
            return failure(
                format,
                &GatewayError::BadRequest(format!("`{CLASS_HEADER}` is not text")),
            );
        }
    };
    let stream = request.stream;
    let call = Call {
        caller: Caller {
            id: caller.0.id.clone(),
            name: caller.0.name.clone(),
        },
        format,
        declared_class,
        request,
    };
    if stream {
        match gateway.stream(call).await {
            Ok(rx) => {
                let body = Body::from_stream(stream::unfold(rx, |mut rx| async move {
                    rx.recv()
                        .await
                        .map(|chunk| (Ok::<_, std::convert::Infallible>(chunk), rx))
                }));
                Response::builder()
                    .header(header::CONTENT_TYPE, "text/event-stream")
                    .header(header::CACHE_CONTROL, "no-cache")
                    .body(body)
                    .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
            }
            Err(e) => failure(format, &e),
        }
    } else {
        match gateway.complete(call).await {
            Ok(v) => Json(v).into_response(),
            Err(e) => failure(format, &e),
        }
    }
}

/// `POST /v1/chat/completions` (OpenAI).
pub async fn chat_completions(
    State(state): State<AppState>,
    Extension(caller): Extension<auth::Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(state, caller, headers, body, Format::OpenAi).await
}

/// `POST /v1/responses` (OpenAI Responses, stateless: nothing is stored, here or at the
/// provider).
pub async fn responses(
    State(state): State<AppState>,
    Extension(caller): Extension<auth::Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(state, caller, headers, body, Format::Responses).await
}

/// `POST /v1/messages` (Anthropic).
pub async fn messages(
    State(state): State<AppState>,
    Extension(caller): Extension<auth::Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(state, caller, headers, body, Format::Anthropic).await
}

/// `GET /v1/models` (OpenAI): the routes this client may use.
pub async fn models(State(state): State<AppState>, Extension(caller): Extension<auth::Caller>) -> Response {
    let names = state.gateway.as_ref().map_or_else(Vec::new, |g| {
        g.models(&Caller {
            id: caller.0.id.clone(),
            name: caller.0.name.clone(),
        })
    });
    let created = caller.0.created.as_second();
    let data: Vec<Value> = names
        .iter()
        .map(|n| json!({"id": n, "object": "model", "created": created, "owned_by": "rempart"}))
        .collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

/// `GET /api/v1/gateway/providers`: every provider's state (role admin).
pub async fn providers(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"providers": engine(&state)?.providers()})))
}

pub(crate) async fn set_revoked(
    state: &AppState,
    caller: &auth::Caller,
    name: &str,
    revoked: bool,
) -> Result<Json<Value>, ApiError> {
    let gateway = engine(state)?;
    match gateway.set_revoked(&caller.actor(), name, revoked).await {
        Ok(true) => Ok(Json(json!({"provider": name, "revoked": revoked}))),
        Ok(false) => Err(ApiError::NotFound(format!("provider `{name}`"))),
        Err(GatewayError::Audit(a)) => Err(ApiError::Audit(a)),
        Err(e) => Err(ApiError::Internal(e.to_string())),
    }
}

/// `POST /api/v1/gateway/providers/{name}/revoke`: cut a provider off at once (role admin).
pub async fn revoke(
    State(state): State<AppState>,
    Extension(caller): Extension<auth::Caller>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_revoked(&state, &caller, &name, true).await
}

/// `POST /api/v1/gateway/providers/{name}/restore`: allow a revoked provider again (role admin).
pub async fn restore(
    State(state): State<AppState>,
    Extension(caller): Extension<auth::Caller>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_revoked(&state, &caller, &name, false).await
}
