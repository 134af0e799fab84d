//! The analyst console: server-rendered pages over the same services the API calls.
//!
//! Pages are `askama` templates (compiled into the binary, auto-escaping) with one small script
//! of Rempart's own (`assets/console.js`: keyboard navigation, live updates by server-sent
//! events, selection); there is no build step and nothing is fetched from anywhere at run time.
//! Every page sits behind [`crate::auth::admit`], the API's own check, with the role the
//! equivalent API route requires; a person holds a session cookie (see [`session`]) instead
//! of a bearer token. Every state-changing form carries the session's CSRF token, and every
//! response carries a Content-Security-Policy that allows no inline script and no other origin.
//!
//! Everything that came from telemetry, intelligence or a model is printed through
//! [`text::Text`], which escapes it and shows hidden characters as markers.

mod charts;
mod pages;
pub mod session;
pub mod text;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use rempart_store::Role;

pub use session::{Principal, Session, Sessions};

use crate::{ApiError, AppState};

/// The console's own state: sessions and sign-in codes.
#[derive(Debug, Default)]
pub struct Console {
    pub sessions: Sessions,
    /// Whether the console is served over TLS (cookies are then `Secure` and HSTS is sent).
    pub secure: bool,
}

impl Console {
    /// The live session a request's cookie names, if any.
    pub fn session_of(&self, req: &Request) -> Option<Session> {
        let cookies = req.headers().get_all(header::COOKIE);
        cookies
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|h| session::cookie(h, session::COOKIE))
            .and_then(|id| self.sessions.find(id))
    }

    /// The `Set-Cookie` value that hands a browser session `id`.
    pub(crate) fn set_cookie(&self, id: &str) -> String {
        format!(
            "{}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
            session::COOKIE,
            session::ABSOLUTE.as_secs(),
            if self.secure { "; Secure" } else { "" }
        )
    }
}

/// Most bytes of a form the CSRF check reads; larger bodies are refused before any handler.
const MAX_FORM_BYTES: usize = 8 * 1024 * 1024;

/// Checks that a state-changing request through `session` came from the console's own pages:
/// a same-origin `Origin` (when sent; browsers send it on every POST), and the session's CSRF
/// token as `x-csrf-token` or as the `csrf` field of a URL-encoded form. Returns the request
/// with its body intact.
pub async fn check_csrf(req: Request, session: &Session) -> Result<Request, ApiError> {
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let origin = origin.to_str().unwrap_or("");
        let same = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|o| o == host);
        if !same {
            return Err(ApiError::Csrf(format!(
                "request from origin `{origin}` refused: only this server's own pages may change state"
            )));
        }
    }
    if let Some(token) = req.headers().get("x-csrf-token").and_then(|v| v.to_str().ok()) {
        return if session::same_secret(token, &session.csrf) {
            Ok(req)
        } else {
            Err(ApiError::Csrf("wrong CSRF token".into()))
        };
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(ApiError::Csrf(
            "a state-changing request through a console session needs its CSRF token".into(),
        ));
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|e| ApiError::PayloadTooLarge(format!("form body: {e}")))?;
    let ok = form_urlencoded::parse(&bytes).any(|(k, v)| k == "csrf" && session::same_secret(&v, &session.csrf));
    if !ok {
        return Err(ApiError::Csrf("missing or wrong CSRF token in the form".into()));
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// The console's routes: sign-in and assets open to all, every page behind its role.
pub fn routes(state: &AppState) -> Router<AppState> {
    let page = |role: Role, routes: Router<AppState>| {
        routes.route_layer(middleware::from_fn_with_state((state.clone(), role), require_page))
    };
    let viewer = page(
        Role::Viewer,
        Router::new()
            .route("/", get(pages::queue))
            .route("/queue/rows", get(pages::queue_rows))
            .route("/incidents/{id}", get(pages::incident))
            .route("/approvals", get(pages::approvals))
            .route("/search", get(pages::search))
            .route("/events/{id}", get(pages::event))
            .route("/health", get(pages::health))
            .route("/live", get(pages::live)),
    );
    let analyst = page(
        Role::Analyst,
        Router::new()
            .route("/incidents/{id}/update", post(pages::update))
            .route("/incidents/bulk", post(pages::bulk))
            .route("/incidents/{id}/split", post(pages::split))
            .route("/incidents/{id}/held", post(pages::decide_held))
            .route("/verdicts/{id}/feedback", post(pages::feedback)),
    );
    let approver = page(
        Role::Approver,
        Router::new().route("/approvals/{id}/vote", post(pages::vote)),
    );
    let admin = page(
        Role::Admin,
        Router::new()
            .route("/gateway", get(pages::gateway))
            .route("/gateway/{name}/{switch}", post(pages::switch_provider))
            .route("/privacy", get(pages::privacy))
            .route("/privacy/erase", post(pages::erase)),
    );
    let auditor = page(Role::Auditor, Router::new().route("/audit", get(pages::audit)));
    // Any signed-in person may sign out; the role check is the weakest (`viewer` or `auditor`
    // would each exclude the other), so the handler finds the session itself.
    Router::new()
        .route("/sign-in", get(pages::sign_in_form).post(pages::sign_in))
        .route("/sign-in/link", get(pages::sign_in_link))
        .route("/sign-in/oidc", get(pages::oidc_begin))
        .route("/sign-in/oidc/callback", get(pages::oidc_callback))
        .route("/sign-out", post(pages::sign_out))
        .route("/assets/{name}", get(asset))
        .merge(viewer)
        .merge(analyst)
        .merge(approver)
        .merge(admin)
        .merge(auditor)
}

/// Page middleware: [`crate::auth::admit`], with its refusals as pages: no session sends the
/// browser to sign in, a role that does not suffice gets a page saying which is needed.
async fn require_page(State((state, required)): State<(AppState, Role)>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    match crate::auth::admit(&state, Some(required), req).await {
        Ok(req) => next.run(req).await,
        Err(ApiError::Unauthenticated) if path != "/live" => {
            Redirect::to(&format!("/sign-in?next={}", pages::encode(&path))).into_response()
        }
        Err(e) => pages::error_page(&e),
    }
}

/// Headers every response of the server carries; pages get a strict policy: scripts, styles
/// and images from this server only, no inline script or style, no framing, forms only here.
pub async fn security_headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, name: &'static str, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(
        h,
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    // `same-origin`, not `no-referrer`: with no referrer at all, browsers send `Origin: null`
    // on form posts, and the CSRF check could not tell the console's own forms from others.
    set(h, "referrer-policy", "same-origin");
    set(h, "cross-origin-opener-policy", "same-origin");
    set(h, "cross-origin-resource-policy", "same-origin");
    set(
        h,
        "permissions-policy",
        "camera=(), microphone=(), geolocation=(), payment=()",
    );
    if state.console.secure {
        set(h, "strict-transport-security", "max-age=31536000; includeSubDomains");
    }
    // Answers hold personal data, tokens and verdicts: no cache keeps them. Only the
    // console's static assets may be cached.
    if !h.contains_key(axum::http::header::CACHE_CONTROL) {
        set(h, "cache-control", "no-store");
    }
    resp
}

const CSS: &str = include_str!("../../assets/console.css");
const JS: &str = include_str!("../../assets/console.js");

/// `GET /assets/{name}`: the console's stylesheet and script, compiled into the binary.
async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    let (body, kind) = match name.as_str() {
        "console.css" => (CSS, "text/css; charset=utf-8"),
        "console.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}
