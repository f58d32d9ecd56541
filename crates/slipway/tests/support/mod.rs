//! A private network for tests: a "lan" namespace with a bridge, and hosts, each a
//! namespace with one veth (`eth0`) on that bridge. Everything is removed on drop,
//! even when a test fails. Needs root (CI runs as root); without it, tests fail with a
//! clear message instead of skipping.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Runs a command, panicking with its output if it fails.
pub fn run(args: &[&str]) -> Output {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", args[0]));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Fails the test clearly when not root.
pub fn require_root() {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    assert_eq!(
        uid, "0",
        "this test builds network namespaces and needs root (CI runs as root)"
    );
}

/// The private network.
pub struct Lab {
    /// Short unique prefix of every name.
    pub id: String,
    lan: String,
    hosts: Vec<String>,
    /// A scratch directory, removed on drop.
    pub dir: PathBuf,
}

impl Lab {
    /// A new, empty network.
    pub fn new() -> Lab {
        require_root();
        let id = format!(
            "sw{}{}",
            std::process::id() % 100_000,
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let lan = format!("{id}l");
        run(&["ip", "netns", "add", &lan]);
        run(&["ip", "-n", &lan, "link", "add", "br0", "type", "bridge"]);
        run(&["ip", "-n", &lan, "link", "set", "br0", "up"]);
        let dir = std::env::temp_dir().join(format!("slipway-lab-{id}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        // The OS files `serve` refuses to start without (the cluster's `assets: mirror`).
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
        Lab {
            id,
            lan,
            hosts: Vec::new(),
            dir,
        }
    }

    /// Adds a host `name` whose `eth0` has `mac` and, if given, `addr` (CIDR).
    /// Returns the namespace name.
    pub fn host(&mut self, name: &str, mac: &str, addr: Option<&str>) -> String {
        let ns = format!("{}{name}", self.id);
        let peer = format!("{}{}", self.id, self.hosts.len());
        run(&["ip", "netns", "add", &ns]);
        run(&[
            "ip", "-n", &self.lan, "link", "add", &peer, "type", "veth", "peer", "name", "eth0",
            "netns", &ns,
        ]);
        run(&[
            "ip", "-n", &self.lan, "link", "set", &peer, "master", "br0", "up",
        ]);
        run(&["ip", "-n", &ns, "link", "set", "eth0", "address", mac]);
        run(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
        run(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        if let Some(a) = addr {
            run(&["ip", "-n", &ns, "addr", "add", a, "dev", "eth0"]);
        }
        self.hosts.push(ns.clone());
        ns
    }

    /// A command run inside `ns`.
    pub fn cmd(&self, ns: &str, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, program]);
        c
    }

    /// Writes `text` into the scratch directory.
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("{e}"));
        p
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.hosts.iter().chain(std::iter::once(&self.lan)) {
            // Kill what still runs inside, then remove the namespace.
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
            }
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A running `slipway serve`, killed on drop.
pub struct Slipway {
    /// The process.
    pub child: Child,
    /// Its stderr log file.
    pub log: PathBuf,
}

impl Slipway {
    /// Starts `slipway serve FILE ARGS` in `ns` with `state`, waiting until it prints
    /// that DHCP listens (or until `timeout`).
    pub fn start(lab: &Lab, ns: &str, file: &Path, state: &Path, args: &[&str]) -> Slipway {
        let log = lab.dir.join(format!(
            "slipway-{}.log",
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let err = std::fs::File::create(&log).unwrap_or_else(|e| panic!("{e}"));
        let mut child = lab
            .cmd(ns, env!("CARGO_BIN_EXE_slipway"))
            .args([
                "--state-dir",
                state.to_str().unwrap_or_default(),
                "serve",
                file.to_str().unwrap_or_default(),
                // The namespace's loopback is down: no operator API.
                "--no-api",
            ])
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(line) if line.starts_with("dhcp listening") || line.starts_with("ready") => {
                    break;
                }
                Ok(_) => {}
                Err(_) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        panic!(
                            "slipway exited ({status}):\n{}",
                            std::fs::read_to_string(&log).unwrap_or_default()
                        );
                    }
                    assert!(
                        Instant::now() < deadline,
                        "slipway did not start:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
            }
        }
        Slipway { child, log }
    }

    /// What it logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, as a crash.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Slipway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
