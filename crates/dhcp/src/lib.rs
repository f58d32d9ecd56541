//! slipway's DHCPv4 server: a sans-IO core ([`server`]) on a hostile-input-proof wire
//! format ([`wire`]), and a thin tokio driver ([`driver`]) that owns the sockets and
//! the lease store.
//!
//! Modes: authoritative (reservations for every known node, a pool for discovery),
//! ProxyDHCP (boot information only, beside the site's DHCP server), off. PXE clients
//! are told what to boot by firmware: BIOS `undionly.kpxe`, x86-64 UEFI `snponly.efi`,
//! UEFI HTTP boot an HTTP URL, iPXE the HTTP chain script (breaking the reload loop).
#![deny(missing_docs)]

pub mod book;
pub mod driver;
pub mod server;
pub mod wire;

pub use server::{Action, Config, Destination, Event, Port, Server};
