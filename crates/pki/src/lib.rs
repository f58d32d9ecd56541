//! The cluster PKI: CAs, certificates, bootstrap tokens and SSH host keys, generated
//! once into the state directory and reused.
//!
//! Not written yet: this crate marks the boundary (see the rendering issue).
#![deny(missing_docs)]
