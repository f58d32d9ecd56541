//! The sans-IO DHCP engine, driven packet by packet at explicit times.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddrV4};

use slipway_cluster::{BootFiles as NodeBootFiles, DhcpMode, MacAddr, UnknownPolicy};
use slipway_dhcp::wire::{self, MessageType, Packet, code};
use slipway_dhcp::{
    Action, BootFiles, Config, Destination, Engine as Server, Event, Lease, Port, Reservation,
};

/// The configuration the serve layer builds for a lab: 10.99.0.0/24, slipway on .1,
/// cp1 (.11) and w1 (.21) reserved, a three-address pool .200-.202, one-hour leases.
fn config(mode: &str, unknown: &str) -> Config {
    let reservation = |ip: u8, hostname: &str| Reservation {
        ip: Ipv4Addr::new(10, 99, 0, ip),
        hostname: hostname.into(),
        boot: NodeBootFiles::default(),
    };
    Config {
        mode: match mode {
            "authoritative" => DhcpMode::Authoritative,
            "proxy" => DhcpMode::Proxy,
            _ => DhcpMode::Off,
        },
        server: Ipv4Addr::new(10, 99, 0, 1),
        subnet: "10.99.0.0/24".parse().unwrap_or_else(|e| panic!("{e}")),
        gateway: Some(Ipv4Addr::new(10, 99, 0, 254)),
        dns: vec![Ipv4Addr::new(10, 99, 0, 1)],
        domain: "lab.test".into(),
        ntp: vec![Ipv4Addr::new(10, 99, 0, 1)],
        lease_secs: 3600,
        pool: Some((Ipv4Addr::new(10, 99, 0, 200), Ipv4Addr::new(10, 99, 0, 202))),
        unknown: match unknown {
            "discover" => UnknownPolicy::Discover,
            _ => UnknownPolicy::Ignore,
        },
        reservations: HashMap::from([
            (mac(1), reservation(11, "cp1")),
            (mac(2), reservation(21, "w1")),
        ]),
        relays: [Ipv4Addr::new(10, 98, 0, 1)].into(),
        new_clients_per_sec: 0,
        boot: BootFiles {
            bios: "undionly.kpxe".into(),
            uefi: "snponly.efi".into(),
            http: "http://10.99.0.1:8080/boot/ipxe.efi".into(),
            ipxe_chain: "http://10.99.0.1:8080/boot.ipxe".into(),
        },
    }
}

fn mac(n: u8) -> MacAddr {
    MacAddr([0x52, 0x54, 0, 0x99, 0, n])
}

fn request(kind: MessageType, m: MacAddr) -> Packet {
    let mut chaddr = [0u8; 16];
    chaddr[..6].copy_from_slice(&m.octets());
    let mut p = Packet {
        op: wire::BOOTREQUEST,
        htype: 1,
        hlen: 6,
        hops: 0,
        xid: 42,
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

const SRC: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68);

fn sent(actions: &[Action]) -> Vec<(Packet, Destination)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { packet, to } => {
                Some((Packet::parse(packet).unwrap_or_else(|e| panic!("{e}")), *to))
            }
            _ => None,
        })
        .collect()
}

fn one(actions: &[Action]) -> (Packet, Destination) {
    let s = sent(actions);
    assert_eq!(s.len(), 1, "{actions:?}");
    s.into_iter().next().unwrap_or_else(|| unreachable!())
}

fn handle(s: &mut Server, now: u64, p: &Packet) -> Vec<Action> {
    s.handle(now, &p.emit(), SRC, Port::Dhcp)
}

fn ip4(b: Option<&Vec<u8>>) -> Vec<Ipv4Addr> {
    b.map(|v| {
        v.chunks_exact(4)
            .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
            .collect()
    })
    .unwrap_or_default()
}

#[test]
fn dora_gives_a_known_machine_its_reserved_address_and_options() {
    let mut s = Server::new(config("authoritative", "ignore"), vec![]);
    let (offer, to) = one(&handle(
        &mut s,
        1000,
        &request(MessageType::Discover, mac(1)),
    ));
    assert_eq!(offer.message_type(), Some(MessageType::Offer));
    assert_eq!(offer.yiaddr, Ipv4Addr::new(10, 99, 0, 11));
    assert_eq!(to, Destination::Broadcast);
    assert_eq!(
        ip4(offer.options.get(&code::SERVER_ID)),
        [Ipv4Addr::new(10, 99, 0, 1)]
    );
    assert_eq!(
        ip4(offer.options.get(&code::SUBNET_MASK)),
        [Ipv4Addr::new(255, 255, 255, 0)]
    );
    assert_eq!(
        ip4(offer.options.get(&code::ROUTER)),
        [Ipv4Addr::new(10, 99, 0, 254)]
    );
    assert_eq!(
        ip4(offer.options.get(&code::DNS)),
        [Ipv4Addr::new(10, 99, 0, 1)]
    );
    assert_eq!(
        ip4(offer.options.get(&code::NTP)),
        [Ipv4Addr::new(10, 99, 0, 1)]
    );
    assert_eq!(
        offer.options.get(&code::HOSTNAME).map(Vec::as_slice),
        Some(b"cp1".as_slice())
    );
    assert_eq!(
        offer.options.get(&code::DOMAIN).map(Vec::as_slice),
        Some(b"lab.test".as_slice())
    );
    assert_eq!(
        offer.options.get(&code::LEASE_TIME),
        Some(&3600u32.to_be_bytes().to_vec())
    );
    assert_eq!(
        offer.options.get(&code::RENEWAL),
        Some(&1800u32.to_be_bytes().to_vec())
    );
    assert_eq!(
        offer.options.get(&code::REBINDING),
        Some(&3150u32.to_be_bytes().to_vec())
    );
    assert!(
        !offer.options.contains_key(&code::BOOTFILE),
        "a plain DHCP client gets no boot file"
    );

    let mut req = request(MessageType::Request, mac(1));
    req.set_ips(code::SERVER_ID, &[Ipv4Addr::new(10, 99, 0, 1)]);
    req.set_ips(code::REQUESTED_IP, &[Ipv4Addr::new(10, 99, 0, 11)]);
    let actions = handle(&mut s, 1001, &req);
    // The lease is persisted BEFORE the ACK goes out.
    let persist = actions.iter().position(|a| matches!(a, Action::Persist(_)));
    let send = actions
        .iter()
        .position(|a| matches!(a, Action::Send { .. }));
    assert!(persist.is_some() && persist < send, "{actions:?}");
    assert!(actions.contains(&Action::Persist(Lease {
        mac: mac(1),
        ip: Ipv4Addr::new(10, 99, 0, 11),
        expires: 4601,
        hostname: Some("cp1".into())
    })));
    let (ack, _) = one(&actions);
    assert_eq!(ack.message_type(), Some(MessageType::Ack));
    assert_eq!(ack.yiaddr, Ipv4Addr::new(10, 99, 0, 11));
}

#[test]
fn pxe_clients_get_the_boot_file_for_their_firmware() {
    let mut s = Server::new(config("authoritative", "ignore"), vec![]);
    type Case<'a> = (&'a [u8], Option<&'a [u8]>, &'a str);
    let cases: [Case; 5] = [
        (
            &[0, 0],
            Some(b"PXEClient:Arch:00000:UNDI:002001"),
            "undionly.kpxe",
        ),
        (
            &[0, 7],
            Some(b"PXEClient:Arch:00007:UNDI:003016"),
            "snponly.efi",
        ),
        (
            &[0, 9],
            Some(b"PXEClient:Arch:00009:UNDI:003016"),
            "snponly.efi",
        ),
        (
            &[0, 11, 0, 7],
            Some(b"PXEClient:Arch:00011:UNDI:003016"),
            "snponly.efi",
        ),
        (
            &[0, 16],
            Some(b"HTTPClient:Arch:00016:UNDI:003001"),
            "http://10.99.0.1:8080/boot/ipxe.efi",
        ),
    ];
    for (arch, vendor, file) in cases {
        let mut d = request(MessageType::Discover, mac(1));
        d.set(code::CLIENT_ARCH, arch.to_vec());
        if let Some(v) = vendor {
            d.set(code::VENDOR_CLASS, v.to_vec());
        }
        let (offer, _) = one(&handle(&mut s, 10, &d));
        assert_eq!(
            offer.options.get(&code::BOOTFILE).map(Vec::as_slice),
            Some(file.as_bytes()),
            "{arch:?}"
        );
        assert_eq!(
            offer.file_field(),
            file,
            "boot file also in the BOOTP field"
        );
        assert_eq!(offer.siaddr, Ipv4Addr::new(10, 99, 0, 1));
        assert_eq!(
            offer.options.get(&code::TFTP_SERVER).map(Vec::as_slice),
            Some(b"10.99.0.1".as_slice())
        );
        let expected_class: &[u8] = if file.starts_with("http") {
            b"HTTPClient"
        } else {
            b"PXEClient"
        };
        assert_eq!(
            offer.options.get(&code::VENDOR_CLASS).map(Vec::as_slice),
            Some(expected_class)
        );
    }
    // iPXE gets the chain URL and 175.176 = 1, so it neither reloads itself nor waits.
    let mut d = request(MessageType::Discover, mac(2));
    d.set(code::CLIENT_ARCH, vec![0, 0]);
    d.set(
        code::VENDOR_CLASS,
        b"PXEClient:Arch:00000:UNDI:002001".to_vec(),
    );
    d.set(code::USER_CLASS, b"iPXE".to_vec());
    let (offer, _) = one(&handle(&mut s, 10, &d));
    assert_eq!(offer.file_field(), "http://10.99.0.1:8080/boot.ipxe");
    assert_eq!(offer.options.get(&code::IPXE), Some(&vec![176, 1, 1]));
    // An architecture with no boot file: an address, no file, a log line.
    let mut d = request(MessageType::Discover, mac(2));
    d.set(code::CLIENT_ARCH, vec![0, 11]);
    d.set(code::VENDOR_CLASS, b"PXEClient:Arch:00011".to_vec());
    let actions = handle(&mut s, 10, &d);
    let (offer, _) = one(&actions);
    assert!(!offer.options.contains_key(&code::BOOTFILE));
    assert!(actions.contains(&Action::Log(Event::NoBootFile(mac(2), vec![11]))));
}

#[test]
fn unknown_machines_are_ignored_and_logged_once_per_period() {
    let mut s = Server::new(config("authoritative", "ignore"), vec![]);
    let stranger = MacAddr([2, 0, 0, 0, 0, 9]);
    let a = handle(&mut s, 100, &request(MessageType::Discover, stranger));
    assert_eq!(a, [Action::Log(Event::UnknownIgnored(stranger))]);
    assert!(
        handle(&mut s, 200, &request(MessageType::Discover, stranger)).is_empty(),
        "not logged again within 10 min"
    );
    assert_eq!(
        handle(&mut s, 100 + 600, &request(MessageType::Discover, stranger)),
        [Action::Log(Event::UnknownIgnored(stranger))]
    );
}

#[test]
fn discovery_pool_allocates_without_duplicates_and_survives_restart() {
    let mut s = Server::new(config("authoritative", "discover"), vec![]);
    let strangers: Vec<MacAddr> = (1..=4).map(|n| MacAddr([2, 0, 0, 0, 0, n])).collect();
    let mut got = Vec::new();
    let mut leases = Vec::new();
    for m in &strangers[..3] {
        let (offer, _) = one(&handle(&mut s, 0, &request(MessageType::Discover, *m)));
        let mut req = request(MessageType::Request, *m);
        req.set_ips(code::SERVER_ID, &[Ipv4Addr::new(10, 99, 0, 1)]);
        req.set_ips(code::REQUESTED_IP, &[offer.yiaddr]);
        let actions = handle(&mut s, 1, &req);
        leases.extend(actions.iter().filter_map(|a| {
            if let Action::Persist(l) = a {
                Some(l.clone())
            } else {
                None
            }
        }));
        let (ack, _) = one(&actions);
        assert_eq!(ack.message_type(), Some(MessageType::Ack));
        got.push(ack.yiaddr);
    }
    got.sort();
    assert_eq!(got, [200, 201, 202].map(|i| Ipv4Addr::new(10, 99, 0, i)));
    // Pool full: the fourth gets nothing.
    let a = handle(&mut s, 2, &request(MessageType::Discover, strangers[3]));
    assert_eq!(a, [Action::Log(Event::PoolExhausted(strangers[3]))]);

    // Restart with the persisted leases: same answers, still no room for the fourth.
    let mut s2 = Server::new(config("authoritative", "discover"), leases);
    let (again, _) = one(&handle(
        &mut s2,
        3,
        &request(MessageType::Discover, strangers[0]),
    ));
    assert_eq!(
        again.yiaddr,
        got.iter()
            .copied()
            .find(|ip| *ip == again.yiaddr)
            .unwrap_or(Ipv4Addr::UNSPECIFIED)
    );
    assert_eq!(
        handle(&mut s2, 3, &request(MessageType::Discover, strangers[3])),
        [Action::Log(Event::PoolExhausted(strangers[3]))]
    );
    // After the leases expire (1 h), the address is free again.
    let (late, _) = one(&handle(
        &mut s2,
        3 + 3601,
        &request(MessageType::Discover, strangers[3]),
    ));
    assert!(got.contains(&late.yiaddr));
}

#[test]
fn wrong_requests_get_a_nak_and_other_servers_are_respected() {
    let mut s = Server::new(config("authoritative", "ignore"), vec![]);
    // INIT-REBOOT with a wrong address: NAK, broadcast.
    let mut req = request(MessageType::Request, mac(1));
    req.set_ips(code::REQUESTED_IP, &[Ipv4Addr::new(10, 99, 0, 21)]);
    let (nak, to) = one(&handle(&mut s, 5, &req));
    assert_eq!(nak.message_type(), Some(MessageType::Nak));
    assert_eq!(to, Destination::Broadcast);
    // SELECTING another server: we stay silent.
    let mut req = request(MessageType::Request, mac(1));
    req.set_ips(code::SERVER_ID, &[Ipv4Addr::new(10, 99, 0, 77)]);
    req.set_ips(code::REQUESTED_IP, &[Ipv4Addr::new(10, 99, 0, 11)]);
    assert!(sent(&handle(&mut s, 5, &req)).is_empty());
    // RENEWING (ciaddr set): ACK unicast to ciaddr.
    let mut req = request(MessageType::Request, mac(1));
    req.ciaddr = Ipv4Addr::new(10, 99, 0, 11);
    let (ack, to) = one(&handle(&mut s, 5, &req));
    assert_eq!(ack.message_type(), Some(MessageType::Ack));
    assert_eq!(
        to,
        Destination::Unicast(SocketAddrV4::new(Ipv4Addr::new(10, 99, 0, 11), 68))
    );
}

#[test]
fn relays_inform_decline_release() {
    let mut s = Server::new(config("authoritative", "discover"), vec![]);
    let mut d = request(MessageType::Discover, mac(1));
    d.giaddr = Ipv4Addr::new(10, 98, 0, 1);
    let (_, to) = one(&handle(&mut s, 0, &d));
    assert_eq!(
        to,
        Destination::Unicast(SocketAddrV4::new(Ipv4Addr::new(10, 98, 0, 1), 67)),
        "relayed replies go to the relay"
    );
    // A giaddr that is not a configured relay: dropped, reported once per period.
    d.giaddr = Ipv4Addr::new(10, 98, 0, 66);
    assert_eq!(
        handle(&mut s, 0, &d),
        [Action::Log(Event::RelayRefused(d.giaddr))]
    );
    assert!(
        handle(&mut s, 1, &d).is_empty(),
        "not reported again at once"
    );
    assert_eq!(
        handle(&mut s, 600, &d),
        [Action::Log(Event::RelayRefused(d.giaddr))],
        "again after the period"
    );

    let mut inform = request(MessageType::Inform, mac(2));
    inform.ciaddr = Ipv4Addr::new(10, 99, 0, 21);
    let (ack, to) = one(&handle(&mut s, 0, &inform));
    assert_eq!(ack.yiaddr, Ipv4Addr::UNSPECIFIED);
    assert!(
        !ack.options.contains_key(&code::LEASE_TIME),
        "INFORM carries no lease"
    );
    assert_eq!(
        to,
        Destination::Unicast(SocketAddrV4::new(Ipv4Addr::new(10, 99, 0, 21), 68))
    );

    // A pool client declines its address: it is not offered again for a while.
    let stranger = MacAddr([2, 0, 0, 0, 0, 5]);
    let (offer, _) = one(&handle(
        &mut s,
        0,
        &request(MessageType::Discover, stranger),
    ));
    let mut decline = request(MessageType::Decline, stranger);
    decline.set_ips(code::REQUESTED_IP, &[offer.yiaddr]);
    let a = handle(&mut s, 1, &decline);
    assert!(a.contains(&Action::Log(Event::Declined(stranger, offer.yiaddr))));
    let (next, _) = one(&handle(
        &mut s,
        2,
        &request(MessageType::Discover, stranger),
    ));
    assert_ne!(next.yiaddr, offer.yiaddr);

    // RELEASE frees a pool lease.
    let mut req = request(MessageType::Request, stranger);
    req.set_ips(code::SERVER_ID, &[Ipv4Addr::new(10, 99, 0, 1)]);
    req.set_ips(code::REQUESTED_IP, &[next.yiaddr]);
    let _ = handle(&mut s, 3, &req);
    let mut release = request(MessageType::Release, stranger);
    release.ciaddr = next.yiaddr;
    assert_eq!(handle(&mut s, 4, &release), [Action::Forget(stranger)]);
}

#[test]
fn replies_are_unicast_only_to_a_host_of_the_served_subnet() {
    // Found by fuzz/fuzz_targets/dhcp_engine.rs: a forged ciaddr chose where the reply
    // went (255.255.255.255 as a unicast; any host anywhere). A host of the subnet
    // still gets its reply unicast; any other ciaddr gets a broadcast on the link.
    let mut s = Server::new(config("authoritative", "ignore"), vec![]);
    for (ciaddr, to) in [
        (
            Ipv4Addr::new(10, 99, 0, 21),
            Destination::Unicast(SocketAddrV4::new(Ipv4Addr::new(10, 99, 0, 21), 68)),
        ),
        (Ipv4Addr::BROADCAST, Destination::Broadcast),
        (Ipv4Addr::new(10, 99, 0, 255), Destination::Broadcast),
        (Ipv4Addr::new(10, 99, 0, 0), Destination::Broadcast),
        (Ipv4Addr::new(224, 0, 0, 1), Destination::Broadcast),
        (Ipv4Addr::new(192, 0, 2, 7), Destination::Broadcast),
    ] {
        let mut inform = request(MessageType::Inform, mac(2));
        inform.ciaddr = ciaddr;
        assert_eq!(
            one(&handle(&mut s, 0, &inform)).1,
            to,
            "INFORM from {ciaddr}"
        );
        // A renewing REQUEST for its reserved address: ACKed the same way.
        let mut renew = request(MessageType::Request, mac(2));
        renew.ciaddr = ciaddr;
        renew.set_ips(code::REQUESTED_IP, &[Ipv4Addr::new(10, 99, 0, 21)]);
        let (ack, dest) = one(&handle(&mut s, 0, &renew));
        assert_eq!(ack.message_type(), Some(MessageType::Ack));
        assert_eq!(dest, to, "REQUEST from {ciaddr}");
    }
}

#[test]
fn rapid_commit_acks_at_once() {
    let mut s = Server::new(config("authoritative", "ignore"), vec![]);
    let mut d = request(MessageType::Discover, mac(2));
    d.set(code::RAPID_COMMIT, Vec::new());
    let actions = handle(&mut s, 0, &d);
    assert!(actions.iter().any(|a| matches!(a, Action::Persist(_))));
    let (ack, _) = one(&actions);
    assert_eq!(ack.message_type(), Some(MessageType::Ack));
    assert!(ack.options.contains_key(&code::RAPID_COMMIT));
}

#[test]
fn proxy_mode_gives_boot_information_only() {
    let mut s = Server::new(config("proxy", "ignore"), vec![]);
    let mut d = request(MessageType::Discover, mac(1));
    d.set(code::CLIENT_ARCH, vec![0, 7]);
    d.set(
        code::VENDOR_CLASS,
        b"PXEClient:Arch:00007:UNDI:003016".to_vec(),
    );
    let (offer, _) = one(&handle(&mut s, 0, &d));
    assert_eq!(
        offer.yiaddr,
        Ipv4Addr::UNSPECIFIED,
        "no address from a proxy"
    );
    assert_eq!(offer.file_field(), "snponly.efi");
    assert!(!offer.options.contains_key(&code::LEASE_TIME));
    // The PXE client then asks on 4011; the answer goes back to its source port.
    let mut r = request(MessageType::Request, mac(1));
    r.ciaddr = Ipv4Addr::new(10, 99, 0, 150);
    r.set(code::CLIENT_ARCH, vec![0, 7]);
    r.set(
        code::VENDOR_CLASS,
        b"PXEClient:Arch:00007:UNDI:003016".to_vec(),
    );
    let src = SocketAddrV4::new(Ipv4Addr::new(10, 99, 0, 150), 4011);
    let sent = sent(&s.handle(1, &r.emit(), src, Port::Pxe));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0.message_type(), Some(MessageType::Ack));
    assert_eq!(sent[0].1, Destination::Unicast(src));
    // An OS's plain DHCP client is the site server's business.
    assert!(handle(&mut s, 2, &request(MessageType::Discover, mac(1))).is_empty());
}

#[test]
fn garbage_is_dropped_silently() {
    let mut s = Server::new(config("authoritative", "discover"), vec![]);
    assert!(s.handle(0, &[1, 2, 3], SRC, Port::Dhcp).is_empty());
    let mut reply = request(MessageType::Offer, mac(1));
    reply.op = wire::BOOTREPLY;
    assert!(
        handle(&mut s, 0, &reply).is_empty(),
        "replies from other servers are not requests"
    );
    let mut no_type = request(MessageType::Discover, mac(1));
    no_type.options.clear();
    assert!(handle(&mut s, 0, &no_type).is_empty());
}

#[test]
fn boot_files_can_be_overridden_per_profile_and_node() {
    // w1 has a profile's BIOS file; w2 that and its own UEFI file.
    let mut c = config("authoritative", "ignore");
    let profile = NodeBootFiles {
        bios: Some("pxelinux.0".into()),
        uefi: None,
    };
    if let Some(w1) = c.reservations.get_mut(&mac(2)) {
        w1.boot = profile.clone();
    }
    c.reservations.insert(
        mac(3),
        Reservation {
            ip: Ipv4Addr::new(10, 99, 0, 23),
            hostname: "w2".into(),
            boot: NodeBootFiles {
                uefi: Some("ipxe.efi".into()),
                ..profile
            },
        },
    );
    let mut s = Server::new(c, vec![]);
    let boot = |s: &mut Server, m: MacAddr, arch: u8| {
        let mut d = request(MessageType::Discover, m);
        d.set(code::CLIENT_ARCH, vec![0, arch]);
        d.set(
            code::VENDOR_CLASS,
            format!("PXEClient:Arch:{arch:05}").into_bytes(),
        );
        one(&handle(s, 0, &d)).0.file_field()
    };
    assert_eq!(
        boot(&mut s, mac(1), 0),
        "undionly.kpxe",
        "control plane: the default"
    );
    assert_eq!(
        boot(&mut s, mac(2), 0),
        "pxelinux.0",
        "worker: the profile's"
    );
    assert_eq!(
        boot(&mut s, mac(2), 7),
        "snponly.efi",
        "the profile says nothing for UEFI"
    );
    assert_eq!(
        boot(&mut s, mac(3), 0),
        "pxelinux.0",
        "w2 keeps the profile's BIOS file"
    );
    assert_eq!(boot(&mut s, mac(3), 7), "ipxe.efi", "and its own UEFI file");
}

#[test]
fn a_storm_of_strangers_gets_distinct_addresses_and_the_pool_wraps() {
    // 3,838 pool addresses, as many strangers: every one gets its own; then, after one
    // releases, a newcomer gets exactly that address (the search wraps around).
    let mut c = config("authoritative", "discover");
    c.subnet = "10.99.0.0/20".parse().unwrap_or_else(|e| panic!("{e}"));
    c.pool = Some((Ipv4Addr::new(10, 99, 1, 0), Ipv4Addr::new(10, 99, 15, 253)));
    let mut s = Server::new(c, vec![]);
    let size = 14 * 256 + 254; // 10.99.1.0 ..= 10.99.15.253
    let stranger = |i: u32| {
        let b = i.to_be_bytes();
        MacAddr([2, 1, b[0], b[1], b[2], b[3]])
    };
    let mut seen = std::collections::HashSet::new();
    for i in 0..size {
        let m = stranger(i);
        let (offer, _) = one(&handle(&mut s, 10, &request(MessageType::Discover, m)));
        let mut req = request(MessageType::Request, m);
        req.set_ips(code::SERVER_ID, &[Ipv4Addr::new(10, 99, 0, 1)]);
        req.set_ips(code::REQUESTED_IP, &[offer.yiaddr]);
        let (ack, _) = one(&handle(&mut s, 10, &req));
        assert_eq!(ack.message_type(), Some(MessageType::Ack), "client {i}");
        assert!(seen.insert(ack.yiaddr), "{} handed out twice", ack.yiaddr);
    }
    let newcomer = stranger(size);
    assert_eq!(
        handle(&mut s, 11, &request(MessageType::Discover, newcomer)),
        [Action::Log(Event::PoolExhausted(newcomer))]
    );
    // One releases an address in the middle of the pool.
    let freed = Ipv4Addr::new(10, 99, 7, 7);
    let holder = s
        .leases()
        .find(|l| l.ip == freed)
        .map(|l| l.mac)
        .unwrap_or_else(|| panic!("{freed} leased"));
    let mut release = request(MessageType::Release, holder);
    release.ciaddr = freed;
    release.set_ips(code::SERVER_ID, &[Ipv4Addr::new(10, 99, 0, 1)]);
    assert_eq!(handle(&mut s, 12, &release), [Action::Forget(holder)]);
    let (offer, _) = one(&handle(
        &mut s,
        12,
        &request(MessageType::Discover, newcomer),
    ));
    assert_eq!(offer.yiaddr, freed);
}

#[test]
fn timers_end_leases_offers_and_quarantines_when_they_fall_due() {
    let mut s = Server::new(config("authoritative", "discover"), vec![]);
    assert_eq!(s.poll_timeout(), None, "nothing held");
    let stranger = MacAddr([2, 0, 0, 0, 0, 9]);
    let (offer, _) = one(&handle(
        &mut s,
        10,
        &request(MessageType::Discover, stranger),
    ));
    assert_eq!(s.poll_timeout(), Some(70), "the offer is held for a minute");
    let mut req = request(MessageType::Request, stranger);
    req.set_ips(code::SERVER_ID, &[Ipv4Addr::new(10, 99, 0, 1)]);
    req.set_ips(code::REQUESTED_IP, &[offer.yiaddr]);
    req.set(code::HOSTNAME, b"visitor".to_vec());
    let actions = handle(&mut s, 10, &req);
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Log(Event::Bound { mac, hostname: Some(h), client: slipway_dhcp::ClientKind::Os, .. })
            if *mac == stranger && h == "visitor"
    )), "{actions:?}");
    assert_eq!(s.poll_timeout(), Some(3610), "the lease ends an hour later");
    assert!(s.handle_timeout(3609).is_empty(), "not yet");
    assert_eq!(
        s.handle_timeout(3610),
        [
            Action::Forget(stranger),
            Action::Log(Event::Expired {
                mac: stranger,
                ip: offer.yiaddr,
                hostname: Some("visitor".into())
            })
        ]
    );
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(s.leases().count(), 0, "the ended lease is purged");
}

#[test]
fn restored_leases_that_ended_while_down_are_purged_at_the_first_timeout() {
    let old = Lease {
        mac: MacAddr([2, 0, 0, 0, 0, 7]),
        ip: Ipv4Addr::new(10, 99, 0, 201),
        expires: 500,
        hostname: None,
    };
    let forever = Lease {
        mac: mac(1),
        ip: Ipv4Addr::new(10, 99, 0, 11),
        expires: u64::MAX,
        hostname: Some("cp1".into()),
    };
    let mut s = Server::new(
        config("authoritative", "discover"),
        vec![old.clone(), forever],
    );
    assert_eq!(
        s.poll_timeout(),
        Some(500),
        "infinite leases never fall due"
    );
    let due = s.handle_timeout(10_000);
    assert_eq!(due.first(), Some(&Action::Forget(old.mac)));
    assert_eq!(s.leases().count(), 1);
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn unknown_machines_reported_are_forgotten_after_the_period() {
    let mut s = Server::new(config("authoritative", "ignore"), vec![]);
    for i in 0..100u8 {
        handle(
            &mut s,
            50,
            &request(MessageType::Discover, MacAddr([2, 9, 0, 0, 0, i])),
        );
    }
    assert_eq!(s.sizes().unknown_reported, 100);
    assert_eq!(s.poll_timeout(), Some(650));
    assert!(s.handle_timeout(650).is_empty());
    assert_eq!(s.sizes().unknown_reported, 0, "the per-MAC table is pruned");
}

#[test]
fn a_decline_counts_only_for_the_address_that_mac_was_given() {
    let mut s = Server::new(config("authoritative", "discover"), vec![]);
    // cp1 declining w1's address, or a stranger declining a pool address it was never
    // offered, takes nothing out of service.
    for (who, ip) in [
        (mac(1), Ipv4Addr::new(10, 99, 0, 21)),
        (MacAddr([2, 0, 0, 0, 0, 5]), Ipv4Addr::new(10, 99, 0, 200)),
    ] {
        let mut d = request(MessageType::Decline, who);
        d.set_ips(code::REQUESTED_IP, &[ip]);
        assert!(handle(&mut s, 5, &d).is_empty(), "{who} {ip}");
    }
    assert_eq!(s.sizes().declined, 0);
    // Its own reserved address: quarantined.
    let mut d = request(MessageType::Decline, mac(2));
    d.set_ips(code::REQUESTED_IP, &[Ipv4Addr::new(10, 99, 0, 21)]);
    assert_eq!(
        handle(&mut s, 5, &d),
        [Action::Log(Event::Declined(
            mac(2),
            Ipv4Addr::new(10, 99, 0, 21)
        ))]
    );
    assert_eq!(s.sizes().declined, 1);
    assert_eq!(s.poll_timeout(), Some(605), "quarantined for ten minutes");
    assert!(s.handle_timeout(605).is_empty());
    assert_eq!(s.sizes().declined, 0);
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn a_flood_of_random_unknown_macs_takes_bounded_memory_and_one_log_line() {
    let mut s = Server::new(config("authoritative", "ignore"), vec![]);
    let mut logged = 0;
    let mut floods = 0;
    for i in 0..100_000u32 {
        let b = i.to_be_bytes();
        for a in handle(
            &mut s,
            7,
            &request(
                MessageType::Discover,
                MacAddr([2, 7, b[0], b[1], b[2], b[3]]),
            ),
        ) {
            match a {
                Action::Log(Event::UnknownIgnored(_)) => logged += 1,
                Action::Log(Event::UnknownFlood { .. }) => floods += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    let max = slipway_dhcp::engine::MAX_UNKNOWN_REMEMBERED;
    assert_eq!(s.sizes().unknown_reported, max);
    assert_eq!(logged, max);
    assert_eq!(floods, 1, "the rest is reported once");
    assert_eq!(s.sizes().unknown_unlogged, 100_000 - max as u64);
}

#[test]
fn discover_mode_is_rate_limited_per_mac_and_for_new_machines() {
    let mut c = config("authoritative", "discover");
    c.new_clients_per_sec = 2;
    c.pool = Some((Ipv4Addr::new(10, 99, 0, 100), Ipv4Addr::new(10, 99, 0, 199)));
    let mut s = Server::new(c, vec![]);
    let offers = |actions: &[Action]| sent(actions).len();
    // Three new machines in one second: two get offers, the third waits.
    let (a, b, x) = (
        MacAddr([2, 1, 0, 0, 0, 1]),
        MacAddr([2, 1, 0, 0, 0, 2]),
        MacAddr([2, 1, 0, 0, 0, 3]),
    );
    assert_eq!(
        offers(&handle(&mut s, 100, &request(MessageType::Discover, a))),
        1
    );
    assert_eq!(
        offers(&handle(&mut s, 100, &request(MessageType::Discover, b))),
        1
    );
    let third = handle(&mut s, 100, &request(MessageType::Discover, x));
    assert_eq!(third, [Action::Log(Event::RateLimited { dropped: 1 })]);
    // A machine already offered is not new: its retransmission is answered.
    assert_eq!(
        offers(&handle(&mut s, 100, &request(MessageType::Discover, a))),
        1
    );
    // The next second, the third gets its offer.
    assert_eq!(
        offers(&handle(&mut s, 101, &request(MessageType::Discover, x))),
        1
    );
    // One MAC sending 50 requests in a second gets 10 answers.
    let answered: usize = (0..50)
        .map(|_| offers(&handle(&mut s, 102, &request(MessageType::Discover, a))))
        .sum();
    assert_eq!(answered, 10);
    // Reserved machines are never limited.
    let answered: usize = (0..50)
        .map(|_| {
            offers(&handle(
                &mut s,
                102,
                &request(MessageType::Discover, mac(1)),
            ))
        })
        .sum();
    assert_eq!(answered, 50);
}
