//! slipway's DNS server: the cluster's names, authoritatively, and forwarding of the
//! rest, on [hickory](https://hickory-dns.org/).
//!
//! Two layers, as elsewhere in slipway:
//!
//! - [`Zone`] is plain data built from the completed [`Cluster`](slipway_cluster::Cluster)
//!   with no IO: the forward zone of `cluster.domain` (SOA, NS `slipway.<domain>`, an A
//!   record for the server, every node and the API name) and the `in-addr.arpa`
//!   zones covering `network.subnet` (PTR records), plus dynamic names. Its
//!   [`lookup`](Zone::lookup) is a pure function, tested without sockets.
//! - [`serve`] runs it on UDP and TCP listeners with hickory's server and catalog:
//!   EDNS (OPT, payload size, truncation over UDP) as hickory does it, at most
//!   [`Options::tcp_max_connections`] TCP connections, idle TCP connections closed,
//!   names outside the zones forwarded to `network.upstream_dns` (UDP, TCP when the
//!   answer is truncated) or REFUSED when there are none.
//!
//! The DHCP server changes dynamic names live through a [`ZoneHandle`]
//! ([`set_dynamic`](ZoneHandle::set_dynamic), [`remove_dynamic`](ZoneHandle::remove_dynamic)).
//!
//! What the answers look like:
//!
//! - names in the zones: authoritative (AA), case-insensitive; NXDOMAIN for a name
//!   that does not exist and NOERROR with no answer for a type it does not have, both
//!   with the zone's SOA in the authority section; an SOA answer carries the NS;
//!   an NS answer carries the server's address;
//! - `ANY` in the zones: every record at the name (the zones hold at most a few per
//!   name, so this is small); `ANY` for other names is forwarded as asked;
//! - AXFR and IXFR: REFUSED (there are no secondaries); UPDATE: NOTIMP; classes
//!   other than IN in the zones: REFUSED;
//! - other names without recursion desired (RD=0): REFUSED.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use slipway_dns::{serve, Listeners, Options, Zone, ZoneHandle};
//!
//! let text = "\
//! cluster: {name: lab, domain: lab.test}
//! network: {interface: br0, server: 10.99.0.1, subnet: 10.99.0.0/24}
//! os: {version: 4081.2.0}
//! kubernetes: {version: v1.31.2, service_subnet: 10.100.0.0/16}
//! access: {ssh_authorized_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExample me']}
//! nodes:
//!   - {mac: 52:54:00:99:00:01, hostname: cp1, ip: 10.99.0.11, roles: [control-plane]}
//! ";
//! let loaded = slipway_cluster::load_str("lab.yaml", text, ".".as_ref(), &slipway_cluster::NoHost);
//! let cluster = loaded.valid().ok_or("invalid cluster")?;
//!
//! let zone = ZoneHandle::new(Zone::from_cluster(cluster)?);
//! let cluster_upstreams = cluster.network.upstream_dns.clone();
//! // `slipway serve` binds network.server:53; a test binds a free loopback port.
//! let listeners = Listeners::bind("127.0.0.1:0".parse()?).await?;
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let served = zone.clone();
//! let server = tokio::spawn(async move {
//!     let upstreams = &cluster_upstreams; // network.upstream_dns; none: others REFUSED
//!     let stop = async { stopped.await.unwrap_or(()) };
//!     serve(listeners, served, upstreams, &Options::default(), stop).await
//! });
//! // Later, the DHCP server hands out a lease:
//! zone.set_dynamic("new-machine", "10.99.0.200".parse()?)?;
//! stop.send(()).ok();
//! server.await??;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod driver;
mod error;
mod fast;
mod handle;
mod zone;

pub use driver::{Access, Listeners, Options, serve, serve_with_access};
pub use error::Error;
pub use handle::ZoneHandle;
pub use zone::{
    Answer, DYNAMIC_TTL, NEGATIVE_TTL, SERVER_LABEL, STATIC_TTL, Zone, reverse_name, reverse_zones,
};

/// Entry points for the fuzz targets (`fuzz/` at the top of the repository): the
/// decoders that read network bytes, as the server calls them. Not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    /// The UDP fast path (`fast.rs`): the reply to `query` when the fast path
    /// takes it, exactly as the server sends it; `None` sends it the general way.
    pub fn fast_answer(
        zone: &crate::ZoneHandle,
        query: &[u8],
        recursion_available: bool,
    ) -> Option<Vec<u8>> {
        crate::fast::answer(zone, query, recursion_available)
    }
}

/// The hickory-proto version this crate's API uses ([`Zone::lookup`] takes and returns
/// its types), re-exported so callers need not pin it themselves.
pub use hickory_proto as proto;
