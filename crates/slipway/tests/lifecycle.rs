//! A machine's life through the real `slipway serve` (HTTP side, on loopback), driven
//! the way a machine drives it: boot script, install config, install script with its
//! report token, reports, local boot once installed, `ready`, then `reinstall` from the
//! operator's CLI; states survive a restart.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const CLUSTER: &str = "\
cluster: {name: t, domain: t.test}
network: {interface: lo, server: 127.0.0.1, subnet: 127.0.0.0/24}
os: {version: 4081.2.0, assets: mirror, install_timeout: 10m}
kubernetes: {version: v1.31.2, service_subnet: 10.100.0.0/16}
access: {ssh_authorized_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlaceholderPlaceholder t@x']}
nodes:
  - {mac: 52:54:00:99:00:01, hostname: cp1, ip: 127.0.0.11, roles: [control-plane]}
  - {mac: 52:54:00:99:00:02, hostname: w1, ip: 127.0.0.21}
";

struct Serve {
    child: Child,
    base: String,
    /// The operator API's URL (`http://127.0.0.1:port`).
    api: String,
    tftp: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &std::path::Path) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args([
            "--state-dir",
            dir.join("state").to_str().unwrap_or_default(),
            "serve",
            dir.join("cluster.yaml").to_str().unwrap_or_default(),
        ])
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
    let (mut http, mut tftp, mut api) = (String::new(), String::new(), String::new());
    loop {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap_or(0) == 0 || line.starts_with("ready") {
            break;
        }
        if let Some(a) = line.trim().strip_prefix("http listening on ") {
            http = a.to_string();
        }
        if let Some(a) = line.trim().strip_prefix("tftp listening on ") {
            tftp = a.to_string();
        }
        if let Some(a) = line.trim().strip_prefix("api listening on ") {
            api = a.to_string();
        }
    }
    Serve {
        child,
        base: format!("http://{http}"),
        api,
        tftp,
    }
}

/// Fetches `file` over TFTP with curl from `from` (a loopback address: the machine's
/// own, or a stranger's); `None` when the server refuses.
fn tftp_get(addr: &str, file: &str, from: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--interface", from])
        .arg(format!("tftp://{addr}/{file}"))
        .output()
        .unwrap_or_else(|e| panic!("curl: {e}"));
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).to_string())
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

fn slipway(dir: &std::path::Path, api: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args([
            "--state-dir",
            dir.join("state").to_str().unwrap_or_default(),
        ])
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

fn state_of(dir: &std::path::Path, api: &str, host: &str) -> String {
    let file = dir.join("cluster.yaml");
    let (code, out) = slipway(
        dir,
        api,
        &["status", file.to_str().unwrap_or_default(), "--json"],
    );
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    v["machines"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|m| m["hostname"] == host)
                .map(|m| m["state"].as_str().unwrap_or("").to_string())
        })
        .unwrap_or_default()
}

fn between<'a>(text: &'a str, start: &str, end: char) -> &'a str {
    let i = text.find(start).map(|i| i + start.len()).unwrap_or(0);
    let rest = &text[i..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}

#[test]
fn install_once_with_reports_and_reinstall() {
    let dir = std::env::temp_dir().join(format!("slipway-life-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    fill_mirror(&dir);
    std::fs::write(dir.join("cluster.yaml"), CLUSTER).unwrap_or_else(|e| panic!("{e}"));
    let s = serve(&dir);
    let b = s.base.clone();
    let a = s.api.clone();
    let file = dir.join("cluster.yaml");
    let file = file.to_str().unwrap_or_default();
    let mac = "52-54-00-99-00-01";
    assert_eq!(state_of(&dir, &a, "cp1"), "unknown");

    // Someone else's address moves nothing and gets no installer.
    assert_eq!(
        tftp_get(&s.tftp, "pxelinux.cfg/01-52-54-00-99-00-01", "127.0.0.1"),
        None,
        "a stranger's TFTP request for cp1's installer is refused"
    );
    let (code, _) = curl(&[&format!(
        "{b}/ipxe/{mac}.ipxe?buildarch=x86_64&platform=efi"
    )]);
    assert_eq!(code, 403);
    assert_eq!(state_of(&dir, &a, "cp1"), "unknown", "nothing recorded");

    // pxelinux sites: the per-MAC config installs (this server runs no DHCP, so the
    // machine's first boot script arms its install), with a one-time install key.
    let pxe = tftp_get(&s.tftp, "pxelinux.cfg/01-52-54-00-99-00-01", "127.0.0.11")
        .unwrap_or_else(|| panic!("cp1's own pxelinux config"));
    assert!(
        pxe.contains("kernel 4081.2.0/flatcar_production_pxe.vmlinuz"),
        "{pxe}"
    );
    let key = between(&pxe, "/config/52-54-00-99-00-01/", '/').to_string();
    assert_eq!(key.len(), 32, "{pxe}");

    // PXE: the boot script installs, with the same key (asked again within a minute).
    let (code, script) = curl(&[
        "--interface",
        "127.0.0.11",
        &format!("{b}/ipxe/{mac}.ipxe?buildarch=x86_64&platform=efi"),
    ]);
    assert_eq!(code, 200);
    assert!(
        script.contains("flatcar_production_pxe.vmlinuz") && script.contains(&key),
        "{script}"
    );
    assert_eq!(state_of(&dir, &a, "cp1"), "booting");
    let keyed = |what: &str| format!("{b}/config/{mac}/{key}/{what}");
    // The live system fetches its install config, then the install script, from its
    // address, with the key.
    assert_eq!(
        curl(&[
            "--interface",
            "127.0.0.11",
            &format!("{b}/config/{mac}/install")
        ])
        .0,
        403,
        "no key, no config"
    );
    assert_eq!(
        curl(&["--interface", "127.0.0.11", &keyed("install")]).0,
        200
    );
    assert_eq!(state_of(&dir, &a, "cp1"), "installing");
    assert_eq!(
        curl(&[&keyed("install.sh")]).0,
        403,
        "the script holds the report token: only for the machine"
    );
    let (_, install) = curl(&["--interface", "127.0.0.11", &keyed("install.sh")]);
    let report = format!(
        "http://127.0.0.1:{}",
        between(&install, "'http://127.0.0.1:", '\'')
    );
    assert!(report.contains("/report/52-54-00-99-00-01/"), "{install}");
    // The installer fetches the installed system's config before it reports.
    let (code, installed) = curl(&["--interface", "127.0.0.11", &keyed("installed")]);
    assert_eq!(code, 200, "{installed}");

    // Reports: a wrong token is refused; the right one moves the machine.
    let forged = format!("{b}/report/{mac}/00000000000000000000000000000000/installed");
    assert_eq!(curl(&["-X", "POST", &forged]).0, 403);
    let own = report.replacen("http://127.0.0.1:8080", &b, 1);
    assert_eq!(curl(&["-X", "POST", &format!("{own}/installing")]).0, 200);
    assert_eq!(curl(&["-X", "POST", &format!("{own}/installed")]).0, 200);
    assert_eq!(state_of(&dir, &a, "cp1"), "installed");
    assert_eq!(
        curl(&["-X", "POST", &format!("{own}/ready")]).0,
        403,
        "the install token cannot say ready"
    );
    // The key is burned: a replay is refused as such.
    assert_eq!(
        curl(&["--interface", "127.0.0.11", &keyed("installed")]).0,
        410
    );

    // Install once: the next network boot boots the disk.
    let (_, again) = curl(&[
        "--interface",
        "127.0.0.11",
        &format!("{b}/ipxe/{mac}.ipxe?buildarch=i386&platform=pcbios"),
    ]);
    assert!(
        again.contains("sanboot --no-describe --drive 0x80") && !again.contains("vmlinuz"),
        "{again}"
    );

    let pxe =
        tftp_get(&s.tftp, "pxelinux.cfg/01-52-54-00-99-00-01", "127.0.0.11").unwrap_or_default();
    assert!(
        pxe.contains("localboot 0") && !pxe.contains("vmlinuz"),
        "pxelinux boots the disk too: {pxe}"
    );

    // The installed system reports ready with the token in its config.
    let ready = format!(
        "http://127.0.0.1:{}",
        between(&installed, "-X POST http://127.0.0.1:", '\\')
    );
    assert!(ready.ends_with("/ready"), "{ready}");
    assert_eq!(
        curl(&[
            "-X",
            "POST",
            &ready.replacen("http://127.0.0.1:8080", &b, 1)
        ])
        .0,
        200
    );
    assert_eq!(state_of(&dir, &a, "cp1"), "ready");
    assert_eq!(
        curl(&["-X", "POST", &format!("{own}/failed")]).0,
        409,
        "a ready machine cannot fail its install"
    );

    // The table and the events.
    let (code, table) = slipway(&dir, &a, &["status", file]);
    assert_eq!(code, 0, "{table}");
    let row = table
        .lines()
        .find(|l| l.starts_with("cp1 "))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        row.contains("52:54:00:99:00:01")
            && row.contains("127.0.0.11")
            && row.contains("ready")
            && row.contains("pxelinux"),
        "{row}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("w1 ") && l.contains("unknown")),
        "{table}"
    );
    let (_, events) = slipway(&dir, &a, &["events", file, "cp1"]);
    let transitions: Vec<&str> = events
        .lines()
        .map(|l| l.split_whitespace().nth(4).unwrap_or(""))
        .collect();
    assert_eq!(
        transitions,
        [
            "unknown",    // refused: a stranger asked for its boot script
            "unknown",    // armed by its first boot script
            "booting",    // pxelinux
            "booting",    // install key issued
            "booting",    // iPXE, same key
            "installing", // install config
            "installing", // install script served
            "installing", // installed config served
            "installing", // reported installing
            "installed",  // reported installed: key burned
            "installed",  // refused: the key replayed
            "installed",  // iPXE: local disk
            "installed",  // pxelinux: local disk
            "ready"
        ],
        "{events}"
    );

    // The operator re-arms the install: old tokens die, the next boot installs.
    let (code, out) = slipway(&dir, &a, &["machine", file, "reinstall", "cp1"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("generation 1"), "{out}");
    assert_eq!(
        curl(&["-X", "POST", &format!("{a}/api/v1/machines/cp1/reinstall")]).0,
        401,
        "the API needs the operator token"
    );
    assert_eq!(
        curl(&["-X", "POST", &format!("{b}/api/v1/machines/cp1/reinstall")]).0,
        404,
        "the machines' listener serves no operator API"
    );
    assert_eq!(
        curl(&["-X", "POST", &format!("{own}/installed")]).0,
        403,
        "the old install token is dead"
    );
    let (_, again) = curl(&[
        "--interface",
        "127.0.0.11",
        &format!("{b}/ipxe/{mac}.ipxe?buildarch=x86_64&platform=efi"),
    ]);
    assert!(again.contains("vmlinuz"), "re-armed: {again}");
    assert!(!again.contains(&key), "a new install key");

    // States survive a restart.
    drop(s);
    let s = serve(&dir);
    assert_eq!(state_of(&dir, &s.api, "cp1"), "booting");
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
