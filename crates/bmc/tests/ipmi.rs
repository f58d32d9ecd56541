//! The IPMI driver against a real BMC: OpenIPMI's `ipmi_sim` (Debian package
//! `openipmi`), checked with `ipmitool` (package `ipmitool`) as the reference
//! client. Each test starts its own simulator on a free UDP port (see
//! `support/ipmi/sim.rs`).
//!
//! `ipmi_sim` implements cipher suites 0-3 only (no SHA-256), so cipher suite 17
//! is exercised against `support/ipmi/responder.rs` in `ipmi_responder.rs`, and
//! here only its refusal is checked.
#![allow(clippy::unwrap_used)]

#[path = "support/ipmi/sim.rs"]
mod sim;

use std::time::{Duration, Instant};

use sim::{PASSWORD, Sim, SimOptions, USER};
use slipway_bmc::ipmi::{self, CipherSuite, Config};
use slipway_bmc::{
    Bmc, BootDevice, BootMode, BootOverride, Error, PowerAction, PowerState, Secret,
};

fn expect_err<T>(r: slipway_bmc::Result<T>) -> Error {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

/// The number of active sessions ipmi_sim reports, ipmitool's own included.
fn active_sessions(sim: &Sim) -> u32 {
    let out = sim.ipmitool(3, &["session", "info", "active"]);
    out.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "active sessions").then(|| v.trim().parse().ok())?
        })
        .unwrap_or_else(|| panic!("no session count in: {out}"))
}

#[test]
fn suite3_info_power_and_boot_against_ipmi_sim() {
    let sim = Sim::start();
    let mut bmc = ipmi::connect(&sim.config(CipherSuite::Three)).unwrap();

    let info = bmc.info().unwrap();
    assert_eq!(info.manufacturer, "MontaVista (4753)");
    assert_eq!(info.firmware, "9.08");
    assert_eq!(info.model, "product 0x0f02, device 0x00 rev 3");
    let mc = sim.ipmitool(3, &["mc", "info"]);
    assert!(mc.contains("Firmware Revision         : 9.08"), "{mc}");

    assert_eq!(bmc.power_state().unwrap(), PowerState::Off);

    bmc.power(PowerAction::On).unwrap();
    assert_eq!(sim.chassis_file("power"), "1");
    assert_eq!(bmc.power_state().unwrap(), PowerState::On);
    assert!(
        sim.ipmitool(3, &["chassis", "power", "status"])
            .contains("Chassis Power is on")
    );

    bmc.power(PowerAction::Off).unwrap();
    assert_eq!(sim.chassis_file("power"), "0");
    assert_eq!(bmc.power_state().unwrap(), PowerState::Off);
    assert!(
        sim.ipmitool(3, &["chassis", "power", "status"])
            .contains("Chassis Power is off")
    );

    // Cycle: ipmi_sim powers off now and on again after 1 s.
    bmc.power(PowerAction::Cycle).unwrap();
    assert!(sim.wait_for(Duration::from_secs(5), |s| s.chassis_file("power") == "1"));
    let log = sim.chassis_log();
    let off = log
        .iter()
        .rposition(|l| l.ends_with("set power 0"))
        .unwrap();
    let on = log
        .iter()
        .rposition(|l| l.ends_with("set power 1"))
        .unwrap();
    assert!(off < on, "{log:?}");
    assert!(
        sim.ipmitool(3, &["chassis", "power", "status"])
            .contains("Chassis Power is on")
    );

    bmc.power(PowerAction::Reset).unwrap();
    assert!(sim.chassis_log().last().unwrap().ends_with("set reset 1"));

    bmc.power(PowerAction::Soft).unwrap();
    assert!(
        sim.chassis_log()
            .last()
            .unwrap()
            .ends_with("set shutdown 1")
    );
    assert_eq!(sim.chassis_file("power"), "0");
    assert_eq!(bmc.power_state().unwrap(), PowerState::Off);

    // ipmi_sim keeps only the device of the boot flags (its Get System Boot Options
    // reports the flags invalid, next boot, legacy): compare that with ipmitool.
    bmc.set_boot(BootOverride {
        device: BootDevice::Pxe,
        once: true,
        mode: Some(BootMode::Bios),
    })
    .unwrap();
    assert_eq!(sim.chassis_file("boot"), "pxe");
    let param = sim.ipmitool(3, &["chassis", "bootparam", "get", "5"]);
    assert!(
        param.contains("Boot Device Selector : Force PXE"),
        "{param}"
    );

    bmc.set_boot(BootOverride {
        device: BootDevice::Disk,
        once: false,
        mode: Some(BootMode::Uefi),
    })
    .unwrap();
    assert_eq!(sim.chassis_file("boot"), "default");
    let param = sim.ipmitool(3, &["chassis", "bootparam", "get", "5"]);
    assert!(
        param.contains("Boot Device Selector : Force Boot from default Hard-Drive"),
        "{param}"
    );

    // UEFI HTTP boot does not exist in IPMI.
    let err = expect_err(bmc.set_boot(BootOverride {
        device: BootDevice::UefiHttp,
        once: true,
        mode: Some(BootMode::Uefi),
    }));
    assert!(matches!(err, Error::Unsupported(_)), "{err:?}");
    assert_eq!(sim.chassis_file("boot"), "default");
}

#[test]
fn suite17_is_reported_unsupported_by_ipmi_sim() {
    let sim = Sim::start();
    let err = expect_err(ipmi::connect(&sim.config(CipherSuite::Seventeen)));
    let Error::Unsupported(msg) = &err else {
        panic!("expected Error::Unsupported, got {err:?}");
    };
    assert!(msg.contains("cipher suite 17"), "{msg}");
    // ipmitool agrees.
    let out = sim::ipmitool_output(sim.port, 17, USER, PASSWORD, &["mc", "info"]);
    assert!(!out.status.success());
}

#[test]
fn wrong_password_is_an_auth_error_naming_the_user_not_the_password() {
    let sim = Sim::start();
    let wrong = "Not-The-Passw0rd";
    let err = expect_err(ipmi::connect(&sim.config_for(
        USER,
        wrong,
        CipherSuite::Three,
    )));
    let Error::Auth(msg) = &err else {
        panic!("expected Error::Auth, got {err:?}");
    };
    assert!(msg.contains(USER), "{msg}");
    assert!(msg.contains("password"), "{msg}");
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains(wrong) && !shown.contains(PASSWORD),
        "{shown}"
    );
    // The half-open session was released: the right password still works.
    ipmi::connect(&sim.config(CipherSuite::Three)).unwrap();
}

#[test]
fn unknown_user_is_an_auth_error_naming_the_user() {
    let sim = Sim::start();
    let err = expect_err(ipmi::connect(&sim.config_for(
        "nobody-here",
        PASSWORD,
        CipherSuite::Three,
    )));
    let Error::Auth(msg) = &err else {
        panic!("expected Error::Auth, got {err:?}");
    };
    assert!(msg.contains("nobody-here"), "{msg}");
    assert!(msg.contains("unauthorized name"), "{msg}");
    assert!(!format!("{err} {err:?}").contains(PASSWORD));
}

#[test]
fn operator_session_controls_power() {
    let sim = Sim::start();
    let mut cfg = sim.config_for("operator", "operator-pw", CipherSuite::Three);
    cfg.privilege = ipmi::Privilege::Operator;
    let mut bmc = ipmi::connect(&cfg).unwrap();
    bmc.power(PowerAction::On).unwrap();
    assert_eq!(sim.chassis_file("power"), "1");
    assert_eq!(bmc.power_state().unwrap(), PowerState::On);
}

#[test]
fn nothing_listening_times_out_in_bounded_time() {
    // A port nobody listens on (ICMP port unreachable), and a socket that takes the
    // packets but never answers.
    let closed = sim::free_udp_port();
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let handles: Vec<_> = [closed, silent_port]
        .into_iter()
        .map(|port| {
            std::thread::spawn(move || {
                let cfg = Config::new(
                    "127.0.0.1",
                    port,
                    USER,
                    Secret::new(PASSWORD),
                    CipherSuite::Three,
                );
                let start = Instant::now();
                let err = expect_err(ipmi::connect(&cfg));
                (err, start.elapsed())
            })
        })
        .collect();
    for h in handles {
        let (err, elapsed) = h.join().unwrap();
        let Error::Timeout { tries, addr, .. } = &err else {
            panic!("expected Error::Timeout, got {err:?}");
        };
        assert_eq!(*tries, 4);
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        assert!(elapsed >= Duration::from_millis(3900), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
        assert!(!format!("{err}").contains(PASSWORD));
    }
    drop(silent);
}

/// Sessions ipmi_sim can hold at once ("slot count" in `session info`; it does
/// not enforce the per-user maximum of lan.conf).
const SIM_SESSION_SLOTS: usize = 63;

#[test]
fn drop_closes_the_session() {
    let sim = Sim::start();
    let bmc = ipmi::connect(&sim.config(CipherSuite::Three)).unwrap();
    // Ours and ipmitool's own.
    assert_eq!(active_sessions(&sim), 2);
    drop(bmc);
    assert_eq!(active_sessions(&sim), 1);

    // More sessions than the BMC can hold at once, one after the other.
    for _ in 0..SIM_SESSION_SLOTS + 10 {
        let mut bmc = ipmi::connect(&sim.config(CipherSuite::Three)).unwrap();
        bmc.power_state().unwrap();
    }
    // An explicit close reports the BMC's confirmation.
    let bmc = ipmi::connect(&sim.config(CipherSuite::Three)).unwrap();
    bmc.close().unwrap();
    assert_eq!(active_sessions(&sim), 1);
}

#[test]
fn session_limit_is_real_without_close() {
    // The control for drop_closes_the_session: sessions that are never closed use
    // up the BMC's slots, and the next one is refused.
    let sim = Sim::start();
    for _ in 0..SIM_SESSION_SLOTS {
        std::mem::forget(ipmi::connect(&sim.config(CipherSuite::Three)).unwrap());
    }
    let err = expect_err(ipmi::connect(&sim.config(CipherSuite::Three)));
    let Error::Refused { what, detail } = &err else {
        panic!("expected Error::Refused, got {err:?}");
    };
    assert!(what.contains(USER), "{what}");
    assert!(detail.contains("insufficient resources"), "{detail}");
}

#[test]
fn session_is_reestablished_after_the_bmc_restarts() {
    let mut sim = Sim::start();
    let mut cfg = sim.config(CipherSuite::Three);
    cfg.timeout = Duration::from_millis(300);
    cfg.retries = 2;
    let mut bmc = ipmi::connect(&cfg).unwrap();
    assert_eq!(bmc.power_state().unwrap(), PowerState::Off);
    sim.restart();
    // The new ipmi_sim drops packets of the old session; the driver times out,
    // opens a new session, and carries on.
    bmc.power(PowerAction::On).unwrap();
    assert_eq!(sim.chassis_file("power"), "1");
    assert_eq!(bmc.power_state().unwrap(), PowerState::On);
}

#[test]
fn chassis_script_start_command_follows_power() {
    // The reusable design: power on runs the start command, power off kills it.
    let sim = Sim::start_with(SimOptions {
        start_command: Some("exec sleep 120".to_string()),
        ..SimOptions::default()
    });
    let mut bmc = ipmi::connect(&sim.config(CipherSuite::Three)).unwrap();
    bmc.set_boot(BootOverride {
        device: BootDevice::Pxe,
        once: true,
        mode: None,
    })
    .unwrap();
    bmc.power(PowerAction::On).unwrap();
    let pid: u32 = sim.chassis_file("pid").parse().unwrap();
    let alive = |pid: u32| std::path::Path::new(&format!("/proc/{pid}")).exists();
    assert!(alive(pid));
    assert_eq!(bmc.power_state().unwrap(), PowerState::On);
    bmc.power(PowerAction::Off).unwrap();
    assert_eq!(bmc.power_state().unwrap(), PowerState::Off);
    assert!(sim.wait_for(Duration::from_secs(5), |_| !alive(pid)));
}
