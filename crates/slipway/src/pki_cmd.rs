//! `slipway pki`: create the cluster PKI once, show expiry, rotate explicitly.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use slipway_pki::CaKind;

use crate::EXIT_INVALID;
use crate::check::{load_valid, write_stdout};

/// What to do with the PKI.
#[derive(Subcommand)]
pub enum PkiAction {
    /// Create every missing key and certificate (reuses what exists).
    Init,
    /// Show every certificate with its expiry and problems.
    Status,
    /// Reissue leaf certificates (all, or one node's).
    Rotate {
        /// Only this node's certificates.
        #[arg(long)]
        node: Option<String>,
        /// Replace a CA (and reissue everything it signed): cluster, etcd or front-proxy.
        #[arg(long)]
        ca: Option<String>,
    },
}

/// Runs a `pki` action for the cluster in `file`.
pub fn pki_cmd(
    file: &Path,
    state_dir: &Path,
    action: PkiAction,
    offline: bool,
) -> anyhow::Result<ExitCode> {
    let Some(cluster) = load_valid(file, offline)? else {
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    let mut pki = crate::state::open(state_dir, &cluster)?.0;
    match action {
        PkiAction::Init => {
            write_stdout(&format!(
                "PKI in {}: {} files created\nadmin kubeconfig: {}\n",
                pki.dir().display(),
                pki.written().len(),
                pki.admin_kubeconfig_path().display()
            ))?;
        }
        PkiAction::Status => {}
        PkiAction::Rotate { node, ca } => {
            if let Some(ca) = ca {
                let which = match ca.as_str() {
                    "cluster" => CaKind::Cluster,
                    "etcd" => CaKind::Etcd,
                    "front-proxy" => CaKind::FrontProxy,
                    other => {
                        eprintln!("slipway: unknown CA `{other}` (cluster, etcd or front-proxy)");
                        return Ok(ExitCode::from(EXIT_INVALID));
                    }
                };
                pki.rotate_ca(which)?;
            } else {
                pki.rotate_leaves(node.as_deref())?;
            }
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<28} {:<22} {:>9}  PROBLEMS",
        "CERTIFICATE", "NODE", "DAYS LEFT"
    );
    let mut worst = ExitCode::SUCCESS;
    for c in pki.status() {
        let problems: Vec<String> = c.problems.iter().map(|p| p.to_string()).collect();
        if !problems.is_empty() {
            worst = ExitCode::from(EXIT_INVALID);
        }
        let _ = writeln!(
            out,
            "{:<28} {:<22} {:>9}  {}",
            c.name,
            c.node.as_deref().unwrap_or("-"),
            c.days_left,
            if problems.is_empty() {
                "-".into()
            } else {
                problems.join("; ")
            }
        );
    }
    write_stdout(&out)?;
    Ok(worst)
}
