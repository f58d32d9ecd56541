//! What a machine boots to install: kernel, initrds and kernel arguments, for each OS.

use slipway_cluster::{Cluster, ConfigFormat, Distro, Node};

use crate::urls::Urls;

/// A boot file: a path inside the asset mirror, or a full URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset(pub String);

impl Asset {
    /// Whether it is a full URL rather than a mirror path.
    pub fn is_url(&self) -> bool {
        self.0.starts_with("http://") || self.0.starts_with("https://")
    }

    /// Its URL.
    pub fn url(&self, urls: &Urls) -> String {
        if self.is_url() {
            self.0.clone()
        } else {
            format!("{}/{}", urls.assets(), self.0.trim_start_matches('/'))
        }
    }

    /// Its last path component (what `initrd=` names for the EFI stub).
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }
}

/// Everything needed to boot a machine's installer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boot {
    /// The kernel.
    pub kernel: Asset,
    /// The initrds, in order.
    pub initrds: Vec<Asset>,
    /// Kernel arguments (without `initrd=`, which each boot loader adds as it needs).
    pub args: Vec<String>,
}

/// The file-name prefix of an OS's images (`flatcar_production`, `coreos_production`).
pub fn image_prefix(distro: Distro) -> &'static str {
    match distro {
        Distro::Coreos => "coreos_production",
        _ => "flatcar_production",
    }
}

/// The installer boot of `node`: the OS's PXE kernel and initrd, with arguments that
/// make the live system fetch its install config.
pub fn install(cluster: &Cluster, node: &Node, urls: &Urls) -> Boot {
    let os = &cluster.os;
    let config = urls.install_config(node.mac);
    let (kernel, initrds, mut args) = match os.distro {
        Distro::Flatcar | Distro::Coreos => {
            let p = image_prefix(os.distro);
            let first_boot = if os.distro == Distro::Coreos {
                "coreos"
            } else {
                "flatcar"
            };
            let args = match os.config_format {
                ConfigFormat::Ignition => vec![
                    format!("{first_boot}.first_boot=1"),
                    // Flatcar reads ignition.config.url; CoreOS Container Linux coreos.config.url.
                    if os.distro == Distro::Coreos {
                        format!("coreos.config.url={config}")
                    } else {
                        format!("ignition.config.url={config}")
                    },
                ],
                _ => vec![format!("cloud-config-url={config}")],
            };
            (
                Asset(format!("{}/{p}_pxe.vmlinuz", os.version)),
                vec![Asset(format!("{}/{p}_pxe_image.cpio.gz", os.version))],
                args,
            )
        }
        Distro::Generic => {
            let g = os.generic.as_ref();
            (
                Asset(g.map(|g| g.kernel.clone()).unwrap_or_default()),
                g.map(|g| g.initrds.iter().cloned().map(Asset).collect())
                    .unwrap_or_default(),
                Vec::new(),
            )
        }
    };
    args.extend(os.kernel_args.iter().cloned());
    args.extend(node.kernel_args.iter().cloned());
    for a in &mut args {
        *a = a
            .replace("{{config_url}}", &config)
            .replace("{{ config_url }}", &config);
    }
    Boot {
        kernel,
        initrds,
        args,
    }
}
