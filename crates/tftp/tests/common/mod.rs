//! Helpers shared by the integration tests: temp dirs, random files, a server on a
//! background runtime, and client processes with a time limit.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use slipway_tftp::{Config, Source, serve};

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("slipway-tftp-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Seeded pseudo-random bytes (xorshift64*).
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.max(1);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Writes a random file of `len` bytes under `dir`.
pub fn random_file(dir: &Path, name: &str, len: usize) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(
        &path,
        random_bytes(len as u64 * 31 + name.len() as u64, len),
    )
    .unwrap();
    path
}

/// Asserts two files have the same bytes, without printing megabytes on failure.
pub fn assert_same_file(got: &Path, want: &Path) {
    let got_bytes = std::fs::read(got).unwrap_or_else(|e| panic!("{}: {e}", got.display()));
    let want_bytes = std::fs::read(want).unwrap();
    assert_eq!(
        got_bytes.len(),
        want_bytes.len(),
        "{}: length differs",
        got.display()
    );
    if let Some(at) = got_bytes.iter().zip(&want_bytes).position(|(a, b)| a != b) {
        panic!(
            "{}: differs from {} at byte {at}",
            got.display(),
            want.display()
        );
    }
}

/// A server running on its own runtime thread; stopped when dropped.
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn start(source: Arc<dyn Source>, config: Config) -> Server {
        Server::start_on("127.0.0.1:0".parse().unwrap(), source, config)
    }

    pub fn start_on(bind: SocketAddr, source: Arc<dyn Source>, config: Config) -> Server {
        Server::start_with(bind, source, config, true)
    }

    /// `multi_thread`: tokio's multi-threaded runtime with 2 workers (what slipway
    /// runs), else a current-thread runtime.
    pub fn start_with(
        bind: SocketAddr,
        source: Arc<dyn Source>,
        config: Config,
        multi_thread: bool,
    ) -> Server {
        init_logging();
        let socket = std::net::UdpSocket::bind(bind).unwrap();
        let addr = socket.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = if multi_thread {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap()
            } else {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
            };
            runtime
                .block_on(serve(socket, source, config, async {
                    let _ = stopped.await;
                }))
                .unwrap();
        });
        Server {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

/// What a client process did.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs `command`, killing it after `limit`; its output goes through temp files so a
/// chatty client cannot block on a full pipe.
pub fn run_limited(command: &mut Command, limit: Duration) -> Run {
    let dir = TempDir::new("run");
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{command:?} did not finish within {limit:?}; output: {}{}",
                std::fs::read_to_string(&out_path).unwrap_or_default(),
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Run {
        status,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
        elapsed: started.elapsed(),
    }
}

/// Fails with a clear message when a client program is missing.
pub fn require(program: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{program}` not found: install the Debian package `{package}` (scripts/test does)"
    );
}

/// tftp-hpa: `tftp -m binary HOST PORT -c get REMOTE LOCAL` (512-byte blocks, no options).
pub fn tftp_hpa_get(host: &str, port: u16, remote: &str, local: &Path) -> Command {
    tftp_hpa_get_mode(host, port, "binary", remote, local)
}

/// tftp-hpa in a given mode (`binary`, or `ascii` for netascii).
pub fn tftp_hpa_get_mode(host: &str, port: u16, mode: &str, remote: &str, local: &Path) -> Command {
    require("tftp", "tftp-hpa");
    let mut command = Command::new("tftp");
    command
        .args(["-m", mode, host, &port.to_string(), "-c", "get", remote])
        .arg(local);
    command
}

/// atftp with options: `atftp --option "NAME VALUE" ... -g -r REMOTE -l LOCAL HOST PORT`.
pub fn atftp_get(
    host: &str,
    port: u16,
    remote: &str,
    local: &Path,
    options: &[(&str, u64)],
) -> Command {
    require("atftp", "atftp");
    let mut command = Command::new("atftp");
    for (name, value) in options {
        command.arg("--option").arg(format!("{name} {value}"));
    }
    command
        .args(["-g", "-r", remote, "-l"])
        .arg(local)
        .args([host, &port.to_string()]);
    command
}
