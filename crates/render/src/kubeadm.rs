//! kubeadm configuration for each node: `kubeadm init` on the first control-plane node,
//! `kubeadm join` (as a control-plane node, or as a worker) on the others, so no human
//! is needed.
//!
//! No configuration carries a shared or non-expiring credential. A joining node
//! authenticates with its own join credential ([`join_kubeconfig`](crate::Secrets::join_kubeconfig): a client
//! certificate of kubeadm's bootstrap group that expires an hour after the install
//! window), which the installed config writes to [`JOIN_KUBECONFIG_PATH`] and the
//! JoinConfiguration names as its discovery file; its embedded CA replaces a CA
//! hash. A joining control-plane node finds the shared CA and service-account keys
//! slipway placed in `/etc/kubernetes/pki/`, so there is no certificate key and no
//! `--upload-certs`. The InitConfiguration's one bootstrap token (kubeadm always
//! makes one) has no value in the config (kubeadm draws it), is not printed, and
//! expires [`INIT_TOKEN_TTL`] after `kubeadm init`: nothing uses it.
//!
//! Built as data (serde_json values, written as YAML documents), never as text.

use serde_json::{Value, json};
use slipway_cluster::{Cluster, Node, Role};

use crate::RenderError;

/// The Kubernetes service DNS domain inside the cluster (kubeadm's default).
pub const SERVICE_DNS_DOMAIN: &str = "cluster.local";
/// Where the config is written on the node.
pub const CONFIG_PATH: &str = "/etc/kubernetes/kubeadm.yaml";
/// containerd's CRI socket.
pub const CRI_SOCKET: &str = "unix:///run/containerd/containerd.sock";
/// Where a joining node's join credential (a kubeconfig, 0600) is written, removed
/// once `kubeadm join` succeeds.
pub const JOIN_KUBECONFIG_PATH: &str = "/etc/kubernetes/slipway-join.conf";
/// The lifetime of the bootstrap token `kubeadm init` makes. kubeadm makes one
/// whatever the config says (24 hours when none is given) and its bootstrap-token
/// phase, which also sets up the RBAC that joining nodes need, cannot be skipped;
/// slipway's nodes join with their own credentials, so this one only has to expire.
pub const INIT_TOKEN_TTL: &str = "10m";
/// kubeadm's group for joining nodes: its RBAC lets the group post CSRs, have node
/// client CSRs approved, get nodes and read the kubeadm and kubelet ConfigMaps.
pub const BOOTSTRAP_GROUP: &str = "system:bootstrappers:kubeadm:default-node-token";

/// How a node joins the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Join {
    /// The first control-plane node: `kubeadm init`.
    Init,
    /// Another control-plane node: `kubeadm join --control-plane`.
    ControlPlane,
    /// A worker: `kubeadm join`.
    Worker,
}

/// The node that runs `kubeadm init`: the endpoint's node, or the first control-plane
/// node in the file.
pub fn init_node(cluster: &Cluster) -> Option<&Node> {
    let ep = cluster.kubernetes.control_plane_endpoint.node.as_deref();
    ep.and_then(|h| cluster.node_by_hostname(h))
        .filter(|n| n.has_role(Role::ControlPlane))
        .or_else(|| {
            cluster
                .nodes
                .iter()
                .find(|n| n.has_role(Role::ControlPlane))
        })
}

/// How `node` joins.
pub fn join_kind(cluster: &Cluster, node: &Node) -> Join {
    if init_node(cluster).is_some_and(|n| n.mac == node.mac) {
        Join::Init
    } else if node.has_role(Role::ControlPlane) {
        Join::ControlPlane
    } else {
        Join::Worker
    }
}

/// The command the node runs once its OS is up. `kubeadm init` does not print its
/// bootstrap token (nothing needs it) and does not upload the control-plane
/// certificates (joining control-plane nodes get them from slipway).
pub fn command(join: Join) -> String {
    match join {
        Join::Init => format!("kubeadm init --config {CONFIG_PATH} --skip-token-print"),
        _ => format!("kubeadm join --config {CONFIG_PATH}"),
    }
}

fn api_version(version: &str) -> &'static str {
    // v1beta4 arrived in Kubernetes 1.31.
    let minor = version
        .trim_start_matches('v')
        .split('.')
        .nth(1)
        .and_then(|m| m.parse::<u32>().ok())
        .unwrap_or(0);
    if minor >= 31 {
        "kubeadm.k8s.io/v1beta4"
    } else {
        "kubeadm.k8s.io/v1beta3"
    }
}

fn extra_args(v1beta4: bool, args: &[(&str, String)]) -> Value {
    if v1beta4 {
        Value::Array(
            args.iter()
                .map(|(k, v)| json!({"name": k, "value": v}))
                .collect(),
        )
    } else {
        Value::Object(
            args.iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect(),
        )
    }
}

fn node_registration(node: &Node, v1beta4: bool) -> Value {
    let mut args = vec![("node-ip", node.ip.to_string())];
    if !node.labels.is_empty() {
        let labels: Vec<String> = node
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        args.push(("node-labels", labels.join(",")));
    }
    let mut taints: Vec<Value> = node
        .taints
        .iter()
        .map(|t| {
            let mut m = json!({"key": t.key, "effect": t.effect});
            if !t.value.is_empty() {
                m["value"] = json!(t.value);
            }
            m
        })
        .collect();
    if node.has_role(Role::ControlPlane) && !node.has_role(Role::Worker) && node.taints.is_empty() {
        taints
            .push(json!({"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}));
    }
    json!({
        "name": node.hostname,
        "criSocket": CRI_SOCKET,
        "kubeletExtraArgs": extra_args(v1beta4, &args),
        "taints": taints,
    })
}

/// The kubeadm config documents for `node`.
pub fn documents(cluster: &Cluster, node: &Node) -> Result<Vec<Value>, RenderError> {
    let stray_etcd = cluster.stray_etcd();
    if !stray_etcd.is_empty() {
        return Err(RenderError::Unsupported(format!(
            "etcd on nodes without the control-plane role ({}) needs an external etcd topology, which slipway does not render yet; give etcd only to control-plane nodes",
            stray_etcd.join(", ")
        )));
    }
    let k = &cluster.kubernetes;
    let apiv = api_version(&k.version);
    let v1beta4 = apiv.ends_with("v1beta4");
    let endpoint = format!(
        "{}:{}",
        k.control_plane_endpoint.address, k.control_plane_endpoint.port
    );
    let local_api =
        json!({"advertiseAddress": node.ip.to_string(), "bindPort": k.control_plane_endpoint.port});
    let join = join_kind(cluster, node);
    let mut docs = Vec::new();
    match join {
        Join::Init => {
            docs.push(json!({
                "apiVersion": apiv,
                "kind": "InitConfiguration",
                // No `token`: kubeadm draws it, and it is never written anywhere.
                "bootstrapTokens": [{
                    "ttl": INIT_TOKEN_TTL,
                    "usages": ["signing", "authentication"],
                    "groups": [BOOTSTRAP_GROUP],
                    "description": "slipway: made by kubeadm init, unused (nodes join with their own credentials)",
                }],
                "nodeRegistration": node_registration(node, v1beta4),
                "localAPIEndpoint": local_api,
            }));
            let mut sans: Vec<String> = vec![
                k.control_plane_endpoint.address.to_string(),
                format!("{}.{}", k.api_name, cluster.cluster.domain),
            ];
            sans.extend(k.extra_sans.iter().cloned());
            let mut cluster_config = json!({
                "apiVersion": apiv,
                "kind": "ClusterConfiguration",
                "clusterName": cluster.cluster.name,
                "kubernetesVersion": k.version,
                "controlPlaneEndpoint": endpoint,
                "imageRepository": k.image_repository,
                "apiServer": {"certSANs": sans},
                "networking": {
                    "podSubnet": k.pod_subnet.to_string(),
                    "serviceSubnet": k.service_subnet.to_string(),
                    "dnsDomain": SERVICE_DNS_DOMAIN,
                },
                "etcd": {"local": {"dataDir": "/var/lib/etcd"}},
            });
            if k.images.serve {
                // The tags slipway mirrored (its table of kubeadm's pins), so that a
                // kubeadm patch release moving a pin still pulls what slipway serves.
                let pins = crate::images::kubeadm_pins(&k.version);
                cluster_config["etcd"]["local"]["imageTag"] = json!(pins.etcd);
                cluster_config["dns"] = json!({"imageTag": pins.coredns});
            }
            docs.push(cluster_config);
        }
        Join::ControlPlane | Join::Worker => {
            let mut doc = json!({
                "apiVersion": apiv,
                "kind": "JoinConfiguration",
                // The node's own join credential, with the cluster CA in it.
                "discovery": {"file": {"kubeConfigPath": JOIN_KUBECONFIG_PATH}},
                "nodeRegistration": node_registration(node, v1beta4),
            });
            if join == Join::ControlPlane {
                // No certificateKey: the shared keys are already in /etc/kubernetes/pki.
                doc["controlPlane"] = json!({"localAPIEndpoint": local_api});
            }
            docs.push(doc);
        }
    }
    docs.push(json!({
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "cgroupDriver": "systemd",
        "clusterDNS": [k.cluster_dns.to_string()],
        "clusterDomain": SERVICE_DNS_DOMAIN,
        // The serving certificate slipway's PKI issued for each node (same path on all).
        "tlsCertFile": "/etc/kubernetes/pki/kubelet.crt",
        "tlsPrivateKeyFile": "/etc/kubernetes/pki/kubelet.key",
    }));
    Ok(docs)
}

/// The config as one multi-document YAML text.
pub fn yaml(cluster: &Cluster, node: &Node) -> Result<String, RenderError> {
    let docs = documents(cluster, node)?;
    let mut out = format!(
        "# slipway: kubeadm config for {} ({:?})\n",
        node.hostname,
        join_kind(cluster, node)
    );
    for (i, d) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&slipway_cluster::emit::to_yaml(d));
    }
    Ok(out)
}
