//! What the core hands out and what must outlive a restart: [`Lease`], and the
//! [`LeaseStore`] port through which the driver makes leases durable. The core itself
//! never calls the store; it returns [`Action::Persist`](crate::Action::Persist) and
//! [`Action::Forget`](crate::Action::Forget) and the driver carries them out (the
//! `slipway-store` crate implements the trait on an embedded database).

use std::error::Error;
use std::net::Ipv4Addr;

use slipway_cluster::MacAddr;

/// A DHCP lease: `ip` belongs to `mac` until `expires`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The client's hardware address.
    pub mac: MacAddr,
    /// The address it holds.
    pub ip: Ipv4Addr,
    /// End of the lease, in seconds since the Unix epoch; `u64::MAX` never ends.
    pub expires: u64,
    /// The name the client gave or was given, if any.
    pub hostname: Option<String>,
}

/// A lease store's failure, whatever the store: its own error, shown as it is.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct LeaseStoreError(Box<dyn Error + Send + Sync + 'static>);

impl LeaseStoreError {
    /// Wraps the store's own error.
    pub fn new(source: impl Error + Send + Sync + 'static) -> LeaseStoreError {
        LeaseStoreError(Box::new(source))
    }
}

/// Where leases are kept. Every write is durable when it returns.
pub trait LeaseStore: Send + Sync {
    /// Every stored lease.
    fn leases(&self) -> Result<Vec<Lease>, LeaseStoreError>;
    /// Stores (or replaces) every lease of `put` and forgets the leases of `remove`, all
    /// or nothing, durably: one commit for a whole batch (the driver's group commit).
    fn write(&self, put: &[Lease], remove: &[MacAddr]) -> Result<(), LeaseStoreError>;
    /// Stores (or replaces) the lease of `lease.mac`.
    fn put(&self, lease: &Lease) -> Result<(), LeaseStoreError> {
        self.write(std::slice::from_ref(lease), &[])
    }
    /// Forgets the lease of `mac`.
    fn remove(&self, mac: MacAddr) -> Result<(), LeaseStoreError> {
        self.write(&[], &[mac])
    }
}
