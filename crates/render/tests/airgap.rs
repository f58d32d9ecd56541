//! An air-gapped site: everything a node pulls comes from the mirror and the registry
//! named in the cluster file, never from the internet.

use std::path::Path;

use base64::Engine as _;
use slipway_cluster::{NoHost, load_str};
use slipway_render::{Artifact, ExampleSecrets, render};

const CLUSTER: &str = "\
cluster: {name: dark}
network: {interface: br0, server: 10.99.0.1, subnet: 10.99.0.0/24}
os: {version: 4081.2.0}
kubernetes:
  version: v1.31.2
  service_subnet: 10.100.0.0/16
  image_repository: registry.dark.lan:5000/k8s
  registry_mirrors:
    docker.io: ['http://registry.dark.lan:5000']
    registry.k8s.io: ['http://registry.dark.lan:5000']
access: {ssh_authorized_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlaceholderPlaceholder t@x']}
nodes:
  - {mac: 52:54:00:99:00:01, hostname: cp1, ip: 10.99.0.11, roles: [control-plane]}
";

fn files(ign: &str) -> Vec<(String, String)> {
    let v: serde_json::Value = serde_json::from_str(ign).unwrap_or_default();
    v["storage"]["files"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|f| {
            let src = f["contents"]["source"].as_str().unwrap_or_default();
            let b64 = src.strip_prefix("data:;base64,").unwrap_or_default();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap_or_default();
            (
                f["path"].as_str().unwrap_or_default().to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            )
        })
        .collect()
}

#[test]
fn nothing_is_pulled_from_the_internet() {
    let loaded = load_str("dark.yaml", CLUSTER, Path::new("/"), &NoHost);
    let c = loaded
        .valid()
        .cloned()
        .unwrap_or_else(|| panic!("{}", loaded.diagnostics.render(CLUSTER)));
    let ign = render(&c, &c.nodes[0], Artifact::Installed, &ExampleSecrets, None)
        .unwrap_or_else(|e| panic!("{e}"));
    let files = files(&ign);
    let get = |path: &str| {
        files
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, t)| t.clone())
            .unwrap_or_else(|| panic!("no {path}"))
    };

    let containerd: toml::Table =
        toml::from_str(&get("/etc/containerd/config.toml")).unwrap_or_else(|e| panic!("{e}"));
    let cri = &containerd["plugins"]["io.containerd.grpc.v1.cri"];
    assert_eq!(
        cri["sandbox_image"].as_str(),
        Some("registry.dark.lan:5000/k8s/pause:3.10")
    );
    assert_eq!(
        cri["registry"]["config_path"].as_str(),
        Some("/etc/containerd/certs.d")
    );
    assert_eq!(
        cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"].as_bool(),
        Some(true)
    );
    assert!(
        get("/etc/systemd/system/containerd.service.d/10-slipway.conf")
            .contains("CONTAINERD_CONFIG=/etc/containerd/config.toml")
    );

    for upstream in ["docker.io", "registry.k8s.io"] {
        let hosts: toml::Table = toml::from_str(&get(&format!(
            "/etc/containerd/certs.d/{upstream}/hosts.toml"
        )))
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            hosts["host"].get("http://registry.dark.lan:5000").is_some(),
            "{hosts:?}"
        );
    }
    assert!(
        get("/etc/kubernetes/kubeadm.yaml")
            .contains("imageRepository: \"registry.dark.lan:5000/k8s\"")
    );

    // The Kubernetes binaries come as a sysext from slipway's own mirror.
    let v: serde_json::Value = serde_json::from_str(&ign).unwrap_or_default();
    let units = v["systemd"]["units"].to_string();
    assert!(
        units.contains("http://10.99.0.1:8080/extensions/kubernetes-v1.31.2-x86-64.raw"),
        "{units}"
    );
    // No URL anywhere points outside the site.
    for host in [
        "registry.k8s.io/",
        "docker.io/",
        "github.com",
        "flatcar-linux.net",
        "googleapis",
    ] {
        let everything = format!(
            "{ign}{}",
            files.iter().map(|(_, t)| t.as_str()).collect::<String>()
        );
        let leaks: Vec<&str> = everything
            .lines()
            .filter(|l| {
                l.contains(host)
                    && !l.contains("server = ")
                    && !l.contains("/etc/containerd/certs.d/")
            })
            .collect();
        assert!(leaks.is_empty(), "{host} appears: {leaks:?}");
    }
}
