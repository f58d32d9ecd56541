//! `slipway power`, `slipway boot` and `slipway provision`: machines driven through their
//! BMCs (IPMI or Redfish, as the cluster file says), many at once with bounded
//! concurrency. Passwords are read from the environment or a file when needed and
//! never printed.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use clap::ValueEnum;
use slipway_bmc::{Bmc, BootDevice, BootMode, BootOverride, PowerAction, PowerState, Secret};
use slipway_cluster::{BmcDriver, BmcTls, Cluster, Node, PasswordSource};

use crate::EXIT_INVALID;
use crate::check::load_valid;
use crate::machine_cmd;

/// `slipway power` actions.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum PowerArg {
    /// Print the power state.
    Status,
    /// Power on.
    On,
    /// Hard power off.
    Off,
    /// Off, then on.
    Cycle,
    /// Hard reset.
    Reset,
    /// Ask the OS to shut down (ACPI).
    Soft,
}

/// `slipway boot` devices.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum BootArg {
    /// Network boot (PXE).
    Pxe,
    /// The local disk.
    Disk,
    /// UEFI HTTP boot (Redfish only).
    Http,
}

/// Firmware interface for the boot override.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ModeArg {
    /// Legacy BIOS.
    Bios,
    /// UEFI.
    Uefi,
}

/// Which nodes: named ones, or every node with a BMC.
pub struct Targets {
    /// Hostnames or MACs.
    pub nodes: Vec<String>,
    /// Every node that has a `bmc`.
    pub all: bool,
    /// At most this many BMCs at once.
    pub parallel: usize,
}

/// The password of a BMC, from where the cluster file says.
fn password(src: &PasswordSource, base_dir: &Path) -> anyhow::Result<Secret> {
    match src {
        PasswordSource::Env(var) => std::env::var(var)
            .map(Secret::new)
            .map_err(|_| anyhow!("the BMC password variable {var} is not set")),
        PasswordSource::File(path) => {
            let path = base_dir.join(path);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading the BMC password file {}", path.display()))?;
            Ok(Secret::new(text.lines().next().unwrap_or_default()))
        }
        PasswordSource::Inline(p) => Ok(Secret::new(p.clone())),
    }
}

/// How to reach one node's BMC, as the cluster file says (nothing is sent yet).
#[derive(Debug, Clone)]
pub enum BmcConfig {
    /// IPMI v2.0 over LAN.
    Ipmi(slipway_bmc::ipmi::Config),
    /// Redfish.
    Redfish(slipway_bmc::redfish::Config),
}

/// `node`'s BMC settings, its password read from where the file says.
pub fn bmc_config(node: &Node, base_dir: &Path) -> anyhow::Result<BmcConfig> {
    let b = node
        .bmc
        .as_ref()
        .ok_or_else(|| anyhow!("{} has no `bmc` in the cluster file", node.hostname))?;
    let pw = password(&b.password, base_dir)?;
    Ok(match b.driver {
        BmcDriver::Ipmi => {
            use slipway_bmc::ipmi;
            let suite = match b.cipher_suite {
                Some(3) => ipmi::CipherSuite::Three,
                _ => ipmi::CipherSuite::Seventeen,
            };
            BmcConfig::Ipmi(ipmi::Config::new(&b.address, b.port, &b.user, pw, suite))
        }
        BmcDriver::Redfish => {
            use slipway_bmc::redfish;
            let tls = match &b.tls {
                BmcTls::SystemRoots => redfish::Tls::SystemRoots,
                BmcTls::Ca(p) => redfish::Tls::CaFile(base_dir.join(p)),
                BmcTls::Insecure => redfish::Tls::Insecure,
                BmcTls::Fingerprint(f) => redfish::Tls::Fingerprint(
                    redfish::parse_fingerprint(f).map_err(|e| anyhow!(e))?,
                ),
            };
            let mut cfg = redfish::Config::new(&b.address, b.port, &b.user, pw, tls);
            cfg.system = b.system.clone();
            if b.session_auth {
                cfg.auth = redfish::Auth::Session;
            }
            BmcConfig::Redfish(cfg)
        }
    })
}

/// Connects to `node`'s BMC.
pub fn connect(node: &Node, base_dir: &Path) -> anyhow::Result<Box<dyn Bmc>> {
    let what = || format!("{}'s BMC", node.hostname);
    Ok(match bmc_config(node, base_dir)? {
        BmcConfig::Ipmi(cfg) => Box::new(slipway_bmc::ipmi::connect(&cfg).with_context(what)?),
        BmcConfig::Redfish(cfg) => {
            Box::new(slipway_bmc::redfish::connect(&cfg).with_context(what)?)
        }
    })
}

/// The nodes named (or all with a BMC); an error names those unknown or without a BMC.
fn select<'c>(cluster: &'c Cluster, t: &Targets) -> Result<Vec<&'c Node>, String> {
    if t.all {
        let v: Vec<&Node> = cluster.nodes.iter().filter(|n| n.bmc.is_some()).collect();
        return if v.is_empty() {
            Err("no node of the cluster has a `bmc`".into())
        } else {
            Ok(v)
        };
    }
    if t.nodes.is_empty() {
        return Err("name one or more nodes, or give --all".into());
    }
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for name in &t.nodes {
        let n = cluster
            .node_by_hostname(name)
            .or_else(|| name.parse().ok().and_then(|m| cluster.node_by_mac(m)));
        match n {
            None => problems.push(format!("no node `{name}`")),
            Some(n) if n.bmc.is_none() => problems.push(format!("{} has no `bmc`", n.hostname)),
            Some(n) => out.push(n),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems.join("; "))
    }
}

/// The cluster in `file` and the nodes `targets` names; `None` (after saying why) when
/// the file is invalid or a name is wrong.
fn load(
    file: &Path,
    targets: &Targets,
    offline: bool,
) -> anyhow::Result<Option<(Cluster, Vec<Node>)>> {
    let Some(cluster) = load_valid(file, offline)? else {
        return Ok(None);
    };
    match select(&cluster, targets) {
        Ok(nodes) => {
            let nodes = nodes.into_iter().cloned().collect();
            Ok(Some((cluster, nodes)))
        }
        Err(e) => {
            eprintln!("slipway: {e}");
            Ok(None)
        }
    }
}

/// Runs `f` on every node, at most `parallel` at once, and returns each result in the
/// nodes' order.
fn each<T: Send>(
    nodes: &[&Node],
    parallel: usize,
    f: impl Fn(&Node) -> anyhow::Result<T> + Sync,
) -> Vec<anyhow::Result<T>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<BTreeMap<usize, anyhow::Result<T>>> = Mutex::new(BTreeMap::new());
    std::thread::scope(|s| {
        for _ in 0..parallel.clamp(1, nodes.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(n) = nodes.get(i) else { break };
                    let r = f(n);
                    if let Ok(mut all) = results.lock() {
                        all.insert(i, r);
                    }
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_default()
        .into_values()
        .collect()
}

/// The directory the cluster file's relative paths (BMC password files, CAs) start from.
pub fn base_dir(file: &Path) -> &Path {
    file.parent().unwrap_or(Path::new("."))
}

/// Prints one line per node and a summary; the exit code says whether all succeeded.
fn report(nodes: &[&Node], results: Vec<anyhow::Result<String>>) -> ExitCode {
    let mut failed = 0;
    for (n, r) in nodes.iter().zip(results) {
        match r {
            Ok(line) => println!("{:<16} {line}", n.hostname),
            Err(e) => {
                failed += 1;
                println!("{:<16} FAILED: {e:#}", n.hostname);
            }
        }
    }
    if failed > 0 {
        eprintln!("slipway: {failed} of {} failed", nodes.len());
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `slipway power FILE ACTION NODE...|--all`.
pub fn power(
    file: &Path,
    action: PowerArg,
    targets: &Targets,
    offline: bool,
) -> anyhow::Result<ExitCode> {
    let Some((_, chosen)) = load(file, targets, offline)? else {
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    let nodes: Vec<&Node> = chosen.iter().collect();
    let dir = base_dir(file);
    let results = each(&nodes, targets.parallel, |n| {
        let mut bmc = connect(n, dir)?;
        let act = match action {
            PowerArg::Status => return Ok(format!("power {}", bmc.power_state()?)),
            PowerArg::On => PowerAction::On,
            PowerArg::Off => PowerAction::Off,
            PowerArg::Cycle => PowerAction::Cycle,
            PowerArg::Reset => PowerAction::Reset,
            PowerArg::Soft => PowerAction::Soft,
        };
        bmc.power(act)?;
        Ok(format!("power {act}: done"))
    });
    Ok(report(&nodes, results))
}

fn boot_override(device: BootArg, once: bool, mode: Option<ModeArg>) -> BootOverride {
    BootOverride {
        device: match device {
            BootArg::Pxe => BootDevice::Pxe,
            BootArg::Disk => BootDevice::Disk,
            BootArg::Http => BootDevice::UefiHttp,
        },
        once,
        mode: mode.map(|m| match m {
            ModeArg::Bios => BootMode::Bios,
            ModeArg::Uefi => BootMode::Uefi,
        }),
    }
}

/// `slipway boot FILE DEVICE NODE...|--all [--once] [--mode bios|uefi]`.
pub fn boot(
    file: &Path,
    device: BootArg,
    once: bool,
    mode: Option<ModeArg>,
    targets: &Targets,
    offline: bool,
) -> anyhow::Result<ExitCode> {
    let Some((_, chosen)) = load(file, targets, offline)? else {
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    let nodes: Vec<&Node> = chosen.iter().collect();
    let dir = base_dir(file);
    let o = boot_override(device, once, mode);
    let results = each(&nodes, targets.parallel, |n| {
        connect(n, dir)?.set_boot(o)?;
        Ok(format!(
            "boot {device:?} {}",
            if once { "next boot only" } else { "every boot" }
        )
        .to_lowercase())
    });
    Ok(report(&nodes, results))
}

/// PXE once, then power on (off and on when it is on): what puts a machine into the
/// installer. Used by `provision` and by `serve`'s retry of stalled installs.
pub fn pxe_and_cycle(
    bmc: &mut dyn Bmc,
    mode: Option<BootMode>,
) -> slipway_bmc::Result<&'static str> {
    bmc.set_boot(BootOverride {
        device: BootDevice::Pxe,
        once: true,
        mode,
    })?;
    // Off, then on, rather than a "cycle": a machine that powers itself off between the
    // state query and the command would ignore a cycle (the IPMI spec lets a BMC do
    // nothing), and provisioning would wait for nothing.
    let was_on = bmc.power_state()? == PowerState::On;
    if was_on {
        bmc.power(PowerAction::Off)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while bmc.power_state()? == PowerState::On {
            if Instant::now() > deadline {
                return Err(slipway_bmc::Error::Protocol(
                    "still on 30 s after a power-off".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    bmc.power(PowerAction::On)?;
    Ok(if was_on {
        "pxe once + power off and on"
    } else {
        "pxe once + power on"
    })
}

/// The firmware interface `mode` asks for.
pub fn boot_mode(mode: Option<ModeArg>) -> Option<BootMode> {
    mode.map(|m| match m {
        ModeArg::Bios => BootMode::Bios,
        ModeArg::Uefi => BootMode::Uefi,
    })
}

/// Puts `node` into its (re-armed) installer through its BMC: connects, PXE once,
/// power off and on ([`pxe_and_cycle`]); says what was done. Shared by `provision` and
/// `upgrade`.
pub fn kick_installer(
    node: &Node,
    base_dir: &Path,
    mode: Option<BootMode>,
) -> anyhow::Result<&'static str> {
    let mut bmc = connect(node, base_dir)?;
    Ok(pxe_and_cycle(bmc.as_mut(), mode)?)
}

/// `slipway provision FILE NODE...|--all`: re-arm the install, PXE on next boot, power
/// cycle, then follow each machine's lifecycle to `ready` (or `failed`, or `timeout`).
pub fn provision(
    file: &Path,
    targets: &Targets,
    mode: Option<ModeArg>,
    timeout: Duration,
    state_dir: &Path,
    api: &machine_cmd::ApiArgs,
    offline: bool,
) -> anyhow::Result<ExitCode> {
    let Some((_cluster, chosen)) = load(file, targets, offline)? else {
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    let nodes: Vec<&Node> = chosen.iter().collect();
    let client = machine_cmd::ApiClient::new(api, state_dir)?;
    let dir = base_dir(file);
    let mode = boot_mode(mode);
    let started = Instant::now();
    // 1. Re-arm and power-cycle every machine (bounded concurrency).
    let kicked = each(&nodes, targets.parallel, |n| {
        let generation = client
            .rearm(&n.hostname)?
            .map_err(|why| anyhow!("re-arm refused: {why}"))?;
        let what = kick_installer(n, dir, mode)?;
        println!(
            "{:<16} re-armed (generation {generation}), {what}",
            n.hostname
        );
        Ok(generation)
    });
    // 2. Follow the lifecycle of those that were kicked, until each is done.
    let mut outcome: BTreeMap<String, Result<String, String>> = BTreeMap::new();
    let mut watching: BTreeMap<String, String> = BTreeMap::new();
    for (n, k) in nodes.iter().zip(kicked) {
        match k {
            Ok(_) => {
                watching.insert(n.hostname.clone(), String::new());
            }
            Err(e) => {
                outcome.insert(n.hostname.clone(), Err(format!("{e:#}")));
            }
        }
    }
    while !watching.is_empty() {
        if started.elapsed() > timeout {
            for (host, last) in std::mem::take(&mut watching) {
                outcome.insert(
                    host,
                    Err(format!("not ready after {timeout:?} (last state: {last})")),
                );
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
        let machines = match client.machines() {
            Ok(m) => m,
            Err(e) => {
                eprintln!("slipway: {e:#} (retrying)");
                continue;
            }
        };
        for m in machines {
            let host = m.hostname.as_str();
            let Some(last) = watching.get_mut(host) else {
                continue;
            };
            let state = m.state.clone();
            if *last != state {
                println!(
                    "{host:<16} {state:<11} +{:.0}s",
                    started.elapsed().as_secs_f64()
                );
                *last = state.clone();
            }
            match state.as_str() {
                "ready" => {
                    watching.remove(host);
                    outcome.insert(
                        host.to_string(),
                        Ok(format!("ready in {:.0} s", started.elapsed().as_secs_f64())),
                    );
                }
                "failed" => {
                    watching.remove(host);
                    let why = m.reason.clone().unwrap_or_else(|| "failed".into());
                    outcome.insert(host.to_string(), Err(why));
                }
                _ => {}
            }
        }
    }
    let failed = outcome.values().filter(|o| o.is_err()).count();
    println!(
        "provisioned {} of {} in {:.0} s",
        nodes.len() - failed,
        nodes.len(),
        started.elapsed().as_secs_f64()
    );
    for (host, o) in &outcome {
        if let Err(e) = o {
            println!("  {host}: {e}");
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
