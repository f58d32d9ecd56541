//! The tokio driver: owns the sockets (67, and 4011 for ProxyDHCP), feeds datagrams to
//! the [`Server`] core, persists leases before sending what hands them out.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use slipway_store::{Lease, LeaseStore};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use crate::server::{Action, Destination, Event, Port, Server};
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

/// Opens a UDP socket the way a DHCP server needs it: broadcast allowed, address
/// reusable, bound to the interface. Errors say what to grant.
pub fn open_socket(addr: SocketAddrV4, interface: Option<&str>) -> io::Result<UdpSocket> {
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
    UdpSocket::from_std(s.into())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What the rest of slipway hears of a lease handed out: the lease, and the boot file
/// or URL given with it (`None` for an OS's plain DHCP client).
pub type OnBound = dyn Fn(&Lease, Option<&str>) + Send + Sync;

/// Runs until `shutdown` completes. `on_bound` hears of every lease handed out (the DNS
/// server adds names from it, the lifecycle records the machine).
pub async fn serve(
    server: Arc<Mutex<Server>>,
    store: Arc<dyn LeaseStore>,
    listen: Listen,
    on_bound: Arc<OnBound>,
    shutdown: impl std::future::Future<Output = ()>,
) -> io::Result<()> {
    let dhcp = Arc::new(open_socket(listen.dhcp, listen.interface.as_deref())?);
    let pxe = match listen.pxe {
        Some(addr) => Some(Arc::new(open_socket(addr, listen.interface.as_deref())?)),
        None => None,
    };
    tracing::info!(listen = %listen.dhcp, pxe = ?listen.pxe, interface = ?listen.interface, "DHCP server listening");
    let run = async {
        let mut a = vec![0u8; MAX_PACKET * 2];
        let mut b = vec![0u8; MAX_PACKET * 2];
        loop {
            let (n, src, port, sock) = tokio::select! {
                r = dhcp.recv_from(&mut a) => {
                    let (n, src) = r?;
                    (n, src, Port::Dhcp, &dhcp)
                }
                r = async {
                    match &pxe {
                        Some(p) => p.recv_from(&mut b).await,
                        None => std::future::pending().await,
                    }
                } => {
                    let (n, src) = r?;
                    (n, src, Port::Pxe, pxe.as_ref().unwrap_or(&dhcp))
                }
            };
            let SocketAddr::V4(src) = src else { continue };
            let data = if port == Port::Dhcp { &a[..n] } else { &b[..n] };
            let actions = match server.lock() {
                Ok(mut s) => s.handle(now(), data, src, port),
                Err(_) => return Err(io::Error::other("DHCP state lock poisoned")),
            };
            carry_out(actions, sock, store.as_ref(), &listen, on_bound.as_ref()).await;
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

async fn carry_out(
    actions: Vec<Action>,
    sock: &UdpSocket,
    store: &dyn LeaseStore,
    listen: &Listen,
    on_bound: &OnBound,
) {
    let mut persisted_ok = true;
    let boot = actions
        .iter()
        .find_map(|a| match a {
            Action::Log(Event::Bound { boot, .. }) => Some(boot.clone()),
            _ => None,
        })
        .flatten();
    for action in actions {
        match action {
            Action::Persist(lease) => {
                if let Err(e) = store.put(&lease) {
                    tracing::error!(mac = %lease.mac, ip = %lease.ip, "cannot persist the lease, not answering: {e}");
                    persisted_ok = false;
                } else {
                    on_bound(&lease, boot.as_deref());
                }
            }
            Action::Forget(mac) => {
                if let Err(e) = store.remove(mac) {
                    tracing::error!(%mac, "cannot forget the lease: {e}");
                }
            }
            Action::Send { packet, to } => {
                if !persisted_ok {
                    continue;
                }
                let dest = match to {
                    Destination::Broadcast => {
                        SocketAddrV4::new(Ipv4Addr::BROADCAST, listen.client_port)
                    }
                    Destination::Unicast(a) if a.port() == 68 => {
                        SocketAddrV4::new(*a.ip(), listen.client_port)
                    }
                    Destination::Unicast(a) => a,
                };
                if let Err(e) = sock.send_to(&packet, dest).await {
                    tracing::warn!(%dest, "cannot send a DHCP reply: {e}");
                }
            }
            Action::Log(event) => log(event),
        }
    }
}

fn log(event: Event) {
    match event {
        Event::UnknownIgnored(mac) => {
            tracing::info!(%mac, "ignoring a machine that is not in the cluster file")
        }
        Event::Bound { mac, ip, boot } => {
            tracing::info!(%mac, %ip, boot = boot.as_deref().unwrap_or("-"), "lease")
        }
        Event::Declined(mac, ip) => {
            tracing::warn!(%mac, %ip, "address declined: another host uses it")
        }
        Event::PoolExhausted(mac) => tracing::warn!(%mac, "the DHCP pool is full"),
        Event::NoBootFile(mac, arches) => {
            tracing::warn!(%mac, ?arches, "no boot file for this client architecture")
        }
    }
}
