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
use slipway_http::Service;
use slipway_store::{LeaseStore, RedbStore};
use tokio::sync::watch;

use crate::EXIT_INVALID;
use crate::check::load_valid;

/// Where each service listens; `None` fields take the cluster's defaults.
#[derive(Debug, Clone, Default, clap::Args)]
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

/// Serves the cluster in `file` until SIGINT or SIGTERM.
pub fn serve(
    file: &Path,
    state_dir: &Path,
    listen: ListenArgs,
    offline: bool,
) -> anyhow::Result<ExitCode> {
    let Some(cluster) = load_valid(file, offline)? else {
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    let secrets = crate::state::open(state_dir, &cluster)?;
    let store: Arc<dyn LeaseStore> = Arc::new(open_store(state_dir)?);
    if let slipway_cluster::AssetSource::Mirror(dir) = &cluster.os.assets
        && !dir.is_dir()
    {
        tracing::warn!(dir = %dir.display(), "the asset mirror directory does not exist: OS images will 404");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(run(cluster, Arc::new(secrets), store, listen))?;
    Ok(ExitCode::SUCCESS)
}

fn open_store(state_dir: &Path) -> anyhow::Result<RedbStore> {
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("creating {}", state_dir.display()))?;
    let path: PathBuf = state_dir.join("state.redb");
    RedbStore::open(&path).with_context(|| format!("opening the state database {}", path.display()))
}

async fn run(
    cluster: Cluster,
    secrets: Arc<crate::state::PkiSecrets>,
    store: Arc<dyn LeaseStore>,
    listen: ListenArgs,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let mut tasks = tokio::task::JoinSet::new();

    // HTTP.
    let http_addr = listen.http_listen.unwrap_or(SocketAddr::new(
        cluster.network.server.into(),
        cluster.network.http_port,
    ));
    let service = Arc::new(Service {
        cluster: cluster.clone(),
        secrets: secrets.clone(),
        template: template(&cluster)?,
    });
    let listener = tokio::net::TcpListener::bind(http_addr)
        .await
        .with_context(|| format!("HTTP: cannot listen on {http_addr}"))?;
    let local = listener.local_addr().context("HTTP listener address")?;
    tracing::info!(%local, "HTTP service listening");
    println!("http listening on {local}");
    let rx = stop_rx.clone();
    tasks.spawn(async move {
        slipway_http::serve(listener, service, stopped(rx))
            .await
            .context("HTTP service")
    });

    // DHCP.
    if cluster.network.dhcp.mode != DhcpMode::Off && !listen.no_dhcp {
        let leases = store.leases().context("reading leases")?;
        tracing::info!(leases = leases.len(), "leases restored");
        let server = Arc::new(Mutex::new(slipway_dhcp::Server::new(
            slipway_dhcp::Config::from_cluster(&cluster),
            leases,
        )));
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
            interface: Some(cluster.network.interface.clone()),
            client_port: listen.dhcp_client_port,
        };
        // Open the sockets now, so a taken port or a missing interface stops the start.
        slipway_dhcp::driver::open_socket(l.dhcp, l.interface.as_deref())
            .map(drop)
            .context("DHCP")?;
        println!(
            "dhcp listening on {} ({})",
            l.dhcp, cluster.network.interface
        );
        let on_bound: Arc<dyn Fn(&slipway_store::Lease) + Send + Sync> = Arc::new(|_lease| {});
        let rx = stop_rx.clone();
        let store = store.clone();
        tasks.spawn(async move {
            slipway_dhcp::driver::serve(server, store, l, on_bound, stopped(rx))
                .await
                .context("DHCP server")
        });
    }

    tokio::select! {
        _ = shutdown_signal() => {}
        Some(done) = tasks.join_next() => {
            // A service ended by itself: that is an error (they run until told to stop).
            let _ = stop_tx.send(true);
            match done {
                Ok(Err(e)) => return Err(e),
                Ok(Ok(())) => anyhow::bail!("a service stopped unexpectedly"),
                Err(e) => anyhow::bail!("a service crashed: {e}"),
            }
        }
    }
    let _ = stop_tx.send(true);
    while let Some(done) = tasks.join_next().await {
        if let Ok(Err(e)) = done {
            tracing::warn!("while stopping: {e:#}");
        }
    }
    tracing::info!("stopped");
    Ok(())
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
