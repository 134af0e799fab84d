//! The embedded store against the conformance suite.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

use rempart_store::{SqliteStore, store_conformance};

struct Fixture {
    store: SqliteStore,
    _dir: tempfile::TempDir,
}

async fn fresh() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("rempart.db")).await.expect("open");
    Fixture { store, _dir: dir }
}

store_conformance!(fresh());

#[tokio::test]
async fn reopening_keeps_data_and_does_not_rerun_migrations() {
    use rempart_store::Store;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rempart.db");
    {
        let store = SqliteStore::open(&path).await.expect("open");
        let e = rempart_model::Event::new(
            rempart_model::Format::Json,
            jiff::Timestamp::UNIX_EPOCH,
            jiff::Timestamp::UNIX_EPOCH,
            serde_json::Map::new(),
        );
        store.insert_events(&[e]).await.expect("insert");
    }
    let store = SqliteStore::open(&path).await.expect("reopen");
    assert_eq!(store.count_events().await.expect("count"), 1);
}
