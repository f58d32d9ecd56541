//! Where everything lives on slipway's HTTP service: one place for every URL a machine
//! fetches, so scripts, configs, exports and the server agree.
//!
//! | path | what |
//! |---|---|
//! | `/boot.ipxe` | the chain script iPXE loads first (DHCP hands out this URL) |
//! | `/ipxe/<mac-dashed>.ipxe` | a machine's own iPXE script (install, or boot from disk) |
//! | `/config/<mac-dashed>/<key>/install` | the install config the PXE-booted live system applies |
//! | `/config/<mac-dashed>/<key>/install.sh` | the install script it runs |
//! | `/config/<mac-dashed>/<key>/installed` | the config the installed system applies on first boot |
//! | `/report/<mac-dashed>/<token>/<event>` | POST: installing, installed, failed, ready |
//! | `/cloud-configs/<mac>.yml`, `/cloud-configs/install.sh` | the seeds' layout |
//! | `/boot/<file>` | the boot programs (iPXE for UEFI HTTP boot clients) |
//! | `/cni/manifest.yaml` | the pod network manifest the init node applies (no secrets) |
//! | `/api/v1/...` | the JSON API |
//!
//! `<key>` is the one-time install key slipway issues with the machine's boot script
//! while its install is armed ([`Urls::with_install_key`]); without one (previews,
//! exports for other servers) the `/config/<mac-dashed>/<what>` form is written.
//! | anything else | the asset mirror directory (`/<version>/flatcar_production_*`) |

use slipway_cluster::{AssetSource, Cluster, MacAddr};

/// The path of the pod network manifest on slipway's HTTP service.
pub const CNI_MANIFEST_PATH: &str = "/cni/manifest.yaml";

/// Builds the URLs of one cluster's HTTP service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Urls {
    base: String,
    assets: String,
    install_key: Option<String>,
}

impl Urls {
    /// The URLs for `cluster` (slipway at `network.server`:`http_port`).
    pub fn new(cluster: &Cluster) -> Self {
        let base = format!(
            "http://{}:{}",
            cluster.network.server, cluster.network.http_port
        );
        let assets = match &cluster.os.assets {
            AssetSource::Mirror(_) => base.clone(),
            AssetSource::Remote(url) => url.trim_end_matches('/').to_string(),
        };
        Urls {
            base,
            assets,
            install_key: None,
        }
    }

    /// The same URLs, with `key` (the machine's one-time install key) in the paths of
    /// its configurations.
    pub fn with_install_key(mut self, key: Option<&str>) -> Self {
        self.install_key = key.map(str::to_string);
        self
    }

    /// `/config/<mac>/[<key>/]<what>`.
    fn config(&self, mac: MacAddr, what: &str) -> String {
        match &self.install_key {
            Some(key) => format!("{}/config/{}/{key}/{what}", self.base, mac.dashed()),
            None => format!("{}/config/{}/{what}", self.base, mac.dashed()),
        }
    }

    /// `http://server:port`, no trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Base URL of the OS images (slipway itself for a local mirror).
    pub fn assets(&self) -> &str {
        &self.assets
    }

    /// The cluster's pod network manifest (rendered or the user's file), which the
    /// init node applies.
    pub fn cni_manifest(&self) -> String {
        format!("{}{CNI_MANIFEST_PATH}", self.base)
    }

    /// The chain script every iPXE loads first.
    pub fn chain(&self) -> String {
        format!("{}/boot.ipxe", self.base)
    }

    /// A boot program served over HTTP (`/boot/<file>`: UEFI HTTP boot clients load
    /// iPXE from here).
    pub fn boot_file(&self, file: &str) -> String {
        format!("{}/boot/{file}", self.base)
    }

    /// A machine's own iPXE script.
    pub fn ipxe(&self, mac: MacAddr) -> String {
        format!("{}/ipxe/{}.ipxe", self.base, mac.dashed())
    }

    /// The install config (Ignition / cloud-config / template) of the live system.
    pub fn install_config(&self, mac: MacAddr) -> String {
        self.config(mac, "install")
    }

    /// The install script.
    pub fn install_script(&self, mac: MacAddr) -> String {
        self.config(mac, "install.sh")
    }

    /// The config the installed system applies on first boot.
    pub fn installed_config(&self, mac: MacAddr) -> String {
        self.config(mac, "installed")
    }

    /// Where `mac` reports its progress (`POST <this>/<event>`), with `token`.
    pub fn report(&self, mac: MacAddr, token: &str) -> String {
        format!("{}/report/{}/{token}", self.base, mac.dashed())
    }

    /// The seeds' per-MAC cloud-config URL (`/cloud-configs/<mac>.yml`).
    pub fn seed_cloud_config(&self, mac: MacAddr) -> String {
        format!("{}/cloud-configs/{mac}.yml", self.base)
    }

    /// The seeds' shared install script URL.
    pub fn seed_install_script(&self) -> String {
        format!("{}/cloud-configs/install.sh", self.base)
    }
}

/// Boot program file names on TFTP, as Debian's `ipxe` and `pxelinux` packages ship them.
pub mod bootfiles {
    /// iPXE for BIOS PXE ROMs (uses the ROM's UNDI driver).
    pub const BIOS_IPXE: &str = "undionly.kpxe";
    /// iPXE for x86-64 UEFI, using the firmware's network driver (SNP).
    pub const UEFI_IPXE: &str = "snponly.efi";
    /// iPXE for x86-64 UEFI with its own drivers.
    pub const UEFI_IPXE_FULL: &str = "ipxe.efi";
    /// syslinux's PXE loader, for sites that keep pxelinux.
    pub const PXELINUX: &str = "pxelinux.0";
    /// The module pxelinux.0 needs beside it.
    pub const LDLINUX: &str = "ldlinux.c32";
}
