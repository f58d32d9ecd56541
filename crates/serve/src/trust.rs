//! Who gets a secret: the bookkeeping around the machine's own rule
//! ([`Machine::may_serve`](slipway_lifecycle::Machine::may_serve)) that `serve` keeps in
//! memory, bounded by the number of nodes: the install key last issued to each machine
//! (re-sent when the same machine fetches its boot script again within
//! [`KEY_REUSE_SECS`], so repeated identical requests cost no store write), when a
//! refusal was last recorded in each machine's life (at most one per
//! [`REFUSAL_EVENT_SECS`]), and a budget for refusal log lines, so a flood of refused
//! requests costs neither the disk nor the log.

use std::collections::HashMap;
use std::sync::Mutex;

use slipway_cluster::MacAddr;

/// A boot script fetched again within this many seconds gets the same install key.
pub const KEY_REUSE_SECS: u64 = 60;
/// At most one refusal per machine per this many seconds goes to its lifecycle.
pub const REFUSAL_EVENT_SECS: u64 = 10;
/// At most this many refusal lines per second go to the log (the rest are counted).
pub const REFUSAL_LINES_PER_SEC: u32 = 20;

/// The in-memory side of the trust rules.
#[derive(Default)]
pub(crate) struct Guard {
    issued: Mutex<HashMap<MacAddr, (String, u64)>>,
    refusals: Mutex<HashMap<MacAddr, u64>>,
    lines: Mutex<Budget>,
}

#[derive(Default)]
struct Budget {
    second: u64,
    used: u32,
    suppressed: u64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Guard {
    /// The key issued to `mac` at most [`KEY_REUSE_SECS`] before `now`, if `current`
    /// says it is still the machine's key.
    pub(crate) fn recent_key(
        &self,
        mac: MacAddr,
        now: u64,
        current: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let issued = lock(&self.issued);
        let (key, at) = issued.get(&mac)?;
        (now < at.saturating_add(KEY_REUSE_SECS) && current(key)).then(|| key.clone())
    }

    /// Remembers that `key` was issued to `mac` at `now` (forgetting stale entries).
    pub(crate) fn issued(&self, mac: MacAddr, key: &str, now: u64) {
        let mut issued = lock(&self.issued);
        issued.retain(|_, (_, at)| now < at.saturating_add(KEY_REUSE_SECS));
        issued.insert(mac, (key.to_string(), now));
    }

    /// Whether a refusal of `mac` at `now` goes to its lifecycle.
    pub(crate) fn refusal_event_due(&self, mac: MacAddr, now: u64) -> bool {
        let mut last = lock(&self.refusals);
        if last
            .get(&mac)
            .is_some_and(|at| now < at.saturating_add(REFUSAL_EVENT_SECS))
        {
            return false;
        }
        last.retain(|_, at| now < at.saturating_add(REFUSAL_EVENT_SECS));
        last.insert(mac, now);
        true
    }

    /// Whether a refusal line may be logged at `now`; `Some(n)`: yes, and `n` lines
    /// were suppressed since the last one.
    pub(crate) fn refusal_line(&self, now: u64) -> Option<u64> {
        let mut b = lock(&self.lines);
        if b.second != now {
            b.second = now;
            b.used = 0;
        }
        if b.used >= REFUSAL_LINES_PER_SEC {
            b.suppressed += 1;
            return None;
        }
        b.used += 1;
        Some(std::mem::take(&mut b.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);

    #[test]
    fn a_key_is_reused_only_while_recent_and_current() {
        let g = Guard::default();
        g.issued(MAC, "k", 100);
        assert_eq!(g.recent_key(MAC, 159, |_| true).as_deref(), Some("k"));
        assert_eq!(g.recent_key(MAC, 160, |_| true), None, "too old");
        assert_eq!(g.recent_key(MAC, 120, |_| false), None, "no longer current");
        assert_eq!(
            g.recent_key(MacAddr([2, 0, 0, 0, 0, 2]), 120, |_| true),
            None
        );
    }

    #[test]
    fn refusals_are_recorded_and_logged_within_budgets() {
        let g = Guard::default();
        assert!(g.refusal_event_due(MAC, 100));
        assert!(!g.refusal_event_due(MAC, 109));
        assert!(g.refusal_event_due(MAC, 110));
        for _ in 0..REFUSAL_LINES_PER_SEC {
            assert_eq!(g.refusal_line(7), Some(0));
        }
        assert_eq!(g.refusal_line(7), None);
        assert_eq!(g.refusal_line(7), None);
        assert_eq!(
            g.refusal_line(8),
            Some(2),
            "the suppressed lines are counted"
        );
    }
}
