//! Prometheus metrics, served at `/metrics`. Counters are named `rempart_<thing>_total`.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Events made durable, by format and source kind.
    pub events_ingested: Family<Labels, Counter>,
    /// Input quarantined, by source kind.
    pub events_rejected: Family<Labels, Counter>,
    /// Alerts raised, by level.
    pub alerts: Family<Labels, Counter>,
    /// HTTP requests, by route and status.
    pub http_requests: Family<Labels, Counter>,
    /// Requests refused for a role that does not grant the route.
    pub auth_denied: Counter,
    /// Time to make one batch durable, in seconds.
    pub store_write_seconds: Histogram,
    /// Things done whose ledger record could not be appended (alerts of stored events).
    pub audit_failures: Counter,
    /// Alerts stored but not grouped into incidents (a store error during correlation).
    pub incident_failures: Counter,
    /// Incidents opened by correlation.
    pub incidents: Counter,
    /// Triage verdicts, by mode (`model`, `degraded`) and classification.
    pub verdicts: Family<Labels, Counter>,
    /// Analysts' judgements of verdicts, by model, rule, verdict and whether they agreed:
    /// agreement rate = agrees="true" / all; false-positive rejection rate = among feedback
    /// whose analyst classification is `false_positive`, the share the verdict got right.
    pub feedback: Family<Labels, Counter>,
    /// Response actions carried out (or described, in dry runs), by action and outcome.
    pub response_actions: Family<Labels, Counter>,
    /// Approvals opened and decided, by status (`requested`, `approved`, `rejected`,
    /// `timed_out`).
    pub approvals: Family<Labels, Counter>,
    /// Reporting deadlines warned about, by report and state (`due_soon`, `overdue`).
    pub deadline_warnings: Family<Labels, Counter>,
    /// Time to have a batch stored by JetStream (a cluster's ingest), in seconds.
    pub bus_publish_seconds: Histogram,
    /// Bus messages done (stored and acknowledged), by stream and delivery (`first`,
    /// `redelivered`: after a worker died or failed).
    pub bus_messages: Family<Labels, Counter>,
    /// Messages waiting or unacknowledged, by consumer (`detect`, `correlate`): the lag.
    pub bus_lag: Family<Labels, Gauge>,
    /// Connections open, by listener (`http`, `syslog-tcp`, `syslog-tls`).
    pub connections: Family<Labels, Gauge>,
    /// Connections closed by a limit, by listener and reason (`full`: the listener's cap,
    /// `peer`: the cap per address, `idle`: silent too long, `handshake`: TLS not completed,
    /// `error`: the connection failed).
    pub connections_closed: Family<Labels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let events_ingested = Family::<Labels, Counter>::default();
        let events_rejected = Family::<Labels, Counter>::default();
        let http_requests = Family::<Labels, Counter>::default();
        let alerts = Family::<Labels, Counter>::default();
        let auth_denied = Counter::default();
        let audit_failures = Counter::default();
        let incident_failures = Counter::default();
        let incidents = Counter::default();
        let verdicts = Family::<Labels, Counter>::default();
        let feedback = Family::<Labels, Counter>::default();
        let response_actions = Family::<Labels, Counter>::default();
        let approvals = Family::<Labels, Counter>::default();
        let deadline_warnings = Family::<Labels, Counter>::default();
        let bus_publish_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        let bus_messages = Family::<Labels, Counter>::default();
        let bus_lag = Family::<Labels, Gauge>::default();
        let connections = Family::<Labels, Gauge>::default();
        let connections_closed = Family::<Labels, Counter>::default();
        registry.register(
            "rempart_connections",
            "Connections open, by listener",
            connections.clone(),
        );
        registry.register(
            "rempart_connections_closed",
            "Connections closed by a limit or a failure, by listener and reason",
            connections_closed.clone(),
        );
        registry.register(
            "rempart_bus_publish_seconds",
            "Time to have one ingested batch stored by JetStream",
            bus_publish_seconds.clone(),
        );
        registry.register(
            "rempart_bus_messages",
            "Bus messages done, by stream and delivery (first or redelivered)",
            bus_messages.clone(),
        );
        registry.register(
            "rempart_bus_lag",
            "Bus messages waiting or unacknowledged, by consumer",
            bus_lag.clone(),
        );
        registry.register(
            "rempart_response_actions",
            "Response actions by action and outcome",
            response_actions.clone(),
        );
        registry.register("rempart_approvals", "Approvals by status", approvals.clone());
        registry.register(
            "rempart_regulatory_deadline_warnings",
            "Reporting deadlines warned about, by report and state",
            deadline_warnings.clone(),
        );
        registry.register(
            "rempart_incident_failures",
            "Alerts stored but not grouped into incidents",
            incident_failures.clone(),
        );
        registry.register(
            "rempart_incidents",
            "Incidents opened by correlation",
            incidents.clone(),
        );
        registry.register(
            "rempart_triage_verdicts",
            "Triage verdicts by mode and classification",
            verdicts.clone(),
        );
        registry.register(
            "rempart_triage_feedback",
            "Analysts' judgements of triage verdicts by model, rule, verdict and agreement",
            feedback.clone(),
        );
        let store_write_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        registry.register(
            "rempart_events_ingested",
            "Events made durable",
            events_ingested.clone(),
        );
        registry.register(
            "rempart_events_rejected",
            "Input quarantined as undecodable",
            events_rejected.clone(),
        );
        registry.register("rempart_alerts", "Alerts raised by detection rules", alerts.clone());
        registry.register("rempart_http_requests", "HTTP requests served", http_requests.clone());
        registry.register(
            "rempart_auth_denied",
            "Requests refused for their token's role",
            auth_denied.clone(),
        );
        registry.register(
            "rempart_store_write_seconds",
            "Time to make one batch durable",
            store_write_seconds.clone(),
        );
        registry.register(
            "rempart_audit_append_failures",
            "Ledger records that could not be appended",
            audit_failures.clone(),
        );
        Metrics {
            registry,
            audit_failures,
            incident_failures,
            incidents,
            verdicts,
            feedback,
            response_actions,
            approvals,
            deadline_warnings,
            events_ingested,
            events_rejected,
            alerts,
            http_requests,
            auth_denied,
            store_write_seconds,
            bus_publish_seconds,
            bus_messages,
            bus_lag,
            connections,
            connections_closed,
        }
    }
}

impl Metrics {
    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
