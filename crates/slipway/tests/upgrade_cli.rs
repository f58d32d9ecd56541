//! `slipway upgrade` against a real `slipway serve` (HTTP side, on loopback): a machine
//! installed through the server has what it was installed with recorded (OS version and
//! install-config fingerprint, shown by `status --json`); `upgrade --dry-run` finds it
//! up to date, then, once the file's `os.version` changes and serve reloads it
//! (SIGHUP), plans it "os 4081.2.0 -> 4116.0.0"; a change of the install config alone
//! reads "install config changed"; a node never installed is left alone, and so is the
//! `kubeadm init` node without `--include-init-node`. Nothing is
//! stored by a dry run. (The walk itself, through BMCs and QEMU, is tests/e2e/upgrade.sh.)

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn cluster(version: &str, key: &str) -> String {
    format!(
        "\
cluster: {{name: t, domain: t.test}}
network: {{interface: lo, server: 127.0.0.1, subnet: 127.0.0.0/24}}
os: {{version: {version}, assets: mirror, install_timeout: 10m}}
kubernetes: {{version: v1.31.2, service_subnet: 10.100.0.0/16}}
access: {{ssh_authorized_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlaceholderPlaceholder{key} t@x']}}
nodes:
  - {{mac: 52:54:00:99:00:01, hostname: cp1, ip: 127.0.0.11, roles: [control-plane],
      bmc: {{driver: ipmi, address: 127.0.0.1, user: admin, password_env: SLIPWAY_TEST_NO_BMC}}}}
  - {{mac: 52:54:00:99:00:02, hostname: w1, ip: 127.0.0.21,
      bmc: {{driver: ipmi, address: 127.0.0.1, user: admin, password_env: SLIPWAY_TEST_NO_BMC}}}}
"
    )
}

struct Serve {
    child: Child,
    base: String,
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
            "--tftp-listen",
            "127.0.0.1:0",
            "--no-dhcp",
            "--no-dns",
            "--api-listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut out = BufReader::new(child.stdout.take().unwrap_or_else(|| panic!("no stdout")));
    let (mut http, mut api) = (String::new(), String::new());
    loop {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap_or(0) == 0 || line.starts_with("ready") {
            break;
        }
        if let Some(a) = line.trim().strip_prefix("http listening on ") {
            http = a.to_string();
        }
        if let Some(a) = line.trim().strip_prefix("api listening on ") {
            api = a.to_string();
        }
    }
    Serve {
        child,
        base: format!("http://{http}"),
        api,
    }
}

/// (status code, body)
fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.parse().unwrap_or(0), body.to_string())
}

fn slipway(dir: &Path, api: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(args)
        .args(["--api", api])
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

fn between<'a>(text: &'a str, start: &str, end: char) -> &'a str {
    let i = text.find(start).map(|i| i + start.len()).unwrap_or(0);
    let rest = &text[i..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}

/// Installs the machine `mac` (dashes) at `ip` as a machine does: boot script (with its
/// install key), install config, install script, installed config, `installed`, then
/// `ready`.
fn install(b: &str, mac: &str, ip: &str) {
    let own = |url: &str| curl(&["--interface", ip, url]);
    let (code, script) = own(&format!(
        "{b}/ipxe/{mac}.ipxe?buildarch=x86_64&platform=efi"
    ));
    assert_eq!(code, 200, "{script}");
    let key = between(&script, &format!("/config/{mac}/"), '/').to_string();
    assert_eq!(key.len(), 32, "{script}");
    let keyed = |what: &str| format!("{b}/config/{mac}/{key}/{what}");
    assert_eq!(own(&keyed("install")).0, 200);
    let (_, install) = own(&keyed("install.sh"));
    let (code, installed) = own(&keyed("installed"));
    assert_eq!(code, 200, "{installed}");
    let report = format!(
        "http://127.0.0.1:{}",
        between(&install, "'http://127.0.0.1:", '\'')
    )
    .replacen("http://127.0.0.1:8080", b, 1);
    assert_eq!(curl(&["-X", "POST", &format!("{report}/installed")]).0, 200);
    let ready = format!(
        "http://127.0.0.1:{}",
        between(&installed, "-X POST http://127.0.0.1:", '\\')
    )
    .replacen("http://127.0.0.1:8080", b, 1);
    assert_eq!(curl(&["-X", "POST", &ready]).0, 200, "{ready}");
}

/// `upgrade --dry-run` until it stops refusing (serve reloads on SIGHUP a moment later).
fn dry_run_after_reload(dir: &Path, api: &str, file: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, out) = slipway(dir, api, &["upgrade", file, "--dry-run"]);
        if code == 0 {
            return out;
        }
        assert!(
            out.contains("reload it first") && Instant::now() < deadline,
            "{code}: {out}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn hup(s: &Serve) {
    let ok = Command::new("kill")
        .args(["-HUP", &s.child.id().to_string()])
        .status()
        .is_ok_and(|st| st.success());
    assert!(ok, "kill -HUP");
}

#[test]
fn builds_are_recorded_and_compared() {
    let dir = std::env::temp_dir().join(format!("slipway-upgrade-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for v in ["4081.2.0", "4116.0.0"] {
        fill_mirror(&dir, v);
    }
    let path = dir.join("cluster.yaml");
    std::fs::write(&path, cluster("4081.2.0", "")).unwrap_or_else(|e| panic!("{e}"));
    let file = path.to_str().unwrap_or_default();
    let s = serve(&dir);
    install(&s.base, "52-54-00-99-00-01", "127.0.0.11");

    // The build is recorded and shown.
    let (code, json) = slipway(&dir, &s.api, &["status", file, "--json"]);
    assert_eq!(code, 0, "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
    let cp1 = &v["machines"][0];
    assert_eq!(cp1["state"], "ready", "{json}");
    assert_eq!(cp1["installed"]["os_version"], "4081.2.0", "{json}");
    assert_eq!(
        cp1["installed"]["config_sha256"].as_str().map(str::len),
        Some(64),
        "{json}"
    );
    assert!(v["machines"][1].get("installed").is_none(), "{json}");

    // Nothing differs yet.
    let (code, out) = slipway(&dir, &s.api, &["upgrade", file, "--dry-run"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("of t: 0 node(s)"), "{out}");
    assert!(out.contains("cp1              up to date"), "{out}");
    assert!(out.contains("w1               not installed"), "{out}");
    let (code, out) = slipway(&dir, &s.api, &["upgrade", file]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("nothing to re-image"), "{out}");

    // A new OS version: serve must have reloaded the file before upgrade plans.
    std::fs::write(&path, cluster("4116.0.0", "")).unwrap_or_else(|e| panic!("{e}"));
    let (code, out) = slipway(&dir, &s.api, &["upgrade", file, "--dry-run"]);
    assert_eq!(code, 2, "not reloaded yet: {out}");
    assert!(out.contains("reload it first"), "{out}");
    hup(&s);
    let out = dry_run_after_reload(&dir, &s.api, file);
    assert!(out.contains("of t: 0 node(s)"), "{out}");
    assert!(
        out.contains("cp1              os 4081.2.0 -> 4116.0.0, but it is the `kubeadm init` node"),
        "the init node is left alone by default: {out}"
    );
    let (code, out) = slipway(
        &dir,
        &s.api,
        &["upgrade", file, "--dry-run", "--include-init-node"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("of t: 1 node(s)"), "{out}");
    assert!(
        out.contains("wave 1:\n    cp1              control-plane os 4081.2.0 -> 4116.0.0\n"),
        "{out}"
    );
    assert!(out.contains("(dry run: nothing changed)"), "{out}");
    assert!(
        !dir.join("state/upgrade/t.json").exists(),
        "a dry run stores no plan"
    );

    // The same version, another install config (an SSH key changed).
    std::fs::write(&path, cluster("4081.2.0", "X")).unwrap_or_else(|e| panic!("{e}"));
    hup(&s);
    dry_run_after_reload(&dir, &s.api, file);
    let (_, out) = slipway(
        &dir,
        &s.api,
        &["upgrade", file, "--dry-run", "--include-init-node"],
    );
    assert!(
        out.contains("cp1              control-plane install config changed"),
        "{out}"
    );

    let (code, out) = slipway(&dir, &s.api, &["upgrade", file, "--status"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no rollout of t"), "{out}");

    // Back to the file cp1 was installed from, at 4116.0.0; cp1's update_engine reports
    // 4116.0.0 (updated in place): its recorded install follows, nothing to re-image.
    std::fs::write(&path, cluster("4116.0.0", "")).unwrap_or_else(|e| panic!("{e}"));
    hup(&s);
    dry_run_after_reload(&dir, &s.api, file);
    let check = include_str!("../../omaha/tests/fixtures/check.xml").replacen(
        "version=\"3815.2.0\"",
        "version=\"4116.0.0\"",
        1,
    );
    let (code, body) = curl(&[
        "--interface",
        "127.0.0.11",
        "-X",
        "POST",
        "-H",
        "content-type: text/xml",
        "--data-binary",
        &check,
        &format!("{}/v1/update/", s.base),
    ]);
    assert_eq!(code, 200, "{body}");
    let (_, json) = slipway(&dir, &s.api, &["status", file, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        v["machines"][0]["installed"]["os_version"], "4116.0.0",
        "{json}"
    );
    let (_, out) = slipway(
        &dir,
        &s.api,
        &["upgrade", file, "--dry-run", "--include-init-node"],
    );
    assert!(out.contains("cp1              up to date"), "{out}");
    let (_, events) = slipway(&dir, &s.api, &["events", file, "cp1"]);
    assert!(
        events.contains("recorded install carried from 4081.2.0 to 4116.0.0"),
        "{events}"
    );
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The OS files `serve` refuses to start without, with placeholder contents.
fn fill_mirror(dir: &Path, version: &str) {
    let v = dir.join("mirror").join(version);
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
