//! The crate's one error type.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};

use ipnet::Ipv4Net;

/// Everything that can go wrong building the zone, changing dynamic names or serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A name from the cluster could not be made into a DNS name.
    #[error("`{name}` is not a usable DNS name ({reason}); fix it in the cluster file")]
    InvalidName {
        /// The text that was refused.
        name: String,
        /// Why hickory refused it.
        reason: String,
    },
    /// A dynamic hostname is not a single DNS label (`a-z`, `0-9`, `-`, 1 to 63 bytes).
    #[error(
        "dynamic hostname {hostname:?} is not a DNS label (use a-z, 0-9 and '-', 1 to 63 characters, no leading or trailing '-')"
    )]
    InvalidHostname {
        /// The hostname as given.
        hostname: String,
    },
    /// A dynamic hostname is already a static name of the zone (a node, the API name or
    /// the server itself): static names always win.
    #[error("dynamic hostname `{hostname}` is already a static name of the zone; static names win")]
    StaticName {
        /// The hostname, lower-cased.
        hostname: String,
    },
    /// A dynamic address is already the address of a static name.
    #[error("dynamic address {address} is already the address of `{owner}`; static names win")]
    StaticAddress {
        /// The address.
        address: Ipv4Addr,
        /// The static name that has it.
        owner: String,
    },
    /// A dynamic address is outside the cluster's subnet (no reverse zone covers it).
    #[error("dynamic address {address} is outside the cluster subnet {subnet}")]
    OutsideSubnet {
        /// The address.
        address: Ipv4Addr,
        /// The cluster subnet.
        subnet: Ipv4Net,
    },
    /// A listening socket could not be opened.
    #[error(
        "cannot listen for DNS on {address}: {source} (is another DNS server running there, or is a port below 1024 used without privileges?)"
    )]
    Bind {
        /// The address asked for.
        address: SocketAddr,
        /// What the system said.
        source: io::Error,
    },
    /// The forwarder to the upstream resolvers could not be set up.
    #[error("cannot set up forwarding to network.upstream_dns: {reason}")]
    Forwarder {
        /// hickory's message saying why the forwarder could not be built.
        reason: String,
    },
    /// A listener stopped serving before shutdown was asked for.
    #[error("the DNS server stopped: {reason}")]
    Serve {
        /// Which listener stopped, and its error when it had one.
        reason: String,
    },
}
