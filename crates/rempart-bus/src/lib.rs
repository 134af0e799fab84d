//! The bus between the processes of a cluster: batches of events and of alerts on NATS
//! JetStream streams, kept on the servers' disks.
//!
//! ```text
//!  ingest ──publish (acked by JetStream)──► REMPART_EVENTS ──work queue "detect"──► detect workers
//!  detect ──publish──► REMPART_ALERTS ──work queue "correlate"──► the active correlator
//!  correlator ──publish──► REMPART_INCIDENTS ──work queue "respond"──► respond processes
//!  detect ──publish──► REMPART_SIGMA ──one consumer per partition──► each partition's owner
//!  detect ──publish──► REMPART_ANOMALY ──read in order from a checkpoint──► the anomaly owner
//! ```
//!
//! A sender is told its events are stored only once JetStream has acknowledged every message
//! of its batch (file storage; `sync_interval: always` on the servers, see `docs/deployment.md`).
//! A consumer acknowledges a message only after what it did with it is committed in the store,
//! and the store skips what it already holds (event ids, alert ids derived from rule and
//! event), so a message delivered again after a worker died changes nothing. Both streams are
//! work queues: a message is removed once acknowledged, and what is pending is the lag.
//!
//! Messages are JSON: [`EventBatch`] and [`AlertBatch`], each cut to the servers'
//! `max_payload`, each with a message id naming its content (its first item's id, the number
//! of items and a digest of their ids) so that a publish retried within JetStream's duplicate
//! window is stored once, and a message of other content is never taken for a duplicate.

use std::path::Path;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use base64::Engine as _;
use futures_util::StreamExt as _;
use jiff::Timestamp;
use rempart_model::{Alert, Event, EventId};
use rempart_store::Quarantined;
use serde::{Deserialize, Serialize};

/// The stream holding batches of events between ingest and detection.
pub const EVENTS_STREAM: &str = "REMPART_EVENTS";
pub const EVENTS_SUBJECT: &str = "rempart.events";
/// The stream holding alerts (with their events) between detection and correlation.
pub const ALERTS_STREAM: &str = "REMPART_ALERTS";
pub const ALERTS_SUBJECT: &str = "rempart.alerts";
/// The stream holding what happened to incidents (created, grown, triaged), for the playbooks.
pub const INCIDENTS_STREAM: &str = "REMPART_INCIDENTS";
pub const INCIDENTS_SUBJECT: &str = "rempart.incidents";
/// Events for Sigma correlation, one subject per partition (`rempart.sigma.<n>`).
pub const SIGMA_STREAM: &str = "REMPART_SIGMA";
pub const SIGMA_SUBJECTS: &str = "rempart.sigma.*";
/// Events for the anomaly detectors, read in order by the one process that owns them.
pub const ANOMALY_STREAM: &str = "REMPART_ANOMALY";
pub const ANOMALY_SUBJECT: &str = "rempart.anomaly";
/// The name the anomaly stream's reader is shown under in the status.
pub const ANOMALY_READER: &str = "anomaly";
/// The durable consumer the detect workers share.
pub const DETECT: &str = "detect";
/// The durable consumer of the active correlator.
pub const CORRELATE: &str = "correlate";
/// The durable consumer the respond processes share.
pub const RESPOND: &str = "respond";

/// Notices in one message: few, so that a burst of incidents spreads over the respond
/// processes (a notice is about 80 bytes).
const NOTICES_PER_MESSAGE: usize = 4;

/// Each stream and the durable consumer that works it.
const QUEUES: [(&str, &str); 3] = [
    (EVENTS_STREAM, DETECT),
    (ALERTS_STREAM, CORRELATE),
    (INCIDENTS_STREAM, RESPOND),
];

/// A durable pull consumer that acknowledges each message explicitly, with at most
/// `max_ack_pending` delivered and not yet acknowledged.
fn pull_consumer(durable: &str, max_ack_pending: i64, description: String) -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(durable.to_owned()),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: ACK_WAIT,
        max_ack_pending,
        description: Some(description),
        ..consumer::pull::Config::default()
    }
}

/// The subject of a Sigma correlation partition.
pub fn partition_subject(partition: u32) -> String {
    format!("rempart.sigma.{partition}")
}

/// The durable consumer of a Sigma correlation partition.
pub fn partition_consumer(partition: u32) -> String {
    format!("sigma-{partition}")
}

/// How long JetStream remembers message ids to drop a duplicate publish.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// How long a delivered message may stay unacknowledged before it goes to another consumer
/// (a worker killed mid-batch): the longest a batch waits after a crash.
pub const ACK_WAIT: Duration = Duration::from_secs(15);
/// Bytes of a message left for its envelope and headers under the servers' `max_payload`.
const ENVELOPE: usize = 4096;

/// Why the bus failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot reach the bus at {servers}: {reason}")]
    Connect { servers: String, reason: String },
    #[error("the bus refused or dropped the request: {0}")]
    Bus(String),
    #[error(
        "{what} {id} is {bytes} bytes encoded, more than one bus message carries ({max} bytes): raise `max_payload` on the NATS servers"
    )]
    TooLarge {
        what: &'static str,
        id: EventId,
        bytes: usize,
        max: usize,
    },
    #[error("message {sequence} of stream {stream} does not decode: {reason}")]
    Decode {
        stream: String,
        sequence: u64,
        reason: String,
    },
    #[error("cannot read `{path}`: {reason}")]
    Secret { path: String, reason: String },
}

fn bus_error(e: impl std::fmt::Display) -> BusError {
    BusError::Bus(e.to_string())
}

/// A batch of events (and of what could not be decoded) as it travels.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventBatch {
    pub events: Vec<Event>,
    #[serde(default)]
    pub rejected: Vec<Rejected>,
}

/// Alerts newly stored, with the events they point at, as the correlator needs them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertBatch {
    pub alerts: Vec<Alert>,
    #[serde(default)]
    pub events: Vec<Event>,
    /// Whether these alerts may have been passed on before (the events' message was delivered
    /// more than once): the correlator then skips those already in an incident.
    #[serde(default)]
    pub again: bool,
}

/// What happened to an incident, as the playbooks' triggers name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Created,
    Grown,
    Triaged,
}

/// One change of one incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub incident: EventId,
    pub change: Change,
}

/// Notices as they travel: what one correlation (or one triage) changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeBatch {
    pub notices: Vec<Notice>,
}

/// A quarantined item on the wire: its raw bytes exactly, in base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    pub id: EventId,
    pub received: Timestamp,
    pub source: String,
    pub location: Option<String>,
    pub reason: String,
    pub raw: String,
}

impl From<&Quarantined> for Rejected {
    fn from(q: &Quarantined) -> Self {
        Rejected {
            id: q.id,
            received: q.received,
            source: q.source.clone(),
            location: q.location.clone(),
            reason: q.reason.clone(),
            raw: base64::engine::general_purpose::STANDARD.encode(&q.raw),
        }
    }
}

impl Rejected {
    /// The stored form; raw bytes that are not base64 are kept as the text they are.
    pub fn into_quarantined(self) -> Quarantined {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&self.raw)
            .unwrap_or_else(|_| self.raw.into_bytes());
        Quarantined {
            id: self.id,
            received: self.received,
            source: self.source,
            location: self.location,
            reason: self.reason,
            raw,
        }
    }
}

/// One message to publish: its id (for JetStream's duplicate window) and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub id: String,
    pub body: Vec<u8>,
}

/// Packs items, each already encoded as JSON, into messages `{"<a>":[…],"<b>":[…]}` of at
/// most `max` bytes, in order; each item goes whole into one message.
struct Packer {
    max: usize,
    sections: [&'static str; 2],
    out: Vec<Outgoing>,
    current: [Vec<u8>; 2],
    /// The first unit's id, and how many units, in the message being filled.
    first: Option<(String, usize)>,
    /// FNV-1a over the ids of the units in the message being filled.
    digest: u64,
    /// More members of each message's object (`,"again":true`).
    trailer: &'static str,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

impl Packer {
    fn new(max: usize, sections: [&'static str; 2]) -> Self {
        Packer {
            max,
            sections,
            out: Vec::new(),
            current: [Vec::new(), Vec::new()],
            first: None,
            digest: FNV_OFFSET,
            trailer: "",
        }
    }

    fn size(&self) -> usize {
        self.current[0].len() + self.current[1].len() + 32
    }

    /// Whether `bytes` more go into the message being filled (an empty one takes anything).
    fn fits(&self, bytes: usize) -> bool {
        self.first.is_none() || self.size() + bytes <= self.max
    }

    /// Adds one unit: items of each section that must travel together; starts a new message
    /// when the unit does not fit in this one.
    fn push(&mut self, id: String, unit: [&[Vec<u8>]; 2]) {
        let bytes: usize = unit.iter().flat_map(|items| items.iter()).map(|i| i.len() + 1).sum();
        if !self.fits(bytes) {
            self.flush();
        }
        for (section, items) in unit.iter().enumerate() {
            for item in *items {
                if !self.current[section].is_empty() {
                    self.current[section].push(b',');
                }
                self.current[section].extend_from_slice(item);
            }
        }
        for b in id.bytes().chain([0]) {
            self.digest = (self.digest ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        match &mut self.first {
            Some((_, n)) => *n += 1,
            None => self.first = Some((id, 1)),
        }
    }

    fn flush(&mut self) {
        let Some((first, n)) = self.first.take() else {
            return;
        };
        // Named by everything it carries: the same content is the same message (a publish
        // retried is dropped by JetStream as a duplicate), and different content never is.
        let id = format!("{first}-{n}-{:016x}", std::mem::replace(&mut self.digest, FNV_OFFSET));
        let [a, b] = std::mem::take(&mut self.current);
        let mut body = Vec::with_capacity(a.len() + b.len() + 32);
        body.extend_from_slice(format!("{{\"{}\":[", self.sections[0]).as_bytes());
        body.extend_from_slice(&a);
        body.extend_from_slice(format!("],\"{}\":[", self.sections[1]).as_bytes());
        body.extend_from_slice(&b);
        body.push(b']');
        body.extend_from_slice(self.trailer.as_bytes());
        body.push(b'}');
        self.out.push(Outgoing { id, body });
    }

    fn finish(mut self) -> Vec<Outgoing> {
        self.flush();
        self.out
    }
}

fn encode<T: Serialize>(item: &T) -> Result<Vec<u8>, BusError> {
    serde_json::to_vec(item).map_err(|e| BusError::Bus(format!("cannot encode a message: {e}")))
}

/// Cuts events and rejections into [`EventBatch`] messages of at most `max` bytes each.
pub fn event_messages(events: &[Event], rejected: &[Quarantined], max: usize) -> Result<Vec<Outgoing>, BusError> {
    let budget = max.saturating_sub(ENVELOPE);
    let mut packer = Packer::new(budget, ["events", "rejected"]);
    for e in events {
        let item = encode(e)?;
        if item.len() > budget {
            return Err(BusError::TooLarge {
                what: "event",
                id: e.id,
                bytes: item.len(),
                max,
            });
        }
        packer.push(format!("e-{}", e.id), [std::slice::from_ref(&item), &[]]);
    }
    for q in rejected {
        let item = encode(&Rejected::from(q))?;
        if item.len() > budget {
            return Err(BusError::TooLarge {
                what: "rejected item",
                id: q.id,
                bytes: item.len(),
                max,
            });
        }
        packer.push(format!("q-{}", q.id), [&[], std::slice::from_ref(&item)]);
    }
    Ok(packer.finish())
}

/// Cuts alerts into [`AlertBatch`] messages of at most `max` bytes each, every alert in the
/// message that carries its event.
pub fn alert_messages(alerts: &[Alert], events: &[Event], again: bool, max: usize) -> Result<Vec<Outgoing>, BusError> {
    let budget = max.saturating_sub(ENVELOPE);
    let by_id: std::collections::HashMap<EventId, &Event> = events.iter().map(|e| (e.id, e)).collect();
    let mut packer = Packer::new(budget, ["alerts", "events"]);
    packer.trailer = if again { ",\"again\":true" } else { "" };
    // The events already in the message being filled: an event goes once into each message
    // that has alerts about it.
    let mut carried: std::collections::HashSet<EventId> = std::collections::HashSet::new();
    for a in alerts {
        let alert = encode(a)?;
        let event = by_id.get(&a.event).map(encode).transpose()?;
        let needed = alert.len()
            + 1
            + event
                .as_ref()
                .filter(|_| !carried.contains(&a.event))
                .map_or(0, |e| e.len() + 1);
        if !packer.fits(needed) {
            carried.clear();
        }
        let event: Vec<Vec<u8>> = event.filter(|_| !carried.contains(&a.event)).into_iter().collect();
        let bytes = alert.len() + event.iter().map(Vec::len).sum::<usize>();
        if bytes > budget {
            return Err(BusError::TooLarge {
                what: "alert",
                id: a.id,
                bytes,
                max,
            });
        }
        packer.push(format!("a-{}", a.id), [std::slice::from_ref(&alert), &event]);
        carried.insert(a.event);
    }
    Ok(packer.finish())
}

/// A connection to the bus, its streams made sure of.
#[derive(Debug, Clone)]
pub struct Bus {
    client: async_nats::Client,
    js: jetstream::Context,
    /// The servers, as configured (for messages).
    servers: String,
    /// Partitions of the Sigma correlation stream.
    partitions: u32,
}

impl Bus {
    /// Connects as `name` (shown in the servers' connection lists) and creates the streams
    /// and consumers if they are missing. Reconnection after a server restart is automatic;
    /// publishing and fetching fail meanwhile, and callers retry.
    pub async fn connect(settings: &rempart_config::Bus, name: &str) -> Result<Bus, BusError> {
        let servers = settings.servers.join(",");
        let mut options = async_nats::ConnectOptions::new()
            .name(name)
            .connection_timeout(Duration::from_secs(5))
            .retry_on_initial_connect()
            .max_reconnects(None);
        if let Some(ca) = &settings.ca_file {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let Some(token) = token(settings)? {
            options = options.token(token);
        }
        let addrs: Vec<async_nats::ServerAddr> = settings
            .servers
            .iter()
            .map(|s| s.parse::<async_nats::ServerAddr>())
            .collect::<Result<_, _>>()
            .map_err(|e: std::io::Error| BusError::Connect {
                servers: servers.clone(),
                reason: e.to_string(),
            })?;
        let client = tokio::time::timeout(Duration::from_secs(30), options.connect(addrs))
            .await
            .map_err(|_| BusError::Connect {
                servers: servers.clone(),
                reason: "no server answered within 30 s".into(),
            })?
            .map_err(|e| BusError::Connect {
                servers: servers.clone(),
                reason: e.to_string(),
            })?;
        let js = jetstream::new(client.clone());
        let bus = Bus {
            client,
            js,
            servers,
            partitions: settings.correlation_partitions,
        };
        bus.ensure(settings).await?;
        // Known once a server has answered.
        bus.check_server();
        Ok(bus)
    }

    /// Warns about a server too old for the durability this bus relies on.
    fn check_server(&self) {
        let info = self.client.server_info();
        let version: Vec<u32> = info
            .version
            .split(['.', '-'])
            .take(2)
            .filter_map(|p| p.parse().ok())
            .collect();
        tracing::info!(server = %info.server_name, version = %info.version, max_payload = info.max_payload, "bus connected");
        if version.as_slice() < [2, 10].as_slice() {
            tracing::warn!(
                version = %info.version,
                "the NATS server is older than 2.10: run 2.10 or later with `sync_interval: always` (docs/deployment.md)"
            );
        }
    }

    async fn ensure(&self, settings: &rempart_config::Bus) -> Result<(), BusError> {
        let replicas = usize::from(settings.replicas);
        let work_queue = |name: &str, subject: &str, max_bytes: u64, description: &str| stream::Config {
            name: name.to_owned(),
            subjects: vec![subject.to_owned()],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            num_replicas: replicas,
            duplicate_window: DUPLICATE_WINDOW,
            max_bytes: i64::try_from(max_bytes).unwrap_or(i64::MAX),
            // Full: a publish is refused (and the sender told to retry), never an old batch dropped.
            discard: stream::DiscardPolicy::New,
            description: Some(description.to_owned()),
            ..stream::Config::default()
        };
        for (config, durable) in [
            (
                work_queue(
                    INCIDENTS_STREAM,
                    INCIDENTS_SUBJECT,
                    settings.max_bytes / 16,
                    "Rempart: changes of incidents, waiting for the playbooks",
                ),
                RESPOND,
            ),
            (
                work_queue(
                    EVENTS_STREAM,
                    EVENTS_SUBJECT,
                    settings.max_bytes,
                    "Rempart: batches of events acknowledged to senders, waiting for detection",
                ),
                DETECT,
            ),
            (
                work_queue(
                    ALERTS_STREAM,
                    ALERTS_SUBJECT,
                    settings.max_bytes / 4,
                    "Rempart: alerts stored, waiting for incident correlation",
                ),
                CORRELATE,
            ),
        ] {
            let name = config.name.clone();
            let stream = self
                .js
                .get_or_create_stream(config)
                .await
                .map_err(|e| BusError::Bus(format!("stream {name}: {e}")))?;
            let config = pull_consumer(durable, 4096, format!("Rempart's {durable} role"));
            stream
                .get_or_create_consumer(durable, config)
                .await
                .map_err(|e| BusError::Bus(format!("consumer {durable} of {name}: {e}")))?;
        }
        // The anomaly detectors: a log, not a work queue. Their owner reads it in order from
        // its checkpoint's sequence and removes what a checkpoint holds (`anomaly_done`).
        self.js
            .get_or_create_stream(stream::Config {
                retention: stream::RetentionPolicy::Limits,
                ..work_queue(
                    ANOMALY_STREAM,
                    ANOMALY_SUBJECT,
                    settings.max_bytes / 4,
                    "Rempart: events for the anomaly detectors, read in order by their owner",
                )
            })
            .await
            .map_err(|e| BusError::Bus(format!("stream {ANOMALY_STREAM}: {e}")))?;
        // Sigma correlation: one consumer per partition, each reading its own subject.
        let stream = self
            .js
            .get_or_create_stream(work_queue(
                SIGMA_STREAM,
                SIGMA_SUBJECTS,
                settings.max_bytes / 4,
                "Rempart: events for the Sigma correlation rules, by partition of their groups",
            ))
            .await
            .map_err(|e| BusError::Bus(format!("stream {SIGMA_STREAM}: {e}")))?;
        for p in 0..settings.correlation_partitions {
            let durable = partition_consumer(p);
            // One message at a time, in order: its owner's windows and checkpoint follow the
            // partition's sequence, and a message given back is the next one delivered.
            let config = consumer::pull::Config {
                filter_subject: partition_subject(p),
                ..pull_consumer(&durable, 1, format!("Rempart's Sigma correlation, partition {p}"))
            };
            stream
                .get_or_create_consumer(&durable, config)
                .await
                .map_err(|e| BusError::Bus(format!("consumer {durable} of {SIGMA_STREAM}: {e}")))?;
        }
        Ok(())
    }

    /// Publishes the events of one Sigma correlation partition; returns once JetStream has
    /// stored every message. Messages are named by their events and partition: the same
    /// events sent again (their detect message was delivered twice) are dropped as duplicates.
    pub async fn publish_partition(&self, partition: u32, events: &[Event]) -> Result<usize, BusError> {
        let mut messages = event_messages(events, &[], self.max_payload())?;
        for m in &mut messages {
            m.id = format!("p{partition}-{}", m.id);
        }
        self.publish(&partition_subject(partition), messages).await
    }

    /// The queue of one Sigma correlation partition, read by the process that owns it.
    pub async fn partition_inbox(&self, partition: u32) -> Result<Inbox, BusError> {
        let durable = partition_consumer(partition);
        let consumer: consumer::PullConsumer = self
            .js
            .get_consumer_from_stream(&durable, SIGMA_STREAM)
            .await
            .map_err(|e| BusError::Bus(format!("consumer {durable} of {SIGMA_STREAM}: {e}")))?;
        Ok(Inbox {
            consumer,
            stream: SIGMA_STREAM,
        })
    }

    /// Publishes the events the anomaly detectors look at; returns once JetStream has stored
    /// every message. Named by their events, like a partition's: the same events sent again
    /// within the duplicate window are stored once.
    pub async fn publish_anomaly(&self, events: &[Event]) -> Result<usize, BusError> {
        let mut messages = event_messages(events, &[], self.max_payload())?;
        for m in &mut messages {
            m.id = format!("a-{}", m.id);
        }
        self.publish(ANOMALY_SUBJECT, messages).await
    }

    /// The anomaly stream, read in order from the message after sequence `after` (or from
    /// its first message, when the stream holds nothing that old: it was made anew). Returns
    /// the reader and the sequence it starts from.
    pub async fn anomaly_reader(&self, after: u64) -> Result<(Reader, u64), BusError> {
        let stream = self
            .js
            .get_stream(ANOMALY_STREAM)
            .await
            .map_err(|e| BusError::Bus(format!("stream {ANOMALY_STREAM}: {e}")))?;
        let state = stream.get_info().await.map_err(bus_error)?.state;
        // A stream that ends before the checkpoint was lost and made again: what it holds
        // now is all new.
        let from = if state.last_sequence < after {
            tracing::warn!(
                checkpoint = after,
                last = state.last_sequence,
                "the anomaly stream ends before the checkpoint (it was made anew): reading it from its start"
            );
            state.first_sequence.max(1)
        } else {
            after + 1
        };
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence: from },
                description: Some("Rempart's anomaly owner".to_owned()),
                ..consumer::pull::OrderedConfig::default()
            })
            .await
            .map_err(|e| BusError::Bus(format!("reader of {ANOMALY_STREAM}: {e}")))?;
        let messages = consumer.messages().await.map_err(bus_error)?;
        Ok((Reader { messages }, from))
    }

    /// Removes the anomaly stream's messages up to `sequence`, which a checkpoint holds.
    pub async fn anomaly_done(&self, sequence: u64) -> Result<(), BusError> {
        let stream = self
            .js
            .get_stream(ANOMALY_STREAM)
            .await
            .map_err(|e| BusError::Bus(format!("stream {ANOMALY_STREAM}: {e}")))?;
        stream
            .purge()
            .sequence(sequence.saturating_add(1))
            .await
            .map_err(bus_error)?;
        Ok(())
    }

    /// The largest message the servers accept.
    pub fn max_payload(&self) -> usize {
        self.client.server_info().max_payload.max(64 * 1024)
    }

    /// Publishes events and rejections; returns once JetStream has stored every message.
    pub async fn publish_events(&self, events: &[Event], rejected: &[Quarantined]) -> Result<usize, BusError> {
        let messages = event_messages(events, rejected, self.max_payload())?;
        self.publish(EVENTS_SUBJECT, messages).await
    }

    /// Publishes alerts with their events (`again`: they may have been published before);
    /// returns once JetStream has stored every message.
    pub async fn publish_alerts(&self, alerts: &[Alert], events: &[Event], again: bool) -> Result<usize, BusError> {
        let messages = alert_messages(alerts, events, again, self.max_payload())?;
        self.publish(ALERTS_SUBJECT, messages).await
    }

    /// Publishes what happened to incidents, in messages of at most the servers' payload;
    /// returns once JetStream has stored every message. Each message has an id of its own:
    /// the same change told twice (a correlator restarted) is handled twice, and a playbook
    /// starts once per incident whatever it is told (the store's run keys).
    pub async fn publish_notices(&self, notices: &[Notice]) -> Result<usize, BusError> {
        let messages = notices
            .chunks(NOTICES_PER_MESSAGE)
            .map(|chunk| {
                Ok(Outgoing {
                    id: format!("n-{}", EventId::generate()),
                    body: encode(&NoticeBatch {
                        notices: chunk.to_vec(),
                    })?,
                })
            })
            .collect::<Result<Vec<_>, BusError>>()?;
        self.publish(INCIDENTS_SUBJECT, messages).await
    }

    async fn publish(&self, subject: &str, messages: Vec<Outgoing>) -> Result<usize, BusError> {
        let n = messages.len();
        let mut acks = Vec::with_capacity(n);
        for m in messages {
            let publish = jetstream::message::PublishMessage::build()
                .payload(m.body.into())
                .message_id(&m.id);
            acks.push(
                self.js
                    .send_publish(subject.to_owned(), publish)
                    .await
                    .map_err(bus_error)?,
            );
        }
        for ack in acks {
            ack.await.map_err(bus_error)?;
        }
        Ok(n)
    }

    /// The work queue of `durable` (`DETECT` on the events, `CORRELATE` on the alerts,
    /// `RESPOND` on the incidents' notices).
    pub async fn inbox(&self, durable: &'static str) -> Result<Inbox, BusError> {
        let stream = QUEUES
            .iter()
            .find(|(_, d)| *d == durable)
            .map(|(s, _)| *s)
            .ok_or_else(|| BusError::Bus(format!("no work queue `{durable}`")))?;
        let consumer: consumer::PullConsumer = self
            .js
            .get_consumer_from_stream(durable, stream)
            .await
            .map_err(|e| BusError::Bus(format!("consumer {durable} of {stream}: {e}")))?;
        Ok(Inbox { consumer, stream })
    }

    /// Streams and consumers as the servers see them now.
    pub async fn status(&self) -> Result<BusStatus, BusError> {
        let info = self.client.server_info();
        let mut streams = Vec::new();
        let partitions = (0..self.partitions).map(|p| (SIGMA_STREAM, partition_consumer(p)));
        for (name, durable) in QUEUES.iter().map(|(s, d)| (*s, (*d).to_owned())).chain(partitions) {
            let mut stream = self
                .js
                .get_stream(name)
                .await
                .map_err(|e| BusError::Bus(format!("stream {name}: {e}")))?;
            let s = stream.info().await.map_err(bus_error)?.clone();
            let c = stream.consumer_info(&durable).await.map_err(bus_error)?;
            streams.push(StreamStatus {
                name: name.to_owned(),
                messages: s.state.messages,
                bytes: s.state.bytes,
                replicas: s.config.num_replicas,
                consumer: ConsumerStatus {
                    name: durable,
                    pending: c.num_pending,
                    unacknowledged: c.num_ack_pending as u64,
                    redelivered: c.num_redelivered as u64,
                    waiting: c.num_waiting as u64,
                },
            });
        }
        // The anomaly stream holds what its owner has not checkpointed yet: that is its lag.
        let mut stream = self
            .js
            .get_stream(ANOMALY_STREAM)
            .await
            .map_err(|e| BusError::Bus(format!("stream {ANOMALY_STREAM}: {e}")))?;
        let s = stream.info().await.map_err(bus_error)?.clone();
        streams.push(StreamStatus {
            name: ANOMALY_STREAM.to_owned(),
            messages: s.state.messages,
            bytes: s.state.bytes,
            replicas: s.config.num_replicas,
            consumer: ConsumerStatus {
                name: ANOMALY_READER.to_owned(),
                pending: s.state.messages,
                unacknowledged: 0,
                redelivered: 0,
                waiting: 0,
            },
        });
        Ok(BusStatus {
            servers: self.servers.clone(),
            server: info.server_name,
            version: info.version,
            streams,
        })
    }

    /// Whether the connection is up (for `/readyz`).
    pub fn connected(&self) -> bool {
        matches!(self.client.connection_state(), async_nats::connection::State::Connected)
    }

    /// Flushes what is buffered and closes the connection.
    pub async fn close(self) {
        let _ = self.client.flush().await;
        let _ = self.client.drain().await;
    }
}

fn token(settings: &rempart_config::Bus) -> Result<Option<String>, BusError> {
    if let Some(file) = &settings.token_file {
        return read_first_line(file).map(Some);
    }
    Ok(settings.token_env.as_ref().and_then(|v| std::env::var(v).ok()))
}

fn read_first_line(path: &Path) -> Result<String, BusError> {
    std::fs::read_to_string(path)
        .map(|t| t.lines().next().unwrap_or_default().to_owned())
        .map_err(|e| BusError::Secret {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
}

/// A durable work queue: each message goes to one of the processes fetching from it, and comes
/// back to another if not acknowledged within [`ACK_WAIT`].
#[derive(Debug)]
pub struct Inbox {
    consumer: consumer::PullConsumer,
    stream: &'static str,
}

impl Inbox {
    /// Up to `max` messages, waiting at most `wait` for the first.
    pub async fn fetch(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, BusError> {
        let mut batch = self
            .consumer
            .fetch()
            .max_messages(max)
            .expires(wait)
            .messages()
            .await
            .map_err(bus_error)?;
        let mut out = Vec::new();
        while let Some(m) = batch.next().await {
            out.push(Delivery {
                message: m.map_err(bus_error)?,
                stream: self.stream,
            });
        }
        Ok(out)
    }
}

/// A stream read in order, without acknowledgements: its reader keeps its place itself (in
/// a checkpoint) and starts again from there.
pub struct Reader {
    messages: consumer::pull::Ordered,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader").finish_non_exhaustive()
    }
}

impl Reader {
    /// Up to `max` messages in order, waiting at most `wait` for the first and not at all
    /// for the others once none is at hand.
    pub async fn next(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivery>, BusError> {
        let mut out = Vec::new();
        let mut limit = wait;
        while out.len() < max {
            match tokio::time::timeout(limit, self.messages.next()).await {
                Err(_) => break,
                Ok(None) => return Err(BusError::Bus(format!("the reader of {ANOMALY_STREAM} ended"))),
                Ok(Some(m)) => out.push(Delivery {
                    message: m.map_err(bus_error)?,
                    stream: ANOMALY_STREAM,
                }),
            }
            limit = Duration::from_millis(1);
        }
        Ok(out)
    }
}

/// One message delivered from a work queue.
#[derive(Debug)]
pub struct Delivery {
    message: jetstream::Message,
    stream: &'static str,
}

impl Delivery {
    /// The stream sequence, and how many times it has been delivered (1 the first time).
    pub fn position(&self) -> (u64, i64) {
        self.message
            .info()
            .map(|i| (i.stream_sequence, i.delivered))
            .unwrap_or((0, 0))
    }

    pub fn payload(&self) -> &[u8] {
        &self.message.payload
    }

    /// The id it was published with (`Nats-Msg-Id`), which names its content.
    pub fn message_id(&self) -> Option<&str> {
        self.message
            .headers
            .as_ref()
            .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
            .map(async_nats::HeaderValue::as_str)
    }

    fn decode<T: for<'de> Deserialize<'de>>(&self) -> Result<T, BusError> {
        serde_json::from_slice(&self.message.payload).map_err(|e| BusError::Decode {
            stream: self.stream.to_owned(),
            sequence: self.position().0,
            reason: e.to_string(),
        })
    }

    pub fn events(&self) -> Result<EventBatch, BusError> {
        self.decode()
    }

    pub fn alerts(&self) -> Result<AlertBatch, BusError> {
        self.decode()
    }

    pub fn notices(&self) -> Result<NoticeBatch, BusError> {
        self.decode()
    }

    /// Acknowledges, and waits for the server to confirm it: the message will not come back.
    pub async fn ack(&self) -> Result<(), BusError> {
        self.message.double_ack().await.map_err(bus_error)
    }

    /// Gives the message back now, to be delivered again after `delay`.
    pub async fn retry_after(&self, delay: Duration) -> Result<(), BusError> {
        self.message
            .ack_with(jetstream::AckKind::Nak(Some(delay)))
            .await
            .map_err(bus_error)
    }
}

/// What `rempart cluster status` shows of the bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BusStatus {
    pub servers: String,
    /// The server this process is connected to, and its version.
    pub server: String,
    pub version: String,
    pub streams: Vec<StreamStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StreamStatus {
    pub name: String,
    pub messages: u64,
    pub bytes: u64,
    pub replicas: usize,
    pub consumer: ConsumerStatus,
}

/// A consumer's lag: messages not yet delivered, and delivered but not acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsumerStatus {
    pub name: String,
    pub pending: u64,
    pub unacknowledged: u64,
    pub redelivered: u64,
    /// Fetch requests waiting (the processes idle on this queue).
    pub waiting: u64,
}

impl ConsumerStatus {
    /// Messages not yet done.
    pub fn lag(&self) -> u64 {
        self.pending + self.unacknowledged
    }
}

#[cfg(test)]
mod tests;
