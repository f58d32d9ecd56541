//! The live record of every machine's life: the [`Machine`] state machines in memory,
//! each change written to the store before it counts, report tokens checked here, the
//! install window armed here (its length set by [`Tracker::set_install_window`]) and
//! one-time install keys issued here ([`Tracker::issue_key`]; only their hashes are
//! stored).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use slipway_cluster::MacAddr;
use slipway_lifecycle::{Input, Machine, Purpose, Rejected, Report, State, check_token, token};

use crate::{MachineStore, StoreError};

/// What `apply` can change in a machine, compared without copying its history: the
/// history only grows at its end (or drops its oldest entries at the same time).
#[derive(PartialEq)]
struct Fingerprint {
    state: slipway_lifecycle::State,
    since: u64,
    generation: u32,
    retries: u32,
    events: usize,
    firmware: Option<String>,
    reason: Option<String>,
    last: Option<slipway_lifecycle::Event>,
    armed_until: Option<u64>,
    install_key: Option<String>,
    burned_key: Option<String>,
    disk_installed: bool,
    served_build: Option<slipway_lifecycle::Build>,
    installed_build: Option<slipway_lifecycle::Build>,
}

impl Fingerprint {
    fn of(m: &Machine) -> Fingerprint {
        Fingerprint {
            state: m.state,
            since: m.since,
            generation: m.generation,
            retries: m.retries,
            events: m.events.len(),
            firmware: m.firmware.clone(),
            reason: m.reason.clone(),
            last: m.events.last().cloned(),
            armed_until: m.armed_until,
            install_key: m.install_key.clone(),
            burned_key: m.burned_key.clone(),
            disk_installed: m.disk_installed,
            served_build: m.served_build.clone(),
            installed_build: m.installed_build.clone(),
        }
    }
}

/// What became of a stalled install.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stalled {
    /// Retried: power-cycle it into the installer through its BMC.
    Retry(MacAddr),
    /// Marked failed.
    Failed(MacAddr),
}

/// Why a report was not taken.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The token is not this machine's for this report (or is from an older install).
    #[error("bad report token")]
    BadToken,
    /// The report makes no sense in the machine's state.
    #[error("{0}")]
    OutOfOrder(Rejected),
    /// The change could not be stored.
    #[error(transparent)]
    Store(StoreError),
    /// The system gave no randomness for a new install key.
    #[error("no randomness for an install key: {0}")]
    Random(String),
}

/// Machines, their tokens and their persistence.
pub struct Tracker {
    store: std::sync::Arc<dyn MachineStore>,
    key: Vec<u8>,
    machines: Mutex<BTreeMap<MacAddr, Machine>>,
    /// The install window in seconds (`u64::MAX`: no end).
    window: AtomicU64,
}

/// The install window until `set_install_window` is called: 30 minutes, the default
/// `os.install_timeout`.
pub const DEFAULT_WINDOW_SECS: u64 = 1800;

/// Applies `input` to `m` at `now`, then arms the install if that input arms it.
fn apply_and_arm(m: &mut Machine, now: u64, input: Input, window: u64) -> Result<(), Rejected> {
    let arms = matches!(
        input,
        Input::DhcpSeen { .. } | Input::Reinstall | Input::Retried { .. }
    )
    .then(|| input.clone());
    m.apply(now, input)?;
    if let Some(input) = arms
        && m.arming_due(&input, now)
    {
        let until = now.saturating_add(window);
        m.apply(now, Input::Armed { until })?;
    }
    Ok(())
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// How many times one install attempt is power-cycled through its BMC after a stall
/// before it is marked failed: firmware that hangs (OVMF after a network outage, a NIC
/// ROM that loses its DHCP) usually boots on the next try, and a third stall in a row is
/// rarely the firmware's.
pub const MAX_BMC_RETRIES: u32 = 2;

impl Tracker {
    /// Loads every machine from `store`; `key` signs report tokens.
    pub fn new(
        store: std::sync::Arc<dyn MachineStore>,
        key: Vec<u8>,
    ) -> Result<Tracker, StoreError> {
        let machines = store.machines()?.into_iter().map(|m| (m.mac, m)).collect();
        Ok(Tracker {
            store,
            key,
            machines: Mutex::new(machines),
            window: AtomicU64::new(DEFAULT_WINDOW_SECS),
        })
    }

    /// Sets the install window (`os.install_timeout`; `None`: no end) for installs
    /// armed from now on.
    pub fn set_install_window(&self, secs: Option<u64>) {
        self.window
            .store(secs.unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    fn window(&self) -> u64 {
        self.window.load(Ordering::Relaxed)
    }

    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<MacAddr, Machine>) -> T) -> T {
        match self.machines.lock() {
            Ok(mut g) => f(&mut g),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// Applies `input` to `mac` at `now`, storing the machine if anything was recorded.
    pub fn record(&self, mac: MacAddr, now: u64, input: Input) -> Result<Machine, ReportError> {
        self.with(|all| {
            let mut m = all.get(&mac).cloned().unwrap_or_else(|| Machine::new(mac));
            let before = Fingerprint::of(&m);
            let before_state = (m.state, m.firmware.clone());
            apply_and_arm(&mut m, now, input, self.window()).map_err(ReportError::OutOfOrder)?;
            if Fingerprint::of(&m) != before {
                self.store.put_machine(&m).map_err(ReportError::Store)?;
                if m.state != before_state.0 {
                    tracing::info!(%mac, from = %before_state.0, to = %m.state, "machine state");
                }
                all.insert(mac, m.clone());
            }
            Ok(m)
        })
    }

    /// Applies many inputs (a burst of DHCP leases) and stores every machine that
    /// changed in one commit. Inputs that make no sense in a machine's state change
    /// nothing, as in [`Tracker::record`].
    pub fn record_many(&self, inputs: Vec<(MacAddr, u64, Input)>) -> Result<(), StoreError> {
        self.with(|all| {
            let mut changed: BTreeMap<MacAddr, (State, Machine)> = BTreeMap::new();
            for (mac, now, input) in inputs {
                let (seen, (first, mut m)) = match changed.remove(&mac) {
                    Some(c) => (true, c),
                    None => {
                        let m = all.get(&mac).cloned().unwrap_or_else(|| Machine::new(mac));
                        (false, (m.state, m))
                    }
                };
                let before = Fingerprint::of(&m);
                let applied = apply_and_arm(&mut m, now, input, self.window()).is_ok();
                if seen || applied && Fingerprint::of(&m) != before {
                    changed.insert(mac, (first, m));
                }
            }
            if changed.is_empty() {
                return Ok(());
            }
            let list: Vec<Machine> = changed.values().map(|(_, m)| m.clone()).collect();
            self.store.put_machines(&list)?;
            for (mac, (first, m)) in changed {
                if m.state != first {
                    tracing::info!(%mac, from = %first, to = %m.state, "machine state");
                }
                all.insert(mac, m);
            }
            Ok(())
        })
    }

    /// A report from the install script or the installed system, if `given` is the
    /// machine's token for it.
    pub fn report(
        &self,
        mac: MacAddr,
        given: &str,
        report: Report,
    ) -> Result<Machine, ReportError> {
        let purpose = if matches!(report, Report::Ready { .. }) {
            Purpose::Ready
        } else {
            Purpose::Install
        };
        let generation = self.machine(mac).map_or(0, |m| m.generation);
        if !check_token(&self.key, mac, generation, purpose, given) {
            return Err(ReportError::BadToken);
        }
        self.record(mac, now(), Input::Reported(report))
    }

    /// Arms `mac`'s install at `now` if [`Machine::may_arm`] says it may be (for
    /// servers that see no DHCP: the first boot script fetched from the machine arms
    /// it); returns whether it did.
    pub fn arm(&self, mac: MacAddr, now: u64) -> Result<bool, ReportError> {
        self.with(|all| {
            let mut m = all.get(&mac).cloned().unwrap_or_else(|| Machine::new(mac));
            if !m.may_arm(now) {
                return Ok(false);
            }
            let until = now.saturating_add(self.window());
            m.apply(now, Input::Armed { until })
                .map_err(ReportError::OutOfOrder)?;
            self.store.put_machine(&m).map_err(ReportError::Store)?;
            all.insert(mac, m);
            Ok(true)
        })
    }

    /// Issues a new one-time install key to `mac` at `now` for the boot script fetched
    /// from `peer`: 128 random bits as hex, of which only the hash is stored (replacing
    /// the key issued before, so a machine that reboots mid-install gets a new one).
    pub fn issue_key(&self, mac: MacAddr, now: u64, peer: &str) -> Result<String, ReportError> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|e| ReportError::Random(e.to_string()))?;
        let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        self.with(|all| {
            let mut m = all.get(&mac).cloned().unwrap_or_else(|| Machine::new(mac));
            m.install_key = Some(slipway_lifecycle::key_hash(&key));
            m.apply(
                now,
                Input::KeyIssued {
                    peer: peer.to_string(),
                },
            )
            .map_err(ReportError::OutOfOrder)?;
            self.store.put_machine(&m).map_err(ReportError::Store)?;
            all.insert(mac, m);
            Ok(key)
        })
    }

    /// Notes what `mac`'s install config was rendered from as it is served
    /// ([`Machine::served_build`]), stored when it changed; its `installed` report makes
    /// it the build installed.
    pub fn note_served(
        &self,
        mac: MacAddr,
        build: slipway_lifecycle::Build,
    ) -> Result<(), StoreError> {
        self.with(|all| {
            let mut m = all.get(&mac).cloned().unwrap_or_else(|| Machine::new(mac));
            if m.served_build.as_ref() == Some(&build) {
                return Ok(());
            }
            m.served_build = Some(build);
            self.store.put_machine(&m)?;
            all.insert(mac, m);
            Ok(())
        })
    }

    /// Makes `to` what `mac`'s disk holds ([`Machine::installed_build`]) if it holds
    /// `from` now: an in-place OS update carried it from one build to the next. `false`
    /// (nothing changed) when the machine holds something else.
    pub fn carry_installed(
        &self,
        mac: MacAddr,
        from: &slipway_lifecycle::Build,
        to: slipway_lifecycle::Build,
    ) -> Result<bool, StoreError> {
        self.with(|all| {
            let Some(m) = all.get(&mac) else {
                return Ok(false);
            };
            if m.installed_build.as_ref() != Some(from) {
                return Ok(false);
            }
            let mut m = m.clone();
            m.installed_build = Some(to);
            self.store.put_machine(&m)?;
            all.insert(mac, m);
            Ok(true)
        })
    }

    /// The machine, if slipway has seen it.
    pub fn machine(&self, mac: MacAddr) -> Option<Machine> {
        self.with(|all| all.get(&mac).cloned())
    }

    /// Every machine slipway has seen.
    pub fn all(&self) -> Vec<Machine> {
        self.with(|all| all.values().cloned().collect())
    }

    /// Whether `mac`'s next network boot runs the installer.
    pub fn boots_installer(&self, mac: MacAddr) -> bool {
        self.machine(mac).is_none_or(|m| m.boots_installer())
    }

    /// Whether `given` is `mac`'s `ready` report token of its current install: the
    /// credential its installed system holds (the reboot lock of in-place OS updates
    /// asks with it).
    pub fn is_ready_token(&self, mac: MacAddr, given: &str) -> bool {
        let generation = self.machine(mac).map_or(0, |m| m.generation);
        check_token(&self.key, mac, generation, Purpose::Ready, given)
    }

    /// The report tokens of `mac`'s current install: (install, ready).
    pub fn tokens(&self, mac: MacAddr) -> (String, String) {
        let g = self.machine(mac).map_or(0, |m| m.generation);
        (
            token(&self.key, mac, g, Purpose::Install),
            token(&self.key, mac, g, Purpose::Ready),
        )
    }

    /// Machines whose install made no progress for `timeout_secs`: each one that
    /// `can_retry` says may be retried and was not retried yet in this attempt is
    /// recorded as [`Input::Retried`] (its timeout starts again) and returned as
    /// [`Stalled::Retry`], for the caller to power-cycle it into the installer; the
    /// others are marked failed ([`Stalled::Failed`]).
    pub fn expire(
        &self,
        now: u64,
        timeout_secs: u64,
        can_retry: impl Fn(MacAddr) -> bool,
    ) -> Vec<Stalled> {
        let stale: Vec<(MacAddr, u32)> = self.with(|all| {
            all.values()
                .filter(|m| m.in_progress() && now.saturating_sub(m.since) >= timeout_secs)
                .map(|m| (m.mac, m.retries))
                .collect()
        });
        let mut out = Vec::new();
        for (mac, retries) in stale {
            let (input, outcome) = if retries < MAX_BMC_RETRIES && can_retry(mac) {
                (
                    Input::Retried {
                        action: "pxe once + power off and on".into(),
                    },
                    Stalled::Retry(mac),
                )
            } else {
                (
                    Input::TimedOut {
                        after_secs: timeout_secs,
                    },
                    Stalled::Failed(mac),
                )
            };
            match self.record(mac, now, input) {
                Ok(_) => out.push(outcome),
                Err(e) => tracing::error!(%mac, "cannot record a timeout: {e}"),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;
    use std::sync::Arc;

    #[test]
    fn reports_need_the_right_token_and_persist() {
        let store = Arc::new(MemoryStore::default());
        let t = Tracker::new(store.clone(), b"k".repeat(32)).unwrap_or_else(|e| panic!("{e}"));
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        let (install, ready) = t.tokens(mac);
        assert!(matches!(
            t.report(mac, "nope", Report::Installed),
            Err(ReportError::BadToken)
        ));
        assert!(
            matches!(
                t.report(mac, &ready, Report::Installed),
                Err(ReportError::BadToken)
            ),
            "the ready token cannot install"
        );
        let m = t
            .report(mac, &install, Report::Installed)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.state, slipway_lifecycle::State::Installed);
        assert!(!t.boots_installer(mac));
        assert_eq!(store.machines().unwrap_or_default().len(), 1, "persisted");
        // Re-arm: old tokens stop working.
        t.record(mac, 10, Input::Reinstall)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(t.boots_installer(mac));
        assert!(matches!(
            t.report(mac, &install, Report::Installed),
            Err(ReportError::BadToken)
        ));
        let t2 = Tracker::new(store, b"k".repeat(32)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            t2.machine(mac).map(|m| m.generation),
            Some(1),
            "reloaded from the store"
        );
    }

    /// Counts commits, to prove a burst is stored in one.
    #[derive(Default)]
    struct CountingStore {
        inner: MemoryStore,
        commits: std::sync::atomic::AtomicUsize,
    }

    impl MachineStore for CountingStore {
        fn machines(&self) -> Result<Vec<Machine>, StoreError> {
            self.inner.machines()
        }
        fn put_machines(&self, machines: &[Machine]) -> Result<(), StoreError> {
            self.commits
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.inner.put_machines(machines)
        }
    }

    #[test]
    fn a_burst_is_recorded_in_one_commit() {
        let store = Arc::new(CountingStore::default());
        let t = Tracker::new(store.clone(), vec![1; 32]).unwrap_or_else(|e| panic!("{e}"));
        let (a, b) = (MacAddr([2, 0, 0, 0, 0, 3]), MacAddr([2, 0, 0, 0, 0, 4]));
        let seen = |f: &str| Input::DhcpSeen { firmware: f.into() };
        let burst = vec![
            (a, 10, seen("bios")),
            (b, 10, seen("uefi")),
            (a, 11, seen("ipxe")),
            // Out of order for a machine that is not installed: changes nothing.
            (
                b,
                11,
                Input::Reported(Report::Ready {
                    hostname: "b".into(),
                }),
            ),
        ];
        t.record_many(burst).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.commits.load(std::sync::atomic::Ordering::SeqCst), 1);
        let stored = store.inner.machines().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(stored.len(), 2);
        let ma = t.machine(a).unwrap_or_else(|| panic!("a recorded"));
        assert_eq!(ma.state, slipway_lifecycle::State::Discovered);
        assert_eq!(ma.firmware.as_deref(), Some("ipxe"));
        assert_eq!(
            t.machine(b).map(|m| m.state),
            Some(slipway_lifecycle::State::Discovered)
        );
        // Renewals change nothing: no commit at all.
        t.record_many(vec![(a, 12, seen("ipxe"))])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.commits.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn stale_installs_time_out() {
        let t = Tracker::new(Arc::new(MemoryStore::default()), vec![1; 32])
            .unwrap_or_else(|e| panic!("{e}"));
        let mac = MacAddr([2, 0, 0, 0, 0, 2]);
        t.record(
            mac,
            100,
            Input::BootScript {
                firmware: "x".into(),
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(t.expire(100 + 599, 600, |_| false).is_empty());
        assert_eq!(
            t.expire(100 + 600, 600, |_| false),
            vec![Stalled::Failed(mac)]
        );
        assert_eq!(
            t.machine(mac).map(|m| m.state),
            Some(slipway_lifecycle::State::Failed)
        );
    }

    #[test]
    fn a_stalled_install_with_a_bmc_is_retried_twice_then_fails() {
        use slipway_lifecycle::State;
        let t = Tracker::new(Arc::new(MemoryStore::default()), vec![1; 32])
            .unwrap_or_else(|e| panic!("{e}"));
        let mac = MacAddr([2, 0, 0, 0, 0, 5]);
        let boot = || Input::BootScript {
            firmware: "x".into(),
        };
        t.record(mac, 100, boot()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.expire(700, 600, |_| true), vec![Stalled::Retry(mac)]);
        let m = t.machine(mac).unwrap_or_else(|| panic!("recorded"));
        assert_eq!((m.state, m.since, m.retries), (State::Booting, 700, 1));
        // The timeout starts again from the retry; a second stall is retried too, the
        // third fails.
        assert!(t.expire(1299, 600, |_| true).is_empty());
        assert_eq!(t.expire(1300, 600, |_| true), vec![Stalled::Retry(mac)]);
        assert_eq!(t.machine(mac).map(|m| m.retries), Some(MAX_BMC_RETRIES));
        assert_eq!(t.expire(1900, 600, |_| true), vec![Stalled::Failed(mac)]);
        assert_eq!(t.machine(mac).map(|m| m.state), Some(State::Failed));
        // A re-arm gives the next attempt its own retry.
        t.record(mac, 2000, Input::Reinstall)
            .unwrap_or_else(|e| panic!("{e}"));
        t.record(mac, 2000, boot())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.expire(2600, 600, |_| true), vec![Stalled::Retry(mac)]);
    }
}
