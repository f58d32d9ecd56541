//! Feeds arbitrary bytes to every IPMI decoder (packets, RMCP+ session-setup
//! payloads, IPMI messages, command responses, decryption and AuthCode checks).
//! The only property is that nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    slipway_bmc::ipmi::fuzz_decoders(data);
});
