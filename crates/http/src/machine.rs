//! The machine-facing routes: what a machine fetches while it boots and installs
//! (`/boot.ipxe`, `/ipxe/..`, `/config/..`, `/cloud-configs/..`, `/boot/..`), its
//! progress reports (`/report/..`), the read-only image registry (`/v2/..`), and the asset mirror for any other path but
//! `/api/..`: the operator API is not served to machines.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use slipway_cluster::MacAddr;

use crate::{
    CloudConfigFile, ConfigFile, Reply, ReportEvent, Shared, files, not_found, percent_decode, text,
};

/// The machine-facing routes (the mirror is the router's fallback).
pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/boot.ipxe", get(chain))
        .route("/cni/manifest.yaml", get(cni_manifest))
        .route("/ipxe/{file}", get(ipxe))
        .route("/config/{mac}/{what}", get(config))
        .route("/config/{mac}/{key}/{what}", get(keyed_config))
        .route("/cloud-configs/{file}", get(seed_cloud_config))
        .route("/boot/{file}", get(boot_file))
        .route("/report/{mac}/{token}/{event}", post(report))
        .route("/v2", any(registry))
        .route("/v2/", any(registry))
        .route("/v2/{*rest}", any(registry))
}

/// `/v2/...`: the read-only image registry over `<assets>/oci` ([`crate::registry`]).
async fn registry(
    State(p): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let layout = p.mirror_dir().map(|d| d.join(crate::registry::LAYOUT_DIR));
    crate::registry::route(layout, &method, &uri, &headers).await
}

/// The first path segments [`routes`] answers (and `api`, which the mirror refuses):
/// a path under one of them is not a plain mirror file, whatever the mirror holds.
/// Keep in step with [`routes`]; the test below checks every route is covered.
const ROUTED_SEGMENTS: [&str; 8] = [
    "boot.ipxe",
    "cni",
    "ipxe",
    "config",
    "cloud-configs",
    "boot",
    "report",
    "api",
];

/// Whether `path` (raw or decoded) may be answered by a route of its own or the
/// `/api/` refusal rather than by the mirror: its first segment, past any leading
/// slashes, is one of [`ROUTED_SEGMENTS`]. Errs towards `true`: the zero-copy path
/// serves only paths for which this is `false`, and leaves the rest to the router.
pub(crate) fn routed_elsewhere(path: &str) -> bool {
    let first = path
        .trim_start_matches('/')
        .split(['/', '?'])
        .next()
        .unwrap_or("");
    ROUTED_SEGMENTS
        .iter()
        .any(|r| first.eq_ignore_ascii_case(r))
}

fn mac(s: &str) -> Option<MacAddr> {
    s.parse().ok()
}

async fn chain(State(p): State<Shared>) -> Reply {
    p.chain()
}

async fn cni_manifest(State(p): State<Shared>) -> Reply {
    p.cni_manifest()
}

async fn ipxe(
    State(p): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(file): Path<String>,
    uri: Uri,
) -> Reply {
    let Some(mac) = file.strip_suffix(".ipxe").and_then(mac) else {
        tracing::info!(peer = %peer.ip(), file, "iPXE script asked for an unknown machine");
        return Reply::NotFound;
    };
    p.ipxe_script(mac, peer, uri.query().unwrap_or(""))
}

async fn config(
    State(p): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((m, what)): Path<(String, String)>,
) -> Reply {
    config_for(p.as_ref(), &m, None, &what, peer)
}

/// `/config/<mac>/<key>/<what>`: the same, with the one-time install key.
async fn keyed_config(
    State(p): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((m, key, what)): Path<(String, String, String)>,
) -> Reply {
    config_for(p.as_ref(), &m, Some(&key), &what, peer)
}

fn config_for(
    p: &dyn crate::Provisioning,
    m: &str,
    key: Option<&str>,
    what: &str,
    peer: SocketAddr,
) -> Reply {
    let file = match what {
        "install" => ConfigFile::InstallConfig,
        "install.sh" => ConfigFile::InstallScript,
        "installed" => ConfigFile::Installed,
        _ => return Reply::NotFound,
    };
    match mac(m) {
        Some(mac) => p.config(mac, file, key, peer),
        None => Reply::NotFound,
    }
}

async fn seed_cloud_config(
    State(p): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(file): Path<String>,
) -> Reply {
    let file = if file == "install.sh" {
        CloudConfigFile::SeedScript
    } else {
        match file.strip_suffix(".yml").and_then(mac) {
            Some(mac) => CloudConfigFile::Node(mac),
            None => return Reply::NotFound,
        }
    };
    p.cloud_config(file, peer)
}

/// The value of `key` in the query, decoded, without control characters, at most 200
/// characters.
pub(crate) fn query_value(uri: &Uri, key: &str) -> Option<String> {
    let q = uri.query()?;
    let raw = q
        .split('&')
        .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))?;
    let decoded = percent_decode(raw).unwrap_or_default();
    Some(
        decoded
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect(),
    )
}

/// `POST /report/<mac>/<token>/<event>`: the install script's and the installed
/// system's progress. The token proves the report comes from what slipway gave that
/// machine (only served to the machine's own address).
async fn report(
    State(p): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((m, token, event)): Path<(String, String, String)>,
    uri: Uri,
) -> Reply {
    let Some(mac) = mac(&m) else {
        return Reply::NotFound;
    };
    let event = match event.as_str() {
        "installing" => ReportEvent::Installing,
        "installed" => ReportEvent::Installed,
        "failed" => ReportEvent::Failed(
            query_value(&uri, "reason").unwrap_or_else(|| "the installer failed".into()),
        ),
        "ready" => ReportEvent::Ready {
            hostname: query_value(&uri, "hostname").unwrap_or_default(),
        },
        _ => return Reply::NotFound,
    };
    p.report(mac, &token, event, peer)
}

async fn boot_file(
    State(p): State<Shared>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(dir) = p.boot_dir() else {
        return not_found();
    };
    files::serve_under(&dir, &file, &headers).await
}

/// Any other path: a file of the asset mirror (GET and HEAD only); 404 under `/api/`,
/// whatever the mirror holds, so this listener never looks like the operator API.
pub(crate) async fn mirror(
    State(p): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let Some(path) = percent_decode(uri.path()) else {
        return not_found();
    };
    if path == "/api" || path.starts_with("/api/") {
        return text(
            StatusCode::NOT_FOUND,
            "not found: the operator API has a listener of its own (slipway serve --api-listen)\n",
        );
    }
    if method != Method::GET && method != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "read-only\n");
    }
    let Some(root) = p.mirror_dir() else {
        return not_found();
    };
    files::serve_under(&root, &path, &headers)
        .await
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::routed_elsewhere;

    #[test]
    fn every_route_is_routed_elsewhere_and_mirror_files_are_not() {
        for route in [
            "/boot.ipxe",
            "/cni/manifest.yaml",
            "/ipxe/52-54-00-12-34-56.ipxe",
            "/config/52-54-00-12-34-56/install",
            "/config/52-54-00-12-34-56/key/install",
            "/cloud-configs/install.sh",
            "/boot/ipxe.efi",
            "/report/52-54-00-12-34-56/t/ready",
            "/api",
            "/api/v1/nodes",
            "//boot/x",
            "/API/v1",
        ] {
            assert!(routed_elsewhere(route), "{route}");
        }
        for file in [
            "/flatcar/stable/flatcar_production_pxe.vmlinuz",
            "/a.iso",
            "/bootx/a",
            "/",
        ] {
            assert!(!routed_elsewhere(file), "{file}");
        }
    }
}
