//! Real TFTP clients (tftp-hpa, atftp) against the tokio driver over loopback, on an
//! unprivileged port, with random files. Every download is compared byte for byte.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use slipway_tftp::{Config, DirSource, Layered, MapSource, Source};

const LIMIT: Duration = Duration::from_secs(120);
/// 65,536 blocks of 512 bytes and then some: block numbers wrap past 65535.
const WRAP_SIZE: usize = 65_536 * 512 + 1000;

fn dir_server(root: &Path) -> Server {
    Server::start(Arc::new(DirSource::new(root).unwrap()), Config::default())
}

/// tftp-hpa exits 0 even when the server sends an ERROR: read its output.
fn assert_hpa_ok(run: &Run) {
    assert!(run.status.success(), "tftp failed: {}", run.output());
    assert!(
        !run.output().contains("Error code"),
        "tftp got an error: {}",
        run.output()
    );
}

#[test]
fn tftp_hpa_downloads_every_size_byte_identical() {
    let root = TempDir::new("hpa-root");
    let out = TempDir::new("hpa-out");
    let server = dir_server(root.path());
    for (name, size) in [
        ("empty", 0),
        ("one", 1),
        ("short", 511),
        ("exact-512", 512),
        ("exact-4x512", 2048),
        ("odd", 100_003),
        ("dir/nested/file", 7000),
        ("wrap", WRAP_SIZE),
    ] {
        let want = random_file(root.path(), name, size);
        let got = out.path().join(name.replace('/', "_"));
        let run = run_limited(
            &mut tftp_hpa_get("127.0.0.1", server.port(), name, &got),
            LIMIT,
        );
        assert_hpa_ok(&run);
        assert_same_file(&got, &want);
        if name == "wrap" {
            eprintln!(
                "tftp-hpa, {size} bytes at 512-byte blocks (lock-step): {:.2?}, {:.1} MB/s (debug build)",
                run.elapsed,
                size as f64 / run.elapsed.as_secs_f64() / 1e6
            );
        }
    }
    // A leading slash is the root, as tftpd-hpa -s does.
    let got = out.path().join("slash");
    let run = run_limited(
        &mut tftp_hpa_get("127.0.0.1", server.port(), "/dir/nested/file", &got),
        LIMIT,
    );
    assert_hpa_ok(&run);
    assert_same_file(&got, &root.path().join("dir/nested/file"));
}

#[test]
fn netascii_requests_are_served_byte_for_byte() {
    // LF-only text, as slipway generates: tftp-hpa's netascii decoding leaves it as is.
    let root = TempDir::new("ascii-root");
    let out = TempDir::new("ascii-out");
    let text = "DEFAULT install\nLABEL install\n  KERNEL flatcar.vmlinuz\n".repeat(40);
    std::fs::write(root.path().join("default"), &text).unwrap();
    let server = dir_server(root.path());
    let got = out.path().join("default");
    let run = run_limited(
        &mut tftp_hpa_get_mode("127.0.0.1", server.port(), "ascii", "default", &got),
        LIMIT,
    );
    assert_hpa_ok(&run);
    assert_eq!(std::fs::read_to_string(&got).unwrap(), text);
}

#[test]
fn atftp_with_blksize_windowsize_and_tsize() {
    let root = TempDir::new("atftp-root");
    let out = TempDir::new("atftp-out");
    let server = dir_server(root.path());
    type Case<'a> = (&'a str, usize, &'a [(&'a str, u64)]);
    let cases: &[Case<'_>] = &[
        (
            "empty",
            0,
            &[("blksize", 1428), ("windowsize", 8), ("tsize", 0)],
        ),
        (
            "exact-1428",
            1428 * 4,
            &[("blksize", 1428), ("windowsize", 8), ("tsize", 0)],
        ),
        ("exact-1468", 1468 * 3, &[("blksize", 1468), ("tsize", 0)]),
        (
            "mib",
            1 << 20,
            &[("blksize", 1428), ("windowsize", 8), ("tsize", 0)],
        ),
        ("clamped", 300_000, &[("blksize", 8192), ("windowsize", 16)]),
        ("no-options", 70_000, &[]),
        (
            "wrap-windowed",
            WRAP_SIZE,
            &[("blksize", 512), ("windowsize", 16), ("tsize", 0)],
        ),
    ];
    for &(name, size, options) in cases {
        let want = random_file(root.path(), name, size);
        let got = out.path().join(name);
        let run = run_limited(
            &mut atftp_get("127.0.0.1", server.port(), name, &got, options),
            LIMIT,
        );
        assert!(
            run.status.success(),
            "atftp {name} {options:?}: {}",
            run.output()
        );
        assert_same_file(&got, &want);
    }
}

#[test]
fn traversal_attempts_fail() {
    let outside = TempDir::new("outside");
    std::fs::write(outside.path().join("secret"), b"top secret").unwrap();
    let root = TempDir::new("root");
    let root_path = root.path().join("tftp");
    std::fs::create_dir(&root_path).unwrap();
    std::fs::write(root_path.join("ok"), b"fine").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret"), root_path.join("link-out")).unwrap();
    // The secret sits beside the root too, one `..` away.
    std::fs::write(root.path().join("secret"), b"top secret").unwrap();
    let out = TempDir::new("traversal-out");
    let server = dir_server(&root_path);
    let attempts = [
        ("../secret", "Error code 2"),
        ("..\\secret", "Error code 2"),
        ("/../secret", "Error code 2"),
        ("ok/../../secret", "Error code 2"),
        ("link-out", "Error code 2"),
        // Absolute paths are read under the root, where there is no etc/passwd.
        ("/etc/passwd", "Error code 1"),
    ];
    for (i, (name, expected)) in attempts.iter().enumerate() {
        let got = out.path().join(format!("hpa-{i}"));
        let run = run_limited(
            &mut tftp_hpa_get("127.0.0.1", server.port(), name, &got),
            LIMIT,
        );
        assert!(run.output().contains(expected), "{name}: {}", run.output());
        let bytes = std::fs::read(&got).unwrap_or_default();
        assert!(bytes.is_empty(), "{name}: got {} bytes", bytes.len());

        let got = out.path().join(format!("atftp-{i}"));
        let run = run_limited(
            &mut atftp_get("127.0.0.1", server.port(), name, &got, &[("tsize", 0)]),
            LIMIT,
        );
        assert!(!run.status.success(), "atftp {name} succeeded");
        assert!(
            run.output().contains("error received from server"),
            "{name}: {}",
            run.output()
        );
        assert!(std::fs::read(&got).unwrap_or_default().is_empty());
    }
    // The root itself still serves.
    let got = out.path().join("ok");
    assert_hpa_ok(&run_limited(
        &mut tftp_hpa_get("127.0.0.1", server.port(), "ok", &got),
        LIMIT,
    ));
    assert_eq!(std::fs::read(&got).unwrap(), b"fine");
}

#[test]
fn write_requests_are_refused() {
    let root = TempDir::new("wrq-root");
    let local = random_file(root.path(), "local", 3000);
    let server = dir_server(root.path());
    require("tftp", "tftp-hpa");
    let mut put = std::process::Command::new("tftp");
    put.args([
        "-m",
        "binary",
        "127.0.0.1",
        &server.port().to_string(),
        "-c",
        "put",
    ])
    .arg(&local)
    .arg("uploaded");
    let run_hpa = run_limited(&mut put, LIMIT);
    assert!(
        run_hpa.output().contains("Error code 2"),
        "{}",
        run_hpa.output()
    );
    let mut put = std::process::Command::new("atftp");
    put.args(["-p", "-l"]).arg(&local).args([
        "-r",
        "uploaded2",
        "127.0.0.1",
        &server.port().to_string(),
    ]);
    let run_atftp = run_limited(&mut put, LIMIT);
    assert!(!run_atftp.status.success(), "{}", run_atftp.output());
    assert!(!root.path().join("uploaded").exists() && !root.path().join("uploaded2").exists());
}

#[test]
fn twenty_concurrent_transfers_complete() {
    let root = TempDir::new("storm-root");
    let out = TempDir::new("storm-out");
    let want = random_file(root.path(), "storm.bin", 2 << 20);
    let server = dir_server(root.path());
    let threads: Vec<_> = (0..20)
        .map(|i| {
            let got = out.path().join(format!("got-{i}"));
            let port = server.port();
            std::thread::spawn(move || {
                let mut command = if i % 2 == 0 {
                    tftp_hpa_get("127.0.0.1", port, "storm.bin", &got)
                } else {
                    atftp_get(
                        "127.0.0.1",
                        port,
                        "storm.bin",
                        &got,
                        &[("blksize", 1468), ("windowsize", 8)],
                    )
                };
                (got, run_limited(&mut command, LIMIT))
            })
        })
        .collect();
    for thread in threads {
        let (got, run) = thread.join().unwrap();
        assert!(
            run.status.success() && !run.output().contains("Error"),
            "{}",
            run.output()
        );
        assert_same_file(&got, &want);
    }
}

#[test]
fn generated_files_are_layered_over_the_directory() {
    let root = TempDir::new("layer-root");
    let out = TempDir::new("layer-out");
    std::fs::create_dir(root.path().join("pxelinux.cfg")).unwrap();
    std::fs::write(root.path().join("pxelinux.cfg/default"), b"DEFAULT disk\n").unwrap();
    std::fs::write(root.path().join("pxelinux.0"), b"bootloader").unwrap();
    let generated = Arc::new(MapSource::new());
    generated
        .insert(
            "pxelinux.cfg/01-52-54-00-99-00-01",
            b"DEFAULT install\n".to_vec(),
        )
        .unwrap();
    generated
        .insert("pxelinux.cfg/default", b"DEFAULT generated\n".to_vec())
        .unwrap();
    let source = Layered::new(vec![
        generated.clone() as Arc<dyn Source>,
        Arc::new(DirSource::new(root.path()).unwrap()),
    ]);
    let server = Server::start(Arc::new(source), Config::default());
    for (name, want) in [
        (
            "pxelinux.cfg/01-52-54-00-99-00-01",
            &b"DEFAULT install\n"[..],
        ),
        ("pxelinux.cfg/default", b"DEFAULT generated\n"),
        ("pxelinux.0", b"bootloader"),
    ] {
        let got = out.path().join(name.replace('/', "_"));
        assert_hpa_ok(&run_limited(
            &mut tftp_hpa_get("127.0.0.1", server.port(), name, &got),
            LIMIT,
        ));
        assert_eq!(std::fs::read(&got).unwrap(), want, "{name}");
    }
    // Removing a generated file uncovers the one on disk, while serving.
    generated.remove("pxelinux.cfg/default");
    let got = out.path().join("after-remove");
    assert_hpa_ok(&run_limited(
        &mut tftp_hpa_get("127.0.0.1", server.port(), "pxelinux.cfg/default", &got),
        LIMIT,
    ));
    assert_eq!(std::fs::read(&got).unwrap(), b"DEFAULT disk\n");
    let got = out.path().join("missing");
    let missing = run_limited(
        &mut tftp_hpa_get("127.0.0.1", server.port(), "pxelinux.cfg/01-aa", &got),
        LIMIT,
    );
    assert!(
        missing.output().contains("Error code 1"),
        "{}",
        missing.output()
    );
}
