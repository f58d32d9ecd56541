//! slipway's HTTP service: everything a machine fetches over HTTP while it boots and
//! installs, the asset mirror, and a read-only JSON API.
//!
//! Machine identity is the MAC in the URL AND the request's source address: an
//! artifact holding secrets (keys, tokens) is served only to a request coming from the
//! address slipway assigned to that MAC; anyone else gets 403 and a log line. Every
//! secret fetch is logged with address and MAC. See [`slipway_render::urls`] for the
//! URL layout.
#![deny(missing_docs)]

pub mod bounded;
pub mod files;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use slipway_cluster::{Cluster, ConfigFormat, MacAddr, Node};
use slipway_lifecycle::{Input, Report};
use slipway_render::{Artifact, Secrets, Urls, render};
use slipway_store::tracker::{ReportError, Tracker, now};

/// What the service serves.
pub struct Service {
    /// The cluster.
    pub cluster: Cluster,
    /// Its secrets.
    pub secrets: Arc<dyn Secrets + Send + Sync>,
    /// The generic profile's template text, if any.
    pub template: Option<String>,
    /// Where the boot programs are (iPXE's `ipxe.efi` for UEFI HTTP boot), served
    /// under `/boot/`.
    pub boot_dir: Option<PathBuf>,
}

impl Service {
    fn mirror(&self) -> Option<&std::path::Path> {
        match &self.cluster.os.assets {
            slipway_cluster::AssetSource::Mirror(dir) => Some(dir),
            slipway_cluster::AssetSource::Remote(_) => None,
        }
    }

    /// The only address allowed to fetch `node`'s secrets: its static address.
    /// (Dynamic leases join here once the DHCP server keeps them.)
    fn owner_ip(&self, node: &Node) -> Ipv4Addr {
        node.ip
    }
}

/// The service as the routes see it: swapped whole when the cluster file is reloaded,
/// so a request in flight finishes with the configuration it started with.
pub struct Live {
    service: std::sync::RwLock<Arc<Service>>,
    tracker: Option<Arc<Tracker>>,
    admin_token: Option<String>,
}

impl Live {
    /// Wraps `service`, without machine tracking.
    pub fn new(service: Service) -> Arc<Live> {
        Arc::new(Live {
            service: std::sync::RwLock::new(Arc::new(service)),
            tracker: None,
            admin_token: None,
        })
    }

    /// Wraps `service`, tracking machines' lives in `tracker`; the operator API's
    /// changes need `admin_token` as a bearer token.
    pub fn tracking(service: Service, tracker: Arc<Tracker>, admin_token: String) -> Arc<Live> {
        Arc::new(Live {
            service: std::sync::RwLock::new(Arc::new(service)),
            tracker: Some(tracker),
            admin_token: Some(admin_token),
        })
    }

    /// The configuration in force.
    pub fn current(&self) -> Arc<Service> {
        match self.service.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts `service` in force for every later request.
    pub fn replace(&self, service: Service) {
        match self.service.write() {
            Ok(mut g) => *g = Arc::new(service),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(service),
        }
    }
}

type Shared = Arc<Live>;

/// The service's routes.
pub fn router(service: Arc<Live>) -> Router {
    Router::new()
        .route("/boot.ipxe", get(chain))
        .route("/ipxe/{file}", get(ipxe))
        .route("/config/{mac}/{what}", get(config))
        .route("/cloud-configs/{file}", get(seed_cloud_config))
        .route("/boot/{file}", get(boot_file))
        .route("/report/{mac}/{token}/{event}", axum::routing::post(report))
        .route("/api/v1/machines", get(api_machines))
        .route("/api/v1/machines/{id}", get(api_machine))
        .route(
            "/api/v1/machines/{id}/reinstall",
            axum::routing::post(api_reinstall),
        )
        .route("/api/v1/cluster", get(api_cluster))
        .route("/api/v1/nodes", get(api_nodes))
        .route("/api/v1/nodes/{id}", get(api_node))
        .fallback(mirror)
        .with_state(service)
}

/// Serves `router` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: Arc<Live>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    bounded::serve_bounded(
        listener,
        router(service),
        bounded::Limits::default(),
        shutdown,
    )
    .await
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "not found\n")
}

fn source_ip(addr: SocketAddr) -> IpAddr {
    match addr.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn node_by_mac<'a>(s: &'a Service, mac: &str) -> Option<&'a Node> {
    let mac: MacAddr = mac.parse().ok()?;
    s.cluster.node_by_mac(mac)
}

async fn chain(State(live): State<Shared>) -> Response {
    let s = live.current();
    text(
        StatusCode::OK,
        slipway_render::ipxe::chain(&Urls::new(&s.cluster)),
    )
}

async fn ipxe(
    State(live): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(file): Path<String>,
    uri: Uri,
) -> Response {
    let s = live.current();
    let Some(node) = file.strip_suffix(".ipxe").and_then(|m| node_by_mac(&s, m)) else {
        tracing::info!(peer = %peer.ip(), file, "iPXE script asked for an unknown machine");
        return not_found();
    };
    let query = uri.query().unwrap_or("");
    tracing::info!(host = node.hostname, mac = %node.mac, peer = %peer.ip(), query, "iPXE script");
    let mut which = Artifact::Ipxe;
    if let Some(t) = &live.tracker {
        let firmware = firmware_of(query);
        if let Err(e) = t.record(node.mac, now(), Input::BootScript { firmware }) {
            tracing::error!(mac = %node.mac, "cannot record the boot: {e}");
        }
        if !t.boots_installer(node.mac) {
            tracing::info!(host = node.hostname, "installed: booting from local disk");
            which = Artifact::IpxeLocal;
        }
    }
    artifact(&s, node, which, peer)
}

async fn config(
    State(live): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((mac, what)): Path<(String, String)>,
) -> Response {
    let s = live.current();
    let Some(node) = node_by_mac(&s, &mac) else {
        return not_found();
    };
    let a = match what.as_str() {
        "install" => Artifact::InstallConfig,
        "install.sh" => Artifact::Install,
        "installed" => Artifact::Installed,
        _ => return not_found(),
    };
    let response = artifact(&s, node, a, peer);
    if a == Artifact::InstallConfig
        && response.status() == StatusCode::OK
        && let Some(t) = &live.tracker
        && let Err(e) = t.record(node.mac, now(), Input::InstallConfigFetched)
    {
        tracing::error!(mac = %node.mac, "cannot record the install: {e}");
    }
    response
}

async fn seed_cloud_config(
    State(live): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(file): Path<String>,
) -> Response {
    let s = live.current();
    if s.cluster.os.config_format != ConfigFormat::CloudConfig {
        return not_found();
    }
    if file == "install.sh" {
        let urls = Urls::new(&s.cluster);
        return text(
            StatusCode::OK,
            slipway_render::install::seed_script(&s.cluster, &urls),
        );
    }
    match file.strip_suffix(".yml").and_then(|m| node_by_mac(&s, m)) {
        Some(node) => artifact(&s, node, Artifact::Installed, peer),
        None => not_found(),
    }
}

/// Renders and serves one artifact, enforcing the owner check for secrets.
fn artifact(s: &Service, node: &Node, a: Artifact, peer: SocketAddr) -> Response {
    let ip = source_ip(peer);
    if a.has_secrets() {
        if ip != IpAddr::V4(s.owner_ip(node)) {
            tracing::warn!(host = node.hostname, mac = %node.mac, peer = %ip, artifact = ?a, "REFUSED: secret config asked for from an address that is not the machine's");
            return text(
                StatusCode::FORBIDDEN,
                format!(
                    "forbidden: this config is served only to {}\n",
                    node.hostname
                ),
            );
        }
        tracing::info!(host = node.hostname, mac = %node.mac, peer = %ip, artifact = ?a, "secret config served");
    }
    match render(
        &s.cluster,
        node,
        a,
        s.secrets.as_ref(),
        s.template.as_deref(),
    ) {
        Ok(body) => {
            let ct = if body.starts_with('{') {
                "application/json"
            } else {
                "text/plain; charset=utf-8"
            };
            (StatusCode::OK, [(header::CONTENT_TYPE, ct)], body).into_response()
        }
        Err(e) => {
            tracing::error!(host = node.hostname, artifact = ?a, "cannot render: {e}");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("slipway cannot render this: {e}\n"),
            )
        }
    }
}

fn node_json(c: &Cluster, n: &Node) -> serde_json::Value {
    let urls = Urls::new(c);
    json!({
        "hostname": n.hostname,
        "fqdn": c.fqdn(n),
        "mac": n.mac,
        "ip": n.ip,
        "roles": n.roles,
        "profile": n.profile,
        "install_disk": n.install_disk,
        "urls": {
            "ipxe": urls.ipxe(n.mac),
            "install_config": urls.install_config(n.mac),
            "install_script": urls.install_script(n.mac),
            "installed_config": urls.installed_config(n.mac),
        },
    })
}

async fn api_cluster(State(live): State<Shared>) -> Response {
    let s = live.current();
    let c = &s.cluster;
    axum::Json(json!({
        "name": c.cluster.name,
        "domain": c.cluster.domain,
        "server": c.network.server,
        "os": {"distro": c.os.distro, "channel": c.os.channel, "version": c.os.version, "config_format": c.os.config_format},
        "kubernetes": {"version": c.kubernetes.version, "endpoint": c.kubernetes.control_plane_endpoint.to_string()},
        "nodes": c.nodes.len(),
    }))
    .into_response()
}

async fn api_nodes(State(live): State<Shared>) -> Response {
    let s = live.current();
    let nodes: Vec<serde_json::Value> = s
        .cluster
        .nodes
        .iter()
        .map(|n| node_json(&s.cluster, n))
        .collect();
    axum::Json(json!({ "nodes": nodes })).into_response()
}

async fn api_node(State(live): State<Shared>, Path(id): Path<String>) -> Response {
    let s = live.current();
    let node = s
        .cluster
        .node_by_hostname(&id)
        .or_else(|| node_by_mac(&s, &id));
    match node {
        Some(n) => axum::Json(node_json(&s.cluster, n)).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": format!("no node `{id}`")})),
        )
            .into_response(),
    }
}

/// `platform arch` from the chain script's query (`buildarch=x86_64&platform=efi`).
fn firmware_of(query: &str) -> String {
    let get = |k: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
            .unwrap_or("?")
    };
    let clean = |v: &str| {
        v.chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(16)
            .collect::<String>()
    };
    format!("{} {}", clean(get("platform")), clean(get("buildarch")))
}

fn query_value(uri: &Uri, key: &str) -> Option<String> {
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
    State(live): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((mac, token, event)): Path<(String, String, String)>,
    uri: Uri,
) -> Response {
    let s = live.current();
    let (Some(node), Some(t)) = (node_by_mac(&s, &mac), &live.tracker) else {
        return not_found();
    };
    let r = match event.as_str() {
        "installing" => Report::Installing,
        "installed" => Report::Installed,
        "failed" => Report::Failed(
            query_value(&uri, "reason").unwrap_or_else(|| "the installer failed".into()),
        ),
        "ready" => Report::Ready {
            hostname: query_value(&uri, "hostname").unwrap_or_default(),
        },
        _ => return not_found(),
    };
    match t.report(node.mac, &token, r) {
        Ok(m) => {
            tracing::info!(host = node.hostname, mac = %node.mac, peer = %peer.ip(), event, state = %m.state, "report");
            text(StatusCode::OK, format!("{}\n", m.state))
        }
        Err(ReportError::BadToken) => {
            tracing::warn!(host = node.hostname, peer = %peer.ip(), event, "REFUSED: report with a bad token");
            text(StatusCode::FORBIDDEN, "bad token\n")
        }
        Err(ReportError::OutOfOrder(e)) => text(StatusCode::CONFLICT, format!("{e}\n")),
        Err(ReportError::Store(e)) => {
            tracing::error!("cannot store a report: {e}");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot store the report\n",
            )
        }
    }
}

fn machine_json(
    n: &Node,
    m: Option<&slipway_lifecycle::Machine>,
    events: bool,
) -> serde_json::Value {
    let mut v = json!({
        "hostname": n.hostname,
        "mac": n.mac,
        "ip": n.ip,
        "state": m.map_or("unknown", |m| m.state.as_str()),
        "since": m.map(|m| m.since),
        "generation": m.map_or(0, |m| m.generation),
        "firmware": m.and_then(|m| m.firmware.clone()),
        "reason": m.and_then(|m| m.reason.clone()),
        "last_event": m.and_then(|m| m.last_event()).map(|e| json!({"at": e.at, "from": e.from, "to": e.to, "input": e.input})),
    });
    if events {
        v["events"] = json!(m.map(|m| m.events.clone()).unwrap_or_default());
    }
    v
}

async fn api_machines(State(live): State<Shared>) -> Response {
    let s = live.current();
    let Some(t) = &live.tracker else {
        return not_found();
    };
    let all: Vec<serde_json::Value> = s
        .cluster
        .nodes
        .iter()
        .map(|n| machine_json(n, t.machine(n.mac).as_ref(), false))
        .collect();
    axum::Json(json!({ "machines": all })).into_response()
}

async fn api_machine(State(live): State<Shared>, Path(id): Path<String>) -> Response {
    let s = live.current();
    let Some(t) = &live.tracker else {
        return not_found();
    };
    match s
        .cluster
        .node_by_hostname(&id)
        .or_else(|| node_by_mac(&s, &id))
    {
        Some(n) => axum::Json(machine_json(n, t.machine(n.mac).as_ref(), true)).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": format!("no node `{id}`")})),
        )
            .into_response(),
    }
}

/// `POST /api/v1/machines/<node>/reinstall` with `Authorization: Bearer <token>`:
/// re-arms the install; the machine's next network boot installs it again.
async fn api_reinstall(
    State(live): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let s = live.current();
    let (Some(t), Some(admin)) = (&live.tracker, &live.admin_token) else {
        return not_found();
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let ok = given.len() == admin.len()
        && given
            .bytes()
            .zip(admin.bytes())
            .fold(0u8, |a, (x, y)| a | (x ^ y))
            == 0;
    if !ok {
        tracing::warn!(peer = %peer.ip(), node = id, "REFUSED: reinstall without the operator token");
        return text(StatusCode::UNAUTHORIZED, "operator token required\n");
    }
    let Some(n) = s
        .cluster
        .node_by_hostname(&id)
        .or_else(|| node_by_mac(&s, &id))
    else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": format!("no node `{id}`")})),
        )
            .into_response();
    };
    match t.record(n.mac, now(), Input::Reinstall) {
        Ok(m) => {
            tracing::info!(
                host = n.hostname,
                generation = m.generation,
                "install re-armed"
            );
            axum::Json(machine_json(n, Some(&m), false)).into_response()
        }
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}

async fn boot_file(
    State(live): State<Shared>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    let s = live.current();
    let Some(dir) = s.boot_dir.as_deref() else {
        return not_found();
    };
    files::serve_under(dir, &file, &headers).await
}

async fn mirror(
    State(live): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let s = live.current();
    if method != Method::GET && method != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "read-only\n");
    }
    let Some(root) = s.mirror() else {
        return not_found();
    };
    let path = uri.path();
    let decoded = percent_decode(path);
    let Some(path) = decoded else {
        return not_found();
    };
    files::serve_under(root, &path, &headers).await
}

/// Decodes %XX escapes; `None` for malformed escapes or non-UTF-8 results.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
