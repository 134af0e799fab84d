#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use proptest::prelude::*;
use rempart_model::{Event, Format};
use serde_json::json;

use super::*;

fn event(i: usize, pad: usize) -> Event {
    let serde_json::Value::Object(fields) = json!({"n": i, "pad": "x".repeat(pad), "odd": "é\u{0}\"\\<"}) else {
        unreachable!()
    };
    Event::new(Format::Json, Timestamp::UNIX_EPOCH, Timestamp::now(), fields)
}

fn rejected(i: usize, raw: Vec<u8>) -> Quarantined {
    Quarantined {
        id: EventId::generate(),
        received: Timestamp::now(),
        source: format!("s{i}"),
        location: Some(format!("line {i}")),
        reason: "bad".into(),
        raw,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every event and rejection travels exactly once, in order, whole; no message is larger
    /// than the bound; the message ids are distinct.
    #[test]
    fn event_batches_carry_everything_once_within_the_bound(
        pads in prop::collection::vec(0usize..3000, 0..60),
        raws in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..10),
        max in 8_000usize..40_000,
    ) {
        let events: Vec<Event> = pads.iter().enumerate().map(|(i, p)| event(i, *p)).collect();
        let rejected: Vec<Quarantined> = raws.into_iter().enumerate().map(|(i, r)| rejected(i, r)).collect();
        let messages = event_messages(&events, &rejected, max).unwrap();
        let mut got_events = Vec::new();
        let mut got_rejected = Vec::new();
        let mut ids = std::collections::HashSet::new();
        for m in &messages {
            prop_assert!(m.body.len() <= max, "{} > {max}", m.body.len());
            prop_assert!(ids.insert(m.id.clone()));
            let batch: EventBatch = serde_json::from_slice(&m.body).unwrap();
            prop_assert!(!batch.events.is_empty() || !batch.rejected.is_empty());
            got_events.extend(batch.events);
            got_rejected.extend(batch.rejected.into_iter().map(Rejected::into_quarantined));
        }
        prop_assert_eq!(got_events, events);
        prop_assert_eq!(got_rejected, rejected);
    }

    /// Every alert travels once, in a message that also carries its event.
    #[test]
    fn alert_batches_carry_each_alert_with_its_event(
        picks in prop::collection::vec((0usize..12, 0usize..3), 0..80),
        max in 12_000usize..30_000,
        again in any::<bool>(),
    ) {
        let events: Vec<Event> = (0..12).map(|i| event(i, 500 + i * 200)).collect();
        let alerts: Vec<Alert> = picks
            .iter()
            .map(|(e, r)| Alert::for_event(&events[*e], Timestamp::now(), Some(format!("r{r}")), format!("rule {r}"), None, Vec::new()))
            .collect();
        let messages = alert_messages(&alerts, &events, again, max).unwrap();
        let mut got = Vec::new();
        for m in &messages {
            prop_assert!(m.body.len() <= max);
            let batch: AlertBatch = serde_json::from_slice(&m.body).unwrap();
            prop_assert_eq!(batch.again, again);
            let carried: std::collections::HashSet<EventId> = batch.events.iter().map(|e| e.id).collect();
            prop_assert_eq!(carried.len(), batch.events.len(), "an event once per message");
            for a in &batch.alerts {
                prop_assert!(carried.contains(&a.event), "alert {} without its event", a.id);
            }
            got.extend(batch.alerts);
        }
        prop_assert_eq!(got, alerts);
    }
}

/// A message's id names its content: the alerts of one message are not taken for a duplicate
/// of a message that began with the same alert but carried fewer (a batch detected again
/// after a worker died, merged with others).
#[test]
fn message_ids_name_their_whole_content() {
    let events: Vec<Event> = (0..4).map(|i| event(i, 10)).collect();
    let alerts: Vec<Alert> = events
        .iter()
        .map(|e| Alert::for_event(e, Timestamp::now(), Some("r".into()), "r".into(), None, Vec::new()))
        .collect();
    let some = alert_messages(&alerts[..2], &events, false, 1 << 20).unwrap();
    let all = alert_messages(&alerts, &events, false, 1 << 20).unwrap();
    let again = alert_messages(&alerts, &events, false, 1 << 20).unwrap();
    assert_eq!((some.len(), all.len()), (1, 1));
    assert_ne!(some[0].id, all[0].id, "same first alert, different content");
    assert_eq!(all[0].id, again[0].id, "the same content, the same id");
}

#[test]
fn an_item_larger_than_a_message_is_refused_by_name() {
    let big = event(1, 50_000);
    let err = event_messages(std::slice::from_ref(&big), &[], 20_000)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&big.id.to_string()) && err.contains("max_payload"),
        "{err}"
    );
}

#[test]
fn raw_bytes_survive_the_wire_exactly() {
    let q = rejected(0, vec![0, 159, 146, 150, 255, b'\n']);
    let back: Rejected = serde_json::from_slice(&serde_json::to_vec(&Rejected::from(&q)).unwrap()).unwrap();
    assert_eq!(back.into_quarantined(), q);
}
