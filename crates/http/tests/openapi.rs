//! The served OpenAPI document and the router agree: every path in the document is
//! routed, and every operator route is in the document.

#![allow(missing_docs)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use slipway_cluster::MacAddr;
use slipway_http::api::types::{
    ClusterView, KubernetesView, MachineList, MachineView, NodeList, NodeUrls, NodeView, OsView,
};
use slipway_http::{ApiError, CloudConfigFile, ConfigFile, Provisioning, Reply, ReportEvent};

/// Answers every operator request with a fixed machine or node.
struct Stub;

const MAC: MacAddr = MacAddr([0x52, 0x54, 0, 0, 0, 1]);

fn machine() -> MachineView {
    MachineView {
        hostname: "cp1".into(),
        mac: MAC,
        ip: [10, 0, 0, 11].into(),
        state: "unknown".into(),
        since: None,
        generation: 0,
        firmware: None,
        reason: None,
        last_event: None,
        installed: None,
        events: None,
        os_update: None,
    }
}

fn node() -> NodeView {
    NodeView {
        hostname: "cp1".into(),
        fqdn: "cp1.example".into(),
        mac: MAC,
        ip: [10, 0, 0, 11].into(),
        roles: vec!["control-plane".into()],
        profile: None,
        install_disk: "/dev/sda".into(),
        urls: NodeUrls {
            ipxe: String::new(),
            install_config: String::new(),
            install_script: String::new(),
            installed_config: String::new(),
        },
    }
}

impl Provisioning for Stub {
    fn cni_manifest(&self) -> Reply {
        Reply::NotFound
    }
    fn chain(&self) -> Reply {
        Reply::text("#!ipxe\n")
    }
    fn ipxe_script(&self, _: MacAddr, _: SocketAddr, _: &str) -> Reply {
        Reply::NotFound
    }
    fn config(&self, _: MacAddr, _: ConfigFile, _: Option<&str>, _: SocketAddr) -> Reply {
        Reply::NotFound
    }
    fn cloud_config(&self, _: CloudConfigFile, _: SocketAddr) -> Reply {
        Reply::NotFound
    }
    fn report(&self, _: MacAddr, _: &str, _: ReportEvent, _: SocketAddr) -> Reply {
        Reply::NotFound
    }
    fn cluster(&self) -> ClusterView {
        ClusterView {
            name: "t".into(),
            domain: "example".into(),
            server: [10, 0, 0, 1].into(),
            os: OsView {
                distro: "flatcar".into(),
                channel: "stable".into(),
                version: "4081.2.0".into(),
                config_format: "ignition".into(),
            },
            kubernetes: KubernetesView {
                version: "v1.31.2".into(),
                endpoint: "10.0.0.11:6443".into(),
            },
            nodes: 1,
        }
    }
    fn nodes(&self) -> NodeList {
        NodeList {
            nodes: vec![node()],
        }
    }
    fn node(&self, _: &str) -> Result<NodeView, ApiError> {
        Ok(node())
    }
    fn machines(&self) -> Result<MachineList, ApiError> {
        Ok(MachineList {
            machines: vec![machine()],
        })
    }
    fn machine(&self, _: &str) -> Result<MachineView, ApiError> {
        Ok(MachineView {
            events: Some(Vec::new()),
            os_update: None,
            ..machine()
        })
    }
    fn operator_token(&self) -> Option<String> {
        Some("secret".into())
    }
    fn reinstall(&self, _: &str) -> Result<MachineView, ApiError> {
        Ok(machine())
    }
    fn boot_dir(&self) -> Option<PathBuf> {
        None
    }
    fn mirror_dir(&self) -> Option<PathBuf> {
        None
    }
    fn os_update_status(&self) -> Result<slipway_http::update::OsUpdateView, ApiError> {
        Ok(slipway_http::update::OsUpdateView {
            enabled: true,
            target: Some("4081.2.0".into()),
            group: "stable".into(),
            payload: true,
            halted: None,
            canary: "done".into(),
            in_flight: 0,
            nodes: Vec::new(),
        })
    }
    fn os_update_control(
        &self,
        _: slipway_http::update::OsUpdateAction,
    ) -> Result<slipway_http::update::OsUpdateView, ApiError> {
        self.os_update_status()
    }
}

fn status(req: Result<ureq::http::Response<ureq::Body>, ureq::Error>, what: &str) -> u16 {
    req.unwrap_or_else(|e| panic!("{what}: {e}"))
        .status()
        .as_u16()
}

#[test]
fn every_documented_path_is_routed_and_every_route_documented() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(slipway_http::serve_api(
        listener,
        Arc::new(Stub),
        None,
        async {
            let _ = stopped.await;
        },
    ));
    let base = format!("http://{addr}");

    let doc: serde_json::Value = ureq::get(&format!("{base}/api/v1/openapi.json"))
        .header("Authorization", "Bearer secret")
        .call()
        .unwrap_or_else(|e| panic!("{e}"))
        .body_mut()
        .read_json()
        .unwrap_or_else(|e| panic!("{e}"));
    let paths = doc["paths"]
        .as_object()
        .unwrap_or_else(|| panic!("no paths in {doc}"));
    let mut documented = Vec::new();
    for (path, ops) in paths {
        let ops = ops
            .as_object()
            .unwrap_or_else(|| panic!("{path}: no operations"));
        for method in ops.keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    documented.sort();
    let mut routes: Vec<(String, String)> = slipway_http::api::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    routes.sort();
    assert_eq!(documented, routes, "the document and the routes differ");

    // Routed: the fallback answers 404; every documented operation answers 200 from
    // the stub.
    for (method, path) in &documented {
        let url = format!("{base}{}", path.replace("{id}", "cp1"));
        let what = format!("{method} {url}");
        let code = match method.as_str() {
            "GET" => status(
                ureq::get(&url)
                    .header("Authorization", "Bearer secret")
                    .config()
                    .http_status_as_error(false)
                    .build()
                    .call(),
                &what,
            ),
            "POST" => status(
                ureq::post(&url)
                    .header("Authorization", "Bearer secret")
                    .config()
                    .http_status_as_error(false)
                    .build()
                    .send_empty(),
                &what,
            ),
            other => panic!("{other} {path}: unexpected method"),
        };
        assert_eq!(code, 200, "{what} is not routed");
    }
    // The fallback answers what is not routed, and a wrong token is refused.
    let url = format!("{base}/api/v1/nothing");
    let code = status(
        ureq::get(&url)
            .header("Authorization", "Bearer secret")
            .config()
            .http_status_as_error(false)
            .build()
            .call(),
        &url,
    );
    assert_eq!(code, 404);
    let url = format!("{base}/api/v1/machines/cp1/reinstall");
    let code = status(
        ureq::post(&url)
            .header("Authorization", "Bearer secreT")
            .config()
            .http_status_as_error(false)
            .build()
            .send_empty(),
        &url,
    );
    assert_eq!(code, 401);

    let _ = stop.send(());
    rt.block_on(server)
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn the_machine_list_keeps_its_wire_shape() {
    let v = serde_json::to_string(&MachineList {
        machines: vec![machine()],
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        v,
        r#"{"machines":[{"hostname":"cp1","mac":"52:54:00:00:00:01","ip":"10.0.0.11","state":"unknown","since":null,"generation":0,"firmware":null,"reason":null,"last_event":null}]}"#
    );
}
