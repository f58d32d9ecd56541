//! The tokio driver: sockets, timers and tasks around the sans-IO core.
//!
//! One listening socket (port 69, or any port) receives requests and hands them to an
//! [`Endpoint`]. Each accepted request runs as its own task with its own ephemeral UDP
//! socket (a new TID, as RFC 1350 asks), bound to the listening socket's IP address
//! (and interface, when one is configured), driving a [`Transfer`]. Refusals of
//! malformed or forbidden requests are answered from the listening socket; a file the
//! source does not serve is answered from the transfer's socket.
//!
//! Logging (`tracing`): one `info` line per completed transfer (client, file, bytes,
//! duration, blksize, windowsize, resent blocks); `warn` for refused requests (write
//! requests, `..`, bad modes, access denied), transfers that time out or fail to read,
//! and requests dropped at the transfer cap; `info` for files not found (pxelinux
//! probes a dozen names per boot: that is not a problem); `debug` for a client ending
//! a transfer right after the OACK (the firmware `tsize` probe), retransmitted
//! requests and ignored datagrams.
//!
//! Disk reads happen synchronously in the transfer's task, a window at a time (at most
//! `windowsize` × `blksize` bytes per wake-up, usually from the page cache); opening a
//! file runs on tokio's blocking pool.
//!
//! ```no_run
//! use std::net::SocketAddr;
//! use std::sync::Arc;
//! use slipway_tftp::source::{DirSource, Layered, MapSource, Source};
//! use slipway_tftp::{serve, Config};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // Generated files over a directory of boot binaries.
//! let generated = Arc::new(MapSource::new());
//! generated.insert("pxelinux.cfg/01-52-54-00-99-00-01", b"DEFAULT install\n".to_vec())?;
//! let source = Arc::new(Layered::new(vec![
//!     generated.clone() as Arc<dyn Source>,
//!     Arc::new(DirSource::new("/var/lib/slipway/tftp")?),
//! ]));
//!
//! let mut config = Config::default();
//! config.interface = Some("br0".into()); // optional; needs CAP_NET_RAW
//! let listen: SocketAddr = "10.99.0.1:69".parse()?;
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! # drop(stop);
//! serve(listen, source, config, async { let _ = stopped.await; }).await?;
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinSet};
use tracing::{debug, error, info, warn};

use crate::Config;
use crate::request::{Accept, Endpoint, Ignored, Request, TransferId};
use crate::source::{Content, OpenError, Source};
use crate::transfer::{Outcome, Transfer};
use crate::wire::{ErrorCode, Repr};

/// How long running transfers get to end (each sends its client an ERROR) after the
/// shutdown future resolves; then they are aborted.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// A running transfer always has a deadline; this stands for "none" (never reached).
const IDLE: Duration = Duration::from_secs(24 * 3600);

/// The listening socket for [`serve`]: an address to bind, or a socket already bound.
#[derive(Debug)]
pub enum Listen {
    /// Bind this address (port 69 needs root or `CAP_NET_BIND_SERVICE`).
    Addr(SocketAddr),
    /// A bound std socket (its blocking mode is changed).
    Std(std::net::UdpSocket),
    /// A bound tokio socket.
    Tokio(UdpSocket),
}

impl From<SocketAddr> for Listen {
    fn from(addr: SocketAddr) -> Listen {
        Listen::Addr(addr)
    }
}

impl From<std::net::UdpSocket> for Listen {
    fn from(socket: std::net::UdpSocket) -> Listen {
        Listen::Std(socket)
    }
}

impl From<UdpSocket> for Listen {
    fn from(socket: UdpSocket) -> Listen {
        Listen::Tokio(socket)
    }
}

/// Why [`serve`] could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The listening address could not be bound.
    #[error("cannot bind the TFTP socket to {addr}: {source}{}", bind_hint(*.addr, .source))]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// `SO_BINDTODEVICE` failed.
    #[error(
        "cannot bind the TFTP sockets to interface {interface:?} (SO_BINDTODEVICE): {source}{}",
        bind_device_hint(.source)
    )]
    BindDevice {
        /// The interface.
        interface: String,
        /// The OS error.
        source: io::Error,
    },
    /// Any other socket error while setting up.
    #[error("TFTP socket error: {0}")]
    Socket(#[source] io::Error),
}

/// What to check when binding `addr` failed with `error`; empty when there is no hint.
fn bind_hint(addr: SocketAddr, error: &io::Error) -> &'static str {
    match error.kind() {
        io::ErrorKind::PermissionDenied if addr.port() < 1024 => {
            " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
        }
        io::ErrorKind::AddrInUse => {
            " (another TFTP server, e.g. tftpd-hpa or dnsmasq, may be running)"
        }
        io::ErrorKind::AddrNotAvailable => " (no local interface has this address)",
        _ => "",
    }
}

/// What to check when `SO_BINDTODEVICE` failed with `error`; empty when there is no hint.
fn bind_device_hint(error: &io::Error) -> &'static str {
    if error.kind() == io::ErrorKind::PermissionDenied {
        " (needs CAP_NET_RAW: run as root, grant the capability, or leave the \
         interface unset and listen on the interface's address instead)"
    } else if error.raw_os_error() == Some(19) {
        // ENODEV
        " (no such interface)"
    } else {
        ""
    }
}

fn bind_device(socket: &Socket, interface: Option<&str>) -> Result<(), ServeError> {
    if let Some(interface) = interface {
        socket
            .bind_device(Some(interface.as_bytes()))
            .map_err(|source| ServeError::BindDevice {
                interface: interface.to_owned(),
                source,
            })?;
    }
    Ok(())
}

/// A UDP socket bound to `addr` (and to `interface`), non-blocking, for tokio.
fn udp_socket(addr: SocketAddr, interface: Option<&str>) -> Result<UdpSocket, ServeError> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
        .map_err(ServeError::Socket)?;
    bind_device(&socket, interface)?;
    socket
        .bind(&addr.into())
        .map_err(|source| ServeError::Bind { addr, source })?;
    socket.set_nonblocking(true).map_err(ServeError::Socket)?;
    UdpSocket::from_std(socket.into()).map_err(ServeError::Socket)
}

fn listener(listen: Listen, config: &Config) -> Result<UdpSocket, ServeError> {
    let interface = config.interface.as_deref();
    match listen {
        Listen::Addr(addr) => udp_socket(addr, interface),
        Listen::Std(socket) => {
            if let Some(interface) = interface {
                SockRef::from(&socket)
                    .bind_device(Some(interface.as_bytes()))
                    .map_err(|source| ServeError::BindDevice {
                        interface: interface.to_owned(),
                        source,
                    })?;
            }
            socket.set_nonblocking(true).map_err(ServeError::Socket)?;
            UdpSocket::from_std(socket).map_err(ServeError::Socket)
        }
        Listen::Tokio(socket) => {
            if let Some(interface) = interface {
                SockRef::from(&socket)
                    .bind_device(Some(interface.as_bytes()))
                    .map_err(|source| ServeError::BindDevice {
                        interface: interface.to_owned(),
                        source,
                    })?;
            }
            Ok(socket)
        }
    }
}

/// Serves read requests until `shutdown` resolves; then running transfers end (their
/// clients get an ERROR) within a short grace period.
///
/// Returns an error only when the listening socket cannot be set up; everything that
/// happens to one transfer is logged, never returned.
///
/// Bind the listening socket to slipway's own address (not `0.0.0.0`): transfer
/// sockets are bound to the same IP, so replies leave from the address the client
/// asked. With `0.0.0.0` the kernel picks the source address of each reply by route,
/// which is right on a host with one address per subnet only.
pub async fn serve<F>(
    listen: impl Into<Listen>,
    source: Arc<dyn Source>,
    config: Config,
    shutdown: F,
) -> Result<(), ServeError>
where
    F: Future<Output = ()>,
{
    let socket = listener(listen.into(), &config)?;
    let local = socket.local_addr().map_err(ServeError::Socket)?;
    info!(%local, interface = config.interface.as_deref().unwrap_or("-"), "TFTP server listening");

    let config = Arc::new(config);
    let mut endpoint = Endpoint::new(&config);
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut running: HashMap<tokio::task::Id, (SocketAddr, TransferId)> = HashMap::new();
    let mut handles: HashMap<TransferId, AbortHandle> = HashMap::new();
    let mut buf = vec![0u8; 2048];
    let mut quiet = LogLimit::default();
    tokio::pin!(shutdown);

    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(joined) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                let id = match joined {
                    Ok((id, ())) => id,
                    Err(e) => {
                        if e.is_panic() {
                            error!("TFTP transfer task panicked: {e}");
                        }
                        e.id()
                    }
                };
                if let Some((client, transfer)) = running.remove(&id) {
                    endpoint.finished(client, transfer);
                    handles.remove(&transfer);
                }
            }
            received = socket.recv_from(&mut buf) => {
                let (len, client) = match received {
                    Ok(received) => received,
                    Err(e) => {
                        debug!("TFTP listening socket: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let datagram = buf.get(..len).unwrap_or(&[]);
                match endpoint.handle(client, datagram) {
                    Accept::Start { id, request, replaces } => {
                        if let Some(old) = replaces {
                            debug!(%client, "new request from the same port: stopping its previous transfer");
                            if let Some(handle) = handles.remove(&old) {
                                handle.abort();
                            }
                        }
                        let job = Job {
                            client,
                            request,
                            source: source.clone(),
                            config: config.clone(),
                            local_ip: local.ip(),
                            cancel: cancel_rx.clone(),
                        };
                        let handle = tasks.spawn(job.run());
                        running.insert(handle.id(), (client, id));
                        handles.insert(id, handle);
                    }
                    Accept::Refuse(refusal) => {
                        if quiet.allows(client.ip(), Instant::now()) {
                            warn!(%client, reason = %refusal, "TFTP request refused (further refusals of this client: not logged for 10 s)");
                        }
                        if let Err(e) = socket.send_to(&refusal.reply(), client).await {
                            debug!(%client, "cannot send the refusal: {e}");
                        }
                    }
                    Accept::Ignore(Ignored::Busy) => {
                        if quiet.allows(IpAddr::from([0, 0, 0, 0]), Instant::now()) {
                            warn!(%client, max_transfers = config.max_transfers,
                                "TFTP request dropped: too many transfers running (the client will retry; not logged again for 10 s)");
                        }
                    }
                    Accept::Ignore(Ignored::ClientBusy) => {
                        if quiet.allows(client.ip(), Instant::now()) {
                            warn!(%client, max_per_client = config.max_transfers_per_client,
                                "TFTP request dropped: this client runs too many transfers (not logged again for 10 s)");
                        }
                    }
                    Accept::Ignore(reason) => debug!(%client, ?reason, "TFTP datagram ignored"),
                }
            }
        }
    }

    info!(running = tasks.len(), "TFTP server stopping");
    let _ = cancel_tx.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tasks.abort_all();
    }
    Ok(())
}

/// At most one log line per key (a client address) per [`LogLimit::EVERY`], in bounded
/// memory: a flood of requests costs a line per source per period, not one per request.
#[derive(Debug, Default)]
struct LogLimit {
    last: HashMap<IpAddr, Instant>,
}

impl LogLimit {
    const EVERY: Duration = Duration::from_secs(10);
    const MAX_KEYS: usize = 4096;

    /// Whether a line about `key` may be logged at `now` (and notes that it was).
    fn allows(&mut self, key: IpAddr, now: Instant) -> bool {
        if self
            .last
            .get(&key)
            .is_some_and(|t| now.duration_since(*t) < Self::EVERY)
        {
            return false;
        }
        if self.last.len() >= Self::MAX_KEYS {
            self.last
                .retain(|_, t| now.duration_since(*t) < Self::EVERY);
            if self.last.len() >= Self::MAX_KEYS {
                return false;
            }
        }
        self.last.insert(key, now);
        true
    }
}

/// One accepted request, run as a task.
struct Job {
    client: SocketAddr,
    request: Request,
    source: Arc<dyn Source>,
    config: Arc<Config>,
    local_ip: IpAddr,
    cancel: watch::Receiver<bool>,
}

impl Job {
    async fn run(self) {
        let Job {
            client,
            request,
            source,
            config,
            local_ip,
            mut cancel,
        } = self;
        let started = Instant::now();
        let file = request.path.clone();
        let socket = match udp_socket(SocketAddr::new(local_ip, 0), config.interface.as_deref()) {
            Ok(socket) => socket,
            Err(e) => {
                warn!(%client, %file, "cannot open a socket for the transfer: {e}");
                return;
            }
        };

        let path = request.path.clone();
        let opened = tokio::task::spawn_blocking(move || source.open(&path, client)).await;
        let content: Content = match opened {
            Ok(Ok(content)) => content,
            Ok(Err(e)) => {
                match &e {
                    OpenError::NotFound => info!(%client, %file, "TFTP file not found"),
                    _ => warn!(%client, %file, reason = %e, "TFTP request refused"),
                }
                let mut out = Vec::new();
                Repr::Error {
                    code: e.error_code(),
                    message: e.message(),
                }
                .emit(&mut out);
                let _ = socket.send_to(&out, client).await;
                return;
            }
            Err(e) => {
                warn!(%client, %file, "opening the file failed: {e}");
                let mut out = Vec::new();
                Repr::Error {
                    code: ErrorCode::NotDefined,
                    message: "cannot read file",
                }
                .emit(&mut out);
                let _ = socket.send_to(&out, client).await;
                return;
            }
        };

        let mut transfer = Transfer::new(Instant::now(), client, &request, content, &config);
        let negotiated = *transfer.negotiated();
        let mut out = Vec::with_capacity(usize::from(negotiated.blksize) + 4);
        let mut input = vec![0u8; 1024];
        // One timer for the whole transfer, moved to each new deadline.
        let timer = tokio::time::sleep(IDLE);
        tokio::pin!(timer);
        // However it progresses, a transfer ends after max_transfer_time.
        let give_up = tokio::time::sleep(config.max_transfer_time);
        tokio::pin!(give_up);
        let mut gave_up = false;
        loop {
            while let Some(transmit) = transfer.poll_transmit(&mut out) {
                if let Err(e) = socket.send_to(&out, transmit.destination).await {
                    debug!(%client, "send to {}: {e}", transmit.destination);
                }
            }
            if transfer.is_finished() {
                break;
            }
            let deadline = transfer
                .poll_timeout()
                .map(tokio::time::Instant::from_std)
                .unwrap_or_else(|| tokio::time::Instant::now() + IDLE);
            if timer.deadline() != deadline {
                timer.as_mut().reset(deadline);
            }
            tokio::select! {
                received = socket.recv_from(&mut input) => match received {
                    Ok((len, from)) => {
                        transfer.handle(Instant::now(), from, input.get(..len).unwrap_or(&[]));
                    }
                    Err(e) => debug!(%client, "transfer socket: {e}"),
                },
                () = &mut timer => transfer.handle_timeout(Instant::now()),
                () = &mut give_up, if !gave_up => {
                    gave_up = true;
                    warn!(%client, %file, bytes_acked = transfer.bytes_acked(),
                        max_secs = config.max_transfer_time.as_secs(), "TFTP transfer ran too long: ended");
                    transfer.cancel("transfer ran too long");
                }
                _ = cancel.changed() => transfer.cancel("server shutting down"),
            }
        }

        let duration_ms = started.elapsed().as_millis() as u64;
        let stats = transfer.stats();
        let (blksize, windowsize) = (negotiated.blksize, negotiated.windowsize);
        match transfer.outcome() {
            Some(Outcome::Complete) => info!(
                %client, %file, bytes = transfer.size(), duration_ms, blksize, windowsize,
                resent = stats.data_resent, "TFTP transfer complete"
            ),
            Some(Outcome::ClientError {
                code,
                message,
                before_data: true,
            }) => debug!(
                %client, %file, %code, message, tsize = ?negotiated.tsize,
                "TFTP client ended the transfer after the OACK (size probe)"
            ),
            Some(Outcome::ClientError { code, message, .. }) => info!(
                %client, %file, %code, message, bytes_acked = transfer.bytes_acked(), duration_ms,
                "TFTP transfer aborted by the client"
            ),
            Some(Outcome::TimedOut) => warn!(
                %client, %file, bytes_acked = transfer.bytes_acked(), size = transfer.size(),
                duration_ms, timeouts = stats.timeouts, "TFTP transfer timed out"
            ),
            Some(Outcome::ReadFailed(e)) => {
                warn!(%client, %file, error = %e, "TFTP transfer failed: read error")
            }
            Some(Outcome::Truncated) => {
                warn!(%client, %file, "TFTP transfer failed: the file shrank while being sent")
            }
            Some(Outcome::Cancelled) => {
                info!(%client, %file, bytes_acked = transfer.bytes_acked(), "TFTP transfer cancelled")
            }
            None => {}
        }
    }
}
