//! slipway's HTTP adapter: the routes a machine fetches while it boots and installs,
//! the asset mirror and boot programs, and the operator's JSON API — and nothing of
//! what they answer. What to answer is asked of a [`Provisioning`] (the port), which
//! the `slipway-serve` crate implements with the running server's state and policy:
//! this crate parses requests, maps answers to status codes and bodies, serves files,
//! and checks the operator token.
//!
//! Two listeners, two routers. [`serve`] is the machine-facing one ([`router`]): it
//! serves no operator data, and anything under `/api/` answers 404 there.
//! [`serve_api`] is the operator's ([`api_router`]): every request, reads included,
//! needs `Authorization: Bearer <operator token>`, and it can run behind TLS.
//!
//! Machine identity is the MAC in the URL AND the request's source address; the
//! provisioning side decides, the peer address is handed to it with each request.
//!
//! The operator API is described by [`ApiDoc`] (OpenAPI, served at
//! `GET /api/v1/openapi.json`); its bodies are the typed structs in [`api::types`],
//! which the CLI reads too.
//!
//! ```no_run
//! use std::sync::Arc;
//! use slipway_http::Provisioning;
//!
//! async fn run(provisioning: Arc<dyn Provisioning>) -> std::io::Result<()> {
//!     let machines = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//!     let operator = tokio::net::TcpListener::bind("127.0.0.1:9180").await?;
//!     // Serve both until Ctrl-C (the API in clear text: it is on loopback).
//!     let stop = async {
//!         let _ = tokio::signal::ctrl_c().await;
//!     };
//!     let api = slipway_http::serve_api(operator, provisioning.clone(), None, std::future::pending());
//!     let (m, a) = tokio::join!(slipway_http::serve(machines, provisioning, stop), api);
//!     m.and(a)
//! }
//! ```
#![deny(missing_docs)]

pub mod api;
pub mod bounded;
pub mod files;
mod machine;
pub mod registry;
pub mod tls;
pub mod update;
mod zerocopy;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use slipway_cluster::MacAddr;

pub use api::ApiDoc;
use api::types::{ClusterView, MachineList, MachineView, NodeList, NodeView};

/// A machine-facing answer: a body to send, or why not. Bodies of refusals and errors
/// are sent as they are (text, ending in a newline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// 200 with this body and content type.
    Ok {
        /// The `Content-Type` header.
        content_type: &'static str,
        /// The body.
        body: String,
    },
    /// 404 `not found`.
    NotFound,
    /// 403 with this text: the requester may not have it.
    Forbidden(String),
    /// 409 with this text: the request makes no sense now.
    Conflict(String),
    /// 410 with this text: what the request carries (a one-time install key) was
    /// used up.
    Gone(String),
    /// 500 with this text: slipway failed.
    Error(String),
    /// 400 with this text: the request cannot be read.
    BadRequest(String),
}

impl Reply {
    /// A 200 plain-text answer.
    pub fn text(body: impl Into<String>) -> Reply {
        Reply::Ok {
            content_type: TEXT,
            body: body.into(),
        }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        match self {
            Reply::Ok { content_type, body } => {
                (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response()
            }
            Reply::NotFound => not_found(),
            Reply::Forbidden(t) => text(StatusCode::FORBIDDEN, t),
            Reply::Conflict(t) => text(StatusCode::CONFLICT, t),
            Reply::Gone(t) => text(StatusCode::GONE, t),
            Reply::Error(t) => text(StatusCode::INTERNAL_SERVER_ERROR, t),
            Reply::BadRequest(t) => text(StatusCode::BAD_REQUEST, t),
        }
    }
}

/// Why an operator API request got no answer body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// This server does not track machines (the machine routes answer 404).
    #[error("not found")]
    Disabled,
    /// No node has this hostname or MAC (404 with an [`api::types::ErrorBody`]).
    #[error("no node `{0}`")]
    NoNode(String),
    /// slipway failed (500 with this text).
    #[error("{0}")]
    Internal(String),
}

/// Which configuration of a node `/config/<mac>/<what>` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigFile {
    /// `install`: the installer's configuration (has secrets).
    InstallConfig,
    /// `install.sh`: the install script.
    InstallScript,
    /// `installed`: the installed system's configuration (has secrets).
    Installed,
}

/// What `/cloud-configs/<file>` asks for (cloud-config installs only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloudConfigFile {
    /// `install.sh`: the seed script that picks the machine's own file.
    SeedScript,
    /// `<mac>.yml`: that machine's installed configuration.
    Node(MacAddr),
}

/// What `POST /report/<mac>/<token>/<event>` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportEvent {
    /// The installer started writing the disk.
    Installing,
    /// The installer finished.
    Installed,
    /// The installer failed, and why.
    Failed(String),
    /// The installed system booted, with the hostname it has.
    Ready {
        /// Its hostname as it sees it.
        hostname: String,
    },
}

/// The port: everything the routes need answered. The routes know HTTP; an
/// implementation knows the cluster, the machines' lives and how to render their
/// configurations. Every method is called with the configuration in force when the
/// request arrived; none blocks for long (rendering, one store write).
pub trait Provisioning: Send + Sync + 'static {
    /// `GET /boot.ipxe`: the script every iPXE chains to, which fetches the
    /// machine's own script.
    fn chain(&self) -> Reply;
    /// `GET /cni/manifest.yaml`: the pod network manifest the init node applies (the
    /// cluster's rendering or the user's file; nothing secret), 404 when there is none.
    fn cni_manifest(&self) -> Reply;
    /// `GET /ipxe/<mac>.ipxe`: the machine's iPXE script (installer or local boot);
    /// `query` is the request's raw query string (iPXE's platform and architecture).
    fn ipxe_script(&self, mac: MacAddr, peer: SocketAddr, query: &str) -> Reply;
    /// `GET /config/<mac>/[<key>/]<what>`: one of a node's configurations for `peer`,
    /// with the one-time install key the request carries, if any.
    fn config(&self, mac: MacAddr, file: ConfigFile, key: Option<&str>, peer: SocketAddr) -> Reply;
    /// `GET /cloud-configs/<file>`: the cloud-config seed files.
    fn cloud_config(&self, file: CloudConfigFile, peer: SocketAddr) -> Reply;
    /// `POST /report/<mac>/<token>/<event>`: install progress, proven by `token`.
    fn report(&self, mac: MacAddr, token: &str, event: ReportEvent, peer: SocketAddr) -> Reply;
    /// `GET /api/v1/cluster` (like every API route: only once the operator token was
    /// checked).
    fn cluster(&self) -> ClusterView;
    /// `GET /api/v1/nodes`.
    fn nodes(&self) -> NodeList;
    /// `GET /api/v1/nodes/<id>`: the node with hostname or MAC `id`.
    fn node(&self, id: &str) -> Result<NodeView, ApiError>;
    /// `GET /api/v1/machines`.
    fn machines(&self) -> Result<MachineList, ApiError>;
    /// `GET /api/v1/machines/<id>`: one machine with every event.
    fn machine(&self, id: &str) -> Result<MachineView, ApiError>;
    /// The token every operator API request needs as `Authorization: Bearer <token>`,
    /// reads and changes alike; `None` when this server offers no API (every API
    /// request answers 404).
    fn operator_token(&self) -> Option<String>;
    /// `POST /api/v1/machines/<id>/reinstall`, the token already checked: re-arms
    /// the install and answers the machine as it is now.
    fn reinstall(&self, id: &str) -> Result<MachineView, ApiError>;
    /// Where the boot programs are, served under `/boot/`.
    fn boot_dir(&self) -> Option<PathBuf>;
    /// The asset mirror's directory, served for any other `GET`.
    fn mirror_dir(&self) -> Option<PathBuf>;
    /// `POST /v1/update/`: an Omaha request (at most [`update::MAX_UPDATE_BODY`]
    /// bytes) from `peer`, answered with Omaha XML. Called off the async runtime: it
    /// may hash the update payload. Default: 404 (no OS updates).
    fn os_update(&self, body: &[u8], peer: SocketAddr) -> Reply {
        let _ = (body, peer);
        Reply::NotFound
    }
    /// `POST /v1/reboot/<mac>/<token>`: the node asks for the reboot lock with its
    /// report token; 200 grants it. Called off the async runtime. Default: 404.
    fn reboot_lock(&self, mac: MacAddr, token: &str, peer: SocketAddr) -> Reply {
        let _ = (mac, token, peer);
        Reply::NotFound
    }
    /// `GET /api/v1/os-update`, the token already checked. Default: not offered.
    fn os_update_status(&self) -> Result<update::OsUpdateView, ApiError> {
        Err(ApiError::Disabled)
    }
    /// `POST /api/v1/os-update/halt|resume`, the token already checked. Default: not
    /// offered.
    fn os_update_control(
        &self,
        action: update::OsUpdateAction,
    ) -> Result<update::OsUpdateView, ApiError> {
        let _ = action;
        Err(ApiError::Disabled)
    }
}

/// The state the routes share.
type Shared = Arc<dyn Provisioning>;

/// The machine-facing routes, the mirror as fallback. No operator route: anything
/// under `/api/` answers 404 here (the operator API is [`api_router`], on a listener
/// of its own).
pub fn router(provisioning: Arc<dyn Provisioning>) -> Router {
    machine::routes()
        .merge(update::machine_routes())
        .fallback(machine::mirror)
        .with_state(provisioning)
}

/// The operator API: every route of [`api::ROUTES`], each request (and any other
/// path) refused with 401 unless it carries the operator token.
pub fn api_router(provisioning: Arc<dyn Provisioning>) -> Router {
    api::routes(provisioning)
}

/// Serves [`router`], the machine-facing routes, on `listener` until `shutdown`
/// completes, then lets the requests in flight finish. The mirror's large files go
/// out with `sendfile` (see [`bounded::serve_bounded_with_mirror`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    provisioning: Arc<dyn Provisioning>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_within(listener, provisioning, bounded::Limits::default(), shutdown).await
}

/// [`serve`] within `limits` instead of the defaults.
pub async fn serve_within(
    listener: tokio::net::TcpListener,
    provisioning: Arc<dyn Provisioning>,
    limits: bounded::Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Bounded in connections, time and memory (see [`bounded`]); TCP_NODELAY on each
    // connection, so small responses go out at once.
    let mirror = {
        let provisioning = provisioning.clone();
        bounded::MirrorFiles::new(move || provisioning.mirror_dir())
    };
    bounded::serve_bounded_with_mirror(listener, router(provisioning), limits, mirror, shutdown)
        .await
}

/// Serves [`api_router`], the operator API, on `listener` (over TLS with `tls`) until
/// `shutdown` completes, then lets the requests in flight finish. Bounded like
/// [`serve`].
pub async fn serve_api(
    listener: tokio::net::TcpListener,
    provisioning: Arc<dyn Provisioning>,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = api_router(provisioning);
    let limits = bounded::Limits::default();
    match tls {
        Some(tls) => bounded::serve_bounded_tls(listener, app, limits, tls, shutdown).await,
        None => bounded::serve_bounded(listener, app, limits, shutdown).await,
    }
}

/// Entry points for the fuzz targets (`fuzz/` at the top of the repository): the
/// parsers of request paths and queries, as the routes call them. Not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    /// Decodes the `%XX` escapes of a request path or query value; `None` for a
    /// malformed escape or a result that is not UTF-8 (the mirror answers 404).
    pub fn percent_decode(s: &str) -> Option<String> {
        crate::percent_decode(s)
    }

    /// The value of `key` in `uri`'s query as `POST /report/..` reads it: decoded,
    /// without control characters, at most 200 characters.
    pub fn query_value(uri: &axum::http::Uri, key: &str) -> Option<String> {
        crate::machine::query_value(uri, key)
    }
}

const TEXT: &str = "text/plain; charset=utf-8";

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (status, [(header::CONTENT_TYPE, TEXT)], body.into()).into_response()
}

fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "not found\n")
}

/// Decodes %XX escapes; `None` for malformed escapes (anything but two hex digits
/// after a `%`) or non-UTF-8 results.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            // from_str_radix alone would take a sign: `%+2` would decode to 0x02.
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("/a%20b/%C3%A9").as_deref(), Some("/a b/é"));
        assert_eq!(percent_decode("/%2e%2E/x").as_deref(), Some("/../x"));
        assert_eq!(percent_decode("/a%2"), None, "cut short");
        assert_eq!(percent_decode("/a%zz"), None, "not hex");
        assert_eq!(percent_decode("/%ff"), None, "not UTF-8");
        // Found by fuzz/fuzz_targets/http_path.rs: a sign is not a hex digit.
        assert_eq!(percent_decode("/dir/%+62.txt"), None);
        assert_eq!(percent_decode("/%+2e%+2e/"), None);
    }
}
