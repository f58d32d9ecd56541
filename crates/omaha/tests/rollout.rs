//! The rollout policy in virtual time: limits, control-plane exclusivity, timeouts,
//! failures, safe mode, the reboot lock, and invariants over random event sequences.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use slipway_omaha::protocol::{EventType, Progress};
use slipway_omaha::rollout::{
    Canary, Decision, HaltReason, NoUpdateReason, Phase, Policy, RebootDecision, RebootWait, Role,
    Rollout,
};

const OLD: &str = "3815.2.0";
const NEW: &str = "4081.2.0";

fn policy() -> Policy {
    Policy {
        max_updating: 2,
        max_per_period: 3,
        period_secs: 1000,
        update_timeout_secs: 500,
        control_planes_one_at_a_time: true,
        safe_mode: false,
    }
}

fn workers(n: usize) -> Vec<(String, Role)> {
    (0..n).map(|i| (format!("w{i}"), Role::Worker)).collect()
}

fn no(reason: NoUpdateReason) -> Decision {
    Decision::NoUpdate(reason)
}

/// Walks a granted node through download, install, reboot lock and completion.
fn finish(r: &mut Rollout, node: &str, now: u64) {
    assert!(r.on_event(node, &Progress::Downloading, now));
    assert!(r.on_event(node, &Progress::Downloaded, now));
    assert!(r.on_event(node, &Progress::Installed, now));
    assert_eq!(r.reboot_lock(node, now), RebootDecision::Granted);
    assert_eq!(r.on_check(node, now, NEW), no(NoUpdateReason::AtTarget));
    assert_eq!(r.nodes[node].phase, Phase::Complete);
}

#[test]
fn never_more_than_max_updating_in_flight() {
    let mut r = Rollout::new(NEW, policy(), workers(4));
    assert_eq!(r.on_check("w0", 0, OLD), Decision::Update);
    assert_eq!(r.on_check("w1", 1, OLD), Decision::Update);
    assert_eq!(r.on_check("w2", 2, OLD), no(NoUpdateReason::MaxUpdating));
    assert_eq!(r.in_flight(), 2);
    // Installed-but-not-rebooted still counts.
    r.on_event("w0", &Progress::Installed, 3);
    assert_eq!(r.on_check("w2", 4, OLD), no(NoUpdateReason::MaxUpdating));
    // A completed node frees its place.
    assert_eq!(r.reboot_lock("w0", 5), RebootDecision::Granted);
    assert_eq!(r.on_check("w0", 6, NEW), no(NoUpdateReason::AtTarget));
    assert_eq!(r.on_check("w2", 7, OLD), Decision::Update);
    assert_eq!(r.in_flight(), 2);
}

#[test]
fn never_more_than_max_per_period_and_a_new_period_allows_more() {
    let mut p = policy();
    p.max_updating = 10;
    p.update_timeout_secs = 10_000;
    let mut r = Rollout::new(NEW, p, workers(6));
    for (i, t) in [(0, 0), (1, 100), (2, 200)] {
        assert_eq!(r.on_check(&format!("w{i}"), t, OLD), Decision::Update);
    }
    assert_eq!(r.on_check("w3", 300, OLD), no(NoUpdateReason::MaxPerPeriod));
    // A re-offer to a granted node is not a new grant.
    assert_eq!(r.on_check("w0", 400, OLD), Decision::Update);
    assert_eq!(r.on_check("w3", 999, OLD), no(NoUpdateReason::MaxPerPeriod));
    // The grant at 0 leaves the window at 1000.
    assert_eq!(r.on_check("w3", 1000, OLD), Decision::Update);
    assert_eq!(
        r.on_check("w4", 1050, OLD),
        no(NoUpdateReason::MaxPerPeriod)
    );
    assert_eq!(r.on_check("w4", 1100, OLD), Decision::Update);
}

#[test]
fn control_planes_update_one_at_a_time_and_alone() {
    let mut p = policy();
    p.max_updating = 5;
    p.max_per_period = 100;
    let nodes = vec![
        ("cp0".to_string(), Role::ControlPlane),
        ("cp1".to_string(), Role::ControlPlane),
        ("w0".to_string(), Role::Worker),
    ];
    let mut r = Rollout::new(NEW, p, nodes);
    assert_eq!(r.on_check("cp0", 0, OLD), Decision::Update);
    assert_eq!(
        r.on_check("cp1", 1, OLD),
        no(NoUpdateReason::ControlPlaneExclusive)
    );
    assert_eq!(
        r.on_check("w0", 2, OLD),
        no(NoUpdateReason::ControlPlaneExclusive)
    );
    finish(&mut r, "cp0", 3);
    // A worker in flight keeps control planes waiting.
    assert_eq!(r.on_check("w0", 4, OLD), Decision::Update);
    assert_eq!(
        r.on_check("cp1", 5, OLD),
        no(NoUpdateReason::ControlPlaneExclusive)
    );
    finish(&mut r, "w0", 6);
    assert_eq!(r.on_check("cp1", 7, OLD), Decision::Update);
    finish(&mut r, "cp1", 8);
    assert!(r.is_complete());

    // Without the rule, control planes go side by side.
    let mut p = policy();
    p.control_planes_one_at_a_time = false;
    let nodes = vec![
        ("cp0".to_string(), Role::ControlPlane),
        ("cp1".to_string(), Role::ControlPlane),
    ];
    let mut r = Rollout::new(NEW, p, nodes);
    assert_eq!(r.on_check("cp0", 0, OLD), Decision::Update);
    assert_eq!(r.on_check("cp1", 0, OLD), Decision::Update);
}

#[test]
fn a_timeout_halts_and_resume_continues() {
    let mut r = Rollout::new(NEW, policy(), workers(3));
    assert_eq!(r.on_check("w0", 0, OLD), Decision::Update);
    r.on_event("w0", &Progress::Downloading, 10);
    r.tick(499);
    assert!(r.halted.is_none());
    r.tick(520);
    let halt = r.halted.clone().unwrap();
    assert_eq!(
        halt.reason,
        HaltReason::Timeout {
            node: "w0".into(),
            elapsed_secs: 520
        }
    );
    assert_eq!(halt.at, 520);
    assert_eq!(r.on_check("w1", 530, OLD), no(NoUpdateReason::Halted));
    // Even the node already granted is not re-offered while halted.
    assert_eq!(r.on_check("w0", 530, OLD), no(NoUpdateReason::Halted));
    // Events still move it on.
    assert!(r.on_event("w0", &Progress::Installed, 540));
    assert_eq!(
        r.reboot_lock("w0", 540),
        RebootDecision::Wait(RebootWait::Halted)
    );

    r.resume(600);
    assert!(r.halted.is_none());
    // The timer restarted at the resume: not late at 1099, late at 1100.
    assert_eq!(r.on_check("w1", 610, OLD), Decision::Update);
    r.tick(1099);
    assert!(r.halted.is_none());
    assert_eq!(r.reboot_lock("w0", 700), RebootDecision::Granted);
    assert_eq!(r.on_check("w0", 800, NEW), no(NoUpdateReason::AtTarget));
    r.tick(1100);
    // w0 completed; w1 (granted at 610) is not late until 1110.
    assert!(r.halted.is_none());
    r.tick(1110);
    assert_eq!(
        r.halted.unwrap().reason,
        HaltReason::Timeout {
            node: "w1".into(),
            elapsed_secs: 500
        }
    );
}

#[test]
fn on_check_notices_a_timeout_itself() {
    let mut r = Rollout::new(NEW, policy(), workers(2));
    assert_eq!(r.on_check("w0", 0, OLD), Decision::Update);
    assert_eq!(r.on_check("w1", 600, OLD), no(NoUpdateReason::Halted));
    assert!(matches!(
        r.halted.unwrap().reason,
        HaltReason::Timeout { ref node, elapsed_secs: 600 } if node == "w0"
    ));
}

#[test]
fn a_node_at_target_gets_no_update_and_is_complete() {
    let mut r = Rollout::new(NEW, policy(), workers(2));
    assert_eq!(r.on_check("w0", 0, NEW), no(NoUpdateReason::AtTarget));
    assert_eq!(r.nodes["w0"].phase, Phase::Complete);
    assert!(r.grants.is_empty(), "no grant used");
    assert_eq!(
        r.on_check("nobody", 0, OLD),
        no(NoUpdateReason::UnknownNode)
    );
    assert!(!r.is_complete());
    assert_eq!(r.on_check("w1", 1, NEW), no(NoUpdateReason::AtTarget));
    assert!(r.is_complete());
}

#[test]
fn an_error_marks_the_node_failed_and_halts() {
    let mut r = Rollout::new(NEW, policy(), workers(3));
    assert_eq!(r.on_check("w0", 0, OLD), Decision::Update);
    r.on_event("w0", &Progress::Downloading, 1);
    let error = Progress::Error {
        event_type: EventType::UPDATE_DOWNLOAD_FINISHED,
        code: Some(12),
    };
    assert!(r.on_event("w0", &error, 2));
    assert_eq!(r.nodes["w0"].phase, Phase::Failed { code: Some(12) });
    assert_eq!(
        r.halted.clone().unwrap().reason,
        HaltReason::NodeFailed {
            node: "w0".into(),
            code: Some(12)
        }
    );
    assert_eq!(r.in_flight(), 0, "a failed node is not in flight");
    assert_eq!(r.on_check("w1", 3, OLD), no(NoUpdateReason::Halted));
    assert_eq!(r.on_check("w0", 3, OLD), no(NoUpdateReason::Failed));
    // An error from a node that was never granted halts nothing more and changes nothing.
    assert!(!r.on_event("w2", &error, 4));
    assert_eq!(r.nodes["w2"].phase, Phase::Idle);

    // Resume: the failed node may try again.
    r.resume(10);
    assert_eq!(r.nodes["w0"].phase, Phase::Idle);
    assert_eq!(r.on_check("w0", 11, OLD), Decision::Update);

    // An error from an idle node on a running rollout does not halt it.
    let mut r = Rollout::new(NEW, policy(), workers(2));
    assert!(!r.on_event("w1", &error, 0));
    assert!(r.halted.is_none());
}

#[test]
fn a_rollback_after_the_reboot_fails_the_node() {
    let mut r = Rollout::new(NEW, policy(), workers(1));
    assert_eq!(r.on_check("w0", 0, OLD), Decision::Update);
    r.on_event("w0", &Progress::Installed, 1);
    assert_eq!(r.reboot_lock("w0", 2), RebootDecision::Granted);
    // update_engine came back on the old version and says so: 3/0 with an errorcode.
    let rollback = Progress::Error {
        event_type: EventType::UPDATE_COMPLETE,
        code: Some(47),
    };
    assert!(r.on_event("w0", &rollback, 100));
    assert_eq!(r.on_check("w0", 100, OLD), no(NoUpdateReason::Failed));
    assert!(matches!(
        r.halted.unwrap().reason,
        HaltReason::NodeFailed { .. }
    ));
}

#[test]
fn safe_mode_updates_one_canary_then_halts_for_the_operator() {
    let mut p = policy();
    p.safe_mode = true;
    p.max_updating = 3;
    let mut r = Rollout::new(NEW, p, workers(3));
    assert_eq!(r.on_check("w0", 0, OLD), Decision::Update);
    assert_eq!(r.canary, Canary::Running("w0".into()));
    assert_eq!(r.on_check("w1", 1, OLD), no(NoUpdateReason::CanaryRunning));
    finish(&mut r, "w0", 2);
    assert_eq!(
        r.halted.clone().unwrap().reason,
        HaltReason::CanaryComplete { node: "w0".into() }
    );
    assert_eq!(r.on_check("w1", 3, OLD), no(NoUpdateReason::Halted));
    r.resume(4);
    assert_eq!(r.canary, Canary::Done);
    assert_eq!(r.on_check("w1", 5, OLD), Decision::Update);
    assert_eq!(r.on_check("w2", 5, OLD), Decision::Update);
}

#[test]
fn a_failed_canary_halts_and_the_next_grant_is_a_new_canary() {
    let mut p = policy();
    p.safe_mode = true;
    let mut r = Rollout::new(NEW, p, workers(3));
    assert_eq!(r.on_check("w0", 0, OLD), Decision::Update);
    let error = Progress::Error {
        event_type: EventType::UPDATE_COMPLETE,
        code: None,
    };
    r.on_event("w0", &error, 1);
    assert!(matches!(
        r.halted.clone().unwrap().reason,
        HaltReason::NodeFailed { .. }
    ));
    r.resume(2);
    assert_eq!(r.canary, Canary::Pending);
    assert_eq!(r.on_check("w1", 3, OLD), Decision::Update);
    assert_eq!(r.canary, Canary::Running("w1".into()));
    assert_eq!(r.on_check("w2", 3, OLD), no(NoUpdateReason::CanaryRunning));
}

#[test]
fn the_reboot_lock_respects_the_limits() {
    let mut p = policy();
    p.max_updating = 2;
    p.max_per_period = 100;
    p.control_planes_one_at_a_time = true;
    let nodes = vec![
        ("cp0".to_string(), Role::ControlPlane),
        ("w0".to_string(), Role::Worker),
        ("w1".to_string(), Role::Worker),
    ];
    let mut r = Rollout::new(NEW, p, nodes);
    // Not installed: no lock.
    assert_eq!(
        r.reboot_lock("w0", 0),
        RebootDecision::Wait(RebootWait::NotInstalled)
    );
    assert_eq!(
        r.reboot_lock("ghost", 0),
        RebootDecision::Wait(RebootWait::UnknownNode)
    );
    assert_eq!(r.on_check("w0", 0, OLD), Decision::Update);
    assert_eq!(r.on_check("w1", 0, OLD), Decision::Update);
    assert_eq!(
        r.reboot_lock("w0", 1),
        RebootDecision::Wait(RebootWait::NotInstalled)
    );
    r.on_event("w0", &Progress::Installed, 2);
    r.on_event("w1", &Progress::Installed, 2);
    assert_eq!(r.reboot_lock("w0", 3), RebootDecision::Granted);
    assert_eq!(
        r.reboot_lock("w0", 4),
        RebootDecision::Granted,
        "idempotent"
    );
    assert_eq!(r.reboot_lock("w1", 4), RebootDecision::Granted);
    // A node checking in with the old version while holding the lock waits to reboot.
    assert_eq!(r.on_check("w1", 5, OLD), no(NoUpdateReason::AwaitingReboot));

    // Tighter: one lock at a time.
    let mut p = policy();
    p.max_updating = 1;
    p.max_per_period = 100;
    let mut r = Rollout::new(NEW, p, workers(2));
    assert_eq!(r.on_check("w0", 0, OLD), Decision::Update);
    r.on_event("w0", &Progress::Installed, 1);
    assert_eq!(r.reboot_lock("w0", 2), RebootDecision::Granted);
    // Policy changed under a running rollout (the caller may edit it): the lock count
    // still holds.
    r.policy.max_updating = 2;
    assert_eq!(r.on_check("w1", 3, OLD), Decision::Update);
    r.on_event("w1", &Progress::Installed, 4);
    r.policy.max_updating = 1;
    assert_eq!(
        r.reboot_lock("w1", 5),
        RebootDecision::Wait(RebootWait::MaxRebooting)
    );
    assert_eq!(r.on_check("w0", 6, NEW), no(NoUpdateReason::AtTarget));
    assert_eq!(r.reboot_lock("w1", 7), RebootDecision::Granted);
}

#[test]
fn a_control_plane_reboots_alone() {
    let mut p = policy();
    p.max_updating = 3;
    p.max_per_period = 100;
    p.control_planes_one_at_a_time = false;
    let nodes = vec![
        ("cp0".to_string(), Role::ControlPlane),
        ("w0".to_string(), Role::Worker),
    ];
    let mut r = Rollout::new(NEW, p, nodes);
    assert_eq!(r.on_check("cp0", 0, OLD), Decision::Update);
    assert_eq!(r.on_check("w0", 0, OLD), Decision::Update);
    r.on_event("cp0", &Progress::Installed, 1);
    r.on_event("w0", &Progress::Installed, 1);
    // The rule switched on mid-rollout: the reboot lock enforces it.
    r.policy.control_planes_one_at_a_time = true;
    assert_eq!(r.reboot_lock("w0", 2), RebootDecision::Granted);
    assert_eq!(
        r.reboot_lock("cp0", 2),
        RebootDecision::Wait(RebootWait::ControlPlaneExclusive)
    );
    assert_eq!(r.on_check("w0", 3, NEW), no(NoUpdateReason::AtTarget));
    assert_eq!(r.reboot_lock("cp0", 4), RebootDecision::Granted);
}

#[test]
fn out_of_order_events_change_nothing() {
    let mut r = Rollout::new(NEW, policy(), workers(1));
    assert!(!r.on_event("w0", &Progress::Downloading, 0));
    assert!(!r.on_event("w0", &Progress::Installed, 0));
    assert!(!r.on_event("ghost", &Progress::Installed, 0));
    assert_eq!(r.nodes["w0"].phase, Phase::Idle);
    assert_eq!(r.on_check("w0", 1, OLD), Decision::Update);
    assert!(r.on_event("w0", &Progress::Installed, 2), "skipping ahead");
    assert!(
        !r.on_event("w0", &Progress::Downloading, 3),
        "no going back"
    );
    assert!(!r.on_event(
        "w0",
        &Progress::Rebooted {
            previous_version: OLD.into()
        },
        4
    ));
    assert_eq!(r.nodes["w0"].phase, Phase::Installed);
}

#[test]
fn an_operator_halt_stops_grants() {
    let mut r = Rollout::new(NEW, policy(), workers(2));
    r.halt("change freeze", 5);
    assert_eq!(
        r.halted.clone().unwrap().reason,
        HaltReason::Operator("change freeze".into())
    );
    assert_eq!(r.on_check("w0", 6, OLD), no(NoUpdateReason::Halted));
    r.resume(7);
    assert_eq!(r.on_check("w0", 8, OLD), Decision::Update);
}

#[test]
fn the_state_round_trips_through_serde() {
    let mut r = Rollout::new(NEW, policy(), workers(3));
    r.on_check("w0", 0, OLD);
    r.on_event("w0", &Progress::Installed, 1);
    r.on_check("w1", 2, OLD);
    r.on_event(
        "w1",
        &Progress::Error {
            event_type: EventType(14),
            code: Some(3),
        },
        3,
    );
    let json = serde_json::to_string(&r).unwrap();
    let back: Rollout = serde_json::from_str(&json).unwrap();
    assert_eq!(back, r);
}

/// One step a simulated cluster may take.
#[derive(Debug, Clone)]
enum Step {
    Check(usize, bool),
    Event(usize, u8),
    Reboot(usize),
    Tick,
    Resume,
    Halt,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..8usize, any::<bool>()).prop_map(|(n, at_target)| Step::Check(n, at_target)),
        4 => (0..8usize, 0..5u8).prop_map(|(n, e)| Step::Event(n, e)),
        2 => (0..8usize).prop_map(Step::Reboot),
        1 => Just(Step::Tick),
        1 => Just(Step::Resume),
        1 => Just(Step::Halt),
    ]
}

fn policy_strategy() -> impl Strategy<Value = Policy> {
    (
        0..4u32,
        0..5u32,
        1..400u64,
        1..600u64,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(mu, mp, period, timeout, cp, safe)| Policy {
            max_updating: mu,
            max_per_period: mp,
            period_secs: period,
            update_timeout_secs: timeout,
            control_planes_one_at_a_time: cp,
            safe_mode: safe,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_over_random_histories(
        policy in policy_strategy(),
        steps in proptest::collection::vec((step(), 0..60u64), 1..200),
    ) {
        let nodes: Vec<(String, Role)> = (0..8)
            .map(|i| {
                let role = if i < 3 { Role::ControlPlane } else { Role::Worker };
                (format!("n{i}"), role)
            })
            .collect();
        let mut r = Rollout::new(NEW, policy.clone(), nodes);
        let mut now = 1_000u64;
        // Every new grant's time (re-offers excluded).
        let mut grant_log: Vec<u64> = Vec::new();
        let mut canary_grants = 0usize;
        for (step, dt) in steps {
            now += dt;
            match step {
                Step::Check(i, at_target) => {
                    let id = format!("n{i}");
                    let was = r.nodes[&id].phase.clone();
                    let halted_before = r.halted.is_some();
                    let version = if at_target { NEW } else { OLD };
                    let d = r.on_check(&id, now, version);
                    if d == Decision::Update {
                        prop_assert!(!at_target, "a node at the target got an update");
                        prop_assert!(!halted_before, "granted while halted");
                        prop_assert!(r.halted.is_none(), "granted while halted (after tick)");
                        if !was.in_flight() {
                            grant_log.push(now);
                            if policy.safe_mode && matches!(r.canary, Canary::Running(_)) {
                                canary_grants += 1;
                            }
                        }
                    }
                }
                Step::Event(i, e) => {
                    let id = format!("n{i}");
                    let progress = match e {
                        0 => Progress::Downloading,
                        1 => Progress::Downloaded,
                        2 => Progress::Installed,
                        3 => Progress::Rebooted { previous_version: OLD.into() },
                        _ => Progress::Error { event_type: EventType(3), code: Some(1) },
                    };
                    let was_in_flight = r.nodes[&id].phase.in_flight();
                    r.on_event(&id, &progress, now);
                    if e == 4 && was_in_flight {
                        prop_assert!(r.halted.is_some(), "a failure did not halt");
                        prop_assert!(matches!(r.nodes[&id].phase, Phase::Failed { .. }), "not failed");
                    }
                }
                Step::Reboot(i) => {
                    let id = format!("n{i}");
                    let was = r.nodes[&id].phase.clone();
                    let halted_before = r.halted.is_some();
                    if r.reboot_lock(&id, now) == RebootDecision::Granted {
                        prop_assert!(
                            matches!(was, Phase::Installed | Phase::RebootGranted),
                            "lock given in phase {:?}", was
                        );
                        if was == Phase::Installed {
                            prop_assert!(!halted_before && r.halted.is_none());
                        }
                    }
                }
                Step::Tick => r.tick(now),
                Step::Resume => r.resume(now),
                Step::Halt => r.halt("test", now),
            }

            // Never more than max_updating in flight.
            prop_assert!(r.in_flight() <= policy.max_updating as usize);
            // Never more than max_per_period new grants in any window of period_secs.
            for (k, &t) in grant_log.iter().enumerate() {
                let in_window = grant_log[k..]
                    .iter()
                    .filter(|&&u| u < t + policy.period_secs)
                    .count();
                prop_assert!(in_window <= policy.max_per_period as usize);
            }
            // Control planes alone.
            if policy.control_planes_one_at_a_time {
                let cps = r
                    .nodes
                    .values()
                    .filter(|n| n.role == Role::ControlPlane && n.phase.in_flight())
                    .count();
                prop_assert!(cps <= 1);
                if cps == 1 {
                    prop_assert_eq!(r.in_flight(), 1, "a control plane updated beside another node");
                }
            }
            // Reboot locks within the limit.
            let locks = r.nodes.values().filter(|n| n.phase == Phase::RebootGranted).count();
            prop_assert!(locks <= policy.max_updating as usize);
            // Safe mode: one canary in flight at most, nothing else beside it.
            if let Canary::Running(ref c) = r.canary {
                prop_assert!(canary_grants <= 1 || r.nodes[c].phase.in_flight());
                prop_assert!(r.in_flight() <= 1);
            }
            // A node in flight longer than the timeout means the rollout is halted, once a
            // tick has run (on_check and reboot_lock tick).
            if matches!(step, Step::Tick | Step::Check(..) | Step::Reboot(_)) {
                for n in r.nodes.values().filter(|n| n.phase.in_flight()) {
                    let since = n.timer_from.unwrap();
                    if now - since >= policy.update_timeout_secs {
                        prop_assert!(r.halted.is_some(), "a late node did not halt the rollout");
                    }
                }
            }
        }
        // The state survives persistence.
        let json = serde_json::to_string(&r).unwrap();
        let back: Rollout = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, r);
    }
}
