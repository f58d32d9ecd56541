//! kube-vip for a highly available API endpoint: when `control_plane_endpoint` is a
//! virtual IP, every control-plane node runs kube-vip as a static pod (ARP mode, leader
//! election through a Lease) that holds the VIP on one of them at a time.
//!
//! The pod manifest is written by a unit on the node before kubeadm runs
//! ([`UNIT_NAME`]): it finds the interface that holds the node's own address (the NIC
//! slipway's networkd file configured, whatever the kernel named it), unless
//! `kubernetes.vip_interface` names one, and writes
//! `/etc/kubernetes/manifests/kube-vip.yaml` from the template slipway rendered.
//! kubeadm ≥ 1.29 writes `admin.conf` without cluster-admin rights until the cluster
//! is up, so on the init node kube-vip uses `super-admin.conf` (kube-vip's documented
//! workaround); joining control planes use `admin.conf`.

use serde_json::json;
use slipway_cluster::{Cluster, Node};

use crate::kubeadm::{self, Join};

/// The kube-vip version rendered.
pub const VERSION: &str = "v0.8.9";
/// Where kubeadm's kubelet picks static pods up.
pub const MANIFEST_PATH: &str = "/etc/kubernetes/manifests/kube-vip.yaml";
/// The template the unit fills in.
pub const TEMPLATE_PATH: &str = "/etc/kubernetes/kube-vip.yaml.in";
/// The unit that writes [`MANIFEST_PATH`] before kubeadm runs.
pub const UNIT_NAME: &str = "slipway-kube-vip.service";
/// The placeholder of the interface in the template.
const INTERFACE: &str = "@SLIPWAY_VIP_INTERFACE@";

/// Whether `cluster`'s endpoint is a virtual IP kube-vip must hold.
pub fn enabled(cluster: &Cluster) -> bool {
    cluster.kubernetes.control_plane_endpoint.node.is_none()
}

/// The kube-vip image.
pub fn image(cluster: &Cluster) -> String {
    let repo = cluster.kubernetes.image_repository.trim_end_matches('/');
    if repo == "registry.k8s.io" {
        format!("ghcr.io/kube-vip/kube-vip:{VERSION}")
    } else {
        format!("{repo}/kube-vip/kube-vip:{VERSION}")
    }
}

/// Whether kubeadm of `version` (v1.31.2) writes `super-admin.conf` (1.29 and later).
fn has_super_admin(version: &str) -> bool {
    version
        .trim_start_matches('v')
        .split('.')
        .nth(1)
        .and_then(|m| m.parse::<u32>().ok())
        .is_some_and(|minor| minor >= 29)
}

/// The static pod template for `node` (a control-plane node of a VIP cluster), with
/// [`INTERFACE`] where the interface goes unless `vip_interface` is set.
pub fn template(cluster: &Cluster, node: &Node) -> String {
    let k = &cluster.kubernetes;
    let ep = &k.control_plane_endpoint;
    let kubeconfig =
        if kubeadm::join_kind(cluster, node) == Join::Init && has_super_admin(&k.version) {
            "/etc/kubernetes/super-admin.conf"
        } else {
            "/etc/kubernetes/admin.conf"
        };
    let interface = k.vip_interface.clone().unwrap_or_else(|| INTERFACE.into());
    let env = |name: &str, value: String| json!({"name": name, "value": value});
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "kube-vip", "namespace": "kube-system"},
        "spec": {
            "hostNetwork": true,
            "hostAliases": [{"ip": "127.0.0.1", "hostnames": ["kubernetes"]}],
            "containers": [{
                "name": "kube-vip",
                "image": image(cluster),
                "imagePullPolicy": "IfNotPresent",
                "args": ["manager"],
                "env": [
                    env("vip_arp", "true".into()),
                    env("port", ep.port.to_string()),
                    env("vip_interface", interface),
                    env("vip_cidr", "32".into()),
                    env("cp_enable", "true".into()),
                    env("cp_namespace", "kube-system".into()),
                    env("vip_leaderelection", "true".into()),
                    env("vip_leasename", "plndr-cp-lock".into()),
                    env("vip_leaseduration", "5".into()),
                    env("vip_renewdeadline", "3".into()),
                    env("vip_retryperiod", "1".into()),
                    env("address", ep.address.to_string())
                ],
                "securityContext": {"capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}},
                "volumeMounts": [{"name": "kubeconfig", "mountPath": "/etc/kubernetes/admin.conf"}]
            }],
            "volumes": [{"name": "kubeconfig", "hostPath": {"path": kubeconfig}}]
        }
    });
    format!(
        "# slipway: kube-vip holds the API endpoint {} on one control-plane node at a time\n{}",
        ep.address,
        slipway_cluster::emit::to_yaml(&pod)
    )
}

/// Where the script that fills the template in is written.
pub const SCRIPT_PATH: &str = "/opt/slipway/kube-vip.sh";

/// The script that writes the static pod from the template: the interface that holds
/// the node's own address, unless `vip_interface` named one.
pub fn script(cluster: &Cluster, node: &Node) -> String {
    let pick = if let Some(i) = &cluster.kubernetes.vip_interface {
        format!("iface='{i}'\n")
    } else {
        format!(
            "iface=$(ip -o -4 addr show to {ip}/32 | awk '{{print $2; exit}}')\n\
             [ -n \"$iface\" ] || {{ echo \"slipway: no interface holds {ip} yet\" >&2; exit 1; }}\n",
            ip = node.ip
        )
    };
    format!(
        "#!/bin/sh\n\
         # slipway: kube-vip's static pod for {host}, on the interface that holds {ip}\n\
         set -eu\n\
         {pick}\
         mkdir -p /etc/kubernetes/manifests\n\
         sed \"s/{INTERFACE}/$iface/\" {TEMPLATE_PATH} > {MANIFEST_PATH}.tmp\n\
         mv {MANIFEST_PATH}.tmp {MANIFEST_PATH}\n\
         echo \"slipway: kube-vip holds {vip} on $iface\"\n",
        host = node.hostname,
        ip = node.ip,
        vip = cluster.kubernetes.control_plane_endpoint.address,
    )
}

/// The unit that runs [`script`] before kubeadm (and again until it succeeds).
pub fn unit(cluster: &Cluster) -> String {
    format!(
        "# slipway: kube-vip's static pod before kubeadm\n\
         [Unit]\n\
         Description=slipway: kube-vip static pod for {vip}\n\
         Wants=network-online.target\n\
         After=network-online.target\n\
         Before=kubeadm.service\n\n\
         [Service]\n\
         Type=oneshot\n\
         RemainAfterExit=yes\n\
         Restart=on-failure\n\
         RestartSec=5\n\
         ExecStart={SCRIPT_PATH}\n\n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        vip = cluster.kubernetes.control_plane_endpoint.address,
    )
}
