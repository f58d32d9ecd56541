//! `slipway export FILE --to DIR --for TARGET`: the configuration of a site's own DHCP,
//! TFTP or web server, from the cluster file (see `slipway_render::export`).
//!
//! Writing into DIR: it is created if needed, and slipway writes into it even when it
//! holds other files. Each file slipway generates is replaced whole (written beside
//! it, then renamed over it). Other files are left alone, except the ones an earlier
//! export of the same target wrote and this one no longer does (a removed node's
//! scripts): those are deleted, so a machine taken out of the cluster file stops
//! booting its installer. What was written is listed in `DIR/.slipway-export-TARGET`.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::ValueEnum;
use slipway_cluster::{Host, NoHost, load_file};
use slipway_render::export::{self as render, Contents, Export, ExportError, Options};

use crate::EXIT_INVALID;
use crate::host::SystemHost;

/// What `slipway export` writes the configuration of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// dnsmasq: DNS, TFTP and DHCP or ProxyDHCP (`dnsmasq.conf`).
    Dnsmasq,
    /// ISC dhcpd 4.4 (`dhcpd.conf`).
    IscDhcpd,
    /// Kea DHCPv4 2.2 (`kea-dhcp4.conf`).
    Kea,
    /// nginx: iPXE scripts and the asset mirror over HTTP (`server.conf`, `nginx.conf`, `www/`).
    Nginx,
    /// A TFTP root: iPXE and pxelinux boot programs, `pxelinux.cfg/`.
    TftpRoot,
}

impl From<Target> for render::Target {
    fn from(t: Target) -> Self {
        match t {
            Target::Dnsmasq => render::Target::Dnsmasq,
            Target::IscDhcpd => render::Target::IscDhcpd,
            Target::Kea => render::Target::Kea,
            Target::Nginx => render::Target::Nginx,
            Target::TftpRoot => render::Target::TftpRoot,
        }
    }
}

/// The list of files an export of `target` wrote, inside the export directory.
pub fn manifest_name(target: Target) -> String {
    format!(".slipway-export-{}", render::Target::from(target).name())
}

/// Loads and validates `file` (problems to stderr, exit code 2 when invalid), then
/// writes the `target` configuration into `to`. Notes for the operator go to stderr.
pub fn export(file: &Path, to: &Path, target: Target, offline: bool) -> anyhow::Result<ExitCode> {
    let host: &dyn Host = if offline { &NoHost } else { &SystemHost };
    let (text, loaded) = load_file(file, host)?;
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
    let dir = std::path::absolute(to).with_context(|| format!("cannot use {}", to.display()))?;
    let opts = Options::new(file.display().to_string(), &dir);
    let out = match render::export(cluster, target.into(), &opts) {
        Ok(out) => out,
        Err(e @ ExportError::BadPath { .. }) => {
            eprintln!("slipway: {e}");
            return Ok(ExitCode::from(EXIT_INVALID));
        }
        Err(e) => return Err(e.into()),
    };
    let written = write_export(&out, &dir, target)?;
    for note in &out.notes {
        eprintln!("note: {note}");
    }
    eprintln!(
        "slipway: {}: wrote {written} file{} into {}",
        render::Target::from(target),
        if written == 1 { "" } else { "s" },
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes `out` into `dir` as described in the module documentation; returns how many
/// files (not directories) were written.
pub fn write_export(out: &Export, dir: &Path, target: Target) -> anyhow::Result<usize> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let manifest = dir.join(manifest_name(target));
    let previous: Vec<PathBuf> = match std::fs::read_to_string(&manifest) {
        Ok(text) => text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(PathBuf::from)
            .filter(|p| is_plain_relative(p))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", manifest.display())),
    };

    let mut written = BTreeSet::new();
    let mut count = 0;
    for f in &out.files {
        if !is_plain_relative(&f.path) {
            bail!(
                "refusing to write outside {}: {}",
                dir.display(),
                f.path.display()
            );
        }
        let to = dir.join(&f.path);
        let what = || format!("cannot write {}", to.display());
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).with_context(what)?;
        }
        match &f.contents {
            Contents::Dir => {
                std::fs::create_dir_all(&to).with_context(what)?;
                continue;
            }
            Contents::Text(text) => {
                replace(&to, |tmp| std::fs::write(tmp, text)).with_context(what)?
            }
            Contents::Copy(from) => replace(&to, |tmp| std::fs::copy(from, tmp).map(|_| ()))
                .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?,
            Contents::Symlink(target) => match std::fs::symlink_metadata(&to) {
                Ok(m) if m.is_dir() => {
                    eprintln!(
                        "note: {} is a directory, not a link to {}: left as it is",
                        to.display(),
                        target.display()
                    );
                    continue;
                }
                _ => replace(&to, |tmp| std::os::unix::fs::symlink(target, tmp))
                    .with_context(what)?,
            },
        }
        written.insert(f.path.clone());
        count += 1;
    }

    // What the previous export wrote and this one does not: remove it.
    for old in previous.iter().filter(|p| !written.contains(*p)) {
        let path = dir.join(old);
        if !under_real_dirs(dir, old) {
            continue;
        }
        match std::fs::symlink_metadata(&path) {
            Ok(m) if !m.is_dir() => {
                std::fs::remove_file(&path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
                eprintln!(
                    "slipway: removed {} (no longer in the export)",
                    path.display()
                );
            }
            _ => {}
        }
    }

    let mut list = format!(
        "# Files `slipway export --for {}` wrote here; the next export removes those it no\n\
         # longer writes. Other files are never touched.\n",
        render::Target::from(target)
    );
    for p in &written {
        list.push_str(&p.display().to_string());
        list.push('\n');
    }
    replace(&manifest, |tmp| std::fs::write(tmp, &list))
        .with_context(|| format!("cannot write {}", manifest.display()))?;
    Ok(count)
}

/// Makes `path` with `make` at a temporary name beside it, then renames it over `path`,
/// so a reader never sees half a file.
fn replace(path: &Path, make: impl FnOnce(&Path) -> std::io::Result<()>) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.slipway-tmp"));
    let _ = std::fs::remove_file(&tmp);
    if let Err(e) = make(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// A non-empty relative path of plain names (no `..`, no root).
fn is_plain_relative(p: &Path) -> bool {
    p.components().next().is_some() && p.components().all(|c| matches!(c, Component::Normal(_)))
}

/// Whether every directory between `dir` and `rel` is a real directory, not a link
/// (so removing `rel` cannot reach outside `dir`).
fn under_real_dirs(dir: &Path, rel: &Path) -> bool {
    let mut at = dir.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for c in parts.iter().take(parts.len().saturating_sub(1)) {
        at.push(c);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => {}
            _ => return false,
        }
    }
    true
}
