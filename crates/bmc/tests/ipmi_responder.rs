//! The IPMI driver with cipher suites 17 and 3 against `support/ipmi/responder.rs`,
//! a test BMC that speaks both suites (ipmi_sim has no SHA-256) and keeps the boot
//! flags exactly as written. `ipmitool -I lanplus -C 3|17` (Debian package
//! `ipmitool`) talks to the same responder first: its acceptance of the responder's
//! RAKP codes and AuthCodes is what makes the responder a reference, and it reads
//! back what the driver set. The responder also misbehaves on demand, for the
//! retransmission, decoy and re-establishment paths.
#![allow(clippy::unwrap_used)]

#[path = "support/ipmi/responder.rs"]
mod responder;
#[path = "support/ipmi/sim.rs"]
mod sim;

use std::time::{Duration, Instant};

use responder::{PASSWORD, Responder, USER};
use slipway_bmc::ipmi::{self, CipherSuite, Config};
use slipway_bmc::{
    Bmc, BootDevice, BootMode, BootOverride, Error, PowerAction, PowerState, Secret,
};

fn config(r: &Responder, suite: CipherSuite) -> Config {
    let mut cfg = Config::new("127.0.0.1", r.port, USER, Secret::new(PASSWORD), suite);
    cfg.timeout = Duration::from_millis(300);
    cfg
}

fn ipmitool(r: &Responder, suite: CipherSuite, args: &[&str]) -> String {
    sim::ipmitool(r.port, suite.id(), USER, PASSWORD, args)
}

fn expect_err<T>(r: slipway_bmc::Result<T>) -> Error {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

/// Connect, info, every power action and four boot overrides, each checked in the
/// responder's state and with ipmitool.
fn full_flow(suite: CipherSuite) {
    let r = Responder::start();
    // The reference client accepts the responder with this suite.
    let mc = ipmitool(&r, suite, &["mc", "info"]);
    assert!(mc.contains("Firmware Revision         : 2.45"), "{mc}");
    assert_eq!(r.state().closes, 1, "ipmitool closes its session");

    let mut bmc = ipmi::connect(&config(&r, suite)).unwrap();
    let info = bmc.info().unwrap();
    assert_eq!(info.manufacturer, "Dell (674)");
    assert_eq!(info.firmware, "2.45");
    assert_eq!(info.model, "product 0x1234, device 0x20 rev 1");

    assert_eq!(bmc.power_state().unwrap(), PowerState::Off);
    let status = |r: &Responder| ipmitool(r, suite, &["chassis", "power", "status"]);
    for (action, code, on) in [
        (PowerAction::On, 0x01, true),
        (PowerAction::Reset, 0x03, true),
        (PowerAction::Off, 0x00, false),
        (PowerAction::Cycle, 0x02, true),
        (PowerAction::Soft, 0x05, false),
    ] {
        bmc.power(action).unwrap();
        assert_eq!(r.state().chassis_controls.last(), Some(&code), "{action}");
        let want = if on { PowerState::On } else { PowerState::Off };
        assert_eq!(bmc.power_state().unwrap(), want, "{action}");
        assert!(
            status(&r).contains(&format!("Chassis Power is {want}")),
            "{action}"
        );
    }

    for (boot, bytes, lines) in [
        (
            BootOverride {
                device: BootDevice::Pxe,
                once: true,
                mode: None,
            },
            [0x80, 0x04, 0, 0, 0],
            [
                "Boot Flag Valid",
                "Options apply to only next boot",
                "BIOS PC Compatible (legacy) boot",
                "Boot Device Selector : Force PXE",
            ],
        ),
        (
            BootOverride {
                device: BootDevice::Pxe,
                once: true,
                mode: Some(BootMode::Uefi),
            },
            [0xA0, 0x04, 0, 0, 0],
            [
                "Boot Flag Valid",
                "Options apply to only next boot",
                "BIOS EFI boot",
                "Boot Device Selector : Force PXE",
            ],
        ),
        (
            BootOverride {
                device: BootDevice::Disk,
                once: false,
                mode: Some(BootMode::Bios),
            },
            [0xC0, 0x08, 0, 0, 0],
            [
                "Boot Flag Valid",
                "Options apply to all future boots",
                "BIOS PC Compatible (legacy) boot",
                "Boot Device Selector : Force Boot from default Hard-Drive",
            ],
        ),
        (
            BootOverride {
                device: BootDevice::Disk,
                once: false,
                mode: Some(BootMode::Uefi),
            },
            [0xE0, 0x08, 0, 0, 0],
            [
                "Boot Flag Valid",
                "Options apply to all future boots",
                "BIOS EFI boot",
                "Boot Device Selector : Force Boot from default Hard-Drive",
            ],
        ),
    ] {
        bmc.set_boot(boot).unwrap();
        {
            let st = r.state();
            assert_eq!(st.boot_flags, bytes, "{boot:?}");
            // Like `ipmitool chassis bootdev`: info acknowledge 01h/01h, and the
            // set-in-progress lock released.
            assert_eq!(st.boot_info_ack, [0x01, 0x01]);
            assert_eq!(st.set_in_progress, 0);
        }
        let param = ipmitool(&r, suite, &["chassis", "bootparam", "get", "5"]);
        for line in lines {
            assert!(param.contains(line), "{boot:?}: no {line:?} in {param}");
        }
        let read = bmc.boot_override().unwrap().unwrap();
        assert_eq!(read.device, boot.device);
        assert_eq!(read.once, boot.once);
        assert_eq!(read.mode, Some(boot.mode.unwrap_or(BootMode::Bios)));
    }
    // And what ipmitool sets, the driver reads.
    ipmitool(
        &r,
        suite,
        &["chassis", "bootdev", "pxe", "options=persistent,efiboot"],
    );
    assert_eq!(
        bmc.boot_override().unwrap(),
        Some(BootOverride {
            device: BootDevice::Pxe,
            once: false,
            mode: Some(BootMode::Uefi)
        })
    );

    let closes = r.state().closes;
    drop(bmc);
    assert_eq!(r.state().closes, closes + 1);
    assert_eq!(r.state().active_sessions(), 0);
}

#[test]
fn suite17_full_flow_checked_with_ipmitool() {
    full_flow(CipherSuite::Seventeen);
}

#[test]
fn suite3_full_flow_checked_with_ipmitool() {
    full_flow(CipherSuite::Three);
}

#[test]
fn suite17_wrong_password_and_unknown_user_are_auth_errors() {
    let r = Responder::start();
    let mut cfg = config(&r, CipherSuite::Seventeen);
    let wrong = "definitely-not-it";
    cfg.password = Secret::new(wrong);
    let err = expect_err(ipmi::connect(&cfg));
    let Error::Auth(msg) = &err else {
        panic!("expected Error::Auth, got {err:?}");
    };
    assert!(
        msg.contains(USER) && msg.contains("wrong password"),
        "{msg}"
    );
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains(wrong) && !shown.contains(PASSWORD),
        "{shown}"
    );

    let mut cfg = config(&r, CipherSuite::Seventeen);
    cfg.user = "mallory".to_string();
    let err = expect_err(ipmi::connect(&cfg));
    let Error::Auth(msg) = &err else {
        panic!("expected Error::Auth, got {err:?}");
    };
    assert!(
        msg.contains("mallory") && msg.contains("unauthorized name"),
        "{msg}"
    );
    assert!(!format!("{err} {err:?}").contains(PASSWORD));
    assert_eq!(r.state().handshakes, 0);
}

#[test]
fn decoys_are_discarded() {
    // Before every answer: garbage, another session's packet, a bad AuthCode, a
    // validly signed answer to another request, and a validly signed answer with a
    // replayed session sequence number; after it, the previous answer again. Every
    // decoy says "unspecified error": accepting any would fail the call.
    let r = Responder::start();
    let mut bmc = ipmi::connect(&config(&r, CipherSuite::Seventeen)).unwrap();
    r.state().noise = true;
    for _ in 0..5 {
        assert_eq!(bmc.power_state().unwrap(), PowerState::Off);
    }
    bmc.power(PowerAction::On).unwrap();
    assert_eq!(bmc.power_state().unwrap(), PowerState::On);
    bmc.info().unwrap();
    // No retransmission was needed.
    let st = r.state();
    let mut seqs: Vec<u8> = st.received.iter().map(|q| q.rq_seq).collect();
    let n = seqs.len();
    seqs.dedup();
    assert_eq!(seqs.len(), n, "a request was retransmitted");
}

#[test]
fn lost_requests_are_retransmitted_with_the_same_ipmi_sequence() {
    let r = Responder::start();
    let mut bmc = ipmi::connect(&config(&r, CipherSuite::Seventeen)).unwrap();
    let before = r.state().received.len();
    r.state().drop_next = 2;
    bmc.power(PowerAction::On).unwrap();
    let st = r.state();
    let tries = &st.received[before..];
    assert_eq!(tries.len(), 3, "{tries:?}");
    // Same request and IPMI sequence number, new session sequence numbers.
    assert!(
        tries
            .iter()
            .all(|q| q.rq_seq == tries[0].rq_seq && q.cmd == 0x02)
    );
    assert!(
        tries
            .windows(2)
            .all(|w| w[1].session_seq > w[0].session_seq)
    );
    assert_eq!(st.chassis_controls, vec![0x01]);
}

#[test]
fn a_forgotten_session_is_reestablished_once() {
    let r = Responder::start();
    let mut bmc = ipmi::connect(&config(&r, CipherSuite::Seventeen)).unwrap();
    assert_eq!(r.state().handshakes, 1);
    r.state().forget_sessions();
    assert_eq!(bmc.power_state().unwrap(), PowerState::Off);
    assert_eq!(r.state().handshakes, 2);
}

#[test]
fn a_silent_bmc_times_out_after_reestablishing_fails() {
    let r = Responder::start();
    let mut bmc = ipmi::connect(&config(&r, CipherSuite::Seventeen)).unwrap();
    let start = Instant::now();
    drop(r);
    let err = expect_err(bmc.power_state());
    let Error::Timeout { tries, .. } = &err else {
        panic!("expected Error::Timeout, got {err:?}");
    };
    assert_eq!(*tries, 4);
    // The request's 4 tries, then the new session's first step's 4 tries.
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    // Dropping the session now is bounded too.
    let start = Instant::now();
    drop(bmc);
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn completion_codes_become_refusals_with_their_meaning() {
    let r = Responder::start();
    let mut bmc = ipmi::connect(&config(&r, CipherSuite::Seventeen)).unwrap();
    r.state().refuse_chassis_control = Some(0xD4);
    let err = expect_err(bmc.power(PowerAction::Cycle));
    let Error::Refused { what, detail } = &err else {
        panic!("expected Error::Refused, got {err:?}");
    };
    assert!(what.contains("Chassis Control (power cycle)"), "{what}");
    assert_eq!(detail, "completion code 0xd4: insufficient privilege level");
    // The session is still usable.
    assert_eq!(bmc.power_state().unwrap(), PowerState::Off);
}

#[test]
fn uefi_http_boot_is_unsupported_without_asking_the_bmc() {
    let r = Responder::start();
    let mut bmc = ipmi::connect(&config(&r, CipherSuite::Seventeen)).unwrap();
    let before = r.state().received.len();
    let err = expect_err(bmc.set_boot(BootOverride {
        device: BootDevice::UefiHttp,
        once: true,
        mode: Some(BootMode::Uefi),
    }));
    assert!(matches!(err, Error::Unsupported(_)), "{err:?}");
    assert_eq!(r.state().received.len(), before);
}
