//! The TFTP root: the boot programs (iPXE for BIOS and UEFI, pxelinux for sites that
//! keep it) and the pxelinux configs. `boot.ipxe` is not here: iPXE fetches it over
//! HTTP (the nginx export).

use std::collections::BTreeSet;
use std::path::PathBuf;

use slipway_cluster::{AssetSource, Cluster};

use super::{Contents, Export, ExportError, ExportFile, MissingFile, Options, header};
use crate::urls::{Urls, bootfiles};

/// A boot program copied from the system into the TFTP root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootBinary {
    /// Its name in the TFTP root.
    pub name: &'static str,
    /// Where Debian installs it, relative to the system root.
    pub source: &'static str,
    /// The Debian package that ships it.
    pub package: &'static str,
}

/// The boot programs of the TFTP root, as Debian 12 ships them.
pub const BOOT_BINARIES: [BootBinary; 5] = [
    BootBinary {
        name: bootfiles::BIOS_IPXE,
        source: "usr/lib/ipxe/undionly.kpxe",
        package: "ipxe",
    },
    BootBinary {
        name: bootfiles::UEFI_IPXE,
        source: "usr/lib/ipxe/snponly.efi",
        package: "ipxe",
    },
    BootBinary {
        name: bootfiles::UEFI_IPXE_FULL,
        source: "usr/lib/ipxe/ipxe.efi",
        package: "ipxe",
    },
    BootBinary {
        name: bootfiles::PXELINUX,
        source: "usr/lib/PXELINUX/pxelinux.0",
        package: "pxelinux",
    },
    BootBinary {
        name: bootfiles::LDLINUX,
        source: "usr/lib/syslinux/modules/bios/ldlinux.c32",
        package: "syslinux-common",
    },
];

/// Builds the TFTP root; fails when a boot program is not installed.
pub(super) fn export(cluster: &Cluster, opts: &Options) -> Result<Export, ExportError> {
    let mut out = Export::default();
    let mut missing = Vec::new();
    for bin in &BOOT_BINARIES {
        let from = opts.system_root.join(bin.source);
        if from.is_file() {
            out.files.push(ExportFile {
                path: bin.name.into(),
                contents: Contents::Copy(from),
            });
        } else {
            missing.push(MissingFile {
                path: from,
                package: bin.package,
            });
        }
    }
    if !missing.is_empty() {
        return Err(ExportError::MissingBootFiles(missing));
    }

    let urls = Urls::new(cluster);
    let head = header("#", cluster, opts);
    out.files.push(ExportFile {
        path: "pxelinux.cfg".into(),
        contents: Contents::Dir,
    });
    out.add_text(
        "pxelinux.cfg/default",
        format!("{head}{}", crate::pxelinux::default_config()),
    );
    // The first path component of every mirror file the pxelinux configs name.
    let mut tops = BTreeSet::new();
    for node in &cluster.nodes {
        let boot = crate::boot::install(cluster, node, &urls);
        out.add_text(
            crate::pxelinux::file_name(node),
            format!(
                "{head}{}",
                crate::pxelinux::install(cluster, node, &boot, &urls)
            ),
        );
        for asset in std::iter::once(&boot.kernel).chain(&boot.initrds) {
            if let (false, Some(top)) = (
                asset.is_url(),
                asset.0.trim_start_matches('/').split('/').next(),
            ) {
                tops.insert(top.to_string());
            }
        }
    }

    // pxelinux.0 reads the kernel and initrd over TFTP, by path in the mirror.
    let ours: Vec<&str> = BOOT_BINARIES
        .iter()
        .map(|b| b.name)
        .chain(["pxelinux.cfg", "arm64"])
        .collect();
    match &cluster.os.assets {
        AssetSource::Mirror(mirror) => {
            for top in tops
                .iter()
                .filter(|t| !t.is_empty() && *t != ".." && !ours.contains(&t.as_str()))
            {
                out.files.push(ExportFile {
                    path: PathBuf::from(top),
                    contents: Contents::Symlink(mirror.join(top)),
                });
            }
            if !tops.is_empty() {
                out.notes.push(format!(
                    "pxelinux loads the OS images over TFTP: {} link{} into the asset mirror {} (a TFTP server that chroots, like tftpd-hpa --secure, needs a copy or a bind mount instead)",
                    tops.iter().cloned().collect::<Vec<_>>().join(", "),
                    if tops.len() == 1 { "" } else { "s" },
                    mirror.display()
                ));
            }
        }
        AssetSource::Remote(url) => {
            if !tops.is_empty() {
                out.notes.push(format!(
                    "pxelinux loads the OS images over TFTP, but os.assets is {url}: copy {} from there into the TFTP root for pxelinux (iPXE fetches them over HTTP and needs nothing here)",
                    tops.iter().map(|t| format!("{t}/")).collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    if cluster.os.arch == slipway_cluster::Arch::Arm64 {
        out.notes.push(format!(
            "ARM64 UEFI machines load {}: Debian's ipxe package has no arm64 build; build iPXE's bin-arm64-efi/snponly.efi and put it there",
            super::ARM64_IPXE
        ));
    }
    out.notes.push(
        "each machine's pxelinux config installs it on every PXE boot: after the install, boot from disk first (slipway's own servers switch it to local boot)"
            .into(),
    );
    Ok(out)
}
