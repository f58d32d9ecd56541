//! Every container image a cluster's nodes pull: kubeadm's control-plane images for
//! `kubernetes.version`, the rendered CNI's ([`crate::cni::images`]), kube-vip's when
//! the endpoint is a virtual IP ([`crate::kubevip::image`]), and the user's
//! `kubernetes.extra_images`. Pure: no I/O.
//!
//! kubeadm pins etcd, CoreDNS and pause per Kubernetes minor version in its source
//! (`cmd/kubeadm/app/constants/constants.go`: `SupportedEtcdVersion`,
//! `CoreDNSVersion`, `PauseVersion`, at each `release-1.x` branch). slipway keeps a
//! table of them ([`kubeadm_pins`]) rather than running kubeadm; since kubeadm's
//! patch releases sometimes move the etcd pin, slipway writes the table's etcd and
//! CoreDNS tags into the kubeadm config when it serves images
//! (`kubernetes.serve_images`), so the nodes pull exactly what was mirrored.

use slipway_cluster::Cluster;

/// The images kubeadm pins for one Kubernetes minor version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KubeadmPins {
    /// The sandbox image's tag (`pause`).
    pub pause: &'static str,
    /// The etcd image's tag.
    pub etcd: &'static str,
    /// The CoreDNS image's tag.
    pub coredns: &'static str,
}

/// kubeadm's pins per minor version, 1.27 to 1.35, from kubeadm's
/// `cmd/kubeadm/app/constants/constants.go` on each `release-1.<minor>` branch
/// (`PauseVersion`, `SupportedEtcdVersion[minor]`, `CoreDNSVersion`), as of the
/// branch's latest patch release when this table was written.
const PINS: [(u32, KubeadmPins); 9] = [
    (27, pins("3.9", "3.5.12-0", "v1.10.1")),
    (28, pins("3.9", "3.5.15-0", "v1.10.1")),
    (29, pins("3.9", "3.5.16-0", "v1.11.1")),
    (30, pins("3.9", "3.5.16-0", "v1.11.3")),
    (31, pins("3.10", "3.5.24-0", "v1.11.3")),
    (32, pins("3.10", "3.5.24-0", "v1.11.3")),
    (33, pins("3.10", "3.5.24-0", "v1.12.0")),
    (34, pins("3.10.1", "3.6.5-0", "v1.12.1")),
    (35, pins("3.10.1", "3.6.6-0", "v1.13.1")),
];

const fn pins(pause: &'static str, etcd: &'static str, coredns: &'static str) -> KubeadmPins {
    KubeadmPins {
        pause,
        etcd,
        coredns,
    }
}

/// The minor version of `version` (`v1.31.2` → 31).
pub fn minor(version: &str) -> Option<u32> {
    version
        .trim_start_matches('v')
        .split('.')
        .nth(1)
        .and_then(|m| m.split('-').next())
        .and_then(|m| m.parse().ok())
}

/// kubeadm's pins for `version` (`v1.31.2`); versions outside the table take the
/// nearest end of it (the cluster reader refuses them anyway).
pub fn kubeadm_pins(version: &str) -> KubeadmPins {
    let m = minor(version).unwrap_or(PINS[0].0);
    let first = PINS[0];
    let last = PINS[PINS.len() - 1];
    PINS.iter()
        .find(|(v, _)| *v == m)
        .map_or(if m < first.0 { first.1 } else { last.1 }, |(_, p)| *p)
}

/// kubeadm's images for `cluster` as kubeadm names them: the four control-plane
/// components at `kubernetes.version`, etcd, CoreDNS (`coredns/coredns` under
/// registry.k8s.io, `coredns` under another repository, as kubeadm does) and pause,
/// all from `kubernetes.image_repository`.
pub fn kubeadm_images(cluster: &Cluster) -> Vec<String> {
    let k = &cluster.kubernetes;
    let repo = k.image_repository.trim_end_matches('/');
    let p = kubeadm_pins(&k.version);
    let dns = if repo == "registry.k8s.io" {
        format!("{repo}/coredns/coredns:{}", p.coredns)
    } else {
        format!("{repo}/coredns:{}", p.coredns)
    };
    let mut out: Vec<String> = [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kube-proxy",
    ]
    .iter()
    .map(|c| format!("{repo}/{c}:{}", k.version))
    .collect();
    out.push(format!("{repo}/etcd:{}", p.etcd));
    out.push(dns);
    out.push(format!("{repo}/pause:{}", p.pause));
    out
}

/// Every image `cluster`'s nodes pull, as full references (`registry/repo:tag`),
/// sorted, each once: kubeadm's, the CNI's, kube-vip's (VIP endpoint) and
/// `kubernetes.extra_images`.
pub fn cluster_images(cluster: &Cluster) -> Vec<String> {
    let mut out = kubeadm_images(cluster);
    out.extend(crate::cni::images(cluster));
    if crate::kubevip::enabled(cluster) {
        out.push(crate::kubevip::image(cluster));
    }
    out.extend(cluster.kubernetes.images.extra.iter().cloned());
    out.sort();
    out.dedup();
    out
}

/// The registry host of a full reference (`registry.k8s.io/pause:3.10` →
/// `registry.k8s.io`).
pub fn registry_of(reference: &str) -> &str {
    reference.split('/').next().unwrap_or(reference)
}

/// The registries `cluster`'s images come from, sorted, each once: the hosts the
/// nodes' containerd is pointed at slipway for.
pub fn registries(cluster: &Cluster) -> Vec<String> {
    let mut out: Vec<String> = cluster_images(cluster)
        .iter()
        .map(|r| registry_of(r).to_string())
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_covers_every_minor_slipway_renders() {
        use slipway_cluster::complete::{MAX_K8S_MINOR, MIN_K8S_MINOR};
        for m in MIN_K8S_MINOR..=MAX_K8S_MINOR {
            assert!(
                PINS.iter().any(|(v, _)| *v == m),
                "kubeadm pins for 1.{m} are missing"
            );
        }
        assert_eq!(kubeadm_pins("v1.31.2").pause, "3.10");
        assert_eq!(kubeadm_pins("v1.34.0").etcd, "3.6.5-0");
        assert_eq!(kubeadm_pins("v1.27.0-rc.1").coredns, "v1.10.1");
        assert_eq!(minor("v1.30.0-alpha.1"), Some(30));
    }

    #[test]
    fn registries_are_the_first_component() {
        assert_eq!(registry_of("registry.k8s.io/pause:3.10"), "registry.k8s.io");
        assert_eq!(registry_of("127.0.0.1:5000/a/b:1"), "127.0.0.1:5000");
    }
}
