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
//! - [`server`]: the tokio driver, [`serve`].
//!
//! ```no_run
//! use std::net::SocketAddr;
//! use std::sync::Arc;
//! use slipway_tftp::source::{DirSource, Layered, MapSource, Source};
//! use slipway_tftp::{serve, Config};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // Generated files over a directory of boot binaries.
//! let generated = Arc::new(MapSource::new());
//! generated.insert("pxelinux.cfg/01-52-54-00-99-00-01", b"DEFAULT install\n".to_vec())?;
//! let source = Arc::new(Layered::new(vec![
//!     generated.clone() as Arc<dyn Source>,
//!     Arc::new(DirSource::new("/var/lib/slipway/tftp")?),
//! ]));
//!
//! let mut config = Config::default();
//! config.interface = Some("br0".into()); // optional; needs CAP_NET_RAW
//! let listen: SocketAddr = "10.99.0.1:69".parse()?;
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! # drop(stop);
//! serve(listen, source, config, async { let _ = stopped.await; }).await?;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

pub mod request;
pub mod server;
pub mod source;
pub mod transfer;
pub mod wire;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;

use std::time::Duration;

pub use server::{Listen, ServeError, serve};
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
            interface: None,
        }
    }
}
