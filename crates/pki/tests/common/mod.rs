//! Helpers shared by the integration tests: temporary state directories, clusters,
//! the openssl CLI, and snapshots of a directory's files.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use slipway_cluster::Cluster;

/// What every test returns.
pub type R = Result<(), Box<dyn Error>>;

/// The lab example: cp1 (control plane, stacked etcd), worker1, worker2.
pub const LAB: &str = include_str!("../../../../examples/lab.yaml");

/// The sextant-like example: node1 control plane + etcd, node2/node3 worker + etcd.
pub const SEXTANT: &str = include_str!("../../../../examples/sextant-like.yaml");

/// Two control-plane nodes, a separate etcd node, a worker, a virtual IP endpoint,
/// the default service subnet and extra names (one a wildcard).
pub const SPLIT: &str = "\
cluster: {name: split, domain: split.example}
network: {interface: br0, server: 192.168.50.1, subnet: 192.168.50.0/24}
os: {version: 4081.2.0}
kubernetes:
  version: v1.31.2
  control_plane_endpoint: 192.168.50.5:6443
  extra_sans: ['*.apps.split.example', 203.0.113.7, lb.split.example]
access: {ssh_authorized_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExample me']}
nodes:
  - {mac: 52:54:00:50:00:01, hostname: cp1, ip: 192.168.50.11, roles: [control-plane]}
  - {mac: 52:54:00:50:00:02, hostname: cp2, ip: 192.168.50.12, roles: [control-plane]}
  - {mac: 52:54:00:50:00:03, hostname: etcd1, ip: 192.168.50.21, roles: [etcd]}
  - {mac: 52:54:00:50:00:04, hostname: w1, ip: 192.168.50.31}
";

/// Loads a cluster text, failing with its diagnostics.
pub fn cluster(text: &str) -> Result<Cluster, Box<dyn Error>> {
    let loaded =
        slipway_cluster::load_str("test.yaml", text, Path::new("/"), &slipway_cluster::NoHost);
    if loaded.diagnostics.has_errors() {
        return Err(loaded.diagnostics.render(text).into());
    }
    Ok(loaded.cluster.ok_or("no cluster")?)
}

/// A directory under the system's temporary directory, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new empty directory named after the test.
    pub fn new(name: &str) -> Result<TempDir, Box<dyn Error>> {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("slipway-pki-{name}-{}-{n}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        Ok(TempDir(dir))
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `<dir>/pki/<rel>`.
    pub fn pki(&self, rel: &str) -> PathBuf {
        self.0.join("pki").join(rel)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `openssl` with `args`; its standard output, or an error with its standard
/// error when it fails.
pub fn openssl(args: &[&str]) -> Result<String, Box<dyn Error>> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run openssl (Debian package `openssl`): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "openssl {} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// Whether `openssl verify -CAfile ca -purpose purpose cert` accepts the certificate.
pub fn verifies(ca: &Path, cert: &Path, purpose: &str) -> Result<bool, Box<dyn Error>> {
    let ca = ca.to_str().ok_or("path")?;
    let cert = cert.to_str().ok_or("path")?;
    match openssl(&["verify", "-CAfile", ca, "-purpose", purpose, cert]) {
        Ok(out) => Ok(out.trim().ends_with(": OK")),
        Err(_) => Ok(false),
    }
}

/// Every file under `dir`, by path relative to it, with its bytes.
pub fn snapshot(dir: &Path) -> Result<BTreeMap<String, Vec<u8>>, Box<dyn Error>> {
    fn walk(
        root: &Path,
        dir: &Path,
        out: &mut BTreeMap<String, Vec<u8>>,
    ) -> Result<(), Box<dyn Error>> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                walk(root, &path, out)?;
            } else {
                let rel = path.strip_prefix(root)?.to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&path)?);
            }
        }
        Ok(())
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out)?;
    Ok(out)
}

/// The names of the files that differ between two snapshots (changed, added or
/// removed).
pub fn changed(
    before: &BTreeMap<String, Vec<u8>>,
    after: &BTreeMap<String, Vec<u8>>,
) -> Vec<String> {
    let mut names: Vec<String> = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .cloned()
        .collect();
    names.sort();
    names.dedup();
    names
}
