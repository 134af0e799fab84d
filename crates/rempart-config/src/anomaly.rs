//! `[anomaly]`: live anomaly detection over everything ingested, with per-source overrides.
//!
//! ```toml
//! [anomaly]
//! detectors = ["baselines", "edges", "flows"]   # the default: all three
//! flow_threshold = 16
//!
//! [anomaly.source.zeek-dmz]                     # events whose source is `zeek-dmz`
//! detectors = ["edges", "flows"]
//! flow_threshold = 22
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::Problem;
use crate::incidents::bounded;

/// Which live detectors run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detectors {
    /// Per-entity baselines (rare process, first logon, unusual hour, bursts, new service,
    /// outbound volume).
    pub baselines: bool,
    /// MIDAS-R over the address, logon and program edge streams.
    pub edges: bool,
    /// Streaming ECOD over connection records (duration, bytes each way) per service.
    pub flows: bool,
}

impl Detectors {
    pub const ALL: Detectors = Detectors {
        baselines: true,
        edges: true,
        flows: true,
    };
    pub const NAMES: [&'static str; 3] = ["baselines", "edges", "flows"];
}

/// What may differ per source: which detectors run and where they fire.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnomalyTuning {
    pub detectors: Detectors,
    /// The chi-squared score of an edge-stream burst that raises an alert.
    pub edge_threshold: f32,
    /// … and the least count in the minute it applies to.
    pub edge_min_count: f32,
    /// The ECOD score of a connection that raises an alert: the summed −ln tail probabilities
    /// of its three features, so 14 is a joint tail of about one in a million. Replaying KDD 99
    /// HTTP as Zeek records, 14 flags 99 % of attacks at 83 % precision (BENCHMARKS.md).
    pub flow_threshold: f64,
}

impl Default for AnomalyTuning {
    fn default() -> Self {
        AnomalyTuning {
            detectors: Detectors::ALL,
            edge_threshold: 1_000.0,
            edge_min_count: 30.0,
            flow_threshold: 14.0,
        }
    }
}

/// Live anomaly detection.
#[derive(Debug, Clone, PartialEq)]
pub struct Anomaly {
    pub enabled: bool,
    /// Only events from these sources (`http`, `syslog`, a file's name); all when empty.
    pub sources: Vec<String>,
    /// Events a baseline learns before it may fire (per host for processes, overall for logons).
    pub warm_up: u64,
    /// Logons an account needs before its hours are judged.
    pub min_history: u64,
    /// Failed logons in five minutes that make a burst (and three times the usual).
    pub burst_min: u64,
    /// Bytes an hour below which outbound volume never fires.
    pub volume_min_bytes: u64,
    /// Connections of a service its flow model learns before it may fire.
    pub flow_warm_up: u64,
    /// Detectors and thresholds of every source without its own.
    pub tuning: AnomalyTuning,
    /// Per source: its own detectors and thresholds (unset keys take the section's).
    pub per_source: BTreeMap<String, AnomalyTuning>,
}

impl Default for Anomaly {
    fn default() -> Self {
        Anomaly {
            enabled: true,
            sources: Vec::new(),
            warm_up: 200,
            min_history: 30,
            burst_min: 10,
            volume_min_bytes: 50 * 1024 * 1024,
            flow_warm_up: 1_000,
            tuning: AnomalyTuning::default(),
            per_source: BTreeMap::new(),
        }
    }
}

impl Anomaly {
    /// The tuning of events from `source`.
    pub fn tuning(&self, source: &str) -> &AnomalyTuning {
        self.per_source.get(source).unwrap_or(&self.tuning)
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAnomaly {
    enabled: Option<bool>,
    sources: Option<Vec<String>>,
    warm_up: Option<i64>,
    min_history: Option<i64>,
    burst_min: Option<i64>,
    volume_min_bytes: Option<i64>,
    flow_warm_up: Option<i64>,
    // The section's own tuning (not flattened: serde cannot deny unknown keys beside a flatten).
    detectors: Option<Vec<String>>,
    edge_threshold: Option<f64>,
    edge_min_count: Option<i64>,
    flow_threshold: Option<f64>,
    source: Option<BTreeMap<String, RawTuning>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTuning {
    detectors: Option<Vec<String>>,
    edge_threshold: Option<f64>,
    edge_min_count: Option<i64>,
    flow_threshold: Option<f64>,
}

fn tuning(raw: RawTuning, base: &AnomalyTuning, path: &str, problems: &mut Vec<Problem>) -> AnomalyTuning {
    let mut out = *base;
    if let Some(names) = raw.detectors {
        let mut d = Detectors {
            baselines: false,
            edges: false,
            flows: false,
        };
        for (i, name) in names.iter().enumerate() {
            match name.as_str() {
                "baselines" => d.baselines = true,
                "edges" => d.edges = true,
                "flows" => d.flows = true,
                other => problems.push(Problem {
                    path: format!("{path}.detectors[{i}]"),
                    message: format!("`{other}` is not {}", Detectors::NAMES.join(", ")),
                }),
            }
        }
        out.detectors = d;
    }
    let mut positive = |key: &str, v: Option<f64>, max: f64| -> Option<f64> {
        let v = v?;
        if v.is_finite() && v > 0.0 && v <= max {
            Some(v)
        } else {
            problems.push(Problem {
                path: format!("{path}.{key}"),
                message: format!("{v} is not a number above 0 and at most {max}"),
            });
            None
        }
    };
    if let Some(v) = positive("edge_threshold", raw.edge_threshold, 1e12) {
        out.edge_threshold = v as f32;
    }
    if let Some(v) = positive("flow_threshold", raw.flow_threshold, 1_000.0) {
        out.flow_threshold = v;
    }
    if let Some(v) = bounded(
        problems,
        &format!("{path}.edge_min_count"),
        raw.edge_min_count,
        1..=1_000_000,
    ) {
        out.edge_min_count = v as f32;
    }
    out
}

pub(crate) fn validate(raw: RawAnomaly, problems: &mut Vec<Problem>) -> Anomaly {
    let mut out = Anomaly::default();
    if let Some(e) = raw.enabled {
        out.enabled = e;
    }
    out.sources = raw.sources.unwrap_or_default();
    let set = |slot: &mut u64, v: Option<u64>| {
        if let Some(v) = v {
            *slot = v;
        }
    };
    set(
        &mut out.warm_up,
        bounded(problems, "anomaly.warm_up", raw.warm_up, 1..=10_000_000),
    );
    set(
        &mut out.min_history,
        bounded(problems, "anomaly.min_history", raw.min_history, 1..=10_000_000),
    );
    set(
        &mut out.burst_min,
        bounded(problems, "anomaly.burst_min", raw.burst_min, 2..=1_000_000),
    );
    set(
        &mut out.volume_min_bytes,
        bounded(problems, "anomaly.volume_min_bytes", raw.volume_min_bytes, 1..=i64::MAX),
    );
    set(
        &mut out.flow_warm_up,
        bounded(problems, "anomaly.flow_warm_up", raw.flow_warm_up, 10..=10_000_000),
    );
    let own = RawTuning {
        detectors: raw.detectors,
        edge_threshold: raw.edge_threshold,
        edge_min_count: raw.edge_min_count,
        flow_threshold: raw.flow_threshold,
    };
    out.tuning = tuning(own, &AnomalyTuning::default(), "anomaly", problems);
    for (name, t) in raw.source.unwrap_or_default() {
        if !out.sources.is_empty() && !out.sources.contains(&name) {
            problems.push(Problem {
                path: format!("anomaly.source.{name}"),
                message: format!("`{name}` is not one of `anomaly.sources`, so none of its events is looked at"),
            });
        }
        let t = tuning(t, &out.tuning, &format!("anomaly.source.{name}"), problems);
        out.per_source.insert(name, t);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use crate::Config;

    #[test]
    fn a_source_overrides_what_it_sets_and_inherits_the_rest() {
        let cfg = Config::parse(
            r#"
            version = 1
            [anomaly]
            flow_threshold = 20
            edge_min_count = 50
            [anomaly.source.zeek-dmz]
            detectors = ["flows"]
            edge_threshold = 5000
            "#,
            "t.toml",
        )
        .unwrap();
        let a = &cfg.anomaly;
        assert_eq!(a.tuning("http").flow_threshold, 20.0);
        assert!(a.tuning("http").detectors.baselines);
        let z = a.tuning("zeek-dmz");
        assert!(z.detectors.flows && !z.detectors.edges && !z.detectors.baselines);
        assert_eq!(
            (z.flow_threshold, z.edge_threshold, z.edge_min_count),
            (20.0, 5000.0, 50.0)
        );
    }

    #[test]
    fn bad_tuning_is_named() {
        let err = Config::parse(
            r#"
            version = 1
            [anomaly]
            sources = ["http"]
            flow_threshold = -1
            flow_warm_up = 2
            [anomaly.source.zeek]
            detectors = ["edges", "magic"]
            edge_threshold = nan
            "#,
            "t.toml",
        )
        .unwrap_err()
        .to_string();
        for expect in [
            "`anomaly.flow_threshold`: -1 is not a number above 0",
            "`anomaly.flow_warm_up`: 2 is outside 10 to 10000000",
            "`anomaly.source.zeek`: `zeek` is not one of `anomaly.sources`",
            "`anomaly.source.zeek.detectors[1]`: `magic` is not baselines, edges, flows",
            "`anomaly.source.zeek.edge_threshold`: NaN is not a number above 0",
        ] {
            assert!(err.contains(expect), "missing {expect:?} in {err}");
        }
    }
}
