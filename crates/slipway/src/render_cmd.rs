//! `slipway render`: print any artifact of any node, exactly as the machine gets it.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::ValueEnum;
use slipway_cluster::{Cluster, ConfigFormat};
use slipway_render::{Artifact, ExampleSecrets, Secrets, render};

use crate::EXIT_INVALID;
use crate::check::{load_valid, write_stdout};

/// Artifact names on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Which {
    /// The iPXE install script.
    Ipxe,
    /// The iPXE "boot from local disk" script.
    IpxeLocal,
    /// The pxelinux config.
    Pxelinux,
    /// The GRUB config.
    Grub,
    /// The live system's install config.
    InstallConfig,
    /// The install script.
    Install,
    /// The installed system's config (Ignition, cloud-config or template).
    Installed,
    /// The installed config, asserting it is Ignition.
    Ignition,
    /// The installed config, asserting it is a cloud-config.
    CloudConfig,
    /// The kubeadm configuration.
    Kubeadm,
}

fn artifact(which: Which, cluster: &Cluster) -> Result<Artifact, String> {
    let format = cluster.os.config_format;
    Ok(match which {
        Which::Ipxe => Artifact::Ipxe,
        Which::IpxeLocal => Artifact::IpxeLocal,
        Which::Pxelinux => Artifact::Pxelinux,
        Which::Grub => Artifact::Grub,
        Which::InstallConfig => Artifact::InstallConfig,
        Which::Install => Artifact::Install,
        Which::Installed => Artifact::Installed,
        Which::Kubeadm => Artifact::Kubeadm,
        Which::Ignition if format == ConfigFormat::Ignition => Artifact::Installed,
        Which::CloudConfig if format == ConfigFormat::CloudConfig => Artifact::Installed,
        Which::Ignition | Which::CloudConfig => {
            return Err(format!(
                "this cluster's config format is {format:?}; use `--artifact installed`"
            ));
        }
    })
}

/// Renders one artifact of one node to stdout.
pub fn render_cmd(
    file: &Path,
    node: &str,
    which: Which,
    state_dir: &Path,
    example_secrets: bool,
    offline: bool,
) -> anyhow::Result<ExitCode> {
    let Some(cluster) = load_valid(file, offline)? else {
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    let found = cluster
        .node_by_hostname(node)
        .or_else(|| node.parse().ok().and_then(|m| cluster.node_by_mac(m)));
    let Some(n) = found else {
        eprintln!(
            "slipway: no node `{node}` in {} (give a hostname or a MAC)",
            file.display()
        );
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    let a = match artifact(which, &cluster) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("slipway: {e}");
            return Ok(ExitCode::from(EXIT_INVALID));
        }
    };
    let template = match cluster
        .os
        .generic
        .as_ref()
        .and_then(|g| g.template.as_ref())
    {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading template {}", path.display()))?,
        ),
        None => None,
    };
    let pki;
    let secrets: &dyn Secrets = if example_secrets || !a.has_secrets() {
        &ExampleSecrets
    } else {
        pki = crate::state::open(state_dir, &cluster)?;
        &pki
    };
    match render(&cluster, n, a, secrets, template.as_deref()) {
        Ok(text) => {
            write_stdout(&text)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("slipway: {}: {e}", n.hostname);
            Ok(ExitCode::from(EXIT_INVALID))
        }
    }
}
