//! The sans-IO DHCP engine (crates/dhcp `Engine`) driven by a sequence of datagrams,
//! passing time and reloads read from the input (see `slipway_fuzz::dhcp_config` for
//! the lab it serves). Besides never panicking, it must:
//! - send only well-formed BOOTREPLYs that fit an Ethernet frame;
//! - hand out (persist) only pool addresses, or a machine's own reservation;
//! - never let two machines hold the same address at once;
//! - keep its per-client state bounded, and say honestly when it next needs the time.
#![no_main]

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};

use libfuzzer_sys::fuzz_target;
use slipway_dhcp::wire::{self, MAX_PACKET, MessageType, Packet};
use slipway_dhcp::{Action, Config, Destination, Engine, Event, Port};
use slipway_fuzz::{Input, dhcp_config};

/// A Tuesday in 2023, in seconds since the epoch.
const START: u64 = 1_700_000_000;
/// Steps per input at most (inputs are small anyway; this bounds the time of one run).
const MAX_STEPS: usize = 256;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let mut config = dhcp_config(input.u8());
    let mut engine = Engine::new(config.clone(), vec![]);
    let mut now = START;
    for _ in 0..MAX_STEPS {
        if input.is_empty() {
            break;
        }
        let op = input.u8();
        now += u64::from(input.u8());
        let actions = match op % 4 {
            port @ (0 | 1) => {
                // From port 68 on the DHCP port, from a firmware's own port on 4011.
                let (port, from) = if port == 0 {
                    (Port::Dhcp, 68)
                } else {
                    (Port::Pxe, 2070)
                };
                let src = SocketAddrV4::new(Ipv4Addr::new(10, 99, 0, input.u8()), from);
                engine.handle(now, input.frame(), src, port)
            }
            2 => {
                now += u64::from(input.u16());
                if let Some(due) = engine.poll_timeout() {
                    assert!(due > START, "a deadline in the past: {due}");
                }
                engine.handle_timeout(now)
            }
            _ => {
                // A reload: mode, policy, limits and lease time may change; the pool and
                // the reservations stay (an operator moving them may strand leases).
                config = dhcp_config(input.u8());
                engine.reconfigure(config.clone());
                continue;
            }
        };
        check(&engine, &config, now, &actions);
    }
});

fn check(engine: &Engine, config: &Config, now: u64, actions: &[Action]) {
    let pool = config.pool.map(|(a, b)| (u32::from(a), u32::from(b)));
    let in_pool = |ip: Ipv4Addr| pool.is_some_and(|(a, b)| (a..=b).contains(&u32::from(ip)));
    for action in actions {
        match action {
            Action::Send { packet, to } => {
                assert!(
                    packet.len() <= MAX_PACKET,
                    "reply of {} bytes",
                    packet.len()
                );
                let reply = Packet::parse(packet).unwrap_or_else(|e| panic!("reply: {e}"));
                assert_eq!(reply.op, wire::BOOTREPLY);
                assert!(
                    matches!(
                        reply.message_type(),
                        Some(MessageType::Offer | MessageType::Ack | MessageType::Nak)
                    ),
                    "reply of type {:?}",
                    reply.message_type()
                );
                if let Destination::Unicast(addr) = to {
                    // A configured relay, a host of the subnet, or (port 4011) the
                    // datagram's own source.
                    let ip = *addr.ip();
                    let host = config.subnet.contains(&ip)
                        && ip != config.subnet.network()
                        && ip != config.subnet.broadcast();
                    match addr.port() {
                        67 => assert!(config.relays.contains(&ip), "relayed to {addr}"),
                        68 => assert!(host, "unicast to {addr}"),
                        _ => assert_eq!(addr.port(), 2070, "unicast to {addr}"),
                    }
                }
                if !reply.yiaddr.is_unspecified() {
                    let mac = reply.mac().unwrap_or_else(|| panic!("a reply to no MAC"));
                    let own = config.reservations.get(&mac).map(|r| r.ip);
                    assert!(
                        in_pool(reply.yiaddr) || own == Some(reply.yiaddr),
                        "{} offered to {mac}",
                        reply.yiaddr
                    );
                }
            }
            Action::Persist(lease) => {
                let own = config.reservations.get(&lease.mac).map(|r| r.ip);
                assert!(
                    in_pool(lease.ip) || own == Some(lease.ip),
                    "{} leased to {}",
                    lease.ip,
                    lease.mac
                );
                assert!(lease.expires > now, "a lease that has already ended");
            }
            Action::Log(Event::Bound { mac, ip, .. }) => {
                let lease = engine.leases().find(|l| l.mac == *mac);
                assert_eq!(lease.map(|l| l.ip), Some(*ip), "bound without a lease");
            }
            Action::Forget(_) | Action::Log(_) => {}
        }
    }
    // No address held by two machines.
    let mut holders = HashMap::new();
    for lease in engine.leases().filter(|l| l.expires > now) {
        if let Some(other) = holders.insert(lease.ip, lease.mac) {
            panic!("{} leased to both {other} and {}", lease.ip, lease.mac);
        }
    }
    // Offers: at most one per pool address or reservation.
    let pool_size = pool.map_or(0, |(a, b)| (b - a + 1) as usize);
    let sizes = engine.sizes();
    assert!(
        sizes.offers <= pool_size + config.reservations.len(),
        "{} offers outstanding",
        sizes.offers
    );
    assert!(sizes.declined <= pool_size + config.reservations.len());
    assert!(sizes.unknown_reported <= slipway_dhcp::engine::MAX_UNKNOWN_REMEMBERED);
}
