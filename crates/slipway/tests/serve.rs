//! `slipway serve` as a user runs it: the real binary on loopback, its PKI created once
//! in the state directory, a machine fetching its secret config with curl from its own
//! address, a stranger refused, and a clean stop on SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const CLUSTER: &str = "\
cluster: {name: t}
network: {interface: lo, server: 127.0.0.1, subnet: 127.0.0.0/24}
os: {version: 4081.2.0, assets: mirror}
kubernetes: {version: v1.31.2, service_subnet: 10.100.0.0/16}
access: {ssh_authorized_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlaceholderPlaceholder t@x']}
nodes:
  - {mac: 52:54:00:99:00:01, hostname: cp1, ip: 127.0.0.11, roles: [control-plane]}
  - {mac: 52:54:00:99:00:02, hostname: w1, ip: 127.0.0.21}
";

fn curl(url: &str, args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-w", "\n%{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .unwrap_or_else(|e| panic!("curl: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", ""));
    (code.to_string(), body.to_string())
}

#[test]
fn serve_hands_each_machine_its_own_secrets_and_stops_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("slipway-serve-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("mirror/4081.2.0")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.join("mirror/4081.2.0/flatcar_production_image.bin.bz2"),
        b"image",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let file = dir.join("cluster.yaml");
    std::fs::write(&file, CLUSTER).unwrap_or_else(|e| panic!("{e}"));
    let state = dir.join("state");

    let mut child = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args([
            "--state-dir",
            state.to_str().unwrap_or_default(),
            "serve",
            file.to_str().unwrap_or_default(),
            "--http-listen",
            "127.0.0.1:0",
            "--dns-listen",
            "127.0.0.1:0",
            "--no-dhcp",
            "--tftp-listen",
            "127.0.0.1:0",
        ])
        // The default log level: secrets served and refused must be audited there.
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut stdout = BufReader::new(child.stdout.take().unwrap_or_else(|| panic!("no stdout")));
    let mut line = String::new();
    stdout
        .read_line(&mut line)
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = line
        .trim()
        .strip_prefix("http listening on ")
        .unwrap_or_else(|| panic!("unexpected: {line}"))
        .to_string();
    let base = format!("http://{addr}");

    assert!(
        Path::new(&state).join("pki/ca.key").exists(),
        "PKI created at start"
    );
    let (code, body) = curl(
        &format!("{base}/config/52-54-00-99-00-01/installed"),
        &["--interface", "127.0.0.11"],
    );
    assert_eq!(code, "200");
    assert!(body.contains("\"ignition\""));
    // The real CA travels only to its node, and the kubeadm config carries the real
    // token, which is in the state directory.
    let token = std::fs::read_to_string(state.join("pki/token")).unwrap_or_default();
    let (_, cp_kubeadm) = curl(
        &format!("{base}/config/52-54-00-99-00-01/installed"),
        &["--interface", "127.0.0.11"],
    );
    assert!(!token.trim().is_empty());
    let decoded = decode_data_urls(&cp_kubeadm);
    assert!(
        decoded.contains(token.trim()),
        "cp1's config carries the bootstrap token"
    );
    assert!(decoded.contains("BEGIN"), "cp1's config carries its keys");
    let (code, body) = curl(
        &format!("{base}/config/52-54-00-99-00-01/installed"),
        &["--interface", "127.0.0.21"],
    );
    assert_eq!(code, "403", "w1 may not fetch cp1's config: {body}");
    let (code, body) = curl(
        &format!("{base}/4081.2.0/flatcar_production_image.bin.bz2"),
        &[],
    );
    assert_eq!((code.as_str(), body.as_str()), ("200", "image"));

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap_or_else(|e| panic!("{e}")) {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "serve did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
    let mut logs = String::new();
    let _ = std::io::Read::read_to_string(
        &mut child.stderr.take().unwrap_or_else(|| panic!("no stderr")),
        &mut logs,
    );
    assert!(
        logs.contains("REFUSED"),
        "the refused fetch is logged:\n{logs}"
    );
    assert!(logs.contains("secret config served"), "{logs}");

    // A second start reuses the PKI: same CA, same token.
    let ca = std::fs::read(state.join("pki/ca.crt")).unwrap_or_default();
    let again = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args([
            "--state-dir",
            state.to_str().unwrap_or_default(),
            "pki",
            file.to_str().unwrap_or_default(),
            "init",
        ])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(
        String::from_utf8_lossy(&again.stdout).contains(": 0 files created"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
    assert_eq!(
        std::fs::read(state.join("pki/ca.crt")).unwrap_or_default(),
        ca
    );
    assert_eq!(
        std::fs::read_to_string(state.join("pki/token")).unwrap_or_default(),
        token
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The Ignition files are `data:;base64,` URLs: decode them all into one text.
fn decode_data_urls(ign: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(ign).unwrap_or_default();
    let mut out = String::new();
    for f in v["storage"]["files"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let src = f["contents"]["source"].as_str().unwrap_or_default();
        if let Some(b64) = src.strip_prefix("data:;base64,") {
            out.push_str(&String::from_utf8_lossy(&base64_decode(b64)));
        }
    }
    out
}

fn base64_decode(s: &str) -> Vec<u8> {
    let table = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let Some(v) = table(c) else { continue };
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}
