//! The install script the PXE-booted live system runs: fetch the node's config, write
//! the OS to disk with `flatcar-install` (or the seeds' `coreos-install`), reboot.

use std::fmt::Write as _;

use slipway_cluster::{Cluster, ConfigFormat, Distro, Node};

use crate::RenderError;
use crate::urls::Urls;

/// Shell-quotes `s` for POSIX sh (single quotes).
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The install script of `node`. With `report` (the node's report URL, token included)
/// it tells slipway `installing`, then `installed`, or `failed` if anything fails.
pub fn script(
    cluster: &Cluster,
    node: &Node,
    urls: &Urls,
    report: Option<&str>,
) -> Result<String, RenderError> {
    let os = &cluster.os;
    let (tool, flag, ext) = match (os.distro, os.config_format) {
        (Distro::Flatcar, ConfigFormat::Ignition) => ("flatcar-install", "-i", "ign"),
        (Distro::Flatcar, _) => ("flatcar-install", "-c", "yml"),
        (Distro::Coreos, ConfigFormat::Ignition) => ("coreos-install", "-i", "ign"),
        (Distro::Coreos, _) => ("coreos-install", "-c", "yml"),
        (Distro::Generic, _) => {
            return Err(RenderError::Unsupported(
                "a generic OS installs with its own installer (e.g. kickstart from the template); slipway writes no install script for it".into(),
            ));
        }
    };
    let q = sh_quote;
    let mut s = String::new();
    let _ = writeln!(s, "#!/bin/sh");
    let _ = writeln!(
        s,
        "# slipway: install {} {} {} on {} ({}, {}) to {}",
        crate::ipxe::serde_name(&os.distro),
        os.channel,
        os.version,
        node.hostname,
        node.mac,
        node.ip,
        node.install_disk
    );
    let _ = writeln!(s, "set -eu");
    if let Some(url) = report {
        let _ = writeln!(s, "report() {{");
        let _ = writeln!(
            s,
            "  curl -fsS -X POST {}/\"$1\" >/dev/null 2>&1 || wget -q -O /dev/null --post-data= {}/\"$1\" || true",
            q(url),
            q(url)
        );
        let _ = writeln!(s, "}}");
        let _ = writeln!(
            s,
            "trap 'status=$?; [ \"$status\" -eq 0 ] || report \"failed?reason=exit-$status\"' EXIT"
        );
        let _ = writeln!(s, "report installing");
    }
    let _ = writeln!(s, "config=/tmp/slipway-installed.{ext}");
    let _ = writeln!(s, "fetch() {{");
    let _ = writeln!(
        s,
        "  curl -fsS -o \"$2\" \"$1\" 2>/dev/null || wget -q -O \"$2\" \"$1\""
    );
    let _ = writeln!(s, "}}");
    let _ = writeln!(s, "tries=0");
    let _ = writeln!(
        s,
        "until fetch {} \"$config\"; do",
        q(&urls.installed_config(node.mac))
    );
    let _ = writeln!(s, "  tries=$((tries + 1))");
    let _ = writeln!(
        s,
        "  if [ \"$tries\" -ge 10 ]; then echo 'slipway: cannot fetch the config' >&2; exit 1; fi"
    );
    let _ = writeln!(s, "  sleep 3");
    let _ = writeln!(s, "done");
    let _ = writeln!(
        s,
        "{tool} -d {} -C {} -V {} -b {} {flag} \"$config\"",
        q(&node.install_disk),
        q(&os.channel),
        q(&os.version),
        q(urls.assets())
    );
    if report.is_some() {
        let _ = writeln!(s, "report installed");
    }
    let _ = writeln!(s, "echo 'slipway: installed, rebooting'");
    let _ = writeln!(s, "systemctl reboot 2>/dev/null || reboot");
    Ok(s)
}

/// The seeds' shared `/cloud-configs/install.sh`: finds its own MAC, fetches
/// `<mac>.yml` and installs (kept for sites that boot every machine with one
/// `cloud-config-url`). Only meaningful for the cloud-config formats.
pub fn seed_script(cluster: &Cluster, urls: &Urls) -> String {
    let os = &cluster.os;
    let tool = if os.distro == Distro::Coreos {
        "coreos-install"
    } else {
        "flatcar-install"
    };
    let disk = &os.install_disk;
    format!(
        "#!/bin/sh\n\
         # slipway: the seeds' shared install script; each machine fetches <its mac>.yml\n\
         set -eu\n\
         iface=$(ip route show default 2>/dev/null | awk '{{print $5; exit}}')\n\
         [ -n \"$iface\" ] || iface=$(ls /sys/class/net | grep -v '^lo$' | head -n 1)\n\
         mac=$(cat /sys/class/net/\"$iface\"/address)\n\
         curl -fsS --retry 10 -o /tmp/slipway.yml {base}/cloud-configs/\"$mac\".yml\n\
         {tool} -d {disk} -C {channel} -V {version} -b {assets} -c /tmp/slipway.yml\n\
         reboot\n",
        base = urls.base(),
        disk = sh_quote(disk),
        channel = sh_quote(&os.channel),
        version = sh_quote(&os.version),
        assets = sh_quote(urls.assets()),
    )
}
