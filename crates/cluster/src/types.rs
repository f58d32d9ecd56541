//! Small value types of the cluster model, each parsed from text with a message that
//! says what was expected.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// An Ethernet MAC address, normalized to lower-case colon form.
///
/// Accepts the common spellings: `52:54:00:99:00:01`, `52-54-00-99-00-01`,
/// `5254.0099.0001` (Cisco) and `525400990001`, in either case.
///
/// ```
/// use slipway_cluster::MacAddr;
/// let mac: MacAddr = "52-54-00-99-00-0A".parse().unwrap();
/// assert_eq!(mac.to_string(), "52:54:00:99:00:0a");
/// assert_eq!(mac.dashed(), "52-54-00-99-00-0a");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// Lower-case, dash-separated: the form used in pxelinux file names and hostnames.
    pub fn dashed(&self) -> String {
        self.to_string().replace(':', "-")
    }

    /// The six bytes.
    pub fn octets(&self) -> [u8; 6] {
        self.0
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl FromStr for MacAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!("`{s}` is not a MAC address (expected six hex bytes, e.g. 52:54:00:12:34:56)")
        };
        let (groups, shape): (Vec<&str>, &[usize]) = if s.contains(':') {
            (s.split(':').collect(), &[2; 6])
        } else if s.contains('-') {
            (s.split('-').collect(), &[2; 6])
        } else if s.contains('.') {
            (s.split('.').collect(), &[4; 3])
        } else {
            (vec![s], &[12])
        };
        let sizes: Vec<usize> = groups.iter().map(|g| g.len()).collect();
        if sizes != shape {
            return Err(bad());
        }
        let hex: String = groups.concat();
        if !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let mut out = [0u8; 6];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(MacAddr(out))
    }
}

impl Serialize for MacAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for MacAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A DHCP lease duration: a number of seconds, or infinite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseTime {
    /// This many seconds.
    Seconds(u32),
    /// Never expires (DHCP's 0xffffffff).
    Infinite,
}

impl LeaseTime {
    /// Seconds as DHCP option 51 carries them.
    pub fn as_secs(&self) -> u32 {
        match self {
            LeaseTime::Seconds(s) => *s,
            LeaseTime::Infinite => u32::MAX,
        }
    }
}

impl fmt::Display for LeaseTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LeaseTime::Infinite => f.write_str("infinite"),
            LeaseTime::Seconds(s) if s % 86_400 == 0 => write!(f, "{}d", s / 86_400),
            LeaseTime::Seconds(s) if s % 3_600 == 0 => write!(f, "{}h", s / 3_600),
            LeaseTime::Seconds(s) if s % 60 == 0 => write!(f, "{}m", s / 60),
            LeaseTime::Seconds(s) => write!(f, "{s}s"),
        }
    }
}

impl FromStr for LeaseTime {
    type Err = String;

    /// `infinite`, a number of seconds, or a sum of `<n>d`, `<n>h`, `<n>m`, `<n>s`
    /// parts (`1h30m`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!(
                "`{s}` is not a duration (expected e.g. 3600, 90s, 30m, 12h, 7d, 1h30m or infinite)"
            )
        };
        if s == "infinite" {
            return Ok(LeaseTime::Infinite);
        }
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return s.parse().map(LeaseTime::Seconds).map_err(|_| bad());
        }
        let mut total: u64 = 0;
        let mut digits = String::new();
        for c in s.chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let unit: u64 = match c {
                'd' => 86_400,
                'h' => 3_600,
                'm' => 60,
                's' => 1,
                _ => return Err(bad()),
            };
            let n: u64 = digits.parse().map_err(|_| bad())?;
            digits.clear();
            total = n
                .checked_mul(unit)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(bad)?;
        }
        if !digits.is_empty() || s.is_empty() {
            return Err(bad());
        }
        match u32::try_from(total) {
            Ok(v) if v < u32::MAX => Ok(LeaseTime::Seconds(v)),
            _ => Err(format!(
                "`{s}` is longer than DHCP can express; use `infinite`"
            )),
        }
    }
}

impl Serialize for LeaseTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// An inclusive range of IPv4 addresses, written `first-last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Range {
    /// First address in the range.
    pub first: Ipv4Addr,
    /// Last address in the range (inclusive).
    pub last: Ipv4Addr,
}

impl Ipv4Range {
    /// Whether `ip` is inside the range.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        self.first <= ip && ip <= self.last
    }

    /// How many addresses the range holds.
    pub fn len(&self) -> u64 {
        u64::from(u32::from(self.last)) - u64::from(u32::from(self.first)) + 1
    }

    /// Always false: a range holds at least one address.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl fmt::Display for Ipv4Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

impl FromStr for Ipv4Range {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!(
                "`{s}` is not an address range (expected FIRST-LAST, e.g. 10.0.0.100-10.0.0.199)"
            )
        };
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let first: Ipv4Addr = a.trim().parse().map_err(|_| bad())?;
        let last: Ipv4Addr = b.trim().parse().map_err(|_| bad())?;
        if first > last {
            return Err(format!("address range `{s}` ends before it starts"));
        }
        Ok(Ipv4Range { first, last })
    }
}

impl Serialize for Ipv4Range {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Whether `s` is a valid DNS label as hostnames need (RFC 1123): 1-63 characters of
/// lower-case letters, digits and `-`, not starting or ending with `-`.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Whether `s` is a valid DNS name: dot-separated labels (see [`is_dns_label`]), at most
/// 253 characters.
pub fn is_dns_name(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_spellings_normalize() {
        for s in [
            "52:54:00:99:00:0a",
            "52-54-00-99-00-0A",
            "5254.0099.000a",
            "52540099000A",
        ] {
            assert_eq!(
                s.parse::<MacAddr>().map(|m| m.to_string()),
                Ok("52:54:00:99:00:0a".to_string()),
                "{s}"
            );
        }
        for s in [
            "",
            "52:54:00:99:00",
            "52:54:00:99:00:0g",
            "52:54:00:99:00:001",
            "5254:0099:000a",
            "52:54-00:99:00:0a",
        ] {
            assert!(s.parse::<MacAddr>().is_err(), "{s} accepted");
        }
    }

    #[test]
    fn lease_times() {
        assert_eq!("3600".parse(), Ok(LeaseTime::Seconds(3600)));
        assert_eq!("1h30m".parse(), Ok(LeaseTime::Seconds(5400)));
        assert_eq!("7d".parse(), Ok(LeaseTime::Seconds(604_800)));
        assert_eq!("infinite".parse(), Ok(LeaseTime::Infinite));
        for s in [
            "",
            "h",
            "1x",
            "1h30",
            "-5",
            "99999999999999999999s",
            "50000d",
        ] {
            assert!(s.parse::<LeaseTime>().is_err(), "{s} accepted");
        }
        assert_eq!(LeaseTime::Seconds(5400).to_string(), "90m");
        assert_eq!(LeaseTime::Seconds(86_400).to_string(), "1d");
    }

    #[test]
    fn ranges() {
        let r: Ipv4Range = "10.0.0.100-10.0.0.199"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.len(), 100);
        assert!(r.contains("10.0.0.150".parse().unwrap_or(Ipv4Addr::UNSPECIFIED)));
        assert!("10.0.0.9-10.0.0.1".parse::<Ipv4Range>().is_err());
        assert!("10.0.0.9".parse::<Ipv4Range>().is_err());
    }

    #[test]
    fn dns_labels() {
        assert!(is_dns_label("node-1"));
        assert!(is_dns_label("52-54-00-99-00-01"));
        assert!(!is_dns_label("Node1"));
        assert!(!is_dns_label("-a"));
        assert!(!is_dns_label("a_b"));
        assert!(!is_dns_label(&"a".repeat(64)));
        assert!(is_dns_name("lab.example.com"));
        assert!(!is_dns_name("lab..com"));
    }
}
