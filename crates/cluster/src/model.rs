//! The completed cluster: every default filled in, every derivation made.
//!
//! Every later stage (rendering, DHCP, TFTP, DNS, HTTP) reads a [`Cluster`] and
//! never the YAML. It serializes in the same shape as the input file with every field
//! explicit, so `slipway check --output yaml` prints a file that `check` accepts and
//! that completes to the same `Cluster`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use ipnet::Ipv4Net;
use serde::{Serialize, Serializer};

use crate::types::{Ipv4Range, LeaseTime, MacAddr};

/// A whole, valid, explicit cluster description.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cluster {
    /// Name and DNS domain.
    pub cluster: ClusterInfo,
    /// The provisioning network slipway serves.
    pub network: Network,
    /// The operating system installed on the machines.
    pub os: Os,
    /// The Kubernetes cluster the machines form.
    pub kubernetes: Kubernetes,
    /// Who can log in.
    pub access: Access,
    /// Settings shared by groups of nodes, chosen by selectors.
    pub profiles: Vec<Profile>,
    /// In-place OS updates (`upgrade:`).
    pub upgrade: crate::upgrade::Upgrade,
    /// Every machine, in file order.
    pub nodes: Vec<Node>,
    /// Nodes by MAC and hostname, built on first use.
    #[serde(skip)]
    pub(crate) index: NodeIndex,
}

/// Positions of nodes by MAC and by hostname, built on first lookup so that finding a
/// node costs O(1) with 10,000 of them. Lookups check the node found, and fall back to a
/// scan if `nodes` was changed after the index was built.
#[derive(Debug, Clone, Default)]
pub struct NodeIndex(std::sync::OnceLock<NodeMaps>);

#[derive(Debug, Clone)]
struct NodeMaps {
    by_mac: std::collections::HashMap<MacAddr, usize>,
    by_hostname: std::collections::HashMap<String, usize>,
    stray_etcd: Vec<String>,
}

/// Every index equals every other: it is derived from the nodes.
impl PartialEq for NodeIndex {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Cluster {
    fn maps(&self) -> &NodeMaps {
        self.index.0.get_or_init(|| NodeMaps {
            by_mac: self
                .nodes
                .iter()
                .enumerate()
                .map(|(i, n)| (n.mac, i))
                .collect(),
            by_hostname: self
                .nodes
                .iter()
                .enumerate()
                .map(|(i, n)| (n.hostname.clone(), i))
                .collect(),
            stray_etcd: self
                .nodes
                .iter()
                .filter(|n| n.has_role(Role::Etcd) && !n.has_role(Role::ControlPlane))
                .map(|n| n.hostname.clone())
                .collect(),
        })
    }

    /// The node with this MAC address.
    pub fn node_by_mac(&self, mac: MacAddr) -> Option<&Node> {
        match self
            .maps()
            .by_mac
            .get(&mac)
            .and_then(|i| self.nodes.get(*i))
        {
            Some(n) if n.mac == mac => Some(n),
            _ => self.nodes.iter().find(|n| n.mac == mac),
        }
    }

    /// The node with this hostname.
    pub fn node_by_hostname(&self, hostname: &str) -> Option<&Node> {
        match self
            .maps()
            .by_hostname
            .get(hostname)
            .and_then(|i| self.nodes.get(*i))
        {
            Some(n) if n.hostname == hostname => Some(n),
            _ => self.nodes.iter().find(|n| n.hostname == hostname),
        }
    }

    /// Hostnames of nodes with the etcd role but not the control-plane role (a layout
    /// that needs an external etcd topology).
    pub fn stray_etcd(&self) -> &[String] {
        &self.maps().stray_etcd
    }

    /// The fully qualified name of a node.
    pub fn fqdn(&self, node: &Node) -> String {
        format!("{}.{}", node.hostname, self.cluster.domain)
    }
}

/// The cluster's identity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterInfo {
    /// Short name (a DNS label).
    pub name: String,
    /// DNS domain the nodes' names live in; slipway's DNS is authoritative for it.
    pub domain: String,
}

/// The provisioning network.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Network {
    /// Interface slipway serves on.
    pub interface: String,
    /// slipway's own address on that interface (next-server, HTTP, DNS).
    pub server: Ipv4Addr,
    /// The subnet the machines are on.
    #[serde(serialize_with = "display")]
    pub subnet: Ipv4Net,
    /// Default router handed out, if any.
    pub gateway: Option<Ipv4Addr>,
    /// DNS servers handed out to machines.
    pub dns: Vec<Ipv4Addr>,
    /// Resolvers slipway forwards other names to; none means "refuse".
    pub upstream_dns: Vec<SocketAddr>,
    /// Networks beyond the subnet (and loopback) whose DNS queries slipway answers;
    /// queries from anywhere else are dropped.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_clients: Vec<ipnet::IpNet>,
    /// DNS queries answered per second per client address (0: no limit).
    pub dns_rate_limit: u32,
    /// NTP servers (addresses or names) handed out.
    pub ntp: Vec<String>,
    /// Port of slipway's HTTP service.
    pub http_port: u16,
    /// DHCP settings.
    pub dhcp: Dhcp,
}

/// How slipway takes part in DHCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DhcpMode {
    /// slipway is the network's DHCP server.
    Authoritative,
    /// Another server hands out addresses; slipway answers only with boot information.
    Proxy,
    /// slipway runs no DHCP; the site's server points machines at slipway.
    Off,
}

/// What to do with machines whose MAC is not in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnknownPolicy {
    /// Do not answer them at all (the default: never hijack a network).
    Ignore,
    /// Offer a pool address and a discovery boot.
    Discover,
}

/// DHCP settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dhcp {
    /// Authoritative, proxy or off.
    pub mode: DhcpMode,
    /// Dynamic addresses for machines being discovered.
    pub pool: Option<Ipv4Range>,
    /// Lease length.
    pub lease_time: LeaseTime,
    /// What to do with unknown MACs.
    pub unknown_machines: UnknownPolicy,
    /// DHCP relay agents (their giaddr) whose relayed requests are answered; a relayed
    /// request from any other giaddr is dropped. Empty: no relayed request is answered.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub relays: Vec<std::net::Ipv4Addr>,
    /// Most machines without a reservation that get a first pool offer per second
    /// (discover mode); 0: no limit.
    pub new_clients_per_second: u32,
}

/// Operating system family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Distro {
    /// Flatcar Container Linux.
    Flatcar,
    /// CoreOS Container Linux, in the seeds' layout (`coreos_production_*`).
    Coreos,
    /// Any kernel + initrds + arguments.
    Generic,
}

/// CPU architecture of the machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arch {
    /// x86-64.
    Amd64,
    /// 64-bit ARM.
    Arm64,
}

/// The format of the per-machine OS configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConfigFormat {
    /// Ignition JSON (Flatcar).
    Ignition,
    /// coreos-cloudinit cloud-config YAML.
    CloudConfig,
    /// A user template (generic OS), rendered with the node's data.
    Template,
}

/// Where OS images come from.
#[derive(Debug, Clone, PartialEq)]
pub enum AssetSource {
    /// A local directory that slipway serves over HTTP.
    Mirror(PathBuf),
    /// A base URL the machines fetch from directly.
    Remote(String),
}

impl Serialize for AssetSource {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            AssetSource::Mirror(p) => s.collect_str(&p.display()),
            AssetSource::Remote(u) => s.serialize_str(u),
        }
    }
}

/// The operating system.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Os {
    /// Flatcar, CoreOS or generic.
    pub distro: Distro,
    /// Release channel (stable, beta, alpha, lts).
    pub channel: String,
    /// Release version (e.g. 4081.2.0), or `current`.
    pub version: String,
    /// CPU architecture.
    pub arch: Arch,
    /// Where images come from.
    pub assets: AssetSource,
    /// Format of the machine configuration.
    pub config_format: ConfigFormat,
    /// Default install disk.
    pub install_disk: String,
    /// Kernel arguments for every machine.
    pub kernel_args: Vec<String>,
    /// How long a machine may go without install progress before it is failed.
    pub install_timeout: LeaseTime,
    /// Kernel and initrds for the generic profile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generic: Option<GenericBoot>,
    /// Where `slipway mirror` fetches the OS images from and which keys it trusts
    /// (`os.mirror`).
    pub mirror: OsMirror,
}

/// `os.mirror`: the upstream `slipway mirror` fetches the OS images from, and the
/// OpenPGP keys their signatures must verify with.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OsMirror {
    /// The upstream directory holding `<version>/<file>` (`None`: the vendor's, e.g.
    /// `https://stable.release.flatcar-linux.net/amd64-usr`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The keys a signature may come from (empty: the vendor's key kept in slipway).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trusted_keys: Vec<TrustedKey>,
    /// The Debian package the iPXE boot programs are taken from (`None`: the pinned
    /// Debian bookworm `ipxe` package slipway knows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipxe: Option<IpxePackage>,
}

/// A Debian package of iPXE's boot programs, pinned by its SHA-256.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IpxePackage {
    /// The `.deb`'s URL.
    pub url: String,
    /// Its SHA-256, lower-case hex.
    pub sha256: String,
}

/// One trusted OpenPGP key: an armored key file (a keyring; possibly several keys)
/// and the primary-key fingerprint a signature's key must have.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrustedKey {
    /// The armored public key file (relative paths are relative to the cluster file).
    pub file: PathBuf,
    /// The primary key's fingerprint: upper-case hex, no spaces.
    pub fingerprint: String,
}

/// The boot files of a generic OS profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GenericBoot {
    /// Kernel path (relative to the assets) or URL.
    pub kernel: String,
    /// Initrd paths or URLs.
    pub initrds: Vec<String>,
    /// A template for the machine configuration (kickstart, preseed, ...).
    pub template: Option<PathBuf>,
}

/// Kubernetes settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Kubernetes {
    /// Version, with a leading `v` (v1.31.2).
    pub version: String,
    /// Where the API server is reached.
    pub control_plane_endpoint: Endpoint,
    /// DNS name of the endpoint inside the cluster domain (`api.<domain>`).
    pub api_name: String,
    /// Extra names and addresses in the API server certificate.
    pub extra_sans: Vec<String>,
    /// Pod network.
    #[serde(serialize_with = "display")]
    pub pod_subnet: Ipv4Net,
    /// Service network.
    #[serde(serialize_with = "display")]
    pub service_subnet: Ipv4Net,
    /// Address of the cluster DNS service.
    pub cluster_dns: Ipv4Addr,
    /// CNI plugin.
    pub network_plugin: NetworkPlugin,
    /// How the CNI is installed: slipway's rendering of `network_plugin`, the user's
    /// manifest, or nothing (written as the file's `cni_*` keys).
    #[serde(flatten)]
    pub cni: Cni,
    /// The interface kube-vip announces a virtual endpoint on (`None`: the one holding
    /// the node's address, found on the node).
    pub vip_interface: Option<String>,
    /// Registry the control-plane images come from.
    pub image_repository: String,
    /// Mirrors per upstream registry, for air-gapped sites.
    pub registry_mirrors: BTreeMap<String, Vec<String>>,
    /// Where `slipway mirror` fetches the Kubernetes sysext image and its `SHA256SUMS`
    /// from (a sysext-bakery-style directory; `None`: Flatcar's sysext-bakery).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sysext_url: Option<String>,
    /// The container images slipway mirrors and serves to the nodes (written as the
    /// file's `serve_images`, `extra_images`, `image_sources`).
    #[serde(flatten)]
    pub images: ImageMirror,
}

/// Container images served by slipway: `slipway mirror` pulls them by digest into
/// `<assets>/oci`, `serve` answers the registry protocol for them, and the nodes'
/// containerd asks slipway first for every registry they come from.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ImageMirror {
    /// Whether images are mirrored and served (`serve_images`; needs a local
    /// `os.assets` mirror).
    #[serde(rename = "serve_images")]
    pub serve: bool,
    /// Images beyond Kubernetes', the CNI's and kube-vip's (`extra_images`): full
    /// references, `registry/repository:tag`.
    #[serde(rename = "extra_images", skip_serializing_if = "Vec::is_empty")]
    pub extra: Vec<String>,
    /// Where `slipway mirror` pulls a registry's images from instead of the registry
    /// itself (`image_sources`: registry host → base URL, e.g. a private mirror
    /// `https://harbor.lan/proxy-k8s`; the repository is appended under it).
    #[serde(rename = "image_sources", skip_serializing_if = "BTreeMap::is_empty")]
    pub sources: BTreeMap<String, String>,
}

/// The control-plane endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// The node serving it, or `None` for a virtual IP.
    pub node: Option<String>,
    /// Its address.
    pub address: Ipv4Addr,
    /// API server port.
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.node {
            Some(host) => write!(f, "{host}:{}", self.port),
            None => write!(f, "{}:{}", self.address, self.port),
        }
    }
}

impl Serialize for Endpoint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// How the cluster's pod network is installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cni {
    /// The upstream version slipway renders (the images' tag), for flannel and calico.
    #[serde(rename = "cni_version")]
    pub version: Option<String>,
    /// The pod interfaces' MTU (calico; `None`: detected).
    #[serde(rename = "cni_mtu")]
    pub mtu: Option<u16>,
    /// The node interface pod traffic goes over (`None`: the one holding the node's
    /// address).
    #[serde(rename = "cni_interface")]
    pub interface: Option<String>,
    /// The user's manifest instead of a rendered one: an http(s) URL, or a file.
    #[serde(rename = "cni_manifest")]
    pub manifest: Option<CniManifest>,
}

/// Where the user's own CNI manifest comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum CniManifest {
    /// Fetched by the init node from this http(s) URL.
    Url(String),
    /// This file, served by slipway.
    File(PathBuf),
}

/// The CNI plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetworkPlugin {
    /// Flannel: a simple VXLAN overlay.
    Flannel,
    /// Calico: BGP or overlay routing, with network policy.
    Calico,
    /// Cilium: eBPF networking and network policy.
    Cilium,
    /// None: the operator installs one.
    None,
}

impl NetworkPlugin {
    /// The name the cluster file uses.
    pub fn as_str(&self) -> &'static str {
        match self {
            NetworkPlugin::Flannel => "flannel",
            NetworkPlugin::Calico => "calico",
            NetworkPlugin::Cilium => "cilium",
            NetworkPlugin::None => "none",
        }
    }
}

/// Login access to the machines.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Access {
    /// Console / SSH user.
    pub user: String,
    /// SSH public keys for that user.
    pub ssh_authorized_keys: Vec<String>,
    /// crypt(3) password hash for console login, if any.
    pub password_hash: Option<String>,
}

/// Settings shared by the nodes a selector matches.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    /// Name (referenced from nodes' `profile`).
    pub name: String,
    /// Which nodes it applies to.
    pub selector: Selector,
    /// Install disk for its nodes.
    pub install_disk: Option<String>,
    /// Kernel arguments added for its nodes.
    pub kernel_args: Option<Vec<String>>,
    /// Metadata its nodes inherit.
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Boot programs for its nodes.
    #[serde(skip_serializing_if = "BootFiles::is_empty")]
    pub boot_files: BootFiles,
}

/// Boot programs handed to PXE firmware instead of the defaults (iPXE's
/// `undionly.kpxe` and `snponly.efi`), e.g. `pxelinux.0` for sites that keep syslinux.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct BootFiles {
    /// For BIOS PXE (client architecture 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bios: Option<String>,
    /// For x86-64 UEFI PXE (client architectures 7 and 9).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uefi: Option<String>,
}

impl BootFiles {
    /// Whether nothing is overridden.
    pub fn is_empty(&self) -> bool {
        self.bios.is_none() && self.uefi.is_none()
    }
}

/// Matches nodes; every given term must hold. More terms = more specific.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Selector {
    /// The node has this role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// The node has every one of these labels.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The node has this MAC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<MacAddr>,
    /// The node has this hostname.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

impl Selector {
    /// How many terms the selector has.
    pub fn specificity(&self) -> usize {
        usize::from(self.role.is_some())
            + self.labels.len()
            + usize::from(self.mac.is_some())
            + usize::from(self.hostname.is_some())
    }

    /// Whether a node with these attributes matches.
    pub fn matches(
        &self,
        mac: MacAddr,
        hostname: &str,
        roles: &[Role],
        labels: &BTreeMap<String, String>,
    ) -> bool {
        self.role.is_none_or(|r| roles.contains(&r))
            && self.mac.is_none_or(|m| m == mac)
            && self.hostname.as_deref().is_none_or(|h| h == hostname)
            && self.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
    }
}

/// A node's part in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Runs the Kubernetes control plane.
    ControlPlane,
    /// Runs an etcd member.
    Etcd,
    /// Runs workloads.
    Worker,
}

impl Role {
    /// The name used in the file.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::ControlPlane => "control-plane",
            Role::Etcd => "etcd",
            Role::Worker => "worker",
        }
    }
}

/// A Kubernetes taint `key[=value]:Effect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taint {
    /// Key (`example.com/name` or `name`).
    pub key: String,
    /// Value, possibly empty.
    pub value: String,
    /// NoSchedule, PreferNoSchedule or NoExecute.
    pub effect: String,
}

impl fmt::Display for Taint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.value.is_empty() {
            write!(f, "{}:{}", self.key, self.effect)
        } else {
            write!(f, "{}={}:{}", self.key, self.value, self.effect)
        }
    }
}

impl Serialize for Taint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One machine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Node {
    /// MAC of the interface it boots from.
    pub mac: MacAddr,
    /// Hostname (a DNS label).
    pub hostname: String,
    /// Its static address.
    pub ip: Ipv4Addr,
    /// Its roles, sorted.
    pub roles: Vec<Role>,
    /// Disk the OS is installed on.
    pub install_disk: String,
    /// Kernel arguments added after the OS's.
    pub kernel_args: Vec<String>,
    /// Boot programs for its firmware, when not the defaults.
    #[serde(skip_serializing_if = "BootFiles::is_empty")]
    pub boot_files: BootFiles,
    /// Kubernetes labels.
    pub labels: BTreeMap<String, String>,
    /// Kubernetes taints.
    pub taints: Vec<Taint>,
    /// The profile applied, if any.
    pub profile: Option<String>,
    /// Its baseboard management controller.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bmc: Option<Bmc>,
    /// Free-form data for templates (the profile's, overridden by the node's).
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

impl Node {
    /// Whether the node has `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// BMC protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BmcDriver {
    /// IPMI v2.0 over LAN (RMCP+).
    Ipmi,
    /// Redfish over HTTPS.
    Redfish,
}

/// A node's BMC.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bmc {
    /// Protocol spoken to the BMC: IPMI or Redfish.
    pub driver: BmcDriver,
    /// Host name or address.
    pub address: String,
    /// Port (623 for IPMI, 443 for Redfish by default).
    pub port: u16,
    /// User name.
    pub user: String,
    /// Where the password comes from.
    #[serde(flatten)]
    pub password: PasswordSource,
    /// IPMI: the RMCP+ cipher suite, 17 (HMAC-SHA256, AES-128; the default) or 3.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipher_suite: Option<u8>,
    /// Redfish: how the BMC's TLS certificate is checked.
    #[serde(flatten)]
    pub tls: BmcTls,
    /// Redfish: the ComputerSystem to drive, when the BMC manages several.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Redfish: log in with a session (`auth: session`) instead of basic auth.
    #[serde(
        rename = "auth",
        serialize_with = "auth_name",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub session_auth: bool,
}

fn auth_name<S: Serializer>(_: &bool, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("session")
}

/// How a Redfish BMC's TLS certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum BmcTls {
    /// Against the system's trusted CAs (the default).
    #[default]
    SystemRoots,
    /// Only a certificate with this SHA-256 fingerprint (64 lowercase hex digits).
    Fingerprint(String),
    /// Against this CA certificate (PEM).
    Ca(PathBuf),
    /// Not at all (explicitly asked for, per BMC).
    Insecure,
}

impl Serialize for BmcTls {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        match self {
            BmcTls::SystemRoots => {}
            BmcTls::Fingerprint(f) => m.serialize_entry("tls_fingerprint", f)?,
            BmcTls::Ca(p) => m.serialize_entry("tls_ca", p)?,
            BmcTls::Insecure => m.serialize_entry("tls_insecure", &true)?,
        }
        m.end()
    }
}

/// Where a secret comes from. Its value is read only when needed, never printed.
#[derive(Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PasswordSource {
    /// An environment variable of slipway's process.
    #[serde(rename = "password_env")]
    Env(String),
    /// A file (first line).
    #[serde(rename = "password_file")]
    File(PathBuf),
    /// Written in the cluster file (only when explicitly allowed).
    #[serde(rename = "password", serialize_with = "redacted")]
    Inline(String),
}

impl fmt::Debug for PasswordSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordSource::Env(v) => write!(f, "Env({v:?})"),
            PasswordSource::File(p) => write!(f, "File({p:?})"),
            PasswordSource::Inline(_) => f.write_str("Inline(<redacted>)"),
        }
    }
}

fn redacted<S: Serializer>(_: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("<redacted>")
}

fn display<T: fmt::Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}
