//! `slipway os-update FILE status|halt|resume`: the in-place OS update rollout of the
//! running `slipway serve`, over its operator API. (`slipway upgrade` is kept for the
//! rolling re-image.)

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use slipway_http::update::OsUpdateView;

use crate::EXIT_INVALID;
use crate::check::{load_valid, write_stdout};
use crate::machine_cmd::{ApiArgs, ApiClient};

/// What `slipway os-update` does.
#[derive(Debug, Clone, Copy, clap::Subcommand)]
pub enum Action {
    /// The rollout: target, halt, canary and every node's phase.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop granting updates and reboot locks (nodes already updating may finish).
    Halt,
    /// Go on after a halt (a timeout, a failure, the safe-mode canary, or `halt`);
    /// failed nodes may be offered the update again.
    Resume,
}

/// Runs `action` against the API `api` names.
pub fn os_update(
    file: &Path,
    action: Action,
    api: &ApiArgs,
    state_dir: &Path,
    offline: bool,
) -> anyhow::Result<ExitCode> {
    if load_valid(file, offline)?.is_none() {
        return Ok(ExitCode::from(EXIT_INVALID));
    }
    let client = ApiClient::new(api, state_dir)?;
    let (view, json) = match action {
        Action::Status { json } => (client.get::<OsUpdateView>("/api/v1/os-update")?, json),
        Action::Halt | Action::Resume => {
            let path = if matches!(action, Action::Halt) {
                "/api/v1/os-update/halt"
            } else {
                "/api/v1/os-update/resume"
            };
            let (status, body) = client.send("POST", path)?;
            if status != 200 {
                eprintln!("slipway: {path}: {status}: {}", body.trim());
                return Ok(ExitCode::from(EXIT_INVALID));
            }
            (serde_json::from_str(&body)?, false)
        }
    };
    if json {
        write_stdout(&(serde_json::to_string_pretty(&view)? + "\n"))?;
    } else {
        write_stdout(&describe(&view))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The rollout as text.
fn describe(v: &OsUpdateView) -> String {
    let mut out = String::new();
    if !v.enabled {
        out.push_str("OS updates: off (upgrade.os_updates: false)\n");
        return out;
    }
    let _ = writeln!(
        out,
        "target: {}  group: {}  payload: {}",
        v.target.as_deref().unwrap_or("- (os.version is `current`)"),
        v.group,
        if v.payload {
            "mirrored"
        } else {
            "MISSING (run `slipway mirror`)"
        }
    );
    let _ = writeln!(
        out,
        "state: {}  canary: {}  in flight: {}",
        v.halted
            .as_deref()
            .map_or_else(|| "running".to_string(), |h| format!("HALTED ({h})")),
        v.canary,
        v.in_flight
    );
    let width = v
        .nodes
        .iter()
        .map(|n| n.hostname.len())
        .max()
        .unwrap_or(8)
        .max(8);
    let _ = writeln!(
        out,
        "{:width$}  {:13}  {:15}  VERSION",
        "HOSTNAME", "ROLE", "PHASE"
    );
    for n in &v.nodes {
        let _ = writeln!(
            out,
            "{:width$}  {:13}  {:15}  {}",
            n.hostname,
            n.role,
            n.phase,
            n.version.as_deref().unwrap_or("-")
        );
    }
    out
}
