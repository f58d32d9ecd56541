//! Tests of the sans-IO core with simulated time and loss, after quinn-proto's
//! `tests/util.rs`: a [`Pair`] moves datagrams between a simulated client and the
//! server core ([`Endpoint`] + [`Transfer`]) with a fixed one-way latency, dropping the
//! ones a test chooses, and advances a virtual clock straight to the next event.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::Config;
use crate::request::{Accept, Endpoint, Ignored, TransferId};
use crate::testutil::Rng;
use crate::transfer::{Outcome, Transfer};
use crate::wire::{ErrorCode, OptionRepr, Repr, RequestRepr};

const fn addr(last: u8, port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, last), port))
}
const LISTEN: SocketAddr = addr(1, 69);
const SERVER_TID: SocketAddr = addr(1, 50000);
const CLIENT: SocketAddr = addr(10, 2070);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Dir {
    ToClient,
    ToServer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Rrq,
    Oack,
    Data(u16),
    Ack(u16),
    Error(u16),
    Other,
}

fn kind(bytes: &[u8]) -> Kind {
    match Repr::parse_bytes(bytes) {
        Ok(Repr::Rrq(_)) => Kind::Rrq,
        Ok(Repr::Oack { .. }) => Kind::Oack,
        Ok(Repr::Data { block, .. }) => Kind::Data(block),
        Ok(Repr::Ack { block }) => Kind::Ack(block),
        Ok(Repr::Error { code, .. }) => Kind::Error(code.to_u16()),
        _ => Kind::Other,
    }
}

/// One datagram sent, as the loss function and the assertions see it.
#[derive(Debug, Clone, Copy)]
struct Event {
    /// Time since the pair started.
    at: Duration,
    dir: Dir,
    kind: Kind,
    /// How many datagrams of this direction and kind were sent before this one.
    nth: u64,
    dropped: bool,
}

/// A TFTP client as real ones behave: ACKs each window (each block without
/// `windowsize`), ACKs the last in-order block on a gap or a duplicate (RFC 7440; for
/// lock-step that is tftp-hpa's re-ACK of a duplicate block), resends its last packet
/// on its own timeout, and keeps answering the last block after it is done (dally).
struct Client {
    addr: SocketAddr,
    request: Vec<u8>,
    blksize: usize,
    windowsize: u64,
    server: Option<SocketAddr>,
    received: Vec<u8>,
    expected: u64,
    in_window: u64,
    done: bool,
    error: Option<(ErrorCode, String)>,
    oack: Option<Vec<(String, String)>>,
    timeout: Duration,
    deadline: Option<Instant>,
    last_sent: Option<(SocketAddr, Vec<u8>)>,
    retries: u32,
    out: VecDeque<(SocketAddr, Vec<u8>)>,
    /// Answer the OACK with this error (the firmware `tsize` probe).
    abort_after_oack: Option<ErrorCode>,
    /// Send an ERROR instead of the ACK of this block.
    abort_at_block: Option<u64>,
    /// Send every ACK this many times.
    ack_copies: usize,
}

impl Client {
    fn new(options: &[(&str, &str)]) -> Client {
        let mut request = Vec::new();
        Repr::Rrq(RequestRepr {
            filename: "/boot/file.bin",
            mode: "octet",
            options: options
                .iter()
                .map(|&(name, value)| OptionRepr { name, value })
                .collect(),
        })
        .emit(&mut request);
        Client {
            addr: CLIENT,
            request,
            blksize: 512,
            windowsize: 1,
            server: None,
            received: Vec::new(),
            expected: 1,
            in_window: 0,
            done: false,
            error: None,
            oack: None,
            timeout: Duration::from_secs(3),
            deadline: None,
            last_sent: None,
            retries: 0,
            out: VecDeque::new(),
            abort_after_oack: None,
            abort_at_block: None,
            ack_copies: 1,
        }
    }

    fn finished(&self) -> bool {
        self.done || self.error.is_some()
    }

    fn send(&mut self, now: Instant, to: SocketAddr, bytes: Vec<u8>, copies: usize) {
        for _ in 0..copies {
            self.out.push_back((to, bytes.clone()));
        }
        self.last_sent = Some((to, bytes));
        if !self.finished() {
            self.deadline = Some(now + self.timeout);
        }
    }

    fn start(&mut self, now: Instant) {
        let rrq = self.request.clone();
        self.send(now, LISTEN, rrq, 1);
    }

    fn ack(&mut self, now: Instant, block: u64) {
        let mut bytes = Vec::new();
        Repr::Ack {
            block: block as u16,
        }
        .emit(&mut bytes);
        let to = self.server.unwrap_or(LISTEN);
        let copies = self.ack_copies;
        self.send(now, to, bytes, copies);
    }

    fn send_error(&mut self, now: Instant, code: ErrorCode) {
        let mut bytes = Vec::new();
        Repr::Error {
            code,
            message: "client gives up",
        }
        .emit(&mut bytes);
        self.error = Some((code, "sent by the client".into()));
        self.deadline = None;
        let to = self.server.unwrap_or(LISTEN);
        self.send(now, to, bytes, 1);
    }

    fn handle(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        if self.error.is_some() {
            return;
        }
        match self.server {
            None => self.server = Some(from),
            Some(server) if server != from => return,
            Some(_) => {}
        }
        let Ok(repr) = Repr::parse_bytes(bytes) else {
            return;
        };
        match repr {
            Repr::Oack { options } => {
                if self.expected != 1 {
                    return;
                }
                let mut got = Vec::new();
                for o in options {
                    if o.name == "blksize" {
                        self.blksize = o.value.parse().unwrap();
                    }
                    if o.name == "windowsize" {
                        self.windowsize = o.value.parse().unwrap();
                    }
                    got.push((o.name.to_owned(), o.value.to_owned()));
                }
                self.oack = Some(got);
                if let Some(code) = self.abort_after_oack {
                    self.send_error(now, code);
                } else {
                    self.ack(now, 0);
                }
            }
            Repr::Data { block, data } => {
                if self.done {
                    // Dally: the last ACK was lost, answer the resent last block.
                    if block == (self.expected - 1) as u16 {
                        self.ack(now, self.expected - 1);
                    }
                    return;
                }
                if block == self.expected as u16 {
                    let n = self.expected;
                    if self.abort_at_block == Some(n) {
                        self.send_error(now, ErrorCode::NotDefined);
                        return;
                    }
                    self.received.extend_from_slice(data);
                    self.expected += 1;
                    self.in_window += 1;
                    self.retries = 0;
                    if data.len() < self.blksize {
                        self.done = true;
                        self.deadline = None;
                        self.ack(now, n);
                    } else if self.in_window >= self.windowsize {
                        self.in_window = 0;
                        self.ack(now, n);
                    } else {
                        self.deadline = Some(now + self.timeout);
                    }
                } else {
                    // A gap or a duplicate: ACK the last block received in order.
                    self.in_window = 0;
                    self.ack(now, self.expected - 1);
                }
            }
            Repr::Error { code, message } => {
                self.error = Some((code, message.to_owned()));
                self.deadline = None;
            }
            _ => {}
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.finished() || self.deadline.is_none_or(|d| now < d) {
            return;
        }
        self.retries += 1;
        if self.retries > 8 {
            self.error = Some((ErrorCode::NotDefined, "client timed out".into()));
            self.deadline = None;
            return;
        }
        self.in_window = 0;
        if let Some((to, bytes)) = self.last_sent.clone() {
            self.send(now, to, bytes, 1);
        }
    }
}

struct Flight {
    at: Instant,
    from: SocketAddr,
    to: SocketAddr,
    bytes: Vec<u8>,
}

type LossFn = Box<dyn FnMut(&Event) -> bool>;

/// A simulated client and the server core, joined by a lossy link with latency.
struct Pair {
    start: Instant,
    now: Instant,
    latency: Duration,
    config: Config,
    endpoint: Endpoint,
    data: Arc<Vec<u8>>,
    server: Option<(TransferId, Transfer<Arc<Vec<u8>>>)>,
    /// Transfers that ended, newest last.
    ended: Vec<Transfer<Arc<Vec<u8>>>>,
    client: Client,
    flight: VecDeque<Flight>,
    loss: LossFn,
    counts: HashMap<(Dir, Kind), u64>,
    /// Every datagram sent (when `trace` is on).
    trace: bool,
    events: Vec<Event>,
    accepts: Vec<Accept>,
    /// ERRORs the server sent to addresses other than the client's.
    to_strangers: Vec<(SocketAddr, Kind)>,
    sent_to_client: u64,
    sent_to_server: u64,
}

impl Pair {
    fn new(data: Vec<u8>, client: Client) -> Pair {
        Pair::with_config(data, client, Config::default())
    }

    fn with_config(data: Vec<u8>, client: Client, config: Config) -> Pair {
        let start = Instant::now();
        Pair {
            start,
            now: start,
            latency: Duration::from_millis(1),
            endpoint: Endpoint::new(&config),
            config,
            data: Arc::new(data),
            server: None,
            ended: Vec::new(),
            client,
            flight: VecDeque::new(),
            loss: Box::new(|_| false),
            counts: HashMap::new(),
            trace: true,
            events: Vec::new(),
            accepts: Vec::new(),
            to_strangers: Vec::new(),
            sent_to_client: 0,
            sent_to_server: 0,
        }
    }

    fn loss(mut self, loss: impl FnMut(&Event) -> bool + 'static) -> Pair {
        self.loss = Box::new(loss);
        self
    }

    fn count(&self, dir: Dir, pred: impl Fn(Kind) -> bool) -> u64 {
        self.counts
            .iter()
            .filter(|((d, k), _)| *d == dir && pred(*k))
            .map(|(_, n)| n)
            .sum()
    }

    fn data_sent(&self) -> u64 {
        self.count(Dir::ToClient, |k| matches!(k, Kind::Data(_)))
    }

    /// Puts a datagram on the link (or drops it).
    fn send(&mut self, from: SocketAddr, to: SocketAddr, bytes: Vec<u8>) {
        let dir = if to == self.client.addr {
            Dir::ToClient
        } else {
            Dir::ToServer
        };
        let kind = kind(&bytes);
        let nth = self.counts.entry((dir, kind)).or_insert(0);
        let mut event = Event {
            at: self.now - self.start,
            dir,
            kind,
            nth: *nth,
            dropped: false,
        };
        *nth += 1;
        match dir {
            Dir::ToClient => self.sent_to_client += 1,
            Dir::ToServer => self.sent_to_server += 1,
        }
        event.dropped = (self.loss)(&event);
        if self.trace {
            self.events.push(event);
        }
        if !event.dropped {
            self.flight.push_back(Flight {
                at: self.now + self.latency,
                from,
                to,
                bytes,
            });
        }
    }

    /// Moves everything both sides want to send onto the link.
    fn flush(&mut self) {
        let mut buf = Vec::new();
        while let Some((_, transfer)) = self.server.as_mut() {
            let Some(transmit) = transfer.poll_transmit(&mut buf) else {
                break;
            };
            assert_eq!(transmit.size, buf.len());
            if transmit.destination != self.client.addr {
                self.to_strangers.push((transmit.destination, kind(&buf)));
                continue;
            }
            let bytes = std::mem::take(&mut buf);
            self.send(SERVER_TID, transmit.destination, bytes);
        }
        if let Some((id, transfer)) = self.server.take() {
            if transfer.is_finished() {
                self.endpoint.finished(CLIENT, id);
                self.ended.push(transfer);
            } else {
                self.server = Some((id, transfer));
            }
        }
        while let Some((to, bytes)) = self.client.out.pop_front() {
            let from = self.client.addr;
            self.send(from, to, bytes);
        }
    }

    fn deliver(&mut self, flight: Flight) {
        if flight.to == self.client.addr {
            self.client.handle(self.now, flight.from, &flight.bytes);
        } else if flight.to == LISTEN {
            let accept = self.endpoint.handle(flight.from, &flight.bytes);
            self.accepts.push(accept.clone());
            match accept {
                Accept::Start {
                    id,
                    request,
                    replaces,
                } => {
                    assert_eq!(
                        replaces, None,
                        "the simulated client never changes its request"
                    );
                    let transfer = Transfer::new(
                        self.now,
                        flight.from,
                        &request,
                        self.data.clone(),
                        &self.config,
                    );
                    self.server = Some((id, transfer));
                }
                Accept::Refuse(refusal) => self.send(LISTEN, flight.from, refusal.reply()),
                Accept::Ignore(_) => {}
            }
        } else if flight.to == SERVER_TID
            && let Some((_, transfer)) = self.server.as_mut()
        {
            transfer.handle(self.now, flight.from, &flight.bytes);
        }
    }

    fn server_done(&self) -> bool {
        self.server.is_none()
    }

    /// Runs until both sides are done and the link is empty, nothing is scheduled, or
    /// `limit` of virtual time has passed.
    fn run(&mut self, limit: Duration) {
        if self.client.last_sent.is_none() {
            self.client.start(self.now);
        }
        let end = self.start + limit;
        loop {
            self.flush();
            if self.client.finished() && self.server_done() && self.flight.is_empty() {
                return;
            }
            let next = [
                self.flight.front().map(|f| f.at),
                self.server.as_ref().and_then(|(_, t)| t.poll_timeout()),
                self.client.deadline,
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(next) = next else { return };
            if next > end {
                return;
            }
            self.now = self.now.max(next);
            while self.flight.front().is_some_and(|f| f.at <= self.now) {
                if let Some(flight) = self.flight.pop_front() {
                    self.deliver(flight);
                }
            }
            // Called at every step, mostly early: that must do nothing.
            if let Some((_, transfer)) = self.server.as_mut() {
                transfer.handle_timeout(self.now);
            }
            self.client.handle_timeout(self.now);
        }
    }

    fn outcome(&self) -> Option<&Outcome> {
        self.ended.last().and_then(|t| t.outcome())
    }

    fn assert_complete(&self) {
        assert!(
            self.client.done,
            "client not done: error {:?}",
            self.client.error
        );
        assert_eq!(self.outcome(), Some(&Outcome::Complete));
        assert!(
            self.client.received == *self.data,
            "received {} bytes, differing from the {} sent",
            self.client.received.len(),
            self.data.len()
        );
    }

    /// DATA blocks (wire numbers) sent to the client, in order.
    fn data_blocks(&self) -> Vec<u16> {
        self.events
            .iter()
            .filter(|e| e.dir == Dir::ToClient)
            .filter_map(|e| match e.kind {
                Kind::Data(b) => Some(b),
                _ => None,
            })
            .collect()
    }
}

fn random_data(seed: u64, len: usize) -> Vec<u8> {
    Rng::new(seed).bytes(len)
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

#[test]
fn lockstep_transfers_of_every_size_shape() {
    for size in [0usize, 1, 511, 512, 513, 1024, 5000, 512 * 9] {
        let mut pair = Pair::new(random_data(size as u64 + 1, size), Client::new(&[]));
        pair.run(secs(60.0));
        pair.assert_complete();
        let blocks = size as u64 / 512 + 1;
        assert_eq!(pair.data_sent(), blocks, "size {size}");
        assert_eq!(
            pair.count(Dir::ToServer, |k| matches!(k, Kind::Ack(_))),
            blocks
        );
        assert_eq!(
            pair.count(Dir::ToClient, |k| k == Kind::Oack),
            0,
            "no options, no OACK"
        );
        let last = pair.ended[0].stats();
        assert_eq!(last.data_resent, 0);
        // Exactly one round trip per block, the first DATA going out with the request's
        // arrival: nothing waited for a timer.
        assert_eq!(
            pair.now - pair.start,
            pair.latency * (2 * blocks as u32 + 1),
            "size {size}"
        );
        if size % 512 == 0 {
            assert_eq!(
                pair.events
                    .iter()
                    .rev()
                    .find(|e| e.dir == Dir::ToClient)
                    .map(|e| e.kind),
                Some(Kind::Data(blocks as u16)),
                "an empty final block ends a multiple of 512"
            );
        }
    }
}

#[test]
fn tsize_probe_then_error_8_stops_at_once() {
    let data = random_data(7, 100_000);
    let mut client = Client::new(&[("tsize", "0"), ("blksize", "1468")]);
    client.abort_after_oack = Some(ErrorCode::OptionsRefused);
    let mut pair = Pair::new(data, client);
    pair.run(secs(120.0));
    assert_eq!(
        pair.client.oack,
        Some(vec![
            ("blksize".into(), "1468".into()),
            ("tsize".into(), "100000".into())
        ])
    );
    assert_eq!(pair.sent_to_client, 1, "only the OACK: {:?}", pair.events);
    assert_eq!(pair.data_sent(), 0);
    let transfer = &pair.ended[0];
    assert!(transfer.is_finished());
    assert_eq!(transfer.poll_timeout(), None);
    assert!(matches!(
        transfer.outcome(),
        Some(Outcome::ClientError {
            code: ErrorCode::OptionsRefused,
            before_data: true,
            ..
        })
    ));
    assert_eq!(pair.endpoint.active(), 0, "the slot is free again");
    // The ended transfer stays silent whatever happens next.
    let mut transfer = pair.ended.pop().unwrap();
    transfer.handle_timeout(pair.now + secs(100.0));
    transfer.handle(pair.now, CLIENT, b"\x00\x04\x00\x00");
    assert!(transfer.poll_transmit(&mut Vec::new()).is_none());

    // The firmware then asks again without the probe, from another port: served.
    let mut pair2 = Pair::new(random_data(7, 100_000), Client::new(&[("blksize", "1468")]));
    pair2.run(secs(60.0));
    pair2.assert_complete();
}

#[test]
fn windows_of_4_and_16_survive_chosen_losses() {
    for window in [4u16, 16] {
        let w = window as u64;
        let ws = window.to_string();
        let data = random_data(w, 512 * 100 + 17);
        let client = Client::new(&[("windowsize", ws.as_str())]);
        // Lose: block 2 once, the ACK of the second window once, block w+3 twice.
        let pair = Pair::new(data, client).loss(move |e| match (e.dir, e.kind) {
            (Dir::ToClient, Kind::Data(2)) => e.nth == 0,
            (Dir::ToServer, Kind::Ack(b)) => b as u64 == 2 * w && e.nth == 0,
            (Dir::ToClient, Kind::Data(b)) => b as u64 == w + 3 && e.nth < 2,
            _ => false,
        });
        let mut pair = pair;
        pair.run(secs(120.0));
        pair.assert_complete();
        let blocks = pair.data_blocks();
        // Block 2 lost: the client sees 1 then 3, ACKs 1, and the server resends the
        // window from 2 at once (within one round trip, no timer).
        let first_ack1 = pair
            .events
            .iter()
            .find(|e| e.dir == Dir::ToServer && e.kind == Kind::Ack(1))
            .expect("an ACK of block 1");
        let next_data = pair
            .events
            .iter()
            .find(|e| {
                e.dir == Dir::ToClient && e.at > first_ack1.at && matches!(e.kind, Kind::Data(_))
            })
            .unwrap();
        assert_eq!(next_data.kind, Kind::Data(2), "window {window}");
        assert_eq!(
            next_data.at - first_ack1.at,
            pair.latency,
            "window {window}: resent at the ACK, not by a timer"
        );
        assert_eq!(blocks.iter().filter(|&&b| b == 2).count(), 2);
        let stats = pair.ended[0].stats();
        assert!(stats.timeouts >= 1, "the lost ACK needs the timer");
        // Each loss costs at most a window's worth of resends.
        assert!(stats.data_resent <= 4 * w, "window {window}: {stats:?}");
        assert_eq!(pair.ended[0].negotiated().windowsize, window);
    }
}

#[test]
fn windows_survive_random_loss_both_ways() {
    for window in [1u16, 4, 16] {
        for seed in 1..=12u64 {
            let ws = window.to_string();
            let data = random_data(seed, 1024 * 64 + 100);
            let client = Client::new(&[("windowsize", ws.as_str()), ("blksize", "1024")]);
            let mut rng = Rng::new(seed * 7919 + u64::from(window));
            let mut pair = Pair::new(data, client).loss(move |_| rng.below(100) < 10);
            pair.run(secs(600.0));
            pair.assert_complete();
            let lost = pair.events.iter().filter(|e| e.dropped).count() as u64;
            assert!(lost > 0, "seed {seed}: the loss function dropped nothing");
            let stats = pair.ended[0].stats();
            let bound = (lost + 1) * u64::from(window) * 2;
            assert!(
                stats.data_resent <= bound,
                "window {window} seed {seed}: {} resent for {lost} lost",
                stats.data_resent
            );
        }
    }
}

#[test]
fn block_numbers_wrap_past_65535() {
    // blksize 8 makes 70,000 blocks out of 560 KB; windows of 16, with losses right at
    // the wrap: block 65536 (wire 0) lost once, the ACK of 65535 lost once.
    let data = random_data(3, 8 * 70_000 + 5);
    let client = Client::new(&[("blksize", "8"), ("windowsize", "16")]);
    let mut pair = Pair::new(data, client).loss(|e| match (e.dir, e.kind) {
        (Dir::ToClient, Kind::Data(0)) => e.nth == 0,
        (Dir::ToServer, Kind::Ack(65535)) => e.nth == 0,
        _ => false,
    });
    pair.run(secs(600.0));
    pair.assert_complete();
    let blocks = pair.data_blocks();
    let at = blocks.iter().position(|&b| b == 65535).unwrap();
    assert_eq!(blocks[at + 1], 0, "65535 is followed by 0");
    assert!(blocks.windows(2).any(|w| w == [0, 1]), "0 is followed by 1");
    assert!(
        blocks.iter().filter(|&&b| b == 0).count() >= 2,
        "block 0 resent after its loss"
    );
    assert_eq!(*blocks.last().unwrap(), (70_001u64 % 65536) as u16);
}

#[test]
fn a_file_over_32_mib_at_512_bytes_wraps_lockstep() {
    let size = 65_536 * 512 + 1000; // 65,538 blocks
    let mut pair = Pair::new(random_data(11, size), Client::new(&[]));
    pair.trace = false;
    pair.run(secs(3600.0));
    pair.assert_complete();
    assert_eq!(pair.data_sent(), 65_538);
    assert_eq!(pair.ended[0].stats().data_resent, 0);
}

#[test]
fn duplicate_acks_never_trigger_resends() {
    // Every ACK arrives three times: the server sends each block exactly once.
    let mut client = Client::new(&[]);
    client.ack_copies = 3;
    let mut pair = Pair::new(random_data(5, 512 * 50 + 3), client);
    pair.run(secs(60.0));
    pair.assert_complete();
    assert_eq!(pair.data_sent(), 51);
    assert_eq!(
        pair.count(Dir::ToServer, |k| matches!(k, Kind::Ack(_))),
        51 * 3
    );

    // Same with windows: duplicates of a window's ACK resend nothing.
    let mut client = Client::new(&[("windowsize", "8")]);
    client.ack_copies = 3;
    let mut pair = Pair::new(random_data(5, 512 * 50 + 3), client);
    pair.run(secs(60.0));
    pair.assert_complete();
    assert_eq!(pair.data_sent(), 51);
}

#[test]
fn sorcerers_apprentice_does_not_happen_when_the_rtt_exceeds_the_timeout() {
    // One-way latency 600 ms, timeout 1 s: every block is resent once by the timer
    // before its ACK comes back, and the client re-ACKs each duplicate block. An
    // apprentice server would answer those duplicate ACKs and send every later
    // block twice more, compounding; this one sends each block at most twice.
    let blocks = 40u64;
    let mut pair = Pair::new(
        random_data(9, 512 * (blocks as usize - 1) + 10),
        Client::new(&[]),
    );
    pair.latency = Duration::from_millis(600);
    pair.run(secs(600.0));
    pair.assert_complete();
    let duplicate_acks = pair.count(Dir::ToServer, |k| matches!(k, Kind::Ack(_))) - blocks;
    assert!(
        duplicate_acks >= blocks - 1,
        "the scenario must produce duplicate ACKs ({duplicate_acks})"
    );
    assert!(
        pair.data_sent() <= 2 * blocks,
        "{} DATA for {blocks} blocks",
        pair.data_sent()
    );
}

#[test]
fn retransmits_back_off_exponentially_and_give_up() {
    let config = Config::default(); // 1 s, doubling, capped at 8 s, 5 retries
    let request = crate::request::parse_request(b"\x00\x01f\x00octet\x00")
        .unwrap()
        .unwrap();
    let t0 = Instant::now();
    let mut transfer = Transfer::new(t0, CLIENT, &request, vec![1u8; 2000], &config);
    let mut buf = Vec::new();
    let mut sent_at = Vec::new();
    let drain = |transfer: &mut Transfer<Vec<u8>>, buf: &mut Vec<u8>| {
        let mut kinds = Vec::new();
        while transfer.poll_transmit(buf).is_some() {
            kinds.push(kind(buf));
        }
        kinds
    };
    assert_eq!(drain(&mut transfer, &mut buf), vec![Kind::Data(1)]);
    sent_at.push(0.0);
    let expected = [1.0, 3.0, 7.0, 15.0, 23.0];
    for &at in &expected {
        assert_eq!(transfer.poll_timeout(), Some(t0 + secs(at)));
        // Early calls do nothing.
        transfer.handle_timeout(t0 + secs(at) - Duration::from_millis(1));
        assert!(
            drain(&mut transfer, &mut buf).is_empty(),
            "nothing before {at}s"
        );
        transfer.handle_timeout(t0 + secs(at));
        assert_eq!(
            drain(&mut transfer, &mut buf),
            vec![Kind::Data(1)],
            "resend at {at}s"
        );
        // A second call at the same instant resends nothing more.
        transfer.handle_timeout(t0 + secs(at));
        assert!(drain(&mut transfer, &mut buf).is_empty());
    }
    assert_eq!(transfer.poll_timeout(), Some(t0 + secs(31.0)));
    transfer.handle_timeout(t0 + secs(31.0));
    assert_eq!(
        drain(&mut transfer, &mut buf),
        vec![Kind::Error(0)],
        "gives up with an ERROR"
    );
    assert_eq!(transfer.outcome(), Some(&Outcome::TimedOut));
    assert!(transfer.is_finished());
    assert_eq!(transfer.poll_timeout(), None);
    assert_eq!(transfer.stats().data_resent, 5);

    // Progress resets the backoff: ACK 1 after two timeouts, next deadline is 1 s away.
    let mut transfer = Transfer::new(t0, CLIENT, &request, vec![1u8; 2000], &config);
    drain(&mut transfer, &mut buf);
    transfer.handle_timeout(t0 + secs(1.0));
    transfer.handle_timeout(t0 + secs(3.0));
    drain(&mut transfer, &mut buf);
    transfer.handle(t0 + secs(3.5), CLIENT, b"\x00\x04\x00\x01");
    assert_eq!(drain(&mut transfer, &mut buf), vec![Kind::Data(2)]);
    assert_eq!(transfer.poll_timeout(), Some(t0 + secs(4.5)));
}

#[test]
fn negotiated_timeout_sets_the_retransmission_interval() {
    let request = crate::request::parse_request(b"\x00\x01f\x00octet\x00timeout\x003\x00")
        .unwrap()
        .unwrap();
    let t0 = Instant::now();
    let mut transfer = Transfer::new(t0, CLIENT, &request, vec![1u8; 10], &Config::default());
    let mut buf = Vec::new();
    assert!(transfer.poll_transmit(&mut buf).is_some());
    assert_eq!(
        Repr::parse_bytes(&buf).unwrap(),
        Repr::Oack {
            options: vec![OptionRepr {
                name: "timeout",
                value: "3"
            }]
        }
    );
    assert_eq!(transfer.poll_timeout(), Some(t0 + secs(3.0)));
    transfer.handle_timeout(t0 + secs(3.0));
    assert!(transfer.poll_transmit(&mut buf).is_some());
    assert_eq!(
        kind(&buf),
        Kind::Oack,
        "the OACK is resent until ACK 0 comes"
    );
    assert_eq!(transfer.poll_timeout(), Some(t0 + secs(9.0)));
    transfer.handle(t0 + secs(4.0), CLIENT, b"\x00\x04\x00\x00");
    assert!(transfer.poll_transmit(&mut buf).is_some());
    assert_eq!(kind(&buf), Kind::Data(1));
    assert_eq!(transfer.poll_timeout(), Some(t0 + secs(7.0)));
}

#[test]
fn options_are_clamped_and_unknown_ones_ignored() {
    let mut pair = Pair::new(
        random_data(1, 1468 * 3),
        Client::new(&[
            ("blksize", "65464"),
            ("windowsize", "1000"),
            ("tsize", "0"),
            ("color", "blue"),
        ]),
    );
    pair.run(secs(60.0));
    pair.assert_complete();
    assert_eq!(
        pair.client.oack,
        Some(vec![
            ("blksize".into(), "1468".into()),
            ("tsize".into(), "4404".into()),
            ("windowsize".into(), "64".into()),
        ])
    );
    // 3 full blocks and an empty one: the size is a multiple of blksize.
    assert_eq!(pair.data_blocks(), vec![1, 2, 3, 4]);

    // Only unknown or invalid options: no OACK, DATA 1 at once.
    let mut pair = Pair::new(
        random_data(1, 600),
        Client::new(&[("color", "blue"), ("blksize", "4")]),
    );
    pair.run(secs(60.0));
    pair.assert_complete();
    assert_eq!(pair.client.oack, None);
    assert_eq!(pair.data_blocks(), vec![1, 2]);

    // A smaller maximum from the configuration.
    let config = Config {
        max_blksize: 1024,
        max_windowsize: 4,
        ..Config::default()
    };
    let client = Client::new(&[("blksize", "1468"), ("windowsize", "16")]);
    let mut pair = Pair::with_config(random_data(1, 10_000), client, config);
    pair.run(secs(60.0));
    pair.assert_complete();
    assert_eq!(
        pair.client.oack,
        Some(vec![
            ("blksize".into(), "1024".into()),
            ("windowsize".into(), "4".into())
        ])
    );
}

#[test]
fn unexpected_tid_gets_error_5_and_changes_nothing() {
    let data = random_data(4, 512 * 20);
    let mut pair = Pair::new(data, Client::new(&[]));
    // Run until the transfer is under way.
    pair.run(secs(0.0101));
    assert!(pair.server.is_some(), "transfer under way");
    let before = pair.data_sent();
    // A stranger, and the client's own IP from another port, send ACKs that would
    // complete the transfer if they were believed, and an ERROR that would end it.
    let transfer = &mut pair.server.as_mut().unwrap().1;
    transfer.handle(pair.now, addr(66, 4444), b"\x00\x04\x00\x15");
    transfer.handle(pair.now, addr(10, 2071), b"\x00\x04\x00\x15");
    transfer.handle(pair.now, addr(10, 2071), b"\x00\x05\x00\x00stop\x00");
    pair.run(secs(60.0));
    pair.assert_complete();
    assert_eq!(
        pair.to_strangers,
        vec![
            (addr(66, 4444), Kind::Error(5)),
            (addr(10, 2071), Kind::Error(5)),
            (addr(10, 2071), Kind::Error(5))
        ]
    );
    assert!(before < 21);
    assert_eq!(pair.data_sent(), 21, "no block was sent twice or skipped");
    assert_eq!(pair.ended[0].stats().data_resent, 0);
}

#[test]
fn lost_final_ack_is_recovered_by_the_timer() {
    let mut pair = Pair::new(random_data(2, 512 * 3 + 1), Client::new(&[]))
        .loss(|e| e.dir == Dir::ToServer && e.kind == Kind::Ack(4) && e.nth == 0);
    pair.run(secs(60.0));
    pair.assert_complete();
    assert_eq!(pair.data_blocks(), vec![1, 2, 3, 4, 4]);
    let resend = pair
        .events
        .iter()
        .filter(|e| e.kind == Kind::Data(4))
        .nth(1)
        .unwrap();
    let first = pair
        .events
        .iter()
        .find(|e| e.kind == Kind::Data(4))
        .unwrap();
    assert_eq!(
        resend.at - first.at,
        secs(1.0),
        "resent when the 1 s timer fired"
    );
}

#[test]
fn client_error_mid_transfer_stops_everything() {
    let mut client = Client::new(&[("windowsize", "4")]);
    client.abort_at_block = Some(6);
    let mut pair = Pair::new(random_data(8, 512 * 40), client);
    pair.run(secs(120.0));
    assert!(matches!(
        pair.outcome(),
        Some(Outcome::ClientError {
            code: ErrorCode::NotDefined,
            before_data: false,
            ..
        })
    ));
    // Two windows went out (1-4, 5-8) before the client's ERROR arrived; nothing after.
    assert_eq!(pair.data_blocks(), vec![1, 2, 3, 4, 5, 6, 7, 8]);
    let error_at = pair
        .events
        .iter()
        .find(|e| e.kind == Kind::Error(0))
        .unwrap()
        .at;
    assert!(
        pair.events
            .iter()
            .all(|e| e.dir == Dir::ToServer || e.at <= error_at)
    );
}

#[test]
fn retransmitted_request_does_not_start_a_second_transfer() {
    // The OACK is lost; the client's 300 ms timer resends its RRQ before the server's
    // 1 s timer resends the OACK. The endpoint ignores the duplicate; the one transfer
    // completes.
    let mut client = Client::new(&[("tsize", "0")]);
    client.timeout = Duration::from_millis(300);
    let mut pair =
        Pair::new(random_data(6, 3000), client).loss(|e| e.kind == Kind::Oack && e.nth == 0);
    pair.run(secs(60.0));
    pair.assert_complete();
    let starts = pair
        .accepts
        .iter()
        .filter(|a| matches!(a, Accept::Start { .. }))
        .count();
    let duplicates = pair
        .accepts
        .iter()
        .filter(|a| **a == Accept::Ignore(Ignored::Duplicate))
        .count();
    assert_eq!(starts, 1);
    assert!(duplicates >= 1, "{:?}", pair.accepts);
    assert_eq!(pair.count(Dir::ToClient, |k| k == Kind::Oack), 2);
}

#[test]
fn refused_requests_get_their_error_from_the_listening_port() {
    let mut client = Client::new(&[]);
    let mut wrq = client.request.clone();
    wrq[1] = 2;
    client.request = wrq;
    let mut pair = Pair::new(vec![1, 2, 3], client);
    pair.run(secs(10.0));
    assert_eq!(
        pair.client.error.as_ref().map(|e| e.0),
        Some(ErrorCode::AccessViolation)
    );
    assert!(
        pair.ended.is_empty() && pair.server.is_none(),
        "no transfer started"
    );
}
