//! pxelinux configs, as in the seeds: `pxelinux.cfg/01-<mac-with-dashes>` per machine
//! and a `default` for everyone else.
//!
//! pxelinux.0 loads files over TFTP, so mirror paths stay relative to the TFTP root
//! (slipway serves the mirror there); an http:// asset needs lpxelinux.0.

use std::fmt::Write as _;

use slipway_cluster::{Cluster, Node};

use crate::boot::Boot;
use crate::ipxe::serde_name;
use crate::urls::Urls;

/// The file name pxelinux asks for: `pxelinux.cfg/01-52-54-00-99-00-01`.
pub fn file_name(node: &Node) -> String {
    format!("pxelinux.cfg/01-{}", node.mac.dashed())
}

/// A machine's install config.
pub fn install(cluster: &Cluster, node: &Node, boot: &Boot, urls: &Urls) -> String {
    let path = |a: &crate::boot::Asset| {
        if a.is_url() {
            a.0.clone()
        } else {
            a.0.trim_start_matches('/').to_string()
        }
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# slipway: install {} {} on {} ({}, {})",
        serde_name(&cluster.os.distro),
        cluster.os.version,
        node.hostname,
        node.mac,
        node.ip
    );
    let _ = urls;
    let _ = writeln!(s, "default slipway");
    let _ = writeln!(s, "label slipway");
    let _ = writeln!(s, "  kernel {}", path(&boot.kernel));
    if !boot.initrds.is_empty() {
        let list: Vec<String> = boot.initrds.iter().map(path).collect();
        let _ = writeln!(s, "  initrd {}", list.join(","));
    }
    let _ = writeln!(s, "  append {}", boot.args.join(" "));
    s
}

/// A machine that is installed: boot the local disk.
pub fn local_boot(node: &Node) -> String {
    format!(
        "# slipway: {} ({}) is installed: boot from local disk\ndefault local\nlabel local\n  localboot 0\n",
        node.hostname, node.mac
    )
}

/// The `default` config for machines without their own file: boot from local disk.
/// (The seeds booted the installer here, which reinstalled any machine that PXE-booted;
/// slipway never installs a machine it does not know.)
pub fn default_config() -> String {
    "# slipway: this machine is not in the cluster file: boot from local disk\ndefault local\nlabel local\n  localboot 0\n"
        .into()
}
