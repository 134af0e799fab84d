//! Sigma correlation across the processes of a cluster.
//!
//! A correlation's windows are kept per group (its `group-by` values). In a cluster the
//! detect processes share the events, so no one of them sees a group whole: each event that
//! one of a correlation's rules matched is sent instead to the partition of its (correlation,
//! group), and one process at a time owns a partition, its windows and their checkpoints. A
//! correlation chained to others (one that refers to a correlation, or is referred to by one)
//! goes whole to the partition of its chain, whatever its groups: the chain's windows feed one
//! another and must be in one place.
//!
//! The partition of a (correlation, group) is a stable hash (FNV-1a, the same in every process
//! and every release) of the correlation's id and the group's values, so the detect process
//! that routes an event and the owner that keeps only its own partition's alerts agree.

use std::collections::{BTreeSet, HashMap};

use rempart_model::Event;
use rsigma_eval::correlation::{GroupByField, GroupKey};

use crate::{Correlator, RuleMatch, RuleSet, SigmaView, rule_match};

/// One correlation as partitioning reads it.
#[derive(Debug)]
pub(crate) struct Routed {
    /// The correlation's id (or name, or title): what its results are headed with.
    id: String,
    /// The ids and names of the rules and correlations it refers to.
    refs: Vec<String>,
    group_by: Vec<GroupByField>,
    /// The id of the chain it belongs to, when it is chained to other correlations.
    chain: Option<String>,
}

/// The correlations of a rule set, for partitioning.
#[derive(Debug, Default)]
pub(crate) struct Partitioning {
    routed: Vec<Routed>,
    /// Each rule that feeds a correlation: its id and, when it has one, its name.
    names: HashMap<String, Vec<String>>,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

fn fnv(parts: &[&str]) -> u64 {
    let mut h = FNV_OFFSET;
    for p in parts {
        for b in p.bytes().chain([0xff]) {
            h = (h ^ u64::from(b)).wrapping_mul(FNV_PRIME);
        }
    }
    h
}

/// The partition of a correlation's group, of `partitions`.
fn partition_of(correlation: &str, chain: Option<&str>, group: &[(String, String)], partitions: u32) -> u32 {
    let hash = match chain {
        Some(chain) => fnv(&["chain", chain]),
        None => {
            let mut parts: Vec<&str> = vec![correlation];
            for (k, v) in group {
                parts.push(k);
                parts.push(v);
            }
            fnv(&parts)
        }
    };
    (hash % u64::from(partitions.max(1))) as u32
}

impl Partitioning {
    pub(crate) fn new(correlations: &[rsigma_parser::CorrelationRule], rules: &[rsigma_parser::SigmaRule]) -> Self {
        let identity = |c: &rsigma_parser::CorrelationRule| {
            c.id.clone()
                .or_else(|| c.name.clone())
                .unwrap_or_else(|| c.title.clone())
        };
        let is_correlation = |r: &str| {
            correlations
                .iter()
                .any(|c| c.id.as_deref() == Some(r) || c.name.as_deref() == Some(r))
        };
        // Chains: correlations linked by references, each named by its smallest member id.
        let mut chain_of: HashMap<String, String> = HashMap::new();
        for c in correlations {
            let chained = c.rules.iter().any(|r| is_correlation(r))
                || correlations.iter().any(|o| {
                    o.rules
                        .iter()
                        .any(|r| c.id.as_deref() == Some(r.as_str()) || c.name.as_deref() == Some(r.as_str()))
                });
            if chained {
                chain_of.insert(identity(c), identity(c));
            }
        }
        // Joined to a fixed point: every member of a chain gets the chain's smallest id.
        loop {
            let mut changed = false;
            for c in correlations {
                let me = identity(c);
                let Some(mine) = chain_of.get(&me).cloned() else {
                    continue;
                };
                for r in &c.rules {
                    let Some(other) = correlations
                        .iter()
                        .find(|o| o.id.as_deref() == Some(r.as_str()) || o.name.as_deref() == Some(r.as_str()))
                    else {
                        continue;
                    };
                    let theirs = chain_of
                        .get(&identity(other))
                        .cloned()
                        .unwrap_or_else(|| identity(other));
                    let least = mine.clone().min(theirs);
                    for id in [me.clone(), identity(other)] {
                        if chain_of.get(&id) != Some(&least) {
                            chain_of.insert(id, least.clone());
                            changed = true;
                        }
                    }
                }
            }
            if !changed {
                break;
            }
        }
        let routed = correlations
            .iter()
            .filter_map(|c| {
                let compiled = rsigma_eval::correlation::compile_correlation(c).ok()?;
                let id = identity(c);
                Some(Routed {
                    chain: chain_of.get(&id).cloned(),
                    id,
                    refs: c.rules.clone(),
                    group_by: compiled.group_by,
                })
            })
            .collect();
        let names = rules
            .iter()
            .filter_map(|r| {
                let id = r.id.clone()?;
                let names: Vec<String> = std::iter::once(id.clone()).chain(r.name.clone()).collect();
                Some((id, names))
            })
            .collect();
        Partitioning { routed, names }
    }

    /// The partitions `event` goes to, of `partitions`, given the detections found in it:
    /// one for each (correlation, group) a matched rule feeds.
    pub(crate) fn partitions(&self, view: &SigmaView<'_>, matched: &[String], partitions: u32) -> BTreeSet<u32> {
        let mut out = BTreeSet::new();
        for rule in matched {
            let names = self.names.get(rule).cloned().unwrap_or_else(|| vec![rule.clone()]);
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            for c in &self.routed {
                if !c.refs.iter().any(|r| refs.contains(&r.as_str())) {
                    continue;
                }
                let group = GroupKey::extract(view, &c.group_by, &refs).to_pairs(&c.group_by);
                out.insert(partition_of(&c.id, c.chain.as_deref(), &group, partitions));
            }
        }
        out
    }

    /// The partition a correlation's result belongs to.
    fn partition_of_result(&self, correlation: &str, group: &[(String, String)], partitions: u32) -> u32 {
        let chain = self
            .routed
            .iter()
            .find(|c| c.id == correlation)
            .and_then(|c| c.chain.as_deref());
        partition_of(correlation, chain, group, partitions)
    }
}

/// What a detect process of a cluster found in one event.
#[derive(Debug, Default)]
pub struct Found {
    /// The detections that raise alerts themselves (not the rules that only feed
    /// correlations without `generate`).
    pub matches: Vec<RuleMatch>,
    /// The correlation partitions the event goes to.
    pub partitions: BTreeSet<u32>,
}

impl RuleSet {
    /// Whether the rule set has correlation rules.
    pub fn correlates(&self) -> bool {
        !self.correlations.is_empty()
    }

    /// Detection of one event in a cluster's detect process: its detections (correlations are
    /// left to the owners of their partitions), and the partitions, of `partitions`, whose
    /// correlations one of its detections feeds.
    pub fn detect_partitioned(&self, event: &Event, partitions: u32) -> Found {
        let view = SigmaView::new(event);
        let detections = self.detections(event, &view);
        let matched: Vec<String> = detections.iter().filter_map(|d| d.header.rule_id.clone()).collect();
        Found {
            partitions: self.partitioning.partitions(&view, &matched, partitions),
            matches: detections
                .iter()
                .filter(|m| !m.header.rule_id.as_ref().is_some_and(|id| self.silent.contains(id)))
                .map(rule_match)
                .collect(),
        }
    }

    /// Correlation of one event by the owner of `partition` (of `partitions`), in
    /// `correlator`, which holds that partition's windows: the correlations it completes in
    /// that partition (its detections are raised by the detect processes).
    pub fn correlate_partition(
        &self,
        event: &Event,
        correlator: &mut Correlator,
        partition: u32,
        partitions: u32,
    ) -> Vec<RuleMatch> {
        let view = SigmaView::new(event);
        let detections = self.detections(event, &view);
        correlator
            .engine
            .process_with_detections(&view, detections, event.time.as_second())
            .iter()
            .filter(|m| {
                m.as_correlation().is_some_and(|c| {
                    let id = m.header.rule_id.as_deref().unwrap_or(&m.header.rule_title);
                    self.partitioning.partition_of_result(id, &c.group_key, partitions) == partition
                })
            })
            .filter(|m| !m.header.rule_id.as_ref().is_some_and(|id| self.silent.contains(id)))
            .map(rule_match)
            .collect()
    }

    /// The alerts of [`RuleSet::correlate_partition`] for events in time order.
    pub fn correlation_alerts(
        &self,
        events: &[Event],
        correlator: &mut Correlator,
        partition: u32,
        partitions: u32,
        created: jiff::Timestamp,
    ) -> Vec<rempart_model::Alert> {
        let mut order: Vec<&Event> = events.iter().collect();
        order.sort_by_key(|e| e.time);
        let mut out = Vec::new();
        for e in order {
            for m in self.correlate_partition(e, correlator, partition, partitions) {
                out.push(self.alert(e, created, m));
            }
        }
        out
    }

    /// The detection alerts of a cluster's detect process for `events`, and for each
    /// correlation partition the events it must be sent.
    pub fn partitioned_alerts(
        &self,
        events: &[Event],
        partitions: u32,
        created: jiff::Timestamp,
    ) -> (Vec<rempart_model::Alert>, std::collections::BTreeMap<u32, Vec<usize>>) {
        let mut alerts = Vec::new();
        let mut sent: std::collections::BTreeMap<u32, Vec<usize>> = std::collections::BTreeMap::new();
        for (i, e) in events.iter().enumerate() {
            let found = self.detect_partitioned(e, partitions);
            for p in found.partitions {
                sent.entry(p).or_default().push(i);
            }
            alerts.extend(found.matches.into_iter().map(|m| self.alert(e, created, m)));
        }
        (alerts, sent)
    }
}

impl Correlator {
    /// The windows, as a snapshot to save (a checkpoint).
    pub fn snapshot(&self) -> serde_json::Value {
        serde_json::to_value(self.engine.export_state()).unwrap_or(serde_json::Value::Null)
    }

    /// Windows saved by [`Correlator::snapshot`]; `false` (and nothing restored) when the
    /// snapshot is not one this release reads.
    pub fn restore(&mut self, snapshot: serde_json::Value) -> bool {
        match serde_json::from_value(snapshot) {
            Ok(s) => self.engine.import_state(s),
            Err(_) => false,
        }
    }
}
