//! Redfish over HTTPS: a blocking client for one ComputerSystem of one BMC.
//!
//! [`connect`] reads the service root, authenticates (HTTP basic, or a Redfish
//! session), and picks the ComputerSystem; the returned [`Client`] implements
//! [`Bmc`]:
//!
//! * power state from the system's `PowerState` (`PoweringOn` counts as on,
//!   `PoweringOff` as off);
//! * power actions through `#ComputerSystem.Reset` (`On`, `ForceOff`,
//!   `PowerCycle`, `ForceRestart`, `GracefulShutdown`), checked against
//!   `ResetType@Redfish.AllowableValues` or the action's ActionInfo; a cycle on a
//!   system without `PowerCycle` is `ForceOff`, a wait for `Off`, then `On`;
//! * boot override through a PATCH of the system's `Boot` (with `If-Match` when
//!   the system has an ETag);
//! * [`BmcInfo`] from the system's Manager, completed from the system.
//!
//! The certificate is checked as [`Tls`] says: against the system's roots, a CA
//! file, or a pinned SHA-256 fingerprint of the BMC's own certificate (the usual
//! choice for self-signed BMC certificates). Every reply body is read up to
//! 4 MiB, and nothing from the network is trusted.
//!
//! ```no_run
//! use slipway_bmc::redfish::{self, Config, Tls};
//! use slipway_bmc::{Bmc, BootDevice, BootOverride, PowerAction, Secret};
//!
//! let fp = redfish::parse_fingerprint("sha256:AB:CD:...")?;
//! let cfg = Config::new("10.0.0.21", 443, "admin", Secret::new("pw"), Tls::Fingerprint(fp));
//! let mut bmc = redfish::connect(&cfg)?;
//! bmc.set_boot(BootOverride { device: BootDevice::Pxe, once: true, mode: None })?;
//! bmc.power(PowerAction::Cycle)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod boot;
mod discovery;
mod http;
mod json;
mod power;
mod tls;

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use ureq::http::Method;

use self::http::Http;
use self::json::str_prop;
use self::power::Step;
pub use self::tls::{certificate_fingerprint, format_fingerprint, parse_fingerprint};
use crate::{Bmc, BmcInfo, BootOverride, Error, PowerAction, PowerState, Result, Secret};

/// How the BMC's TLS certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    /// Against the operating system's trusted root certificates, with the host
    /// name (or IP address) checked as well. Rarely right for a BMC, whose
    /// certificate is usually self-signed.
    SystemRoots,
    /// Against the CA certificate(s) in this PEM (or DER) file, with the host
    /// name (or IP address) checked as well.
    CaFile(PathBuf),
    /// Only the one certificate whose DER encoding has this SHA-256 (see
    /// [`parse_fingerprint`]). Its issuer, names and dates are not checked — the
    /// pin names the exact certificate — but the TLS handshake must still be
    /// signed by its key.
    Fingerprint([u8; 32]),
    /// **Accepts any certificate: no protection against a man in the middle, who
    /// then gets the user name and password.** For a first look at a lab machine
    /// only; pin the fingerprint instead.
    Insecure,
}

/// How requests are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Auth {
    /// HTTP basic authentication on every request.
    #[default]
    Basic,
    /// A Redfish session: one POST of the credentials to
    /// `SessionService/Sessions`, then its `X-Auth-Token` on every request; the
    /// session is deleted when the [`Client`] is dropped.
    Session,
}

/// Where and how to reach a Redfish service.
#[derive(Debug, Clone)]
pub struct Config {
    /// Host name or IP address of the BMC.
    pub address: String,
    /// TCP port (443 for HTTPS).
    pub port: u16,
    /// User name.
    pub user: String,
    /// Password of `user`, sent with basic authentication or the session login.
    pub password: Secret,
    /// How the certificate is checked.
    pub tls: Tls,
    /// How requests are authenticated.
    pub auth: Auth,
    /// The ComputerSystem to drive, when the BMC has several: its `@odata.id`
    /// path, its id (the last path segment), or its `Id`, `Name` or `UUID`.
    pub system: Option<String>,
    /// The time allowed for each request, connecting included.
    pub timeout: Duration,
    /// How long a power cycle done as `ForceOff` then `On` waits for the system
    /// to report `Off`.
    pub power_off_wait: Duration,
    /// Plain HTTP instead of HTTPS: for emulators and tests only, since the
    /// password then crosses the network in clear. `tls` is ignored.
    pub scheme_http: bool,
}

impl Config {
    /// HTTPS to `address:port`, basic authentication, the only ComputerSystem,
    /// 30 s per request, 60 s for a power cycle's off wait.
    pub fn new(
        address: impl Into<String>,
        port: u16,
        user: impl Into<String>,
        password: Secret,
        tls: Tls,
    ) -> Self {
        Config {
            address: address.into(),
            port,
            user: user.into(),
            password,
            tls,
            auth: Auth::Basic,
            system: None,
            timeout: Duration::from_secs(30),
            power_off_wait: Duration::from_secs(60),
            scheme_http: false,
        }
    }
}

/// Connects: reads the service root, logs in (for [`Auth::Session`]) and finds
/// the ComputerSystem. Fails with [`Error::Auth`] for bad credentials,
/// [`Error::Tls`] for an untrusted certificate, [`Error::Io`] or
/// [`Error::Timeout`] for an unreachable BMC, and [`Error::Protocol`] when there
/// are several systems and none is chosen (the message lists them).
pub fn connect(cfg: &Config) -> Result<Client> {
    let mut http = Http::new(cfg)?;
    let session = cfg.auth == Auth::Session;
    let root = match http.get_root() {
        Ok(root) => Some(root),
        // A service that hides even its root: log in at the standard place first.
        Err(Error::Auth(_)) if session => None,
        Err(e) => return Err(e),
    };
    if session {
        if let Some(root) = &root {
            let path = discovery::sessions_link(root).ok_or_else(|| {
                Error::Unsupported(format!(
                    "{}: the Redfish service advertises no SessionService; use basic authentication",
                    http.addr()
                ))
            })?;
            http.set_sessions_path(path);
        }
        http.login()?;
    }
    let root = match root {
        Some(root) => root,
        None => http.get(http::ROOT)?.value,
    };
    let systems = discovery::root_link(&root, "Systems");
    let managers = discovery::root_link(&root, "Managers");
    let system = discovery::select_system(&mut http, &systems, cfg.system.as_deref())?;
    // Read it once, so that a broken system fails here rather than later.
    http.get(&system)?;
    Ok(Client {
        http,
        system,
        managers,
        power_off_wait: cfg.power_off_wait,
    })
}

/// A connected Redfish BMC, driving one ComputerSystem.
pub struct Client {
    http: Http,
    system: String,
    managers: String,
    power_off_wait: Duration,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("http", &self.http)
            .field("system", &self.system)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// The `@odata.id` of the ComputerSystem this client drives.
    pub fn system(&self) -> &str {
        &self.system
    }

    /// Ends the Redfish session now, if one was made (dropping the client does
    /// the same).
    pub fn logout(&mut self) {
        self.http.logout();
    }

    fn system_resource(&mut self) -> Result<Value> {
        let path = self.system.clone();
        Ok(self.http.get(&path)?.value)
    }

    /// The allowed reset types: inline, else from the action's ActionInfo
    /// (unknown if that cannot be read).
    fn allowed_resets(&mut self, action: &power::ResetAction) -> Option<Vec<String>> {
        if action.allowed.is_some() {
            return action.allowed.clone();
        }
        let info = action.action_info.as_ref()?;
        let value = self.http.get(info).ok()?.value;
        power::action_info_reset_types(&value)
    }

    fn wait_off(&mut self) -> Result<()> {
        let started = Instant::now();
        let mut polls = 0;
        loop {
            polls += 1;
            if power::is_off(&self.system_resource()?) {
                return Ok(());
            }
            if started.elapsed() >= self.power_off_wait {
                return Err(Error::Timeout {
                    addr: format!(
                        "{} (waiting for {} to be off)",
                        self.http.addr(),
                        self.system
                    ),
                    tries: polls,
                    elapsed: started.elapsed(),
                });
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Bmc for Client {
    fn power_state(&mut self) -> Result<PowerState> {
        power::power_state(&self.system_resource()?)
    }

    fn power(&mut self, action: PowerAction) -> Result<()> {
        let system = self.system_resource()?;
        let reset = power::reset_action(&self.system, &system);
        let allowed = self.allowed_resets(&reset);
        let state = power::power_state(&system).ok();
        for step in power::plan(action, allowed.as_deref(), state)? {
            match step {
                Step::Reset(kind) => {
                    let body = serde_json::json!({ "ResetType": kind });
                    self.http.call(Method::POST, &reset.target, &body, None)?;
                }
                Step::WaitOff => self.wait_off()?,
            }
        }
        Ok(())
    }

    fn set_boot(&mut self, boot: BootOverride) -> Result<()> {
        let body = boot::patch_body(boot);
        let path = self.system.clone();
        let mut tries = 0;
        loop {
            tries += 1;
            let etag = self.http.get(&path)?.etag;
            let what = format!("PATCH {path}");
            let reply = self
                .http
                .request(Method::PATCH, &path, Some(&body), etag.as_deref())?;
            if (200..300).contains(&reply.status) {
                return Ok(());
            }
            // 412: the system changed between the GET and the PATCH; once more.
            if reply.status != 412 || tries >= 2 {
                return Err(self.http.status_error(&what, &reply));
            }
        }
    }

    fn info(&mut self) -> Result<BmcInfo> {
        let system = self.system_resource()?;
        let manager_path = match discovery::managed_by(&system) {
            Some(p) => Some(p),
            None => {
                let managers = self.managers.clone();
                discovery::collection(&mut self.http, &managers)
                    .ok()
                    .and_then(|m| m.into_iter().next())
            }
        };
        // A Manager that cannot be read leaves the system's fields; a BMC that
        // cannot be reached or refuses the user is still an error.
        let manager = match manager_path.map(|p| self.http.get(&p)) {
            Some(Ok(m)) => Some(m.value),
            Some(Err(Error::Refused { .. } | Error::Protocol(_))) | None => None,
            Some(Err(e)) => return Err(e),
        };
        let field = |key: &str| {
            manager
                .as_ref()
                .and_then(|m| str_prop(m, key))
                .filter(|s| !s.trim().is_empty())
                .or_else(|| str_prop(&system, key).filter(|s| !s.trim().is_empty()))
                .map(|s| json::clean_text(s, 200))
                .unwrap_or_default()
        };
        Ok(BmcInfo {
            manufacturer: field("Manufacturer"),
            model: field("Model"),
            firmware: field("FirmwareVersion"),
        })
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.http.logout();
    }
}
