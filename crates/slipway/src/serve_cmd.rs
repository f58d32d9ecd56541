//! `slipway serve`: the network services. Today: the HTTP service (DHCP, TFTP and DNS
//! are not written yet).

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use slipway_http::Service;

use crate::EXIT_INVALID;
use crate::check::load_valid;

/// Serves the cluster in `file` until SIGINT or SIGTERM.
pub fn serve(
    file: &Path,
    state_dir: &Path,
    http_listen: Option<SocketAddr>,
    offline: bool,
) -> anyhow::Result<ExitCode> {
    let Some(cluster) = load_valid(file, offline)? else {
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    let secrets = crate::state::open(state_dir, &cluster)?;
    let template = match cluster
        .os
        .generic
        .as_ref()
        .and_then(|g| g.template.as_ref())
    {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading template {}", path.display()))?,
        ),
        None => None,
    };
    if let slipway_cluster::AssetSource::Mirror(dir) = &cluster.os.assets {
        if !dir.is_dir() {
            tracing::warn!(dir = %dir.display(), "the asset mirror directory does not exist: OS images will 404");
        }
    }
    let listen = http_listen.unwrap_or(SocketAddr::new(
        cluster.network.server.into(),
        cluster.network.http_port,
    ));
    let service = Arc::new(Service {
        cluster,
        secrets: Arc::new(secrets),
        template,
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("HTTP: cannot listen on {listen}"))?;
        let local = listener.local_addr().context("HTTP listener address")?;
        tracing::info!(%local, "HTTP service listening");
        println!("http listening on {local}");
        slipway_http::serve(listener, service, shutdown())
            .await
            .context("HTTP service")?;
        tracing::info!("stopped");
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn shutdown() {
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
