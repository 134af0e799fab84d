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

/// After a sweep, the subject's name is in none of the database's files: not in a table, not in
/// a free page, not in the write-ahead log.
#[tokio::test]
async fn a_sweep_leaves_no_copy_on_disk() {
    use rempart_store::{ErasureStore, Store, Sweep};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rempart.db");
    let store = SqliteStore::open(&path).await.expect("open");
    let events: Vec<rempart_model::Event> = (0..500)
        .map(|i| {
            let mut fields = serde_json::Map::new();
            let who = if i % 5 == 0 { "zoltan.kertesz" } else { "someone.else" };
            fields.insert("TargetUserName".into(), who.into());
            fields.insert(
                "Message".into(),
                format!("logon {i} by {who} from the east wing").into(),
            );
            let mut e = rempart_model::Event::new(
                rempart_model::Format::Json,
                jiff::Timestamp::UNIX_EPOCH,
                jiff::Timestamp::UNIX_EPOCH,
                fields,
            );
            e.normalized.user = Some(who.to_owned());
            e
        })
        .collect();
    store.insert_events(&events).await.expect("insert");
    let on_disk = |needle: &[u8]| {
        std::fs::read_dir(dir.path())
            .expect("list")
            .map(|f| std::fs::read(f.expect("entry").path()).expect("read"))
            .any(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
    };
    assert!(on_disk(b"zoltan.kertesz"), "the fixture is on disk before the sweep");
    let needles = ["zoltan.kertesz".to_owned()];
    let rewrite = |s: &mut String| {
        let n = s.matches("zoltan.kertesz").count();
        if n > 0 {
            *s = s.replace("zoltan.kertesz", "erased-user-0");
        }
        n
    };
    let report = store
        .sweep(&Sweep {
            needles: &needles,
            rewrite: &rewrite,
            dry_run: false,
        })
        .await
        .expect("sweep");
    assert_eq!(report.rows["events"], 100);
    assert_eq!(report.occurrences, 300);
    assert!(report.purged);
    assert!(
        !on_disk(b"zoltan.kertesz"),
        "no copy left in the database, its free pages or its log"
    );
    assert!(on_disk(b"someone.else"));
    assert_eq!(store.count_events().await.expect("count"), 500);
}
