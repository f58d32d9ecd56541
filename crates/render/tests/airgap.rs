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

/// With `serve_images`, every registry the cluster's images come from is pointed at
/// slipway first (plain HTTP, pull and resolve), before the site's own mirrors; the
/// kubeadm config pins the etcd and CoreDNS tags slipway mirrored.
#[test]
fn served_images_point_containerd_at_slipway() {
    let text = "\
cluster: {name: dark}
network: {interface: br0, server: 10.99.0.1, subnet: 10.99.0.0/24, http_port: 8080}
os: {version: 4081.2.0}
kubernetes:
  version: v1.31.2
  service_subnet: 10.100.0.0/16
  control_plane_endpoint: 10.99.0.10:6443
  network_plugin: calico
  serve_images: true
  extra_images: [quay.io/example/tool:1.0]
  registry_mirrors:
    docker.io: ['http://registry.dark.lan:5000']
access: {ssh_authorized_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlaceholderPlaceholder t@x']}
nodes:
  - {mac: 52:54:00:99:00:01, hostname: cp1, ip: 10.99.0.11, roles: [control-plane]}
";
    let loaded = load_str("dark.yaml", text, Path::new("/"), &NoHost);
    let c = loaded
        .valid()
        .cloned()
        .unwrap_or_else(|| panic!("{}", loaded.diagnostics.render(text)));
    let images = slipway_render::images::cluster_images(&c);
    let pins = slipway_render::images::kubeadm_pins("v1.31.2");
    for expected in [
        "registry.k8s.io/kube-apiserver:v1.31.2".to_string(),
        "registry.k8s.io/kube-proxy:v1.31.2".to_string(),
        format!("registry.k8s.io/etcd:{}", pins.etcd),
        format!("registry.k8s.io/coredns/coredns:{}", pins.coredns),
        format!("registry.k8s.io/pause:{}", pins.pause),
        format!(
            "ghcr.io/kube-vip/kube-vip:{}",
            slipway_render::kubevip::VERSION
        ),
        "quay.io/example/tool:1.0".to_string(),
    ] {
        assert!(images.contains(&expected), "{expected} not in {images:?}");
    }
    for cni in slipway_render::cni::images(&c) {
        assert!(images.contains(&cni), "{cni}");
    }
    let ign = render(&c, &c.nodes[0], Artifact::Installed, &ExampleSecrets, None)
        .unwrap_or_else(|e| panic!("{e}"));
    let files = files(&ign);
    let hosts: Vec<&(String, String)> = files
        .iter()
        .filter(|(p, _)| p.starts_with("/etc/containerd/certs.d/"))
        .collect();
    let names: Vec<&str> = hosts.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        names,
        [
            "/etc/containerd/certs.d/docker.io/hosts.toml",
            "/etc/containerd/certs.d/ghcr.io/hosts.toml",
            "/etc/containerd/certs.d/quay.io/hosts.toml",
            "/etc/containerd/certs.d/registry.k8s.io/hosts.toml",
        ]
    );
    // Golden: slipway first, then the site's mirror, then upstream.
    let docker = &hosts[0].1;
    assert_eq!(
        docker,
        "# slipway: mirrors for docker.io\n\
         server = \"https://registry-1.docker.io\"\n\
         \n[host.\"http://10.99.0.1:8080\"]\n  capabilities = [\"pull\", \"resolve\"]\n\
         \n[host.\"http://registry.dark.lan:5000\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
    );
    let k8s: toml::Table = toml::from_str(&hosts[3].1).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(k8s["server"].as_str(), Some("https://registry.k8s.io"));
    let host = &k8s["host"]["http://10.99.0.1:8080"];
    assert_eq!(
        host["capabilities"].as_array().map(|a| a.len()),
        Some(2),
        "{k8s:?}"
    );
    let kubeadm = files
        .iter()
        .find(|(p, _)| p == "/etc/kubernetes/kubeadm.yaml")
        .map(|(_, t)| t.clone())
        .unwrap_or_default();
    assert!(
        kubeadm.contains(&format!("imageTag: {}", pins.etcd)),
        "{kubeadm}"
    );
    assert!(
        kubeadm.contains(&format!("imageTag: {}", pins.coredns)),
        "{kubeadm}"
    );

    // Without `serve_images`, nothing points at slipway.
    let plain = text.replace(
        "  serve_images: true\n  extra_images: [quay.io/example/tool:1.0]\n",
        "",
    );
    let c = load_str("dark.yaml", &plain, Path::new("/"), &NoHost)
        .valid()
        .cloned()
        .unwrap_or_else(|| panic!("invalid"));
    let ign = render(&c, &c.nodes[0], Artifact::Installed, &ExampleSecrets, None)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!ign.contains("10.99.0.1:8080\\\"]") && !kubeadm_has_tags(&ign));
    let hosts: Vec<String> = files_of(&ign)
        .into_iter()
        .filter(|(p, _)| p.starts_with("/etc/containerd/certs.d/"))
        .map(|(p, _)| p)
        .collect();
    assert_eq!(hosts, ["/etc/containerd/certs.d/docker.io/hosts.toml"]);
}

fn files_of(ign: &str) -> Vec<(String, String)> {
    files(ign)
}

fn kubeadm_has_tags(ign: &str) -> bool {
    files(ign)
        .iter()
        .any(|(p, t)| p == "/etc/kubernetes/kubeadm.yaml" && t.contains("imageTag"))
}

/// `extra_images` and `image_sources` without `serve_images` are refused (nothing
/// would read them), as is a reference without a registry or a tag, and
/// `serve_images` with remote assets.
#[test]
fn image_keys_are_checked() {
    let base = "\
cluster: {name: dark}
network: {interface: br0, server: 10.99.0.1, subnet: 10.99.0.0/24}
os: {version: 4081.2.0, assets: ASSETS}
kubernetes:
  version: v1.31.2
  service_subnet: 10.100.0.0/16
  KEYS
access: {ssh_authorized_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlaceholderPlaceholder t@x']}
nodes:
  - {mac: 52:54:00:99:00:01, hostname: cp1, ip: 10.99.0.11, roles: [control-plane]}
";
    let check = |assets: &str, keys: &str, needle: Option<&str>| {
        let text = base.replace("ASSETS", assets).replace("KEYS", keys);
        let loaded = load_str("c.yaml", &text, Path::new("/"), &NoHost);
        let diags = loaded.diagnostics.render(&text);
        match needle {
            None => assert!(loaded.valid().is_some(), "{keys}: {diags}"),
            Some(n) => {
                assert!(loaded.valid().is_none(), "{keys} was accepted");
                assert!(diags.contains(n), "{keys}: {diags}");
            }
        }
    };
    check("mirror", "serve_images: true", None);
    check(
        "mirror",
        "extra_images: [docker.io/library/busybox:1.36]",
        Some("applies only with `kubernetes.serve_images: true`"),
    );
    check(
        "mirror",
        "image_sources: {docker.io: 'http://x.lan'}",
        Some("applies only with"),
    );
    check(
        "mirror",
        "serve_images: true\n  extra_images: [busybox:1.36]",
        Some("does not name a registry host"),
    );
    check(
        "mirror",
        "serve_images: true\n  extra_images: [docker.io/library/busybox]",
        Some("has no tag or digest"),
    );
    check(
        "mirror",
        "serve_images: true\n  image_sources: {docker.io: 'ftp://x.lan'}",
        Some("is not an http:// or https:// URL"),
    );
    check(
        "'http://assets.lan/flatcar'",
        "serve_images: true",
        Some("needs a local asset mirror"),
    );
}
