//! The running slipway server's state and policy, apart from any protocol: the
//! configuration in force ([`Snapshot`], swapped whole on reload through [`Live`]),
//! the boot decision (record the boot in the machine's life, then the installer or
//! the local disk: [`Live::boot`]), rendering a node's artifacts with the owner check
//! (an artifact holding secrets goes only to the address slipway gave that node;
//! anyone else gets 403 and a log line), install reports and re-arming an install.
//!
//! The protocols are adapters over it: [`Live`] implements `slipway-http`'s
//! [`Provisioning`](slipway_http::Provisioning) port, and [`Generated`] is the TFTP source of the per-machine
//! pxelinux and GRUB configurations.
//!
//! ```no_run
//! use std::sync::Arc;
//! use slipway_serve::{Live, Snapshot};
//!
//! # async fn run(cluster: slipway_cluster::Cluster) -> std::io::Result<()> {
//! let live = Live::new(Snapshot {
//!     cluster,
//!     secrets: Arc::new(slipway_render::ExampleSecrets),
//!     template: None,
//!     boot_dir: None,
//! });
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! slipway_http::serve(listener, live, std::future::pending()).await
//! # }
//! ```
#![deny(missing_docs)]

pub mod dhcp;
mod provisioning;
pub mod services;
pub mod stall;
mod tftp;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use slipway_cluster::{Cluster, Node};
use slipway_http::Reply;
use slipway_lifecycle::Input;
use slipway_render::{Artifact, Secrets, render};
use slipway_store::tracker::{Tracker, now};

pub use services::Services;
pub use tftp::{Generated, layers as tftp_layers};

/// The configuration in force: what one cluster file, loaded and checked, makes the
/// server serve. Replaced whole when the file is reloaded.
pub struct Snapshot {
    /// The cluster.
    pub cluster: Cluster,
    /// Its secrets (keys, certificates, tokens) for rendering configurations.
    pub secrets: Arc<dyn Secrets + Send + Sync>,
    /// The generic profile's template text, if any.
    pub template: Option<String>,
    /// Where the boot programs are (iPXE's `ipxe.efi` for UEFI HTTP boot), served
    /// under `/boot/`.
    pub boot_dir: Option<PathBuf>,
}

impl Snapshot {
    /// The asset mirror's directory, when the assets are mirrored locally.
    pub fn mirror(&self) -> Option<&Path> {
        match &self.cluster.os.assets {
            slipway_cluster::AssetSource::Mirror(dir) => Some(dir),
            slipway_cluster::AssetSource::Remote(_) => None,
        }
    }

    /// The only address allowed to fetch `node`'s secrets: its static address.
    /// (Dynamic leases join here once the DHCP server keeps them.)
    pub fn owner_ip(&self, node: &Node) -> Ipv4Addr {
        node.ip
    }

    /// Renders `a` for `node` as asked by `peer`, enforcing the owner check for
    /// artifacts with secrets: 403 and a warning for anyone but the node itself.
    pub fn artifact(&self, node: &Node, a: Artifact, peer: SocketAddr) -> Reply {
        let ip = source_ip(peer);
        if a.has_secrets() {
            if ip != IpAddr::V4(self.owner_ip(node)) {
                tracing::warn!(host = node.hostname, mac = %node.mac, peer = %ip, artifact = ?a, "REFUSED: secret config asked for from an address that is not the machine's");
                return Reply::Forbidden(format!(
                    "forbidden: this config is served only to {}\n",
                    node.hostname
                ));
            }
            tracing::info!(target: "audit", host = node.hostname, mac = %node.mac, peer = %ip, artifact = ?a, "secret config served");
        }
        match render(
            &self.cluster,
            node,
            a,
            self.secrets.as_ref(),
            self.template.as_deref(),
        ) {
            Ok(body) => {
                let content_type = if body.starts_with('{') {
                    "application/json"
                } else {
                    "text/plain; charset=utf-8"
                };
                Reply::Ok { content_type, body }
            }
            Err(e) => {
                tracing::error!(host = node.hostname, artifact = ?a, "cannot render: {e}");
                Reply::Error(format!("slipway cannot render this: {e}\n"))
            }
        }
    }
}

/// The requester's address, an IPv4-mapped IPv6 address as the IPv4 one.
fn source_ip(addr: SocketAddr) -> IpAddr {
    match addr.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// What a machine asking for its boot configuration is told to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boot {
    /// Boot the installer: the machine is not installed (or was re-armed).
    Installer,
    /// Boot from the local disk: the machine is installed.
    LocalDisk,
}

/// The server's state as every protocol sees it: the [`Snapshot`] in force (swapped
/// whole on reload, so a request in flight finishes with the configuration it started
/// with), the machines' lives, and the operator token.
pub struct Live {
    snapshot: RwLock<Arc<Snapshot>>,
    tracker: Option<Arc<Tracker>>,
    admin_token: Option<String>,
}

impl Live {
    /// Serves `snapshot` without tracking machines: every boot is an install, and the
    /// machine routes of the API answer 404.
    pub fn new(snapshot: Snapshot) -> Arc<Live> {
        Arc::new(Live {
            snapshot: RwLock::new(Arc::new(snapshot)),
            tracker: None,
            admin_token: None,
        })
    }

    /// Serves `snapshot`, tracking machines' lives in `tracker`; the operator API's
    /// changes need `admin_token` as a bearer token.
    pub fn tracking(snapshot: Snapshot, tracker: Arc<Tracker>, admin_token: String) -> Arc<Live> {
        Arc::new(Live {
            snapshot: RwLock::new(Arc::new(snapshot)),
            tracker: Some(tracker),
            admin_token: Some(admin_token),
        })
    }

    /// The configuration in force.
    pub fn current(&self) -> Arc<Snapshot> {
        match self.snapshot.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts `snapshot` in force for every later request.
    pub fn replace(&self, snapshot: Snapshot) {
        match self.snapshot.write() {
            Ok(mut g) => *g = Arc::new(snapshot),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(snapshot),
        }
    }

    /// The machines' lives, when tracked.
    pub fn tracker(&self) -> Option<&Arc<Tracker>> {
        self.tracker.as_ref()
    }

    /// The boot decision, the same for every way a machine boots (iPXE over HTTP,
    /// pxelinux or GRUB over TFTP): records that `node` fetched its boot configuration
    /// (`firmware` says what asked), then tells it to install unless its life says it
    /// is installed. Without tracking, every boot installs.
    pub fn boot(&self, node: &Node, firmware: String) -> Boot {
        let Some(t) = &self.tracker else {
            return Boot::Installer;
        };
        if let Err(e) = t.record(node.mac, now(), Input::BootScript { firmware }) {
            tracing::error!(mac = %node.mac, "cannot record the boot: {e}");
        }
        if t.boots_installer(node.mac) {
            Boot::Installer
        } else {
            Boot::LocalDisk
        }
    }
}

/// The DNS server's limits: queries answered only from loopback, the cluster's subnet
/// and `network.dns_clients`, at most `network.dns_rate_limit` per second per client.
pub fn dns_options(cluster: &Cluster) -> slipway_dns::Options {
    let mut options = slipway_dns::Options::default();
    options
        .allowed_clients
        .push(ipnet::IpNet::V4(cluster.network.subnet));
    options
        .allowed_clients
        .extend(cluster.network.dns_clients.iter().copied());
    options.rate_limit = cluster.network.dns_rate_limit;
    options
}
