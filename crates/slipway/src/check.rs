//! `slipway check` and `slipway convert`.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use slipway_cluster::{Cluster, DhcpMode, Host, NoHost, Role, emit, load_file, sextant};

use crate::host::SystemHost;
use crate::{EXIT_INVALID, Output};

/// Checks each file in turn (a header line before each summary when there are
/// several); the exit code is the worst of them.
pub fn check_all(
    files: &[std::path::PathBuf],
    output: Output,
    offline: bool,
) -> anyhow::Result<ExitCode> {
    if files.len() > 1 && !matches!(output, Output::Summary) {
        eprintln!(
            "slipway: --output yaml|json takes exactly one file ({} given)",
            files.len()
        );
        return Ok(ExitCode::from(EXIT_INVALID));
    }
    let mut worst = ExitCode::SUCCESS;
    for file in files {
        if files.len() > 1 {
            write_stdout(&format!("== {}\n", file.display()))?;
        }
        let code = match check(file, output, offline) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("slipway: {e:#}");
                ExitCode::FAILURE
            }
        };
        if code != ExitCode::SUCCESS
            && (worst == ExitCode::SUCCESS || code == ExitCode::from(EXIT_INVALID))
        {
            worst = code;
        }
    }
    Ok(worst)
}

/// Loads, validates and completes `file`; prints problems to stderr and the summary or
/// completed description to stdout.
pub fn check(file: &Path, output: Output, offline: bool) -> anyhow::Result<ExitCode> {
    let host: &dyn Host = if offline { &NoHost } else { &SystemHost };
    let started = std::time::Instant::now();
    let (text, loaded) = load_file(file, host)?;
    tracing::debug!(file = %file.display(), elapsed = ?started.elapsed(), "loaded");
    eprint!("{}", loaded.diagnostics.render(&text));
    let Some(cluster) = loaded.valid() else {
        let n = loaded.diagnostics.error_count();
        eprintln!(
            "{}: {n} error{} found",
            file.display(),
            if n == 1 { "" } else { "s" }
        );
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    tracing::info!(nodes = cluster.nodes.len(), "cluster file is valid");
    let out = match output {
        Output::Summary => summary(cluster),
        Output::Json => {
            serde_json::to_string_pretty(cluster).context("serializing the cluster")? + "\n"
        }
        Output::Yaml => {
            emit::to_yaml(&serde_json::to_value(cluster).context("serializing the cluster")?)
        }
    };
    write_stdout(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// A readable summary: the cluster's settings and a table of nodes.
pub fn summary(c: &Cluster) -> String {
    let mut s = String::new();
    let count = |r: Role| c.nodes.iter().filter(|n| n.has_role(r)).count();
    let _ = writeln!(
        s,
        "cluster    {} (domain {}): {} nodes, {} control-plane, {} etcd, {} worker",
        c.cluster.name,
        c.cluster.domain,
        c.nodes.len(),
        count(Role::ControlPlane),
        count(Role::Etcd),
        count(Role::Worker)
    );
    let n = &c.network;
    let dhcp = match n.dhcp.mode {
        DhcpMode::Authoritative => format!(
            "authoritative, pool {}, leases {}, unknown machines: {}",
            n.dhcp.pool.map_or("none".into(), |p| p.to_string()),
            n.dhcp.lease_time,
            serde_json::to_value(n.dhcp.unknown_machines)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default()
        ),
        DhcpMode::Proxy => "proxy (boot information only)".into(),
        DhcpMode::Off => "off (the site's DHCP points here)".into(),
    };
    let dhcp = if n.dhcp.relays.is_empty() {
        dhcp
    } else {
        let relays: Vec<String> = n.dhcp.relays.iter().map(|r| r.to_string()).collect();
        format!("{dhcp}, relays {}", relays.join(" "))
    };
    let _ = writeln!(
        s,
        "network    {} on {}, subnet {}, gateway {}, DHCP {dhcp}",
        n.server,
        n.interface,
        n.subnet,
        n.gateway.map_or("none".into(), |g| g.to_string())
    );
    let o = &c.os;
    let _ = writeln!(
        s,
        "os         {} {} {} ({}), {} config, assets {}",
        enum_name(&o.distro),
        o.channel,
        o.version,
        enum_name(&o.arch),
        enum_name(&o.config_format),
        serde_json::to_value(&o.assets)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default()
    );
    let k = &c.kubernetes;
    let endpoint = match &k.control_plane_endpoint.node {
        Some(host) => format!("{}, node {host}", k.control_plane_endpoint.address),
        None => format!(
            "virtual IP held by kube-vip on {} control-plane nodes",
            c.nodes
                .iter()
                .filter(|n| n.has_role(slipway_cluster::Role::ControlPlane))
                .count()
        ),
    };
    let cni = match slipway_render::cni::plan(c) {
        slipway_render::cni::Plan::Rendered => format!(
            "CNI {} {}",
            k.network_plugin.as_str(),
            slipway_render::cni::version(c)
        ),
        slipway_render::cni::Plan::Url(u) => format!("CNI from {u}"),
        slipway_render::cni::Plan::File(p) => format!("CNI from {}", p.display()),
        slipway_render::cni::Plan::Nothing => "no CNI (network_plugin: none)".into(),
    };
    let _ = writeln!(
        s,
        "kubernetes {}, endpoint {}.{} = {} ({endpoint}), pods {}, services {}, DNS {}, {cni}",
        k.version,
        k.api_name,
        c.cluster.domain,
        k.control_plane_endpoint,
        k.pod_subnet,
        k.service_subnet,
        k.cluster_dns,
    );
    let _ = writeln!(s);
    let rows: Vec<[String; 6]> = c
        .nodes
        .iter()
        .map(|n| {
            [
                n.hostname.clone(),
                n.mac.to_string(),
                n.ip.to_string(),
                n.roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                n.install_disk.clone(),
                n.profile.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let header = ["HOSTNAME", "MAC", "IP", "ROLES", "DISK", "PROFILE"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:w$}"))
            .collect();
        let _ = writeln!(s, "{}", line.join("  ").trim_end());
    }
    s
}

fn enum_name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// Converts a sextant file; notes go to stderr, the slipway file to stdout or `out`.
pub fn convert_sextant(file: &Path, out: Option<&Path>) -> anyhow::Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let converted = sextant::convert(&file.display().to_string(), &text);
    eprint!("{}", converted.diagnostics.render(&text));
    let Some(yaml) = converted
        .yaml
        .filter(|_| !converted.diagnostics.has_errors())
    else {
        eprintln!("{}: not converted", file.display());
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    for note in &converted.notes {
        eprintln!("note: {note}");
    }
    match out {
        Some(path) => std::fs::write(path, yaml)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => write_stdout(&yaml)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Loads `file`, printing its problems; `None` (after printing) when it is invalid.
pub fn load_valid(file: &Path, offline: bool) -> anyhow::Result<Option<Cluster>> {
    let host: &dyn Host = if offline { &NoHost } else { &SystemHost };
    let (text, loaded) = load_file(file, host)?;
    eprint!("{}", loaded.diagnostics.render(&text));
    if loaded.valid().is_none() {
        let n = loaded.diagnostics.error_count();
        eprintln!(
            "{}: {n} error{} found",
            file.display(),
            if n == 1 { "" } else { "s" }
        );
    }
    Ok(loaded.valid().cloned())
}

/// Writes to standard output; a reader that went away (`| head`) is not an error.
pub fn write_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to standard output"),
    }
}
