//! Power and boot control through baseboard management controllers: IPMI v2.0
//! (RMCP+, [`ipmi`]) and Redfish ([`redfish`]).
//!
//! Both drivers implement [`Bmc`]: one blocking trait, so the CLI can drive many
//! machines from a bounded pool of threads and `serve` can call it off its event loop.
//! Passwords are held in [`Secret`], whose `Debug` never shows them.
//!
//! Code that only powers and boots machines works on `dyn Bmc`, whichever protocol
//! the machine's BMC speaks (`no_run`: it needs BMCs at these addresses):
//!
//! ```no_run
//! use slipway_bmc::{ipmi, redfish, Bmc, BootDevice, BootOverride, PowerAction, Secret};
//!
//! /// PXE-boots a machine once, from power off or on.
//! fn reinstall(bmc: &mut dyn Bmc) -> slipway_bmc::Result<()> {
//!     let info = bmc.info()?;
//!     println!("{} {}, firmware {}", info.manufacturer, info.model, info.firmware);
//!     bmc.set_boot(BootOverride { device: BootDevice::Pxe, once: true, mode: None })?;
//!     bmc.power(PowerAction::Cycle)
//! }
//!
//! let ipmi = ipmi::Config::new(
//!     "10.0.0.21",
//!     ipmi::DEFAULT_PORT,
//!     "admin",
//!     Secret::new("pw"),
//!     ipmi::CipherSuite::Seventeen,
//! );
//! let fingerprint = redfish::parse_fingerprint(
//!     "sha256:9A:2F:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD",
//! )?;
//! let redfish = redfish::Config::new(
//!     "10.0.0.22",
//!     443,
//!     "admin",
//!     Secret::new("pw"),
//!     redfish::Tls::Fingerprint(fingerprint),
//! );
//! let mut machines: Vec<Box<dyn Bmc>> = vec![
//!     Box::new(ipmi::connect(&ipmi)?),
//!     Box::new(redfish::connect(&redfish)?),
//! ];
//! for bmc in &mut machines {
//!     reinstall(bmc.as_mut())?;
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

use std::fmt;
use std::time::Duration;

pub mod ipmi;
pub mod redfish;

/// Whether the machine is powered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerState {
    /// Powered on.
    On,
    /// Powered off (soft-off or mechanical off).
    Off,
}

impl fmt::Display for PowerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PowerState::On => "on",
            PowerState::Off => "off",
        })
    }
}

/// A power action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerAction {
    /// Power on.
    On,
    /// Hard power off, now.
    Off,
    /// Power off, wait, power on (IPMI chassis control 02h; Redfish PowerCycle).
    Cycle,
    /// Hard reset, power stays on (IPMI 03h; Redfish ForceRestart).
    Reset,
    /// Ask the OS to shut down (ACPI soft-off; Redfish GracefulShutdown).
    Soft,
}

impl fmt::Display for PowerAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PowerAction::On => "on",
            PowerAction::Off => "off",
            PowerAction::Cycle => "cycle",
            PowerAction::Reset => "reset",
            PowerAction::Soft => "soft",
        })
    }
}

/// Where the machine boots from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootDevice {
    /// Network boot (PXE).
    Pxe,
    /// The first disk.
    Disk,
    /// UEFI HTTP boot (Redfish only; IPMI has no such device).
    UefiHttp,
}

/// Which firmware interface the boot override asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootMode {
    /// Legacy BIOS.
    Bios,
    /// UEFI firmware.
    Uefi,
}

/// A boot device override.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootOverride {
    /// The device to boot from.
    pub device: BootDevice,
    /// Next boot only (`true`) or every boot (`false`).
    pub once: bool,
    /// The firmware interface, when the override should name one.
    pub mode: Option<BootMode>,
}

/// What the BMC says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BmcInfo {
    /// Manufacturer or vendor.
    pub manufacturer: String,
    /// Model, product or device id.
    pub model: String,
    /// Firmware version.
    pub firmware: String,
}

/// A password or other secret: `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// What went wrong talking to a BMC. Messages never contain the password.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The BMC refused the user name or password.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// No (valid) answer within the time allowed, after retransmits.
    #[error("no answer from {addr} after {tries} tries over {elapsed:?}")]
    Timeout {
        /// Address asked.
        addr: String,
        /// Requests sent.
        tries: u32,
        /// Time spent.
        elapsed: Duration,
    },
    /// The BMC answered with something this driver cannot accept.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The BMC answered with an error completion / status.
    #[error("the BMC refused {what}: {detail}")]
    Refused {
        /// What was asked of the BMC.
        what: String,
        /// The BMC's reason.
        detail: String,
    },
    /// The driver or the BMC cannot do this.
    #[error("not supported: {0}")]
    Unsupported(String),
    /// TLS failed (certificate not trusted, fingerprint mismatch, ...).
    #[error("TLS: {0}")]
    Tls(String),
    /// Socket or connection error.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A result of a BMC operation.
pub type Result<T> = std::result::Result<T, Error>;

/// One baseboard management controller, connected and authenticated.
///
/// Calls block; each retransmits and times out on its own. Drop closes the session.
pub trait Bmc: Send {
    /// The chassis power state.
    fn power_state(&mut self) -> Result<PowerState>;
    /// Performs a power action.
    fn power(&mut self, action: PowerAction) -> Result<()>;
    /// Sets the boot device override.
    fn set_boot(&mut self, boot: BootOverride) -> Result<()>;
    /// What the BMC says it is.
    fn info(&mut self) -> Result<BmcInfo>;
}
