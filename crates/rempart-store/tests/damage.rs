//! A damaged embedded store: found by the integrity check a server runs at start, and by any
//! query that reads a damaged page; either way `ping` (and so `/readyz`) fails from then on.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use rempart_model::{Event, Format};
use rempart_store::{EventQuery, SqliteStore, Store, StoreError};

/// A store of 3,000 events, its log folded into the file, with eight pages in the middle of the
/// file overwritten.
async fn damaged(path: &Path) {
    let store = SqliteStore::open(path).await.unwrap();
    let events: Vec<Event> = (0..3000)
        .map(|i| {
            let mut fields = serde_json::Map::new();
            fields.insert("message".into(), format!("event {i} {}", "x".repeat(200)).into());
            Event::new(
                Format::Json,
                jiff::Timestamp::from_second(1_795_000_000 + i).unwrap(),
                jiff::Timestamp::UNIX_EPOCH,
                fields,
            )
        })
        .collect();
    store.insert_events(&events).await.unwrap();
    drop(store);
    let url = format!("sqlite://{}", path.display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let len = std::fs::metadata(path).unwrap().len();
    let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.seek(SeekFrom::Start(len / 2 / 4096 * 4096)).unwrap();
    file.write_all(&[0x5a; 8 * 4096]).unwrap();
    file.sync_all().unwrap();
}

#[tokio::test]
async fn the_start_check_finds_damaged_pages_and_ping_then_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rempart.db");
    damaged(&path).await;
    let store = SqliteStore::open(&path).await.unwrap();
    store.ping().await.unwrap();
    let err = store.check().await.unwrap_err();
    // `quick_check` lists what it found, or SQLite stops it with `SQLITE_CORRUPT`: damaged
    // either way.
    assert!(matches!(&err, StoreError::Damaged(_)), "{err}");
    assert!(err.to_string().contains("restore it from a backup"), "{err}");
    assert!(matches!(store.ping().await, Err(StoreError::Damaged(_))));
}

#[tokio::test]
async fn a_query_that_reads_a_damaged_page_makes_ping_fail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rempart.db");
    damaged(&path).await;
    let store = SqliteStore::open(&path).await.unwrap();
    store.ping().await.unwrap();
    let all = EventQuery {
        limit: Some(10_000),
        ..EventQuery::default()
    };
    let err = store.query_events(&all).await.unwrap_err();
    assert!(matches!(err, StoreError::Damaged(_)), "{err}");
    assert!(matches!(store.ping().await, Err(StoreError::Damaged(_))));
}
