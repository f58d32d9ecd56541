//! DHCP packets (crates/dhcp `wire`): any bytes through `Packet::parse`, every typed
//! accessor and the client classification; what parses emits to bytes that parse back
//! to the same packet (and emit the same bytes again).
#![no_main]

use libfuzzer_sys::fuzz_target;
// The bounded allocator (`slipway_fuzz::BoundedAlloc`).
use slipway_dhcp::engine::classify;
use slipway_dhcp::wire::{MAX_PACKET, Packet};
use slipway_fuzz as _;

fuzz_target!(|data: &[u8]| {
    let Ok(p) = Packet::parse(data) else {
        return;
    };
    let _ = (
        p.message_type(),
        p.mac(),
        p.broadcast(),
        p.requested_ip(),
        p.server_id(),
    );
    let _ = (
        p.client_arches(),
        p.vendor_class(),
        p.is_ipxe(),
        p.client_guid(),
    );
    let _ = (p.file_field(), classify(&p));
    if let Some(name) = p.hostname() {
        assert!(slipway_cluster::types::is_dns_label(&name), "{name:?}");
    }
    let bytes = p.emit();
    assert!(
        bytes.len() <= (data.len() + 1).max(300),
        "{} bytes from {}",
        bytes.len(),
        data.len()
    );
    let again = Packet::parse(&bytes).unwrap_or_else(|e| panic!("emitted packet: {e}"));
    assert_eq!(again, p);
    assert_eq!(again.emit(), bytes);
    // An empty reply to it is a well-formed packet of at most one MTU.
    let reply = Packet::reply_to(&p).emit();
    assert!(reply.len() <= MAX_PACKET);
    assert!(Packet::parse(&reply).is_ok());
});
