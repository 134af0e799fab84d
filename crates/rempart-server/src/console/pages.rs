//! The console's pages and forms. Each handler reads through the same services as the API
//! and changes state only through the functions the API's handlers call, so a change made in
//! the console is checked and recorded exactly as one made through the API.

use std::collections::{BTreeMap, HashMap};

use askama::Template;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use futures_util::Stream;
use jiff::Timestamp;
use rempart_model::{Alert, Classification, EventId, Incident, IncidentSeverity, IncidentStatus, Verdict};
use rempart_respond::approval::{Approval, ApprovalStatus};
use rempart_store::{EventQuery, FieldFilter, IncidentQuery, Role};
use serde::Deserialize;

use super::charts;
use super::session::Session;
use super::text::Text;
use crate::auth::Caller;
use crate::{ApiError, AppState};

/// Percent-encodes a value for a query string or a path segment.
pub fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `2026-12-05 07:20:47Z`.
fn when(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// What every page shows around its content.
#[derive(Debug, Clone)]
pub struct Page {
    pub title: String,
    /// The section highlighted in the navigation.
    pub section: &'static str,
    pub role: Role,
    /// The token the person signed in with, as records name it.
    pub who: String,
    /// The session's CSRF token (empty when the page was read with a bearer token).
    pub csrf: String,
}

impl Page {
    fn new(title: impl Into<String>, section: &'static str, caller: &Caller, session: Option<&Session>) -> Page {
        Page {
            title: title.into(),
            section,
            role: caller.0.role,
            who: format!("{} ({})", caller.0.name, caller.0.role),
            csrf: session.map(|s| s.csrf.clone()).unwrap_or_default(),
        }
    }
    pub fn viewer(&self) -> bool {
        self.role.grants(Role::Viewer)
    }
    pub fn analyst(&self) -> bool {
        self.role.grants(Role::Analyst)
    }
    pub fn approver(&self) -> bool {
        self.role.grants(Role::Approver)
    }
    pub fn admin(&self) -> bool {
        self.role == Role::Admin
    }
    pub fn auditor(&self) -> bool {
        self.role.grants(Role::Auditor)
    }
}

fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "console page did not render");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage {
    status: u16,
    message: Text,
}

/// An error as a page, with the status the API would answer.
pub fn error_page(e: &ApiError) -> Response {
    let status = e.status();
    let mut resp = render(&ErrorPage {
        status: status.as_u16(),
        message: Text::new(e.to_string()),
    });
    *resp.status_mut() = status;
    resp
}

/// A page handler's error: answered as a page with the status the API would give.
#[derive(Debug)]
pub struct PageError(ApiError);

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        error_page(&self.0)
    }
}

macro_rules! page_error_from {
    ($($t:ty),*) => {$(
        impl From<$t> for PageError {
            fn from(e: $t) -> Self {
                PageError(e.into())
            }
        }
    )*};
}

page_error_from!(
    ApiError,
    rempart_store::StoreError,
    rempart_audit::AuditError,
    crate::incidents::IncidentError,
    crate::respond::ResponseError
);

type PageResult = Result<Response, PageError>;

use crate::incident_api::incidents;
use crate::respond_api::response;

fn parse_id(s: &str, what: &str) -> Result<EventId, ApiError> {
    s.parse()
        .map_err(|_| ApiError::BadRequest(format!("`{s}` is not a {what} id (a UUID)")))
}

fn parse_time(s: &Option<String>, what: &str) -> Result<Option<Timestamp>, ApiError> {
    let Some(s) = s.as_deref().map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    // An RFC 3339 time, or what a `datetime-local` input sends (taken as UTC).
    s.parse::<Timestamp>()
        .or_else(|_| format!("{s}:00Z").parse())
        .or_else(|_| format!("{s}Z").parse())
        .map(Some)
        .map_err(|_| {
            ApiError::BadRequest(format!(
                "`{what}` is not a time: `{s}` (RFC 3339, e.g. 2026-12-05T07:00:00Z)"
            ))
        })
}

/// The pairs of a URL-encoded form, repeated names kept (a selection of any size).
fn form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

// ---------------------------------------------------------------------------------------------
// Sign-in

#[derive(Template)]
#[template(path = "console/sign_in.html")]
struct SignIn {
    next: String,
    problem: Option<String>,
    /// The identity provider people sign in with, if one is configured.
    provider: Option<String>,
}

impl SignIn {
    fn next_query(&self) -> String {
        encode(&self.next)
    }
}

fn sign_in_page(state: &AppState, next: String, problem: Option<String>, status: StatusCode) -> Response {
    let mut resp = render(&SignIn {
        next,
        problem,
        provider: state.oidc.as_ref().map(|o| o.settings().issuer.clone()),
    });
    *resp.status_mut() = status;
    resp
}

#[derive(Debug, Deserialize)]
pub struct NextParam {
    next: Option<String>,
}

/// Only a path on this server is a place to go after signing in (no `//host`, no scheme).
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') && !n.contains("://") => {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// `GET /sign-in`.
pub async fn sign_in_form(State(state): State<AppState>, Query(p): Query<NextParam>) -> Response {
    sign_in_page(&state, local_path(p.next.as_deref()), None, StatusCode::OK)
}

/// Where a role starts: the queue, or the ledger for auditors.
fn home(role: Role) -> &'static str {
    if role.grants(Role::Viewer) { "/" } else { "/audit" }
}

async fn open_session(state: &AppState, token_hash: &str, next: &str) -> PageResult {
    let token = crate::auth::token_by_hash(state, token_hash)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    if !(token.role.grants(Role::Viewer) || token.role.grants(Role::Auditor)) {
        return Err(ApiError::Forbidden {
            held: token.role.to_string(),
            required: "viewer, analyst, approver, auditor or admin".into(),
        }
        .into());
    }
    let id = state
        .console
        .sessions
        .open(super::Principal::Token(token_hash.to_owned()))
        .map_err(ApiError::Internal)?;
    state
        .ledger
        .append(rempart_audit::Draft::new(
            format!("token:{}", token.id),
            rempart_audit::kind::CONSOLE_SIGN_IN,
            serde_json::json!({"token": token.id, "role": token.role}),
        ))
        .await?;
    let to = if next == "/" { home(token.role) } else { next };
    let mut resp = Redirect::to(to).into_response();
    if let Ok(v) = state.console.set_cookie(&id).parse() {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

/// `POST /sign-in`: a person pastes an API token; they get a session, never the token back.
pub async fn sign_in(State(state): State<AppState>, req: Request) -> Response {
    let ip = req
        .extensions()
        .get::<axum::extract::ConnectInfo<crate::tls::Peer>>()
        .map(|c| c.0.addr.ip());
    if let Some(wait) = ip.and_then(|ip| state.auth_failures.blocked(ip)) {
        return error_page(&ApiError::TooManyFailures(wait));
    }
    // The sign-in form is open to all: it must at least come from this server's page.
    if let Some(origin) = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if origin.split_once("://").map(|(_, h)| h) != Some(host) {
            return error_page(&ApiError::Csrf(format!("sign-in from origin `{origin}` refused")));
        }
    }
    let body = match axum::body::to_bytes(req.into_body(), 64 * 1024).await {
        Ok(b) => b,
        Err(e) => return error_page(&ApiError::PayloadTooLarge(e.to_string())),
    };
    let pairs = form(&body);
    let next = local_path(field(&pairs, "next"));
    let secret = field(&pairs, "token").unwrap_or("").trim();
    if !secret.starts_with(crate::auth::TOKEN_PREFIX) {
        return sign_in_page(
            &state,
            next,
            Some("that is not a Rempart token (they begin with rmp_)".into()),
            StatusCode::UNAUTHORIZED,
        );
    }
    match open_session(&state, &crate::auth::hash_token(secret), &next).await {
        Ok(r) => r,
        Err(PageError(ApiError::Unauthenticated)) => {
            state.metrics.auth_denied.inc();
            if let Some(wait) = ip.and_then(|ip| state.auth_failures.fail(ip)) {
                return error_page(&ApiError::TooManyFailures(wait));
            }
            sign_in_page(
                &state,
                next,
                Some("unknown or revoked token".into()),
                StatusCode::UNAUTHORIZED,
            )
        }
        Err(e) => e.into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub struct CodeParam {
    code: String,
}

/// `GET /sign-in/link?code=…`: a one-time link (the demo prints one) opens a session.
pub async fn sign_in_link(State(state): State<AppState>, Query(p): Query<CodeParam>) -> Response {
    match state.console.sessions.redeem(&p.code) {
        Some(hash) => open_session(&state, &hash, "/")
            .await
            .unwrap_or_else(IntoResponse::into_response),
        None => sign_in_page(
            &state,
            "/".into(),
            Some("this sign-in link was used already or has expired".into()),
            StatusCode::UNAUTHORIZED,
        ),
    }
}

/// The cookie that binds an OpenID sign-in to the browser that started it. `SameSite=Lax`:
/// the provider's redirect back is a cross-site navigation, which `Strict` cookies miss.
const OIDC_COOKIE: &str = "rempart_oidc";

/// This server's callback address, as the browser reaches it (or as configured).
fn redirect_uri(state: &AppState, headers: &axum::http::HeaderMap) -> Result<String, ApiError> {
    let oidc = state
        .oidc
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("sign-in with an identity provider (no `[oidc]` configured)".into()))?;
    if let Some(u) = &oidc.settings().redirect_url {
        return Ok(u.clone());
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c)))
        .ok_or_else(|| ApiError::BadRequest("no usable `Host` header".into()))?;
    let scheme = if state.console.secure { "https" } else { "http" };
    Ok(format!("{scheme}://{host}/sign-in/oidc/callback"))
}

/// `GET /sign-in/oidc`: off to the identity provider (authorization code flow with PKCE).
pub async fn oidc_begin(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Query(p): Query<NextParam>,
) -> Result<Response, PageError> {
    let uri = redirect_uri(&state, &headers)?;
    let oidc = state
        .oidc
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("`[oidc]`".into()))?;
    let (to, browser) = oidc
        .begin(&uri, &local_path(p.next.as_deref()))
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let mut resp = Redirect::to(&to).into_response();
    let cookie = format!(
        "{OIDC_COOKIE}={browser}; Path=/sign-in/oidc; HttpOnly; SameSite=Lax; Max-Age={}{}",
        crate::oidc::SIGN_IN_LIFETIME.as_secs(),
        if state.console.secure { "; Secure" } else { "" }
    );
    if let Ok(v) = cookie.parse() {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

#[derive(Debug, Deserialize)]
pub struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

#[derive(Template)]
#[template(path = "console/continue.html")]
struct Continue {
    to: String,
    message: String,
}

/// `GET /sign-in/oidc/callback`: the provider sends the browser back with a code; the ID
/// token is verified, the role mapped, the session opened. Every outcome is recorded.
pub async fn oidc_callback(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Query(p): Query<CallbackParams>,
) -> Response {
    let Some(oidc) = state.oidc.clone() else {
        return error_page(&ApiError::NotFound("`[oidc]`".into()));
    };
    let browser = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|h| super::session::cookie(h, OIDC_COOKIE))
        .map(str::to_owned);
    let outcome = match (&p.code, &p.state, &p.error) {
        (_, _, Some(e)) => Err(crate::oidc::OidcError::Refused(format!(
            "{e}: {}",
            p.error_description.as_deref().unwrap_or("")
        ))),
        (Some(code), Some(st), None) => oidc.finish(st, code, browser.as_deref()).await,
        _ => Err(crate::oidc::OidcError::Flow(
            "the callback carries no `code` and `state`".into(),
        )),
    };
    let record = |kind: &'static str, actor: String, payload: serde_json::Value| {
        let ledger = state.ledger.clone();
        async move { ledger.append(rempart_audit::Draft::new(actor, kind, payload)).await }
    };
    match outcome {
        Ok((person, next)) => {
            let actor = person.actor();
            let payload = serde_json::json!({"method": "oidc", "issuer": oidc.settings().issuer, "sub": person.sub,
                                             "name": person.name, "role": person.role, "groups": person.groups});
            if let Err(e) = record(rempart_audit::kind::CONSOLE_SIGN_IN, actor, payload).await {
                return error_page(&e.into());
            }
            let role = person.role;
            let id = match state.console.sessions.open(super::Principal::Person(Box::new(person))) {
                Ok(id) => id,
                Err(e) => return error_page(&ApiError::Internal(e)),
            };
            let to = if next == "/" { home(role).to_owned() } else { next };
            // A page of our own moves on to `to`: the session cookie is `SameSite=Strict`, and a
            // redirect still belongs to the provider's cross-site navigation.
            let mut resp = render(&Continue {
                to,
                message: "Signed in.".into(),
            });
            for cookie in [
                state.console.set_cookie(&id),
                format!("{OIDC_COOKIE}=; Path=/sign-in/oidc; HttpOnly; SameSite=Lax; Max-Age=0"),
            ] {
                if let Ok(v) = cookie.parse() {
                    resp.headers_mut().append(header::SET_COOKIE, v);
                }
            }
            resp
        }
        Err(e) => {
            state.metrics.auth_denied.inc();
            tracing::info!(error = %e, "OpenID sign-in refused");
            if let Err(le) = record(
                rempart_audit::kind::CONSOLE_SIGN_IN_FAILED,
                "oidc".into(),
                serde_json::json!({"method": "oidc", "reason": e.to_string()}),
            )
            .await
            {
                return error_page(&le.into());
            }
            let status = match e {
                crate::oidc::OidcError::NoRole { .. } => StatusCode::FORBIDDEN,
                crate::oidc::OidcError::Provider(_) => StatusCode::BAD_GATEWAY,
                _ => StatusCode::UNAUTHORIZED,
            };
            sign_in_page(&state, "/".into(), Some(format!("sign-in refused: {e}")), status)
        }
    }
}

/// `POST /sign-out`: ends the session (CSRF-checked like every other change), and a person's
/// session at the identity provider too.
pub async fn sign_out(State(state): State<AppState>, req: Request) -> Response {
    let headers = req.headers().clone();
    let Some(session) = state.console.session_of(&req) else {
        return Redirect::to("/sign-in").into_response();
    };
    if let Err(e) = super::check_csrf(req, &session).await {
        return error_page(&e);
    }
    state.console.sessions.close(&session.key);
    let mut resp = match (&session.principal, &state.oidc) {
        (super::Principal::Person(person), Some(oidc)) => {
            let _ = state
                .ledger
                .append(rempart_audit::Draft::new(
                    person.actor(),
                    rempart_audit::kind::CONSOLE_SESSION_END,
                    serde_json::json!({"sub": person.sub, "reason": "signed out"}),
                ))
                .await;
            let after = redirect_uri(&state, &headers)
                .map(|u| u.replace("/sign-in/oidc/callback", "/sign-in"))
                .unwrap_or_default();
            match oidc.logout_url(person, &after).await {
                // The provider's session ends too; a page of our own goes there (the policy
                // lets forms post only here, redirects included).
                Some(to) => render(&Continue {
                    to,
                    message: "Signed out of Rempart; ending your session at the identity provider.".into(),
                }),
                None => Redirect::to("/sign-in").into_response(),
            }
        }
        _ => Redirect::to("/sign-in").into_response(),
    };
    if let Ok(v) = format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
        super::session::COOKIE
    )
    .parse()
    {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

// ---------------------------------------------------------------------------------------------
// The queue

/// The queue's filters, as the page's form and links carry them.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct QueueParams {
    /// Least severity shown.
    #[serde(default)]
    severity: String,
    /// One status, `open` (the default: new to contained) or `all`.
    #[serde(default)]
    status: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    rule: String,
    #[serde(default)]
    entity: String,
    #[serde(default)]
    tactic: String,
    since: Option<String>,
    until: Option<String>,
    /// `incident` (default), `rule` or `entity`.
    #[serde(default)]
    group: String,
    /// `last_seen` (default), `severity`, `score`, `alerts`, `created`.
    #[serde(default)]
    sort: String,
    limit: Option<u32>,
}

impl QueueParams {
    /// Incidents on the queue's first page.
    const PAGE: u32 = 100;

    /// The filters as a query string (for links that keep them).
    fn query_string(&self) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("severity", &self.severity),
            ("status", &self.status),
            ("owner", &self.owner),
            ("rule", &self.rule),
            ("entity", &self.entity),
            ("tactic", &self.tactic),
            ("group", &self.group),
            ("sort", &self.sort),
        ] {
            if !v.is_empty() {
                s.append_pair(k, v);
            }
        }
        for (k, v) in [("since", &self.since), ("until", &self.until)] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                s.append_pair(k, v);
            }
        }
        s.finish()
    }

    fn statuses(&self) -> Result<Vec<IncidentStatus>, ApiError> {
        match self.status.as_str() {
            "" | "open" => Ok(IncidentStatus::ALL.into_iter().filter(|s| s.is_open()).collect()),
            "all" => Ok(Vec::new()),
            s => Ok(vec![s.parse().map_err(ApiError::BadRequest)?]),
        }
    }

    fn min_severity(&self) -> Result<Option<IncidentSeverity>, ApiError> {
        if self.severity.is_empty() {
            return Ok(None);
        }
        IncidentSeverity::from_level(&self.severity)
            .map(Some)
            .ok_or_else(|| ApiError::BadRequest(format!("unknown severity `{}`", self.severity)))
    }

    /// The incidents the filters select, sorted.
    async fn select(&self, state: &AppState) -> Result<Vec<Incident>, ApiError> {
        let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        let page = self.limit.unwrap_or(Self::PAGE).clamp(1, IncidentQuery::MAX_LIMIT);
        let query = IncidentQuery {
            status: self.statuses()?,
            since: parse_time(&self.since, "since")?,
            until: parse_time(&self.until, "until")?,
            min_severity: self.min_severity()?,
            owner: text(&self.owner),
            rule: text(&self.rule),
            entity: text(&self.entity),
            tactic: text(&self.tactic),
            before: None,
            // Sorting by something else than activity needs every match before the page.
            limit: Some(if self.sort.is_empty() || self.sort == "last_seen" {
                page
            } else {
                IncidentQuery::MAX_LIMIT
            }),
        };
        let mut list = incidents(state)?.store().incidents_list(&query).await?;
        match self.sort.as_str() {
            "severity" => list.sort_by(|a, b| b.severity.cmp(&a.severity).then(b.last_seen.cmp(&a.last_seen))),
            "score" => list.sort_by(|a, b| b.score.cmp(&a.score).then(b.last_seen.cmp(&a.last_seen))),
            "alerts" => list.sort_by_key(|i| std::cmp::Reverse(i.alert_count)),
            "created" => list.sort_by_key(|i| std::cmp::Reverse(i.created)),
            _ => {}
        }
        list.truncate(page as usize);
        Ok(list)
    }
}

/// One row of the queue.
#[derive(Debug, Clone)]
pub struct Row {
    id: String,
    title: Text,
    severity: &'static str,
    status: &'static str,
    owner: Text,
    alerts: u64,
    score: u32,
    last_seen: String,
    rules: Text,
    tactics: Text,
    verdict: Option<VerdictCell>,
    injection: bool,
    /// A model's verdict waits for an analyst.
    held: bool,
    clocks: Vec<Clock>,
}

#[derive(Debug, Clone)]
struct VerdictCell {
    classification: &'static str,
    mode: &'static str,
    confidence: u32,
    stale: bool,
}

#[derive(Debug, Clone)]
struct Clock {
    report: &'static str,
    due: String,
    state: &'static str,
}

#[derive(Debug)]
pub struct Group {
    key: Text,
    rows: Vec<Row>,
}

async fn rows(state: &AppState, list: Vec<Incident>) -> Result<Vec<Row>, ApiError> {
    let mut clocks: HashMap<EventId, Vec<Clock>> = HashMap::new();
    if let Some(r) = &state.response {
        for (incident, d) in r.all_deadlines(Timestamp::now()).await.map_err(ApiError::from)? {
            if d.submitted.is_none() {
                clocks.entry(incident).or_default().push(Clock {
                    report: d.report.as_str(),
                    due: when(d.due),
                    state: d.state.as_str(),
                });
            }
        }
    }
    let store = incidents(state)?.store();
    let mut out = Vec::with_capacity(list.len());
    for i in list {
        let (verdict, injection) = match &i.triage {
            Some(t) => {
                let confidence = match t.confidence {
                    Some(c) => u32::from(c),
                    None => store
                        .verdict_get(t.verdict)
                        .await?
                        .map_or(0, |v| (v.confidence * 100.0).round() as u32),
                };
                (
                    Some(VerdictCell {
                        classification: t.classification.as_str(),
                        mode: t.mode.as_str(),
                        confidence,
                        stale: t.stale,
                    }),
                    t.flags.iter().any(|f| f.contains("injection")),
                )
            }
            None => (None, false),
        };
        out.push(Row {
            id: i.id.to_string(),
            title: Text::short(&i.title, 160),
            severity: i.severity.as_str(),
            status: i.status.as_str(),
            owner: Text::new(i.owner.clone().unwrap_or_default()),
            alerts: i.alert_count,
            score: i.score,
            last_seen: when(i.last_seen),
            rules: Text::short(&i.rules.join(", "), 120),
            tactics: Text::new(i.tactics.join(" → ")),
            verdict,
            injection,
            held: i.triage.as_ref().is_some_and(|t| t.held.is_some()),
            clocks: clocks.remove(&i.id).unwrap_or_default(),
        });
    }
    Ok(out)
}

/// Groups rows by incident (one group), rule or entity; an incident appears under each of its
/// rules or entities.
fn group(by: &str, list: &[Incident], rows: Vec<Row>) -> Vec<Group> {
    let keys: Vec<Vec<String>> = list
        .iter()
        .map(|i| match by {
            "rule" => i.rules.clone(),
            "entity" => i.entities.iter().map(ToString::to_string).collect(),
            _ => Vec::new(),
        })
        .collect();
    if !matches!(by, "rule" | "entity") {
        return vec![Group {
            key: Text::new(""),
            rows,
        }];
    }
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (n, ks) in keys.iter().enumerate() {
        for k in ks {
            groups.entry(k.clone()).or_default().push(n);
        }
    }
    // An incident under several keys is shown whole under each of them.
    groups
        .into_iter()
        .map(|(key, members)| Group {
            key: Text::new(key),
            rows: members.into_iter().map(|n| rows[n].clone()).collect(),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "console/queue.html")]
struct Queue {
    page: Page,
    p: QueueParams,
    query: String,
    groups: Vec<Group>,
    total: usize,
    statuses: Vec<&'static str>,
    severities: Vec<&'static str>,
    volume: charts::Svg,
    by_severity: charts::Svg,
    by_tactic: charts::Svg,
}

#[derive(Template)]
#[template(path = "console/queue_rows.html")]
struct QueueRows {
    page: Page,
    groups: Vec<Group>,
}

/// `GET /`: the incident queue.
pub async fn queue(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<Session>>,
    Query(p): Query<QueueParams>,
) -> Result<Response, PageError> {
    let list = p.select(&state).await?;
    let total = list.len();
    let volume = charts::bars(
        "Incidents by last activity",
        &charts::buckets(&list.iter().map(|i| i.last_seen).collect::<Vec<_>>(), 24),
    );
    let mut sev: Vec<(String, u64)> = IncidentSeverity::ALL
        .iter()
        .map(|s| (s.as_str().to_owned(), 0))
        .collect();
    for i in &list {
        if let Some(slot) = sev.iter_mut().find(|(k, _)| k == i.severity.as_str()) {
            slot.1 += 1;
        }
    }
    let by_severity = charts::hbars("By severity", &sev);
    let mut tactics: BTreeMap<String, u64> = BTreeMap::new();
    for i in &list {
        for t in &i.tactics {
            *tactics.entry(t.clone()).or_default() += 1;
        }
    }
    let by_tactic = charts::hbars("By tactic", &tactics.into_iter().collect::<Vec<_>>());
    let group_by = p.group.clone();
    let r = rows(&state, list.clone()).await?;
    let groups = group(&group_by, &list, r);
    Ok(render(&Queue {
        page: Page::new("Queue", "queue", &caller, session.as_ref().map(|s| &s.0)),
        query: p.query_string(),
        p,
        groups,
        total,
        statuses: IncidentStatus::ALL.iter().map(|s| s.as_str()).collect(),
        severities: IncidentSeverity::ALL.iter().map(|s| s.as_str()).collect(),
        volume,
        by_severity,
        by_tactic,
    }))
}

/// `GET /queue/rows`: the queue's rows alone, which the page fetches when told of a change.
pub async fn queue_rows(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<Session>>,
    Query(p): Query<QueueParams>,
) -> Result<Response, PageError> {
    let list = p.select(&state).await?;
    let r = rows(&state, list.clone()).await?;
    Ok(render(&QueueRows {
        page: Page::new("Queue", "queue", &caller, session.as_ref().map(|s| &s.0)),
        groups: group(&p.group, &list, r),
    }))
}

/// `GET /live`: server-sent events, one per incident created, grown, triaged or changed; the
/// queue's script fetches its rows again when told.
pub async fn live(
    State(state): State<AppState>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, std::convert::Infallible>>>, ApiError> {
    use crate::incidents::IncidentEvent;
    let rx = incidents(&state)?.subscribe();
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let (kind, id) = match rx.recv().await? {
            IncidentEvent::Created(id) => ("created", id),
            IncidentEvent::Grown(id) => ("grown", id),
            IncidentEvent::Triaged(id) => ("triaged", id),
            IncidentEvent::Changed(id) => ("changed", id),
        };
        let event = SseEvent::default().event("incident").data(format!("{kind} {id}"));
        Some((Ok(event), rx))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

// ---------------------------------------------------------------------------------------------
// Bulk changes and one incident's changes

#[derive(Template)]
#[template(path = "console/bulk_done.html")]
struct BulkDone {
    page: Page,
    changed: usize,
    refused: Vec<(String, Text)>,
    back: String,
}

/// `POST /incidents/bulk`: one change, with one reason, to every selected incident (or to
/// every incident the queue's filters select); each goes through the same service call as
/// `POST /api/v1/incidents/{id}` and is recorded on its own.
pub async fn bulk(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<Session>>,
    body: Bytes,
) -> Result<Response, PageError> {
    let pairs = form(&body);
    let reason = field(&pairs, "reason").unwrap_or("").trim().to_owned();
    if reason.is_empty() {
        return Err(ApiError::BadRequest("a reason is required for a change".into()).into());
    }
    let filter = field(&pairs, "filter").unwrap_or("").to_owned();
    let ids: Vec<EventId> = if field(&pairs, "scope") == Some("matching") {
        let p: QueueParams = serde_urlencoded_like(&filter)?;
        let p = QueueParams {
            limit: Some(IncidentQuery::MAX_LIMIT),
            ..p
        };
        p.select(&state).await?.into_iter().map(|i| i.id).collect()
    } else {
        pairs
            .iter()
            .filter(|(k, _)| k == "id")
            .map(|(_, v)| parse_id(v, "incident"))
            .collect::<Result<_, _>>()?
    };
    if ids.is_empty() {
        return Err(ApiError::BadRequest("no incident selected".into()).into());
    }
    let action = field(&pairs, "action").unwrap_or("");
    let (status, owner) = match action {
        "acknowledge" => (Some(IncidentStatus::Investigating), Some(caller.0.name.clone())),
        "assign" => {
            let owner = field(&pairs, "owner").unwrap_or("").trim().to_owned();
            if owner.is_empty() {
                return Err(ApiError::BadRequest("assigning needs an owner".into()).into());
            }
            (None, Some(owner))
        }
        "status" => (
            Some(
                field(&pairs, "status")
                    .unwrap_or("")
                    .parse::<IncidentStatus>()
                    .map_err(ApiError::BadRequest)?,
            ),
            None,
        ),
        other => return Err(ApiError::BadRequest(format!("unknown bulk action `{other}`")).into()),
    };
    let service = incidents(&state)?;
    let mut changed = 0;
    let mut refused = Vec::new();
    for id in ids {
        // Acknowledging takes ownership, and moves the status on only where it may go.
        let status = match (action, status) {
            ("acknowledge", Some(s)) => match service.get(id).await {
                Ok(i) => Some(s).filter(|s| i.status.can_move_to(*s)),
                Err(e) => {
                    refused.push((id.to_string(), Text::new(ApiError::from(e).to_string())));
                    continue;
                }
            },
            (_, s) => s,
        };
        match service
            .update(id, status, owner.clone(), &caller.actor(), &reason)
            .await
        {
            Ok(_) => changed += 1,
            Err(e) => refused.push((id.to_string(), Text::new(ApiError::from(e).to_string()))),
        }
    }
    Ok(render(&BulkDone {
        page: Page::new("Bulk change", "queue", &caller, session.as_ref().map(|s| &s.0)),
        changed,
        refused,
        back: format!("/?{filter}"),
    }))
}

/// Reads the queue's filters back from the query string a form carried.
fn serde_urlencoded_like(q: &str) -> Result<QueueParams, ApiError> {
    let pairs = form(q.as_bytes());
    let get = |k: &str| field(&pairs, k).unwrap_or("").to_owned();
    Ok(QueueParams {
        severity: get("severity"),
        status: get("status"),
        owner: get("owner"),
        rule: get("rule"),
        entity: get("entity"),
        tactic: get("tactic"),
        since: field(&pairs, "since").map(str::to_owned),
        until: field(&pairs, "until").map(str::to_owned),
        group: get("group"),
        sort: get("sort"),
        limit: None,
    })
}

/// `POST /incidents/{id}/update`: status and/or owner with a reason.
pub async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let id = parse_id(&id, "incident")?;
    let pairs = form(&body);
    let reason = field(&pairs, "reason").unwrap_or("").trim();
    if reason.is_empty() {
        return Err(ApiError::BadRequest("a reason is required for a change".into()).into());
    }
    let status = match field(&pairs, "status").filter(|s| !s.is_empty()) {
        Some(s) => Some(s.parse::<IncidentStatus>().map_err(ApiError::BadRequest)?),
        None => None,
    };
    let owner = field(&pairs, "owner")
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(str::to_owned);
    if status.is_none() && owner.is_none() {
        return Err(ApiError::BadRequest("give a status, an owner or both".into()).into());
    }
    incidents(&state)?
        .update(id, status, owner, &caller.actor(), reason)
        .await?;
    Ok(Redirect::to(&format!("/incidents/{id}")).into_response())
}

/// `POST /incidents/{id}/held`: an analyst puts a held model verdict in force or sets it aside.
pub async fn decide_held(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let id = parse_id(&id, "incident")?;
    let pairs = form(&body);
    let accept = match field(&pairs, "decision") {
        Some("accept") => true,
        Some("reject") => false,
        _ => return Err(ApiError::BadRequest("decide `accept` or `reject`".into()).into()),
    };
    let triage = crate::incident_api::triage_service(&state)?;
    triage
        .decide_held(id, accept, &caller.actor(), field(&pairs, "reason").unwrap_or(""))
        .await?;
    Ok(Redirect::to(&format!("/incidents/{id}#verdicts")).into_response())
}

/// `POST /verdicts/{id}/feedback`: an analyst confirms or overrides a verdict.
pub async fn feedback(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let id = parse_id(&id, "verdict")?;
    let pairs = form(&body);
    let service = incidents(&state)?;
    let verdict = service
        .store()
        .verdict_get(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("verdict {id}")))?;
    let agrees = field(&pairs, "agrees") == Some("yes");
    let classification = field(&pairs, "classification")
        .filter(|c| !c.is_empty())
        .map(|c| c.parse::<Classification>().map_err(ApiError::BadRequest))
        .transpose()?;
    crate::incident_api::record_feedback(
        &state,
        service,
        &verdict,
        &caller.actor(),
        agrees,
        if agrees { None } else { classification },
        field(&pairs, "reason").unwrap_or(""),
    )
    .await?;
    Ok(Redirect::to(&format!("/incidents/{}#verdicts", verdict.incident)).into_response())
}

// ---------------------------------------------------------------------------------------------
// An incident

#[derive(Debug)]
struct AlertRow {
    id: String,
    time: String,
    rule: Text,
    level: Text,
    host: Text,
    user: Text,
    matched: Text,
    event: String,
    techniques: Text,
}

#[derive(Debug)]
struct VerdictView {
    id: String,
    created: String,
    mode: &'static str,
    by: Text,
    classification: &'static str,
    confidence: u32,
    severity: &'static str,
    summary: Text,
    flags: Vec<Text>,
    injection: bool,
    /// Where the signs of injection are, what kind, and the words (as text, never markup).
    signs: Vec<(Text, &'static str, Text)>,
    evidence: Vec<(Text, Vec<String>)>,
    actions: Vec<(String, Text, Text)>,
    queries: Vec<(Text, Text)>,
    /// How the text is shown: re-identified, or as the model saw it.
    shown: &'static str,
    domain: Option<Text>,
    /// The summary as the model wrote it, in pseudonyms, beside a re-identified one.
    as_seen: Option<Text>,
    /// Waiting for an analyst; the incident's verdict in force is another.
    held: bool,
    /// The verdict playbook conditions read.
    in_force: bool,
    feedback: Vec<(String, Text, &'static str, Text)>,
}

#[derive(Debug)]
struct TimelineItem {
    time: String,
    lane: &'static str,
    text: Text,
    link: Option<String>,
}

#[derive(Debug)]
struct DeadlineView {
    report: &'static str,
    regime: Text,
    due: String,
    state: &'static str,
    basis: Text,
    submitted: Option<String>,
}

#[derive(Template)]
#[template(path = "console/incident.html")]
struct IncidentPage {
    page: Page,
    id: String,
    title: Text,
    severity: &'static str,
    status: &'static str,
    owner: Text,
    score: u32,
    first_seen: String,
    last_seen: String,
    alert_count: u64,
    tactics: Text,
    techniques: Text,
    assets: Text,
    entities: Vec<(&'static str, Text, String)>,
    alerts: Vec<AlertRow>,
    verdicts: Vec<VerdictView>,
    timeline: Vec<TimelineItem>,
    timeline_chart: charts::Svg,
    graph: charts::Svg,
    deadlines: Vec<DeadlineView>,
    statuses: Vec<&'static str>,
    classifications: Vec<&'static str>,
    history: Vec<(String, Text, Text, Text)>,
}

fn verdict_view(
    v: &Verdict,
    seen: Option<&Verdict>,
    revealed: bool,
    feedback: Vec<(String, Text, &'static str, Text)>,
) -> VerdictView {
    VerdictView {
        id: v.id.to_string(),
        created: when(v.created),
        mode: v.mode.as_str(),
        by: Text::new(match (&v.provider, &v.model) {
            (Some(p), Some(m)) => format!("{p} / {m}"),
            (None, Some(m)) => m.clone(),
            _ => "deterministic triage (no model answered)".into(),
        }),
        classification: v.classification.as_str(),
        confidence: (v.confidence * 100.0).round() as u32,
        severity: v.severity.as_str(),
        summary: Text::new(v.summary.clone()),
        flags: v.flags.iter().map(|f| Text::new(f.clone())).collect(),
        injection: v.flags.iter().any(|f| f.contains("injection")) || !v.injection.is_empty(),
        signs: v
            .injection
            .iter()
            .take(20)
            .map(|s| {
                (
                    Text::new(s.field.clone()),
                    s.class.as_str(),
                    Text::new(s.phrase.clone()),
                )
            })
            .collect(),
        evidence: v
            .evidence
            .iter()
            .map(|e| {
                (
                    Text::new(e.claim.clone()),
                    e.events
                        .iter()
                        .filter(|id| id.parse::<EventId>().is_ok())
                        .cloned()
                        .collect(),
                )
            })
            .collect(),
        actions: v
            .recommended_actions
            .iter()
            .map(|a| {
                (
                    a.action.as_str().to_owned(),
                    Text::new(a.target.clone()),
                    Text::new(a.reason.clone()),
                )
            })
            .collect(),
        queries: v
            .queries
            .iter()
            .map(|q| {
                (
                    Text::new(format!("{} {}", q.tool, q.arguments)),
                    Text::new(q.outcome.clone()),
                )
            })
            .collect(),
        shown: match (&v.domain, revealed) {
            (None, _) => "in clear (the model ran inside the boundary or no model answered)",
            (Some(_), true) => "re-identified for you (the model saw pseudonyms; this reading is recorded)",
            (Some(_), false) => "as the model saw it: pseudonyms (your role does not re-identify)",
        },
        domain: v.domain.as_ref().map(|d| Text::new(d.clone())),
        as_seen: seen
            .filter(|s| revealed && s.summary != v.summary)
            .map(|s| Text::new(s.summary.clone())),
        held: false,
        in_force: false,
        feedback,
    }
}

/// `GET /incidents/{id}`.
pub async fn incident(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<Session>>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = parse_id(&id, "incident")?;
    let service = incidents(&state)?;
    let i = service.get(id).await?;
    let alerts = service.store().incident_alerts(id, 500).await?;
    let mut verdicts = service.store().verdicts_of(id).await?;
    let seen = verdicts.clone();
    let revealed = crate::incident_api::may_reveal(&caller);
    if revealed {
        crate::incident_api::reveal_verdicts(&state, &caller.actor(), &mut verdicts).await?;
    }
    let all_feedback = service.store().feedback_all().await?;
    let verdict_views: Vec<VerdictView> = verdicts
        .iter()
        .map(|v| {
            let fb = all_feedback
                .iter()
                .filter(|(f, _)| f.verdict == v.id)
                .map(|(f, _)| {
                    (
                        when(f.time),
                        Text::new(f.actor.clone()),
                        f.classification.as_str(),
                        Text::new(f.reason.clone()),
                    )
                })
                .collect();
            let as_stored = seen.iter().find(|s| s.id == v.id);
            verdict_view(v, as_stored, revealed && v.domain.is_some(), fb)
        })
        .collect();
    let (runs, approvals, deadlines) = match &state.response {
        Some(r) => (
            r.runs(Some(id), None, 100).await?,
            r.approvals(None, None, 10_000)
                .await?
                .into_iter()
                .filter(|a| a.incident == id)
                .collect::<Vec<_>>(),
            r.deadlines(id).await?.1,
        ),
        None => (Vec::new(), Vec::new(), Vec::new()),
    };
    let timeline = timeline(&i, &alerts, &verdicts, &runs, &approvals);
    let lanes = ["alert", "verdict", "analyst", "response", "approval"];
    let points: Vec<(Timestamp, usize, String)> = timeline
        .iter()
        .map(|(t, item)| {
            (
                *t,
                lanes.iter().position(|l| *l == item.lane).unwrap_or(0),
                item.text.0.clone(),
            )
        })
        .collect();
    let timeline_chart = charts::timeline(&lanes, &points);
    let graph = charts::entity_graph(&i, &alerts);
    Ok(render(&IncidentPage {
        page: Page::new(
            format!("Incident {}", Text::short(&i.title, 60).0),
            "queue",
            &caller,
            session.as_ref().map(|s| &s.0),
        ),
        id: i.id.to_string(),
        title: Text::new(i.title.clone()),
        severity: i.severity.as_str(),
        status: i.status.as_str(),
        owner: Text::new(i.owner.clone().unwrap_or_default()),
        score: i.score,
        first_seen: when(i.first_seen),
        last_seen: when(i.last_seen),
        alert_count: i.alert_count,
        tactics: Text::new(i.tactics.join(" → ")),
        techniques: Text::new(i.techniques.join(", ")),
        assets: Text::new(i.assets.join(", ")),
        entities: i
            .entities
            .iter()
            .map(|e| (e.kind.as_str(), Text::new(e.value.clone()), encode(&e.value)))
            .collect(),
        alerts: alerts
            .iter()
            .map(|a| AlertRow {
                id: a.id.to_string(),
                time: when(a.time),
                rule: Text::new(a.rule_title.clone()),
                level: Text::new(a.level.clone().unwrap_or_default()),
                host: Text::new(a.host.clone().unwrap_or_default()),
                user: Text::new(a.user.clone().unwrap_or_default()),
                matched: Text::short(
                    &a.matched
                        .iter()
                        .map(|m| format!("{}={}", m.field, m.value))
                        .collect::<Vec<_>>()
                        .join("  "),
                    400,
                ),
                event: a.event.to_string(),
                techniques: Text::new(
                    a.techniques
                        .iter()
                        .map(|t| {
                            t.name
                                .as_ref()
                                .map_or_else(|| t.id.clone(), |n| format!("{} {n}", t.id))
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
            })
            .collect(),
        verdicts: verdict_views,
        timeline: timeline.into_iter().map(|(_, i)| i).collect(),
        timeline_chart,
        graph,
        deadlines: deadlines
            .iter()
            .map(|d| DeadlineView {
                report: d.report.as_str(),
                regime: Text::new(d.regime.clone()),
                due: when(d.due),
                state: d.state.as_str(),
                basis: Text::new(d.basis.clone()),
                submitted: d.submitted.map(when),
            })
            .collect(),
        statuses: IncidentStatus::ALL
            .iter()
            .filter(|s| i.status.can_move_to(**s))
            .map(|s| s.as_str())
            .collect(),
        classifications: Classification::ALL.iter().map(|c| c.as_str()).collect(),
        history: i
            .history
            .iter()
            .map(|c| {
                (
                    when(c.time),
                    Text::new(c.actor.clone()),
                    Text::new(c.what.clone()),
                    Text::new(c.reason.clone()),
                )
            })
            .collect(),
    }))
}

/// Everything that happened to an incident on one time axis: alerts, verdicts, people's
/// changes, playbook actions and approval votes.
fn timeline(
    i: &Incident,
    alerts: &[Alert],
    verdicts: &[Verdict],
    runs: &[rempart_respond::run::Run],
    approvals: &[Approval],
) -> Vec<(Timestamp, TimelineItem)> {
    let mut out: Vec<(Timestamp, TimelineItem)> = Vec::new();
    for a in alerts {
        out.push((
            a.time,
            TimelineItem {
                time: when(a.time),
                lane: "alert",
                text: Text::new(format!(
                    "{} on {}",
                    a.rule_title,
                    a.host.as_deref().unwrap_or("an unnamed host")
                )),
                link: Some(format!("/events/{}", a.event)),
            },
        ));
    }
    for v in verdicts {
        out.push((
            v.created,
            TimelineItem {
                time: when(v.created),
                lane: "verdict",
                text: Text::new(format!(
                    "{} triage: {} ({:.0} %)",
                    v.mode.as_str(),
                    v.classification,
                    v.confidence * 100.0
                )),
                link: None,
            },
        ));
    }
    for c in &i.history {
        out.push((
            c.time,
            TimelineItem {
                time: when(c.time),
                lane: "analyst",
                text: Text::new(format!("{}: {} ({})", c.actor, c.what, c.reason)),
                link: None,
            },
        ));
    }
    for r in runs {
        for a in &r.actions {
            let t = a.time.unwrap_or(r.updated);
            out.push((
                t,
                TimelineItem {
                    time: when(t),
                    lane: "response",
                    text: Text::new(format!(
                        "playbook {} step {}: {} {} ({})",
                        r.playbook,
                        a.step,
                        a.action,
                        a.target.as_deref().unwrap_or(""),
                        a.state.as_str()
                    )),
                    link: None,
                },
            ));
        }
    }
    for a in approvals {
        for v in &a.votes {
            out.push((
                v.time,
                TimelineItem {
                    time: when(v.time),
                    lane: "approval",
                    text: Text::new(format!(
                        "{} {} step {}: {}",
                        v.actor,
                        if v.approve { "approved" } else { "rejected" },
                        a.step,
                        v.comment
                    )),
                    link: None,
                },
            ));
        }
    }
    out.sort_by_key(|(t, _)| *t);
    out
}

// ---------------------------------------------------------------------------------------------
// Approvals

#[derive(Debug)]
struct ApprovalView {
    id: String,
    incident: String,
    incident_title: Text,
    playbook: Text,
    step: Text,
    reason: Text,
    requested_by: Text,
    created: String,
    deadline: String,
    status: &'static str,
    needed: u32,
    role: Text,
    actions: Vec<(String, Text, Text, Text)>,
    targets: usize,
    critical: Vec<Text>,
    votes: Vec<(Text, &'static str, Text, String)>,
}

#[derive(Template)]
#[template(path = "console/approvals.html")]
struct ApprovalsPage {
    page: Page,
    status: String,
    approvals: Vec<ApprovalView>,
}

#[derive(Debug, Deserialize)]
pub struct ApprovalsParams {
    status: Option<String>,
}

/// `GET /approvals`: the queue, with exactly what each action would send.
pub async fn approvals(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<Session>>,
    Query(p): Query<ApprovalsParams>,
) -> Result<Response, PageError> {
    let status_s = p.status.unwrap_or_else(|| "pending".into());
    let status = ApprovalStatus::filter(&status_s).map_err(ApiError::BadRequest)?;
    let list = response(&state)?.approvals(status, None, 1000).await?;
    let service = incidents(&state)?;
    let mut views = Vec::with_capacity(list.len());
    for a in list {
        let incident = service.get(a.incident).await.ok();
        let assets: Vec<String> = incident.as_ref().map(|i| i.assets.clone()).unwrap_or_default();
        let critical = a
            .actions
            .iter()
            .filter_map(|x| x.target.as_deref())
            .filter(|t| assets.iter().any(|s| s.to_lowercase().contains(&t.to_lowercase())))
            .map(|t| Text::new(t.to_owned()))
            .collect();
        views.push(ApprovalView {
            id: a.id.to_string(),
            incident: a.incident.to_string(),
            incident_title: Text::new(incident.map(|i| i.title).unwrap_or_default()),
            playbook: Text::new(a.playbook.clone()),
            step: Text::new(a.step.clone()),
            reason: Text::new(a.reason.clone()),
            requested_by: Text::new(a.requested_by.clone()),
            created: when(a.created),
            deadline: when(a.deadline),
            status: a.status.as_str(),
            needed: a.rule.approvers,
            role: Text::new(a.rule.role.clone()),
            targets: a.actions.iter().filter(|x| x.target.is_some()).count(),
            actions: a
                .actions
                .iter()
                .map(|x| {
                    (
                        x.action.as_str().to_owned(),
                        Text::new(x.target.clone().unwrap_or_default()),
                        Text::new(x.connector.clone().unwrap_or_default()),
                        Text::new(x.prepared.clone()),
                    )
                })
                .collect(),
            critical,
            votes: a
                .votes
                .iter()
                .map(|v| {
                    (
                        Text::new(v.actor.clone()),
                        if v.approve { "approved" } else { "rejected" },
                        Text::new(v.comment.clone()),
                        when(v.time),
                    )
                })
                .collect(),
        });
    }
    Ok(render(&ApprovalsPage {
        page: Page::new("Approvals", "approvals", &caller, session.as_ref().map(|s| &s.0)),
        status: status_s,
        approvals: views,
    }))
}

/// `POST /approvals/{id}/vote`: approve or reject with a comment; four eyes as in the API.
pub async fn vote(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let id = parse_id(&id, "approval")?;
    let pairs = form(&body);
    let approve = match field(&pairs, "decision") {
        Some("approve") => true,
        Some("reject") => false,
        _ => return Err(ApiError::BadRequest("decide `approve` or `reject`".into()).into()),
    };
    let comment = field(&pairs, "comment").unwrap_or("").trim();
    if comment.is_empty() {
        return Err(ApiError::BadRequest("a reason is required for a vote".into()).into());
    }
    response(&state)?.vote(id, &caller.voter(), approve, comment).await?;
    Ok(Redirect::to("/approvals").into_response())
}

// ---------------------------------------------------------------------------------------------
// Search

#[derive(Debug, Default, Deserialize)]
pub struct SearchParams {
    since: Option<String>,
    until: Option<String>,
    #[serde(default)]
    q: String,
    limit: Option<u32>,
}

#[derive(Debug)]
struct EventRow {
    id: String,
    time: String,
    format: &'static str,
    host: Text,
    user: Text,
    summary: Text,
}

#[derive(Debug)]
struct FacetValue {
    value: Text,
    count: usize,
    include: String,
    exclude: String,
}

#[derive(Template)]
#[template(path = "console/search.html")]
struct SearchPage {
    page: Page,
    since: String,
    until: String,
    q: String,
    filters: Vec<(Text, String)>,
    rows: Vec<EventRow>,
    facets: Vec<(&'static str, Vec<FacetValue>)>,
    histogram: charts::Svg,
    hunt: Option<Vec<(String, Text, Text, String)>>,
    hunt_available: bool,
}

/// Normalized fields the sidebar counts values of.
const FACETS: [&str; 8] = [
    "host", "user", "process", "src_ip", "dst_ip", "event_id", "channel", "format",
];

fn facet_value(e: &rempart_model::Event, name: &str) -> Option<String> {
    let n = &e.normalized;
    match name {
        "host" => n.host.clone(),
        "user" => n.user.clone(),
        "process" => n.process.clone(),
        "src_ip" => n.src_ip.map(|i| i.to_string()),
        "dst_ip" => n.dst_ip.map(|i| i.to_string()),
        "event_id" => n.event_id.map(|i| i.to_string()),
        "channel" => n.channel.clone(),
        "format" => Some(e.format.as_str().to_owned()),
        _ => None,
    }
}

/// `GET /search`: events by time, field filters (`f=field=value`, `nf=` to exclude) and text;
/// a sidebar of top values; a histogram; a Sigma hunt with the rules in force.
pub async fn search(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<Session>>,
    Query(p): Query<SearchParams>,
    raw: axum::extract::RawQuery,
) -> Result<Response, PageError> {
    let pairs = form(raw.0.unwrap_or_default().as_bytes());
    let include: Vec<String> = pairs.iter().filter(|(k, _)| k == "f").map(|(_, v)| v.clone()).collect();
    let exclude: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "nf")
        .map(|(_, v)| v.clone())
        .collect();
    let filters = include
        .iter()
        .map(|f| FieldFilter::parse(f))
        .collect::<Result<Vec<_>, _>>()?;
    let excluded = exclude
        .iter()
        .map(|f| FieldFilter::parse(f))
        .collect::<Result<Vec<_>, _>>()?;
    let query = EventQuery {
        since: parse_time(&p.since, "since")?,
        until: parse_time(&p.until, "until")?,
        filters,
        text: Some(p.q.trim().to_owned()).filter(|q| !q.is_empty()),
        before: None,
        limit: Some(p.limit.unwrap_or(500).clamp(1, 5000)),
    };
    let events: Vec<rempart_model::Event> = state
        .search_events(&query)
        .await?
        .into_iter()
        .filter(|e| {
            !excluded
                .iter()
                .any(|x| facet_value(e, &x.field).is_some_and(|v| v == x.value))
        })
        .collect();
    let base: Vec<(String, String)> = pairs.iter().filter(|(k, _)| k != "hunt").cloned().collect();
    let link = |extra: (&str, String)| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in base.iter().chain(std::iter::once(&(extra.0.to_owned(), extra.1))) {
            s.append_pair(k, v);
        }
        format!("/search?{}", s.finish())
    };
    let facets = FACETS
        .iter()
        .map(|name| {
            let mut counts: HashMap<String, usize> = HashMap::new();
            for e in &events {
                if let Some(v) = facet_value(e, name) {
                    *counts.entry(v).or_default() += 1;
                }
            }
            let mut top: Vec<(String, usize)> = counts.into_iter().collect();
            top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            top.truncate(8);
            (
                *name,
                top.into_iter()
                    .map(|(v, count)| FacetValue {
                        include: link(("f", format!("{name}={v}"))),
                        exclude: link(("nf", format!("{name}={v}"))),
                        value: Text::short(&v, 60),
                        count,
                    })
                    .collect::<Vec<_>>(),
            )
        })
        .filter(|(_, v)| !v.is_empty())
        .collect();
    let histogram = charts::bars(
        "Events over time",
        &charts::buckets(&events.iter().map(|e| e.time).collect::<Vec<_>>(), 40),
    );
    let rules = state.rules.current();
    let hunt = match (&rules, pairs.iter().any(|(k, _)| k == "hunt")) {
        (Some(rules), true) => Some(
            rules
                .alerts(&events, Timestamp::now())
                .into_iter()
                .map(|a| {
                    (
                        when(a.time),
                        Text::new(a.rule_title),
                        Text::new(a.level.unwrap_or_default()),
                        a.event.to_string(),
                    )
                })
                .collect(),
        ),
        _ => None,
    };
    let filters_shown = include
        .iter()
        .map(|f| (Text::new(f.clone()), "is"))
        .chain(exclude.iter().map(|f| (Text::new(f.clone()), "is not")))
        .map(|(t, how)| (t, how.to_owned()))
        .collect();
    Ok(render(&SearchPage {
        page: Page::new("Search", "search", &caller, session.as_ref().map(|s| &s.0)),
        since: p.since.clone().unwrap_or_default(),
        until: p.until.clone().unwrap_or_default(),
        q: p.q.clone(),
        filters: filters_shown,
        rows: events
            .iter()
            .take(500)
            .map(|e| EventRow {
                id: e.id.to_string(),
                time: when(e.time),
                format: e.format.as_str(),
                host: Text::new(e.normalized.host.clone().unwrap_or_default()),
                user: Text::new(e.normalized.user.clone().unwrap_or_default()),
                summary: Text::short(&summary(e), 240),
            })
            .collect(),
        facets,
        histogram,
        hunt,
        hunt_available: rules.is_some(),
    }))
}

/// One line saying what an event is.
fn summary(e: &rempart_model::Event) -> String {
    let n = &e.normalized;
    if let Some(c) = &n.command_line {
        return c.clone();
    }
    if let Some(m) = e.fields.get("message").and_then(|m| m.as_str()) {
        return m.to_owned();
    }
    let mut parts = Vec::new();
    if let Some(id) = n.event_id {
        parts.push(format!("event {id}"));
    }
    if let Some(p) = &n.process {
        parts.push(p.clone());
    }
    if let (Some(s), Some(d)) = (n.src_ip, n.dst_ip) {
        parts.push(format!(
            "{s} → {d}{}",
            n.dst_port.map(|p| format!(":{p}")).unwrap_or_default()
        ));
    }
    if parts.is_empty() {
        e.fields.to_json().unwrap_or_default()
    } else {
        parts.join("  ")
    }
}

#[derive(Template)]
#[template(path = "console/event.html")]
struct EventPage {
    page: Page,
    id: String,
    time: String,
    ingested: String,
    format: &'static str,
    class: String,
    normalized: Vec<(&'static str, Text, String)>,
    original: Vec<(Text, Text)>,
}

fn flatten(prefix: &str, v: &serde_json::Value, out: &mut Vec<(Text, Text)>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&p, v, out);
            }
        }
        serde_json::Value::Array(a) => {
            for (n, v) in a.iter().enumerate() {
                flatten(&format!("{prefix}[{n}]"), v, out);
            }
        }
        serde_json::Value::String(s) => out.push((Text::new(prefix), Text::new(s.clone()))),
        other => out.push((Text::new(prefix), Text::new(other.to_string()))),
    }
}

/// `GET /events/{id}`: normalized and original fields, each entity a pivot to its history.
pub async fn event(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<Session>>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = parse_id(&id, "event")?;
    let e = state
        .store
        .get_event(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("event {id}")))?;
    let n = &e.normalized;
    let mut normalized: Vec<(&'static str, Text, String)> = Vec::new();
    let mut put = |name: &'static str, v: Option<String>| {
        if let Some(v) = v {
            normalized.push((
                name,
                Text::new(v.clone()),
                format!("/search?f={}", encode(&format!("{name}={v}"))),
            ));
        }
    };
    put("host", n.host.clone());
    put("user", n.user.clone());
    put("user_domain", n.user_domain.clone());
    put("src_ip", n.src_ip.map(|i| i.to_string()));
    put("src_port", n.src_port.map(|i| i.to_string()));
    put("dst_ip", n.dst_ip.map(|i| i.to_string()));
    put("dst_port", n.dst_port.map(|i| i.to_string()));
    put("protocol", n.protocol.clone());
    put("process", n.process.clone());
    put("process_id", n.process_id.map(|i| i.to_string()));
    put("command_line", n.command_line.clone());
    put("parent_process", n.parent_process.clone());
    put("parent_command_line", n.parent_command_line.clone());
    put("event_id", n.event_id.map(|i| i.to_string()));
    put("channel", n.channel.clone());
    put("provider", n.provider.clone());
    let mut original = Vec::new();
    flatten(
        "",
        &serde_json::Value::Object(e.fields.clone().into_map()),
        &mut original,
    );
    Ok(render(&EventPage {
        page: Page::new("Event", "search", &caller, session.as_ref().map(|s| &s.0)),
        id: e.id.to_string(),
        time: when(e.time),
        ingested: when(e.ingested),
        format: e.format.as_str(),
        class: e.class.to_string(),
        normalized,
        original,
    }))
}

// ---------------------------------------------------------------------------------------------
// Gateway, health, audit

#[derive(Debug)]
struct ProviderView {
    name: Text,
    path: String,
    kind: &'static str,
    model: Text,
    jurisdiction: Text,
    max_class: String,
    revoked: bool,
    circuit: String,
    failures: u64,
    consecutive: u32,
    calls: u64,
    last_error: Text,
    cost: String,
}

#[derive(Template)]
#[template(path = "console/gateway.html")]
struct GatewayPage {
    page: Page,
    configured: bool,
    providers: Vec<ProviderView>,
}

/// `GET /gateway` (admin): providers, their state, and the revoke / restore switch.
pub async fn gateway(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<Session>>,
) -> Response {
    let providers = state.gateway.as_ref().map(|g| g.providers()).unwrap_or_default();
    render(&GatewayPage {
        page: Page::new("Gateway", "gateway", &caller, session.as_ref().map(|s| &s.0)),
        configured: state.gateway.is_some(),
        providers: providers
            .into_iter()
            .map(|p| ProviderView {
                path: encode(&p.name),
                name: Text::new(p.name),
                kind: p.kind,
                model: Text::new(p.model),
                jurisdiction: Text::new(p.jurisdiction),
                max_class: p.max_class.to_string(),
                revoked: p.revoked,
                circuit: format!("{:?}", p.circuit).to_lowercase(),
                failures: p.failures,
                consecutive: p.consecutive_failures,
                calls: p.calls,
                last_error: Text::new(p.last_error.unwrap_or_default()),
                cost: format!("{:.4} €", p.cost_eur),
            })
            .collect(),
    })
}

/// `POST /gateway/{name}/revoke|restore` (admin), recorded as through the API.
pub async fn switch_provider(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((name, switch)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let revoked = match switch.as_str() {
        "revoke" => true,
        "restore" => false,
        other => return Err(ApiError::NotFound(format!("gateway action `{other}`")).into()),
    };
    crate::gateway::set_revoked(&state, &caller, &name, revoked)
        .await
        .map(drop)?;
    Ok(Redirect::to("/gateway").into_response())
}

#[derive(Template)]
#[template(path = "console/health.html")]
struct HealthPage {
    page: Page,
    events: u64,
    quarantined: u64,
    rules: Vec<(Text, u64, String, String)>,
    sources: Vec<(Text, String, u64, bool)>,
    quarantine: Vec<(String, Text, Text)>,
    alerts_chart: charts::Svg,
    agreement: String,
    to_triage: charts::Svg,
    to_contain: charts::Svg,
    medians: (String, String),
    per_model: Vec<(Text, String, u64)>,
}

/// `GET /health`: rule hit counts and false-positive rates, sources and their silence, the
/// quarantine with its reasons.
pub async fn health(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<Session>>,
) -> Result<Response, PageError> {
    let events = state.store.count_events().await?;
    let quarantined = state.store.count_quarantine().await?;
    let since = Timestamp::now() - jiff::SignedDuration::from_hours(24 * 7);
    let alerts = state
        .store
        .query_alerts(&rempart_store::AlertQuery {
            since: Some(since),
            until: None,
            min_level: None,
            rule_id: None,
            before: None,
            limit: Some(10_000),
        })
        .await?;
    let mut per_rule: BTreeMap<String, u64> = BTreeMap::new();
    for a in &alerts {
        *per_rule.entry(a.rule_title.clone()).or_default() += 1;
    }
    let agreement = match &state.incidents {
        Some(s) => crate::incident_api::agreement(s).await?,
        None => serde_json::Value::Null,
    };
    let mut rules: Vec<(Text, u64, String, String)> = per_rule
        .into_iter()
        .map(|(rule, hits)| {
            let a = &agreement["per_rule"][&rule];
            let judged = a["judged"].as_u64().unwrap_or(0);
            let fp = a["false_positives"].as_u64().unwrap_or(0);
            let rate = if judged > 0 {
                format!("{:.0} % of {judged}", fp as f64 * 100.0 / judged as f64)
            } else {
                "no feedback".into()
            };
            (Text::new(rule.clone()), hits, rate, encode(&rule))
        })
        .collect();
    rules.sort_by_key(|r| std::cmp::Reverse(r.1));
    // Sources: the origins of recent events, and how long each has been silent.
    let recent = state
        .store
        .query_events(&EventQuery {
            limit: Some(10_000),
            ..EventQuery::default()
        })
        .await?;
    let mut sources: BTreeMap<String, (Timestamp, u64)> = BTreeMap::new();
    for e in &recent {
        let key = format!("{} {}", e.format.as_str(), e.origin.source);
        let slot = sources.entry(key).or_insert((e.ingested, 0));
        slot.0 = slot.0.max(e.ingested);
        slot.1 += 1;
    }
    let now = Timestamp::now();
    let sources = sources
        .into_iter()
        .map(|(k, (last, n))| {
            let silent = now.duration_since(last) > jiff::SignedDuration::from_hours(1);
            (Text::new(k), when(last), n, silent)
        })
        .collect();
    let quarantine = state
        .store
        .list_quarantine(None, 50)
        .await?
        .into_iter()
        .map(|q| {
            (
                when(q.received),
                Text::new(q.source.clone()),
                Text::new(q.reason.clone()),
            )
        })
        .collect();
    // How long incidents waited for a verdict and for containment.
    let all = match &state.incidents {
        Some(s) => {
            s.store()
                .incidents_list(&IncidentQuery {
                    status: IncidentStatus::ALL.to_vec(),
                    since: Some(since),
                    limit: Some(IncidentQuery::MAX_LIMIT),
                    ..IncidentQuery::default()
                })
                .await?
        }
        None => Vec::new(),
    };
    let minutes = |from: Timestamp, to: Timestamp| to.duration_since(from).as_secs_f64().max(0.0) / 60.0;
    let triage_m: Vec<f64> = all
        .iter()
        .filter_map(|i| i.triage.as_ref().map(|t| minutes(i.created, t.time)))
        .collect();
    let contain_m: Vec<f64> = all
        .iter()
        .filter_map(|i| {
            i.history
                .iter()
                .find(|c| ["contained", "resolved"].iter().any(|s| c.what.contains(s)))
                .map(|c| minutes(i.created, c.time))
        })
        .collect();
    let per_model = agreement["per_model"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(model, a)| {
                    (
                        Text::new(model.clone()),
                        a["agreement_rate"]
                            .as_f64()
                            .map_or_else(|| "-".into(), |r| format!("{:.0} %", r * 100.0)),
                        a["judged"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(render(&HealthPage {
        to_triage: charts::hbars("Minutes to triage", &charts::spread(&triage_m)),
        to_contain: charts::hbars("Minutes to containment", &charts::spread(&contain_m)),
        medians: (charts::median(&triage_m), charts::median(&contain_m)),
        per_model,
        page: Page::new("Rules and sources", "health", &caller, session.as_ref().map(|s| &s.0)),
        events,
        quarantined,
        rules,
        sources,
        quarantine,
        alerts_chart: charts::bars(
            "Alerts over the last 7 days",
            &charts::buckets(&alerts.iter().map(|a| a.time).collect::<Vec<_>>(), 28),
        ),
        agreement: agreement["overall"]["agreement_rate"]
            .as_f64()
            .map_or_else(|| "no feedback yet".into(), |r| format!("{:.0} %", r * 100.0)),
    }))
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    page: Page,
    /// The verification's outcome when asked for (it reads the whole ledger).
    verification: Option<(bool, Text)>,
    checkpoints: Vec<(u64, String, String)>,
    records: Vec<(u64, String, Text, Text)>,
    kind: String,
    actor: String,
    keys: Vec<Text>,
}

#[derive(Debug, Deserialize)]
pub struct AuditParams {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    actor: String,
    /// Verify the whole ledger now (`verify=1`); not on every view, since it reads it all.
    #[serde(default)]
    verify: String,
}

/// `GET /audit` (auditor): verification on request, checkpoints, record headers by kind and actor,
/// and the export. Headers only: reading payloads goes through the API, which records it.
pub async fn audit(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<Session>>,
    Query(p): Query<AuditParams>,
) -> Result<Response, PageError> {
    let ledger = &state.ledger;
    let verification = if p.verify.is_empty() {
        None
    } else {
        Some(
            match rempart_audit::Ledger::verify(ledger.store(), ledger.trusted(), Vec::new(), None).await? {
                Ok(r) => (true, Text::new(format!("{} records verified", r.records))),
                Err(problem) => (false, Text::new(problem.to_string())),
            },
        )
    };
    let cps = ledger.checkpoints().await?;
    let checkpoints = cps
        .iter()
        .rev()
        .take(20)
        .map(|c| (c.size, hex::encode(c.root), c.time.to_string()))
        .collect();
    let total = cps.last().map_or(0, |c| c.size);
    let from = total.saturating_sub(2000);
    let entries = ledger.entries(from, 2000).await?;
    let records = entries
        .iter()
        .rev()
        .filter(|e| p.kind.is_empty() || e.record.kind == p.kind)
        .filter(|e| p.actor.is_empty() || e.record.actor.contains(&p.actor))
        .take(200)
        .map(|e| {
            (
                e.record.seq,
                when(e.record.time),
                Text::new(e.record.actor.clone()),
                Text::new(e.record.kind.clone()),
            )
        })
        .collect();
    Ok(render(&AuditPage {
        page: Page::new("Audit", "audit", &caller, session.as_ref().map(|s| &s.0)),
        verification,
        checkpoints,
        records,
        kind: p.kind,
        actor: p.actor,
        keys: ledger.trusted().iter().map(|k| Text::new(k.vkey())).collect(),
    }))
}

// ---------------------------------------------------------------------------------------------
// Data subjects (administrators)

#[derive(Template)]
#[template(path = "console/privacy.html")]
struct PrivacyPage {
    page: Page,
    subject: String,
    report: Option<Text>,
    erased: Option<Text>,
}

#[derive(Debug, Deserialize)]
pub struct SubjectParams {
    #[serde(default)]
    subject: String,
}

fn pretty(v: &serde_json::Value) -> Text {
    Text::new(serde_json::to_string_pretty(v).unwrap_or_default())
}

/// `GET /privacy?subject=TYPE:VALUE` (admin): an access request (GDPR Art. 15), through the
/// same call as `GET /api/v1/privacy/subjects/{subject}`, recorded the same way.
pub async fn privacy(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<Session>>,
    Query(p): Query<SubjectParams>,
) -> Result<Response, PageError> {
    let subject = p.subject.trim().to_owned();
    let report = if subject.is_empty() {
        None
    } else {
        let axum::Json(v) =
            crate::privacy::subject(State(state.clone()), Extension(caller.clone()), Path(subject.clone())).await?;
        Some(pretty(&v))
    };
    Ok(render(&PrivacyPage {
        page: Page::new("Privacy", "privacy", &caller, session.as_ref().map(|s| &s.0)),
        subject,
        report,
        erased: None,
    }))
}

/// `POST /privacy/erase` (admin): an erasure (GDPR Art. 17) through the same call as
/// `DELETE /api/v1/privacy/subjects/{subject}`; the subject must be typed twice.
pub async fn erase(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<Session>>,
    body: Bytes,
) -> Result<Response, PageError> {
    let pairs = form(&body);
    let subject = field(&pairs, "subject").unwrap_or("").trim().to_owned();
    if subject.is_empty() || field(&pairs, "confirm").map(str::trim) != Some(subject.as_str()) {
        return Err(ApiError::BadRequest("type the subject a second time to confirm its erasure".into()).into());
    }
    let axum::Json(v) =
        crate::privacy::erase(State(state.clone()), Extension(caller.clone()), Path(subject.clone())).await?;
    Ok(render(&PrivacyPage {
        page: Page::new("Privacy", "privacy", &caller, session.as_ref().map(|s| &s.0)),
        subject,
        report: None,
        erased: Some(pretty(&v)),
    }))
}

/// `POST /incidents/{id}/split` (analyst): the selected alerts become an incident of their own.
pub async fn split(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let id = parse_id(&id, "incident")?;
    let pairs = form(&body);
    let reason = field(&pairs, "reason").unwrap_or("").trim();
    if reason.is_empty() {
        return Err(ApiError::BadRequest("a reason is required to split".into()).into());
    }
    let alerts = pairs
        .iter()
        .filter(|(k, _)| k == "alert")
        .map(|(_, v)| parse_id(v, "alert"))
        .collect::<Result<Vec<_>, _>>()?;
    if alerts.is_empty() {
        return Err(ApiError::BadRequest("select the alerts to split off".into()).into());
    }
    let (_, split) = incidents(&state)?.split(id, &alerts, &caller.actor(), reason).await?;
    Ok(Redirect::to(&format!("/incidents/{}", split.id)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_follow_sign_in() {
        assert_eq!(local_path(Some("/incidents/1")), "/incidents/1");
        for bad in [
            "//evil.example",
            "https://evil.example/",
            "/\\evil",
            "javascript:alert(1)",
            "",
        ] {
            assert_eq!(local_path(Some(bad)), "/", "{bad}");
        }
        assert_eq!(local_path(None), "/");
    }

    #[test]
    fn queue_filters_round_trip_through_a_form() {
        let p = QueueParams {
            severity: "high".into(),
            rule: "a&b=c".into(),
            since: Some("2026-12-01T00:00:00Z".into()),
            ..QueueParams::default()
        };
        let back = serde_urlencoded_like(&p.query_string()).unwrap_or_default();
        assert_eq!(back.severity, "high");
        assert_eq!(back.rule, "a&b=c");
        assert_eq!(back.since.as_deref(), Some("2026-12-01T00:00:00Z"));
    }
}
