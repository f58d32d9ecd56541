//! A shared, live [`Zone`]: the server reads it, the DHCP server changes it.

use std::net::Ipv4Addr;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use hickory_proto::rr::{Name, RecordType};
use tracing::{debug, info};

use crate::{Answer, Error, Zone};

/// A cheap, cloneable handle to the zone being served. Changes made through any clone
/// are seen by the next query, without restarting the server.
///
/// The lock is a plain `std` lock held only for a lookup or an update (never across
/// an `.await`), so the methods are synchronous and can be called from anywhere,
/// including the DHCP server's event loop.
///
/// ```
/// # let text = "\
/// # cluster: {name: lab, domain: lab.test}
/// # network: {interface: br0, server: 10.99.0.1, subnet: 10.99.0.0/24}
/// # os: {version: 4081.2.0}
/// # kubernetes: {version: v1.31.2, service_subnet: 10.100.0.0/16}
/// # access: {ssh_authorized_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExample me']}
/// # nodes:
/// #   - {mac: 52:54:00:99:00:01, hostname: cp1, ip: 10.99.0.11, roles: [control-plane]}
/// # ";
/// # let loaded = slipway_cluster::load_str("lab.yaml", text, ".".as_ref(), &slipway_cluster::NoHost);
/// # let cluster = loaded.valid().unwrap();
/// use slipway_dns::{Zone, ZoneHandle};
///
/// let handle = ZoneHandle::new(Zone::from_cluster(cluster).unwrap());
/// let for_dhcp = handle.clone();
/// for_dhcp.set_dynamic("new-machine", "10.99.0.200".parse().unwrap()).unwrap();
/// assert_eq!(handle.snapshot().dynamic().count(), 1);
/// assert_eq!(for_dhcp.remove_dynamic("new-machine"), Some("10.99.0.200".parse().unwrap()));
/// // Static names are not the DHCP server's to change:
/// assert!(for_dhcp.set_dynamic("cp1", "10.99.0.201".parse().unwrap()).is_err());
/// ```
#[derive(Debug, Clone)]
pub struct ZoneHandle {
    zone: Arc<RwLock<Zone>>,
}

impl ZoneHandle {
    /// Shares `zone`.
    pub fn new(zone: Zone) -> ZoneHandle {
        ZoneHandle {
            zone: Arc::new(RwLock::new(zone)),
        }
    }

    // A panic while the lock is held cannot leave the zone half-changed (updates
    // build their records before touching the maps), so a poisoned lock is used as is.
    fn read(&self) -> RwLockReadGuard<'_, Zone> {
        self.zone.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Zone> {
        self.zone.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts a new static zone in force (the cluster file was reloaded), carrying over
    /// every dynamic name the new zone still accepts. Returns how many were dropped.
    pub fn replace(&self, mut zone: Zone) -> usize {
        let mut guard = self.write();
        let mut dropped = 0;
        let dynamic: Vec<(String, Ipv4Addr)> =
            guard.dynamic().map(|(h, a)| (h.to_string(), a)).collect();
        for (hostname, address) in dynamic {
            if zone.set_dynamic(&hostname, address).is_err() {
                dropped += 1;
            }
        }
        *guard = zone;
        info!(dropped, "DNS: zone replaced");
        dropped
    }

    /// Adds or moves the dynamic name `<hostname>.<domain>` to `address` (A and PTR),
    /// as [`Zone::set_dynamic`]. Returns whether anything changed.
    pub fn set_dynamic(&self, hostname: &str, address: Ipv4Addr) -> Result<bool, Error> {
        let result = self.write().set_dynamic(hostname, address);
        match &result {
            Ok(true) => info!(%hostname, %address, "DNS: dynamic name set"),
            Ok(false) => debug!(%hostname, %address, "DNS: dynamic name unchanged"),
            Err(error) => debug!(%hostname, %address, %error, "DNS: dynamic name refused"),
        }
        result
    }

    /// Removes a dynamic name and its PTR, as [`Zone::remove_dynamic`]; returns the
    /// address it had.
    pub fn remove_dynamic(&self, hostname: &str) -> Option<Ipv4Addr> {
        let removed = self.write().remove_dynamic(hostname);
        if let Some(address) = removed {
            info!(%hostname, %address, "DNS: dynamic name removed");
        }
        removed
    }

    /// Answers a query from the current data, as [`Zone::lookup`].
    pub fn lookup(&self, name: &Name, rtype: RecordType) -> Answer {
        self.read().lookup(name, rtype)
    }

    /// A copy of the current data.
    pub fn snapshot(&self) -> Zone {
        self.read().clone()
    }

    /// The zone origins (they never change while serving).
    pub fn origins(&self) -> Vec<Name> {
        self.read().origins().to_vec()
    }
}
