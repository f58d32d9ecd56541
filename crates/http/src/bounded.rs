//! Serving a router on a hostile network: every connection is bounded in count (in all
//! and per client address), in time (headers must arrive within a timeout; a
//! connection that makes no progress either way for the idle timeout is closed, so a
//! slow-header or slow-reader client cannot hold a slot), and in memory (hyper's
//! buffers per connection are capped). [`serve_bounded_tls`] does the same behind
//! TLS, the handshake bounded by the header timeout. [`serve_bounded_with_mirror`]
//! serves the asset mirror's files without hyper, the large ones with `sendfile` (see
//! [`MirrorFiles`]), under
//! the same bounds.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

pub use crate::zerocopy::{INLINE_MAX, MirrorFiles};

/// The bounds of [`serve_bounded`].
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections open at once; beyond, new ones are closed at once. Default 1024.
    pub max_connections: usize,
    /// Connections open at once from one client address once half of
    /// `max_connections` are open (one address cannot take more than half). Default 32.
    pub max_per_client: usize,
    /// A request's headers must arrive within this. Default 10 s.
    pub header_timeout: Duration,
    /// A connection that moves no byte either way for this long is closed (an idle
    /// keep-alive connection, a client that stopped reading). Default 30 s.
    pub idle_timeout: Duration,
    /// hyper's read and write buffer per connection at most. Default 64 KiB.
    pub max_buffer: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            max_per_client: 32,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_buffer: 64 * 1024,
        }
    }
}

/// Connections open per client address.
#[derive(Default)]
struct PerClient(Mutex<HashMap<IpAddr, usize>>);

impl PerClient {
    /// Counts one more connection from `ip` unless it has `max` already and the
    /// server is `pressed`.
    fn enter(self: &Arc<Self>, ip: IpAddr, max: usize, pressed: bool) -> Option<ClientSlot> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(ip).or_insert(0);
        if pressed && *n >= max {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            table: self.clone(),
            ip,
        })
    }
}

/// One connection counted for its client; uncounted when dropped.
struct ClientSlot {
    table: Arc<PerClient>,
    ip: IpAddr,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut map = self.table.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// An IO that fails with `TimedOut` once it has moved no byte, in either direction,
/// for `idle`.
pub(crate) struct IdleTimeout<T> {
    inner: T,
    idle: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl<T> IdleTimeout<T> {
    pub(crate) fn new(inner: T, idle: Duration) -> Self {
        IdleTimeout {
            inner,
            idle,
            sleep: Box::pin(tokio::time::sleep(idle)),
        }
    }

    /// The IO inside.
    pub(crate) fn into_inner(self) -> T {
        self.inner
    }

    fn progressed(&mut self) {
        self.sleep
            .as_mut()
            .reset(tokio::time::Instant::now() + self.idle);
    }

    /// `Pending` from the inner IO: an error if the idle time has run out.
    fn check<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no progress within the idle timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleTimeout<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                this.progressed();
                Poll::Ready(r)
            }
            Poll::Pending => this.check(cx),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleTimeout<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(r) => {
                this.progressed();
                Poll::Ready(r)
            }
            Poll::Pending => this.check(cx),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Ready(r) => Poll::Ready(r),
            Poll::Pending => this.check(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Serves `app` on `listener` within `limits` until `shutdown` completes; then stops
/// accepting and gives open connections a moment to finish. Handlers can extract
/// `ConnectInfo<SocketAddr>`.
pub async fn serve_bounded(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_with(listener, app, limits, None, None, shutdown).await
}

/// [`serve_bounded`], answering the `GET`s and `HEAD`s of `mirror`'s files itself
/// (beyond [`INLINE_MAX`] bytes with `sendfile(2)`: zero-copy, as nginx), with
/// the statuses and headers `app`'s mirror fallback ([`crate::files::serve_under`])
/// gives; every other request goes to `app`. For `app` = [`crate::router`] only: the
/// paths its routes answer are never served from the mirror here.
pub async fn serve_bounded_with_mirror(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    mirror: MirrorFiles,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_with(listener, app, limits, None, Some(mirror), shutdown).await
}

/// [`serve_bounded`] over TLS with `tls`: each connection's handshake must complete
/// within the header timeout (it counts against the connection limits like a
/// request); a client that does not speak TLS is closed.
pub async fn serve_bounded_tls(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_with(
        listener,
        app,
        limits,
        Some(TlsAcceptor::from(tls)),
        None,
        shutdown,
    )
    .await
}

async fn serve_with(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    mirror: Option<MirrorFiles>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let per_client = Arc::new(PerClient::default());
    let mut refused_logged: Option<Instant> = None;
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: wait rather than spin.
                    tracing::warn!("HTTP: cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        while connections.try_join_next().is_some() {}
        let peer_ip = match peer.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        // Under pressure (half the connections open), one address gets its share only.
        let max = limits.max_connections.max(1);
        let pressed = permits.available_permits() <= max / 2;
        let slots = permits
            .clone()
            .try_acquire_owned()
            .ok()
            .zip(per_client.enter(peer_ip, limits.max_per_client.max(1), pressed));
        let Some((permit, slot)) = slots else {
            let now = Instant::now();
            if refused_logged.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(10)) {
                refused_logged = Some(now);
                tracing::warn!(peer = %peer_ip, "HTTP: connection refused: too many open (in all or from this address); logged once per 10 s");
            }
            drop(stream);
            continue;
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY: {e}");
        }
        let app = app.clone();
        let limits = limits.clone();
        let tls = tls.clone();
        let mirror = mirror.clone();
        connections.spawn(async move {
            match (tls, mirror) {
                (None, Some(mirror)) => {
                    crate::zerocopy::serve_plain(stream, app, &limits, peer, &mirror).await;
                }
                (None, None) => {
                    let io = IdleTimeout::new(stream, limits.idle_timeout);
                    serve_connection(io, app, &limits, peer).await;
                }
                (Some(acceptor), _) => {
                    let io = IdleTimeout::new(stream, limits.idle_timeout);
                    match tokio::time::timeout(limits.header_timeout, acceptor.accept(io)).await {
                        Ok(Ok(io)) => serve_connection(io, app, &limits, peer).await,
                        Ok(Err(e)) => {
                            tracing::debug!(peer = %peer, "TLS handshake failed: {e}");
                        }
                        Err(_) => tracing::debug!(peer = %peer, "TLS handshake timed out"),
                    }
                }
            }
            drop((permit, slot));
        });
    }
    // Let responses in flight finish, briefly.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.abort_all();
    Ok(())
}

/// Serves one connection's HTTP/1.1 requests with `app`, within `limits`.
pub(crate) async fn serve_connection<I>(
    io: I,
    app: Router,
    limits: &Limits,
    peer: std::net::SocketAddr,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let served = http1_builder(limits)
        .serve_connection(
            TokioIo::new(io),
            TowerToHyperService::new(with_peer(app, peer)),
        )
        .await;
    if let Err(e) = served {
        tracing::debug!(peer = %peer, "HTTP connection ended: {e}");
    }
}

/// `app` with each request carrying `ConnectInfo(peer)`.
pub(crate) fn with_peer(
    app: Router,
    peer: std::net::SocketAddr,
) -> impl tower::Service<
    axum::http::Request<hyper::body::Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future: Send,
> + Clone
+ Send
+ 'static {
    app.map_request(move |mut req: axum::http::Request<_>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req
    })
}

/// hyper's HTTP/1.1 server within `limits`: the header timeout, the buffer cap.
pub(crate) fn http1_builder(limits: &Limits) -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_buffer.max(8192));
    builder
}
