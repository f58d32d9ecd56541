//! The mirror plan: which files, from where, to where, verified how. No I/O.

use std::path::PathBuf;

use slipway_cluster::{AssetSource, Cluster, Distro};
use slipway_render::boot::image_prefix;
use slipway_render::provision::sysext_name;

/// Flatcar's image-signing public key (armored), as embedded in Flatcar's own
/// `flatcar-install` (flatcar/init `bin/flatcar-install`, `GPG_KEY`): primary key
/// rsa4096/0593B34A "Flatcar Buildbot (Official Builds) <buildbot@flatcar-linux.org>",
/// with the signing subkeys it rotates yearly.
pub const FLATCAR_KEY: &str = include_str!("../keys/flatcar-image-signing-key.asc");

/// The fingerprint of [`FLATCAR_KEY`]'s primary key.
pub const FLATCAR_FINGERPRINT: &str = "F88CFEDEFF29A5B4D9523864E25D9AED0593B34A";

/// Where the Kubernetes sysext image and its `SHA256SUMS` come from unless
/// `kubernetes.sysext_url` says otherwise (Flatcar's sysext-bakery releases).
pub const FLATCAR_SYSEXT_URL: &str =
    "https://github.com/flatcar/sysext-bakery/releases/download/latest";

/// Which part of the mirror a file belongs to (`slipway mirror --only`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Part {
    /// The OS images.
    Os,
    /// The Kubernetes sysext image.
    Kubernetes,
    /// iPXE's boot programs.
    Boot,
}

/// How a downloaded file is verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// A detached OpenPGP signature at `url`, kept next to the file at `dest`.
    Signature {
        /// Its upstream URL.
        url: String,
        /// Where it lands, relative to the mirror directory.
        dest: PathBuf,
    },
    /// A SHA-256 pinned in slipway or in the cluster file (lower-case hex).
    Sha256(String),
    /// A SHA-256 listed under `name` in the `SHA256SUMS` file at `url`.
    Sha256Sums {
        /// The `SHA256SUMS` URL.
        url: String,
        /// The file's name in it.
        name: String,
    },
}

/// One file of the mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// OS or Kubernetes.
    pub part: Part,
    /// Its upstream URL.
    pub url: String,
    /// Where it lands, relative to the mirror directory (what nodes ask for).
    pub dest: PathBuf,
    /// How it is verified.
    pub check: Check,
    /// Whether a machine cannot install without it (serve refuses to start when it
    /// is missing) rather than only losing a feature (a warning).
    pub required: bool,
    /// Files taken out of it (a package) once it verified; empty for a plain file.
    pub unpack: Vec<Member>,
}

/// A file taken out of a downloaded Debian package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its path in the package's data archive (`usr/lib/ipxe/undionly.kpxe`).
    pub path: String,
    /// Where it lands, relative to the mirror directory.
    pub dest: PathBuf,
}

/// The keys the OS signatures must come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Flatcar's key kept in slipway ([`FLATCAR_KEY`], [`FLATCAR_FINGERPRINT`]).
    Flatcar,
    /// `os.mirror.trusted_keys`: (armored key file, fingerprint) pairs.
    Configured(Vec<(PathBuf, String)>),
    /// No key: the OS part cannot be verified (CoreOS without `os.mirror.trusted_keys`).
    Missing,
}

/// Everything `slipway mirror` does for one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The mirror directory (`os.assets`), or `None` when the assets are a remote URL
    /// (nothing for slipway to hold).
    pub dir: Option<PathBuf>,
    /// The OS upstream directory holding `<version>/<file>`.
    pub os_base: String,
    /// The version as the cluster names it (`current` or e.g. `4081.2.0`): the
    /// directory the OS files land in, since that is the path nodes ask for.
    pub version: String,
    /// The upstream version the files come from (`current` resolved, when known).
    pub upstream_version: String,
    /// The keys OS signatures must verify with.
    pub trust: Trust,
    /// The files, OS first.
    pub items: Vec<Item>,
}

impl Plan {
    /// The items of `part` only (all with `None`).
    pub fn only(&self, part: Option<Part>) -> Vec<&Item> {
        self.items
            .iter()
            .filter(|i| part.is_none_or(|p| i.part == p))
            .collect()
    }
}

/// Debian bookworm's `ipxe` package (1.0.0+git-20190125.36a4c85-5.1), the iPXE build
/// Debian ships and slipway's CI boots: its URL in Debian's pool and the SHA-256 its
/// signed `Packages` index lists (`apt-cache show ipxe`). `os.mirror.ipxe` replaces it.
pub const DEBIAN_IPXE: (&str, &str) = (
    "https://deb.debian.org/debian/pool/main/i/ipxe/ipxe_1.0.0+git-20190125.36a4c85-5.1_all.deb",
    "49dc854857dcfb354292bdc79ce7419e0d72988666723395b2e102d147c3730d",
);

/// The directory of the mirror the iPXE boot programs land in (`slipway serve` takes
/// them from there when they are present).
pub const BOOT_DIR: &str = "ipxe";

/// The boot programs taken from the iPXE package: BIOS PXE (`undionly.kpxe`, chained
/// from the NIC's own PXE stack) and x86-64 UEFI (`ipxe.efi` with its own drivers,
/// `snponly.efi` through the firmware's network stack). Debian builds iPXE for x86
/// only: arm64 machines need an `ipxe.efi` of their own in the boot directory.
pub const IPXE_PROGRAMS: [&str; 3] = ["undionly.kpxe", "ipxe.efi", "snponly.efi"];

/// The OS files slipway serves for a Flatcar or CoreOS cluster, by name: PXE kernel,
/// PXE initramfs, the disk image `*-install` writes, and `version.txt`.
pub fn os_files(distro: Distro) -> Vec<String> {
    match distro {
        Distro::Flatcar | Distro::Coreos => {
            let p = image_prefix(distro);
            vec![
                format!("{p}_pxe.vmlinuz"),
                format!("{p}_pxe_image.cpio.gz"),
                format!("{p}_image.bin.bz2"),
                "version.txt".into(),
            ]
        }
        Distro::Generic => Vec::new(),
    }
}

/// The in-place update payload `update_engine` downloads (served to nodes by the
/// update endpoint, not at install): Flatcar's and CoreOS's `*_update.gz`.
pub fn update_payload(distro: Distro) -> Option<String> {
    match distro {
        Distro::Flatcar | Distro::Coreos => Some(format!("{}_update.gz", image_prefix(distro))),
        Distro::Generic => None,
    }
}

/// The vendor's upstream directory for `cluster` (`<base>/<version>/<file>`).
fn default_os_base(cluster: &Cluster) -> String {
    let arch = match cluster.os.arch {
        slipway_cluster::Arch::Amd64 => "amd64",
        slipway_cluster::Arch::Arm64 => "arm64",
    };
    let domain = match cluster.os.distro {
        Distro::Coreos => "release.core-os.net",
        _ => "release.flatcar-linux.net",
    };
    format!("https://{}.{domain}/{arch}-usr", cluster.os.channel)
}

/// The plan for `cluster`. `current` is the resolved version when `os.version` is
/// `current` and it is known (else files come from upstream's `current/`).
pub fn plan(cluster: &Cluster, current: Option<&str>) -> Plan {
    let os = &cluster.os;
    let dir = match &os.assets {
        AssetSource::Mirror(d) => Some(d.clone()),
        AssetSource::Remote(_) => None,
    };
    let os_base = os
        .mirror
        .base_url
        .clone()
        .unwrap_or_else(|| default_os_base(cluster));
    let upstream_version = match (os.version.as_str(), current) {
        ("current", Some(v)) => v.to_string(),
        (v, _) => v.to_string(),
    };
    let trust = if !os.mirror.trusted_keys.is_empty() {
        Trust::Configured(
            os.mirror
                .trusted_keys
                .iter()
                .map(|k| (k.file.clone(), k.fingerprint.clone()))
                .collect(),
        )
    } else if os.distro == Distro::Flatcar {
        Trust::Flatcar
    } else {
        Trust::Missing
    };
    let mut items = Vec::new();
    let required = os_files(os.distro);
    let update = update_payload(os.distro);
    for file in required.iter().chain(&update) {
        let url = format!("{os_base}/{upstream_version}/{file}");
        let dest = PathBuf::from(&os.version).join(file);
        items.push(Item {
            part: Part::Os,
            check: Check::Signature {
                url: format!("{url}.sig"),
                dest: PathBuf::from(&os.version).join(format!("{file}.sig")),
            },
            url,
            dest,
            required: required.contains(file),
            unpack: Vec::new(),
        });
    }
    if os.distro == Distro::Flatcar {
        let name = sysext_name(cluster);
        let base = cluster
            .kubernetes
            .sysext_url
            .clone()
            .unwrap_or_else(|| FLATCAR_SYSEXT_URL.to_string());
        items.push(Item {
            part: Part::Kubernetes,
            url: format!("{base}/{name}"),
            dest: PathBuf::from("extensions").join(&name),
            check: Check::Sha256Sums {
                url: format!("{base}/SHA256SUMS"),
                name,
            },
            required: false,
            unpack: Vec::new(),
        });
    }
    let (url, sha256) = match &os.mirror.ipxe {
        Some(p) => (p.url.clone(), p.sha256.clone()),
        None => (DEBIAN_IPXE.0.to_string(), DEBIAN_IPXE.1.to_string()),
    };
    let package = url.rsplit('/').next().unwrap_or("ipxe.deb").to_string();
    items.push(Item {
        part: Part::Boot,
        url,
        dest: PathBuf::from(BOOT_DIR).join(package),
        check: Check::Sha256(sha256),
        required: false,
        unpack: IPXE_PROGRAMS
            .iter()
            .map(|p| Member {
                path: format!("usr/lib/ipxe/{p}"),
                dest: PathBuf::from(BOOT_DIR).join(p),
            })
            .collect(),
    });
    Plan {
        dir,
        os_base,
        version: os.version.clone(),
        upstream_version,
        trust,
        items,
    }
}

/// The files a node will ask slipway for from the local mirror (relative paths), or
/// nothing when the assets are a remote URL or the OS is generic (its boot files are
/// the user's).
pub fn expected_files(cluster: &Cluster) -> Vec<PathBuf> {
    let p = plan(cluster, None);
    if p.dir.is_none() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for item in &p.items {
        if item.unpack.is_empty() {
            out.push(item.dest.clone());
        }
        out.extend(item.unpack.iter().map(|m| m.dest.clone()));
        if let Check::Signature { dest, .. } = &item.check {
            out.push(dest.clone());
        }
    }
    out
}

/// The version in a `version.txt` (`FLATCAR_VERSION=` or `COREOS_VERSION=`).
pub fn version_of(version_txt: &str) -> Option<String> {
    version_txt.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        let v = v.trim().trim_matches('"');
        ((k == "FLATCAR_VERSION" || k == "COREOS_VERSION") && !v.is_empty()).then(|| v.into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_txt_is_read() {
        let t = "FLATCAR_BUILD=4081\nFLATCAR_VERSION=4081.2.0\nFLATCAR_VERSION_ID=4081.2.0\n";
        assert_eq!(version_of(t).as_deref(), Some("4081.2.0"));
        assert_eq!(version_of("X=1\n"), None);
    }

    #[test]
    fn the_embedded_key_has_the_documented_fingerprint() {
        let ring = crate::verify::Keyring::from_armored(FLATCAR_KEY).expect("parses");
        assert_eq!(ring.fingerprints(), vec![FLATCAR_FINGERPRINT.to_string()]);
    }
}
