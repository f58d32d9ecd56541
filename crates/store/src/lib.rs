//! Machine and lease state behind one small trait: an embedded database by default,
//! etcd v3 for several servers sharing state.
//!
//! Not written yet: this crate marks the boundary (see the network-services issue).
#![deny(missing_docs)]
