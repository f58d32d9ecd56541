//! slipway's DHCPv4 server: a sans-IO [`engine`] on a hostile-input-proof wire format
//! ([`wire`]), and a thin tokio [`driver`] (default feature `driver`) that owns the
//! sockets, the clock and the lease store.
//!
//! Modes: authoritative (reservations for every known node, a pool for discovery),
//! ProxyDHCP (boot information only, beside the site's DHCP server), off. PXE clients
//! are told what to boot by firmware: BIOS and x86-64 UEFI get a TFTP file, UEFI HTTP
//! boot a URL, iPXE the URL of its script (breaking the reload loop). The names and
//! URLs are plain configuration: the engine knows nothing of where they are served.
//!
//! The engine is driven by packets and by time, and never touches a socket or a clock:
//!
//! ```
//! use std::collections::HashMap;
//! use slipway_cluster::{DhcpMode, UnknownPolicy};
//! use slipway_dhcp::{BootFiles, Config, Engine};
//!
//! let config = Config {
//!     mode: DhcpMode::Authoritative,
//!     server: "10.0.0.1".parse().unwrap(),
//!     subnet: "10.0.0.0/24".parse().unwrap(),
//!     gateway: None,
//!     dns: vec![],
//!     domain: "lab.test".into(),
//!     ntp: vec![],
//!     lease_secs: 3600,
//!     pool: Some(("10.0.0.100".parse().unwrap(), "10.0.0.199".parse().unwrap())),
//!     unknown: UnknownPolicy::Discover,
//!     reservations: HashMap::new(),
//!     relays: Default::default(),
//!     new_clients_per_sec: 1000,
//!     boot: BootFiles {
//!         bios: "undionly.kpxe".into(),
//!         uefi: "snponly.efi".into(),
//!         http: "http://10.0.0.1:8080/boot/ipxe.efi".into(),
//!         ipxe_chain: "http://10.0.0.1:8080/boot.ipxe".into(),
//!     },
//! };
//! let mut engine = Engine::new(config, vec![]);
//! assert_eq!(engine.poll_timeout(), None, "nothing held, nothing falls due");
//! // A datagram that is not DHCP gets no answer.
//! let actions = engine.handle(1_000, b"not dhcp", "10.0.0.9:68".parse().unwrap(), slipway_dhcp::Port::Dhcp);
//! assert!(actions.is_empty());
//! ```
#![deny(missing_docs)]

pub mod book;
pub mod commit;
pub mod deadlines;
#[cfg(feature = "driver")]
pub mod driver;
pub mod engine;
pub mod lease;
pub mod wire;

pub use commit::{Outgoing, commit};
pub use engine::{
    Action, BootFiles, ClientKind, Config, Destination, Engine, Event, Port, Reservation, Sizes,
};
pub use lease::{Lease, LeaseStore, LeaseStoreError};
