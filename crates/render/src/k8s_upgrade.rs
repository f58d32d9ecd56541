//! Kubernetes version upgrades in place: when `kubernetes.version` moves, which step it
//! is (a patch, or one minor version: kubeadm upgrades one minor at a time), the order
//! the nodes go in, and the script each node runs.
//!
//! **In place, not by re-imaging.** A Kubernetes upgrade changes three binaries (the
//! sysext image: kubeadm, kubelet, kubectl) and what `kubeadm upgrade` rewrites (static
//! pod manifests, the kubelet's config); it must keep etcd's data, the node's identity
//! and its running pods' volumes. Re-imaging a control-plane node would throw its etcd
//! member away and join a new one — possible, but slower and riskier than what kubeadm
//! is built for. So slipway serves each node a script ([`script`]) and runs the nodes
//! in kubeadm's order ([`sequence`]): the first control plane `kubeadm upgrade apply`,
//! the other control planes `kubeadm upgrade node`, then the workers `kubeadm upgrade
//! node`; each node restarts its kubelet on the new binary. Drain and uncordon are the
//! operator's hooks run by slipway around each node (slipway holds no cluster
//! credentials of its own), the same hooks as the OS rollout's.
//!
//! **Certificates stay slipway's.** `kubeadm upgrade` renews the certificates it
//! manages unless told not to; slipway issued them and tracks their expiry
//! (`slipway pki status`), so the scripts pass `--certificate-renewal=false`.
//!
//! **Skew.** Between the sysext swap and `kubeadm upgrade apply` on the first control
//! plane, the new kubelet binary is on disk but the running kubelet is the old one
//! (it is restarted last). A kubelet that restarts by itself in that window would run
//! one minor ahead of the API server, which Kubernetes' skew policy does not allow; the
//! window is the length of `kubeadm upgrade apply` on one node.

use slipway_cluster::{Cluster, Node};

use crate::kubeadm::{self, Join};
use crate::provision::sysext_name;
use crate::urls::Urls;

/// A Kubernetes version `vMAJOR.MINOR.PATCH` (a pre-release suffix is ignored for
/// ordering).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    /// 1.
    pub major: u32,
    /// The minor version.
    pub minor: u32,
    /// The patch version.
    pub patch: u32,
}

impl Version {
    /// `v1.31.2` (or `1.31.2`), `None` for anything else.
    pub fn parse(s: &str) -> Option<Version> {
        let core = s.strip_prefix('v').unwrap_or(s);
        let core = core.split(['-', '+']).next()?;
        let mut it = core.split('.').map(|p| p.parse::<u32>().ok());
        let v = Version {
            major: it.next()??,
            minor: it.next()??,
            patch: it.next()??,
        };
        it.next().is_none().then_some(v)
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// An upgrade kubeadm can make in one go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// What the nodes run now.
    pub from: Version,
    /// What the cluster file asks for.
    pub to: Version,
}

impl Step {
    /// Whether only the patch version changes.
    pub fn is_patch(&self) -> bool {
        self.from.minor == self.to.minor
    }
}

/// Why a version change is not an upgrade slipway makes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// One of the two is not a version.
    #[error("`{0}` is not a Kubernetes version like v1.31.2")]
    NotAVersion(String),
    /// Nothing changes.
    #[error("the nodes already run {0}")]
    Same(Version),
    /// A downgrade (kubeadm does not downgrade).
    #[error("{to} is older than {from}, which the nodes run: kubeadm does not downgrade")]
    Downgrade {
        /// Running.
        from: Version,
        /// Asked for.
        to: Version,
    },
    /// More than one minor version at once.
    #[error(
        "{from} to {to} skips {skipped}: kubeadm upgrades one minor version at a time; set kubernetes.version to a v{}.{}.x first, let it roll out, then go on",
        skipped.major, skipped.minor
    )]
    SkipsMinor {
        /// Running.
        from: Version,
        /// Asked for.
        to: Version,
        /// The first minor version skipped (`vX.Y.0`).
        skipped: Version,
    },
    /// Another major version.
    #[error("{from} to {to} changes the major version")]
    Major {
        /// Running.
        from: Version,
        /// Asked for.
        to: Version,
    },
}

/// The upgrade from `from` (what the nodes run) to `to` (the cluster file's
/// `kubernetes.version`): a patch or exactly one minor version up.
pub fn step(from: &str, to: &str) -> Result<Step, StepError> {
    let f = Version::parse(from).ok_or_else(|| StepError::NotAVersion(from.into()))?;
    let t = Version::parse(to).ok_or_else(|| StepError::NotAVersion(to.into()))?;
    if f.major != t.major {
        return Err(StepError::Major { from: f, to: t });
    }
    if t == f {
        return Err(StepError::Same(f));
    }
    if t < f {
        return Err(StepError::Downgrade { from: f, to: t });
    }
    if t.minor > f.minor + 1 {
        return Err(StepError::SkipsMinor {
            from: f,
            to: t,
            skipped: Version {
                major: f.major,
                minor: f.minor + 1,
                patch: 0,
            },
        });
    }
    Ok(Step { from: f, to: t })
}

/// What `kubeadm upgrade` does on a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `kubeadm upgrade apply`: the first control plane (the cluster's configuration,
    /// its own static pods, CoreDNS and kube-proxy).
    Apply,
    /// `kubeadm upgrade node` on another control plane (its static pods and kubelet
    /// config).
    ControlPlane,
    /// `kubeadm upgrade node` on a worker (its kubelet config).
    Worker,
}

/// One node's place in the upgrade.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeUpgrade<'a> {
    /// The node.
    pub node: &'a Node,
    /// What kubeadm does there.
    pub action: Action,
}

/// The nodes in the order kubeadm requires: the init node (`apply`), the other control
/// planes in file order, then the workers in file order. The caller walks it one
/// control plane at a time and workers in waves.
pub fn sequence(cluster: &Cluster) -> Vec<NodeUpgrade<'_>> {
    let mut out: Vec<NodeUpgrade<'_>> = cluster
        .nodes
        .iter()
        .map(|node| NodeUpgrade {
            node,
            action: match kubeadm::join_kind(cluster, node) {
                Join::Init => Action::Apply,
                Join::ControlPlane => Action::ControlPlane,
                Join::Worker => Action::Worker,
            },
        })
        .collect();
    // A stable sort keeps file order within each kind.
    out.sort_by_key(|u| match u.action {
        Action::Apply => 0,
        Action::ControlPlane => 1,
        Action::Worker => 2,
    });
    out
}

/// [`sequence`] cut into the groups that run at once: the first control plane alone,
/// then each other control plane alone, then the workers in waves of at most
/// `max_workers` (at least 1). A group starts only when the one before it succeeded.
pub fn waves(cluster: &Cluster, max_workers: usize) -> Vec<Vec<NodeUpgrade<'_>>> {
    let mut out: Vec<Vec<NodeUpgrade<'_>>> = Vec::new();
    for u in sequence(cluster) {
        match (u.action, out.last_mut()) {
            (Action::Worker, Some(last))
                if last.len() < max_workers.max(1)
                    && last.iter().all(|w| w.action == Action::Worker) =>
            {
                last.push(u);
            }
            _ => out.push(vec![u]),
        }
    }
    out
}

/// Where a node records that it reached a version (the script does nothing when it is
/// there: a re-run, or a node re-imaged at the new version).
pub fn marker(to: &Version) -> String {
    format!("/var/lib/slipway/kubernetes-{to}.upgraded")
}

/// Where the script is put on the node.
pub const SCRIPT_PATH: &str = "/opt/slipway/kubernetes-upgrade.sh";

/// The unit that runs [`SCRIPT_PATH`] once per version.
pub const UNIT: &str = "slipway-kubernetes-upgrade.service";

/// The script `node` runs for `step` (bash). `sysext_sha256` is the new sysext image's
/// SHA-256 from the mirror's verified `SHA256SUMS`: the node checks what it downloaded
/// against it (without it, the download is trusted as the sysext unit trusts it).
pub fn script(
    cluster: &Cluster,
    node: &Node,
    step: &Step,
    urls: &Urls,
    sysext_sha256: Option<&str>,
) -> String {
    let action = sequence(cluster)
        .into_iter()
        .find(|u| u.node.mac == node.mac)
        .map_or(Action::Worker, |u| u.action);
    let (what, kubeadm) = match action {
        Action::Apply => (
            "the first control plane: kubeadm upgrade apply",
            "kubeadm upgrade plan \"$to\"\n\
             kubeadm upgrade apply --yes --certificate-renewal=false \"$to\"\n"
                .to_string(),
        ),
        Action::ControlPlane => (
            "another control plane: kubeadm upgrade node",
            "kubeadm upgrade node --certificate-renewal=false\n".to_string(),
        ),
        Action::Worker => (
            "a worker: kubeadm upgrade node",
            "kubeadm upgrade node --certificate-renewal=false\n".to_string(),
        ),
    };
    let image = sysext_name(cluster);
    let url = format!("{}/extensions/{image}", urls.assets());
    let check = match sysext_sha256 {
        Some(sum) => format!("echo \"{sum}  $dir/$image.part\" | sha256sum --check --quiet -\n"),
        None => "# (no SHA-256 known for it: trusted as the mirror serves it)\n".to_string(),
    };
    let kind = if step.is_patch() { "patch" } else { "minor" };
    format!(
        "#!/bin/bash\n\
         # slipway: Kubernetes {from} -> {to} ({kind} upgrade) on {host}, {what}.\n\
         # kubeadm's order: the first control plane, then the other control planes, then\n\
         # the workers; slipway runs one node at a time between its drain and uncordon hooks.\n\
         set -euo pipefail\n\
         from={from}\n\
         to={to}\n\
         image={image}\n\
         dir=/opt/extensions/kubernetes\n\
         done={marker}\n\
         if [ -e \"$done\" ]; then echo \"slipway: already upgraded to $to\"; exit 0; fi\n\
         \n\
         # 1. The new kubeadm, kubelet and kubectl: the sysext image of $to from slipway.\n\
         mkdir -p \"$dir\" /etc/extensions \"$(dirname \"$done\")\"\n\
         curl -fsSL --retry 10 -o \"$dir/$image.part\" {url}\n\
         {check}\
         mv -f \"$dir/$image.part\" \"$dir/$image\"\n\
         ln -sf \"$dir/$image\" /etc/extensions/kubernetes.raw\n\
         systemd-sysext refresh\n\
         got=$(kubeadm version -o short)\n\
         [ \"$got\" = \"$to\" ] || {{ echo \"slipway: kubeadm is $got after the sysext refresh, not $to\" >&2; exit 1; }}\n\
         \n\
         # 2. kubeadm (the certificates stay slipway's: no renewal).\n\
         {kubeadm}\
         \n\
         # 3. The kubelet on its new binary.\n\
         systemctl daemon-reload\n\
         systemctl restart kubelet\n\
         touch \"$done\"\n\
         echo \"slipway: $(hostname) upgraded from $from to $to\"\n",
        from = step.from,
        to = step.to,
        host = node.hostname,
        marker = marker(&step.to),
    )
}

/// The unit that runs the script once (until the node has the marker of `step.to`),
/// after containerd is up; the script's output goes to the journal.
pub fn unit(step: &Step) -> String {
    format!(
        "# slipway: the Kubernetes upgrade to {to} ({SCRIPT_PATH})\n\
         [Unit]\n\
         Description=slipway: Kubernetes upgrade to {to}\n\
         Wants=network-online.target\n\
         After=network-online.target containerd.service\n\
         ConditionPathExists=!{marker}\n\n\
         [Service]\n\
         Type=oneshot\n\
         ExecStart={SCRIPT_PATH}\n\
         TimeoutStartSec=30min\n",
        to = step.to,
        marker = marker(&step.to),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_order() {
        assert_eq!(
            Version::parse("v1.31.2"),
            Some(Version {
                major: 1,
                minor: 31,
                patch: 2
            })
        );
        assert_eq!(Version::parse("1.31.2-rc.1").map(|v| v.patch), Some(2));
        for bad in ["v1.31", "v1.31.2.3", "vx.1.2", "", "v1..2"] {
            assert_eq!(Version::parse(bad), None, "{bad}");
        }
        assert!(Version::parse("v1.31.10") > Version::parse("v1.31.9"));
    }

    #[test]
    fn control_planes_go_alone_and_workers_in_waves() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
        let text = std::fs::read_to_string(path.join("ha.yaml")).expect("examples/ha.yaml");
        let loaded = slipway_cluster::load_str("ha.yaml", &text, &path, &slipway_cluster::NoHost);
        let c = loaded.valid().expect("ha.yaml is valid");
        let workers = c
            .nodes
            .iter()
            .filter(|n| matches!(kubeadm::join_kind(c, n), Join::Worker))
            .count();
        assert!(workers >= 2, "the example needs two workers for this test");
        for max in [0, 1, 2, 100] {
            let w = waves(c, max);
            let flat: Vec<_> = w
                .iter()
                .flatten()
                .map(|u| u.node.hostname.clone())
                .collect();
            let seq: Vec<_> = sequence(c)
                .iter()
                .map(|u| u.node.hostname.clone())
                .collect();
            assert_eq!(flat, seq, "waves keep kubeadm's order");
            assert_eq!(w[0].len(), 1);
            assert_eq!(w[0][0].action, Action::Apply);
            for g in &w {
                let cps = g.iter().filter(|u| u.action != Action::Worker).count();
                assert!(cps == 0 || g.len() == 1, "a control plane goes alone");
                assert!(g.len() <= max.max(1), "{max}: a wave of {}", g.len());
            }
            let worker_waves = w.iter().filter(|g| g[0].action == Action::Worker).count();
            assert_eq!(worker_waves, workers.div_ceil(max.max(1)), "{max}");
        }
    }

    #[test]
    fn one_minor_or_a_patch_at_a_time() {
        assert!(step("v1.30.6", "v1.31.2").is_ok_and(|s| !s.is_patch()));
        assert!(step("v1.31.1", "v1.31.2").is_ok_and(|s| s.is_patch()));
        // Two minors: refused, naming the minor to go through.
        let e = step("v1.29.3", "v1.31.2").expect_err("skips 1.30");
        assert!(
            matches!(e, StepError::SkipsMinor { skipped, .. } if skipped.minor == 30),
            "{e}"
        );
        assert!(e.to_string().contains("v1.30.x first"), "{e}");
        assert!(matches!(
            step("v1.31.2", "v1.30.9"),
            Err(StepError::Downgrade { .. })
        ));
        assert!(matches!(
            step("v1.31.2", "v1.31.2"),
            Err(StepError::Same(_))
        ));
        assert!(matches!(
            step("v1.31.2", "v2.0.0"),
            Err(StepError::Major { .. })
        ));
        assert!(matches!(
            step("latest", "v1.31.2"),
            Err(StepError::NotAVersion(_))
        ));
    }
}
