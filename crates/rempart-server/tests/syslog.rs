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
    let state = AppState::new(store.clone(), ledger(&store).await, DecodeOptions::default());
    let cfg = rempart_config::Syslog {
        udp: Some("127.0.0.1:0".parse().unwrap()),
        tcp: Some("127.0.0.1:0".parse().unwrap()),
        tls: None,
        ..rempart_config::Syslog::default()
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

/// Lines that start with a digit (a timestamp, a headerless message) are lines, not octet
/// counts; an over-long line is quarantined with its reason and the lines after it are stored;
/// the last line without a newline is kept when the sender closes. Nothing sent is lost.
#[tokio::test]
async fn tcp_lines_starting_with_digits_and_over_long_lines_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("r.db")).await.unwrap());
    let state = AppState::new(store.clone(), ledger(&store).await, DecodeOptions::default());
    let cfg = rempart_config::Syslog {
        udp: None,
        tcp: Some("127.0.0.1:0".parse().unwrap()),
        tls: None,
        ..rempart_config::Syslog::default()
    };
    let tracker = TaskTracker::new();
    let cancel = CancellationToken::new();
    let bound = rempart_server::syslog::start(&state, &cfg, 100, &tracker, cancel.clone())
        .await
        .unwrap();
    let mut tcp = tokio::net::TcpStream::connect(bound[0].1).await.unwrap();
    tcp.write_all(b"2026-12-01T10:00:00Z digithost app: first\n")
        .await
        .unwrap();
    tcp.write_all(&vec![b'x'; 70 * 1024]).await.unwrap();
    tcp.write_all(b"\n<13>Dec  1 10:00:01 digithost app: after the long line\n")
        .await
        .unwrap();
    tcp.write_all(b"12345 digithost app: a count that is not one\n")
        .await
        .unwrap();
    tcp.write_all(b"<13>Dec  1 10:00:02 digithost app: last, no newline")
        .await
        .unwrap();
    tcp.shutdown().await.unwrap();
    drop(tcp);

    // Three events are syslog; the line `12345 …` is no known format, so it is quarantined
    // whole (framing no longer eats it, nor what follows).
    assert_eq!(wait_for(&*store, 3).await, 3);
    let q = EventQuery {
        text: Some("digithost".into()),
        ..EventQuery::default()
    };
    let events = store.query_events(&q).await.unwrap();
    let raw: Vec<String> = events
        .iter()
        .map(|e| serde_json::to_string(&e.fields).unwrap())
        .collect();
    for needle in ["first", "after the long line", "last, no newline"] {
        assert!(raw.iter().any(|r| r.contains(needle)), "{needle} missing: {raw:?}");
    }
    let mut quarantined = Vec::new();
    for _ in 0..100 {
        quarantined = store.list_quarantine(None, 10).await.unwrap();
        if quarantined.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(quarantined.len(), 2);
    assert!(
        quarantined
            .iter()
            .any(|q| q.reason.contains("longer than 64 KiB") && q.location.as_deref() == Some("byte 42"))
    );
    assert!(
        quarantined
            .iter()
            .any(|q| q.raw.as_slice() == b"12345 digithost app: a count that is not one")
    );

    cancel.cancel();
    tracker.close();
    tracker.wait().await;
}

#[tokio::test]
async fn tls_listener_accepts_rfc5425_octet_counted_frames() {
    use rustls_pki_types::{CertificateDer, ServerName};

    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_file = dir.path().join("cert.pem");
    let key_file = dir.path().join("key.pem");
    std::fs::write(&cert_file, cert.cert.pem()).unwrap();
    std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();

    let store = Arc::new(SqliteStore::open(&dir.path().join("r.db")).await.unwrap());
    let state = AppState::new(store.clone(), ledger(&store).await, DecodeOptions::default());
    let cfg = rempart_config::Syslog {
        udp: None,
        tcp: None,
        tls: Some(rempart_config::SyslogTls {
            listen: "127.0.0.1:0".parse().unwrap(),
            cert_file,
            key_file,
        }),
        ..rempart_config::Syslog::default()
    };
    let tracker = TaskTracker::new();
    let cancel = CancellationToken::new();
    let bound = rempart_server::syslog::start(&state, &cfg, 10, &tracker, cancel.clone())
        .await
        .unwrap();
    let addr = bound[0].1;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(cert.cert.der().to_vec())).unwrap();
    let client_cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_cfg));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    for i in 0..3 {
        let msg = format!("<165>1 2026-01-01T00:00:0{i}Z tlshost app - ID{i} - over TLS {i}");
        tls.write_all(format!("{} {msg}", msg.len()).as_bytes()).await.unwrap();
    }
    tls.flush().await.unwrap();
    assert_eq!(wait_for(&*store, 3).await, 3);
    let events = store.query_events(&EventQuery::default()).await.unwrap();
    assert!(
        events
            .iter()
            .all(|e| e.origin.source.starts_with("syslog-tls://") && e.normalized.host.as_deref() == Some("tlshost"))
    );

    // A plain-text client on the TLS port is refused and stores nothing.
    let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = plain
        .write_all(b"<13>1 2026-01-01T00:00:00Z plain app - - sneaky\n")
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(store.count_events().await.unwrap(), 3);

    cancel.cancel();
    tracker.close();
    tracker.wait().await;
}

/// A ledger with fresh keys on the test's store.
async fn ledger(store: &Arc<SqliteStore>) -> rempart_audit::Ledger {
    rempart_audit::Ledger::open_with_fresh_keys(store.clone())
        .await
        .unwrap()
}

/// One address may hold only its share of connections (the rest are closed at once), a
/// connection silent for the idle limit is closed, and what it sent before falling silent,
/// its last line without a newline included, is stored. Another address is served throughout.
#[tokio::test]
async fn tcp_connections_are_capped_per_address_and_closed_when_silent() {
    use tokio::io::AsyncReadExt;

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("r.db")).await.unwrap());
    let state = AppState::new(store.clone(), ledger(&store).await, DecodeOptions::default());
    let cfg = rempart_config::Syslog {
        tcp: Some("127.0.0.1:0".parse().unwrap()),
        connections: rempart_config::Connections {
            max: 64,
            max_per_peer: 8,
            idle_secs: 2,
            body_secs: 0,
        },
        ..rempart_config::Syslog::default()
    };
    let tracker = TaskTracker::new();
    let cancel = CancellationToken::new();
    let bound = rempart_server::syslog::start(&state, &cfg, 100, &tracker, cancel.clone())
        .await
        .unwrap();
    let addr = bound[0].1;

    // 40 silent connections from 127.0.0.1: the kernel completes each handshake, the server
    // keeps 8 and closes the other 32 at once.
    let mut silent = Vec::new();
    for _ in 0..40 {
        silent.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    // All read at once, well within the idle limit.
    let reads = silent.iter_mut().map(|s| async move {
        let mut b = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_millis(500), s.read(&mut b)).await,
            Ok(Ok(0) | Err(_))
        )
    });
    let closed_at_once = futures_util::future::join_all(reads)
        .await
        .into_iter()
        .filter(|c| *c)
        .count();
    assert_eq!(closed_at_once, 32, "the per-address cap is 8 of 40");

    // Another address is not held back by the first one's connections.
    let other = tokio::net::TcpSocket::new_v4().unwrap();
    other.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut other = other.connect(addr).await.unwrap();
    other
        .write_all(b"<13>Dec  1 10:00:00 otherhost app: served beside the silent ones\n<13>Dec  1 10:00:01 otherhost app: then silent, no newline")
        .await
        .unwrap();

    // The idle limit closes every silent connection, the writer's too, and keeps its last line.
    for s in silent.iter_mut().chain(std::iter::once(&mut other)) {
        let mut b = [0u8; 1];
        let r = tokio::time::timeout(Duration::from_secs(10), s.read(&mut b)).await;
        assert!(matches!(r, Ok(Ok(0) | Err(_))), "a silent connection stays open: {r:?}");
    }
    assert_eq!(wait_for(&*store, 2).await, 2);
    let events = store
        .query_events(&EventQuery {
            text: Some("otherhost".into()),
            ..EventQuery::default()
        })
        .await
        .unwrap();
    let raw = serde_json::to_string(&events.iter().map(|e| &e.fields).collect::<Vec<_>>()).unwrap();
    assert!(raw.contains("then silent, no newline"), "{raw}");
    let metrics = state.metrics.render();
    assert!(
        metrics.contains(r#"rempart_connections_closed_total{listener="syslog-tcp",reason="peer"} 32"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"rempart_connections_closed_total{listener="syslog-tcp",reason="idle"} 9"#),
        "{metrics}"
    );

    cancel.cancel();
    tracker.close();
    tracker.wait().await;
}
