//! The operator's JSON API under `/api/v1/`: the cluster, its nodes, the machines'
//! lives, re-arming an install, and this API's own OpenAPI description. Served on a
//! listener of its own ([`crate::serve_api`]); every request, reads included, needs
//! the operator token as `Authorization: Bearer <token>` (401 otherwise).
//!
//! Every route is listed in [`ROUTES`] and described in [`ApiDoc`]; a test checks
//! that the two and the router agree.

pub mod types;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{ApiError, Shared, not_found, text};
use types::{
    BuildView, ClusterView, ErrorBody, EventView, KubernetesView, MachineList, MachineView,
    NodeList, NodeUrls, NodeView, OsView,
};

/// The port the operator API listens on by default, on loopback
/// ([`DEFAULT_LISTEN`]).
pub const DEFAULT_PORT: u16 = 9180;

/// Where `slipway serve` listens for the operator API unless told otherwise, and where
/// the CLI looks for it: `127.0.0.1:9180`.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, DEFAULT_PORT));

/// The name of the operator token's security scheme in [`ApiDoc`].
pub const SECURITY_SCHEME: &str = "operator_token";

/// The operator API's OpenAPI description, generated from the handlers and the types
/// of [`types`]; served at `GET /api/v1/openapi.json`. Every operation needs the
/// [`SECURITY_SCHEME`] (HTTP bearer).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "slipway operator API",
        description = "The cluster, its nodes and the machines' lives, as the running `slipway serve` sees them. Every request needs the operator token (`<state-dir>/api-token`, as hex) as `Authorization: Bearer <token>`."
    ),
    modifiers(&OperatorToken),
    security(("operator_token" = [])),
    paths(
        api_machines,
        api_machine,
        api_reinstall,
        api_cluster,
        api_nodes,
        api_node,
        crate::update::api_os_update,
        crate::update::api_os_update_halt,
        crate::update::api_os_update_resume,
        openapi_json
    ),
    components(schemas(
        MachineList,
        MachineView,
        BuildView,
        EventView,
        NodeList,
        NodeView,
        NodeUrls,
        ClusterView,
        OsView,
        KubernetesView,
        ErrorBody,
        crate::update::OsUpdateView,
        crate::update::OsUpdateNode
    ))
)]
pub struct ApiDoc;

/// Declares the [`SECURITY_SCHEME`] in the document's components.
struct OperatorToken;

impl Modify for OperatorToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            SECURITY_SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The operator token: the hex of `<state-dir>/api-token`, which `slipway serve` makes once.",
                    ))
                    .build(),
            ),
        );
    }
}

/// Every operator route as (method, path), paths in OpenAPI's `{param}` syntax,
/// which is axum's too. The router registers exactly these.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/machines"),
    ("GET", "/api/v1/machines/{id}"),
    ("POST", "/api/v1/machines/{id}/reinstall"),
    ("GET", "/api/v1/cluster"),
    ("GET", "/api/v1/nodes"),
    ("GET", "/api/v1/nodes/{id}"),
    ("GET", "/api/v1/os-update"),
    ("POST", "/api/v1/os-update/halt"),
    ("POST", "/api/v1/os-update/resume"),
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
        ("GET", "/api/v1/os-update") => get(crate::update::api_os_update),
        ("POST", "/api/v1/os-update/halt") => post(crate::update::api_os_update_halt),
        ("POST", "/api/v1/os-update/resume") => post(crate::update::api_os_update_resume),
        ("GET", "/api/v1/openapi.json") => get(openapi_json),
        // A programming error caught by every test that builds the router.
        _ => unreachable!("no handler for {method} {path}"),
    }
}

/// The operator routes, [`ROUTES`] with their handlers, behind the token check (which
/// guards any other path too: without the token nothing is learned, not even which
/// paths exist).
pub(crate) fn routes(provisioning: Shared) -> Router {
    ROUTES
        .iter()
        .fold(Router::new(), |r, (method, path)| {
            r.route(path, handler(method, path))
        })
        .fallback(|| async { not_found() })
        .layer(axum::middleware::from_fn_with_state(
            provisioning.clone(),
            authorize,
        ))
        .with_state(provisioning)
}

/// Lets a request through only with `Authorization: Bearer <operator token>`: 401 with
/// `WWW-Authenticate: Bearer` otherwise; 404 when the server offers no API.
async fn authorize(State(p): State<Shared>, request: Request, next: Next) -> Response {
    let Some(expected) = p.operator_token() else {
        return not_found();
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer);
    let challenge = match given {
        Some(token) if same_secret(token, &expected) => return next.run(request).await,
        Some(_) => r#"Bearer realm="slipway", error="invalid_token""#,
        None => r#"Bearer realm="slipway""#,
    };
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default();
    refused(
        &peer,
        request.method().as_str(),
        request.uri().path(),
        given.is_some(),
    );
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::WWW_AUTHENTICATE, challenge),
            (header::CONTENT_TYPE, crate::TEXT),
        ],
        "operator token required: send `Authorization: Bearer <token>`, the hex of <state-dir>/api-token\n",
    )
        .into_response()
}

/// The token of an `Authorization` value `Bearer <token>` (the scheme in any case).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Logs a refused request: at most one line per 10 s (a client hammering the API
/// cannot flood the log), with how many went unlogged before it.
fn refused(peer: &str, method: &str, path: &str, wrong_token: bool) {
    static LAST: Mutex<Option<Instant>> = Mutex::new(None);
    static UNLOGGED: AtomicU64 = AtomicU64::new(0);
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    let now = Instant::now();
    if last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(10)) {
        UNLOGGED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    *last = Some(now);
    let unlogged = UNLOGGED.swap(0, Ordering::Relaxed);
    let why = if wrong_token {
        "a wrong operator token"
    } else {
        "no operator token"
    };
    tracing::warn!(
        peer,
        method,
        path,
        unlogged,
        "REFUSED: operator API request with {why} (at most one such line per 10 s)"
    );
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
        (status = 401, description = "No or a wrong operator token"),
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
        (status = 401, description = "No or a wrong operator token"),
        (status = 404, description = "No such node", body = ErrorBody)
    )
)]
async fn api_machine(State(p): State<Shared>, Path(id): Path<String>) -> Response {
    json(p.machine(&id))
}

/// Re-arms a machine's install: its next network boot installs it again.
#[utoipa::path(
    post,
    path = "/api/v1/machines/{id}/reinstall",
    params(("id" = String, Path, description = "The node's hostname or MAC")),
    responses(
        (status = 200, description = "Re-armed: the machine as it is now", body = MachineView),
        (status = 401, description = "No or a wrong operator token"),
        (status = 404, description = "No such node", body = ErrorBody),
        (status = 500, description = "The change could not be stored")
    )
)]
async fn api_reinstall(
    State(p): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
) -> Response {
    tracing::info!(peer = %peer.ip(), node = id, "operator: reinstall");
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
    responses(
        (status = 200, description = "The cluster", body = ClusterView),
        (status = 401, description = "No or a wrong operator token")
    )
)]
async fn api_cluster(State(p): State<Shared>) -> Response {
    Json(p.cluster()).into_response()
}

/// The cluster file's nodes.
#[utoipa::path(
    get,
    path = "/api/v1/nodes",
    responses(
        (status = 200, description = "Every node", body = NodeList),
        (status = 401, description = "No or a wrong operator token")
    )
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
        (status = 401, description = "No or a wrong operator token"),
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
    responses(
        (status = 200, description = "The OpenAPI document", content_type = "application/json"),
        (status = 401, description = "No or a wrong operator token")
    )
)]
async fn openapi_json() -> Response {
    Json(ApiDoc::openapi()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_values() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer abc"), Some("abc"));
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearerabc"), None);
    }

    #[test]
    fn the_document_declares_the_bearer_scheme_for_every_operation() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
        let scheme = &doc["components"]["securitySchemes"][SECURITY_SCHEME];
        assert_eq!(scheme["type"], "http", "{doc}");
        assert_eq!(scheme["scheme"], "bearer", "{doc}");
        assert_eq!(doc["security"][0][SECURITY_SCHEME], serde_json::json!([]));
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abd", "abc"));
        assert!(!same_secret("ab", "abc"));
        assert!(!same_secret("", "abc"));
    }
}
