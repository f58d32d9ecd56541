//! The TFTP files slipway writes itself.

use std::net::SocketAddr;
use std::sync::Arc;

use slipway_render::{boot, grub, pxelinux};
use slipway_tftp::{Content, OpenError, Source};

use crate::{Boot, Live};

/// The TFTP files slipway writes itself, made at each request from the configuration
/// in force and the machine's life: pxelinux's `default` (boot the local disk), and per
/// node `pxelinux.cfg/01-<mac>` and `grub.cfg-01-<mac>`, which install a machine until
/// it is installed and boot its disk from then on (the same [`Live::boot`] decision as
/// iPXE's). Every other path is not found, for the next layer to serve.
pub struct Generated {
    live: Arc<Live>,
}

impl Generated {
    /// The generated files of `live`'s configuration.
    pub fn new(live: Arc<Live>) -> Generated {
        Generated { live }
    }
}

impl Source for Generated {
    fn open(&self, path: &str, client: SocketAddr) -> Result<Content, OpenError> {
        if path == "pxelinux.cfg/default" {
            return Ok(Content::bytes(pxelinux::default_config().into_bytes()));
        }
        let (kind, mac) = if let Some(m) = path.strip_prefix("pxelinux.cfg/01-") {
            ("pxelinux", m)
        } else if let Some(m) = path.strip_prefix("grub.cfg-01-") {
            ("grub", m)
        } else {
            return Err(OpenError::NotFound);
        };
        let snapshot = self.live.current();
        let cluster = &snapshot.cluster;
        let Some(node) = mac.parse().ok().and_then(|m| cluster.node_by_mac(m)) else {
            return Err(OpenError::NotFound);
        };
        let decision = self.live.boot(node, kind.into(), client);
        let answer = match &decision {
            Boot::Installer { .. } => "installer",
            Boot::LocalDisk => "local disk",
            Boot::Refused(_) => "refused",
        };
        tracing::info!(host = node.hostname, %client, kind, answer, "boot config over TFTP");
        let key = match decision {
            Boot::Installer { key } => Some(key),
            Boot::LocalDisk => None,
            Boot::Refused(_) => return Err(OpenError::AccessDenied),
        };
        let text = match key {
            Some(key) => {
                let urls = slipway_render::Urls::new(cluster).with_install_key(key.as_deref());
                let b = boot::install(cluster, node, &urls);
                if kind == "pxelinux" {
                    pxelinux::install(cluster, node, &b, &urls)
                } else {
                    grub::install(cluster, node, &b, &urls)
                }
            }
            None if kind == "pxelinux" => pxelinux::local_boot(node),
            None => grub::local_boot(),
        };
        Ok(Content::bytes(text.into_bytes()))
    }
}

/// Everything served over TFTP, first match wins: the [`Generated`] files, then the boot
/// programs in `boot_dir`, Debian's pxelinux and syslinux modules, and the asset mirror
/// (`mirror`, when the assets are local). Directories that do not exist are skipped.
pub fn layers(
    live: Arc<Live>,
    boot_dir: &std::path::Path,
    mirror: Option<&std::path::Path>,
) -> Arc<dyn Source> {
    let mut layers: Vec<Arc<dyn Source>> = vec![Arc::new(Generated::new(live))];
    let dirs = [
        Some(boot_dir),
        Some(std::path::Path::new("/usr/lib/PXELINUX")),
        Some(std::path::Path::new("/usr/lib/syslinux/modules/bios")),
        mirror,
    ];
    for dir in dirs.into_iter().flatten() {
        match slipway_tftp::DirSource::new(dir) {
            Ok(source) => layers.push(Arc::new(source)),
            Err(e) => {
                tracing::debug!(dir = %dir.display(), "TFTP: not serving this directory: {e}")
            }
        }
    }
    Arc::new(slipway_tftp::Layered::new(layers))
}
