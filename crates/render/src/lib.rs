//! Rendering: from a completed [`Cluster`] (and the cluster's [`Secrets`]), every
//! file a machine fetches while it boots and installs, and configs for sites that keep
//! their own DHCP/TFTP/HTTP servers.
//!
//! Everything here is a pure function of its inputs: no files, no sockets, no clock.
//! Text formats (iPXE, pxelinux, GRUB, shell) are written as text; structured formats
//! (Ignition, cloud-config, kubeadm YAML, JSON) are built as data and serialized.
//!
//! ```
//! use slipway_render::{Artifact, ExampleSecrets, render};
//! # let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/lab.yaml")).unwrap();
//! # let cluster = slipway_cluster::load_str("lab.yaml", &text, std::path::Path::new("/"), &slipway_cluster::NoHost).cluster.unwrap();
//! let node = cluster.node_by_hostname("cp1").unwrap();
//! let script = render(&cluster, node, Artifact::Ipxe, &ExampleSecrets, None).unwrap();
//! assert!(script.starts_with("#!ipxe"));
//! ```
#![deny(missing_docs)]

pub mod boot;
pub mod cloudconfig;
pub mod cni;
pub mod export;
pub mod grub;
pub mod ignition;
pub mod images;
pub mod install;
pub mod ipxe;
pub mod k8s_upgrade;
pub mod kubeadm;
pub mod kubevip;
pub mod os_update;
pub mod provision;
pub mod pxelinux;
pub mod secrets;
pub mod template;
pub mod urls;

pub use secrets::{ExampleSecrets, SecretFile, Secrets};
use slipway_cluster::{Cluster, ConfigFormat, Node};
pub use urls::Urls;

/// Why an artifact could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// The cluster asks for something slipway does not render yet.
    #[error("not supported yet: {0}")]
    Unsupported(String),
    /// The artifact does not exist for this cluster's OS / config format.
    #[error("not applicable: {0}")]
    NotApplicable(String),
    /// The generic profile's template failed (syntax, undefined variable).
    #[error("template error: {0}")]
    Template(String),
    /// A secret the artifact carries could not be made.
    #[error("cannot make a secret: {0}")]
    Secret(String),
}

/// Every artifact a node has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Artifact {
    /// Its iPXE install script.
    Ipxe,
    /// Its iPXE "boot from local disk" script.
    IpxeLocal,
    /// Its pxelinux config.
    Pxelinux,
    /// Its GRUB config.
    Grub,
    /// The live system's install config (Ignition, or the install script for
    /// cloud-config, which coreos-cloudinit runs as a script).
    InstallConfig,
    /// The install script.
    Install,
    /// The installed system's first-boot config (Ignition, cloud-config or template).
    Installed,
    /// Its kubeadm configuration (also inside `Installed`).
    Kubeadm,
}

impl Artifact {
    /// Every artifact, in the order `render` lists them.
    pub const ALL: [Artifact; 8] = [
        Artifact::Ipxe,
        Artifact::IpxeLocal,
        Artifact::Pxelinux,
        Artifact::Grub,
        Artifact::InstallConfig,
        Artifact::Install,
        Artifact::Installed,
        Artifact::Kubeadm,
    ];

    /// Whether the artifact carries secrets (keys, tokens): served only to its node.
    /// The install script and the install config carry the node's report token.
    pub fn has_secrets(&self) -> bool {
        matches!(
            self,
            Artifact::Installed | Artifact::Kubeadm | Artifact::Install | Artifact::InstallConfig
        )
    }
}

/// Renders one artifact of `node`. `template` is the generic profile's template text
/// (read by the caller), needed only for `Installed` with `config_format: template`.
pub fn render(
    cluster: &Cluster,
    node: &Node,
    artifact: Artifact,
    secrets: &dyn Secrets,
    template: Option<&str>,
) -> Result<String, RenderError> {
    render_keyed(cluster, node, artifact, secrets, template, None)
}

/// [`render`], with `install_key` (the one-time key slipway issued to the machine with
/// its boot script) in every URL of the machine's configurations that the artifact
/// carries.
pub fn render_keyed(
    cluster: &Cluster,
    node: &Node,
    artifact: Artifact,
    secrets: &dyn Secrets,
    template: Option<&str>,
    install_key: Option<&str>,
) -> Result<String, RenderError> {
    let urls = Urls::new(cluster).with_install_key(install_key);
    let boot = boot::install(cluster, node, &urls);
    let report = secrets
        .report_tokens(node)
        .map(|(install, _)| urls.report(node.mac, &install));
    match artifact {
        Artifact::Ipxe => Ok(ipxe::install(cluster, node, &boot, &urls)),
        Artifact::IpxeLocal => Ok(ipxe::local_boot(node)),
        Artifact::Pxelinux => Ok(pxelinux::install(cluster, node, &boot, &urls)),
        Artifact::Grub => Ok(grub::install(cluster, node, &boot, &urls)),
        Artifact::Install => install::script(cluster, node, &urls, report.as_deref()),
        Artifact::InstallConfig => match cluster.os.config_format {
            ConfigFormat::Ignition => Ok(ignition::install(
                &urls.install_script(node.mac),
                &cluster.access.ssh_authorized_keys,
            )),
            ConfigFormat::CloudConfig => install::script(cluster, node, &urls, report.as_deref()),
            ConfigFormat::Template => installed_template(cluster, node, &urls, template),
        },
        Artifact::Installed => match cluster.os.config_format {
            ConfigFormat::Ignition => Ok(ignition::installed(&provision::provision(
                cluster, node, &urls, secrets,
            )?)),
            ConfigFormat::CloudConfig => Ok(cloudconfig::installed(&provision::provision(
                cluster, node, &urls, secrets,
            )?)),
            ConfigFormat::Template => installed_template(cluster, node, &urls, template),
        },
        Artifact::Kubeadm => kubeadm::yaml(cluster, node),
    }
}

/// What decides how `node` is installed, for comparing installs: its install config,
/// install script and installed config, rendered with [`ExampleSecrets`] and no install
/// key (real secrets and keys change on every render; they must not make two installs
/// of the same file look different).
pub fn install_fingerprint_inputs(
    cluster: &Cluster,
    node: &Node,
    template: Option<&str>,
) -> Result<Vec<String>, RenderError> {
    [
        Artifact::InstallConfig,
        Artifact::Install,
        Artifact::Installed,
    ]
    .into_iter()
    .map(
        |a| match render_keyed(cluster, node, a, &ExampleSecrets, template, None) {
            Err(RenderError::NotApplicable(_)) => Ok(String::new()),
            other => other,
        },
    )
    .collect()
}

fn installed_template(
    cluster: &Cluster,
    node: &Node,
    urls: &Urls,
    template: Option<&str>,
) -> Result<String, RenderError> {
    let name = cluster
        .os
        .generic
        .as_ref()
        .and_then(|g| g.template.as_ref())
        .map(|p| p.display().to_string())
        .ok_or_else(|| {
            RenderError::NotApplicable("the generic OS profile has no `template`".into())
        })?;
    let text = template
        .ok_or_else(|| RenderError::NotApplicable(format!("template {name} was not given")))?;
    template::render(&name, text, cluster, node, urls)
}
