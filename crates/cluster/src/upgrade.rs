//! `upgrade:`, the Day-2 section: in-place OS updates served by slipway (Flatcar's
//! `update_engine` asks slipway, slipway offers the mirrored update payload under a
//! rollout policy and hands out the reboot lock). Read here ([`decode`]), completed
//! here ([`complete`]): every key is optional.
//!
//! ```yaml
//! upgrade:
//!   os_updates: true                 # default: true for Flatcar (refused for others)
//!   group: stable                    # Omaha GROUP / track; default: os.channel
//!   max_updating: 1                  # nodes updating (or awaiting reboot) at once
//!   max_per_period: 10               # grants in any sliding `period`
//!   period: 1h
//!   update_timeout: 1h               # a node in flight longer halts the rollout
//!   control_planes_one_at_a_time: true
//!   safe_mode: true                  # one canary, then halt until resumed
//!   reboot_hook: drain.sh            # run on slipway as `drain.sh <hostname>` before a reboot is granted
//!   reboot_hook_timeout: 10m
//! ```

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::decode::{Fields, Spanned, boolean, parse, string};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::model::Distro;
use crate::types::LeaseTime;
use crate::yaml::Node;

type S<T> = Option<Spanned<T>>;

/// `upgrade:` as written.
#[derive(Debug, Default)]
pub struct UpgradeSpec {
    /// `os_updates`
    pub os_updates: S<bool>,
    /// `group`
    pub group: S<String>,
    /// `max_updating`
    pub max_updating: S<u32>,
    /// `max_per_period`
    pub max_per_period: S<u32>,
    /// `period`
    pub period: S<LeaseTime>,
    /// `update_timeout`
    pub update_timeout: S<LeaseTime>,
    /// `control_planes_one_at_a_time`
    pub control_planes_one_at_a_time: S<bool>,
    /// `safe_mode`
    pub safe_mode: S<bool>,
    /// `reboot_hook`
    pub reboot_hook: S<String>,
    /// `reboot_hook_timeout`
    pub reboot_hook_timeout: S<LeaseTime>,
}

/// Reads `upgrade:`.
pub fn decode(n: &Node, d: &mut Diagnostics) -> UpgradeSpec {
    let mut out = UpgradeSpec::default();
    let Some(mut f) = Fields::new(n, "`upgrade`", d) else {
        return out;
    };
    out.os_updates = f
        .get("os_updates")
        .and_then(|v| boolean(v, "`upgrade.os_updates`", d));
    out.group = f.get("group").and_then(|v| string(v, "`upgrade.group`", d));
    out.max_updating = f
        .get("max_updating")
        .and_then(|v| parse(v, "`upgrade.max_updating`", d));
    out.max_per_period = f
        .get("max_per_period")
        .and_then(|v| parse(v, "`upgrade.max_per_period`", d));
    out.period = f
        .get("period")
        .and_then(|v| parse(v, "`upgrade.period`", d));
    out.update_timeout = f
        .get("update_timeout")
        .and_then(|v| parse(v, "`upgrade.update_timeout`", d));
    out.control_planes_one_at_a_time = f
        .get("control_planes_one_at_a_time")
        .and_then(|v| boolean(v, "`upgrade.control_planes_one_at_a_time`", d));
    out.safe_mode = f
        .get("safe_mode")
        .and_then(|v| boolean(v, "`upgrade.safe_mode`", d));
    out.reboot_hook = f
        .get("reboot_hook")
        .and_then(|v| string(v, "`upgrade.reboot_hook`", d));
    out.reboot_hook_timeout = f
        .get("reboot_hook_timeout")
        .and_then(|v| parse(v, "`upgrade.reboot_hook_timeout`", d));
    f.finish(d);
    out
}

/// `upgrade:` completed: the in-place OS update policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Upgrade {
    /// Whether slipway serves OS updates: the nodes' update client is pointed at slipway
    /// and slipway coordinates their reboots. Only Flatcar.
    pub os_updates: bool,
    /// The Omaha group (`GROUP=` in `/etc/flatcar/update.conf`, the request's `track`).
    pub group: String,
    /// At most this many nodes in flight (granted, not yet running the target).
    pub max_updating: u32,
    /// At most this many grants in any sliding `period`.
    pub max_per_period: u32,
    /// The window of `max_per_period`.
    pub period: LeaseTime,
    /// A node in flight longer than this halts the rollout (`infinite`: never).
    pub update_timeout: LeaseTime,
    /// A control-plane node updates and reboots alone.
    pub control_planes_one_at_a_time: bool,
    /// One canary node first, then the rollout halts until an operator resumes it.
    pub safe_mode: bool,
    /// A program slipway runs as `<hook> <hostname>` before granting a node's reboot
    /// (e.g. a `kubectl drain`); a failure or a timeout grants nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reboot_hook: Option<PathBuf>,
    /// How long the hook may run before it is killed (and counted as failed).
    pub reboot_hook_timeout: LeaseTime,
}

impl Upgrade {
    /// The defaults for a cluster on `distro` and `channel`.
    pub fn defaults(distro: Distro, channel: &str) -> Upgrade {
        Upgrade {
            os_updates: distro == Distro::Flatcar,
            group: channel.to_string(),
            max_updating: 1,
            max_per_period: 10,
            period: LeaseTime::Seconds(3600),
            update_timeout: LeaseTime::Seconds(3600),
            control_planes_one_at_a_time: true,
            safe_mode: true,
            reboot_hook: None,
            reboot_hook_timeout: LeaseTime::Seconds(600),
        }
    }

    /// `update_timeout` in seconds (`u64::MAX` for `infinite`).
    pub fn update_timeout_secs(&self) -> u64 {
        secs(self.update_timeout)
    }

    /// `period` in seconds.
    pub fn period_secs(&self) -> u64 {
        secs(self.period)
    }

    /// `reboot_hook_timeout` in seconds.
    pub fn reboot_hook_timeout_secs(&self) -> u64 {
        secs(self.reboot_hook_timeout)
    }
}

fn secs(t: LeaseTime) -> u64 {
    match t {
        LeaseTime::Infinite => u64::MAX,
        LeaseTime::Seconds(s) => u64::from(s),
    }
}

/// Whether `g` may be an Omaha group: it is written into `update.conf` as `GROUP=`.
fn is_group(g: &str) -> bool {
    !g.is_empty()
        && g.len() <= 64
        && g.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Completes `upgrade:` for a cluster on `distro`/`channel`; relative paths are taken
/// from `base`.
pub fn complete(
    spec: &UpgradeSpec,
    distro: Distro,
    channel: &str,
    base: &Path,
    d: &mut Diagnostics,
) -> Upgrade {
    let mut u = Upgrade::defaults(distro, channel);
    if let Some(v) = &spec.os_updates {
        if v.value && distro != Distro::Flatcar {
            d.push(
                Diagnostic::error(
                    v.span,
                    "`upgrade.os_updates: true` needs `os.distro: flatcar`: slipway serves Flatcar's update_engine (its /etc/flatcar/update.conf) only",
                )
                .with_help("remove the key, or set it to false"),
            );
        }
        u.os_updates = v.value && distro == Distro::Flatcar;
    }
    if let Some(g) = &spec.group {
        if !is_group(&g.value) {
            d.push(
                Diagnostic::error(g.span, format!("`upgrade.group` `{}` is not a group name", g.value))
                    .with_help("use 1-64 letters, digits, `-`, `_` and `.` (it becomes GROUP= in /etc/flatcar/update.conf)"),
            );
        }
        u.group = g.value.clone();
    }
    let at_least_one = |v: &Spanned<u32>, key: &str, d: &mut Diagnostics| {
        if v.value == 0 {
            d.push(
                Diagnostic::error(v.span, format!("`upgrade.{key}` must be at least 1"))
                    .with_help("to stop OS updates, set `upgrade.os_updates: false` (or halt the rollout: `slipway os-update FILE halt`)"),
            );
        }
        v.value
    };
    if let Some(v) = &spec.max_updating {
        u.max_updating = at_least_one(v, "max_updating", d);
    }
    if let Some(v) = &spec.max_per_period {
        u.max_per_period = at_least_one(v, "max_per_period", d);
    }
    let finite = |v: &Spanned<LeaseTime>, key: &str, d: &mut Diagnostics| {
        if matches!(v.value, LeaseTime::Infinite | LeaseTime::Seconds(0)) {
            d.error(
                v.span,
                format!("`upgrade.{key}` must be a positive duration (e.g. 30m, 1h)"),
            );
        }
        v.value
    };
    if let Some(v) = &spec.period {
        u.period = finite(v, "period", d);
    }
    if let Some(v) = &spec.update_timeout {
        if v.value == LeaseTime::Seconds(0) {
            d.error(
                v.span,
                "`upgrade.update_timeout` must be a positive duration or `infinite`",
            );
        }
        u.update_timeout = v.value;
    }
    if let Some(v) = &spec.reboot_hook_timeout {
        u.reboot_hook_timeout = finite(v, "reboot_hook_timeout", d);
    }
    if let Some(v) = &spec.control_planes_one_at_a_time {
        u.control_planes_one_at_a_time = v.value;
    }
    if let Some(v) = &spec.safe_mode {
        u.safe_mode = v.value;
    }
    if let Some(h) = &spec.reboot_hook {
        let path = if Path::new(&h.value).is_absolute() {
            PathBuf::from(&h.value)
        } else {
            base.join(&h.value)
        };
        if !path.is_file() {
            d.push(
                Diagnostic::error(
                    h.span,
                    format!(
                        "`upgrade.reboot_hook`: no file {} (slipway runs it as `<hook> <hostname>` before granting a reboot)",
                        path.display()
                    ),
                )
                .with_help("a relative path is taken from the cluster file's directory"),
            );
        }
        u.reboot_hook = Some(path);
    }
    u
}
