//! Deterministic fuzzing of every decoder: random byte strings, and valid packets
//! mutated (bit flips, truncation, extension, length-field corruption). The
//! property is only that nothing panics; the test fails if anything does.

#![allow(clippy::unwrap_used)]

use super::crypto::{SUITE_3, SUITE_17, SessionKeys, Suite};
use super::session::{self, ReplayWindow};
use super::{commands, fuzz_decoders, wire};

/// xorshift64*: small, deterministic, good enough to drive mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % (n.max(1) as u64)) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            2 => v.truncate(rng.below(v.len() + 1)),
            3 => {
                let n = rng.below(40);
                let extra = rng.bytes(n);
                v.extend_from_slice(&extra);
            }
            4 if v.len() > 15 => {
                // Length fields of v1.5 (offset 13) and v2.0 (offsets 14-15).
                let i = 13 + rng.below(3);
                v[i] = [0, 0xFF, v[i].wrapping_add(1), v[i].wrapping_sub(1)][rng.below(4)];
            }
            _ => {
                if !v.is_empty() {
                    let i = rng.below(v.len());
                    v.insert(i, rng.next() as u8);
                }
            }
        }
    }
    v
}

fn all_decoders(keys: &SessionKeys, suite: &Suite, data: &[u8]) {
    for len in [0, suite.auth_code_len, 20, 32] {
        let _ = wire::decode_packet(data, len);
    }
    let _ = wire::decode_response(data);
    let _ = wire::decode_request(data);
    let _ = wire::decode_open_session_request(data);
    let _ = wire::decode_open_session_response(data);
    let _ = wire::decode_rakp1(data);
    let _ = wire::decode_rakp2(data);
    let _ = wire::decode_rakp34(data);
    let _ = commands::parse_chassis_status(data);
    let _ = commands::parse_device_id(data);
    let _ = commands::parse_boot_flags(data);
    let _ = session::sessionless_message(data);
    let _ = session::setup_payload(data, wire::PayloadType::OpenSessionResponse);
    let _ = keys.decrypt(data);
    let mut window = ReplayWindow::default();
    if let Some(plain) = session::open_session_packet(suite, 0x0102_0304, keys, &mut window, data) {
        let _ = wire::decode_response(&plain);
    }
    // Payloads of decodable packets, fed to the payload decoders too.
    if let Ok(wire::Packet::V2(p)) = wire::decode_packet(data, 0) {
        let _ = wire::decode_open_session_response(p.payload);
        let _ = wire::decode_rakp2(p.payload);
        let _ = wire::decode_rakp34(p.payload);
    }
}

#[test]
fn random_and_mutated_input_never_panics() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for suite in [SUITE_3, SUITE_17] {
        let keys = SessionKeys::derive(suite, &[0x42; 20]);
        let seeds = super::fuzzing::seeds_for(&suite, &keys);
        // The signed seed really opens, so mutations start from deep inside.
        let mut w = ReplayWindow::default();
        assert!(seeds.iter().any(|s| {
            session::open_session_packet(&suite, 0x0102_0304, &keys, &mut w, s).is_some()
        }));
        for _ in 0..20_000 {
            let n = rng.below(120);
            let data = rng.bytes(n);
            all_decoders(&keys, &suite, &data);
        }
        for _ in 0..40_000 {
            let seed = &seeds[rng.below(seeds.len())];
            let data = mutate(&mut rng, seed);
            all_decoders(&keys, &suite, &data);
        }
        // Encrypted payloads of random content that authenticate correctly: the
        // decrypted message reaches the IPMI decoder.
        for seq in 2..500u32 {
            let n = rng.below(64);
            let plain = rng.bytes(n);
            let mut pkt = wire::encode_v2(
                &wire::V2Header {
                    payload_type: wire::PayloadType::Ipmi,
                    encrypted: true,
                    authenticated: true,
                    session_id: 0x0102_0304,
                    sequence: seq,
                },
                &keys.encrypt(&plain).unwrap(),
            );
            let code = keys.auth_code(wire::integrity_region(&pkt));
            pkt.extend_from_slice(&code);
            let opened = session::open_session_packet(&suite, 0x0102_0304, &keys, &mut w, &pkt);
            assert_eq!(opened.as_deref(), Some(&plain[..]));
            let _ = wire::decode_response(&plain);
        }
    }
    // The public fuzzing entry point too (slower: it derives keys each call).
    for _ in 0..1000 {
        let n = rng.below(80);
        fuzz_decoders(&rng.bytes(n));
    }
}

#[test]
fn fuzz_seeds_go_deep() {
    // The coverage-guided target's seeds (fuzz/corpus/ipmi): every kind, and signed
    // packets that open with the keys `fuzz_decoders` uses.
    let seeds = super::fuzz_seeds();
    assert!(seeds.len() >= 18, "{} seeds", seeds.len());
    for seed in &seeds {
        fuzz_decoders(seed);
    }
}
