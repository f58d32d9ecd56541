//! One read transfer as a sans-IO state machine, in the style of quinn-proto's
//! `Connection`: no socket, no clock, no file.
//!
//! Inputs: [`Transfer::handle`] (a datagram received on the transfer's socket, with
//! its source address) and [`Transfer::handle_timeout`] (the time has come; calling it
//! early does nothing). Outputs: [`Transfer::poll_transmit`] (the next datagram to
//! send, call it until `None`) and [`Transfer::poll_timeout`] (when to call
//! `handle_timeout` next). The data is read through [`ReadAt`], synchronously, one
//! block at a time, as packets are polled.
//!
//! Behaviour:
//! - options are negotiated once, from the request and the data's size (see
//!   [`negotiate`]); when any is accepted the transfer starts with an OACK and waits for
//!   ACK 0, else it starts with DATA 1;
//! - up to `windowsize` blocks are sent before waiting (RFC 7440; 1 without the
//!   option); an ACK for block k of the window moves the window to start at k+1 and
//!   sends it at once; an ACK that moves nothing (a duplicate) is ignored: only the
//!   timer resends, which prevents the Sorcerer's Apprentice syndrome (RFC 1123 4.2.3.1);
//! - with no progress until the deadline, the current window (or the OACK) is sent
//!   again and the timeout doubles (up to [`Config::max_timeout`]); after
//!   [`Config::max_retries`] resends without progress the transfer ends with an ERROR;
//! - block numbers are kept as `u64` and sent modulo 65536: past block 65535 comes
//!   block 0 (what tftp-hpa, atftp, dnsmasq and PXE clients expect);
//! - the last block is shorter than `blksize` (empty when the size is a multiple of it);
//!   its ACK completes the transfer;
//! - an ERROR from the client ends the transfer at once, with no answer and no resend:
//!   firmware asks for `tsize`, reads the OACK and sends ERROR 8;
//! - a datagram from any other address or port than the client's (another TID) gets
//!   ERROR 5 and changes nothing else;
//! - other packets from the client (garbage, DATA, RRQ) are ignored.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::Config;
use crate::request::{Request, RequestedOptions};
use crate::wire::{ErrorCode, Opcode, OptionRepr, Repr};

/// At most this many ERROR 5 answers to strangers wait to be sent; more are dropped.
const MAX_PENDING_STRAYS: usize = 8;

/// Data that can be read at any offset: what a transfer sends.
///
/// Implemented for byte slices and vectors, and by [`crate::source::Content`] for files
/// (read with `pread`, never loaded whole).
pub trait ReadAt {
    /// The data's length in bytes, fixed for the transfer.
    fn size(&self) -> u64;
    /// Reads bytes at `offset` into `buf`; returns how many (0 at the end).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
}

impl ReadAt for [u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.len());
        let src = self.get(start..).unwrap_or(&[]);
        let n = src.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), src.get(..n)) {
            dst.copy_from_slice(src);
        }
        Ok(n)
    }
}

impl ReadAt for Vec<u8> {
    fn size(&self) -> u64 {
        self.as_slice().size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.as_slice().read_at(offset, buf)
    }
}

impl<T: ReadAt + ?Sized> ReadAt for &T {
    fn size(&self) -> u64 {
        (**self).size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        (**self).read_at(offset, buf)
    }
}

impl<T: ReadAt + ?Sized> ReadAt for Box<T> {
    fn size(&self) -> u64 {
        (**self).size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        (**self).read_at(offset, buf)
    }
}

impl<T: ReadAt + ?Sized> ReadAt for Arc<T> {
    fn size(&self) -> u64 {
        (**self).size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        (**self).read_at(offset, buf)
    }
}

/// What was agreed with the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// Bytes per DATA block: 512, or the client's `blksize` clamped to
    /// [`Config::max_blksize`].
    pub blksize: u16,
    /// Blocks sent before waiting for an ACK: 1, or the client's `windowsize` clamped
    /// to [`Config::max_windowsize`].
    pub windowsize: u16,
    /// The first retransmission timeout: the client's `timeout` when it is at most
    /// [`Config::max_client_timeout`], else [`Config::timeout`].
    pub timeout: Duration,
    /// Whether the client's `timeout` was accepted (and goes in the OACK; RFC 2349
    /// lets a server only echo it or leave it out).
    pub timeout_accepted: bool,
    /// The size announced in the OACK, when the client asked for `tsize`.
    pub tsize: Option<u64>,
    /// Whether the transfer starts with an OACK (some option was accepted).
    pub oack: bool,
}

/// Negotiates the options of a request for data of `size` bytes.
///
/// ```
/// use slipway_tftp::Config;
/// use slipway_tftp::request::RequestedOptions;
/// use slipway_tftp::transfer::negotiate;
///
/// let asked = RequestedOptions { blksize: Some(65464), tsize: true, ..Default::default() };
/// let agreed = negotiate(&asked, 1000, &Config::default());
/// assert_eq!(agreed.blksize, 1468); // clamped so a block fits a 1500-byte MTU
/// assert_eq!(agreed.tsize, Some(1000));
/// assert!(agreed.oack);
/// ```
pub fn negotiate(options: &RequestedOptions, size: u64, config: &Config) -> Negotiated {
    let max_blksize = config.max_blksize.clamp(8, 65464);
    let blksize = options.blksize.map(|b| b.clamp(8, max_blksize));
    let windowsize = options
        .windowsize
        .map(|w| w.clamp(1, config.max_windowsize.max(1)));
    // A long client timeout would let one request hold a transfer slot for minutes.
    let timeout = options
        .timeout
        .map(|t| Duration::from_secs(u64::from(t)))
        .filter(|t| *t <= config.max_client_timeout);
    let tsize = options.tsize.then_some(size);
    Negotiated {
        blksize: blksize.unwrap_or(512),
        windowsize: windowsize.unwrap_or(1),
        timeout: timeout.unwrap_or(config.timeout),
        timeout_accepted: timeout.is_some(),
        tsize,
        oack: blksize.is_some() || windowsize.is_some() || timeout.is_some() || tsize.is_some(),
    }
}

/// A datagram to send; its bytes are in the buffer given to [`Transfer::poll_transmit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// Where to send it.
    pub destination: SocketAddr,
    /// Its length (the buffer's length).
    pub size: usize,
}

/// How a transfer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The client acknowledged the last block.
    Complete,
    /// The client sent an ERROR. `before_data` is true when it came before any DATA was
    /// sent (after the OACK): the firmware habit of probing `tsize`.
    ClientError {
        /// The client's error code.
        code: ErrorCode,
        /// The client's message.
        message: String,
        /// No DATA had been sent yet.
        before_data: bool,
    },
    /// No progress after [`Config::max_retries`] resends; the client got an ERROR.
    TimedOut,
    /// Reading the data failed; the client got an ERROR.
    ReadFailed(String),
    /// The data ended before its announced size (a file shrank while being sent); the
    /// client got an ERROR.
    Truncated,
    /// [`Transfer::cancel`] was called; the client got an ERROR.
    Cancelled,
}

/// Counters of one transfer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// DATA packets sent, first sends and resends.
    pub data_sent: u64,
    /// DATA packets sent for a block already sent before.
    pub data_resent: u64,
    /// OACK packets sent.
    pub oack_sent: u64,
    /// Deadlines that passed without progress.
    pub timeouts: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The OACK was sent; waiting for ACK 0.
    AwaitOackAck,
    /// Sending blocks.
    Sending,
}

/// One read transfer to one client (see the module docs).
///
/// ```
/// use std::time::Instant;
/// use slipway_tftp::Config;
/// use slipway_tftp::request::parse_request;
/// use slipway_tftp::transfer::Transfer;
/// use slipway_tftp::wire::Repr;
///
/// let client = "192.0.2.10:2070".parse().unwrap();
/// let request = parse_request(b"\x00\x01hello.txt\x00octet\x00").unwrap().unwrap();
/// let now = Instant::now();
/// let mut transfer = Transfer::new(now, client, &request, b"hi!".to_vec(), &Config::default());
///
/// let mut buf = Vec::new();
/// let sent = transfer.poll_transmit(&mut buf).unwrap();
/// assert_eq!(sent.destination, client);
/// assert_eq!(Repr::parse_bytes(&buf).unwrap(), Repr::Data { block: 1, data: b"hi!" });
/// assert!(transfer.poll_transmit(&mut buf).is_none());
///
/// transfer.handle(now, client, b"\x00\x04\x00\x01"); // ACK 1: the last block
/// assert!(transfer.is_finished());
/// ```
#[derive(Debug)]
pub struct Transfer<D> {
    peer: SocketAddr,
    data: D,
    size: u64,
    negotiated: Negotiated,
    /// The valid options the client asked for: the OACK echoes exactly these.
    requested: RequestedOptions,
    max_timeout: Duration,
    max_retries: u32,
    phase: Phase,
    /// Number of the last block (1-based; blocks are `blksize` bytes, the last shorter).
    last_block: u64,
    /// Highest block acknowledged (0: none).
    acked: u64,
    /// Next block to send, and the last one of the window being sent (inclusive).
    next: u64,
    end: u64,
    /// Highest block ever sent.
    highest_sent: u64,
    oack_pending: bool,
    retries: u32,
    interval: Duration,
    deadline: Option<Instant>,
    strays: VecDeque<SocketAddr>,
    error_pending: Option<(ErrorCode, &'static str)>,
    outcome: Option<Outcome>,
    stats: Stats,
}

impl<D: ReadAt> Transfer<D> {
    /// Starts a transfer of `data` to `peer` for `request`, at time `now`. The first
    /// packet (OACK or DATA 1) is ready in [`Transfer::poll_transmit`].
    pub fn new(
        now: Instant,
        peer: SocketAddr,
        request: &Request,
        data: D,
        config: &Config,
    ) -> Transfer<D> {
        let size = data.size();
        let negotiated = negotiate(&request.options, size, config);
        let last_block = size / u64::from(negotiated.blksize) + 1;
        let mut transfer = Transfer {
            peer,
            data,
            size,
            negotiated,
            requested: request.options,
            max_timeout: config.max_timeout.max(negotiated.timeout),
            max_retries: config.max_retries,
            phase: Phase::AwaitOackAck,
            last_block,
            acked: 0,
            next: 1,
            end: 0,
            highest_sent: 0,
            oack_pending: false,
            retries: 0,
            interval: negotiated.timeout,
            deadline: None,
            strays: VecDeque::new(),
            error_pending: None,
            outcome: None,
            stats: Stats::default(),
        };
        if negotiated.oack {
            transfer.oack_pending = true;
            transfer.deadline = Some(now + transfer.interval);
        } else {
            transfer.phase = Phase::Sending;
            transfer.progress(now, 0);
        }
        transfer
    }

    /// The client's address (its TID).
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The negotiated parameters.
    pub fn negotiated(&self) -> &Negotiated {
        &self.negotiated
    }

    /// The data's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes the client has acknowledged.
    pub fn bytes_acked(&self) -> u64 {
        self.acked
            .saturating_mul(u64::from(self.negotiated.blksize))
            .min(self.size)
    }

    /// Packets sent, resent and deadlines passed so far, for the completion log line.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// How the transfer ended; `None` while it runs.
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// The transfer has ended and has nothing more to send: drop it.
    pub fn is_finished(&self) -> bool {
        self.outcome.is_some() && self.error_pending.is_none()
    }

    /// When [`Transfer::handle_timeout`] must be called next; `None` once ended.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.outcome.is_some() {
            None
        } else {
            self.deadline
        }
    }

    /// Ends the transfer (server shutting down): the client gets ERROR 0 with `message`.
    pub fn cancel(&mut self, message: &'static str) {
        if self.outcome.is_none() {
            self.finish(Outcome::Cancelled, Some((ErrorCode::NotDefined, message)));
        }
    }

    /// Handles a datagram received on the transfer's socket from `from`.
    pub fn handle(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        if self.outcome.is_some() {
            return;
        }
        if from != self.peer {
            // RFC 1350: a packet from another TID gets ERROR 5; the transfer goes on.
            if self.strays.len() < MAX_PENDING_STRAYS {
                self.strays.push_back(from);
            }
            return;
        }
        let Ok(repr) = Repr::parse_bytes(datagram) else {
            return;
        };
        match (self.phase, repr) {
            (_, Repr::Error { code, message }) => {
                let before_data = self.stats.data_sent == 0;
                self.finish(
                    Outcome::ClientError {
                        code,
                        message: message.to_owned(),
                        before_data,
                    },
                    None,
                );
            }
            (Phase::AwaitOackAck, Repr::Ack { block: 0 }) => {
                self.phase = Phase::Sending;
                self.progress(now, 0);
            }
            (Phase::Sending, Repr::Ack { block }) => {
                // Which block in [acked, highest_sent] does this 16-bit number name?
                let ahead = u64::from(block.wrapping_sub(self.acked as u16));
                if ahead > 0 && self.acked + ahead <= self.highest_sent {
                    self.progress(now, self.acked + ahead);
                }
                // Else a duplicate or a block never sent: ignored, only the timer resends.
            }
            _ => {}
        }
    }

    /// Handles the passing of time: past the deadline, resends the OACK or the current
    /// window, or gives up. Does nothing before the deadline.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.outcome.is_some() {
            return;
        }
        match self.deadline {
            Some(deadline) if now >= deadline => {}
            _ => return,
        }
        self.stats.timeouts += 1;
        if self.retries >= self.max_retries {
            self.finish(
                Outcome::TimedOut,
                Some((ErrorCode::NotDefined, "timed out waiting for an ACK")),
            );
            return;
        }
        self.retries += 1;
        self.interval = self.interval.saturating_mul(2).min(self.max_timeout);
        match self.phase {
            Phase::AwaitOackAck => self.oack_pending = true,
            Phase::Sending => self.queue_window(),
        }
        self.deadline = Some(now + self.interval);
    }

    /// Writes the next datagram to send into `buf` (replacing its contents) and says
    /// where to send it; `None` when there is nothing to send now.
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> Option<Transmit> {
        if let Some(stranger) = self.strays.pop_front() {
            Repr::Error {
                code: ErrorCode::UnknownTransferId,
                message: "unknown transfer ID",
            }
            .emit(buf);
            return Some(self.transmit(stranger, buf));
        }
        if let Some((code, message)) = self.error_pending.take() {
            Repr::Error { code, message }.emit(buf);
            return Some(self.transmit(self.peer, buf));
        }
        if self.outcome.is_some() {
            return None;
        }
        if self.oack_pending {
            self.oack_pending = false;
            self.emit_oack(buf);
            self.stats.oack_sent += 1;
            return Some(self.transmit(self.peer, buf));
        }
        if self.phase == Phase::Sending && self.next <= self.end {
            let block = self.next;
            self.next += 1;
            return match self.emit_data(block, buf) {
                Ok(()) => {
                    self.stats.data_sent += 1;
                    if block <= self.highest_sent {
                        self.stats.data_resent += 1;
                    }
                    self.highest_sent = self.highest_sent.max(block);
                    Some(self.transmit(self.peer, buf))
                }
                Err(outcome) => {
                    let message = match outcome {
                        Outcome::Truncated => "file changed while being sent",
                        _ => "read error",
                    };
                    self.finish(outcome, None);
                    Repr::Error {
                        code: ErrorCode::NotDefined,
                        message,
                    }
                    .emit(buf);
                    Some(self.transmit(self.peer, buf))
                }
            };
        }
        None
    }

    fn transmit(&self, destination: SocketAddr, buf: &[u8]) -> Transmit {
        Transmit {
            destination,
            size: buf.len(),
        }
    }

    /// Block `acked` is acknowledged (0: the OACK, or the start): send the next window.
    fn progress(&mut self, now: Instant, acked: u64) {
        self.acked = acked;
        if acked >= self.last_block {
            self.finish(Outcome::Complete, None);
            return;
        }
        self.retries = 0;
        self.interval = self.negotiated.timeout;
        self.queue_window();
        self.deadline = Some(now + self.interval);
    }

    fn queue_window(&mut self) {
        self.next = self.acked + 1;
        self.end = self
            .acked
            .saturating_add(u64::from(self.negotiated.windowsize))
            .min(self.last_block);
    }

    fn finish(&mut self, outcome: Outcome, error: Option<(ErrorCode, &'static str)>) {
        self.outcome = Some(outcome);
        self.error_pending = error;
        self.deadline = None;
        self.oack_pending = false;
        self.strays.clear();
        self.end = 0;
    }

    fn emit_oack(&self, buf: &mut Vec<u8>) {
        let n = &self.negotiated;
        let blksize = n.blksize.to_string();
        let windowsize = n.windowsize.to_string();
        let timeout = n.timeout.as_secs().to_string();
        let tsize = n.tsize.map(|t| t.to_string());
        let asked = &self.requested;
        let mut options = Vec::with_capacity(4);
        if asked.blksize.is_some() {
            options.push(OptionRepr {
                name: "blksize",
                value: &blksize,
            });
        }
        if n.timeout_accepted {
            options.push(OptionRepr {
                name: "timeout",
                value: &timeout,
            });
        }
        if let Some(tsize) = &tsize {
            options.push(OptionRepr {
                name: "tsize",
                value: tsize,
            });
        }
        if asked.windowsize.is_some() {
            options.push(OptionRepr {
                name: "windowsize",
                value: &windowsize,
            });
        }
        Repr::Oack { options }.emit(buf);
    }

    /// Writes DATA `block` into `buf`, reading it from the data.
    fn emit_data(&mut self, block: u64, buf: &mut Vec<u8>) -> Result<(), Outcome> {
        let blksize = u64::from(self.negotiated.blksize);
        let offset = (block - 1).saturating_mul(blksize);
        let len = self.size.saturating_sub(offset).min(blksize) as usize;
        buf.clear();
        buf.extend_from_slice(&Opcode::Data.to_u16().to_be_bytes());
        buf.extend_from_slice(&(block as u16).to_be_bytes());
        buf.resize(4 + len, 0);
        let mut filled = 0;
        while filled < len {
            let Some(dst) = buf.get_mut(4 + filled..4 + len) else {
                return Err(Outcome::Truncated);
            };
            match self.data.read_at(offset + filled as u64, dst) {
                Ok(0) => return Err(Outcome::Truncated),
                Ok(n) => filled += n.min(len - filled),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Outcome::ReadFailed(e.to_string())),
            }
        }
        Ok(())
    }
}
