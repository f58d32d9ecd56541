//! The operator API's JSON bodies, shared by the server (which writes them) and the
//! `slipway` CLI (which reads them). Field names and order are the wire format: the
//! end-to-end scripts read `slipway status --json` with python and grep.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use slipway_cluster::MacAddr;
use utoipa::ToSchema;

/// `GET /api/v1/machines`: every node of the cluster with where it is in its life.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MachineList {
    /// One entry per node, in the cluster file's order.
    pub machines: Vec<MachineView>,
}

/// One machine's life as the API shows it: its identity, its lifecycle state and the
/// last thing that happened to it (and, for a single machine, every event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MachineView {
    /// The node's hostname in the cluster file.
    pub hostname: String,
    /// The node's MAC address (`52:54:00:00:00:01`).
    #[schema(value_type = String, example = "52:54:00:00:00:01")]
    pub mac: MacAddr,
    /// The node's static address.
    #[schema(value_type = String, format = "ipv4")]
    pub ip: Ipv4Addr,
    /// The lifecycle state: unknown, discovered, booting, installing, installed,
    /// ready or failed.
    pub state: String,
    /// When it entered that state (seconds since the Unix epoch); null if never seen.
    pub since: Option<u64>,
    /// The install generation: it grows each time the operator re-arms the install.
    pub generation: u32,
    /// What booted it last (`bios`, `uefi`, `efi x86_64`, ...), if known.
    pub firmware: Option<String>,
    /// Why it failed, when it did.
    pub reason: Option<String>,
    /// The latest event, if any.
    pub last_event: Option<EventView>,
    /// Every event, oldest first: only in `GET /api/v1/machines/{id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<EventView>>,
    /// Where it is in the in-place OS update rollout (`downloading 4081.2.0`), when
    /// there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_update: Option<String>,
    /// What its disk was installed with, when slipway recorded it (absent: never
    /// installed, or installed before slipway recorded builds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed: Option<BuildView>,
}

/// What a machine was installed with: the OS version and the SHA-256 of its install
/// configuration rendered with example secrets (`slipway upgrade` compares it with
/// what the cluster file renders now).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BuildView {
    /// The OS version.
    pub os_version: String,
    /// SHA-256 (hex) of the install configuration, rendered with example secrets.
    pub config_sha256: String,
}

/// Something that happened to a machine, and the state change it caused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventView {
    /// When (seconds since the Unix epoch).
    pub at: u64,
    /// The state before.
    pub from: String,
    /// The state after.
    pub to: String,
    /// What happened: a string (`"reinstall"`) or a one-key object
    /// (`{"dhcp-seen": {"firmware": "bios"}}`, `{"reported": "installing"}`).
    #[schema(value_type = Object)]
    pub input: serde_json::Value,
}

/// `GET /api/v1/nodes`: the cluster file's nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NodeList {
    /// One entry per node, in the cluster file's order.
    pub nodes: Vec<NodeView>,
}

/// A node as the cluster file declares it, with the URLs it boots and installs from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NodeView {
    /// Its hostname.
    pub hostname: String,
    /// Its fully qualified name in the cluster domain.
    pub fqdn: String,
    /// Its MAC address.
    #[schema(value_type = String, example = "52:54:00:00:00:01")]
    pub mac: MacAddr,
    /// Its static address.
    #[schema(value_type = String, format = "ipv4")]
    pub ip: Ipv4Addr,
    /// Its roles (`control-plane`, `worker`, ...).
    pub roles: Vec<String>,
    /// Its OS profile, if it has its own.
    pub profile: Option<String>,
    /// The disk the installer writes.
    pub install_disk: String,
    /// Where it fetches its boot script and configurations.
    pub urls: NodeUrls,
}

/// The URLs slipway serves one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NodeUrls {
    /// Its iPXE script.
    pub ipxe: String,
    /// The installer's configuration.
    pub install_config: String,
    /// The install script.
    pub install_script: String,
    /// The installed system's configuration.
    pub installed_config: String,
}

/// `GET /api/v1/cluster`: the cluster in brief.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ClusterView {
    /// The cluster's name.
    pub name: String,
    /// Its DNS domain.
    pub domain: String,
    /// slipway's own address on the provisioning network.
    #[schema(value_type = String, format = "ipv4")]
    pub server: Ipv4Addr,
    /// The operating system installed.
    pub os: OsView,
    /// The Kubernetes it runs.
    pub kubernetes: KubernetesView,
    /// How many nodes the cluster file declares.
    pub nodes: usize,
}

/// The operating system part of [`ClusterView`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OsView {
    /// flatcar, coreos or generic.
    pub distro: String,
    /// The release channel.
    pub channel: String,
    /// The release version.
    pub version: String,
    /// The machine configuration format (ignition, cloud-config, ...).
    pub config_format: String,
}

/// The Kubernetes part of [`ClusterView`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct KubernetesView {
    /// The version (`v1.31.2`).
    pub version: String,
    /// Where the API server is reached (`host:port`).
    pub endpoint: String,
}

/// The body of an API error that names what was not found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong (`` no node `x` ``).
    pub error: String,
}
