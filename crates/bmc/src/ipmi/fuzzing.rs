//! What the fuzzers run: every decoder of this module over one input
//! ([`fuzz_decoders`]), and valid packets of every kind to start from
//! ([`fuzz_seeds`]). The coverage-guided target is `fuzz/fuzz_targets/ipmi.rs` at the
//! top of the repository (see docs/fuzzing.md); the deterministic in-test fuzzer is
//! `fuzz_tests.rs` beside this file.

use std::sync::OnceLock;

use super::crypto::{SUITE_3, SUITE_17, SessionKeys, Suite};
use super::session::{self, ReplayWindow};
use super::{commands, wire};

/// The console session id of the seeds' signed packets and of [`fuzz_decoders`].
const SESSION_ID: u32 = 0x0102_0304;

/// The session integrity key of the seeds and of [`fuzz_decoders`]: a signed seed
/// opens, so mutations of it reach the decrypted message.
const SIK: [u8; 20] = [0x5A; 20];

/// Both supported cipher suites with their keys, derived once.
fn suites() -> &'static [(Suite, SessionKeys); 2] {
    static KEYS: OnceLock<[(Suite, SessionKeys); 2]> = OnceLock::new();
    KEYS.get_or_init(|| [SUITE_3, SUITE_17].map(|s| (s, SessionKeys::derive(s, &SIK))))
}

/// Runs every decoder of this module over `data`, and checks that what decodes
/// encodes back to the same thing. It must never panic, whatever `data` is.
#[doc(hidden)]
pub fn fuzz_decoders(data: &[u8]) {
    for len in [0, 12, 16, 20, 32] {
        let _ = wire::decode_packet(data, len);
    }
    decoders(data);
    // The payload of a session-less RMCP+ packet through the payload decoders too.
    if let Ok(wire::Packet::V2(p)) = wire::decode_packet(data, 0) {
        decoders(p.payload);
    }
    let _ = commands::parse_chassis_status(data);
    let _ = commands::parse_device_id(data);
    let _ = commands::parse_boot_flags(data);
    let _ = commands::supports_rmcp_plus(data);
    if let Some(message) = session::sessionless_message(data) {
        let _ = wire::decode_response(message);
    }
    for want in [
        wire::PayloadType::OpenSessionResponse,
        wire::PayloadType::Rakp2,
        wire::PayloadType::Rakp4,
    ] {
        let _ = session::setup_payload(data, want);
    }
    for (suite, keys) in suites() {
        let _ = keys.decrypt(data);
        let _ = keys.verify(data, data);
        let mut window = ReplayWindow::default();
        if let Some(plain) =
            session::open_session_packet(suite, SESSION_ID, keys, &mut window, data)
        {
            decoders(&plain);
            assert!(
                session::open_session_packet(suite, SESSION_ID, keys, &mut window, data).is_none(),
                "a replayed packet opened twice"
            );
        }
        // `data` as the message of a session packet (IPMI messages are small): sealed,
        // it opens to itself.
        if data.len() > 1024 {
            continue;
        }
        let sequence = u32::from_be_bytes([0, 0, 0, data.first().copied().unwrap_or(1).max(1)]);
        let sealed = seal(keys, sequence, data);
        let mut window = ReplayWindow::default();
        let opened = session::open_session_packet(suite, SESSION_ID, keys, &mut window, &sealed);
        assert_eq!(
            opened.as_deref(),
            Some(data),
            "a sealed packet did not open"
        );
    }
}

/// The message and payload decoders over `data`; what decodes must encode back to
/// bytes that decode to the same value.
fn decoders(data: &[u8]) {
    if let Ok(response) = wire::decode_response(data) {
        let _ = commands::parse_chassis_status(response.data);
        let _ = commands::parse_device_id(response.data);
        let _ = commands::parse_boot_flags(response.data);
    }
    if let Ok(request) = wire::decode_request(data) {
        let again = wire::encode_request(&request);
        assert_eq!(wire::decode_request(&again), Ok(request));
    }
    if let Ok(m) = wire::decode_open_session_request(data) {
        let again = wire::encode_open_session_request(&m);
        assert_eq!(wire::decode_open_session_request(&again), Ok(m));
    }
    if let Ok(m) = wire::decode_open_session_response(data) {
        let again = wire::encode_open_session_response(&m);
        assert_eq!(wire::decode_open_session_response(&again), Ok(m));
    }
    if let Ok(m) = wire::decode_rakp1(data) {
        let again = wire::encode_rakp1(&m);
        assert_eq!(wire::decode_rakp1(&again), Ok(m));
    }
    if let Ok(m) = wire::decode_rakp2(data) {
        let again = wire::encode_rakp2(&m);
        assert_eq!(wire::decode_rakp2(&again), Ok(m));
    }
    if let Ok(m) = wire::decode_rakp34(data) {
        let again = wire::encode_rakp34(&m);
        assert_eq!(wire::decode_rakp34(&again), Ok(m));
    }
}

/// An authenticated, encrypted IPMI packet of our session carrying `message`.
fn seal(keys: &SessionKeys, sequence: u32, message: &[u8]) -> Vec<u8> {
    let mut packet = wire::encode_v2(
        &wire::V2Header {
            payload_type: wire::PayloadType::Ipmi,
            encrypted: true,
            authenticated: true,
            session_id: SESSION_ID,
            sequence,
        },
        &keys.encrypt_with_iv(message, [sequence as u8; 16]),
    );
    let code = keys.auth_code(wire::integrity_region(&packet));
    packet.extend_from_slice(&code);
    packet
}

/// Valid packets and messages of every kind the decoders take, for both cipher
/// suites: the seed corpus of the fuzz target. The signed ones open with the keys
/// [`fuzz_decoders`] uses.
#[doc(hidden)]
pub fn fuzz_seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for (suite, keys) in suites() {
        for seed in seeds_for(suite, keys) {
            if !seeds.contains(&seed) {
                seeds.push(seed);
            }
        }
    }
    seeds
}

/// Valid packets of every kind for one suite (signed with `keys`).
pub(super) fn seeds_for(suite: &Suite, keys: &SessionKeys) -> Vec<Vec<u8>> {
    let setup = |pt, payload: Vec<u8>| {
        wire::encode_v2(
            &wire::V2Header {
                payload_type: pt,
                encrypted: false,
                authenticated: false,
                session_id: 0,
                sequence: 0,
            },
            &payload,
        )
    };
    let alg = wire::AlgorithmIds {
        auth: suite.auth,
        integrity: suite.integrity,
        confidentiality: suite.confidentiality,
    };
    // A Get Chassis Status response (power on).
    let response = {
        let mut m = vec![0x81, 0x01 << 2];
        m.push(wire::checksum(&m));
        let mut b = vec![0x20, 1 << 2, 0x01, 0x00, 0x01, 0x00, 0x00];
        b.push(wire::checksum(&b));
        m.extend_from_slice(&b);
        m
    };
    // A Get Device ID response.
    let device_id = {
        let mut m = vec![0x81, 0x07 << 2];
        m.push(wire::checksum(&m));
        let mut b = vec![
            0x20,
            1 << 2,
            0x01,
            0x00,
            0,
            3,
            9,
            8,
            2,
            0x9F,
            0x91,
            0x12,
            0,
            2,
            0x0F,
        ];
        b.push(wire::checksum(&b));
        m.extend_from_slice(&b);
        m
    };
    vec![
        wire::encode_v15_unauthenticated(&response),
        wire::encode_v15_unauthenticated(&device_id),
        response.clone(),
        device_id.clone(),
        wire::encode_request(&wire::Request {
            netfn: 0x00,
            cmd: 0x02,
            seq: 5,
            data: &[0x01],
        }),
        seal(keys, 1, &response),
        seal(keys, 2, &device_id),
        setup(
            wire::PayloadType::OpenSessionResponse,
            wire::encode_open_session_response(&wire::OpenSessionResponse {
                tag: 1,
                status: 0,
                max_privilege: 4,
                console_session_id: SESSION_ID,
                accepted: Some((0x55, alg)),
            }),
        ),
        setup(
            wire::PayloadType::Rakp2,
            wire::encode_rakp2(&wire::Rakp2 {
                tag: 2,
                status: 0,
                console_session_id: SESSION_ID,
                accepted: Some(wire::Rakp2Accepted {
                    bmc_random: [1; 16],
                    bmc_guid: [2; 16],
                    auth_code: vec![3; suite.hash.len()],
                }),
            }),
        ),
        setup(
            wire::PayloadType::Rakp4,
            wire::encode_rakp34(&wire::Rakp34 {
                tag: 3,
                status: 0,
                session_id: SESSION_ID,
                code: vec![4; suite.auth_code_len],
            }),
        ),
        wire::encode_rakp1(&wire::Rakp1 {
            tag: 1,
            bmc_session_id: 9,
            console_random: [0; 16],
            role: 0x14,
            user: b"admin".to_vec(),
        }),
        wire::encode_open_session_request(&wire::OpenSessionRequest {
            tag: 1,
            max_privilege: 4,
            console_session_id: 7,
            algorithms: alg,
        }),
    ]
}
