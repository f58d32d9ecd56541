//! IPMI v2.0 over LAN (RMCP+): a blocking client for one BMC.
//!
//! [`connect`] asks for the channel's authentication capabilities, opens an RMCP+
//! session with the [`CipherSuite`]'s algorithms, runs the RAKP 1-4 key exchange
//! (checking the BMC's RAKP 2 and RAKP 4 codes, so a wrong password or a
//! man-in-the-middle is caught before anything is sent), and sets the session's
//! privilege level. The returned [`Session`] implements [`Bmc`](crate::Bmc) over
//! authenticated (HMAC) and encrypted (AES-CBC-128) messages:
//!
//! * power state from Get Chassis Status;
//! * power actions through Chassis Control (off 00h, on 01h, cycle 02h, hard
//!   reset 03h, ACPI soft-off 05h);
//! * boot override through Set System Boot Options parameter 5 (valid bit,
//!   persistent or next boot only, legacy or EFI, PXE or disk), framed by "set in
//!   progress" and "boot info acknowledge" like `ipmitool chassis bootdev`;
//! * [`BmcInfo`](crate::BmcInfo) from Get Device ID.
//!
//! Each request is retransmitted (same IPMI sequence number, new session sequence
//! number) until [`Config::retries`] runs out, then fails with
//! [`Error::Timeout`](crate::Error::Timeout); if the BMC stopped answering a
//! session it may have dropped, the session is established again, once. Packets
//! for other sessions, with a bad AuthCode, a replayed session sequence number or
//! another request's sequence number are ignored. Nothing read from the network is
//! trusted: every decoder checks lengths and never panics.
//!
//! ```no_run
//! use slipway_bmc::ipmi::{self, CipherSuite, Config};
//! use slipway_bmc::{Bmc, BootDevice, BootOverride, PowerAction, Secret};
//!
//! let cfg = Config::new("10.0.0.21", ipmi::DEFAULT_PORT, "admin", Secret::new("pw"), CipherSuite::Seventeen);
//! let mut bmc = ipmi::connect(&cfg)?;
//! bmc.set_boot(BootOverride { device: BootDevice::Pxe, once: true, mode: None })?;
//! bmc.power(PowerAction::Cycle)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod commands;
mod crypto;
mod fuzzing;
mod session;
mod transport;
mod wire;

use std::fmt;
use std::time::Duration;

#[doc(hidden)]
pub use self::fuzzing::{fuzz_decoders, fuzz_seeds};
pub use self::session::Session;
use crate::{Result, Secret};

/// The standard RMCP port.
pub const DEFAULT_PORT: u16 = 623;

/// An RMCP+ cipher suite: the authentication, integrity and confidentiality
/// algorithms of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CipherSuite {
    /// Suite 3: RAKP-HMAC-SHA1, HMAC-SHA1-96, AES-CBC-128.
    Three,
    /// Suite 17: RAKP-HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128.
    Seventeen,
}

impl CipherSuite {
    /// The suite's number (3 or 17), as `ipmitool -C` takes it.
    pub fn id(self) -> u8 {
        match self {
            CipherSuite::Three => 3,
            CipherSuite::Seventeen => 17,
        }
    }

    /// The suite with that number, if this driver speaks it.
    pub fn from_id(id: u8) -> Option<Self> {
        match id {
            3 => Some(CipherSuite::Three),
            17 => Some(CipherSuite::Seventeen),
            _ => None,
        }
    }

    pub(crate) fn suite(self) -> crypto::Suite {
        match self {
            CipherSuite::Three => crypto::SUITE_3,
            CipherSuite::Seventeen => crypto::SUITE_17,
        }
    }
}

impl fmt::Display for CipherSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cipher suite {}", self.id())
    }
}

/// The privilege level a session asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Privilege {
    /// Callback: the lowest level, only enough to set up callback connections.
    Callback,
    /// User: read-only commands.
    User,
    /// Operator: enough for power and boot control.
    Operator,
    /// Administrator: every command, configuration included.
    Administrator,
}

impl Privilege {
    /// The privilege level's number in IPMI messages.
    pub(crate) fn code(self) -> u8 {
        match self {
            Privilege::Callback => 0x01,
            Privilege::User => 0x02,
            Privilege::Operator => 0x03,
            Privilege::Administrator => 0x04,
        }
    }
}

impl fmt::Display for Privilege {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Privilege::Callback => "callback",
            Privilege::User => "user",
            Privilege::Operator => "operator",
            Privilege::Administrator => "administrator",
        })
    }
}

/// How to reach and log in to one BMC.
#[derive(Debug, Clone)]
pub struct Config {
    /// Host name or IP address of the BMC.
    pub address: String,
    /// UDP port, usually [`DEFAULT_PORT`].
    pub port: u16,
    /// User name (at most 16 bytes).
    pub user: String,
    /// Password (at most 20 bytes).
    pub password: Secret,
    /// Cipher suite.
    pub cipher_suite: CipherSuite,
    /// Privilege level to ask for; default [`Privilege::Administrator`].
    pub privilege: Privilege,
    /// BMC key Kg, for BMCs configured with one (rare); default none, in which case
    /// the password is the key, as the spec says.
    pub bmc_key: Option<Secret>,
    /// How long to wait for each answer before retransmitting; default 1 s.
    pub timeout: Duration,
    /// Retransmissions after the first try; default 3 (4 tries in all).
    pub retries: u32,
}

impl Config {
    /// A configuration with the defaults: administrator privilege, no BMC key, 1 s
    /// per try, 3 retransmissions.
    pub fn new(
        address: impl Into<String>,
        port: u16,
        user: impl Into<String>,
        password: Secret,
        cipher_suite: CipherSuite,
    ) -> Self {
        Config {
            address: address.into(),
            port,
            user: user.into(),
            password,
            cipher_suite,
            privilege: Privilege::Administrator,
            bmc_key: None,
            timeout: Duration::from_secs(1),
            retries: 3,
        }
    }
}

/// Connects to the BMC and establishes an authenticated, encrypted session.
///
/// Errors: [`Error::Auth`](crate::Error::Auth) for an unknown user or a wrong
/// password (the message names the user, never the password);
/// [`Error::Unsupported`](crate::Error::Unsupported) when the BMC does not offer
/// RMCP+ or the cipher suite; [`Error::Timeout`](crate::Error::Timeout) when
/// nothing answers.
pub fn connect(cfg: &Config) -> Result<Session> {
    Session::connect(cfg)
}

#[cfg(test)]
mod fuzz_tests;
