//! slipway-ready.service reports `ready` only after the units a node needs are up: under
//! a real systemd (tests/e2e/realos) it otherwise ran as soon as the network was online,
//! while kubeadm was still joining. Checked on the rendered Ignition config of the lab.

use std::path::Path;

use slipway_cluster::{NoHost, load_file};
use slipway_render::{Artifact, ExampleSecrets, render};

fn unit_contents(config: &str, name: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(config).expect("Ignition JSON");
    v["systemd"]["units"]
        .as_array()
        .expect("units")
        .iter()
        .find(|u| u["name"] == name)
        .unwrap_or_else(|| panic!("no unit {name}"))["contents"]
        .as_str()
        .expect("contents")
        .to_string()
}

fn values(unit: &str, key: &str) -> Vec<String> {
    unit.lines()
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .flat_map(|v| v.split_whitespace().map(str::to_string))
        .collect()
}

#[test]
fn ready_is_ordered_after_containerd_sysext_and_kubeadm() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/lab.yaml");
    let (_, loaded) = load_file(&path, &NoHost).unwrap_or_else(|e| panic!("{e}"));
    let cluster = loaded.valid().cloned().expect("lab.yaml is valid");
    for node in &cluster.nodes {
        let config = render(&cluster, node, Artifact::Installed, &ExampleSecrets, None)
            .unwrap_or_else(|e| panic!("{}: {e}", node.hostname));
        let ready = unit_contents(&config, "slipway-ready.service");
        let after = values(&ready, "After");
        for u in [
            "network-online.target",
            "containerd.service",
            "slipway-sysext.service",
            "kubeadm.service",
        ] {
            assert!(
                after.iter().any(|a| a == u),
                "{}: After= lacks {u}:\n{ready}",
                node.hostname
            );
        }
        let requires = values(&ready, "Requires");
        for u in ["slipway-sysext.service", "kubeadm.service"] {
            assert!(
                requires.iter().any(|a| a == u),
                "{}: Requires= lacks {u}",
                node.hostname
            );
            // what it requires is rendered too (a Requires= on a missing unit fails the job)
            unit_contents(&config, u);
        }
        // containerd comes with the OS: only wanted, so an OS without it still reports
        assert!(
            values(&ready, "Wants")
                .iter()
                .any(|a| a == "containerd.service")
        );
        assert!(!requires.iter().any(|a| a == "containerd.service"));
    }
}
