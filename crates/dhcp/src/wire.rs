//! DHCPv4 packets (RFC 2131/2132): parsed without trusting a byte, emitted exactly.
//!
//! [`Packet::parse`] checks the fixed header and the magic cookie, then reads options
//! as raw TLVs into a map, concatenating an option split over several TLVs (RFC 3396)
//! and stopping at END or the end of the buffer. Typed accessors read the options the
//! server needs and return `None` for a missing or malformed one, so a bad option 93
//! or 97 never costs the whole packet.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

/// The DHCP magic cookie.
pub const COOKIE: [u8; 4] = [99, 130, 83, 99];
/// Size of the fixed BOOTP header.
pub const HEADER: usize = 236;
/// Largest packet accepted or built (Ethernet MTU minus IP and UDP headers).
pub const MAX_PACKET: usize = 1472;

/// BOOTREQUEST (1) or BOOTREPLY (2).
pub const BOOTREQUEST: u8 = 1;
/// BOOTREPLY.
pub const BOOTREPLY: u8 = 2;

/// Option codes used by slipway.
pub mod code {
    #![allow(missing_docs)]
    pub const PAD: u8 = 0;
    pub const SUBNET_MASK: u8 = 1;
    pub const ROUTER: u8 = 3;
    pub const DNS: u8 = 6;
    pub const HOSTNAME: u8 = 12;
    pub const DOMAIN: u8 = 15;
    pub const BROADCAST: u8 = 28;
    pub const NTP: u8 = 42;
    pub const VENDOR_SPECIFIC: u8 = 43;
    pub const REQUESTED_IP: u8 = 50;
    pub const LEASE_TIME: u8 = 51;
    pub const MESSAGE_TYPE: u8 = 53;
    pub const SERVER_ID: u8 = 54;
    pub const PARAMETER_LIST: u8 = 55;
    pub const MAX_MESSAGE_SIZE: u8 = 57;
    pub const RENEWAL: u8 = 58;
    pub const REBINDING: u8 = 59;
    pub const VENDOR_CLASS: u8 = 60;
    pub const CLIENT_ID: u8 = 61;
    pub const TFTP_SERVER: u8 = 66;
    pub const BOOTFILE: u8 = 67;
    pub const USER_CLASS: u8 = 77;
    pub const RAPID_COMMIT: u8 = 80;
    pub const CLIENT_ARCH: u8 = 93;
    pub const CLIENT_NDI: u8 = 94;
    pub const CLIENT_GUID: u8 = 97;
    pub const IPXE: u8 = 175;
    pub const END: u8 = 255;
}

/// DHCP message types (option 53).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum MessageType {
    Discover = 1,
    Offer = 2,
    Request = 3,
    Decline = 4,
    Ack = 5,
    Nak = 6,
    Release = 7,
    Inform = 8,
}

impl MessageType {
    fn from_u8(v: u8) -> Option<Self> {
        use MessageType::*;
        Some(match v {
            1 => Discover,
            2 => Offer,
            3 => Request,
            4 => Decline,
            5 => Ack,
            6 => Nak,
            7 => Release,
            8 => Inform,
            _ => return None,
        })
    }
}

/// Why a packet was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// Shorter than a BOOTP header plus the cookie.
    TooShort(usize),
    /// Longer than [`MAX_PACKET`].
    TooLong(usize),
    /// The magic cookie is missing (plain BOOTP, or garbage).
    NoCookie,
    /// An option runs past the end of the packet.
    Truncated(u8),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::TooShort(n) => write!(f, "packet of {n} bytes is too short for DHCP"),
            WireError::TooLong(n) => write!(f, "packet of {n} bytes is too long"),
            WireError::NoCookie => f.write_str("no DHCP magic cookie"),
            WireError::Truncated(c) => write!(f, "option {c} runs past the end of the packet"),
        }
    }
}

impl std::error::Error for WireError {}

/// A DHCP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// BOOTREQUEST or BOOTREPLY.
    pub op: u8,
    /// Hardware type (1 = Ethernet).
    pub htype: u8,
    /// Hardware address length.
    pub hlen: u8,
    /// Relay hops.
    pub hops: u8,
    /// Transaction id.
    pub xid: u32,
    /// Seconds since the client began.
    pub secs: u16,
    /// Flags (bit 15: broadcast).
    pub flags: u16,
    /// Client address (when it has one).
    pub ciaddr: Ipv4Addr,
    /// "Your" address (offered/assigned).
    pub yiaddr: Ipv4Addr,
    /// Next server (TFTP).
    pub siaddr: Ipv4Addr,
    /// Relay agent address.
    pub giaddr: Ipv4Addr,
    /// Client hardware address (16 bytes, `hlen` used).
    pub chaddr: [u8; 16],
    /// Server host name field (64 bytes).
    pub sname: [u8; 64],
    /// Boot file field (128 bytes).
    pub file: [u8; 128],
    /// Options by code, in code order, split options joined.
    pub options: BTreeMap<u8, Vec<u8>>,
}

fn ip_at(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

impl Packet {
    /// An empty reply to `req` (same xid, flags, giaddr, chaddr).
    pub fn reply_to(req: &Packet) -> Packet {
        Packet {
            op: BOOTREPLY,
            htype: req.htype,
            hlen: req.hlen,
            hops: 0,
            xid: req.xid,
            secs: 0,
            flags: req.flags,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            yiaddr: Ipv4Addr::UNSPECIFIED,
            siaddr: Ipv4Addr::UNSPECIFIED,
            giaddr: req.giaddr,
            chaddr: req.chaddr,
            sname: [0; 64],
            file: [0; 128],
            options: BTreeMap::new(),
        }
    }

    /// Parses a packet; see the module docs.
    pub fn parse(b: &[u8]) -> Result<Packet, WireError> {
        if b.len() < HEADER + 4 {
            return Err(WireError::TooShort(b.len()));
        }
        if b.len() > MAX_PACKET * 4 {
            return Err(WireError::TooLong(b.len()));
        }
        if b[HEADER..HEADER + 4] != COOKIE {
            return Err(WireError::NoCookie);
        }
        let mut chaddr = [0u8; 16];
        chaddr.copy_from_slice(&b[28..44]);
        let mut sname = [0u8; 64];
        sname.copy_from_slice(&b[44..108]);
        let mut file = [0u8; 128];
        file.copy_from_slice(&b[108..236]);
        let mut options: BTreeMap<u8, Vec<u8>> = BTreeMap::new();
        let mut i = HEADER + 4;
        while i < b.len() {
            let c = b[i];
            if c == code::END {
                break;
            }
            if c == code::PAD {
                i += 1;
                continue;
            }
            let Some(&len) = b.get(i + 1) else {
                return Err(WireError::Truncated(c));
            };
            let start = i + 2;
            let end = start + usize::from(len);
            let Some(value) = b.get(start..end) else {
                return Err(WireError::Truncated(c));
            };
            options.entry(c).or_default().extend_from_slice(value);
            i = end;
        }
        Ok(Packet {
            op: b[0],
            htype: b[1],
            hlen: b[2],
            hops: b[3],
            xid: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            secs: u16::from_be_bytes([b[8], b[9]]),
            flags: u16::from_be_bytes([b[10], b[11]]),
            ciaddr: ip_at(b, 12),
            yiaddr: ip_at(b, 16),
            siaddr: ip_at(b, 20),
            giaddr: ip_at(b, 24),
            chaddr,
            sname,
            file,
            options,
        })
    }

    /// Writes the packet: header, cookie, option 53 first, the others in code order
    /// (values over 255 bytes split into several TLVs), END, padded to 300 bytes as
    /// BOOTP clients expect.
    pub fn emit(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(576);
        b.extend_from_slice(&[self.op, self.htype, self.hlen, self.hops]);
        b.extend_from_slice(&self.xid.to_be_bytes());
        b.extend_from_slice(&self.secs.to_be_bytes());
        b.extend_from_slice(&self.flags.to_be_bytes());
        for ip in [self.ciaddr, self.yiaddr, self.siaddr, self.giaddr] {
            b.extend_from_slice(&ip.octets());
        }
        b.extend_from_slice(&self.chaddr);
        b.extend_from_slice(&self.sname);
        b.extend_from_slice(&self.file);
        b.extend_from_slice(&COOKIE);
        let first = self
            .options
            .get(&code::MESSAGE_TYPE)
            .map(|v| (code::MESSAGE_TYPE, v));
        let rest = self
            .options
            .iter()
            .filter(|(c, _)| **c != code::MESSAGE_TYPE)
            .map(|(c, v)| (*c, v));
        for (c, v) in first.into_iter().chain(rest) {
            if v.is_empty() {
                b.extend_from_slice(&[c, 0]);
            }
            for chunk in v.chunks(255) {
                b.push(c);
                b.push(chunk.len() as u8);
                b.extend_from_slice(chunk);
            }
        }
        b.push(code::END);
        if b.len() < 300 {
            b.resize(300, 0);
        }
        b
    }

    /// The message type, if valid.
    pub fn message_type(&self) -> Option<MessageType> {
        match self.options.get(&code::MESSAGE_TYPE).map(Vec::as_slice) {
            Some([t]) => MessageType::from_u8(*t),
            _ => None,
        }
    }

    /// The client's Ethernet address (`None` for other hardware).
    pub fn mac(&self) -> Option<slipway_cluster::MacAddr> {
        if self.htype != 1 || self.hlen != 6 {
            return None;
        }
        let mut m = [0u8; 6];
        m.copy_from_slice(&self.chaddr[..6]);
        Some(slipway_cluster::MacAddr(m))
    }

    /// Whether the client asked for broadcast replies.
    pub fn broadcast(&self) -> bool {
        self.flags & 0x8000 != 0
    }

    fn ip_option(&self, c: u8) -> Option<Ipv4Addr> {
        match self.options.get(&c).map(Vec::as_slice) {
            Some([a, b, c, d]) => Some(Ipv4Addr::new(*a, *b, *c, *d)),
            _ => None,
        }
    }

    /// Option 50.
    pub fn requested_ip(&self) -> Option<Ipv4Addr> {
        self.ip_option(code::REQUESTED_IP)
    }

    /// Option 54.
    pub fn server_id(&self) -> Option<Ipv4Addr> {
        self.ip_option(code::SERVER_ID)
    }

    /// Every architecture type in option 93 (RFC 4578: a list of 16-bit values).
    pub fn client_arches(&self) -> Vec<u16> {
        self.options
            .get(&code::CLIENT_ARCH)
            .map(|v| {
                v.chunks_exact(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Option 60 as text, if it is text.
    pub fn vendor_class(&self) -> Option<&str> {
        self.options
            .get(&code::VENDOR_CLASS)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Whether the client is iPXE: user class (option 77) `iPXE`, raw or in RFC 3004
    /// length-prefixed form, or iPXE's own option 175.
    pub fn is_ipxe(&self) -> bool {
        if self.options.contains_key(&code::IPXE) {
            return true;
        }
        let Some(uc) = self.options.get(&code::USER_CLASS) else {
            return false;
        };
        if uc.as_slice() == b"iPXE" {
            return true;
        }
        let mut i = 0;
        while let Some(&len) = uc.get(i) {
            let len = usize::from(len);
            if uc.get(i + 1..i + 1 + len) == Some(b"iPXE".as_slice()) {
                return true;
            }
            i += 1 + len;
        }
        false
    }

    /// Option 97 (client GUID), when well-formed: type 0 then 16 bytes.
    pub fn client_guid(&self) -> Option<[u8; 16]> {
        let v = self.options.get(&code::CLIENT_GUID)?;
        if v.len() != 17 || v[0] != 0 {
            return None;
        }
        let mut g = [0u8; 16];
        g.copy_from_slice(&v[1..]);
        Some(g)
    }

    /// Option 12, if it is a valid DNS label.
    pub fn hostname(&self) -> Option<String> {
        let v = self.options.get(&code::HOSTNAME)?;
        let s = std::str::from_utf8(v)
            .ok()?
            .trim_end_matches('\0')
            .to_ascii_lowercase();
        slipway_cluster::types::is_dns_label(&s).then_some(s)
    }

    /// Sets an option.
    pub fn set(&mut self, c: u8, value: impl Into<Vec<u8>>) {
        self.options.insert(c, value.into());
    }

    /// Sets an option holding addresses.
    pub fn set_ips(&mut self, c: u8, ips: &[Ipv4Addr]) {
        self.set(
            c,
            ips.iter().flat_map(|ip| ip.octets()).collect::<Vec<u8>>(),
        );
    }

    /// Sets a 32-bit option.
    pub fn set_u32(&mut self, c: u8, v: u32) {
        self.set(c, v.to_be_bytes().to_vec());
    }

    /// Writes `name` into the 128-byte `file` field (truncated, NUL-terminated).
    pub fn set_file_field(&mut self, name: &str) {
        self.file = [0; 128];
        let bytes = name.as_bytes();
        let n = bytes.len().min(127);
        self.file[..n].copy_from_slice(&bytes[..n]);
    }

    /// The `file` field as text, up to its first NUL.
    pub fn file_field(&self) -> String {
        let end = self
            .file
            .iter()
            .position(|b| *b == 0)
            .unwrap_or(self.file.len());
        String::from_utf8_lossy(&self.file[..end]).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn discover() -> Packet {
        let mut p = Packet {
            op: BOOTREQUEST,
            htype: 1,
            hlen: 6,
            hops: 0,
            xid: 0x1234_5678,
            secs: 0,
            flags: 0x8000,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            yiaddr: Ipv4Addr::UNSPECIFIED,
            siaddr: Ipv4Addr::UNSPECIFIED,
            giaddr: Ipv4Addr::UNSPECIFIED,
            chaddr: [0x52, 0x54, 0, 0x99, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            sname: [0; 64],
            file: [0; 128],
            options: BTreeMap::new(),
        };
        p.set(code::MESSAGE_TYPE, vec![1]);
        p.set(code::CLIENT_ARCH, vec![0, 7, 0, 0]);
        p
    }

    #[test]
    fn round_trip_and_accessors() {
        let mut p = discover();
        p.set(code::USER_CLASS, b"iPXE".to_vec());
        p.set(
            code::VENDOR_CLASS,
            b"PXEClient:Arch:00007:UNDI:003016".to_vec(),
        );
        p.set(code::CLIENT_GUID, [vec![0], vec![7; 16]].concat());
        let bytes = p.emit();
        assert!(bytes.len() >= 300);
        let q = Packet::parse(&bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(q, p);
        assert_eq!(q.message_type(), Some(MessageType::Discover));
        assert_eq!(q.client_arches(), [7, 0]);
        assert!(q.is_ipxe());
        assert_eq!(q.client_guid(), Some([7; 16]));
        assert_eq!(
            q.mac().map(|m| m.to_string()).as_deref(),
            Some("52:54:00:99:00:01")
        );
    }

    #[test]
    fn split_options_are_joined_and_long_ones_split() {
        let mut p = discover();
        p.set(code::VENDOR_SPECIFIC, vec![9; 600]);
        let bytes = p.emit();
        let q = Packet::parse(&bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            q.options.get(&code::VENDOR_SPECIFIC).map(Vec::len),
            Some(600)
        );
    }

    #[test]
    fn malformed_options_cost_only_themselves() {
        let mut p = discover();
        p.set(code::CLIENT_GUID, vec![1, 2, 3]);
        p.set(code::CLIENT_ARCH, vec![0]);
        p.set(code::MESSAGE_TYPE, vec![1, 2]);
        let q = Packet::parse(&p.emit()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(q.client_guid(), None);
        assert!(q.client_arches().is_empty());
        assert_eq!(q.message_type(), None);
    }

    #[test]
    fn user_class_rfc3004_form() {
        let mut p = discover();
        p.set(code::USER_CLASS, [vec![4], b"iPXE".to_vec()].concat());
        assert!(p.is_ipxe());
        p.set(code::USER_CLASS, [vec![3], b"foo".to_vec()].concat());
        assert!(!p.is_ipxe());
    }

    #[test]
    fn hostile_bytes_never_panic() {
        let base = discover().emit();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let mut b = base.clone();
            let n = (next() % 8) as usize;
            for _ in 0..n {
                let i = (next() as usize) % b.len();
                b[i] = next() as u8;
            }
            let cut = (next() as usize) % (b.len() + 1);
            let _ = Packet::parse(&b[..cut])
                .map(|p| (p.client_arches(), p.hostname(), p.is_ipxe(), p.emit()));
            let garbage: Vec<u8> = (0..(next() % 700)).map(|_| next() as u8).collect();
            let _ = Packet::parse(&garbage);
        }
        assert_eq!(Packet::parse(&[0; 10]), Err(WireError::TooShort(10)));
        let mut no_cookie = base.clone();
        no_cookie[236] = 0;
        assert_eq!(Packet::parse(&no_cookie), Err(WireError::NoCookie));
        let mut trunc = base[..243].to_vec();
        trunc.extend_from_slice(&[code::HOSTNAME, 50, b'a']);
        assert_eq!(
            Packet::parse(&trunc),
            Err(WireError::Truncated(code::HOSTNAME))
        );
    }
}
