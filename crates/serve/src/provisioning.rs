//! [`Live`] as `slipway-http`'s [`Provisioning`] port: what each route answers.

use std::net::SocketAddr;
use std::path::PathBuf;

use slipway_cluster::{Cluster, ConfigFormat, MacAddr, Node};
use slipway_http::api::types::{
    BuildView, ClusterView, EventView, KubernetesView, MachineList, MachineView, NodeList,
    NodeUrls, NodeView, OsView,
};
use slipway_http::update::{OsUpdateAction, OsUpdateView};
use slipway_http::{ApiError, CloudConfigFile, ConfigFile, Provisioning, Reply, ReportEvent};
use slipway_lifecycle::{Event, Input, Machine, Report};
use slipway_render::{Artifact, Urls};
use slipway_store::tracker::{ReportError, now};

use crate::{Boot, KeyUse, Live, Snapshot};

impl Provisioning for Live {
    fn chain(&self) -> Reply {
        let s = self.current();
        Reply::text(slipway_render::ipxe::chain(&Urls::new(&s.cluster)))
    }

    fn cni_manifest(&self) -> Reply {
        let s = self.current();
        let yaml = |body: String| Reply::Ok {
            content_type: "application/yaml",
            body,
        };
        match slipway_render::cni::plan(&s.cluster) {
            slipway_render::cni::Plan::Rendered => {
                slipway_render::cni::manifest(&s.cluster).map_or(Reply::NotFound, yaml)
            }
            slipway_render::cni::Plan::File(path) => match read_bounded(&path, 16 << 20) {
                Ok(text) => yaml(text),
                Err(e) => {
                    tracing::warn!(path = %path.display(), "the CNI manifest cannot be read: {e}");
                    Reply::Error(format!("the cluster's CNI manifest cannot be read: {e}\n"))
                }
            },
            slipway_render::cni::Plan::Url(_) | slipway_render::cni::Plan::Nothing => {
                Reply::NotFound
            }
        }
    }

    fn ipxe_script(&self, mac: MacAddr, peer: SocketAddr, query: &str) -> Reply {
        let s = self.current();
        let Some(node) = s.cluster.node_by_mac(mac) else {
            tracing::info!(peer = %peer.ip(), %mac, "iPXE script asked for an unknown machine");
            return Reply::NotFound;
        };
        tracing::info!(host = node.hostname, mac = %node.mac, peer = %peer.ip(), query, "iPXE script");
        match self.boot(node, firmware_of(query), peer) {
            Boot::Installer { key } => s.render(node, Artifact::Ipxe, key.as_deref()),
            Boot::LocalDisk => {
                tracing::info!(host = node.hostname, "installed: booting from local disk");
                s.render(node, Artifact::IpxeLocal, None)
            }
            Boot::Refused(why) => Reply::Forbidden(format!("{}: {why}\n", node.hostname)),
        }
    }

    fn config(&self, mac: MacAddr, file: ConfigFile, key: Option<&str>, peer: SocketAddr) -> Reply {
        let s = self.current();
        let Some(node) = s.cluster.node_by_mac(mac) else {
            return Reply::NotFound;
        };
        let (a, what) = match file {
            ConfigFile::InstallConfig => (Artifact::InstallConfig, "install config"),
            ConfigFile::InstallScript => (Artifact::Install, "install script"),
            ConfigFile::Installed => (Artifact::Installed, "installed config"),
        };
        self.artifact(&s, node, a, what, KeyUse::Carried(key), peer)
    }

    fn cloud_config(&self, file: CloudConfigFile, peer: SocketAddr) -> Reply {
        let s = self.current();
        if s.cluster.os.config_format != ConfigFormat::CloudConfig {
            return Reply::NotFound;
        }
        match file {
            CloudConfigFile::SeedScript => {
                let urls = Urls::new(&s.cluster);
                Reply::text(slipway_render::install::seed_script(&s.cluster, &urls))
            }
            CloudConfigFile::Node(mac) => match s.cluster.node_by_mac(mac) {
                Some(node) => self.artifact(
                    &s,
                    node,
                    Artifact::Installed,
                    "seed cloud-config",
                    KeyUse::NotCarried,
                    peer,
                ),
                None => Reply::NotFound,
            },
        }
    }

    fn report(&self, mac: MacAddr, token: &str, event: ReportEvent, peer: SocketAddr) -> Reply {
        let s = self.current();
        let (Some(node), Some(t)) = (s.cluster.node_by_mac(mac), &self.tracker) else {
            return Reply::NotFound;
        };
        let (name, r) = match event {
            ReportEvent::Installing => ("installing", Report::Installing),
            ReportEvent::Installed => ("installed", Report::Installed),
            ReportEvent::Failed(why) => ("failed", Report::Failed(why)),
            ReportEvent::Ready { hostname } => ("ready", Report::Ready { hostname }),
        };
        match t.report(node.mac, token, r) {
            Ok(m) => {
                tracing::info!(host = node.hostname, mac = %node.mac, peer = %peer.ip(), event = name, state = %m.state, "report");
                Reply::text(format!("{}\n", m.state))
            }
            Err(ReportError::BadToken) => {
                tracing::warn!(host = node.hostname, peer = %peer.ip(), event = name, "REFUSED: report with a bad token");
                Reply::Forbidden("bad token\n".into())
            }
            Err(ReportError::OutOfOrder(e)) => Reply::Conflict(format!("{e}\n")),
            Err(e @ (ReportError::Store(_) | ReportError::Random(_))) => {
                tracing::error!("cannot store a report: {e}");
                Reply::Error("cannot store the report\n".into())
            }
        }
    }

    fn cluster(&self) -> ClusterView {
        let s = self.current();
        let c = &s.cluster;
        ClusterView {
            name: c.cluster.name.clone(),
            domain: c.cluster.domain.clone(),
            server: c.network.server,
            os: OsView {
                distro: name_of(&c.os.distro),
                channel: c.os.channel.clone(),
                version: c.os.version.clone(),
                config_format: name_of(&c.os.config_format),
            },
            kubernetes: KubernetesView {
                version: c.kubernetes.version.clone(),
                endpoint: c.kubernetes.control_plane_endpoint.to_string(),
            },
            nodes: c.nodes.len(),
        }
    }

    fn nodes(&self) -> NodeList {
        let s = self.current();
        NodeList {
            nodes: s
                .cluster
                .nodes
                .iter()
                .map(|n| node_view(&s.cluster, n))
                .collect(),
        }
    }

    fn node(&self, id: &str) -> Result<NodeView, ApiError> {
        let s = self.current();
        find(&s, id).map(|n| node_view(&s.cluster, n))
    }

    fn machines(&self) -> Result<MachineList, ApiError> {
        let s = self.current();
        let t = self.tracker.as_ref().ok_or(ApiError::Disabled)?;
        Ok(MachineList {
            machines: s
                .cluster
                .nodes
                .iter()
                .map(|n| self.machine_view(n, t.machine(n.mac).as_ref(), false))
                .collect(),
        })
    }

    fn machine(&self, id: &str) -> Result<MachineView, ApiError> {
        let s = self.current();
        let t = self.tracker.as_ref().ok_or(ApiError::Disabled)?;
        let n = find(&s, id)?;
        Ok(self.machine_view(n, t.machine(n.mac).as_ref(), true))
    }

    fn operator_token(&self) -> Option<String> {
        // Without a tracker, changes answer ApiError::Disabled (404).
        self.admin_token.clone()
    }

    fn reinstall(&self, id: &str) -> Result<MachineView, ApiError> {
        let s = self.current();
        let t = self.tracker.as_ref().ok_or(ApiError::Disabled)?;
        let n = find(&s, id)?;
        match t.record(n.mac, now(), Input::Reinstall) {
            Ok(m) => {
                tracing::info!(
                    host = n.hostname,
                    generation = m.generation,
                    "install re-armed"
                );
                Ok(self.machine_view(n, Some(&m), false))
            }
            Err(e) => Err(ApiError::Internal(e.to_string())),
        }
    }

    fn boot_dir(&self) -> Option<PathBuf> {
        self.current().boot_dir.clone()
    }

    fn mirror_dir(&self) -> Option<PathBuf> {
        self.current().mirror().map(PathBuf::from)
    }

    fn os_update(&self, body: &[u8], peer: SocketAddr) -> Reply {
        let Some(u) = self.os_updates() else {
            return Reply::NotFound;
        };
        u.answer(&self.current().cluster, self.tracker.as_ref(), body, peer)
    }

    fn reboot_lock(&self, mac: MacAddr, token: &str, peer: SocketAddr) -> Reply {
        let s = self.current();
        let (Some(u), Some(t), Some(node)) =
            (self.os_updates(), &self.tracker, s.cluster.node_by_mac(mac))
        else {
            return Reply::NotFound;
        };
        if !s.is_owner(node, peer) || !t.is_ready_token(node.mac, token) {
            self.refuse(
                node,
                "reboot lock",
                peer,
                "not the machine's address or token",
            );
            return Reply::Forbidden("forbidden\n".into());
        }
        u.reboot_lock(&s.cluster, t, node)
    }

    fn os_update_status(&self) -> Result<OsUpdateView, ApiError> {
        let u = self.os_updates().ok_or(ApiError::Disabled)?;
        Ok(u.view(&self.current().cluster))
    }

    fn os_update_control(&self, action: OsUpdateAction) -> Result<OsUpdateView, ApiError> {
        let u = self.os_updates().ok_or(ApiError::Disabled)?;
        Ok(u.control(&self.current().cluster, action))
    }
}

/// The node with hostname or MAC `id`.
fn find<'a>(s: &'a Snapshot, id: &str) -> Result<&'a Node, ApiError> {
    s.cluster
        .node_by_hostname(id)
        .or_else(|| id.parse().ok().and_then(|mac| s.cluster.node_by_mac(mac)))
        .ok_or_else(|| ApiError::NoNode(id.to_string()))
}

/// The name a unit enum variant serializes as (`flatcar`, `cloud-config`).
fn name_of(v: &impl serde::Serialize) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

fn node_view(c: &Cluster, n: &Node) -> NodeView {
    let urls = Urls::new(c);
    NodeView {
        hostname: n.hostname.clone(),
        fqdn: c.fqdn(n),
        mac: n.mac,
        ip: n.ip,
        roles: n.roles.iter().map(name_of).collect(),
        profile: n.profile.clone(),
        install_disk: n.install_disk.clone(),
        urls: NodeUrls {
            ipxe: urls.ipxe(n.mac),
            install_config: urls.install_config(n.mac),
            install_script: urls.install_script(n.mac),
            installed_config: urls.installed_config(n.mac),
        },
    }
}

fn event_view(e: &Event) -> EventView {
    EventView {
        at: e.at,
        from: e.from.as_str().to_string(),
        to: e.to.as_str().to_string(),
        input: serde_json::to_value(&e.input).unwrap_or(serde_json::Value::Null),
    }
}

impl Live {
    fn machine_view(&self, n: &Node, m: Option<&Machine>, events: bool) -> MachineView {
        let mut v = machine_view(n, m, events);
        v.os_update = self.os_updates().and_then(|u| u.phase_of(&n.hostname));
        v
    }
}

fn machine_view(n: &Node, m: Option<&Machine>, events: bool) -> MachineView {
    MachineView {
        os_update: None,
        hostname: n.hostname.clone(),
        mac: n.mac,
        ip: n.ip,
        state: m.map_or("unknown", |m| m.state.as_str()).to_string(),
        since: m.map(|m| m.since),
        generation: m.map_or(0, |m| m.generation),
        firmware: m.and_then(|m| m.firmware.clone()),
        reason: m.and_then(|m| m.reason.clone()),
        last_event: m.and_then(|m| m.last_event()).map(event_view),
        installed: m
            .and_then(|m| m.installed_build.as_ref())
            .map(|b| BuildView {
                os_version: b.os_version.clone(),
                config_sha256: b.config_sha256.clone(),
            }),
        events: events.then(|| {
            m.map(|m| m.events.iter().map(event_view).collect())
                .unwrap_or_default()
        }),
    }
}

/// `platform arch` from the chain script's query (`buildarch=x86_64&platform=efi`).
fn firmware_of(query: &str) -> String {
    let get = |k: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
            .unwrap_or("?")
    };
    let clean = |v: &str| {
        v.chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(16)
            .collect::<String>()
    };
    format!("{} {}", clean(get("platform")), clean(get("buildarch")))
}

/// The text of `path`, refused beyond `limit` bytes.
fn read_bounded(path: &std::path::Path, limit: u64) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > limit {
        return Err(std::io::Error::other(format!("larger than {limit} bytes")));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::firmware_of;

    #[test]
    fn firmware_from_the_query() {
        assert_eq!(firmware_of("buildarch=x86_64&platform=efi"), "efi x86_64");
        // Missing values are cleaned away like any other odd character.
        assert_eq!(firmware_of(""), " ");
        assert_eq!(firmware_of("platform=pc%20bios"), "pc20bios ");
    }
}
