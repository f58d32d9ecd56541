//! The cluster file as written: every field optional, every value with its place.
//!
//! [`decode`] reads the YAML tree into a [`Spec`], checking each value on its own
//! (a MAC is a MAC, a CIDR a CIDR, no unknown keys). Checks that relate fields, and
//! every default, are [`crate::complete`]'s job.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ipnet::Ipv4Net;

use crate::decode::{
    Fields, Spanned, boolean, json, list, list_of, parse, parse_as, pick, string, string_map,
};
use crate::diagnostic::{Diagnostic, Diagnostics, Span};
use crate::model::{
    Arch, BmcDriver, ConfigFormat, DhcpMode, Distro, NetworkPlugin, Role, Taint, UnknownPolicy,
};
use crate::types::{Ipv4Range, LeaseTime, MacAddr};
use crate::yaml::{Key, Node};

type S<T> = Option<Spanned<T>>;

/// The whole file as written.
#[derive(Debug, Default)]
pub struct Spec {
    /// `cluster:`
    pub cluster: ClusterSpec,
    /// `network:`
    pub network: NetworkSpec,
    /// `os:`
    pub os: OsSpec,
    /// `kubernetes:`
    pub kubernetes: KubernetesSpec,
    /// `access:`
    pub access: AccessSpec,
    /// `profiles:`
    pub profiles: Vec<ProfileSpec>,
    /// `upgrade:`
    pub upgrade: crate::upgrade::UpgradeSpec,
    /// `nodes:`
    pub nodes: Vec<NodeSpec>,
    /// Where the `nodes:` key is, if present.
    pub nodes_span: Option<Span>,
}

/// `cluster:`
#[derive(Debug, Default)]
pub struct ClusterSpec {
    /// Short cluster name (a DNS label).
    pub name: S<String>,
    /// DNS domain.
    pub domain: S<String>,
    /// Keys present in the section, valid or not.
    pub given: Vec<String>,
    /// Where the section is.
    pub span: Span,
}

/// `network:`
#[derive(Debug, Default)]
pub struct NetworkSpec {
    /// Interface slipway serves on.
    pub interface: S<String>,
    /// slipway's address.
    pub server: S<Ipv4Addr>,
    /// The provisioning subnet (CIDR).
    pub subnet: S<Ipv4Net>,
    /// Default router handed out by DHCP.
    pub gateway: S<Ipv4Addr>,
    /// DNS servers handed out.
    pub dns: Option<Vec<Spanned<Ipv4Addr>>>,
    /// Upstream resolvers.
    pub upstream_dns: Vec<Spanned<SocketAddr>>,
    /// Networks beyond the subnet whose DNS queries slipway answers.
    pub dns_clients: Vec<Spanned<ipnet::IpNet>>,
    /// DNS queries answered per second per client address (0: no limit).
    pub dns_rate_limit: S<u32>,
    /// NTP servers.
    pub ntp: Vec<Spanned<String>>,
    /// HTTP port.
    pub http_port: S<u16>,
    /// DHCP mode.
    pub dhcp_mode: S<DhcpMode>,
    /// Dynamic pool.
    pub pool: S<Ipv4Range>,
    /// Lease time.
    pub lease_time: S<LeaseTime>,
    /// Unknown-MAC policy.
    pub unknown_machines: S<UnknownPolicy>,
    /// DHCP relay agents (giaddr) whose relayed requests are answered.
    pub relays: Vec<Spanned<Ipv4Addr>>,
    /// First pool offers per second at most (0: no limit).
    pub new_clients_per_second: S<u32>,
    /// Keys present in the section, valid or not.
    pub given: Vec<String>,
    /// Where the section is.
    pub span: Span,
}

/// `os:`
#[derive(Debug, Default)]
pub struct OsSpec {
    /// OS distribution: Flatcar, CoreOS or generic.
    pub distro: S<Distro>,
    /// Release channel (stable, beta, alpha, lts).
    pub channel: S<String>,
    /// Release version (e.g. 4081.2.0), or `current`.
    pub version: S<String>,
    /// CPU architecture of the machines.
    pub arch: S<Arch>,
    /// Mirror directory or base URL.
    pub assets: S<String>,
    /// Config format.
    pub config_format: S<ConfigFormat>,
    /// Install disk.
    pub install_disk: S<String>,
    /// Kernel arguments.
    pub kernel_args: Vec<String>,
    /// How long an install may go without progress.
    pub install_timeout: S<LeaseTime>,
    /// Generic boot files.
    pub generic: Option<GenericSpec>,
    /// Where `generic:` is, when given.
    pub generic_span: Option<Span>,
    /// `os.mirror`, when given.
    pub mirror: Option<MirrorSpec>,
    /// Keys present in the section, valid or not.
    pub given: Vec<String>,
    /// Where the section is.
    pub span: Span,
}

/// `os.mirror:`
#[derive(Debug, Default)]
pub struct MirrorSpec {
    /// The upstream directory holding `<version>/<file>`.
    pub base_url: S<String>,
    /// Trusted keys.
    pub trusted_keys: Vec<TrustedKeySpec>,
    /// `os.mirror.ipxe`, when given.
    pub ipxe: Option<IpxePackageSpec>,
}

/// `os.mirror.ipxe:` the package the iPXE boot programs come from.
#[derive(Debug, Default)]
pub struct IpxePackageSpec {
    /// The package's URL.
    pub url: S<String>,
    /// Its SHA-256.
    pub sha256: S<String>,
    /// Where the section is.
    pub span: Span,
}

/// One entry of `os.mirror.trusted_keys`.
#[derive(Debug, Default)]
pub struct TrustedKeySpec {
    /// The armored key file.
    pub file: S<String>,
    /// The primary key's fingerprint.
    pub fingerprint: S<String>,
    /// Where the entry is.
    pub span: Span,
}

/// `os.generic:`
#[derive(Debug, Default)]
pub struct GenericSpec {
    /// Kernel path (relative to the assets) or URL.
    pub kernel: S<String>,
    /// Initrd paths or URLs.
    pub initrds: Vec<String>,
    /// Template path.
    pub template: S<String>,
}

/// `kubernetes:`
#[derive(Debug, Default)]
pub struct KubernetesSpec {
    /// Kubernetes version (e.g. v1.31.2).
    pub version: S<String>,
    /// `host[:port]`.
    pub control_plane_endpoint: S<(String, Option<u16>)>,
    /// Name in the cluster domain.
    pub api_name: S<String>,
    /// Extra certificate SANs.
    pub extra_sans: Vec<Spanned<String>>,
    /// Pod subnet.
    pub pod_subnet: S<Ipv4Net>,
    /// Service subnet.
    pub service_subnet: S<Ipv4Net>,
    /// Cluster DNS address.
    pub cluster_dns: S<Ipv4Addr>,
    /// CNI plugin installed on the cluster.
    pub network_plugin: S<NetworkPlugin>,
    /// The CNI plugin's upstream version (its images' tag).
    pub cni_version: S<String>,
    /// The pod interfaces' MTU (calico).
    pub cni_mtu: S<u16>,
    /// The node interface the CNI carries pod traffic on.
    pub cni_interface: S<String>,
    /// The user's own CNI manifest: an http(s) URL or a file.
    pub cni_manifest: S<String>,
    /// The interface kube-vip announces the virtual IP on.
    pub vip_interface: S<String>,
    /// Image repository.
    pub image_repository: S<String>,
    /// Registry mirrors.
    pub registry_mirrors: Vec<(Key, Vec<Spanned<String>>)>,
    /// Where the sysext image and its SHA256SUMS are fetched from.
    pub sysext_url: S<String>,
    /// Whether slipway mirrors and serves the cluster's container images.
    pub serve_images: S<bool>,
    /// Further images to mirror and serve.
    pub extra_images: Vec<Spanned<String>>,
    /// Where `slipway mirror` pulls each registry's images from.
    pub image_sources: Vec<(Key, Spanned<String>)>,
    /// Keys present in the section, valid or not.
    pub given: Vec<String>,
    /// Where the section is.
    pub span: Span,
}

/// `access:`
#[derive(Debug, Default)]
pub struct AccessSpec {
    /// Console / SSH user.
    pub user: S<String>,
    /// SSH keys.
    pub ssh_authorized_keys: Vec<Spanned<String>>,
    /// Password hash.
    pub password_hash: S<String>,
}

/// One entry of `profiles:`.
#[derive(Debug, Default)]
pub struct ProfileSpec {
    /// Profile name, referenced from nodes' `profile`.
    pub name: S<String>,
    /// Selector role.
    pub role: S<Role>,
    /// Selector labels.
    pub labels: Vec<(Key, Spanned<String>)>,
    /// Selector MAC.
    pub mac: S<MacAddr>,
    /// Selector hostname.
    pub hostname: S<String>,
    /// Install disk.
    pub install_disk: S<String>,
    /// Kernel arguments.
    pub kernel_args: Option<Vec<String>>,
    /// Free-form data for templates, inherited by the profile's nodes.
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Boot programs.
    pub boot_files: BootFilesSpec,
    /// Where the entry is.
    pub span: Span,
}

/// `boot_files:` of a profile or node.
#[derive(Debug, Default)]
pub struct BootFilesSpec {
    /// Boot program for BIOS PXE (client architecture 0), instead of `undionly.kpxe`.
    pub bios: S<String>,
    /// Boot program for x86-64 UEFI PXE (client architectures 7 and 9), instead of `snponly.efi`.
    pub uefi: S<String>,
}

fn boot_files(n: &Node, d: &mut Diagnostics) -> BootFilesSpec {
    let mut out = BootFilesSpec::default();
    let Some(mut f) = Fields::new(n, "`boot_files`", d) else {
        return out;
    };
    for (key, slot) in [("bios", &mut out.bios), ("uefi", &mut out.uefi)] {
        *slot = f.get(key).and_then(|v| string(v, "a boot file", d));
        if let Some(s) = slot.as_ref() {
            let ok = !s.value.is_empty()
                && !s.value.starts_with('/')
                && !s.value.split('/').any(|c| c == ".." || c.is_empty())
                && s.value.len() <= 127
                && s.value.is_ascii();
            if !ok {
                d.error(s.span, format!("boot file `{}` must be a relative path on the TFTP server (at most 127 characters)", s.value));
            }
        }
    }
    f.finish(d);
    out
}

/// One entry of `nodes:`.
#[derive(Debug, Default)]
pub struct NodeSpec {
    /// MAC address of the boot interface.
    pub mac: S<MacAddr>,
    /// Hostname (a DNS label).
    pub hostname: S<String>,
    /// Static IPv4 address.
    pub ip: S<Ipv4Addr>,
    /// Roles (None when absent).
    pub roles: Option<Vec<Spanned<Role>>>,
    /// Whether `roles` had a bad entry (already reported).
    pub roles_invalid: bool,
    /// Install disk.
    pub install_disk: S<String>,
    /// Kernel arguments.
    pub kernel_args: Option<Vec<String>>,
    /// Kubernetes labels, key (with where it is) and value.
    pub labels: Vec<(Key, Spanned<String>)>,
    /// Kubernetes taints.
    pub taints: Vec<Taint>,
    /// Explicit profile.
    pub profile: S<String>,
    /// Boot programs.
    pub boot_files: BootFilesSpec,
    /// The node's BMC, for power and boot control.
    pub bmc: Option<BmcSpec>,
    /// Free-form data for templates, overriding the profile's.
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Where the entry is.
    pub span: Span,
}

/// `bmc:` of a node.
#[derive(Debug)]
pub struct BmcSpec {
    /// Protocol spoken to the BMC: `ipmi` or `redfish`.
    pub driver: Spanned<BmcDriver>,
    /// Host name or address of the BMC.
    pub address: Spanned<String>,
    /// Port (default 623 for IPMI, 443 for Redfish).
    pub port: S<u16>,
    /// User name to log in to the BMC.
    pub user: Spanned<String>,
    /// Password source.
    pub password: crate::model::PasswordSource,
    /// IPMI cipher suite.
    pub cipher_suite: S<u8>,
    /// Redfish: how the BMC's certificate is checked.
    pub tls: crate::model::BmcTls,
    /// Redfish: the ComputerSystem, when the BMC manages several.
    pub system: S<String>,
    /// Redfish: session authentication instead of basic.
    pub session_auth: bool,
}

/// A file with every section of the cluster file present (and empty), so that reading
/// it asks for every key the reader knows.
const EVERY_SECTION: &str = "\
cluster: {}
network: {dhcp: {}}
os: {generic: {}, mirror: {trusted_keys: [{}], ipxe: {}}}
kubernetes: {}
access: {}
upgrade: {}
profiles: [{selector: {}, boot_files: {}}]
nodes: [{bmc: {}, boot_files: {}}]
";

/// The path of the mapping a [`Fields`] describes as `what` (`nodes[].bmc`).
fn path_of(what: &str) -> String {
    match what {
        "the cluster file" => String::new(),
        "a profile" => "profiles[]".into(),
        "a profile's `selector`" => "profiles[].selector".into(),
        "a node" => "nodes[]".into(),
        "a node's `bmc`" => "nodes[].bmc".into(),
        other => other.trim_matches('`').to_string(),
    }
}

/// Every key the cluster file accepts, as dotted paths (`kubernetes.network_plugin`,
/// `nodes[].bmc.address`; `boot_files.<key>` wherever `boot_files` may be), sections
/// included, sorted: taken from the reader itself, so a key added to the reader is
/// here without anyone listing it.
pub fn accepted_keys() -> Vec<String> {
    let (_, asked) = crate::decode::record_asked(|| {
        let mut d = Diagnostics::new("every-section.yaml");
        if let Some(root) = crate::yaml::parse(EVERY_SECTION, &mut d) {
            let _ = decode(&root, &mut d);
        }
    });
    let mut keys: Vec<String> = asked
        .into_iter()
        .map(|(what, key)| match path_of(&what) {
            p if p.is_empty() => key.to_string(),
            p => format!("{p}.{key}"),
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Reads the tree into a [`Spec`], recording every problem found in single values.
/// Returns `None` when the file is empty or not a mapping at all.
pub fn decode(root: &Node, d: &mut Diagnostics) -> Option<Spec> {
    let mut spec = Spec::default();
    if root.is_null() {
        d.error(Span::FILE, "the cluster file is empty");
        return None;
    }
    let mut top = Fields::new(root, "the cluster file", d)?;
    match top.get("cluster") {
        Some(n) => spec.cluster = cluster(n, d),
        None => d.error(
            Span::new(1, 1, 1),
            "missing section `cluster:` (name and domain)",
        ),
    }
    match top.get("network") {
        Some(n) => spec.network = network(n, d),
        None => d.error(
            Span::new(1, 1, 1),
            "missing section `network:` (interface and subnet)",
        ),
    }
    if let Some(n) = top.get("os") {
        spec.os = os(n, d);
    }
    match top.get("kubernetes") {
        Some(n) => spec.kubernetes = kubernetes(n, d),
        None => d.error(
            Span::new(1, 1, 1),
            "missing section `kubernetes:` (at least `version`)",
        ),
    }
    if let Some(n) = top.get("access") {
        spec.access = access(n, d);
    }
    if let Some(n) = top.get("upgrade") {
        spec.upgrade = crate::upgrade::decode(n, d);
    }
    if let Some(n) = top.get("profiles") {
        spec.profiles = list(n, "`profiles`", d)
            .unwrap_or_default()
            .iter()
            .filter_map(|p| profile(p, d))
            .collect();
    }
    spec.nodes_span = top.key_span("nodes");
    if let Some(n) = top.get("nodes") {
        spec.nodes = list(n, "`nodes`", d)
            .unwrap_or_default()
            .iter()
            .filter_map(|p| node(p, d))
            .collect();
    }
    top.finish(d);
    Some(spec)
}

fn cluster(n: &Node, d: &mut Diagnostics) -> ClusterSpec {
    let mut out = ClusterSpec {
        span: n.span,
        ..Default::default()
    };
    let Some(mut f) = Fields::new(n, "`cluster`", d) else {
        return out;
    };
    out.given = f.present();
    out.name = f.get("name").and_then(|v| string(v, "`cluster.name`", d));
    out.domain = f
        .get("domain")
        .and_then(|v| string(v, "`cluster.domain`", d));
    f.finish(d);
    out
}

const IPV4: &str = "an IPv4 address";
const CIDR: &str = "an IPv4 subnet in CIDR form (e.g. 10.0.0.0/24)";

fn network(n: &Node, d: &mut Diagnostics) -> NetworkSpec {
    let mut out = NetworkSpec {
        span: n.span,
        ..Default::default()
    };
    let Some(mut f) = Fields::new(n, "`network`", d) else {
        return out;
    };
    out.given = f.present();
    out.interface = f
        .get("interface")
        .and_then(|v| string(v, "`network.interface`", d));
    out.server = f
        .get("server")
        .and_then(|v| parse_as(v, "`network.server`", IPV4, d));
    out.subnet = f.get("subnet").and_then(|v| cidr(v, "`network.subnet`", d));
    out.gateway = f
        .get("gateway")
        .and_then(|v| parse_as(v, "`network.gateway`", IPV4, d));
    out.dns = f.get("dns").map(|v| {
        list_of(v, "`network.dns`", d, |n, d| {
            parse_as(n, "`network.dns`", IPV4, d)
        })
    });
    out.dns_clients = f
        .get("dns_clients")
        .map(|v| {
            list_of(v, "`network.dns_clients`", d, |n, d| {
                parse_as(
                    n,
                    "`network.dns_clients`",
                    "a network (e.g. 10.50.0.0/16)",
                    d,
                )
            })
        })
        .unwrap_or_default();
    out.dns_rate_limit = f.get("dns_rate_limit").and_then(|v| {
        parse_as(
            v,
            "`network.dns_rate_limit`",
            "a number of queries per second (0: no limit)",
            d,
        )
    });
    out.upstream_dns = f
        .get("upstream_dns")
        .map(|v| list_of(v, "`network.upstream_dns`", d, upstream))
        .unwrap_or_default();
    out.ntp = f
        .get("ntp")
        .map(|v| list_of(v, "`network.ntp`", d, |n, d| string(n, "`network.ntp`", d)))
        .unwrap_or_default();
    out.http_port = f
        .get("http_port")
        .and_then(|v| port(v, "`network.http_port`", d));
    if let Some(dhcp) = f.get("dhcp")
        && let Some(mut g) = Fields::new(dhcp, "`network.dhcp`", d)
    {
        out.dhcp_mode = g.get("mode").and_then(|v| {
            pick(
                v,
                "`network.dhcp.mode`",
                &[
                    ("authoritative", DhcpMode::Authoritative),
                    ("proxy", DhcpMode::Proxy),
                    ("off", DhcpMode::Off),
                ],
                d,
            )
        });
        out.pool = g
            .get("pool")
            .and_then(|v| parse(v, "`network.dhcp.pool`", d));
        out.lease_time = g
            .get("lease_time")
            .and_then(|v| parse(v, "`network.dhcp.lease_time`", d));
        out.unknown_machines = g.get("unknown_machines").and_then(|v| {
            pick(
                v,
                "`network.dhcp.unknown_machines`",
                &[
                    ("ignore", UnknownPolicy::Ignore),
                    ("discover", UnknownPolicy::Discover),
                ],
                d,
            )
        });
        out.relays = g
            .get("relays")
            .map(|v| {
                list_of(v, "`network.dhcp.relays`", d, |n, d| {
                    parse_as(n, "`network.dhcp.relays`", IPV4, d)
                })
            })
            .unwrap_or_default();
        out.new_clients_per_second = g.get("new_clients_per_second").and_then(|v| {
            parse_as(
                v,
                "`network.dhcp.new_clients_per_second`",
                "a number of machines per second (0: no limit)",
                d,
            )
        });
        g.finish(d);
    }
    f.finish(d);
    out
}

fn cidr(n: &Node, what: &str, d: &mut Diagnostics) -> S<Ipv4Net> {
    let s = string(n, what, d)?;
    match s.value.parse::<Ipv4Net>() {
        Ok(net) if net.network() != net.addr() => {
            d.push(
                Diagnostic::error(s.span, format!("{what}: `{}` has host bits set", s.value))
                    .with_help(format!("the subnet is `{}`", net.trunc())),
            );
            None
        }
        Ok(net) => Some(Spanned::new(net, s.span)),
        Err(_) => {
            d.error(s.span, format!("{what}: `{}` is not {CIDR}", s.value));
            None
        }
    }
}

fn port(n: &Node, what: &str, d: &mut Diagnostics) -> S<u16> {
    let p = parse_as::<u16>(n, what, "a port number (1-65535)", d)?;
    if p.value == 0 {
        d.error(p.span, format!("{what}: port 0 is not usable"));
        return None;
    }
    Some(p)
}

fn upstream(n: &Node, d: &mut Diagnostics) -> S<SocketAddr> {
    let s = string(n, "`network.upstream_dns`", d)?;
    let v = s.value.trim();
    let addr = v
        .parse::<SocketAddr>()
        .ok()
        .or_else(|| v.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53)));
    match addr {
        Some(a) => Some(Spanned::new(a, s.span)),
        None => {
            d.error(s.span, format!("`network.upstream_dns`: `{v}` is not an address (expected e.g. 9.9.9.9 or 9.9.9.9:53)"));
            None
        }
    }
}

fn os(n: &Node, d: &mut Diagnostics) -> OsSpec {
    let mut out = OsSpec {
        span: n.span,
        ..Default::default()
    };
    let Some(mut f) = Fields::new(n, "`os`", d) else {
        return out;
    };
    out.given = f.present();
    out.distro = f.get("distro").and_then(|v| {
        pick(
            v,
            "`os.distro`",
            &[
                ("flatcar", Distro::Flatcar),
                ("coreos", Distro::Coreos),
                ("generic", Distro::Generic),
            ],
            d,
        )
    });
    out.channel = f.get("channel").and_then(|v| string(v, "`os.channel`", d));
    out.version = f.get("version").and_then(|v| string(v, "`os.version`", d));
    out.arch = f.get("arch").and_then(|v| {
        pick(
            v,
            "`os.arch`",
            &[("amd64", Arch::Amd64), ("arm64", Arch::Arm64)],
            d,
        )
    });
    out.assets = f.get("assets").and_then(|v| string(v, "`os.assets`", d));
    out.config_format = f.get("config_format").and_then(|v| {
        pick(
            v,
            "`os.config_format`",
            &[
                ("ignition", ConfigFormat::Ignition),
                ("cloud-config", ConfigFormat::CloudConfig),
                ("template", ConfigFormat::Template),
            ],
            d,
        )
    });
    out.install_disk = f
        .get("install_disk")
        .and_then(|v| string(v, "`os.install_disk`", d));
    out.kernel_args = f
        .get("kernel_args")
        .map(|v| strings(v, "`os.kernel_args`", d))
        .unwrap_or_default();
    out.install_timeout = f
        .get("install_timeout")
        .and_then(|v| parse(v, "`os.install_timeout`", d));
    out.generic_span = f.key_span("generic");
    if let Some(g) = f.get("generic")
        && let Some(mut gf) = Fields::new(g, "`os.generic`", d)
    {
        let mut gs = GenericSpec {
            kernel: gf
                .get("kernel")
                .and_then(|v| string(v, "`os.generic.kernel`", d)),
            ..Default::default()
        };
        gs.initrds = gf
            .get("initrds")
            .map(|v| strings(v, "`os.generic.initrds`", d))
            .unwrap_or_default();
        gs.template = gf
            .get("template")
            .and_then(|v| string(v, "`os.generic.template`", d));
        if gs.kernel.is_none() {
            d.error(gf.span, "`os.generic` needs `kernel`");
        }
        gf.finish(d);
        out.generic = Some(gs);
    }
    if let Some(m) = f.get("mirror")
        && let Some(mut mf) = Fields::new(m, "`os.mirror`", d)
    {
        let mut ms = MirrorSpec {
            base_url: mf
                .get("base_url")
                .and_then(|v| string(v, "`os.mirror.base_url`", d)),
            ..Default::default()
        };
        if let Some(keys) = mf.get("trusted_keys") {
            ms.trusted_keys = list_of(keys, "`os.mirror.trusted_keys`", d, |n, d| {
                let mut kf = Fields::new(n, "`os.mirror.trusted_keys[]`", d)?;
                let key = TrustedKeySpec {
                    file: kf
                        .get("file")
                        .and_then(|v| string(v, "`os.mirror.trusted_keys[].file`", d)),
                    fingerprint: kf
                        .get("fingerprint")
                        .and_then(|v| string(v, "`os.mirror.trusted_keys[].fingerprint`", d)),
                    span: n.span,
                };
                kf.finish(d);
                Some(key)
            });
        }
        if let Some(p) = mf.get("ipxe")
            && let Some(mut pf) = Fields::new(p, "`os.mirror.ipxe`", d)
        {
            ms.ipxe = Some(IpxePackageSpec {
                url: pf
                    .get("url")
                    .and_then(|v| string(v, "`os.mirror.ipxe.url`", d)),
                sha256: pf
                    .get("sha256")
                    .and_then(|v| string(v, "`os.mirror.ipxe.sha256`", d)),
                span: p.span,
            });
            pf.finish(d);
        }
        mf.finish(d);
        out.mirror = Some(ms);
    }
    f.finish(d);
    out
}

fn strings(n: &Node, what: &str, d: &mut Diagnostics) -> Vec<String> {
    list_of(n, what, d, |n, d| string(n, what, d).map(|s| s.value))
}

fn kubernetes(n: &Node, d: &mut Diagnostics) -> KubernetesSpec {
    let mut out = KubernetesSpec {
        span: n.span,
        ..Default::default()
    };
    let Some(mut f) = Fields::new(n, "`kubernetes`", d) else {
        return out;
    };
    out.given = f.present();
    out.version = f
        .get("version")
        .and_then(|v| string(v, "`kubernetes.version`", d));
    out.control_plane_endpoint = f.get("control_plane_endpoint").and_then(|v| {
        let s = string(v, "`kubernetes.control_plane_endpoint`", d)?;
        let (host, port) = match s.value.rsplit_once(':') {
            Some((h, p)) => match p.parse::<u16>() {
                Ok(p) if p > 0 => (h.to_string(), Some(p)),
                _ => {
                    d.error(
                        s.span,
                        format!("`kubernetes.control_plane_endpoint`: `{p}` is not a port number"),
                    );
                    return None;
                }
            },
            None => (s.value.clone(), None),
        };
        Some(Spanned::new((host, port), s.span))
    });
    out.api_name = f
        .get("api_name")
        .and_then(|v| string(v, "`kubernetes.api_name`", d));
    out.extra_sans = f
        .get("extra_sans")
        .map(|v| {
            list_of(v, "`kubernetes.extra_sans`", d, |n, d| {
                string(n, "`kubernetes.extra_sans`", d)
            })
        })
        .unwrap_or_default();
    out.pod_subnet = f
        .get("pod_subnet")
        .and_then(|v| cidr(v, "`kubernetes.pod_subnet`", d));
    out.service_subnet = f
        .get("service_subnet")
        .and_then(|v| cidr(v, "`kubernetes.service_subnet`", d));
    out.cluster_dns = f
        .get("cluster_dns")
        .and_then(|v| parse_as(v, "`kubernetes.cluster_dns`", IPV4, d));
    out.network_plugin = f.get("network_plugin").and_then(|v| {
        pick(
            v,
            "`kubernetes.network_plugin`",
            &[
                ("flannel", NetworkPlugin::Flannel),
                ("calico", NetworkPlugin::Calico),
                ("cilium", NetworkPlugin::Cilium),
                ("none", NetworkPlugin::None),
            ],
            d,
        )
    });
    out.cni_version = f
        .get("cni_version")
        .and_then(|v| string(v, "`kubernetes.cni_version`", d));
    out.cni_mtu = f
        .get("cni_mtu")
        .and_then(|v| parse_as::<u16>(v, "`kubernetes.cni_mtu`", "an MTU in bytes (576-9216)", d));
    out.cni_interface = f
        .get("cni_interface")
        .and_then(|v| string(v, "`kubernetes.cni_interface`", d));
    out.cni_manifest = f
        .get("cni_manifest")
        .and_then(|v| string(v, "`kubernetes.cni_manifest`", d));
    out.vip_interface = f
        .get("vip_interface")
        .and_then(|v| string(v, "`kubernetes.vip_interface`", d));
    out.image_repository = f
        .get("image_repository")
        .and_then(|v| string(v, "`kubernetes.image_repository`", d));
    if let Some(m) = f.get("registry_mirrors") {
        match &m.value {
            crate::yaml::Value::Map(entries) => {
                for (k, v) in entries {
                    let what = format!("mirrors of `{}`", k.text);
                    let urls = list_of(v, &what, d, |n, d| string(n, &what, d));
                    out.registry_mirrors.push((k.clone(), urls));
                }
            }
            _ => d.error(m.span, format!("`kubernetes.registry_mirrors` must be a mapping of registry: [mirror URLs], not {}", m.kind())),
        }
    }
    out.sysext_url = f
        .get("sysext_url")
        .and_then(|v| string(v, "`kubernetes.sysext_url`", d));
    out.serve_images = f
        .get("serve_images")
        .and_then(|v| boolean(v, "`kubernetes.serve_images`", d));
    out.extra_images = f
        .get("extra_images")
        .map(|v| {
            list_of(v, "`kubernetes.extra_images`", d, |n, d| {
                string(n, "`kubernetes.extra_images`", d)
            })
        })
        .unwrap_or_default();
    if let Some(m) = f.get("image_sources") {
        match &m.value {
            crate::yaml::Value::Map(entries) => {
                for (k, v) in entries {
                    let what = format!("`kubernetes.image_sources` of `{}`", k.text);
                    if let Some(u) = string(v, &what, d) {
                        out.image_sources.push((k.clone(), u));
                    }
                }
            }
            _ => d.error(
                m.span,
                format!(
                    "`kubernetes.image_sources` must be a mapping of registry: URL, not {}",
                    m.kind()
                ),
            ),
        }
    }
    f.finish(d);
    out
}

fn access(n: &Node, d: &mut Diagnostics) -> AccessSpec {
    let mut out = AccessSpec::default();
    let Some(mut f) = Fields::new(n, "`access`", d) else {
        return out;
    };
    out.user = f.get("user").and_then(|v| string(v, "`access.user`", d));
    out.ssh_authorized_keys = f
        .get("ssh_authorized_keys")
        .map(|v| {
            list_of(v, "`access.ssh_authorized_keys`", d, |n, d| {
                string(n, "an SSH key", d)
            })
        })
        .unwrap_or_default();
    out.password_hash = f
        .get("password_hash")
        .and_then(|v| string(v, "`access.password_hash`", d));
    f.finish(d);
    out
}

fn role(n: &Node, d: &mut Diagnostics) -> S<Role> {
    pick(
        n,
        "role",
        &[
            ("control-plane", Role::ControlPlane),
            ("etcd", Role::Etcd),
            ("worker", Role::Worker),
        ],
        d,
    )
}

fn profile(n: &Node, d: &mut Diagnostics) -> Option<ProfileSpec> {
    let mut f = Fields::new(n, "a profile", d)?;
    let mut out = ProfileSpec {
        span: n.span,
        ..Default::default()
    };
    match f.get("name") {
        Some(v) => out.name = string(v, "a profile's `name`", d),
        None => d.error(
            f.key_span("name").unwrap_or(n.span),
            "a profile needs a `name`",
        ),
    }
    if let Some(sel) = f.get("selector")
        && let Some(mut s) = Fields::new(sel, "a profile's `selector`", d)
    {
        out.role = s.get("role").and_then(|v| role(v, d));
        out.labels = s
            .get("labels")
            .map(|v| string_map(v, "selector label", d))
            .unwrap_or_default();
        out.mac = s.get("mac").and_then(|v| parse(v, "selector `mac`", d));
        out.hostname = s
            .get("hostname")
            .and_then(|v| string(v, "selector `hostname`", d));
        s.finish(d);
    }
    out.install_disk = f
        .get("install_disk")
        .and_then(|v| string(v, "a profile's `install_disk`", d));
    out.kernel_args = f
        .get("kernel_args")
        .map(|v| strings(v, "a profile's `kernel_args`", d));
    out.boot_files = f
        .get("boot_files")
        .map(|v| boot_files(v, d))
        .unwrap_or_default();
    out.metadata = f
        .get("metadata")
        .map(|v| object(v, "a profile's `metadata`", d))
        .unwrap_or_default();
    f.finish(d);
    Some(out)
}

fn object(n: &Node, what: &str, d: &mut Diagnostics) -> serde_json::Map<String, serde_json::Value> {
    match json(n) {
        serde_json::Value::Object(m) => m,
        serde_json::Value::Null => serde_json::Map::new(),
        _ => {
            d.error(
                n.span,
                format!("{what} must be a mapping, not {}", n.kind()),
            );
            serde_json::Map::new()
        }
    }
}

fn node(n: &Node, d: &mut Diagnostics) -> Option<NodeSpec> {
    let mut f = Fields::new(n, "a node", d)?;
    let mut out = NodeSpec {
        span: n.span,
        ..Default::default()
    };
    match f.get("mac") {
        Some(v) => out.mac = parse(v, "`mac`", d),
        None => d.error(f.key_span("mac").unwrap_or(n.span), "a node needs a `mac`"),
    }
    out.hostname = f.get("hostname").and_then(|v| string(v, "`hostname`", d));
    out.ip = f.get("ip").and_then(|v| parse_as(v, "`ip`", IPV4, d));
    if let Some(v) = f.get("roles") {
        let items = list(v, "`roles`", d);
        let roles: Vec<Spanned<Role>> = items
            .unwrap_or_default()
            .iter()
            .filter_map(|n| role(n, d))
            .collect();
        out.roles_invalid = items.is_none_or(|i| i.len() != roles.len());
        out.roles = Some(roles);
    }
    out.install_disk = f
        .get("install_disk")
        .and_then(|v| string(v, "`install_disk`", d));
    out.kernel_args = f.get("kernel_args").map(|v| strings(v, "`kernel_args`", d));
    out.boot_files = f
        .get("boot_files")
        .map(|v| boot_files(v, d))
        .unwrap_or_default();
    out.labels = f
        .get("labels")
        .map(|v| string_map(v, "label", d))
        .unwrap_or_default();
    out.taints = f
        .get("taints")
        .map(|v| list_of(v, "`taints`", d, taint))
        .unwrap_or_default();
    out.profile = f.get("profile").and_then(|v| string(v, "`profile`", d));
    out.bmc = f.get("bmc").and_then(|v| bmc(v, d));
    out.metadata = f
        .get("metadata")
        .map(|v| object(v, "`metadata`", d))
        .unwrap_or_default();
    f.finish(d);
    Some(out)
}

fn taint(n: &Node, d: &mut Diagnostics) -> Option<Taint> {
    let s = string(n, "a taint", d)?;
    let bad = |d: &mut Diagnostics, why: &str| {
        d.push(
            Diagnostic::error(s.span, format!("taint `{}` {why}", s.value))
                .with_help("write `key=value:Effect` or `key:Effect`, Effect one of NoSchedule, PreferNoSchedule, NoExecute"),
        );
    };
    let Some((kv, effect)) = s.value.rsplit_once(':') else {
        bad(d, "has no effect");
        return None;
    };
    if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
        bad(d, &format!("has an unknown effect `{effect}`"));
        return None;
    }
    let (key, value) = kv.split_once('=').unwrap_or((kv, ""));
    if !crate::complete::is_label_key(key) || !crate::complete::is_label_value(value) {
        bad(d, "has an invalid key or value");
        return None;
    }
    Some(Taint {
        key: key.into(),
        value: value.into(),
        effect: effect.into(),
    })
}

fn bmc(n: &Node, d: &mut Diagnostics) -> Option<BmcSpec> {
    use crate::model::PasswordSource;
    let mut f = Fields::new(n, "a node's `bmc`", d)?;
    let driver = f.get("driver").and_then(|v| {
        pick(
            v,
            "`bmc.driver`",
            &[("ipmi", BmcDriver::Ipmi), ("redfish", BmcDriver::Redfish)],
            d,
        )
    });
    let address = f.get("address").and_then(|v| string(v, "`bmc.address`", d));
    let port = f.get("port").and_then(|v| port(v, "`bmc.port`", d));
    let user = f.get("user").and_then(|v| string(v, "`bmc.user`", d));
    let env = f
        .get("password_env")
        .and_then(|v| string(v, "`bmc.password_env`", d));
    let file = f
        .get("password_file")
        .and_then(|v| string(v, "`bmc.password_file`", d));
    let inline = f
        .get("password")
        .and_then(|v| string(v, "`bmc.password`", d));
    let allow_inline = f
        .get("allow_inline_password")
        .and_then(|v| boolean(v, "`bmc.allow_inline_password`", d));
    let is = |want: BmcDriver| driver.as_ref().is_some_and(|x| x.value == want);
    let (ipmi, redfish) = (is(BmcDriver::Ipmi), is(BmcDriver::Redfish));
    let only = |key: &str, ok: bool, which: &str, f: &Fields, d: &mut Diagnostics| {
        if let Some(span) = f.key_span(key)
            && !ok
        {
            d.error(
                span,
                format!("`bmc.{key}` applies to the {which} driver only"),
            );
        }
    };
    only("cipher_suite", ipmi || driver.is_none(), "ipmi", &f, d);
    for key in [
        "tls_fingerprint",
        "tls_ca",
        "tls_insecure",
        "system",
        "auth",
    ] {
        only(key, redfish || driver.is_none(), "redfish", &f, d);
    }
    let cipher_suite = f.get("cipher_suite").and_then(|v| {
        let n = self::port(v, "`bmc.cipher_suite`", d)?;
        if n.value == 3 || n.value == 17 {
            Some(Spanned::new(n.value as u8, n.span))
        } else {
            d.push(
                Diagnostic::error(
                    n.span,
                    format!("`bmc.cipher_suite`: {} is not supported", n.value),
                )
                .with_help("use 17 (HMAC-SHA256, AES-128) or 3 (HMAC-SHA1, AES-128)"),
            );
            None
        }
    });
    let fingerprint = f
        .get("tls_fingerprint")
        .and_then(|v| string(v, "`bmc.tls_fingerprint`", d))
        .and_then(|v| match normalize_fingerprint(&v.value) {
            Some(hex) => Some(hex),
            None => {
                d.push(
                    Diagnostic::error(v.span, "`bmc.tls_fingerprint` is not a SHA-256 fingerprint")
                        .with_help("64 hex digits, colons allowed, e.g. from `openssl x509 -noout -fingerprint -sha256`"),
                );
                None
            }
        });
    let ca = f.get("tls_ca").and_then(|v| string(v, "`bmc.tls_ca`", d));
    let insecure = f
        .get("tls_insecure")
        .and_then(|v| boolean(v, "`bmc.tls_insecure`", d));
    let tls_given = usize::from(fingerprint.is_some())
        + usize::from(ca.is_some())
        + usize::from(insecure.as_ref().is_some_and(|i| i.value));
    if tls_given > 1 {
        d.error(
            n.span,
            "`bmc` takes one of `tls_fingerprint`, `tls_ca`, `tls_insecure`, not several",
        );
    }
    let tls = match (fingerprint, ca, insecure) {
        (Some(fp), _, _) => crate::model::BmcTls::Fingerprint(fp),
        (_, Some(ca), _) => crate::model::BmcTls::Ca(ca.value.into()),
        (_, _, Some(i)) if i.value => crate::model::BmcTls::Insecure,
        _ => crate::model::BmcTls::SystemRoots,
    };
    let system = f.get("system").and_then(|v| string(v, "`bmc.system`", d));
    let session_auth = f
        .get("auth")
        .and_then(|v| pick(v, "`bmc.auth`", &[("basic", false), ("session", true)], d))
        .is_some_and(|a| a.value);
    for name in ["driver", "address", "user"] {
        if f.key_span(name).is_none() {
            d.error(n.span, format!("`bmc` needs `{name}`"));
        }
    }
    f.finish(d);
    let given =
        usize::from(env.is_some()) + usize::from(file.is_some()) + usize::from(inline.is_some());
    let password = match (env, file, inline) {
        _ if given > 1 => {
            d.error(
                n.span,
                "`bmc` takes one of `password_env`, `password_file`, `password`, not several",
            );
            None
        }
        (Some(e), _, _) => {
            let valid = !e.value.is_empty()
                && e.value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !e.value.as_bytes()[0].is_ascii_digit();
            if !valid {
                d.error(
                    e.span,
                    format!(
                        "`bmc.password_env`: `{}` is not an environment variable name",
                        e.value
                    ),
                );
            }
            Some(PasswordSource::Env(e.value))
        }
        (_, Some(p), _) => Some(PasswordSource::File(p.value.into())),
        (_, _, Some(i)) => {
            if allow_inline.is_some_and(|a| a.value) {
                Some(PasswordSource::Inline(i.value))
            } else {
                d.push(
                    Diagnostic::error(i.span, "inline BMC passwords are refused: the cluster file is not a secret store")
                        .with_help("use `password_env: VAR` or `password_file: /path`, or set `allow_inline_password: true`"),
                );
                None
            }
        }
        (None, None, None) => {
            d.push(
                Diagnostic::error(n.span, "`bmc` needs a password source")
                    .with_help("add `password_env: VAR` or `password_file: /path`"),
            );
            None
        }
    };
    Some(BmcSpec {
        driver: driver?,
        address: address?,
        port,
        user: user?,
        password: password?,
        cipher_suite,
        tls,
        system,
        session_auth,
    })
}

/// A SHA-256 fingerprint as 64 lowercase hex digits: accepts an optional `sha256:` or
/// `SHA256 Fingerprint=` prefix and colons.
fn normalize_fingerprint(s: &str) -> Option<String> {
    let s = s.trim();
    let s = s
        .strip_prefix("sha256:")
        .or_else(|| s.strip_prefix("SHA256:"))
        .or_else(|| s.strip_prefix("sha256 Fingerprint="))
        .or_else(|| s.strip_prefix("SHA256 Fingerprint="))
        .unwrap_or(s);
    let hex: String = s.chars().filter(|c| *c != ':').collect();
    (hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_lowercase())
}

#[cfg(test)]
mod accepted_keys_tests {
    /// Every `.get("key")` in this reader shows up among the accepted keys (so the
    /// skeleton reaches every mapping).
    #[test]
    fn every_key_the_reader_asks_for_is_listed() {
        let keys = super::accepted_keys();
        let source = include_str!("spec.rs");
        let reader = source
            .split("#[cfg(test)]\nmod accepted_keys_tests")
            .next()
            .unwrap_or_default();
        let mut missing = Vec::new();
        for part in reader.split(".get(\"").skip(1) {
            let Some(key) = part.split('"').next() else {
                continue;
            };
            if !keys
                .iter()
                .any(|k| k == key || k.ends_with(&format!(".{key}")))
            {
                missing.push(key.to_string());
            }
        }
        assert!(
            missing.is_empty(),
            "not reached: {missing:?}\nkeys: {keys:?}"
        );
        assert!(keys.contains(&"kubernetes.network_plugin".to_string()));
        assert!(
            keys.contains(&"nodes[].bmc.address".to_string()),
            "{keys:?}"
        );
    }
}
