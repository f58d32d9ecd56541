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

/// The generic OS's config template, when the cluster names one.
pub(crate) fn template(cluster: &Cluster) -> anyhow::Result<Option<String>> {
    let Some(path) = cluster
        .os
        .generic
        .as_ref()
        .and_then(|g| g.template.as_ref())
    else {
        return Ok(None);
    };
    std::fs::read_to_string(path)
        .map(Some)
        .with_context(|| format!("reading template {}", path.display()))
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
    let template = template(&cluster)?;
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

/// The file name an artifact is written under by `render --all`.
fn file_name(a: Artifact, format: ConfigFormat) -> &'static str {
    match (a, format) {
        (Artifact::Ipxe, _) => "install.ipxe",
        (Artifact::IpxeLocal, _) => "local.ipxe",
        (Artifact::Pxelinux, _) => "pxelinux.cfg",
        (Artifact::Grub, _) => "grub.cfg",
        (Artifact::InstallConfig, ConfigFormat::Ignition) => "install-config.ign",
        (Artifact::InstallConfig, _) => "install-config",
        (Artifact::Install, _) => "install.sh",
        (Artifact::Installed, ConfigFormat::Ignition) => "installed.ign",
        (Artifact::Installed, ConfigFormat::CloudConfig) => "installed.yml",
        (Artifact::Installed, ConfigFormat::Template) => "installed",
        (Artifact::Kubeadm, _) => "kubeadm.yaml",
    }
}

/// Renders every artifact of every node into `to/<hostname>/` (directories 0700, files
/// 0600: they hold secrets), on all cores. Prints what it wrote and how long it took;
/// every artifact that cannot be rendered is reported, and the exit code says so.
pub fn render_all(
    file: &Path,
    to: &Path,
    state_dir: &Path,
    example_secrets: bool,
    offline: bool,
) -> anyhow::Result<ExitCode> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let started = std::time::Instant::now();
    let Some(cluster) = load_valid(file, offline)? else {
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    let template = template(&cluster)?;
    let pki;
    let secrets: &(dyn Secrets + Sync) = if example_secrets {
        &ExampleSecrets
    } else {
        pki = crate::state::open(state_dir, &cluster)?;
        &pki
    };
    let loaded = started.elapsed();
    let format = cluster.os.config_format;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = cluster.nodes.len().div_ceil(threads).max(1);
    let write = |dir: &Path, name: &str, text: &str| -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(dir.join(name))?;
        f.write_all(text.as_bytes())
    };
    let results: Vec<(usize, usize, Vec<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = cluster
            .nodes
            .chunks(chunk)
            .map(|nodes| {
                let (cluster, template) = (&cluster, template.as_deref());
                s.spawn(move || {
                    let (mut files, mut bytes, mut errors) = (0, 0, Vec::new());
                    for n in nodes {
                        let dir = to.join(&n.hostname);
                        if let Err(e) = std::fs::DirBuilder::new()
                            .recursive(true)
                            .mode(0o700)
                            .create(&dir)
                        {
                            errors.push(format!("{}: {e}", dir.display()));
                            continue;
                        }
                        for a in Artifact::ALL {
                            let name = file_name(a, format);
                            match render(cluster, n, a, secrets, template) {
                                Ok(text) => match write(&dir, name, &text) {
                                    Ok(()) => {
                                        files += 1;
                                        bytes += text.len();
                                    }
                                    Err(e) => {
                                        errors.push(format!("{}: {e}", dir.join(name).display()))
                                    }
                                },
                                Err(e) => errors.push(format!("{}: {name}: {e}", n.hostname)),
                            }
                        }
                    }
                    (files, bytes, errors)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| (0, 0, vec!["a render thread panicked".into()]))
            })
            .collect()
    });
    let (files, bytes) = results
        .iter()
        .fold((0, 0), |(f, b), (f2, b2, _)| (f + f2, b + b2));
    let errors: Vec<&String> = results.iter().flat_map(|(_, _, e)| e).collect();
    for e in &errors {
        eprintln!("slipway: {e}");
    }
    eprintln!(
        "rendered {files} files ({:.1} MB) for {} nodes into {} in {:.0} ms ({:.0} ms loading the file and PKI){}",
        bytes as f64 / 1e6,
        cluster.nodes.len(),
        to.display(),
        started.elapsed().as_secs_f64() * 1e3,
        loaded.as_secs_f64() * 1e3,
        if errors.is_empty() {
            String::new()
        } else {
            format!("; {} failed", errors.len())
        }
    );
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INVALID)
    })
}
