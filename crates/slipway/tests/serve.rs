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

/// The addresses `serve` printed before `ready`, by service ("http", "api", "dns", ...).
fn addresses(stdout: &mut impl BufRead) -> std::collections::HashMap<String, String> {
    let mut found = std::collections::HashMap::new();
    for _ in 0..20 {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap_or(0) == 0 || line.starts_with("ready") {
            break;
        }
        if let Some((service, addr)) = line.trim().split_once(" listening on ") {
            found.insert(service.to_string(), addr.to_string());
        }
    }
    found
}

/// `http://` + the address `serve` printed for `service`.
fn url(found: &std::collections::HashMap<String, String>, service: &str) -> String {
    let addr = found
        .get(service)
        .unwrap_or_else(|| panic!("serve printed no {service} address: {found:?}"));
    if addr.contains("://") {
        addr.clone()
    } else {
        format!("http://{addr}")
    }
}

#[test]
fn serve_hands_each_machine_its_own_secrets_and_stops_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("slipway-serve-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    fill_mirror(&dir);
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
            "--api-listen",
            "127.0.0.1:0",
        ])
        // The default log level: secrets served and refused must be audited there.
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut stdout = BufReader::new(child.stdout.take().unwrap_or_else(|| panic!("no stdout")));
    let found = addresses(&mut stdout);
    let base = url(&found, "http");
    let api = url(&found, "api");

    assert!(
        Path::new(&state).join("pki/ca.key").exists(),
        "PKI created at start"
    );
    let cp1 = ["--interface", "127.0.0.11"];
    // Before its install is armed, cp1's own address gets nothing secret.
    let (code, body) = curl(&format!("{base}/config/52-54-00-99-00-01/installed"), &cp1);
    assert_eq!(code, "403", "not armed yet: {body}");
    assert!(
        body.contains("not armed") || body.contains("install key"),
        "{body}"
    );
    // Its boot script (this server runs no DHCP: the first boot script from the
    // machine arms it) carries a one-time install key in the config URL.
    let (code, script) = curl(&format!("{base}/ipxe/52-54-00-99-00-01.ipxe"), &cp1);
    assert_eq!(code, "200", "{script}");
    let key = script
        .split("/config/52-54-00-99-00-01/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no keyed config URL in\n{script}"))
        .to_string();
    assert_eq!(key.len(), 32, "{key}");
    let keyed = |what: &str| format!("{base}/config/52-54-00-99-00-01/{key}/{what}");
    // The same script again (a retry) gets the same key: it costs nothing.
    let (_, again) = curl(&format!("{base}/ipxe/52-54-00-99-00-01.ipxe"), &cp1);
    assert!(again.contains(&key), "the same key within a minute");
    // Another node's address, the key or not, gets nothing of cp1's.
    let (code, _) = curl(&keyed("installed"), &["--interface", "127.0.0.21"]);
    assert_eq!(code, "403", "w1 may not fetch cp1's config");
    let (code, _) = curl(
        &format!(
            "{base}/config/52-54-00-99-00-01/{}/installed",
            "0".repeat(32)
        ),
        &cp1,
    );
    assert_eq!(code, "403", "a wrong key");
    let (code, body) = curl(&keyed("installed"), &cp1);
    assert_eq!(code, "200", "{body}");
    assert!(body.contains("\"ignition\""));
    let decoded = decode_data_urls(&body);
    assert!(decoded.contains("BEGIN"), "cp1's config carries its keys");
    // The install script carries the key onwards and the report URL.
    let (code, install) = curl(&keyed("install.sh"), &cp1);
    assert_eq!(code, "200", "{install}");
    assert!(
        install.contains(&format!("/config/52-54-00-99-00-01/{key}/installed")),
        "{install}"
    );
    let report = install
        .split('\'')
        .find(|s| s.contains("/report/"))
        .unwrap_or_else(|| panic!("no report URL in\n{install}"))
        .replace("http://127.0.0.1:8080", &base);
    let (code, _) = curl(&format!("{report}/installed"), &["-X", "POST"]);
    assert_eq!(code, "200", "the report token proves the install");
    // Installed: the key is burned; using it again is a replay.
    let (code, body) = curl(&keyed("installed"), &cp1);
    assert_eq!(code, "410", "a replayed key: {body}");
    // The machine's life shows the key issued, the secrets served, the refusals.
    let (_, life) = curl(
        &format!("{api}/api/v1/machines/cp1"),
        &[
            "-H",
            &format!("authorization: Bearer {}", api_token(&state)),
        ],
    );
    for event in ["armed", "key-issued", "secret-served", "refused"] {
        assert!(life.contains(event), "no {event} in\n{life}");
    }
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
    assert!(logs.contains("secret served"), "{logs}");
    assert!(logs.contains("replay"), "the replay is logged:\n{logs}");

    // A second start reuses the PKI: same CA.
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
    let _ = std::fs::remove_dir_all(&dir);
}

/// The operator's API token in the state directory.
fn api_token(state: &Path) -> String {
    std::fs::read(state.join("api-token"))
        .unwrap_or_default()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
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

/// A host that takes a node's address AFTER the install window closed gets nothing,
/// even with the key the machine was given; the refusal is audited at the default log
/// level and recorded in the machine's life.
#[test]
fn the_install_window_closes() {
    let dir = std::env::temp_dir().join(format!("slipway-window-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    fill_mirror(&dir);
    let file = dir.join("cluster.yaml");
    std::fs::write(
        &file,
        CLUSTER.replace("assets: mirror}", "assets: mirror, install_timeout: 2s}"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let state = dir.join("state");
    let mut child = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args(["--state-dir", state.to_str().unwrap_or_default(), "serve"])
        .arg(&file)
        .args([
            "--http-listen",
            "127.0.0.1:0",
            "--no-dns",
            "--no-dhcp",
            "--no-tftp",
            "--api-listen",
            "127.0.0.1:0",
        ])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut stdout = BufReader::new(child.stdout.take().unwrap_or_else(|| panic!("no stdout")));
    let found = addresses(&mut stdout);
    let base = url(&found, "http");
    let api = url(&found, "api");
    let w1 = ["--interface", "127.0.0.21"];
    let (code, script) = curl(&format!("{base}/ipxe/52-54-00-99-00-02.ipxe"), &w1);
    assert_eq!(code, "200", "{script}");
    let key = script
        .split("/config/52-54-00-99-00-02/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no keyed URL in\n{script}"))
        .to_string();
    let url = format!("{base}/config/52-54-00-99-00-02/{key}/installed");
    let (code, _) = curl(&url, &w1);
    assert_eq!(code, "200", "inside the window");
    std::thread::sleep(Duration::from_millis(2500));
    let (code, body) = curl(&url, &w1);
    assert_eq!(code, "403", "{body}");
    assert!(body.contains("not armed"), "{body}");
    let (code, body) = curl(&format!("{base}/ipxe/52-54-00-99-00-02.ipxe"), &w1);
    assert_eq!(code, "403", "no new key either: {body}");
    let (_, life) = curl(
        &format!("{api}/api/v1/machines/w1"),
        &[
            "-H",
            &format!("authorization: Bearer {}", api_token(&state)),
        ],
    );
    assert!(life.contains("the install is not armed"), "{life}");
    let _ = child.kill();
    let _ = child.wait();
    let mut logs = String::new();
    let _ = std::io::Read::read_to_string(
        &mut child.stderr.take().unwrap_or_else(|| panic!("no stderr")),
        &mut logs,
    );
    assert!(
        logs.contains("REFUSED") && logs.contains("the install is not armed"),
        "{logs}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A reload (SIGHUP) puts the DNS server's new limits in force: `network.dns_rate_limit`
/// 1 lets a burst of 40 queries from one client get about 2 answers; after the reload
/// with no limit (0), all 40. (Loopback is always an allowed client, so the client
/// networks themselves are tested where namespaces give other addresses: the limits
/// travel the same way.)
#[test]
fn a_reload_changes_the_dns_limits() {
    let dir = std::env::temp_dir().join(format!("slipway-dnsacl-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    fill_mirror(&dir);
    let file = dir.join("cluster.yaml");
    let limited = |n: u32| {
        CLUSTER.replace(
            "subnet: 127.0.0.0/24}",
            &format!("subnet: 127.0.0.0/24, dns_rate_limit: {n}}}"),
        )
    };
    std::fs::write(&file, limited(1)).unwrap_or_else(|e| panic!("{e}"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args([
            "--state-dir",
            dir.join("state").to_str().unwrap_or_default(),
            "serve",
        ])
        .arg(&file)
        .args([
            "--http-listen",
            "127.0.0.1:0",
            "--dns-listen",
            "127.0.0.1:0",
        ])
        .args(["--no-dhcp", "--no-tftp", "--no-api"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut stdout = BufReader::new(child.stdout.take().unwrap_or_else(|| panic!("no stdout")));
    let mut dns = String::new();
    for _ in 0..10 {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap_or(0) == 0 || line.starts_with("ready") {
            break;
        }
        if let Some(a) = line.trim().strip_prefix("dns listening on ") {
            dns = a.to_string();
        }
    }
    let server: std::net::SocketAddr = dns.parse().unwrap_or_else(|e| panic!("{dns}: {e}"));
    // 40 queries for cp1.t.internal A at once from one socket; the answers counted.
    let burst = || {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        socket
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap_or_else(|e| panic!("{e}"));
        for id in 0..40u16 {
            let mut q = id.to_be_bytes().to_vec();
            q.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
            for label in ["cp1", "t", "internal"] {
                q.push(label.len() as u8);
                q.extend_from_slice(label.as_bytes());
            }
            q.extend_from_slice(&[0, 0, 1, 0, 1]);
            socket.send_to(&q, server).unwrap_or_else(|e| panic!("{e}"));
        }
        let mut answers = 0;
        let mut buf = [0u8; 512];
        while socket.recv_from(&mut buf).is_ok() {
            answers += 1;
        }
        answers
    };
    let before = burst();
    assert!(
        (1..=3).contains(&before),
        "rate 1/s: {before} answers of 40"
    );
    std::fs::write(&file, limited(0)).unwrap_or_else(|e| panic!("{e}"));
    let status = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let after = burst();
        if after == 40 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the reload did not lift the limit: {after} answers of 40"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The OS files `serve` refuses to start without, with placeholder contents.
fn fill_mirror(dir: &std::path::Path) {
    let v = dir.join("mirror/4081.2.0");
    std::fs::create_dir_all(&v).unwrap_or_else(|e| panic!("{e}"));
    for f in [
        "flatcar_production_pxe.vmlinuz",
        "flatcar_production_pxe_image.cpio.gz",
        "flatcar_production_image.bin.bz2",
        "version.txt",
    ] {
        std::fs::write(v.join(f), f).unwrap_or_else(|e| panic!("{e}"));
    }
}
