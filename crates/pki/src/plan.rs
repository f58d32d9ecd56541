//! Which certificates a cluster needs, with which names: computed from the
//! [`Cluster`] alone, without keys, time or files.
//!
//! The names follow kubeadm's layout
//! (<https://kubernetes.io/docs/setup/best-practices/certificates/>), and every
//! server certificate carries at least the names kubeadm itself would put in it, since
//! kubeadm checks certificates it finds on disk against its configuration.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use slipway_cluster::{Cluster, Node, Role};

/// One of the three certificate authorities of a kubeadm cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CaKind {
    /// The cluster CA (`ca.crt`): API server, kubelets, clients.
    Cluster,
    /// The etcd CA (`etcd/ca.crt`): etcd servers, peers and clients.
    Etcd,
    /// The front-proxy CA (`front-proxy-ca.crt`): the aggregation layer.
    FrontProxy,
}

impl CaKind {
    /// The three CAs.
    pub const ALL: [CaKind; 3] = [CaKind::Cluster, CaKind::Etcd, CaKind::FrontProxy];

    /// kubeadm's file name without extension: `ca`, `etcd/ca`, `front-proxy-ca`.
    pub fn base_name(self) -> &'static str {
        match self {
            CaKind::Cluster => "ca",
            CaKind::Etcd => "etcd/ca",
            CaKind::FrontProxy => "front-proxy-ca",
        }
    }

    /// The subject common name kubeadm gives it.
    pub fn common_name(self) -> &'static str {
        match self {
            CaKind::Cluster => "kubernetes",
            CaKind::Etcd => "etcd-ca",
            CaKind::FrontProxy => "front-proxy-ca",
        }
    }
}

impl fmt::Display for CaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.base_name())
    }
}

/// What a leaf certificate may be used for (its extended key usage).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// TLS server authentication.
    Server,
    /// TLS client authentication.
    Client,
    /// Both (etcd's server and peer certificates).
    ServerAndClient,
}

/// A kind of leaf certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LeafKind {
    /// `apiserver`: the API server's serving certificate (per control-plane node).
    ApiServer,
    /// `apiserver-kubelet-client`: the API server as a client of kubelets.
    ApiServerKubeletClient,
    /// `apiserver-etcd-client`: the API server as a client of etcd.
    ApiServerEtcdClient,
    /// `front-proxy-client`: the API server as the aggregation layer's client.
    FrontProxyClient,
    /// `etcd/server`: an etcd member's serving certificate (per etcd node).
    EtcdServer,
    /// `etcd/peer`: an etcd member talking to the others.
    EtcdPeer,
    /// `etcd/healthcheck-client`: the etcd liveness probe.
    EtcdHealthcheckClient,
    /// `kubelet`: a kubelet's serving certificate (every node), signed by the
    /// cluster CA so the API server can verify kubelets.
    Kubelet,
    /// `admin`: the operator's client certificate, in the admin kubeconfig.
    Admin,
}

impl LeafKind {
    /// The file name without extension, under `/etc/kubernetes/pki/` on a node:
    /// `apiserver`, `etcd/server`, `kubelet`, ...
    pub fn base_name(self) -> &'static str {
        match self {
            LeafKind::ApiServer => "apiserver",
            LeafKind::ApiServerKubeletClient => "apiserver-kubelet-client",
            LeafKind::ApiServerEtcdClient => "apiserver-etcd-client",
            LeafKind::FrontProxyClient => "front-proxy-client",
            LeafKind::EtcdServer => "etcd/server",
            LeafKind::EtcdPeer => "etcd/peer",
            LeafKind::EtcdHealthcheckClient => "etcd/healthcheck-client",
            LeafKind::Kubelet => "kubelet",
            LeafKind::Admin => "admin",
        }
    }

    /// The CA that signs it.
    pub fn ca(self) -> CaKind {
        match self {
            LeafKind::ApiServer
            | LeafKind::ApiServerKubeletClient
            | LeafKind::Kubelet
            | LeafKind::Admin => CaKind::Cluster,
            LeafKind::ApiServerEtcdClient
            | LeafKind::EtcdServer
            | LeafKind::EtcdPeer
            | LeafKind::EtcdHealthcheckClient => CaKind::Etcd,
            LeafKind::FrontProxyClient => CaKind::FrontProxy,
        }
    }

    /// What it may be used for.
    pub fn usage(self) -> Usage {
        match self {
            LeafKind::ApiServer | LeafKind::Kubelet => Usage::Server,
            LeafKind::EtcdServer | LeafKind::EtcdPeer => Usage::ServerAndClient,
            LeafKind::ApiServerKubeletClient
            | LeafKind::ApiServerEtcdClient
            | LeafKind::FrontProxyClient
            | LeafKind::EtcdHealthcheckClient
            | LeafKind::Admin => Usage::Client,
        }
    }
}

/// A subject alternative name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum San {
    /// A DNS name (possibly a wildcard `*.example.com`).
    Dns(String),
    /// An IP address.
    Ip(IpAddr),
}

impl San {
    /// An address if `text` is one, else a DNS name.
    pub fn parse(text: &str) -> San {
        match text.parse::<IpAddr>() {
            Ok(ip) => San::Ip(ip),
            Err(_) => San::Dns(text.to_string()),
        }
    }
}

impl fmt::Display for San {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            San::Dns(name) => write!(f, "DNS:{name}"),
            San::Ip(ip) => write!(f, "IP:{ip}"),
        }
    }
}

/// Names a leaf certificate: its kind and the node it belongs to (`None` for the
/// admin certificate, which belongs to the operator).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeafId {
    /// The node's hostname.
    pub node: Option<String>,
    /// Which certificate.
    pub kind: LeafKind,
}

impl LeafId {
    /// The path of its files in the state's `pki/` directory, without extension:
    /// `nodes/<hostname>/<base name>`, or `admin`.
    pub fn stored_base(&self) -> String {
        match &self.node {
            Some(host) => format!("nodes/{host}/{}", self.kind.base_name()),
            None => self.kind.base_name().to_string(),
        }
    }
}

impl fmt::Display for LeafId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.node {
            Some(host) => write!(f, "{} of {host}", self.kind.base_name()),
            None => f.write_str(self.kind.base_name()),
        }
    }
}

/// Everything a leaf certificate says, apart from its key and validity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafSpec {
    /// Which certificate.
    pub id: LeafId,
    /// Subject common name (CN).
    pub common_name: String,
    /// Subject organizations (O), which Kubernetes reads as groups.
    pub organizations: Vec<String>,
    /// Subject alternative names, without duplicates; empty for client certificates.
    pub sans: Vec<San>,
}

/// What one node needs from the PKI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeNeeds {
    /// Its hostname.
    pub hostname: String,
    /// Runs the control plane: gets the CA keys and the service-account key.
    pub control_plane: bool,
    /// Runs an etcd member.
    pub etcd: bool,
}

/// Every certificate a cluster needs, and where its API server is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The cluster's name (the kubeconfig's cluster name).
    pub cluster_name: String,
    /// The API server URL for clients: `https://<endpoint address>:<port>`.
    pub server: String,
    /// Each node, in file order.
    pub nodes: Vec<NodeNeeds>,
    /// Each leaf certificate: per node in file order, then the admin certificate.
    pub leaves: Vec<LeafSpec>,
    /// How long a join credential is valid from when it is made: the install window
    /// (`os.install_timeout`) and an hour ([`crate::join::join_validity`]).
    pub join_validity: std::time::Duration,
}

/// The certificates `cluster` needs.
pub fn plan(cluster: &Cluster) -> Plan {
    let mut nodes = Vec::new();
    let mut leaves = Vec::new();
    for node in &cluster.nodes {
        let control_plane = node.has_role(Role::ControlPlane);
        let etcd = node.has_role(Role::Etcd);
        nodes.push(NodeNeeds {
            hostname: node.hostname.clone(),
            control_plane,
            etcd,
        });
        let leaf = |kind: LeafKind, cn: &str, orgs: &[&str], sans: Vec<San>| LeafSpec {
            id: LeafId {
                node: Some(node.hostname.clone()),
                kind,
            },
            common_name: cn.to_string(),
            organizations: orgs.iter().map(|o| o.to_string()).collect(),
            sans,
        };
        if control_plane {
            leaves.push(leaf(
                LeafKind::ApiServer,
                "kube-apiserver",
                &[],
                apiserver_sans(cluster, node),
            ));
            leaves.push(leaf(
                LeafKind::ApiServerKubeletClient,
                "kube-apiserver-kubelet-client",
                &["kubeadm:cluster-admins"],
                Vec::new(),
            ));
            leaves.push(leaf(
                LeafKind::ApiServerEtcdClient,
                "kube-apiserver-etcd-client",
                &[],
                Vec::new(),
            ));
            leaves.push(leaf(
                LeafKind::FrontProxyClient,
                "front-proxy-client",
                &[],
                Vec::new(),
            ));
        }
        if etcd {
            let sans = etcd_sans(cluster, node);
            leaves.push(leaf(
                LeafKind::EtcdServer,
                &node.hostname,
                &[],
                sans.clone(),
            ));
            leaves.push(leaf(LeafKind::EtcdPeer, &node.hostname, &[], sans));
            leaves.push(leaf(
                LeafKind::EtcdHealthcheckClient,
                "kube-etcd-healthcheck-client",
                &[],
                Vec::new(),
            ));
        }
        leaves.push(leaf(
            LeafKind::Kubelet,
            &format!("system:node:{}", node.hostname),
            &["system:nodes"],
            kubelet_sans(cluster, node),
        ));
    }
    leaves.push(LeafSpec {
        id: LeafId {
            node: None,
            kind: LeafKind::Admin,
        },
        common_name: "kubernetes-admin".into(),
        organizations: vec!["kubeadm:cluster-admins".into()],
        sans: Vec::new(),
    });
    let endpoint = &cluster.kubernetes.control_plane_endpoint;
    Plan {
        cluster_name: cluster.cluster.name.clone(),
        server: format!("https://{}:{}", endpoint.address, endpoint.port),
        nodes,
        leaves,
        join_validity: crate::join::join_validity(cluster.os.install_timeout),
    }
}

/// The first address of the service subnet: the `kubernetes` service's ClusterIP.
pub fn first_service_ip(cluster: &Cluster) -> Ipv4Addr {
    let net = u32::from(cluster.kubernetes.service_subnet.network());
    Ipv4Addr::from(net.saturating_add(1))
}

/// The names of a control-plane node's API server certificate: the node's hostname,
/// FQDN and address; `kubernetes`, `kubernetes.default`, `kubernetes.default.svc`,
/// `kubernetes.default.svc.cluster.local` and `kubernetes.default.svc.<domain>`;
/// `<api_name>.<domain>`; the control-plane endpoint's address (and, when the
/// endpoint is a node, that node's hostname and FQDN, which is how the endpoint may
/// be written in kubeadm's `controlPlaneEndpoint`); the first service address; and
/// every `kubernetes.extra_sans` entry.
pub fn apiserver_sans(cluster: &Cluster, node: &Node) -> Vec<San> {
    let domain = &cluster.cluster.domain;
    let k = &cluster.kubernetes;
    let mut names = vec![
        San::Dns(node.hostname.clone()),
        San::Dns(cluster.fqdn(node)),
        San::Dns("kubernetes".into()),
        San::Dns("kubernetes.default".into()),
        San::Dns("kubernetes.default.svc".into()),
        San::Dns("kubernetes.default.svc.cluster.local".into()),
        San::Dns(format!("kubernetes.default.svc.{domain}")),
        San::Dns(format!("{}.{domain}", k.api_name)),
    ];
    if let Some(host) = &k.control_plane_endpoint.node {
        names.push(San::Dns(host.clone()));
        names.push(San::Dns(format!("{host}.{domain}")));
    }
    names.push(San::Ip(IpAddr::V4(node.ip)));
    names.push(San::Ip(IpAddr::V4(k.control_plane_endpoint.address)));
    names.push(San::Ip(IpAddr::V4(first_service_ip(cluster))));
    names.extend(k.extra_sans.iter().map(|s| San::parse(s)));
    dedup(names)
}

/// The names of an etcd node's server and peer certificates: hostname, FQDN,
/// `localhost`, the node's address, `127.0.0.1` and `::1`.
pub fn etcd_sans(cluster: &Cluster, node: &Node) -> Vec<San> {
    dedup(vec![
        San::Dns(node.hostname.clone()),
        San::Dns(cluster.fqdn(node)),
        San::Dns("localhost".into()),
        San::Ip(IpAddr::V4(node.ip)),
        San::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        San::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
    ])
}

/// The names of a node's kubelet serving certificate: hostname, FQDN and address.
pub fn kubelet_sans(cluster: &Cluster, node: &Node) -> Vec<San> {
    dedup(vec![
        San::Dns(node.hostname.clone()),
        San::Dns(cluster.fqdn(node)),
        San::Ip(IpAddr::V4(node.ip)),
    ])
}

fn dedup(names: Vec<San>) -> Vec<San> {
    let mut out: Vec<San> = Vec::with_capacity(names.len());
    for name in names {
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const TEXT: &str = "\
cluster: {name: lab, domain: lab.test}
network: {interface: br0, server: 10.99.0.1, subnet: 10.99.0.0/24}
os: {version: 4081.2.0}
kubernetes: {version: v1.31.2, service_subnet: 10.100.0.0/16, extra_sans: ['*.apps.lab.test', 192.168.1.10, 10.99.0.11]}
access: {ssh_authorized_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExample me']}
nodes:
  - {mac: 52:54:00:99:00:01, hostname: cp1, ip: 10.99.0.11, roles: [control-plane]}
  - {mac: 52:54:00:99:00:02, hostname: cp2, ip: 10.99.0.12, roles: [control-plane]}
  - {mac: 52:54:00:99:00:03, hostname: w1, ip: 10.99.0.21}
";

    fn cluster() -> Cluster {
        let loaded =
            slipway_cluster::load_str("t.yaml", TEXT, Path::new("/"), &slipway_cluster::NoHost);
        assert!(
            !loaded.diagnostics.has_errors(),
            "{}",
            loaded.diagnostics.render(TEXT)
        );
        loaded.cluster.unwrap_or_else(|| panic!("no cluster"))
    }

    #[test]
    fn apiserver_names_of_a_second_control_plane_node() {
        let c = cluster();
        let sans: Vec<String> = apiserver_sans(&c, &c.nodes[1])
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            sans,
            [
                "DNS:cp2",
                "DNS:cp2.lab.test",
                "DNS:kubernetes",
                "DNS:kubernetes.default",
                "DNS:kubernetes.default.svc",
                "DNS:kubernetes.default.svc.cluster.local",
                "DNS:kubernetes.default.svc.lab.test",
                "DNS:api.lab.test",
                "DNS:cp1",
                "DNS:cp1.lab.test",
                "IP:10.99.0.12",
                "IP:10.99.0.11",
                "IP:10.100.0.1",
                "DNS:*.apps.lab.test",
                "IP:192.168.1.10",
            ]
        );
    }

    #[test]
    fn plan_gives_each_role_its_certificates() {
        let c = cluster();
        let p = plan(&c);
        assert_eq!(p.server, "https://10.99.0.11:6443");
        let of = |host: &str| -> Vec<&str> {
            p.leaves
                .iter()
                .filter(|l| l.id.node.as_deref() == Some(host))
                .map(|l| l.id.kind.base_name())
                .collect()
        };
        // stacked etcd: control-plane nodes run etcd when no node says etcd
        assert_eq!(
            of("cp1"),
            [
                "apiserver",
                "apiserver-kubelet-client",
                "apiserver-etcd-client",
                "front-proxy-client",
                "etcd/server",
                "etcd/peer",
                "etcd/healthcheck-client",
                "kubelet"
            ]
        );
        assert_eq!(of("w1"), ["kubelet"]);
        let last = p.leaves.last().map(|l| l.id.clone());
        assert_eq!(
            last,
            Some(LeafId {
                node: None,
                kind: LeafKind::Admin
            })
        );
        let kubelet = p
            .leaves
            .iter()
            .find(|l| l.id.kind == LeafKind::Kubelet && l.id.node.as_deref() == Some("w1"));
        assert_eq!(
            kubelet.map(|k| (k.common_name.as_str(), k.organizations.clone())),
            Some(("system:node:w1", vec!["system:nodes".to_string()]))
        );
    }

    #[test]
    fn first_service_address() {
        assert_eq!(first_service_ip(&cluster()), Ipv4Addr::new(10, 100, 0, 1));
    }
}
