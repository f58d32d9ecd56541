//! The tokio driver: owns the sockets (67, and 4011 for ProxyDHCP) and the clock, feeds
//! datagrams and timeouts to the [`Engine`], persists leases before sending what hands
//! them out, and tells the rest of slipway what happened ([`OnEvent`]).

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use crate::commit::commit;
use crate::engine::{Action, Destination, Engine, Event, Port};
use crate::lease::LeaseStore;
use crate::wire::MAX_PACKET;

/// Where and how to listen.
#[derive(Debug, Clone)]
pub struct Listen {
    /// The DHCP server socket (normally 0.0.0.0:67).
    pub dhcp: SocketAddrV4,
    /// The PXE boot server socket for ProxyDHCP (normally 0.0.0.0:4011), if wanted.
    pub pxe: Option<SocketAddrV4>,
    /// Bind to this interface (SO_BINDTODEVICE); needed to broadcast out of it.
    pub interface: Option<String>,
    /// The clients' port (68; tests may use another).
    pub client_port: u16,
}

/// The driver's sockets, opened and bound before it runs: binding port 67 to an
/// interface needs privileges the server can drop once this is done.
#[derive(Debug)]
pub struct Sockets {
    dhcp: std::net::UdpSocket,
    pxe: Option<std::net::UdpSocket>,
}

impl Sockets {
    /// Opens the sockets `listen` asks for (no runtime needed).
    pub fn open(listen: &Listen) -> io::Result<Sockets> {
        let iface = listen.interface.as_deref();
        Ok(Sockets {
            dhcp: open_socket(listen.dhcp, iface)?,
            pxe: listen.pxe.map(|a| open_socket(a, iface)).transpose()?,
        })
    }
}

/// Opens a UDP socket the way a DHCP server needs it: broadcast allowed, address
/// reusable, bound to the interface, non-blocking. Errors say what to grant.
pub fn open_socket(addr: SocketAddrV4, interface: Option<&str>) -> io::Result<std::net::UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_broadcast(true)?;
    if let Some(iface) = interface {
        s.bind_device(Some(iface.as_bytes())).map_err(|e| {
            let hint = if e.kind() == io::ErrorKind::PermissionDenied {
                " (needs root or CAP_NET_RAW)"
            } else {
                ""
            };
            io::Error::new(
                e.kind(),
                format!("cannot bind to interface {iface}: {e}{hint}"),
            )
        })?;
    }
    s.bind(&SocketAddr::V4(addr).into()).map_err(|e| {
        let hint = match e.kind() {
            io::ErrorKind::PermissionDenied => {
                " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
            }
            io::ErrorKind::AddrInUse => " (another DHCP server, e.g. dnsmasq, is running?)",
            _ => "",
        };
        io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}{hint}"))
    })?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What the rest of slipway hears from the engine: every [`Event`], after the driver
/// has logged it. [`Event::Bound`] comes only once its lease is durable;
/// [`Event::Expired`] once the lease is forgotten.
pub type OnEvent = dyn Fn(&Event) + Send + Sync;

/// The longest the driver sleeps between two looks at the engine's timers (the clock
/// may be stepped while it sleeps).
pub const MAX_TIMER_SLEEP: Duration = Duration::from_secs(60);

/// Datagrams read and answered together at most: one durable commit covers all the
/// leases they hand out (group commit), so a boot storm pays one fsync per batch rather
/// than one per client.
pub const BATCH: usize = 64;

/// How long to sleep before the engine's next timer (`deadline`, seconds since the
/// epoch) is due at `now`: never early (the engine counts whole seconds), at most
/// [`MAX_TIMER_SLEEP`].
fn until(deadline: Option<u64>, now: u64) -> Duration {
    match deadline {
        Some(d) => Duration::from_secs(d.saturating_sub(now)).min(MAX_TIMER_SLEEP),
        None => MAX_TIMER_SLEEP,
    }
}

/// Runs until `shutdown` completes. `on_event` hears of every lease handed out (the
/// DNS server adds names from it, the lifecycle records the machine) and every lease
/// that ends (the DNS name goes).
///
/// Each turn waits for a datagram or the engine's next timer. For datagrams it reads
/// every one already queued (up to [`BATCH`]) from both sockets, lets the engine answer
/// them all, commits the leases they hand out in one transaction and only then sends
/// the replies. For timers it commits what the engine forgot.
pub async fn serve(
    engine: Arc<Mutex<Engine>>,
    store: Arc<dyn LeaseStore>,
    sockets: Sockets,
    listen: Listen,
    on_event: Arc<OnEvent>,
    shutdown: impl std::future::Future<Output = ()>,
) -> io::Result<()> {
    let dhcp = UdpSocket::from_std(sockets.dhcp)?;
    let pxe = sockets.pxe.map(UdpSocket::from_std).transpose()?;
    tracing::info!(listen = %listen.dhcp, pxe = ?listen.pxe, interface = ?listen.interface, "DHCP server listening");
    let run = async {
        let mut buf = vec![0u8; MAX_PACKET * 2];
        let lock = || {
            engine
                .lock()
                .map_err(|_| io::Error::other("DHCP state lock poisoned"))
        };
        loop {
            let sleep = until(lock()?.poll_timeout(), now());
            let timer = tokio::select! {
                r = dhcp.readable() => { r?; false }
                r = async {
                    match &pxe {
                        Some(p) => p.readable().await,
                        None => std::future::pending().await,
                    }
                } => { r?; false }
                _ = tokio::time::sleep(sleep) => true,
            };
            if timer {
                let t = now();
                let due = {
                    let mut core = lock()?;
                    match core.poll_timeout() {
                        Some(d) if d <= t => core.handle_timeout(t),
                        _ => Vec::new(),
                    }
                };
                if !due.is_empty() {
                    carry_out(
                        vec![(Port::Dhcp, due)],
                        &dhcp,
                        pxe.as_ref(),
                        store.as_ref(),
                        &listen,
                        on_event.as_ref(),
                    )
                    .await;
                }
                continue;
            }
            let mut batch = Vec::new();
            {
                let mut core = lock()?;
                let socks = std::iter::once((&dhcp, Port::Dhcp))
                    .chain(pxe.as_ref().map(|p| (p, Port::Pxe)));
                let mut read = 0;
                for (sock, port) in socks {
                    while read < BATCH {
                        match sock.try_recv_from(&mut buf) {
                            Ok((n, SocketAddr::V4(src))) => {
                                read += 1;
                                let actions = core.handle(now(), &buf[..n], src, port);
                                // Answers that hand out or give back no lease (offers,
                                // NAKs, ProxyDHCP) need no commit: sent at once.
                                let lasting = actions
                                    .iter()
                                    .any(|a| matches!(a, Action::Persist(_) | Action::Forget(_)));
                                if lasting {
                                    batch.push((port, actions));
                                } else {
                                    let late = send_now(sock, actions, &listen, on_event.as_ref());
                                    if !late.is_empty() {
                                        batch.push((port, late));
                                    }
                                }
                            }
                            Ok(_) => {}
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) => {
                                tracing::warn!("cannot read a DHCP datagram: {e}");
                                break;
                            }
                        }
                    }
                }
            }
            carry_out(
                batch,
                &dhcp,
                pxe.as_ref(),
                store.as_ref(),
                &listen,
                on_event.as_ref(),
            )
            .await;
        }
        #[allow(unreachable_code)]
        Ok::<(), io::Error>(())
    };
    tokio::select! {
        r = run => r,
        _ = shutdown => {
            tracing::info!("DHCP server stopped");
            Ok(())
        }
    }
}

/// Where a reply goes: clients' port 68 may be another in tests.
fn destination(to: Destination, listen: &Listen) -> SocketAddrV4 {
    match to {
        Destination::Broadcast => SocketAddrV4::new(Ipv4Addr::BROADCAST, listen.client_port),
        Destination::Unicast(a) if a.port() == 68 => SocketAddrV4::new(*a.ip(), listen.client_port),
        Destination::Unicast(a) => a,
    }
}

/// Sends and logs answers that need no commit, without waiting; returns what could not
/// be sent yet (the socket's buffer was full), for the batch to send with the others.
fn send_now(
    sock: &UdpSocket,
    actions: Vec<Action>,
    listen: &Listen,
    on_event: &OnEvent,
) -> Vec<Action> {
    let mut late = Vec::new();
    for action in actions {
        match action {
            Action::Send { packet, to } => {
                let dest = destination(to, listen);
                match sock.try_send_to(&packet, dest.into()) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        late.push(Action::Send { packet, to });
                    }
                    Err(e) => tracing::warn!(%dest, "cannot send a DHCP reply: {e}"),
                }
            }
            Action::Log(event) => {
                log(&event);
                on_event(&event);
            }
            other => late.push(other),
        }
    }
    late
}

/// Carries out the engine's answers to one batch: one commit for every lease change,
/// then the replies and events [`commit`] lets out.
async fn carry_out(
    batch: Vec<(Port, Vec<Action>)>,
    dhcp: &UdpSocket,
    pxe: Option<&UdpSocket>,
    store: &dyn LeaseStore,
    listen: &Listen,
    on_event: &OnEvent,
) {
    let out = commit(batch, store);
    if let Some(e) = &out.error {
        tracing::error!(
            leases = out.leases,
            "cannot persist the leases, not answering: {e}"
        );
    }
    for (port, packet, to) in out.sends {
        let sock = match port {
            Port::Pxe => pxe.unwrap_or(dhcp),
            Port::Dhcp => dhcp,
        };
        let dest = destination(to, listen);
        if let Err(e) = sock.send_to(&packet, dest).await {
            tracing::warn!(%dest, "cannot send a DHCP reply: {e}");
        }
    }
    for event in out.events {
        log(&event);
        on_event(&event);
    }
}

fn log(event: &Event) {
    match event {
        Event::UnknownIgnored(mac) => {
            tracing::info!(%mac, "ignoring a machine that is not in the cluster file")
        }
        Event::Bound {
            mac,
            ip,
            client,
            boot,
            ..
        } => {
            tracing::info!(%mac, %ip, client = client.as_str(), boot = boot.as_deref().unwrap_or("-"), "lease")
        }
        Event::Expired { mac, ip, .. } => tracing::info!(%mac, %ip, "lease ended"),
        Event::UnknownFlood { remembered } => tracing::warn!(
            remembered,
            "more unknown machines than slipway remembers: ignoring them without a log line each (once per 10 minutes)"
        ),
        Event::RateLimited { dropped } => tracing::warn!(
            dropped,
            "DHCP requests from machines without a reservation dropped by the rate limits (reported once per 10 minutes)"
        ),
        Event::RelayRefused(giaddr) => tracing::warn!(
            %giaddr,
            "relayed DHCP request refused: this giaddr is not in network.dhcp.relays"
        ),
        Event::Declined(mac, ip) => {
            tracing::warn!(%mac, %ip, "address declined: another host uses it")
        }
        Event::PoolExhausted(mac) => tracing::warn!(%mac, "the DHCP pool is full"),
        Event::NoBootFile(mac, arches) => {
            tracing::warn!(%mac, ?arches, "no boot file for this client architecture")
        }
    }
}
