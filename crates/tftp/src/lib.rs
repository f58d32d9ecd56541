//! A sans-IO, read-only TFTP server core (RFC 1350, 2347, 2348, 2349, 7440).
//!
//! Not written yet: this crate marks the boundary (see the network-services issue).
#![deny(missing_docs)]
