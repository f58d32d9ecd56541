//! The cluster's pod network: the flannel or calico manifest slipway renders for the
//! cluster file (pod subnet, interface, MTU, images), which the init node applies once
//! its API server answers.
//!
//! Both are built as data from the upstream manifests' shape at the pinned version
//! (`kubernetes.cni_version`, defaults [`FLANNEL_VERSION`] and [`CALICO_VERSION`]):
//! the same objects, names and mounts, with the cluster's values where upstream asks
//! users to edit. Calico's CRDs are declared with open schemas
//! (`x-kubernetes-preserve-unknown-fields`): the API server stores calico's objects
//! without checking their fields, which calico itself validates.
//!
//! Images come from upstream (`docker.io/flannel/...`, `docker.io/calico/...`; the
//! nodes' containerd mirrors redirect them), or from `kubernetes.image_repository`
//! when the cluster file sets one of its own (`<repository>/flannel/flannel:TAG`).

use serde_json::{Value, json};
use slipway_cluster::{Cluster, CniManifest, NetworkPlugin};

pub use slipway_cluster::complete::{CALICO_VERSION, FLANNEL_VERSION};

/// The registry kubeadm takes its images from unless told otherwise.
const DEFAULT_REPOSITORY: &str = "registry.k8s.io";

/// The flannel CNI plugin binary's version for each flannel version slipway knows
/// (the `flannel-cni-plugin` image that ships with that flannel release).
fn flannel_cni_plugin(flannel: &str) -> &'static str {
    match flannel {
        "v0.25.7" => "v1.5.1-flannel3",
        "v0.26.0" => "v1.5.1-flannel3",
        _ => "v1.6.0-flannel1",
    }
}

/// What the init node applies for the cluster's pod network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Nothing: `network_plugin: none` and no manifest (the operator installs one).
    Nothing,
    /// slipway's rendering (`manifest` below), served at `/cni/<cluster>.yaml`.
    Rendered,
    /// The user's manifest from this URL.
    Url(String),
    /// The user's manifest file, served by slipway at `/cni/<cluster>.yaml`.
    File(std::path::PathBuf),
}

/// What `cluster` installs as its pod network.
pub fn plan(cluster: &Cluster) -> Plan {
    let k = &cluster.kubernetes;
    match (&k.cni.manifest, k.network_plugin) {
        (Some(CniManifest::Url(u)), _) => Plan::Url(u.clone()),
        (Some(CniManifest::File(p)), _) => Plan::File(p.clone()),
        (None, NetworkPlugin::Flannel | NetworkPlugin::Calico) => Plan::Rendered,
        (None, NetworkPlugin::None | NetworkPlugin::Cilium) => Plan::Nothing,
    }
}

/// The image `name:tag` of upstream `upstream/name`, or from the cluster's own
/// repository when it has one.
fn image(cluster: &Cluster, upstream: &str, name: &str, tag: &str) -> String {
    let repo = cluster.kubernetes.image_repository.trim_end_matches('/');
    if repo == DEFAULT_REPOSITORY {
        format!("{upstream}/{name}:{tag}")
    } else {
        format!("{repo}/{name}:{tag}")
    }
}

/// The rendered manifest (YAML documents) of `cluster`'s CNI, or `None` when slipway
/// renders none ([`plan`] is not [`Plan::Rendered`]).
pub fn manifest(cluster: &Cluster) -> Option<String> {
    if plan(cluster) != Plan::Rendered {
        return None;
    }
    let docs = match cluster.kubernetes.network_plugin {
        NetworkPlugin::Flannel => flannel(cluster),
        NetworkPlugin::Calico => calico(cluster),
        NetworkPlugin::None | NetworkPlugin::Cilium => return None,
    };
    let mut out = format!(
        "# slipway: {} {} for cluster {} (pods {})\n",
        cluster.kubernetes.network_plugin.as_str(),
        version(cluster),
        cluster.cluster.name,
        cluster.kubernetes.pod_subnet
    );
    for (i, d) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&slipway_cluster::emit::to_yaml(d));
    }
    Some(out)
}

/// The CNI version rendered (empty when none is).
pub fn version(cluster: &Cluster) -> &str {
    cluster
        .kubernetes
        .cni
        .version
        .as_deref()
        .unwrap_or_default()
}

fn host_path(name: &str, path: &str) -> Value {
    json!({"name": name, "hostPath": {"path": path}})
}

fn host_path_typed(name: &str, path: &str, kind: &str) -> Value {
    json!({"name": name, "hostPath": {"path": path, "type": kind}})
}

fn mount(name: &str, path: &str) -> Value {
    json!({"name": name, "mountPath": path})
}

fn field_env(name: &str, path: &str) -> Value {
    json!({"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}})
}

fn env(name: &str, value: impl Into<String>) -> Value {
    json!({"name": name, "value": value.into()})
}

fn linux_only() -> Value {
    json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]}
    ]}}})
}

/// flannel, as upstream's `kube-flannel.yml`: VXLAN, the kube subnet manager, pod
/// traffic over `cni_interface` or the interface holding the node's address.
fn flannel(cluster: &Cluster) -> Vec<Value> {
    let v = version(cluster);
    let labels = json!({"k8s-app": "flannel", "app": "flannel", "tier": "node"});
    let flannel = image(cluster, "docker.io/flannel", "flannel", v);
    let plugin = image(
        cluster,
        "docker.io/flannel",
        "flannel-cni-plugin",
        flannel_cni_plugin(v),
    );
    let iface = match &cluster.kubernetes.cni.interface {
        Some(i) => format!("--iface={i}"),
        // The pod IP of a host-network pod is the node's address: flannel takes the
        // interface that holds it.
        None => "--iface=$(POD_IP)".to_string(),
    };
    let cni_conf = json!({
        "name": "cbr0",
        "cniVersion": "0.3.1",
        "plugins": [
            {"type": "flannel", "delegate": {"hairpinMode": true, "isDefaultGateway": true}},
            {"type": "portmap", "capabilities": {"portMappings": true}}
        ]
    });
    let net_conf = json!({
        "Network": cluster.kubernetes.pod_subnet.to_string(),
        "EnableNFTables": false,
        "Backend": {"Type": "vxlan"}
    });
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default() + "\n";
    vec![
        json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "kube-flannel", "labels": {
                "k8s-app": "flannel",
                "pod-security.kubernetes.io/enforce": "privileged"
            }}
        }),
        json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "flannel", "namespace": "kube-flannel", "labels": {"k8s-app": "flannel"}}
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "flannel", "labels": {"k8s-app": "flannel"}},
            "rules": [
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
                {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": [""], "resources": ["nodes/status"], "verbs": ["patch"]}
            ]
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "flannel", "labels": {"k8s-app": "flannel"}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "flannel"},
            "subjects": [{"kind": "ServiceAccount", "name": "flannel", "namespace": "kube-flannel"}]
        }),
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "kube-flannel-cfg", "namespace": "kube-flannel", "labels": labels},
            "data": {"cni-conf.json": pretty(&cni_conf), "net-conf.json": pretty(&net_conf)}
        }),
        json!({
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "kube-flannel-ds", "namespace": "kube-flannel", "labels": labels},
            "spec": {
                "selector": {"matchLabels": {"app": "flannel"}},
                "template": {
                    "metadata": {"labels": {"app": "flannel", "tier": "node"}},
                    "spec": {
                        "affinity": linux_only(),
                        "hostNetwork": true,
                        "priorityClassName": "system-node-critical",
                        "tolerations": [{"operator": "Exists", "effect": "NoSchedule"}],
                        "serviceAccountName": "flannel",
                        "initContainers": [
                            {
                                "name": "install-cni-plugin",
                                "image": plugin,
                                "command": ["cp"],
                                "args": ["-f", "/flannel", "/opt/cni/bin/flannel"],
                                "volumeMounts": [mount("cni-plugin", "/opt/cni/bin")]
                            },
                            {
                                "name": "install-cni",
                                "image": flannel,
                                "command": ["cp"],
                                "args": ["-f", "/etc/kube-flannel/cni-conf.json", "/etc/cni/net.d/10-flannel.conflist"],
                                "volumeMounts": [mount("cni", "/etc/cni/net.d"), mount("flannel-cfg", "/etc/kube-flannel/")]
                            }
                        ],
                        "containers": [{
                            "name": "kube-flannel",
                            "image": flannel,
                            "command": ["/opt/bin/flanneld"],
                            "args": ["--ip-masq", "--kube-subnet-mgr", iface],
                            "resources": {"requests": {"cpu": "100m", "memory": "50Mi"}},
                            "securityContext": {"privileged": false, "capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}},
                            "env": [
                                field_env("POD_NAME", "metadata.name"),
                                field_env("POD_NAMESPACE", "metadata.namespace"),
                                field_env("POD_IP", "status.podIP"),
                                env("EVENT_QUEUE_DEPTH", "5000")
                            ],
                            "volumeMounts": [
                                mount("run", "/run/flannel"),
                                mount("flannel-cfg", "/etc/kube-flannel/"),
                                mount("xtables-lock", "/run/xtables.lock")
                            ]
                        }],
                        "volumes": [
                            host_path("run", "/run/flannel"),
                            host_path("cni-plugin", "/opt/cni/bin"),
                            host_path("cni", "/etc/cni/net.d"),
                            {"name": "flannel-cfg", "configMap": {"name": "kube-flannel-cfg"}},
                            host_path_typed("xtables-lock", "/run/xtables.lock", "FileOrCreate")
                        ]
                    }
                }
            }
        }),
    ]
}

/// Calico's CRDs: (plural, kind, namespaced).
const CALICO_CRDS: &[(&str, &str, bool)] = &[
    ("bgpconfigurations", "BGPConfiguration", false),
    ("bgpfilters", "BGPFilter", false),
    ("bgppeers", "BGPPeer", false),
    ("blockaffinities", "BlockAffinity", false),
    ("caliconodestatuses", "CalicoNodeStatus", false),
    ("clusterinformations", "ClusterInformation", false),
    ("felixconfigurations", "FelixConfiguration", false),
    ("globalnetworkpolicies", "GlobalNetworkPolicy", false),
    ("globalnetworksets", "GlobalNetworkSet", false),
    ("hostendpoints", "HostEndpoint", false),
    ("ipamblocks", "IPAMBlock", false),
    ("ipamconfigs", "IPAMConfig", false),
    ("ipamhandles", "IPAMHandle", false),
    ("ippools", "IPPool", false),
    ("ipreservations", "IPReservation", false),
    (
        "kubecontrollersconfigurations",
        "KubeControllersConfiguration",
        false,
    ),
    ("networkpolicies", "NetworkPolicy", true),
    ("networksets", "NetworkSet", true),
    ("tiers", "Tier", false),
];

fn crd(group: &str, version: &str, plural: &str, kind: &str, namespaced: bool) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{group}")},
        "spec": {
            "group": group,
            "names": {
                "kind": kind,
                "listKind": format!("{kind}List"),
                "plural": plural,
                "singular": kind.to_lowercase()
            },
            "scope": if namespaced { "Namespaced" } else { "Cluster" },
            "versions": [{
                "name": version,
                "served": true,
                "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": true
                }}
            }]
        }
    })
}

fn service_account(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": "kube-system"}})
}

fn cluster_role(name: &str, rules: Value) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name},
        "rules": rules
    })
}

fn binding(name: &str) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": "kube-system"}]
    })
}

/// calico, as upstream's `calico.yaml` with the Kubernetes datastore, in VXLAN mode
/// (no BGP peering to set up on the site's routers): the pod subnet as the default
/// pool, the address found on `cni_interface` or within the nodes' subnet, the MTU
/// given or detected.
fn calico(cluster: &Cluster) -> Vec<Value> {
    let v = version(cluster);
    let k = &cluster.kubernetes;
    let cni = image(cluster, "docker.io/calico", "cni", v);
    let node = image(cluster, "docker.io/calico", "node", v);
    let controllers = image(cluster, "docker.io/calico", "kube-controllers", v);
    let mtu = k.cni.mtu.map_or_else(|| "0".to_string(), |m| m.to_string());
    let autodetect = match &k.cni.interface {
        Some(i) => format!("interface={i}"),
        None => format!("cidr={}", cluster.network.subnet),
    };
    let cni_network_config = json!({
        "name": "k8s-pod-network",
        "cniVersion": "0.3.1",
        "plugins": [
            {
                "type": "calico",
                "log_level": "info",
                "log_file_path": "/var/log/calico/cni/cni.log",
                "datastore_type": "kubernetes",
                "nodename": "__KUBERNETES_NODE_NAME__",
                "mtu": "__CNI_MTU__",
                "ipam": {"type": "calico-ipam"},
                "policy": {"type": "k8s"},
                "kubernetes": {"kubeconfig": "__KUBECONFIG_FILEPATH__"}
            },
            {"type": "portmap", "snat": true, "capabilities": {"portMappings": true}},
            {"type": "bandwidth", "capabilities": {"bandwidth": true}}
        ]
    });
    let from_config = |name: &str, key: &str| json!({"name": name, "valueFrom": {"configMapKeyRef": {"name": "calico-config", "key": key}}});
    let calico_group = "crd.projectcalico.org";
    let mut docs = vec![json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "calico-config", "namespace": "kube-system"},
        "data": {
            "typha_service_name": "none",
            "calico_backend": "vxlan",
            "veth_mtu": mtu,
            "cni_network_config": serde_json::to_string_pretty(&cni_network_config).unwrap_or_default() + "\n"
        }
    })];
    docs.extend(
        CALICO_CRDS
            .iter()
            .map(|(plural, kind, ns)| crd(calico_group, "v1", plural, kind, *ns)),
    );
    // Calico 3.29's policy tiers also watch the Kubernetes AdminNetworkPolicy API.
    docs.push(crd(
        "policy.networking.k8s.io",
        "v1alpha1",
        "adminnetworkpolicies",
        "AdminNetworkPolicy",
        false,
    ));
    let read = json!(["get", "list", "watch"]);
    docs.extend([
        service_account("calico-kube-controllers"),
        service_account("calico-node"),
        service_account("calico-cni-plugin"),
        cluster_role(
            "calico-kube-controllers",
            json!([
                {"apiGroups": [""], "resources": ["nodes"], "verbs": read},
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["crd.projectcalico.org"], "resources": ["ipreservations"], "verbs": ["list"]},
                {"apiGroups": ["crd.projectcalico.org"], "resources": ["blockaffinities", "ipamblocks", "ipamhandles", "tiers"], "verbs": ["get", "list", "create", "update", "delete", "watch"]},
                {"apiGroups": ["crd.projectcalico.org"], "resources": ["hostendpoints"], "verbs": ["get", "list", "create", "update", "delete"]},
                {"apiGroups": ["crd.projectcalico.org"], "resources": ["clusterinformations"], "verbs": ["get", "list", "create", "update", "watch"]},
                {"apiGroups": ["crd.projectcalico.org"], "resources": ["kubecontrollersconfigurations"], "verbs": ["get", "create", "list", "update", "watch"]}
            ]),
        ),
        binding("calico-kube-controllers"),
        cluster_role(
            "calico-cni-plugin",
            json!([
                {"apiGroups": [""], "resources": ["pods", "nodes", "namespaces"], "verbs": ["get"]},
                {"apiGroups": [""], "resources": ["pods/status"], "verbs": ["patch"]},
                {"apiGroups": ["crd.projectcalico.org"], "resources": ["blockaffinities", "ipamblocks", "ipamhandles", "clusterinformations", "ippools", "ipreservations", "ipamconfigs"], "verbs": ["get", "list", "create", "update", "delete"]}
            ]),
        ),
        binding("calico-cni-plugin"),
        cluster_role(
            "calico-node",
            json!([
                {"apiGroups": [""], "resources": ["serviceaccounts/token"], "resourceNames": ["calico-cni-plugin"], "verbs": ["create"]},
                {"apiGroups": [""], "resources": ["pods", "nodes", "namespaces", "configmaps"], "verbs": ["get"]},
                {"apiGroups": [""], "resources": ["endpoints", "services"], "verbs": ["watch", "list", "get"]},
                {"apiGroups": [""], "resources": ["nodes/status"], "verbs": ["patch", "update"]},
                {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": ["watch", "list"]},
                {"apiGroups": ["policy.networking.k8s.io"], "resources": ["adminnetworkpolicies"], "verbs": ["watch", "list"]},
                {"apiGroups": [""], "resources": ["pods", "namespaces", "serviceaccounts"], "verbs": ["list", "watch"]},
                {"apiGroups": [""], "resources": ["pods/status"], "verbs": ["patch"]},
                {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["watch", "list"]},
                {"apiGroups": ["crd.projectcalico.org"], "resources": ["globalfelixconfigs", "felixconfigurations", "bgppeers", "bgpfilters", "globalbgpconfigs", "bgpconfigurations", "ippools", "ipreservations", "ipamblocks", "globalnetworkpolicies", "globalnetworksets", "networkpolicies", "networksets", "clusterinformations", "hostendpoints", "blockaffinities", "caliconodestatuses", "tiers"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["crd.projectcalico.org"], "resources": ["ippools", "felixconfigurations", "clusterinformations"], "verbs": ["create", "update"]},
                {"apiGroups": ["crd.projectcalico.org"], "resources": ["caliconodestatuses"], "verbs": ["update"]},
                {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["crd.projectcalico.org"], "resources": ["bgpconfigurations", "bgppeers"], "verbs": ["create", "update"]},
                {"apiGroups": ["crd.projectcalico.org"], "resources": ["blockaffinities", "ipamblocks", "ipamhandles"], "verbs": ["get", "list", "create", "update", "delete"]},
                {"apiGroups": ["crd.projectcalico.org"], "resources": ["ipamconfigs"], "verbs": ["get", "create"]},
                {"apiGroups": ["crd.projectcalico.org"], "resources": ["blockaffinities"], "verbs": ["watch"]},
                {"apiGroups": ["apps"], "resources": ["daemonsets"], "verbs": ["get"]}
            ]),
        ),
        binding("calico-node"),
    ]);
    let cni_volumes = [
        mount("cni-bin-dir", "/host/opt/cni/bin"),
        mount("cni-net-dir", "/host/etc/cni/net.d"),
    ];
    docs.push(json!({
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "calico-node", "namespace": "kube-system", "labels": {"k8s-app": "calico-node"}},
        "spec": {
            "selector": {"matchLabels": {"k8s-app": "calico-node"}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": {"k8s-app": "calico-node"}},
                "spec": {
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "hostNetwork": true,
                    "tolerations": [
                        {"effect": "NoSchedule", "operator": "Exists"},
                        {"key": "CriticalAddonsOnly", "operator": "Exists"},
                        {"effect": "NoExecute", "operator": "Exists"}
                    ],
                    "serviceAccountName": "calico-node",
                    "terminationGracePeriodSeconds": 0,
                    "priorityClassName": "system-node-critical",
                    "initContainers": [
                        {
                            "name": "upgrade-ipam",
                            "image": cni,
                            "command": ["/opt/cni/bin/calico-ipam", "-upgrade"],
                            "env": [field_env("KUBERNETES_NODE_NAME", "spec.nodeName"), from_config("CALICO_NETWORKING_BACKEND", "calico_backend")],
                            "volumeMounts": [mount("host-local-net-dir", "/var/lib/cni/networks"), mount("cni-bin-dir", "/host/opt/cni/bin")],
                            "securityContext": {"privileged": true}
                        },
                        {
                            "name": "install-cni",
                            "image": cni,
                            "command": ["/opt/cni/bin/install"],
                            "env": [
                                env("CNI_CONF_NAME", "10-calico.conflist"),
                                from_config("CNI_NETWORK_CONFIG", "cni_network_config"),
                                field_env("KUBERNETES_NODE_NAME", "spec.nodeName"),
                                from_config("CNI_MTU", "veth_mtu"),
                                env("SLEEP", "false")
                            ],
                            "volumeMounts": cni_volumes,
                            "securityContext": {"privileged": true}
                        },
                        {
                            "name": "mount-bpffs",
                            "image": node,
                            "command": ["calico-node", "-init", "-best-effort"],
                            "volumeMounts": [
                                mount("sys-fs", "/sys/fs"),
                                {"name": "bpffs", "mountPath": "/sys/fs/bpf", "mountPropagation": "Bidirectional"},
                                mount("nodeproc", "/nodeproc")
                            ],
                            "securityContext": {"privileged": true}
                        }
                    ],
                    "containers": [{
                        "name": "calico-node",
                        "image": node,
                        "envFrom": [{"configMapRef": {"name": "kubernetes-services-endpoint", "optional": true}}],
                        "env": [
                            env("DATASTORE_TYPE", "kubernetes"),
                            env("WAIT_FOR_DATASTORE", "true"),
                            field_env("NODENAME", "spec.nodeName"),
                            from_config("CALICO_NETWORKING_BACKEND", "calico_backend"),
                            env("CLUSTER_TYPE", "k8s"),
                            env("IP", "autodetect"),
                            env("IP_AUTODETECTION_METHOD", autodetect),
                            env("CALICO_IPV4POOL_CIDR", k.pod_subnet.to_string()),
                            env("CALICO_IPV4POOL_IPIP", "Never"),
                            env("CALICO_IPV4POOL_VXLAN", "Always"),
                            env("CALICO_IPV6POOL_VXLAN", "Never"),
                            from_config("FELIX_IPINIPMTU", "veth_mtu"),
                            from_config("FELIX_VXLANMTU", "veth_mtu"),
                            from_config("FELIX_WIREGUARDMTU", "veth_mtu"),
                            env("CALICO_DISABLE_FILE_LOGGING", "true"),
                            env("FELIX_DEFAULTENDPOINTTOHOSTACTION", "ACCEPT"),
                            env("FELIX_IPV6SUPPORT", "false"),
                            env("FELIX_HEALTHENABLED", "true")
                        ],
                        "securityContext": {"privileged": true},
                        "resources": {"requests": {"cpu": "250m"}},
                        "lifecycle": {"preStop": {"exec": {"command": ["/bin/calico-node", "-shutdown"]}}},
                        "livenessProbe": {
                            "exec": {"command": ["/bin/calico-node", "-felix-live"]},
                            "periodSeconds": 10, "initialDelaySeconds": 10, "failureThreshold": 6, "timeoutSeconds": 10
                        },
                        "readinessProbe": {
                            "exec": {"command": ["/bin/calico-node", "-felix-ready"]},
                            "periodSeconds": 10, "timeoutSeconds": 10
                        },
                        "volumeMounts": [
                            mount("cni-net-dir", "/host/etc/cni/net.d"),
                            {"name": "lib-modules", "mountPath": "/lib/modules", "readOnly": true},
                            mount("xtables-lock", "/run/xtables.lock"),
                            mount("var-run-calico", "/var/run/calico"),
                            mount("var-lib-calico", "/var/lib/calico"),
                            mount("policysync", "/var/run/nodeagent"),
                            mount("bpffs", "/sys/fs/bpf"),
                            {"name": "cni-log-dir", "mountPath": "/var/log/calico/cni", "readOnly": true}
                        ]
                    }],
                    "volumes": [
                        host_path("lib-modules", "/lib/modules"),
                        host_path_typed("var-run-calico", "/var/run/calico", "DirectoryOrCreate"),
                        host_path_typed("var-lib-calico", "/var/lib/calico", "DirectoryOrCreate"),
                        host_path_typed("xtables-lock", "/run/xtables.lock", "FileOrCreate"),
                        host_path_typed("sys-fs", "/sys/fs/", "DirectoryOrCreate"),
                        host_path_typed("bpffs", "/sys/fs/bpf", "Directory"),
                        host_path("nodeproc", "/proc"),
                        host_path("cni-bin-dir", "/opt/cni/bin"),
                        host_path("cni-net-dir", "/etc/cni/net.d"),
                        host_path("cni-log-dir", "/var/log/calico/cni"),
                        host_path("host-local-net-dir", "/var/lib/cni/networks"),
                        host_path_typed("policysync", "/var/run/nodeagent", "DirectoryOrCreate")
                    ]
                }
            }
        }
    }));
    docs.push(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "calico-kube-controllers", "namespace": "kube-system", "labels": {"k8s-app": "calico-kube-controllers"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"k8s-app": "calico-kube-controllers"}},
            "strategy": {"type": "Recreate"},
            "template": {
                "metadata": {"name": "calico-kube-controllers", "namespace": "kube-system", "labels": {"k8s-app": "calico-kube-controllers"}},
                "spec": {
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "tolerations": [
                        {"key": "CriticalAddonsOnly", "operator": "Exists"},
                        {"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"},
                        {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
                    ],
                    "serviceAccountName": "calico-kube-controllers",
                    "priorityClassName": "system-cluster-critical",
                    "containers": [{
                        "name": "calico-kube-controllers",
                        "image": controllers,
                        "env": [env("ENABLED_CONTROLLERS", "node,loadbalancer"), env("DATASTORE_TYPE", "kubernetes")],
                        "livenessProbe": {
                            "exec": {"command": ["/usr/bin/check-status", "-l"]},
                            "periodSeconds": 10, "initialDelaySeconds": 10, "failureThreshold": 6, "timeoutSeconds": 10
                        },
                        "readinessProbe": {
                            "exec": {"command": ["/usr/bin/check-status", "-r"]},
                            "periodSeconds": 10
                        }
                    }]
                }
            }
        }
    }));
    docs
}

/// Every image the rendered CNI pulls (for `slipway mirror` and air-gapped sites).
pub fn images(cluster: &Cluster) -> Vec<String> {
    if plan(cluster) != Plan::Rendered {
        return Vec::new();
    }
    let v = version(cluster);
    match cluster.kubernetes.network_plugin {
        NetworkPlugin::Flannel => vec![
            image(cluster, "docker.io/flannel", "flannel", v),
            image(
                cluster,
                "docker.io/flannel",
                "flannel-cni-plugin",
                flannel_cni_plugin(v),
            ),
        ],
        NetworkPlugin::Calico => ["cni", "node", "kube-controllers"]
            .iter()
            .map(|n| image(cluster, "docker.io/calico", n, v))
            .collect(),
        NetworkPlugin::None | NetworkPlugin::Cilium => Vec::new(),
    }
}
