//! In-place OS updates over HTTP: the machine-facing Omaha endpoint
//! (`POST /v1/update/`, what Flatcar's `update_engine` asks), the reboot lock
//! (`POST /v1/reboot/<mac>/<token>`, what slipway's reboot coordinator on the node
//! asks), and the operator's view and control of the rollout
//! (`GET /api/v1/os-update`, `POST /api/v1/os-update/halt|resume`). What to answer is
//! the [`crate::Provisioning`] port's; the answers may hash a payload or run a reboot
//! hook's bookkeeping, so they run off the async runtime (`spawn_blocking`).

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{Reply, Shared};

/// The largest Omaha request body taken (`update_engine`'s are about 1 KiB).
pub const MAX_UPDATE_BODY: usize = 64 * 1024;

/// What the operator asks of the rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OsUpdateAction {
    /// Stop granting updates and reboots.
    Halt,
    /// Go on (after a halt: a timeout, a failure, the canary, or an operator).
    Resume,
}

/// The in-place OS update rollout as the operator API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OsUpdateView {
    /// Whether slipway serves OS updates (`upgrade.os_updates`).
    pub enabled: bool,
    /// The version nodes are updated to (`os.version`), if there is a rollout.
    pub target: Option<String>,
    /// The Omaha group (`upgrade.group`).
    pub group: String,
    /// Whether the update payload is in the mirror (nothing is offered without it).
    pub payload: bool,
    /// Why the rollout is halted, if it is.
    pub halted: Option<String>,
    /// The safe-mode canary: `pending`, `running <node>` or `done`.
    pub canary: String,
    /// Nodes granted and not yet running the target.
    pub in_flight: usize,
    /// Every node of the rollout.
    pub nodes: Vec<OsUpdateNode>,
}

/// One node of the rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OsUpdateNode {
    /// The node's hostname.
    pub hostname: String,
    /// `control-plane` or `worker`.
    pub role: String,
    /// idle, granted, downloading, downloaded, installed, reboot-granted, complete or
    /// failed.
    pub phase: String,
    /// The version it last reported.
    pub version: Option<String>,
}

/// The machine-facing routes: `POST /v1/update/` (and without the slash) and
/// `POST /v1/reboot/<mac>/<token>`.
pub(crate) fn machine_routes() -> Router<Shared> {
    Router::new()
        .route("/v1/update/", post(update))
        .route("/v1/update", post(update))
        .route("/v1/reboot/{mac}/{token}", post(reboot))
        .layer(DefaultBodyLimit::max(MAX_UPDATE_BODY))
}

async fn update(
    State(p): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Response {
    blocking(move || p.os_update(&body, peer)).await
}

async fn reboot(
    State(p): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((m, token)): Path<(String, String)>,
) -> Response {
    let Ok(mac) = m.parse() else {
        return Reply::NotFound.into_response();
    };
    blocking(move || p.reboot_lock(mac, &token, peer)).await
}

/// Runs `f` on the blocking pool; a panic there is a 500.
async fn blocking(f: impl FnOnce() -> Reply + Send + 'static) -> Response {
    match tokio::task::spawn_blocking(f).await {
        Ok(reply) => reply.into_response(),
        Err(e) => {
            tracing::error!("an OS update request failed: {e}");
            Reply::Error("slipway failed\n".into()).into_response()
        }
    }
}

/// The rollout and its nodes.
#[utoipa::path(
    get,
    path = "/api/v1/os-update",
    responses(
        (status = 200, description = "The in-place OS update rollout", body = OsUpdateView),
        (status = 401, description = "No or a wrong operator token"),
        (status = 404, description = "This server does not track machines")
    )
)]
pub(crate) async fn api_os_update(State(p): State<Shared>) -> Response {
    api_blocking(move || p.os_update_status()).await
}

/// Halts the rollout: nothing more is granted, no reboot lock is given.
#[utoipa::path(
    post,
    path = "/api/v1/os-update/halt",
    responses(
        (status = 200, description = "Halted: the rollout as it is now", body = OsUpdateView),
        (status = 401, description = "No or a wrong operator token"),
        (status = 404, description = "This server does not track machines")
    )
)]
pub(crate) async fn api_os_update_halt(
    State(p): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    tracing::info!(peer = %peer.ip(), "operator: OS update halt");
    api_blocking(move || p.os_update_control(OsUpdateAction::Halt)).await
}

/// Resumes the rollout (failed nodes may be offered the update again).
#[utoipa::path(
    post,
    path = "/api/v1/os-update/resume",
    responses(
        (status = 200, description = "Resumed: the rollout as it is now", body = OsUpdateView),
        (status = 401, description = "No or a wrong operator token"),
        (status = 404, description = "This server does not track machines")
    )
)]
pub(crate) async fn api_os_update_resume(
    State(p): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    tracing::info!(peer = %peer.ip(), "operator: OS update resume");
    api_blocking(move || p.os_update_control(OsUpdateAction::Resume)).await
}

async fn api_blocking(
    f: impl FnOnce() -> Result<OsUpdateView, crate::ApiError> + Send + 'static,
) -> Response {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => axum::Json(v).into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(e) => crate::ApiError::Internal(e.to_string()).into_response(),
    }
}
