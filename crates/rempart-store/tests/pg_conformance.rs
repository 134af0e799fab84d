//! The PostgreSQL store against the conformance suite, and what only a shared database has to
//! hold: several processes migrating, appending and claiming at once, partitions by day.
//!
//! Runs against a real server: `REMPART_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/test`, which `scripts/test` makes sure answers). Each
//! test works in a schema of its own, dropped afterwards.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a failed unwrap is a failed test"
)]

use std::sync::Arc;

use jiff::Timestamp;
use rempart_model::{Event, EventId, Format};
use rempart_store::{
    ActionRow, ErasureStore, LedgerAppend, LedgerEntry, LedgerRecord, LedgerStore, PgSettings, PgStore, ResponseStore,
    Store, StoreError, Sweep, store_conformance,
};

fn url() -> String {
    std::env::var("REMPART_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn settings(schema: &str) -> PgSettings {
    PgSettings {
        url: url(),
        password: None,
        max_connections: 4,
        schema: Some(schema.to_owned()),
        application: "rempart/test".to_owned(),
    }
}

struct Fixture {
    store: PgStore,
    schema: String,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let schema = self.schema.clone();
        // A test's runtime may be the one dropping this: clean up from a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(async {
                let pool = sqlx::PgPool::connect(&url()).await?;
                // After a failed test, its store may still hold a transaction open on this
                // runtime, which waits for this thread: give up rather than hang (the process
                // ends right after, and `scripts/test` drops leftover schemas).
                let mut tx = pool.begin().await?;
                sqlx::query("SET LOCAL lock_timeout = '3s'").execute(&mut *tx).await?;
                sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>(())
            })
            .map_err(std::io::Error::other)
        })
        .join();
    }
}

fn schema_name() -> String {
    format!("rempart_test_{}", EventId::generate().0.simple())
}

async fn fresh() -> Fixture {
    let schema = schema_name();
    let store = PgStore::connect(&settings(&schema)).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL at {} must answer for these tests (scripts/test starts one): {e}",
            rempart_store::redact_url(&url())
        )
    });
    Fixture { store, schema }
}

store_conformance!(fresh());

fn event_at(time: Timestamp, ingested: Timestamp) -> Event {
    let mut e = Event::new(Format::Json, time, ingested, serde_json::Map::new());
    e.normalized.host = Some("ws1".to_owned());
    e
}

async fn partitions(f: &Fixture) -> Vec<String> {
    let pool = sqlx::PgPool::connect(&url()).await.expect("connect");
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n ON n.oid = p.relnamespace \
         WHERE p.relname = 'events' AND n.nspname = $1 ORDER BY 1",
    )
    .bind(&f.schema)
    .fetch_all(&pool)
    .await
    .expect("partitions")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reopening_keeps_data_and_starting_together_migrates_once() {
    let f = fresh().await;
    let e = event_at(Timestamp::UNIX_EPOCH, Timestamp::UNIX_EPOCH);
    f.store.insert_events(std::slice::from_ref(&e)).await.expect("insert");
    let version = f.store.schema_version().await.expect("version");
    assert!(version >= 1);
    // Eight processes starting at once against the same schema: none fails, none migrates again.
    let opened = connect_many(&f.schema, 8).await;
    for store in opened {
        let store = store.expect("connect alongside the others");
        assert_eq!(store.schema_version().await.expect("version"), version);
        assert_eq!(store.get_event(e.id).await.expect("get"), Some(e.clone()));
    }
    // The same with a schema nobody made yet.
    let schema = schema_name();
    let racing = connect_many(&schema, 4).await;
    let cleanup = Fixture {
        store: racing.into_iter().map(|r| r.expect("connect")).next().expect("one"),
        schema,
    };
    assert_eq!(cleanup.store.schema_version().await.expect("version"), version);
}

/// `n` stores connecting to `schema` at once, as processes starting together would.
async fn connect_many(schema: &str, n: usize) -> Vec<Result<PgStore, StoreError>> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let s = settings(schema);
        set.spawn(async move { PgStore::connect(&s).await });
    }
    set.join_all().await
}

/// Events go to the partition of the day they were received, whatever time they carry, so a
/// sender cannot make partitions by writing times centuries apart; retention drops whole days
/// but keeps a day holding an event stamped after the cut.
#[tokio::test]
async fn events_are_partitioned_by_day_of_reception_and_pruned_by_time() {
    let f = fresh().await;
    let day = |d: i64| Timestamp::from_second(1_700_000_000 + d * 86_400).expect("time");
    let mut events = Vec::new();
    // Day 0: two ordinary events; day 1: an old event and one stamped far ahead; day 2: recent.
    events.push(event_at(day(0), day(0)));
    events.push(event_at(Timestamp::from_second(0).expect("time"), day(1)));
    let future = event_at(day(400), day(1));
    events.push(future.clone());
    events.push(event_at(day(2), day(2)));
    // A sender's times across five centuries, all received on day 2.
    for year in [1700_i64, 1900, 2100, 2200] {
        let t = Timestamp::from_second((year - 1970) * 31_556_952).expect("time");
        events.push(event_at(t, day(2)));
    }
    f.store.insert_events(&events).await.expect("insert");
    // Another process writes on day 0 too, and so knows its partition.
    let other = PgStore::connect(&settings(&f.schema)).await.expect("connect");
    other.insert_events(&[event_at(day(0), day(0))]).await.expect("insert");
    assert_eq!(
        partitions(&f).await,
        ["events_20231114", "events_20231115", "events_20231116"],
        "one partition per day received"
    );

    // Cut at the start of day 2: day 0 goes whole; day 1 stays (it holds the future event) but
    // loses its old one; on day 2 the events stamped before the cut go.
    let removed = f.store.prune_events(day(2)).await.expect("prune");
    assert_eq!(
        removed,
        2 + 1 + 2,
        "day 0's two, day 1's old one, the 1700 and 1900 events"
    );
    assert_eq!(partitions(&f).await, ["events_20231115", "events_20231116"]);
    assert_eq!(f.store.get_event(future.id).await.expect("get"), Some(future));
    assert_eq!(f.store.count_events().await.expect("count"), 4);

    // The other process still believes in the dropped day: its insert there succeeds anyway.
    let late = event_at(day(0), day(0));
    other.insert_events(std::slice::from_ref(&late)).await.expect("insert");
    assert_eq!(f.store.get_event(late.id).await.expect("get"), Some(late));
    assert!(partitions(&f).await.contains(&"events_20231114".to_owned()));
}

fn record(seq: u64, writer: u8) -> LedgerEntry {
    LedgerEntry {
        record: LedgerRecord {
            seq,
            time: Timestamp::from_second(1_800_000_000).expect("time"),
            actor: format!("writer:{writer}"),
            kind: "test.race".to_owned(),
            key_id: None,
            payload_hash: [writer; 32],
            prev_hash: [0; 32],
            leaf_hash: [writer; 32],
        },
        payload: Some(vec![writer]),
    }
}

/// Processes appending at once keep one order: each append either continues the stored
/// ledger or fails whole with a conflict, and retrying from the new head ends with every
/// record stored once, with no gap and no fork.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ledger_appends_racing_from_several_processes_keep_one_order() {
    let f = fresh().await;
    const WRITERS: u8 = 6;
    const EACH: usize = 15;
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..WRITERS {
        let store = Arc::new(PgStore::connect(&settings(&f.schema)).await.expect("connect"));
        writers.spawn(async move {
            let mut conflicts = 0;
            let mut written = 0;
            while written < EACH {
                let head = store.ledger_head().await.expect("head").map_or(0, |h| h.seq + 1);
                let entries = [record(head, w), record(head + 1, w)];
                match store
                    .ledger_append(LedgerAppend {
                        keys: &[],
                        entries: &entries,
                        checkpoint: None,
                    })
                    .await
                {
                    Ok(()) => written += 1,
                    Err(StoreError::Conflict(_)) => conflicts += 1,
                    Err(e) => panic!("an append failed otherwise than by conflict: {e}"),
                }
            }
            conflicts
        });
    }
    let conflicts: usize = writers.join_all().await.into_iter().sum();
    let all = f.store.ledger_entries(0, 10_000).await.expect("entries");
    let seqs: Vec<u64> = all.iter().map(|e| e.record.seq).collect();
    let want: Vec<u64> = (0..u64::from(WRITERS) * EACH as u64 * 2).collect();
    assert_eq!(seqs, want, "one record per sequence number, none missing");
    for pair in all.chunks(2) {
        assert_eq!(
            pair[0].record.actor, pair[1].record.actor,
            "an append is stored whole or not at all"
        );
    }
    eprintln!("{conflicts} appends lost a race and were retried");
}

/// Two `respond` processes claiming the same action at once: exactly one may run it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_action_key_is_claimed_by_one_process_only() {
    let f = fresh().await;
    for round in 0..20 {
        let mut claims = tokio::task::JoinSet::new();
        for _ in 0..4 {
            let store = PgStore::connect(&settings(&f.schema)).await.expect("connect");
            claims.spawn(async move {
                store
                    .action_begin(&ActionRow {
                        key: format!("disable:user{round}"),
                        run: EventId::generate(),
                        playbook: "contain".into(),
                        action: "disable_user".into(),
                        time: Timestamp::now(),
                        outcome: "started".into(),
                    })
                    .await
                    .expect("begin")
            });
        }
        let won = claims.join_all().await.into_iter().filter(|w| *w).count();
        assert_eq!(won, 1, "round {round}: one process runs the action");
    }
}

/// Processes admitting actions against one hourly limit at once, each counting and recording
/// under `exclusive`: together they admit exactly the limit, round after round.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn processes_racing_on_an_hourly_limit_admit_exactly_the_limit() {
    const LIMIT: u64 = 5;
    let f = fresh().await;
    let stores: Vec<Arc<PgStore>> = connect_many(&f.schema, 3)
        .await
        .into_iter()
        .map(|s| Arc::new(s.expect("connect")))
        .collect();
    for round in 0..4 {
        let playbook = format!("isolate-{round}");
        let mut racing = tokio::task::JoinSet::new();
        for (i, store) in stores.iter().cycle().take(24).enumerate() {
            let (store, playbook) = (store.clone(), playbook.clone());
            racing.spawn(async move {
                let _held = store
                    .exclusive(&format!("response-budget/{playbook}"))
                    .await
                    .expect("exclusive");
                let since = Timestamp::UNIX_EPOCH;
                if store
                    .actions_count(&playbook, "isolate_host", since)
                    .await
                    .expect("count")
                    >= LIMIT
                {
                    return false;
                }
                // The decision takes a while: another process deciding meanwhile would overshoot.
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                store
                    .action_begin(&ActionRow {
                        key: format!("{playbook}/{i}"),
                        run: EventId::generate(),
                        playbook: playbook.clone(),
                        action: "isolate_host".into(),
                        time: Timestamp::now(),
                        outcome: "started".into(),
                    })
                    .await
                    .expect("begin")
            });
        }
        let admitted = racing.join_all().await.into_iter().filter(|a| *a).count() as u64;
        assert_eq!(
            admitted, LIMIT,
            "round {round}: 24 requests from 3 processes, limit {LIMIT}"
        );
        let counted = f
            .store
            .actions_count(&playbook, "isolate_host", Timestamp::UNIX_EPOCH)
            .await
            .expect("count");
        assert_eq!(counted, LIMIT);
    }
}

/// PostgreSQL keeps old row images in its write-ahead log and backups, out of a client's
/// reach: a sweep says so rather than claim the copies are gone.
#[tokio::test]
async fn a_sweep_does_not_claim_the_old_copies_purged() {
    let f = fresh().await;
    let mut e = event_at(Timestamp::UNIX_EPOCH, Timestamp::UNIX_EPOCH);
    e.normalized.user = Some("zoltan.kertesz".into());
    f.store.insert_events(&[e]).await.expect("insert");
    let needles = ["zoltan.kertesz".to_owned()];
    let rewrite = |s: &mut String| {
        let n = s.matches("zoltan.kertesz").count();
        *s = s.replace("zoltan.kertesz", "erased-user-0");
        n
    };
    let mut sweep = Sweep {
        needles: &needles,
        rewrite: &rewrite,
        dry_run: true,
    };
    assert!(f.store.sweep(&sweep).await.expect("dry run").purged);
    sweep.dry_run = false;
    let report = f.store.sweep(&sweep).await.expect("sweep");
    assert_eq!(report.rows["events"], 1);
    assert!(!report.purged);
}

/// A lease is held by one process at a time, per name and per schema; the next process takes
/// it as soon as the holder's session is gone, and the holder then learns it lost it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lease_has_one_holder_until_its_session_ends() {
    let f = fresh().await;
    let other = connect_many(&f.schema, 1).await.pop().expect("one").expect("connect");
    let mut held = f
        .store
        .lease("correlator")
        .await
        .expect("lease")
        .expect("free at first");
    held.check().await.expect("held");
    assert!(
        other.lease("correlator").await.expect("lease").is_none(),
        "a second process does not take a held lease"
    );
    let again = f.store.lease("correlator").await.expect("lease");
    assert!(again.is_none(), "nor does the same process through another session");
    assert!(
        other.lease("detector").await.expect("lease").is_some(),
        "another name is free"
    );
    // Another schema is another deployment: its lease of the same name is free.
    let elsewhere = fresh().await;
    assert!(elsewhere.store.lease("correlator").await.expect("lease").is_some());

    // The holder's session ends as a killed process's would: the server ends it.
    let admin = sqlx::PgPool::connect(&url()).await.expect("connect");
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(l.pid)) FROM pg_locks l \
         WHERE l.locktype = 'advisory' AND l.granted AND l.pid <> pg_backend_pid() \
         AND (l.classid::bigint << 32 | l.objid::bigint) = $1",
    )
    .bind(f.store.lease_key("correlator"))
    .fetch_one(&admin)
    .await
    .expect("terminate");
    assert_eq!(killed, 1, "exactly one session held it");
    let mut taken = None;
    for _ in 0..50 {
        taken = other.lease("correlator").await.expect("lease");
        if taken.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        taken.is_some(),
        "the next process takes the lease once the holder is gone"
    );
    assert!(held.check().await.is_err(), "the old holder learns it lost the lease");
    assert_eq!(
        f.store.lease_holder("correlator").await.expect("holder").as_deref(),
        Some("rempart/test"),
        "the holder is named by its sessions' application name"
    );
    drop(taken);
    let mut gone = Some(String::new());
    for _ in 0..50 {
        gone = f.store.lease_holder("correlator").await.expect("holder");
        if gone.is_none() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(gone, None, "a lease dropped has no holder");
}

/// Processes record themselves alive, and are forgotten when they leave.
#[tokio::test]
async fn members_beat_and_leave() {
    let f = fresh().await;
    let member = |id: &str, role: &str, seen: i64| rempart_store::Member {
        id: id.to_owned(),
        role: role.to_owned(),
        host: "node1".to_owned(),
        pid: 42,
        listen: Some("127.0.0.1:8080".to_owned()),
        started: Timestamp::from_second(100).expect("time"),
        seen: Timestamp::from_second(seen).expect("time"),
    };
    f.store
        .member_beat(&member("rempart/detect/42@node1", "detect", 110))
        .await
        .expect("beat");
    f.store
        .member_beat(&member("rempart/ingest/7@node1", "ingest", 111))
        .await
        .expect("beat");
    f.store
        .member_beat(&member("rempart/detect/42@node1", "detect", 120))
        .await
        .expect("beat again");
    let members = f.store.members().await.expect("members");
    assert_eq!(members.len(), 2);
    assert_eq!(
        members[0],
        member("rempart/detect/42@node1", "detect", 120),
        "last seen kept"
    );
    f.store.member_leave("rempart/detect/42@node1").await.expect("leave");
    assert_eq!(f.store.members().await.expect("members").len(), 1);
}
