//! Serves a cluster file's zone for manual testing with dig:
//!
//! ```sh
//! cargo run -p slipway-dns --example serve -- examples/lab.yaml 127.0.0.1:5353 [UPSTREAM:PORT ...]
//! dig @127.0.0.1 -p 5353 cp1.lab.slipway.test
//! ```
//!
//! Upstreams given here replace the file's `network.upstream_dns`. Ctrl-C stops it.

use std::net::SocketAddr;
use std::path::Path;

use slipway_dns::{Listeners, Options, Zone, ZoneHandle, serve};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let mut args = std::env::args().skip(1);
    let usage = "usage: serve CLUSTER.yaml ADDRESS:PORT [UPSTREAM:PORT ...]";
    let file = args.next().ok_or(usage)?;
    let listen: SocketAddr = args.next().ok_or(usage)?.parse()?;
    let upstreams = args
        .map(|a| a.parse::<SocketAddr>())
        .collect::<Result<Vec<_>, _>>()?;

    let (text, loaded) = slipway_cluster::load_file(Path::new(&file), &slipway_cluster::NoHost)?;
    let Some(cluster) = loaded.valid() else {
        eprintln!("{}", loaded.diagnostics.render(&text));
        return Err("invalid cluster file".into());
    };
    let zone = ZoneHandle::new(Zone::from_cluster(cluster)?);
    let listeners = Listeners::bind(listen).await?;
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    serve(listeners, zone, &upstreams, &Options::default(), shutdown).await?;
    Ok(())
}
