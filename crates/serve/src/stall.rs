//! The stall policy of `serve`: a machine that stops making progress for
//! `os.install_timeout` in any state before `ready` (it got DHCP and never fetched its
//! boot script, it boots or installs, or it installed and never came up) is retried
//! through its BMC (PXE once, power off and on) when it has one, up to
//! [`slipway_store::tracker::MAX_BMC_RETRIES`] times, else, or when the retries too
//! stall, marked failed with the reason.
//! [`find`] decides (and records the decision in the machine's lifecycle); [`watch`]
//! runs it every few seconds and carries retries out through a [`Retry`] it is given.

use std::sync::Arc;
use std::time::Duration;

use slipway_cluster::{Cluster, LeaseTime, MacAddr, Node};
use slipway_store::tracker::{Stalled, Tracker};

/// What to do about one stalled install.
#[derive(Debug, Clone, PartialEq)]
pub enum Stall {
    /// Power-cycle this node into the installer through its BMC.
    Retry(Box<Node>),
    /// It was marked failed.
    Failed(MacAddr),
}

/// Carries a retry out: PXE once and power the node off and on through its BMC;
/// returns what was done, or why it could not be.
pub type Retry = dyn Fn(&Node) -> Result<String, String> + Send + Sync;

/// The installs of `cluster` that stalled at `now`, each recorded in its lifecycle
/// (retried or timed out). None when `os.install_timeout` is infinite.
pub fn find(tracker: &Tracker, cluster: &Cluster, now: u64) -> Vec<Stall> {
    let timeout = cluster.os.install_timeout;
    if timeout == LeaseTime::Infinite {
        return Vec::new();
    }
    let has_bmc = |mac| cluster.node_by_mac(mac).is_some_and(|n| n.bmc.is_some());
    tracker
        .expire(now, u64::from(timeout.as_secs()), has_bmc)
        .into_iter()
        .filter_map(|s| match s {
            Stalled::Failed(mac) => Some(Stall::Failed(mac)),
            Stalled::Retry(mac) => cluster
                .node_by_mac(mac)
                .map(|n| Stall::Retry(Box::new(n.clone()))),
        })
        .collect()
}

/// How often [`watch`] looks for stalled installs.
pub const EVERY: Duration = Duration::from_secs(5);

/// Looks for stalled installs every [`EVERY`] in the cluster in force (`cluster_of`
/// what `current` gives), logs each, and runs `retry` for those to retry (on a blocking
/// thread: BMCs answer slowly). Runs until the task is dropped.
pub async fn watch<T>(
    current: impl Fn() -> T,
    cluster_of: impl Fn(&T) -> &Cluster,
    tracker: Arc<Tracker>,
    retry: Arc<Retry>,
) {
    let mut every = tokio::time::interval(EVERY);
    loop {
        every.tick().await;
        let config = current();
        let stalls = find(&tracker, cluster_of(&config), slipway_store::tracker::now());
        for stall in stalls {
            match stall {
                Stall::Failed(mac) => tracing::warn!(%mac, "install timed out"),
                Stall::Retry(node) => {
                    let retry = retry.clone();
                    tokio::task::spawn_blocking(move || match retry(&node) {
                        Ok(what) => {
                            tracing::warn!(host = node.hostname, mac = %node.mac, what, "install stalled: retried through the BMC")
                        }
                        Err(e) => {
                            tracing::error!(host = node.hostname, mac = %node.mac, "install stalled; the BMC retry failed: {e}")
                        }
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slipway_lifecycle::Input;
    use slipway_store::MemoryStore;
    use std::path::Path;

    const CLUSTER: &str = "\
cluster: {name: lab, domain: lab.test}
network: {interface: br0, server: 10.99.0.1, subnet: 10.99.0.0/24}
os: {version: 4081.2.0, install_timeout: 10m}
kubernetes: {version: v1.31.2, service_subnet: 10.100.0.0/16}
access: {ssh_authorized_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlaceholderPlaceholder t@x']}
nodes:
  - {mac: 52:54:00:99:00:01, hostname: cp1, ip: 10.99.0.11, roles: [control-plane], bmc: {driver: ipmi, address: 10.0.0.9, user: admin, password: pw, allow_inline_password: true}}
  - {mac: 52:54:00:99:00:02, hostname: w1, ip: 10.99.0.21}
";

    #[test]
    fn a_stalled_install_is_retried_through_its_bmc_then_failed() {
        let loaded =
            slipway_cluster::load_str("t.yaml", CLUSTER, Path::new("/"), &slipway_cluster::NoHost);
        let Some(c) = loaded.valid() else {
            panic!("{}", loaded.diagnostics.render(CLUSTER));
        };
        let t = Tracker::new(Arc::new(MemoryStore::default()), b"k".repeat(32))
            .unwrap_or_else(|e| panic!("{e}"));
        let (cp1, w1) = (c.nodes[0].mac, c.nodes[1].mac);
        for mac in [cp1, w1] {
            t.record(
                mac,
                0,
                Input::BootScript {
                    firmware: "bios".into(),
                },
            )
            .unwrap_or_else(|e| panic!("{e}"));
        }
        assert!(find(&t, c, 599).is_empty(), "before the timeout");
        let stalls = find(&t, c, 600);
        assert_eq!(stalls.len(), 2, "{stalls:?}");
        assert!(stalls.contains(&Stall::Failed(w1)), "no BMC: failed");
        assert!(
            stalls
                .iter()
                .any(|s| matches!(s, Stall::Retry(n) if n.mac == cp1)),
            "a BMC: retried"
        );
        assert!(
            find(&t, c, 1199).is_empty(),
            "the retry's timeout starts again"
        );
        assert!(
            matches!(&find(&t, c, 1200)[..], [Stall::Retry(n)] if n.mac == cp1),
            "a second retry"
        );
        assert_eq!(find(&t, c, 1800), [Stall::Failed(cp1)], "two retries only");
    }

    #[test]
    fn a_machine_stuck_after_dhcp_or_after_its_install_is_noticed() {
        use slipway_lifecycle::{Report, State};
        let loaded =
            slipway_cluster::load_str("t.yaml", CLUSTER, Path::new("/"), &slipway_cluster::NoHost);
        let Some(c) = loaded.valid() else {
            panic!("{}", loaded.diagnostics.render(CLUSTER));
        };
        let t = Tracker::new(Arc::new(MemoryStore::default()), b"k".repeat(32))
            .unwrap_or_else(|e| panic!("{e}"));
        let w1 = c.nodes[1].mac;
        // Got DHCP from its PXE ROM, then nothing.
        t.record(
            w1,
            0,
            Input::DhcpSeen {
                firmware: "bios".into(),
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(find(&t, c, 599).is_empty());
        assert_eq!(find(&t, c, 600), [Stall::Failed(w1)]);
        let m = t.machine(w1).unwrap_or_else(|| panic!("recorded"));
        assert_eq!(m.state, State::Failed);
        assert!(
            m.reason
                .as_deref()
                .is_some_and(|r| r.contains("fetched no boot script")),
            "{:?}",
            m.reason
        );
        // Re-armed, installed, and never came up.
        t.record(w1, 700, Input::Reinstall)
            .unwrap_or_else(|e| panic!("{e}"));
        t.record(w1, 710, Input::Reported(Report::Installed))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(find(&t, c, 1309).is_empty());
        assert_eq!(find(&t, c, 1310), [Stall::Failed(w1)]);
        let m = t.machine(w1).unwrap_or_else(|| panic!("recorded"));
        assert!(
            m.reason
                .as_deref()
                .is_some_and(|r| r.contains("did not report ready")),
            "{:?}",
            m.reason
        );
        assert!(!m.boots_installer(), "its disk is installed: it boots it");
    }
}
