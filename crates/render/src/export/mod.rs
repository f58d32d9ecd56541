//! Configs for sites that keep their own DHCP, TFTP and web servers (`slipway export`):
//! the same cluster file, written as the configuration of the programs the seeds ran
//! by hand.
//!
//! | target | files | for |
//! |---|---|---|
//! | [`Target::Dnsmasq`] | `dnsmasq.conf` | DNS for the cluster domain, TFTP, and DHCP as `network.dhcp` says (authoritative, proxy, or none) |
//! | [`Target::IscDhcpd`] | `dhcpd.conf` | ISC dhcpd 4.4: one host per node, boot file by firmware, the chain URL for iPXE |
//! | [`Target::Kea`] | `kea-dhcp4.conf` | Kea 2.2 DHCPv4 (JSON): reservations, client classes, pool |
//! | [`Target::Nginx`] | `server.conf`, `nginx.conf`, `www/`, `run/` | the chain script, each machine's iPXE script and the asset mirror over HTTP |
//! | [`Target::TftpRoot`] | boot binaries, `pxelinux.cfg/` | the TFTP root: iPXE and pxelinux loaders, pxelinux configs |
//!
//! Everything is generated from [`Urls`](crate::Urls) and the boot-script renderers, so
//! the exported servers hand out exactly what slipway's own servers would.
//!
//! [`export`] is a pure function except for one thing: for the TFTP root it checks that
//! the boot binaries it will copy exist (under [`Options::system_root`]), so a missing
//! package is reported before anything is written. Writing the files is the caller's
//! job (`slipway export` does it).
//!
//! Secrets are never exported: the per-machine install configs (with keys and tokens)
//! are served only by slipway itself, which checks the requester's address.

mod dnsmasq;
mod isc_dhcpd;
mod kea;
mod nginx;
mod tftp_root;

use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use slipway_cluster::Cluster;

pub use tftp_root::{BOOT_BINARIES, BootBinary};

/// What to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// dnsmasq: DNS, TFTP and DHCP (or ProxyDHCP) in one config file.
    Dnsmasq,
    /// ISC dhcpd 4.4 (`dhcpd.conf`).
    IscDhcpd,
    /// Kea DHCPv4 2.2 (`kea-dhcp4.conf`).
    Kea,
    /// nginx: the HTTP side (chain script, per-machine scripts, asset mirror).
    Nginx,
    /// The contents of a TFTP root directory.
    TftpRoot,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 5] = [
        Target::Dnsmasq,
        Target::IscDhcpd,
        Target::Kea,
        Target::Nginx,
        Target::TftpRoot,
    ];

    /// The name used on the command line (`--for NAME`).
    pub fn name(self) -> &'static str {
        match self {
            Target::Dnsmasq => "dnsmasq",
            Target::IscDhcpd => "isc-dhcpd",
            Target::Kea => "kea",
            Target::Nginx => "nginx",
            Target::TftpRoot => "tftp-root",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where the exported TFTP root lives unless said otherwise (Debian's `tftpd-hpa`
/// default, and what the dnsmasq export's `tftp-root` names).
pub const DEFAULT_TFTP_ROOT: &str = "/srv/tftp";

/// Settings of an export that do not come from the cluster file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The cluster file's name, for the "generated from" comment at the top of each file.
    pub source: String,
    /// The absolute directory the files will be written into (the nginx configs name
    /// their own files by absolute path).
    pub out_dir: PathBuf,
    /// The TFTP root the dnsmasq export serves (`tftp-root=`).
    pub tftp_root: PathBuf,
    /// The file-system root the boot binaries are copied from (`/` on a real system:
    /// `/usr/lib/ipxe/undionly.kpxe`, ...); tests point it elsewhere.
    pub system_root: PathBuf,
}

impl Options {
    /// Options for writing into `out_dir`, with the cluster read from `source`: TFTP
    /// root [`DEFAULT_TFTP_ROOT`], boot binaries from `/`.
    pub fn new(source: impl Into<String>, out_dir: impl Into<PathBuf>) -> Self {
        Options {
            source: source.into(),
            out_dir: out_dir.into(),
            tftp_root: PathBuf::from(DEFAULT_TFTP_ROOT),
            system_root: PathBuf::from("/"),
        }
    }
}

/// What goes at one path of the export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contents {
    /// A generated text file.
    Text(String),
    /// A copy of a file of the system (a boot binary), by absolute path.
    Copy(PathBuf),
    /// A symbolic link to this absolute path (the asset mirror inside the TFTP root).
    Symlink(PathBuf),
    /// An empty directory (nginx's run-time directory).
    Dir,
}

/// One file of an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportFile {
    /// Relative path inside the export directory (`/`-separated, no `..`).
    pub path: PathBuf,
    /// What to put there.
    pub contents: Contents,
}

/// The result of an export: the files, and notes for the operator.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Export {
    /// Every file, directories before their contents.
    pub files: Vec<ExportFile>,
    /// What the operator must know or do (printed by `slipway export`).
    pub notes: Vec<String>,
}

impl Export {
    /// The text of the generated file at `path`, if there is one.
    pub fn text(&self, path: impl AsRef<Path>) -> Option<&str> {
        let path = path.as_ref();
        self.files.iter().find_map(|f| match &f.contents {
            Contents::Text(t) if f.path == path => Some(t.as_str()),
            _ => None,
        })
    }

    fn add_text(&mut self, path: impl Into<PathBuf>, text: String) {
        self.files.push(ExportFile {
            path: path.into(),
            contents: Contents::Text(text),
        });
    }
}

/// A boot binary that is not on this system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingFile {
    /// Where it was looked for.
    pub path: PathBuf,
    /// The Debian package that provides it.
    pub package: &'static str,
}

/// Why an export could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// Boot binaries the TFTP root needs are not installed.
    #[error("{}", missing_boot_files(.0))]
    MissingBootFiles(Vec<MissingFile>),
    /// A path cannot be written in the target's config syntax.
    #[error("cannot use {what} `{}`: {reason}", .path.display())]
    BadPath {
        /// What the path is for.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
}

/// The message of [`ExportError::MissingBootFiles`]: each file with its package, and
/// the `apt-get` command that installs them.
fn missing_boot_files(missing: &[MissingFile]) -> String {
    let list: Vec<String> = missing
        .iter()
        .map(|m| format!("{} (package {})", m.path.display(), m.package))
        .collect();
    let mut packages: Vec<&str> = missing.iter().map(|m| m.package).collect();
    packages.dedup();
    format!(
        "boot binaries missing: {}; install them with `apt-get install {}`",
        list.join(", "),
        packages.join(" ")
    )
}

/// The files that configure `target` for `cluster`.
///
/// ```
/// use slipway_render::export::{export, Options, Target};
/// # let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/lab.yaml")).unwrap();
/// # let cluster = slipway_cluster::load_str("lab.yaml", &text, std::path::Path::new("/"), &slipway_cluster::NoHost).cluster.unwrap();
/// let out = export(&cluster, Target::Dnsmasq, &Options::new("lab.yaml", "/etc/slipway")).unwrap();
/// let conf = out.text("dnsmasq.conf").unwrap();
/// assert!(conf.contains("dhcp-host=52:54:00:99:00:01,10.99.0.11,cp1\n"));
/// assert!(conf.contains("dhcp-boot=tag:ipxe,http://10.99.0.1:8080/boot.ipxe"));
/// ```
pub fn export(cluster: &Cluster, target: Target, opts: &Options) -> Result<Export, ExportError> {
    match target {
        Target::Dnsmasq => dnsmasq::export(cluster, opts),
        Target::IscDhcpd => Ok(isc_dhcpd::export(cluster, opts)),
        Target::Kea => Ok(kea::export(cluster, opts)),
        Target::Nginx => nginx::export(cluster, opts),
        Target::TftpRoot => tftp_root::export(cluster, opts),
    }
}

/// Boot program of ARM64 UEFI machines (client architecture 11), relative to the TFTP
/// root. Debian's `ipxe` package has none: build iPXE's `bin-arm64-efi/snponly.efi`.
pub const ARM64_IPXE: &str = "arm64/snponly.efi";

/// How a client architecture (DHCP option 93, RFC 4578) boots.
pub(crate) struct ClientArch {
    /// dnsmasq tag name.
    pub tag: &'static str,
    /// Option 93 values.
    pub codes: &'static [u16],
    /// dnsmasq `pxe-service` client system types, one per code.
    pub csa: &'static [&'static str],
    /// Boot file on TFTP.
    pub file: &'static str,
    /// What these machines are, for the comment above their entries in the config.
    pub what: &'static str,
}

/// The firmware kinds slipway boots, each to an iPXE build that then loads the chain
/// script over HTTP.
pub(crate) const CLIENT_ARCHES: [ClientArch; 3] = [
    ClientArch {
        tag: "bios",
        codes: &[0],
        csa: &["x86PC"],
        file: crate::urls::bootfiles::BIOS_IPXE,
        what: "x86 BIOS PXE ROMs: iPXE over the ROM's UNDI driver",
    },
    ClientArch {
        tag: "efi64",
        codes: &[7, 9],
        csa: &["BC_EFI", "X86-64_EFI"],
        file: crate::urls::bootfiles::UEFI_IPXE,
        what: "x86-64 UEFI (7 and 9): iPXE over the firmware's network driver",
    },
    ClientArch {
        tag: "efiarm64",
        codes: &[11],
        csa: &["ARM64_EFI"],
        file: ARM64_IPXE,
        what: "ARM64 UEFI: needs an arm64 iPXE build (Debian's ipxe package has none)",
    },
];

/// The "generated, do not edit" header, as comment lines starting with `prefix`.
pub(crate) fn header(prefix: &str, cluster: &Cluster, opts: &Options) -> String {
    let source: String = opts
        .source
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    format!(
        "{prefix} Generated by slipway from cluster `{}` ({source}).\n\
         {prefix} Edits will be lost: change the cluster file and run `slipway export` again.\n",
        cluster.cluster.name
    )
}

/// `text` with the header inserted after its first line (for `#!ipxe` scripts).
pub(crate) fn after_first_line(text: &str, header: &str) -> String {
    match text.split_once('\n') {
        Some((first, rest)) => format!("{first}\n{header}{rest}"),
        None => format!("{text}\n{header}"),
    }
}

/// A path as UTF-8 text, refused when it holds control characters or one of `forbidden`.
pub(crate) fn path_text(
    path: &Path,
    what: &'static str,
    forbidden: &[char],
) -> Result<String, ExportError> {
    let bad = |reason: String| ExportError::BadPath {
        what,
        path: path.to_path_buf(),
        reason,
    };
    let text = path.to_str().ok_or_else(|| bad("it is not UTF-8".into()))?;
    if let Some(c) = text
        .chars()
        .find(|c| c.is_control() || forbidden.contains(c))
    {
        return Err(bad(format!(
            "it contains {c:?}, which the config syntax cannot hold"
        )));
    }
    Ok(text.to_string())
}

/// The NTP servers that are addresses (DHCP option 42 carries addresses only), and
/// the names that had to be left out.
pub(crate) fn ntp_split(cluster: &Cluster) -> (Vec<Ipv4Addr>, Vec<&str>) {
    let mut addrs = Vec::new();
    let mut names = Vec::new();
    for s in &cluster.network.ntp {
        match s.parse::<Ipv4Addr>() {
            Ok(a) => addrs.push(a),
            Err(_) => names.push(s.as_str()),
        }
    }
    (addrs, names)
}

/// The subnet mask of the provisioning network.
pub(crate) fn subnet_mask(cluster: &Cluster) -> Ipv4Addr {
    cluster.network.subnet.netmask()
}

/// Comma-joined display of a list.
pub(crate) fn join<T: fmt::Display>(items: &[T], sep: &str) -> String {
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(sep)
}

/// A text being built line by line.
#[derive(Default)]
pub(crate) struct Lines(String);

impl Lines {
    /// Starts with `text` (a header).
    pub fn new(text: String) -> Self {
        Lines(text)
    }

    /// Adds one line.
    pub fn line(&mut self, line: impl AsRef<str>) {
        self.0.push_str(line.as_ref());
        self.0.push('\n');
    }

    /// Adds an empty line.
    pub fn blank(&mut self) {
        self.0.push('\n');
    }

    /// The text written so far, one line per call.
    pub fn finish(self) -> String {
        self.0
    }
}
