//! The running slipway server's state and policy, apart from any protocol: the
//! configuration in force ([`Snapshot`], swapped whole on reload through [`Live`]),
//! the boot decision (record the boot in the machine's life, then the installer or
//! the local disk: [`Live::boot`]), who gets a secret ([`Live::artifact`]: only the
//! address slipway gave the node, only while its install is armed, only with the
//! one-time install key issued with its boot script; every secret served and every
//! refusal is an audit line and an event in the machine's life), install reports and
//! re-arming an install.
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
pub mod os_update;
mod provisioning;
pub mod services;
pub mod stall;
mod tftp;
pub mod trust;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use slipway_cluster::{Cluster, Node};
use slipway_http::Reply;
use slipway_lifecycle::{Input, Refusal};
use slipway_render::{Artifact, Secrets, render_keyed};
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

    /// Renders `a` for `node`, with `key` (the machine's install key) in the URLs it
    /// carries. No check: see [`Live::artifact`].
    pub fn render(&self, node: &Node, a: Artifact, key: Option<&str>) -> Reply {
        match render_keyed(
            &self.cluster,
            node,
            a,
            self.secrets.as_ref(),
            self.template.as_deref(),
            key,
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

    /// Whether `peer` is the address slipway gave `node`.
    pub fn is_owner(&self, node: &Node, peer: SocketAddr) -> bool {
        source_ip(peer) == IpAddr::V4(self.owner_ip(node))
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Boot {
    /// Boot the installer, with this one-time install key in its URLs (`None` when
    /// machines are not tracked).
    Installer {
        /// The install key.
        key: Option<String>,
    },
    /// Boot from the local disk: the machine is installed.
    LocalDisk,
    /// Nothing: the request is not from the machine, or its install is not armed.
    Refused(String),
}

/// How a secret-bearing file is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUse<'a> {
    /// With this install key (or none) in the URL.
    Carried(Option<&'a str>),
    /// Through the seeds' layout, which cannot carry one.
    NotCarried,
}

/// The server's state as every protocol sees it: the [`Snapshot`] in force (swapped
/// whole on reload, so a request in flight finishes with the configuration it started
/// with), the machines' lives, and the operator token.
pub struct Live {
    snapshot: RwLock<Arc<Snapshot>>,
    tracker: Option<Arc<Tracker>>,
    admin_token: Option<String>,
    guard: trust::Guard,
    arm_on_boot_script: std::sync::atomic::AtomicBool,
    os_updates: std::sync::OnceLock<Arc<os_update::OsUpdates>>,
}

/// How long an armed install stays armed, in seconds (`os.install_timeout`; `None`:
/// forever).
pub fn install_window(cluster: &Cluster) -> Option<u64> {
    match cluster.os.install_timeout {
        slipway_cluster::LeaseTime::Infinite => None,
        t => Some(u64::from(t.as_secs())),
    }
}

impl Live {
    /// Serves `snapshot` without tracking machines: every boot is an install, and the
    /// operator API answers 404. Secrets still go only to their node's
    /// address; there is no install window and no install key.
    pub fn new(snapshot: Snapshot) -> Arc<Live> {
        Arc::new(Live {
            snapshot: RwLock::new(Arc::new(snapshot)),
            tracker: None,
            admin_token: None,
            guard: trust::Guard::default(),
            arm_on_boot_script: std::sync::atomic::AtomicBool::new(false),
            os_updates: std::sync::OnceLock::new(),
        })
    }

    /// [`Live::new`] with an operator API: its requests need `admin_token` as a bearer
    /// token; its cluster and node routes answer, its machine routes 404.
    pub fn with_api(snapshot: Snapshot, admin_token: String) -> Arc<Live> {
        Arc::new(Live {
            snapshot: RwLock::new(Arc::new(snapshot)),
            tracker: None,
            admin_token: Some(admin_token),
            guard: trust::Guard::default(),
            arm_on_boot_script: std::sync::atomic::AtomicBool::new(false),
            os_updates: std::sync::OnceLock::new(),
        })
    }

    /// Serves `snapshot`, tracking machines' lives in `tracker` (whose install window
    /// is set from `os.install_timeout`); every operator API request needs
    /// `admin_token` as a bearer token.
    pub fn tracking(snapshot: Snapshot, tracker: Arc<Tracker>, admin_token: String) -> Arc<Live> {
        tracker.set_install_window(install_window(&snapshot.cluster));
        Arc::new(Live {
            snapshot: RwLock::new(Arc::new(snapshot)),
            tracker: Some(tracker),
            admin_token: Some(admin_token),
            guard: trust::Guard::default(),
            arm_on_boot_script: std::sync::atomic::AtomicBool::new(false),
            os_updates: std::sync::OnceLock::new(),
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
        if let Some(t) = &self.tracker {
            t.set_install_window(install_window(&snapshot.cluster));
        }
        match self.snapshot.write() {
            Ok(mut g) => *g = Arc::new(snapshot),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(snapshot),
        }
    }

    /// For a server that records no machine's DHCP (`network.dhcp.mode: off` or
    /// `proxy`, or DHCP not run): the first boot script a machine fetches from its own
    /// address arms its install, as its first PXE DHCP would.
    pub fn arm_on_boot_script(&self, yes: bool) {
        self.arm_on_boot_script
            .store(yes, std::sync::atomic::Ordering::Relaxed);
    }

    /// Serves in-place OS updates with `updates` (`POST /v1/update/`, the reboot lock,
    /// the operator's rollout routes); only the first call counts.
    pub fn enable_os_updates(&self, updates: Arc<os_update::OsUpdates>) {
        let _ = self.os_updates.set(updates);
    }

    /// The OS update service, when enabled.
    pub fn os_updates(&self) -> Option<&Arc<os_update::OsUpdates>> {
        self.os_updates.get()
    }

    /// The machines' lives, when tracked.
    pub fn tracker(&self) -> Option<&Arc<Tracker>> {
        self.tracker.as_ref()
    }

    /// The boot decision, the same for every way a machine boots (iPXE over HTTP,
    /// pxelinux or GRUB over TFTP), for a request from `peer`; `firmware` says what
    /// asked. Only the machine's own address moves its life: a request from anywhere
    /// else records nothing and gets the local disk, or a refusal if the machine is
    /// not installed. From the machine: records the boot, then boots the disk if its
    /// life says it is installed; else, if its install is armed, the installer with a
    /// one-time install key (the one issued in the last [`trust::KEY_REUSE_SECS`] if
    /// it asks again); else a refusal. Without tracking, every boot installs.
    pub fn boot(&self, node: &Node, firmware: String, peer: SocketAddr) -> Boot {
        let Some(t) = &self.tracker else {
            return Boot::Installer { key: None };
        };
        let now = now();
        if !self.current().is_owner(node, peer) {
            if !t.boots_installer(node.mac) {
                return Boot::LocalDisk;
            }
            let why = "asked from an address that is not the machine's";
            self.refuse(node, "boot script", peer, why);
            return Boot::Refused(why.into());
        }
        if self
            .arm_on_boot_script
            .load(std::sync::atomic::Ordering::Relaxed)
            && let Err(e) = t.arm(node.mac, now)
        {
            tracing::error!(mac = %node.mac, "cannot arm the install: {e}");
        }
        if let Err(e) = t.record(node.mac, now, Input::BootScript { firmware }) {
            tracing::error!(mac = %node.mac, "cannot record the boot: {e}");
        }
        let Some(m) = t.machine(node.mac) else {
            return Boot::Refused("the machine's life could not be recorded".into());
        };
        if !m.boots_installer() {
            return Boot::LocalDisk;
        }
        if !m.armed(now) {
            let why = Refusal::NotArmed.as_str();
            self.refuse(node, "boot script", peer, why);
            return Boot::Refused(format!(
                "{why}: re-arm it with `slipway reinstall` or `slipway provision`"
            ));
        }
        if let Some(key) = self
            .guard
            .recent_key(node.mac, now, |k| m.key_is_current(k))
        {
            return Boot::Installer { key: Some(key) };
        }
        match t.issue_key(node.mac, now, &source_ip(peer).to_string()) {
            Ok(key) => {
                self.guard.issued(node.mac, &key, now);
                tracing::info!(target: "audit", host = node.hostname, mac = %node.mac, peer = %source_ip(peer), "install key issued");
                Boot::Installer { key: Some(key) }
            }
            Err(e) => {
                tracing::error!(mac = %node.mac, "cannot issue an install key: {e}");
                Boot::Refused("slipway cannot issue an install key".into())
            }
        }
    }

    /// Serves artifact `a` of `node` to `peer` (`what` names it in logs and events).
    /// An artifact without secrets is rendered for anyone. One with secrets only to
    /// the node's own address and, when machines are tracked, only while its install
    /// is armed and for the install key it was issued ([`KeyUse`]): anything else is
    /// refused (403; 410 for a key already used, a replay), with an audit line and an
    /// event in the machine's life. Every secret served is an audit line and an event.
    pub fn artifact(
        &self,
        s: &Snapshot,
        node: &Node,
        a: Artifact,
        what: &str,
        key: KeyUse<'_>,
        peer: SocketAddr,
    ) -> Reply {
        let carried = match key {
            KeyUse::Carried(k) => k,
            KeyUse::NotCarried => None,
        };
        if !a.has_secrets() {
            return s.render(node, a, carried);
        }
        if !s.is_owner(node, peer) {
            self.refuse(node, what, peer, "not the machine's address");
            return Reply::Forbidden(format!(
                "forbidden: this config is served only to {}\n",
                node.hostname
            ));
        }
        if let Some(t) = &self.tracker {
            let now = now();
            let m = t
                .machine(node.mac)
                .unwrap_or_else(|| slipway_lifecycle::Machine::new(node.mac));
            let allowed = match key {
                KeyUse::Carried(k) => m.may_serve(now, k),
                KeyUse::NotCarried => m.may_serve_keyless(now),
            };
            if let Err(why) = allowed {
                // A replay is an alarm: always in the machine's life.
                self.refuse_as(node, what, peer, why.as_str(), why == Refusal::Replayed);
                let text = format!("{}: {why}\n", node.hostname);
                return match why {
                    Refusal::Replayed => Reply::Gone(text),
                    _ => Reply::Forbidden(text),
                };
            }
            let input = if a == Artifact::InstallConfig {
                Input::InstallConfigFetched
            } else {
                Input::SecretServed {
                    what: what.to_string(),
                    peer: source_ip(peer).to_string(),
                }
            };
            if let Err(e) = t.record(node.mac, now, input) {
                tracing::error!(mac = %node.mac, "cannot record a secret served: {e}");
                return Reply::Error("slipway cannot record this\n".into());
            }
            // What this install is made of, for `slipway upgrade` to compare later.
            match build_of(&s.cluster, node, s.template.as_deref()) {
                Ok(b) => {
                    if let Err(e) = t.note_served(node.mac, b) {
                        tracing::error!(mac = %node.mac, "cannot record the build served: {e}");
                    }
                }
                Err(e) => tracing::warn!(host = node.hostname, "no build fingerprint: {e}"),
            }
        }
        tracing::info!(target: "audit", host = node.hostname, mac = %node.mac, peer = %source_ip(peer), what, "secret served");
        s.render(node, a, carried)
    }

    /// A refusal: an audit line (within the log budget) and, at most once per
    /// [`trust::REFUSAL_EVENT_SECS`], an event in the machine's life.
    fn refuse(&self, node: &Node, what: &str, peer: SocketAddr, why: &str) {
        self.refuse_as(node, what, peer, why, false);
    }

    /// [`Live::refuse`]; `always` records the event whatever the event budget.
    fn refuse_as(&self, node: &Node, what: &str, peer: SocketAddr, why: &str, always: bool) {
        let now = now();
        let peer = source_ip(peer);
        if let Some(suppressed) = self.guard.refusal_line(now) {
            tracing::warn!(target: "audit", host = node.hostname, mac = %node.mac, %peer, what, why, suppressed, "REFUSED");
        }
        if let Some(t) = &self.tracker
            && (self.guard.refusal_event_due(node.mac, now) || always)
            && let Err(e) = t.record(
                node.mac,
                now,
                Input::Refused {
                    what: what.to_string(),
                    peer: peer.to_string(),
                    why: why.to_string(),
                },
            )
        {
            tracing::error!(mac = %node.mac, "cannot record a refusal: {e}");
        }
    }
}

/// What `node` is installed with when `cluster` (and the generic profile's `template`)
/// is served: the OS version and the fingerprint of its install configuration
/// ([`slipway_render::install_fingerprint_inputs`]). `slipway upgrade` computes the
/// same from the cluster file and compares it with what each machine recorded.
pub fn build_of(
    cluster: &Cluster,
    node: &Node,
    template: Option<&str>,
) -> Result<slipway_lifecycle::Build, slipway_render::RenderError> {
    let parts = slipway_render::install_fingerprint_inputs(cluster, node, template)?;
    Ok(slipway_lifecycle::Build::of(&cluster.os.version, &parts))
}

/// What `node` holds after an in-place OS update to `cluster.os.version`, when it held
/// `installed` before: the build the file renders now, if `installed` is exactly what
/// the file renders at `installed`'s OS version (the install differed only in the
/// version the update changed); `None` when its install config differs from the
/// file's in anything else (then `slipway upgrade` still has it to re-image).
pub fn carried_build(
    cluster: &Cluster,
    node: &Node,
    installed: &slipway_lifecycle::Build,
) -> Option<slipway_lifecycle::Build> {
    if installed.os_version == cluster.os.version {
        return None;
    }
    let mut before = cluster.clone();
    before.os.version = installed.os_version.clone();
    let was = build_of(&before, node, None).ok()?;
    (was == *installed)
        .then(|| build_of(cluster, node, None).ok())
        .flatten()
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
