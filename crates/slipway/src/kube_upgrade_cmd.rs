//! `slipway kubernetes-upgrade FILE --from VERSION`: the Kubernetes version upgrade in
//! place, walked from the slipway machine. The file's `kubernetes.version` is the
//! target; `--from` is what the cluster runs (one minor step or a patch, checked by
//! [`k8s_upgrade::step`]). Each node gets the script [`k8s_upgrade::script`] renders for
//! it on the standard input of `--run` (by default `ssh` to the node, `sudo bash -s`),
//! in kubeadm's order ([`k8s_upgrade::waves`]): the first control plane alone, then
//! each other control plane alone, then the workers in waves of `--max-unavailable`,
//! each between `--pre-hook` (a drain) and `--post-hook` (an uncordon). A failure
//! halts: the nodes after it are untouched. The nodes done are kept in
//! `<state-dir>/upgrade/<cluster>-kubernetes.json`, so a re-run goes on from the
//! failed node (the scripts are idempotent too: a node with the new version's marker
//! does nothing). slipway holds no credentials to the nodes or the cluster: `--run` and
//! the hooks are the operator's.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow};
use serde::{Deserialize, Serialize};
use slipway_cluster::Cluster;
use slipway_cluster::model::{AssetSource, Distro};
use slipway_render::k8s_upgrade::{self, Action, NodeUpgrade, Step};
use slipway_render::urls::Urls;

use crate::EXIT_INVALID;
use crate::check::load_valid;
use crate::reimage::Role;
use crate::reimage_cmd::{lock, plan_path, run_for_node, save_plan};

/// The default `--run`: the script over SSH as root on the node (Flatcar's `core`
/// user has passwordless sudo; the keys are the operator's, in `ssh_authorized_keys`).
pub const DEFAULT_RUN: &str =
    "ssh -o BatchMode=yes -o ConnectTimeout=30 core@\"$SLIPWAY_NODE_IP\" sudo bash -s";

/// The knobs of `slipway kubernetes-upgrade`.
#[derive(Debug, Clone)]
pub struct Options {
    /// The version the cluster runs now.
    pub from: String,
    /// Most workers upgraded at once (control planes always go alone).
    pub max_unavailable: usize,
    /// Print the order and change nothing.
    pub dry_run: bool,
    /// Write every node's script, the unit and the order here, and run nothing.
    pub write_scripts: Option<PathBuf>,
    /// Runs a node's script, given on its standard input.
    pub run: String,
    /// Run before a node's script (e.g. a drain).
    pub pre_hook: Option<String>,
    /// Run after a node's script succeeded (e.g. an uncordon).
    pub post_hook: Option<String>,
    /// Bound on each hook.
    pub hook_timeout: Duration,
    /// Bound on each node's `--run`.
    pub timeout: Duration,
}

/// What a walk has done, kept between runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Progress {
    /// The upgrade walked.
    from: String,
    /// Its target.
    to: String,
    /// Nodes whose script (and hooks) succeeded.
    done: BTreeSet<String>,
}

fn progress_path(state_dir: &Path, cluster: &str) -> PathBuf {
    plan_path(state_dir, &format!("{cluster}-kubernetes"))
}

fn load_progress(path: &Path) -> anyhow::Result<Option<Progress>> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map(Some).with_context(|| {
            format!(
                "{}: not a Kubernetes upgrade's progress (remove it)",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The SHA-256 of the new sysext image in the local mirror (`slipway mirror` verified
/// it against its `SHA256SUMS`), for the scripts to check what they download.
fn sysext_sha256(cluster: &Cluster) -> anyhow::Result<Option<String>> {
    let AssetSource::Mirror(dir) = &cluster.os.assets else {
        return Ok(None);
    };
    let path = dir
        .join("extensions")
        .join(slipway_render::provision::sysext_name(cluster));
    let f = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    slipway_mirror::verify::sha256(f)
        .map(Some)
        .with_context(|| format!("reading {}", path.display()))
}

fn role(u: &NodeUpgrade<'_>) -> Role {
    match u.action {
        Action::Apply | Action::ControlPlane => Role::ControlPlane,
        Action::Worker => Role::Worker,
    }
}

fn action_name(a: Action) -> &'static str {
    match a {
        Action::Apply => "kubeadm upgrade apply",
        Action::ControlPlane | Action::Worker => "kubeadm upgrade node",
    }
}

/// The walk as text: each wave, its nodes and what they run, `done` where done.
fn render_waves(waves: &[Vec<NodeUpgrade<'_>>], done: &BTreeSet<String>) -> String {
    let mut out = String::new();
    for (i, wave) in waves.iter().enumerate() {
        out.push_str(&format!("  wave {}:", i + 1));
        for u in wave {
            let mark = if done.contains(&u.node.hostname) {
                " (done)"
            } else {
                ""
            };
            out.push_str(&format!(
                " {} [{}]{mark}",
                u.node.hostname,
                action_name(u.action)
            ));
        }
        out.push('\n');
    }
    out
}

/// `slipway kubernetes-upgrade FILE --from VERSION [...]`.
pub fn kubernetes_upgrade(
    file: &Path,
    opts: &Options,
    state_dir: &Path,
    offline: bool,
) -> anyhow::Result<ExitCode> {
    let Some(cluster) = load_valid(file, offline)? else {
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    let step = match k8s_upgrade::step(&opts.from, &cluster.kubernetes.version) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "slipway: {}: --from {} to kubernetes.version {}: {e}",
                file.display(),
                opts.from,
                cluster.kubernetes.version
            );
            return Ok(ExitCode::from(EXIT_INVALID));
        }
    };
    if cluster.os.distro != Distro::Flatcar {
        eprintln!(
            "slipway: {}: Kubernetes upgrades are made for Flatcar's sysext image only (os.distro is {:?}); upgrade the packages with the OS, then run kubeadm upgrade as kubeadm's documentation says",
            file.display(),
            cluster.os.distro
        );
        return Ok(ExitCode::from(EXIT_INVALID));
    }
    let sum = sysext_sha256(&cluster)?;
    if sum.is_none() {
        eprintln!(
            "slipway: warning: {} is not in the local mirror: the nodes will not check the image's SHA-256 (run `slipway mirror {}` first)",
            slipway_render::provision::sysext_name(&cluster),
            file.display()
        );
    }
    let urls = Urls::new(&cluster);
    let waves = k8s_upgrade::waves(&cluster, opts.max_unavailable);
    let script =
        |u: &NodeUpgrade<'_>| k8s_upgrade::script(&cluster, u.node, &step, &urls, sum.as_deref());

    if let Some(dir) = &opts.write_scripts {
        return write_scripts(dir, &waves, &step, &script);
    }

    let path = progress_path(state_dir, &cluster.cluster.name);
    let mut progress = match load_progress(&path)? {
        Some(p) if p.from == step.from.to_string() && p.to == step.to.to_string() => p,
        Some(p) => {
            println!(
                "(a stored walk of {} -> {} is set aside: this one is {} -> {})",
                p.from, p.to, step.from, step.to
            );
            Progress::default()
        }
        None => Progress::default(),
    };
    progress.from = step.from.to_string();
    progress.to = step.to.to_string();

    let kind = if step.is_patch() { "patch" } else { "minor" };
    println!(
        "Kubernetes {} -> {} ({kind} upgrade) of {}, in kubeadm's order:",
        step.from, step.to, cluster.cluster.name
    );
    print!("{}", render_waves(&waves, &progress.done));
    if opts.dry_run {
        println!("each node: {} (the script on its input)", opts.run);
        println!("(dry run: nothing changed)");
        return Ok(ExitCode::SUCCESS);
    }
    let _lock = lock(&path)?;
    for wave in &waves {
        let todo: Vec<&NodeUpgrade<'_>> = wave
            .iter()
            .filter(|u| !progress.done.contains(&u.node.hostname))
            .collect();
        if todo.is_empty() {
            continue;
        }
        let results: Vec<(String, anyhow::Result<()>)> = std::thread::scope(|s| {
            let handles: Vec<_> = todo
                .iter()
                .map(|u| {
                    let body = script(u);
                    s.spawn(move || (u.node.hostname.clone(), upgrade_node(u, &body, opts)))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        (String::new(), Err(anyhow!("a walker thread panicked")))
                    })
                })
                .collect()
        });
        let mut failed = Vec::new();
        for (host, r) in results {
            match r {
                Ok(()) => {
                    println!("{host}: upgraded to {}", step.to);
                    progress.done.insert(host);
                }
                Err(e) => failed.push(format!("{host}: {e:#}")),
            }
        }
        save_plan(&path, &progress)?;
        if !failed.is_empty() {
            for f in &failed {
                eprintln!("slipway: HALTED: {f}");
            }
            let untouched: Vec<&str> = waves
                .iter()
                .flatten()
                .map(|u| u.node.hostname.as_str())
                .filter(|h| {
                    !progress.done.contains(*h) && !todo.iter().any(|u| u.node.hostname == *h)
                })
                .collect();
            eprintln!(
                "slipway: untouched: {}; fix the cause and run the same command again to go on (done nodes are skipped; {})",
                if untouched.is_empty() {
                    "none".to_string()
                } else {
                    untouched.join(", ")
                },
                path.display()
            );
            return Ok(ExitCode::from(1));
        }
    }
    println!(
        "all {} nodes run {}",
        waves.iter().map(Vec::len).sum::<usize>(),
        step.to
    );
    Ok(ExitCode::SUCCESS)
}

/// One node: pre-hook, the script through `--run`, post-hook.
fn upgrade_node(u: &NodeUpgrade<'_>, script: &str, opts: &Options) -> anyhow::Result<()> {
    let (host, ip) = (&u.node.hostname, u.node.ip.to_string());
    let role = role(u);
    if let Some(cmd) = &opts.pre_hook {
        run_for_node(cmd, host, &ip, role, None, opts.hook_timeout).context("pre-hook")?;
    }
    println!("{host}: {} ...", action_name(u.action));
    run_for_node(
        &opts.run,
        host,
        &ip,
        role,
        Some(script.as_bytes()),
        opts.timeout,
    )
    .context("the upgrade script")?;
    if let Some(cmd) = &opts.post_hook {
        run_for_node(cmd, host, &ip, role, None, opts.hook_timeout).context("post-hook")?;
    }
    Ok(())
}

/// `--write-scripts DIR`: every node's script (`<host>.sh`), the unit that runs one
/// placed as [`k8s_upgrade::SCRIPT_PATH`], and `order.txt` (the waves), for operators
/// who run them with their own tools.
fn write_scripts(
    dir: &Path,
    waves: &[Vec<NodeUpgrade<'_>>],
    step: &Step,
    script: &dyn Fn(&NodeUpgrade<'_>) -> String,
) -> anyhow::Result<ExitCode> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for u in waves.iter().flatten() {
        let p = dir.join(format!("{}.sh", u.node.hostname));
        std::fs::write(&p, script(u)).with_context(|| format!("writing {}", p.display()))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("chmod {}", p.display()))?;
    }
    let unit = dir.join(k8s_upgrade::UNIT);
    std::fs::write(&unit, k8s_upgrade::unit(step))
        .with_context(|| format!("writing {}", unit.display()))?;
    let order = dir.join("order.txt");
    std::fs::write(&order, render_waves(waves, &BTreeSet::new()))
        .with_context(|| format!("writing {}", order.display()))?;
    println!(
        "wrote {} scripts, {} and order.txt to {} (run them wave by wave, in order)",
        waves.iter().map(Vec::len).sum::<usize>(),
        k8s_upgrade::UNIT,
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
