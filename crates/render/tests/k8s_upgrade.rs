//! Kubernetes upgrades: the HA example (3 control planes behind a VIP, 2 workers) moved
//! from v1.31.2 to v1.32.0. The order and every node's script and unit must equal the
//! files under `tests/golden/ha-upgrade/` (regenerate with `SLIPWAY_BLESS=1`), each
//! script must parse (`bash -n`), and run against stand-ins for the node's commands it
//! must call them in kubeadm's order and stop at the first failure.

use std::path::{Path, PathBuf};
use std::process::Command;

use slipway_cluster::{Cluster, NoHost, load_str};
use slipway_render::k8s_upgrade::{self, Action, step};
use slipway_render::urls::Urls;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// examples/ha.yaml with `kubernetes.version` changed to `version`.
fn ha_at(version: &str) -> Cluster {
    let path = root().join("examples/ha.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(text.contains("  version: v1.31.2\n"), "ha.yaml moved on");
    let text = text.replace("  version: v1.31.2\n", &format!("  version: {version}\n"));
    let loaded = load_str("ha.yaml", &text, &root().join("examples"), &NoHost);
    loaded
        .valid()
        .cloned()
        .unwrap_or_else(|| panic!("{:?}", loaded.diagnostics))
}

fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/ha-upgrade")
        .join(name);
    if std::env::var_os("SLIPWAY_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        std::fs::write(&path, actual).expect("bless");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (SLIPWAY_BLESS=1 writes it)", path.display()));
    assert_eq!(actual, expected, "{} differs", path.display());
}

const SUM: &str = "3b1c3c4d56e0f0b7c0b8a4b2d3a5e2f1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5";

#[test]
fn the_ha_cluster_upgrades_in_kubeadms_order_and_each_node_gets_its_script() {
    let c = ha_at("v1.32.0");
    let s = step("v1.31.2", &c.kubernetes.version).expect("one minor");
    let order: Vec<(String, Action)> = k8s_upgrade::sequence(&c)
        .into_iter()
        .map(|u| (u.node.hostname.clone(), u.action))
        .collect();
    assert_eq!(order.len(), c.nodes.len());
    assert_eq!(order[0].1, Action::Apply, "{order:?}");
    assert!(
        order[1..3].iter().all(|(_, a)| *a == Action::ControlPlane),
        "{order:?}"
    );
    assert!(
        order[3..].iter().all(|(_, a)| *a == Action::Worker),
        "{order:?}"
    );
    let listing: String = order.iter().map(|(h, a)| format!("{h} {a:?}\n")).collect();
    golden("order.txt", &listing);

    let urls = Urls::new(&c);
    for node in &c.nodes {
        let script = k8s_upgrade::script(&c, node, &s, &urls, Some(SUM));
        golden(&format!("{}.sh", node.hostname), &script);
        let out = Command::new("bash")
            .arg("-n")
            .arg("-c")
            .arg(&script)
            .output()
            .expect("bash");
        assert!(
            out.status.success(),
            "{}: {}",
            node.hostname,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    golden("unit.service", &k8s_upgrade::unit(&s));
}

/// Runs `script` with every command it calls replaced by a stand-in that appends its
/// command line to a log (and fails when it is `fail`), its paths moved under a
/// scratch root. Returns the exit status and the log.
fn run_with_stand_ins(script: &str, fail: Option<&str>, tag: &str) -> (bool, Vec<String>) {
    let dir = std::env::temp_dir().join(format!("slipway-k8s-up-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let log = dir.join("calls.log");
    for cmd in [
        "curl",
        "sha256sum",
        "systemd-sysext",
        "kubeadm",
        "systemctl",
        "ln",
        "mv",
        "mkdir",
        "touch",
        "hostname",
    ] {
        let body = match cmd {
            // `kubeadm version -o short` answers the version the sysext brought.
            "kubeadm" => "[ \"$1\" = version ] && { echo v1.32.0; exit 0; }\n",
            "hostname" => "echo node\nexit 0\n",
            _ => "",
        };
        // `fail` names a command, or a command and its first argument.
        let fails = match fail {
            Some(f) if f == cmd || f.starts_with(&format!("{cmd} ")) => {
                format!("[ \"{cmd} $1\" = \"{f}\" ] || [ \"{cmd}\" = \"{f}\" ] && exit 7\n")
            }
            _ => String::new(),
        };
        let stand_in = format!(
            "#!/bin/bash\necho \"{cmd} $*\" >> '{}'\n{fails}{body}exit 0\n",
            log.display()
        );
        let p = bin.join(cmd);
        std::fs::write(&p, stand_in).expect("stand-in");
        let _ = Command::new("chmod").arg("+x").arg(&p).status();
    }
    // The absolute paths the script writes move under the scratch root; the marker
    // test uses the moved path.
    let script = script
        .replace(
            "/var/lib/slipway",
            &format!("{}/var/lib/slipway", dir.display()),
        )
        .replace(
            "/opt/extensions",
            &format!("{}/opt/extensions", dir.display()),
        );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .output()
        .expect("bash");
    let calls = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    (out.status.success(), calls)
}

#[test]
fn the_scripts_call_kubeadm_in_order_and_stop_at_the_first_failure() {
    let c = ha_at("v1.32.0");
    let s = step("v1.31.2", "v1.32.0").expect("step");
    let urls = Urls::new(&c);
    let seq = k8s_upgrade::sequence(&c);
    let first = seq[0].node;
    let worker = seq.last().expect("nodes").node;

    let (ok, calls) = run_with_stand_ins(
        &k8s_upgrade::script(&c, first, &s, &urls, Some(SUM)),
        None,
        "first",
    );
    assert!(ok, "{calls:?}");
    let pos = |prefix: &str| {
        calls
            .iter()
            .position(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` in {calls:?}"))
    };
    let order = [
        pos("curl -fsSL"),
        pos("sha256sum --check"),
        pos("systemd-sysext refresh"),
        pos("kubeadm version -o short"),
        pos("kubeadm upgrade plan v1.32.0"),
        pos("kubeadm upgrade apply --yes --certificate-renewal=false v1.32.0"),
        pos("systemctl restart kubelet"),
    ];
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{calls:?}");

    let (ok, calls) = run_with_stand_ins(
        &k8s_upgrade::script(&c, worker, &s, &urls, None),
        None,
        "worker",
    );
    assert!(ok, "{calls:?}");
    assert!(
        calls
            .iter()
            .any(|l| l == "kubeadm upgrade node --certificate-renewal=false"),
        "{calls:?}"
    );
    assert!(
        !calls.iter().any(|l| l.contains("upgrade apply")),
        "{calls:?}"
    );

    // A download that does not match stops everything before the sysext changes.
    let (ok, calls) = run_with_stand_ins(
        &k8s_upgrade::script(&c, first, &s, &urls, Some(SUM)),
        Some("sha256sum"),
        "bad-sum",
    );
    assert!(!ok);
    assert!(
        !calls.iter().any(|l| l.starts_with("systemd-sysext")),
        "{calls:?}"
    );
    assert!(
        !calls.iter().any(|l| l.starts_with("kubeadm upgrade")),
        "{calls:?}"
    );
    // kubeadm failing leaves the kubelet alone and no marker.
    let (ok, calls) = run_with_stand_ins(
        &k8s_upgrade::script(&c, first, &s, &urls, Some(SUM)),
        Some("kubeadm upgrade"),
        "kubeadm-fails",
    );
    assert!(!ok);
    assert!(
        calls.iter().any(|l| l.starts_with("kubeadm upgrade plan")),
        "{calls:?}"
    );
    assert!(
        !calls.iter().any(|l| l.contains("restart kubelet")),
        "{calls:?}"
    );
    assert!(!calls.iter().any(|l| l.starts_with("touch")), "{calls:?}");
}
