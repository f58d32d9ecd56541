//! A small RMCP+ BMC for tests, speaking cipher suites 3 and 17 (ipmi_sim speaks
//! only 3). It is written independently of the driver (its own packet code and its
//! own use of the HMAC/AES primitives), and `ipmitool -I lanplus -C 3|17` is used
//! against it in the tests, so a session ipmitool accepts proves the responder's
//! crypto, and the driver's agreement with it follows.
//!
//! It keeps chassis state (power, the five boot-flag bytes of parameter 5 exactly
//! as written) and can misbehave on demand: drop requests, precede every answer
//! with poisoned decoys (another session's ID, a bad AuthCode, a replayed session
//! sequence number, another request's sequence number, garbage), forget all
//! sessions, or refuse Chassis Control with a completion code.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use aes::Aes128;
use aes::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use hmac::{Hmac, Mac};

/// The responder's user.
pub const USER: &str = "root";
/// Their password (20 bytes, the IPMI v2.0 maximum).
pub const PASSWORD: &str = "responder-pass-20byt";
/// The BMC GUID.
const GUID: [u8; 16] = *b"slipway-test-bmc";

/// One request the responder received on a session (before deciding to answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Session sequence number of the packet.
    pub session_seq: u32,
    /// IPMI requester sequence number.
    pub rq_seq: u8,
    /// Network function.
    pub netfn: u8,
    /// Command.
    pub cmd: u8,
    /// Request data.
    pub data: Vec<u8>,
}

/// Chassis state and knobs, shared with the test.
#[derive(Debug, Default)]
pub struct State {
    /// Chassis power.
    pub power_on: bool,
    /// Boot flags (parameter 5), the five data bytes as last written.
    pub boot_flags: [u8; 5],
    /// Boot option parameter 0.
    pub set_in_progress: u8,
    /// Boot option parameter 4, as last written (mask, data).
    pub boot_info_ack: [u8; 2],
    /// Chassis Control actions received (the request data byte).
    pub chassis_controls: Vec<u8>,
    /// Sessions activated (RAKP 3 accepted).
    pub handshakes: u32,
    /// Session requests received, in order.
    pub received: Vec<Received>,
    /// Close Session requests received.
    pub closes: u32,
    /// Drop (do not answer) this many session requests.
    pub drop_next: u32,
    /// Precede every session answer with poisoned decoys, and follow it by a copy.
    pub noise: bool,
    /// Answer Chassis Control with this completion code.
    pub refuse_chassis_control: Option<u8>,
    sessions: HashMap<u32, ServerSession>,
    pending: HashMap<u32, Pending>,
}

impl State {
    /// Sessions the responder holds.
    pub fn active_sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Forgets every session (as a BMC restart would): packets for them are then
    /// dropped silently.
    pub fn forget_sessions(&mut self) {
        self.sessions.clear();
    }
}

#[derive(Debug, Clone)]
struct Pending {
    console_sid: u32,
    sha256: bool,
    rakp1: Option<Rakp1Seen>,
}

/// What RAKP 1 and 2 fixed: user name, Rm, role byte, Rc.
#[derive(Debug, Clone)]
struct Rakp1Seen {
    user: Vec<u8>,
    rm: [u8; 16],
    role: u8,
    rc: [u8; 16],
}

#[derive(Debug, Clone)]
struct ServerSession {
    console_sid: u32,
    sha256: bool,
    k1: Vec<u8>,
    aes_key: [u8; 16],
    out_seq: u32,
    /// The last genuine answer packet, for the replay decoy.
    last_answer: Option<Vec<u8>>,
}

/// A running responder on 127.0.0.1.
pub struct Responder {
    /// Its UDP port.
    pub port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Responder {
    /// Starts a responder with the chassis powered off.
    pub fn start() -> Responder {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let port = socket.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let state = Arc::clone(&state);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || serve(&socket, &state, &stop))
        };
        Responder {
            port,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// The shared state.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(socket: &UdpSocket, state: &Mutex<State>, stop: &AtomicBool) {
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        for out in handle(&mut st, &buf[..n]) {
            let _ = socket.send_to(&out, from);
        }
    }
}

// ---- crypto, written against the primitives directly ----

fn hmac(sha256: bool, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    if sha256 {
        let mut m = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).unwrap();
        parts.iter().for_each(|p| m.update(p));
        m.finalize().into_bytes().to_vec()
    } else {
        let mut m = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(key).unwrap();
        parts.iter().for_each(|p| m.update(p));
        m.finalize().into_bytes().to_vec()
    }
}

fn icv_len(sha256: bool) -> usize {
    if sha256 { 16 } else { 12 }
}

fn aes_cbc_encrypt(key: &[u8; 16], payload: &[u8]) -> Vec<u8> {
    let cipher = Aes128::new(&(*key).into());
    let mut iv = [0u8; 16];
    getrandom::fill(&mut iv).unwrap();
    let mut plain = payload.to_vec();
    let pad = (16 - (payload.len() + 1) % 16) % 16;
    plain.extend((1..=pad as u8).collect::<Vec<_>>());
    plain.push(pad as u8);
    let mut out = iv.to_vec();
    let mut prev = iv;
    for chunk in plain.chunks(16) {
        let mut block = [0u8; 16];
        for i in 0..16 {
            block[i] = chunk[i] ^ prev[i];
        }
        let mut b = block.into();
        cipher.encrypt_block(&mut b);
        prev = b.into();
        out.extend_from_slice(&prev);
    }
    out
}

fn aes_cbc_decrypt(key: &[u8; 16], data: &[u8]) -> Option<Vec<u8>> {
    if data.len() < 32 || !data.len().is_multiple_of(16) {
        return None;
    }
    let cipher = Aes128::new(&(*key).into());
    let mut prev: [u8; 16] = data[..16].try_into().ok()?;
    let mut plain = Vec::new();
    for chunk in data[16..].chunks(16) {
        let c: [u8; 16] = chunk.try_into().ok()?;
        let mut b = c.into();
        cipher.decrypt_block(&mut b);
        let d: [u8; 16] = b.into();
        plain.extend(d.iter().zip(prev.iter()).map(|(x, y)| x ^ y));
        prev = c;
    }
    let pad = *plain.last()? as usize;
    if pad > 15 || pad + 1 > plain.len() {
        return None;
    }
    plain.truncate(plain.len() - 1 - pad);
    Some(plain)
}

// ---- packets ----

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn cksum(b: &[u8]) -> u8 {
    0u8.wrapping_sub(b.iter().fold(0u8, |a, x| a.wrapping_add(*x)))
}

fn ipmi_response(netfn: u8, rq_seq: u8, cmd: u8, cc: u8, data: &[u8]) -> Vec<u8> {
    let mut m = vec![0x81, (netfn | 1) << 2];
    m.push(cksum(&m));
    let mut body = vec![0x20, rq_seq << 2, cmd, cc];
    body.extend_from_slice(data);
    body.push(cksum(&body));
    m.extend_from_slice(&body);
    m
}

fn v2_unauthenticated(payload_type: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x06, 0x00, 0xFF, 0x07, 0x06, payload_type];
    p.extend_from_slice(&[0; 8]);
    p.extend_from_slice(&(payload.len() as u16).to_le_bytes());
    p.extend_from_slice(payload);
    p
}

fn v2_session_packet(s: &ServerSession, session_id: u32, seq: u32, message: &[u8]) -> Vec<u8> {
    let enc = aes_cbc_encrypt(&s.aes_key, message);
    let mut p = vec![0x06, 0x00, 0xFF, 0x07, 0x06, 0xC0];
    p.extend_from_slice(&session_id.to_le_bytes());
    p.extend_from_slice(&seq.to_le_bytes());
    p.extend_from_slice(&(enc.len() as u16).to_le_bytes());
    p.extend_from_slice(&enc);
    while (p.len() - 4 + 2) % 4 != 0 {
        p.push(0xFF);
    }
    let pad = ((p.len() - 4 - 12 - enc.len()) as u8) & 0x03;
    p.push(pad);
    p.push(0x07);
    let mut code = hmac(s.sha256, &s.k1, &[&p[4..]]);
    code.truncate(icv_len(s.sha256));
    p.extend_from_slice(&code);
    p
}

fn handle(st: &mut State, d: &[u8]) -> Vec<Vec<u8>> {
    if d.len() < 16 || d[..4] != [0x06, 0x00, 0xFF, 0x07] {
        return vec![];
    }
    match d[4] {
        0x00 => handle_v15(d),
        0x06 => {
            let pt = d[5];
            let sid = le32(&d[6..10]);
            let seq = le32(&d[10..14]);
            let len = u16::from_le_bytes([d[14], d[15]]) as usize;
            let Some(payload) = d.get(16..16 + len) else {
                return vec![];
            };
            match pt & 0x3F {
                0x10 => open_session(st, payload),
                0x12 => rakp1(st, payload),
                0x14 => rakp3(st, payload),
                0x00 if pt & 0xC0 == 0xC0 => session_request(st, d, sid, seq, len),
                _ => vec![],
            }
        }
        _ => vec![],
    }
}

fn handle_v15(d: &[u8]) -> Vec<Vec<u8>> {
    // RMCP(4) authtype(1) seq(4) sid(4) len(1) msg
    let Some(msg) = d.get(14..14 + d[13] as usize) else {
        return vec![];
    };
    if msg.len() < 7 || msg[1] >> 2 != 0x06 || msg[5] != 0x38 {
        return vec![];
    }
    let rq_seq = msg[4] >> 2;
    // Channel 1; IPMI v2.0 extended data; MD5; non-null user names; IPMI v2.0.
    let resp = ipmi_response(0x06, rq_seq, 0x38, 0, &[0x01, 0x84, 0x04, 0x02, 0, 0, 0, 0]);
    let mut p = vec![0x06, 0x00, 0xFF, 0x07, 0x00, 0, 0, 0, 0, 0, 0, 0, 0];
    p.push(resp.len() as u8);
    p.extend_from_slice(&resp);
    vec![p]
}

fn open_session(st: &mut State, p: &[u8]) -> Vec<Vec<u8>> {
    if p.len() < 32 {
        return vec![];
    }
    let tag = p[0];
    let console_sid = le32(&p[4..8]);
    let (auth, integ, conf) = (p[12], p[20], p[28]);
    let sha256 = match (auth, integ, conf) {
        (0x01, 0x01, 0x01) => false,
        (0x03, 0x04, 0x01) => true,
        _ => {
            let mut r = vec![tag, 0x11, 0, 0];
            r.extend_from_slice(&console_sid.to_le_bytes());
            return vec![v2_unauthenticated(0x11, &r)];
        }
    };
    let mut bmc_sid = [0u8; 4];
    getrandom::fill(&mut bmc_sid).unwrap();
    let bmc_sid = u32::from_le_bytes(bmc_sid) | 1;
    st.pending.insert(
        bmc_sid,
        Pending {
            console_sid,
            sha256,
            rakp1: None,
        },
    );
    let mut r = vec![tag, 0x00, 0x04, 0];
    r.extend_from_slice(&console_sid.to_le_bytes());
    r.extend_from_slice(&bmc_sid.to_le_bytes());
    r.extend_from_slice(&[0x00, 0, 0, 8, auth, 0, 0, 0]);
    r.extend_from_slice(&[0x01, 0, 0, 8, integ, 0, 0, 0]);
    r.extend_from_slice(&[0x02, 0, 0, 8, conf, 0, 0, 0]);
    vec![v2_unauthenticated(0x11, &r)]
}

fn rakp1(st: &mut State, p: &[u8]) -> Vec<Vec<u8>> {
    if p.len() < 28 {
        return vec![];
    }
    let tag = p[0];
    let bmc_sid = le32(&p[4..8]);
    let rm: [u8; 16] = p[8..24].try_into().unwrap();
    let role = p[24];
    let ulen = p[27] as usize;
    let Some(user) = p.get(28..28 + ulen) else {
        return vec![];
    };
    let Some(pending) = st.pending.get_mut(&bmc_sid) else {
        return vec![];
    };
    let console_sid = pending.console_sid;
    if user != USER.as_bytes() {
        let mut r = vec![tag, 0x0D, 0, 0];
        r.extend_from_slice(&console_sid.to_le_bytes());
        return vec![v2_unauthenticated(0x13, &r)];
    }
    let mut rc = [0u8; 16];
    getrandom::fill(&mut rc).unwrap();
    let code = hmac(
        pending.sha256,
        PASSWORD.as_bytes(),
        &[
            &console_sid.to_le_bytes(),
            &bmc_sid.to_le_bytes(),
            &rm,
            &rc,
            &GUID,
            &[role, ulen as u8],
            user,
        ],
    );
    pending.rakp1 = Some(Rakp1Seen {
        user: user.to_vec(),
        rm,
        role,
        rc,
    });
    let mut r = vec![tag, 0x00, 0, 0];
    r.extend_from_slice(&console_sid.to_le_bytes());
    r.extend_from_slice(&rc);
    r.extend_from_slice(&GUID);
    r.extend_from_slice(&code);
    vec![v2_unauthenticated(0x13, &r)]
}

fn rakp3(st: &mut State, p: &[u8]) -> Vec<Vec<u8>> {
    if p.len() < 8 {
        return vec![];
    }
    let (tag, status) = (p[0], p[1]);
    let bmc_sid = le32(&p[4..8]);
    let Some(pending) = st.pending.remove(&bmc_sid) else {
        return vec![];
    };
    if status != 0 {
        // The console gave up (it could not verify RAKP 2).
        return vec![];
    }
    let Some(Rakp1Seen { user, rm, role, rc }) = pending.rakp1 else {
        return vec![];
    };
    let sha256 = pending.sha256;
    let console_sid = pending.console_sid;
    let kuid = PASSWORD.as_bytes();
    let expect = hmac(
        sha256,
        kuid,
        &[
            &rc,
            &console_sid.to_le_bytes(),
            &[role, user.len() as u8],
            &user,
        ],
    );
    let mut r = vec![tag, 0x00, 0, 0];
    r.extend_from_slice(&console_sid.to_le_bytes());
    if p[8..] != expect[..] {
        r[1] = 0x0F;
        return vec![v2_unauthenticated(0x15, &r)];
    }
    let sik = hmac(sha256, kuid, &[&rm, &rc, &[role, user.len() as u8], &user]);
    let k1 = hmac(sha256, &sik, &[&[1u8; 20]]);
    let k2 = hmac(sha256, &sik, &[&[2u8; 20]]);
    let mut icv = hmac(sha256, &sik, &[&rm, &bmc_sid.to_le_bytes(), &GUID]);
    icv.truncate(icv_len(sha256));
    r.extend_from_slice(&icv);
    st.sessions.insert(
        bmc_sid,
        ServerSession {
            console_sid,
            sha256,
            k1,
            aes_key: k2[..16].try_into().unwrap(),
            out_seq: 0,
            last_answer: None,
        },
    );
    st.handshakes += 1;
    vec![v2_unauthenticated(0x15, &r)]
}

fn session_request(st: &mut State, d: &[u8], sid: u32, seq: u32, len: usize) -> Vec<Vec<u8>> {
    let Some(mut s) = st.sessions.get(&sid).cloned() else {
        return vec![];
    };
    let code_len = icv_len(s.sha256);
    if d.len() < 16 + len + 2 + code_len {
        return vec![];
    }
    let (signed, code) = d[4..].split_at(d.len() - 4 - code_len);
    let mut expect = hmac(s.sha256, &s.k1, &[signed]);
    expect.truncate(code_len);
    if expect != code {
        return vec![];
    }
    let Some(msg) = aes_cbc_decrypt(&s.aes_key, &d[16..16 + len]) else {
        return vec![];
    };
    if msg.len() < 7 {
        return vec![];
    }
    let netfn = msg[1] >> 2;
    let rq_seq = msg[4] >> 2;
    let cmd = msg[5];
    let data = msg[6..msg.len() - 1].to_vec();
    st.received.push(Received {
        session_seq: seq,
        rq_seq,
        netfn,
        cmd,
        data: data.clone(),
    });
    if st.drop_next > 0 {
        st.drop_next -= 1;
        return vec![];
    }
    let (cc, rdata) = command(st, sid, netfn, cmd, &data);
    let answer = ipmi_response(netfn, rq_seq, cmd, cc, &rdata);
    let mut out = Vec::new();
    if st.noise {
        // Every decoy carries "unspecified error", so that accepting one fails the
        // request.
        let poison = ipmi_response(netfn, rq_seq, cmd, 0xFF, &[]);
        out.push(vec![0x06, 0x00, 0xFF, 0x07, 0x06, 0xC0, 1, 2, 3]);
        s.out_seq += 1;
        out.push(v2_session_packet(
            &s,
            s.console_sid ^ 0x5A5A,
            s.out_seq,
            &poison,
        ));
        s.out_seq += 1;
        let mut bad = v2_session_packet(&s, s.console_sid, s.out_seq, &poison);
        let last = bad.len() - 1;
        bad[last] ^= 0x01;
        out.push(bad);
        s.out_seq += 1;
        let other_rq = ipmi_response(netfn, (rq_seq + 1) & 0x3F, cmd, 0xFF, &[]);
        out.push(v2_session_packet(&s, s.console_sid, s.out_seq, &other_rq));
        // A validly signed poison with a sequence number already used.
        let replayed_seq = s.out_seq;
        out.push(v2_session_packet(&s, s.console_sid, replayed_seq, &poison));
    }
    if cmd == 0x3C && netfn == 0x06 && cc == 0 {
        st.closes += 1;
        st.sessions.remove(&sid);
    }
    s.out_seq += 1;
    let genuine = v2_session_packet(&s, s.console_sid, s.out_seq, &answer);
    out.push(genuine.clone());
    if st.noise
        && let Some(prev) = s.last_answer.take()
    {
        // The previous answer again: a replay the console must ignore.
        out.push(prev);
    }
    s.last_answer = Some(genuine);
    if let Some(slot) = st.sessions.get_mut(&sid) {
        *slot = s;
    }
    out
}

fn command(st: &mut State, sid: u32, netfn: u8, cmd: u8, data: &[u8]) -> (u8, Vec<u8>) {
    match (netfn, cmd) {
        // Set Session Privilege Level.
        (0x06, 0x3B) => (0, vec![data.first().copied().unwrap_or(4)]),
        // Close Session.
        (0x06, 0x3C) if data.len() >= 4 && le32(data) == sid => (0, vec![]),
        (0x06, 0x3C) => (0x87, vec![]),
        // Get Device ID: Dell (674), product 1234h, firmware 2.45.
        (0x06, 0x01) => (
            0,
            vec![
                0x20, 0x81, 0x02, 0x45, 0x02, 0xBF, 0xA2, 0x02, 0x00, 0x34, 0x12,
            ],
        ),
        // Get Chassis Status.
        (0x00, 0x01) => (0, vec![u8::from(st.power_on), 0, 0, 0]),
        // Chassis Control.
        (0x00, 0x02) => {
            if let Some(cc) = st.refuse_chassis_control {
                return (cc, vec![]);
            }
            let Some(&action) = data.first() else {
                return (0xC7, vec![]);
            };
            st.chassis_controls.push(action);
            match action {
                0x00 | 0x05 => st.power_on = false,
                0x01 | 0x02 => st.power_on = true,
                0x03 => {}
                _ => return (0xCC, vec![]),
            }
            (0, vec![])
        }
        // Set System Boot Options.
        (0x00, 0x08) => match (data.first().map(|p| p & 0x7F), data.len()) {
            (Some(0), 2..) => {
                st.set_in_progress = data[1] & 0x03;
                (0, vec![])
            }
            (Some(4), 3..) => {
                st.boot_info_ack = [data[1], data[2]];
                (0, vec![])
            }
            (Some(5), 6..) => {
                st.boot_flags.copy_from_slice(&data[1..6]);
                (0, vec![])
            }
            (Some(0 | 4 | 5), _) => (0xC7, vec![]),
            _ => (0x80, vec![]),
        },
        // Get System Boot Options.
        (0x00, 0x09) => match data.first().map(|p| p & 0x7F) {
            Some(0) => (0, vec![0x01, 0x00, st.set_in_progress]),
            Some(4) => (
                0,
                vec![0x01, 0x04, st.boot_info_ack[0], st.boot_info_ack[1]],
            ),
            Some(5) => {
                let mut r = vec![0x01, 0x05];
                r.extend_from_slice(&st.boot_flags);
                (0, r)
            }
            _ => (0x80, vec![]),
        },
        _ => (0xC1, vec![]),
    }
}
