//! DNS for the cluster zone and forwarding of other names, on hickory.
//!
//! Not written yet: this crate marks the boundary (see the network-services issue).
#![deny(missing_docs)]
