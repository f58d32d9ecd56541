//! The operator API as an operator and a stranger meet it: on a listener of its own
//! (loopback by default), every request (reads too) needing the operator token, the
//! machines' listener serving none of it, TLS when it listens beyond loopback, and the
//! CLI refusing to send the token in clear text across the network.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const CLUSTER: &str = "\
cluster: {name: t}
network: {interface: lo, server: 127.0.0.1, subnet: 127.0.0.0/24}
os: {version: 4081.2.0, assets: mirror}
kubernetes: {version: v1.31.2, service_subnet: 10.100.0.0/16}
access: {ssh_authorized_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlaceholderPlaceholder t@x']}
nodes:
  - {mac: 52:54:00:99:00:01, hostname: cp1, ip: 127.0.0.11, roles: [control-plane]}
  - {mac: 52:54:00:99:00:02, hostname: w1, ip: 127.0.0.21}
";

/// A running `slipway serve` (killed on drop) and the addresses it printed.
struct Serve {
    child: Child,
    http: String,
    api: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("slipway-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    fill_mirror(&dir);
    std::fs::write(dir.join("cluster.yaml"), CLUSTER).unwrap_or_else(|e| panic!("{e}"));
    dir
}

fn serve_command(dir: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_slipway"));
    c.arg("--state-dir")
        .arg(dir.join("state"))
        .arg("serve")
        .arg(dir.join("cluster.yaml"))
        .args(["--http-listen", "127.0.0.1:0"])
        .args(["--no-dhcp", "--no-dns", "--no-tftp"])
        .args(extra);
    c
}

fn serve(dir: &Path, extra: &[&str]) -> Serve {
    let mut child = serve_command(dir, extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut out = BufReader::new(child.stdout.take().unwrap_or_else(|| panic!("no stdout")));
    let (mut http, mut api) = (String::new(), String::new());
    for _ in 0..20 {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap_or(0) == 0 || line.starts_with("ready") {
            break;
        }
        if let Some(a) = line.trim().strip_prefix("http listening on ") {
            http = format!("http://{a}");
        }
        if let Some(a) = line.trim().strip_prefix("api listening on ") {
            api = a.to_string();
        }
    }
    assert!(
        !http.is_empty() && !api.is_empty(),
        "http {http:?}, api {api:?}"
    );
    Serve { child, http, api }
}

/// (status code, response headers, body) of curl with `args`.
fn curl(args: &[&str]) -> (u16, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-D", "/dev/stderr"])
        .args(["-w", "\n%{http_code}"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("curl: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (
        code.parse().unwrap_or(0),
        String::from_utf8_lossy(&out.stderr).to_lowercase(),
        body.to_string(),
    )
}

fn token(dir: &Path) -> String {
    std::fs::read(dir.join("state/api-token"))
        .unwrap_or_else(|e| panic!("{e}"))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `slipway --state-dir DIR/state ARGS`: (exit code, stdout + stderr).
fn slipway(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(args)
        .env_remove("SLIPWAY_API")
        .env_remove("SLIPWAY_API_TOKEN")
        .envs(env.iter().copied())
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

#[test]
fn the_api_has_its_own_listener_and_every_request_needs_the_token() {
    let dir = workdir("api");
    let s = serve(&dir, &["--api-listen", "127.0.0.1:0"]);
    assert!(s.api.starts_with("http://127.0.0.1:"), "{}", s.api);
    let file = dir.join("cluster.yaml");
    let file = file.to_str().unwrap_or_default();
    let auth = format!("authorization: Bearer {}", token(&dir));

    // The machines' listener serves no operator data, with or without the token.
    for path in ["/api/v1/machines", "/api/v1/nodes", "/api/v1/openapi.json"] {
        let (code, _, _) = curl(&["-H", &auth, &format!("{}{path}", s.http)]);
        assert_eq!(code, 404, "{path} on the machines' listener");
    }
    // The API: reads need the token too; without it, not even which paths exist.
    for path in [
        "/api/v1/machines",
        "/api/v1/nodes/cp1",
        "/api/v1/cluster",
        "/api/v1/openapi.json",
        "/api/v1/no-such-thing",
        "/",
    ] {
        let (code, headers, body) = curl(&[&format!("{}{path}", s.api)]);
        assert_eq!(code, 401, "{path} without a token: {body}");
        assert!(
            headers.contains("www-authenticate: bearer"),
            "{path}: {headers}"
        );
        let (code, headers, _) = curl(&[
            "-H",
            "authorization: Bearer 00000000000000000000000000000000",
            &format!("{}{path}", s.api),
        ]);
        assert_eq!(code, 401, "{path} with a wrong token");
        assert!(headers.contains("invalid_token"), "{headers}");
    }
    let (code, _, body) = curl(&["-H", &auth, &format!("{}/api/v1/machines", s.api)]);
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("\"cp1\"") && body.contains("\"w1\""),
        "{body}"
    );
    let (code, _, body) = curl(&["-H", &auth, &format!("{}/api/v1/openapi.json", s.api)]);
    assert_eq!(code, 200);
    assert!(
        body.contains("\"bearer\""),
        "the document declares the scheme"
    );

    // The CLI reads the token from the state directory...
    let (code, out) = slipway(&dir, &["--api", &s.api, "status", file], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("cp1") && out.contains("unknown"), "{out}");
    // ... or SLIPWAY_API_TOKEN; a wrong one is refused with a message that says so.
    let other = workdir("api-other");
    let (code, out) = slipway(
        &other,
        &["--api", &s.api, "status", file],
        &[("SLIPWAY_API_TOKEN", &token(&dir))],
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = slipway(
        &dir,
        &["--api", &s.api, "events", file],
        &[("SLIPWAY_API_TOKEN", "abcd")],
    );
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("401") && out.contains("token"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&other);
}

#[test]
fn the_token_never_crosses_the_network_in_clear_text() {
    let dir = workdir("api-clear");
    let file = dir.join("cluster.yaml");
    let file = file.to_str().unwrap_or_default();
    // serve: an API beyond loopback without TLS is refused before anything is bound.
    let out = serve_command(&dir, &["--api-listen", "0.0.0.0:0"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("--api-listen 0.0.0.0:0") && err.contains("--api-tls-cert"),
        "{err}"
    );
    // The CLI: http:// to another machine is refused before any request.
    std::fs::create_dir_all(dir.join("state")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("state/api-token"), [7u8; 16]).unwrap_or_else(|e| panic!("{e}"));
    let (code, out) = slipway(
        &dir,
        &["--api", "http://192.0.2.1:9180", "status", file],
        &[],
    );
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("clear text") && out.contains("https://"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn beyond_loopback_the_api_speaks_tls() {
    let dir = workdir("api-tls");
    let file = dir.join("cluster.yaml");
    let file = file.to_str().unwrap_or_default();
    // A self-signed certificate for 127.0.0.1 (not a CA: TLS clients refuse a CA
    // certificate as a server's), as an operator would make one.
    let (cert, key) = (dir.join("api.crt"), dir.join("api.key"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=slipway api",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap_or_else(|e| panic!("openssl: {e}"));
    assert!(made.status.success(), "{made:?}");
    let s = serve(
        &dir,
        &[
            "--api-listen",
            "0.0.0.0:0",
            "--api-tls-cert",
            cert.to_str().unwrap_or_default(),
            "--api-tls-key",
            key.to_str().unwrap_or_default(),
        ],
    );
    let port = s.api.rsplit(':').next().unwrap_or_default().to_string();
    assert!(s.api.starts_with("https://"), "{}", s.api);
    let api = format!("https://127.0.0.1:{port}");
    let auth = format!("authorization: Bearer {}", token(&dir));
    let ca = cert.to_str().unwrap_or_default();

    let (code, _, body) = curl(&["--cacert", ca, "-H", &auth, &format!("{api}/api/v1/nodes")]);
    assert_eq!(code, 200, "{body}");
    let (code, _, _) = curl(&["--cacert", ca, &format!("{api}/api/v1/nodes")]);
    assert_eq!(code, 401, "TLS does not replace the token");
    // Clear text to the TLS port gets no answer.
    let (code, _, _) = curl(&[&format!("http://127.0.0.1:{port}/api/v1/nodes")]);
    assert_eq!(code, 0, "no HTTP answer without TLS");

    // The CLI trusts the certificate through --api-ca, and not without it.
    let (code, out) = slipway(&dir, &["--api", &api, "--api-ca", ca, "status", file], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("cp1"), "{out}");
    let (code, out) = slipway(&dir, &["--api", &api, "status", file], &[]);
    assert_ne!(code, 0, "an unknown issuer is refused: {out}");
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
