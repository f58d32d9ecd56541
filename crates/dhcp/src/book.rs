//! Who holds which address: leases and outstanding offers, indexed by MAC and by
//! address, so that every question the server asks per packet costs O(1) whatever the
//! number of leases (a 10,000-machine boot storm must not slow down as it goes).

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;

use slipway_cluster::MacAddr;

use crate::deadlines::Deadlines;
use crate::lease::Lease;

/// Leases and offers, both ways round, and when each ends.
#[derive(Debug, Default)]
pub struct Book {
    leases: BTreeMap<MacAddr, Lease>,
    lease_by_ip: HashMap<Ipv4Addr, MacAddr>,
    /// When each lease that can end ends (never-ending leases are not here).
    lease_ends: Deadlines<MacAddr>,
    offers: HashMap<MacAddr, Ipv4Addr>,
    offer_by_ip: HashMap<Ipv4Addr, MacAddr>,
    offer_ends: Deadlines<MacAddr>,
}

impl Book {
    /// A book holding `leases` (restored from the store). When two leases name the
    /// same address, the one expiring last holds it.
    pub fn new(leases: impl IntoIterator<Item = Lease>) -> Book {
        let mut book = Book::default();
        let mut all: Vec<Lease> = leases.into_iter().collect();
        all.sort_by_key(|l| l.expires);
        for l in all {
            book.bind(l);
        }
        book
    }

    /// Every lease, by MAC.
    pub fn leases(&self) -> impl Iterator<Item = &Lease> {
        self.leases.values()
    }

    /// The lease of `mac`, expired or not.
    pub fn lease(&self, mac: MacAddr) -> Option<&Lease> {
        self.leases.get(&mac)
    }

    /// Records `lease` (replacing the MAC's previous lease and offer).
    pub fn bind(&mut self, lease: Lease) {
        self.withdraw(lease.mac);
        self.unbind(lease.mac);
        self.lease_by_ip.insert(lease.ip, lease.mac);
        if lease.expires != u64::MAX {
            self.lease_ends.insert(lease.mac, lease.expires);
        }
        self.leases.insert(lease.mac, lease);
    }

    /// Forgets the lease of `mac`.
    pub fn unbind(&mut self, mac: MacAddr) -> Option<Lease> {
        let old = self.leases.remove(&mac)?;
        self.lease_ends.remove(mac);
        if self.lease_by_ip.get(&old.ip) == Some(&mac) {
            self.lease_by_ip.remove(&old.ip);
        }
        Some(old)
    }

    /// Records an offer of `ip` to `mac`, held until `until`.
    pub fn offer(&mut self, mac: MacAddr, ip: Ipv4Addr, until: u64) {
        self.withdraw(mac);
        self.offer_by_ip.insert(ip, mac);
        self.offers.insert(mac, ip);
        self.offer_ends.insert(mac, until);
    }

    /// Drops the offer made to `mac`, if any.
    pub fn withdraw(&mut self, mac: MacAddr) {
        if let Some(ip) = self.offers.remove(&mac) {
            self.offer_ends.remove(mac);
            if self.offer_by_ip.get(&ip) == Some(&mac) {
                self.offer_by_ip.remove(&ip);
            }
        }
    }

    /// The address offered to `mac`, if an offer is outstanding.
    pub fn offered(&self, mac: MacAddr) -> Option<Ipv4Addr> {
        self.offers.get(&mac).copied()
    }

    /// Whether a MAC other than `mac` holds `ip` at `now`: an unexpired lease or an
    /// outstanding offer.
    pub fn held_by_other(&self, now: u64, mac: MacAddr, ip: Ipv4Addr) -> bool {
        let leased = self
            .lease_by_ip
            .get(&ip)
            .filter(|m| **m != mac)
            .and_then(|m| self.leases.get(m))
            .is_some_and(|l| l.expires > now);
        leased || self.offer_by_ip.get(&ip).is_some_and(|m| *m != mac)
    }

    /// Drops offers whose hold time has passed.
    pub fn expire_offers(&mut self, now: u64) {
        for mac in self.offer_ends.take_due(now) {
            if let Some(ip) = self.offers.remove(&mac)
                && self.offer_by_ip.get(&ip) == Some(&mac)
            {
                self.offer_by_ip.remove(&ip);
            }
        }
    }

    /// Removes and returns, earliest first, every lease that has ended at `now`.
    pub fn expire_leases(&mut self, now: u64) -> Vec<Lease> {
        self.lease_ends
            .take_due(now)
            .into_iter()
            .filter_map(|mac| self.unbind(mac))
            .collect()
    }

    /// When the next lease or offer ends, if any can.
    pub fn next_end(&self) -> Option<u64> {
        match (self.lease_ends.next(), self.offer_ends.next()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// How many leases and outstanding offers are held.
    pub fn len(&self) -> (usize, usize) {
        (self.leases.len(), self.offers.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(n: u8) -> MacAddr {
        MacAddr([2, 0, 0, 0, 0, n])
    }

    fn lease(n: u8, ip: u8, expires: u64) -> Lease {
        Lease {
            mac: mac(n),
            ip: Ipv4Addr::new(10, 0, 0, ip),
            expires,
            hostname: None,
        }
    }

    #[test]
    fn leases_and_offers_are_found_by_address() {
        let mut b = Book::new([lease(1, 10, 100)]);
        let ip10 = Ipv4Addr::new(10, 0, 0, 10);
        let ip11 = Ipv4Addr::new(10, 0, 0, 11);
        assert!(b.held_by_other(50, mac(2), ip10));
        assert!(!b.held_by_other(50, mac(1), ip10), "its own lease");
        assert!(!b.held_by_other(100, mac(2), ip10), "expired");
        b.offer(mac(2), ip11, 60);
        assert!(b.held_by_other(50, mac(3), ip11));
        assert_eq!(b.offered(mac(2)), Some(ip11));
        b.expire_offers(60);
        assert!(!b.held_by_other(50, mac(3), ip11), "offer expired");
        b.offer(mac(2), ip11, 60);
        b.bind(lease(2, 11, 200));
        assert_eq!(b.offered(mac(2)), None, "binding withdraws the offer");
        assert!(b.held_by_other(150, mac(3), ip11));
        // Moving a lease frees the old address.
        b.bind(lease(2, 12, 200));
        assert!(!b.held_by_other(150, mac(3), ip11));
        b.unbind(mac(2));
        assert!(!b.held_by_other(150, mac(3), Ipv4Addr::new(10, 0, 0, 12)));
        assert_eq!(b.leases().count(), 1);
    }

    #[test]
    fn a_stale_duplicate_does_not_unindex_the_holder() {
        // Two stored leases on one address: the later one holds it; forgetting the
        // older does not free the address.
        let mut b = Book::new([lease(1, 10, 300), lease(2, 10, 100)]);
        let ip = Ipv4Addr::new(10, 0, 0, 10);
        assert!(b.held_by_other(50, mac(2), ip));
        b.unbind(mac(2));
        assert!(b.held_by_other(50, mac(3), ip));
    }
}
