//! iPXE scripts: the chain script every machine loads first, each machine's install
//! script, and the "boot from local disk" script.

use std::fmt::Write as _;

use slipway_cluster::{Cluster, Node};

use crate::boot::Boot;
use crate::urls::Urls;

/// How many times the chain script retries DHCP, then fetching its own script.
pub const RETRIES: u32 = 5;

/// The chain script (`/boot.ipxe`): makes sure the NIC is configured (retrying DHCP),
/// then fetches the machine's own script by MAC, telling slipway the firmware's
/// architecture and platform. A machine slipway does not know gets a 404 and falls back
/// to the next boot device.
pub fn chain(urls: &Urls) -> String {
    format!(
        "#!ipxe\n\
         # slipway chain script: find this machine's own script by its MAC.\n\
         set attempt:int32 0\n\
         :net\n\
         isset ${{ip}} && goto fetch ||\n\
         dhcp && goto fetch ||\n\
         inc attempt\n\
         iseq ${{attempt}} {RETRIES} && goto giveup ||\n\
         echo slipway: DHCP failed, retrying (${{attempt}}/{RETRIES})\n\
         sleep 2\n\
         goto net\n\
         :fetch\n\
         imgfetch --name own {base}/ipxe/${{mac:hexhyp}}.ipxe?buildarch=${{buildarch}}&platform=${{platform}} || goto retry\n\
         # The machine's script either boots, or says \"not from here\" with exit 1, which\n\
         # must reach the firmware so it tries the next boot entry (the local disk).\n\
         chain --autofree own || exit 1\n\
         exit\n\
         :retry\n\
         inc attempt\n\
         iseq ${{attempt}} {RETRIES} && goto giveup ||\n\
         echo slipway: no script for ${{mac}} yet, retrying (${{attempt}}/{RETRIES})\n\
         sleep 3\n\
         goto fetch\n\
         :giveup\n\
         echo slipway: giving up on ${{mac}}; trying the next boot device\n\
         sleep 3\n\
         exit 1\n",
        base = urls.base()
    )
}

/// A machine's install script: boots the installer kernel and initrds, retrying a
/// failed download.
pub fn install(cluster: &Cluster, node: &Node, boot: &Boot, urls: &Urls) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "#!ipxe");
    let _ = writeln!(
        s,
        "# slipway: install {} {} {} on {} ({}, {})",
        serde_name(&cluster.os.distro),
        cluster.os.channel,
        cluster.os.version,
        node.hostname,
        node.mac,
        node.ip
    );
    let initrd_args: Vec<String> = boot
        .initrds
        .iter()
        .map(|i| format!("initrd={}", i.file_name()))
        .collect();
    let mut args = initrd_args;
    args.extend(boot.args.iter().cloned());
    let _ = writeln!(
        s,
        "echo slipway: {} on ${{platform}} ${{buildarch}}, installing",
        node.hostname
    );
    let _ = writeln!(s, ":retry");
    let _ = writeln!(
        s,
        "kernel {} {} || goto failed",
        boot.kernel.url(urls),
        args.join(" ")
    );
    for initrd in &boot.initrds {
        let _ = writeln!(s, "initrd {} || goto failed", initrd.url(urls));
    }
    let _ = writeln!(s, "boot || goto failed");
    let _ = writeln!(s, ":failed");
    let _ = writeln!(s, "echo slipway: boot failed, retrying in 5 s");
    let _ = writeln!(s, "sleep 5");
    let _ = writeln!(s, "goto retry");
    s
}

/// The script for a machine that is installed: boot from its own disk (UEFI: leave
/// iPXE so the firmware tries the next boot entry; BIOS: boot the first hard disk).
pub fn local_boot(node: &Node) -> String {
    format!(
        "#!ipxe\n\
         # slipway: {} ({}) is installed: boot from local disk\n\
         iseq ${{platform}} efi && exit 1 ||\n\
         sanboot --no-describe --drive 0x80 || exit 1\n",
        node.hostname, node.mac
    )
}

pub(crate) fn serde_name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}
