//! Rempart's server: the HTTP API and the analyst console with authentication and roles,
//! metrics, the syslog listeners, and the ingest pipeline that makes events durable before acknowledging them.
//!
//! [`run`] takes a bound listener and a shutdown future, so tests bind `127.0.0.1:0` and run
//! the server in-process. Shutdown stops accepting, lets in-flight requests finish (an ingest
//! request in flight is completed and acknowledged, or not acknowledged at all), flushes the
//! syslog batches, and returns.

mod api;
pub mod audit;
pub mod auth;
pub mod console;
mod error;
pub mod gateway;
pub mod incident_api;
pub mod intel;
pub mod listen;
pub mod oidc;
mod openapi;
mod page;
pub mod pipeline;
mod privacy;
pub mod respond_api;
pub mod syslog;
pub mod tls;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, post};
use rempart_audit::Ledger;
use rempart_ingest::DecodeOptions;
use rempart_store::{Role, Store};
use tokio::net::TcpListener;
use tower_http::limit::RequestBodyLimitLayer;

pub use error::ApiError;
pub use openapi::OPENAPI;
pub use rempart_services::active::ActiveRules;
pub use rempart_services::{anomaly, cluster, incidents, metrics, respond, triage};

/// What every handler shares, behind one reference count: the router clones the state for
/// every request and every layer it passes, so a clone is one atomic increment, not one per
/// part. Changing a part (while the server is being assembled) changes this handle's own copy
/// only, as with any clone.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl std::ops::DerefMut for AppState {
    fn deref_mut(&mut self) -> &mut Shared {
        Arc::make_mut(&mut self.0)
    }
}

/// The parts of an [`AppState`].
#[derive(Debug, Clone)]
pub struct Shared {
    pub store: Arc<dyn Store>,
    pub metrics: Arc<metrics::Metrics>,
    pub decode: Arc<DecodeOptions>,
    /// Most bytes a `Content-Encoding: gzip` request body may inflate to: the body limit, so
    /// that a compressed body costs no more memory than a plain one could.
    pub max_inflated_bytes: u64,
    /// Ingest requests decoding at once; the others wait, so concurrent large bodies cannot
    /// multiply memory beyond this many buffers.
    pub decode_slots: Arc<tokio::sync::Semaphore>,
    /// Authentication failures by client address, to slow guessing down.
    pub auth_failures: Arc<auth::Failures>,
    /// Requests per caller per minute (the API and the console; the gateway has its quotas).
    pub rate: Arc<auth::RateLimit>,
    /// People's event searches (API and console) running at once; ingest never waits on them.
    pub query_slots: Arc<tokio::sync::Semaphore>,
    /// Longest a search may run before the store stops it.
    pub query_budget: std::time::Duration,
    /// Detection rules run on everything ingested, if any are configured; replaced whole when
    /// the rule files change.
    pub rules: ActiveRules,
    /// The audit ledger: token changes, alerts and audit reads are recorded here.
    pub ledger: Ledger,
    /// Tokens whose first use since start is already recorded.
    pub logged_in: Arc<tokio::sync::Mutex<std::collections::HashSet<String>>>,
    /// Tokens recently found valid, so that a busy client costs no store query per request.
    pub tokens: Arc<auth::TokenCache>,
    /// The privacy engine (pseudonymization, vault, data-subject requests).
    pub privacy: Option<Arc<rempart_privacy::Privacy>>,
    /// Where a data subject's originals are found and rewritten (access and erasure requests).
    pub erasure: Option<Arc<dyn rempart_store::ErasureStore>>,
    /// Threat-intelligence indicators matched against everything ingested.
    pub intel: intel::ActiveIntel,
    /// Where indicators are stored (the API's imports and listing).
    pub intel_store: Option<Arc<dyn rempart_store::IntelStore>>,
    /// The sovereignty gateway, if `[gateway]` configures routes.
    pub gateway: Option<rempart_gateway::Gateway>,
    /// Incidents: correlation of everything detected, analysts' changes, triage.
    pub incidents: Option<incidents::Incidents>,
    /// The triage agent (with the gateway when a model route is configured).
    pub triage: Option<triage::Triage>,
    /// Playbooks, approvals and regulatory clocks.
    pub response: Option<respond::Response>,
    /// Per-entity baselines run on everything ingested.
    pub anomaly: Option<Arc<anomaly::Anomaly>>,
    /// The cluster's bus: when set, what is ingested is handed to it (and detected by the
    /// `detect` processes) instead of being detected and stored here.
    pub bus: Option<rempart_bus::Bus>,
    /// Partitions of the Sigma correlation rules' groups on the bus (`[bus]
    /// correlation_partitions`; 1 without a bus).
    pub correlation_partitions: u32,
    /// The console's sessions and sign-in codes.
    pub console: Arc<console::Console>,
    /// Client certificates that stand for a role (`[[server.tls.clients]]`).
    pub cert_clients: Arc<Vec<rempart_config::CertClient>>,
    /// Sign-in through the institution's OpenID provider, if `[oidc]` is configured.
    pub oidc: Option<Arc<oidc::Oidc>>,
}

impl AppState {
    /// What the cluster's loops work with, from this state.
    pub fn services(&self) -> cluster::Services {
        cluster::Services {
            store: self.store.clone(),
            ledger: self.ledger.clone(),
            metrics: self.metrics.clone(),
            rules: self.rules.clone(),
            intel: self.intel.clone(),
            anomaly: self.anomaly.clone(),
            incidents: self.incidents.clone(),
            response: self.response.clone(),
            correlation_partitions: self.correlation_partitions,
        }
    }

    /// What triage works with, from this state.
    pub fn triage_parts(&self) -> triage::Parts {
        triage::Parts {
            store: self.store.clone(),
            ledger: self.ledger.clone(),
            gateway: self.gateway.clone(),
            privacy: self.privacy.clone(),
            intel: self.intel.clone(),
            rules: self.rules.clone(),
            metrics: self.metrics.clone(),
        }
    }

    /// Runs a people's event search: it waits for a search slot (at most its budget, then
    /// `Busy`), and the store stops it past its budget.
    pub async fn search_events(
        &self,
        query: &rempart_store::EventQuery,
    ) -> Result<Vec<rempart_model::Event>, ApiError> {
        let _slot = tokio::time::timeout(self.query_budget, self.query_slots.acquire())
            .await
            .map_err(|_| ApiError::Busy("every search slot is taken: retry in a few seconds".into()))?
            .map_err(|e| ApiError::Internal(format!("search slots: {e}")))?;
        Ok(self.store.query_events_within(query, self.query_budget).await?)
    }

    pub fn new(store: Arc<dyn Store>, ledger: Ledger, decode: DecodeOptions) -> Self {
        AppState(Arc::new(Shared {
            store,
            ledger,
            logged_in: Arc::default(),
            tokens: Arc::default(),
            privacy: None,
            erasure: None,
            gateway: None,
            incidents: None,
            triage: None,
            response: None,
            anomaly: None,
            bus: None,
            correlation_partitions: 1,
            console: Arc::default(),
            cert_clients: Arc::default(),
            oidc: None,
            intel: intel::ActiveIntel::default(),
            intel_store: None,
            metrics: Arc::new(metrics::Metrics::default()),
            decode: Arc::new(decode),
            max_inflated_bytes: 16 * 1024 * 1024,
            decode_slots: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get() * 2),
            )),
            auth_failures: Arc::default(),
            rate: Arc::new(auth::RateLimit::per_minute(6000)),
            query_slots: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            )),
            query_budget: std::time::Duration::from_secs(10),
            rules: ActiveRules::default(),
        }))
    }
}

/// The API's routes, each behind the role it requires (health probes excepted).
pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    let with_role = |role: Role, routes: Router<AppState>| {
        routes.route_layer(middleware::from_fn_with_state((state.clone(), role), auth::require))
    };
    let viewer = with_role(
        Role::Viewer,
        Router::new()
            .route("/api/v1/events", get(api::query_events))
            .route("/api/v1/events/{id}", get(api::get_event))
            .route("/api/v1/stats", get(api::stats))
            .route("/api/v1/alerts", get(api::query_alerts))
            .route("/api/v1/intel", get(intel::list))
            .route("/api/v1/incidents", get(incident_api::list))
            .route("/api/v1/incidents/{id}", get(incident_api::show))
            .route("/api/v1/triage/stats", get(incident_api::stats))
            .route("/api/v1/playbooks", get(respond_api::playbooks))
            .route("/api/v1/runs", get(respond_api::runs))
            .route("/api/v1/runs/{id}", get(respond_api::run))
            .route("/api/v1/approvals", get(respond_api::approvals))
            .route("/api/v1/approvals/{id}", get(respond_api::approval))
            .route("/api/v1/deadlines", get(respond_api::deadlines))
            .route("/api/v1/incidents/{id}/regulatory", get(respond_api::regulatory))
            .route("/metrics", get(api::metrics)),
    );
    // The API's description, for every caller: a gateway client reads its `/v1` operations
    // (with the models it may use) there, an ingest token its one operation.
    let any_role = Router::new()
        .route("/openapi.json", get(api::openapi))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::require_any));
    let analyst = with_role(
        Role::Analyst,
        Router::new()
            .route("/api/v1/quarantine", get(api::list_quarantine))
            .route("/api/v1/privacy/redact", post(privacy::redact))
            .route("/api/v1/intel", post(intel::import))
            .route("/api/v1/incidents/{id}", post(incident_api::update))
            .route("/api/v1/incidents/{id}/split", post(incident_api::split))
            .route("/api/v1/incidents/{id}/triage", post(incident_api::triage))
            .route("/api/v1/incidents/{id}/held", post(incident_api::held))
            .route("/api/v1/verdicts/{id}/feedback", post(incident_api::feedback))
            .route("/api/v1/playbooks/{id}/run", post(respond_api::run_playbook))
            .route("/api/v1/incidents/{id}/regulatory", post(respond_api::assess))
            .route(
                "/api/v1/incidents/{id}/regulatory/submissions",
                post(respond_api::submission),
            )
            .route("/api/v1/incidents/{id}/reports/{report}", get(respond_api::report))
            .route("/api/v1/incidents/{id}/report.html", get(respond_api::report_html)),
    );
    let approver = with_role(
        Role::Approver,
        Router::new()
            .route("/api/v1/privacy/reveal", post(privacy::reveal))
            // Votes; an approval naming `admin` also checks the caller's role against it.
            .route("/api/v1/approvals/{id}/approve", post(respond_api::approve))
            .route("/api/v1/approvals/{id}/reject", post(respond_api::reject)),
    );
    let ingest = with_role(
        Role::Ingest,
        Router::new().route("/api/v1/events", post(api::ingest_events)),
    );
    let admin = with_role(
        Role::Admin,
        Router::new()
            .route("/api/v1/tokens", get(api::list_tokens).post(api::create_token))
            .route("/api/v1/tokens/{id}", delete(api::revoke_token))
            .route(
                "/api/v1/privacy/subjects/{subject}",
                get(privacy::subject).delete(privacy::erase),
            )
            .route("/api/v1/gateway/providers", get(gateway::providers))
            .route("/api/v1/gateway/providers/{name}/revoke", post(gateway::revoke))
            .route("/api/v1/gateway/providers/{name}/restore", post(gateway::restore)),
    );
    let gateway_client = with_role(
        Role::GatewayClient,
        Router::new()
            .route("/v1/chat/completions", post(gateway::chat_completions))
            .route("/v1/responses", post(gateway::responses))
            .route("/v1/messages", post(gateway::messages))
            .route("/v1/models", get(gateway::models)),
    );
    let auditor = with_role(
        Role::Auditor,
        Router::new()
            .route("/api/v1/audit/records", get(audit::records))
            .route("/api/v1/audit/records/{seq}", get(audit::record))
            .route("/api/v1/audit/checkpoints", get(audit::checkpoints))
            .route("/api/v1/audit/proof/inclusion", get(audit::inclusion))
            .route("/api/v1/audit/proof/consistency", get(audit::consistency))
            .route("/api/v1/audit/verify", get(audit::verify))
            .route("/api/v1/audit/export", get(audit::export)),
    );
    let console = console::routes(&state);
    Router::new()
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .merge(any_role)
        .merge(viewer)
        .merge(analyst)
        .merge(approver)
        .merge(ingest)
        .merge(admin)
        .merge(auditor)
        .merge(gateway_client)
        .merge(console)
        .layer(middleware::from_fn_with_state(state.clone(), count_requests))
        .layer(middleware::from_fn_with_state(state.clone(), console::security_headers))
        // One cap for every body, from configuration; axum's own 2 MiB default is replaced by it.
        .layer(RequestBodyLimitLayer::new(max_body_bytes))
        .layer(DefaultBodyLimit::disable())
        // Outermost, so that every refusal above (the body cap's among them) has the one shape.
        .layer(middleware::from_fn(error::uniform))
        .with_state(state)
}

async fn count_requests(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = req.method().to_string();
    let resp = next.run(req).await;
    state
        .metrics
        .http_requests
        .get_or_create(&vec![
            ("route", route),
            ("method", method),
            ("status", resp.status().as_u16().to_string()),
        ])
        .inc();
    resp
}

/// Serves the API on `listener` until `shutdown` completes, then drains in-flight requests;
/// connections are admitted and timed as [`listen`] describes.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    listen: listen::Listen,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let metrics = state.metrics.clone();
    let app = router(state, listen.max_body_bytes);
    listen::serve(listener, app, listen, metrics, shutdown).await
}
