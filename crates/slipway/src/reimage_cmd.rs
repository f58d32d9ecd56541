//! `slipway upgrade FILE`: the rolling re-image, the IO part. Compares what each
//! machine was installed with (recorded by `serve`) with what the cluster file renders
//! now, makes the plan (`reimage::Plan`), stores it in `<state-dir>/upgrade/<cluster>.json`
//! (written whole, atomically, after every change), and walks it: hooks, re-arm
//! through the operator API, PXE once and power cycle through the BMC, then the
//! machine's life until `ready`. A re-run resumes a plan not finished.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use slipway_cluster::{Cluster, Node};
use slipway_lifecycle::Build;

use crate::EXIT_INVALID;
use crate::bmc_cmd::{self, ModeArg};
use crate::check::load_valid;
use crate::machine_cmd::{ApiArgs, ApiClient};
use crate::reimage::{
    Action, Candidate, Include, Installed, Next, Outcome, Phase, Plan, Role, Seen,
};

/// The knobs of `slipway upgrade`.
pub struct Options {
    /// Most workers down at once.
    pub max_unavailable: usize,
    /// Print the plan and change nothing.
    pub dry_run: bool,
    /// Print the stored plan and its progress.
    pub status: bool,
    /// Forget a stored plan (nothing else is done).
    pub abandon: bool,
    /// Which nodes the plan may include beyond those that plainly differ.
    pub include: Include,
    /// Run before a node is re-armed (its hostname as argument).
    pub pre_hook: Option<String>,
    /// Run once a node is ready again.
    pub post_hook: Option<String>,
    /// Bound on each hook run.
    pub hook_timeout: Duration,
    /// Bound on each node's install, from its power cycle to `ready`.
    pub timeout: Duration,
    /// The firmware interface for the PXE boot.
    pub mode: Option<ModeArg>,
}

/// Largest plan file read.
const MAX_PLAN_BYTES: u64 = 16 << 20;

/// Where the plan of `cluster` is kept.
pub(crate) fn plan_path(state_dir: &Path, cluster: &str) -> PathBuf {
    let safe: String = cluster
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    state_dir.join("upgrade").join(format!("{safe}.json"))
}

/// The stored plan, if any.
fn load_plan(path: &Path) -> anyhow::Result<Option<Plan>> {
    use std::io::Read as _;
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut text = String::new();
    f.take(MAX_PLAN_BYTES + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("reading {}", path.display()))?;
    anyhow::ensure!(
        text.len() as u64 <= MAX_PLAN_BYTES,
        "{}: larger than {MAX_PLAN_BYTES} bytes",
        path.display()
    );
    let plan: Plan = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not a rollout plan (remove it, or `slipway upgrade FILE --abandon`)",
            path.display()
        )
    })?;
    anyhow::ensure!(
        plan.format == crate::reimage::FORMAT,
        "{}: plan format {} (this slipway reads {})",
        path.display(),
        plan.format,
        crate::reimage::FORMAT
    );
    Ok(Some(plan))
}

/// Stores `plan` at `path` whole or not at all: a temporary file beside it, synced,
/// renamed over it, the directory synced.
pub(crate) fn save_plan<T: serde::Serialize>(path: &Path, plan: &T) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("plan")
    ));
    let text = serde_json::to_string_pretty(plan)? + "\n";
    let mut f =
        std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn role_of(node: &Node) -> Role {
    if node
        .roles
        .contains(&slipway_cluster::model::Role::ControlPlane)
    {
        Role::ControlPlane
    } else {
        Role::Worker
    }
}

/// Every node of `cluster` with what the file renders for it now and what its life
/// (`machines`, from the API) says it holds.
fn candidates(
    cluster: &Cluster,
    machines: &[slipway_http::api::types::MachineView],
) -> anyhow::Result<Vec<Candidate>> {
    let template = crate::render_cmd::template(cluster)?;
    let init = slipway_render::kubeadm::init_node(cluster).map(|n| n.mac);
    let mut out = Vec::new();
    for n in &cluster.nodes {
        let want = slipway_serve::build_of(cluster, n, template.as_deref())
            .map_err(|e| anyhow!("{}: cannot render its install config: {e}", n.hostname))?;
        let m = machines.iter().find(|m| m.hostname == n.hostname);
        let state = m.map_or("unknown", |m| m.state.as_str()).to_string();
        let installed = match m.and_then(|m| m.installed.as_ref()) {
            Some(b) => Installed::Build(Build {
                os_version: b.os_version.clone(),
                config_sha256: b.config_sha256.clone(),
            }),
            None if matches!(state.as_str(), "ready" | "installed") => Installed::Unrecorded,
            None => Installed::No,
        };
        out.push(Candidate {
            hostname: n.hostname.clone(),
            ip: n.ip.to_string(),
            role: role_of(n),
            has_bmc: n.bmc.is_some(),
            init: init == Some(n.mac),
            state,
            want,
            installed,
        });
    }
    Ok(out)
}

/// `slipway upgrade FILE [--max-unavailable N] [--dry-run|--status|--abandon]`.
pub fn upgrade(
    file: &Path,
    opts: &Options,
    state_dir: &Path,
    api: &ApiArgs,
    offline: bool,
) -> anyhow::Result<ExitCode> {
    let Some(cluster) = load_valid(file, offline)? else {
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    let path = plan_path(state_dir, &cluster.cluster.name);
    if opts.abandon {
        match std::fs::remove_file(&path) {
            Ok(()) => println!("forgot the rollout plan {}", path.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                println!("no rollout plan at {}", path.display());
            }
            Err(e) => return Err(e).with_context(|| format!("removing {}", path.display())),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let stored = load_plan(&path)?;
    if opts.status {
        match stored {
            Some(p) => {
                print!("{}", p.render(true));
                println!("  (plan: {})", path.display());
            }
            None => println!(
                "no rollout of {} (nothing stored at {})",
                cluster.cluster.name,
                path.display()
            ),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let client = ApiClient::new(api, state_dir)?;
    let served = client.cluster()?;
    if served.os.version != cluster.os.version || served.name != cluster.cluster.name {
        eprintln!(
            "slipway: the running `slipway serve` serves {} with os {}, this file says {} with os {}: \
             reload it first (SIGHUP, or restart it with this file)",
            served.name, served.os.version, cluster.cluster.name, cluster.os.version
        );
        return Ok(ExitCode::from(EXIT_INVALID));
    }
    let machines = client.machines()?;
    let cands = candidates(&cluster, &machines)?;
    let fresh = Plan::new(
        &cluster.cluster.name,
        &cands,
        opts.max_unavailable,
        opts.include,
        slipway_store::tracker::now(),
    );
    let unfinished = stored.filter(|p| !p.finished());
    if opts.dry_run {
        if let Some(p) = &unfinished {
            println!(
                "a rollout is stored and not finished ({}); `slipway upgrade FILE` resumes it:",
                path.display()
            );
            print!("{}", p.render(true));
            println!("if it were started afresh:");
        }
        print!("{}", fresh.render(false));
        println!("(dry run: nothing changed)");
        return Ok(ExitCode::SUCCESS);
    }
    let _lock = lock(&path)?;
    let mut plan = match unfinished {
        Some(mut p) => {
            let again = p.retry();
            println!("resuming the rollout stored in {}", path.display());
            if !again.is_empty() {
                println!("  starting over on: {}", again.join(", "));
            }
            for st in p.steps.iter().filter(|st| st.phase != Phase::Done) {
                if let Some(c) = cands.iter().find(|c| c.hostname == st.hostname)
                    && c.want != st.target
                {
                    println!(
                        "  note: the file changed since the plan was made; {} gets what it says now (os {})",
                        st.hostname, c.want.os_version
                    );
                }
            }
            if p.max_unavailable != opts.max_unavailable.max(1) {
                println!(
                    "  (its waves were made with --max-unavailable {}; they stay)",
                    p.max_unavailable
                );
            }
            p
        }
        None => fresh,
    };
    print!("{}", plan.render(true));
    if plan.steps.is_empty() {
        println!("nothing to re-image");
        return Ok(ExitCode::SUCCESS);
    }
    save_plan(&path, &plan)?;
    walk(&mut plan, &path, &cluster, file, opts, &client)
}

/// Holds `<plan>.lock` so that two `slipway upgrade` runs never walk one plan.
pub(crate) fn lock(plan: &Path) -> anyhow::Result<std::fs::File> {
    let p = plan.with_extension("lock");
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
        .with_context(|| format!("opening {}", p.display()))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(anyhow!(
            "another `slipway upgrade` walks this rollout ({} is locked)",
            p.display()
        )),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", p.display()))
        }
    }
}

/// How long the API may stay unreachable (a `serve` restart) before the walk gives up.
const API_PATIENCE: Duration = Duration::from_secs(300);

fn walk(
    plan: &mut Plan,
    path: &Path,
    cluster: &Cluster,
    file: &Path,
    opts: &Options,
    client: &ApiClient,
) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let dir = bmc_cmd::base_dir(file);
    let mode = bmc_cmd::boot_mode(opts.mode);
    let mut last_ok = Instant::now();
    let mut shown: BTreeMap<String, String> = BTreeMap::new();
    loop {
        let machines = match client.machines() {
            Ok(m) => {
                last_ok = Instant::now();
                m
            }
            Err(e) if last_ok.elapsed() < API_PATIENCE => {
                eprintln!("slipway: {e:#} (retrying)");
                std::thread::sleep(Duration::from_secs(2));
                continue;
            }
            Err(e) => {
                return Err(e).context(format!(
                    "the operator API is gone for {} s; the plan stays in {}: re-run to resume",
                    API_PATIENCE.as_secs(),
                    path.display()
                ));
            }
        };
        let seen: BTreeMap<String, Seen> = machines
            .iter()
            .map(|m| {
                (
                    m.hostname.clone(),
                    Seen {
                        state: m.state.clone(),
                        generation: m.generation,
                        reason: m.reason.clone(),
                    },
                )
            })
            .collect();
        for s in &plan.steps {
            if let Some(m) = seen.get(&s.hostname)
                && s.phase.active()
                && shown.get(&s.hostname) != Some(&m.state)
            {
                println!(
                    "{:<16} {:<11} +{:.0}s",
                    s.hostname,
                    m.state,
                    started.elapsed().as_secs_f64()
                );
                shown.insert(s.hostname.clone(), m.state.clone());
            }
        }
        let before = plan.clone();
        let next = plan.next(&seen, slipway_store::tracker::now(), opts.timeout.as_secs());
        if *plan != before {
            save_plan(path, plan)?;
        }
        match next {
            Next::Act(actions) => {
                let outcomes = run_actions(&actions, plan, cluster, dir, mode, opts, client);
                let now = slipway_store::tracker::now();
                for ((host, action), outcome) in actions.iter().zip(outcomes) {
                    match &outcome {
                        Outcome::Failed(why) => {
                            println!("{host:<16} {} FAILED: {why}", action.name());
                        }
                        Outcome::Rearmed(g) => println!("{host:<16} re-armed (generation {g})"),
                        Outcome::Ok => println!("{host:<16} {}: done", action.name()),
                    }
                    plan.record(host, outcome, now);
                }
                save_plan(path, plan)?;
            }
            Next::Wait => std::thread::sleep(Duration::from_secs(1)),
            Next::Finished => {
                print!("{}", plan.render(true));
                println!(
                    "re-imaged {} node(s) in {:.0} s",
                    plan.steps.len(),
                    started.elapsed().as_secs_f64()
                );
                return Ok(ExitCode::SUCCESS);
            }
            Next::Halted(why) => {
                print!("{}", plan.render(true));
                eprintln!(
                    "slipway: the rollout HALTED: {why}; nodes not started are untouched. \
                     Fix it and re-run `slipway upgrade {}` to resume (or --abandon)",
                    file.display()
                );
                return Ok(ExitCode::FAILURE);
            }
        }
    }
}

/// Runs `actions` (each on its own node) at once; their outcomes in order.
fn run_actions(
    actions: &[(String, Action)],
    plan: &Plan,
    cluster: &Cluster,
    dir: &Path,
    mode: Option<slipway_bmc::BootMode>,
    opts: &Options,
    client: &ApiClient,
) -> Vec<Outcome> {
    std::thread::scope(|s| {
        let handles: Vec<_> = actions
            .iter()
            .map(|(host, action)| {
                s.spawn(move || {
                    let Some(step) = plan.steps.iter().find(|s| &s.hostname == host) else {
                        return Outcome::Failed("not in the plan".into());
                    };
                    let Some(node) = cluster.node_by_hostname(host) else {
                        return Outcome::Failed("no longer in the cluster file".into());
                    };
                    match action {
                        Action::PreHook => hook(opts.pre_hook.as_deref(), "pre-hook", step, opts),
                        Action::PostHook => {
                            hook(opts.post_hook.as_deref(), "post-hook", step, opts)
                        }
                        Action::Rearm => match client.rearm(host) {
                            Ok(Ok(g)) => Outcome::Rearmed(u32::try_from(g).unwrap_or(u32::MAX)),
                            Ok(Err(why)) => Outcome::Failed(format!("re-arm refused: {why}")),
                            Err(e) => Outcome::Failed(format!("re-arm: {e:#}")),
                        },
                        Action::Cycle => match bmc_cmd::kick_installer(node, dir, mode) {
                            Ok(what) => {
                                println!("{host:<16} {what}");
                                Outcome::Ok
                            }
                            Err(e) => Outcome::Failed(format!("BMC: {e:#}")),
                        },
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Outcome::Failed("the action panicked".into()))
            })
            .collect()
    })
}

/// Runs hook `cmd` (through `sh -c`, the node's hostname as its argument, and
/// SLIPWAY_NODE, SLIPWAY_NODE_IP, SLIPWAY_ROLE in its environment) in a process group
/// of its own, killed whole after `--hook-timeout`. No hook: nothing to do.
fn hook(cmd: Option<&str>, what: &str, step: &crate::reimage::Step, opts: &Options) -> Outcome {
    let Some(cmd) = cmd else {
        return Outcome::Ok;
    };
    match run_hook(cmd, step, opts.hook_timeout) {
        Ok(()) => Outcome::Ok,
        Err(e) => Outcome::Failed(format!("{what}: {e:#}")),
    }
}

fn run_hook(cmd: &str, step: &crate::reimage::Step, limit: Duration) -> anyhow::Result<()> {
    run_for_node(cmd, &step.hostname, &step.ip, step.role, None, limit)
}

/// Runs `cmd` through `sh -c` for one node: its hostname as the last argument,
/// `SLIPWAY_NODE`, `SLIPWAY_NODE_IP` and `SLIPWAY_ROLE` in the environment, `stdin`
/// (or nothing) on its standard input; in a process group of its own, killed whole
/// after `limit`. Non-zero exit, a kill or a start failure is an error.
pub(crate) fn run_for_node(
    cmd: &str,
    hostname: &str,
    ip: &str,
    role: Role,
    stdin: Option<&[u8]>,
    limit: Duration,
) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt as _;
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("{cmd} \"$@\""))
        .arg("slipway-hook")
        .arg(hostname)
        .env("SLIPWAY_NODE", hostname)
        .env("SLIPWAY_NODE_IP", ip)
        .env("SLIPWAY_ROLE", role.as_str())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting `{cmd}`"))?;
    // Fed from a thread: a command that does not read its input cannot block us.
    let feeder = match (stdin, child.stdin.take()) {
        (Some(bytes), Some(mut pipe)) => {
            let bytes = bytes.to_vec();
            Some(std::thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            }))
        }
        _ => None,
    };
    let result = wait_bounded(&mut child, cmd, hostname, limit);
    if let Some(f) = feeder {
        let _ = f.join();
    }
    result
}

fn wait_bounded(
    child: &mut std::process::Child,
    cmd: &str,
    hostname: &str,
    limit: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().context("waiting for the hook")? {
            return if status.success() {
                Ok(())
            } else {
                Err(anyhow!("`{cmd} {}` exited with {status}", hostname))
            };
        }
        if Instant::now() >= deadline {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = child.kill();
            let _ = child.wait();
            return Err(anyhow!(
                "`{cmd} {}` did not finish in {} s (killed)",
                hostname,
                limit.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step() -> crate::reimage::Step {
        crate::reimage::Step {
            hostname: "w1".into(),
            ip: "10.0.0.21".into(),
            role: Role::Worker,
            wave: 0,
            why: String::new(),
            target: Build {
                os_version: "B".into(),
                config_sha256: String::new(),
            },
            phase: crate::reimage::Phase::Pending,
            started: None,
            finished: None,
        }
    }

    #[test]
    fn hooks_get_the_node_and_are_bounded() {
        let dir = std::env::temp_dir().join(format!("slipway-hook-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let out = dir.join("out");
        let cmd = format!(
            "f() {{ printf '%s %s %s %s' \"$SLIPWAY_NODE\" \"$SLIPWAY_NODE_IP\" \"$SLIPWAY_ROLE\" \"$1\" > {}; }}; f",
            out.display()
        );
        run_hook(&cmd, &step(), Duration::from_secs(10)).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(
            std::fs::read_to_string(&out).unwrap_or_default(),
            "w1 10.0.0.21 worker w1",
            "the environment, and the hostname as the last argument"
        );
        let e = run_hook("exit 3;", &step(), Duration::from_secs(10))
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(e.contains("exited with exit status: 3"), "{e}");
        let t = Instant::now();
        let e = run_hook("sleep 30; true", &step(), Duration::from_millis(300))
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(e.contains("did not finish"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(5), "killed at the bound");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_plan_file_is_written_whole_and_read_back() {
        let dir = std::env::temp_dir().join(format!("slipway-plan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = plan_path(&dir, "lab/../x");
        assert_eq!(path, dir.join("upgrade").join("lab_.._x.json"));
        assert!(
            load_plan(&path)
                .unwrap_or_else(|e| panic!("{e:#}"))
                .is_none()
        );
        let plan = Plan::new("lab", &[], 1, Include::default(), 7);
        save_plan(&path, &plan).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(
            load_plan(&path).unwrap_or_else(|e| panic!("{e:#}")),
            Some(plan)
        );
        std::fs::write(&path, "{").unwrap_or_else(|e| panic!("{e}"));
        assert!(
            load_plan(&path).is_err(),
            "a torn file is an error, not a plan"
        );
        // One walker at a time.
        let held = lock(&path).unwrap_or_else(|e| panic!("{e:#}"));
        let second = lock(&path)
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(second.contains("another `slipway upgrade`"), "{second}");
        drop(held);
        assert!(lock(&path).is_ok(), "released with its holder");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
