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
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use rempart_config::Connections;

use crate::AppState;
use crate::listen::{Gate, HANDSHAKE_TIMEOUT};
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

/// Runs the rules and indicators in force over a batch and makes it durable (or hands it to
/// the cluster's bus).
async fn detect_and_commit(
    state: &AppState,
    batch: &mut Batch,
    kind: &'static str,
) -> Result<(), crate::pipeline::DeliverError> {
    crate::pipeline::deliver(batch, state, kind).await
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
/// or TLS when `tls` is given. Connections pass a [`Gate`] (the listener's cap and a cap per
/// address); a TLS handshake must finish within [`HANDSHAKE_TIMEOUT`], and a connection silent
/// for `limits.idle_secs` is closed (after what it sent is stored).
pub fn spawn_tcp(
    state: AppState,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: Connections,
    tx: mpsc::Sender<Item>,
    tracker: &TaskTracker,
    cancel: CancellationToken,
) {
    let conns = tracker.clone();
    tracker.spawn(async move {
        let local = listener.local_addr().map_or_else(|_| "?".to_owned(), |a| a.to_string());
        let kind = if tls.is_some() { "syslog-tls" } else { "syslog-tcp" };
        let gate = Gate::new(limits.max as usize, limits.max_per_peer);
        let idle = Duration::from_secs(limits.idle_secs);
        let metrics = state.metrics.clone();
        let closed = move |reason: &'static str| {
            metrics
                .connections_closed
                .get_or_create(&vec![("listener", kind.to_owned()), ("reason", reason.to_owned())])
                .inc();
        };
        let open = state
            .metrics
            .connections
            .get_or_create(&vec![("listener", kind.to_owned())])
            .clone();
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                () = cancel.cancelled() => return,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(listener = kind, error = %e, "cannot accept a syslog connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let permit = match gate.admit(peer.ip()) {
                Ok(p) => p,
                Err(refusal) => {
                    tracing::debug!(listener = kind, %peer, reason = refusal.as_str(), "syslog connection refused");
                    closed(refusal.as_str());
                    continue;
                }
            };
            let source = format!("{kind}://{local} from {peer}");
            let (state, tx, cancel, tls, closed, open) = (
                state.clone(),
                tx.clone(),
                cancel.clone(),
                tls.clone(),
                closed.clone(),
                open.clone(),
            );
            conns.spawn(async move {
                open.inc();
                let result = match tls {
                    Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => read_frames(&state, &source, s, &tx, kind, idle, cancel).await,
                        Ok(Err(e)) => Err(Ended::Failed(e)),
                        Err(_) => Err(Ended::Handshake),
                    },
                    None => read_frames(&state, &source, stream, &tx, kind, idle, cancel).await,
                };
                match result {
                    Ok(()) => {}
                    Err(Ended::Idle) => {
                        tracing::debug!(%peer, listener = kind, "syslog connection closed: silent for {idle:?}");
                        closed("idle");
                    }
                    Err(Ended::Handshake) => {
                        tracing::warn!(%peer, listener = kind, "syslog TLS handshake not finished in time");
                        closed("handshake");
                    }
                    Err(Ended::Failed(e)) => {
                        tracing::warn!(%peer, listener = kind, error = %e, "syslog connection failed");
                        closed("error");
                    }
                }
                open.dec();
                drop(permit);
            });
        }
    });
}

/// How a syslog connection ended other than by its sender closing it.
#[derive(Debug)]
enum Ended {
    /// Silent longer than the idle limit.
    Idle,
    /// The TLS handshake did not finish in time.
    Handshake,
    Failed(std::io::Error),
}

/// What the start of a TCP syslog stream holds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Frame {
    /// A message at `start..end`; `consumed` bytes make up the frame.
    Message { start: usize, end: usize, consumed: usize },
    /// The frame is not complete yet: read more.
    Incomplete,
    /// A line longer than [`MAX_MESSAGE`] with no end in sight, or an octet count above it:
    /// `skip` bytes go to quarantine (the rest of an over-long line is skipped as it arrives).
    TooLong { skip: usize, reason: &'static str },
}

/// Splits the next frame off `buf` (RFC 6587). Octet counting (`LEN SP <PRI>…`) is taken only
/// when it is unambiguous: one to six digits, a space, then the `<` of a syslog priority.
/// Anything else is a newline-terminated line, so an ordinary line that starts with a digit
/// (`2026-12-01T10:00:00Z host app: …`, a headerless message) is read as the line it is.
fn next_frame(buf: &[u8]) -> Frame {
    let digits = buf.iter().take_while(|b| b.is_ascii_digit()).count();
    if (1..=6).contains(&digits) && buf[0] != b'0' {
        match (buf.get(digits), buf.get(digits + 1)) {
            (Some(b' '), Some(b'<')) => {
                let len: usize = std::str::from_utf8(&buf[..digits])
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(usize::MAX);
                if len > MAX_MESSAGE {
                    return Frame::TooLong {
                        skip: digits + 1,
                        reason: "octet count above 64 KiB",
                    };
                }
                let start = digits + 1;
                return if buf.len() >= start + len {
                    Frame::Message {
                        start,
                        end: start + len,
                        consumed: start + len,
                    }
                } else {
                    Frame::Incomplete
                };
            }
            // Not enough bytes yet to tell the two framings apart.
            (None, _) | (Some(b' '), None) => return Frame::Incomplete,
            _ => {}
        }
    }
    match memchr::memchr(b'\n', buf) {
        Some(nl) => {
            let end = if nl > 0 && buf[nl - 1] == b'\r' { nl - 1 } else { nl };
            if end > MAX_MESSAGE {
                Frame::TooLong {
                    skip: nl + 1,
                    reason: "syslog line longer than 64 KiB",
                }
            } else {
                Frame::Message {
                    start: 0,
                    end,
                    consumed: nl + 1,
                }
            }
        }
        None if buf.len() > MAX_MESSAGE => Frame::TooLong {
            skip: buf.len(),
            reason: "syslog line longer than 64 KiB",
        },
        None => Frame::Incomplete,
    }
}

/// Input refused by the framing, kept in quarantine with where and why (its first 4 KiB).
fn rejected(source: &str, offset: u64, reason: &str, raw: &[u8], kind: &'static str) -> Item {
    (
        Decoded::Rejected(rempart_ingest::decode::Rejection {
            origin: rempart_model::Origin {
                source: source.to_owned(),
                location: Some(format!("byte {offset}")),
            },
            reason: reason.to_owned(),
            raw: raw[..raw.len().min(4096)].to_vec(),
        }),
        kind,
    )
}

/// Reads RFC 6587 frames until the peer closes, the connection fails or shutdown. Nothing
/// received is dropped: every frame is stored or quarantined, and what is left when the
/// stream ends is decoded as a last line.
async fn read_frames(
    state: &AppState,
    source: &str,
    mut stream: impl AsyncRead + Unpin,
    tx: &mpsc::Sender<Item>,
    kind: &'static str,
    idle: Duration,
    cancel: CancellationToken,
) -> Result<(), Ended> {
    // Allocated as bytes arrive: a connection that sends nothing holds almost nothing.
    let mut buf: Vec<u8> = Vec::new();
    // Bytes of the stream before `buf` (for the quarantine's location).
    let mut offset: u64 = 0;
    // Inside an over-long line: drop bytes until its newline.
    let mut skipping = false;
    loop {
        loop {
            if skipping {
                match memchr::memchr(b'\n', &buf) {
                    Some(nl) => {
                        buf.drain(..=nl);
                        offset += nl as u64 + 1;
                        skipping = false;
                    }
                    None => {
                        offset += buf.len() as u64;
                        buf.clear();
                        break;
                    }
                }
            }
            match next_frame(&buf) {
                Frame::Incomplete => break,
                Frame::Message { start, end, consumed } => {
                    for item in decode_one(state, source, &buf[start..end], kind) {
                        if tx.send(item).await.is_err() {
                            return Ok(());
                        }
                    }
                    buf.drain(..consumed);
                    offset += consumed as u64;
                }
                Frame::TooLong { skip, reason } => {
                    tracing::warn!(source, offset, reason, "syslog frame quarantined");
                    if tx
                        .send(rejected(source, offset, reason, &buf[..skip], kind))
                        .await
                        .is_err()
                    {
                        return Ok(());
                    }
                    // An over-long line without its newline yet: skip the rest as it comes.
                    skipping = !buf[..skip].ends_with(b"\n") && reason.starts_with("syslog line");
                    buf.drain(..skip);
                    offset += skip as u64;
                }
            }
        }
        if buf.is_empty() && buf.capacity() > 4 * MAX_MESSAGE {
            // After a burst of long lines: give the memory back while waiting.
            buf = Vec::new();
        }
        buf.reserve(if buf.capacity() == 0 { 2048 } else { 16 * 1024 });
        let n = tokio::select! {
            r = tokio::time::timeout(idle, stream.read_buf(&mut buf)) => match r {
                Ok(read) => read.map_err(Ended::Failed)?,
                // Silent too long: what is buffered is a frame cut short, kept below.
                Err(_) => {
                    if !buf.is_empty() && !skipping {
                        for item in decode_one(state, source, &buf, kind) {
                            if tx.send(item).await.is_err() {
                                break;
                            }
                        }
                    }
                    return Err(Ended::Idle);
                }
            },
            () = cancel.cancelled() => return Ok(()),
        };
        if n == 0 {
            // The sender closed: what is left is its last message, without a newline (or a
            // frame cut short), kept rather than lost.
            if !buf.is_empty() && !skipping {
                for item in decode_one(state, source, &buf, kind) {
                    if tx.send(item).await.is_err() {
                        return Ok(());
                    }
                }
            }
            return Ok(());
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
        let limits = cfg.connections;
        spawn_tcp(
            state.clone(),
            listener,
            None,
            limits,
            tx.clone(),
            tracker,
            cancel.clone(),
        );
    }
    if let Some(tls) = &cfg.tls {
        let acceptor = tls_acceptor(&tls.cert_file, &tls.key_file)?;
        let listener = TcpListener::bind(tls.listen)
            .await
            .map_err(|e| format!("syslog TLS `{}`: {e}", tls.listen))?;
        bound.push(("tls".to_owned(), listener.local_addr().map_err(|e| e.to_string())?));
        spawn_tcp(
            state.clone(),
            listener,
            Some(acceptor),
            cfg.connections,
            tx,
            tracker,
            cancel,
        );
    }
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{Frame, MAX_MESSAGE, next_frame};

    /// Every frame of `stream`, as the reader splits them (the rest: an incomplete tail).
    fn frames(mut stream: &[u8]) -> (Vec<Vec<u8>>, Vec<u8>) {
        let mut out = Vec::new();
        loop {
            match next_frame(stream) {
                Frame::Message { start, end, consumed } => {
                    out.push(stream[start..end].to_vec());
                    stream = &stream[consumed..];
                }
                Frame::TooLong { skip, .. } => stream = &stream[skip..],
                Frame::Incomplete => return (out, stream.to_vec()),
            }
        }
    }

    #[test]
    fn octet_counting_only_when_unambiguous() {
        let (f, rest) = frames(b"11 <13>hello w2026-12-01T10:00:00Z host app: started\n12345 items done\n");
        assert_eq!(
            f,
            vec![
                b"<13>hello w".to_vec(),
                b"2026-12-01T10:00:00Z host app: started".to_vec(),
                b"12345 items done".to_vec()
            ]
        );
        assert!(rest.is_empty());
        // Too early to tell: wait for more bytes.
        assert_eq!(next_frame(b"123"), Frame::Incomplete);
        assert_eq!(next_frame(b"12 "), Frame::Incomplete);
        assert_eq!(next_frame(b"12 <1"), Frame::Incomplete);
        // CRLF line ends are framing.
        assert_eq!(frames(b"a\r\n").0, vec![b"a".to_vec()]);
        assert!(matches!(next_frame(b"999999 <13>x"), Frame::TooLong { .. }));
        let long = vec![b'x'; MAX_MESSAGE + 2];
        assert!(matches!(next_frame(&long), Frame::TooLong { .. }));
    }

    proptest! {
        /// Newline-framed lines of any content come back whole, whatever they start with.
        #[test]
        fn lines_come_back_as_sent(lines in prop::collection::vec("[0-9]{0,4}[^\r\n]{0,80}", 1..20)) {
            // A line shaped exactly like an octet-counted frame (`12 <…`) is one, per RFC 6587.
            let counted = |l: &str| {
                let d = l.bytes().take_while(u8::is_ascii_digit).count();
                (1..=6).contains(&d) && !l.starts_with('0') && l[d..].starts_with(" <")
            };
            prop_assume!(!lines.iter().any(|l| counted(l)));
            let mut stream = Vec::new();
            for l in &lines {
                stream.extend_from_slice(l.as_bytes());
                stream.push(b'\n');
            }
            let (f, rest) = frames(&stream);
            prop_assert!(rest.is_empty());
            let expected: Vec<Vec<u8>> = lines.iter().map(|l| l.as_bytes().to_vec()).collect();
            prop_assert_eq!(f, expected);
        }

        /// Octet-counted messages of any bytes come back whole, mixed with lines.
        #[test]
        fn counted_frames_carry_any_bytes(msgs in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 1..10)) {
            let mut stream = Vec::new();
            let mut expected = Vec::new();
            for m in &msgs {
                let mut msg = b"<13>".to_vec();
                msg.extend_from_slice(m);
                stream.extend_from_slice(format!("{} ", msg.len()).as_bytes());
                stream.extend_from_slice(&msg);
                expected.push(msg);
                stream.extend_from_slice(b"plain line\n");
                expected.push(b"plain line".to_vec());
            }
            let (f, rest) = frames(&stream);
            prop_assert!(rest.is_empty());
            prop_assert_eq!(f, expected);
        }
    }
}
