//! slipway's read-only TFTP server: a sans-IO core and a tokio driver.
//!
//! Machines PXE-boot by fetching a few files over TFTP (`pxelinux.0`, `undionly.kpxe`,
//! `snponly.efi`, `pxelinux.cfg/01-<mac>`); this crate serves them, from a directory
//! and from files slipway generates in memory. Read-only: write requests are refused.
//!
//! Protocols: RFC 1350 (TFTP), RFC 2347 (option negotiation, OACK), RFC 2348
//! (`blksize`, clamped to [`Config::max_blksize`], 1468 by default so a block fits a
//! 1500-byte MTU), RFC 2349 (`timeout`, `tsize`), RFC 7440 (`windowsize`).
//!
//! Layout, after quinn-proto and smoltcp (no sockets, clock or files in the core):
//! - [`wire`]: packets, as a checked byte view and a validated representation; never
//!   panics on any input;
//! - [`request`]: checking requests (modes, names, `..`), and the [`request::Endpoint`]
//!   that starts transfers, drops retransmitted requests and caps concurrency;
//! - [`transfer`]: one transfer as a state machine driven by `handle(now, from, packet)`
//!   and `handle_timeout(now)`, polled with `poll_transmit()` and `poll_timeout()`;
//!   windows, retransmission with exponential backoff, block number wrap-around;
//! - [`source`]: where files come from: [`source::DirSource`] (a root directory that
//!   no name or symlink escapes), [`source::MapSource`] (generated files), and
//!   [`source::Layered`] to put the second over the first;
//! - [`driver`] (feature `driver`, on by default): the tokio driver, [`serve`].
//!
//! The core alone, one transfer without any socket (the `driver` feature, on by
//! default, adds the tokio driver; `default-features = false` leaves it out):
//!
//! ```
//! use std::time::Instant;
//! use slipway_tftp::request::{Accept, Endpoint};
//! use slipway_tftp::transfer::Transfer;
//! use slipway_tftp::wire::Repr;
//! use slipway_tftp::Config;
//!
//! let config = Config::default();
//! let mut endpoint = Endpoint::new(&config);
//! let client = "192.0.2.10:2070".parse().unwrap();
//! let Accept::Start { request, .. } = endpoint.handle(client, b"\x00\x01hello.txt\x00octet\x00")
//! else {
//!     panic!("the request is refused or ignored");
//! };
//! let now = Instant::now();
//! let mut transfer = Transfer::new(now, client, &request, b"hi!".to_vec(), &config);
//! let mut datagram = Vec::new();
//! transfer.poll_transmit(&mut datagram).unwrap();
//! assert_eq!(Repr::parse_bytes(&datagram).unwrap(), Repr::Data { block: 1, data: b"hi!" });
//! ```
#![deny(missing_docs)]
// Without the driver, the docs' links to it (`driver`, `serve`) have no target.
#![cfg_attr(not(feature = "driver"), allow(rustdoc::broken_intra_doc_links))]

#[cfg(feature = "driver")]
pub mod driver;
pub mod request;
pub mod source;
pub mod transfer;
pub mod wire;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;

use std::time::Duration;

#[cfg(feature = "driver")]
pub use driver::{Listen, ServeError, serve};
pub use source::{Content, DirSource, Layered, MapSource, OpenError, Source};
pub use transfer::{Outcome, ReadAt, Transfer};

/// Server settings. Start from [`Config::default`]:
/// `Config { max_transfers: 64, ..Config::default() }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Largest `blksize` granted (RFC 2348); larger requests get this. Default 1468:
    /// a block plus IP/UDP/TFTP headers fits a 1500-byte MTU. Without the option a
    /// client gets 512-byte blocks whatever this says.
    pub max_blksize: u16,
    /// Largest `windowsize` granted (RFC 7440). Default 64.
    pub max_windowsize: u16,
    /// First retransmission timeout when the client does not ask for `timeout`
    /// (RFC 2349). Default 1 s.
    pub timeout: Duration,
    /// Cap of the doubling retransmission timeout (never below the client's own
    /// `timeout`). Default 8 s.
    pub max_timeout: Duration,
    /// Resends without progress before the transfer is given up. Default 5.
    pub max_retries: u32,
    /// Transfers running at once; further requests are dropped unanswered (clients
    /// retransmit their request and find a slot later). Default 512.
    pub max_transfers: usize,
    /// Transfers running at once for one client address once half of
    /// [`Config::max_transfers`] are taken (a boot fetches one file at a time): a flood
    /// from one host cannot take more than half the slots. Default 8.
    pub max_transfers_per_client: usize,
    /// The longest `timeout` (RFC 2349) accepted from a client; a longer one is left
    /// out of the OACK and [`Config::timeout`] applies. Default 5 s.
    pub max_client_timeout: Duration,
    /// The longest a transfer may run, however it progresses (a client ACKing just
    /// before each timeout would otherwise hold a slot for hours). Default 10 min.
    pub max_transfer_time: Duration,
    /// Interface to bind every socket to (`SO_BINDTODEVICE`), e.g. the provisioning
    /// bridge. Needs `CAP_NET_RAW` (root); [`serve`] fails with a message saying so.
    /// Default: none.
    pub interface: Option<String>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_blksize: 1468,
            max_windowsize: 64,
            timeout: Duration::from_secs(1),
            max_timeout: Duration::from_secs(8),
            max_retries: 5,
            max_transfers: 512,
            max_transfers_per_client: 8,
            max_client_timeout: Duration::from_secs(5),
            max_transfer_time: Duration::from_secs(600),
            interface: None,
        }
    }
}
