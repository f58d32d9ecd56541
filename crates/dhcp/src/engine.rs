//! The sans-IO DHCPv4 engine: packets and the time in, packets, lease writes and
//! events out.
//!
//! [`Engine::handle`] takes one received packet with `now` (seconds since the Unix
//! epoch) and returns [`Action`]s for the driver to carry out IN ORDER: a lease is
//! persisted ([`Action::Persist`]) before the ACK that hands it out is sent, so after a
//! crash no address is ever given twice. Timers work the quinn/smoltcp way:
//! [`Engine::poll_timeout`] says when something next falls due (a lease ends, an offer
//! or a quarantine lapses) and [`Engine::handle_timeout`] does it, returning the same
//! kind of actions (an ended lease is forgotten and reported as [`Event::Expired`]).
//! No sockets, no clock, no files here.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddrV4};

use slipway_cluster::{DhcpMode, MacAddr, UnknownPolicy};

use crate::book::Book;
use crate::deadlines::Deadlines;
use crate::lease::Lease;
use crate::wire::{MessageType, Packet, code};

/// How long an offered pool address is held for the client that was offered it.
pub const OFFER_HOLD_SECS: u64 = 60;
/// How long a declined address stays out of the pool.
pub const DECLINE_HOLD_SECS: u64 = 600;
/// How long before the same unknown MAC is logged again.
pub const UNKNOWN_LOG_EVERY_SECS: u64 = 600;
/// Most answers one MAC without a reservation gets per second (a client sends a few
/// packets per exchange; a MAC sending thousands is flooding).
pub const MAX_ANSWERS_PER_MAC_PER_SEC: u32 = 10;
/// How many MACs are counted for [`MAX_ANSWERS_PER_MAC_PER_SEC`] at once at most.
pub const MAX_MACS_COUNTED: usize = 16_384;
/// How many unknown MACs are remembered (to log each once per period) at most: past
/// this, a flood of random MACs is logged once per period as a whole, and the
/// memory it can take is bounded.
pub const MAX_UNKNOWN_REMEMBERED: usize = 16_384;

/// Which port a packet came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// 67, the DHCP server port.
    Dhcp,
    /// 4011, the PXE boot server port (ProxyDHCP requests).
    Pxe,
}

/// What the driver must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Store this lease durably before going on.
    Persist(Lease),
    /// Forget this MAC's lease.
    Forget(MacAddr),
    /// Send `packet` to `to`.
    Send {
        /// The encoded reply.
        packet: Vec<u8>,
        /// Where it goes.
        to: Destination,
    },
    /// Something that happened: the driver logs it and reports it (the engine has no
    /// logger).
    Log(Event),
}

/// Where a reply goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// 255.255.255.255:68 on the serving interface.
    Broadcast,
    /// A unicast address and port (a relay's 67, a configured client's 68, a PXE
    /// client's source port).
    Unicast(SocketAddrV4),
}

/// What happened, for the driver to log and the rest of slipway to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A MAC not in the configuration was ignored (reported once per
    /// [`UNKNOWN_LOG_EVERY_SECS`] per MAC).
    UnknownIgnored(MacAddr),
    /// An address was handed out (the driver reports it only once the lease is durable).
    Bound {
        /// The client's hardware address.
        mac: MacAddr,
        /// The address it now holds.
        ip: Ipv4Addr,
        /// Its name: the reservation's, else the one the client sent, if any.
        hostname: Option<String>,
        /// What kind of client asked (firmware, iPXE or an OS).
        client: ClientKind,
        /// The boot file or URL handed out with the address, if any.
        boot: Option<String>,
    },
    /// A lease ended without being renewed; the address is free again.
    Expired {
        /// The client that held it.
        mac: MacAddr,
        /// The address.
        ip: Ipv4Addr,
        /// The name the lease carried, if any.
        hostname: Option<String>,
    },
    /// More unknown MACs than can be remembered: they are ignored, and reported in
    /// bulk once per period instead of one by one.
    UnknownFlood {
        /// How many are remembered and reported one by one.
        remembered: usize,
    },
    /// Requests from machines without a reservation were dropped by the rate limits
    /// (reported once per period, with how many since the last report).
    RateLimited {
        /// Requests dropped.
        dropped: u64,
    },
    /// A relayed request came from a giaddr that is not a configured relay and was
    /// dropped (reported once per period per address).
    RelayRefused(Ipv4Addr),
    /// A client declined its address (someone else uses it).
    Declined(MacAddr, Ipv4Addr),
    /// The pool is full.
    PoolExhausted(MacAddr),
    /// A PXE client asked for an architecture slipway has no boot file for.
    NoBootFile(MacAddr, Vec<u16>),
}

/// What to boot, by client kind: names and URLs handed out as they are (the engine
/// knows nothing of where they are served).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootFiles {
    /// The TFTP file for BIOS PXE firmware (client architecture 0).
    pub bios: String,
    /// The TFTP file for x86-64 UEFI PXE firmware (architectures 7 and 9).
    pub uefi: String,
    /// The URL for UEFI HTTP boot clients (architecture 16).
    pub http: String,
    /// The URL of the script handed to iPXE (which would otherwise chain-load itself).
    pub ipxe_chain: String,
}

/// A fixed address for a known machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// The address it always gets.
    pub ip: Ipv4Addr,
    /// The hostname sent to it (option 12) and kept on its lease.
    pub hostname: String,
    /// Boot programs instead of the defaults (profile or node `boot_files`).
    pub boot: slipway_cluster::BootFiles,
}

/// Everything the engine needs, as plain values (the serve layer builds it from the
/// cluster file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Authoritative (addresses and boot), proxy (boot information only) or off.
    pub mode: DhcpMode,
    /// slipway's own address: the server identifier and the TFTP next-server.
    pub server: Ipv4Addr,
    /// The subnet served (mask and broadcast options).
    pub subnet: ipnet::Ipv4Net,
    /// The default gateway handed out (option 3), if any.
    pub gateway: Option<Ipv4Addr>,
    /// DNS servers handed out (option 6).
    pub dns: Vec<Ipv4Addr>,
    /// The domain name handed out (option 15).
    pub domain: String,
    /// NTP servers handed out (option 42); only those given as addresses.
    pub ntp: Vec<Ipv4Addr>,
    /// Lease length in seconds; `u32::MAX` means infinite.
    pub lease_secs: u32,
    /// The dynamic pool, first and last address inclusive, if any.
    pub pool: Option<(Ipv4Addr, Ipv4Addr)>,
    /// What to do with MACs that have no reservation.
    pub unknown: UnknownPolicy,
    /// The known machines, by MAC.
    pub reservations: HashMap<MacAddr, Reservation>,
    /// Relay agents (giaddr) whose relayed requests are answered; any other relayed
    /// request is dropped.
    pub relays: HashSet<Ipv4Addr>,
    /// Most machines without a reservation, lease or offer that get a pool offer per
    /// second (a flood of random MACs cannot take the pool or the CPU); 0: no limit.
    pub new_clients_per_sec: u32,
    /// What to boot, by client kind.
    pub boot: BootFiles,
}

/// What kind of client sent a request, from its vendor class, architectures and
/// iPXE options: it decides the boot file, and tells the lifecycle what firmware a
/// machine booted with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKind {
    /// An operating system's DHCP client: addresses and options, no boot file.
    Os,
    /// PXE firmware, BIOS.
    Bios,
    /// PXE firmware, x86-64 UEFI.
    Uefi,
    /// UEFI HTTP boot firmware.
    Http,
    /// iPXE (already chain-loaded).
    Ipxe,
    /// PXE firmware of an architecture slipway has no boot file for.
    Unsupported,
}

impl ClientKind {
    /// A short lower-case name: `os`, `bios`, `uefi`, `uefi-http`, `ipxe`, `unsupported`.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientKind::Os => "os",
            ClientKind::Bios => "bios",
            ClientKind::Uefi => "uefi",
            ClientKind::Http => "uefi-http",
            ClientKind::Ipxe => "ipxe",
            ClientKind::Unsupported => "unsupported",
        }
    }
}

type Client = ClientKind;

/// The kind of client that sent `p`.
pub fn classify(p: &Packet) -> ClientKind {
    if p.is_ipxe() {
        return Client::Ipxe;
    }
    let vc = p.vendor_class().unwrap_or("");
    let arches = p.client_arches();
    if vc.starts_with("HTTPClient") || arches.contains(&16) {
        return Client::Http;
    }
    if !vc.starts_with("PXEClient") && arches.is_empty() {
        return Client::Os;
    }
    // Every entry counts; prefer what we can serve.
    if arches.iter().any(|a| *a == 7 || *a == 9) {
        Client::Uefi
    } else if arches.is_empty() || arches.contains(&0) {
        Client::Bios
    } else {
        Client::Unsupported
    }
}

/// Every reserved address of `config`.
fn reserved_ips(config: &Config) -> HashSet<Ipv4Addr> {
    config.reservations.values().map(|r| r.ip).collect()
}

/// The engine's state: leases, offers, quarantined addresses, and which unknown
/// MACs were reported lately.
pub struct Engine {
    config: Config,
    book: Book,
    /// Every reserved address (derived from the configuration).
    reserved: HashSet<Ipv4Addr>,
    /// Where the next search for a free pool address starts.
    cursor: u32,
    /// When offers and quarantines were last expired (seconds).
    expired_at: u64,
    /// Declined addresses, out of the pool until their time.
    declined: Deadlines<Ipv4Addr>,
    /// Unknown MACs reported lately, until they may be reported again.
    logged_unknown: Deadlines<MacAddr>,
    /// Relays refused lately, until they may be reported again.
    refused_relays: Deadlines<Ipv4Addr>,
    /// Answers per MAC without a reservation in the current second.
    answers: HashMap<MacAddr, u32>,
    /// The second `answers` and `new_clients` count.
    counted_second: u64,
    /// Machines that got a first pool offer in the current second.
    new_clients: u32,
    /// Requests dropped by the rate limits since the last report, and until when the
    /// next report waits.
    limited: (u64, u64),
    /// Unknown MACs ignored without a report since the start (the table was full).
    unknown_unlogged: u64,
    /// Until when a flood of unknown MACs is not reported again.
    flood_logged_until: u64,
}

impl Engine {
    /// An engine with `leases` restored from the store.
    pub fn new(config: Config, leases: Vec<Lease>) -> Engine {
        Engine {
            reserved: reserved_ips(&config),
            cursor: config.pool.map_or(0, |(a, _)| u32::from(a)),
            config,
            book: Book::new(leases),
            expired_at: 0,
            declined: Deadlines::default(),
            logged_unknown: Deadlines::default(),
            refused_relays: Deadlines::default(),
            answers: HashMap::new(),
            counted_second: 0,
            new_clients: 0,
            limited: (0, 0),
            unknown_unlogged: 0,
            flood_logged_until: 0,
        }
    }

    /// When [`Engine::handle_timeout`] should next be called (seconds since the Unix
    /// epoch), or `None` when nothing can fall due.
    pub fn poll_timeout(&self) -> Option<u64> {
        [
            self.book.next_end(),
            self.declined.next(),
            self.logged_unknown.next(),
            self.refused_relays.next(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Does what has fallen due at `now`: ended leases are forgotten
    /// ([`Action::Forget`], then [`Event::Expired`] for each), lapsed offers and
    /// quarantines are dropped, unknown MACs may be reported again.
    pub fn handle_timeout(&mut self, now: u64) -> Vec<Action> {
        self.expire_due(now);
        let ended = self.book.expire_leases(now);
        let mut out: Vec<Action> = ended.iter().map(|l| Action::Forget(l.mac)).collect();
        out.extend(ended.into_iter().map(|l| {
            Action::Log(Event::Expired {
                mac: l.mac,
                ip: l.ip,
                hostname: l.hostname,
            })
        }));
        out
    }

    /// How many leases, outstanding offers, quarantined addresses and recently
    /// reported unknown MACs the engine holds (all of its per-client state).
    pub fn sizes(&self) -> Sizes {
        let (leases, offers) = self.book.len();
        Sizes {
            leases,
            offers,
            declined: self.declined.len(),
            unknown_reported: self.logged_unknown.len(),
            unknown_unlogged: self.unknown_unlogged,
        }
    }

    /// Replaces the configuration (cluster file reloaded); leases stay.
    pub fn reconfigure(&mut self, config: Config) {
        self.reserved = reserved_ips(&config);
        self.config = config;
    }

    /// The current leases.
    pub fn leases(&self) -> impl Iterator<Item = &Lease> {
        self.book.leases()
    }

    /// Handles one received datagram.
    pub fn handle(&mut self, now: u64, bytes: &[u8], src: SocketAddrV4, port: Port) -> Vec<Action> {
        let Ok(req) = Packet::parse(bytes) else {
            return Vec::new();
        };
        if req.op != crate::wire::BOOTREQUEST {
            return Vec::new();
        }
        let (Some(kind), Some(mac)) = (req.message_type(), req.mac()) else {
            return Vec::new();
        };
        self.expire(now);
        let mut out = Vec::new();
        if !req.giaddr.is_unspecified() && !self.config.relays.contains(&req.giaddr) {
            // Anyone can write a giaddr: only configured relays are believed.
            if self.refused_relays.get(req.giaddr).is_none_or(|t| now >= t)
                && self.refused_relays.len() < MAX_UNKNOWN_REMEMBERED
            {
                self.refused_relays
                    .insert(req.giaddr, now.saturating_add(UNKNOWN_LOG_EVERY_SECS));
                out.push(Action::Log(Event::RelayRefused(req.giaddr)));
            }
            return out;
        }
        let known = self.config.reservations.contains_key(&mac);
        if !known
            && (self.config.unknown == UnknownPolicy::Ignore
                || self.config.mode != DhcpMode::Authoritative)
        {
            let quiet_until = self.logged_unknown.get(mac);
            if quiet_until.is_none_or(|t| now >= t) {
                if self.logged_unknown.len() < MAX_UNKNOWN_REMEMBERED || quiet_until.is_some() {
                    self.logged_unknown
                        .insert(mac, now.saturating_add(UNKNOWN_LOG_EVERY_SECS));
                    out.push(Action::Log(Event::UnknownIgnored(mac)));
                } else {
                    self.unknown_unlogged += 1;
                    if self.flood_logged_until <= now {
                        self.flood_logged_until = now.saturating_add(UNKNOWN_LOG_EVERY_SECS);
                        out.push(Action::Log(Event::UnknownFlood {
                            remembered: MAX_UNKNOWN_REMEMBERED,
                        }));
                    }
                }
            }
            return out;
        }
        if !known && !self.within_rate(now, mac, kind, &mut out) {
            return out;
        }
        match self.config.mode {
            DhcpMode::Off => {}
            DhcpMode::Proxy => self.proxy(&req, kind, mac, src, port, &mut out),
            DhcpMode::Authoritative if port == Port::Dhcp => {
                self.authoritative(now, &req, kind, mac, &mut out)
            }
            DhcpMode::Authoritative => self.proxy(&req, kind, mac, src, port, &mut out),
        }
        out
    }

    /// Whether a request of `kind` from `mac` (no reservation) may be answered at `now`:
    /// at most [`MAX_ANSWERS_PER_MAC_PER_SEC`] answers per MAC, and at most
    /// `new_clients_per_sec` first offers in all. Drops are reported in bulk, once per
    /// [`UNKNOWN_LOG_EVERY_SECS`].
    fn within_rate(
        &mut self,
        now: u64,
        mac: MacAddr,
        kind: MessageType,
        out: &mut Vec<Action>,
    ) -> bool {
        if now != self.counted_second {
            self.counted_second = now;
            self.answers.clear();
            self.new_clients = 0;
        }
        let counted = self.answers.len();
        let per_mac_ok = match self.answers.entry(mac) {
            std::collections::hash_map::Entry::Occupied(mut n) => {
                *n.get_mut() += 1;
                *n.get() <= MAX_ANSWERS_PER_MAC_PER_SEC
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                // More MACs in one second than are counted: the global limit still holds.
                if counted < MAX_MACS_COUNTED {
                    v.insert(1);
                }
                true
            }
        };
        let new_client = kind == MessageType::Discover
            && self.book.lease(mac).is_none()
            && self.book.offered(mac).is_none();
        let limit = self.config.new_clients_per_sec;
        let global_ok = !new_client || limit == 0 || self.new_clients < limit;
        if per_mac_ok && global_ok {
            if new_client {
                self.new_clients += 1;
            }
            return true;
        }
        self.limited.0 += 1;
        if now >= self.limited.1 {
            out.push(Action::Log(Event::RateLimited {
                dropped: self.limited.0,
            }));
            self.limited = (0, now.saturating_add(UNKNOWN_LOG_EVERY_SECS));
        }
        false
    }

    /// Drops offers and quarantines whose time has passed: at most once a second (the
    /// clock's resolution), so a burst of packets pays for it once.
    fn expire(&mut self, now: u64) {
        if now == self.expired_at {
            return;
        }
        self.expire_due(now);
    }

    /// Drops offers, quarantines and unknown-MAC reports whose time has come.
    fn expire_due(&mut self, now: u64) {
        self.expired_at = now;
        self.book.expire_offers(now);
        self.declined.take_due(now);
        self.logged_unknown.take_due(now);
        self.refused_relays.take_due(now);
    }

    fn authoritative(
        &mut self,
        now: u64,
        req: &Packet,
        kind: MessageType,
        mac: MacAddr,
        out: &mut Vec<Action>,
    ) {
        match kind {
            MessageType::Discover => {
                let Some(ip) = self.choose(now, req, mac) else {
                    out.push(Action::Log(Event::PoolExhausted(mac)));
                    return;
                };
                self.book
                    .offer(mac, ip, now.saturating_add(OFFER_HOLD_SECS));
                let mut reply = self.reply(req, MessageType::Offer, ip, out, mac);
                if req.options.contains_key(&code::RAPID_COMMIT) {
                    // RFC 4039: commit at once when the client asks.
                    reply.set(code::MESSAGE_TYPE, vec![MessageType::Ack as u8]);
                    reply.set(code::RAPID_COMMIT, Vec::new());
                    self.bind(now, req, mac, ip, &reply, out);
                }
                out.push(self.send(req, reply));
            }
            MessageType::Request => {
                if let Some(sid) = req.server_id()
                    && sid != self.config.server
                {
                    // The client chose another server: drop our offer.
                    self.book.withdraw(mac);
                    return;
                }
                let asked = req
                    .requested_ip()
                    .or((!req.ciaddr.is_unspecified()).then_some(req.ciaddr));
                let right = self.address_for(now, mac, asked);
                match (asked, right) {
                    (Some(a), Some(r)) if a == r => {
                        let reply = self.reply(req, MessageType::Ack, r, out, mac);
                        self.bind(now, req, mac, r, &reply, out);
                        out.push(self.send(req, reply));
                    }
                    (Some(_), _) if req.server_id().is_some() || self.owns(asked) => {
                        let mut nak = Packet::reply_to(req);
                        nak.set(code::MESSAGE_TYPE, vec![MessageType::Nak as u8]);
                        nak.set_ips(code::SERVER_ID, &[self.config.server]);
                        nak.flags |= 0x8000;
                        out.push(Action::Send {
                            packet: nak.emit(),
                            to: self.nak_destination(req),
                        });
                    }
                    // Not ours to judge (another subnet's address, no server id): stay silent.
                    _ => {}
                }
            }
            MessageType::Decline => {
                // Only for the address this MAC was given by us: anyone else's DECLINE
                // would take addresses out of the pool at will.
                let ours = req.server_id().is_none_or(|s| s == self.config.server);
                let given = |ip: Ipv4Addr| {
                    self.book.lease(mac).is_some_and(|l| l.ip == ip)
                        || self.book.offered(mac) == Some(ip)
                        || self
                            .config
                            .reservations
                            .get(&mac)
                            .is_some_and(|r| r.ip == ip)
                };
                if let Some(ip) = req.requested_ip().filter(|ip| ours && given(*ip)) {
                    self.declined
                        .insert(ip, now.saturating_add(DECLINE_HOLD_SECS));
                    self.book.withdraw(mac);
                    if self.book.lease(mac).is_some_and(|l| l.ip == ip) {
                        self.book.unbind(mac);
                        out.push(Action::Forget(mac));
                    }
                    out.push(Action::Log(Event::Declined(mac, ip)));
                }
            }
            MessageType::Release
                if self.book.lease(mac).is_some_and(|l| l.ip == req.ciaddr)
                    && !self.config.reservations.contains_key(&mac) =>
            {
                self.book.unbind(mac);
                out.push(Action::Forget(mac));
            }
            MessageType::Inform => {
                let mut reply = self.reply(req, MessageType::Ack, Ipv4Addr::UNSPECIFIED, out, mac);
                for c in [code::LEASE_TIME, code::RENEWAL, code::REBINDING] {
                    reply.options.remove(&c);
                }
                let to = match self.client_address(req) {
                    Some(ip) => Destination::Unicast(SocketAddrV4::new(ip, 68)),
                    None => Destination::Broadcast,
                };
                out.push(Action::Send {
                    packet: reply.emit(),
                    to,
                });
            }
            _ => {}
        }
    }

    /// ProxyDHCP (RFC 4578 / PXE 2.1): boot information only, never an address.
    fn proxy(
        &mut self,
        req: &Packet,
        kind: MessageType,
        mac: MacAddr,
        src: SocketAddrV4,
        port: Port,
        out: &mut Vec<Action>,
    ) {
        let client = classify(req);
        if client == Client::Os {
            return;
        }
        let reply_type = match (kind, port) {
            (MessageType::Discover, Port::Dhcp) => MessageType::Offer,
            (MessageType::Request, Port::Pxe) | (MessageType::Request, Port::Dhcp)
                if req.server_id().is_none_or(|s| s == self.config.server) =>
            {
                MessageType::Ack
            }
            _ => return,
        };
        let mut reply = Packet::reply_to(req);
        reply.set(code::MESSAGE_TYPE, vec![reply_type as u8]);
        reply.set_ips(code::SERVER_ID, &[self.config.server]);
        reply.ciaddr = req.ciaddr;
        self.boot_options(req, mac, &mut reply, out);
        let to = if port == Port::Pxe {
            Destination::Unicast(src)
        } else {
            self.destination(req, Ipv4Addr::UNSPECIFIED)
        };
        out.push(Action::Send {
            packet: reply.emit(),
            to,
        });
    }

    /// Whether `ip` is an address this server hands out (a reservation or the pool).
    fn owns(&self, ip: Option<Ipv4Addr>) -> bool {
        ip.is_some_and(|ip| self.in_pool(ip) || self.reserved.contains(&ip))
    }

    fn in_pool(&self, ip: Ipv4Addr) -> bool {
        self.config.pool.is_some_and(|(a, b)| a <= ip && ip <= b)
    }

    fn taken_by_other(&self, now: u64, mac: MacAddr, ip: Ipv4Addr) -> bool {
        self.book.held_by_other(now, mac, ip)
            || self.declined.contains(ip)
            || self.reserved.contains(&ip)
    }

    /// The address `mac` may have now: its reservation, or its lease/offer/request in
    /// the pool when free.
    fn address_for(&self, now: u64, mac: MacAddr, asked: Option<Ipv4Addr>) -> Option<Ipv4Addr> {
        if let Some(r) = self.config.reservations.get(&mac) {
            return Some(r.ip);
        }
        let mine = |ip: Ipv4Addr| self.in_pool(ip) && !self.taken_by_other(now, mac, ip);
        if let Some(l) = self.book.lease(mac)
            && mine(l.ip)
        {
            return Some(l.ip);
        }
        if let Some(ip) = self.book.offered(mac)
            && mine(ip)
        {
            return Some(ip);
        }
        asked.filter(|ip| mine(*ip))
    }

    /// The address to offer: the one `mac` may have, else the next free one in the
    /// pool after the last handed out (so a storm does not rescan the taken part).
    fn choose(&mut self, now: u64, req: &Packet, mac: MacAddr) -> Option<Ipv4Addr> {
        if let Some(ip) = self.address_for(now, mac, req.requested_ip()) {
            return Some(ip);
        }
        let (a, b) = self.config.pool?;
        let (first, last) = (u32::from(a), u32::from(b));
        let size = u64::from(last - first) + 1;
        let start = self.cursor.clamp(first, last);
        let found = (0..size)
            .map(|i| first + ((u64::from(start - first) + i) % size) as u32)
            .map(Ipv4Addr::from)
            .find(|ip| {
                *ip != self.config.server
                    && Some(*ip) != self.config.gateway
                    && !self.taken_by_other(now, mac, *ip)
            })?;
        self.cursor = if u32::from(found) >= last {
            first
        } else {
            u32::from(found) + 1
        };
        Some(found)
    }

    fn bind(
        &mut self,
        now: u64,
        req: &Packet,
        mac: MacAddr,
        ip: Ipv4Addr,
        reply: &Packet,
        out: &mut Vec<Action>,
    ) {
        let expires = if self.config.lease_secs == u32::MAX {
            u64::MAX
        } else {
            now.saturating_add(u64::from(self.config.lease_secs))
        };
        let hostname = self
            .config
            .reservations
            .get(&mac)
            .map(|r| r.hostname.clone())
            .or_else(|| req.hostname());
        let lease = Lease {
            mac,
            ip,
            expires,
            hostname,
        };
        self.book.bind(lease.clone());
        out.push(Action::Persist(lease));
        let boot = reply
            .options
            .get(&code::BOOTFILE)
            .map(|b| String::from_utf8_lossy(b).into_owned());
        let client = classify(req);
        out.push(Action::Log(Event::Bound {
            mac,
            ip,
            hostname: self.book.lease(mac).and_then(|l| l.hostname.clone()),
            client,
            boot,
        }));
    }

    fn reply(
        &self,
        req: &Packet,
        kind: MessageType,
        yiaddr: Ipv4Addr,
        out: &mut Vec<Action>,
        mac: MacAddr,
    ) -> Packet {
        let c = &self.config;
        let mut p = Packet::reply_to(req);
        p.yiaddr = yiaddr;
        p.ciaddr = req.ciaddr;
        p.set(code::MESSAGE_TYPE, vec![kind as u8]);
        p.set_ips(code::SERVER_ID, &[c.server]);
        p.set_ips(code::SUBNET_MASK, &[c.subnet.netmask()]);
        p.set_ips(code::BROADCAST, &[c.subnet.broadcast()]);
        if let Some(gw) = c.gateway {
            p.set_ips(code::ROUTER, &[gw]);
        }
        if !c.dns.is_empty() {
            p.set_ips(code::DNS, &c.dns);
        }
        if !c.ntp.is_empty() {
            p.set_ips(code::NTP, &c.ntp);
        }
        p.set(code::DOMAIN, c.domain.as_bytes().to_vec());
        if let Some(r) = c.reservations.get(&mac) {
            p.set(code::HOSTNAME, r.hostname.as_bytes().to_vec());
        }
        p.set_u32(code::LEASE_TIME, c.lease_secs);
        if c.lease_secs != u32::MAX {
            p.set_u32(code::RENEWAL, c.lease_secs / 2);
            p.set_u32(code::REBINDING, (u64::from(c.lease_secs) * 7 / 8) as u32);
        }
        self.boot_options(req, mac, &mut p, out);
        p
    }

    /// Boot file, next server and the PXE/iPXE options, by client kind.
    fn boot_options(&self, req: &Packet, mac: MacAddr, p: &mut Packet, out: &mut Vec<Action>) {
        let b = &self.config.boot;
        let file = match classify(req) {
            Client::Os => return,
            Client::Unsupported => {
                out.push(Action::Log(Event::NoBootFile(mac, req.client_arches())));
                return;
            }
            Client::Ipxe => {
                // 175.176 = 1: iPXE need not wait for a ProxyDHCP offer.
                p.set(code::IPXE, vec![176, 1, 1]);
                b.ipxe_chain.clone()
            }
            Client::Http => {
                p.set(code::VENDOR_CLASS, b"HTTPClient".to_vec());
                b.http.clone()
            }
            Client::Bios | Client::Uefi => {
                p.set(code::VENDOR_CLASS, b"PXEClient".to_vec());
                // PXE discovery control 8: boot the file given here, no boot server discovery.
                p.set(code::VENDOR_SPECIFIC, vec![6, 1, 8, 255]);
                let own = self.config.reservations.get(&mac).map(|r| &r.boot);
                if classify(req) == Client::Bios {
                    own.and_then(|o| o.bios.clone())
                        .unwrap_or_else(|| b.bios.clone())
                } else {
                    own.and_then(|o| o.uefi.clone())
                        .unwrap_or_else(|| b.uefi.clone())
                }
            }
        };
        p.siaddr = self.config.server;
        p.set(
            code::TFTP_SERVER,
            self.config.server.to_string().into_bytes(),
        );
        p.set(code::BOOTFILE, file.clone().into_bytes());
        p.set_file_field(&file);
    }

    fn send(&self, req: &Packet, reply: Packet) -> Action {
        let to = self.destination(req, reply.yiaddr);
        Action::Send {
            packet: reply.emit(),
            to,
        }
    }

    /// RFC 2131 §4.1: relay → giaddr:67; configured client → ciaddr:68; otherwise
    /// broadcast (slipway does not inject ARP entries to unicast to an unconfigured
    /// client, which every client accepts).
    fn destination(&self, req: &Packet, _yiaddr: Ipv4Addr) -> Destination {
        if !req.giaddr.is_unspecified() {
            Destination::Unicast(SocketAddrV4::new(req.giaddr, 67))
        } else if let Some(ip) = self.client_address(req) {
            Destination::Unicast(SocketAddrV4::new(ip, 68))
        } else {
            Destination::Broadcast
        }
    }

    /// The request's ciaddr when a reply may be unicast there: a host address of the
    /// served subnet (every address slipway hands out is one). Anyone can write a
    /// ciaddr: any other (the subnet's or the all-ones broadcast address, a multicast
    /// group, a host elsewhere) would have slipway send its reply wherever a forged
    /// request says; the client on this link gets a broadcast instead.
    fn client_address(&self, req: &Packet) -> Option<Ipv4Addr> {
        let subnet = self.config.subnet;
        let ip = req.ciaddr;
        let host = subnet.contains(&ip)
            && (subnet.prefix_len() >= 31 || (ip != subnet.network() && ip != subnet.broadcast()));
        host.then_some(ip)
    }

    fn nak_destination(&self, req: &Packet) -> Destination {
        if req.giaddr.is_unspecified() {
            Destination::Broadcast
        } else {
            Destination::Unicast(SocketAddrV4::new(req.giaddr, 67))
        }
    }
}

/// The engine's per-client state, counted (memory bounds are checked against these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// Leases held, expired or not yet purged.
    pub leases: usize,
    /// Offers outstanding.
    pub offers: usize,
    /// Addresses quarantined after a DECLINE.
    pub declined: usize,
    /// Unknown MACs reported lately (kept to report each once per period; at most
    /// [`MAX_UNKNOWN_REMEMBERED`]).
    pub unknown_reported: usize,
    /// Unknown MACs ignored without a report of their own (the table was full).
    pub unknown_unlogged: u64,
}
