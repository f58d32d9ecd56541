//! `slipway status`, `slipway events`, `slipway machine reinstall`: the machines' lives,
//! asked of the running `slipway serve` over its HTTP API.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;
use slipway_http::api::types::{MachineList, MachineView};

use crate::EXIT_INVALID;
use crate::check::{load_valid, write_stdout};

/// The API base URL of the cluster in `file` (or `api` when given).
fn api_base(file: &Path, api: Option<&str>, offline: bool) -> anyhow::Result<Option<String>> {
    if let Some(a) = api {
        return Ok(Some(a.trim_end_matches('/').to_string()));
    }
    Ok(load_valid(file, offline)?
        .map(|c| format!("http://{}:{}", c.network.server, c.network.http_port)))
}

fn get<T: serde::de::DeserializeOwned>(url: &str) -> anyhow::Result<T> {
    let mut resp = ureq::get(url).call().with_context(|| {
        format!("asking {url} (is `slipway serve` running? give --api URL otherwise)")
    })?;
    resp.body_mut()
        .read_json::<T>()
        .with_context(|| format!("reading {url}"))
}

fn when(at: Option<u64>) -> String {
    match at {
        None | Some(0) => "-".into(),
        Some(t) => {
            let now = slipway_store::tracker::now();
            let ago = now.saturating_sub(t);
            match ago {
                0..60 => format!("{ago}s ago"),
                60..3600 => format!("{}m ago", ago / 60),
                3600..86400 => format!("{}h ago", ago / 3600),
                _ => format!("{}d ago", ago / 86400),
            }
        }
    }
}

fn describe(input: &Value) -> String {
    match input {
        Value::String(s) => s.clone(),
        Value::Object(m) => m
            .iter()
            .filter(|(_, v)| !v.is_null() && v.as_str() != Some(""))
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k} {s}"),
                Value::Object(_) => format!("{k} {}", describe(v)).trim_end().to_string(),
                other => format!("{k} {other}"),
            })
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// `slipway status`: a table (hostname, MAC, IP, firmware, state, since, last event) or JSON.
pub fn status(
    file: &Path,
    api: Option<&str>,
    json: bool,
    offline: bool,
) -> anyhow::Result<ExitCode> {
    let Some(base) = api_base(file, api, offline)? else {
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    let v: MachineList = get(&format!("{base}/api/v1/machines"))?;
    if json {
        write_stdout(&(serde_json::to_string_pretty(&v)? + "\n"))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = vec![
        [
            "HOSTNAME",
            "MAC",
            "IP",
            "FIRMWARE",
            "STATE",
            "SINCE",
            "LAST EVENT",
        ]
        .map(String::from),
    ];
    for m in v.machines {
        let mut state = m.state;
        if let Some(r) = &m.reason {
            state = format!("{state} ({r})");
        }
        rows.push([
            m.hostname,
            m.mac.to_string(),
            m.ip.to_string(),
            m.firmware.unwrap_or_else(|| "-".into()),
            state,
            when(m.since),
            m.last_event
                .filter(|e| !e.input.is_null())
                .map_or_else(|| "-".into(), |e| describe(&e.input)),
        ]);
    }
    let mut widths = [0usize; 7];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    write_stdout(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// `slipway events [NODE]`: every recorded event, oldest first.
pub fn events(
    file: &Path,
    node: Option<&str>,
    api: Option<&str>,
    offline: bool,
) -> anyhow::Result<ExitCode> {
    let Some(base) = api_base(file, api, offline)? else {
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    let hosts: Vec<String> = match node {
        Some(n) => vec![n.to_string()],
        None => machines(&base)?.into_iter().map(|m| m.hostname).collect(),
    };
    let mut lines: Vec<(u64, String)> = Vec::new();
    for h in hosts {
        let m: MachineView = get(&format!("{base}/api/v1/machines/{h}"))?;
        for e in m.events.unwrap_or_default() {
            let at = e.at;
            lines.push((
                at,
                format!(
                    "{at}  {h:<20} {:<11} -> {:<11} {}",
                    e.from,
                    e.to,
                    describe(&e.input)
                ),
            ));
        }
    }
    // Stable: each machine's events are already in order.
    lines.sort_by_key(|(at, _)| *at);
    let out: String = lines.into_iter().map(|(_, l)| l + "\n").collect();
    write_stdout(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// `slipway machine reinstall NODE`: re-arms the install (the operator token comes from
/// the state directory).
pub fn reinstall(
    file: &Path,
    node: &str,
    state_dir: &Path,
    api: Option<&str>,
    offline: bool,
) -> anyhow::Result<ExitCode> {
    let Some(base) = api_base(file, api, offline)? else {
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    let token = operator_token(state_dir)?;
    match rearm(&base, &token, node)? {
        Ok(generation) => {
            write_stdout(&format!(
                "{node}: install re-armed (generation {generation}); its next network boot installs it\n"
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Err(why) => {
            eprintln!("slipway: reinstall of {node} refused: {why}");
            Ok(ExitCode::from(EXIT_INVALID))
        }
    }
}

/// The operator token `slipway serve` keeps in the state directory, as sent.
pub fn operator_token(state_dir: &Path) -> anyhow::Result<String> {
    let token = std::fs::read(state_dir.join("api-token")).with_context(|| {
        format!(
            "reading the operator token in {} (run this where `slipway serve` keeps its state)",
            state_dir.display()
        )
    })?;
    Ok(token.iter().map(|b| format!("{b:02x}")).collect())
}

/// Re-arms `node`'s install through the API at `base`: `Ok(Ok(generation))`, or
/// `Ok(Err(why))` when the server refused.
pub fn rearm(base: &str, token: &str, node: &str) -> anyhow::Result<Result<u64, String>> {
    let url = format!("{base}/api/v1/machines/{node}/reinstall");
    let mut resp = ureq::post(&url)
        .header("Authorization", &format!("Bearer {token}"))
        .config()
        .http_status_as_error(false)
        .build()
        .send_empty()
        .with_context(|| format!("asking {url} (is `slipway serve` running?)"))?;
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    if status != 200 {
        return Ok(Err(format!("{status}: {}", body.trim())));
    }
    let generation = serde_json::from_str::<MachineView>(&body).map_or(0, |m| m.generation);
    Ok(Ok(u64::from(generation)))
}

/// The machines as the API at `base` lists them.
pub fn machines(base: &str) -> anyhow::Result<Vec<MachineView>> {
    let v: MachineList = get(&format!("{base}/api/v1/machines"))?;
    Ok(v.machines)
}

/// The API base URL for `cluster` (or `api` when given).
pub fn api_url(cluster: &slipway_cluster::Cluster, api: Option<&str>) -> String {
    match api {
        Some(a) => a.trim_end_matches('/').to_string(),
        None => format!(
            "http://{}:{}",
            cluster.network.server, cluster.network.http_port
        ),
    }
}
