//! A real slipway HTTP service on loopback, for tests that talk to it with curl.

#![allow(dead_code, missing_docs)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use slipway_cluster::{NoHost, load_str};
use slipway_render::ExampleSecrets;
use slipway_serve::Snapshot;

/// A running service and its scratch directory (removed on drop).
pub struct Server {
    pub addr: SocketAddr,
    /// The operator API's listener; its token is [`API_TOKEN`].
    pub api: SocketAddr,
    pub dir: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The cluster: slipway on 127.0.0.1, cp1 at 127.0.0.11, w1 at 127.0.0.21, so curl's
/// `--interface 127.0.0.11` is "the machine" and plain curl is "someone else".
pub fn cluster_text(mirror: &Path, format: &str) -> String {
    format!(
        "cluster: {{name: t}}
network: {{interface: lo, server: 127.0.0.1, subnet: 127.0.0.0/24, http_port: 8080}}
os: {{version: 4081.2.0, assets: {mirror}, config_format: {format}}}
kubernetes: {{version: v1.31.2, service_subnet: 10.100.0.0/16}}
access: {{ssh_authorized_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlaceholderPlaceholder t@x']}}
nodes:
  - {{mac: 52:54:00:99:00:01, hostname: cp1, ip: 127.0.0.11, roles: [control-plane]}}
  - {{mac: 52:54:00:99:00:02, hostname: w1, ip: 127.0.0.21}}
",
        mirror = mirror.display()
    )
}

/// The operator token of every test server's API.
pub const API_TOKEN: &str = "test-operator-token";

pub fn start(name: &str, format: &str) -> Server {
    let dir = std::env::temp_dir().join(format!("slipway-http-{}-{name}", std::process::id()));
    let mirror = dir.join("mirror");
    std::fs::create_dir_all(mirror.join("4081.2.0")).unwrap_or_else(|e| panic!("{e}"));
    let text = cluster_text(&mirror, format);
    let loaded = load_str("t.yaml", &text, Path::new("/"), &NoHost);
    let cluster = loaded
        .valid()
        .cloned()
        .unwrap_or_else(|| panic!("{}", loaded.diagnostics.render(&text)));
    let service = slipway_serve::Live::with_api(
        Snapshot {
            cluster,
            secrets: Arc::new(ExampleSecrets),
            template: None,
            boot_dir: None,
        },
        API_TOKEN.to_string(),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        rt.block_on(async move {
            let bind = || async {
                tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .unwrap_or_else(|e| panic!("{e}"))
            };
            let (listener, api) = (bind().await, bind().await);
            let addr =
                |l: &tokio::net::TcpListener| l.local_addr().unwrap_or_else(|e| panic!("{e}"));
            let _ = ready_tx.send((addr(&listener), addr(&api)));
            let (stop_api, api_stopped) = tokio::sync::oneshot::channel::<()>();
            let operator = slipway_http::serve_api(api, service.clone(), None, async {
                let _ = api_stopped.await;
            });
            let machines = slipway_http::serve(listener, service, async {
                let _ = stopped.await;
                let _ = stop_api.send(());
            });
            let _ = tokio::join!(machines, operator);
        });
    });
    let (addr, api) = ready_rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("server did not start: {e}"));
    Server {
        addr,
        api,
        dir,
        stop: Some(stop),
        thread: Some(thread),
    }
}

/// What curl got: status, headers (lower-case names), body.
pub struct Got {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Got {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Runs curl with `args` against `url`, returning what it got.
pub fn curl(url: &str, args: &[&str]) -> Got {
    let headers_file = std::env::temp_dir().join(format!(
        "slipway-curl-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30", "-D"])
        .arg(&headers_file)
        .args(args)
        .arg(url)
        .output()
        .unwrap_or_else(|e| panic!("curl: {e} (apt-get install curl)"));
    assert!(
        out.status.success(),
        "curl {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let raw = std::fs::read_to_string(&headers_file).unwrap_or_default();
    let _ = std::fs::remove_file(&headers_file);
    let mut lines = raw.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Got {
        status,
        headers,
        body: out.stdout,
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}
