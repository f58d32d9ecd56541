//! The Redfish driver against a real peer: sushy-tools' Redfish emulator with its
//! fake driver, over HTTPS with HTTP basic authentication. Each test starts its
//! own emulator (see `support/redfish/emulator.rs`); install it with
//! `crates/bmc/tests/support/redfish/install-sushy.sh`.
#![allow(clippy::unwrap_used)]

#[path = "support/redfish/emulator.rs"]
mod emulator;

use std::time::{Duration, Instant};

use emulator::{CertKind, Emulator, NODE_A, NODE_B, PASSWORD, USER};
use slipway_bmc::redfish::{self, Auth, Tls};
use slipway_bmc::{Bmc, BootDevice, BootMode, BootOverride, Error, PowerAction, PowerState};

/// How long the (1 s) fake power changes may take to show.
const POWER_CHANGE: Duration = Duration::from_secs(8);

fn fingerprint(der: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(der).into()
}

fn expect_err<T>(r: slipway_bmc::Result<T>) -> Error {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

#[test]
fn tls_fingerprint_pin_of_the_bmc_certificate_connects() {
    let emu = Emulator::start(&[NODE_A]);
    let fp = fingerprint(&emu.cert_der);
    // The pin as an operator would paste it, colons and all.
    let parsed = redfish::parse_fingerprint(&redfish::format_fingerprint(&fp)).unwrap();
    assert_eq!(parsed, fp);
    let mut bmc = redfish::connect(&emu.config(Tls::Fingerprint(parsed))).unwrap();
    assert_eq!(bmc.power_state().unwrap(), PowerState::Off);
}

#[test]
fn tls_wrong_fingerprint_is_refused_naming_the_mismatch() {
    let emu = Emulator::start(&[NODE_A]);
    let mut wrong = fingerprint(&emu.cert_der);
    wrong[0] ^= 0xff;
    let err = expect_err(redfish::connect(&emu.config(Tls::Fingerprint(wrong))));
    let Error::Tls(msg) = &err else {
        panic!("expected Error::Tls, got {err:?}");
    };
    assert!(msg.contains("fingerprint mismatch"), "{msg}");
    assert!(
        msg.contains(&redfish::format_fingerprint(&wrong)),
        "names the pin: {msg}"
    );
    assert!(
        msg.contains(&redfish::format_fingerprint(&fingerprint(&emu.cert_der))),
        "names what the BMC presented: {msg}"
    );
}

#[test]
fn tls_system_roots_refuse_the_test_ca_certificate() {
    let emu = Emulator::start(&[NODE_A]);
    let err = expect_err(redfish::connect(&emu.config(Tls::SystemRoots)));
    assert!(
        matches!(err, Error::Tls(_)),
        "expected Error::Tls, got {err:?}"
    );
}

#[test]
fn tls_ca_file_verifies_the_chain_and_another_ca_does_not() {
    let emu = Emulator::start(&[NODE_A]);
    let mut bmc = redfish::connect(&emu.trusted()).unwrap();
    assert_eq!(bmc.power_state().unwrap(), PowerState::Off);

    let other = std::env::temp_dir().join(format!("slipway-other-ca-{}.pem", std::process::id()));
    std::fs::write(&other, emulator::unrelated_ca_pem()).unwrap();
    let err = expect_err(redfish::connect(&emu.config(Tls::CaFile(other.clone()))));
    let _ = std::fs::remove_file(&other);
    let Error::Tls(msg) = &err else {
        panic!("expected Error::Tls, got {err:?}");
    };
    assert!(msg.contains("unknown issuer"), "{msg}");
}

#[test]
fn tls_insecure_accepts_the_certificate() {
    let emu = Emulator::start(&[NODE_A]);
    let mut bmc = redfish::connect(&emu.config(Tls::Insecure)).unwrap();
    assert_eq!(bmc.power_state().unwrap(), PowerState::Off);
}

#[test]
fn tls_self_signed_bmc_certificate_pinned_or_given_as_its_own_ca() {
    // The usual BMC: a self-signed certificate. System roots refuse it; its
    // fingerprint, or the certificate itself as the CA file, are accepted.
    let emu = Emulator::start_with(&[NODE_A], CertKind::SelfSigned);
    let err = expect_err(redfish::connect(&emu.config(Tls::SystemRoots)));
    assert!(
        matches!(err, Error::Tls(_)),
        "expected Error::Tls, got {err:?}"
    );

    let fp = fingerprint(&emu.cert_der);
    let mut bmc = redfish::connect(&emu.config(Tls::Fingerprint(fp))).unwrap();
    assert_eq!(bmc.power_state().unwrap(), PowerState::Off);

    let mut bmc = redfish::connect(&emu.trusted()).unwrap();
    assert_eq!(bmc.power_state().unwrap(), PowerState::Off);
}

#[test]
fn power_on_then_off_reach_the_emulator() {
    let emu = Emulator::start(&[NODE_A]);
    let mut bmc = redfish::connect(&emu.trusted()).unwrap();
    assert_eq!(bmc.power_state().unwrap(), PowerState::Off);

    bmc.power(PowerAction::On).unwrap();
    emu.wait_power(&NODE_A, "On", POWER_CHANGE);
    assert_eq!(bmc.power_state().unwrap(), PowerState::On);

    bmc.power(PowerAction::Off).unwrap();
    emu.wait_power(&NODE_A, "Off", POWER_CHANGE);
    assert_eq!(bmc.power_state().unwrap(), PowerState::Off);

    assert_eq!(emu.resets(&NODE_A), ["On", "ForceOff"]);
}

#[test]
fn power_cycle_without_powercycle_is_forceoff_wait_on() {
    // sushy's ResetType@Redfish.AllowableValues has no PowerCycle.
    let emu = Emulator::start(&[NODE_B]);
    let allowed = &emu.system(&NODE_B)["Actions"]["#ComputerSystem.Reset"]["ResetType@Redfish.AllowableValues"];
    assert!(
        !allowed
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == "PowerCycle")
    );

    let mut bmc = redfish::connect(&emu.trusted()).unwrap();
    assert_eq!(bmc.power_state().unwrap(), PowerState::On);
    let started = Instant::now();
    bmc.power(PowerAction::Cycle).unwrap();
    // The driver waited for the fake's delayed power-off before powering on.
    assert!(started.elapsed() >= Duration::from_millis(200));
    emu.wait_power(&NODE_B, "On", POWER_CHANGE);
    assert_eq!(emu.resets(&NODE_B), ["ForceOff", "On"]);
}

#[test]
fn power_reset_and_soft_off_reach_the_emulator() {
    let emu = Emulator::start(&[NODE_B]);
    let mut bmc = redfish::connect(&emu.trusted()).unwrap();

    bmc.power(PowerAction::Reset).unwrap();
    // The fake drops to Off at once and comes back On a moment later.
    emu.wait_power(&NODE_B, "On", POWER_CHANGE);

    bmc.power(PowerAction::Soft).unwrap();
    emu.wait_power(&NODE_B, "Off", POWER_CHANGE);
    assert_eq!(bmc.power_state().unwrap(), PowerState::Off);

    assert_eq!(emu.resets(&NODE_B), ["ForceRestart", "GracefulShutdown"]);
}

#[test]
fn boot_overrides_read_back_from_the_emulator() {
    let emu = Emulator::start(&[NODE_A]);
    let mut bmc = redfish::connect(&emu.trusted()).unwrap();
    let boot = |emu: &Emulator| emu.system(&NODE_A)["Boot"].clone();

    bmc.set_boot(BootOverride {
        device: BootDevice::Pxe,
        once: true,
        mode: Some(BootMode::Bios),
    })
    .unwrap();
    let b = boot(&emu);
    assert_eq!(b["BootSourceOverrideTarget"], "Pxe");
    assert_eq!(b["BootSourceOverrideMode"], "Legacy");
    // sushy's fake driver keeps every override Continuous, whatever was asked
    // (the body sent, with "Once", is checked in redfish_scripted.rs).

    bmc.set_boot(BootOverride {
        device: BootDevice::Disk,
        once: false,
        mode: None,
    })
    .unwrap();
    let b = boot(&emu);
    assert_eq!(b["BootSourceOverrideTarget"], "Hdd");
    assert_eq!(b["BootSourceOverrideEnabled"], "Continuous");
    assert_eq!(b["BootSourceOverrideMode"], "Legacy", "no mode: left alone");

    bmc.set_boot(BootOverride {
        device: BootDevice::UefiHttp,
        once: true,
        mode: Some(BootMode::Uefi),
    })
    .unwrap();
    let b = boot(&emu);
    assert_eq!(b["BootSourceOverrideMode"], "UEFI");
    // Without an HttpBootUri the emulator records UefiHttp as Pxe (sushy's own
    // stand-in); UefiHttp is now among the allowed targets, as in UEFI mode.
    assert_eq!(b["BootSourceOverrideTarget"], "Pxe");
    assert!(
        b["BootSourceOverrideTarget@Redfish.AllowableValues"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == "UefiHttp")
    );
}

#[test]
fn wrong_password_is_an_auth_error_naming_the_user_not_the_password() {
    let emu = Emulator::start(&[NODE_A]);
    let wrong = "wrong-Pa55word!";
    let mut cfg = emu.trusted();
    cfg.password = slipway_bmc::Secret::new(wrong);
    let err = expect_err(redfish::connect(&cfg));
    let shown = format!("{err} / {err:?} / {cfg:?}");
    assert!(
        matches!(err, Error::Auth(_)),
        "expected Error::Auth, got {err:?}"
    );
    assert!(shown.contains(USER), "names the user: {shown}");
    assert!(!shown.contains(wrong), "password leaked: {shown}");
    assert!(!shown.contains(PASSWORD), "password leaked: {shown}");
    // The right password works, and the client's Debug shows no secret either.
    let bmc = redfish::connect(&emu.trusted()).unwrap();
    assert!(!format!("{bmc:?}").contains(PASSWORD));
}

#[test]
fn several_systems_need_a_choice_and_the_error_lists_them() {
    let emu = Emulator::start(&[NODE_A, NODE_B]);
    let err = expect_err(redfish::connect(&emu.trusted()));
    let msg = err.to_string();
    assert!(matches!(err, Error::Protocol(_)), "{err:?}");
    assert!(msg.contains("2 ComputerSystems"), "{msg}");
    assert!(
        msg.contains(NODE_A.uuid) && msg.contains(NODE_B.uuid),
        "{msg}"
    );
    assert!(msg.contains("`system`"), "says how to choose: {msg}");

    // By Name, by id, by @odata.id path.
    for (choice, want) in [
        (NODE_B.name.to_string(), PowerState::On),
        (NODE_A.uuid.to_string(), PowerState::Off),
        (
            format!("/redfish/v1/Systems/{}", NODE_B.uuid),
            PowerState::On,
        ),
    ] {
        let mut cfg = emu.trusted();
        cfg.system = Some(choice.clone());
        let mut bmc = redfish::connect(&cfg).unwrap();
        assert_eq!(bmc.power_state().unwrap(), want, "system {choice}");
    }

    let mut cfg = emu.trusted();
    cfg.system = Some("node-z".into());
    let msg = expect_err(redfish::connect(&cfg)).to_string();
    assert!(msg.contains("node-z") && msg.contains(NODE_A.uuid), "{msg}");
}

#[test]
fn info_comes_from_the_manager_and_the_system() {
    let emu = Emulator::start(&[NODE_A]);
    let mut bmc = redfish::connect(&emu.trusted()).unwrap();
    let info = bmc.info().unwrap();
    let manager = emu.get(&format!("/redfish/v1/Managers/{}", NODE_A.uuid));
    assert_eq!(info.firmware, manager["FirmwareVersion"].as_str().unwrap());
    assert_eq!(info.model, manager["Model"].as_str().unwrap());
    // sushy's Manager has no Manufacturer; the system's is used.
    assert_eq!(info.manufacturer, "Sushy Emulator");
}

#[test]
fn session_auth_is_refused_clearly_when_there_is_no_session_service() {
    // sushy-tools has no SessionService: Auth::Session fails before sending the
    // password anywhere (sessions are tested against a scripted peer in
    // redfish_scripted.rs).
    let emu = Emulator::start(&[NODE_A]);
    let mut cfg = emu.trusted();
    cfg.auth = Auth::Session;
    let err = expect_err(redfish::connect(&cfg));
    assert!(
        matches!(&err, Error::Unsupported(m) if m.contains("SessionService")),
        "{err:?}"
    );
}
