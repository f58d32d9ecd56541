//! The rule that makes leases safe, without IO of its own: the lease changes of a
//! batch of [`Action`]s are written to the [`LeaseStore`] in ONE commit, and only then
//! may the replies that hand those leases out leave. When the commit fails, no reply
//! that hands out a lease leaves and no [`Event::Bound`] is reported; replies that
//! hand out nothing (offers, NAKs, ProxyDHCP answers) still go.
//!
//! The tokio driver and the in-memory test harness both go through [`commit`], so what
//! the tests prove is what runs.

use crate::engine::{Action, Destination, Event, Port};
use crate::lease::{LeaseStore, LeaseStoreError};

/// What may go out after a batch's commit, in the order the engine produced it.
#[derive(Debug, Default)]
pub struct Outgoing {
    /// Replies to send: the port the request came in on, the datagram, where to.
    pub sends: Vec<(Port, Vec<u8>, Destination)>,
    /// Events to log and report.
    pub events: Vec<Event>,
    /// Why the commit failed, if it did (then nothing that hands out a lease is here).
    pub error: Option<LeaseStoreError>,
    /// How many leases were written (or would have been, when the commit failed).
    pub leases: usize,
}

/// Commits the lease changes of `batch` (each entry: the port a datagram came in on
/// and the engine's actions for it) through `store`, once, and returns what may go out.
pub fn commit(batch: Vec<(Port, Vec<Action>)>, store: &dyn LeaseStore) -> Outgoing {
    let mut put = Vec::new();
    let mut forget = Vec::new();
    for (_, actions) in &batch {
        for a in actions {
            match a {
                Action::Persist(lease) => put.push(lease.clone()),
                Action::Forget(mac) => forget.push(*mac),
                _ => {}
            }
        }
    }
    let mut out = Outgoing {
        leases: put.len(),
        ..Outgoing::default()
    };
    if !put.is_empty() || !forget.is_empty() {
        out.error = store.write(&put, &forget).err();
    }
    let persisted = out.error.is_none();
    for (port, actions) in batch {
        let hands_out = actions.iter().any(|a| matches!(a, Action::Persist(_)));
        for action in actions {
            match action {
                Action::Persist(_) | Action::Forget(_) => {}
                Action::Send { .. } if hands_out && !persisted => {}
                Action::Log(Event::Bound { .. }) if !persisted => {}
                Action::Send { packet, to } => out.sends.push((port, packet, to)),
                Action::Log(event) => out.events.push(event),
            }
        }
    }
    out
}
