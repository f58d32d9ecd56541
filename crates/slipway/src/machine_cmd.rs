//! `slipway status`, `slipway events`, `slipway machine reinstall`: the machines' lives,
//! asked of the running `slipway serve` over its HTTP API.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;
use slipway_http::api::types::{MachineList, MachineView};

use crate::EXIT_INVALID;
use crate::check::{load_valid, write_stdout};

/// How the CLI reaches the running `slipway serve`'s operator API: `--api URL`
/// (default `http://127.0.0.1:9180`), `--api-ca FILE` for a TLS API whose certificate
/// the system's roots do not vouch for, and the operator token.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ApiArgs {
    /// The running `slipway serve`'s operator API (its --api-listen); https:// when
    /// it is not on this machine.
    #[arg(long, global = true, env = "SLIPWAY_API")]
    pub api: Option<String>,
    /// The CA certificate (PEM) that signed the API's TLS certificate (default: the
    /// Mozilla roots).
    #[arg(long, global = true, env = "SLIPWAY_API_CA")]
    pub api_ca: Option<PathBuf>,
}

/// A client of the operator API: where it is, the token every request carries, and
/// an agent with the TLS trust it needs.
pub struct ApiClient {
    base: String,
    token: String,
    agent: ureq::Agent,
}

/// Whether `host` (as a URL writes it) names this machine: `localhost` or a loopback
/// address.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl ApiClient {
    /// A client of the API `args` names, with the operator token from
    /// `SLIPWAY_API_TOKEN` or `<state_dir>/api-token`. Refuses to send the token in
    /// clear text (`http://`) to anything but this machine.
    pub fn new(args: &ApiArgs, state_dir: &Path) -> anyhow::Result<ApiClient> {
        let default = format!("http://{}", slipway_http::api::DEFAULT_LISTEN);
        let base = args
            .api
            .as_deref()
            .unwrap_or(&default)
            .trim_end_matches('/')
            .to_string();
        let uri: ureq::http::Uri = base
            .parse()
            .with_context(|| format!("--api {base}: not a URL (e.g. https://10.0.0.1:9180)"))?;
        let host = uri.host().unwrap_or_default().to_string();
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if is_loopback(&host) => {}
            Some("http") => anyhow::bail!(
                "--api {base}: refusing to send the operator token in clear text to {host}; \
                 serve the API with TLS (serve --api-tls-cert/--api-tls-key) and give \
                 --api https://{host}:PORT (with --api-ca if its certificate is self-made)"
            ),
            _ => anyhow::bail!("--api {base}: the URL must start with http:// or https://"),
        }
        let token = match std::env::var("SLIPWAY_API_TOKEN") {
            Ok(t) if !t.trim().is_empty() => t.trim().to_string(),
            _ => operator_token(state_dir)?,
        };
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(ca) = &args.api_ca {
            let pem =
                std::fs::read(ca).with_context(|| format!("--api-ca: reading {}", ca.display()))?;
            let certs = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("--api-ca {}: not a PEM file", ca.display()))?;
            anyhow::ensure!(
                !certs.is_empty(),
                "--api-ca {}: no certificate in it (expected -----BEGIN CERTIFICATE-----)",
                ca.display()
            );
            tls = tls.root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(certs)));
        }
        let agent = ureq::Agent::config_builder()
            .tls_config(tls.build())
            .timeout_global(Some(std::time::Duration::from_secs(30)))
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .build()
            .new_agent();
        Ok(ApiClient { base, token, agent })
    }

    /// Sends `request` with the token; the status and the body.
    pub(crate) fn send(&self, method: &str, path: &str) -> anyhow::Result<(u16, String)> {
        let url = format!("{}{path}", self.base);
        let auth = format!("Bearer {}", self.token);
        let sent = match method {
            "POST" => self
                .agent
                .post(&url)
                .header("Authorization", &auth)
                .send_empty(),
            _ => self.agent.get(&url).header("Authorization", &auth).call(),
        };
        let mut resp = sent.with_context(|| {
            format!("asking {url} (is `slipway serve` running, with its operator API there? give --api URL otherwise)")
        })?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .with_context(|| format!("reading {url}"))?;
        if status == 401 {
            anyhow::bail!(
                "{url}: 401, the operator token was refused (it is <state-dir>/api-token of that `slipway serve`, or SLIPWAY_API_TOKEN as hex)"
            );
        }
        Ok((status, body))
    }

    /// `GET path` as JSON, any status but 200 an error.
    pub(crate) fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let (status, body) = self.send("GET", path)?;
        anyhow::ensure!(
            status == 200,
            "{}{path}: {status}: {}",
            self.base,
            body.trim()
        );
        serde_json::from_str(&body).with_context(|| format!("reading {}{path}", self.base))
    }

    /// Re-arms `node`'s install: `Ok(Ok(generation))`, or `Ok(Err(why))` when the
    /// server refused.
    pub fn rearm(&self, node: &str) -> anyhow::Result<Result<u64, String>> {
        let (status, body) = self.send("POST", &format!("/api/v1/machines/{node}/reinstall"))?;
        if status != 200 {
            return Ok(Err(format!("{status}: {}", body.trim())));
        }
        let generation = serde_json::from_str::<MachineView>(&body).map_or(0, |m| m.generation);
        Ok(Ok(u64::from(generation)))
    }

    /// The cluster as the running server serves it.
    pub fn cluster(&self) -> anyhow::Result<slipway_http::api::types::ClusterView> {
        self.get("/api/v1/cluster")
    }

    /// The machines as the API lists them.
    pub fn machines(&self) -> anyhow::Result<Vec<MachineView>> {
        let v: MachineList = self.get("/api/v1/machines")?;
        Ok(v.machines)
    }
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
    api: &ApiArgs,
    state_dir: &Path,
    json: bool,
    offline: bool,
) -> anyhow::Result<ExitCode> {
    if load_valid(file, offline)?.is_none() {
        return Ok(ExitCode::from(EXIT_INVALID));
    }
    let client = ApiClient::new(api, state_dir)?;
    let v: MachineList = client.get("/api/v1/machines")?;
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
        if let Some(u) = &m.os_update {
            state = format!("{state}, os update: {u}");
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
    api: &ApiArgs,
    state_dir: &Path,
    offline: bool,
) -> anyhow::Result<ExitCode> {
    if load_valid(file, offline)?.is_none() {
        return Ok(ExitCode::from(EXIT_INVALID));
    }
    let client = ApiClient::new(api, state_dir)?;
    let hosts: Vec<String> = match node {
        Some(n) => vec![n.to_string()],
        None => client.machines()?.into_iter().map(|m| m.hostname).collect(),
    };
    let mut lines: Vec<(u64, String)> = Vec::new();
    for h in hosts {
        let m: MachineView = client.get(&format!("/api/v1/machines/{h}"))?;
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
    api: &ApiArgs,
    offline: bool,
) -> anyhow::Result<ExitCode> {
    if load_valid(file, offline)?.is_none() {
        return Ok(ExitCode::from(EXIT_INVALID));
    }
    let client = ApiClient::new(api, state_dir)?;
    match client.rearm(node)? {
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
fn operator_token(state_dir: &Path) -> anyhow::Result<String> {
    let token = std::fs::read(state_dir.join("api-token")).with_context(|| {
        format!(
            "reading the operator token in {} (run this where `slipway serve` keeps its state)",
            state_dir.display()
        )
    })?;
    Ok(token.iter().map(|b| format!("{b:02x}")).collect())
}
