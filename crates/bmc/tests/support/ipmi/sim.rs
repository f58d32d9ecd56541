//! OpenIPMI's `ipmi_sim` as a real IPMI v2.0 BMC for tests, and `ipmitool` as the
//! reference client to check what the BMC was told.
//!
//! [`Sim::start`] writes `lan.conf` (from `lan.conf.in` beside this file), the
//! command file `sim.emu` and a state directory to a fresh temporary directory,
//! starts `ipmi_sim -n` on a free UDP port of 127.0.0.1 with
//! `chassis-control.sh` as its chassis control program, and waits until it
//! answers. Dropping the [`Sim`] kills it (and any command the chassis script
//! started) and removes the directory.
//!
//! When `ipmi_sim` or `ipmitool` is missing the test fails, naming the Debian
//! package to install (see `PACKAGES` beside this file).

#![allow(dead_code)]

use std::fs;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use slipway_bmc::Secret;
use slipway_bmc::ipmi::{CipherSuite, Config};

/// The simulator's administrator.
pub const USER: &str = "slipway";
/// Their password.
pub const PASSWORD: &str = "Ipmi-T3st-pw!";

/// This file's directory, whichever crate's tests include it.
fn support() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(Path::new(file!()).parent().unwrap_or(Path::new(".")))
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Fails the test, naming the Debian package, when `program` is not on PATH.
pub fn require(program: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{program}` is not installed: install the Debian package `{package}` \
         (apt-get install {package}; all IPMI test packages are listed in \
         crates/bmc/tests/support/ipmi/PACKAGES)"
    );
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Options of a simulator.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Sessions the administrator may hold at once.
    pub max_sessions: u32,
    /// `SLIPWAY_CHASSIS_START` for the chassis script (power on runs it).
    pub start_command: Option<String>,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            max_sessions: 10,
            start_command: None,
        }
    }
}

/// A running `ipmi_sim`.
pub struct Sim {
    /// Its UDP port on 127.0.0.1.
    pub port: u16,
    /// The temporary directory.
    pub dir: PathBuf,
    /// The chassis script's state directory.
    pub chassis: PathBuf,
    options: SimOptions,
    child: Option<Child>,
}

impl Sim {
    /// Starts a simulator with default options.
    pub fn start() -> Sim {
        Sim::start_with(SimOptions::default())
    }

    /// Starts a simulator.
    pub fn start_with(options: SimOptions) -> Sim {
        require("ipmi_sim", "openipmi");
        require("ipmitool", "ipmitool");
        let dir = std::env::temp_dir().join(format!(
            "slipway-ipmi-sim-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        let chassis = dir.join("chassis");
        // From here on, a panic drops `sim`, which removes the directory.
        let mut sim = Sim {
            port: free_udp_port(),
            dir,
            chassis,
            options,
            child: None,
        };
        fs::create_dir_all(sim.dir.join("state")).unwrap();
        fs::create_dir_all(&sim.chassis).unwrap();
        let conf = fs::read_to_string(support().join("lan.conf.in"))
            .unwrap()
            .replace("@PORT@", &sim.port.to_string())
            .replace(
                "@CHASSIS@",
                &support().join("chassis-control.sh").display().to_string(),
            )
            .replace("@USER@", USER)
            .replace("@PASSWORD@", PASSWORD)
            .replace("@MAX_SESSIONS@", &sim.options.max_sessions.to_string());
        fs::write(sim.dir.join("lan.conf"), conf).unwrap();
        sim.spawn();
        sim
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new("ipmi_sim");
        cmd.arg("-n")
            .arg("-c")
            .arg(self.dir.join("lan.conf"))
            .arg("-f")
            .arg(support().join("sim.emu"))
            .arg("-s")
            .arg(self.dir.join("state"))
            .env("SLIPWAY_CHASSIS_STATE", &self.chassis)
            .env_remove("SLIPWAY_CHASSIS_CONF")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(self.dir.join("ipmi_sim.err")).unwrap());
        match &self.options.start_command {
            Some(start) => cmd.env("SLIPWAY_CHASSIS_START", start),
            None => cmd.env_remove("SLIPWAY_CHASSIS_START"),
        };
        let child = cmd.spawn().unwrap_or_else(|e| panic!("ipmi_sim: {e}"));
        self.child = Some(child);
        self.wait_ready();
    }

    /// Waits until the simulator answers Get Channel Authentication Capabilities.
    fn wait_ready(&mut self) {
        // RMCP, IPMI v1.5 session header (no auth), Get Channel Authentication
        // Capabilities for channel Eh with the v2.0 bit, administrator.
        let ping = [
            0x06, 0x00, 0xFF, 0x07, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x09, 0x20, 0x18, 0xC8, 0x81,
            0x00, 0x38, 0x8E, 0x04, 0xB5,
        ];
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 512];
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!(
                    "ipmi_sim exited ({status}) at start: {}",
                    fs::read_to_string(self.dir.join("ipmi_sim.err")).unwrap_or_default()
                );
            }
            let _ = sock.send_to(&ping, ("127.0.0.1", self.port));
            if sock.recv_from(&mut buf).is_ok() {
                return;
            }
        }
        panic!(
            "ipmi_sim did not answer on port {} within 10 s: {}",
            self.port,
            fs::read_to_string(self.dir.join("ipmi_sim.err")).unwrap_or_default()
        );
    }

    /// Kills the simulator (all sessions are lost) and starts it again on the same
    /// port with the same configuration.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A client configuration for `user` and `password`.
    pub fn config_for(&self, user: &str, password: &str, suite: CipherSuite) -> Config {
        let mut cfg = Config::new("127.0.0.1", self.port, user, Secret::new(password), suite);
        cfg.timeout = Duration::from_millis(500);
        cfg.retries = 3;
        cfg
    }

    /// A client configuration for the administrator.
    pub fn config(&self, suite: CipherSuite) -> Config {
        self.config_for(USER, PASSWORD, suite)
    }

    /// Runs `ipmitool -I lanplus -C <suite> ... <args>` as the administrator.
    pub fn ipmitool(&self, suite: u8, args: &[&str]) -> String {
        ipmitool(self.port, suite, USER, PASSWORD, args)
    }

    /// The chassis script's state file `name` ("power", "boot", "log", "pid"),
    /// trimmed; empty when absent.
    pub fn chassis_file(&self, name: &str) -> String {
        fs::read_to_string(self.chassis.join(name))
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    /// Lines of the chassis script's call log.
    pub fn chassis_log(&self) -> Vec<String> {
        self.chassis_file("log")
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Waits up to `within` for `cond`, returning whether it held.
    pub fn wait_for(&self, within: Duration, mut cond: impl FnMut(&Sim) -> bool) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if cond(self) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.kill();
        // A start command the chassis script left running: its process group.
        if let Ok(pid) = fs::read_to_string(self.chassis.join("pid")) {
            let pid = pid.trim();
            if !pid.is_empty() && pid.chars().all(|c| c.is_ascii_digit()) {
                let _ = Command::new("kill")
                    .args(["-KILL", &format!("-{pid}")])
                    .stderr(Stdio::null())
                    .status();
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Runs `ipmitool -I lanplus` against 127.0.0.1:`port` and returns its standard
/// output; panics with its output if it fails.
pub fn ipmitool(port: u16, suite: u8, user: &str, password: &str, args: &[&str]) -> String {
    let out = ipmitool_output(port, suite, user, password, args);
    assert!(
        out.status.success(),
        "ipmitool -C {suite} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `ipmitool -I lanplus` and returns its output, whatever its status.
pub fn ipmitool_output(port: u16, suite: u8, user: &str, password: &str, args: &[&str]) -> Output {
    require("ipmitool", "ipmitool");
    let port = port.to_string();
    let suite = suite.to_string();
    Command::new("ipmitool")
        .args([
            "-I",
            "lanplus",
            "-H",
            "127.0.0.1",
            "-p",
            &port,
            "-C",
            &suite,
            "-U",
            user,
            "-E",
            "-N",
            "1",
            "-R",
            "3",
        ])
        .args(args)
        // -E: the password from IPMI_PASSWORD, not the command line.
        .env("IPMI_PASSWORD", password)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("ipmitool: {e}"))
}
