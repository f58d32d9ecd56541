//! Requests on the listening port: checking them, and the sans-IO [`Endpoint`] that
//! decides which ones start a transfer.
//!
//! Rules (all pure, tested without sockets):
//! - only read requests are served; a write request gets ERROR 2 (access violation:
//!   RFC 1350's code for an operation the server does not permit; code 4, "illegal
//!   operation", is for malformed or out-of-order packets);
//! - modes: `octet`; `netascii` is served byte for byte as `octet` (no CR/LF
//!   translation; slipway's generated files are plain ASCII with LF line ends, which
//!   pxelinux and GRUB read as is, and clients translating netascii leave a bare LF
//!   alone); `mail` and anything else get ERROR 4;
//! - names: `\` is read as `/`; leading `/` are dropped (the name is always relative to
//!   the served root, as tftpd-hpa's `-s`); empty and `.` components are dropped; a
//!   `..` component or a control character refuses the request (ERROR 2); a name with a
//!   NUL inside cannot be expressed (the name ends at the first NUL and the rest must be
//!   a mode) and ends up refused as a bad mode or a malformed request;
//! - every length is bounded (see [`crate::wire`]); a malformed request gets ERROR 4;
//! - anything else sent to the listening port (ACK, DATA, garbage) is ignored, never
//!   answered, so the server cannot be used to reflect traffic.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use crate::Config;
use crate::wire::{ErrorCode, Opcode, Packet, Repr, RequestRepr, WireError};

/// A transfer mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `octet`: bytes as they are.
    Octet,
    /// `netascii`: served byte for byte, as `octet` (see the module docs).
    Netascii,
}

/// The options of a request that this server understands, with valid values.
/// Invalid values are dropped (the option is then not acknowledged), as RFC 2347 lets
/// a server ignore options it does not accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestedOptions {
    /// `blksize` (RFC 2348), 8..=65464.
    pub blksize: Option<u16>,
    /// `timeout` in seconds (RFC 2349), 1..=255.
    pub timeout: Option<u8>,
    /// `tsize` (RFC 2349) was asked: the OACK carries the file's size.
    pub tsize: bool,
    /// `windowsize` (RFC 7440), 1..=65535.
    pub windowsize: Option<u16>,
}

/// A valid read request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The normalized path, relative to the served root: components joined by `/`,
    /// never empty, never with `..`, `.` or empty components.
    pub path: String,
    /// The requested mode.
    pub mode: Mode,
    /// The understood options.
    pub options: RequestedOptions,
}

/// Why a request is refused; each maps to the ERROR packet the client gets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// A write request: this server is read-only.
    #[error("write request refused (read-only server)")]
    WriteRequest,
    /// The request is not well-formed (or too long).
    #[error("malformed request: {0}")]
    Malformed(#[source] WireError),
    /// A mode other than `octet` or `netascii`.
    #[error("unsupported mode {0:?}")]
    UnsupportedMode(String),
    /// The name has a `..` component: it would leave the root.
    #[error("path traversal ('..') refused")]
    Traversal,
    /// The name has a control character.
    #[error("control character in file name")]
    BadName,
    /// The name is empty (or only `/` and `.`).
    #[error("empty file name")]
    EmptyName,
}

impl Refusal {
    /// The error code sent to the client.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            Refusal::WriteRequest | Refusal::Traversal | Refusal::BadName => {
                ErrorCode::AccessViolation
            }
            Refusal::Malformed(_) | Refusal::UnsupportedMode(_) => ErrorCode::IllegalOperation,
            Refusal::EmptyName => ErrorCode::FileNotFound,
        }
    }

    /// The error message sent to the client.
    pub fn message(&self) -> &'static str {
        match self {
            Refusal::WriteRequest => "read-only server: write requests are refused",
            Refusal::Malformed(_) => "malformed request",
            Refusal::UnsupportedMode(_) => "unsupported mode (use octet)",
            Refusal::Traversal => "access violation: '..' in file name",
            Refusal::BadName => "access violation: control character in file name",
            Refusal::EmptyName => "file not found",
        }
    }

    /// The ERROR packet answering the refused request.
    pub fn reply(&self) -> Vec<u8> {
        let mut out = Vec::new();
        Repr::Error {
            code: self.error_code(),
            message: self.message(),
        }
        .emit(&mut out);
        out
    }
}

/// Normalizes a requested file name into a path relative to the served root (see the
/// module docs for the rules).
///
/// ```
/// use slipway_tftp::request::{normalize_path, Refusal};
/// assert_eq!(normalize_path("/pxelinux.cfg//./default").unwrap(), "pxelinux.cfg/default");
/// assert_eq!(normalize_path("boot\\grub\\grub.cfg").unwrap(), "boot/grub/grub.cfg");
/// assert_eq!(normalize_path("../etc/passwd"), Err(Refusal::Traversal));
/// assert_eq!(normalize_path("..\\x"), Err(Refusal::Traversal));
/// ```
pub fn normalize_path(name: &str) -> Result<String, Refusal> {
    if name.chars().any(|c| c.is_control()) {
        return Err(Refusal::BadName);
    }
    let mut path = String::with_capacity(name.len());
    for component in name.split(['/', '\\']) {
        match component {
            "" | "." => {}
            ".." => return Err(Refusal::Traversal),
            part => {
                if !path.is_empty() {
                    path.push('/');
                }
                path.push_str(part);
            }
        }
    }
    if path.is_empty() {
        return Err(Refusal::EmptyName);
    }
    Ok(path)
}

/// A decimal option value: digits only, at most 20 of them, no sign.
fn decimal(value: &str) -> Option<u64> {
    if value.is_empty() || value.len() > 20 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

fn understood_options(request: &RequestRepr<'_>) -> RequestedOptions {
    let mut options = RequestedOptions::default();
    let mut seen_tsize = false;
    for option in &request.options {
        let value = decimal(option.value);
        let name = option.name;
        // The first occurrence of an option wins; later ones are ignored.
        if name.eq_ignore_ascii_case("blksize") && options.blksize.is_none() {
            options.blksize = value
                .filter(|v| (8..=65464).contains(v))
                .and_then(|v| u16::try_from(v).ok());
        } else if name.eq_ignore_ascii_case("timeout") && options.timeout.is_none() {
            options.timeout = value
                .filter(|v| (1..=255).contains(v))
                .and_then(|v| u8::try_from(v).ok());
        } else if name.eq_ignore_ascii_case("tsize") && !seen_tsize {
            seen_tsize = true;
            options.tsize = value.is_some();
        } else if name.eq_ignore_ascii_case("windowsize") && options.windowsize.is_none() {
            options.windowsize = value
                .filter(|v| (1..=65535).contains(v))
                .and_then(|v| u16::try_from(v).ok());
        }
    }
    options
}

/// Checks a datagram received on the listening port.
///
/// `Ok(None)`: not a request (ACK, DATA, garbage): ignore it. `Err`: a request to
/// refuse with [`Refusal::reply`]. `Ok(Some)`: a valid read request.
pub fn parse_request(datagram: &[u8]) -> Result<Option<Request>, Refusal> {
    let opcode = Packet::new_unchecked(datagram).opcode();
    match Opcode::from_u16(opcode) {
        Some(Opcode::Wrq) => return Err(Refusal::WriteRequest),
        Some(Opcode::Rrq) => {}
        _ => return Ok(None),
    }
    let repr = Repr::parse_bytes(datagram).map_err(Refusal::Malformed)?;
    let Repr::Rrq(request) = repr else {
        return Ok(None);
    };
    let mode = if request.mode.eq_ignore_ascii_case("octet") {
        Mode::Octet
    } else if request.mode.eq_ignore_ascii_case("netascii") {
        Mode::Netascii
    } else {
        return Err(Refusal::UnsupportedMode(request.mode.to_owned()));
    };
    let path = normalize_path(request.filename)?;
    Ok(Some(Request {
        path,
        mode,
        options: understood_options(&request),
    }))
}

/// Identifies one transfer started by an [`Endpoint`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransferId(pub u64);

/// Why a datagram on the listening port is ignored (not answered at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ignored {
    /// Not a request.
    NotARequest,
    /// The same request again from a client port whose transfer is running: the
    /// client retransmitted its RRQ; the running transfer answers it.
    Duplicate,
    /// Half the transfer slots are taken and this client's address already runs
    /// [`Config::max_transfers_per_client`] transfers.
    ClientBusy,
    /// As many transfers run as the configuration allows: the client will retransmit
    /// its RRQ and may find a free slot then.
    Busy,
}

/// What to do with a datagram received on the listening port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accept {
    /// Start a transfer for this request; when `replaces` is set, first stop that
    /// transfer: the same client port sent a different request, so it gave up on it.
    Start {
        /// The new transfer's id; give it back to [`Endpoint::finished`].
        id: TransferId,
        /// The request.
        request: Request,
        /// A running transfer of the same client port to stop.
        replaces: Option<TransferId>,
    },
    /// Answer with [`Refusal::reply`] and start nothing.
    Refuse(Refusal),
    /// Do not answer.
    Ignore(Ignored),
}

#[derive(Debug)]
struct Active {
    id: TransferId,
    request: Box<[u8]>,
}

/// The sans-IO listening side: checks requests, drops retransmitted ones, caps the
/// number of running transfers.
///
/// ```
/// use slipway_tftp::Config;
/// use slipway_tftp::request::{Accept, Endpoint, Ignored};
///
/// let mut endpoint = Endpoint::new(&Config::default());
/// let client = "192.0.2.10:2070".parse().unwrap();
/// let rrq = b"\x00\x01pxelinux.0\x00octet\x00";
/// let Accept::Start { id, request, .. } = endpoint.handle(client, rrq) else { panic!() };
/// assert_eq!(request.path, "pxelinux.0");
/// // The client's retransmission of the same RRQ is not a second transfer.
/// assert_eq!(endpoint.handle(client, rrq), Accept::Ignore(Ignored::Duplicate));
/// endpoint.finished(client, id);
/// assert_eq!(endpoint.active(), 0);
/// ```
#[derive(Debug)]
pub struct Endpoint {
    max_transfers: usize,
    max_per_client: usize,
    active: HashMap<SocketAddr, Active>,
    /// Transfers running per client address (every port of one host together).
    per_host: HashMap<IpAddr, usize>,
    next_id: u64,
}

impl Endpoint {
    /// An endpoint with no transfer running.
    pub fn new(config: &Config) -> Endpoint {
        Endpoint {
            max_transfers: config.max_transfers.max(1),
            max_per_client: config.max_transfers_per_client.max(1),
            active: HashMap::new(),
            per_host: HashMap::new(),
            next_id: 1,
        }
    }

    /// Decides what to do with `datagram`, received from `client` on the listening port.
    pub fn handle(&mut self, client: SocketAddr, datagram: &[u8]) -> Accept {
        if let Some(active) = self.active.get(&client)
            && *active.request == *datagram
        {
            return Accept::Ignore(Ignored::Duplicate);
        }
        let request = match parse_request(datagram) {
            Ok(Some(request)) => request,
            Ok(None) => return Accept::Ignore(Ignored::NotARequest),
            Err(refusal) => return Accept::Refuse(refusal),
        };
        let replaces = self.active.get(&client).map(|a| a.id);
        if replaces.is_none() {
            if self.active.len() >= self.max_transfers {
                return Accept::Ignore(Ignored::Busy);
            }
            // Under pressure (half the slots taken), one host gets at most its share: a
            // flood from one source leaves the other half for everyone else.
            let pressed = self.active.len() >= self.max_transfers / 2;
            let host = self.per_host.entry(client.ip()).or_insert(0);
            if pressed && *host >= self.max_per_client {
                return Accept::Ignore(Ignored::ClientBusy);
            }
            *host += 1;
        }
        let id = TransferId(self.next_id);
        self.next_id += 1;
        self.active.insert(
            client,
            Active {
                id,
                request: datagram.into(),
            },
        );
        Accept::Start {
            id,
            request,
            replaces,
        }
    }

    /// Marks transfer `id` of `client` as finished. A stale id (the transfer was
    /// replaced by a newer request from the same port) changes nothing.
    pub fn finished(&mut self, client: SocketAddr, id: TransferId) {
        if self.active.get(&client).is_some_and(|a| a.id == id) {
            self.active.remove(&client);
            if let Some(n) = self.per_host.get_mut(&client.ip()) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.per_host.remove(&client.ip());
                }
            }
        }
    }

    /// How many transfers are running.
    pub fn active(&self) -> usize {
        self.active.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::wire::OptionRepr;

    fn rrq(name: &str, mode: &str, options: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        Repr::Rrq(RequestRepr {
            filename: name,
            mode,
            options: options
                .iter()
                .map(|&(name, value)| OptionRepr { name, value })
                .collect(),
        })
        .emit(&mut out);
        out
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 10], port))
    }

    #[test]
    fn paths() {
        let ok = |n: &str| normalize_path(n).unwrap();
        assert_eq!(ok("pxelinux.0"), "pxelinux.0");
        assert_eq!(ok("/pxelinux.0"), "pxelinux.0");
        assert_eq!(ok("//a//b/./c/"), "a/b/c");
        assert_eq!(ok("\\EFI\\BOOT\\grubx64.efi"), "EFI/BOOT/grubx64.efi");
        assert_eq!(ok("..."), "...", "three dots is a plain name");
        assert_eq!(ok("a..b"), "a..b");
        for bad in [
            "..",
            "../etc/passwd",
            "/../etc/passwd",
            "a/../../b",
            "a/..",
            "..\\x",
            "x\\..\\..\\y",
        ] {
            assert_eq!(normalize_path(bad), Err(Refusal::Traversal), "{bad}");
        }
        assert_eq!(normalize_path("a\nb"), Err(Refusal::BadName));
        assert_eq!(normalize_path("a\u{7f}"), Err(Refusal::BadName));
        for empty in ["", "/", "//", "./", "/./."] {
            assert_eq!(normalize_path(empty), Err(Refusal::EmptyName), "{empty:?}");
        }
    }

    #[test]
    fn refusals_and_their_codes() {
        let parse = |b: &[u8]| parse_request(b);
        let wrq = {
            let mut b = rrq("x", "octet", &[]);
            b[1] = 2;
            b
        };
        assert_eq!(parse(&wrq), Err(Refusal::WriteRequest));
        assert_eq!(
            Refusal::WriteRequest.error_code(),
            ErrorCode::AccessViolation
        );
        // Even a malformed WRQ is refused as a write request.
        assert_eq!(parse(b"\x00\x02"), Err(Refusal::WriteRequest));
        assert_eq!(
            parse(&rrq("x", "mail", &[])),
            Err(Refusal::UnsupportedMode("mail".into()))
        );
        assert_eq!(
            parse(&rrq("x", "binary", &[])).unwrap_err().error_code(),
            ErrorCode::IllegalOperation
        );
        assert_eq!(
            parse(&rrq("../etc/passwd", "octet", &[])),
            Err(Refusal::Traversal)
        );
        assert_eq!(
            parse(&rrq("/etc/passwd", "octet", &[]))
                .unwrap()
                .unwrap()
                .path,
            "etc/passwd"
        );
        // A NUL inside the name: what follows it is read as the mode.
        assert_eq!(
            parse(b"\x00\x01pxelinux.0\x00../x\x00"),
            Err(Refusal::UnsupportedMode("../x".into()))
        );
        assert_eq!(
            parse(b"\x00\x01pxelinux.0\x00../x\x00octet\x00"),
            Err(Refusal::Malformed(WireError::Unterminated)),
            "'octet' read as an option without a value"
        );
        assert_eq!(
            parse(b"\x00\x01pxelinux.0\x00../../../etc/passwd\x00octet\x00"),
            Err(Refusal::Malformed(WireError::TooLong)),
            "a mode longer than any real one"
        );
        assert_eq!(
            parse(b"\x00\x01pxelinux.0\x00"),
            Err(Refusal::Malformed(WireError::Unterminated))
        );
        let long = "a".repeat(300);
        assert_eq!(
            parse(&rrq(&long, "octet", &[])),
            Err(Refusal::Malformed(WireError::TooLong))
        );
        let many: Vec<(String, String)> = (0..20).map(|i| (format!("x{i}"), "1".into())).collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert_eq!(
            parse(&rrq("x", "octet", &many)),
            Err(Refusal::Malformed(WireError::TooManyOptions))
        );
        // Not requests: ignored.
        assert_eq!(parse(b"\x00\x04\x00\x01"), Ok(None));
        assert_eq!(parse(b""), Ok(None));
        assert_eq!(parse(b"\xff"), Ok(None));
        // The reply is a well-formed ERROR.
        assert_eq!(
            Repr::parse_bytes(&Refusal::Traversal.reply()).unwrap(),
            Repr::Error {
                code: ErrorCode::AccessViolation,
                message: Refusal::Traversal.message()
            }
        );
    }

    #[test]
    fn modes_and_options() {
        let r = parse_request(&rrq("f", "NetASCII", &[])).unwrap().unwrap();
        assert_eq!(r.mode, Mode::Netascii);
        let r = parse_request(&rrq(
            "f",
            "OCTET",
            &[
                ("BLKSIZE", "1468"),
                ("blksize", "512"),
                ("tsize", "0"),
                ("timeout", "0"),
                ("windowsize", "16"),
                ("multicast", ""),
            ],
        ))
        .unwrap()
        .unwrap();
        assert_eq!(r.mode, Mode::Octet);
        assert_eq!(
            r.options,
            RequestedOptions {
                blksize: Some(1468),
                timeout: None,
                tsize: true,
                windowsize: Some(16)
            }
        );
        let bad = parse_request(&rrq(
            "f",
            "octet",
            &[
                ("blksize", "7"),
                ("timeout", "256"),
                ("windowsize", "0"),
                ("tsize", "-1"),
            ],
        ))
        .unwrap()
        .unwrap();
        assert_eq!(bad.options, RequestedOptions::default());
        let big = parse_request(&rrq(
            "f",
            "octet",
            &[
                ("blksize", "65465"),
                ("windowsize", "99999999999999999999999"),
            ],
        ))
        .unwrap()
        .unwrap();
        assert_eq!(big.options, RequestedOptions::default());
    }

    #[test]
    fn endpoint_duplicates_replacement_and_cap() {
        let config = Config {
            max_transfers: 2,
            ..Config::default()
        };
        let mut endpoint = Endpoint::new(&config);
        let probe = rrq("f", "octet", &[("tsize", "0")]);
        let Accept::Start {
            id: first,
            replaces: None,
            ..
        } = endpoint.handle(addr(1000), &probe)
        else {
            panic!("first request not started")
        };
        assert_eq!(
            endpoint.handle(addr(1000), &probe),
            Accept::Ignore(Ignored::Duplicate)
        );
        // Same port, a different request: the client gave up the first one.
        let real = rrq("f", "octet", &[]);
        let Accept::Start {
            id: second,
            replaces: Some(replaced),
            ..
        } = endpoint.handle(addr(1000), &real)
        else {
            panic!("replacement not started")
        };
        assert_eq!(replaced, first);
        assert_eq!(endpoint.active(), 1);
        // The replaced transfer's end does not free the new one's slot.
        endpoint.finished(addr(1000), first);
        assert_eq!(endpoint.active(), 1);
        assert!(matches!(
            endpoint.handle(addr(1001), &real),
            Accept::Start { .. }
        ));
        assert_eq!(
            endpoint.handle(addr(1002), &real),
            Accept::Ignore(Ignored::Busy)
        );
        // Refusals are answered even at the cap: they start nothing.
        assert!(matches!(
            endpoint.handle(addr(1002), &rrq("..", "octet", &[])),
            Accept::Refuse(_)
        ));
        endpoint.finished(addr(1000), second);
        assert!(matches!(
            endpoint.handle(addr(1002), &real),
            Accept::Start { .. }
        ));
        assert_eq!(
            endpoint.handle(addr(1003), b"\x00\x04\x00\x00"),
            Accept::Ignore(Ignored::NotARequest)
        );
    }
}
