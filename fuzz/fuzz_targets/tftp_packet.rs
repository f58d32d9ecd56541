//! TFTP packets (crates/tftp `wire` and `request`): any bytes through the checked packet
//! view, `Repr::parse_bytes` and the listening port's request check. What parses emits
//! to exactly `buffer_len()` bytes that parse back to the same packet; a valid request
//! names a normalized path; a refusal's reply is a well-formed ERROR.
#![no_main]

use libfuzzer_sys::fuzz_target;
// The bounded allocator (`slipway_fuzz::BoundedAlloc`).
use slipway_fuzz as _;
use slipway_tftp::request::parse_request;
use slipway_tftp::wire::{MAX_REQUEST_LEN, Packet, Repr};

fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = Packet::new_checked(data) {
        let _ = (packet.opcode(), packet.block(), packet.error_code());
        let _ = (packet.strings(), packet.data());
    }
    if let Ok(repr) = Repr::parse_bytes(data) {
        let mut out = Vec::new();
        repr.emit(&mut out);
        assert_eq!(out.len(), repr.buffer_len());
        let again = Repr::parse_bytes(&out).unwrap_or_else(|e| panic!("emitted {repr:?}: {e}"));
        assert_eq!(again, repr);
    }
    match parse_request(data) {
        Ok(Some(request)) => {
            assert!(data.len() <= MAX_REQUEST_LEN);
            let path = &request.path;
            assert!(!path.is_empty() && !path.starts_with('/') && !path.ends_with('/'));
            assert!(!path.contains('\\') && !path.chars().any(char::is_control));
            assert!(
                path.split('/')
                    .all(|c| !c.is_empty() && c != "." && c != ".."),
                "{path:?}"
            );
        }
        Ok(None) => {}
        Err(refusal) => {
            let reply = refusal.reply();
            assert!(matches!(Repr::parse_bytes(&reply), Ok(Repr::Error { .. })));
        }
    }
});
