//! Conversion from sextant's `cluster-desc.yml`, the cluster description of the seeds'
//! own system, into a slipway cluster file.
//!
//! [`convert`] is pure: text in, slipway YAML text and a list of notes out. Each note
//! says what could not be carried over, or what slipway does differently, so the
//! operator can review them before the first boot.

use std::net::Ipv4Addr;

use serde_json::{Map, Value as J, json};

use crate::decode::{Fields, json as to_json, list, string};
use crate::diagnostic::{Diagnostics, Span};
use crate::yaml::{Node, Value};

/// The result of a conversion.
#[derive(Debug)]
pub struct Converted {
    /// The slipway cluster file, or `None` when the input was unusable.
    pub yaml: Option<String>,
    /// What was not carried over, or changed meaning.
    pub notes: Vec<String>,
    /// Problems that stopped the conversion (bad YAML, missing essentials).
    pub diagnostics: Diagnostics,
}

/// Keys sextant has that slipway deliberately does not carry, with why.
const DROPPED: &[(&str, &str)] = &[
    (
        "dockerdomain",
        "the bootstrapper's Docker registry host name; set `kubernetes.registry_mirrors` instead",
    ),
    (
        "start_pxe",
        "slipway always serves PXE; use `network.dhcp.mode` to choose how",
    ),
    ("set_ntp", "list NTP servers in `network.ntp`"),
    (
        "ingress_hostnetwork",
        "an add-on setting slipway does not manage",
    ),
    (
        "coreos",
        "update/reboot strategy (locksmith) is not managed by slipway yet",
    ),
    ("ceph", "Ceph is not deployed by slipway"),
    (
        "images",
        "per-image overrides; slipway takes `kubernetes.image_repository` (the version was taken from hyperkube when present)",
    ),
    ("broadcast", "derived from the subnet"),
];

/// Converts sextant's `cluster-desc.yml` text.
pub fn convert(name: &str, text: &str) -> Converted {
    let mut d = Diagnostics::new(name);
    let mut notes = Vec::new();
    let yaml = crate::yaml::parse(text, &mut d).and_then(|root| build(&root, &mut d, &mut notes));
    d.sort();
    Converted {
        yaml,
        notes,
        diagnostics: d,
    }
}

fn yes(n: &Node) -> Option<bool> {
    match &n.value {
        Value::Scalar { text, .. } => match text.to_ascii_lowercase().as_str() {
            "y" | "yes" | "true" | "on" => Some(true),
            "n" | "no" | "false" | "off" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn text(f: &mut Fields<'_>, key: &'static str, d: &mut Diagnostics) -> Option<String> {
    f.get(key)
        .and_then(|n| string(n, &format!("`{key}`"), d))
        .map(|s| s.value.trim().to_string())
}

fn texts(f: &mut Fields<'_>, key: &'static str, d: &mut Diagnostics) -> Vec<String> {
    f.get(key)
        .and_then(|n| list(n, &format!("`{key}`"), d))
        .unwrap_or_default()
        .iter()
        .filter_map(|n| string(n, &format!("`{key}`"), d).map(|s| s.value.trim().to_string()))
        .collect()
}

fn prefix_of(mask: Ipv4Addr) -> Option<u8> {
    let m = u32::from(mask);
    let ones = m.leading_ones();
    (m.checked_shl(ones).unwrap_or(0) == 0).then_some(ones as u8)
}

fn build(root: &Node, d: &mut Diagnostics, notes: &mut Vec<String>) -> Option<String> {
    let mut f = Fields::new(root, "the sextant file", d)?;
    let server = text(&mut f, "bootstrapper", d);
    let subnet = text(&mut f, "subnet", d);
    let netmask = f.get("netmask").and_then(|n| string(n, "`netmask`", d));
    let (Some(server), Some(subnet), Some(netmask)) = (server, subnet, netmask) else {
        d.error(
            Span::FILE,
            "a sextant file needs `bootstrapper`, `subnet` and `netmask`",
        );
        return None;
    };
    let Some(prefix) = netmask.value.trim().parse().ok().and_then(prefix_of) else {
        d.error(
            netmask.span,
            format!("`{}` is not a netmask", netmask.value),
        );
        return None;
    };
    let domain = text(&mut f, "domainname", d).unwrap_or_else(|| "cluster.internal".into());
    let cluster_name = domain
        .split('.')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or("cluster")
        .to_string();
    notes.push(format!(
        "cluster.name `{cluster_name}` was taken from the first label of domainname `{domain}`"
    ));
    notes.push("network.interface `eth0` is a guess: sextant does not name the interface; set the real one".into());

    let mut dhcp = Map::new();
    dhcp.insert("mode".into(), json!("authoritative"));
    match (text(&mut f, "iplow", d), text(&mut f, "iphigh", d)) {
        (Some(lo), Some(hi)) => {
            dhcp.insert("pool".into(), json!(format!("{lo}-{hi}")));
        }
        (None, None) => {}
        _ => notes.push("only one of iplow/iphigh was given: no DHCP pool written".into()),
    }
    if let Some(lease) = text(&mut f, "lease", d) {
        dhcp.insert("lease_time".into(), json!(lease));
    }
    dhcp.insert("unknown_machines".into(), json!("ignore"));
    notes.push(
        "sextant answered every machine that PXE-booted and installed it; slipway answers only the nodes listed \
         (`unknown_machines: ignore`), and gives each a static address outside the pool"
            .into(),
    );

    let mut network = Map::new();
    network.insert("interface".into(), json!("eth0"));
    network.insert("server".into(), json!(server));
    network.insert("subnet".into(), json!(format!("{subnet}/{prefix}")));
    let routers = texts(&mut f, "routers", d);
    if let Some(gw) = routers.first() {
        network.insert("gateway".into(), json!(gw));
    }
    if routers.len() > 1 {
        notes.push(format!(
            "routers: only the first ({}) is handed out",
            routers[0]
        ));
    }
    let dns = texts(&mut f, "nameservers", d);
    if !dns.is_empty() {
        network.insert("dns".into(), json!(dns));
    }
    let upstream = texts(&mut f, "upstreamnameservers", d);
    if !upstream.is_empty() {
        network.insert("upstream_dns".into(), json!(upstream));
    }
    network.insert("dhcp".into(), J::Object(dhcp));

    let mut os = Map::new();
    match text(&mut f, "os_name", d).as_deref() {
        None | Some("CoreOS" | "coreos") => {}
        Some(other) => notes.push(format!(
            "os_name `{other}` has no slipway equivalent yet; written as CoreOS"
        )),
    }
    os.insert("distro".into(), json!("coreos"));
    if let Some(c) = text(&mut f, "coreos_channel", d) {
        os.insert("channel".into(), json!(c));
    }
    let version = text(&mut f, "coreos_version", d).unwrap_or_else(|| {
        notes.push("coreos_version missing: `current` written".into());
        "current".into()
    });
    os.insert("version".into(), json!(version));
    os.insert("config_format".into(), json!("cloud-config"));
    notes.push("CoreOS Container Linux is end-of-life; consider `distro: flatcar` (same layout, maintained)".into());

    let mut k8s = Map::new();
    let hyperkube = f
        .get("images")
        .and_then(|n| match &n.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.text == "hyperkube")
                .map(|(_, v)| v.clone()),
            _ => None,
        })
        .and_then(|n| match n.value {
            Value::Scalar { text, .. } => text.rsplit_once(':').map(|(_, tag)| tag.to_string()),
            _ => None,
        });
    let renderable = |tag: &str| {
        let mut parts = tag.trim_start_matches('v').split('.');
        parts.next() == Some("1")
            && parts
                .next()
                .and_then(|m| m.parse::<u32>().ok())
                .is_some_and(|m| {
                    (crate::complete::MIN_K8S_MINOR..=crate::complete::MAX_K8S_MINOR).contains(&m)
                })
    };
    let k8s_version = match hyperkube.filter(|t| t.starts_with('v')) {
        Some(tag) if renderable(&tag) => {
            notes.push(format!(
                "kubernetes.version {tag} was taken from images.hyperkube"
            ));
            tag
        }
        Some(tag) => {
            notes.push(format!(
                "sextant ran Kubernetes {tag} (images.hyperkube), which kubeadm cannot install: kubernetes.version v1.31.2 written, review it"
            ));
            "v1.31.2".into()
        }
        None => {
            notes.push(
                "no hyperkube image tag: kubernetes.version v1.31.2 written, review it".into(),
            );
            "v1.31.2".into()
        }
    };
    k8s.insert("version".into(), json!(k8s_version));
    let mut sans = texts(&mut f, "kube_master_ip", d);
    sans.extend(texts(&mut f, "kube_master_dns", d));
    if !sans.is_empty() {
        notes.push("kube_master_ip and kube_master_dns became `kubernetes.extra_sans` (API certificate names)".into());
        k8s.insert("extra_sans".into(), json!(sans));
    }
    if let Some(r) = text(&mut f, "k8s_service_cluster_ip_range", d) {
        k8s.insert("service_subnet".into(), json!(r));
    }
    if let Some(c) = text(&mut f, "k8s_cluster_dns", d) {
        k8s.insert("cluster_dns".into(), json!(c));
    }
    k8s.insert("network_plugin".into(), json!("flannel"));
    if let Some(b) = text(&mut f, "flannel_backend", d) {
        notes.push(format!(
            "flannel_backend `{b}` is not carried: the flannel backend is set in its manifest"
        ));
    }

    let mut access = Map::new();
    if let Some(keys) = f.get("ssh_authorized_keys") {
        // sextant keeps a YAML list inside a block string.
        let inner = match &keys.value {
            Value::Scalar { text, .. } => {
                let mut d2 = Diagnostics::new("ssh_authorized_keys");
                crate::yaml::parse(text, &mut d2).map(|n| to_json(&n))
            }
            _ => Some(to_json(keys)),
        };
        match inner {
            Some(J::Array(items)) => {
                access.insert("ssh_authorized_keys".into(), J::Array(items));
            }
            Some(J::String(one)) => {
                access.insert("ssh_authorized_keys".into(), json!([one]));
            }
            _ => notes.push(
                "ssh_authorized_keys could not be read as a list of keys; none carried".into(),
            ),
        }
    }

    let mut nodes = Vec::new();
    let mut dropped_node_keys: Vec<String> = Vec::new();
    for n in f
        .get("nodes")
        .and_then(|n| list(n, "`nodes`", d))
        .unwrap_or_default()
    {
        let Some(mut nf) = Fields::new(n, "a sextant node", d) else {
            continue;
        };
        let mut out = Map::new();
        match text(&mut nf, "mac", d) {
            Some(mac) => out.insert("mac".into(), json!(mac)),
            None => {
                d.error(n.span, "a sextant node without `mac`");
                continue;
            }
        };
        if let Some(h) = text(&mut nf, "cur_host_name", d).filter(|h| !h.is_empty()) {
            out.insert("hostname".into(), json!(h));
        }
        let flag =
            |nf: &mut Fields<'_>, key: &'static str| nf.get(key).and_then(yes).unwrap_or(false);
        let master = flag(&mut nf, "kube_master");
        let etcd = flag(&mut nf, "etcd_member");
        let ingress = flag(&mut nf, "ingress_label");
        let mut roles = vec![if master { "control-plane" } else { "worker" }];
        if etcd {
            roles.push("etcd");
        }
        out.insert("roles".into(), json!(roles));
        if ingress {
            out.insert("labels".into(), json!({"ingress": "true"}));
        }
        if let Value::Map(entries) = &n.value {
            for (k, _) in entries {
                if ![
                    "mac",
                    "cur_host_name",
                    "kube_master",
                    "etcd_member",
                    "ingress_label",
                ]
                .contains(&k.text.as_str())
                    && !dropped_node_keys.contains(&k.text)
                {
                    dropped_node_keys.push(k.text.clone());
                }
            }
        }
        nodes.push(J::Object(out));
    }
    for k in dropped_node_keys {
        notes.push(format!("node key `{k}` is not carried"));
    }
    if nodes
        .iter()
        .filter(|n| n["roles"][0] == "control-plane")
        .count()
        == 0
    {
        notes.push(
            "no node had kube_master: y; mark one `control-plane` before `slipway check`".into(),
        );
    }

    f.get("nodes");
    f.get("ssh_authorized_keys");
    if f.key_span("images").is_some() {
        notes.push(format!(
            "`images` not carried: {}",
            DROPPED
                .iter()
                .find(|(n, _)| *n == "images")
                .map_or("", |(_, w)| w)
        ));
    }
    for key in f.unused() {
        match DROPPED.iter().find(|(name, _)| *name == key.text) {
            Some((_, why)) => notes.push(format!("`{}` not carried: {why}", key.text)),
            None => notes.push(format!(
                "unknown key `{}` (line {}) ignored",
                key.text, key.span.line
            )),
        }
    }

    let mut out = Map::new();
    out.insert(
        "cluster".into(),
        json!({"name": cluster_name, "domain": domain}),
    );
    out.insert("network".into(), J::Object(network));
    out.insert("os".into(), J::Object(os));
    out.insert("kubernetes".into(), J::Object(k8s));
    out.insert("access".into(), J::Object(access));
    out.insert("nodes".into(), J::Array(nodes));
    Some(format!(
        "# Converted from sextant's cluster-desc.yml by `slipway convert --from sextant`.\n\
         # Review the notes it printed, then run `slipway check` on this file.\n{}",
        crate::emit::to_yaml(&J::Object(out))
    ))
}
