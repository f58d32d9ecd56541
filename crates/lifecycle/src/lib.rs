//! Every machine's life, as a pure state machine:
//!
//! ```text
//! unknown ─DHCP─▶ discovered ─boot script─▶ booting ─install config─▶ installing
//!    ─"installed" report─▶ installed ─"ready" report─▶ ready
//! any step ─"failed" report or no progress in time─▶ failed
//! reinstall (operator) ─▶ unknown, next generation
//! ```
//!
//! The install script and the installed system report over HTTP to URLs carrying a
//! per-machine, per-generation token ([`token`]): nobody else can mark a machine
//! installed, and a re-armed install gets fresh tokens. A machine that is installed
//! or ready boots from its own disk ([`Machine::boots_installer`]): install once.
//!
//! Secrets go to a machine only while its install is ARMED ([`Machine::armed`]): for
//! the install window after its first PXE DHCP in an installable state, an operator's
//! re-arm or a BMC retry ([`Machine::arming_due`]), and only to a request that carries
//! the one-time install key slipway issued with its boot script ([`Machine::may_serve`]).
//! The key is kept only as a hash ([`key_hash`]) and is burned when the install
//! reports `installed` (or fails): a replay of it is told apart from a wrong key.
//!
//! No clock, no files: callers pass `now` (seconds since the Unix epoch) and persist
//! the [`Machine`] after each change.
//!
//! ```
//! use slipway_lifecycle::{Input, Machine, Report, State};
//! let mut m = Machine::new("52:54:00:99:00:01".parse().unwrap());
//! m.apply(10, Input::DhcpSeen { firmware: "uefi".into() }).unwrap();
//! m.apply(12, Input::BootScript { firmware: "efi x86_64".into() }).unwrap();
//! m.apply(13, Input::InstallConfigFetched).unwrap();
//! m.apply(90, Input::Reported(Report::Installed)).unwrap();
//! assert_eq!(m.state, State::Installed);
//! assert!(!m.boots_installer());
//! ```
#![deny(missing_docs)]

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use slipway_cluster::MacAddr;

/// Most events kept per machine (the oldest are dropped).
pub const MAX_EVENTS: usize = 200;

/// Where a machine is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Never seen (or re-armed for a new install).
    Unknown,
    /// Its DHCP request was seen.
    Discovered,
    /// It fetched its boot script.
    Booting,
    /// Its live system fetched the install config; the installer runs.
    Installing,
    /// The installer reported success; it boots from disk from now on.
    Installed,
    /// The installed system reported its first boot.
    Ready,
    /// The installer reported failure, or no progress came in time.
    Failed,
}

impl State {
    /// The name used in tables and the API.
    pub fn as_str(&self) -> &'static str {
        match self {
            State::Unknown => "unknown",
            State::Discovered => "discovered",
            State::Booting => "booting",
            State::Installing => "installing",
            State::Installed => "installed",
            State::Ready => "ready",
            State::Failed => "failed",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the install script or the installed system reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Report {
    /// The installer started writing the disk.
    Installing,
    /// The installer finished.
    Installed,
    /// The installer failed, and why.
    Failed(String),
    /// The installed system booted, with the hostname it has.
    Ready {
        /// Its hostname as it sees it.
        hostname: String,
    },
}

/// Something that happened to a machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Input {
    /// Its DHCP request was answered; `firmware` says what asked (bios, uefi, ipxe, os).
    DhcpSeen {
        /// The client kind.
        firmware: String,
    },
    /// It fetched its iPXE script (`firmware`: iPXE's platform and architecture).
    BootScript {
        /// Platform and architecture.
        firmware: String,
    },
    /// Its live system fetched the install config.
    InstallConfigFetched,
    /// A report arrived with a valid token.
    Reported(Report),
    /// No progress within the install timeout.
    TimedOut {
        /// The timeout, in seconds.
        after_secs: u64,
    },
    /// The operator re-armed the install.
    Reinstall,
    /// The install was armed: secrets may be served to it until `until` (seconds since
    /// the Unix epoch; `u64::MAX` when the install window is infinite).
    Armed {
        /// End of the install window.
        until: u64,
    },
    /// A one-time install key was issued with the boot script fetched from `peer`.
    KeyIssued {
        /// The address that fetched it.
        peer: String,
    },
    /// A secret-bearing file was served.
    SecretServed {
        /// Which file.
        what: String,
        /// To which address.
        peer: String,
    },
    /// A request for a secret-bearing file (or a boot script) was refused.
    Refused {
        /// What was asked for.
        what: String,
        /// By which address.
        peer: String,
        /// Why it was refused.
        why: String,
    },
    /// A step of an in-place OS update of the installed system (`downloading
    /// 4081.2.0`, `reboot granted`, `complete 4081.2.0`): history only, the machine's
    /// state does not change.
    OsUpdate(String),
    /// Stalled: slipway power-cycled it through its BMC into the installer once more
    /// (`action` says what was done). The install timeout starts again.
    Retried {
        /// What was done, e.g. "pxe once + power cycle".
        action: String,
    },
}

/// One entry of a machine's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// When, in seconds since the Unix epoch.
    pub at: u64,
    /// State before.
    pub from: State,
    /// State after.
    pub to: State,
    /// What happened.
    pub input: Input,
}

/// Why an input was not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// A report that makes no sense in this state (e.g. `ready` before `installed`).
    #[error("report {report:?} refused: the machine is {state}")]
    OutOfOrder {
        /// The state the machine is in.
        state: State,
        /// The report.
        report: Report,
    },
}

/// A machine's life so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    /// Its MAC.
    pub mac: MacAddr,
    /// Where it is.
    pub state: State,
    /// Since when (seconds since the Unix epoch; 0 = never changed).
    pub since: u64,
    /// Install generation: bumped by every re-arm, part of its report tokens.
    pub generation: u32,
    /// The firmware last seen (DHCP client kind, then iPXE platform).
    pub firmware: Option<String>,
    /// Why it failed, when it did.
    pub reason: Option<String>,
    /// History, oldest first, at most [`MAX_EVENTS`].
    pub events: Vec<Event>,
    /// BMC retries of the current install attempt (reset by a re-arm and on success).
    #[serde(default)]
    pub retries: u32,
    /// End of the install window when the install is armed (seconds since the Unix
    /// epoch); `None` when it is not.
    #[serde(default)]
    pub armed_until: Option<u64>,
    /// The SHA-256 ([`key_hash`]) of the install key issued last, while it is valid.
    #[serde(default)]
    pub install_key: Option<String>,
    /// The SHA-256 of the last install key burned (by `installed` or a failure): a
    /// request that still carries it is a replay.
    #[serde(default)]
    pub burned_key: Option<String>,
    /// The installer wrote the disk in this generation (`installed` was reported): the
    /// machine boots its disk even if it failed to come up afterwards.
    #[serde(default)]
    pub disk_installed: bool,
    /// What the cluster file rendered for it when its install config was last served
    /// in this generation: becomes [`Machine::installed_build`] when `installed` is
    /// reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served_build: Option<Build>,
    /// What its disk was installed with (`None`: never installed, or installed before
    /// slipway recorded it). Kept across a re-arm until the next `installed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed_build: Option<Build>,
}

/// What a machine is installed with, as slipway rendered it: the OS version and a
/// fingerprint of its install configuration (rendered with fixed example secrets, so
/// that rotating secrets do not change it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Build {
    /// The OS version (`os.version`).
    pub os_version: String,
    /// SHA-256 (hex) of its install configuration as rendered with example secrets.
    pub config_sha256: String,
}

impl Build {
    /// The build of `os_version` whose install configuration is `parts` (each
    /// artifact's text; hashed with its length, so that moving text from one to the
    /// next changes the fingerprint).
    pub fn of(os_version: &str, parts: &[String]) -> Build {
        use sha2::Digest;
        let mut h = Sha256::new();
        for p in parts {
            h.update((p.len() as u64).to_le_bytes());
            h.update(p.as_bytes());
        }
        Build {
            os_version: os_version.to_string(),
            config_sha256: h.finalize().iter().map(|b| format!("{b:02x}")).collect(),
        }
    }
}

/// Why a secret-bearing file is not served to a machine ([`Machine::may_serve`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The install is not armed (never armed, the window closed, or installed).
    NotArmed,
    /// The request carries no install key, or not the one issued.
    WrongKey,
    /// The request carries a key that was already burned: a replay.
    Replayed,
}

impl Refusal {
    /// A short explanation for logs, events and the refused requester.
    pub fn as_str(&self) -> &'static str {
        match self {
            Refusal::NotArmed => "the install is not armed",
            Refusal::WrongKey => "no valid install key",
            Refusal::Replayed => "install key already used (replay)",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The SHA-256 of an install key, hex: what is stored in place of the key.
pub fn key_hash(key: &str) -> String {
    use sha2::Digest;
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Compares two strings in time that depends only on their lengths.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && !a.is_empty()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Machine {
    /// A machine never seen.
    pub fn new(mac: MacAddr) -> Machine {
        Machine {
            mac,
            state: State::Unknown,
            since: 0,
            generation: 0,
            firmware: None,
            reason: None,
            events: Vec::new(),
            retries: 0,
            armed_until: None,
            install_key: None,
            burned_key: None,
            disk_installed: false,
            served_build: None,
            installed_build: None,
        }
    }

    /// Whether its next network boot runs the installer (otherwise: boot the disk).
    /// A machine whose installer wrote its disk boots the disk until it is re-armed,
    /// even if it then failed to come up.
    pub fn boots_installer(&self) -> bool {
        !(self.disk_installed || matches!(self.state, State::Installed | State::Ready))
    }

    /// Whether it is on its way to `ready` and a timeout applies: it got DHCP, fetched
    /// its boot script, installs, or installed and has not come up yet.
    pub fn in_progress(&self) -> bool {
        matches!(
            self.state,
            State::Discovered | State::Booting | State::Installing | State::Installed
        )
    }

    /// Whether its install is armed at `now`: secrets may be served to it.
    pub fn armed(&self, now: u64) -> bool {
        self.boots_installer() && self.armed_until.is_some_and(|until| now < until)
    }

    /// Whether `input`, just applied at `now`, arms the install: a PXE client's DHCP
    /// (not an OS's) of a machine never seen or only discovered, whose install is not
    /// armed yet; an operator's re-arm; a BMC retry of a machine that still installs.
    pub fn arming_due(&self, input: &Input, now: u64) -> bool {
        match input {
            Input::DhcpSeen { firmware } => {
                !matches!(firmware.as_str(), "os" | "unsupported") && self.may_arm(now)
            }
            Input::Reinstall => true,
            Input::Retried { .. } => self.boots_installer(),
            _ => false,
        }
    }

    /// Whether its first sign of a network boot may arm its install at `now`: it was
    /// never seen or only discovered, and its install is not armed yet.
    pub fn may_arm(&self, now: u64) -> bool {
        matches!(self.state, State::Unknown | State::Discovered) && !self.armed(now)
    }

    /// Whether a secret-bearing file may be served to this machine at `now` for a
    /// request carrying the install key `given` (`None`: it carries none). Keys are
    /// compared as hashes in constant time.
    pub fn may_serve(&self, now: u64, given: Option<&str>) -> Result<(), Refusal> {
        let given = given.map(key_hash);
        if let (Some(g), Some(burned)) = (&given, &self.burned_key)
            && same(g, burned)
        {
            return Err(Refusal::Replayed);
        }
        if !self.armed(now) {
            return Err(Refusal::NotArmed);
        }
        match (&given, &self.install_key) {
            (Some(g), Some(want)) if same(g, want) => Ok(()),
            _ => Err(Refusal::WrongKey),
        }
    }

    /// [`Machine::may_serve`] for the seeds' key-less layout (`/cloud-configs/<mac>.yml`,
    /// fetched by a shared script that carries no key): the install must be armed.
    pub fn may_serve_keyless(&self, now: u64) -> Result<(), Refusal> {
        if self.armed(now) {
            Ok(())
        } else {
            Err(Refusal::NotArmed)
        }
    }

    /// Whether `key` is the install key issued last and still valid (constant time).
    pub fn key_is_current(&self, key: &str) -> bool {
        self.install_key
            .as_deref()
            .is_some_and(|want| same(&key_hash(key), want))
    }

    /// Burns the current install key (a later request with it is a replay) and closes
    /// the install window.
    fn burn(&mut self) {
        if let Some(k) = self.install_key.take() {
            self.burned_key = Some(k);
        }
        self.armed_until = None;
    }

    /// The last thing that happened, for tables.
    pub fn last_event(&self) -> Option<&Event> {
        self.events.last()
    }

    /// Applies `input` at `now`; returns whether the state changed. Reports that make
    /// no sense in the current state are rejected and change nothing.
    pub fn apply(&mut self, now: u64, input: Input) -> Result<bool, Rejected> {
        use State::*;
        let to = match (&input, self.state) {
            (Input::Reinstall, _) => Unknown,
            (Input::DhcpSeen { firmware }, s) => {
                // An OS's own DHCP client says nothing about the machine's firmware.
                if firmware != "os" || self.firmware.is_none() {
                    self.firmware = Some(firmware.clone());
                }
                if s == Unknown { Discovered } else { s }
            }
            (Input::BootScript { firmware }, s) => {
                self.firmware = Some(firmware.clone());
                match s {
                    Unknown | Discovered | Failed => Booting,
                    s => s,
                }
            }
            (Input::InstallConfigFetched, s) => match s {
                Unknown | Discovered | Booting | Failed => Installing,
                s => s,
            },
            (Input::Reported(r), s) => match (r, s) {
                (Report::Installing, Unknown | Discovered | Booting | Installing | Failed) => {
                    Installing
                }
                (Report::Installed, Unknown | Discovered | Booting | Installing | Failed) => {
                    Installed
                }
                (Report::Failed(_), Unknown | Discovered | Booting | Installing) => Failed,
                (Report::Ready { .. }, Installed | Ready) => Ready,
                // Installed, then timed out before it came up: it did come up.
                (Report::Ready { .. }, Failed) if self.disk_installed => Ready,
                (r, s) => {
                    return Err(Rejected::OutOfOrder {
                        state: s,
                        report: r.clone(),
                    });
                }
            },
            (Input::TimedOut { .. }, s) if self.in_progress() => {
                let _ = s;
                Failed
            }
            (Input::TimedOut { .. }, s) => s,
            (Input::Retried { .. }, s) => s,
            (Input::Armed { .. }, s) => s,
            (Input::KeyIssued { .. }, s) => s,
            (Input::SecretServed { .. }, s) => s,
            (Input::Refused { .. }, s) => s,
            (Input::OsUpdate(_), s) => s,
        };
        match &input {
            Input::Reinstall => {
                self.generation += 1;
                self.reason = None;
                self.retries = 0;
                self.disk_installed = false;
                self.served_build = None;
                self.burn();
            }
            Input::Armed { until } => self.armed_until = Some(*until),
            Input::Retried { .. } if self.in_progress() => {
                self.retries += 1;
                self.since = now;
            }
            Input::Reported(Report::Installed) => {
                self.reason = None;
                self.retries = 0;
                self.disk_installed = true;
                // What was served in this generation is what the disk now holds (an
                // install that fetched nothing recordable leaves it unknown).
                self.installed_build = self.served_build.clone();
                self.burn();
            }
            Input::Reported(Report::Ready { .. }) => {
                self.retries = 0;
                self.reason = None;
            }
            Input::Reported(Report::Failed(why)) => {
                self.reason = Some(why.clone());
                self.burn();
            }
            Input::TimedOut { after_secs } if self.in_progress() => {
                self.reason = Some(match self.state {
                    Installed => format!("installed, but did not report ready in {after_secs} s"),
                    Discovered => format!("got DHCP, but fetched no boot script in {after_secs} s"),
                    s => format!("no progress in {after_secs} s ({s})"),
                });
                self.burn();
            }
            Input::Reported(Report::Installing) => self.reason = None,
            _ => {}
        }
        let changed = to != self.state;
        // Every input is history worth keeping, except repeated DHCP renewals and the
        // same thing again with nothing changed (a script fetched twice in a row).
        let noise = !changed
            && (matches!(input, Input::DhcpSeen { .. })
                || self.events.last().is_some_and(|e| e.input == input));
        if !noise {
            self.events.push(Event {
                at: now,
                from: self.state,
                to,
                input,
            });
            if self.events.len() > MAX_EVENTS {
                let extra = self.events.len() - MAX_EVENTS;
                self.events.drain(..extra);
            }
        }
        if changed {
            self.state = to;
            self.since = now;
        }
        Ok(changed)
    }
}

/// What a report token authorizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The install script's reports (installing, installed, failed).
    Install,
    /// The installed system's `ready` report.
    Ready,
}

/// The report token of `mac` for `purpose` in `generation`: HMAC-SHA256 under the
/// server's secret `key`, 32 hex digits.
pub fn token(key: &[u8], mac: MacAddr, generation: u32, purpose: Purpose) -> String {
    let p = match purpose {
        Purpose::Install => "install",
        Purpose::Ready => "ready",
    };
    let Ok(mut h) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) else {
        return String::new();
    };
    h.update(format!("slipway-report/{mac}/{generation}/{p}").as_bytes());
    h.finalize()
        .into_bytes()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `given` is the token for `mac`/`generation`/`purpose` (constant time).
pub fn check_token(
    key: &[u8],
    mac: MacAddr,
    generation: u32,
    purpose: Purpose,
    given: &str,
) -> bool {
    same(&token(key, mac, generation, purpose), given)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac() -> MacAddr {
        MacAddr([0x52, 0x54, 0, 0x99, 0, 1])
    }

    #[test]
    fn the_build_served_becomes_the_build_installed() {
        let build = |v: &str| Build {
            os_version: v.into(),
            config_sha256: format!("sha-{v}"),
        };
        let mut m = Machine::new(mac());
        m.served_build = Some(build("A"));
        assert_eq!(m.installed_build, None, "served is not installed yet");
        m.apply(5, Input::Reported(Report::Installed))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.installed_build, Some(build("A")));
        // A re-arm keeps what the disk holds until the next install reports.
        m.apply(6, Input::Reinstall)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.served_build, None);
        assert_eq!(m.installed_build, Some(build("A")));
        m.served_build = Some(build("B"));
        m.apply(7, Input::Reported(Report::Failed("disk".into())))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            m.installed_build,
            Some(build("A")),
            "a failure installs nothing"
        );
        m.apply(8, Input::Reinstall)
            .unwrap_or_else(|e| panic!("{e}"));
        m.served_build = Some(build("B"));
        m.apply(9, Input::Reported(Report::Installed))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.installed_build, Some(build("B")));
        // Records written before the field existed read as unknown.
        let mut old = serde_json::to_value(Machine::new(mac())).unwrap_or_default();
        if let Some(o) = old.as_object_mut() {
            o.remove("installed_build");
        }
        let back: Machine = serde_json::from_value(old).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.installed_build, None);
    }

    #[test]
    fn the_whole_life() {
        let mut m = Machine::new(mac());
        assert!(m.boots_installer());
        for (t, input, state) in [
            (
                1,
                Input::DhcpSeen {
                    firmware: "bios".into(),
                },
                State::Discovered,
            ),
            (
                2,
                Input::DhcpSeen {
                    firmware: "ipxe".into(),
                },
                State::Discovered,
            ),
            (
                3,
                Input::BootScript {
                    firmware: "pcbios i386".into(),
                },
                State::Booting,
            ),
            (4, Input::InstallConfigFetched, State::Installing),
            (5, Input::Reported(Report::Installing), State::Installing),
            (60, Input::Reported(Report::Installed), State::Installed),
            (
                70,
                Input::DhcpSeen {
                    firmware: "bios".into(),
                },
                State::Installed,
            ),
            (
                71,
                Input::BootScript {
                    firmware: "pcbios i386".into(),
                },
                State::Installed,
            ),
            (
                90,
                Input::Reported(Report::Ready {
                    hostname: "cp1".into(),
                }),
                State::Ready,
            ),
        ] {
            m.apply(t, input).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(m.state, state, "at {t}");
        }
        assert!(!m.boots_installer(), "installed machines boot from disk");
        assert_eq!(m.since, 90);
        assert_eq!(m.firmware.as_deref(), Some("pcbios i386"));
        // The DHCP renewals at 2 and 70 changed nothing and are not kept; the rest is.
        assert_eq!(m.events.len(), 7);
        assert_eq!(m.events[4].to, State::Installed);
    }

    #[test]
    fn out_of_order_reports_change_nothing() {
        let mut m = Machine::new(mac());
        let err = m.apply(
            1,
            Input::Reported(Report::Ready {
                hostname: "x".into(),
            }),
        );
        assert!(matches!(
            err,
            Err(Rejected::OutOfOrder {
                state: State::Unknown,
                ..
            })
        ));
        assert_eq!(m.state, State::Unknown);
        assert!(m.events.is_empty());
        m.apply(2, Input::Reported(Report::Installed))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            m.apply(3, Input::Reported(Report::Failed("late".into())))
                .is_err(),
            "an installed machine cannot fail its install"
        );
    }

    #[test]
    fn failures_timeouts_and_reinstall() {
        let mut m = Machine::new(mac());
        m.apply(
            1,
            Input::BootScript {
                firmware: "efi x86_64".into(),
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        m.apply(1000, Input::TimedOut { after_secs: 900 })
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (m.state, m.reason.as_deref()),
            (State::Failed, Some("no progress in 900 s (booting)"))
        );
        m.apply(
            1001,
            Input::BootScript {
                firmware: "efi x86_64".into(),
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.state, State::Booting, "a failed machine may try again");
        m.apply(
            1002,
            Input::Reported(Report::Failed("disk /dev/vda missing".into())),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.reason.as_deref(), Some("disk /dev/vda missing"));
        m.apply(1003, Input::Reported(Report::Installed))
            .unwrap_or_else(|e| panic!("{e}"));
        m.apply(
            1003,
            Input::Reported(Report::Ready {
                hostname: "cp1".into(),
            }),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        m.apply(1004, Input::TimedOut { after_secs: 900 })
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            m.state,
            State::Ready,
            "timeouts only apply to machines in progress"
        );
        let g = m.generation;
        m.apply(1005, Input::Reinstall)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((m.state, m.generation), (State::Unknown, g + 1));
        assert!(m.boots_installer());
    }

    #[test]
    fn tokens_are_per_machine_generation_and_purpose() {
        let key = b"0123456789abcdef0123456789abcdef";
        let t = token(key, mac(), 0, Purpose::Install);
        assert_eq!(t.len(), 32);
        assert!(check_token(key, mac(), 0, Purpose::Install, &t));
        assert!(
            !check_token(key, mac(), 1, Purpose::Install, &t),
            "a re-armed install has new tokens"
        );
        assert!(!check_token(key, mac(), 0, Purpose::Ready, &t));
        assert!(!check_token(
            key,
            MacAddr([2, 0, 0, 0, 0, 1]),
            0,
            Purpose::Install,
            &t
        ));
        assert!(!check_token(
            b"another key......................",
            mac(),
            0,
            Purpose::Install,
            &t
        ));
        assert!(!check_token(key, mac(), 0, Purpose::Install, ""));
    }

    #[test]
    fn history_is_bounded() {
        let mut m = Machine::new(mac());
        for t in 0..(MAX_EVENTS as u64 + 50) {
            // Alternating firmware: each fetch is news.
            let _ = m.apply(
                t,
                Input::BootScript {
                    firmware: format!("x{}", t % 2),
                },
            );
        }
        assert_eq!(m.events.len(), MAX_EVENTS);
        assert_eq!(m.events[0].at, 50);
    }

    #[test]
    fn the_same_thing_twice_in_a_row_is_recorded_once() {
        let mut m = Machine::new(mac());
        let boot = || Input::BootScript {
            firmware: "pcbios i386".into(),
        };
        for t in 0..5 {
            let _ = m.apply(t, boot());
        }
        assert_eq!(m.events.len(), 1);
        let _ = m.apply(5, Input::InstallConfigFetched);
        let _ = m.apply(6, boot());
        assert_eq!(m.events.len(), 3, "a fetch after something else counts");
    }

    #[test]
    fn serializes() {
        let mut m = Machine::new(mac());
        m.apply(1, Input::Reported(Report::Failed("x".into())))
            .unwrap_or_else(|e| panic!("{e}"));
        let json = serde_json::to_string(&m).unwrap_or_default();
        let back: Machine = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, m);
    }

    fn dhcp(firmware: &str) -> Input {
        Input::DhcpSeen {
            firmware: firmware.into(),
        }
    }

    /// Applies `input` and arms the install when it is due, as the tracker does.
    fn step(m: &mut Machine, now: u64, input: Input) {
        let arms = input.clone();
        m.apply(now, input).unwrap_or_else(|e| panic!("{e}"));
        if m.arming_due(&arms, now) {
            m.apply(now, Input::Armed { until: now + 600 })
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[test]
    fn secrets_only_inside_the_window_and_with_the_current_key() {
        let mut m = Machine::new(mac());
        assert_eq!(m.may_serve(0, Some("k1")), Err(Refusal::NotArmed));
        // An OS's DHCP does not arm; a PXE client's does.
        step(&mut m, 10, dhcp("os"));
        assert!(!m.armed(10));
        step(&mut m, 11, dhcp("bios"));
        assert!(m.armed(11));
        assert_eq!(m.armed_until, Some(611));
        // Armed but no key issued yet: nothing to present.
        assert_eq!(m.may_serve(12, Some("k1")), Err(Refusal::WrongKey));
        m.install_key = Some(key_hash("k1"));
        assert_eq!(m.may_serve(12, Some("k1")), Ok(()));
        assert_eq!(m.may_serve(12, Some("k2")), Err(Refusal::WrongKey));
        assert_eq!(m.may_serve(12, None), Err(Refusal::WrongKey));
        assert!(m.key_is_current("k1") && !m.key_is_current("k2"));
        // Renewals inside the window do not extend it.
        step(&mut m, 300, dhcp("ipxe"));
        assert_eq!(m.armed_until, Some(611));
        assert_eq!(m.may_serve(611, Some("k1")), Err(Refusal::NotArmed));
        // Installed: the key is burned, the window closed; a replay is told apart.
        step(&mut m, 100, Input::Reported(Report::Installed));
        assert_eq!(m.may_serve(101, Some("k1")), Err(Refusal::Replayed));
        assert_eq!(m.may_serve(101, Some("k3")), Err(Refusal::NotArmed));
        assert_eq!((m.armed_until, m.install_key.as_deref()), (None, None));
        // An installed machine's DHCP never arms it again; an operator re-arm does.
        step(&mut m, 200, dhcp("bios"));
        assert!(!m.armed(200));
        step(&mut m, 300, Input::Reinstall);
        assert!(m.armed(300) && m.boots_installer());
        assert_eq!(m.may_serve(301, Some("k1")), Err(Refusal::Replayed));
    }

    #[test]
    fn a_failure_burns_the_key_and_disarms() {
        let mut m = Machine::new(mac());
        step(&mut m, 1, dhcp("uefi"));
        m.install_key = Some(key_hash("k"));
        step(&mut m, 2, Input::Reported(Report::Failed("disk".into())));
        assert_eq!(m.may_serve(3, Some("k")), Err(Refusal::Replayed));
        assert!(!m.armed(3));
        // A failed machine's next DHCP does not arm it: an operator re-arms it.
        step(&mut m, 4, dhcp("uefi"));
        assert!(!m.armed(4));
        // A BMC retry of a machine still on its way does.
        let mut r = Machine::new(mac());
        step(&mut r, 1, dhcp("uefi"));
        r.armed_until = Some(2);
        step(
            &mut r,
            700,
            Input::Retried {
                action: "pxe".into(),
            },
        );
        assert!(r.armed(700));
    }

    #[test]
    fn every_state_before_ready_times_out_and_an_installed_machine_keeps_its_disk() {
        for (inputs, state, reason) in [
            (
                vec![dhcp("bios")],
                State::Discovered,
                "fetched no boot script",
            ),
            (
                vec![
                    dhcp("bios"),
                    Input::BootScript {
                        firmware: "x".into(),
                    },
                    Input::InstallConfigFetched,
                    Input::Reported(Report::Installed),
                ],
                State::Installed,
                "did not report ready",
            ),
        ] {
            let mut m = Machine::new(mac());
            for i in inputs {
                step(&mut m, 1, i);
            }
            assert_eq!(m.state, state);
            assert!(m.in_progress());
            step(&mut m, 1000, Input::TimedOut { after_secs: 900 });
            assert_eq!(m.state, State::Failed);
            assert!(
                m.reason.as_deref().is_some_and(|r| r.contains(reason)),
                "{:?}",
                m.reason
            );
        }
        // Installed, timed out, then it came up after all.
        let mut m = Machine::new(mac());
        step(&mut m, 1, Input::Reported(Report::Installed));
        step(&mut m, 1000, Input::TimedOut { after_secs: 900 });
        assert!(!m.boots_installer(), "its disk is installed: boot it");
        step(
            &mut m,
            1001,
            Input::Reported(Report::Ready {
                hostname: "cp1".into(),
            }),
        );
        assert_eq!((m.state, m.reason.as_deref()), (State::Ready, None));
        assert!(!m.in_progress(), "ready is the end");
    }
}
