//! Requests to one Redfish service: URLs, authentication (basic or a session
//! token), bounded reply bodies, and the mapping of HTTP and transport failures
//! onto [`Error`].

use std::fmt;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use ureq::http::{self, HeaderValue, Method, Request};
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::{Connector, TcpConnector};

use super::json::{clean_path, error_message, str_prop};
use super::tls::{TlsConnector, TlsFailure, client_config};
use super::{Auth, Config};
use crate::{Error, Result, Secret};

/// The largest reply body read; a longer one is an error.
pub(crate) const MAX_BODY: u64 = 4 << 20;
/// The longest time a logout may take.
const LOGOUT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest session token accepted.
const MAX_TOKEN: usize = 4096;
/// The service root.
pub(crate) const ROOT: &str = "/redfish/v1/";
/// The default place of the session collection.
const DEFAULT_SESSIONS: &str = "/redfish/v1/SessionService/Sessions";

/// A reply: status, the headers this driver reads, and the (bounded) body.
pub(crate) struct Reply {
    /// HTTP status code.
    pub(crate) status: u16,
    /// The `ETag` header.
    pub(crate) etag: Option<String>,
    /// The `Location` header.
    pub(crate) location: Option<String>,
    /// The `X-Auth-Token` header.
    pub(crate) token: Option<String>,
    /// The body.
    pub(crate) body: Vec<u8>,
}

impl Reply {
    fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A JSON resource with its entity tag (the `ETag` header or `@odata.etag`).
pub(crate) struct Resource {
    /// The resource.
    pub(crate) value: Value,
    /// Its entity tag, if the service gave one.
    pub(crate) etag: Option<String>,
}

/// How requests authenticate.
enum AuthState {
    /// An `Authorization: Basic ...` header on every request.
    Basic(Secret),
    /// Session login: the token and the session's URL, once logged in.
    Session {
        sessions: String,
        token: Option<Secret>,
        location: Option<String>,
    },
}

/// The connection to one Redfish service.
pub(crate) struct Http {
    agent: ureq::Agent,
    logout_agent: ureq::Agent,
    base: String,
    addr: String,
    user: String,
    password: Secret,
    auth: AuthState,
}

impl fmt::Debug for Http {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http")
            .field("base", &self.base)
            .field("user", &self.user)
            .field(
                "auth",
                &match self.auth {
                    AuthState::Basic(_) => "basic",
                    AuthState::Session { .. } => "session",
                },
            )
            .finish_non_exhaustive()
    }
}

/// An agent with this timeout per request; TLS through `tls` unless it is `None`
/// (plain HTTP).
fn agent(tls: Option<&TlsConnector>, timeout: Duration) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .proxy(None)
        .user_agent("slipway-bmc")
        .max_idle_connections(4)
        .max_idle_connections_per_host(4)
        .build();
    match tls {
        Some(tls) => ureq::Agent::with_parts(
            config,
            ().chain(TcpConnector::default()).chain(tls.clone()),
            DefaultResolver::default(),
        ),
        None => ureq::Agent::with_parts(
            config,
            ().chain(TcpConnector::default()),
            DefaultResolver::default(),
        ),
    }
}

/// `host:port`, with brackets around an IPv6 address.
pub(crate) fn authority(address: &str, port: u16) -> String {
    if address.contains(':') && !address.starts_with('[') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    }
}

impl Http {
    /// Prepares requests to the service `cfg` names (nothing is sent yet).
    pub(crate) fn new(cfg: &Config) -> Result<Http> {
        let address = cfg.address.trim();
        if address.is_empty()
            || address
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "/?#@".contains(c))
        {
            return Err(Error::Protocol(format!(
                "{address:?} is not a BMC host name or address"
            )));
        }
        let addr = authority(address, cfg.port);
        let scheme = if cfg.scheme_http { "http" } else { "https" };
        let auth = match cfg.auth {
            Auth::Basic => {
                let pair = format!("{}:{}", cfg.user, cfg.password.expose());
                AuthState::Basic(Secret::new(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                )))
            }
            Auth::Session => AuthState::Session {
                sessions: DEFAULT_SESSIONS.to_string(),
                token: None,
                location: None,
            },
        };
        let timeout = cfg.timeout.max(Duration::from_millis(100));
        let tls = if cfg.scheme_http {
            None
        } else {
            Some(TlsConnector::new(client_config(&cfg.tls)?, address)?)
        };
        Ok(Http {
            agent: agent(tls.as_ref(), timeout),
            logout_agent: agent(tls.as_ref(), timeout.min(LOGOUT_TIMEOUT)),
            base: format!("{scheme}://{addr}"),
            addr,
            user: cfg.user.clone(),
            password: cfg.password.clone(),
            auth,
        })
    }

    /// `host:port`, for messages.
    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    /// Whether a session must be made before the first authenticated request.
    pub(crate) fn wants_session(&self) -> bool {
        matches!(self.auth, AuthState::Session { token: None, .. })
    }

    /// Sends one request and reads the reply, without looking at its status.
    fn send(
        &self,
        agent: &ureq::Agent,
        method: Method,
        path: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
        authenticate: bool,
    ) -> Result<Reply> {
        let what = format!("{method} {path}");
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base, path))
            .header("Accept", "application/json")
            .header("OData-Version", "4.0");
        if authenticate {
            match &self.auth {
                AuthState::Basic(header) => {
                    req = req.header("Authorization", secret_header(header)?);
                }
                AuthState::Session {
                    token: Some(token), ..
                } => {
                    req = req.header("X-Auth-Token", secret_header(token)?);
                }
                AuthState::Session { token: None, .. } => {}
            }
        }
        if let Some(tag) = if_match {
            let value = HeaderValue::from_str(tag)
                .map_err(|_| Error::Protocol(format!("{what}: unusable ETag from the BMC")))?;
            req = req.header("If-Match", value);
        }
        let bytes = match body {
            Some(v) => {
                req = req.header("Content-Type", "application/json");
                serde_json::to_vec(v).map_err(|e| Error::Protocol(format!("{what}: {e}")))?
            }
            None => Vec::new(),
        };
        let req = req
            .body(bytes)
            .map_err(|e| Error::Protocol(format!("{what}: {e}")))?;
        let started = Instant::now();
        let mut resp = agent
            .run(req)
            .map_err(|e| self.transport_error(e, started))?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let etag = header("ETag");
        let location = header("Location");
        let token = header("X-Auth-Token");
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => Error::Protocol(format!(
                    "{what}: reply body larger than {} MiB",
                    MAX_BODY >> 20
                )),
                other => self.transport_error(other, started),
            })?;
        Ok(Reply {
            status,
            etag,
            location,
            token,
            body,
        })
    }

    /// Sends an authenticated request; in session mode, logs in first when needed
    /// and once more if the service forgot the session (401).
    pub(crate) fn request(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Result<Reply> {
        if self.wants_session() {
            self.login()?;
        }
        let reply = self.send(&self.agent, method.clone(), path, body, if_match, true)?;
        if reply.status == 401 && matches!(self.auth, AuthState::Session { .. }) {
            self.login()?;
            return self.send(&self.agent, method, path, body, if_match, true);
        }
        Ok(reply)
    }

    /// GETs the service root: with basic credentials when those are in use, else
    /// without any (the root must be readable before a session exists).
    pub(crate) fn get_root(&self) -> Result<Value> {
        let authenticate = matches!(self.auth, AuthState::Basic(_));
        let reply = self.send(&self.agent, Method::GET, ROOT, None, None, authenticate)?;
        let what = format!("GET {ROOT}");
        if !reply.is_success() {
            return Err(self.status_error(&what, &reply));
        }
        parse_json(&what, &reply.body)
    }

    /// GETs a JSON resource.
    pub(crate) fn get(&mut self, path: &str) -> Result<Resource> {
        let what = format!("GET {path}");
        let reply = self.request(Method::GET, path, None, None)?;
        if !reply.is_success() {
            return Err(self.status_error(&what, &reply));
        }
        let value = parse_json(&what, &reply.body)?;
        let etag = reply
            .etag
            .or_else(|| str_prop(&value, "@odata.etag").map(str::to_string));
        Ok(Resource { value, etag })
    }

    /// Sends a request whose reply carries nothing but its status; fails on
    /// anything but 2xx.
    pub(crate) fn call(
        &mut self,
        method: Method,
        path: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Result<Reply> {
        let what = format!("{method} {path}");
        let reply = self.request(method, path, Some(body), if_match)?;
        if !reply.is_success() {
            return Err(self.status_error(&what, &reply));
        }
        Ok(reply)
    }

    /// Sets where the session collection is (from the service root).
    pub(crate) fn set_sessions_path(&mut self, path: String) {
        if let AuthState::Session { sessions, .. } = &mut self.auth {
            *sessions = path;
        }
    }

    /// Logs in: POSTs the user name and password to the session collection and
    /// keeps the `X-Auth-Token`.
    pub(crate) fn login(&mut self) -> Result<()> {
        let AuthState::Session { sessions, .. } = &self.auth else {
            return Ok(());
        };
        let sessions = sessions.clone();
        let what = format!("POST {sessions} (session login)");
        let body = json!({ "UserName": self.user, "Password": self.password.expose() });
        let reply = self.send(
            &self.agent,
            Method::POST,
            &sessions,
            Some(&body),
            None,
            false,
        )?;
        if !reply.is_success() {
            return Err(self.status_error(&what, &reply));
        }
        let token = reply
            .token
            .filter(|t| {
                !t.is_empty() && t.len() <= MAX_TOKEN && t.bytes().all(|b| b.is_ascii_graphic())
            })
            .ok_or_else(|| {
                Error::Protocol(format!(
                    "{what}: the BMC gave no usable X-Auth-Token header"
                ))
            })?;
        let location = reply.location.as_deref().and_then(clean_path).or_else(|| {
            serde_json::from_slice::<Value>(&reply.body)
                .ok()
                .as_ref()
                .and_then(super::json::odata_id)
        });
        self.auth = AuthState::Session {
            sessions,
            token: Some(Secret::new(token)),
            location,
        };
        Ok(())
    }

    /// Deletes the session, if one was made: best effort, within a few seconds.
    pub(crate) fn logout(&mut self) {
        let AuthState::Session {
            token, location, ..
        } = &mut self.auth
        else {
            return;
        };
        let (Some(_), Some(path)) = (token.as_ref(), location.clone()) else {
            *token = None;
            return;
        };
        let _ = self.send(&self.logout_agent, Method::DELETE, &path, None, None, true);
        if let AuthState::Session {
            token, location, ..
        } = &mut self.auth
        {
            *token = None;
            *location = None;
        }
    }

    /// The error for a reply with a failure status.
    pub(crate) fn status_error(&self, what: &str, reply: &Reply) -> Error {
        let reason = http::StatusCode::from_u16(reply.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        let message = error_message(&reply.body).map(|m| self.scrub(&m));
        let detail = match message {
            Some(m) => format!("HTTP {} {reason}: {m}", reply.status),
            None => format!("HTTP {} {reason}", reply.status)
                .trim_end()
                .to_string(),
        };
        match reply.status {
            401 => Error::Auth(format!(
                "{} rejected user {:?} ({what}: {detail})",
                self.addr, self.user
            )),
            300..=399 => Error::Refused {
                what: what.to_string(),
                detail: format!("{detail}; redirects are not followed"),
            },
            _ => Error::Refused {
                what: what.to_string(),
                detail,
            },
        }
    }

    /// Text from the peer with the password cut out (a hostile or careless BMC
    /// might echo it back).
    fn scrub(&self, text: &str) -> String {
        let pw = self.password.expose();
        if pw.len() >= 3 && text.contains(pw) {
            text.replace(pw, "<redacted>")
        } else {
            text.to_string()
        }
    }

    /// Maps a ureq failure (connecting, TLS, reading) onto [`Error`].
    fn transport_error(&self, e: ureq::Error, started: Instant) -> Error {
        let timeout = || Error::Timeout {
            addr: self.addr.clone(),
            tries: 1,
            elapsed: started.elapsed(),
        };
        match e {
            ureq::Error::Timeout(_) => timeout(),
            ureq::Error::Io(io)
                if matches!(
                    io.kind(),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                ) =>
            {
                timeout()
            }
            ureq::Error::Io(io) => Error::Io(std::io::Error::new(
                io.kind(),
                format!("{}: {io}", self.addr),
            )),
            ureq::Error::HostNotFound => Error::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{}: host not found", self.addr),
            )),
            ureq::Error::ConnectionFailed => Error::Io(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                format!("{}: connection failed", self.addr),
            )),
            ureq::Error::Other(inner) => match inner.downcast::<TlsFailure>() {
                Ok(tls) => Error::Tls(format!("{}: {}", self.addr, tls.0)),
                Err(other) => Error::Protocol(format!("{}: {other}", self.addr)),
            },
            ureq::Error::TlsRequired => {
                Error::Tls(format!("{}: TLS required but not set up", self.addr))
            }
            other => Error::Protocol(format!("{}: {other}", self.addr)),
        }
    }
}

impl Drop for Http {
    fn drop(&mut self) {
        self.logout();
    }
}

/// A header value from a secret, marked sensitive.
fn secret_header(secret: &Secret) -> Result<HeaderValue> {
    let mut value = HeaderValue::from_str(secret.expose()).map_err(|_| {
        Error::Protocol("credentials contain characters not allowed in a header".to_string())
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// Parses a reply body as JSON.
fn parse_json(what: &str, body: &[u8]) -> Result<Value> {
    serde_json::from_slice(body)
        .map_err(|e| Error::Protocol(format!("{what}: the reply is not JSON ({e})")))
}
