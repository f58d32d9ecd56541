//! Shared by the `export_*` tests: the clusters to export, a scratch directory, a
//! writer, and running the real programs' own config checks.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use slipway_cluster::{Cluster, NoHost, load_str};
use slipway_render::export::{Contents, Export, Options, Target, export};

pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn load_text(name: &str, text: &str) -> Cluster {
    let loaded = load_str(name, text, &examples(), &NoHost);
    assert!(
        !loaded.diagnostics.has_errors(),
        "{name}:\n{}",
        loaded.diagnostics.render(text)
    );
    loaded
        .cluster
        .unwrap_or_else(|| panic!("{name}: no cluster"))
}

/// An example file with text replacements (each must match).
pub fn variant(file: &str, edits: &[(&str, &str)]) -> Cluster {
    let path = examples().join(file);
    let mut text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    for (from, to) in edits {
        assert!(text.contains(from), "{file}: `{from}` not found");
        text = text.replacen(from, to, 1);
    }
    load_text(file, &text)
}

/// The clusters every export is checked with: the examples as they are, and variants
/// for each DHCP mode and unknown-machine policy, and the odd corners.
pub fn clusters() -> Vec<(&'static str, Cluster)> {
    vec![
        // authoritative, unknown machines ignored
        ("lab", variant("lab.yaml", &[])),
        // authoritative, discover with a pool, upstream DNS, NTP, infinite leases
        ("sextant-like", variant("sextant-like.yaml", &[])),
        (
            "lab-proxy",
            variant("lab.yaml", &[("mode: authoritative", "mode: proxy")]),
        ),
        (
            "lab-discover",
            variant(
                "lab.yaml",
                &[("unknown_machines: ignore", "unknown_machines: discover")],
            ),
        ),
        (
            "lab-off",
            variant("lab.yaml", &[("mode: authoritative", "mode: off")]),
        ),
        (
            // proxy + discover, no gateway, an NTP name, a virtual API address, another
            // HTTP port, an upstream on another port, 90 s leases
            "lab-odd",
            variant(
                "lab.yaml",
                &[
                    ("mode: authoritative", "mode: proxy"),
                    ("unknown_machines: ignore", "unknown_machines: discover"),
                    (
                        "  gateway: 10.99.0.1\n",
                        "  ntp: [10.99.0.1, ntp.example.org]\n  http_port: 8081\n",
                    ),
                    ("upstream_dns: []", "upstream_dns: [9.9.9.9:5353, 1.1.1.1]"),
                    ("lease_time: 1h", "lease_time: 90s"),
                    (
                        "  pod_subnet:",
                        "  control_plane_endpoint: 10.99.0.5:6443\n  pod_subnet:",
                    ),
                ],
            ),
        ),
    ]
}

/// A scratch directory, removed when dropped (pass or fail).
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "slipway-export-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        TempDir(dir)
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

/// Options for exporting into `dir`, with the TFTP root at `dir/tftp`.
pub fn options(dir: &Path) -> Options {
    let mut opts = Options::new("examples/test.yaml", dir);
    opts.tftp_root = dir.join("tftp");
    opts
}

/// Exports `target` of `cluster` into `dir` and writes it there.
pub fn export_into(cluster: &Cluster, target: Target, dir: &Path) -> Export {
    let out =
        export(cluster, target, &options(dir)).unwrap_or_else(|e| panic!("export {target}: {e}"));
    write(&out, dir);
    out
}

/// Writes an export (what `slipway export` does, without its bookkeeping).
pub fn write(out: &Export, dir: &Path) {
    for f in &out.files {
        assert!(f.path.is_relative(), "{}", f.path.display());
        let to = dir.join(&f.path);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
        }
        let r = match &f.contents {
            Contents::Text(t) => std::fs::write(&to, t),
            Contents::Copy(from) => std::fs::copy(from, &to).map(|_| ()),
            Contents::Symlink(target) => std::os::unix::fs::symlink(target, &to),
            Contents::Dir => std::fs::create_dir_all(&to),
        };
        r.unwrap_or_else(|e| panic!("writing {}: {e}", to.display()));
    }
}

/// Runs a program, saying clearly what to install when it is missing.
pub fn run(program: &str, package: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `{program}` ({e}): install the Debian package `{package}` (scripts/test does, as root)"
            )
        })
}

/// Runs a shell script in new user and network namespaces: as root there, with only
/// a loopback interface, so a config check can bind or look up interfaces without
/// touching the machine's network.
pub fn in_netns(script: &str, args: &[&str]) -> Output {
    let out = Command::new("unshare")
        .args([
            "--user",
            "--map-root-user",
            "--net",
            "sh",
            "-euc",
            script,
            "sh",
        ])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `unshare` ({e}): install util-linux (and iproute2 for `ip`)")
        });
    let stderr = text(&out.stderr);
    assert!(
        !stderr.contains("unshare failed") && !stderr.contains("unshare:"),
        "cannot make a network namespace here (unshare --user --net), which this check needs:\n{stderr}"
    );
    out
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Both output streams, for messages.
pub fn both(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// Every line of `text` equal to `line`.
pub fn count_lines(text: &str, line: &str) -> usize {
    text.lines().filter(|l| *l == line).count()
}
