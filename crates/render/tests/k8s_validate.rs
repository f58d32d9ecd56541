//! The Kubernetes objects slipway renders (the CNI manifests, kube-vip's static pod)
//! checked against Kubernetes' own OpenAPI schemas of the cluster's version, strictly
//! (an unknown field is an error), by `kubernetes-validate` (PyPI, offline schemas;
//! installed by `tests/support/install-kubernetes-validate.sh`, which scripts/test
//! runs). Each CNI choice is rendered for the HA example.

use std::path::{Path, PathBuf};
use std::process::Command;

use slipway_cluster::{Cluster, NoHost, load_str};
use slipway_render::{cni, kubevip};

const INSTALL: &str = "crates/render/tests/support/install-kubernetes-validate.sh";

fn validator() -> PathBuf {
    let venv = std::env::var_os("SLIPWAY_K8S_VALIDATE_VENV").map_or_else(
        || PathBuf::from("/opt/slipway-test/kubernetes-validate"),
        PathBuf::from,
    );
    let bin = venv.join("bin/kubernetes-validate");
    assert!(
        bin.exists(),
        "{} not found: run {INSTALL} (scripts/test does)",
        bin.display()
    );
    bin
}

fn example(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn load(text: &str) -> Cluster {
    let loaded = load_str("ha.yaml", text, Path::new("/srv"), &NoHost);
    loaded
        .valid()
        .cloned()
        .unwrap_or_else(|| panic!("{}", loaded.diagnostics.render(text)))
}

/// Validates the YAML documents in `text` for the cluster's Kubernetes version; panics
/// with the validator's output on any problem.
fn validate(c: &Cluster, text: &str, what: &str) {
    let dir = std::env::temp_dir().join(format!(
        "slipway-k8s-validate-{}-{}",
        std::process::id(),
        what.replace(' ', "-")
    ));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let file = dir.join("objects.yaml");
    std::fs::write(&file, text).unwrap_or_else(|e| panic!("{e}"));
    let version = c.kubernetes.version.trim_start_matches('v');
    // The schemas are per minor version: x.y.0.
    let minor: Vec<&str> = version.split('.').take(2).collect();
    let out = Command::new(validator())
        .args(["--strict", "-k", &format!("{}.0", minor.join("."))])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("kubernetes-validate: {e}"));
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{what}: kubernetes-validate refused it:\n{report}"
    );
    // Every document was checked against a schema (CRDs included), none skipped.
    let documents = text.split("\n---\n").count();
    let passed = report.matches(" passed for resource ").count();
    assert_eq!(
        passed, documents,
        "{what}: {documents} documents, {passed} validated:\n{report}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn every_cni_choice_renders_objects_kubernetes_accepts() {
    let ha = example("ha.yaml");
    let calico = load(&ha);
    let text = cni::manifest(&calico).unwrap_or_else(|| panic!("calico renders"));
    assert!(text.contains("10.244.0.0/16") && text.contains("cidr=10.99.0.0/24"));
    validate(&calico, &text, "calico");

    let mtu = load(&ha.replace("# cni_mtu: 1450", "cni_mtu: 1450"));
    let text = cni::manifest(&mtu).unwrap_or_default();
    assert!(text.contains("veth_mtu: \"1450\""), "{text}");
    validate(&mtu, &text, "calico mtu");

    let flannel = load(&ha.replace("network_plugin: calico", "network_plugin: flannel"));
    let text = cni::manifest(&flannel).unwrap_or_else(|| panic!("flannel renders"));
    assert!(text.contains("\"Network\": \"10.244.0.0/16\""), "{text}");
    assert!(text.contains("--iface=$(POD_IP)"), "{text}");
    validate(&flannel, &text, "flannel");

    let on = load(
        &ha.replace("network_plugin: calico", "network_plugin: flannel")
            .replace("# cni_interface: eno1", "cni_interface: eno1"),
    );
    let text = cni::manifest(&on).unwrap_or_default();
    assert!(text.contains("--iface=eno1"), "{text}");
    validate(&on, &text, "flannel eno1");

    let none = load(&ha.replace("network_plugin: calico", "network_plugin: none"));
    assert_eq!(cni::manifest(&none), None);
    assert_eq!(cni::plan(&none), cni::Plan::Nothing);

    let url = load(&ha.replace(
        "network_plugin: calico",
        "cni_manifest: https://example.com/cilium.yaml",
    ));
    assert_eq!(
        cni::plan(&url),
        cni::Plan::Url("https://example.com/cilium.yaml".into())
    );
    assert_eq!(cni::manifest(&url), None);
}

#[test]
fn kube_vip_is_a_pod_kubernetes_accepts() {
    let c = load(&example("ha.yaml"));
    for host in ["cp1", "cp2"] {
        let node = c.node_by_hostname(host).unwrap_or_else(|| panic!("{host}"));
        let pod = kubevip::template(&c, node).replace("@SLIPWAY_VIP_INTERFACE@", "eth0");
        assert!(pod.contains("10.99.0.10"), "{pod}");
        // kubeadm 1.29+ gives admin.conf its rights only once init is done: the init
        // node's kube-vip uses super-admin.conf.
        let conf = if host == "cp1" {
            "/etc/kubernetes/super-admin.conf"
        } else {
            "path: /etc/kubernetes/admin.conf"
        };
        assert!(pod.contains(conf), "{host}: {pod}");
        validate(&c, &pod, &format!("kube-vip {host}"));
    }
}
