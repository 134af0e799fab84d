//! The conformance suite every [`Store`] implementation must pass.
//!
//! Each check takes a fresh, empty store. [`store_conformance!`](crate::store_conformance)
//! expands to one `#[tokio::test]` per check for a given constructor, so that the embedded
//! and the distributed implementations are held to exactly the same behaviour.

#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a test suite: a failed expectation is a failed test"
)]

use jiff::Timestamp;
use rempart_model::{DataClass, Event, EventId, Fields, Format, Origin};
use serde_json::json;

use crate::{
    AlertQuery, EventQuery, FieldFilter, LedgerAppend, LedgerEntry, LedgerRecord, LedgerStore, Quarantined, Role,
    Store, StoreError, StoredCheckpoint, SubjectKey, TokenRecord,
};

fn event(host: &str, user: &str, secs: i64, fields: serde_json::Value) -> Event {
    let serde_json::Value::Object(map) = fields else {
        panic!("fixture fields must be an object")
    };
    let time = Timestamp::from_second(secs).expect("valid fixture time");
    let mut e = Event::new(Format::WindowsJson, time, time, map);
    e.normalized.host = Some(host.to_owned());
    e.normalized.user = Some(user.to_owned());
    e.normalized.event_id = Some(4624);
    e.origin = Origin {
        source: "fixture".to_owned(),
        location: Some(format!("line {secs}")),
    };
    e.class = DataClass::Amber;
    e
}

/// Events come back exactly as they went in.
pub async fn round_trips_events(store: &dyn Store) {
    let e = event(
        "ws1",
        "alice",
        1_700_000_000,
        json!({"Event": {"System": {"Computer": "ws1"}}, "x-y": [1, 2, {"z": null}]}),
    );
    store.insert_events(std::slice::from_ref(&e)).await.expect("insert");
    assert_eq!(store.count_events().await.expect("count"), 1);
    let got = store.get_event(e.id).await.expect("get").expect("present");
    assert_eq!(got, e);
    assert_eq!(store.get_event(EventId::generate()).await.expect("get"), None);

    // Fields that came as JSON text are stored as that text (spaces, number forms and a
    // repeated key as the source wrote them) and read back to the same map.
    let text = r#"{ "Image": "C:\\Windows\\cmd.exe", "n": 1.50, "big": 100000000000000000000, "a": 1, "a": "last", "s": "tab\there \"q\" \u001f" }"#;
    let mut verbatim = event("ws1", "alice", 1_700_000_001, json!({}));
    verbatim.fields = Fields::parse(text).expect("an object");
    assert_eq!(verbatim.fields.text(), Some(text.trim()));
    store
        .insert_events(std::slice::from_ref(&verbatim))
        .await
        .expect("insert");
    let got = store.get_event(verbatim.id).await.expect("get").expect("present");
    assert_eq!(got, verbatim);
    assert_eq!(got.fields.get("a"), Some(&json!("last")));
    assert_eq!(got.fields.get("Image"), Some(&json!("C:\\Windows\\cmd.exe")));
    // Free text is found as the values read, whatever JSON escapes in the stored text: a
    // Windows path's `\`, a quote, a tab.
    for text in ["CMD.EXE", "c:\\windows\\cmd", "\"q\" \u{1f}", "tab\there"] {
        let found = store
            .query_events(&EventQuery {
                text: Some(text.to_owned()),
                ..EventQuery::default()
            })
            .await
            .expect("query");
        assert_eq!(
            found.iter().map(|e| e.id).collect::<Vec<_>>(),
            [verbatim.id],
            "{text:?}"
        );
    }
}

/// Time ranges are half-open, results newest first, limits respected.
pub async fn queries_by_time_range(store: &dyn Store) {
    let events: Vec<Event> = (0..10).map(|i| event("h", "u", 1_000 + i, json!({"i": i}))).collect();
    store.insert_events(&events).await.expect("insert");
    let q = EventQuery {
        since: Some(Timestamp::from_second(1_003).expect("time")),
        until: Some(Timestamp::from_second(1_007).expect("time")),
        ..EventQuery::default()
    };
    let got = store.query_events(&q).await.expect("query");
    let seconds: Vec<i64> = got.iter().map(|e| e.time.as_second()).collect();
    assert_eq!(seconds, [1_006, 1_005, 1_004, 1_003]);
    let q = EventQuery {
        limit: Some(3),
        ..EventQuery::default()
    };
    assert_eq!(store.query_events(&q).await.expect("query").len(), 3);
}

/// Keyset paging walks every event exactly once, even when many share one time.
pub async fn pages_through_events_sharing_a_time(store: &dyn Store) {
    let mut events: Vec<Event> = (0..25)
        .map(|i| event("h", "u", 1_000 + i / 10, json!({"i": i})))
        .collect();
    events.sort_by_key(|e| e.id);
    store.insert_events(&events).await.expect("insert");
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .query_events(&EventQuery {
                before,
                limit: Some(4),
                ..EventQuery::default()
            })
            .await
            .expect("query");
        let Some(last) = page.last() else { break };
        before = Some((last.time, last.id));
        seen.extend(page.iter().map(|e| e.id));
    }
    let mut want: Vec<EventId> = events.iter().map(|e| e.id).collect();
    want.sort();
    let mut got = seen.clone();
    got.sort();
    assert_eq!(got, want, "every event once");
    assert_eq!(seen.len(), 25);
}

/// Filters on normalized fields, original fields and columns; free text.
pub async fn queries_by_fields_and_text(store: &dyn Store) {
    let a = event(
        "ws1",
        "alice",
        1,
        json!({"Event": {"EventData": {"CommandLine": "C:\\Tools\\mimikatz.exe \"sekurlsa::logonpasswords\""}}}),
    );
    let b = event(
        "ws2",
        "bob",
        2,
        json!({"Event": {"EventData": {"CommandLine": "notepad.exe 100%_done"}}}),
    );
    store.insert_events(&[a.clone(), b.clone()]).await.expect("insert");
    let by = |filters: &[&str], text: Option<&str>| EventQuery {
        filters: filters.iter().map(|f| FieldFilter::parse(f).expect("filter")).collect(),
        text: text.map(str::to_owned),
        ..EventQuery::default()
    };
    let ids = |events: Vec<Event>| events.into_iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.query_events(&by(&["host=ws1"], None)).await.expect("q")),
        [a.id]
    );
    assert_eq!(
        ids(store
            .query_events(&by(&["user=bob", "event_id=4624"], None))
            .await
            .expect("q")),
        [b.id]
    );
    assert_eq!(
        ids(store
            .query_events(&by(&["fields.Event.EventData.CommandLine=notepad.exe 100%_done"], None))
            .await
            .expect("q")),
        [b.id]
    );
    assert_eq!(
        ids(store
            .query_events(&by(&["format=windows-json", "host=ws2"], None))
            .await
            .expect("q")),
        [b.id]
    );
    assert_eq!(
        ids(store.query_events(&by(&[], Some("MIMIKATZ"))).await.expect("q")),
        [a.id]
    );
    // A path and quotes are searched as they read, not as JSON escapes them.
    assert_eq!(
        ids(store
            .query_events(&by(&[], Some("tools\\MIMIKATZ.exe \"sekurlsa")))
            .await
            .expect("q")),
        [a.id]
    );
    // `%` and `_` in the text are literal, not wildcards.
    assert_eq!(
        ids(store.query_events(&by(&[], Some("100%_"))).await.expect("q")),
        [b.id]
    );
    assert!(store.query_events(&by(&[], Some("0%d"))).await.expect("q").is_empty());
    assert!(FieldFilter::parse("nonsense=1").is_err());
    assert!(FieldFilter::parse("fields.a'b=1").is_err());
}

/// Quarantined input keeps its raw bytes, source, position and reason.
pub async fn quarantines_bad_input(store: &dyn Store) {
    let q = Quarantined {
        id: EventId::generate(),
        received: Timestamp::from_second(5).expect("time"),
        source: "a.log".to_owned(),
        location: Some("line 7".to_owned()),
        reason: "invalid JSON".to_owned(),
        raw: b"{\"a\":\xff".to_vec(),
    };
    store.quarantine(std::slice::from_ref(&q)).await.expect("quarantine");
    assert_eq!(store.count_quarantine().await.expect("count"), 1);
    assert_eq!(store.list_quarantine(None, 10).await.expect("list"), vec![q]);
}

/// Retention deletes only what is older than the cut.
pub async fn prunes_old_events(store: &dyn Store) {
    let events: Vec<Event> = (0..4).map(|i| event("h", "u", 100 * i, json!({}))).collect();
    store.insert_events(&events).await.expect("insert");
    let removed = store
        .prune_events(Timestamp::from_second(200).expect("time"))
        .await
        .expect("prune");
    assert_eq!(removed, 2);
    assert_eq!(store.count_events().await.expect("count"), 2);
}

/// Inserts are idempotent: an event already stored, in a later batch or twice in one, is
/// stored once and the rest of the batch is stored (a bus delivers a batch again when a
/// worker died before acknowledging it).
pub async fn inserts_are_idempotent(store: &dyn Store) {
    let a = event("h", "u", 1, json!({}));
    store.insert_events(std::slice::from_ref(&a)).await.expect("insert");
    let batch: Vec<Event> = (0..250)
        .map(|i| event("h", "u", 10 + i, json!({})))
        .chain([a.clone(), a.clone()])
        .collect();
    store.insert_events(&batch).await.expect("insert with a duplicate");
    assert_eq!(store.count_events().await.expect("count"), 251);
    store.insert_events(&batch).await.expect("insert again");
    assert_eq!(store.count_events().await.expect("count"), 251);
    assert_eq!(store.get_event(a.id).await.expect("get"), Some(a.clone()));

    let q = Quarantined {
        id: EventId::generate(),
        received: Timestamp::from_second(5).expect("time"),
        source: "s".to_owned(),
        location: Some("line 1".to_owned()),
        reason: "bad".to_owned(),
        raw: b"x".to_vec(),
    };
    store.quarantine(&[q.clone(), q.clone()]).await.expect("quarantine");
    store
        .quarantine(std::slice::from_ref(&q))
        .await
        .expect("quarantine again");
    assert_eq!(store.count_quarantine().await.expect("count"), 1);

    let alert = |rule: &str| {
        rempart_model::Alert::for_event(
            &a,
            Timestamp::from_second(2).expect("time"),
            Some(rule.to_owned()),
            rule.to_owned(),
            Some("high".to_owned()),
            Vec::new(),
        )
    };
    let (x, y) = (alert("rule-x"), alert("rule-y"));
    assert_eq!(
        store.insert_alerts(std::slice::from_ref(&x)).await.expect("alerts"),
        vec![x.id]
    );
    let mut again = store
        .insert_alerts(&[x.clone(), y.clone(), y.clone()])
        .await
        .expect("alerts");
    again.sort();
    assert_eq!(again, vec![y.id], "only the alert not stored before is new");
    assert!(store.insert_alerts(&[x, y]).await.expect("alerts").is_empty());
    assert_eq!(
        store.query_alerts(&AlertQuery::default()).await.expect("query").len(),
        2
    );
}

/// Tokens are found by hash while live, and not after revocation.
pub async fn manages_tokens(store: &dyn Store) {
    let t = TokenRecord {
        id: "tok_1".to_owned(),
        name: "ci".to_owned(),
        role: Role::Ingest,
        hash: "ab".repeat(32),
        created: Timestamp::from_second(1).expect("time"),
        revoked: false,
        owner: Some("alice".to_owned()),
        created_by: Some("oidc:admin-sub".to_owned()),
    };
    store.create_token(&t).await.expect("create");
    assert_eq!(store.find_token(&t.hash).await.expect("find"), Some(t.clone()));
    assert_eq!(store.list_tokens().await.expect("list"), vec![t.clone()]);
    assert!(store.revoke_token("tok_1").await.expect("revoke"));
    assert!(!store.revoke_token("tok_missing").await.expect("revoke"));
    assert_eq!(store.find_token(&t.hash).await.expect("find"), None);
    store.ping().await.expect("ping");
}

/// Alerts round-trip and filter by time, level and rule.
pub async fn stores_and_queries_alerts(store: &dyn Store) {
    let e = event("ws1", "alice", 1_000, json!({}));
    let mk = |secs: i64, level: &str, rule: &str| {
        let mut ev = e.clone();
        ev.id = EventId::generate();
        ev.time = Timestamp::from_second(secs).expect("time");
        let mut a = rempart_model::Alert::for_event(
            &ev,
            Timestamp::from_second(2_000).expect("time"),
            Some(rule.to_owned()),
            format!("rule {rule}"),
            Some(level.to_owned()),
            vec!["attack.t1003.001".to_owned()],
        );
        a.matched = vec![rempart_model::MatchedField::new(
            "CommandLine",
            "procdump -ma lsass.exe",
        )];
        a
    };
    let alerts = [
        mk(1_000, "low", "r1"),
        mk(1_001, "high", "r2"),
        mk(1_002, "critical", "r2"),
    ];
    store.insert_alerts(&alerts).await.expect("insert");
    let all = store.query_alerts(&AlertQuery::default()).await.expect("query");
    assert_eq!(all.len(), 3);
    assert_eq!(all[0], alerts[2], "newest first, round-tripped");
    let high = store
        .query_alerts(&AlertQuery {
            min_level: Some("high".into()),
            ..AlertQuery::default()
        })
        .await
        .expect("query");
    assert_eq!(high.len(), 2);
    let r1 = store
        .query_alerts(&AlertQuery {
            rule_id: Some("r1".into()),
            ..AlertQuery::default()
        })
        .await
        .expect("query");
    assert_eq!(r1, vec![alerts[0].clone()]);
    let ranged = AlertQuery {
        since: Some(Timestamp::from_second(1_001).expect("time")),
        until: Some(Timestamp::from_second(1_002).expect("time")),
        ..AlertQuery::default()
    };
    assert_eq!(
        store.query_alerts(&ranged).await.expect("query"),
        vec![alerts[1].clone()]
    );
    assert!(
        store
            .query_alerts(&AlertQuery {
                min_level: Some("severe".into()),
                ..AlertQuery::default()
            })
            .await
            .is_err()
    );
}

/// Ledger rows with distinct (not meaningful) hashes: the store keeps bytes, it does not check
/// them; `rempart-audit` does.
fn ledger_entries(from: u64, n: u64) -> Vec<LedgerEntry> {
    (from..from + n)
        .map(|seq| {
            let b = u8::try_from(seq % 251).expect("small");
            LedgerEntry {
                record: LedgerRecord {
                    seq,
                    time: Timestamp::from_second(1_800_000_000 + i64::try_from(seq).expect("small")).expect("time"),
                    actor: format!("actor:{seq}"),
                    kind: "test.kind".to_owned(),
                    key_id: (seq % 2 == 0).then(|| "key-1".to_owned()),
                    payload_hash: [b; 32],
                    prev_hash: [b.wrapping_sub(1); 32],
                    leaf_hash: [b.wrapping_add(1); 32],
                },
                payload: Some(vec![b; 40 + usize::from(b)]),
            }
        })
        .collect()
}

fn subject_key(id: &str, mac: &str) -> SubjectKey {
    SubjectKey {
        key_id: id.to_owned(),
        subject_mac: Some(mac.to_owned()),
        wrapped: Some(vec![7; 72]),
        created: Timestamp::from_second(1_800_000_000).expect("time"),
        erased: None,
    }
}

fn checkpoint(size: u64) -> StoredCheckpoint {
    StoredCheckpoint {
        size,
        root: [9; 32],
        time: Timestamp::from_second(1_800_000_100).expect("time"),
        note: format!("rempart/test\n{size}\nroot\n\n\u{2014} sig\n"),
        frontier: vec![[1; 32]; usize::try_from(size.count_ones()).expect("small")],
    }
}

async fn append(
    store: &dyn LedgerStore,
    keys: &[SubjectKey],
    entries: &[LedgerEntry],
    cp: Option<&StoredCheckpoint>,
) -> crate::Result<()> {
    store
        .ledger_append(LedgerAppend {
            keys,
            entries,
            checkpoint: cp,
        })
        .await
}

/// Ledger records, bodies, keys and checkpoints come back exactly as appended, in order.
pub async fn ledger_round_trips_in_order(store: &dyn LedgerStore) {
    assert_eq!(store.ledger_head().await.expect("head"), None);
    let entries = ledger_entries(0, 5);
    append(store, &[subject_key("key-1", "mac-a")], &entries, Some(&checkpoint(5)))
        .await
        .expect("append");
    assert_eq!(
        store.ledger_head().await.expect("head"),
        Some(entries[4].record.clone())
    );
    assert_eq!(store.ledger_entries(0, 100).await.expect("entries"), entries);
    assert_eq!(
        store.ledger_entries(2, 2).await.expect("entries"),
        entries[2..4].to_vec()
    );
    let leaves: Vec<_> = entries[1..4].iter().map(|e| e.record.leaf_hash).collect();
    assert_eq!(store.ledger_leaves(1, 4).await.expect("leaves"), leaves);
    assert_eq!(
        store.ledger_checkpoints().await.expect("checkpoints"),
        vec![checkpoint(5)]
    );
    let more = ledger_entries(5, 3);
    append(store, &[], &more, None).await.expect("append");
    store.ledger_checkpoint(&checkpoint(8)).await.expect("checkpoint");
    let sizes: Vec<u64> = store
        .ledger_checkpoints()
        .await
        .expect("checkpoints")
        .iter()
        .map(|c| c.size)
        .collect();
    assert_eq!(sizes, [5, 8]);
}

/// Only the direct continuation of the stored ledger is accepted; a refused append writes
/// nothing, keys included.
pub async fn ledger_refuses_a_fork_or_a_gap(store: &dyn LedgerStore) {
    append(store, &[], &ledger_entries(0, 3), None).await.expect("append");
    for (from, what) in [(2, "a fork"), (4, "a gap"), (0, "a rewrite")] {
        let err = append(store, &[subject_key("key-x", "mac-x")], &ledger_entries(from, 2), None)
            .await
            .expect_err(what);
        assert!(matches!(err, StoreError::Conflict(_)), "{what}: {err}");
    }
    assert_eq!(store.ledger_head().await.expect("head").map(|r| r.seq), Some(2));
    assert_eq!(
        store.ledger_subject_key("mac-x").await.expect("key"),
        None,
        "no key from a refused append"
    );
    // A checkpoint over records that do not exist, or a second one of a size, is refused.
    assert!(matches!(
        store.ledger_checkpoint(&checkpoint(4)).await,
        Err(StoreError::Conflict(_))
    ));
    store.ledger_checkpoint(&checkpoint(3)).await.expect("checkpoint");
    assert!(matches!(
        store.ledger_checkpoint(&checkpoint(3)).await,
        Err(StoreError::Conflict(_))
    ));
}

/// Pruning clears bodies below a sequence number and keeps every record.
pub async fn ledger_prunes_bodies_and_keeps_records(store: &dyn LedgerStore) {
    append(store, &[], &ledger_entries(0, 6), None).await.expect("append");
    assert_eq!(store.ledger_prune_payloads(4).await.expect("prune"), 4);
    let got = store.ledger_entries(0, 100).await.expect("entries");
    assert_eq!(got.len(), 6);
    assert!(got[..4].iter().all(|e| e.payload.is_none()));
    assert!(got[4..].iter().all(|e| e.payload.is_some()));
    assert_eq!(store.ledger_prune_payloads(4).await.expect("prune"), 0, "idempotent");
}

/// Erasing a subject destroys its live keys and only those.
pub async fn ledger_erases_subject_keys(store: &dyn LedgerStore) {
    let keys = [subject_key("key-1", "mac-a"), subject_key("key-2", "mac-b")];
    append(store, &keys, &ledger_entries(0, 2), None).await.expect("append");
    assert_eq!(
        store.ledger_subject_key("mac-a").await.expect("key"),
        Some(keys[0].clone())
    );
    let at = Timestamp::from_second(1_800_000_500).expect("time");
    assert_eq!(store.ledger_erase_subject("mac-a", at).await.expect("erase"), 1);
    assert_eq!(store.ledger_subject_key("mac-a").await.expect("key"), None);
    assert_eq!(store.ledger_erase_subject("mac-a", at).await.expect("erase"), 0);
    let ids = ["key-1".to_owned(), "key-2".to_owned()];
    let mut got = store.ledger_keys(&ids).await.expect("keys");
    got.sort_by(|a, b| a.key_id.cmp(&b.key_id));
    assert_eq!(got[0].wrapped, None);
    assert_eq!(got[0].erased, Some(at));
    assert_eq!(got[1], keys[1]);
}

fn incident(secs: i64, title: &str) -> rempart_model::Incident {
    let t = Timestamp::from_second(secs).expect("time");
    rempart_model::Incident {
        id: EventId::generate(),
        title: title.to_owned(),
        status: rempart_model::IncidentStatus::New,
        severity: rempart_model::IncidentSeverity::High,
        score: 70,
        max_level: rempart_model::IncidentSeverity::High,
        owner: None,
        created: t,
        updated: t,
        first_seen: t,
        last_seen: t,
        alert_count: 1,
        rules: vec![title.to_owned()],
        entities: vec![rempart_model::Entity::new(rempart_model::EntityKind::Host, "ws1")],
        techniques: vec!["T1003.001".into()],
        tactics: vec!["credential-access".into()],
        assets: Vec::new(),
        merged_into: None,
        history: Vec::new(),
        triage: None,
    }
}

/// Incidents round-trip; alerts link to them; a merge moves every alert of the merged one;
/// merged incidents are listed only when asked for.
pub async fn incidents_link_and_merge<S: Store + crate::IncidentStore>(store: &S) {
    use rempart_model::IncidentStatus;
    let e = event("ws1", "alice", 1_000, json!({}));
    let alerts: Vec<rempart_model::Alert> = (0..3)
        .map(|i| {
            let mut ev = e.clone();
            ev.time = Timestamp::from_second(1_000 + i).expect("time");
            rempart_model::Alert::for_event(&ev, ev.time, None, format!("r{i}"), Some("high".into()), Vec::new())
        })
        .collect();
    store.insert_alerts(&alerts).await.expect("alerts");
    let mut a = incident(1_000, "first");
    let mut b = incident(1_002, "second");
    store
        .incidents_write(crate::IncidentWrite {
            incidents: &[a.clone(), b.clone()],
            links: &[(alerts[1].id, a.id), (alerts[0].id, a.id), (alerts[2].id, b.id)],
            moves: &[],
        })
        .await
        .expect("write");
    assert_eq!(store.incident_get(a.id).await.expect("get"), Some(a.clone()));
    let got: Vec<EventId> = store
        .incident_alerts(a.id, 10)
        .await
        .expect("alerts")
        .iter()
        .map(|x| x.id)
        .collect();
    assert_eq!(got, [alerts[0].id, alerts[1].id], "oldest first");
    let listed = store
        .incidents_list(&crate::IncidentQuery::default())
        .await
        .expect("list");
    assert_eq!(
        listed.iter().map(|i| i.id).collect::<Vec<_>>(),
        [b.id, a.id],
        "most recent first"
    );

    b.status = IncidentStatus::Merged;
    b.merged_into = Some(a.id);
    a.alert_count = 3;
    store
        .incidents_write(crate::IncidentWrite {
            incidents: &[a.clone(), b.clone()],
            links: &[],
            moves: &[(b.id, a.id)],
        })
        .await
        .expect("merge");
    assert_eq!(store.incident_alerts(a.id, 10).await.expect("alerts").len(), 3);
    assert!(store.incident_alerts(b.id, 10).await.expect("alerts").is_empty());
    assert_eq!(store.incident_of_alert(alerts[2].id).await.expect("of"), Some(a.id));
    let open = store
        .incidents_list(&crate::IncidentQuery::default())
        .await
        .expect("list");
    assert_eq!(open, vec![a.clone()]);
    let merged = store
        .incidents_list(&crate::IncidentQuery {
            status: vec![IncidentStatus::Merged],
            ..crate::IncidentQuery::default()
        })
        .await
        .expect("list");
    assert_eq!(merged, vec![b]);
    let later = store
        .incidents_list(&crate::IncidentQuery {
            since: Some(Timestamp::from_second(1_001).expect("time")),
            ..crate::IncidentQuery::default()
        })
        .await
        .expect("list");
    assert!(later.is_empty(), "`since` filters on the last alert");
}

/// Every incident filter the store applies selects exactly the incidents
/// `IncidentQuery::admits` selects, alone and combined, over incidents of varied severities,
/// owners, rules, entities, tactics and times (names in mixed case and beyond ASCII).
pub async fn filters_incidents_as_the_query_says<S: Store + crate::IncidentStore>(store: &S) {
    use rempart_model::{Entity, EntityKind, IncidentSeverity};
    let owners = [None, Some("Ana Martin"), Some("bob"), Some("Żaneta")];
    let rules = [
        "LSASS Memory Dump",
        "Encoded PowerShell",
        "PsExec Service Installed",
        "Kerberoasting",
    ];
    let tactics = ["execution", "credential-access", "lateral-movement"];
    let mut all = Vec::new();
    for n in 0..48i64 {
        let mut i = incident(10_000 + n * 100, rules[(n % 4) as usize]);
        let k = n as usize;
        i.severity = IncidentSeverity::ALL[k % 5];
        i.owner = owners[k % 4].map(str::to_owned);
        i.rules = vec![rules[k % 4].to_owned(), rules[(k + 1) % 4].to_owned()];
        i.entities = vec![
            Entity::new(EntityKind::Host, format!("WS-{:03}.corp.example", k % 7)),
            Entity::new(EntityKind::User, format!("user{}", k % 5)),
        ];
        i.tactics = vec![tactics[k % 3].to_owned()];
        i.last_seen = i.first_seen + jiff::SignedDuration::from_secs(50);
        all.push(i);
    }
    store
        .incidents_write(crate::IncidentWrite {
            incidents: &all,
            links: &[],
            moves: &[],
        })
        .await
        .expect("write");
    let queries = [
        crate::IncidentQuery {
            min_severity: Some(IncidentSeverity::High),
            ..Default::default()
        },
        crate::IncidentQuery {
            owner: Some("ANA".into()),
            ..Default::default()
        },
        crate::IncidentQuery {
            owner: Some("-".into()),
            ..Default::default()
        },
        crate::IncidentQuery {
            owner: Some("Żan".into()),
            ..Default::default()
        },
        crate::IncidentQuery {
            rule: Some("powershell".into()),
            ..Default::default()
        },
        crate::IncidentQuery {
            entity: Some("ws-003".into()),
            ..Default::default()
        },
        crate::IncidentQuery {
            entity: Some("USER4".into()),
            ..Default::default()
        },
        crate::IncidentQuery {
            tactic: Some("credential".into()),
            ..Default::default()
        },
        crate::IncidentQuery {
            until: Some(Timestamp::from_second(12_000).expect("time")),
            ..Default::default()
        },
        crate::IncidentQuery {
            min_severity: Some(IncidentSeverity::Medium),
            rule: Some("lsass".into()),
            entity: Some("corp".into()),
            tactic: Some("execution".into()),
            since: Some(Timestamp::from_second(11_000).expect("time")),
            ..Default::default()
        },
        crate::IncidentQuery {
            rule: Some("no such rule".into()),
            ..Default::default()
        },
    ];
    for q in &queries {
        let got: Vec<EventId> = store
            .incidents_list(q)
            .await
            .expect("list")
            .iter()
            .map(|i| i.id)
            .collect();
        let mut want: Vec<&rempart_model::Incident> = all
            .iter()
            .filter(|i| q.admits(i) && q.since.is_none_or(|s| i.last_seen >= s))
            .collect();
        want.sort_by(|a, b| {
            b.last_seen
                .cmp(&a.last_seen)
                .then(b.id.to_string().cmp(&a.id.to_string()))
        });
        let want: Vec<EventId> = want.iter().map(|i| i.id).take(q.effective_limit() as usize).collect();
        assert_eq!(got, want, "{q:?}");
    }
    assert!(
        !store.incidents_list(&queries[1]).await.expect("list").is_empty(),
        "the owner filter is case-insensitive"
    );
}

/// A query given a time budget is stopped past it, with `Interrupted`; within it, it answers
/// as `query_events` does.
pub async fn stops_a_query_past_its_budget<S: Store>(store: &S) {
    let events: Vec<Event> = (0..2_000)
        .map(|i| {
            event(
                &format!("ws{}", i % 50),
                "alice",
                1_000 + i,
                json!({"CommandLine": format!("cmd.exe /c echo {i}")}),
            )
        })
        .collect();
    store.insert_events(&events).await.expect("insert");
    let q = EventQuery {
        text: Some("no event holds this".into()),
        ..EventQuery::default()
    };
    match store.query_events_within(&q, std::time::Duration::ZERO).await {
        Err(crate::StoreError::Interrupted(_)) => {}
        other => panic!("a full scan with no budget was not stopped: {other:?}"),
    }
    let q = EventQuery {
        text: Some("echo 1999".into()),
        ..EventQuery::default()
    };
    let within = store
        .query_events_within(&q, std::time::Duration::from_secs(30))
        .await
        .expect("within budget");
    assert_eq!(within, store.query_events(&q).await.expect("query"));
    assert_eq!(within.len(), 1);
}

/// Verdicts come back whole, newest first; feedback comes back with the verdict it judges.
pub async fn verdicts_and_feedback_round_trip<S: Store + crate::IncidentStore>(store: &S) {
    use rempart_model::{Classification, Feedback, IncidentSeverity, TriageMode, Verdict};
    let inc = incident(1_000, "x");
    let mk = |secs: i64, c: Classification| Verdict {
        id: EventId::generate(),
        incident: inc.id,
        created: Timestamp::from_second(secs).expect("time"),
        mode: TriageMode::Model,
        provider: Some("local".into()),
        model: Some("m".into()),
        classification: c,
        confidence: 0.75,
        severity: IncidentSeverity::High,
        summary: "s".into(),
        timeline: Vec::new(),
        techniques: vec!["T1003.001".into()],
        entities: Vec::new(),
        recommended_actions: Vec::new(),
        queries: Vec::new(),
        evidence: Vec::new(),
        flags: Vec::new(),
        injection: Vec::new(),
        domain: Some("triage".into()),
        steps: 2,
        tokens: 1234,
    };
    let (old, new) = (
        mk(1_000, Classification::Benign),
        mk(2_000, Classification::TruePositive),
    );
    store.verdict_put(&old).await.expect("put");
    store.verdict_put(&new).await.expect("put");
    assert_eq!(store.verdict_get(old.id).await.expect("get"), Some(old.clone()));
    assert_eq!(
        store.verdicts_of(inc.id).await.expect("of"),
        vec![new.clone(), old.clone()]
    );
    let f = Feedback {
        verdict: new.id,
        incident: inc.id,
        time: Timestamp::from_second(3_000).expect("time"),
        actor: "token:a".into(),
        agrees: false,
        classification: Classification::FalsePositive,
        reason: "known admin script".into(),
    };
    store.feedback_put(&f).await.expect("feedback");
    assert_eq!(store.feedback_all().await.expect("all"), vec![(f, new)]);
}

/// An entity's events are counted case-insensitively, a host under any of its domains, within
/// the half-open range.
pub async fn counts_an_entity_s_events(store: &dyn Store) {
    use crate::EntityField;
    let events = [
        event("WS-FIN-07.corp.example.eu", "Alice", 1_000, json!({})),
        event("ws-fin-07", "alice", 1_001, json!({})),
        event("ws-fin-070", "bob", 1_002, json!({})),
        event("WS-FIN-07.other.example", "alice", 2_000, json!({})),
    ];
    store.insert_events(&events).await.expect("insert");
    let t = |s: i64| Timestamp::from_second(s).expect("time");
    let count = |f, v: &'static str, a, b| store.count_entity_events(f, v, t(a), t(b));
    assert_eq!(count(EntityField::Host, "ws-fin-07", 0, 3_000).await.expect("count"), 3);
    assert_eq!(
        count(EntityField::Host, "ws-fin-07", 0, 2_000).await.expect("count"),
        2,
        "until is excluded"
    );
    assert_eq!(count(EntityField::User, "alice", 0, 3_000).await.expect("count"), 3);
    assert_eq!(count(EntityField::User, "ALICE", 1_001, 3_000).await.expect("count"), 2);
}

/// Runs and approvals round-trip and list by incident and status; an action key begins once
/// (again only after a failure); hourly counts see started and succeeded actions only.
pub async fn response_runs_approvals_and_actions<S: crate::ResponseStore>(store: &S) {
    use crate::{ActionRow, ApprovalRow, RunQuery, RunRow};
    let t = |s: i64| Timestamp::from_second(s).expect("valid fixture time");
    let incident = EventId::generate();
    let run = |status: &str, secs: i64| RunRow {
        id: EventId::generate(),
        incident,
        playbook: "contain".into(),
        status: status.into(),
        created: t(secs),
        updated: t(secs),
        body: json!({"status": status}),
    };
    let (r1, r2) = (run("completed", 100), run("waiting", 200));
    let approval = ApprovalRow {
        id: EventId::generate(),
        run: r2.id,
        status: "pending".into(),
        created: t(200),
        deadline: t(2_000),
        body: json!({"step": "block"}),
    };
    store
        .response_write(&[r1.clone(), r2.clone()], std::slice::from_ref(&approval))
        .await
        .expect("write");
    assert_eq!(store.run_get(r1.id).await.expect("get"), Some(r1.clone()));
    let all = store
        .runs_list(&RunQuery {
            incident: Some(incident),
            status: Vec::new(),
            before: None,
            limit: 10,
        })
        .await
        .expect("list");
    assert_eq!(all, vec![r2.clone(), r1.clone()], "newest first");
    let waiting = store
        .runs_list(&RunQuery {
            incident: None,
            status: vec!["waiting".into()],
            before: None,
            limit: 10,
        })
        .await
        .expect("list");
    assert_eq!(waiting, vec![r2.clone()]);
    assert_eq!(
        store.approvals_list(Some("pending"), None, 10).await.expect("list"),
        vec![approval.clone()]
    );
    let mut decided = approval.clone();
    decided.status = "approved".into();
    store
        .response_write(&[], std::slice::from_ref(&decided))
        .await
        .expect("write");
    assert!(
        store
            .approvals_list(Some("pending"), None, 10)
            .await
            .expect("list")
            .is_empty()
    );
    assert_eq!(store.approval_get(approval.id).await.expect("get"), Some(decided));

    let action = |key: &str, secs: i64| ActionRow {
        key: key.into(),
        run: r2.id,
        playbook: "contain".into(),
        action: "block_ip".into(),
        time: t(secs),
        outcome: "started".into(),
    };
    assert!(store.action_begin(&action("k1", 1_000)).await.expect("begin"));
    assert!(
        !store.action_begin(&action("k1", 1_001)).await.expect("begin"),
        "a key begins once"
    );
    store.action_end("k1", "succeeded").await.expect("end");
    assert!(
        !store.action_begin(&action("k1", 1_002)).await.expect("begin"),
        "a success is final"
    );
    assert!(store.action_begin(&action("k2", 1_100)).await.expect("begin"));
    store.action_end("k2", "failed").await.expect("end");
    assert!(store.action_begin(&action("k3", 10)).await.expect("begin"));
    assert_eq!(
        store.actions_count("contain", "block_ip", t(500)).await.expect("count"),
        1,
        "k1 only"
    );
    assert!(
        store.action_begin(&action("k2", 1_200)).await.expect("begin"),
        "a failure may be retried"
    );
    assert_eq!(
        store.actions_count("contain", "block_ip", t(500)).await.expect("count"),
        2
    );
    assert_eq!(store.actions_count("other", "block_ip", t(0)).await.expect("count"), 0);

    let body = json!({"aware_at": "2026-01-01T00:00:00Z"});
    store.assessment_put(incident, &body, t(5)).await.expect("put");
    assert_eq!(store.assessment_get(incident).await.expect("get"), Some(body.clone()));
    assert_eq!(store.assessments_all().await.expect("all"), vec![(incident, body)]);
    assert_eq!(store.assessment_get(EventId::generate()).await.expect("get"), None);
}

/// A detector's state round-trips and the last save wins.
pub async fn detector_state_round_trips(store: &dyn Store) {
    let t = Timestamp::from_second(10).expect("valid fixture time");
    assert_eq!(store.state_get("baselines").await.expect("get"), None);
    store.state_put("baselines", &json!({"v": 1}), t).await.expect("put");
    store
        .state_put("baselines", &json!({"v": 2, "hosts": {"ws": 3}}), t)
        .await
        .expect("put");
    assert_eq!(
        store.state_get("baselines").await.expect("get"),
        Some(json!({"v": 2, "hosts": {"ws": 3}}))
    );
}

/// A state is saved at an erasure epoch only while that epoch holds and no erasure runs, so
/// that what a process learnt before an erasure never writes over what the erasure rewrote.
pub async fn saves_state_only_at_the_erasure_epoch_it_read<S: Store + crate::ErasureStore>(store: &S) {
    let t = Timestamp::from_second(10).expect("valid fixture time");
    let first = store.erasure_epoch().await.expect("epoch");
    assert_eq!(first, crate::Epoch::FIRST);
    assert!(
        store
            .state_put_at("anomaly", &json!({"v": 1}), t, first)
            .await
            .expect("put")
    );
    let begun = store.erasure_advance().await.expect("advance");
    assert!(begun.erasing() && begun.epoch == 1, "{begun:?}");
    assert_eq!(store.erasure_epoch().await.expect("epoch"), begun);
    assert!(
        !store
            .state_put_at("anomaly", &json!({"v": 2}), t, first)
            .await
            .expect("put"),
        "a state learnt before the erasure"
    );
    assert_eq!(store.state_get("anomaly").await.expect("get"), Some(json!({"v": 1})));
    let ended = store.erasure_advance().await.expect("advance");
    assert!(
        !ended.erasing() && ended.epoch == 2 && ended.since >= begun.since,
        "{ended:?}"
    );
    assert_eq!(store.erasure_epoch().await.expect("epoch"), ended);
    assert!(
        store
            .state_put_at("anomaly", &json!({"v": 4}), t, ended)
            .await
            .expect("put")
    );
    assert_eq!(store.state_get("anomaly").await.expect("get"), Some(json!({"v": 4})));
}

/// Replaces `alice`, as a whole word in any case, by `erased-user-1`: the kind of rewrite the
/// privacy engine hands a sweep.
fn erase_alice(s: &mut String) -> usize {
    let lower = s.to_ascii_lowercase();
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let mut spans = Vec::new();
    let mut from = 0;
    while let Some(i) = lower[from..].find("alice") {
        let (start, end) = (from + i, from + i + 5);
        if !word(lower[..start].chars().next_back()) && !word(lower[end..].chars().next()) {
            spans.push(start);
        }
        from = end;
    }
    for start in spans.iter().rev() {
        s.replace_range(*start..*start + 5, "erased-user-1");
    }
    spans.len()
}

/// A sweep finds a subject in every table that keeps telemetry, rewrites it there (normalized
/// fields, original fields, object keys, quarantined bytes, alert columns, incident bodies,
/// detector state, action keys), leaves everyone else alone, keeps the entity index true, and
/// finds nothing the second time. A dry run changes nothing.
pub async fn sweeps_a_subject_everywhere<S>(store: &S)
where
    S: Store + crate::IncidentStore + crate::ResponseStore + crate::ErasureStore,
{
    use crate::{ActionRow, EntityField, Sweep};
    use rempart_model::{Entity, EntityKind};
    let t = |s: i64| Timestamp::from_second(s).expect("valid fixture time");
    let mut hers = event(
        "ws1",
        "Alice",
        1_000,
        json!({"TargetUserName": "alice", "CommandLine": "runas /user:CORP\\alice cmd", "alice": {"logons": 3}, "Note": "malice aforethought"}),
    );
    hers.origin.location = Some("C:\\Users\\ALICE\\Security.evtx".to_owned());
    let his = event("ws2", "bob", 1_001, json!({"TargetUserName": "bob", "Note": "alicea"}));
    store.insert_events(&[hers.clone(), his.clone()]).await.expect("insert");
    let raw = Quarantined {
        id: EventId::generate(),
        received: t(1_002),
        source: "syslog".into(),
        location: None,
        reason: "not syslog".into(),
        raw: b"sshd: Accepted password for alice from 10.0.0.5 \xff".to_vec(),
    };
    store.quarantine(std::slice::from_ref(&raw)).await.expect("quarantine");
    let mut alert = rempart_model::Alert::for_event(&hers, t(1_003), None, "logon".into(), None, Vec::new());
    alert.matched = vec![rempart_model::MatchedField::new("TargetUserName", "alice")];
    store.insert_alerts(std::slice::from_ref(&alert)).await.expect("alerts");
    let mut inc = incident(1_000, "logon by alice");
    inc.entities.push(Entity::new(EntityKind::User, "alice"));
    store
        .incidents_write(crate::IncidentWrite {
            incidents: std::slice::from_ref(&inc),
            links: &[(alert.id, inc.id)],
            moves: &[],
        })
        .await
        .expect("incident");
    store
        .state_put("baselines", &json!({"users": {"bob": [1], "alice": [2]}}), t(1_004))
        .await
        .expect("state");
    store
        .action_begin(&ActionRow {
            key: "disable:alice".into(),
            run: inc.id,
            playbook: "contain".into(),
            action: "disable_user".into(),
            time: t(1_005),
            outcome: "started".into(),
        })
        .await
        .expect("action");

    let needles = ["alice".to_owned()];
    let mut sweep = Sweep {
        needles: &needles,
        rewrite: &erase_alice,
        dry_run: true,
    };
    let found = store.sweep(&sweep).await.expect("dry run");
    let expected: std::collections::BTreeMap<String, u64> = [
        "alerts",
        "detector_state",
        "events",
        "incidents",
        "quarantine",
        "response_actions",
    ]
    .into_iter()
    .map(|t| (t.to_owned(), 1))
    .collect();
    assert_eq!(found.rows, expected);
    assert_eq!(found.ids["events"], [hers.id.to_string()]);
    assert_eq!(
        store.get_event(hers.id).await.expect("get"),
        Some(hers.clone()),
        "a dry run changes nothing"
    );

    sweep.dry_run = false;
    let swept = store.sweep(&sweep).await.expect("sweep");
    assert_eq!(swept.rows, expected);
    assert_eq!(swept.occurrences, found.occurrences);
    assert_eq!(swept.occurrences, 13);

    let got = store.get_event(hers.id).await.expect("get").expect("kept");
    assert_eq!(got.normalized.user.as_deref(), Some("erased-user-1"));
    assert_eq!(got.normalized.host.as_deref(), Some("ws1"), "other fields stay");
    assert_eq!(
        got.origin.location.as_deref(),
        Some("C:\\Users\\erased-user-1\\Security.evtx")
    );
    assert_eq!(
        serde_json::Value::Object(got.fields.clone().into_map()),
        json!({"TargetUserName": "erased-user-1", "CommandLine": "runas /user:CORP\\erased-user-1 cmd", "erased-user-1": {"logons": 3}, "Note": "malice aforethought"})
    );
    assert_eq!(
        store.get_event(his.id).await.expect("get"),
        Some(his),
        "someone else's event is untouched"
    );
    let q = store.list_quarantine(None, 10).await.expect("quarantine");
    assert_eq!(
        String::from_utf8_lossy(&q[0].raw),
        "sshd: Accepted password for erased-user-1 from 10.0.0.5 \u{fffd}"
    );
    let alerts = store.query_alerts(&AlertQuery::default()).await.expect("alerts");
    assert_eq!(alerts[0].user.as_deref(), Some("erased-user-1"));
    assert_eq!(alerts[0].matched[0].value, "erased-user-1");
    let inc = store.incident_get(inc.id).await.expect("get").expect("kept");
    assert_eq!(inc.title, "logon by erased-user-1");
    assert!(inc.entities.contains(&Entity::new(EntityKind::User, "erased-user-1")));
    assert_eq!(
        store.state_get("baselines").await.expect("state"),
        Some(json!({"users": {"bob": [1], "erased-user-1": [2]}}))
    );
    assert!(
        !store
            .action_begin(&ActionRow {
                key: "disable:erased-user-1".into(),
                run: inc.id,
                playbook: "contain".into(),
                action: "disable_user".into(),
                time: t(1_006),
                outcome: "started".into(),
            })
            .await
            .expect("action"),
        "the action's key was rewritten, so it is already taken"
    );
    let all = (t(0), t(10_000));
    assert_eq!(
        store
            .count_entity_events(EntityField::User, "alice", all.0, all.1)
            .await
            .expect("count"),
        0
    );
    assert_eq!(
        store
            .count_entity_events(EntityField::User, "erased-user-1", all.0, all.1)
            .await
            .expect("count"),
        1,
        "the entity index follows the rewrite"
    );
    let again = store.sweep(&sweep).await.expect("sweep again");
    assert_eq!(again.total_rows(), 0, "{again:?}");
    assert!(
        store
            .sweep(&Sweep {
                needles: &[String::new()],
                rewrite: &erase_alice,
                dry_run: true,
            })
            .await
            .is_err(),
        "an empty needle would match everything"
    );
}

/// Follows a list page by page, each page starting past the last item of the one before,
/// until a page comes back empty: every item of the list, in the order the pages gave them.
async fn walk_pages<T, F, Fut>(mut page: F, position: impl Fn(&T) -> crate::Position) -> Vec<T>
where
    F: FnMut(Option<crate::Position>) -> Fut,
    Fut: std::future::Future<Output = crate::Result<Vec<T>>>,
{
    let mut all = Vec::new();
    let mut past = None;
    loop {
        let items = page(past).await.expect("page");
        let Some(last) = items.last() else { return all };
        past = Some(position(last));
        all.extend(items);
    }
}

/// Every list the API pages through (alerts, incidents, playbook runs, approvals, quarantine)
/// gives each item exactly once and in the list's order when followed page by page, with many
/// items sharing a time and filters in force.
pub async fn pages_through_every_list_sharing_times<S>(store: &S)
where
    S: Store + crate::IncidentStore + crate::ResponseStore,
{
    use crate::{ApprovalRow, IncidentQuery, RunQuery, RunRow};
    const N: i64 = 23;
    const PAGE: u32 = 4;
    let t = |i: i64| Timestamp::from_second(1_000 + i / 5).expect("time");
    // Newest first (or oldest first), ties broken by id: what a single query returns.
    fn order<T>(items: &mut [T], key: impl Fn(&T) -> crate::Position, newest_first: bool) {
        items.sort_by_key(|x| key(x));
        if newest_first {
            items.reverse();
        }
    }

    let e = event("ws1", "alice", 1_000, json!({}));
    let mut alerts: Vec<rempart_model::Alert> = (0..N)
        .map(|i| {
            let mut ev = e.clone();
            ev.id = EventId::generate();
            ev.time = t(i);
            let level = if i % 3 == 0 { "low" } else { "high" };
            rempart_model::Alert::for_event(
                &ev,
                ev.time,
                Some("r".into()),
                "r".into(),
                Some(level.into()),
                Vec::new(),
            )
        })
        .collect();
    store.insert_alerts(&alerts).await.expect("alerts");
    alerts.retain(|a| a.level.as_deref() == Some("high"));
    order(&mut alerts, |a| (a.time, a.id), true);
    let paged = walk_pages(
        |before| async move {
            store
                .query_alerts(&AlertQuery {
                    min_level: Some("high".into()),
                    before,
                    limit: Some(PAGE),
                    ..AlertQuery::default()
                })
                .await
        },
        |a| (a.time, a.id),
    )
    .await;
    assert_eq!(paged, alerts, "alerts");

    let mut incidents: Vec<rempart_model::Incident> = (0..N)
        .map(|i| {
            let mut x = incident(1_000, "paged");
            x.last_seen = t(i);
            x
        })
        .collect();
    store
        .incidents_write(crate::IncidentWrite {
            incidents: &incidents,
            links: &[],
            moves: &[],
        })
        .await
        .expect("incidents");
    order(&mut incidents, |x| (x.last_seen, x.id), true);
    let paged = walk_pages(
        |before| async move {
            store
                .incidents_list(&IncidentQuery {
                    rule: Some("PAGED".into()),
                    before,
                    limit: Some(PAGE),
                    ..IncidentQuery::default()
                })
                .await
        },
        |x| (x.last_seen, x.id),
    )
    .await;
    assert_eq!(paged, incidents, "incidents");

    let incident_id = EventId::generate();
    let mut runs: Vec<RunRow> = (0..N)
        .map(|i| RunRow {
            id: EventId::generate(),
            incident: incident_id,
            playbook: "contain".into(),
            status: "completed".into(),
            created: t(i),
            updated: t(i),
            body: json!({"i": i}),
        })
        .collect();
    let mut approvals: Vec<ApprovalRow> = runs
        .iter()
        .map(|r| ApprovalRow {
            id: EventId::generate(),
            run: r.id,
            status: "pending".into(),
            created: r.created,
            deadline: r.created,
            body: json!({"step": "block"}),
        })
        .collect();
    store.response_write(&runs, &approvals).await.expect("response");
    order(&mut runs, |r| (r.created, r.id), true);
    let paged = walk_pages(
        |before| async move {
            store
                .runs_list(&RunQuery {
                    incident: Some(incident_id),
                    status: Vec::new(),
                    before,
                    limit: PAGE,
                })
                .await
        },
        |r| (r.created, r.id),
    )
    .await;
    assert_eq!(paged, runs, "runs");
    order(&mut approvals, |a| (a.created, a.id), false);
    let paged = walk_pages(
        |after| store.approvals_list(Some("pending"), after, PAGE),
        |a| (a.created, a.id),
    )
    .await;
    assert_eq!(paged, approvals, "approvals, oldest first");

    let mut quarantined: Vec<Quarantined> = (0..N)
        .map(|i| Quarantined {
            id: EventId::generate(),
            received: t(i),
            source: "a.log".into(),
            location: Some(format!("line {i}")),
            reason: "invalid JSON".into(),
            raw: b"{".to_vec(),
        })
        .collect();
    store.quarantine(&quarantined).await.expect("quarantine");
    order(&mut quarantined, |q| (q.received, q.id), true);
    let paged = walk_pages(|before| store.list_quarantine(before, PAGE), |q| (q.received, q.id)).await;
    assert_eq!(paged, quarantined, "quarantine");
}

/// Expands to one test per conformance check, each on a fresh store made by `$make`
/// (an async expression yielding a fixture whose `store` field is the store; the fixture lives
/// for the whole test, so it can own temporary directories or database schemas).
#[macro_export]
macro_rules! store_conformance {
    ($make:expr) => {
        $crate::store_conformance!(@tests $make;
            round_trips_events, queries_by_time_range, queries_by_fields_and_text,
            quarantines_bad_input, prunes_old_events, inserts_are_idempotent, manages_tokens, stores_and_queries_alerts,
            pages_through_events_sharing_a_time, pages_through_every_list_sharing_times, ledger_round_trips_in_order, ledger_refuses_a_fork_or_a_gap,
            ledger_prunes_bodies_and_keeps_records, ledger_erases_subject_keys, incidents_link_and_merge,
            verdicts_and_feedback_round_trip, counts_an_entity_s_events, response_runs_approvals_and_actions, detector_state_round_trips,
            saves_state_only_at_the_erasure_epoch_it_read,
            sweeps_a_subject_everywhere, filters_incidents_as_the_query_says, stops_a_query_past_its_budget);
    };
    (@tests $make:expr; $($check:ident),*) => {
        $(
            #[tokio::test]
            async fn $check() {
                let fixture = $make.await;
                $crate::conformance::$check(&fixture.store).await;
            }
        )*
    };
}
