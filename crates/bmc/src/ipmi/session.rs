//! The RMCP+ client: session establishment (Get Channel Authentication
//! Capabilities, Open Session, RAKP 1-4, Set Session Privilege Level),
//! authenticated and encrypted requests, re-establishment, and Close Session.

use std::fmt;
use std::io;
use std::time::Duration;

use super::Config;
use super::commands::{
    self, BOOT_PARAM_BOOT_FLAGS, BOOT_PARAM_INFO_ACK, BOOT_PARAM_SET_IN_PROGRESS,
    CMD_CHASSIS_CONTROL, CMD_CLOSE_SESSION, CMD_GET_BOOT_OPTIONS, CMD_GET_CHANNEL_AUTH_CAPS,
    CMD_GET_CHASSIS_STATUS, CMD_GET_DEVICE_ID, CMD_SET_BOOT_OPTIONS, CMD_SET_SESSION_PRIVILEGE,
    NETFN_APP, NETFN_CHASSIS,
};
use super::crypto::{Exchange, SessionKeys, Suite, constant_time_eq};
use super::transport::{Link, Verdict};
use super::wire::{
    self, AlgorithmIds, OpenSessionRequest, Packet, PayloadType, Rakp1, Rakp34, Request, V2Header,
};
use crate::{Bmc, BmcInfo, BootOverride, Error, PowerAction, PowerState, Result};

/// RAKP 1 role byte bit 4: look the user up by name only (as ipmitool does).
const NAME_ONLY_LOOKUP: u8 = 0x10;
/// RMCP+ status "invalid integrity check value", sent in RAKP 3 when RAKP 2 fails.
const STATUS_INVALID_ICV: u8 = 0x0F;
/// Time allowed for each of the (at most two) Close Session transmissions on drop.
const CLOSE_TIMEOUT: Duration = Duration::from_millis(500);

/// An authenticated, encrypted RMCP+ session with one BMC.
///
/// Made by [`connect`](super::connect). Implements [`Bmc`]; dropping it sends Close
/// Session (best effort, at most about a second).
pub struct Session {
    cfg: Config,
    suite: Suite,
    link: Link,
    active: Option<Active>,
    rq_seq: u8,
    tag: u8,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("peer", &self.link.peer)
            .field("user", &self.cfg.user)
            .field("cipher_suite", &self.cfg.cipher_suite)
            .field(
                "session_id",
                &self.active.as_ref().map(|a| a.bmc_session_id),
            )
            .finish_non_exhaustive()
    }
}

/// The state of an established session.
#[derive(Debug)]
pub(crate) struct Active {
    /// Our session ID: the BMC's packets to us carry it.
    pub(crate) console_session_id: u32,
    /// The BMC's session ID: our packets carry it.
    pub(crate) bmc_session_id: u32,
    /// K1 and K2.
    pub(crate) keys: SessionKeys,
    /// The last session sequence number we sent.
    pub(crate) out_seq: u32,
    /// Which of the BMC's sequence numbers we have seen.
    pub(crate) window: ReplayWindow,
}

/// Anti-replay window over the BMC's session sequence numbers: the highest seen
/// and a bitmap of the 32 below it.
#[derive(Debug, Default, Clone)]
pub(crate) struct ReplayWindow {
    highest: u32,
    seen: u32,
}

impl ReplayWindow {
    /// Whether `seq` is new; records it if so.
    pub(crate) fn accept(&mut self, seq: u32) -> bool {
        if seq == 0 {
            return false;
        }
        if seq > self.highest {
            let shift = seq - self.highest;
            self.seen = if shift >= 32 { 0 } else { self.seen << shift };
            self.seen |= 1;
            self.highest = seq;
            return true;
        }
        let behind = self.highest - seq;
        if behind >= 32 {
            return false;
        }
        let bit = 1u32 << behind;
        if self.seen & bit != 0 {
            return false;
        }
        self.seen |= bit;
        true
    }
}

/// Opens the IPMI message of a packet from the BMC on an active session: the
/// packet must be an authenticated, encrypted IPMI payload for our session ID, with
/// a valid AuthCode and a sequence number not seen before. Returns the decrypted
/// IPMI message, or `None` for anything else.
pub(crate) fn open_session_packet(
    suite: &Suite,
    console_session_id: u32,
    keys: &SessionKeys,
    window: &mut ReplayWindow,
    datagram: &[u8],
) -> Option<Vec<u8>> {
    let Ok(Packet::V2(p)) = wire::decode_packet(datagram, suite.auth_code_len) else {
        return None;
    };
    let h = p.header;
    if h.payload_type != PayloadType::Ipmi
        || h.session_id != console_session_id
        || !h.authenticated
        || !h.encrypted
    {
        return None;
    }
    if !keys.verify(p.signed, p.auth_code) {
        return None;
    }
    if !window.accept(h.sequence) {
        return None;
    }
    keys.decrypt(p.payload)
}

/// The payload of an unauthenticated session-setup packet of type `want`.
pub(crate) fn setup_payload(datagram: &[u8], want: PayloadType) -> Option<&[u8]> {
    match wire::decode_packet(datagram, 0) {
        Ok(Packet::V2(p))
            if p.header.payload_type == want
                && !p.header.authenticated
                && !p.header.encrypted
                && p.header.session_id == 0 =>
        {
            Some(p.payload)
        }
        _ => None,
    }
}

/// The IPMI message of an out-of-session packet (v1.5, or v2.0 unauthenticated).
pub(crate) fn sessionless_message(datagram: &[u8]) -> Option<&[u8]> {
    match wire::decode_packet(datagram, 0) {
        Ok(Packet::V15(p)) if p.session_id == 0 => Some(p.message),
        Ok(Packet::V2(p))
            if p.header.payload_type == PayloadType::Ipmi
                && !p.header.authenticated
                && !p.header.encrypted
                && p.header.session_id == 0 =>
        {
            Some(p.payload)
        }
        _ => None,
    }
}

fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b)
        .map_err(|e| Error::Io(io::Error::other(format!("random number generator: {e}"))))?;
    Ok(b)
}

fn random_session_id() -> Result<u32> {
    loop {
        let id = u32::from_le_bytes(random_bytes::<4>()?);
        if id != 0 {
            return Ok(id);
        }
    }
}

impl Session {
    /// Opens the socket and establishes a session.
    pub(crate) fn connect(cfg: &Config) -> Result<Session> {
        let user_len = cfg.user.len();
        if user_len > 16 {
            return Err(Error::Auth(format!(
                "user name {:?} is {user_len} bytes; IPMI allows at most 16",
                cfg.user
            )));
        }
        if cfg.password.expose().len() > 20 {
            return Err(Error::Auth(format!(
                "the password of user {:?} is longer than the 20 bytes IPMI v2.0 allows",
                cfg.user
            )));
        }
        if let Some(kg) = &cfg.bmc_key
            && kg.expose().len() > 20
        {
            return Err(Error::Auth(
                "the BMC key (Kg) is longer than the 20 bytes IPMI v2.0 allows".to_string(),
            ));
        }
        let link = Link::open(&cfg.address, cfg.port, cfg.timeout, cfg.retries)?;
        let first = random_bytes::<2>()?;
        let mut session = Session {
            cfg: cfg.clone(),
            suite: cfg.cipher_suite.suite(),
            link,
            active: None,
            rq_seq: first[0] & 0x3F,
            tag: first[1],
        };
        session.establish()?;
        Ok(session)
    }

    /// Closes the session now and reports whether the BMC confirmed it. Dropping a
    /// session does the same, silently.
    pub fn close(mut self) -> Result<()> {
        self.close_session(self.link.timeout, self.link.retries)
    }

    /// The boot override the BMC holds (Get System Boot Options, parameter 5), or
    /// `None` when the boot flags are not valid or name another device.
    pub fn boot_override(&mut self) -> Result<Option<BootOverride>> {
        let data = self.request(
            "Get System Boot Options (boot flags)",
            NETFN_CHASSIS,
            CMD_GET_BOOT_OPTIONS,
            &[BOOT_PARAM_BOOT_FLAGS, 0, 0],
        )?;
        Ok(commands::parse_boot_flags(&data))
    }

    /// Sends any IPMI request on the session and returns the completion code and
    /// response data (re-establishing the session once if the BMC stopped
    /// answering).
    pub fn raw(&mut self, netfn: u8, cmd: u8, data: &[u8]) -> Result<(u8, Vec<u8>)> {
        if self.active.is_none() {
            self.establish()?;
        }
        match self.request_once(netfn, cmd, data) {
            Err(Error::Timeout { .. }) => {
                // The BMC may have forgotten the session (restart, inactivity
                // timeout) and now drops our packets: open a new one, once.
                self.active = None;
                self.establish()?;
                self.request_once(netfn, cmd, data)
            }
            other => other,
        }
    }

    fn next_rq_seq(&mut self) -> u8 {
        self.rq_seq = (self.rq_seq + 1) & 0x3F;
        self.rq_seq
    }

    fn next_tag(&mut self) -> u8 {
        self.tag = self.tag.wrapping_add(1);
        self.tag
    }

    fn user_label(&self) -> String {
        format!("user {:?} at {}", self.cfg.user, self.link.peer)
    }

    /// The error for a non-zero RMCP+ status code in a session-setup answer.
    fn status_error(&self, step: &str, status: u8) -> Error {
        let meaning = commands::rmcp_status_meaning(status);
        if commands::status_is_unsupported_suite(status) {
            Error::Unsupported(format!(
                "the BMC at {} does not accept {} ({step}: {meaning}, status {status:#04x})",
                self.link.peer, self.cfg.cipher_suite
            ))
        } else if commands::status_is_auth(status) {
            Error::Auth(format!(
                "{}: {step}: {meaning} (status {status:#04x})",
                self.user_label()
            ))
        } else if matches!(status, 0x01 | 0x0B) {
            Error::Refused {
                what: format!("a session for {}", self.user_label()),
                detail: format!("{meaning} (status {status:#04x})"),
            }
        } else {
            Error::Protocol(format!(
                "{step} from {}: {meaning} (status {status:#04x})",
                self.link.peer
            ))
        }
    }

    /// Runs the whole session setup and makes the session active.
    fn establish(&mut self) -> Result<()> {
        self.active = None;
        let privilege = self.cfg.privilege.code();
        let suite = self.suite;

        // 1. Get Channel Authentication Capabilities, IPMI v1.5 framing.
        let seq = self.next_rq_seq();
        let caps_data = commands::channel_auth_caps_request(privilege);
        let caps_packet = wire::encode_v15_unauthenticated(&wire::encode_request(&Request {
            netfn: NETFN_APP,
            cmd: CMD_GET_CHANNEL_AUTH_CAPS,
            seq,
            data: &caps_data,
        }));
        let (cc, caps) = self.link.exchange(
            || Ok(caps_packet.clone()),
            |d| match sessionless_message(d).and_then(|m| wire::decode_response(m).ok()) {
                Some(r)
                    if r.netfn == NETFN_APP + 1
                        && r.cmd == CMD_GET_CHANNEL_AUTH_CAPS
                        && r.seq == seq =>
                {
                    Verdict::Done((r.completion, r.data.to_vec()))
                }
                _ => Verdict::Discard,
            },
        )?;
        if cc != 0 {
            return Err(Error::Refused {
                what: "Get Channel Authentication Capabilities".to_string(),
                detail: commands::completion_code_meaning(NETFN_APP, CMD_GET_CHANNEL_AUTH_CAPS, cc),
            });
        }
        if !commands::supports_rmcp_plus(&caps) {
            return Err(Error::Unsupported(format!(
                "the BMC at {} does not offer IPMI v2.0 (RMCP+) on this channel",
                self.link.peer
            )));
        }

        // 2. Open Session.
        let console_session_id = random_session_id()?;
        let proposed = AlgorithmIds {
            auth: suite.auth,
            integrity: suite.integrity,
            confidentiality: suite.confidentiality,
        };
        let tag = self.next_tag();
        let open = wire::encode_v2(
            &setup_header(PayloadType::OpenSessionRequest),
            &wire::encode_open_session_request(&OpenSessionRequest {
                tag,
                // 0: the highest level the proposed algorithms allow, as ipmitool
                // asks; the level is requested in RAKP 1 and set afterwards.
                max_privilege: 0,
                console_session_id,
                algorithms: proposed,
            }),
        );
        let bmc_session_id = self.link.exchange(
            || Ok(open.clone()),
            |d| {
                let Some(r) = setup_payload(d, PayloadType::OpenSessionResponse)
                    .and_then(|p| wire::decode_open_session_response(p).ok())
                else {
                    return Verdict::Discard;
                };
                if r.tag != tag {
                    return Verdict::Discard;
                }
                if r.status != 0 {
                    return Verdict::Fail(self.status_error("Open Session", r.status));
                }
                if r.console_session_id != console_session_id {
                    return Verdict::Discard;
                }
                match r.accepted {
                    Some((id, chosen)) if chosen == proposed && id != 0 => Verdict::Done(id),
                    Some((_, chosen)) if chosen != proposed => {
                        Verdict::Fail(Error::Protocol(format!(
                            "the BMC at {} answered {} with other algorithms ({chosen:?})",
                            self.link.peer, self.cfg.cipher_suite
                        )))
                    }
                    _ => Verdict::Fail(Error::Protocol(format!(
                        "the BMC at {} gave session ID 0",
                        self.link.peer
                    ))),
                }
            },
        )?;

        // 3. RAKP 1 and 2.
        let console_random = random_bytes::<16>()?;
        let role = privilege | NAME_ONLY_LOOKUP;
        let user = self.cfg.user.as_bytes().to_vec();
        let tag = self.next_tag();
        let rakp1 = wire::encode_v2(
            &setup_header(PayloadType::Rakp1),
            &wire::encode_rakp1(&Rakp1 {
                tag,
                bmc_session_id,
                console_random,
                role,
                user: user.clone(),
            }),
        );
        let rakp2 = self.link.exchange(
            || Ok(rakp1.clone()),
            |d| {
                let Some(r) =
                    setup_payload(d, PayloadType::Rakp2).and_then(|p| wire::decode_rakp2(p).ok())
                else {
                    return Verdict::Discard;
                };
                if r.tag != tag {
                    return Verdict::Discard;
                }
                if r.status != 0 {
                    return Verdict::Fail(self.status_error("RAKP 2", r.status));
                }
                match r.accepted {
                    Some(a) if r.console_session_id == console_session_id => Verdict::Done(a),
                    _ => Verdict::Discard,
                }
            },
        )?;
        let exchange = Exchange {
            console_session_id,
            bmc_session_id,
            console_random,
            bmc_random: rakp2.bmc_random,
            bmc_guid: rakp2.bmc_guid,
            role,
            user,
        };
        let password = self.cfg.password.clone();
        let kuid = password.expose().as_bytes();
        if !constant_time_eq(&exchange.rakp2_code(suite.hash, kuid), &rakp2.auth_code) {
            // Tell the BMC, so that it frees the half-open session (as ipmitool does).
            let tag = self.next_tag();
            self.link.send_only(&wire::encode_v2(
                &setup_header(PayloadType::Rakp3),
                &wire::encode_rakp34(&Rakp34 {
                    tag,
                    status: STATUS_INVALID_ICV,
                    session_id: bmc_session_id,
                    code: Vec::new(),
                }),
            ));
            return Err(Error::Auth(format!(
                "{}: wrong password (the BMC's RAKP 2 key exchange code does not match)",
                self.user_label()
            )));
        }

        // 4. RAKP 3 and 4.
        let tag = self.next_tag();
        let rakp3 = wire::encode_v2(
            &setup_header(PayloadType::Rakp3),
            &wire::encode_rakp34(&Rakp34 {
                tag,
                status: 0,
                session_id: bmc_session_id,
                code: exchange.rakp3_code(suite.hash, kuid),
            }),
        );
        let icv = self.link.exchange(
            || Ok(rakp3.clone()),
            |d| {
                let Some(r) =
                    setup_payload(d, PayloadType::Rakp4).and_then(|p| wire::decode_rakp34(p).ok())
                else {
                    return Verdict::Discard;
                };
                if r.tag != tag {
                    return Verdict::Discard;
                }
                if r.status != 0 {
                    return Verdict::Fail(self.status_error("RAKP 4", r.status));
                }
                if r.session_id != console_session_id {
                    return Verdict::Discard;
                }
                Verdict::Done(r.code)
            },
        )?;
        let bmc_key = self.cfg.bmc_key.clone();
        let kg = match &bmc_key {
            Some(k) if !k.expose().is_empty() => k.expose().as_bytes(),
            _ => kuid,
        };
        let sik = exchange.sik(suite.hash, kg);
        if !constant_time_eq(&exchange.rakp4_icv(&suite, &sik), &icv) {
            return Err(Error::Auth(format!(
                "{}: the BMC's RAKP 4 integrity check value does not match \
                 (does the BMC need a BMC key, Kg?)",
                self.user_label()
            )));
        }
        self.active = Some(Active {
            console_session_id,
            bmc_session_id,
            keys: SessionKeys::derive(suite, &sik),
            out_seq: 0,
            window: ReplayWindow::default(),
        });

        // 5. Set Session Privilege Level.
        let (cc, _) = self.request_once(NETFN_APP, CMD_SET_SESSION_PRIVILEGE, &[privilege])?;
        if cc != 0 {
            self.close_session(CLOSE_TIMEOUT, 1).ok();
            return Err(Error::Refused {
                what: format!(
                    "privilege level {} for {}",
                    self.cfg.privilege,
                    self.user_label()
                ),
                detail: commands::completion_code_meaning(NETFN_APP, CMD_SET_SESSION_PRIVILEGE, cc),
            });
        }
        Ok(())
    }

    /// Sends one request on the active session and waits for its response, with
    /// retransmissions (same rqSeq, new session sequence number, as ipmitool).
    fn request_once(&mut self, netfn: u8, cmd: u8, data: &[u8]) -> Result<(u8, Vec<u8>)> {
        let seq = self.next_rq_seq();
        let msg = wire::encode_request(&Request {
            netfn,
            cmd,
            seq,
            data,
        });
        let suite = self.suite;
        let Some(Active {
            console_session_id,
            bmc_session_id,
            keys,
            out_seq,
            window,
        }) = self.active.as_mut()
        else {
            return Err(Error::Protocol("no active session".to_string()));
        };
        let (console_session_id, bmc_session_id) = (*console_session_id, *bmc_session_id);
        let keys = &*keys;
        self.link.exchange(
            || {
                *out_seq = out_seq.wrapping_add(1).max(1);
                let payload = keys.encrypt(&msg).map_err(|e| {
                    Error::Io(io::Error::other(format!("random number generator: {e}")))
                })?;
                let mut packet = wire::encode_v2(
                    &V2Header {
                        payload_type: PayloadType::Ipmi,
                        encrypted: true,
                        authenticated: true,
                        session_id: bmc_session_id,
                        sequence: *out_seq,
                    },
                    &payload,
                );
                let code = keys.auth_code(wire::integrity_region(&packet));
                packet.extend_from_slice(&code);
                Ok(packet)
            },
            |d| {
                let Some(plain) = open_session_packet(&suite, console_session_id, keys, window, d)
                else {
                    return Verdict::Discard;
                };
                match wire::decode_response(&plain) {
                    Ok(r) if r.netfn == netfn + 1 && r.cmd == cmd && r.seq == seq => {
                        Verdict::Done((r.completion, r.data.to_vec()))
                    }
                    _ => Verdict::Discard,
                }
            },
        )
    }

    /// [`Self::raw`], with a non-zero completion code turned into
    /// [`Error::Refused`].
    fn request(&mut self, what: &str, netfn: u8, cmd: u8, data: &[u8]) -> Result<Vec<u8>> {
        let (cc, data) = self.raw(netfn, cmd, data)?;
        if cc != 0 {
            return Err(Error::Refused {
                what: what.to_string(),
                detail: commands::completion_code_meaning(netfn, cmd, cc),
            });
        }
        Ok(data)
    }

    /// Sends Close Session with the given timing; forgets the session either way.
    fn close_session(&mut self, timeout: Duration, retries: u32) -> Result<()> {
        let Some(active) = self.active.as_ref() else {
            return Ok(());
        };
        let id = active.bmc_session_id.to_le_bytes();
        let saved = (self.link.timeout, self.link.retries);
        self.link.timeout = timeout;
        self.link.retries = retries;
        let result = self.request_once(NETFN_APP, CMD_CLOSE_SESSION, &id);
        (self.link.timeout, self.link.retries) = saved;
        self.active = None;
        let (cc, _) = result?;
        if cc != 0 {
            return Err(Error::Refused {
                what: "Close Session".to_string(),
                detail: commands::completion_code_meaning(NETFN_APP, CMD_CLOSE_SESSION, cc),
            });
        }
        Ok(())
    }

    /// Sets a boot option whose refusal is not an error; returns the completion
    /// code.
    fn set_optional_boot_option(&mut self, data: &[u8]) -> Result<u8> {
        let (cc, _) = self.raw(NETFN_CHASSIS, CMD_SET_BOOT_OPTIONS, data)?;
        Ok(cc)
    }
}

fn setup_header(payload_type: PayloadType) -> V2Header {
    V2Header {
        payload_type,
        encrypted: false,
        authenticated: false,
        session_id: 0,
        sequence: 0,
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let timeout = self.link.timeout.min(CLOSE_TIMEOUT);
        let _ = self.close_session(timeout, 1);
    }
}

impl Bmc for Session {
    fn power_state(&mut self) -> Result<PowerState> {
        let data = self.request(
            "Get Chassis Status",
            NETFN_CHASSIS,
            CMD_GET_CHASSIS_STATUS,
            &[],
        )?;
        commands::parse_chassis_status(&data)
    }

    fn power(&mut self, action: PowerAction) -> Result<()> {
        self.request(
            &format!("Chassis Control (power {action})"),
            NETFN_CHASSIS,
            CMD_CHASSIS_CONTROL,
            &[commands::chassis_control_code(action)],
        )?;
        Ok(())
    }

    /// Sets boot flags the way `ipmitool chassis bootdev` does: "set in progress",
    /// boot info acknowledge, boot flags (parameter 5), "commit write", "set
    /// complete". Parameters 0 and 4 are optional on BMCs: their refusals are
    /// ignored; a refusal of the boot flags is an error.
    fn set_boot(&mut self, boot: BootOverride) -> Result<()> {
        let flags = commands::boot_flags_request(boot)?;
        // Set in progress.
        let in_progress = self.set_optional_boot_option(&[BOOT_PARAM_SET_IN_PROGRESS, 0x01])? == 0;
        // Write mask: BIOS/POST bit; data: "not yet handled by BIOS".
        self.set_optional_boot_option(&[BOOT_PARAM_INFO_ACK, 0x01, 0x01])?;
        let result = self.request(
            "Set System Boot Options (boot flags)",
            NETFN_CHASSIS,
            CMD_SET_BOOT_OPTIONS,
            &flags,
        );
        if in_progress {
            if result.is_ok() {
                // Commit write.
                self.set_optional_boot_option(&[BOOT_PARAM_SET_IN_PROGRESS, 0x02])?;
            }
            // Set complete.
            self.set_optional_boot_option(&[BOOT_PARAM_SET_IN_PROGRESS, 0x00])?;
        }
        result.map(|_| ())
    }

    fn info(&mut self) -> Result<BmcInfo> {
        let data = self.request("Get Device ID", NETFN_APP, CMD_GET_DEVICE_ID, &[])?;
        commands::parse_device_id(&data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_window() {
        let mut w = ReplayWindow::default();
        assert!(!w.accept(0));
        assert!(w.accept(1));
        assert!(!w.accept(1));
        assert!(w.accept(3));
        assert!(w.accept(2));
        assert!(!w.accept(2));
        assert!(w.accept(100));
        assert!(!w.accept(3));
        assert!(w.accept(99));
        assert!(w.accept(69));
        assert!(!w.accept(68));
        assert!(w.accept(u32::MAX));
        assert!(!w.accept(u32::MAX));
    }
}
