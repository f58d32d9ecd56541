//! The operator's JSON API under `/api/v1/`: the cluster, its nodes, the machines'
//! lives, re-arming an install, and this API's own OpenAPI description.
//!
//! Every route is listed in [`ROUTES`] and described in [`ApiDoc`]; a test checks
//! that the two and the router agree.

pub mod types;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{Json, Router};
use utoipa::OpenApi;

use crate::{ApiError, Shared, not_found, text};
use types::{
    ClusterView, ErrorBody, EventView, KubernetesView, MachineList, MachineView, NodeList,
    NodeUrls, NodeView, OsView,
};

/// The operator API's OpenAPI description, generated from the handlers and the types
/// of [`types`]; served at `GET /api/v1/openapi.json`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "slipway operator API",
        description = "The cluster, its nodes and the machines' lives, as the running `slipway serve` sees them."
    ),
    paths(
        api_machines,
        api_machine,
        api_reinstall,
        api_cluster,
        api_nodes,
        api_node,
        openapi_json
    ),
    components(schemas(
        MachineList,
        MachineView,
        EventView,
        NodeList,
        NodeView,
        NodeUrls,
        ClusterView,
        OsView,
        KubernetesView,
        ErrorBody
    ))
)]
pub struct ApiDoc;

/// Every operator route as (method, path), paths in OpenAPI's `{param}` syntax,
/// which is axum's too. The router registers exactly these.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/machines"),
    ("GET", "/api/v1/machines/{id}"),
    ("POST", "/api/v1/machines/{id}/reinstall"),
    ("GET", "/api/v1/cluster"),
    ("GET", "/api/v1/nodes"),
    ("GET", "/api/v1/nodes/{id}"),
    ("GET", "/api/v1/openapi.json"),
];

/// The handler of one entry of [`ROUTES`].
fn handler(method: &str, path: &str) -> MethodRouter<Shared> {
    match (method, path) {
        ("GET", "/api/v1/machines") => get(api_machines),
        ("GET", "/api/v1/machines/{id}") => get(api_machine),
        ("POST", "/api/v1/machines/{id}/reinstall") => post(api_reinstall),
        ("GET", "/api/v1/cluster") => get(api_cluster),
        ("GET", "/api/v1/nodes") => get(api_nodes),
        ("GET", "/api/v1/nodes/{id}") => get(api_node),
        ("GET", "/api/v1/openapi.json") => get(openapi_json),
        // A programming error caught by every test that builds the router.
        _ => unreachable!("no handler for {method} {path}"),
    }
}

/// The operator routes, [`ROUTES`] with their handlers.
pub(crate) fn routes() -> Router<Shared> {
    ROUTES.iter().fold(Router::new(), |r, (method, path)| {
        r.route(path, handler(method, path))
    })
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Disabled => not_found(),
            ApiError::NoNode(_) => (
                StatusCode::NOT_FOUND,
                Json(ErrorBody {
                    error: self.to_string(),
                }),
            )
                .into_response(),
            ApiError::Internal(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
        }
    }
}

fn json<T: serde::Serialize>(r: Result<T, ApiError>) -> Response {
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Every node with its lifecycle state.
#[utoipa::path(
    get,
    path = "/api/v1/machines",
    responses(
        (status = 200, description = "Every node's machine, in the cluster file's order", body = MachineList),
        (status = 404, description = "This server does not track machines")
    )
)]
async fn api_machines(State(p): State<Shared>) -> Response {
    json(p.machines())
}

/// One machine, with every event of its life.
#[utoipa::path(
    get,
    path = "/api/v1/machines/{id}",
    params(("id" = String, Path, description = "The node's hostname or MAC")),
    responses(
        (status = 200, description = "The machine with its events", body = MachineView),
        (status = 404, description = "No such node", body = ErrorBody)
    )
)]
async fn api_machine(State(p): State<Shared>, Path(id): Path<String>) -> Response {
    json(p.machine(&id))
}

/// Re-arms a machine's install: its next network boot installs it again. Needs the
/// operator token as `Authorization: Bearer <token>`.
#[utoipa::path(
    post,
    path = "/api/v1/machines/{id}/reinstall",
    params(("id" = String, Path, description = "The node's hostname or MAC")),
    responses(
        (status = 200, description = "Re-armed: the machine as it is now", body = MachineView),
        (status = 401, description = "No or a wrong operator token"),
        (status = 404, description = "No such node", body = ErrorBody),
        (status = 500, description = "The change could not be stored")
    ),
    security(("operator_token" = []))
)]
async fn api_reinstall(
    State(p): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(admin) = p.operator_token() else {
        return not_found();
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !same_secret(given, &admin) {
        tracing::warn!(peer = %peer.ip(), node = id, "REFUSED: reinstall without the operator token");
        return text(StatusCode::UNAUTHORIZED, "operator token required\n");
    }
    json(p.reinstall(&id))
}

/// Compares a given token with the expected one in time independent of where they
/// differ (only their lengths show).
fn same_secret(given: &str, expected: &str) -> bool {
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |a, (x, y)| a | (x ^ y))
            == 0
}

/// The cluster in brief.
#[utoipa::path(
    get,
    path = "/api/v1/cluster",
    responses((status = 200, description = "The cluster", body = ClusterView))
)]
async fn api_cluster(State(p): State<Shared>) -> Response {
    Json(p.cluster()).into_response()
}

/// The cluster file's nodes.
#[utoipa::path(
    get,
    path = "/api/v1/nodes",
    responses((status = 200, description = "Every node", body = NodeList))
)]
async fn api_nodes(State(p): State<Shared>) -> Response {
    Json(p.nodes()).into_response()
}

/// One node.
#[utoipa::path(
    get,
    path = "/api/v1/nodes/{id}",
    params(("id" = String, Path, description = "The node's hostname or MAC")),
    responses(
        (status = 200, description = "The node", body = NodeView),
        (status = 404, description = "No such node", body = ErrorBody)
    )
)]
async fn api_node(State(p): State<Shared>, Path(id): Path<String>) -> Response {
    json(p.node(&id))
}

/// This API's OpenAPI description.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json"))
)]
async fn openapi_json() -> Response {
    Json(ApiDoc::openapi()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abd", "abc"));
        assert!(!same_secret("ab", "abc"));
        assert!(!same_secret("", "abc"));
    }
}
