//! `slipway demo`: the lab, end to end, on this machine. It runs the project's own
//! end-to-end harness (`tests/e2e/install.sh` and both test OSes, built into this
//! binary by build.rs; `--real-init` for the one with a real Ignition engine and
//! systemd): QEMU VMs, BIOS and UEFI, PXE-boot through `slipway serve` in a
//! private network namespace, install the test OS to their disks, reboot into it and
//! report ready; then `slipway status` shows their lives. Needs root, QEMU, OVMF and
//! the packages `scripts/deps.sh` lists.

use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::Context;

// The harness files (`FILES`), at their paths relative to the repository root: generated
// by build.rs from tests/e2e.
include!(concat!(env!("OUT_DIR"), "/harness.rs"));

/// Runs the demo with `vms` machines; `keep` leaves the work directory for a look;
/// `real_init` boots the real-init test OS (Debian's Ignition engine and systemd apply
/// slipway's configs) instead of the busybox one.
pub fn demo(vms: u32, keep: bool, real_init: bool) -> anyhow::Result<ExitCode> {
    use std::os::unix::fs::PermissionsExt;
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    anyhow::ensure!(
        uid == "0",
        "`slipway demo` makes network namespaces and taps: run it as root"
    );
    let mut needed = vec![
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("busybox", "busybox-static"),
        ("dnsmasq", "dnsmasq-base"),
    ];
    if real_init {
        needed.extend([("mmdebstrap", "mmdebstrap"), ("dracut", "dracut")]);
    }
    for (cmd, pkg) in needed {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {cmd}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        anyhow::ensure!(
            found,
            "`{cmd}` is missing: apt-get install {pkg} (scripts/deps.sh lists everything the demo uses)"
        );
    }
    let dir = std::env::temp_dir().join(format!("slipway-demo-{}", std::process::id()));
    for (path, text, exec) in FILES {
        let p = dir.join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
        if *exec {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    let me = std::env::current_exe().context("finding the slipway binary")?;
    let os = if real_init {
        "the real-init test OS (Ignition + systemd; minutes per VM under TCG)"
    } else {
        "the busybox test OS"
    };
    println!(
        "slipway demo: {vms} QEMU VM(s) install {os} through slipway (work directory {})",
        dir.display()
    );
    let status = Command::new("bash")
        .arg(Path::new("tests/e2e/install.sh"))
        .current_dir(&dir)
        .env("SLIPWAY", &me)
        .env("NVMS", vms.to_string())
        .env("STRANGER", "1")
        .env("KEEP", if keep { "1" } else { "0" })
        .env("TESTOS", if real_init { "real" } else { "busybox" })
        .env(
            "VM_TIMEOUT",
            if real_init {
                (900 + 300 * u64::from(vms)).to_string()
            } else {
                (180 + 40 * u64::from(vms)).to_string()
            },
        )
        .status()
        .context("running the demo harness")?;
    if !keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
