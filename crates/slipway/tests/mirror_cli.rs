//! `slipway mirror`, `check --assets` and serve's refusal, from the command line (a
//! local upstream; no internet). The verification itself is tested in the mirror
//! crate against a release signed by a test key.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// Serves `files` (GET and HEAD, Content-Length) on 127.0.0.1; returns its port.
fn upstream(files: HashMap<String, Vec<u8>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("{e}"))
        .port();
    let files = Arc::new(files);
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let files = files.clone();
            std::thread::spawn(move || {
                let Ok(clone) = conn.try_clone() else { return };
                let mut r = BufReader::new(clone);
                let mut first = String::new();
                let _ = r.read_line(&mut first);
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                }
                let mut p = first.split_whitespace();
                let method = p.next().unwrap_or_default().to_string();
                let path = p.next().unwrap_or_default().to_string();
                match files.get(&path) {
                    Some(body) => {
                        let _ = write!(
                            conn,
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        if method == "GET" {
                            let _ = conn.write_all(body);
                        }
                    }
                    None => {
                        let _ = conn.write_all(
                            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        );
                    }
                }
            });
        }
    });
    port
}

fn scratch(name: &str, port: u16) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("slipway-mirror-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.join("cluster.yaml"),
        format!(
            "\
cluster: {{name: lab, domain: lab.test}}
network: {{interface: br0, server: 10.99.0.1, subnet: 10.99.0.0/24, gateway: 10.99.0.1}}
os:
  version: 4081.2.0
  assets: mirror
  mirror:
    base_url: 'http://127.0.0.1:{port}/amd64-usr'
    ipxe: {{url: 'http://127.0.0.1:{port}/deb/ipxe_1_all.deb', sha256: 49dc854857dcfb354292bdc79ce7419e0d72988666723395b2e102d147c3730d}}
kubernetes: {{version: v1.31.2, service_subnet: 10.100.0.0/16, sysext_url: 'http://127.0.0.1:{port}/ext'}}
access: {{ssh_authorized_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlaceholderPlaceholder t@x']}}
nodes:
  - {{mac: '52:54:00:99:00:01', hostname: cp1, ip: 10.99.0.11, roles: [control-plane]}}
"
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    dir
}

fn slipway(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .arg("--offline")
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(args)
        .arg(dir.join("cluster.yaml"))
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const OS_FILES: [&str; 4] = [
    "flatcar_production_pxe.vmlinuz",
    "flatcar_production_pxe_image.cpio.gz",
    "flatcar_production_image.bin.bz2",
    "version.txt",
];

#[test]
fn check_assets_lists_what_is_missing_and_serve_refuses() {
    let dir = scratch("missing", 9);
    let (code, _, err) = slipway(&dir, &["check", "--assets"]);
    assert_eq!(code, Some(1), "{err}");
    for f in OS_FILES {
        assert!(
            err.contains(&format!("mirror/4081.2.0/{f}\n")),
            "{f}: {err}"
        );
        assert!(
            err.contains(&format!("mirror/4081.2.0/{f}.sig\n")),
            "{f}.sig: {err}"
        );
    }
    assert!(
        err.contains("mirror/extensions/kubernetes-v1.31.2-x86-64.raw"),
        "{err}"
    );
    assert!(err.contains("run `slipway mirror"), "{err}");

    let (code, _, err) = slipway(
        &dir,
        &[
            "serve",
            "--no-dhcp",
            "--no-dns",
            "--no-tftp",
            "--no-api",
            "--http-listen",
            "127.0.0.1:0",
        ],
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("refusing to serve"), "{err}");
    assert!(err.contains("run `slipway mirror"), "{err}");
    assert!(err.contains("flatcar_production_pxe.vmlinuz"), "{err}");
    // Nothing was created for a server that did not start.
    assert!(!dir.join("state").exists());

    // With the OS files there, check --assets still names the signatures and sysext.
    for f in OS_FILES {
        let p = dir.join("mirror/4081.2.0").join(f);
        std::fs::create_dir_all(p.parent().unwrap_or(&dir)).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(p, f).unwrap_or_else(|e| panic!("{e}"));
    }
    let (code, _, err) = slipway(&dir, &["check", "--assets"]);
    assert_eq!(code, Some(1));
    // The mirror's three iPXE programs count only when Debian's are not installed here.
    let debian_ipxe = std::path::Path::new("/usr/lib/ipxe/undionly.kpxe").is_file();
    let expected = if debian_ipxe { 7 } else { 10 };
    assert_eq!(err.contains("ipxe/undionly.kpxe"), !debian_ipxe, "{err}");
    assert!(
        err.contains(&format!("{expected} files"))
            && err.contains("flatcar_production_update.gz\n")
            && !err.contains("vmlinuz\n"),
        "{err}"
    );
}

#[test]
fn dry_run_lists_urls_destinations_and_sizes() {
    let mut files = HashMap::new();
    files.insert(
        "/amd64-usr/4081.2.0/flatcar_production_pxe.vmlinuz".to_string(),
        vec![0u8; 4096],
    );
    let port = upstream(files);
    let dir = scratch("dry", port);
    let (code, out, err) = slipway(&dir, &["mirror", "--dry-run"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains(&format!(
            "http://127.0.0.1:{port}/amd64-usr/4081.2.0/flatcar_production_pxe.vmlinuz\n  -> {}  [4.0 KiB]",
            dir.join("mirror/4081.2.0/flatcar_production_pxe.vmlinuz").display()
        )),
        "{out}"
    );
    assert!(
        out.contains("flatcar_production_image.bin.bz2.sig\n  -> "),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "http://127.0.0.1:{port}/ext/kubernetes-v1.31.2-x86-64.raw"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "http://127.0.0.1:{port}/deb/ipxe_1_all.deb\n  -> {}  [size unknown]",
            dir.join("mirror/ipxe/ipxe_1_all.deb").display()
        )),
        "{out}"
    );
    assert!(out.contains("12 files, 4.0 KiB in all"), "{out}");
    assert!(
        !dir.join("mirror").exists(),
        "a dry run wrote into the mirror"
    );
}

#[test]
fn a_bad_signature_exits_non_zero_naming_the_file() {
    let mut files = HashMap::new();
    for f in OS_FILES {
        files.insert(format!("/amd64-usr/4081.2.0/{f}"), f.as_bytes().to_vec());
        // Not a signature by Flatcar's key (the default trust).
        files.insert(format!("/amd64-usr/4081.2.0/{f}.sig"), b"garbage".to_vec());
    }
    let port = upstream(files);
    let dir = scratch("badsig", port);
    let (code, out, err) = slipway(&dir, &["mirror", "--only", "os", "--parallel", "2"]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains(
            "slipway: mirror: 4081.2.0/flatcar_production_pxe.vmlinuz: not an OpenPGP signature"
        ),
        "{err}"
    );
    assert!(out.contains("0 fetched"), "{out}");
    for f in OS_FILES {
        assert!(!dir.join("mirror/4081.2.0").join(f).exists());
        assert!(
            !dir.join("mirror/4081.2.0")
                .join(format!("{f}.part"))
                .exists()
        );
    }
}
