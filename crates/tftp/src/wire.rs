//! TFTP packets on the wire, in two layers as smoltcp's `wire` module does.
//!
//! - [`Packet`] is a byte view over a buffer. [`Packet::new_checked`] checks that the
//!   buffer is long enough for its opcode's fixed fields; its accessors never panic,
//!   even on a view made with [`Packet::new_unchecked`] over a short buffer (they read
//!   missing bytes as zero).
//! - [`Repr`] is the validated meaning of a packet: [`Repr::parse`] checks every string
//!   (NUL-terminated, UTF-8, bounded length) and option list, [`Repr::emit`] writes it
//!   back. Parsing never panics, whatever the bytes.
//!
//! Every length a peer controls is bounded: a request is at most [`MAX_REQUEST_LEN`]
//! bytes (RFC 2347), its file name at most [`MAX_FILENAME_LEN`], it carries at most
//! [`MAX_OPTIONS`] options of at most [`MAX_OPTION_LEN`] bytes per name or value.
//!
//! ```
//! use slipway_tftp::wire::{Packet, Repr};
//!
//! let bytes = b"\x00\x01pxelinux.0\x00octet\x00tsize\x000\x00";
//! let packet = Packet::new_checked(&bytes[..]).unwrap();
//! assert_eq!(packet.opcode(), 1);
//! let Repr::Rrq(request) = Repr::parse(&packet).unwrap() else { panic!() };
//! assert_eq!(request.filename, "pxelinux.0");
//! assert_eq!(request.options[0].name, "tsize");
//!
//! let mut out = Vec::new();
//! Repr::Ack { block: 7 }.emit(&mut out);
//! assert_eq!(out, b"\x00\x04\x00\x07");
//! ```

use std::fmt;

/// Largest request (RRQ/WRQ) accepted, in bytes: RFC 2347 caps a request with options
/// at 512 octets.
pub const MAX_REQUEST_LEN: usize = 512;
/// Longest file name accepted in a request, in bytes.
pub const MAX_FILENAME_LEN: usize = 255;
/// Longest transfer mode accepted (`netascii` is 8 bytes).
pub const MAX_MODE_LEN: usize = 16;
/// Most options accepted in one request or OACK.
pub const MAX_OPTIONS: usize = 16;
/// Longest option name or value accepted, in bytes.
pub const MAX_OPTION_LEN: usize = 64;
/// Longest error message kept from a peer's ERROR packet (longer ones are cut).
pub const MAX_ERROR_MESSAGE_LEN: usize = 255;

/// The opcodes of RFC 1350 and RFC 2347.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Opcode {
    /// 1: read request.
    Rrq,
    /// 2: write request.
    Wrq,
    /// 3: a block of data.
    Data,
    /// 4: acknowledgement of a block.
    Ack,
    /// 5: error; ends the transfer.
    Error,
    /// 6: option acknowledgement (RFC 2347).
    Oack,
}

impl Opcode {
    /// The opcode for a number, if it is one.
    pub fn from_u16(value: u16) -> Option<Opcode> {
        match value {
            1 => Some(Opcode::Rrq),
            2 => Some(Opcode::Wrq),
            3 => Some(Opcode::Data),
            4 => Some(Opcode::Ack),
            5 => Some(Opcode::Error),
            6 => Some(Opcode::Oack),
            _ => None,
        }
    }

    /// The opcode's number on the wire.
    pub fn to_u16(self) -> u16 {
        match self {
            Opcode::Rrq => 1,
            Opcode::Wrq => 2,
            Opcode::Data => 3,
            Opcode::Ack => 4,
            Opcode::Error => 5,
            Opcode::Oack => 6,
        }
    }
}

/// The error codes of RFC 1350 and RFC 2347.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 0: not defined, see the message.
    NotDefined,
    /// 1: file not found.
    FileNotFound,
    /// 2: access violation.
    AccessViolation,
    /// 3: disk full or allocation exceeded.
    DiskFull,
    /// 4: illegal TFTP operation.
    IllegalOperation,
    /// 5: unknown transfer ID.
    UnknownTransferId,
    /// 6: file already exists.
    FileExists,
    /// 7: no such user.
    NoSuchUser,
    /// 8: the client refuses the options (RFC 2347); firmware also sends it to end a
    /// transfer it only started to learn the size (`tsize`).
    OptionsRefused,
    /// Any other code.
    Other(u16),
}

impl ErrorCode {
    /// The code for a number.
    pub fn from_u16(value: u16) -> ErrorCode {
        match value {
            0 => ErrorCode::NotDefined,
            1 => ErrorCode::FileNotFound,
            2 => ErrorCode::AccessViolation,
            3 => ErrorCode::DiskFull,
            4 => ErrorCode::IllegalOperation,
            5 => ErrorCode::UnknownTransferId,
            6 => ErrorCode::FileExists,
            7 => ErrorCode::NoSuchUser,
            8 => ErrorCode::OptionsRefused,
            other => ErrorCode::Other(other),
        }
    }

    /// The code's number on the wire.
    pub fn to_u16(self) -> u16 {
        match self {
            ErrorCode::NotDefined => 0,
            ErrorCode::FileNotFound => 1,
            ErrorCode::AccessViolation => 2,
            ErrorCode::DiskFull => 3,
            ErrorCode::IllegalOperation => 4,
            ErrorCode::UnknownTransferId => 5,
            ErrorCode::FileExists => 6,
            ErrorCode::NoSuchUser => 7,
            ErrorCode::OptionsRefused => 8,
            ErrorCode::Other(other) => other,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            ErrorCode::NotDefined => "not defined",
            ErrorCode::FileNotFound => "file not found",
            ErrorCode::AccessViolation => "access violation",
            ErrorCode::DiskFull => "disk full",
            ErrorCode::IllegalOperation => "illegal TFTP operation",
            ErrorCode::UnknownTransferId => "unknown transfer ID",
            ErrorCode::FileExists => "file already exists",
            ErrorCode::NoSuchUser => "no such user",
            ErrorCode::OptionsRefused => "options refused",
            ErrorCode::Other(_) => "unknown error code",
        };
        write!(f, "{} ({text})", self.to_u16())
    }
}

/// Why bytes are not a valid TFTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Shorter than the opcode's fixed fields.
    #[error("packet too short")]
    Truncated,
    /// The opcode is not one of RFC 1350/2347.
    #[error("unknown opcode {0}")]
    UnknownOpcode(u16),
    /// A string has no terminating NUL byte.
    #[error("string without terminating NUL")]
    Unterminated,
    /// A string is not UTF-8.
    #[error("string is not UTF-8")]
    NotUtf8,
    /// The packet, or one of its strings, is longer than this server accepts.
    #[error("packet or field too long")]
    TooLong,
    /// More than [`MAX_OPTIONS`] options.
    #[error("more than {MAX_OPTIONS} options")]
    TooManyOptions,
}

/// A byte view of a TFTP packet.
///
/// Layout: a 2-byte opcode, then for DATA and ACK a 2-byte block number, for ERROR a
/// 2-byte error code, then the rest ([`Packet::data`] for DATA, the message for
/// ERROR, NUL-terminated strings for RRQ/WRQ/OACK).
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it. Accessors still never panic: bytes past the
    /// end of a short buffer read as zero.
    pub fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer after [`Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Packet<T>, WireError> {
        let packet = Packet::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the opcode is known and that the buffer holds its fixed fields.
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        if len < 2 {
            return Err(WireError::Truncated);
        }
        match Opcode::from_u16(self.opcode()) {
            None => Err(WireError::UnknownOpcode(self.opcode())),
            Some(Opcode::Data | Opcode::Ack | Opcode::Error) if len < 4 => {
                Err(WireError::Truncated)
            }
            Some(_) => Ok(()),
        }
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn u16_at(&self, at: usize) -> u16 {
        let bytes = self.buffer.as_ref();
        let hi = bytes.get(at).copied().unwrap_or(0);
        let lo = bytes.get(at + 1).copied().unwrap_or(0);
        u16::from_be_bytes([hi, lo])
    }

    /// The opcode number (see [`Opcode::from_u16`]).
    pub fn opcode(&self) -> u16 {
        self.u16_at(0)
    }

    /// The block number of a DATA or ACK packet.
    pub fn block(&self) -> u16 {
        self.u16_at(2)
    }

    /// The error code of an ERROR packet.
    pub fn error_code(&self) -> u16 {
        self.u16_at(2)
    }

    /// Everything after the opcode: the strings of an RRQ, WRQ or OACK.
    pub fn strings(&self) -> &[u8] {
        self.buffer.as_ref().get(2..).unwrap_or(&[])
    }

    /// Everything after the opcode and the block number or error code: the payload of
    /// a DATA packet, the message of an ERROR packet.
    pub fn data(&self) -> &[u8] {
        self.buffer.as_ref().get(4..).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn set_u16_at(&mut self, at: usize, value: u16) {
        let [hi, lo] = value.to_be_bytes();
        let bytes = self.buffer.as_mut();
        if let Some(b) = bytes.get_mut(at) {
            *b = hi;
        }
        if let Some(b) = bytes.get_mut(at + 1) {
            *b = lo;
        }
    }

    /// Sets the opcode (ignored if the buffer is shorter than 2 bytes).
    pub fn set_opcode(&mut self, opcode: Opcode) {
        self.set_u16_at(0, opcode.to_u16());
    }

    /// Sets the block number (ignored if the buffer is shorter than 4 bytes).
    pub fn set_block(&mut self, block: u16) {
        self.set_u16_at(2, block);
    }

    /// The payload of a DATA packet, to fill in place.
    pub fn data_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut().get_mut(4..).unwrap_or(&mut [])
    }
}

/// One option of a request or OACK (RFC 2347): a name and a value, both text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionRepr<'a> {
    /// The option's name as sent (compare it case-insensitively).
    pub name: &'a str,
    /// The option's value as sent.
    pub value: &'a str,
}

/// The fields of a read or write request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRepr<'a> {
    /// The file name as sent (not yet checked as a path).
    pub filename: &'a str,
    /// The transfer mode as sent (`octet`, `netascii`, ...).
    pub mode: &'a str,
    /// The options, in the order sent.
    pub options: Vec<OptionRepr<'a>>,
}

/// The validated meaning of a TFTP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repr<'a> {
    /// A read request.
    Rrq(RequestRepr<'a>),
    /// A write request.
    Wrq(RequestRepr<'a>),
    /// A block of data.
    Data {
        /// Block number (wraps past 65535 to 0).
        block: u16,
        /// The payload.
        data: &'a [u8],
    },
    /// An acknowledgement.
    Ack {
        /// Block number acknowledged (0 acknowledges an OACK).
        block: u16,
    },
    /// An error: the transfer ends.
    Error {
        /// The error code.
        code: ErrorCode,
        /// The message (cut to [`MAX_ERROR_MESSAGE_LEN`] and to its valid UTF-8 prefix).
        message: &'a str,
    },
    /// An option acknowledgement.
    Oack {
        /// The options the server accepted, with their final values.
        options: Vec<OptionRepr<'a>>,
    },
}

/// Takes the next NUL-terminated string off `rest`.
fn take_str<'a>(rest: &mut &'a [u8], max: usize) -> Result<&'a str, WireError> {
    let bytes: &'a [u8] = rest;
    let Some(nul) = bytes.iter().position(|&b| b == 0) else {
        return Err(WireError::Unterminated);
    };
    let (text, tail) = bytes.split_at(nul);
    *rest = tail.get(1..).unwrap_or(&[]);
    if text.len() > max {
        return Err(WireError::TooLong);
    }
    std::str::from_utf8(text).map_err(|_| WireError::NotUtf8)
}

/// Parses name/value pairs until the bytes end or an empty name (trailing NUL padding,
/// which some clients send) is met.
fn take_options<'a>(mut rest: &'a [u8]) -> Result<Vec<OptionRepr<'a>>, WireError> {
    let mut options = Vec::new();
    while rest.first().is_some_and(|&b| b != 0) {
        if options.len() == MAX_OPTIONS {
            return Err(WireError::TooManyOptions);
        }
        let name = take_str(&mut rest, MAX_OPTION_LEN)?;
        let value = take_str(&mut rest, MAX_OPTION_LEN)?;
        options.push(OptionRepr { name, value });
    }
    Ok(options)
}

fn take_request(bytes: &[u8]) -> Result<RequestRepr<'_>, WireError> {
    if bytes.len() + 2 > MAX_REQUEST_LEN {
        return Err(WireError::TooLong);
    }
    let mut rest = bytes;
    let filename = take_str(&mut rest, MAX_FILENAME_LEN)?;
    let mode = take_str(&mut rest, MAX_MODE_LEN)?;
    let options = take_options(rest)?;
    Ok(RequestRepr {
        filename,
        mode,
        options,
    })
}

fn utf8_prefix(bytes: &[u8]) -> &str {
    match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => bytes
            .get(..e.valid_up_to())
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or(""),
    }
}

impl<'a> Repr<'a> {
    /// Parses a checked packet.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&'a T>) -> Result<Repr<'a>, WireError> {
        let buffer: &'a T = packet.buffer;
        Repr::parse_bytes(buffer.as_ref())
    }

    /// Parses raw bytes (checks them as [`Packet::new_checked`] does first).
    pub fn parse_bytes(bytes: &'a [u8]) -> Result<Repr<'a>, WireError> {
        let packet = Packet::new_checked(bytes)?;
        let opcode =
            Opcode::from_u16(packet.opcode()).ok_or(WireError::UnknownOpcode(packet.opcode()))?;
        let strings: &'a [u8] = bytes.get(2..).unwrap_or(&[]);
        let tail: &'a [u8] = bytes.get(4..).unwrap_or(&[]);
        Ok(match opcode {
            Opcode::Rrq => Repr::Rrq(take_request(strings)?),
            Opcode::Wrq => Repr::Wrq(take_request(strings)?),
            Opcode::Data => Repr::Data {
                block: packet.block(),
                data: tail,
            },
            Opcode::Ack => Repr::Ack {
                block: packet.block(),
            },
            Opcode::Error => {
                // The message should end with a NUL; tolerate its absence.
                let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
                let message = tail.get(..end.min(MAX_ERROR_MESSAGE_LEN)).unwrap_or(&[]);
                Repr::Error {
                    code: ErrorCode::from_u16(packet.error_code()),
                    message: utf8_prefix(message),
                }
            }
            Opcode::Oack => Repr::Oack {
                options: take_options(strings)?,
            },
        })
    }

    /// The packet's opcode.
    pub fn opcode(&self) -> Opcode {
        match self {
            Repr::Rrq(_) => Opcode::Rrq,
            Repr::Wrq(_) => Opcode::Wrq,
            Repr::Data { .. } => Opcode::Data,
            Repr::Ack { .. } => Opcode::Ack,
            Repr::Error { .. } => Opcode::Error,
            Repr::Oack { .. } => Opcode::Oack,
        }
    }

    /// The length of the emitted packet, in bytes.
    pub fn buffer_len(&self) -> usize {
        let strings = |options: &[OptionRepr<'_>]| -> usize {
            options
                .iter()
                .map(|o| o.name.len() + o.value.len() + 2)
                .sum()
        };
        match self {
            Repr::Rrq(r) | Repr::Wrq(r) => {
                2 + r.filename.len() + 1 + r.mode.len() + 1 + strings(&r.options)
            }
            Repr::Data { data, .. } => 4 + data.len(),
            Repr::Ack { .. } => 4,
            Repr::Error { message, .. } => 4 + message.len() + 1,
            Repr::Oack { options } => 2 + strings(options),
        }
    }

    /// Writes the packet into `out`, replacing what it held.
    pub fn emit(&self, out: &mut Vec<u8>) {
        fn put_str(out: &mut Vec<u8>, text: &str) {
            out.extend_from_slice(text.as_bytes());
            out.push(0);
        }
        fn put_options(out: &mut Vec<u8>, options: &[OptionRepr<'_>]) {
            for option in options {
                put_str(out, option.name);
                put_str(out, option.value);
            }
        }
        out.clear();
        out.reserve(self.buffer_len());
        out.extend_from_slice(&self.opcode().to_u16().to_be_bytes());
        match self {
            Repr::Rrq(r) | Repr::Wrq(r) => {
                put_str(out, r.filename);
                put_str(out, r.mode);
                put_options(out, &r.options);
            }
            Repr::Data { block, data } => {
                out.extend_from_slice(&block.to_be_bytes());
                out.extend_from_slice(data);
            }
            Repr::Ack { block } => out.extend_from_slice(&block.to_be_bytes()),
            Repr::Error { code, message } => {
                out.extend_from_slice(&code.to_u16().to_be_bytes());
                put_str(out, message);
            }
            Repr::Oack { options } => put_options(out, options),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testutil::Rng;

    fn roundtrip(repr: &Repr<'_>) {
        let mut out = Vec::new();
        repr.emit(&mut out);
        assert_eq!(out.len(), repr.buffer_len());
        let back = Repr::parse_bytes(&out).unwrap();
        assert_eq!(&back, repr);
    }

    #[test]
    fn every_kind_round_trips() {
        roundtrip(&Repr::Rrq(RequestRepr {
            filename: "pxelinux.cfg/01-52-54-00-99-00-01",
            mode: "octet",
            options: vec![
                OptionRepr {
                    name: "tsize",
                    value: "0",
                },
                OptionRepr {
                    name: "blksize",
                    value: "1468",
                },
            ],
        }));
        roundtrip(&Repr::Wrq(RequestRepr {
            filename: "x",
            mode: "netascii",
            options: vec![],
        }));
        roundtrip(&Repr::Data {
            block: 65535,
            data: b"hello",
        });
        roundtrip(&Repr::Data {
            block: 0,
            data: b"",
        });
        roundtrip(&Repr::Ack { block: 1 });
        roundtrip(&Repr::Error {
            code: ErrorCode::OptionsRefused,
            message: "User aborted the transfer",
        });
        roundtrip(&Repr::Oack {
            options: vec![OptionRepr {
                name: "windowsize",
                value: "16",
            }],
        });
    }

    #[test]
    fn known_bytes() {
        let mut out = Vec::new();
        Repr::Error {
            code: ErrorCode::FileNotFound,
            message: "nope",
        }
        .emit(&mut out);
        assert_eq!(out, b"\x00\x05\x00\x01nope\x00");
        Repr::Data {
            block: 0x0102,
            data: b"ab",
        }
        .emit(&mut out);
        assert_eq!(out, b"\x00\x03\x01\x02ab");
    }

    #[test]
    fn rejects_malformed_requests() {
        fn parse(b: &[u8]) -> Result<Repr<'_>, WireError> {
            Repr::parse_bytes(b)
        }
        assert_eq!(parse(b""), Err(WireError::Truncated));
        assert_eq!(parse(b"\x00"), Err(WireError::Truncated));
        assert_eq!(parse(b"\x00\x04\x00"), Err(WireError::Truncated));
        assert_eq!(parse(b"\x00\x09"), Err(WireError::UnknownOpcode(9)));
        assert_eq!(parse(b"\x00\x01file"), Err(WireError::Unterminated));
        assert_eq!(
            parse(b"\x00\x01file\x00octet"),
            Err(WireError::Unterminated)
        );
        assert_eq!(
            parse(b"\x00\x01f\xffle\x00octet\x00"),
            Err(WireError::NotUtf8)
        );
        assert_eq!(
            parse(b"\x00\x01file\x00octet\x00tsize\x00"),
            Err(WireError::Unterminated),
            "an option without a value"
        );
        let long_name = [b"\x00\x01".as_slice(), &[b'a'; 256], b"\x00octet\x00"].concat();
        assert_eq!(parse(&long_name), Err(WireError::TooLong));
        let mut many = b"\x00\x01f\x00octet\x00".to_vec();
        for i in 0..17 {
            many.extend_from_slice(format!("o{i}\x001\x00").as_bytes());
        }
        assert_eq!(parse(&many), Err(WireError::TooManyOptions));
        let mut huge = b"\x00\x01f\x00octet\x00".to_vec();
        huge.resize(600, b'a');
        assert_eq!(parse(&huge), Err(WireError::TooLong));
    }

    #[test]
    fn tolerates_what_real_peers_send() {
        // Trailing NUL padding after the options.
        let Repr::Rrq(r) =
            Repr::parse_bytes(b"\x00\x01f\x00octet\x00tsize\x000\x00\x00\x00").unwrap()
        else {
            panic!("not an RRQ")
        };
        assert_eq!(
            r.options,
            vec![OptionRepr {
                name: "tsize",
                value: "0"
            }]
        );
        // An ERROR without its final NUL, and one with a broken UTF-8 tail.
        assert_eq!(
            Repr::parse_bytes(b"\x00\x05\x00\x08abort").unwrap(),
            Repr::Error {
                code: ErrorCode::OptionsRefused,
                message: "abort"
            }
        );
        assert_eq!(
            Repr::parse_bytes(b"\x00\x05\x00\x00ok\xff\x00").unwrap(),
            Repr::Error {
                code: ErrorCode::NotDefined,
                message: "ok"
            }
        );
    }

    #[test]
    fn accessors_never_panic_on_short_buffers() {
        for len in 0..6 {
            let bytes = vec![0xffu8; len];
            let p = Packet::new_unchecked(&bytes[..]);
            let _ = (p.opcode(), p.block(), p.error_code(), p.strings(), p.data());
            let mut buf = vec![0u8; len];
            let mut p = Packet::new_unchecked(&mut buf[..]);
            p.set_opcode(Opcode::Data);
            p.set_block(7);
            let _ = p.data_mut();
        }
    }

    /// Random bytes, and random mutations of valid packets, never panic the parser;
    /// whatever parses re-emits to something that parses the same.
    #[test]
    fn fuzz_parser_never_panics() {
        let seeds: [&[u8]; 5] = [
            b"\x00\x01pxelinux.0\x00octet\x00tsize\x000\x00blksize\x001468\x00",
            b"\x00\x04\x12\x34",
            b"\x00\x05\x00\x08User aborted\x00",
            b"\x00\x06tsize\x001234\x00windowsize\x0016\x00",
            b"\x00\x03\x00\x01data",
        ];
        let mut rng = Rng::new(0x5eed_7f7a);
        let mut parsed = 0usize;
        for i in 0..300_000u32 {
            let bytes: Vec<u8> = if i % 2 == 0 {
                let len = rng.below(600) as usize;
                let mut b: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                // Bias toward plausible opcodes so every branch is reached.
                if len >= 2 && rng.below(4) != 0 {
                    b[0] = 0;
                    b[1] = rng.below(8) as u8;
                }
                // Sprinkle NULs so strings terminate sometimes.
                for _ in 0..rng.below(8) {
                    if len > 0 {
                        let at = rng.below(len as u64) as usize;
                        b[at] = 0;
                    }
                }
                b
            } else {
                let mut b = seeds[rng.below(seeds.len() as u64) as usize].to_vec();
                for _ in 0..=rng.below(4) {
                    match rng.below(3) {
                        0 if !b.is_empty() => {
                            let at = rng.below(b.len() as u64) as usize;
                            b[at] = rng.next() as u8;
                        }
                        1 => b.truncate(rng.below(b.len() as u64 + 1) as usize),
                        _ => b.push(rng.next() as u8),
                    }
                }
                b
            };
            let packet = Packet::new_unchecked(&bytes[..]);
            let _ = (
                packet.opcode(),
                packet.block(),
                packet.data(),
                packet.strings(),
            );
            if let Ok(repr) = Repr::parse_bytes(&bytes) {
                parsed += 1;
                let mut out = Vec::new();
                repr.emit(&mut out);
                assert_eq!(
                    Repr::parse_bytes(&out).as_ref(),
                    Ok(&repr),
                    "input {bytes:?}"
                );
            }
        }
        assert!(
            parsed > 10_000,
            "too few inputs parsed ({parsed}): the fuzzer is not reaching the parser"
        );
    }
}
