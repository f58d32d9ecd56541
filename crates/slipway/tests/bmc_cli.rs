//! `slipway power` and `slipway boot` against real BMCs: OpenIPMI's `ipmi_sim` (IPMI
//! v2.0, cipher suite 3) and sushy-tools' Redfish emulator (HTTPS, pinned by CA), with
//! the passwords coming from the environment and from a file, as the cluster file says.
#![allow(clippy::unwrap_used)]

#[path = "../../bmc/tests/support/redfish/emulator.rs"]
#[allow(dead_code)]
mod emulator;
#[path = "../../bmc/tests/support/ipmi/sim.rs"]
mod sim;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

fn slipway(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_slipway"));
    c.arg("--offline").arg("--state-dir").arg(dir.join("state"));
    c.args(args).env_remove("SLIPWAY_BMC_PW");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap_or_else(|e| panic!("slipway: {e}"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A temporary directory removed on drop.
struct Tmp(PathBuf);

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tmp(name: &str) -> Tmp {
    let d = std::env::temp_dir().join(format!("slipway-bmc-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    Tmp(d)
}

/// A cluster file whose node `n1` has `bmc`, and a node `n2` without one.
fn cluster(dir: &Path, bmc: &str) -> String {
    let text = format!(
        "cluster: {{name: lab, domain: lab.test}}
network:
  interface: br0
  server: 10.99.0.1
  subnet: 10.99.0.0/24
os: {{version: 4081.2.0}}
kubernetes: {{version: v1.31.2, service_subnet: 10.100.0.0/16}}
access: {{ssh_authorized_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlaceholderPlaceholder t@x']}}
nodes:
  - {{mac: 52:54:00:99:00:01, hostname: n1, ip: 10.99.0.11, roles: [control-plane], bmc: {bmc}}}
  - {{mac: 52:54:00:99:00:02, hostname: n2, ip: 10.99.0.12}}
"
    );
    let path = dir.join("cluster.yaml");
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn power_and_boot_through_ipmi() {
    let sim = sim::Sim::start();
    let t = tmp("ipmi");
    let file = cluster(
        &t.0,
        &format!(
            "{{driver: ipmi, address: 127.0.0.1, port: {}, user: {}, password_env: SLIPWAY_BMC_PW, cipher_suite: 3}}",
            sim.port,
            sim::USER
        ),
    );
    let pw = [("SLIPWAY_BMC_PW", sim::PASSWORD)];
    let out = slipway(&t.0, &pw, &["power", &file, "status", "n1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("n1") && text(&out.stdout).contains("power off"),
        "{}",
        text(&out.stdout)
    );

    let out = slipway(&t.0, &pw, &["power", &file, "on", "--all"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(sim.wait_for(Duration::from_secs(5), |s| s.chassis_file("power") == "1"));
    assert!(
        sim.ipmitool(3, &["chassis", "power", "status"])
            .contains("on")
    );

    let out = slipway(&t.0, &pw, &["boot", &file, "pxe", "n1", "--once"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(sim.wait_for(Duration::from_secs(5), |s| s.chassis_file("boot") == "pxe"));
    let flags = sim.ipmitool(3, &["chassis", "bootparam", "get", "5"]);
    assert!(flags.contains("PXE"), "{flags}");

    // A wrong password: a clear error naming the user, never the password.
    let wrong = [("SLIPWAY_BMC_PW", "not-the-Password-42")];
    let out = slipway(&t.0, &wrong, &["power", &file, "status", "n1"]);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("FAILED") && all.contains(sim::USER), "{all}");
    assert!(!all.contains("not-the-Password-42"), "{all}");
    // No password at all: says which variable.
    let out = slipway(&t.0, &[], &["power", &file, "status", "n1"]);
    assert!(
        text(&out.stdout).contains("SLIPWAY_BMC_PW is not set"),
        "{}",
        text(&out.stdout)
    );
    // A node without a BMC, and an unknown node, are refused before anything is sent.
    let out = slipway(&t.0, &pw, &["power", &file, "off", "n2", "nosuch"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("n2 has no `bmc`") && err.contains("no node `nosuch`"),
        "{err}"
    );
    assert_eq!(sim.chassis_file("power"), "1", "nothing was powered off");
}

#[test]
fn power_and_boot_through_redfish() {
    let emu = emulator::Emulator::start(&[emulator::NODE_A]);
    let t = tmp("redfish");
    let pw_file = t.0.join("bmc-password");
    std::fs::write(&pw_file, format!("{}\n", emulator::PASSWORD)).unwrap();
    let file = cluster(
        &t.0,
        &format!(
            "{{driver: redfish, address: 127.0.0.1, port: {}, user: {}, password_file: {}, tls_ca: {}}}",
            emu.port,
            emulator::USER,
            pw_file.display(),
            emu.ca_pem.display()
        ),
    );
    let out = slipway(&t.0, &[], &["power", &file, "on", "n1"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    emu.wait_power(&emulator::NODE_A, "On", Duration::from_secs(20));
    let out = slipway(
        &t.0,
        &[],
        &["boot", &file, "pxe", "n1", "--once", "--mode", "uefi"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let boot = emu.system(&emulator::NODE_A)["Boot"].clone();
    assert_eq!(boot["BootSourceOverrideTarget"], "Pxe", "{boot}");
    assert_eq!(boot["BootSourceOverrideMode"], "UEFI", "{boot}");
    let out = slipway(&t.0, &[], &["power", &file, "status", "--all"]);
    assert!(
        text(&out.stdout).contains("power on"),
        "{}",
        text(&out.stdout)
    );
    // Without the CA the certificate is not trusted: a TLS error, not a silent accept.
    let file = cluster(
        &t.0,
        &format!(
            "{{driver: redfish, address: 127.0.0.1, port: {}, user: {}, password_file: {}}}",
            emu.port,
            emulator::USER,
            pw_file.display()
        ),
    );
    let out = slipway(&t.0, &[], &["power", &file, "status", "n1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("TLS"), "{}", text(&out.stdout));
}
