//! What a node's installed OS is given on first boot, as neutral data: files, systemd
//! units, the user. [`crate::cloudconfig`] and [`crate::ignition`] write the same
//! [`Provision`] in their formats, so both formats give a node the same system.

use std::fmt::Write as _;

use slipway_cluster::{Arch, Cluster, Node};

use crate::RenderError;
use crate::secrets::Secrets;
use crate::urls::Urls;
use crate::{cni, kubeadm, kubevip};

/// A file to write.
#[derive(Clone, PartialEq, Eq)]
pub struct File {
    /// Absolute path.
    pub path: String,
    /// Text written to the file.
    pub contents: String,
    /// Unix mode.
    pub mode: u32,
}

impl std::fmt::Debug for File {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "File({}, {:o}, {} bytes)",
            self.path,
            self.mode,
            self.contents.len()
        )
    }
}

/// A systemd unit to install and enable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// Unit name.
    pub name: String,
    /// Unit file contents.
    pub contents: String,
}

/// Everything a node's installed system gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provision {
    /// The node's hostname (short, not the FQDN).
    pub hostname: String,
    /// Login user.
    pub user: String,
    /// Its SSH keys.
    pub ssh_authorized_keys: Vec<String>,
    /// Its password hash.
    pub password_hash: Option<String>,
    /// Files, secrets included.
    pub files: Vec<File>,
    /// Units to enable (and start on first boot).
    pub units: Vec<Unit>,
}

/// The systemd-networkd unit giving the node its static address on the NIC it booted
/// from (matched by MAC).
pub fn network_unit(cluster: &Cluster, node: &Node) -> String {
    let net = &cluster.network;
    let mut s = String::new();
    let _ = writeln!(s, "# slipway: static address of {}", node.hostname);
    let _ = writeln!(s, "[Match]\nMACAddress={}\n", node.mac);
    let _ = writeln!(
        s,
        "[Network]\nAddress={}/{}",
        node.ip,
        net.subnet.prefix_len()
    );
    if let Some(gw) = net.gateway {
        let _ = writeln!(s, "Gateway={gw}");
    }
    for dns in &net.dns {
        let _ = writeln!(s, "DNS={dns}");
    }
    let _ = writeln!(s, "Domains={}", cluster.cluster.domain);
    for ntp in &net.ntp {
        let _ = writeln!(s, "NTP={ntp}");
    }
    s
}

/// File name of the Kubernetes sysext image in the mirror (`extensions/...`), in the
/// naming of Flatcar's sysext-bakery.
pub fn sysext_name(cluster: &Cluster) -> String {
    let arch = match cluster.os.arch {
        Arch::Amd64 => "x86-64",
        Arch::Arm64 => "arm64",
    };
    format!("kubernetes-{}-{arch}.raw", cluster.kubernetes.version)
}

fn sysext_unit(cluster: &Cluster, urls: &Urls) -> String {
    let name = sysext_name(cluster);
    let url = format!("{}/extensions/{name}", urls.assets());
    format!(
        "# slipway: kubelet, kubeadm and kubectl as a systemd-sysext image from the mirror\n\
         [Unit]\n\
         Description=slipway: Kubernetes binaries (systemd-sysext)\n\
         Wants=network-online.target\n\
         After=network-online.target\n\
         ConditionPathExists=!/etc/extensions/kubernetes.raw\n\n\
         [Service]\n\
         Type=oneshot\n\
         RemainAfterExit=yes\n\
         Restart=on-failure\n\
         RestartSec=10\n\
         ExecStart=/usr/bin/mkdir -p /opt/extensions/kubernetes /etc/extensions\n\
         ExecStart=/usr/bin/curl -fsSL --retry 10 -o /opt/extensions/kubernetes/{name} {url}\n\
         ExecStart=/usr/bin/ln -sf /opt/extensions/kubernetes/{name} /etc/extensions/kubernetes.raw\n\
         ExecStart=/usr/bin/systemctl restart systemd-sysext\n\n\
         [Install]\n\
         WantedBy=multi-user.target\n"
    )
}

fn kubeadm_unit(cluster: &Cluster, node: &Node) -> String {
    let join = kubeadm::join_kind(cluster, node);
    let cmd = kubeadm::command(join);
    // The join credential is of no use once the node has joined.
    let cleanup = if join == kubeadm::Join::Init {
        String::new()
    } else {
        format!(
            "ExecStartPost=/usr/bin/rm -f {}\n",
            kubeadm::JOIN_KUBECONFIG_PATH
        )
    };
    format!(
        "# slipway: join the Kubernetes cluster\n\
         [Unit]\n\
         Description=slipway: {cmd}\n\
         Wants=network-online.target\n\
         After=network-online.target containerd.service slipway-sysext.service\n\
         Requires=slipway-sysext.service\n\
         ConditionPathExists=!/etc/kubernetes/kubelet.conf\n\n\
         [Service]\n\
         Type=oneshot\n\
         RemainAfterExit=yes\n\
         Restart=on-failure\n\
         RestartSec=20\n\
         ExecStartPre=/usr/bin/systemctl enable kubelet.service\n\
         ExecStart=/usr/bin/env {cmd}\n\
         {cleanup}\n\
         [Install]\n\
         WantedBy=multi-user.target\n"
    )
}

/// The unit name that applies the pod network on the init node.
pub const CNI_UNIT: &str = "slipway-cni.service";

/// The init node's unit that applies the pod network once the API server answers
/// (retried until it does; `kubectl apply` is idempotent), or `None` when the cluster
/// installs none.
fn cni_unit(cluster: &Cluster, urls: &Urls) -> Option<Unit> {
    let (what, url) = match cni::plan(cluster) {
        cni::Plan::Nothing => return None,
        cni::Plan::Rendered => (
            format!(
                "{} {}",
                cluster.kubernetes.network_plugin.as_str(),
                cni::version(cluster)
            ),
            urls.cni_manifest(),
        ),
        cni::Plan::File(_) => (
            "the cluster file's CNI manifest".into(),
            urls.cni_manifest(),
        ),
        cni::Plan::Url(u) => ("the cluster file's CNI manifest".into(), u),
    };
    let kubectl = "/usr/bin/env kubectl --kubeconfig /etc/kubernetes/admin.conf";
    Some(Unit {
        name: CNI_UNIT.into(),
        contents: format!(
            "# slipway: the pod network ({what}), applied once the API server answers\n\
             [Unit]\n\
             Description=slipway: install the pod network ({what})\n\
             Wants=network-online.target\n\
             After=network-online.target kubeadm.service\n\
             Requires=kubeadm.service\n\
             ConditionPathExists=!/var/lib/slipway/cni-applied\n\n\
             [Service]\n\
             Type=oneshot\n\
             RemainAfterExit=yes\n\
             Restart=on-failure\n\
             RestartSec=15\n\
             ExecStartPre={kubectl} get --raw /readyz\n\
             ExecStart=/usr/bin/curl -fsSL --retry 10 -o /etc/kubernetes/cni.yaml {url}\n\
             ExecStart={kubectl} apply -f /etc/kubernetes/cni.yaml\n\
             ExecStartPost=/usr/bin/mkdir -p /var/lib/slipway\n\
             ExecStartPost=/usr/bin/touch /var/lib/slipway/cni-applied\n\n\
             [Install]\n\
             WantedBy=multi-user.target\n"
        ),
    })
}

/// The pause (sandbox) image kubeadm expects for `version` (kubeadm's pin,
/// [`crate::images::kubeadm_pins`]), from the cluster's image repository (so an
/// air-gapped site never reaches for registry.k8s.io).
pub fn pause_image(cluster: &Cluster) -> String {
    let tag = crate::images::kubeadm_pins(&cluster.kubernetes.version).pause;
    format!("{}/pause:{tag}", cluster.kubernetes.image_repository)
}

/// containerd's configuration: the systemd cgroup driver the kubelet is set to, the
/// pause image from the cluster's repository, and registry mirrors read from
/// `/etc/containerd/certs.d`.
fn containerd_config(cluster: &Cluster) -> String {
    let cri = r#"plugins."io.containerd.grpc.v1.cri""#;
    [
        "# slipway: containerd for Kubernetes".to_string(),
        "version = 2".into(),
        String::new(),
        format!("[{cri}]"),
        format!("  sandbox_image = \"{}\"", pause_image(cluster)),
        String::new(),
        format!("[{cri}.containerd.runtimes.runc]"),
        "  runtime_type = \"io.containerd.runc.v2\"".into(),
        String::new(),
        format!("[{cri}.containerd.runtimes.runc.options]"),
        "  SystemdCgroup = true".into(),
        String::new(),
        format!("[{cri}.registry]"),
        "  config_path = \"/etc/containerd/certs.d\"".into(),
        String::new(),
    ]
    .join("\n")
}

/// `/etc/containerd/certs.d/<upstream>/hosts.toml`: containerd tries each host in
/// order (`mirrors`), then the upstream `server`. slipway's own registry, when it
/// serves images, is a plain-HTTP host first.
pub fn containerd_hosts(upstream: &str, mirrors: &[String]) -> String {
    let server = if upstream == "docker.io" {
        "https://registry-1.docker.io".to_string()
    } else {
        format!("https://{upstream}")
    };
    let mut s = format!("# slipway: mirrors for {upstream}\nserver = \"{server}\"\n");
    for m in mirrors {
        let _ = writeln!(
            s,
            "\n[host.\"{m}\"]\n  capabilities = [\"pull\", \"resolve\"]"
        );
    }
    s
}

/// The `hosts.toml` files of `cluster`'s nodes, by upstream registry: the
/// `kubernetes.registry_mirrors`, and with `kubernetes.serve_images` slipway first
/// (`urls.base()`) for every registry the cluster's images come from.
pub fn containerd_hosts_files(cluster: &Cluster, urls: &Urls) -> Vec<(String, String)> {
    let k = &cluster.kubernetes;
    let mut hosts: std::collections::BTreeMap<String, Vec<String>> = k.registry_mirrors.clone();
    if k.images.serve {
        for registry in crate::images::registries(cluster) {
            hosts
                .entry(registry)
                .or_default()
                .insert(0, urls.base().to_string());
        }
    }
    hosts
        .iter()
        .map(|(upstream, mirrors)| {
            (
                format!("/etc/containerd/certs.d/{upstream}/hosts.toml"),
                containerd_hosts(upstream, mirrors),
            )
        })
        .collect()
}

/// The unit that tells slipway the installed system came up (`ready`), once: only after
/// the units a node needs are up (containerd, the Kubernetes sysext, kubeadm). Ordered
/// after them (a oneshot is "up" once it has finished) and requiring slipway's own units,
/// so a kubeadm that never succeeds leaves the node short of `ready`. containerd is only
/// wanted: an OS without the unit still reports. (Before, under a real systemd the report
/// went out as soon as the network was online, while kubeadm was still running.)
fn ready_unit(node: &Node, urls: &Urls, secrets: &dyn Secrets) -> Option<Unit> {
    let (_, ready) = secrets.report_tokens(node)?;
    let url = format!("{}/ready", urls.report(node.mac, &ready));
    Some(Unit {
        name: "slipway-ready.service".into(),
        contents: format!(
            "# slipway: report the first boot of the installed system\n\
             [Unit]\n\
             Description=slipway: report ready\n\
             Wants=network-online.target containerd.service\n\
             Requires=slipway-sysext.service kubeadm.service\n\
             After=network-online.target containerd.service slipway-sysext.service kubeadm.service\n\
             ConditionPathExists=!/var/lib/slipway/ready\n\n\
             [Service]\n\
             Type=oneshot\n\
             Restart=on-failure\n\
             RestartSec=10\n\
             ExecStart=/usr/bin/curl -fsS --retry 5 -X POST {url}\n\
             ExecStartPost=/usr/bin/mkdir -p /var/lib/slipway\n\
             ExecStartPost=/usr/bin/touch /var/lib/slipway/ready\n\n\
             [Install]\n\
             WantedBy=multi-user.target\n"
        ),
    })
}

/// The installed system of `node`.
pub fn provision(
    cluster: &Cluster,
    node: &Node,
    urls: &Urls,
    secrets: &dyn Secrets,
) -> Result<Provision, RenderError> {
    let mut files = vec![
        File {
            path: "/etc/hostname".into(),
            contents: format!("{}\n", node.hostname),
            mode: 0o644,
        },
        File {
            path: "/etc/systemd/network/00-slipway.network".into(),
            contents: network_unit(cluster, node),
            mode: 0o644,
        },
        File {
            path: kubeadm::CONFIG_PATH.into(),
            contents: kubeadm::yaml(cluster, node)?,
            mode: 0o600,
        },
    ];
    if kubeadm::join_kind(cluster, node) != kubeadm::Join::Init {
        files.push(File {
            path: kubeadm::JOIN_KUBECONFIG_PATH.into(),
            contents: secrets.join_kubeconfig(node).map_err(|reason| {
                RenderError::Secret(format!(
                    "the join credential of {}: {reason}",
                    node.hostname
                ))
            })?,
            mode: 0o600,
        });
    }
    if !cluster.network.ntp.is_empty() {
        files.push(File {
            path: "/etc/systemd/timesyncd.conf.d/slipway.conf".into(),
            contents: format!("[Time]\nNTP={}\n", cluster.network.ntp.join(" ")),
            mode: 0o644,
        });
    }
    files.push(File {
        path: "/etc/containerd/config.toml".into(),
        contents: containerd_config(cluster),
        mode: 0o644,
    });
    // Flatcar's containerd reads /usr/share/containerd/config.toml unless told otherwise.
    files.push(File {
        path: "/etc/systemd/system/containerd.service.d/10-slipway.conf".into(),
        contents: "[Service]\nEnvironment=CONTAINERD_CONFIG=/etc/containerd/config.toml\n".into(),
        mode: 0o644,
    });
    for (path, contents) in containerd_hosts_files(cluster, urls) {
        files.push(File {
            path,
            contents,
            mode: 0o644,
        });
    }
    for f in secrets.node_files(node) {
        files.push(File {
            path: f.path,
            contents: f.contents,
            mode: f.mode,
        });
    }
    let mut units: Vec<Unit> = ready_unit(node, urls, secrets)
        .into_iter()
        .chain(vec![
            Unit {
                name: "slipway-sysext.service".into(),
                contents: sysext_unit(cluster, urls),
            },
            Unit {
                name: "kubeadm.service".into(),
                contents: kubeadm_unit(cluster, node),
            },
        ])
        .collect();
    if kubevip::enabled(cluster) && node.has_role(slipway_cluster::Role::ControlPlane) {
        files.push(File {
            path: kubevip::TEMPLATE_PATH.into(),
            contents: kubevip::template(cluster, node),
            mode: 0o644,
        });
        files.push(File {
            path: kubevip::SCRIPT_PATH.into(),
            contents: kubevip::script(cluster, node),
            mode: 0o755,
        });
        units.push(Unit {
            name: kubevip::UNIT_NAME.into(),
            contents: kubevip::unit(cluster),
        });
    }
    let (update_files, update_units) = crate::os_update::provision(cluster, node, urls, secrets);
    files.extend(update_files);
    units.extend(update_units);
    if kubeadm::join_kind(cluster, node) == kubeadm::Join::Init
        && let Some(unit) = cni_unit(cluster, urls)
    {
        units.push(unit);
    }
    Ok(Provision {
        hostname: node.hostname.clone(),
        user: cluster.access.user.clone(),
        ssh_authorized_keys: cluster.access.ssh_authorized_keys.clone(),
        password_hash: cluster.access.password_hash.clone(),
        files,
        units,
    })
}
