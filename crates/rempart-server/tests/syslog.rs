//! Syslog listeners over real sockets on loopback.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

use std::sync::Arc;
use std::time::Duration;

use rempart_ingest::DecodeOptions;
use rempart_server::AppState;
use rempart_store::{EventQuery, FieldFilter, SqliteStore, Store};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

async fn wait_for(store: &dyn Store, n: u64) -> u64 {
    for _ in 0..100 {
        let c = store.count_events().await.unwrap();
        if c >= n {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    store.count_events().await.unwrap()
}

#[tokio::test]
async fn udp_and_tcp_with_both_framings_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("r.db")).await.unwrap());
    let state = AppState::new(store.clone(), DecodeOptions::default());
    let cfg = rempart_config::Syslog {
        udp: Some("127.0.0.1:0".parse().unwrap()),
        tcp: Some("127.0.0.1:0".parse().unwrap()),
        tls: None,
    };
    let tracker = TaskTracker::new();
    let cancel = CancellationToken::new();
    let bound = rempart_server::syslog::start(&state, &cfg, 100, &tracker, cancel.clone())
        .await
        .unwrap();
    let udp_addr = bound.iter().find(|(k, _)| k == "udp").unwrap().1;
    let tcp_addr = bound.iter().find(|(k, _)| k == "tcp").unwrap().1;

    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(
        b"<34>Oct 11 22:14:15 udphost su: 'su root' failed for lonvick",
        udp_addr,
    )
    .await
    .unwrap();

    let mut tcp = tokio::net::TcpStream::connect(tcp_addr).await.unwrap();
    // Newline framing, then octet counting (RFC 6587), with a message holding a newline.
    tcp.write_all(b"<13>1 2026-01-01T00:00:00Z tcphost app 1 - - newline framed\n")
        .await
        .unwrap();
    let msg = b"<13>1 2026-01-01T00:00:01Z tcphost app 2 - - counted\nwith a newline inside";
    tcp.write_all(format!("{} ", msg.len()).as_bytes()).await.unwrap();
    tcp.write_all(msg).await.unwrap();
    tcp.write_all(b"<13>CEF:0|v|p|1|s|blocked|5|src=10.9.9.9 dst=10.0.0.1\n")
        .await
        .unwrap();
    tcp.flush().await.unwrap();

    assert_eq!(wait_for(&*store, 4).await, 4);
    let q = EventQuery {
        filters: vec![FieldFilter::parse("host=tcphost").unwrap()],
        ..EventQuery::default()
    };
    let events = store.query_events(&q).await.unwrap();
    let messages: Vec<_> = events.iter().filter_map(|e| e.normalized.message.clone()).collect();
    assert!(
        messages.contains(&"counted\nwith a newline inside".to_owned()),
        "{messages:?}"
    );
    assert!(events.iter().all(|e| e.origin.source.starts_with("syslog-tcp://")));
    let cef = store
        .query_events(&EventQuery {
            filters: vec![FieldFilter::parse("format=cef").unwrap()],
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(cef[0].normalized.src_ip, "10.9.9.9".parse().ok());

    cancel.cancel();
    tracker.close();
    tracker.wait().await;
}
