//! GRUB configs for UEFI sites that netboot GRUB: `grub.cfg-01-<mac-with-dashes>` per
//! machine (GRUB looks for it in its prefix before `grub.cfg`) and a default.

use std::fmt::Write as _;

use slipway_cluster::{Cluster, Node};

use crate::boot::Boot;
use crate::ipxe::serde_name;
use crate::urls::Urls;

/// The per-machine file name GRUB looks for.
pub fn file_name(node: &Node) -> String {
    format!("grub.cfg-01-{}", node.mac.dashed())
}

/// GRUB's device path for a URL on slipway's server (`(http,10.0.0.1:8080)/path`), or
/// the URL itself split the same way for another host.
fn grub_path(url: &str) -> String {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or(url);
    match rest.split_once('/') {
        Some((host, path)) => format!("(http,{host})/{path}"),
        None => format!("(http,{rest})/"),
    }
}

/// A machine's install entry.
pub fn install(cluster: &Cluster, node: &Node, boot: &Boot, urls: &Urls) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# slipway: install {} {} on {} ({})",
        serde_name(&cluster.os.distro),
        cluster.os.version,
        node.hostname,
        node.mac
    );
    let _ = writeln!(s, "set default=0");
    let _ = writeln!(s, "set timeout=0");
    let _ = writeln!(s, "menuentry \"slipway: install {}\" {{", node.hostname);
    let _ = writeln!(
        s,
        "  linux {} {}",
        grub_path(&boot.kernel.url(urls)),
        boot.args.join(" ")
    );
    let initrds: Vec<String> = boot
        .initrds
        .iter()
        .map(|i| grub_path(&i.url(urls)))
        .collect();
    if !initrds.is_empty() {
        let _ = writeln!(s, "  initrd {}", initrds.join(" "));
    }
    let _ = writeln!(s, "}}");
    s
}

/// The config for installed machines and machines without their own file: leave GRUB
/// so the firmware boots the next entry (the local disk).
pub fn local_boot() -> String {
    "# slipway: boot from local disk\nset default=0\nset timeout=0\nmenuentry \"slipway: local disk\" {\n  exit\n}\n".into()
}
