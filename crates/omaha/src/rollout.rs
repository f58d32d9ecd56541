//! The rollout policy: which node may update now, and which may reboot now.
//!
//! A pure state machine in virtual time: every call takes `now` (seconds on the caller's
//! clock, e.g. Unix time) and nothing here reads a clock, touches the network or a disk.
//! The whole [`Rollout`] is serde-serialisable; the caller persists it.
//!
//! # Node phases
//!
//! ```text
//! Idle --grant--> Granted --13--> Downloading --14--> Downloaded --3/1--> Installed
//!                                                                          |
//!              Complete <--checks in at the target version-- RebootGranted <-- reboot_lock
//! ```
//!
//! Any step may skip ahead (a node that reports "installed" while [`Phase::Granted`] is
//! installed). A node *in flight* is one in `Granted`, `Downloading`, `Downloaded`,
//! `Installed` or `RebootGranted`: granted, not yet running the target version.
//!
//! # Policy semantics
//!
//! * **`max_updating`**: at most this many nodes in flight at once. Installed-but-not-
//!   rebooted nodes count: they still have a disruptive reboot ahead. `0` grants nothing.
//! * **`max_per_period` / `period_secs`**: at most this many grants in any sliding window
//!   of `period_secs` (a grant at `t` stops counting at `t + period_secs`). A re-offer to a
//!   node already granted is not a new grant.
//! * **`update_timeout_secs`**: a node in flight longer than this (since its grant, or
//!   since the last [`Rollout::resume`]) **halts** the whole rollout, naming the node and
//!   the time it has taken. The node keeps its phase and may still finish.
//! * **`control_planes_one_at_a_time`**: a control-plane update is exclusive across
//!   roles: a control-plane node is granted (and given the reboot lock) only when no other
//!   node is in flight, and while one is in flight no other node is granted. This keeps
//!   etcd quorum and never drains a control plane while workers are also down.
//! * **`safe_mode`**: a canary. The first grant of the rollout goes to one node only;
//!   nothing else is granted until it completes, and when it completes the rollout halts
//!   ([`HaltReason::CanaryComplete`]) so an operator can look at it and [`Rollout::resume`].
//!   (Nebraska's safe mode likewise limits the group to one update until one was tried.)
//!
//! # Failure
//!
//! A node in flight that reports an error event (result 0, including `update_engine`'s
//! rollback report) becomes [`Phase::Failed`] and halts the rollout
//! ([`HaltReason::NodeFailed`]); a failed node is no longer in flight. Errors from nodes
//! that were never granted, or already complete, are recorded nowhere and halt nothing:
//! they are not about this rollout. [`Rollout::resume`] puts failed nodes back to
//! [`Phase::Idle`] so they may be granted again.
//!
//! While halted nothing is granted, not even a re-offer to a node already granted, and no
//! reboot lock is given (a node already holding one keeps it). Events still move nodes on,
//! and a node may still complete.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::protocol::Progress;

/// Seconds on the caller's clock.
pub type Secs = u64;

/// The limits a rollout respects. See the [module docs](self) for the exact semantics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Nodes in flight (granted, not yet at the target version) at once.
    pub max_updating: u32,
    /// Grants in any sliding window of `period_secs`.
    pub max_per_period: u32,
    /// The window for `max_per_period`, in seconds.
    pub period_secs: Secs,
    /// A node in flight for this long halts the rollout.
    pub update_timeout_secs: Secs,
    /// Control-plane updates are exclusive: one at a time, and never beside another node.
    pub control_planes_one_at_a_time: bool,
    /// The first grant goes to a single canary; the rollout halts when it completes.
    pub safe_mode: bool,
}

impl Default for Policy {
    /// One node at a time, at most 4 an hour, 1 hour timeout, control planes exclusive,
    /// safe mode on.
    fn default() -> Self {
        Self {
            max_updating: 1,
            max_per_period: 4,
            period_secs: 3600,
            update_timeout_secs: 3600,
            control_planes_one_at_a_time: true,
            safe_mode: true,
        }
    }
}

/// A node's role in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Runs etcd and the API server.
    ControlPlane,
    /// Runs workloads.
    Worker,
}

/// Where a node is in this rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Not granted (or not yet checked in).
    Idle,
    /// Offered the update; nothing heard since.
    Granted,
    /// Downloading the payload.
    Downloading,
    /// Payload downloaded, being verified and installed.
    Downloaded,
    /// Installed on the other partition; needs a reboot.
    Installed,
    /// Holds the reboot lock.
    RebootGranted,
    /// Runs the target version.
    Complete,
    /// Reported an error while in flight.
    Failed {
        /// The `errorcode` it sent, if any.
        code: Option<i64>,
    },
}

impl Phase {
    /// Granted and not yet at the target version.
    pub fn in_flight(&self) -> bool {
        matches!(
            self,
            Phase::Granted
                | Phase::Downloading
                | Phase::Downloaded
                | Phase::Installed
                | Phase::RebootGranted
        )
    }
}

/// What the rollout knows of one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeState {
    /// Its role.
    pub role: Role,
    /// The version it last reported.
    pub version: Option<String>,
    /// Its phase.
    pub phase: Phase,
    /// When it was granted the update.
    pub granted_at: Option<Secs>,
    /// Where its update timeout runs from: the grant, or the last resume.
    pub timer_from: Option<Secs>,
    /// When it was given the reboot lock.
    pub reboot_granted_at: Option<Secs>,
    /// When it completed.
    pub completed_at: Option<Secs>,
}

impl NodeState {
    /// A node not yet heard from.
    pub fn new(role: Role) -> Self {
        Self {
            role,
            version: None,
            phase: Phase::Idle,
            granted_at: None,
            timer_from: None,
            reboot_granted_at: None,
            completed_at: None,
        }
    }
}

/// Why a rollout is halted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HaltReason {
    /// A node has been in flight longer than the update timeout.
    Timeout {
        /// The node.
        node: String,
        /// How long it had been in flight when the halt was noticed, in seconds.
        elapsed_secs: Secs,
    },
    /// A node in flight reported an error.
    NodeFailed {
        /// The node.
        node: String,
        /// The `errorcode` it sent, if any.
        code: Option<i64>,
    },
    /// Safe mode: the canary completed; an operator resumes.
    CanaryComplete {
        /// The canary.
        node: String,
    },
    /// An operator halted it.
    Operator(String),
}

/// A halt: why and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Halt {
    /// Why.
    pub reason: HaltReason,
    /// When.
    pub at: Secs,
}

/// The safe-mode canary's progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Canary {
    /// No canary granted yet (or safe mode off and nothing granted yet).
    Pending,
    /// The canary is in flight.
    Running(String),
    /// The canary completed (or safe mode does not apply any more).
    Done,
}

/// The answer to an update check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    /// Offer the target version.
    Update,
    /// Do not, for this reason.
    NoUpdate(NoUpdateReason),
}

/// Why a node is not offered the update now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NoUpdateReason {
    /// The node is not part of this rollout.
    UnknownNode,
    /// It runs the target version already.
    AtTarget,
    /// The rollout is halted.
    Halted,
    /// It failed; it waits for a resume.
    Failed,
    /// It installed the update and waits for its reboot.
    AwaitingReboot,
    /// `max_updating` nodes are in flight.
    MaxUpdating,
    /// `max_per_period` grants in the current window.
    MaxPerPeriod,
    /// A control-plane node is in flight (or, for a control plane, any node is).
    ControlPlaneExclusive,
    /// Safe mode: the canary is still in flight.
    CanaryRunning,
}

/// The answer to a reboot-lock request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RebootDecision {
    /// The node may reboot now.
    Granted,
    /// Not yet, for this reason.
    Wait(RebootWait),
}

/// Why a node may not reboot now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RebootWait {
    /// The node is not part of this rollout.
    UnknownNode,
    /// It has not installed the update (the lock is for installed nodes only).
    NotInstalled,
    /// The rollout is halted.
    Halted,
    /// `max_updating` nodes hold the lock.
    MaxRebooting,
    /// A control-plane node holds the lock (or, for a control plane, any node does).
    ControlPlaneExclusive,
}

/// A rollout of one target version over a set of nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollout {
    /// The version every node should end up running.
    pub target_version: String,
    /// The limits.
    pub policy: Policy,
    /// Nodes by id (machine id or hostname: the caller's choice, used consistently).
    pub nodes: BTreeMap<String, NodeState>,
    /// Set when halted.
    pub halted: Option<Halt>,
    /// The times of grants still inside the period window, oldest first.
    pub grants: Vec<Secs>,
    /// The safe-mode canary.
    pub canary: Canary,
}

impl Rollout {
    /// A rollout of `target_version` over `nodes` (id and role), all [`Phase::Idle`].
    pub fn new(
        target_version: impl Into<String>,
        policy: Policy,
        nodes: impl IntoIterator<Item = (String, Role)>,
    ) -> Self {
        let canary = if policy.safe_mode {
            Canary::Pending
        } else {
            Canary::Done
        };
        Self {
            target_version: target_version.into(),
            policy,
            nodes: nodes
                .into_iter()
                .map(|(id, role)| (id, NodeState::new(role)))
                .collect(),
            halted: None,
            grants: Vec::new(),
            canary,
        }
    }

    /// Adds a node (or changes the role of a known one, keeping its state).
    pub fn add_node(&mut self, id: impl Into<String>, role: Role) {
        self.nodes
            .entry(id.into())
            .and_modify(|n| n.role = role)
            .or_insert_with(|| NodeState::new(role));
    }

    /// How many nodes are in flight.
    pub fn in_flight(&self) -> usize {
        self.nodes.values().filter(|n| n.phase.in_flight()).count()
    }

    /// Whether every node runs the target version.
    pub fn is_complete(&self) -> bool {
        self.nodes.values().all(|n| n.phase == Phase::Complete)
    }

    /// A node asks for an update, running `reported_version`. Runs [`Rollout::tick`]
    /// first. Returns [`Decision::Update`] when the node may fetch the target now (a new
    /// grant, or a re-offer to a node already granted that asks again).
    pub fn on_check(&mut self, node: &str, now: Secs, reported_version: &str) -> Decision {
        self.tick(now);
        let target = self.target_version.clone();
        let Some(state) = self.nodes.get_mut(node) else {
            return Decision::NoUpdate(NoUpdateReason::UnknownNode);
        };
        state.version = Some(reported_version.to_owned());
        if reported_version == target {
            if state.phase != Phase::Complete {
                state.phase = Phase::Complete;
                state.completed_at = Some(now);
                self.on_completed(node, now);
            }
            return Decision::NoUpdate(NoUpdateReason::AtTarget);
        }
        match state.phase {
            Phase::Failed { .. } => return Decision::NoUpdate(NoUpdateReason::Failed),
            Phase::Installed | Phase::RebootGranted => {
                return Decision::NoUpdate(NoUpdateReason::AwaitingReboot);
            }
            _ => {}
        }
        if self.halted.is_some() {
            return Decision::NoUpdate(NoUpdateReason::Halted);
        }
        let (phase, role) = (state.phase.clone(), state.role);
        if phase.in_flight() {
            // Granted before and asking again (update_engine restarted, a download
            // retried): offer again; it is not a new grant.
            return Decision::Update;
        }
        // Idle, or Complete but reporting another version (rolled back or reinstalled):
        // a new grant.
        if let Some(reason) = self.grant_refusal(node, role, now) {
            return Decision::NoUpdate(reason);
        }
        if let Some(state) = self.nodes.get_mut(node) {
            state.phase = Phase::Granted;
            state.granted_at = Some(now);
            state.timer_from = Some(now);
            state.reboot_granted_at = None;
            state.completed_at = None;
        }
        self.grants.push(now);
        if self.canary == Canary::Pending {
            self.canary = Canary::Running(node.to_owned());
        }
        Decision::Update
    }

    fn grant_refusal(&mut self, node: &str, role: Role, now: Secs) -> Option<NoUpdateReason> {
        if let Canary::Running(_) = self.canary {
            return Some(NoUpdateReason::CanaryRunning);
        }
        let in_flight = self.in_flight();
        if in_flight >= self.policy.max_updating as usize {
            return Some(NoUpdateReason::MaxUpdating);
        }
        self.prune_grants(now);
        if self.grants.len() >= self.policy.max_per_period as usize {
            return Some(NoUpdateReason::MaxPerPeriod);
        }
        if self.policy.control_planes_one_at_a_time {
            let cp_in_flight = self
                .nodes
                .iter()
                .any(|(id, n)| id != node && n.role == Role::ControlPlane && n.phase.in_flight());
            if cp_in_flight || (role == Role::ControlPlane && in_flight > 0) {
                return Some(NoUpdateReason::ControlPlaneExclusive);
            }
        }
        None
    }

    fn prune_grants(&mut self, now: Secs) {
        let period = self.policy.period_secs;
        self.grants.retain(|&t| now < t.saturating_add(period));
    }

    fn on_completed(&mut self, node: &str, now: Secs) {
        if self.canary == Canary::Running(node.to_owned()) {
            self.canary = Canary::Done;
            if self.halted.is_none() {
                self.halted = Some(Halt {
                    reason: HaltReason::CanaryComplete {
                        node: node.to_owned(),
                    },
                    at: now,
                });
            }
        }
    }

    /// A node reported progress (from [`crate::protocol::Event::progress`]). Returns
    /// whether its state changed. Out-of-order reports (a download from a node never
    /// granted, an install from a complete node) change nothing. [`Progress::Checking`]
    /// and [`Progress::Rebooted`] change nothing either: completion is told by the
    /// version the node reports to [`Rollout::on_check`].
    pub fn on_event(&mut self, node: &str, progress: &Progress, now: Secs) -> bool {
        let Some(state) = self.nodes.get_mut(node) else {
            return false;
        };
        let next = match (progress, &state.phase) {
            (Progress::Downloading, Phase::Granted) => Phase::Downloading,
            (Progress::Downloaded, Phase::Granted | Phase::Downloading) => Phase::Downloaded,
            (Progress::Installed, Phase::Granted | Phase::Downloading | Phase::Downloaded) => {
                Phase::Installed
            }
            (Progress::Error { code, .. }, phase) if phase.in_flight() => {
                let code = *code;
                state.phase = Phase::Failed { code };
                if self.canary == Canary::Running(node.to_owned()) {
                    // The canary failed: the next grant is a new canary.
                    self.canary = Canary::Pending;
                }
                if self.halted.is_none() {
                    self.halted = Some(Halt {
                        reason: HaltReason::NodeFailed {
                            node: node.to_owned(),
                            code,
                        },
                        at: now,
                    });
                }
                return true;
            }
            _ => return false,
        };
        state.phase = next;
        true
    }

    /// Notices timeouts: a node in flight for `update_timeout_secs` or more halts the
    /// rollout (the first halt reason is kept). Also forgets grants out of the window.
    pub fn tick(&mut self, now: Secs) {
        self.prune_grants(now);
        if self.halted.is_some() {
            return;
        }
        let timeout = self.policy.update_timeout_secs;
        let late = self
            .nodes
            .iter()
            .filter(|(_, n)| n.phase.in_flight())
            .filter_map(|(id, n)| {
                let since = n.timer_from.or(n.granted_at)?;
                let elapsed = now.saturating_sub(since);
                (elapsed >= timeout).then(|| (id.clone(), elapsed))
            })
            .max_by_key(|(_, elapsed)| *elapsed);
        if let Some((node, elapsed_secs)) = late {
            self.halted = Some(Halt {
                reason: HaltReason::Timeout { node, elapsed_secs },
                at: now,
            });
        }
    }

    /// An installed node asks whether it may reboot. Runs [`Rollout::tick`] first.
    /// Granting is idempotent: a node holding the lock is told [`RebootDecision::Granted`]
    /// again, even when halted. The lock is released when the node completes or fails.
    pub fn reboot_lock(&mut self, node: &str, now: Secs) -> RebootDecision {
        self.tick(now);
        let Some(state) = self.nodes.get(node) else {
            return RebootDecision::Wait(RebootWait::UnknownNode);
        };
        match state.phase {
            Phase::RebootGranted => return RebootDecision::Granted,
            Phase::Installed => {}
            _ => return RebootDecision::Wait(RebootWait::NotInstalled),
        }
        if self.halted.is_some() {
            return RebootDecision::Wait(RebootWait::Halted);
        }
        let role = state.role;
        let holders: Vec<Role> = self
            .nodes
            .values()
            .filter(|n| n.phase == Phase::RebootGranted)
            .map(|n| n.role)
            .collect();
        if holders.len() >= self.policy.max_updating as usize {
            return RebootDecision::Wait(RebootWait::MaxRebooting);
        }
        if self.policy.control_planes_one_at_a_time
            && (holders.contains(&Role::ControlPlane)
                || (role == Role::ControlPlane && !holders.is_empty()))
        {
            return RebootDecision::Wait(RebootWait::ControlPlaneExclusive);
        }
        if let Some(state) = self.nodes.get_mut(node) {
            state.phase = Phase::RebootGranted;
            state.reboot_granted_at = Some(now);
        }
        RebootDecision::Granted
    }

    /// Halts the rollout for an operator's reason (an existing halt is kept).
    pub fn halt(&mut self, reason: impl Into<String>, now: Secs) {
        if self.halted.is_none() {
            self.halted = Some(Halt {
                reason: HaltReason::Operator(reason.into()),
                at: now,
            });
        }
    }

    /// Resumes a halted rollout: clears the halt, restarts the update timeout of every
    /// node in flight from `now`, and puts failed nodes back to [`Phase::Idle`].
    pub fn resume(&mut self, now: Secs) {
        self.halted = None;
        for state in self.nodes.values_mut() {
            if state.phase.in_flight() {
                state.timer_from = Some(now);
            }
            if let Phase::Failed { .. } = state.phase {
                state.phase = Phase::Idle;
            }
        }
    }
}
