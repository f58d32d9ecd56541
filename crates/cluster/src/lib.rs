//! The slipway cluster description: one YAML file that says everything about a
//! bare-metal Kubernetes cluster, from the PXE network to each machine's disk.
//!
//! Loading goes one way, each step a module:
//!
//! 1. [`yaml`]: text → a YAML tree whose every node knows its line and column;
//! 2. [`spec`]: tree → [`Spec`], the file as written, each value checked on its own
//!    (unknown keys, bad MACs, addresses, CIDRs, ...);
//! 3. [`complete`]: `Spec` → [`Cluster`], every default filled and every derivation
//!    made in one place, with the checks that relate fields (duplicates, addresses
//!    outside the subnet or inside the pool, no control plane, ...).
//!
//! Every problem is collected as a [`Diagnostic`] with its place, so one run reports
//! them all, and nothing panics on bad input.
//!
//! ```
//! use slipway_cluster::{load_str, NoHost};
//!
//! let text = "\
//! cluster: {name: lab}
//! network: {interface: br0, server: 10.99.0.1, subnet: 10.99.0.0/24}
//! os: {version: 4081.2.0}
//! kubernetes: {version: v1.31.2, service_subnet: 10.100.0.0/16}
//! access: {ssh_authorized_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExample me']}
//! nodes:
//!   - {mac: 52:54:00:99:00:01, hostname: cp1, ip: 10.99.0.11, roles: [control-plane]}
//!   - {mac: 52-54-00-99-00-02}
//! ";
//! let loaded = load_str("lab.yaml", text, std::path::Path::new("."), &NoHost);
//! assert!(!loaded.diagnostics.has_errors(), "{}", loaded.diagnostics.render(text));
//! let cluster = loaded.cluster.unwrap();
//! assert_eq!(cluster.cluster.domain, "lab.internal");
//! assert_eq!(cluster.nodes[1].hostname, "52-54-00-99-00-02");
//! assert_eq!(cluster.kubernetes.cluster_dns.to_string(), "10.100.0.10");
//! ```
#![deny(missing_docs)]

pub mod complete;
pub mod decode;
pub mod diagnostic;
pub mod emit;
pub mod model;
pub mod sextant;
pub mod spec;
pub mod types;
pub mod upgrade;
pub mod yaml;

use std::path::Path;

pub use complete::{Host, NoHost};
pub use diagnostic::{Diagnostic, Diagnostics, Severity, Span};
pub use model::*;
pub use spec::Spec;
pub use types::{Ipv4Range, LeaseTime, MacAddr};
pub use upgrade::Upgrade;

/// The result of loading a cluster file.
#[derive(Debug)]
pub struct Loaded {
    /// The completed cluster; `Some` and usable only when `diagnostics` has no errors.
    pub cluster: Option<Cluster>,
    /// Every problem found, sorted by position.
    pub diagnostics: Diagnostics,
}

impl Loaded {
    /// The cluster if the file had no errors (warnings allowed).
    pub fn valid(&self) -> Option<&Cluster> {
        if self.diagnostics.has_errors() {
            None
        } else {
            self.cluster.as_ref()
        }
    }
}

/// Largest cluster file accepted, in bytes.
pub const MAX_FILE_SIZE: usize = 64 << 20;

/// Loads cluster text named `name` (for messages); relative paths in it are taken
/// from `base_dir`; `host` answers questions about local interfaces.
pub fn load_str(name: &str, text: &str, base_dir: &Path, host: &dyn Host) -> Loaded {
    let mut diagnostics = Diagnostics::new(name);
    let mut cluster = None;
    if text.len() > MAX_FILE_SIZE {
        diagnostics.error(
            Span::FILE,
            format!("the file is larger than {} MiB", MAX_FILE_SIZE >> 20),
        );
    } else if let Some(root) = yaml::parse(text, &mut diagnostics)
        && let Some(spec) = spec::decode(&root, &mut diagnostics)
    {
        cluster = complete::complete(&spec, base_dir, host, &mut diagnostics);
    }
    diagnostics.sort();
    Loaded {
        cluster,
        diagnostics,
    }
}

/// Error reading a cluster file from disk (its content's problems are [`Diagnostics`]).
#[derive(Debug, thiserror::Error)]
#[error("cannot read {path}: {error}")]
pub struct ReadError {
    /// The path.
    pub path: String,
    /// What went wrong.
    pub error: std::io::Error,
}

/// Reads and loads the cluster file at `path`; returns the text too, for rendering
/// diagnostics.
pub fn load_file(path: &Path, host: &dyn Host) -> Result<(String, Loaded), ReadError> {
    let err = |error| ReadError {
        path: path.display().to_string(),
        error,
    };
    let meta = std::fs::metadata(path).map_err(err)?;
    if meta.len() > MAX_FILE_SIZE as u64 {
        return Err(err(std::io::Error::other(format!(
            "larger than {} MiB",
            MAX_FILE_SIZE >> 20
        ))));
    }
    let bytes = std::fs::read(path).map_err(err)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
        ))
    })?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let base = std::path::absolute(base).unwrap_or_else(|_| base.to_path_buf());
    let loaded = load_str(&path.display().to_string(), &text, &base, host);
    Ok((text, loaded))
}
