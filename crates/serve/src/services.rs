//! The running services' handles, and putting a new configuration in force in all of
//! them at once (a reload): the DHCP engine's configuration, the DNS zone (dynamic names
//! kept) and its client networks and rate limit, and the snapshot the HTTP and TFTP
//! answers read. Leases, machine lives and
//! transfers in flight are kept.

use std::sync::{Arc, Mutex};

use crate::{Live, Snapshot};

/// What a reload updates.
pub struct Services {
    /// The configuration the HTTP routes and the TFTP generated files read.
    pub live: Arc<Live>,
    /// The DNS zone, when DNS runs.
    pub dns: Option<slipway_dns::ZoneHandle>,
    /// Who the DNS server answers and how often, when DNS runs.
    pub dns_access: Option<tokio::sync::watch::Sender<slipway_dns::Access>>,
    /// The DHCP engine, when DHCP runs.
    pub dhcp: Option<Arc<Mutex<slipway_dhcp::Engine>>>,
}

impl Services {
    /// Puts `snapshot` in force everywhere. A DNS zone that cannot be built from it is
    /// logged and the old zone kept; everything else cannot fail.
    pub fn put_in_force(&self, snapshot: Snapshot) {
        if let Some(dhcp) = &self.dhcp {
            let mut engine = dhcp.lock().unwrap_or_else(|p| p.into_inner());
            engine.reconfigure(crate::dhcp::config(&snapshot.cluster));
        }
        if let Some(dns) = &self.dns {
            match slipway_dns::Zone::from_cluster(&snapshot.cluster) {
                Ok(zone) => {
                    let dropped = dns.replace(zone);
                    if dropped > 0 {
                        tracing::warn!(
                            dropped,
                            "dynamic DNS names the new zone refuses were dropped"
                        );
                    }
                }
                Err(e) => tracing::error!("DNS zone not reloaded: {e}"),
            }
        }
        if let Some(access) = &self.dns_access {
            let next = slipway_dns::Access::of(&crate::dns_options(&snapshot.cluster));
            access.send_if_modified(|current| {
                let changed = *current != next;
                *current = next;
                changed
            });
        }
        let nodes = snapshot.cluster.nodes.len();
        self.live.replace(snapshot);
        tracing::info!(nodes, "cluster file reloaded");
    }
}
