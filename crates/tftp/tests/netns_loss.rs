//! Real clients through a lossy link: the server and the client each run in a network
//! namespace made by the test, joined by a veth pair (10.201.0.1/30 <-> 10.201.0.2/30,
//! addresses that exist only inside the two namespaces), and nftables drops 10% of the
//! packets at random (`numgen random mod 100 < 10`), as `tc netem` is not available.
//!
//! The server runs in its namespace as this same test binary, re-executed through
//! `ip netns exec` with `SLIPWAY_TFTP_NETNS_SERVER` set (`harness = false`, so `main`
//! decides which role it plays). It stops when its stdin closes, so it cannot outlive
//! the test. Namespaces are removed by a guard, also when a test fails; names carry the
//! test's process id, and namespaces left by a killed run (whose process is gone) are
//! removed at start.
//!
//! Needs root (network namespaces, nftables): run as another user, the tests FAIL with
//! a message saying so. Needs `ip` (iproute2), `nft` (nftables), `tftp` (tftp-hpa) and
//! `atftp`.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{TempDir, assert_same_file, random_file, require, run_limited};

const SERVER_ENV: &str = "SLIPWAY_TFTP_NETNS_SERVER";
const ROOT_ENV: &str = "SLIPWAY_TFTP_NETNS_ROOT";
const TIMEOUT_ENV: &str = "SLIPWAY_TFTP_NETNS_TIMEOUT_MS";
const SERVER_IP: &str = "10.201.0.1";
const CLIENT_IP: &str = "10.201.0.2";
const PREFIX: &str = "slwt";
/// Each client process must finish within this.
const CLIENT_LIMIT: Duration = Duration::from_secs(150);

fn main() {
    if let Ok(bind) = std::env::var(SERVER_ENV) {
        server_main(&bind);
        return;
    }
    let tests: &[(&str, fn())] = &[
        (
            "tftp_hpa_through_10_percent_loss_toward_the_client",
            tftp_hpa_lossy_downstream,
        ),
        (
            "atftp_windowed_through_10_percent_loss_both_ways",
            atftp_lossy_both_ways,
        ),
    ];
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        for (name, _) in tests {
            println!("{name}: test");
        }
        return;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let exact = args.iter().any(|a| a == "--exact");
    let selected: Vec<_> = tests
        .iter()
        .filter(|(name, _)| {
            filters.is_empty()
                || filters.iter().any(|f| {
                    if exact {
                        name == f
                    } else {
                        name.contains(f.as_str())
                    }
                })
        })
        .collect();
    let started = Instant::now();
    println!("\nrunning {} tests", selected.len());
    let mut failed = Vec::new();
    for (name, test) in &selected {
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(test));
        match outcome {
            Ok(()) => println!("test {name} ... ok"),
            Err(_) => {
                println!("test {name} ... FAILED");
                failed.push(*name);
            }
        }
    }
    let passed = selected.len() - failed.len();
    if !failed.is_empty() {
        println!("\nfailures:");
        for name in &failed {
            println!("    {name}");
        }
    }
    println!(
        "\ntest result: {}. {passed} passed; {} failed; 0 ignored; 0 measured; {} filtered out; finished in {:.2}s\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        failed.len(),
        tests.len() - selected.len(),
        started.elapsed().as_secs_f64()
    );
    if !failed.is_empty() {
        std::process::exit(101);
    }
}

/// The server role: serve the root on `bind` until stdin closes.
fn server_main(bind: &str) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("slipway_tftp=info"))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
    let bind: SocketAddr = bind.parse().expect("server address");
    let root = std::env::var(ROOT_ENV).expect("root directory");
    let timeout_ms: u64 = std::env::var(TIMEOUT_ENV)
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(1000);
    let config = slipway_tftp::Config {
        timeout: Duration::from_millis(timeout_ms),
        max_retries: 10,
        ..slipway_tftp::Config::default()
    };
    let source = Arc::new(slipway_tftp::DirSource::new(root).expect("root"));
    let socket = std::net::UdpSocket::bind(bind).expect("bind the server socket");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        let _ = stop.send(());
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!("READY");
    let _ = std::io::stdout().flush();
    runtime
        .block_on(slipway_tftp::serve(socket, source, config, async {
            let _ = stopped.await;
        }))
        .expect("serve");
}

/// Fails (not skips) without root: CI runs as root.
fn require_root() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    assert!(
        root,
        "these tests need root (network namespaces and nftables); run them as root, as CI does"
    );
    require("ip", "iproute2");
    require("nft", "nftables");
}

fn sh(args: &[&str]) {
    let output = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        output.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn sh_output(args: &[&str]) -> String {
    let output = Command::new(args[0]).args(&args[1..]).output().unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Removes namespaces left by runs that were killed before their guard ran.
fn remove_stale_namespaces() {
    for line in sh_output(&["ip", "netns", "list"]).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let pid: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        if !pid.is_empty() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["netns", "delete", name]).status();
        }
    }
}

/// Two namespaces joined by a veth pair; deleted on drop.
struct Link {
    server_ns: String,
    client_ns: String,
}

impl Link {
    fn new() -> Link {
        require_root();
        remove_stale_namespaces();
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let id = format!(
            "{PREFIX}{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let link = Link {
            server_ns: format!("{id}s"),
            client_ns: format!("{id}c"),
        };
        let (s, c) = (link.server_ns.as_str(), link.client_ns.as_str());
        sh(&["ip", "netns", "add", s]);
        sh(&["ip", "netns", "add", c]);
        // Interface names: at most 15 bytes.
        let (vs, vc) = ("veth-slw-s", "veth-slw-c");
        sh(&[
            "ip", "-n", s, "link", "add", vs, "type", "veth", "peer", "name", vc, "netns", c,
        ]);
        sh(&[
            "ip",
            "-n",
            s,
            "addr",
            "add",
            &format!("{SERVER_IP}/30"),
            "dev",
            vs,
        ]);
        sh(&[
            "ip",
            "-n",
            c,
            "addr",
            "add",
            &format!("{CLIENT_IP}/30"),
            "dev",
            vc,
        ]);
        for (ns, dev) in [(s, vs), (c, vc), (s, "lo"), (c, "lo")] {
            sh(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
        link
    }

    /// Drops `percent`% of the UDP packets coming into `ns` from `from`, with a counter.
    /// ACK 0 (the answer to an OACK) is exempt: atftp 0.8 aborts with "unexpected
    /// OACK" when the server resends its OACK after losing that ACK (as tftpd-hpa
    /// and dnsmasq also do), a client bug this test is not about.
    fn lose(&self, ns: &str, from: &str, percent: u32) {
        let rules = format!(
            "table inet slwloss {{\n  chain input {{\n    type filter hook input priority 0; policy accept;\n    \
             ip saddr {from} udp dport != 69 @th,64,32 0x00040000 accept\n    \
             ip saddr {from} meta l4proto udp numgen random mod 100 < {percent} counter drop\n  }}\n}}\n"
        );
        let mut nft = Command::new("ip")
            .args(["netns", "exec", ns, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        nft.stdin
            .take()
            .unwrap()
            .write_all(rules.as_bytes())
            .unwrap();
        assert!(nft.wait().unwrap().success(), "nft rules in {ns}");
    }

    /// Packets the loss rule of `ns` dropped.
    fn dropped(&self, ns: &str) -> u64 {
        let listing = sh_output(&[
            "ip", "netns", "exec", ns, "nft", "list", "table", "inet", "slwloss",
        ]);
        listing
            .split_whitespace()
            .skip_while(|w| *w != "packets")
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        for ns in [&self.server_ns, &self.client_ns] {
            let _ = Command::new("ip").args(["netns", "delete", ns]).status();
        }
    }
}

/// This binary in server mode inside a namespace; killed on drop.
struct NsServer {
    child: Child,
    log: PathBuf,
}

impl NsServer {
    fn start(ns: &str, root: &Path, timeout: Duration, log_dir: &Path) -> NsServer {
        let log = log_dir.join("server.log");
        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(exe)
            .env(SERVER_ENV, format!("{SERVER_IP}:69"))
            .env(ROOT_ENV, root)
            .env(TIMEOUT_ENV, timeout.as_millis().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut server = NsServer { child, log };
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) if line.trim() == "READY" => {}
            other => panic!(
                "the server did not start ({other:?}): {}",
                server.log_text()
            ),
        }
        // Stays open until drop: closing it stops the server.
        let _ = &mut server.child.stdin;
        server
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NsServer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn in_ns(ns: &str, mut command: Command) -> Command {
    let mut wrapped = Command::new("ip");
    wrapped
        .args(["netns", "exec", ns])
        .arg(command.get_program())
        .args(command.get_args());
    // Keep the inner command's (unused) configuration from leaking.
    let _ = &mut command;
    wrapped
}

fn tftp_hpa_lossy_downstream() {
    let link = Link::new();
    let root = TempDir::new("netns-root");
    let out = TempDir::new("netns-out");
    let want = random_file(root.path(), "lossy.bin", 200_000);
    let server = NsServer::start(
        &link.server_ns,
        root.path(),
        Duration::from_millis(100),
        out.path(),
    );
    link.lose(&link.client_ns, SERVER_IP, 10);
    let got = out.path().join("got");
    let run = run_limited(
        &mut in_ns(
            &link.client_ns,
            common::tftp_hpa_get(SERVER_IP, 69, "lossy.bin", &got),
        ),
        CLIENT_LIMIT,
    );
    let dropped = link.dropped(&link.client_ns);
    eprintln!(
        "tftp-hpa, 200,000 bytes, 10% loss toward the client: {dropped} packets dropped, {:.2?}",
        run.elapsed
    );
    assert!(
        run.status.success() && !run.output().contains("Error"),
        "{}\nserver log:\n{}",
        run.output(),
        server.log_text()
    );
    assert_same_file(&got, &want);
    assert!(dropped > 0, "the loss rule dropped nothing");
    assert!(
        server.log_text().contains("TFTP transfer complete"),
        "{}",
        server.log_text()
    );
}

fn atftp_lossy_both_ways() {
    let link = Link::new();
    let root = TempDir::new("netns-root");
    let out = TempDir::new("netns-out");
    let want = random_file(root.path(), "lossy.bin", 1 << 20);
    let server = NsServer::start(
        &link.server_ns,
        root.path(),
        Duration::from_millis(100),
        out.path(),
    );
    link.lose(&link.client_ns, SERVER_IP, 10);
    link.lose(&link.server_ns, CLIENT_IP, 10);
    let got = out.path().join("got");
    let mut client = common::atftp_get(
        SERVER_IP,
        69,
        "lossy.bin",
        &got,
        &[("blksize", 1428), ("windowsize", 8), ("tsize", 0)],
    );
    // A lost RRQ is the client's to resend: after 1 s, not atftp's default 5 s.
    client.args(["--tftp-timeout", "1"]);
    let run = run_limited(&mut in_ns(&link.client_ns, client), CLIENT_LIMIT);
    let (down, up) = (link.dropped(&link.client_ns), link.dropped(&link.server_ns));
    eprintln!(
        "atftp, 1 MiB, blksize 1428, windowsize 8, 10% loss both ways: {down} + {up} packets dropped, {:.2?}",
        run.elapsed
    );
    assert!(
        run.status.success(),
        "{}\nserver log:\n{}",
        run.output(),
        server.log_text()
    );
    assert_same_file(&got, &want);
    assert!(down > 0 && up > 0, "the loss rules dropped {down} and {up}");
}
