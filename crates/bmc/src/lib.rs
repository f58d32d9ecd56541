//! Power and boot control through baseboard management controllers: IPMI v2.0
//! (RMCP+) and Redfish.
//!
//! Not written yet: this crate marks the boundary (see the BMC issue).
#![deny(missing_docs)]
