//! The API's listener: HTTP/1.1 over TCP or TLS under limits that no client can outwait.
//!
//! Without limits, a client that opens connections and never sends a byte, or sends a body
//! one byte at a time, holds a file descriptor and a task each until the server runs out of
//! both and stops answering everyone. Here every connection passes a [`Gate`] (a cap on the
//! listener's open connections, and a cap per address so that one client cannot take them all)
//! and then runs under three clocks:
//!
//! - the TLS handshake must finish within [`HANDSHAKE_TIMEOUT`];
//! - a request's headers must arrive within `idle_secs`, which is also the longest a
//!   kept-alive connection may sit between requests (hyper's header-read timer, which runs from
//!   the moment the server waits for a request);
//! - a request body may pause at most `body_secs` between two reads, and must arrive whole
//!   within twice that plus its length at [`MIN_BODY_RATE`] ([`Paced`]).
//!
//! The syslog listeners use the same [`Gate`].

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::ConnectInfo;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use rempart_config::Connections;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use crate::metrics::Metrics;
use crate::tls::{ClientCert, Peer, Tls};

/// A TLS handshake not finished in this time is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The slowest a request body may arrive on average, in bytes per second: a body of `n` bytes
/// (the largest allowed when its length is not announced) must be received within
/// `2 × body_secs + n / MIN_BODY_RATE` seconds.
pub const MIN_BODY_RATE: u64 = 64 * 1024;

/// Why a connection was closed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The listener holds its cap of connections.
    Full,
    /// This address holds its cap of connections.
    Peer,
}

impl Refusal {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Full => "full",
            Refusal::Peer => "peer",
        }
    }
}

/// Counts a listener's open connections, in all and per address, and admits a new one only
/// under both caps.
#[derive(Debug)]
pub struct Gate {
    max: usize,
    max_per_peer: u32,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    peers: HashMap<IpAddr, u32>,
}

impl Gate {
    pub fn new(max: usize, max_per_peer: u32) -> Arc<Gate> {
        Arc::new(Gate {
            max,
            max_per_peer,
            open: Mutex::new(Open::default()),
        })
    }

    /// Admits a connection from `ip`, or says which cap it would exceed. The permit counts
    /// the connection until it is dropped.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Permit, Refusal> {
        let key = peer_key(ip);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.total >= self.max {
            return Err(Refusal::Full);
        }
        let n = open.peers.entry(key).or_insert(0);
        if *n >= self.max_per_peer {
            return Err(Refusal::Peer);
        }
        *n += 1;
        open.total += 1;
        Ok(Permit {
            gate: Arc::clone(self),
            key,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(PoisonError::into_inner).total
    }
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct Permit {
    gate: Arc<Gate>,
    key: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = self.gate.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.peers.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.peers.remove(&self.key);
            }
        }
    }
}

/// The address a per-peer cap counts against: an IPv4 address (IPv4-mapped IPv6 included) or
/// an IPv6 /64, the smallest network one IPv6 host is usually given.
pub fn peer_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
    }
}

/// What the API's listener needs besides the routes.
#[derive(Debug, Clone)]
pub struct Listen {
    /// TLS, when configured.
    pub tls: Option<Arc<Tls>>,
    /// The caps and timeouts.
    pub limits: Connections,
    /// Largest request body; it sets the time a body of unknown length may take.
    pub max_body_bytes: usize,
}

impl Listen {
    /// Plain HTTP with the default limits.
    pub fn plain(max_body_bytes: usize) -> Listen {
        Listen {
            tls: None,
            limits: Connections::HTTP,
            max_body_bytes,
        }
    }
}

/// Serves `app` on `tcp` until `shutdown` completes, then lets the requests in flight finish
/// (each connection closes after its current request).
pub async fn serve(
    tcp: TcpListener,
    app: Router,
    listen: Listen,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = if listen.tls.is_some() { "https" } else { "http" };
    let gate = Gate::new(listen.limits.max as usize, listen.limits.max_per_peer);
    let (closing, close) = watch::channel(false);
    let conn = Arc::new(Conn {
        app,
        tls: listen.tls,
        idle: Duration::from_secs(listen.limits.idle_secs),
        body: Duration::from_secs(listen.limits.body_secs),
        max_body: listen.max_body_bytes as u64,
        metrics,
        listener,
    });
    let mut conns = JoinSet::new();
    let mut complained = None::<Instant>;
    tokio::pin!(shutdown);
    loop {
        let (stream, addr) = tokio::select! {
            accepted = tcp.accept() => match accepted {
                Ok(a) => a,
                // Out of file descriptors and the like: say so now and then, and do not spin.
                Err(e) => {
                    if complained.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                        tracing::warn!(error = %e, "cannot accept a connection");
                        complained = Some(Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            () = &mut shutdown => break,
        };
        let permit = match gate.admit(addr.ip()) {
            Ok(p) => p,
            Err(refusal) => {
                conn.closed(refusal.as_str());
                drop(stream);
                continue;
            }
        };
        conns.spawn(Arc::clone(&conn).run(stream, addr, permit, close.clone()));
    }
    drop(tcp);
    let _ = closing.send(true);
    while conns.join_next().await.is_some() {}
    Ok(())
}

/// What every connection of one listener shares.
struct Conn {
    app: Router,
    tls: Option<Arc<Tls>>,
    idle: Duration,
    body: Duration,
    max_body: u64,
    metrics: Arc<Metrics>,
    listener: &'static str,
}

impl Conn {
    fn closed(&self, reason: &'static str) {
        self.metrics
            .connections_closed
            .get_or_create(&vec![
                ("listener", self.listener.to_owned()),
                ("reason", reason.to_owned()),
            ])
            .inc();
    }

    async fn run(self: Arc<Self>, stream: TcpStream, addr: SocketAddr, permit: Permit, close: watch::Receiver<bool>) {
        let gauge = self
            .metrics
            .connections
            .get_or_create(&vec![("listener", self.listener.to_owned())])
            .clone();
        gauge.inc();
        let _ = stream.set_nodelay(true);
        match &self.tls {
            None => {
                let peer = Peer {
                    addr,
                    cert: None,
                    tls: false,
                };
                self.http(stream, peer, close).await;
            }
            Some(tls) => {
                let acceptor = tokio_rustls::TlsAcceptor::from(tls.current());
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => {
                        let cert = stream
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|c| c.first())
                            .map(|leaf| Arc::new(ClientCert::from_der(leaf)));
                        let peer = Peer { addr, cert, tls: true };
                        self.http(stream, peer, close).await;
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(%addr, error = %e, "TLS handshake failed");
                        self.closed("handshake");
                    }
                    Err(_) => {
                        tracing::debug!(%addr, "TLS handshake timed out");
                        self.closed("handshake");
                    }
                }
            }
        }
        gauge.dec();
        drop(permit);
    }

    /// Serves HTTP/1.1 requests on one connection until the client closes it, a clock runs
    /// out, or the server shuts down.
    async fn http<I>(&self, io: I, peer: Peer, mut close: watch::Receiver<bool>)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (app, idle, max_body) = (self.app.clone(), self.body, self.max_body);
        let addr = peer.addr;
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            // A request without a body (most GETs) needs no clocks: no timers allocated for it.
            let clock = BodyClock::default();
            let mut req = req.map(|body| {
                if body.is_end_stream() {
                    Body::new(body)
                } else {
                    Body::new(Paced::new(body, idle, max_body, clock.clone()))
                }
            });
            req.extensions_mut().insert(clock);
            req.extensions_mut().insert(ConnectInfo(peer.clone()));
            app.clone().oneshot(req)
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(self.idle)
            .keep_alive(true)
            .serve_connection(TokioIo::new(io), service);
        tokio::pin!(conn);
        let result = tokio::select! {
            r = conn.as_mut() => r,
            () = closing(&mut close) => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(e) = result {
            if e.is_timeout() {
                self.closed("idle");
            } else {
                tracing::debug!(%addr, error = %e, "connection ended with an error");
                self.closed("error");
            }
        }
    }
}

/// Completes when the server starts shutting down (or is gone).
async fn closing(close: &mut watch::Receiver<bool>) {
    while !*close.borrow_and_update() {
        if close.changed().await.is_err() {
            return;
        }
    }
}

/// Set when a request's body clock ran out, so that the answer says so (408) whatever the
/// handler made of the cut-off body; in the request's extensions.
#[derive(Debug, Clone, Default)]
pub struct BodyClock(Arc<std::sync::atomic::AtomicBool>);

impl BodyClock {
    /// Whether the body was cut off for its pace.
    pub fn ran_out(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn expire(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Why a request body was cut off.
#[derive(Debug, thiserror::Error)]
pub enum BodyTimeout {
    #[error("the request body paused for more than {0:?}")]
    Paused(Duration),
    #[error("the request body arrived slower than {MIN_BODY_RATE} bytes per second")]
    Slow,
}

/// A request body with two clocks: the longest pause between two reads, and a deadline for
/// the whole body set by its announced length (or the largest allowed) at [`MIN_BODY_RATE`].
#[derive(Debug)]
pub struct Paced {
    body: Incoming,
    pause: Duration,
    gap: Pin<Box<Sleep>>,
    deadline: Pin<Box<Sleep>>,
    clock: BodyClock,
}

impl Paced {
    pub fn new(body: Incoming, pause: Duration, max_body: u64, clock: BodyClock) -> Paced {
        let expected = body.size_hint().exact().unwrap_or(max_body).min(max_body);
        let now = Instant::now();
        Paced {
            body,
            pause,
            clock,
            gap: Box::pin(tokio::time::sleep_until(now + pause)),
            deadline: Box::pin(tokio::time::sleep_until(
                now + 2 * pause + Duration::from_secs(expected / MIN_BODY_RATE),
            )),
        }
    }
}

impl HttpBody for Paced {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            if frame.is_some() {
                let next = Instant::now() + this.pause;
                this.gap.as_mut().reset(next);
            }
            return Poll::Ready(frame.map(|f| f.map_err(axum::Error::new)));
        }
        if this.gap.as_mut().poll(cx).is_ready() {
            this.clock.expire();
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimeout::Paused(this.pause)))));
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.clock.expire();
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimeout::Slow))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn ipv6_peers_count_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(peer_key(a), peer_key(b));
        assert_ne!(peer_key(a), peer_key(c));
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped());
        assert_eq!(peer_key(mapped), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)));
    }

    proptest! {
        /// Whatever the order of arrivals and departures, the gate never holds more than its
        /// caps, refuses only at a cap, and counts nothing once every permit is dropped.
        #[test]
        fn the_gate_holds_its_caps(steps in prop::collection::vec((0u8..6, any::<bool>()), 1..400), max in 1usize..20, per_peer in 1u32..8) {
            let gate = Gate::new(max, per_peer);
            let mut held: Vec<Vec<Permit>> = (0..6).map(|_| Vec::new()).collect();
            for (peer, arrive) in steps {
                let ip = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, u16::from(peer), 0, 0, 0, 1));
                let i = usize::from(peer);
                if arrive {
                    let total: usize = held.iter().map(Vec::len).sum();
                    match gate.admit(ip) {
                        Ok(p) => {
                            prop_assert!(total < max && held[i].len() < per_peer as usize);
                            held[i].push(p);
                        }
                        Err(Refusal::Full) => prop_assert_eq!(total, max),
                        Err(Refusal::Peer) => prop_assert_eq!(held[i].len(), per_peer as usize),
                    }
                } else {
                    held[i].pop();
                }
                prop_assert_eq!(gate.open(), held.iter().map(Vec::len).sum::<usize>());
            }
            held.clear();
            prop_assert_eq!(gate.open(), 0);
            prop_assert!(gate.open.lock().unwrap().peers.is_empty());
        }
    }
}
