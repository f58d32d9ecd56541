//! The crate's one error type.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};

use ipnet::Ipv4Net;

/// Everything that can go wrong building the zone, changing dynamic names or serving.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A name from the cluster could not be made into a DNS name.
    InvalidName {
        /// The text that was refused.
        name: String,
        /// Why hickory refused it.
        reason: String,
    },
    /// A dynamic hostname is not a single DNS label (`a-z`, `0-9`, `-`, 1 to 63 bytes).
    InvalidHostname {
        /// The hostname as given.
        hostname: String,
    },
    /// A dynamic hostname is already a static name of the zone (a node, the API name or
    /// the server itself): static names always win.
    StaticName {
        /// The hostname, lower-cased.
        hostname: String,
    },
    /// A dynamic address is already the address of a static name.
    StaticAddress {
        /// The address.
        address: Ipv4Addr,
        /// The static name that has it.
        owner: String,
    },
    /// A dynamic address is outside the cluster's subnet (no reverse zone covers it).
    OutsideSubnet {
        /// The address.
        address: Ipv4Addr,
        /// The cluster subnet.
        subnet: Ipv4Net,
    },
    /// A listening socket could not be opened.
    Bind {
        /// The address asked for.
        address: SocketAddr,
        /// What the system said.
        source: io::Error,
    },
    /// The forwarder to the upstream resolvers could not be set up.
    Forwarder {
        /// Why.
        reason: String,
    },
    /// A listener stopped serving before shutdown was asked for.
    Serve {
        /// Why.
        reason: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidName { name, reason } => {
                write!(
                    f,
                    "`{name}` is not a usable DNS name ({reason}); fix it in the cluster file"
                )
            }
            Error::InvalidHostname { hostname } => write!(
                f,
                "dynamic hostname {hostname:?} is not a DNS label (use a-z, 0-9 and '-', 1 to 63 characters, no leading or trailing '-')"
            ),
            Error::StaticName { hostname } => write!(
                f,
                "dynamic hostname `{hostname}` is already a static name of the zone; static names win"
            ),
            Error::StaticAddress { address, owner } => write!(
                f,
                "dynamic address {address} is already the address of `{owner}`; static names win"
            ),
            Error::OutsideSubnet { address, subnet } => write!(
                f,
                "dynamic address {address} is outside the cluster subnet {subnet}"
            ),
            Error::Bind { address, source } => write!(
                f,
                "cannot listen for DNS on {address}: {source} (is another DNS server running there, or is a port below 1024 used without privileges?)"
            ),
            Error::Forwarder { reason } => {
                write!(
                    f,
                    "cannot set up forwarding to network.upstream_dns: {reason}"
                )
            }
            Error::Serve { reason } => write!(f, "the DNS server stopped: {reason}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Bind { source, .. } => Some(source),
            _ => None,
        }
    }
}
