//! Rendering: the completed `Cluster` (plus secrets) becomes boot scripts (iPXE,
//! pxelinux, GRUB), OS configs (Ignition, cloud-config, templates), install scripts and
//! configs for existing infrastructure (dnsmasq, ISC dhcpd, Kea, nginx).
//!
//! Not written yet: this crate marks the boundary (see the rendering issue).
#![deny(missing_docs)]
