//! Syslog listeners: UDP, TCP (octet-counted and newline framing, RFC 6587), and TCP over TLS
//! (RFC 5425) when configured.
//!
//! Messages are decoded as they arrive and written in batches: a batch is committed when it
//! reaches the batch size or 200 ms after its first message, and on shutdown. Syslog has no
//! application-level acknowledgement; a TCP sender's backpressure is the store's pace.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use rempart_ingest::{Decoded, StreamDecoder};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::AppState;
use crate::pipeline::Batch;

/// Largest syslog message accepted over TCP (RFC 5425 requires at least 2 KiB; 64 KiB covers
/// Windows events forwarded as syslog).
const MAX_MESSAGE: usize = 64 * 1024;
const FLUSH_AFTER: Duration = Duration::from_millis(200);

/// One decoded message on its way to the batch writer.
type Item = (Decoded, &'static str);

/// Starts the batch writer; returns the sender listeners feed.
pub fn start_writer(
    state: AppState,
    batch_size: usize,
    tracker: &TaskTracker,
    cancel: CancellationToken,
) -> mpsc::Sender<Item> {
    let (tx, mut rx) = mpsc::channel::<Item>(batch_size.max(1) * 4);
    tracker.spawn(async move {
        let mut batch = Batch::default();
        let mut kind: &'static str = "syslog";
        loop {
            let deadline = tokio::time::sleep(FLUSH_AFTER);
            tokio::pin!(deadline);
            let more = tokio::select! {
                item = rx.recv() => match item {
                    Some((d, k)) => { kind = k; batch.push(d); true }
                    None => false,
                },
                () = &mut deadline, if !batch.is_empty() => true,
                () = cancel.cancelled() => false,
            };
            if !batch.is_empty() && (!more || batch.len() >= batch_size || deadline.is_elapsed()) {
                if let Err(e) = detect_and_commit(&state, &mut batch, kind).await {
                    tracing::error!(error = %e, events = batch.events.len(), "syslog batch not stored");
                }
                batch = Batch::default();
            }
            if !more {
                // Drain what is already queued, then stop.
                while let Ok((d, _)) = rx.try_recv() {
                    batch.push(d);
                }
                if !batch.is_empty()
                    && let Err(e) = detect_and_commit(&state, &mut batch, kind).await
                {
                    tracing::error!(error = %e, "final syslog batch not stored");
                }
                return;
            }
        }
    });
    tx
}

/// Runs the rules and indicators in force over a batch, then makes it durable.
async fn detect_and_commit(
    state: &AppState,
    batch: &mut Batch,
    kind: &'static str,
) -> Result<(), rempart_store::StoreError> {
    if let Some(rules) = state.rules.current() {
        batch.detect(&rules);
    }
    if let Some(intel) = state.intel.current() {
        batch.match_intel(&intel);
    }
    if let Some(anomaly) = &state.anomaly {
        batch.baselines(anomaly);
    }
    batch
        .commit(
            &*state.store,
            &state.ledger,
            &state.metrics,
            kind,
            state.incidents.as_ref(),
        )
        .await
}

fn decode_one(state: &AppState, source: &str, line: &[u8], kind: &'static str) -> Vec<Item> {
    let mut items = Vec::new();
    let mut decoder = StreamDecoder::new(source, &state.decode, Timestamp::now());
    decoder.line(line, &mut |d| items.push((d, kind)));
    decoder.finish(&mut |d| items.push((d, kind)));
    items
}

/// Receives syslog datagrams on `socket` until cancelled.
pub fn spawn_udp(
    state: AppState,
    socket: UdpSocket,
    tx: mpsc::Sender<Item>,
    tracker: &TaskTracker,
    cancel: CancellationToken,
) {
    tracker.spawn(async move {
        let local = socket.local_addr().map_or_else(|_| "?".to_owned(), |a| a.to_string());
        let source = format!("syslog-udp://{local}");
        let mut buf = vec![0u8; MAX_MESSAGE];
        loop {
            let received = tokio::select! {
                r = socket.recv_from(&mut buf) => r,
                () = cancel.cancelled() => return,
            };
            let Ok((n, _peer)) = received else { continue };
            // One datagram is one message; trailing newlines are framing, not content.
            let msg = buf[..n].strip_suffix(b"\n").unwrap_or(&buf[..n]);
            for item in decode_one(&state, &source, msg, "syslog-udp") {
                if tx.send(item).await.is_err() {
                    return;
                }
            }
        }
    });
}

/// Accepts syslog connections on `listener` until cancelled; each connection is plain TCP,
/// or TLS when `tls` is given.
pub fn spawn_tcp(
    state: AppState,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    tx: mpsc::Sender<Item>,
    tracker: &TaskTracker,
    cancel: CancellationToken,
) {
    let conns = tracker.clone();
    tracker.spawn(async move {
        let local = listener.local_addr().map_or_else(|_| "?".to_owned(), |a| a.to_string());
        let (scheme, kind) = if tls.is_some() {
            ("syslog-tls", "syslog-tls")
        } else {
            ("syslog-tcp", "syslog-tcp")
        };
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                () = cancel.cancelled() => return,
            };
            let Ok((stream, peer)) = accepted else { continue };
            let source = format!("{scheme}://{local} from {peer}");
            let (state, tx, cancel, tls) = (state.clone(), tx.clone(), cancel.clone(), tls.clone());
            conns.spawn(async move {
                let result = match tls {
                    Some(acceptor) => match acceptor.accept(stream).await {
                        Ok(s) => read_frames(&state, &source, s, &tx, kind, cancel).await,
                        Err(e) => Err(e),
                    },
                    None => read_frames(&state, &source, stream, &tx, kind, cancel).await,
                };
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "syslog connection ended");
                }
            });
        }
    });
}

/// Reads RFC 6587 frames: octet-counted (`LEN SP MSG`) when a frame starts with a digit,
/// newline-terminated otherwise.
async fn read_frames(
    state: &AppState,
    source: &str,
    stream: impl AsyncRead + Unpin,
    tx: &mpsc::Sender<Item>,
    kind: &'static str,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    let mut frame = Vec::with_capacity(1024);
    loop {
        frame.clear();
        let first = tokio::select! {
            b = reader.fill_buf() => b?.first().copied(),
            () = cancel.cancelled() => return Ok(()),
        };
        let Some(first) = first else { return Ok(()) };
        if first.is_ascii_digit() {
            let mut len_text = Vec::new();
            (&mut reader).take(8).read_until(b' ', &mut len_text).await?;
            let len: usize = std::str::from_utf8(len_text.trim_ascii_end())
                .ok()
                .and_then(|s| s.parse().ok())
                .filter(|&l| l <= MAX_MESSAGE)
                .ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "octet count is not a number within 64 KiB",
                    )
                })?;
            frame.resize(len, 0);
            reader.read_exact(&mut frame).await?;
        } else {
            (&mut reader)
                .take(MAX_MESSAGE as u64 + 1)
                .read_until(b'\n', &mut frame)
                .await?;
            if frame.len() > MAX_MESSAGE {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "syslog line longer than 64 KiB without a newline",
                ));
            }
            if frame.last() == Some(&b'\n') {
                frame.pop();
            }
        }
        for item in decode_one(state, source, &frame, kind) {
            if tx.send(item).await.is_err() {
                return Ok(());
            }
        }
    }
}

/// Builds a TLS acceptor from PEM certificate chain and key files.
pub fn tls_acceptor(
    cert_file: &std::path::Path,
    key_file: &std::path::Path,
) -> Result<tokio_rustls::TlsAcceptor, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| format!("`{}`: {e}", cert_file.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("`{}`: {e}", cert_file.display()))?;
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| format!("`{}`: {e}", key_file.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("TLS certificate or key rejected: {e}"))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Binds the listeners a configuration asks for and starts them. Returns the bound addresses
/// (useful when a port was 0).
pub async fn start(
    state: &AppState,
    cfg: &rempart_config::Syslog,
    batch_size: usize,
    tracker: &TaskTracker,
    cancel: CancellationToken,
) -> Result<Vec<(String, SocketAddr)>, String> {
    if cfg.udp.is_none() && cfg.tcp.is_none() && cfg.tls.is_none() {
        return Ok(Vec::new());
    }
    let tx = start_writer(state.clone(), batch_size, tracker, cancel.clone());
    let mut bound = Vec::new();
    if let Some(addr) = cfg.udp {
        let socket = UdpSocket::bind(addr)
            .await
            .map_err(|e| format!("syslog UDP `{addr}`: {e}"))?;
        bound.push(("udp".to_owned(), socket.local_addr().map_err(|e| e.to_string())?));
        spawn_udp(state.clone(), socket, tx.clone(), tracker, cancel.clone());
    }
    if let Some(addr) = cfg.tcp {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| format!("syslog TCP `{addr}`: {e}"))?;
        bound.push(("tcp".to_owned(), listener.local_addr().map_err(|e| e.to_string())?));
        spawn_tcp(state.clone(), listener, None, tx.clone(), tracker, cancel.clone());
    }
    if let Some(tls) = &cfg.tls {
        let acceptor = tls_acceptor(&tls.cert_file, &tls.key_file)?;
        let listener = TcpListener::bind(tls.listen)
            .await
            .map_err(|e| format!("syslog TLS `{}`: {e}", tls.listen))?;
        bound.push(("tls".to_owned(), listener.local_addr().map_err(|e| e.to_string())?));
        spawn_tcp(state.clone(), listener, Some(acceptor), tx, tracker, cancel);
    }
    Ok(bound)
}
