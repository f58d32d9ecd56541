//! Every IPMI decoder of crates/bmc (RMCP/RMCP+ packets, session-setup payloads, IPMI
//! messages, command responses, decryption, AuthCode checks, the replay window)
//! through `slipway_bmc::ipmi::fuzz_decoders`, which also checks that what decodes
//! encodes back to itself and that a sealed session packet opens to its message.
#![no_main]

use libfuzzer_sys::fuzz_target;
// The bounded allocator (`slipway_fuzz::BoundedAlloc`).
use slipway_fuzz as _;

fuzz_target!(|data: &[u8]| {
    slipway_bmc::ipmi::fuzz_decoders(data);
});
