//! `slipway serve`: everything a bare machine talks to while it network-boots, in one
//! process: DHCP, HTTP (and TFTP and DNS as they land), configured from the cluster
//! file alone. Stops cleanly on SIGINT/SIGTERM.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use slipway_cluster::{Cluster, DhcpMode};
use slipway_dhcp::driver::Listen;
use slipway_serve::Snapshot;
use slipway_store::tracker::Tracker;
use slipway_store::{LeaseStore, RedbStore};
use tokio::sync::watch;

use crate::EXIT_INVALID;
use crate::check::load_valid;

/// Where each service listens; `None` fields take the cluster's defaults.
#[derive(Debug, Clone, clap::Args)]
pub struct ListenArgs {
    /// HTTP: listen here instead of network.server:network.http_port.
    #[arg(long)]
    pub http_listen: Option<SocketAddr>,
    /// DHCP: listen here instead of 0.0.0.0:67 (bound to network.interface).
    #[arg(long)]
    pub dhcp_listen: Option<SocketAddrV4>,
    /// DHCP: send replies to this client port instead of 68 (tests).
    #[arg(long, default_value_t = 68)]
    pub dhcp_client_port: u16,
    /// Do not run the DHCP server (whatever network.dhcp.mode says).
    #[arg(long)]
    pub no_dhcp: bool,
    /// TFTP: listen here instead of network.server:69.
    #[arg(long)]
    pub tftp_listen: Option<SocketAddr>,
    /// Do not run the TFTP server.
    #[arg(long)]
    pub no_tftp: bool,
    /// DNS: listen here (UDP and TCP) instead of network.server:53.
    #[arg(long)]
    pub dns_listen: Option<SocketAddr>,
    /// Do not run the DNS server.
    #[arg(long)]
    pub no_dns: bool,
    /// Where the iPXE boot programs are. Default: the asset mirror's `ipxe/` when
    /// `slipway mirror` put them there, else /usr/lib/ipxe (Debian's `ipxe` package).
    #[arg(long)]
    pub boot_dir: Option<PathBuf>,
    /// The operator API (authenticated JSON: status, events, re-arm) listens here; it
    /// must be loopback unless --api-tls-cert and --api-tls-key are given.
    #[arg(long, default_value_t = slipway_http::api::DEFAULT_LISTEN)]
    pub api_listen: SocketAddr,
    /// Serve the operator API over TLS with this certificate chain (PEM).
    #[arg(long, requires = "api_tls_key")]
    pub api_tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --api-tls-cert.
    #[arg(long, requires = "api_tls_cert")]
    pub api_tls_key: Option<PathBuf>,
    /// Do not serve the operator API (status, events, reinstall and provision then
    /// cannot reach this server).
    #[arg(long, conflicts_with_all = ["api_tls_cert", "api_tls_key"])]
    pub no_api: bool,
    /// Started as root: become this user once every socket is bound (the state
    /// directory is handed to it). Default: `slipway` if that account exists; `root`
    /// stays root.
    #[arg(long)]
    pub user: Option<String>,
}

/// Where each service listens unless a `--*-listen` flag says otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultListen {
    /// HTTP: `network.server:network.http_port`.
    pub http: SocketAddr,
    /// TFTP: `network.server:69`.
    pub tftp: SocketAddr,
    /// DNS (UDP and TCP): `network.server:53`.
    pub dns: SocketAddr,
    /// DHCP binds to this interface (`network.interface`).
    pub dhcp_interface: String,
}

/// The default listening addresses of `cluster`'s services.
pub fn default_listen(cluster: &Cluster) -> DefaultListen {
    let server = std::net::IpAddr::V4(cluster.network.server);
    DefaultListen {
        http: SocketAddr::new(server, cluster.network.http_port),
        tftp: SocketAddr::new(server, 69),
        dns: SocketAddr::new(server, 53),
        dhcp_interface: cluster.network.interface.clone(),
    }
}

/// Prints a line for whoever started `serve` (tests and scripts read the addresses);
/// a closed standard output is not a reason to stop serving.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, $($arg)*);
        let _ = out.flush();
    }};
}

fn template(cluster: &Cluster) -> anyhow::Result<Option<String>> {
    match cluster
        .os
        .generic
        .as_ref()
        .and_then(|g| g.template.as_ref())
    {
        Some(path) => {
            Ok(Some(std::fs::read_to_string(path).with_context(|| {
                format!("reading template {}", path.display())
            })?))
        }
        None => Ok(None),
    }
}

/// Serves the cluster in `file` until SIGINT or SIGTERM; SIGHUP reloads the file.
pub fn serve(
    file: &Path,
    state_dir: &Path,
    listen: ListenArgs,
    offline: bool,
) -> anyhow::Result<ExitCode> {
    let Some(cluster) = load_valid(file, offline)? else {
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    if let Some(refusal) = refuse_missing_os(&cluster, file) {
        eprintln!("slipway: {refusal}");
        return Ok(ExitCode::FAILURE);
    }
    let boot_dir_in_use = boot_dir(listen.boot_dir.as_deref(), &cluster);
    tracing::info!(dir = %boot_dir_in_use.display(), "iPXE boot programs");
    let become_user = crate::privileges::target(listen.user.as_deref())?;
    let api_tls = api_tls(&listen)?;
    match crate::privileges::raise_fd_limit() {
        Ok(n) => tracing::debug!(limit = n, "open files"),
        Err(e) => tracing::warn!("cannot raise the open-file limit: {e:#}"),
    }
    let mut secrets = crate::state::open(state_dir, &cluster)?;
    let db = Arc::new(open_store(state_dir)?);
    let store: Arc<dyn LeaseStore> = db.clone();
    let key = crate::state::secret_file(&state_dir.join("lifecycle.key"), 32)?;
    let tracker = Arc::new(Tracker::new(db, key).context("reading machine states")?);
    secrets.1 = Some(tracker.clone());
    let admin = crate::state::api_token(state_dir)?;
    warn_missing_mirror(&cluster);
    let reload = Reload {
        file: file.to_path_buf(),
        state_dir: state_dir.to_path_buf(),
        offline,
        tracker: tracker.clone(),
        boot_dir: boot_dir_in_use,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(run(
        cluster,
        Arc::new(secrets),
        store,
        listen,
        reload,
        Operator {
            token: admin,
            tls: api_tls,
        },
        become_user,
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// The operator API's token and, beyond loopback, its TLS configuration.
struct Operator {
    token: String,
    tls: Option<Arc<slipway_http::tls::ServerConfig>>,
}

/// The operator API's TLS configuration, if any; refuses an API on a non-loopback
/// address in clear text (the token, and what it reads, would cross the network).
fn api_tls(listen: &ListenArgs) -> anyhow::Result<Option<Arc<slipway_http::tls::ServerConfig>>> {
    if listen.no_api {
        return Ok(None);
    }
    match (&listen.api_tls_cert, &listen.api_tls_key) {
        (Some(cert), Some(key)) => Ok(Some(
            slipway_http::tls::server_config(cert, key).context("--api-tls-cert/--api-tls-key")?,
        )),
        _ if listen.api_listen.ip().is_loopback() => Ok(None),
        _ => anyhow::bail!(
            "--api-listen {}: the operator API would carry its token and the cluster's \
             inventory in clear text over the network; give --api-tls-cert and \
             --api-tls-key, or listen on loopback (the default, {})",
            listen.api_listen,
            slipway_http::api::DEFAULT_LISTEN
        ),
    }
}

use crate::mirror_cmd::DEBIAN_BOOT_DIR;

/// Where the iPXE boot programs come from: `given`, else the mirror's `ipxe/` when
/// `slipway mirror` filled it (all of its programs there), else Debian's directory.
pub fn boot_dir(given: Option<&Path>, cluster: &Cluster) -> PathBuf {
    if let Some(g) = given {
        return g.to_path_buf();
    }
    if let slipway_cluster::AssetSource::Mirror(dir) = &cluster.os.assets {
        let mirrored = dir.join(slipway_mirror::BOOT_DIR);
        if slipway_mirror::IPXE_PROGRAMS
            .iter()
            .all(|p| mirrored.join(p).is_file())
        {
            return mirrored;
        }
    }
    PathBuf::from(DEBIAN_BOOT_DIR)
}

fn warn_missing_mirror(cluster: &Cluster) {
    if let slipway_cluster::AssetSource::Mirror(dir) = &cluster.os.assets
        && !dir.is_dir()
    {
        tracing::warn!(dir = %dir.display(), "the asset mirror directory does not exist: OS images will 404");
    }
    for image in slipway_mirror::oci::missing(cluster) {
        tracing::warn!(image = %image, "not in the image mirror (run `slipway mirror --only images`): nodes pull it from its registry");
    }
    let (_, rest) = crate::mirror_cmd::missing(cluster);
    for f in rest {
        tracing::warn!(file = %f.display(), "missing from the asset mirror (run `slipway mirror`): machines asking for it get 404");
    }
}

/// Why `serve` must not start: an OS file every installing machine asks for (kernel,
/// initramfs, disk image, version.txt) is missing from the local mirror. Signatures
/// and the sysext image only warn ([`warn_missing_mirror`]).
fn refuse_missing_os(cluster: &Cluster, file: &Path) -> Option<String> {
    let (os, _) = crate::mirror_cmd::missing(cluster);
    if os.is_empty() {
        return None;
    }
    let list: Vec<String> = os.iter().map(|f| format!("  {}", f.display())).collect();
    Some(format!(
        "refusing to serve: the machines would ask for OS files the asset mirror does not hold:\n{}\n\
         run `slipway mirror {}` to fetch and verify them (or `slipway check --assets {}` to list what is missing)",
        list.join("\n"),
        file.display(),
        file.display()
    ))
}

/// What a SIGHUP needs to load the cluster file again.
struct Reload {
    file: PathBuf,
    state_dir: PathBuf,
    offline: bool,
    tracker: Arc<Tracker>,
    /// The iPXE boot programs' directory, resolved at start.
    boot_dir: PathBuf,
}

impl Reload {
    /// Loads the file again; on success puts it in force everywhere, on failure logs
    /// why and keeps the running configuration.
    fn apply(&self, services: &slipway_serve::Services) {
        match self.load(&self.boot_dir) {
            Ok(Some(snapshot)) => {
                warn_missing_mirror(&snapshot.cluster);
                services.put_in_force(snapshot);
            }
            Ok(None) => {
                tracing::error!(file = %self.file.display(), "reload refused: the cluster file has errors (see above); the running configuration stays")
            }
            Err(e) => tracing::error!("reload refused: {e:#}; the running configuration stays"),
        }
    }

    /// The file, its secrets and template as a snapshot; `None` when the file is invalid.
    fn load(&self, boot_dir: &Path) -> anyhow::Result<Option<Snapshot>> {
        let Some(cluster) = load_valid(&self.file, self.offline)? else {
            return Ok(None);
        };
        let mut secrets = crate::state::open(&self.state_dir, &cluster)?;
        secrets.1 = Some(self.tracker.clone());
        Ok(Some(Snapshot {
            template: template(&cluster)?,
            secrets: Arc::new(secrets),
            cluster,
            boot_dir: Some(boot_dir.to_path_buf()),
        }))
    }
}

fn open_store(state_dir: &Path) -> anyhow::Result<RedbStore> {
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("creating {}", state_dir.display()))?;
    let path: PathBuf = state_dir.join("state.redb");
    let store = RedbStore::open(&path).with_context(|| {
        format!("opening the state database {} (is another `slipway serve` running with this state directory?)", path.display())
    })?;
    // Leases, machines and report keys: nobody else's to read.
    use std::os::unix::fs::PermissionsExt;
    for (p, mode) in [(state_dir, 0o700), (path.as_path(), 0o600)] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("restricting {}", p.display()))?;
    }
    Ok(store)
}

async fn run(
    cluster: Cluster,
    secrets: Arc<crate::state::PkiSecrets>,
    store: Arc<dyn LeaseStore>,
    listen: ListenArgs,
    reload: Reload,
    operator: Operator,
    become_user: Option<nix::unistd::User>,
) -> anyhow::Result<()> {
    let Operator {
        token: admin_token,
        tls: api_tls,
    } = operator;
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let mut tasks = tokio::task::JoinSet::new();

    // HTTP.
    let defaults = default_listen(&cluster);
    let http_addr = listen.http_listen.unwrap_or(defaults.http);
    let tracker = reload.tracker.clone();
    let live = slipway_serve::Live::tracking(
        Snapshot {
            cluster: cluster.clone(),
            secrets,
            template: template(&cluster)?,
            boot_dir: Some(reload.boot_dir.clone()),
        },
        tracker.clone(),
        admin_token,
    );
    // Only as the network's DHCP server does slipway record machines' PXE DHCP (a
    // ProxyDHCP answer binds nothing): otherwise the first boot script arms an install.
    live.arm_on_boot_script(cluster.network.dhcp.mode != DhcpMode::Authoritative || listen.no_dhcp);
    // In-place OS updates: the rollout kept in the state directory (see README
    // "Upgrading").
    let updates = slipway_serve::os_update::OsUpdates::open(&reload.state_dir)
        .context("reading the OS update rollout")?;
    live.enable_os_updates(std::sync::Arc::new(updates));
    let listener = tokio::net::TcpListener::bind(http_addr)
        .await
        .with_context(|| format!("HTTP: cannot listen on {http_addr}"))?;
    let local = listener.local_addr().context("HTTP listener address")?;
    tracing::info!(%local, "HTTP service listening");
    say!("http listening on {local}");
    let rx = stop_rx.clone();
    let http = live.clone();
    tasks.spawn(async move {
        slipway_http::serve(listener, http, stopped(rx))
            .await
            .context("HTTP service")
    });

    // The operator API, on a listener of its own.
    if !listen.no_api {
        let addr = listen.api_listen;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("operator API: cannot listen on {addr} (--api-listen)"))?;
        let local = listener.local_addr().context("API listener address")?;
        let scheme = if api_tls.is_some() { "https" } else { "http" };
        tracing::info!(%local, scheme, "operator API listening");
        say!("api listening on {scheme}://{local}");
        let rx = stop_rx.clone();
        let api = live.clone();
        tasks.spawn(async move {
            slipway_http::serve_api(listener, api, api_tls, stopped(rx))
                .await
                .context("operator API")
        });
    }

    // TFTP: generated pxelinux/GRUB configs over the boot programs and the mirror.
    if !listen.no_tftp {
        let mirror = live.current().mirror().map(std::path::Path::to_path_buf);
        let source = slipway_serve::tftp_layers(live.clone(), &reload.boot_dir, mirror.as_deref());
        let addr = listen.tftp_listen.unwrap_or(defaults.tftp);
        let config = slipway_tftp::Config::default();
        // Bind now so a taken port stops the start; the server takes the socket over.
        let socket = std::net::UdpSocket::bind(addr)
            .with_context(|| format!("TFTP: cannot listen on {addr}"))?;
        let local = socket.local_addr().context("TFTP address")?;
        say!("tftp listening on {local}");
        let rx = stop_rx.clone();
        tasks.spawn(async move {
            slipway_tftp::serve(socket, source, config, stopped(rx))
                .await
                .context("TFTP server")
        });
    }

    // DNS.
    let mut zone_handle = None;
    let mut dns_access = None;
    if !listen.no_dns {
        let zone = slipway_dns::Zone::from_cluster(&cluster).context("building the DNS zone")?;
        let handle = slipway_dns::ZoneHandle::new(zone);
        zone_handle = Some(handle.clone());
        let addr = listen.dns_listen.unwrap_or(defaults.dns);
        let listeners = slipway_dns::Listeners::bind(addr)
            .await
            .with_context(|| format!("DNS: cannot listen on {addr}"))?;
        say!("dns listening on {}", listeners.udp_addr().unwrap_or(addr));
        let upstreams = cluster.network.upstream_dns.clone();
        let options = slipway_serve::dns_options(&cluster);
        let (access_tx, access) = watch::channel(slipway_dns::Access::of(&options));
        dns_access = Some(access_tx);
        let rx = stop_rx.clone();
        tasks.spawn(async move {
            slipway_dns::serve_with_access(
                listeners,
                handle,
                &upstreams,
                &options,
                access,
                stopped(rx),
            )
            .await
            .context("DNS server")
        });
    }

    // DHCP.
    let mut dhcp_handle = None;
    if cluster.network.dhcp.mode != DhcpMode::Off && !listen.no_dhcp {
        let leases = store.leases().context("reading leases")?;
        tracing::info!(leases = leases.len(), "leases restored");
        let server = Arc::new(Mutex::new(slipway_dhcp::Engine::new(
            slipway_serve::dhcp::config(&cluster),
            leases,
        )));
        dhcp_handle = Some(server.clone());
        let dhcp_addr = listen
            .dhcp_listen
            .unwrap_or(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 67));
        let pxe = match cluster.network.dhcp.mode {
            DhcpMode::Proxy => Some(SocketAddrV4::new(
                *dhcp_addr.ip(),
                if dhcp_addr.port() == 67 {
                    4011
                } else {
                    dhcp_addr.port() + 1
                },
            )),
            _ => None,
        };
        let l = Listen {
            dhcp: dhcp_addr,
            pxe,
            interface: Some(defaults.dhcp_interface.clone()),
            client_port: listen.dhcp_client_port,
        };
        // Open the sockets now, so a taken port or a missing interface stops the start.
        let sockets = slipway_dhcp::driver::Sockets::open(&l).context("DHCP")?;
        say!(
            "dhcp listening on {} ({})",
            l.dhcp,
            cluster.network.interface
        );
        let known = cluster.nodes.iter().map(|n| n.mac).collect();
        let recorder = slipway_serve::dhcp::Recorder::start(tracker.clone())
            .context("starting the lifecycle thread")?;
        let on_event = slipway_serve::dhcp::on_event(known, recorder, zone_handle.clone());
        let rx = stop_rx.clone();
        let store = store.clone();
        tasks.spawn(async move {
            slipway_dhcp::driver::serve(server, store, sockets, l, on_event, stopped(rx))
                .await
                .context("DHCP server")
        });
    }
    // Installs that stop making progress are retried through the BMC, then failed.
    let base_dir = reload.file.parent().map_or_else(
        || std::path::PathBuf::from("."),
        std::path::Path::to_path_buf,
    );
    let retry: Arc<slipway_serve::stall::Retry> = Arc::new(move |node| {
        crate::bmc_cmd::connect(node, &base_dir)
            .and_then(|mut b| Ok(crate::bmc_cmd::pxe_and_cycle(b.as_mut(), None)?))
            .map(str::to_string)
            .map_err(|e| format!("{e:#}"))
    });
    let current_live = live.clone();
    let watch = slipway_serve::stall::watch(
        move || current_live.current(),
        |s| &s.cluster,
        tracker.clone(),
        retry,
    );
    let rx = stop_rx.clone();
    tasks.spawn(async move {
        tokio::select! {
            _ = watch => {}
            _ = stopped(rx) => {}
        }
        Ok(())
    });
    // Every socket is bound: root is not needed any more.
    match &become_user {
        Some(user) => {
            crate::privileges::drop_to(user, &reload.state_dir)?;
            tracing::info!(user = user.name, uid = %user.uid, "running as an unprivileged user");
        }
        None if nix::unistd::getuid().is_root() => tracing::warn!(
            "serve runs as root for its whole life: create a `slipway` user (useradd --system slipway) or give --user"
        ),
        None => {}
    }
    say!("ready");

    let services = slipway_serve::Services {
        live,
        dns: zone_handle,
        dns_access,
        dhcp: dhcp_handle,
    };
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("SIGHUP handler")?;
    let outcome = loop {
        tokio::select! {
            _ = shutdown_signal() => break Ok(()),
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading the cluster file");
                // Loading and PKI work touch the disk: keep them off the reactor threads.
                tokio::task::block_in_place(|| reload.apply(&services));
            }
            Some(done) = tasks.join_next() => {
                // A service ended by itself: that is an error (they run until told to stop).
                break match done {
                    Ok(Err(e)) => Err(e),
                    Ok(Ok(())) => Err(anyhow::anyhow!("a service stopped unexpectedly")),
                    Err(e) => Err(anyhow::anyhow!("a service crashed: {e}")),
                };
            }
        }
    };
    let _ = stop_tx.send(true);
    while let Some(done) = tasks.join_next().await {
        if let Ok(Err(e)) = done {
            tracing::warn!("while stopping: {e:#}");
        }
    }
    tracing::info!("stopped");
    outcome
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod boot_dir_tests {
    use super::*;

    fn cluster(assets: &Path) -> Cluster {
        let text = format!(
            "cluster: {{name: lab, domain: lab.test}}
network: {{interface: br0, server: 10.99.0.1, subnet: 10.99.0.0/24, gateway: 10.99.0.1}}
os: {{distro: flatcar, channel: stable, version: 4081.2.0, assets: {}}}
kubernetes: {{version: v1.31.2, service_subnet: 10.100.0.0/16}}
access: {{user: core, ssh_authorized_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlaceholderPlaceholder t@x']}}
nodes: [{{mac: '52:54:00:99:00:01', hostname: cp1, ip: 10.99.0.11, roles: [control-plane]}}]
",
            assets.display()
        );
        let loaded = slipway_cluster::load_str("c.yaml", &text, assets, &slipway_cluster::NoHost);
        loaded
            .valid()
            .cloned()
            .unwrap_or_else(|| panic!("{:?}", loaded.diagnostics))
    }

    #[test]
    fn the_mirrors_boot_programs_are_used_once_all_are_there() {
        let dir = std::env::temp_dir().join(format!("slipway-bootdir-{}", std::process::id()));
        let ipxe = dir.join("ipxe");
        std::fs::create_dir_all(&ipxe).expect("dir");
        let c = cluster(&dir);
        assert_eq!(boot_dir(None, &c), PathBuf::from(DEBIAN_BOOT_DIR));
        for (i, p) in slipway_mirror::IPXE_PROGRAMS.iter().enumerate() {
            // Not until the last one is there.
            assert_eq!(boot_dir(None, &c), PathBuf::from(DEBIAN_BOOT_DIR), "{i}");
            std::fs::write(ipxe.join(p), b"x").expect("program");
        }
        assert_eq!(boot_dir(None, &c), ipxe);
        // --boot-dir wins.
        assert_eq!(
            boot_dir(Some(Path::new("/srv/tftp")), &c),
            PathBuf::from("/srv/tftp")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
