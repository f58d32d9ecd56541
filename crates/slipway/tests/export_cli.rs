//! `slipway export` as a user runs it: files written, exit codes, stale files removed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

fn slipway(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run slipway: {e}"))
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn example(name: &str) -> String {
    root().join("examples").join(name).display().to_string()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn both(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// A scratch directory, removed when the test ends (pass or fail).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "slipway-export-cli-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        TempDir(dir)
    }

    fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }

    fn arg(&self, p: &str) -> String {
        self.join(p).display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn export_writes_each_target() {
    let tmp = TempDir::new("targets");
    let lab = example("lab.yaml");
    for (target, files) in [
        ("dnsmasq", &["dnsmasq.conf"][..]),
        ("isc-dhcpd", &["dhcpd.conf"][..]),
        ("kea", &["kea-dhcp4.conf"][..]),
        (
            "nginx",
            &[
                "server.conf",
                "nginx.conf",
                "www/boot.ipxe",
                "www/ipxe/52-54-00-99-00-01.ipxe",
                "www/ipxe/52-54-00-99-00-03.ipxe",
            ][..],
        ),
        (
            "tftp-root",
            &[
                "undionly.kpxe",
                "snponly.efi",
                "ipxe.efi",
                "pxelinux.0",
                "ldlinux.c32",
                "pxelinux.cfg/default",
                "pxelinux.cfg/01-52-54-00-99-00-02",
            ][..],
        ),
    ] {
        let out = slipway(&[
            "export",
            &lab,
            "--to",
            &tmp.arg(target),
            "--for",
            target,
            "--offline",
        ]);
        assert!(out.status.success(), "{target}: {}", both(&out));
        assert!(text(&out.stdout).is_empty(), "{target}: {}", both(&out));
        assert!(
            text(&out.stderr).contains(&format!("slipway: {target}: wrote ")),
            "{target}: {}",
            both(&out)
        );
        for f in files {
            let path = tmp.join(&format!("{target}/{f}"));
            assert!(
                path.is_file(),
                "{target}: {} missing\n{}",
                path.display(),
                both(&out)
            );
        }
        let manifest = read(&tmp.join(&format!("{target}/.slipway-export-{target}")));
        for f in files {
            assert!(
                manifest.lines().any(|l| l == *f),
                "{target}: {f} not in the manifest\n{manifest}"
            );
        }
    }
    let dnsmasq = read(&tmp.join("dnsmasq/dnsmasq.conf"));
    assert!(
        dnsmasq.contains(&format!("from cluster `lab` ({lab})")),
        "{dnsmasq}"
    );
    assert!(
        dnsmasq.contains("\ndhcp-host=52:54:00:99:00:02,10.99.0.21,worker1\n"),
        "{dnsmasq}"
    );
    let nginx = read(&tmp.join("nginx/server.conf"));
    assert!(
        nginx.contains(&format!("root \"{}\";", tmp.join("nginx/www").display())),
        "{nginx}"
    );

    // What dnsmasq makes of it.
    let check = Command::new("dnsmasq")
        .args(["--test", "-C", &tmp.arg("dnsmasq/dnsmasq.conf")])
        .output()
        .unwrap_or_else(|e| panic!("cannot run dnsmasq ({e}): install dnsmasq-base"));
    assert!(check.status.success(), "{}", both(&check));
}

#[test]
fn export_replaces_its_own_files_and_leaves_others() {
    let tmp = TempDir::new("stale");
    let dir = tmp.arg("www");
    let lab = std::fs::read_to_string(example("lab.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let file = tmp.join("lab.yaml");
    std::fs::write(&file, &lab).unwrap_or_else(|e| panic!("{e}"));
    let file = file.display().to_string();
    let out = slipway(&["export", &file, "--to", &dir, "--for", "nginx", "--offline"]);
    assert!(out.status.success(), "{}", both(&out));
    std::fs::write(tmp.join("www/www/mine.txt"), "not slipway's").unwrap_or_else(|e| panic!("{e}"));

    // worker2 leaves the cluster; cp1 changes its address.
    let cut = lab
        .find("  - mac: 52:54:00:99:00:03")
        .unwrap_or_else(|| panic!("lab.yaml has no worker2"));
    let fewer = lab[..cut].replace("ip: 10.99.0.11", "ip: 10.99.0.12");
    std::fs::write(&file, fewer).unwrap_or_else(|e| panic!("{e}"));
    let out = slipway(&["export", &file, "--to", &dir, "--for", "nginx", "--offline"]);
    assert!(out.status.success(), "{}", both(&out));

    assert!(
        !tmp.join("www/www/ipxe/52-54-00-99-00-03.ipxe").exists(),
        "{}",
        both(&out)
    );
    assert!(text(&out.stderr).contains("removed"), "{}", both(&out));
    assert!(tmp.join("www/www/ipxe/52-54-00-99-00-01.ipxe").is_file());
    assert_eq!(read(&tmp.join("www/www/mine.txt")), "not slipway's");
    let script = read(&tmp.join("www/www/ipxe/52-54-00-99-00-01.ipxe"));
    assert!(script.contains("10.99.0.12"), "{script}");
    let leftovers: Vec<_> = walk(&tmp.join("www"))
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("slipway-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

#[test]
fn export_of_an_invalid_file_writes_nothing() {
    let tmp = TempDir::new("invalid");
    let file = tmp.join("broken.yaml");
    let lab = std::fs::read_to_string(example("lab.yaml")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&file, lab.replace("hostname: worker1", "hostnme: worker1"))
        .unwrap_or_else(|e| panic!("{e}"));
    let out = slipway(&[
        "export",
        &file.display().to_string(),
        "--to",
        &tmp.arg("out"),
        "--for",
        "dnsmasq",
        "--offline",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        text(&out.stderr).contains("unknown key `hostnme`"),
        "{}",
        both(&out)
    );
    assert!(!tmp.join("out").exists());
}

#[test]
fn export_needs_a_known_target() {
    let tmp = TempDir::new("target");
    let out = slipway(&[
        "export",
        &example("lab.yaml"),
        "--to",
        &tmp.arg("x"),
        "--for",
        "bind9",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let err = text(&out.stderr);
    for name in ["dnsmasq", "isc-dhcpd", "kea", "nginx", "tftp-root"] {
        assert!(err.contains(name), "{name} not offered:\n{err}");
    }
}

#[test]
fn export_refuses_a_directory_nginx_cannot_name() {
    let tmp = TempDir::new("bad-dir");
    let out = slipway(&[
        "export",
        &example("lab.yaml"),
        "--to",
        &tmp.arg("a$b"),
        "--for",
        "nginx",
        "--offline",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(text(&out.stderr).contains("'$'"), "{}", both(&out));
}
