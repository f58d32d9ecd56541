//! Rolling re-image (`slipway upgrade`), the pure part: which nodes differ from what
//! the cluster file renders now ([`decide`]), in which order ([`Plan::new`]: control
//! planes one at a time, then workers in waves of at most `max_unavailable`), and the
//! walk itself as a state machine ([`Plan::next`] says what to do given what the
//! machines' lives show, [`Plan::record`] takes the outcome). No clock, no IO: the
//! command (`reimage_cmd`) passes `now`, runs the actions, and stores the plan after
//! every change, so that a re-run resumes it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use slipway_lifecycle::Build;

/// The plan file's format; a file of another format is refused, not misread.
pub const FORMAT: u32 = 1;

/// A node's part in the cluster, as far as the rollout's order cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// A control-plane node: re-imaged alone, one at a time.
    ControlPlane,
    /// Any other node: re-imaged in waves.
    Worker,
}

impl Role {
    /// The name shown and given to hooks (`SLIPWAY_ROLE`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::ControlPlane => "control-plane",
            Role::Worker => "worker",
        }
    }
}

/// What slipway knows of a node's disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installed {
    /// Installed with this build (recorded when it was served and reported installed).
    Build(Build),
    /// Installed (its life says so) but no build was recorded: it was installed before
    /// slipway recorded builds.
    Unrecorded,
    /// Not installed (never, or its install failed before writing the disk).
    No,
}

/// One node as the rollout sees it: from the cluster file, and from its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Its hostname.
    pub hostname: String,
    /// Its address.
    pub ip: String,
    /// Its role.
    pub role: Role,
    /// Whether it has a BMC (without one it cannot be power-cycled into the installer).
    pub has_bmc: bool,
    /// Whether it is the node that runs `kubeadm init`: its re-install runs it again.
    pub init: bool,
    /// Its lifecycle state now (`ready`, `installed`, ...).
    pub state: String,
    /// What the cluster file renders for it now.
    pub want: Build,
    /// What its disk holds.
    pub installed: Installed,
}

/// Whether a node is re-imaged, and why (or why not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Re-image it: why (`os 4081.2.0 -> 4116.0.0`, `install config changed`).
    Reimage(String),
    /// Leave it: why (up to date, not installed, unknown, no BMC, not ready).
    Skip(String),
}

/// The text for a node installed before slipway recorded builds.
pub const UNKNOWN: &str = "unknown: installed before slipway recorded it";

/// Which nodes a plan may include beyond those that plainly differ.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Include {
    /// Nodes installed before slipway recorded builds.
    pub unknown: bool,
    /// The `kubeadm init` node.
    pub init_node: bool,
}

/// Whether `c` is re-imaged: its recorded build differs from what the file renders
/// now; a node with no recorded build only with `include.unknown`, the `kubeadm init`
/// node only with `include.init_node` (its fresh install runs `kubeadm init` again).
/// Only a `ready` node with a BMC is re-imaged (one still installing or failed is
/// `slipway provision`'s).
pub fn decide(c: &Candidate, include: Include) -> Decision {
    let include_unknown = include.unknown;
    let why = match &c.installed {
        Installed::No => {
            return Decision::Skip("not installed (slipway provision installs it)".into());
        }
        Installed::Unrecorded if !include_unknown => {
            return Decision::Skip(format!("{UNKNOWN} (--include-unknown re-images it)"));
        }
        Installed::Unrecorded => format!("{UNKNOWN}, now os {}", c.want.os_version),
        Installed::Build(b) if b == &c.want => return Decision::Skip("up to date".into()),
        Installed::Build(b) if b.os_version != c.want.os_version => {
            format!("os {} -> {}", b.os_version, c.want.os_version)
        }
        Installed::Build(_) => "install config changed".into(),
    };
    if c.state != "ready" {
        return Decision::Skip(format!(
            "{why}, but it is {} (not ready): finish or fix it first",
            c.state
        ));
    }
    if !c.has_bmc {
        return Decision::Skip(format!("{why}, but it has no `bmc` to power-cycle it"));
    }
    if c.init && !include.init_node {
        return Decision::Skip(format!(
            "{why}, but it is the `kubeadm init` node: its fresh install runs `kubeadm init` \
             again, a new cluster (--include-init-node re-images it anyway)"
        ));
    }
    Decision::Reimage(why)
}

/// Where one node is in the rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "phase")]
pub enum Phase {
    /// Not started: untouched.
    Pending,
    /// Its pre-hook runs (a resumed rollout runs it again: hooks must be idempotent).
    PreHook,
    /// Its pre-hook succeeded; nothing else was done to it yet.
    HookDone,
    /// Its install is being re-armed; `from` is the generation before.
    Rearming {
        /// The install generation before the re-arm.
        from: u32,
    },
    /// Re-armed as `generation`; PXE once and a power cycle are due.
    Cycling {
        /// The install generation re-armed.
        generation: u32,
    },
    /// Power-cycled into the installer at `since`: followed until `ready`.
    Installing {
        /// The install generation followed.
        generation: u32,
        /// When it was power-cycled (seconds since the Unix epoch).
        since: u64,
        /// Whether `installed` was seen.
        installed: bool,
    },
    /// Ready again; its post-hook runs.
    PostHook,
    /// The rollout halted before this node was re-armed: its post-hook runs to undo
    /// the pre-hook, then it is pending again.
    Restoring,
    /// Re-imaged, ready, post-hook done.
    Done,
    /// It failed; the rollout halted.
    Failed {
        /// Why.
        why: String,
    },
}

impl Phase {
    /// Whether the node is between its pre-hook and the end of its post-hook.
    pub fn active(&self) -> bool {
        !matches!(self, Phase::Pending | Phase::Done | Phase::Failed { .. })
    }

    /// A short name for tables.
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Pending => "pending",
            Phase::PreHook => "pre-hook",
            Phase::HookDone => "hook-done",
            Phase::Rearming { .. } => "re-arming",
            Phase::Cycling { .. } => "power-cycling",
            Phase::Installing { .. } => "installing",
            Phase::PostHook => "post-hook",
            Phase::Restoring => "restoring",
            Phase::Done => "done",
            Phase::Failed { .. } => "FAILED",
        }
    }
}

/// One node of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Its hostname.
    pub hostname: String,
    /// Its address (for hooks).
    pub ip: String,
    /// Its role.
    pub role: Role,
    /// Its wave (0-based): nodes of one wave are down together.
    pub wave: usize,
    /// Why it is re-imaged.
    pub why: String,
    /// What the file rendered for it when the plan was made.
    pub target: Build,
    /// Where it is.
    pub phase: Phase,
    /// When it was started (seconds since the Unix epoch).
    #[serde(default)]
    pub started: Option<u64>,
    /// When it was done.
    #[serde(default)]
    pub finished: Option<u64>,
}

/// A node left out of the plan, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// Its hostname.
    pub hostname: String,
    /// Why it is not re-imaged.
    pub why: String,
}

/// A rolling re-image of one cluster: its nodes in order and where each is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// [`FORMAT`].
    pub format: u32,
    /// The cluster's name.
    pub cluster: String,
    /// When the plan was made (seconds since the Unix epoch).
    pub created: u64,
    /// Most workers down at once.
    pub max_unavailable: usize,
    /// The nodes re-imaged, in order.
    pub steps: Vec<Step>,
    /// The nodes left alone, and why.
    pub skipped: Vec<Skipped>,
    /// Why the rollout halted, once it did.
    #[serde(default)]
    pub halted: Option<String>,
}

/// What the machines' lives show of one node (from the operator API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Its lifecycle state.
    pub state: String,
    /// Its install generation.
    pub generation: u32,
    /// Why it failed, when it did.
    pub reason: Option<String>,
}

/// Something the command must do to a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Run the pre-hook (e.g. drain).
    PreHook,
    /// Re-arm its install through the operator API.
    Rearm,
    /// PXE once and power cycle through its BMC.
    Cycle,
    /// Run the post-hook (e.g. uncordon).
    PostHook,
}

impl Action {
    /// The name shown in progress lines.
    pub fn name(&self) -> &'static str {
        match self {
            Action::PreHook => "pre-hook",
            Action::Rearm => "re-arm",
            Action::Cycle => "power cycle",
            Action::PostHook => "post-hook",
        }
    }
}

/// How an action went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It succeeded.
    Ok,
    /// The re-arm succeeded: the new generation.
    Rearmed(u32),
    /// It failed, and why: the rollout halts.
    Failed(String),
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Run these actions (on different nodes: they may run at once), then record each
    /// outcome.
    Act(Vec<(String, Action)>),
    /// Nothing to do but wait for the machines.
    Wait,
    /// Every node is done.
    Finished,
    /// Halted, and why: no node is in flight any more.
    Halted(String),
}

impl Plan {
    /// The plan for `candidates` (in the cluster file's order): those [`decide`] picks,
    /// control planes first and each alone in its wave, then workers in waves of at
    /// most `max_unavailable` (at least 1).
    pub fn new(
        cluster: &str,
        candidates: &[Candidate],
        max_unavailable: usize,
        include: Include,
        now: u64,
    ) -> Plan {
        let max = max_unavailable.max(1);
        let mut cps = Vec::new();
        let mut workers = Vec::new();
        let mut skipped = Vec::new();
        for c in candidates {
            match decide(c, include) {
                Decision::Skip(why) => skipped.push(Skipped {
                    hostname: c.hostname.clone(),
                    why,
                }),
                Decision::Reimage(why) => {
                    let step = Step {
                        hostname: c.hostname.clone(),
                        ip: c.ip.clone(),
                        role: c.role,
                        wave: 0,
                        why,
                        target: c.want.clone(),
                        phase: Phase::Pending,
                        started: None,
                        finished: None,
                    };
                    match c.role {
                        Role::ControlPlane => cps.push(step),
                        Role::Worker => workers.push(step),
                    }
                }
            }
        }
        let mut steps = Vec::new();
        for (wave, mut s) in cps.into_iter().enumerate() {
            s.wave = wave;
            steps.push(s);
        }
        let first = steps.len();
        for (i, mut s) in workers.into_iter().enumerate() {
            s.wave = first + i / max;
            steps.push(s);
        }
        Plan {
            format: FORMAT,
            cluster: cluster.to_string(),
            created: now,
            max_unavailable: max,
            steps,
            skipped,
            halted: None,
        }
    }

    /// Whether every node is done.
    pub fn finished(&self) -> bool {
        self.steps.iter().all(|s| s.phase == Phase::Done)
    }

    /// The wave in flight or next: the first with a node not done.
    pub fn current_wave(&self) -> Option<usize> {
        self.steps
            .iter()
            .filter(|s| s.phase != Phase::Done)
            .map(|s| s.wave)
            .min()
    }

    /// Makes a halted plan go again: its failed nodes start over (pre-hook, re-arm,
    /// power cycle); nodes done stay done. Returns the nodes restarted.
    pub fn retry(&mut self) -> Vec<String> {
        self.halted = None;
        let mut again = Vec::new();
        for s in &mut self.steps {
            if matches!(s.phase, Phase::Failed { .. }) {
                s.phase = Phase::Pending;
                s.started = None;
                again.push(s.hostname.clone());
            }
        }
        again
    }

    fn step_mut(&mut self, host: &str) -> Option<&mut Step> {
        self.steps.iter_mut().find(|s| s.hostname == host)
    }

    fn halt(&mut self, host: &str, why: &str) {
        if self.halted.is_none() {
            self.halted = Some(format!("{host}: {why}"));
        }
    }

    /// What to do next, given what the machines' lives show (`seen`, by hostname) at
    /// `now`; a node not ready `timeout` seconds after its power cycle fails. Moves
    /// nodes along as their lives say (re-armed, installed, ready, failed) and marks
    /// each node whose action it returns as started, so that the plan stored before
    /// the actions run says what may be half done.
    pub fn next(&mut self, seen: &BTreeMap<String, Seen>, now: u64, timeout: u64) -> Next {
        // 1. Follow the lives of the nodes in flight.
        let mut failures = Vec::new();
        for s in &mut self.steps {
            let Some(m) = seen.get(&s.hostname) else {
                if s.phase.active() {
                    failures.push((
                        s.hostname.clone(),
                        "the server does not list it any more".to_string(),
                    ));
                }
                continue;
            };
            match s.phase.clone() {
                // Resumed after a crash mid-re-arm: did it happen?
                Phase::Rearming { from } if m.generation > from => {
                    s.phase = Phase::Cycling {
                        generation: m.generation,
                    };
                }
                // Resumed after a crash mid-power-cycle: a machine whose new install
                // has begun is followed, not cycled again ("discovered" may be the old
                // OS's own DHCP: not a sign of the installer).
                Phase::Cycling { generation }
                    if m.generation == generation
                        && !matches!(m.state.as_str(), "unknown" | "discovered") =>
                {
                    s.phase = Phase::Installing {
                        generation,
                        since: now,
                        installed: false,
                    };
                }
                Phase::Installing {
                    generation,
                    since,
                    installed,
                } => {
                    if m.generation != generation {
                        failures.push((
                            s.hostname.clone(),
                            format!(
                                "re-armed by someone else (generation {}, this rollout armed {generation})",
                                m.generation
                            ),
                        ));
                    } else if m.state == "ready" {
                        s.phase = Phase::PostHook;
                    } else if m.state == "failed" {
                        let why = m.reason.clone().unwrap_or_else(|| "failed".into());
                        failures.push((s.hostname.clone(), format!("install failed: {why}")));
                    } else if now.saturating_sub(since) > timeout {
                        failures.push((
                            s.hostname.clone(),
                            format!("not ready after {timeout} s (state {})", m.state),
                        ));
                    } else if m.state == "installed" && !installed {
                        s.phase = Phase::Installing {
                            generation,
                            since,
                            installed: true,
                        };
                    }
                }
                _ => {}
            }
        }
        for (host, why) in failures {
            self.record(&host, Outcome::Failed(why), now);
        }
        // 2. Act on the current wave.
        let Some(wave) = self.current_wave() else {
            return Next::Finished;
        };
        let halted = self.halted.is_some();
        let mut actions = Vec::new();
        for s in self.steps.iter_mut().filter(|s| s.wave == wave) {
            let action = match (&s.phase, halted) {
                (Phase::Pending, false) => {
                    s.phase = Phase::PreHook;
                    s.started = Some(now);
                    Action::PreHook
                }
                (Phase::PreHook, false) => Action::PreHook,
                // Halted before this node was re-armed (a re-arm that happened moved it
                // to `Cycling` above): undo its pre-hook.
                (
                    Phase::PreHook | Phase::HookDone | Phase::Restoring | Phase::Rearming { .. },
                    true,
                ) => {
                    s.phase = Phase::Restoring;
                    Action::PostHook
                }
                (Phase::HookDone | Phase::Rearming { .. }, false) => {
                    let Some(m) = seen.get(&s.hostname) else {
                        continue;
                    };
                    s.phase = Phase::Rearming { from: m.generation };
                    Action::Rearm
                }
                (Phase::Cycling { .. }, _) => Action::Cycle,
                (Phase::PostHook, _) => Action::PostHook,
                _ => continue,
            };
            actions.push((s.hostname.clone(), action));
        }
        if !actions.is_empty() {
            return Next::Act(actions);
        }
        match &self.halted {
            Some(why) if !self.steps.iter().any(|s| s.phase.active()) => Next::Halted(why.clone()),
            _ => Next::Wait,
        }
    }

    /// Records how `host`'s action went at `now`; a failure halts the rollout (nodes
    /// in flight are followed to their end, no other node is started).
    pub fn record(&mut self, host: &str, outcome: Outcome, now: u64) {
        let Some(s) = self.step_mut(host) else {
            return;
        };
        let phase = s.phase.clone();
        match (phase, outcome) {
            (_, Outcome::Failed(why)) => {
                s.phase = Phase::Failed { why: why.clone() };
                s.finished = Some(now);
                self.halt(host, &why);
            }
            (Phase::PreHook, _) => s.phase = Phase::HookDone,
            (Phase::Rearming { .. }, Outcome::Rearmed(generation)) => {
                s.phase = Phase::Cycling { generation };
            }
            (Phase::Cycling { generation }, _) => {
                s.phase = Phase::Installing {
                    generation,
                    since: now,
                    installed: false,
                };
            }
            (Phase::PostHook, _) => {
                s.phase = Phase::Done;
                s.finished = Some(now);
            }
            (Phase::Restoring, _) => {
                s.phase = Phase::Pending;
                s.started = None;
            }
            _ => {}
        }
    }

    /// The plan as text: the order in waves, each node's reason and (`progress`) its
    /// phase; then the nodes left alone.
    pub fn render(&self, progress: bool) -> String {
        let mut out = String::new();
        let cps = self
            .steps
            .iter()
            .filter(|s| s.role == Role::ControlPlane)
            .count();
        let _ = writeln!(
            out,
            "rolling re-image of {}: {} node(s) ({cps} control plane(s) one at a time, then workers at most {} at a time)",
            self.cluster,
            self.steps.len(),
            self.max_unavailable
        );
        let mut wave = None;
        for s in &self.steps {
            if wave != Some(s.wave) {
                wave = Some(s.wave);
                let _ = writeln!(out, "  wave {}:", s.wave + 1);
            }
            let phase = match (&s.phase, progress) {
                (_, false) => String::new(),
                (Phase::Failed { why }, true) => format!("  [FAILED: {why}]"),
                (p, true) => format!("  [{}]", p.name()),
            };
            let _ = writeln!(
                out,
                "    {:<16} {:<13} {}{phase}",
                s.hostname,
                s.role.as_str(),
                s.why
            );
        }
        if !self.skipped.is_empty() {
            let _ = writeln!(out, "  left alone:");
            for k in &self.skipped {
                let _ = writeln!(out, "    {:<16} {}", k.hostname, k.why);
            }
        }
        if let Some(why) = &self.halted {
            let _ = writeln!(out, "  HALTED: {why}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(v: &str, cfg: &str) -> Build {
        Build {
            os_version: v.into(),
            config_sha256: cfg.into(),
        }
    }

    fn cand(host: &str, role: Role, installed: Installed) -> Candidate {
        Candidate {
            hostname: host.into(),
            ip: "10.0.0.1".into(),
            role,
            has_bmc: true,
            init: false,
            state: "ready".into(),
            want: build("B", "new"),
            installed,
        }
    }

    fn old() -> Installed {
        Installed::Build(build("A", "old"))
    }

    /// 2 control planes and 3 workers, all on A; the file says B.
    fn fleet() -> Vec<Candidate> {
        vec![
            cand("cp1", Role::ControlPlane, old()),
            cand("w1", Role::Worker, old()),
            cand("cp2", Role::ControlPlane, old()),
            cand("w2", Role::Worker, old()),
            cand("w3", Role::Worker, old()),
        ]
    }

    /// Every node `ready` at generation `g`.
    fn all_ready(plan: &Plan, g: u32) -> BTreeMap<String, Seen> {
        plan.steps
            .iter()
            .map(|s| {
                (
                    s.hostname.clone(),
                    Seen {
                        state: "ready".into(),
                        generation: g,
                        reason: None,
                    },
                )
            })
            .collect()
    }

    /// A fleet of fake machines: runs actions, makes re-armed machines install and
    /// come up after a few polls, and keeps the most nodes ever down at once.
    struct Sim {
        seen: BTreeMap<String, Seen>,
        /// Polls until ready, per node re-armed.
        busy: BTreeMap<String, u32>,
        /// Nodes whose install fails.
        broken: Vec<String>,
        /// Nodes whose pre-hook fails.
        bad_hook: Vec<String>,
        down_log: Vec<Vec<String>>,
        touched: Vec<String>,
    }

    impl Sim {
        fn new(plan: &Plan) -> Sim {
            Sim {
                seen: all_ready(plan, 1),
                busy: BTreeMap::new(),
                broken: Vec::new(),
                bad_hook: Vec::new(),
                down_log: Vec::new(),
                touched: Vec::new(),
            }
        }

        fn act(&mut self, host: &str, a: &Action) -> Outcome {
            if !self.touched.iter().any(|t| t == host) {
                self.touched.push(host.into());
            }
            match a {
                Action::PreHook if self.bad_hook.iter().any(|b| b == host) => {
                    Outcome::Failed("pre-hook exited 1".into())
                }
                Action::PreHook | Action::PostHook => Outcome::Ok,
                Action::Rearm => {
                    let m = self.seen.get_mut(host).unwrap_or_else(|| panic!("{host}"));
                    m.generation += 1;
                    m.state = "unknown".into();
                    Outcome::Rearmed(m.generation)
                }
                Action::Cycle => {
                    self.busy.insert(host.into(), 3);
                    Outcome::Ok
                }
            }
        }

        /// One poll: machines being installed move on.
        fn tick(&mut self) {
            let down: Vec<String> = self
                .seen
                .iter()
                .filter(|(_, m)| m.state != "ready")
                .map(|(h, _)| h.clone())
                .collect();
            self.down_log.push(down);
            let broken = self.broken.clone();
            for (host, left) in self.busy.iter_mut() {
                let m = self.seen.get_mut(host).unwrap_or_else(|| panic!("{host}"));
                if *left == 0 {
                    continue;
                }
                *left -= 1;
                m.state = match *left {
                    2 => "installing",
                    1 if broken.contains(host) => "failed",
                    1 => "installed",
                    0 if m.state == "failed" => "failed",
                    _ => "ready",
                }
                .into();
            }
        }

        /// Runs the plan to its end (or `limit` rounds, or `crash_after` rounds: then
        /// returns what the walk said last).
        fn run(&mut self, plan: &mut Plan, limit: usize) -> Next {
            let mut now = 1000;
            for _ in 0..limit {
                now += 10;
                self.tick();
                match plan.next(&self.seen, now, 600) {
                    Next::Act(actions) => {
                        for (h, a) in actions {
                            let o = self.act(&h, &a);
                            plan.record(&h, o, now);
                        }
                    }
                    Next::Wait => {}
                    end => return end,
                }
            }
            Next::Wait
        }

        fn most_down(&self) -> usize {
            self.down_log.iter().map(Vec::len).max().unwrap_or(0)
        }
    }

    const UNKNOWN_TOO: Include = Include {
        unknown: true,
        init_node: false,
    };

    #[test]
    fn reasons_and_decisions() {
        let c = cand("w", Role::Worker, old());
        assert_eq!(
            decide(&c, Include::default()),
            Decision::Reimage("os A -> B".into())
        );
        let c = cand("w", Role::Worker, Installed::Build(build("B", "old")));
        assert_eq!(
            decide(&c, Include::default()),
            Decision::Reimage("install config changed".into())
        );
        let c = cand("w", Role::Worker, Installed::Build(build("B", "new")));
        assert_eq!(
            decide(&c, Include::default()),
            Decision::Skip("up to date".into())
        );
        let c = cand("w", Role::Worker, Installed::Unrecorded);
        assert!(
            matches!(decide(&c, Include::default()), Decision::Skip(w) if w.starts_with(UNKNOWN))
        );
        assert!(matches!(decide(&c, UNKNOWN_TOO), Decision::Reimage(w) if w.starts_with(UNKNOWN)));
        let c = cand("w", Role::Worker, Installed::No);
        assert!(
            matches!(decide(&c, UNKNOWN_TOO), Decision::Skip(w) if w.starts_with("not installed"))
        );
        let mut c = cand("w", Role::Worker, old());
        c.has_bmc = false;
        assert!(
            matches!(decide(&c, Include::default()), Decision::Skip(w) if w.contains("no `bmc`"))
        );
        let mut c = cand("w", Role::Worker, old());
        c.state = "failed".into();
        assert!(
            matches!(decide(&c, Include::default()), Decision::Skip(w) if w.contains("not ready"))
        );
        let mut c = cand("cp", Role::ControlPlane, old());
        c.init = true;
        assert!(
            matches!(decide(&c, Include::default()), Decision::Skip(w) if w.contains("`kubeadm init` node"))
        );
        let init_too = Include {
            unknown: false,
            init_node: true,
        };
        assert_eq!(decide(&c, init_too), Decision::Reimage("os A -> B".into()));
    }

    #[test]
    fn control_planes_alone_first_then_workers_in_waves() {
        let plan = Plan::new("c", &fleet(), 2, Include::default(), 0);
        let order: Vec<(&str, usize)> = plan
            .steps
            .iter()
            .map(|s| (s.hostname.as_str(), s.wave))
            .collect();
        assert_eq!(
            order,
            [("cp1", 0), ("cp2", 1), ("w1", 2), ("w2", 2), ("w3", 3)]
        );
        // max_unavailable 0 means 1.
        let plan = Plan::new("c", &fleet(), 0, Include::default(), 0);
        assert_eq!(plan.max_unavailable, 1);
        assert_eq!(plan.steps.iter().map(|s| s.wave).max(), Some(4));
    }

    #[test]
    fn the_walk_never_has_more_down_than_allowed() {
        for max in 1..=3 {
            let mut plan = Plan::new("c", &fleet(), max, Include::default(), 0);
            let mut sim = Sim::new(&plan);
            assert_eq!(sim.run(&mut plan, 500), Next::Finished, "max {max}");
            assert!(plan.finished());
            assert!(sim.most_down() <= max, "{max}: {:?}", sim.down_log);
            for down in &sim.down_log {
                let cps = down.iter().filter(|h| h.starts_with("cp")).count();
                assert!(cps <= 1, "two control planes down: {down:?}");
                assert!(
                    cps == 0 || down.len() == 1,
                    "a control plane down with workers: {down:?}"
                );
            }
            assert_eq!(sim.most_down(), max.min(3), "waves are filled");
            // Each node went through installed to ready at a new generation.
            assert!(
                sim.seen
                    .values()
                    .all(|m| m.generation == 2 && m.state == "ready")
            );
        }
    }

    #[test]
    fn a_failure_halts_and_leaves_the_rest_untouched() {
        let mut plan = Plan::new("c", &fleet(), 1, Include::default(), 0);
        let mut sim = Sim::new(&plan);
        sim.broken.push("w1".into());
        let end = sim.run(&mut plan, 500);
        assert!(
            matches!(&end, Next::Halted(w) if w.starts_with("w1: install failed")),
            "{end:?}"
        );
        assert_eq!(sim.touched, ["cp1", "cp2", "w1"], "w2 and w3 untouched");
        let phase = |h: &str| {
            plan.steps
                .iter()
                .find(|s| s.hostname == h)
                .map(|s| s.phase.name())
                .unwrap_or_default()
        };
        assert_eq!(
            [
                phase("cp1"),
                phase("cp2"),
                phase("w1"),
                phase("w2"),
                phase("w3")
            ],
            ["done", "done", "FAILED", "pending", "pending"]
        );
        // Halted: asking again changes nothing.
        assert!(matches!(plan.next(&sim.seen, 99_999, 600), Next::Halted(_)));
        assert_eq!(sim.touched.len(), 3);
        // Fixed, re-run: the failed node starts over, the others follow.
        sim.broken.clear();
        assert_eq!(plan.retry(), ["w1"]);
        assert_eq!(sim.run(&mut plan, 500), Next::Finished);
        assert_eq!(sim.seen["cp1"].generation, 2, "done stays done");
        assert_eq!(sim.seen["w1"].generation, 3, "re-armed again");
    }

    #[test]
    fn a_failed_pre_hook_in_a_wave_restores_its_wave_mates() {
        let mut plan = Plan::new("c", &fleet(), 2, Include::default(), 0);
        let mut sim = Sim::new(&plan);
        sim.bad_hook.push("w1".into());
        let end = sim.run(&mut plan, 500);
        assert!(
            matches!(&end, Next::Halted(w) if w.contains("pre-hook exited 1")),
            "{end:?}"
        );
        // w2 shared w1's wave: drained, then restored (post-hook) and never re-armed.
        assert_eq!(sim.seen["w2"].generation, 1);
        assert_eq!(
            plan.steps
                .iter()
                .find(|s| s.hostname == "w2")
                .map(|s| &s.phase),
            Some(&Phase::Pending)
        );
        assert!(!sim.touched.contains(&"w3".to_string()));
    }

    #[test]
    fn a_timeout_halts() {
        let mut plan = Plan::new("c", &fleet(), 1, Include::default(), 0);
        let seen = all_ready(&plan, 1);
        let mut sim = Sim::new(&plan);
        sim.seen = seen;
        // Re-arm and cycle cp1, then the machine never moves.
        for now in [10, 11, 12] {
            if let Next::Act(a) = plan.next(&sim.seen, now, 600) {
                for (h, a) in a {
                    let o = sim.act(&h, &a);
                    plan.record(&h, o, now);
                }
            }
        }
        assert!(matches!(plan.steps[0].phase, Phase::Installing { .. }));
        assert_eq!(plan.next(&sim.seen, 600, 600), Next::Wait);
        assert!(
            matches!(plan.next(&sim.seen, 700, 600), Next::Halted(w) if w.contains("not ready after 600 s"))
        );
    }

    #[test]
    fn a_resumed_plan_follows_nodes_in_flight() {
        let mut plan = Plan::new("c", &fleet(), 1, Include::default(), 0);
        let mut sim = Sim::new(&plan);
        // Crash right after the re-arm was sent but before its outcome was stored.
        let Next::Act(a) = plan.next(&sim.seen, 1001, 600) else {
            panic!("pre-hook first")
        };
        assert_eq!(a, [("cp1".to_string(), Action::PreHook)]);
        plan.record("cp1", Outcome::Ok, 1001);
        let Next::Act(a) = plan.next(&sim.seen, 1002, 600) else {
            panic!("re-arm")
        };
        assert_eq!(a, [("cp1".to_string(), Action::Rearm)]);
        sim.act("cp1", &Action::Rearm);
        let stored = serde_json::to_string(&plan).unwrap_or_default();
        let mut resumed: Plan = serde_json::from_str(&stored).unwrap_or_else(|e| panic!("{e}"));
        // The re-arm happened: not re-armed again, power-cycled.
        assert_eq!(
            resumed.next(&sim.seen, 1003, 600),
            Next::Act(vec![("cp1".to_string(), Action::Cycle)])
        );
        // Crash after the power cycle, before it was stored; the machine started to boot.
        sim.act("cp1", &Action::Cycle);
        sim.tick();
        let stored = serde_json::to_string(&resumed).unwrap_or_default();
        let mut again: Plan = serde_json::from_str(&stored).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            again.next(&sim.seen, 1004, 600),
            Next::Wait,
            "followed, not cycled again"
        );
        assert_eq!(sim.run(&mut again, 500), Next::Finished);
        assert_eq!(sim.seen["cp1"].generation, 2, "re-armed once");
    }

    #[test]
    fn the_plan_reads_as_text() {
        let mut c = fleet();
        c.push(cand("w4", Role::Worker, Installed::Unrecorded));
        c.push(cand(
            "w5",
            Role::Worker,
            Installed::Build(build("B", "new")),
        ));
        c[1].installed = Installed::Build(build("B", "old"));
        let plan = Plan::new("lab", &c, 2, Include::default(), 0);
        let text = plan.render(false);
        for want in [
            "rolling re-image of lab: 5 node(s) (2 control plane(s) one at a time, then workers at most 2 at a time)",
            "  wave 1:\n    cp1              control-plane os A -> B\n",
            "  wave 3:\n    w1               worker        install config changed\n    w2 ",
            "    w4               unknown: installed before slipway recorded it (--include-unknown re-images it)",
            "    w5               up to date",
        ] {
            assert!(text.contains(want), "{want:?} in\n{text}");
        }
        assert!(!text.contains('['), "no progress in a dry run");
    }
}
