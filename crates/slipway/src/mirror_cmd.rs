//! `slipway mirror`: fill the cluster's asset mirror with what its nodes will ask for,
//! verified; and `check --assets`: what is missing.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use clap::ValueEnum;
use slipway_cluster::Cluster;
use slipway_mirror::Part;
use slipway_mirror::fetch::{self, Options, human};
use slipway_mirror::oci::{self, Which};

use crate::EXIT_INVALID;
use crate::check::{load_valid, write_stdout};

/// `--only`.
#[derive(Clone, Copy, ValueEnum)]
pub enum Only {
    /// The OS images (kernel, initramfs, disk image, version.txt and signatures).
    Os,
    /// The Kubernetes sysext image.
    Kubernetes,
    /// iPXE's boot programs (from a Debian package pinned by SHA-256).
    Boot,
    /// The container images the nodes pull (kubeadm's, the CNI's, kube-vip's,
    /// `kubernetes.extra_images`), into `<assets>/oci`; needs `kubernetes.serve_images`.
    Images,
    /// The CNI's container images only.
    Cni,
}

/// `slipway mirror FILE`.
pub fn mirror(
    file: &Path,
    only: Option<Only>,
    parallel: usize,
    dry_run: bool,
    offline: bool,
) -> anyhow::Result<ExitCode> {
    let Some(cluster) = load_valid(file, offline)? else {
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    let images = match only {
        None => cluster.kubernetes.images.serve.then_some(Which::All),
        Some(Only::Images) => Some(Which::All),
        Some(Only::Cni) => Some(Which::Cni),
        Some(_) => None,
    };
    if matches!(only, Some(Only::Images | Only::Cni)) && !cluster.kubernetes.images.serve {
        eprintln!(
            "slipway: mirror: {}: `kubernetes.serve_images` is not set: slipway would not serve the images (set it to true)",
            file.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    let files_part = match only {
        None => true,
        Some(Only::Os | Only::Kubernetes | Only::Boot) => true,
        Some(Only::Images | Only::Cni) => false,
    };
    let only = only.and_then(|o| match o {
        Only::Os => Some(Part::Os),
        Only::Kubernetes => Some(Part::Kubernetes),
        Only::Boot => Some(Part::Boot),
        Only::Images | Only::Cni => None,
    });
    if dry_run {
        return dry_run_all(&cluster, files_part, only, images);
    }
    let mut summary = fetch::Summary::default();
    if files_part {
        let opts = Options {
            only,
            parallel: parallel.max(1),
            terminal: std::io::stdout().is_terminal(),
            ..Default::default()
        };
        let mut stdout = std::io::stdout();
        summary = match fetch::mirror(&cluster, &opts, &mut stdout) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("slipway: mirror: {e}");
                return Ok(ExitCode::FAILURE);
            }
        };
        if let Some(v) = &summary.current {
            write_stdout(&format!(
                "current is {v} (recorded; delete the record to move on)\n"
            ))?;
        }
        write_stdout(&format!(
            "{} fetched ({}), {} already verified, {} failed\n",
            summary.fetched.len(),
            human(summary.bytes),
            summary.up_to_date.len(),
            summary.failures.len()
        ))?;
    }
    let mut failures = summary.failures;
    if let Some(which) = images {
        let start = std::time::Instant::now();
        let mut stdout = std::io::stdout();
        let (s, requests) = match oci::mirror(&cluster, which, parallel.max(1), &mut stdout) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("slipway: mirror: images: {e}");
                return Ok(ExitCode::FAILURE);
            }
        };
        write_stdout(&format!(
            "images: {} pulled ({}), {} already verified, {} failed; {requests} requests in {:.1}s\n",
            s.fetched.len(),
            human(s.bytes),
            s.up_to_date.len(),
            s.failures.len(),
            start.elapsed().as_secs_f64()
        ))?;
        failures.extend(s.failures);
    }
    if failures.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for f in &failures {
        eprintln!("slipway: mirror: {}: {}", f.file.display(), f.reason);
    }
    Ok(ExitCode::FAILURE)
}

/// `--dry-run`: the files and the images, with sizes when known.
fn dry_run_all(
    cluster: &Cluster,
    files_part: bool,
    only: Option<Part>,
    images: Option<Which>,
) -> anyhow::Result<ExitCode> {
    let mut out = String::new();
    if files_part {
        let planned = match fetch::dry_run(cluster, only) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("slipway: mirror: {e}");
                return Ok(ExitCode::FAILURE);
            }
        };
        let mut total = 0;
        for p in &planned {
            let size = p.size.map_or_else(|| "size unknown".into(), human);
            total += p.size.unwrap_or(0);
            let state = if p.up_to_date {
                "  (verified, skipped)"
            } else {
                ""
            };
            out.push_str(&format!(
                "{}\n  -> {}  [{size}]{state}\n",
                p.url,
                p.dest.display()
            ));
        }
        out.push_str(&format!(
            "{} files, {} in all\n",
            planned.len(),
            human(total)
        ));
    }
    if let Some(which) = images {
        let planned = match oci::dry_run(cluster, which) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("slipway: mirror: images: {e}");
                return Ok(ExitCode::FAILURE);
            }
        };
        let mut total = 0;
        for p in &planned {
            let size = p.size.map_or_else(|| "size unknown".into(), human);
            total += p.size.unwrap_or(0);
            let state = if p.up_to_date { "  (mirrored)" } else { "" };
            out.push_str(&format!(
                "image {}\n  <- {}  [{size}]{state}\n",
                p.reference, p.url
            ));
        }
        out.push_str(&format!(
            "{} images, {} in all (the cluster's platform)\n",
            planned.len(),
            human(total)
        ));
    }
    write_stdout(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// Debian's `ipxe` package's directory: the boot programs when neither `--boot-dir`
/// nor the mirror names others.
pub const DEBIAN_BOOT_DIR: &str = "/usr/lib/ipxe";

/// What the asset mirror lacks ([`fetch::missing`]: what no machine installs without,
/// and the rest), but for the mirror's iPXE programs when Debian's are installed on
/// this machine (serve then takes those).
pub fn missing(cluster: &Cluster) -> (Vec<std::path::PathBuf>, Vec<std::path::PathBuf>) {
    let (os, mut rest) = fetch::missing(cluster);
    if Path::new(DEBIAN_BOOT_DIR).join("undionly.kpxe").is_file() {
        rest.retain(|f| {
            !f.parent()
                .is_some_and(|d| d.ends_with(slipway_mirror::BOOT_DIR))
        });
    }
    (os, rest)
}

/// The lines of `check --assets` (and of serve's refusal): each missing file, the OS
/// files first. `None` when nothing is missing.
pub fn missing_report(cluster: &Cluster) -> Option<String> {
    let (os, rest) = missing(cluster);
    let images = oci::missing(cluster);
    if os.is_empty() && rest.is_empty() && images.is_empty() {
        return None;
    }
    let n = os.len() + rest.len() + images.len();
    let mut s = format!(
        "{n} file{} the machines will ask for {} missing from the asset mirror:\n",
        if n == 1 { "" } else { "s" },
        if n == 1 { "is" } else { "are" }
    );
    for m in os.iter().chain(&rest) {
        s.push_str(&format!("  {}\n", m.display()));
    }
    for i in &images {
        s.push_str(&format!("  image {i}\n"));
    }
    Some(s)
}

/// `check --assets`: what the mirror lacks (after the file checked valid).
pub fn check_assets(file: &Path, offline: bool) -> anyhow::Result<ExitCode> {
    let Some(cluster) = load_valid(file, offline)? else {
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    match missing_report(&cluster) {
        None => {
            let what = match &cluster.os.assets {
                slipway_cluster::AssetSource::Mirror(d) => {
                    format!("the asset mirror {} holds every file", d.display())
                }
                slipway_cluster::AssetSource::Remote(u) => {
                    format!("the assets are at {u}: nothing for slipway to hold")
                }
            };
            write_stdout(&format!("{}: {what}\n", file.display()))?;
            Ok(ExitCode::SUCCESS)
        }
        Some(r) => {
            eprint!("{}: {r}", file.display());
            eprintln!("run `slipway mirror {}`", file.display());
            Ok(ExitCode::FAILURE)
        }
    }
}
