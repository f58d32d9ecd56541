//! The Omaha v3 protocol as Flatcar's `update_engine` speaks it: parse a request, build a
//! response, and read what a request's events say about a node's progress.
//!
//! Shapes were checked against `flatcar/update_engine`
//! (`src/update_engine/omaha_request_action.cc`: `GetRequestXml`/`GetAppXml`/`GetAppBody`
//! write the request; `ParseResponse`, `ParseStatus`, `ParseUrls`, `ParsePackage` and
//! `ParseParams` read the response), against `coreos/go-omaha` (`omaha/protocol.go`,
//! `omaha/codes.go`, `omaha/package.go`) and against Nebraska
//! (`flatcar/nebraska` `backend/pkg/omaha/omaha.go`, `backend/pkg/api/events.go`).

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event as XmlEvent};
use serde::{Deserialize, Serialize};

/// The Omaha application id of Flatcar Container Linux (`update_engine`'s default `appid`).
pub const FLATCAR_APP_ID: &str = "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}";

/// The largest request body [`parse_request`] accepts. `update_engine` sends well under
/// 2 KiB.
pub const MAX_BODY: usize = 64 * 1024;
/// The most `<app>` elements a request may hold (`update_engine` sends one).
pub const MAX_APPS: usize = 8;
/// The most `<event>` elements one `<app>` may hold (`update_engine` sends at most one).
pub const MAX_EVENTS: usize = 16;
/// The deepest element nesting a request may have (a real one is three deep).
pub const MAX_DEPTH: usize = 16;
/// The longest attribute value kept; a longer one makes the request malformed.
pub const MAX_ATTR: usize = 1024;

/// Why a request body was refused. Every malformed input ends here; parsing never panics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The body is larger than [`MAX_BODY`].
    #[error("request body of {0} bytes is over the {MAX_BODY}-byte cap")]
    TooLarge(usize),
    /// The body is not UTF-8.
    #[error("request body is not UTF-8")]
    NotUtf8,
    /// The XML itself is broken (unbalanced tags, bad attribute syntax, unknown entity...).
    #[error("malformed XML: {0}")]
    Xml(String),
    /// A document type declaration: refused, so no entity can be declared.
    #[error("a DOCTYPE is not accepted")]
    Doctype,
    /// The root element is not `<request>`, or there is none, or more than one.
    #[error("the document root is not a single <request> element")]
    NotARequest,
    /// `protocol` is not `3.0`.
    #[error("unsupported Omaha protocol {0:?} (only 3.0)")]
    Protocol(String),
    /// A required attribute is absent.
    #[error("<{element}> lacks the {attribute:?} attribute")]
    Missing {
        /// The element.
        element: &'static str,
        /// The attribute it lacks.
        attribute: &'static str,
    },
    /// An attribute that must be a number is not one.
    #[error("<{element}> attribute {attribute:?} is not a number: {value:?}")]
    NotANumber {
        /// The element.
        element: &'static str,
        /// The attribute.
        attribute: &'static str,
        /// Its value.
        value: String,
    },
    /// More `<app>`s, `<event>`s or nesting than the caps allow, or an over-long attribute.
    #[error("request over a limit: {0}")]
    Limit(&'static str),
}

/// A parsed Omaha request: `<request protocol="3.0" ...><os/><app>...</app></request>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The `protocol` attribute (always `3.0` once parsed).
    pub protocol: String,
    /// The `updaterversion` attribute (falling back to `version`), e.g.
    /// `update_engine-0.4.10`.
    pub updater_version: Option<String>,
    /// `installsource`: `ondemandupdate` (interactive) or `scheduler`.
    pub install_source: Option<String>,
    /// The `<os>` element, if present.
    pub os: Option<Os>,
    /// The `<app>` elements, in order.
    pub apps: Vec<App>,
}

/// The `<os>` element.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Os {
    /// `platform`, e.g. `CoreOS`.
    pub platform: Option<String>,
    /// `version`, e.g. a kernel version.
    pub version: Option<String>,
    /// `sp` (service pack): `update_engine` puts `<version>_<arch>` here.
    pub sp: Option<String>,
    /// `arch`, when a client sends it.
    pub arch: Option<String>,
}

/// One `<app>` element: who is asking, and what it asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    /// `appid`, e.g. [`FLATCAR_APP_ID`].
    pub appid: String,
    /// `version`: the OS version the node runs now.
    pub version: Option<String>,
    /// `track`: the channel or Nebraska group (`stable`, `beta`, `alpha`, or a group id).
    pub track: Option<String>,
    /// `machineid`: `/etc/machine-id`.
    pub machine_id: Option<String>,
    /// `machinealias`, a name the operator gave the machine.
    pub machine_alias: Option<String>,
    /// `bootid`: changes on every boot.
    pub boot_id: Option<String>,
    /// `oem`, e.g. `qemu`, `ami`, `metal` is usually empty.
    pub oem: Option<String>,
    /// `oemversion`.
    pub oem_version: Option<String>,
    /// `alephversion`: the version first installed on the machine.
    pub aleph_version: Option<String>,
    /// `board`, e.g. `amd64-usr`.
    pub board: Option<String>,
    /// `delta_okay="true"`.
    pub delta_okay: bool,
    /// Whether an `<updatecheck>` was present: the node asks for an update.
    pub updatecheck: bool,
    /// Whether a `<ping>` was present.
    pub ping: bool,
    /// The `<event>` elements, in order.
    pub events: Vec<Event>,
}

/// An event's `eventtype`. Values other than the named ones are kept as they came.
/// Numbers from `update_engine`'s `OmahaEvent::Type` (`omaha_request_action.h`), which
/// match go-omaha's `omaha/codes.go` and Nebraska's `backend/pkg/api/events.go`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventType(pub u32);

impl EventType {
    /// 0: unknown.
    pub const UNKNOWN: Self = Self(0);
    /// 1: download complete (Omaha; not sent by `update_engine`).
    pub const DOWNLOAD_COMPLETE: Self = Self(1);
    /// 2: install complete (Omaha; not sent by `update_engine`).
    pub const INSTALL_COMPLETE: Self = Self(2);
    /// 3: update complete. `update_engine` sends it with result 1 once the payload is
    /// installed (waiting for a reboot), and with result 2 (plus `previousversion`) on the
    /// first check after the reboot; result 0 with an `errorcode` reports a failure or a
    /// rollback (`omaha_request_action.cc` `GetAppBody`, `update_attempter.cc`).
    pub const UPDATE_COMPLETE: Self = Self(3);
    /// 13: update download started (`OmahaEvent::kTypeUpdateDownloadStarted`).
    pub const UPDATE_DOWNLOAD_STARTED: Self = Self(13);
    /// 14: update download finished (`OmahaEvent::kTypeUpdateDownloadFinished`).
    pub const UPDATE_DOWNLOAD_FINISHED: Self = Self(14);
    /// 800: update installed, Nebraska's extension (`backend/pkg/api` `EventUpdateInstalled`);
    /// accepted as "installed", never sent by the `update_engine` read for this crate.
    pub const UPDATE_INSTALLED: Self = Self(800);
}

/// An event's `eventresult` (`OmahaEvent::Result` in `omaha_request_action.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventResult(pub u32);

impl EventResult {
    /// 0: error (`kResultError`); `errorcode` says which.
    pub const ERROR: Self = Self(0);
    /// 1: success (`kResultSuccess`).
    pub const SUCCESS: Self = Self(1);
    /// 2: success, rebooted (`kResultSuccessReboot`).
    pub const SUCCESS_REBOOT: Self = Self(2);
    /// 9: update deferred by policy (`kResultUpdateDeferred`).
    pub const UPDATE_DEFERRED: Self = Self(9);
}

/// One `<event>` of an `<app>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// `eventtype`.
    pub event_type: EventType,
    /// `eventresult`.
    pub result: EventResult,
    /// `errorcode` (an `update_engine` `ActionExitCode`, printed with `%d`).
    pub error_code: Option<i64>,
    /// `previousversion`: on an update-complete/reboot event, the version before the update
    /// (empty or `0.0.0.0` when no update happened).
    pub previous_version: Option<String>,
}

/// What an event says about the node's update, in the order an update goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Progress {
    /// Asked for an update and reported nothing else (see [`App::progress`]).
    Checking,
    /// Started downloading the payload (event 13, result 1).
    Downloading,
    /// Downloaded the payload (event 14, result 1).
    Downloaded,
    /// Installed to the other partition, waiting for a reboot (event 3 result 1, or
    /// Nebraska's 800 result 1).
    Installed,
    /// Booted after an update from `previous_version` (event 3 result 2 with a real
    /// previous version). Whether it booted the *offered* version is told by the app's
    /// `version`, not by this event.
    Rebooted {
        /// The version before the update.
        previous_version: String,
    },
    /// A step failed (result 0), or `update_engine` detected a rollback.
    Error {
        /// The event type that failed.
        event_type: EventType,
        /// `errorcode`, if sent.
        code: Option<i64>,
    },
}

impl Event {
    /// What this event says about progress, or `None` when it says nothing (the
    /// `3`/`2` event with an empty or `0.0.0.0` previous version that `update_engine`
    /// attaches to every ordinary check, a deferral, or a type this crate does not know).
    pub fn progress(&self) -> Option<Progress> {
        if self.result == EventResult::ERROR {
            return Some(Progress::Error {
                event_type: self.event_type,
                code: self.error_code,
            });
        }
        match (self.event_type, self.result) {
            (EventType::UPDATE_DOWNLOAD_STARTED, EventResult::SUCCESS) => {
                Some(Progress::Downloading)
            }
            (EventType::UPDATE_DOWNLOAD_FINISHED, EventResult::SUCCESS) => {
                Some(Progress::Downloaded)
            }
            (EventType::UPDATE_COMPLETE | EventType::UPDATE_INSTALLED, EventResult::SUCCESS) => {
                Some(Progress::Installed)
            }
            (EventType::UPDATE_COMPLETE, EventResult::SUCCESS_REBOOT) => {
                match self.previous_version.as_deref() {
                    None | Some("") | Some("0.0.0.0") => None,
                    Some(v) => Some(Progress::Rebooted {
                        previous_version: v.to_owned(),
                    }),
                }
            }
            _ => None,
        }
    }
}

impl App {
    /// What this app's request says about its progress as a whole: an error if any event
    /// reports one, else the last event that says something, else
    /// [`Progress::Checking`] if it asks for an update, else `None` (a ping alone).
    pub fn progress(&self) -> Option<Progress> {
        let said: Vec<Progress> = self.events.iter().filter_map(Event::progress).collect();
        if let Some(error) = said.iter().find(|p| matches!(p, Progress::Error { .. })) {
            return Some(error.clone());
        }
        said.last()
            .cloned()
            .or_else(|| self.updatecheck.then_some(Progress::Checking))
    }
}

/// Parses a request body, refusing anything over the caps ([`MAX_BODY`], [`MAX_APPS`],
/// [`MAX_EVENTS`], [`MAX_DEPTH`], [`MAX_ATTR`]), any DOCTYPE, and any protocol but `3.0`.
/// Unknown elements and attributes are skipped. Never panics.
pub fn parse_request(body: &[u8]) -> Result<Request, ParseError> {
    if body.len() > MAX_BODY {
        return Err(ParseError::TooLarge(body.len()));
    }
    let text = std::str::from_utf8(body).map_err(|_| ParseError::NotUtf8)?;
    let mut reader = quick_xml::Reader::from_str(text);
    let xml_err = |e: quick_xml::Error| ParseError::Xml(e.to_string());

    let mut request: Option<Request> = None;
    let mut root_done = false;
    // The names of the open elements, outermost first.
    let mut stack: Vec<String> = Vec::new();
    loop {
        let event = reader.read_event().map_err(xml_err)?;
        let (start, empty) = match &event {
            XmlEvent::Start(s) => (s, false),
            XmlEvent::Empty(s) => (s, true),
            XmlEvent::End(_) => {
                stack.pop();
                if stack.is_empty() {
                    root_done = true;
                }
                continue;
            }
            XmlEvent::DocType(_) => return Err(ParseError::Doctype),
            XmlEvent::Eof => break,
            _ => continue,
        };
        let name = start.local_name().as_ref().to_owned();
        match stack.len() {
            0 => {
                if root_done || request.is_some() || name != "request" {
                    return Err(ParseError::NotARequest);
                }
                request = Some(parse_root(start)?);
                if empty {
                    root_done = true;
                }
            }
            1 => {
                let Some(req) = request.as_mut() else {
                    return Err(ParseError::NotARequest);
                };
                match name.as_str() {
                    "os" => req.os = Some(parse_os(start)?),
                    "app" => {
                        if req.apps.len() >= MAX_APPS {
                            return Err(ParseError::Limit("too many <app> elements"));
                        }
                        req.apps.push(parse_app(start)?);
                    }
                    _ => {}
                }
            }
            2 if stack.get(1).is_some_and(|n| n == "app") => {
                let Some(app) = request.as_mut().and_then(|r| r.apps.last_mut()) else {
                    return Err(ParseError::NotARequest);
                };
                match name.as_str() {
                    "ping" => app.ping = true,
                    "updatecheck" => app.updatecheck = true,
                    "event" => {
                        if app.events.len() >= MAX_EVENTS {
                            return Err(ParseError::Limit("too many <event> elements"));
                        }
                        app.events.push(parse_event(start)?);
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        if !empty {
            if stack.len() >= MAX_DEPTH {
                return Err(ParseError::Limit("elements nested too deep"));
            }
            stack.push(name);
        }
    }
    if !stack.is_empty() {
        return Err(ParseError::Xml("unclosed element at end of input".into()));
    }
    let request = request.ok_or(ParseError::NotARequest)?;
    if request.protocol != "3.0" {
        return Err(ParseError::Protocol(request.protocol));
    }
    Ok(request)
}

/// The attributes of one element, unescaped, over-long values refused.
fn attributes(start: &BytesStart<'_>) -> Result<Vec<(String, String)>, ParseError> {
    let mut out = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| ParseError::Xml(e.to_string()))?;
        if attr.value.len() > MAX_ATTR {
            return Err(ParseError::Limit("attribute value too long"));
        }
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| ParseError::Xml(e.to_string()))?
            .into_owned();
        out.push((attr.key.local_name().as_ref().to_owned(), value));
        if out.len() > 64 {
            return Err(ParseError::Limit("too many attributes"));
        }
    }
    Ok(out)
}

fn parse_root(start: &BytesStart<'_>) -> Result<Request, ParseError> {
    let mut request = Request {
        protocol: String::new(),
        updater_version: None,
        install_source: None,
        os: None,
        apps: Vec::new(),
    };
    let mut protocol = None;
    let mut version = None;
    for (key, value) in attributes(start)? {
        match key.as_str() {
            "protocol" => protocol = Some(value),
            "updaterversion" => request.updater_version = Some(value),
            "version" => version = Some(value),
            "installsource" => request.install_source = Some(value),
            _ => {}
        }
    }
    request.protocol = protocol.ok_or(ParseError::Missing {
        element: "request",
        attribute: "protocol",
    })?;
    if request.updater_version.is_none() {
        request.updater_version = version;
    }
    Ok(request)
}

fn parse_os(start: &BytesStart<'_>) -> Result<Os, ParseError> {
    let mut os = Os::default();
    for (key, value) in attributes(start)? {
        match key.as_str() {
            "platform" => os.platform = Some(value),
            "version" => os.version = Some(value),
            "sp" => os.sp = Some(value),
            "arch" => os.arch = Some(value),
            _ => {}
        }
    }
    Ok(os)
}

fn parse_app(start: &BytesStart<'_>) -> Result<App, ParseError> {
    let mut app = App::default();
    let mut appid = None;
    for (key, value) in attributes(start)? {
        match key.as_str() {
            "appid" => appid = Some(value),
            "version" => app.version = Some(value),
            "track" => app.track = Some(value),
            "machineid" => app.machine_id = Some(value),
            "machinealias" => app.machine_alias = Some(value),
            "bootid" => app.boot_id = Some(value),
            "oem" => app.oem = Some(value),
            "oemversion" => app.oem_version = Some(value),
            "alephversion" => app.aleph_version = Some(value),
            "board" => app.board = Some(value),
            "delta_okay" => app.delta_okay = value == "true",
            _ => {}
        }
    }
    app.appid = appid.ok_or(ParseError::Missing {
        element: "app",
        attribute: "appid",
    })?;
    Ok(app)
}

fn number<T: std::str::FromStr>(attribute: &'static str, value: &str) -> Result<T, ParseError> {
    value.trim().parse().map_err(|_| ParseError::NotANumber {
        element: "event",
        attribute,
        value: value.to_owned(),
    })
}

fn parse_event(start: &BytesStart<'_>) -> Result<Event, ParseError> {
    let mut event_type = None;
    let mut result = None;
    let mut error_code = None;
    let mut previous_version = None;
    for (key, value) in attributes(start)? {
        match key.as_str() {
            "eventtype" => event_type = Some(EventType(number("eventtype", &value)?)),
            "eventresult" => result = Some(EventResult(number("eventresult", &value)?)),
            "errorcode" if !value.is_empty() => error_code = Some(number("errorcode", &value)?),
            "previousversion" => previous_version = Some(value),
            _ => {}
        }
    }
    Ok(Event {
        event_type: event_type.ok_or(ParseError::Missing {
            element: "event",
            attribute: "eventtype",
        })?,
        result: result.ok_or(ParseError::Missing {
            element: "event",
            attribute: "eventresult",
        })?,
        error_code,
        previous_version,
    })
}

/// The answer to a request: one [`AppResponse`] per `<app>` asked about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// `<daystart elapsed_seconds=..>`: seconds since (UTC) midnight.
    pub daystart_elapsed_seconds: u64,
    /// The `<app>` answers, in request order.
    pub apps: Vec<AppResponse>,
}

/// The `status` of an `<app>` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppStatus {
    /// `ok`.
    Ok,
    /// `error-unknownApplication`: this server does not serve that `appid`.
    UnknownApplication,
}

/// The answer to one `<app>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppResponse {
    /// The `appid`, echoed.
    pub appid: String,
    /// The app status.
    pub status: AppStatus,
    /// Answer `<ping status="ok"/>`.
    pub ping: bool,
    /// How many `<event status="ok"/>` acknowledgements to send (one per event received).
    pub events: usize,
    /// The `<updatecheck>` answer, when the app asked for one.
    pub updatecheck: Option<UpdateCheck>,
}

/// The `<updatecheck>` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpdateCheck {
    /// `status="noupdate"`.
    NoUpdate,
    /// `status="ok"` with the payload to fetch.
    Update(Offer),
}

/// An update offered to a node: where the payload is and what it must hash to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// The version being offered (`<manifest version>`).
    pub version: String,
    /// The base URL the package name is appended to (`<url codebase>`); `update_engine`
    /// adds a `/` if it lacks one.
    pub codebase: String,
    /// The payload's file name (`<package name>`), e.g. `flatcar_production_update.gz`.
    pub package_name: String,
    /// The payload size in bytes (`<package size>`); must be above zero for
    /// `update_engine`.
    pub size: u64,
    /// The payload's SHA-1 (`<package hash>`, base64 on the wire).
    pub sha1: [u8; 20],
    /// The payload's SHA-256 (`<action sha256>`, base64 on the wire): the hash
    /// `update_engine` actually verifies.
    pub sha256: [u8; 32],
}

impl AppResponse {
    /// The answer to a served app: ping and events acknowledged as the app sent them, and
    /// `check` as the `<updatecheck>` answer if the app asked for one.
    pub fn answer(app: &App, check: UpdateCheck) -> Self {
        Self {
            appid: app.appid.clone(),
            status: AppStatus::Ok,
            ping: app.ping,
            events: app.events.len(),
            updatecheck: app.updatecheck.then_some(check),
        }
    }

    /// The answer to an app this server does not serve: `status="error-unknownApplication"`
    /// and nothing inside.
    pub fn unknown(app: &App) -> Self {
        Self {
            appid: app.appid.clone(),
            status: AppStatus::UnknownApplication,
            ping: false,
            events: 0,
            updatecheck: None,
        }
    }
}

impl Response {
    /// An empty response for a request answered at `now_unix_secs`.
    pub fn new(now_unix_secs: u64) -> Self {
        Self {
            daystart_elapsed_seconds: now_unix_secs % 86_400,
            apps: Vec::new(),
        }
    }

    /// The XML document, as `update_engine` reads it.
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(512);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        out.push_str("<response protocol=\"3.0\" server=\"slipway\">\n");
        let _ = writeln!(
            out,
            " <daystart elapsed_seconds=\"{}\"/>",
            self.daystart_elapsed_seconds
        );
        for app in &self.apps {
            write_app(&mut out, app);
        }
        out.push_str("</response>\n");
        out
    }
}

fn esc(s: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(s)
}

fn write_app(out: &mut String, app: &AppResponse) {
    let status = match app.status {
        AppStatus::Ok => "ok",
        AppStatus::UnknownApplication => "error-unknownApplication",
    };
    let _ = writeln!(
        out,
        " <app appid=\"{}\" status=\"{status}\">",
        esc(&app.appid)
    );
    if app.ping {
        out.push_str("  <ping status=\"ok\"/>\n");
    }
    for _ in 0..app.events {
        out.push_str("  <event status=\"ok\"/>\n");
    }
    match &app.updatecheck {
        None => {}
        Some(UpdateCheck::NoUpdate) => out.push_str("  <updatecheck status=\"noupdate\"/>\n"),
        Some(UpdateCheck::Update(offer)) => {
            // Attribute names are the ones update_engine's ParseUrls/ParsePackage/
            // ParseParams read: url@codebase, manifest@version, package@name/@size,
            // action[@event="postinstall"]@sha256 (required), @needsadmin,
            // @IsDeltaPayload and @DisablePayloadBackoff (compared with "true").
            // package@hash/@required follow go-omaha's Package (update_engine ignores them).
            let _ = write!(
                out,
                concat!(
                    "  <updatecheck status=\"ok\">\n",
                    "   <urls>\n",
                    "    <url codebase=\"{codebase}\"/>\n",
                    "   </urls>\n",
                    "   <manifest version=\"{version}\">\n",
                    "    <packages>\n",
                    "     <package hash=\"{sha1}\" name=\"{name}\" size=\"{size}\" required=\"false\"/>\n",
                    "    </packages>\n",
                    "    <actions>\n",
                    "     <action event=\"postinstall\" sha256=\"{sha256}\" needsadmin=\"false\" IsDeltaPayload=\"false\" DisablePayloadBackoff=\"true\"/>\n",
                    "    </actions>\n",
                    "   </manifest>\n",
                    "  </updatecheck>\n",
                ),
                codebase = esc(&offer.codebase),
                version = esc(&offer.version),
                sha1 = BASE64.encode(offer.sha1),
                name = esc(&offer.package_name),
                size = offer.size,
                sha256 = BASE64.encode(offer.sha256),
            );
        }
    }
    out.push_str(" </app>\n");
}
