//! Throughput over loopback: one 32 MiB file, slipway's server (release build) against
//! tftp-hpa's client (512-byte blocks, lock-step: its only mode) and atftp (blksize
//! 1468, windowsize 1 and 16), and the same clients against tftpd-hpa (`in.tftpd`,
//! when installed and run as root) as the peer. Runs are interleaved (every case of
//! every server once per round) so that load from elsewhere on the machine hits all
//! of them alike; every download is compared byte for byte.
//!
//!     cargo bench -p slipway-tftp                  # REPS=5, MIB=32
//!     REPS=3 MIB=8 RUNTIME=current cargo bench -p slipway-tftp
//!
//! `RUNTIME=current` runs slipway on tokio's current-thread runtime instead of the
//! multi-threaded one. Client and server share the machine's cores: numbers are for
//! comparing, not absolute.
#![allow(clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use slipway_tftp::{Config, DirSource};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// tftpd-hpa in the foreground on a free loopback port, if it is installed.
fn start_tftpd_hpa(root: &Path) -> Option<(Peer, u16)> {
    if !Path::new("/usr/sbin/in.tftpd").exists() {
        return None;
    }
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = Command::new("/usr/sbin/in.tftpd")
        .args(["-L", "-s"])
        .arg(root)
        .args(["-a", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    std::thread::sleep(Duration::from_millis(300));
    Some((Peer(child), port))
}

/// (client, blksize, windowsize)
type Case = (&'static str, u64, u64);

/// One download; MB/s.
fn download(port: u16, (client, blksize, windowsize): Case, want: &Path, out: &Path) -> f64 {
    let got = out.join("got");
    let _ = std::fs::remove_file(&got);
    let mut command = if client == "tftp-hpa" {
        tftp_hpa_get("127.0.0.1", port, "big.bin", &got)
    } else {
        let mut options = vec![("blksize", blksize)];
        if windowsize > 1 {
            options.push(("windowsize", windowsize));
        }
        atftp_get("127.0.0.1", port, "big.bin", &got, &options)
    };
    let run = run_limited(&mut command, Duration::from_secs(300));
    assert!(
        run.status.success() && !run.output().contains("rror"),
        "{client} on port {port}: {}",
        run.output()
    );
    assert_same_file(&got, want);
    std::fs::metadata(want).unwrap().len() as f64 / run.elapsed.as_secs_f64() / 1e6
}

fn main() {
    // `cargo test --benches` runs this too; do the work only under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let reps = env_or("REPS", 5).max(1);
    let mib = env_or("MIB", 32);
    let multi_thread = std::env::var("RUNTIME").as_deref() != Ok("current");
    let root = TempDir::new("bench-root");
    let out = TempDir::new("bench-out");
    let want = random_file(root.path(), "big.bin", mib << 20);
    std::fs::set_permissions(
        root.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let server = Server::start_with(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(DirSource::new(root.path()).unwrap()),
        Config::default(),
        multi_thread,
    );
    let peer = start_tftpd_hpa(root.path());
    let cases: [Case; 4] = [
        ("tftp-hpa", 512, 1),
        ("atftp", 512, 1),
        ("atftp", 1468, 1),
        ("atftp", 1468, 16),
    ];
    let mut servers = vec![(
        if multi_thread {
            "slipway"
        } else {
            "slipway (current-thread)"
        },
        server.port(),
        cases.to_vec(),
    )];
    if let Some((_, port)) = &peer {
        // tftpd-hpa 5.2 has no windowsize.
        servers.push((
            "tftpd-hpa",
            *port,
            cases.iter().copied().filter(|c| c.2 == 1).collect(),
        ));
    }
    let mut rates: Vec<Vec<Vec<f64>>> = servers
        .iter()
        .map(|(_, _, c)| vec![Vec::new(); c.len()])
        .collect();
    for _ in 0..reps {
        for (s, (_, port, server_cases)) in servers.iter().enumerate() {
            for (c, &case) in server_cases.iter().enumerate() {
                rates[s][c].push(download(*port, case, &want, out.path()));
            }
        }
    }
    println!("\n{mib} MiB over loopback, MB/s: median of {reps} interleaved runs (min-max)\n");
    println!("| server | client | blksize | windowsize | MB/s | range |");
    println!("|---|---|---:|---:|---:|---|");
    for (s, (name, _, server_cases)) in servers.iter().enumerate() {
        for (c, (client, blksize, windowsize)) in server_cases.iter().enumerate() {
            let r = &mut rates[s][c];
            r.sort_by(f64::total_cmp);
            println!(
                "| {name} | {client} | {blksize} | {windowsize} | {:.1} | {:.1}-{:.1} |",
                r[r.len() / 2],
                r[0],
                r[r.len() - 1]
            );
        }
    }
    if peer.is_none() {
        println!("\n(tftpd-hpa not installed: no peer measured)");
    }
}
