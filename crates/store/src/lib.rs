//! slipway's state behind one small trait, [`LeaseStore`]: an embedded database by
//! default ([`RedbStore`], on `redb`: one file, no server, every write durable before
//! it returns), and an in-memory store for tests. etcd v3, for several servers sharing
//! state, is planned behind the same trait.
//!
//! ```
//! use slipway_store::{Lease, LeaseStore, RedbStore};
//! let dir = std::env::temp_dir().join(format!("slipway-store-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let store = RedbStore::open(&dir.join("state.redb")).unwrap();
//! let lease = Lease { mac: "52:54:00:00:00:01".parse().unwrap(), ip: "10.0.0.5".parse().unwrap(), expires: 1_000, hostname: None };
//! store.put(&lease).unwrap();
//! assert_eq!(store.leases().unwrap(), vec![lease]);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```
#![deny(missing_docs)]

pub mod tracker;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Mutex;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use slipway_cluster::MacAddr;
pub use slipway_dhcp::{Lease, LeaseStore, LeaseStoreError};

/// A lease as stored: JSON with the MAC as text (the DHCP engine's [`Lease`] carries no
/// serialization of its own).
#[derive(Serialize, Deserialize)]
struct StoredLease {
    #[serde(with = "mac_text")]
    mac: MacAddr,
    ip: Ipv4Addr,
    expires: u64,
    hostname: Option<String>,
}

impl From<&Lease> for StoredLease {
    fn from(l: &Lease) -> StoredLease {
        StoredLease {
            mac: l.mac,
            ip: l.ip,
            expires: l.expires,
            hostname: l.hostname.clone(),
        }
    }
}

impl From<StoredLease> for Lease {
    fn from(l: StoredLease) -> Lease {
        Lease {
            mac: l.mac,
            ip: l.ip,
            expires: l.expires,
            hostname: l.hostname,
        }
    }
}

mod mac_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use slipway_cluster::MacAddr;

    pub fn serialize<S: Serializer>(mac: &MacAddr, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(mac)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<MacAddr, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database file could not be opened or created.
    #[error("state database {}: {source}", path.display())]
    Open {
        /// The database file.
        path: std::path::PathBuf,
        /// What redb said.
        #[source]
        source: redb::DatabaseError,
    },
    /// The database could not be read or written.
    #[error("state database: {0}")]
    Database(#[from] redb::Error),
    /// A stored record could not be decoded (a newer slipway wrote it, or the file is
    /// damaged), or a value could not be encoded.
    #[error("state database holds a record slipway cannot read: {0}")]
    Corrupt(#[from] serde_json::Error),
    /// Another thread panicked while holding the in-memory store.
    #[error("state store: a writer panicked")]
    Poisoned,
}

/// Where machines' lives are kept. Every write is durable when it returns.
pub trait MachineStore: Send + Sync {
    /// Every machine slipway has seen.
    fn machines(&self) -> Result<Vec<Machine>, StoreError>;
    /// Stores (or replaces) every machine of `machines`, all or nothing, in one commit.
    fn put_machines(&self, machines: &[Machine]) -> Result<(), StoreError>;
    /// Stores (or replaces) `machine`.
    fn put_machine(&self, machine: &Machine) -> Result<(), StoreError> {
        self.put_machines(std::slice::from_ref(machine))
    }
}

pub use slipway_lifecycle::Machine;

const LEASES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("leases");
const MACHINES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("machines");

/// The embedded store: one redb file.
pub struct RedbStore {
    db: Database,
}

fn db_err(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Database(e.into())
}

type Table = TableDefinition<'static, &'static [u8], &'static [u8]>;

impl RedbStore {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let tx = db.begin_write().map_err(db_err)?;
        tx.open_table(LEASES).map_err(db_err)?;
        tx.open_table(MACHINES).map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        Ok(RedbStore { db })
    }

    /// Every record of `table`, decoded.
    fn all<T: serde::de::DeserializeOwned>(&self, table: Table) -> Result<Vec<T>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(table).map_err(db_err)?;
        let mut out = Vec::new();
        for row in table.iter().map_err(db_err)? {
            let (_, v) = row.map_err(db_err)?;
            out.push(serde_json::from_slice(v.value())?);
        }
        Ok(out)
    }

    /// Writes each value under its MAC in `table` (or removes the MAC's record for
    /// `None`), durably, in one transaction.
    fn write<'a, T: Serialize + 'a>(
        &self,
        table: Table,
        rows: impl IntoIterator<Item = (MacAddr, Option<&'a T>)>,
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = tx.open_table(table).map_err(db_err)?;
            for (mac, value) in rows {
                match value {
                    Some(v) => {
                        let b = serde_json::to_vec(v)?;
                        t.insert(&mac.octets()[..], &b[..]).map(drop)
                    }
                    None => t.remove(&mac.octets()[..]).map(drop),
                }
                .map_err(db_err)?;
            }
        }
        tx.commit().map_err(db_err)
    }
}

impl LeaseStore for RedbStore {
    fn leases(&self) -> Result<Vec<Lease>, LeaseStoreError> {
        let stored: Vec<StoredLease> = self.all(LEASES).map_err(LeaseStoreError::new)?;
        Ok(stored.into_iter().map(Lease::from).collect())
    }

    fn write(&self, put: &[Lease], remove: &[MacAddr]) -> Result<(), LeaseStoreError> {
        let stored: Vec<StoredLease> = put.iter().map(StoredLease::from).collect();
        let puts = stored.iter().map(|l| (l.mac, Some(l)));
        let removes = remove.iter().map(|m| (*m, None));
        RedbStore::write(self, LEASES, puts.chain(removes)).map_err(LeaseStoreError::new)
    }
}

impl MachineStore for RedbStore {
    fn machines(&self) -> Result<Vec<Machine>, StoreError> {
        self.all(MACHINES)
    }

    fn put_machines(&self, machines: &[Machine]) -> Result<(), StoreError> {
        self.write(MACHINES, machines.iter().map(|m| (m.mac, Some(m))))
    }
}

/// An in-memory store (tests, `--state-dir` not wanted). Not durable.
#[derive(Default)]
pub struct MemoryStore {
    leases: Mutex<BTreeMap<MacAddr, Lease>>,
    machines: Mutex<BTreeMap<MacAddr, Machine>>,
}

impl MachineStore for MemoryStore {
    fn machines(&self) -> Result<Vec<Machine>, StoreError> {
        Ok(self
            .machines
            .lock()
            .map_err(|_| StoreError::Poisoned)?
            .values()
            .cloned()
            .collect())
    }

    fn put_machines(&self, machines: &[Machine]) -> Result<(), StoreError> {
        let mut all = self.machines.lock().map_err(|_| StoreError::Poisoned)?;
        for m in machines {
            all.insert(m.mac, m.clone());
        }
        Ok(())
    }
}

impl LeaseStore for MemoryStore {
    fn leases(&self) -> Result<Vec<Lease>, LeaseStoreError> {
        Ok(self
            .leases
            .lock()
            .map_err(|_| LeaseStoreError::new(StoreError::Poisoned))?
            .values()
            .cloned()
            .collect())
    }

    fn write(&self, put: &[Lease], remove: &[MacAddr]) -> Result<(), LeaseStoreError> {
        let mut all = self
            .leases
            .lock()
            .map_err(|_| LeaseStoreError::new(StoreError::Poisoned))?;
        for l in put {
            all.insert(l.mac, l.clone());
        }
        for m in remove {
            all.remove(m);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(n: u8, ip: u8) -> Lease {
        Lease {
            mac: MacAddr([2, 0, 0, 0, 0, n]),
            ip: Ipv4Addr::new(10, 0, 0, ip),
            expires: u64::MAX,
            hostname: Some(format!("h{n}")),
        }
    }

    #[test]
    fn redb_keeps_leases_across_reopen() {
        let dir = std::env::temp_dir().join(format!("slipway-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let path = dir.join("s.redb");
        {
            let s = RedbStore::open(&path).unwrap_or_else(|e| panic!("{e}"));
            s.put(&lease(1, 5)).unwrap_or_else(|e| panic!("{e}"));
            s.put(&lease(2, 6)).unwrap_or_else(|e| panic!("{e}"));
            s.put(&lease(1, 7)).unwrap_or_else(|e| panic!("{e}"));
            s.remove(MacAddr([2, 0, 0, 0, 0, 2]))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let s = RedbStore::open(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.leases().unwrap_or_default(), vec![lease(1, 7)]);
        let mut m = Machine::new(MacAddr([2, 0, 0, 0, 0, 1]));
        m.apply(5, slipway_lifecycle::Input::Reinstall)
            .unwrap_or_else(|e| panic!("{e}"));
        s.put_machine(&m).unwrap_or_else(|e| panic!("{e}"));
        drop(s);
        let s = RedbStore::open(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.machines().unwrap_or_default(), vec![m]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn memory_store() {
        let s = MemoryStore::default();
        s.put(&lease(3, 9)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.leases().unwrap_or_default().len(), 1);
    }
}
