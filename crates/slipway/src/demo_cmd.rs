//! `slipway demo`: the lab, end to end, on this machine. It runs the project's own
//! end-to-end harness (`tests/e2e/install.sh` and the Flatcar-shaped test OS, built
//! into this binary): QEMU VMs, BIOS and UEFI, PXE-boot through `slipway serve` in a
//! private network namespace, install the test OS to their disks, reboot into it and
//! report ready; then `slipway status` shows their lives. Needs root, QEMU, OVMF and
//! the packages `scripts/deps.sh` lists.

use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::Context;

/// The harness files, at their paths relative to the repository root.
const FILES: &[(&str, &str, bool)] = &[
    (
        "tests/e2e/install.sh",
        include_str!("../../../tests/e2e/install.sh"),
        true,
    ),
    (
        "tests/e2e/lib.sh",
        include_str!("../../../tests/e2e/lib.sh"),
        false,
    ),
    (
        "tests/e2e/testos/build.sh",
        include_str!("../../../tests/e2e/testos/build.sh"),
        true,
    ),
    (
        "tests/e2e/testos/lib.sh",
        include_str!("../../../tests/e2e/testos/lib.sh"),
        false,
    ),
    (
        "tests/e2e/testos/live-init",
        include_str!("../../../tests/e2e/testos/live-init"),
        true,
    ),
    (
        "tests/e2e/testos/installed-init",
        include_str!("../../../tests/e2e/testos/installed-init"),
        true,
    ),
    (
        "tests/e2e/testos/flatcar-install",
        include_str!("../../../tests/e2e/testos/flatcar-install"),
        true,
    ),
    (
        "tests/e2e/testos/systemctl",
        include_str!("../../../tests/e2e/testos/systemctl"),
        true,
    ),
    (
        "tests/e2e/testos/udhcpc.script",
        include_str!("../../../tests/e2e/testos/udhcpc.script"),
        true,
    ),
];

/// Runs the demo with `vms` machines; `keep` leaves the work directory for a look.
pub fn demo(vms: u32, keep: bool) -> anyhow::Result<ExitCode> {
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
    for (cmd, pkg) in [
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("busybox", "busybox-static"),
        ("dnsmasq", "dnsmasq-base"),
    ] {
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
    println!(
        "slipway demo: {vms} QEMU VM(s) install through slipway (work directory {})",
        dir.display()
    );
    let status = Command::new("bash")
        .arg(Path::new("tests/e2e/install.sh"))
        .current_dir(&dir)
        .env("SLIPWAY", &me)
        .env("NVMS", vms.to_string())
        .env("STRANGER", "1")
        .env("KEEP", if keep { "1" } else { "0" })
        .env("VM_TIMEOUT", (180 + 40 * u64::from(vms)).to_string())
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
