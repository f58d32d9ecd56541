//! Packet encoding and decoding: RMCP, the IPMI v1.5 and v2.0 (RMCP+) session
//! wrappers, IPMI LAN messages, and the RMCP+ session-setup payloads (Open Session,
//! RAKP 1-4). IPMI v2.0 spec sections 13.6-13.8, 13.17-13.23.
//!
//! Everything here only shuffles bytes; keys and checks live in `crypto`. Every
//! decoder takes hostile input: it checks each length before it reads and returns
//! [`WireError`] instead of panicking.

/// RMCP header: version 1.0, reserved, sequence 0xFF (no RMCP ACK), class IPMI.
pub(crate) const RMCP_HEADER: [u8; 4] = [0x06, 0x00, 0xFF, 0x07];
/// IPMI v1.5 session header authentication type "none".
pub(crate) const AUTH_TYPE_NONE: u8 = 0x00;
/// Authentication type field value that marks an IPMI v2.0 (RMCP+) session header.
pub(crate) const AUTH_TYPE_RMCP_PLUS: u8 = 0x06;
/// "Next header" byte of the session trailer: always 07h.
const NEXT_HEADER: u8 = 0x07;
/// Our requester (software ID 40h, as a "remote console": 81h).
pub(crate) const REMOTE_CONSOLE_ADDR: u8 = 0x81;
/// The BMC's IPMB slave address.
pub(crate) const BMC_ADDR: u8 = 0x20;

/// Why bytes could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct WireError(pub(crate) &'static str);

type WireResult<T> = std::result::Result<T, WireError>;

/// A bounds-checked reader over a byte slice.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    fn take(&mut self, n: usize, what: &'static str) -> WireResult<&'a [u8]> {
        if self.buf.len() < n {
            return Err(WireError(what));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn u8(&mut self, what: &'static str) -> WireResult<u8> {
        Ok(self.take(1, what)?[0])
    }

    fn u16le(&mut self, what: &'static str) -> WireResult<u16> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32le(&mut self, what: &'static str) -> WireResult<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn array16(&mut self, what: &'static str) -> WireResult<[u8; 16]> {
        let b = self.take(16, what)?;
        let mut out = [0u8; 16];
        out.copy_from_slice(b);
        Ok(out)
    }

    fn rest(self) -> &'a [u8] {
        self.buf
    }
}

/// RMCP+ payload types (spec table 13-16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PayloadType {
    /// An IPMI message.
    Ipmi,
    /// RMCP+ Open Session Request.
    OpenSessionRequest,
    /// RMCP+ Open Session Response.
    OpenSessionResponse,
    /// RAKP message 1.
    Rakp1,
    /// RAKP message 2.
    Rakp2,
    /// RAKP message 3.
    Rakp3,
    /// RAKP message 4.
    Rakp4,
    /// Anything else (SOL, OEM, ...), which this driver ignores.
    Other(u8),
}

impl PayloadType {
    pub(crate) fn code(self) -> u8 {
        match self {
            PayloadType::Ipmi => 0x00,
            PayloadType::OpenSessionRequest => 0x10,
            PayloadType::OpenSessionResponse => 0x11,
            PayloadType::Rakp1 => 0x12,
            PayloadType::Rakp2 => 0x13,
            PayloadType::Rakp3 => 0x14,
            PayloadType::Rakp4 => 0x15,
            PayloadType::Other(c) => c & 0x3F,
        }
    }

    pub(crate) fn from_code(code: u8) -> Self {
        match code & 0x3F {
            0x00 => PayloadType::Ipmi,
            0x10 => PayloadType::OpenSessionRequest,
            0x11 => PayloadType::OpenSessionResponse,
            0x12 => PayloadType::Rakp1,
            0x13 => PayloadType::Rakp2,
            0x14 => PayloadType::Rakp3,
            0x15 => PayloadType::Rakp4,
            c => PayloadType::Other(c),
        }
    }
}

/// The fields of an IPMI v2.0 (RMCP+) session header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct V2Header {
    /// What the payload is.
    pub(crate) payload_type: PayloadType,
    /// The payload is encrypted.
    pub(crate) encrypted: bool,
    /// The packet carries a session trailer and an AuthCode.
    pub(crate) authenticated: bool,
    /// The receiver's session ID (0 outside a session).
    pub(crate) session_id: u32,
    /// The session sequence number (0 outside a session).
    pub(crate) sequence: u32,
}

/// Encodes an RMCP + IPMI v2.0 packet up to, not including, the AuthCode.
///
/// When `header.authenticated`, the integrity pad, pad length and next header are
/// appended; the caller then appends the AuthCode computed over `packet[4..]`
/// (see [`integrity_region`]).
pub(crate) fn encode_v2(header: &V2Header, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(RMCP_HEADER.len() + 12 + payload.len() + 24);
    out.extend_from_slice(&RMCP_HEADER);
    out.push(AUTH_TYPE_RMCP_PLUS);
    let mut pt = header.payload_type.code();
    if header.encrypted {
        pt |= 0x80;
    }
    if header.authenticated {
        pt |= 0x40;
    }
    out.push(pt);
    out.extend_from_slice(&header.session_id.to_le_bytes());
    out.extend_from_slice(&header.sequence.to_le_bytes());
    // Payloads are at most a few hundred bytes: the length always fits.
    let len = u16::try_from(payload.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(payload);
    if header.authenticated {
        // Pad so that everything from the AuthType byte through Next Header is a
        // multiple of 4 bytes (spec 13.28.4).
        let covered = 12 + payload.len() + 2;
        let pad = (4 - covered % 4) % 4;
        out.extend(std::iter::repeat_n(0xFF, pad));
        out.push(pad as u8);
        out.push(NEXT_HEADER);
    }
    out
}

/// The part of an encoded packet that the AuthCode covers: from the session
/// header's AuthType byte through the Next Header byte.
pub(crate) fn integrity_region(packet_without_auth_code: &[u8]) -> &[u8] {
    packet_without_auth_code
        .get(RMCP_HEADER.len()..)
        .unwrap_or_default()
}

/// A decoded IPMI v2.0 packet, borrowing from the received bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct V2Packet<'a> {
    /// The session header.
    pub(crate) header: V2Header,
    /// The payload as sent (still encrypted if `header.encrypted`).
    pub(crate) payload: &'a [u8],
    /// The bytes the AuthCode covers (empty when not authenticated).
    pub(crate) signed: &'a [u8],
    /// The AuthCode (empty when not authenticated).
    pub(crate) auth_code: &'a [u8],
}

/// A decoded IPMI v1.5 packet (only authentication type "none" is understood; any
/// other has its 16-byte AuthCode skipped, unverified).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct V15Packet<'a> {
    /// Authentication type field.
    pub(crate) auth_type: u8,
    /// Session sequence number.
    pub(crate) sequence: u32,
    /// Session ID.
    pub(crate) session_id: u32,
    /// The IPMI message.
    pub(crate) message: &'a [u8],
}

/// Any packet this driver may receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Packet<'a> {
    /// IPMI v1.5 session wrapper.
    V15(V15Packet<'a>),
    /// IPMI v2.0 (RMCP+) session wrapper.
    V2(V2Packet<'a>),
}

/// Decodes one received datagram. `auth_code_len` is the AuthCode length of the
/// session's integrity algorithm, used when a v2.0 packet says it is
/// authenticated.
pub(crate) fn decode_packet(bytes: &[u8], auth_code_len: usize) -> WireResult<Packet<'_>> {
    let mut r = Reader::new(bytes);
    let rmcp = r.take(4, "shorter than an RMCP header")?;
    if rmcp[0] != RMCP_HEADER[0] {
        return Err(WireError("not RMCP version 1.0"));
    }
    if rmcp[3] & 0x1F != 0x07 {
        return Err(WireError("not an RMCP IPMI-class message"));
    }
    let auth_type = r.u8("no session header")?;
    if auth_type & 0x0F == AUTH_TYPE_RMCP_PLUS {
        decode_v2(bytes, auth_code_len).map(Packet::V2)
    } else {
        let sequence = r.u32le("truncated v1.5 session header")?;
        let session_id = r.u32le("truncated v1.5 session header")?;
        if auth_type != AUTH_TYPE_NONE {
            r.take(16, "truncated v1.5 AuthCode")?;
        }
        let len = usize::from(r.u8("truncated v1.5 session header")?);
        let message = r.take(len, "v1.5 message shorter than its length")?;
        Ok(Packet::V15(V15Packet {
            auth_type,
            sequence,
            session_id,
            message,
        }))
    }
}

fn decode_v2(bytes: &[u8], auth_code_len: usize) -> WireResult<V2Packet<'_>> {
    let session = bytes.get(4..).ok_or(WireError("no session header"))?;
    let mut r = Reader::new(session);
    let _auth_type = r.u8("no session header")?;
    let pt = r.u8("truncated v2.0 session header")?;
    let payload_type = PayloadType::from_code(pt);
    if pt & 0x3F == 0x02 {
        // OEM explicit: OEM IANA (4) and OEM payload ID (2) follow. Skipped.
        r.take(6, "truncated OEM payload header")?;
    }
    let session_id = r.u32le("truncated v2.0 session header")?;
    let sequence = r.u32le("truncated v2.0 session header")?;
    let len = usize::from(r.u16le("truncated v2.0 session header")?);
    let payload = r.take(len, "payload shorter than its length")?;
    let header = V2Header {
        payload_type,
        encrypted: pt & 0x80 != 0,
        authenticated: pt & 0x40 != 0,
        session_id,
        sequence,
    };
    if !header.authenticated {
        return Ok(V2Packet {
            header,
            payload,
            signed: &[],
            auth_code: &[],
        });
    }
    let rest = r.rest();
    if rest.len() < auth_code_len + 2 {
        return Err(WireError("session trailer too short"));
    }
    let trailer_end = rest.len() - auth_code_len;
    let auth_code = rest.get(trailer_end..).ok_or(WireError("no AuthCode"))?;
    let trailer = rest.get(..trailer_end).ok_or(WireError("no trailer"))?;
    // trailer = integrity pad, pad length, next header
    let (&next, before) = trailer.split_last().ok_or(WireError("no next header"))?;
    let (&pad_len, pad) = before.split_last().ok_or(WireError("no pad length"))?;
    if next != NEXT_HEADER {
        return Err(WireError("next header is not 07h"));
    }
    if usize::from(pad_len) != pad.len() || pad.len() > 3 {
        return Err(WireError("integrity pad length mismatch"));
    }
    // The signed region: from the AuthType byte (offset 4) through Next Header.
    let signed_len = session.len() - auth_code_len;
    let signed = session
        .get(..signed_len)
        .ok_or(WireError("no signed region"))?;
    Ok(V2Packet {
        header,
        payload,
        signed,
        auth_code,
    })
}

/// Encodes an RMCP + IPMI v1.5 packet with authentication type "none" (used only
/// for Get Channel Authentication Capabilities, before any session).
pub(crate) fn encode_v15_unauthenticated(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(RMCP_HEADER.len() + 10 + message.len());
    out.extend_from_slice(&RMCP_HEADER);
    out.push(AUTH_TYPE_NONE);
    out.extend_from_slice(&0u32.to_le_bytes()); // sequence
    out.extend_from_slice(&0u32.to_le_bytes()); // session ID
    out.push(u8::try_from(message.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(message);
    out
}

/// Two's-complement checksum: the byte that makes `bytes` plus it sum to 0.
pub(crate) fn checksum(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |acc, b| acc.wrapping_add(*b))
        .wrapping_neg()
}

/// An IPMI request to the BMC (LUN 0, from the remote console's software ID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request<'a> {
    /// Network function (even: a request).
    pub(crate) netfn: u8,
    /// Command number within the network function.
    pub(crate) cmd: u8,
    /// Requester's sequence number (6 bits).
    pub(crate) seq: u8,
    /// Request data.
    pub(crate) data: &'a [u8],
}

/// Encodes an IPMI LAN request message (spec 13.8).
pub(crate) fn encode_request(req: &Request<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(7 + req.data.len());
    out.push(BMC_ADDR);
    out.push(req.netfn << 2);
    out.push(checksum(&out[0..2]));
    out.push(REMOTE_CONSOLE_ADDR);
    out.push((req.seq & 0x3F) << 2);
    out.push(req.cmd);
    out.extend_from_slice(req.data);
    let sum = checksum(out.get(3..).unwrap_or_default());
    out.push(sum);
    out
}

/// A decoded IPMI response message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response<'a> {
    /// Network function (odd: a response).
    pub(crate) netfn: u8,
    /// Command number within the network function, echoed from the request.
    pub(crate) cmd: u8,
    /// The requester's sequence number, echoed.
    pub(crate) seq: u8,
    /// Completion code.
    pub(crate) completion: u8,
    /// Response data after the completion code.
    pub(crate) data: &'a [u8],
}

/// Decodes an IPMI LAN response message, checking both checksums.
pub(crate) fn decode_response(msg: &[u8]) -> WireResult<Response<'_>> {
    if msg.len() < 8 {
        return Err(WireError("IPMI response too short"));
    }
    let (header, body) = msg.split_at(3);
    if checksum(&header[..2]) != header[2] {
        return Err(WireError("bad IPMI header checksum"));
    }
    let (&sum, covered) = body.split_last().ok_or(WireError("no checksum"))?;
    if checksum(covered) != sum {
        return Err(WireError("bad IPMI data checksum"));
    }
    let mut r = Reader::new(covered);
    let _rs_addr = r.u8("truncated IPMI response")?;
    let seq_lun = r.u8("truncated IPMI response")?;
    let cmd = r.u8("truncated IPMI response")?;
    let completion = r.u8("no completion code")?;
    Ok(Response {
        netfn: header[1] >> 2,
        cmd,
        seq: seq_lun >> 2,
        completion,
        data: r.rest(),
    })
}

/// Decodes an IPMI LAN request message (what a BMC receives; used by tests and the
/// fuzzing entry point).
pub(crate) fn decode_request(msg: &[u8]) -> WireResult<Request<'_>> {
    if msg.len() < 7 {
        return Err(WireError("IPMI request too short"));
    }
    let (header, body) = msg.split_at(3);
    if checksum(&header[..2]) != header[2] {
        return Err(WireError("bad IPMI header checksum"));
    }
    let (&sum, covered) = body.split_last().ok_or(WireError("no checksum"))?;
    if checksum(covered) != sum {
        return Err(WireError("bad IPMI data checksum"));
    }
    let mut r = Reader::new(covered);
    let _rq_addr = r.u8("truncated IPMI request")?;
    let seq_lun = r.u8("truncated IPMI request")?;
    let cmd = r.u8("truncated IPMI request")?;
    Ok(Request {
        netfn: header[1] >> 2,
        cmd,
        seq: seq_lun >> 2,
        data: r.rest(),
    })
}

/// The algorithms proposed in (or chosen by) an Open Session exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AlgorithmIds {
    /// Authentication algorithm (table 13-17).
    pub(crate) auth: u8,
    /// Integrity algorithm (table 13-18).
    pub(crate) integrity: u8,
    /// Confidentiality algorithm (table 13-19).
    pub(crate) confidentiality: u8,
}

/// RMCP+ Open Session Request (spec 13.17).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OpenSessionRequest {
    /// Message tag, echoed in the response.
    pub(crate) tag: u8,
    /// Requested maximum privilege level (0 = highest the proposal allows).
    pub(crate) max_privilege: u8,
    /// Our session ID for this session.
    pub(crate) console_session_id: u32,
    /// Proposed algorithms.
    pub(crate) algorithms: AlgorithmIds,
}

fn algorithm_record(kind: u8, algorithm: u8) -> [u8; 8] {
    [kind, 0, 0, 0x08, algorithm & 0x3F, 0, 0, 0]
}

pub(crate) fn encode_open_session_request(req: &OpenSessionRequest) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    out.push(req.tag);
    out.push(req.max_privilege & 0x0F);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&req.console_session_id.to_le_bytes());
    out.extend_from_slice(&algorithm_record(0x00, req.algorithms.auth));
    out.extend_from_slice(&algorithm_record(0x01, req.algorithms.integrity));
    out.extend_from_slice(&algorithm_record(0x02, req.algorithms.confidentiality));
    out
}

/// Decodes an Open Session Request (what a BMC receives).
pub(crate) fn decode_open_session_request(p: &[u8]) -> WireResult<OpenSessionRequest> {
    let mut r = Reader::new(p);
    let tag = r.u8("truncated Open Session Request")?;
    let max_privilege = r.u8("truncated Open Session Request")? & 0x0F;
    r.take(2, "truncated Open Session Request")?;
    let console_session_id = r.u32le("truncated Open Session Request")?;
    let algorithms = read_algorithms(&mut r)?;
    Ok(OpenSessionRequest {
        tag,
        max_privilege,
        console_session_id,
        algorithms,
    })
}

fn read_algorithm(r: &mut Reader<'_>, kind: u8) -> WireResult<u8> {
    let rec = r.take(8, "truncated algorithm payload")?;
    if rec[0] != kind {
        return Err(WireError("algorithm payloads out of order"));
    }
    Ok(rec[4] & 0x3F)
}

fn read_algorithms(r: &mut Reader<'_>) -> WireResult<AlgorithmIds> {
    Ok(AlgorithmIds {
        auth: read_algorithm(r, 0x00)?,
        integrity: read_algorithm(r, 0x01)?,
        confidentiality: read_algorithm(r, 0x02)?,
    })
}

/// RMCP+ Open Session Response (spec 13.18).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OpenSessionResponse {
    /// Message tag of the request.
    pub(crate) tag: u8,
    /// RMCP+ status code (0 = no errors).
    pub(crate) status: u8,
    /// Maximum privilege level granted.
    pub(crate) max_privilege: u8,
    /// Our session ID, echoed.
    pub(crate) console_session_id: u32,
    /// The BMC's session ID and the chosen algorithms; present when `status` is 0.
    pub(crate) accepted: Option<(u32, AlgorithmIds)>,
}

pub(crate) fn decode_open_session_response(p: &[u8]) -> WireResult<OpenSessionResponse> {
    let mut r = Reader::new(p);
    let tag = r.u8("truncated Open Session Response")?;
    let status = r.u8("truncated Open Session Response")?;
    if status != 0 {
        // Error responses may stop after the status (ipmi_sim's do).
        let max_privilege = r.u8("").unwrap_or(0) & 0x0F;
        let _ = r.u8("");
        let console_session_id = r.u32le("").unwrap_or(0);
        return Ok(OpenSessionResponse {
            tag,
            status,
            max_privilege,
            console_session_id,
            accepted: None,
        });
    }
    let max_privilege = r.u8("truncated Open Session Response")? & 0x0F;
    r.u8("truncated Open Session Response")?;
    let console_session_id = r.u32le("truncated Open Session Response")?;
    let bmc = r.u32le("truncated Open Session Response")?;
    let algorithms = read_algorithms(&mut r)?;
    Ok(OpenSessionResponse {
        tag,
        status,
        max_privilege,
        console_session_id,
        accepted: Some((bmc, algorithms)),
    })
}

/// Encodes an Open Session Response (what a BMC sends; for tests and the fuzz seeds).
pub(crate) fn encode_open_session_response(resp: &OpenSessionResponse) -> Vec<u8> {
    let mut out = vec![resp.tag, resp.status, resp.max_privilege, 0];
    out.extend_from_slice(&resp.console_session_id.to_le_bytes());
    if let Some((bmc, alg)) = resp.accepted {
        out.extend_from_slice(&bmc.to_le_bytes());
        out.extend_from_slice(&algorithm_record(0x00, alg.auth));
        out.extend_from_slice(&algorithm_record(0x01, alg.integrity));
        out.extend_from_slice(&algorithm_record(0x02, alg.confidentiality));
    }
    out
}

/// RAKP message 1 (spec 13.20).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rakp1 {
    /// Message tag.
    pub(crate) tag: u8,
    /// The BMC's session ID.
    pub(crate) bmc_session_id: u32,
    /// Remote console random number, Rm.
    pub(crate) console_random: [u8; 16],
    /// Requested role byte (privilege in bits 3:0, name-only lookup in bit 4).
    pub(crate) role: u8,
    /// User name (at most 16 bytes).
    pub(crate) user: Vec<u8>,
}

pub(crate) fn encode_rakp1(m: &Rakp1) -> Vec<u8> {
    let mut out = Vec::with_capacity(28 + m.user.len());
    out.push(m.tag);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&m.bmc_session_id.to_le_bytes());
    out.extend_from_slice(&m.console_random);
    out.push(m.role);
    out.extend_from_slice(&[0, 0]);
    out.push(u8::try_from(m.user.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(&m.user);
    out
}

pub(crate) fn decode_rakp1(p: &[u8]) -> WireResult<Rakp1> {
    let mut r = Reader::new(p);
    let tag = r.u8("truncated RAKP 1")?;
    r.take(3, "truncated RAKP 1")?;
    let bmc_session_id = r.u32le("truncated RAKP 1")?;
    let console_random = r.array16("truncated RAKP 1")?;
    let role = r.u8("truncated RAKP 1")?;
    r.take(2, "truncated RAKP 1")?;
    let len = usize::from(r.u8("truncated RAKP 1")?);
    if len > 16 {
        return Err(WireError("RAKP 1 user name longer than 16 bytes"));
    }
    let user = r.take(len, "RAKP 1 user name truncated")?.to_vec();
    Ok(Rakp1 {
        tag,
        bmc_session_id,
        console_random,
        role,
        user,
    })
}

/// RAKP message 2 (spec 13.21).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rakp2 {
    /// Message tag of RAKP 1.
    pub(crate) tag: u8,
    /// RMCP+ status code.
    pub(crate) status: u8,
    /// Our session ID, echoed.
    pub(crate) console_session_id: u32,
    /// BMC random number Rc, BMC GUID, key exchange AuthCode; when `status` is 0.
    pub(crate) accepted: Option<Rakp2Accepted>,
}

/// The RAKP 2 fields present when its status is 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rakp2Accepted {
    /// Managed system random number, Rc.
    pub(crate) bmc_random: [u8; 16],
    /// Managed system GUID.
    pub(crate) bmc_guid: [u8; 16],
    /// Key exchange AuthCode (HMAC, full length).
    pub(crate) auth_code: Vec<u8>,
}

pub(crate) fn decode_rakp2(p: &[u8]) -> WireResult<Rakp2> {
    let mut r = Reader::new(p);
    let tag = r.u8("truncated RAKP 2")?;
    let status = r.u8("truncated RAKP 2")?;
    if status != 0 {
        // Error responses may stop after the status.
        let _ = r.take(2, "");
        return Ok(Rakp2 {
            tag,
            status,
            console_session_id: r.u32le("").unwrap_or(0),
            accepted: None,
        });
    }
    r.take(2, "truncated RAKP 2")?;
    let console_session_id = r.u32le("truncated RAKP 2")?;
    let bmc_random = r.array16("truncated RAKP 2")?;
    let bmc_guid = r.array16("truncated RAKP 2")?;
    let auth_code = r.rest().to_vec();
    Ok(Rakp2 {
        tag,
        status,
        console_session_id,
        accepted: Some(Rakp2Accepted {
            bmc_random,
            bmc_guid,
            auth_code,
        }),
    })
}

/// Encodes a RAKP Message 2 (what a BMC sends; for tests and the fuzz seeds).
pub(crate) fn encode_rakp2(m: &Rakp2) -> Vec<u8> {
    let mut out = vec![m.tag, m.status, 0, 0];
    out.extend_from_slice(&m.console_session_id.to_le_bytes());
    if let Some(a) = &m.accepted {
        out.extend_from_slice(&a.bmc_random);
        out.extend_from_slice(&a.bmc_guid);
        out.extend_from_slice(&a.auth_code);
    }
    out
}

/// RAKP message 3 (spec 13.22) and RAKP message 4 (13.23) share a layout: tag,
/// status, reserved, a session ID, then an AuthCode / integrity check value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rakp34 {
    /// Message tag.
    pub(crate) tag: u8,
    /// RMCP+ status code.
    pub(crate) status: u8,
    /// RAKP 3: the BMC's session ID. RAKP 4: ours.
    pub(crate) session_id: u32,
    /// RAKP 3: key exchange AuthCode. RAKP 4: integrity check value.
    pub(crate) code: Vec<u8>,
}

pub(crate) fn encode_rakp34(m: &Rakp34) -> Vec<u8> {
    let mut out = vec![m.tag, m.status, 0, 0];
    out.extend_from_slice(&m.session_id.to_le_bytes());
    out.extend_from_slice(&m.code);
    out
}

pub(crate) fn decode_rakp34(p: &[u8]) -> WireResult<Rakp34> {
    let mut r = Reader::new(p);
    let tag = r.u8("truncated RAKP 3/4")?;
    let status = r.u8("truncated RAKP 3/4")?;
    if status != 0 {
        // Error messages may stop after the status.
        let _ = r.take(2, "");
        return Ok(Rakp34 {
            tag,
            status,
            session_id: r.u32le("").unwrap_or(0),
            code: Vec::new(),
        });
    }
    r.take(2, "truncated RAKP 3/4")?;
    let session_id = r.u32le("truncated RAKP 3/4")?;
    Ok(Rakp34 {
        tag,
        status,
        session_id,
        code: r.rest().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn checksum_sums_to_zero() {
        let bytes = [0x20, 0x18];
        assert_eq!(checksum(&bytes), 0xC8);
        let sum = bytes
            .iter()
            .fold(checksum(&bytes), |a, b| a.wrapping_add(*b));
        assert_eq!(sum, 0);
    }

    #[test]
    fn request_matches_ipmitool_bytes() {
        // Set Session Privilege Level (Administrator), rqSeq 1, as ipmitool sends it
        // (decrypted from a captured session).
        let req = Request {
            netfn: 0x06,
            cmd: 0x3B,
            seq: 1,
            data: &[0x04],
        };
        let bytes = encode_request(&req);
        assert_eq!(bytes, [0x20, 0x18, 0xC8, 0x81, 0x04, 0x3B, 0x04, 0x3C]);
        assert_eq!(decode_request(&bytes).unwrap(), req);
    }

    #[test]
    fn response_round_trip_and_checksums() {
        // A response is a request with the roles swapped; build one by hand.
        let mut msg = vec![REMOTE_CONSOLE_ADDR, 0x07 << 2];
        msg.push(checksum(&msg));
        let mut body = vec![BMC_ADDR, 5 << 2, 0x3B, 0x00, 0x04];
        body.push(checksum(&body));
        msg.extend_from_slice(&body);
        let r = decode_response(&msg).unwrap();
        assert_eq!(
            r,
            Response {
                netfn: 0x07,
                cmd: 0x3B,
                seq: 5,
                completion: 0,
                data: &[0x04]
            }
        );
        for i in 0..msg.len() {
            let mut bad = msg.clone();
            bad[i] ^= 0x01;
            // Flipping the low bit of the netfn/LUN byte changes the LUN and the
            // header checksum; any single-bit flip must be caught.
            assert!(decode_response(&bad).is_err(), "flip at {i} accepted");
        }
    }

    #[test]
    fn v2_round_trip_with_trailer() {
        for len in 0..40 {
            let payload: Vec<u8> = (0..len as u8).collect();
            let h = V2Header {
                payload_type: PayloadType::Ipmi,
                encrypted: true,
                authenticated: true,
                session_id: 0xA0A2_A3A4,
                sequence: 7,
            };
            let mut pkt = encode_v2(&h, &payload);
            assert_eq!(integrity_region(&pkt).len() % 4, 0);
            let signed = integrity_region(&pkt).to_vec();
            pkt.extend_from_slice(&[0xAB; 12]);
            let Packet::V2(d) = decode_packet(&pkt, 12).unwrap() else {
                panic!("not v2")
            };
            assert_eq!(d.header, h);
            assert_eq!(d.payload, &payload[..]);
            assert_eq!(d.signed, &signed[..]);
            assert_eq!(d.auth_code, &[0xAB; 12]);
        }
    }

    #[test]
    fn v2_matches_captured_header() {
        // The first 12 session-header bytes of a captured ipmitool packet.
        let h = V2Header {
            payload_type: PayloadType::Ipmi,
            encrypted: true,
            authenticated: true,
            session_id: 0x0000_0582,
            sequence: 3,
        };
        let pkt = encode_v2(&h, &[0u8; 32]);
        assert_eq!(
            &pkt[..16],
            &[
                6, 0, 0xFF, 7, 0x06, 0xC0, 0x82, 0x05, 0, 0, 3, 0, 0, 0, 0x20, 0
            ]
        );
        assert_eq!(&pkt[pkt.len() - 4..], &[0xFF, 0xFF, 0x02, 0x07]);
    }

    #[test]
    fn v15_round_trip() {
        let msg = encode_request(&Request {
            netfn: 0x06,
            cmd: 0x38,
            seq: 0,
            data: &[0x8E, 0x04],
        });
        let pkt = encode_v15_unauthenticated(&msg);
        let Packet::V15(d) = decode_packet(&pkt, 12).unwrap() else {
            panic!("not v1.5")
        };
        assert_eq!(d.message, &msg[..]);
        assert_eq!(d.session_id, 0);
    }

    #[test]
    fn session_setup_round_trips() {
        let alg = AlgorithmIds {
            auth: 3,
            integrity: 4,
            confidentiality: 1,
        };
        let osr = OpenSessionRequest {
            tag: 9,
            max_privilege: 4,
            console_session_id: 0x1234_5678,
            algorithms: alg,
        };
        let bytes = encode_open_session_request(&osr);
        assert_eq!(bytes.len(), 32);
        assert_eq!(decode_open_session_request(&bytes).unwrap(), osr);

        let resp = OpenSessionResponse {
            tag: 9,
            status: 0,
            max_privilege: 4,
            console_session_id: 0x1234_5678,
            accepted: Some((0x0BAD_F00D, alg)),
        };
        let bytes = encode_open_session_response(&resp);
        assert_eq!(bytes.len(), 36);
        assert_eq!(decode_open_session_response(&bytes).unwrap(), resp);
        let refused = OpenSessionResponse {
            status: 0x11,
            accepted: None,
            ..resp
        };
        assert_eq!(
            decode_open_session_response(&encode_open_session_response(&refused)).unwrap(),
            refused
        );

        let r1 = Rakp1 {
            tag: 1,
            bmc_session_id: 0x582,
            console_random: [7; 16],
            role: 0x14,
            user: b"admin".to_vec(),
        };
        let bytes = encode_rakp1(&r1);
        assert_eq!(bytes.len(), 28 + 5);
        assert_eq!(decode_rakp1(&bytes).unwrap(), r1);

        let r2 = Rakp2 {
            tag: 1,
            status: 0,
            console_session_id: 0xA0A2_A3A4,
            accepted: Some(Rakp2Accepted {
                bmc_random: [1; 16],
                bmc_guid: [2; 16],
                auth_code: vec![3; 20],
            }),
        };
        assert_eq!(decode_rakp2(&encode_rakp2(&r2)).unwrap(), r2);

        let r3 = Rakp34 {
            tag: 2,
            status: 0,
            session_id: 0x582,
            code: vec![9; 32],
        };
        assert_eq!(decode_rakp34(&encode_rakp34(&r3)).unwrap(), r3);
    }

    #[test]
    fn short_error_answers_decode() {
        // ipmi_sim answers an unsupported suite with just tag and status.
        let r = decode_open_session_response(&[0x00, 0x04]).unwrap();
        assert_eq!((r.status, r.accepted), (0x04, None));
        assert_eq!(decode_rakp2(&[7, 0x0D]).unwrap().status, 0x0D);
        assert_eq!(decode_rakp34(&[7, 0x0F, 0, 0]).unwrap().status, 0x0F);
        assert!(decode_open_session_response(&[0x00, 0x00]).is_err());
        assert!(decode_rakp2(&[7, 0x00, 0, 0, 1, 0, 0, 0]).is_err());
    }

    #[test]
    fn decoders_reject_truncation() {
        let pkt = encode_v15_unauthenticated(&[1, 2, 3]);
        for n in 0..pkt.len() {
            assert!(decode_packet(&pkt[..n], 12).is_err(), "prefix {n} accepted");
        }
        let h = V2Header {
            payload_type: PayloadType::Ipmi,
            encrypted: false,
            authenticated: true,
            session_id: 1,
            sequence: 1,
        };
        let mut pkt = encode_v2(&h, &[1, 2, 3, 4, 5]);
        pkt.extend_from_slice(&[0; 16]);
        for n in 0..pkt.len() {
            // A prefix can still parse when the cut lands where a shorter AuthCode
            // would end, but it must never panic; with the right length, only the
            // full packet parses.
            let _ = decode_packet(&pkt[..n], 16);
        }
        assert!(decode_packet(&pkt[..pkt.len() - 1], 16).is_err());
        assert!(decode_packet(&pkt, 16).is_ok());
    }
}
