//! A sans-IO DHCPv4 server core (authoritative and ProxyDHCP, PXE classification)
//! and the lease store trait.
//!
//! Not written yet: this crate marks the boundary (see the network-services issue).
#![deny(missing_docs)]
