//! Container images end to end, with real peers and no internet: a real registry
//! (distribution v2, `docker-registry`) filled by `skopeo` with tiny images built here
//! (one of them a multi-arch index), `slipway mirror --only images` pulling them by
//! digest into `<assets>/oci` (a re-run asks for nothing; a corrupted blob upstream
//! fails by name and leaves the good files alone), then `slipway serve` answering the
//! registry protocol to `skopeo` and `curl`, and to containerd's `ctr` through the
//! `hosts.toml` slipway renders for the nodes.
//!
//! Needs `docker-registry`, `skopeo`, `curl` and `ctr`/`containerd`
//! (scripts/deps.sh installs them); the containerd part needs root.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

fn sha(b: &[u8]) -> String {
    format!(
        "sha256:{}",
        Sha256::digest(b)
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<String>()
    )
}

fn tool(name: &str) {
    let ok = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok, "`{name}` is needed (scripts/deps.sh installs it)");
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A child killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// (status, headers + body) of a curl call.
fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("curl: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.parse().unwrap_or(0), body.to_string())
}

fn wait_for(url: &str, what: &str) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(15) {
        if curl(&[url]).0 == 200 {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} did not answer {url} within 15 s");
}

/// Writes `bytes` as a blob of the OCI layout at `dir`; returns its descriptor.
fn blob(dir: &Path, media_type: &str, bytes: &[u8]) -> serde_json::Value {
    let d = sha(bytes);
    std::fs::write(dir.join("blobs/sha256").join(&d[7..]), bytes).unwrap_or_else(|e| panic!("{e}"));
    serde_json::json!({"mediaType": media_type, "digest": d, "size": bytes.len()})
}

/// A one-layer image for `arch` whose only file says `text`; returns the manifest's
/// descriptor.
fn image(dir: &Path, arch: &str, text: &str) -> serde_json::Value {
    let src = dir.join(format!("src-{}", sha(text.as_bytes())));
    std::fs::create_dir_all(&src).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(src.join("hello"), text).unwrap_or_else(|e| panic!("{e}"));
    let tar = dir.join("layer.tar");
    run(Command::new("tar")
        .args(["--mtime=@0", "--owner=0", "--group=0", "-cf"])
        .arg(&tar)
        .arg("-C")
        .arg(&src)
        .arg("hello"));
    let layer_bytes = std::fs::read(&tar).unwrap_or_else(|e| panic!("{e}"));
    let layer = blob(dir, "application/vnd.oci.image.layer.v1.tar", &layer_bytes);
    let config = serde_json::json!({
        "architecture": arch, "os": "linux",
        "config": {"Cmd": ["/hello"]},
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
    });
    let config = blob(
        dir,
        "application/vnd.oci.image.config.v1+json",
        config.to_string().as_bytes(),
    );
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config, "layers": [layer],
    });
    let mut d = blob(
        dir,
        "application/vnd.oci.image.manifest.v1+json",
        manifest.to_string().as_bytes(),
    );
    d["platform"] = serde_json::json!({"os": "linux", "architecture": arch});
    d
}

/// An OCI layout (at `dir`) with one reference per entry: `single` (amd64),
/// `multi` (an index of amd64 + arm64), `tampered` (amd64, its own layer).
fn build_layout(dir: &Path) {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut single = image(dir, "amd64", "hello from slipway's test image\n");
    single.as_object_mut().map(|o| o.remove("platform"));
    single["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "single"});
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [image(dir, "amd64", "amd64 variant\n"), image(dir, "arm64", "arm64 variant\n")],
    });
    let mut multi = blob(
        dir,
        "application/vnd.oci.image.index.v1+json",
        index.to_string().as_bytes(),
    );
    multi["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "multi"});
    let mut tampered = image(dir, "amd64", &"to be corrupted upstream\n".repeat(50));
    tampered.as_object_mut().map(|o| o.remove("platform"));
    tampered["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "tampered"});
    let top = serde_json::json!({"schemaVersion": 2, "manifests": [single, multi, tampered]});
    std::fs::write(dir.join("index.json"), top.to_string()).unwrap_or_else(|e| panic!("{e}"));
}

fn registry(dir: &Path) -> (Proc, u16, PathBuf) {
    let port = free_port();
    let log = dir.join("registry.log");
    let config = dir.join("registry.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog: {{level: info, accesslog: {{disabled: false}}}}\n\
             storage: {{filesystem: {{rootdirectory: {}}}}}\n\
             http: {{addr: '127.0.0.1:{port}'}}\n",
            dir.join("storage").display()
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let logf = std::fs::File::create(&log).unwrap_or_else(|e| panic!("{e}"));
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        .stdout(logf.try_clone().unwrap_or_else(|e| panic!("{e}")))
        .stderr(logf)
        .spawn()
        .unwrap_or_else(|e| panic!("docker-registry: {e}"));
    let p = Proc(child);
    wait_for(&format!("http://127.0.0.1:{port}/v2/"), "docker-registry");
    (p, port, log)
}

/// GET requests the registry logged for manifests and blobs.
fn registry_gets(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            l.contains("\"GET /v2/") && (l.contains("/manifests/") || l.contains("/blobs/"))
        })
        .count()
}

fn slipway(args: &[&str], state: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn cluster_file(dir: &Path, reg: u16, http: u16, extra: &[&str]) -> PathBuf {
    let f = dir.join("cluster.yaml");
    std::fs::write(
        &f,
        format!(
            "\
cluster: {{name: t, domain: t.test}}
network: {{interface: lo, server: 127.0.0.1, subnet: 127.0.0.0/24, http_port: {http}}}
os: {{version: 4081.2.0, assets: {assets}}}
kubernetes:
  version: v1.31.2
  service_subnet: 10.100.0.0/16
  network_plugin: none
  serve_images: true
  extra_images: [{extra}]
  image_sources:
    registry.k8s.io: 'http://127.0.0.1:{reg}/k8s'
    docker.io: 'http://127.0.0.1:{reg}/hub'
access: {{ssh_authorized_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlaceholderPlaceholder t@x']}}
nodes:
  - {{mac: 52:54:00:99:00:01, hostname: cp1, ip: 127.0.0.11, roles: [control-plane]}}
",
            assets = dir.join("assets").display(),
            extra = extra.join(", ")
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    f
}

/// Where the test's image of `reference` lives upstream (what `image_sources` maps).
fn upstream_of(reference: &str, reg: u16) -> String {
    let (host, rest) = reference.split_once('/').unwrap_or(("", reference));
    let prefix = if host == "docker.io" { "hub" } else { "k8s" };
    format!("docker://127.0.0.1:{reg}/{prefix}/{rest}")
}

fn skopeo_copy(from: &str, to: &str, all: bool) {
    let mut c = Command::new("skopeo");
    c.args([
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
    ]);
    if all {
        c.arg("--all");
    }
    run(c.args([from, to]));
}

fn raw(reference: &str) -> Vec<u8> {
    run(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false", reference])).stdout
}

#[test]
fn images_are_mirrored_by_digest_and_served_as_a_registry() {
    for t in ["docker-registry", "skopeo", "curl", "tar"] {
        tool(t);
    }
    let started = Instant::now();
    let dir = std::env::temp_dir().join(format!("slipway-images-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let state = dir.join("state");
    let layout = dir.join("src-layout");
    build_layout(&layout);
    let (_reg, reg, log) = registry(&dir);
    // slipway's HTTP port, as the cluster file gives it to the nodes.
    let http_port = free_port();

    // The images the cluster needs, as slipway lists them (upstream still empty).
    let busybox = "docker.io/library/busybox:1.36";
    let file = cluster_file(&dir, reg, http_port, &[busybox]);
    let (code, out, err) = slipway(
        &[
            "mirror",
            file.to_str().unwrap_or_default(),
            "--only",
            "images",
            "--dry-run",
        ],
        &state,
    );
    assert_eq!(code, 0, "{out}{err}");
    let refs: Vec<String> = out
        .lines()
        .filter_map(|l| l.strip_prefix("image "))
        .map(str::to_string)
        .collect();
    assert_eq!(refs.len(), 8, "7 kubeadm images and busybox: {out}");
    assert!(
        refs.iter()
            .any(|r| r == "registry.k8s.io/kube-apiserver:v1.31.2"),
        "{out}"
    );
    assert!(
        refs.iter()
            .any(|r| r.starts_with("registry.k8s.io/coredns/coredns:")),
        "{out}"
    );
    assert!(out.contains("size unknown"), "nothing upstream yet: {out}");

    // Fill the registry: coredns and busybox as multi-arch indexes, the rest single.
    let src = |r: &str| format!("oci:{}:{r}", layout.display());
    for r in &refs {
        let multi = r.contains("coredns") || r.contains("busybox");
        skopeo_copy(
            &src(if multi { "multi" } else { "single" }),
            &upstream_of(r, reg),
            multi,
        );
    }
    let (code, out, err) = slipway(
        &[
            "mirror",
            file.to_str().unwrap_or_default(),
            "--only",
            "images",
            "--dry-run",
        ],
        &state,
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("size unknown"), "sizes are known now: {out}");

    // The pull.
    let (code, out, err) = slipway(
        &[
            "mirror",
            file.to_str().unwrap_or_default(),
            "--only",
            "images",
        ],
        &state,
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("images: 8 pulled"), "{out}");
    let oci = dir.join("assets/oci");
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(oci.join("index.json")).unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
    assert_eq!(manifests.len(), 8);
    for r in &refs {
        let d = manifests
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == r.as_str())
            .unwrap_or_else(|| panic!("{r} is not in index.json"));
        // The digest recorded is upstream's (index or manifest, byte for byte).
        assert_eq!(
            d["digest"].as_str(),
            Some(sha(&raw(&upstream_of(r, reg))).as_str()),
            "{r}"
        );
        assert!(
            d["annotations"]["io.slipway.image.source"]
                .as_str()
                .is_some_and(|s| s.starts_with(&format!("http://127.0.0.1:{reg}/v2/")))
        );
    }
    // Every blob hashes to its name; the arm64 variant was not fetched.
    let mut blobs = 0;
    for e in std::fs::read_dir(oci.join("blobs/sha256")).unwrap_or_else(|e| panic!("{e}")) {
        let e = e.unwrap_or_else(|e| panic!("{e}"));
        let bytes = std::fs::read(e.path()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            sha(&bytes)[7..],
            *e.file_name().to_string_lossy(),
            "a blob does not hash to its name"
        );
        blobs += 1;
    }
    // single: manifest, config, layer; multi: index, the amd64 manifest, config, layer
    // (every image upstream is one of the two).
    assert_eq!(blobs, 7, "blobs in the layout");

    // A re-run asks the registry for nothing.
    let before = registry_gets(&log);
    assert!(
        before > 0,
        "the registry logged no GET: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let (code, out, err) = slipway(
        &[
            "mirror",
            file.to_str().unwrap_or_default(),
            "--only",
            "images",
        ],
        &state,
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("images: 0 pulled (0 B), 8 already verified, 0 failed; 0 requests"),
        "{out}"
    );
    assert_eq!(
        registry_gets(&log),
        before,
        "the re-run sent requests to the registry"
    );

    // A corrupted blob upstream: named, with both digests; exit 1; nothing else moves.
    let tampered = "docker.io/library/tampered:1";
    skopeo_copy(&src("tampered"), &upstream_of(tampered, reg), false);
    let tm: serde_json::Value =
        serde_json::from_slice(&raw(&upstream_of(tampered, reg))).unwrap_or_else(|e| panic!("{e}"));
    let layer = tm["layers"][0]["digest"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let data = dir
        .join("storage/docker/registry/v2/blobs/sha256")
        .join(&layer[7..9])
        .join(&layer[7..])
        .join("data");
    let mut bytes = std::fs::read(&data).unwrap_or_else(|e| panic!("{}: {e}", data.display()));
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    let corrupt = sha(&bytes);
    std::fs::write(&data, &bytes).unwrap_or_else(|e| panic!("{e}"));
    let index_before = std::fs::read(oci.join("index.json")).unwrap_or_else(|e| panic!("{e}"));
    let file = cluster_file(&dir, reg, http_port, &[busybox, tampered]);
    let (code, out, err) = slipway(
        &[
            "mirror",
            file.to_str().unwrap_or_default(),
            "--only",
            "images",
        ],
        &state,
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains(tampered) && err.contains(&format!("expected {layer}, got {corrupt}")),
        "{err}"
    );
    assert!(
        !oci.join("blobs/sha256").join(&layer[7..]).exists(),
        "the bad blob landed"
    );
    assert!(
        !oci.join("blobs/sha256")
            .join(format!("{}.part", &layer[7..]))
            .exists(),
        "the bad part is kept"
    );
    assert_eq!(
        std::fs::read(oci.join("index.json")).unwrap_or_else(|e| panic!("{e}")),
        index_before,
        "index.json changed"
    );
    assert!(out.contains("8 already verified"), "{out}");
    let (code, _, err) = slipway(
        &["check", "--assets", file.to_str().unwrap_or_default()],
        &state,
    );
    assert_eq!(code, 1);
    assert!(err.contains(&format!("image {tampered}")), "{err}");

    // slipway serve answers the registry protocol from the layout. (The OS files serve
    // refuses to start without, as placeholders.)
    let v = dir.join("assets/4081.2.0");
    std::fs::create_dir_all(&v).unwrap_or_else(|e| panic!("{e}"));
    for f in [
        "flatcar_production_pxe.vmlinuz",
        "flatcar_production_pxe_image.cpio.gz",
        "flatcar_production_image.bin.bz2",
        "version.txt",
    ] {
        std::fs::write(v.join(f), f).unwrap_or_else(|e| panic!("{e}"));
    }
    let file = cluster_file(&dir, reg, http_port, &[busybox]);
    let (serve, http) = serve(&file, &state, http_port);
    let base = format!("http://{http}");
    let (code, body) = curl(&["-i", &format!("{base}/v2/")]);
    assert_eq!(code, 200, "{body}");
    assert!(
        body.to_ascii_lowercase()
            .contains("docker-distribution-api-version: registry/2.0"),
        "{body}"
    );

    // skopeo pulls back each image from slipway: the same bytes as upstream.
    for r in &refs {
        let (host, rest) = r.split_once('/').unwrap_or_default();
        let rest = rest.strip_prefix("library/").unwrap_or(rest);
        // Through the full name (`<registry>/<repo>`) and, for unambiguous names, bare.
        let full = format!("docker://{http}/{host}/{rest}");
        let bare = format!("docker://{http}/{rest}");
        assert_eq!(raw(&full), raw(&upstream_of(r, reg)), "{r}");
        assert_eq!(raw(&bare), raw(&upstream_of(r, reg)), "{r}");
    }
    let coredns = refs
        .iter()
        .find(|r| r.contains("coredns"))
        .cloned()
        .unwrap_or_default();
    let rest = coredns.split_once('/').map(|x| x.1).unwrap_or_default();
    let pulled = dir.join("pulled");
    skopeo_copy(
        &format!("docker://{http}/{rest}"),
        &format!("oci:{}:x", pulled.display()),
        false,
    );
    let upstream_index: serde_json::Value =
        serde_json::from_slice(&raw(&upstream_of(&coredns, reg))).unwrap_or_else(|e| panic!("{e}"));
    let amd64 = upstream_index["manifests"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["platform"]["architecture"] == "amd64"))
        .map(|m| m["digest"].as_str().unwrap_or_default().to_string())
        .unwrap_or_default();
    let arm64 = upstream_index["manifests"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["platform"]["architecture"] == "arm64"))
        .map(|m| m["digest"].as_str().unwrap_or_default().to_string())
        .unwrap_or_default();
    let got: serde_json::Value = serde_json::from_slice(
        &std::fs::read(pulled.join("index.json")).unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        got["manifests"][0]["digest"].as_str(),
        Some(amd64.as_str()),
        "skopeo got another manifest"
    );
    assert!(
        !oci.join("blobs/sha256").join(&arm64[7..]).exists(),
        "the arm64 manifest was mirrored"
    );

    // HEAD on a manifest; ranges on a blob; errors as the registry's JSON.
    let (name, tag) = rest.split_once(':').unwrap_or_default();
    let (code, head) = curl(&[
        "-I",
        &format!("{base}/v2/{name}/manifests/{tag}?ns=registry.k8s.io"),
    ]);
    assert_eq!(code, 200, "{head}");
    let h = head.to_ascii_lowercase();
    let upstream_raw = raw(&upstream_of(&coredns, reg));
    assert!(
        h.contains(&format!("content-length: {}", upstream_raw.len())),
        "{head}"
    );
    assert!(
        h.contains("content-type: application/vnd.oci.image.index.v1+json"),
        "{head}"
    );
    assert!(
        h.contains(&format!(
            "docker-content-digest: {}",
            sha(&raw(&upstream_of(&coredns, reg)))
        )),
        "{head}"
    );
    let cfg: serde_json::Value = serde_json::from_slice(&raw(&format!(
        "docker://{http}/pause:{}",
        refs.iter()
            .find(|r| r.contains("/pause:"))
            .and_then(|r| r.rsplit(':').next())
            .unwrap_or_default()
    )))
    .unwrap_or_else(|e| panic!("{e}"));
    let layer = cfg["layers"][0]["digest"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let whole =
        std::fs::read(oci.join("blobs/sha256").join(&layer[7..])).unwrap_or_else(|e| panic!("{e}"));
    let (code, part) = curl(&[
        "-r",
        "0-9",
        &format!("{base}/v2/pause/blobs/{layer}?ns=registry.k8s.io"),
    ]);
    assert_eq!(code, 206);
    assert_eq!(
        part,
        String::from_utf8_lossy(&whole[..10]),
        "the range is not the blob's first 10 bytes"
    );
    let (code, body) = curl(&[&format!(
        "{base}/v2/pause/manifests/{arm64}?ns=registry.k8s.io"
    )]);
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("\"MANIFEST_UNKNOWN\""), "{body}");
    let (code, body) = curl(&[&format!("{base}/v2/nothing/here/manifests/1")]);
    assert_eq!(code, 404);
    assert!(body.contains("\"NAME_UNKNOWN\""), "{body}");
    let (code, body) = curl(&[&format!("{base}/v2/pause/blobs/sha256:..%2F..%2Fetc")]);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("\"DIGEST_INVALID\""), "{body}");
    let (code, body) = curl(&[
        "-X",
        "PUT",
        "--data",
        "x",
        &format!("{base}/v2/pause/manifests/evil"),
    ]);
    assert_eq!(code, 405);
    assert!(body.contains("\"UNSUPPORTED\""), "{body}");

    containerd_pulls_through_slipway(&dir, &file, &refs, reg);
    drop(serve);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        started.elapsed() < Duration::from_secs(300),
        "took {:?}",
        started.elapsed()
    );
}

fn serve(file: &Path, state: &Path, http_port: u16) -> (Proc, String) {
    let listen = format!("127.0.0.1:{http_port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .arg("--state-dir")
        .arg(state)
        .arg("serve")
        .arg(file)
        .args([
            "--http-listen",
            &listen,
            "--tftp-listen",
            "127.0.0.1:0",
            "--no-dhcp",
            "--no-dns",
            "--api-listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut out = BufReader::new(child.stdout.take().unwrap_or_else(|| panic!("no stdout")));
    let mut http = String::new();
    loop {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap_or(0) == 0 || line.starts_with("ready") {
            break;
        }
        if let Some(a) = line.trim().strip_prefix("http listening on ") {
            http = a.to_string();
        }
    }
    assert!(!http.is_empty(), "serve did not start");
    (Proc(child), http)
}

/// A private containerd (root, its own socket and directories) pulls the pause image
/// by its upstream name through the `hosts.toml` slipway renders for the nodes.
fn containerd_pulls_through_slipway(dir: &Path, file: &Path, refs: &[String], reg: u16) {
    tool("containerd");
    tool("ctr");
    let uid = run(Command::new("id").arg("-u")).stdout;
    assert_eq!(
        String::from_utf8_lossy(&uid).trim(),
        "0",
        "the containerd part needs root"
    );
    let root = dir.join("containerd");
    let sock = root.join("c.sock");
    std::fs::create_dir_all(&root).unwrap_or_else(|e| panic!("{e}"));
    let config = root.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "version = 2\nroot = \"{r}/root\"\nstate = \"{r}/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{s}\"\n[ttrpc]\n  address = \"{s}.ttrpc\"\n\
             [debug]\n  address = \"\"\n",
            r = root.display(),
            s = sock.display()
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let log = std::fs::File::create(root.join("containerd.log")).unwrap_or_else(|e| panic!("{e}"));
    let _containerd = Proc(
        Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdout(log.try_clone().unwrap_or_else(|e| panic!("{e}")))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("containerd: {e}")),
    );
    let start = Instant::now();
    while !sock.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "containerd did not start: {}",
            std::fs::read_to_string(root.join("containerd.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The nodes' certs.d, as slipway renders it for this cluster file.
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{e}"));
    let loaded = slipway_cluster::load_str("c.yaml", &text, dir, &slipway_cluster::NoHost);
    let cluster = loaded
        .valid()
        .cloned()
        .unwrap_or_else(|| panic!("{}", loaded.diagnostics.render(&text)));
    let certs = root.join("certs.d");
    let files = slipway_render::provision::containerd_hosts_files(
        &cluster,
        &slipway_render::Urls::new(&cluster),
    );
    assert!(!files.is_empty(), "no hosts.toml rendered");
    for (path, contents) in files {
        let rel = path
            .strip_prefix("/etc/containerd/certs.d/")
            .unwrap_or_else(|| panic!("{path}"));
        let p = certs.join(rel);
        std::fs::create_dir_all(p.parent().unwrap_or(&certs)).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&p, contents).unwrap_or_else(|e| panic!("{e}"));
    }
    let pause = refs
        .iter()
        .find(|r| r.contains("/pause:"))
        .cloned()
        .unwrap_or_default();
    let out = Command::new("ctr")
        .arg("--address")
        .arg(&sock)
        .args([
            "--timeout",
            "60s",
            "images",
            "pull",
            "--snapshotter",
            "native",
            "--platform",
            "linux/amd64",
            "--hosts-dir",
        ])
        .arg(&certs)
        .arg(&pause)
        .output()
        .unwrap_or_else(|e| panic!("ctr: {e}"));
    let mut text = String::from_utf8_lossy(&out.stdout).to_string();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "ctr pull {pause} through slipway failed: {text}"
    );
    // The test's image (not the real pause): it came from slipway.
    let list = run(Command::new("ctr")
        .arg("--address")
        .arg(&sock)
        .args(["images", "ls"]))
    .stdout;
    let list = String::from_utf8_lossy(&list);
    let digest = sha(&raw(&upstream_of(&pause, reg)));
    assert!(
        list.lines()
            .any(|l| l.starts_with(pause.as_str()) && l.contains(&digest)),
        "ctr does not hold {pause} at {digest}: {list}"
    );
}
