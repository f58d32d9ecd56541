//! In-place OS updates end to end against a real `slipway serve`: curl plays each
//! node's `update_engine` (Omaha requests shaped like the fixtures of
//! crates/omaha/tests/fixtures, sent from the node's own address: the cluster's nodes are
//! 127.0.0.x and curl binds its source to them) and its reboot coordinator (the reboot
//! lock asked with the node's `ready` report token, which the test derives from the
//! state directory's key as slipway does when it renders the installed config).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

const CLUSTER: &str = "\
cluster: {name: t}
network: {interface: lo, server: 127.0.0.1, subnet: 127.0.0.0/24}
os: {version: 4081.2.0, assets: mirror}
kubernetes: {version: v1.31.2, service_subnet: 10.100.0.0/16}
access: {ssh_authorized_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlaceholderPlaceholder t@x']}
upgrade:
  safe_mode: false
  max_updating: 1
  update_timeout: 1h
  reboot_hook: hook.sh
  reboot_hook_timeout: 20s
nodes:
  - {mac: 52:54:00:99:00:01, hostname: cp1, ip: 127.0.0.11, roles: [control-plane]}
  - {mac: 52:54:00:99:00:02, hostname: w1, ip: 127.0.0.21}
  - {mac: 52:54:00:99:00:03, hostname: w2, ip: 127.0.0.22}
";

const CHECK: &str = include_str!("../../omaha/tests/fixtures/check.xml");
const AFTER_REBOOT: &str = include_str!("../../omaha/tests/fixtures/check-after-reboot.xml");
const DOWNLOAD_STARTED: &str = include_str!("../../omaha/tests/fixtures/download-started.xml");
const DOWNLOAD_FINISHED: &str = include_str!("../../omaha/tests/fixtures/download-finished.xml");
const INSTALLED: &str = include_str!("../../omaha/tests/fixtures/installed.xml");

/// A running `slipway serve` (killed on drop).
struct Serve {
    child: Child,
    http: String,
    api: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("serve")
        .arg(dir.join("cluster.yaml"))
        .args([
            "--http-listen",
            "127.0.0.1:0",
            "--api-listen",
            "127.0.0.1:0",
        ])
        .args(["--no-dhcp", "--no-dns", "--no-tftp"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut out = BufReader::new(child.stdout.take().unwrap_or_else(|| panic!("no stdout")));
    let (mut http, mut api) = (String::new(), String::new());
    for _ in 0..20 {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap_or(0) == 0 || line.starts_with("ready") {
            break;
        }
        if let Some(a) = line.trim().strip_prefix("http listening on ") {
            http = format!("http://{a}");
        }
        if let Some(a) = line.trim().strip_prefix("api listening on ") {
            api = a.to_string();
        }
    }
    assert!(
        !http.is_empty() && !api.is_empty(),
        "http {http:?}, api {api:?}"
    );
    Serve { child, http, api }
}

/// (status, body) of a POST of `body` to `url` from source address `from`.
fn post(from: &str, url: &str, body: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--interface", from])
        .args(["-w", "\n%{http_code}", "-X", "POST"])
        .args(["-H", "content-type: text/xml", "--data-binary", body, url])
        .output()
        .unwrap_or_else(|e| panic!("curl: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.parse().unwrap_or(0), body.to_string())
}

/// An Omaha request of `fixture` as the node running `version` sends it.
fn omaha(fixture: &str, version: &str) -> String {
    fixture.replacen("version=\"3815.2.0\"", &format!("version=\"{version}\""), 1)
}

fn check(s: &Serve, from: &str, version: &str) -> String {
    let (code, body) = post(
        from,
        &format!("{}/v1/update/", s.http),
        &omaha(CHECK, version),
    );
    assert_eq!(code, 200, "{body}");
    body
}

/// `slipway --state-dir DIR/state --api API ARGS`: (exit code, stdout + stderr).
fn slipway(dir: &Path, api: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(["--api", api])
        .args(args)
        .env_remove("SLIPWAY_API_TOKEN")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The node's `ready` report token, as slipway computes it for the installed config.
fn ready_token(dir: &Path, mac: &str) -> String {
    let key = std::fs::read(dir.join("state/lifecycle.key")).unwrap_or_else(|e| panic!("{e}"));
    let mac = mac.parse().unwrap_or_else(|e| panic!("{e}"));
    slipway_lifecycle::token(&key, mac, 0, slipway_lifecycle::Purpose::Ready)
}

fn reboot_url(s: &Serve, mac: &str, token: &str) -> String {
    format!("{}/v1/reboot/{}/{token}", s.http, mac.replace(':', "-"))
}

/// The hex digest `tool` (sha1sum, sha256sum) prints for `file`, as base64 bytes.
fn digest_b64(tool: &str, file: &Path) -> String {
    let out = Command::new(tool)
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let hex = text.split_whitespace().next().unwrap_or_default();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    assert!(bytes.len() >= 20, "{tool}: {text}");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn os_update_status(dir: &Path, s: &Serve, file: &str) -> serde_json::Value {
    let (code, out) = slipway(dir, &s.api, &["os-update", file, "status", "--json"]);
    assert_eq!(code, 0, "{out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn phase(v: &serde_json::Value, host: &str) -> String {
    v["nodes"]
        .as_array()
        .and_then(|n| n.iter().find(|n| n["hostname"] == host))
        .map(|n| n["phase"].as_str().unwrap_or_default().to_string())
        .unwrap_or_default()
}

#[test]
fn a_rollout_offers_one_node_at_a_time_survives_a_restart_and_halts_on_timeout() {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("slipway-os-update-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
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
    // A stand-in payload: 300 KiB that are not all alike.
    let payload: Vec<u8> = (0..300 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
    let payload_path = v.join("flatcar_production_update.gz");
    std::fs::write(&payload_path, &payload).unwrap_or_else(|e| panic!("{e}"));
    let sha1 = digest_b64("sha1sum", &payload_path);
    let sha256 = digest_b64("sha256sum", &payload_path);
    // The reboot hook: records the hostname it is given.
    let hook = dir.join("hook.sh");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\necho \"$1\" >> {}\n",
            dir.join("hook.log").display()
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut perms = std::fs::metadata(&hook)
        .unwrap_or_else(|e| panic!("{e}"))
        .permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&hook, perms).unwrap_or_else(|e| panic!("{e}"));
    let file_path = dir.join("cluster.yaml");
    std::fs::write(&file_path, CLUSTER).unwrap_or_else(|e| panic!("{e}"));
    let file = file_path.to_str().unwrap_or_default();

    let s = serve(&dir);
    // w1 on the old version gets the offer: the mirrored payload, its size and digests.
    let body = check(&s, "127.0.0.21", "3815.2.0");
    assert!(body.contains(r#"<updatecheck status="ok">"#), "{body}");
    assert!(
        body.contains(r#"<url codebase="http://127.0.0.1:8080/4081.2.0/"/>"#),
        "{body}"
    );
    assert!(body.contains(r#"<manifest version="4081.2.0">"#), "{body}");
    assert!(
        body.contains(&format!(
            r#"hash="{sha1}" name="flatcar_production_update.gz" size="{}""#,
            payload.len()
        )),
        "sha1 {sha1}: {body}"
    );
    assert!(
        body.contains(&format!(r#"sha256="{sha256}""#)),
        "sha256 {sha256}: {body}"
    );
    // The payload is where the offer says (the mirror serves it).
    let out = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{size_download}",
        ])
        .arg(format!("{}/4081.2.0/flatcar_production_update.gz", s.http))
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("200 {}", payload.len())
    );
    // max_updating 1: w2 and cp1 wait; a stranger gets nothing.
    for from in ["127.0.0.22", "127.0.0.11", "127.0.0.99"] {
        let body = check(&s, from, "3815.2.0");
        assert!(
            body.contains(r#"<updatecheck status="noupdate"/>"#),
            "{from}: {body}"
        );
    }
    // Not Omaha: 400. Too large: refused.
    let (code, _) = post("127.0.0.21", &format!("{}/v1/update/", s.http), "hello");
    assert_eq!(code, 400);
    let big = format!("<request>{}</request>", " ".repeat(70 * 1024));
    let (code, _) = post("127.0.0.21", &format!("{}/v1/update/", s.http), &big);
    assert_eq!(code, 413);
    // w1 downloads and installs; each event is acknowledged.
    for fixture in [DOWNLOAD_STARTED, DOWNLOAD_FINISHED, INSTALLED] {
        let (code, body) = post(
            "127.0.0.21",
            &format!("{}/v1/update/", s.http),
            &omaha(fixture, "3815.2.0"),
        );
        assert_eq!(code, 200, "{body}");
        assert!(body.contains(r#"<event status="ok"/>"#), "{body}");
    }
    assert_eq!(phase(&os_update_status(&dir, &s, file), "w1"), "installed");

    // Killed and started again mid-rollout: the rollout is as it was.
    drop(s);
    let s = serve(&dir);
    let status = os_update_status(&dir, &s, file);
    assert_eq!(phase(&status, "w1"), "installed", "{status}");
    assert_eq!(status["target"], "4081.2.0");
    assert_eq!(status["payload"], true);
    let body = check(&s, "127.0.0.22", "3815.2.0");
    assert!(
        body.contains(r#"status="noupdate""#),
        "w1 still holds the one slot: {body}"
    );

    // The reboot lock: only with the node's token, from its address, once installed.
    let w1 = "52:54:00:99:00:02";
    let w2 = "52:54:00:99:00:03";
    let t1 = ready_token(&dir, w1);
    let t2 = ready_token(&dir, w2);
    let (code, _) = post("127.0.0.21", &reboot_url(&s, w1, &"0".repeat(32)), "");
    assert_eq!(code, 403, "a wrong token");
    let (code, _) = post("127.0.0.22", &reboot_url(&s, w1, &t1), "");
    assert_eq!(code, 403, "w1's token from w2's address");
    let (code, body) = post("127.0.0.22", &reboot_url(&s, w2, &t2), "");
    assert_eq!(code, 409, "w2 has nothing installed: {body}");
    // The hook runs first (in the background): not granted until it is done.
    let (code, body) = post("127.0.0.21", &reboot_url(&s, w1, &t1), "");
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("hook"), "{body}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let granted = loop {
        let (code, body) = post("127.0.0.21", &reboot_url(&s, w1, &t1), "");
        if code == 200 || Instant::now() > deadline {
            break (code, body);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(granted.0, 200, "{}", granted.1);
    let hooked = std::fs::read_to_string(dir.join("hook.log")).unwrap_or_default();
    assert_eq!(hooked, "w1\n", "the hook ran once, for w1");
    assert_eq!(
        phase(&os_update_status(&dir, &s, file), "w1"),
        "reboot-granted"
    );

    // w1 comes back on the target: complete; the slot goes to the next node.
    let (code, body) = post(
        "127.0.0.21",
        &format!("{}/v1/update/", s.http),
        AFTER_REBOOT,
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(r#"status="noupdate""#), "{body}");
    assert_eq!(phase(&os_update_status(&dir, &s, file), "w1"), "complete");
    let body = check(&s, "127.0.0.22", "3815.2.0");
    assert!(
        body.contains(r#"<updatecheck status="ok">"#),
        "w2's turn: {body}"
    );
    // cp1 waits: a control plane goes alone.
    let body = check(&s, "127.0.0.11", "3815.2.0");
    assert!(body.contains(r#"status="noupdate""#), "{body}");

    // The machines' lives show it.
    let (code, out) = slipway(&dir, &s.api, &["events", file, "w1"]);
    assert_eq!(code, 0, "{out}");
    for want in [
        "update offered: 3815.2.0 -> 4081.2.0",
        "downloading 4081.2.0",
        "installed 4081.2.0, waiting for the reboot lock",
        "reboot hook succeeded",
        "reboot granted (4081.2.0)",
        "complete: running 4081.2.0",
    ] {
        assert!(out.contains(want), "{want}:\n{out}");
    }
    let (code, out) = slipway(&dir, &s.api, &["status", file]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("os update: granted 4081.2.0"), "{out}");
    assert!(out.contains("os update: complete 4081.2.0"), "{out}");

    // A short update timeout (reloaded with SIGHUP) halts the rollout.
    std::fs::write(
        &file_path,
        CLUSTER.replace("update_timeout: 1h", "update_timeout: 1s"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let hup = Command::new("kill")
        .args(["-HUP", &s.child.id().to_string()])
        .status()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(hup.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let halted = loop {
        std::thread::sleep(Duration::from_millis(500));
        let v = os_update_status(&dir, &s, file);
        if !v["halted"].is_null() || Instant::now() > deadline {
            break v;
        }
    };
    let why = halted["halted"].as_str().unwrap_or_default().to_string();
    assert!(why.contains("timeout") && why.contains("w2"), "{halted}");
    let body = check(&s, "127.0.0.22", "3815.2.0");
    assert!(body.contains(r#"status="noupdate""#), "halted: {body}");
    let (code, out) = slipway(&dir, &s.api, &["os-update", file, "status"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("HALTED (timeout"), "{out}");
    // Resumed: w2 is offered its update again at once.
    let (code, out) = slipway(&dir, &s.api, &["os-update", file, "resume"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("state: running"), "{out}");
    let body = check(&s, "127.0.0.22", "3815.2.0");
    assert!(
        body.contains(r#"<updatecheck status="ok">"#),
        "resumed: {body}"
    );
    // Halted by the operator: nothing offered.
    let (code, out) = slipway(&dir, &s.api, &["os-update", file, "halt"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("HALTED (operator"), "{out}");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}
