//! The HTTP accept loop: what `axum::serve` did, plus the limits it cannot set. A
//! client that sends its headers one byte at a time, keeps a connection open without
//! a request, or trickles a body must not hold a connection (and its file descriptor)
//! for ever, and when the connections are all taken a new one must hear so at once
//! rather than hang in the backlog (issue 15, item 8).
//!
//! - the head of each request must arrive within `server.header_timeout` (hyper's
//!   header read timer, which also runs while a kept-alive connection waits);
//! - a kept-alive connection with no request in flight and no byte read or written for
//!   `server.keepalive_timeout` is closed (after a response it is still writing);
//! - a request body must arrive whole within `server.body_timeout` (a total deadline,
//!   not tower-http's per-frame one, which a byte every few seconds would defeat);
//! - at most `server.max_connections` are open; past that a new connection gets a
//!   503 written straight to the socket and is closed.
//!
//! Each request carries its client's address ([`ClientAddr`]) for the per-client
//! limits: the connection's peer, unless the peer is one of `server.trusted_proxies`
//! (a load balancer in front of several nodes); then the nearest address in
//! `X-Forwarded-For` that is not a trusted proxy, read from the right, since a client
//! can write anything to the left of what the balancer appends.
//!
//! Shutdown: stop accepting, ask every connection to finish its request and close,
//! then wait (bounded) for all of them.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use hyper::body::Frame;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

use crate::config::ServerConfig;
use crate::shutdown::Shutdown;

/// How long shutdown waits for open connections to finish their requests.
const DRAIN: Duration = Duration::from_secs(30);

/// The answer to a connection past the cap: short enough to write without waiting.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n\
Content-Length: 33\r\nRetry-After: 1\r\nConnection: close\r\n\r\ntoo many connections, try again\r\n";

/// The limits, taken from `[server]`, and the proxies whose forwarded address is
/// believed.
#[derive(Clone, Debug)]
pub struct Limits {
    pub header_timeout: Duration,
    pub keepalive_timeout: Duration,
    pub body_timeout: Duration,
    pub max_connections: usize,
    pub trusted_proxies: Arc<[ipnet::IpNet]>,
}

impl Limits {
    pub fn from_config(c: &ServerConfig) -> Limits {
        Limits {
            header_timeout: c.header_timeout,
            keepalive_timeout: c.keepalive_timeout,
            body_timeout: c.body_timeout,
            max_connections: c.max_connections,
            trusted_proxies: c.trusted_proxies.clone().into(),
        }
    }
}

/// The client a request came from, as the per-client limits count it (see the module
/// documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// The client of a request whose connection came from `peer`: `peer` itself unless it
/// is a trusted proxy, else the nearest untrusted address of `forwarded_for` (the
/// `X-Forwarded-For` values in order), read from the right. An entry that is not an
/// address ends the walk at the last address believed.
pub fn client_address<'a>(
    peer: IpAddr,
    forwarded_for: impl DoubleEndedIterator<Item = &'a str>,
    trusted: &[ipnet::IpNet],
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = peer;
    if !is_trusted(&client) {
        return client;
    }
    for entry in forwarded_for.rev() {
        match entry.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(&ip) {
                    return ip;
                }
            }
            Err(_) => return client,
        }
    }
    client
}

/// Serves `router` on `listener` until `shutdown`, within `limits`.
pub async fn run(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    mut shutdown: Shutdown,
) -> std::io::Result<()> {
    let router = router.layer(axum::middleware::from_fn_with_state(
        limits.body_timeout,
        whole_body_within,
    ));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    loop {
        let Some((stream, peer)) = shutdown.accept(&listener, "http").await else {
            break;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tokio::spawn(refuse(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (router, stop, limits) = (router.clone(), stop_rx.clone(), limits.clone());
        tokio::spawn(async move {
            connection(stream, peer, router, limits, stop).await;
            drop(slot);
        });
    }
    let _ = stop_tx.send(true);
    // Every connection holds a slot; all slots back means all connections closed.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(DRAIN, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(
            open = limits.max_connections - slots.available_permits(),
            "http: connections still open after {DRAIN:?}; closing them"
        );
    }
    Ok(())
}

/// A connection past the cap: a 503 if the socket takes it at once, then close.
async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(REFUSAL).await?;
        stream.shutdown().await
    })
    .await;
}

/// Serves one connection until the client closes it, a limit ends it or shutdown.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let start = Instant::now();
    let activity = Arc::new(AtomicU64::new(0));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let io = TokioIo::new(Watched {
        inner: stream,
        start,
        activity: activity.clone(),
    });
    let service = {
        let in_flight = in_flight.clone();
        let trusted = limits.trusted_proxies.clone();
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            let forwarded = request
                .headers()
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','));
            let client = client_address(peer.ip(), forwarded, &trusted);
            request.extensions_mut().insert(ConnectInfo(peer));
            request.extensions_mut().insert(ClientAddr(client));
            let guard = InFlight::enter(&in_flight);
            let router = router.clone();
            async move {
                let response = router.oneshot(request.map(Body::new)).await;
                drop(guard);
                response
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    // Once closing has begun (idle or shutdown), the connection gets this long to
    // finish what it is writing before it is dropped.
    let mut hard_stop: Option<tokio::time::Instant> = None;
    loop {
        let idle_check = tokio::time::Instant::from_std(
            start
                + Duration::from_millis(activity.load(Ordering::Relaxed))
                + limits.keepalive_timeout,
        );
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "http connection ended");
                }
                return;
            }
            _ = stop.changed(), if hard_stop.is_none() => {
                conn.as_mut().graceful_shutdown();
                hard_stop = Some(tokio::time::Instant::now() + DRAIN);
            }
            _ = tokio::time::sleep_until(idle_check), if hard_stop.is_none() => {
                let idle = start.elapsed()
                    .saturating_sub(Duration::from_millis(activity.load(Ordering::Relaxed)));
                if in_flight.load(Ordering::Relaxed) == 0 && idle >= limits.keepalive_timeout {
                    conn.as_mut().graceful_shutdown();
                    hard_stop = Some(tokio::time::Instant::now() + limits.body_timeout);
                }
            }
            _ = tokio::time::sleep_until(hard_stop.unwrap_or_else(tokio::time::Instant::now)),
                if hard_stop.is_some() => {
                tracing::debug!(%peer, "http connection dropped: it did not finish closing");
                return;
            }
        }
    }
}

/// Counts a request in flight until dropped (also when its future is dropped).
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn enter(count: &Arc<AtomicUsize>) -> InFlight {
        count.fetch_add(1, Ordering::Relaxed);
        InFlight(count.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A socket that notes when it last moved a byte (milliseconds since `start`).
struct Watched {
    inner: TcpStream,
    start: Instant,
    activity: Arc<AtomicU64>,
}

impl Watched {
    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.activity.store(ms, Ordering::Relaxed);
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.touch();
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Middleware: the request's body ends in an error once `limit` has passed since its
/// head arrived, however steadily it trickles. The handler's extractor then answers
/// (400 or the API's JSON error) and the connection is not kept alive.
async fn whole_body_within(
    State(limit): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let deadline = Box::pin(tokio::time::sleep(limit));
    next.run(request.map(|inner| Body::new(Deadline { inner, deadline })))
        .await
}

/// A body that fails once its deadline passes.
struct Deadline {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

/// The error a body past its deadline reads as.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within server.body_timeout")]
struct BodyTimedOut;

impl HttpBody for Deadline {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        match this.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Raises the soft open-file limit to the hard one: every connection is a descriptor,
/// and the common soft default of 1,024 is fewer than the connection cap plus the
/// store's files. Returns the soft limit now in force.
pub fn raise_open_file_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        limit.rlim_cur = limit.rlim_max;
    }
    Ok(limit.rlim_cur)
}

/// Descriptors kept free of HTTP connections: the store, the spool, the bounce
/// listener's sessions, outgoing SMTP and the control socket.
pub const RESERVED_FILES: u64 = 256;

/// The connection cap that fits in `open_files` descriptors.
pub fn fitting_cap(wanted: usize, open_files: u64) -> usize {
    let room = open_files.saturating_sub(RESERVED_FILES).max(16);
    wanted.min(usize::try_from(room).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_is_the_peer_unless_the_peer_is_a_trusted_proxy() {
        let ip = |t: &str| t.parse::<IpAddr>().unwrap();
        let balancers: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        // No trusted proxies: the header is anyone's to write, and is ignored.
        assert_eq!(
            client_address(ip("10.0.0.5"), ["203.0.113.9"].into_iter(), &[]),
            ip("10.0.0.5")
        );
        // A stranger's header is ignored too.
        assert_eq!(
            client_address(ip("198.51.100.7"), ["203.0.113.9"].into_iter(), &balancers),
            ip("198.51.100.7")
        );
        // Behind the balancer: the address it appended, not what the client wrote.
        assert_eq!(
            client_address(
                ip("10.0.0.5"),
                ["1.2.3.4", " 203.0.113.9"].into_iter(),
                &balancers
            ),
            ip("203.0.113.9")
        );
        // Two balancers in a row are both passed.
        assert_eq!(
            client_address(
                ip("10.0.0.5"),
                ["203.0.113.9", "10.1.1.1"].into_iter(),
                &balancers
            ),
            ip("203.0.113.9")
        );
        // Junk ends the walk at the last address believed.
        assert_eq!(
            client_address(ip("10.0.0.5"), ["junk"].into_iter(), &balancers),
            ip("10.0.0.5")
        );
        assert_eq!(
            client_address(ip("10.0.0.5"), [].into_iter(), &balancers),
            ip("10.0.0.5")
        );
    }
    use std::convert::Infallible;

    #[test]
    fn the_cap_leaves_room_for_the_store_and_the_other_listeners() {
        assert_eq!(fitting_cap(1024, 1_048_576), 1024);
        assert_eq!(fitting_cap(1024, 1024), 1024 - RESERVED_FILES as usize);
        assert_eq!(fitting_cap(1024, 100), 16);
    }

    /// A body that never sends anything: a client that stopped mid-upload.
    struct Stalled;

    impl HttpBody for Stalled {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            Poll::Pending
        }
    }

    #[tokio::test]
    async fn a_stalled_body_fails_at_its_deadline() {
        let body = Body::new(Deadline {
            inner: Body::new(Stalled),
            deadline: Box::pin(tokio::time::sleep(Duration::from_millis(50))),
        });
        let e = axum::body::to_bytes(body, usize::MAX).await.unwrap_err();
        assert!(e.to_string().contains("server.body_timeout"), "{e}");
    }
}
