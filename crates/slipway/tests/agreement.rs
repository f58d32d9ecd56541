//! The files a node gets agree with each other: kubeadm's node registration and the
//! kubelet's configuration, containerd's config.toml, the networkd address and the
//! kubelet's serving certificate (from the real PKI `slipway render` creates) say the
//! same CRI socket, cgroup driver, node address and names — for every node of the lab
//! (one control plane) and HA (three control planes behind a VIP) examples.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn render(state: &Path, example: &str, node: &str) -> Value {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(example);
    let out = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .arg("--state-dir")
        .arg(state)
        .args(["--offline", "render"])
        .arg(&file)
        .args(["--node", node, "--artifact", "installed"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{example} {node}: {e}"))
}

/// The text of the Ignition file at `path`.
fn file(config: &Value, path: &str) -> String {
    let f = config["storage"]["files"]
        .as_array()
        .and_then(|fs| fs.iter().find(|f| f["path"] == path))
        .unwrap_or_else(|| panic!("no {path}"));
    let source = f["contents"]["source"].as_str().unwrap_or_default();
    let data = source.strip_prefix("data:").unwrap_or_default();
    let (meta, body) = data.split_once(',').unwrap_or_default();
    if meta.ends_with(";base64") {
        use std::io::Write as _;
        let mut child = Command::new("base64")
            .arg("-d")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        let _ = child.stdin.take().map(|mut i| i.write_all(body.as_bytes()));
        let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
        String::from_utf8_lossy(&out.stdout).to_string()
    } else {
        percent_decode(body)
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}

/// The YAML document of `kind` in `text`, as lines.
fn doc<'a>(text: &'a str, kind: &str) -> &'a str {
    text.split("\n---\n")
        .find(|d| d.contains(&format!("kind: {kind}\n")))
        .unwrap_or_else(|| panic!("no {kind} in\n{text}"))
}

/// The value after `key: ` on its first line in `text`, unquoted.
fn value<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{key}: ")))
        .map(|v| v.trim().trim_matches('"'))
        .unwrap_or_else(|| panic!("no {key} in\n{text}"))
}

fn check(state: &Path, example: &str, node: &str, ip: &str) {
    let config = render(state, example, node);
    let what = format!("{example} {node}");
    let kubeadm = file(&config, "/etc/kubernetes/kubeadm.yaml");
    let containerd: toml::Table = file(&config, "/etc/containerd/config.toml")
        .parse()
        .unwrap_or_else(|e| panic!("{what}: config.toml: {e}"));
    let network = file(&config, "/etc/systemd/network/00-slipway.network");

    // The CRI socket kubeadm registers is where containerd listens.
    let registration = kubeadm
        .split("\n---\n")
        .find(|d| d.contains("nodeRegistration:"))
        .unwrap_or_else(|| panic!("{what}: no nodeRegistration"));
    let socket = containerd
        .get("grpc")
        .and_then(|g| g.get("address"))
        .and_then(|a| a.as_str())
        .unwrap_or("/run/containerd/containerd.sock");
    assert_eq!(
        value(registration, "criSocket"),
        format!("unix://{socket}"),
        "{what}"
    );
    // The kubelet's cgroup driver is containerd's.
    let kubelet = doc(&kubeadm, "KubeletConfiguration");
    let systemd_cgroup = containerd
        .get("plugins")
        .and_then(|p| p.get("io.containerd.grpc.v1.cri"))
        .and_then(|c| c.get("containerd"))
        .and_then(|c| c.get("runtimes"))
        .and_then(|r| r.get("runc"))
        .and_then(|r| r.get("options"))
        .and_then(|o| o.get("SystemdCgroup"))
        .and_then(|v| v.as_bool());
    assert_eq!(value(kubelet, "cgroupDriver"), "systemd", "{what}");
    assert_eq!(
        systemd_cgroup,
        Some(true),
        "{what}: containerd must use systemd cgroups too"
    );
    // The node address: kubelet's node-ip, the networkd address, the serving cert.
    let node_ip = registration
        .split("name: node-ip")
        .nth(1)
        .map(|rest| value(rest, "value"))
        .unwrap_or_else(|| panic!("{what}: no node-ip in\n{registration}"));
    assert_eq!(node_ip, ip, "{what}");
    assert!(
        network.contains(&format!("Address={ip}/")),
        "{what}: {network}"
    );
    let cert_path = value(kubelet, "tlsCertFile");
    let key_path = value(kubelet, "tlsPrivateKeyFile");
    let cert = file(&config, cert_path);
    let key_mode = config["storage"]["files"]
        .as_array()
        .and_then(|fs| fs.iter().find(|f| f["path"] == key_path))
        .map(|f| f["mode"].clone());
    assert_eq!(key_mode, Some(Value::from(0o600)), "{what}: {key_path}");
    let dir = std::env::temp_dir().join(format!("slipway-agree-{}-{node}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("kubelet.crt"), &cert).unwrap_or_else(|e| panic!("{e}"));
    let text = Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-ext",
            "subjectAltName",
            "-subject",
            "-in",
        ])
        .arg(dir.join("kubelet.crt"))
        .output()
        .unwrap_or_else(|e| panic!("openssl: {e}"));
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    assert!(text.contains(&format!("IP Address:{ip}")), "{what}: {text}");
    assert!(text.contains(&format!("DNS:{node}")), "{what}: {text}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn kubeadm_kubelet_containerd_and_network_agree_on_every_node() {
    let state = std::env::temp_dir().join(format!("slipway-agree-{}", std::process::id()));
    for (node, ip) in [("cp1", "10.99.0.11"), ("worker1", "10.99.0.21")] {
        check(&state.join("lab"), "lab.yaml", node, ip);
    }
    for (node, ip) in [
        ("cp1", "10.99.0.11"),
        ("cp2", "10.99.0.12"),
        ("cp3", "10.99.0.13"),
        ("worker2", "10.99.0.22"),
    ] {
        check(&state.join("ha"), "ha.yaml", node, ip);
    }
    let _ = std::fs::remove_dir_all(state);
}
