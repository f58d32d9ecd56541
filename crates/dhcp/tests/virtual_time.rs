//! The DHCP engine and simulated clients in memory, in virtual time: datagrams travel
//! through two queues that lose what a seeded generator says, the engine's answers go
//! through `slipway_dhcp::commit` into a lease store (that can be told to fail) exactly
//! as the tokio driver does, and its timers are driven by `poll_timeout` /
//! `handle_timeout`. Every run is deterministic.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use slipway_cluster::{BootFiles as NodeBootFiles, DhcpMode, MacAddr, UnknownPolicy};
use slipway_dhcp::wire::{self, MessageType, Packet, code};
use slipway_dhcp::{
    Action, BootFiles, Config, Destination, Engine, Event, Lease, LeaseStore, LeaseStoreError,
    Port, Reservation, commit,
};

const SERVER: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const LEASE: u32 = 120;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// True `percent` times in a hundred.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Leases in memory; `failing` makes every write fail, as a full disk would.
#[derive(Default)]
struct TestStore {
    leases: Mutex<BTreeMap<MacAddr, Lease>>,
    failing: AtomicBool,
}

impl LeaseStore for TestStore {
    fn leases(&self) -> Result<Vec<Lease>, LeaseStoreError> {
        Ok(self.map().values().cloned().collect())
    }

    fn write(&self, put: &[Lease], remove: &[MacAddr]) -> Result<(), LeaseStoreError> {
        if self.failing.load(Ordering::Relaxed) {
            return Err(LeaseStoreError::new(std::io::Error::other(
                "no space left on device",
            )));
        }
        let mut all = self.map();
        for l in put {
            all.insert(l.mac, l.clone());
        }
        for m in remove {
            all.remove(m);
        }
        Ok(())
    }
}

impl TestStore {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<MacAddr, Lease>> {
        self.leases.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Init,
    Selecting,
    Requesting { ip: Ipv4Addr, tries: u32 },
    Bound { ip: Ipv4Addr, t1: u64, expires: u64 },
    Renewing { ip: Ipv4Addr, expires: u64 },
    Off,
}

/// A DHCP client in miniature (RFC 2131 §4.4): DISCOVER with backoff, the first OFFER
/// taken, REQUEST retransmitted, NAK back to INIT, renewal at T1 with ciaddr.
struct Client {
    mac: MacAddr,
    xid: u32,
    state: State,
    next_send: u64,
    backoff: u64,
    rapid_commit: bool,
}

impl Client {
    fn new(mac: MacAddr, xid: u32) -> Client {
        Client {
            mac,
            xid,
            state: State::Init,
            next_send: 0,
            backoff: 4,
            rapid_commit: false,
        }
    }

    fn packet(&self, kind: MessageType) -> Packet {
        let mut chaddr = [0u8; 16];
        chaddr[..6].copy_from_slice(&self.mac.octets());
        let mut p = Packet {
            op: wire::BOOTREQUEST,
            htype: 1,
            hlen: 6,
            hops: 0,
            xid: self.xid,
            secs: 0,
            flags: 0,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            yiaddr: Ipv4Addr::UNSPECIFIED,
            siaddr: Ipv4Addr::UNSPECIFIED,
            giaddr: Ipv4Addr::UNSPECIFIED,
            chaddr,
            sname: [0; 64],
            file: [0; 128],
            options: BTreeMap::new(),
        };
        p.set(code::MESSAGE_TYPE, vec![kind as u8]);
        p
    }

    fn bound_ip(&self) -> Option<Ipv4Addr> {
        match self.state {
            State::Bound { ip, .. } | State::Renewing { ip, .. } => Some(ip),
            _ => None,
        }
    }

    /// What the client sends at `now`, if anything.
    fn poll(&mut self, now: u64) -> Option<Packet> {
        match self.state {
            State::Off => None,
            State::Bound { ip, t1, expires } if now >= t1 => {
                self.state = State::Renewing { ip, expires };
                self.next_send = now;
                self.poll(now)
            }
            State::Bound { .. } => None,
            State::Renewing { expires, .. } if now >= expires => {
                self.state = State::Init;
                self.next_send = now;
                self.poll(now)
            }
            _ if now < self.next_send => None,
            State::Init | State::Selecting => {
                self.state = State::Selecting;
                self.next_send = now + self.backoff;
                self.backoff = (self.backoff * 2).min(16);
                let mut d = self.packet(MessageType::Discover);
                if self.rapid_commit {
                    d.set(code::RAPID_COMMIT, Vec::new());
                }
                Some(d)
            }
            State::Requesting { tries, .. } if tries >= 4 => {
                self.state = State::Init;
                self.next_send = now;
                self.poll(now)
            }
            State::Requesting { ip, tries } => {
                self.state = State::Requesting {
                    ip,
                    tries: tries + 1,
                };
                self.next_send = now + 4;
                let mut r = self.packet(MessageType::Request);
                r.set_ips(code::SERVER_ID, &[SERVER]);
                r.set_ips(code::REQUESTED_IP, &[ip]);
                Some(r)
            }
            State::Renewing { ip, .. } => {
                self.next_send = now + 10;
                let mut r = self.packet(MessageType::Request);
                r.ciaddr = ip;
                Some(r)
            }
        }
    }

    /// Takes a reply at `now`.
    fn receive(&mut self, p: &Packet, now: u64) {
        if p.xid != self.xid || self.state == State::Off {
            return;
        }
        match (p.message_type(), self.state) {
            (Some(MessageType::Offer), State::Selecting) => {
                self.state = State::Requesting {
                    ip: p.yiaddr,
                    tries: 0,
                };
                self.next_send = now;
            }
            (
                Some(MessageType::Ack),
                State::Requesting { .. } | State::Renewing { .. } | State::Selecting,
            ) => {
                self.state = State::Bound {
                    ip: p.yiaddr,
                    t1: now + u64::from(LEASE / 2),
                    expires: now + u64::from(LEASE),
                };
                self.backoff = 4;
            }
            (Some(MessageType::Nak), _) => {
                self.state = State::Init;
                self.next_send = now;
            }
            _ => {}
        }
    }
}

/// The engine, the store, the clients and the two lossy queues.
struct Sim {
    engine: Engine,
    config: Config,
    store: TestStore,
    clients: Vec<Client>,
    now: u64,
    loss: u64,
    rng: Rng,
    /// ACKs that reached a client.
    acks_delivered: usize,
    /// Every event the engine let out, with its time.
    events: Vec<(u64, Event)>,
}

fn config(pool: (Ipv4Addr, Ipv4Addr), reservations: HashMap<MacAddr, Reservation>) -> Config {
    Config {
        mode: DhcpMode::Authoritative,
        server: SERVER,
        subnet: "10.77.0.0/16".parse().unwrap_or_else(|e| panic!("{e}")),
        gateway: None,
        dns: vec![SERVER],
        domain: "sim.test".into(),
        ntp: vec![],
        lease_secs: LEASE,
        pool: Some(pool),
        unknown: UnknownPolicy::Discover,
        reservations,
        relays: HashSet::new(),
        new_clients_per_sec: 1000,
        boot: BootFiles {
            bios: "undionly.kpxe".into(),
            uefi: "snponly.efi".into(),
            http: "http://10.77.0.1:8080/boot/ipxe.efi".into(),
            ipxe_chain: "http://10.77.0.1:8080/boot.ipxe".into(),
        },
    }
}

fn stranger(i: u32) -> MacAddr {
    let b = i.to_be_bytes();
    MacAddr([2, 0x5e, b[0], b[1], b[2], b[3]])
}

fn pool(size: u32) -> (Ipv4Addr, Ipv4Addr) {
    let first = u32::from(Ipv4Addr::new(10, 77, 1, 0));
    (Ipv4Addr::from(first), Ipv4Addr::from(first + size - 1))
}

impl Sim {
    fn new(config: Config, clients: Vec<Client>, loss: u64, seed: u64) -> Sim {
        Sim {
            engine: Engine::new(config.clone(), vec![]),
            config,
            store: TestStore::default(),
            clients,
            now: 1_000_000,
            loss,
            rng: Rng(seed),
            acks_delivered: 0,
            events: Vec::new(),
        }
    }

    /// One virtual second: clients send, the engine answers a batch and commits it,
    /// its timers run, replies are delivered.
    fn step(&mut self) {
        let now = self.now;
        let mut to_server = Vec::new();
        for c in &mut self.clients {
            if let Some(p) = c.poll(now)
                && !self.rng.chance(self.loss)
            {
                to_server.push(p.emit());
            }
        }
        let src = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68);
        let batch: Vec<(Port, Vec<Action>)> = to_server
            .iter()
            .map(|bytes| (Port::Dhcp, self.engine.handle(now, bytes, src, Port::Dhcp)))
            .collect();
        let mut outgoing = commit(batch, &self.store);
        if self.engine.poll_timeout().is_some_and(|t| t <= now) {
            let due = commit(
                vec![(Port::Dhcp, self.engine.handle_timeout(now))],
                &self.store,
            );
            outgoing.events.extend(due.events);
        }
        self.events
            .extend(outgoing.events.into_iter().map(|e| (now, e)));
        for (_, bytes, to) in outgoing.sends {
            assert!(
                matches!(to, Destination::Broadcast | Destination::Unicast(_)),
                "{to:?}"
            );
            if self.rng.chance(self.loss) {
                continue;
            }
            let Ok(p) = Packet::parse(&bytes) else {
                panic!("the engine sent an unparsable reply");
            };
            if p.message_type() == Some(MessageType::Ack) {
                self.acks_delivered += 1;
            }
            let Some(mac) = p.mac() else { continue };
            if let Some(c) = self.clients.iter_mut().find(|c| c.mac == mac) {
                c.receive(&p, now);
            }
        }
        self.now += 1;
    }

    fn run(&mut self, secs: u64) {
        for _ in 0..secs {
            self.step();
            self.check_no_address_twice();
        }
    }

    /// Runs until every client that is on is bound, at most `secs`; returns how long.
    fn run_until_bound(&mut self, secs: u64) -> u64 {
        let start = self.now;
        while self.now - start < secs {
            if self
                .clients
                .iter()
                .all(|c| c.state == State::Off || c.bound_ip().is_some())
            {
                break;
            }
            self.step();
            self.check_no_address_twice();
        }
        self.now - start
    }

    fn check_no_address_twice(&self) {
        let mut holders: HashMap<Ipv4Addr, MacAddr> = HashMap::new();
        for c in &self.clients {
            if let Some(ip) = c.bound_ip()
                && let Some(other) = holders.insert(ip, c.mac)
            {
                panic!("{ip} held by {other} and {} at {}", c.mac, self.now);
            }
        }
    }

    /// A crash: the engine is rebuilt from the store; whatever was in flight is lost.
    fn restart(&mut self) {
        let leases = self.store.leases().unwrap_or_else(|e| panic!("{e}"));
        self.engine = Engine::new(self.config.clone(), leases);
    }
}

#[test]
fn two_hundred_strangers_under_30_percent_loss_each_way_all_bind_to_distinct_addresses() {
    let clients = (0..200)
        .map(|i| Client::new(stranger(i), 7000 + i))
        .collect();
    let mut sim = Sim::new(config(pool(250), HashMap::new()), clients, 30, 1);
    let took = sim.run_until_bound(600);
    assert!(
        sim.clients.iter().all(|c| c.bound_ip().is_some()),
        "not all bound after {took} virtual seconds"
    );
    let stored = sim.store.map().clone();
    let mut seen = HashSet::new();
    for c in &sim.clients {
        let ip = c.bound_ip().unwrap_or_else(|| unreachable!());
        assert!(seen.insert(ip), "{ip} twice");
        assert_eq!(
            stored.get(&c.mac).map(|l| l.ip),
            Some(ip),
            "the store holds what {} was given",
            c.mac
        );
    }
    println!("200 clients, 30% loss each way: all bound in {took} virtual s");
}

#[test]
fn known_machines_under_loss_get_exactly_their_reservations() {
    let reservations: HashMap<MacAddr, Reservation> = (0..50u8)
        .map(|i| {
            (
                MacAddr([0x52, 0x54, 0, 0x77, 0, i]),
                Reservation {
                    ip: Ipv4Addr::new(10, 77, 0, 10 + i),
                    hostname: format!("n{i}"),
                    boot: NodeBootFiles::default(),
                },
            )
        })
        .collect();
    let clients = reservations
        .keys()
        .enumerate()
        .map(|(i, m)| Client::new(*m, 100 + i as u32))
        .collect();
    let mut sim = Sim::new(config(pool(10), reservations.clone()), clients, 30, 2);
    sim.run_until_bound(600);
    for c in &sim.clients {
        assert_eq!(
            c.bound_ip(),
            reservations.get(&c.mac).map(|r| r.ip),
            "{}",
            c.mac
        );
    }
    // Several lease periods of renewals under loss: still their own addresses.
    sim.run(u64::from(LEASE) * 4);
    for c in &sim.clients {
        if let Some(ip) = c.bound_ip() {
            assert_eq!(Some(ip), reservations.get(&c.mac).map(|r| r.ip));
        }
    }
}

#[test]
fn while_the_store_fails_no_ack_leaves_and_nothing_is_reported_bound() {
    let mut clients: Vec<Client> = (0..40).map(|i| Client::new(stranger(i), 500 + i)).collect();
    for c in clients.iter_mut().skip(20) {
        c.rapid_commit = true;
    }
    let mut sim = Sim::new(config(pool(64), HashMap::new()), clients, 10, 3);
    sim.store.failing.store(true, Ordering::Relaxed);
    sim.run(90);
    assert_eq!(sim.acks_delivered, 0, "an ACK left without a durable lease");
    assert!(
        !sim.events
            .iter()
            .any(|(_, e)| matches!(e, Event::Bound { .. })),
        "Bound reported for a lease that is not durable"
    );
    assert!(sim.clients.iter().all(|c| c.bound_ip().is_none()));
    assert!(sim.store.map().is_empty());
    // The disk comes back: everyone binds, plain and rapid-commit clients alike.
    sim.store.failing.store(false, Ordering::Relaxed);
    let took = sim.run_until_bound(300);
    assert!(
        sim.clients.iter().all(|c| c.bound_ip().is_some()),
        "not all bound {took} s after the store recovered"
    );
    assert_eq!(sim.store.map().len(), 40);
}

#[test]
fn leases_of_machines_that_vanish_end_on_time_and_their_addresses_are_reused() {
    // A pool of exactly 20; 20 clients bind, 10 power off, 10 keep renewing.
    let clients = (0..20).map(|i| Client::new(stranger(i), 900 + i)).collect();
    let mut sim = Sim::new(config(pool(20), HashMap::new()), clients, 0, 4);
    sim.run_until_bound(120);
    let ends: HashMap<MacAddr, u64> = sim
        .store
        .map()
        .values()
        .map(|l| (l.mac, l.expires))
        .collect();
    for c in sim.clients.iter_mut().take(10) {
        c.state = State::Off;
    }
    let gone: HashSet<MacAddr> = sim.clients.iter().take(10).map(|c| c.mac).collect();
    sim.run(u64::from(LEASE) * 3);
    let expired: Vec<(u64, MacAddr)> = sim
        .events
        .iter()
        .filter_map(|(at, e)| match e {
            Event::Expired { mac, .. } => Some((*at, *mac)),
            _ => None,
        })
        .collect();
    assert_eq!(expired.len(), 10, "{expired:?}");
    for (at, mac) in &expired {
        assert!(gone.contains(mac), "{mac} renews and must not expire");
        assert_eq!(Some(at), ends.get(mac), "{mac} ended at its lease end");
        assert!(!sim.store.map().contains_key(mac), "forgotten in the store");
    }
    // A newcomer gets one of the freed addresses (the pool has no other).
    sim.clients.push(Client::new(stranger(99), 4242));
    sim.run_until_bound(60);
    assert!(sim.clients.last().and_then(Client::bound_ip).is_some());
}

#[test]
fn after_a_crash_no_address_is_held_twice_and_bound_clients_keep_theirs() {
    let clients = (0..50)
        .map(|i| Client::new(stranger(i), 3000 + i))
        .collect();
    let mut sim = Sim::new(config(pool(60), HashMap::new()), clients, 20, 5);
    sim.run_until_bound(600);
    let before: HashMap<MacAddr, Ipv4Addr> = sim
        .clients
        .iter()
        .filter_map(|c| c.bound_ip().map(|ip| (c.mac, ip)))
        .collect();
    assert_eq!(before.len(), 50);
    sim.restart();
    // Newcomers arrive while the others renew through several lease periods.
    for i in 50..60 {
        sim.clients.push(Client::new(stranger(i), 3000 + i));
    }
    sim.run(u64::from(LEASE) * 4);
    for c in &sim.clients {
        if let (Some(now), Some(then)) = (c.bound_ip(), before.get(&c.mac)) {
            assert_eq!(now, *then, "{} moved after the restart", c.mac);
        }
    }
    assert!(sim.clients.iter().all(|c| c.bound_ip().is_some()));
}
