//! Keys that each fall due at a time, in order of time: "which falls due next?" and
//! "which are due now?" cost O(log n), so timers never scan a table.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

/// Each key with the time (seconds) it falls due; one time per key.
#[derive(Debug)]
pub struct Deadlines<K> {
    due: HashMap<K, u64>,
    order: BTreeSet<(u64, K)>,
}

impl<K> Default for Deadlines<K> {
    fn default() -> Self {
        Deadlines {
            due: HashMap::new(),
            order: BTreeSet::new(),
        }
    }
}

impl<K: Copy + Ord + Hash> Deadlines<K> {
    /// Sets (or moves) `key`'s time to `at`.
    pub fn insert(&mut self, key: K, at: u64) {
        if let Some(old) = self.due.insert(key, at) {
            self.order.remove(&(old, key));
        }
        self.order.insert((at, key));
    }

    /// Removes `key`; returns the time it had.
    pub fn remove(&mut self, key: K) -> Option<u64> {
        let at = self.due.remove(&key)?;
        self.order.remove(&(at, key));
        Some(at)
    }

    /// `key`'s time, if it has one.
    pub fn get(&self, key: K) -> Option<u64> {
        self.due.get(&key).copied()
    }

    /// Whether `key` has a time.
    pub fn contains(&self, key: K) -> bool {
        self.due.contains_key(&key)
    }

    /// The earliest time of all.
    pub fn next(&self) -> Option<u64> {
        self.order.first().map(|(at, _)| *at)
    }

    /// Removes and returns, earliest first, every key whose time is `now` or earlier.
    pub fn take_due(&mut self, now: u64) -> Vec<K> {
        let mut out = Vec::new();
        while let Some(&(at, key)) = self.order.first() {
            if at > now {
                break;
            }
            self.order.pop_first();
            self.due.remove(&key);
            out.push(key);
        }
        out
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.due.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.due.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_keys_come_out_in_time_order_and_moves_are_kept() {
        let mut d = Deadlines::default();
        d.insert('a', 30);
        d.insert('b', 10);
        d.insert('c', 20);
        d.insert('a', 5);
        assert_eq!(d.next(), Some(5));
        assert_eq!(d.take_due(19), vec!['a', 'b']);
        assert_eq!(d.get('c'), Some(20));
        assert_eq!(d.remove('c'), Some(20));
        assert!(d.is_empty());
        assert_eq!(d.next(), None);
    }
}
