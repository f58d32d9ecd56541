//! The tokio driver seen from a hand-driven UDP client: transfer IDs, retransmitted
//! requests, the firmware `tsize` probe, the transfer cap, shutdown, interface binding.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use slipway_tftp::wire::{ErrorCode, OptionRepr, Repr, RequestRepr};
use slipway_tftp::{Config, MapSource, ServeError, serve};

fn source_with(name: &str, bytes: Vec<u8>) -> Arc<MapSource> {
    let map = Arc::new(MapSource::new());
    map.insert(name, bytes).unwrap();
    map
}

fn client() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    socket
}

fn rrq(name: &str, options: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    Repr::Rrq(RequestRepr {
        filename: name,
        mode: "octet",
        options: options
            .iter()
            .map(|&(name, value)| OptionRepr { name, value })
            .collect(),
    })
    .emit(&mut out);
    out
}

fn packet(repr: Repr<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    repr.emit(&mut out);
    out
}

/// Everything `socket` receives within `window`.
fn receive_for(socket: &UdpSocket, window: Duration) -> Vec<(SocketAddr, Vec<u8>)> {
    let end = Instant::now() + window;
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    while Instant::now() < end {
        if let Ok((n, from)) = socket.recv_from(&mut buf) {
            got.push((from, buf[..n].to_vec()));
        }
    }
    got
}

/// The next datagram within 5 s.
fn receive(socket: &UdpSocket) -> (SocketAddr, Vec<u8>) {
    let end = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 2048];
    while Instant::now() < end {
        if let Ok((n, from)) = socket.recv_from(&mut buf) {
            return (from, buf[..n].to_vec());
        }
    }
    panic!("nothing received within 5 s");
}

#[test]
fn each_transfer_has_its_own_tid_and_strangers_get_error_5() {
    let data = random_bytes(1, 512 * 3 + 10);
    let server = Server::start(source_with("f", data.clone()), Config::default());
    let a = client();
    a.send_to(&rrq("f", &[]), server.addr).unwrap();
    let (tid, first) = receive(&a);
    assert_ne!(tid.port(), server.port(), "DATA comes from a new port");
    assert_eq!(tid.ip(), server.addr.ip(), "bound to the listening IP");
    assert_eq!(
        Repr::parse_bytes(&first).unwrap(),
        Repr::Data {
            block: 1,
            data: &data[..512]
        }
    );

    // A stranger acknowledging block 1 on the transfer's port gets ERROR 5...
    let stranger = client();
    stranger
        .send_to(&packet(Repr::Ack { block: 1 }), tid)
        .unwrap();
    let (from, reply) = receive(&stranger);
    assert_eq!(from, tid);
    assert!(matches!(
        Repr::parse_bytes(&reply).unwrap(),
        Repr::Error {
            code: ErrorCode::UnknownTransferId,
            ..
        }
    ));
    // ...and the transfer did not move: the client gets nothing until it ACKs.
    assert!(receive_for(&a, Duration::from_millis(300)).is_empty());

    let mut got = data[..512].to_vec();
    for block in 1u16..=3 {
        a.send_to(&packet(Repr::Ack { block }), tid).unwrap();
        let (from, bytes) = receive(&a);
        assert_eq!(from, tid);
        let Repr::Data { block: b, data } = Repr::parse_bytes(&bytes).unwrap() else {
            panic!()
        };
        assert_eq!(b, block + 1);
        got.extend_from_slice(data);
    }
    a.send_to(&packet(Repr::Ack { block: 4 }), tid).unwrap();
    assert_eq!(got, data);
    // A second transfer from another client gets another port.
    let b = client();
    b.send_to(&rrq("f", &[]), server.addr).unwrap();
    let (tid_b, _) = receive(&b);
    assert_ne!(tid_b, tid);
}

#[test]
fn a_retransmitted_request_is_ignored() {
    let server = Server::start(source_with("f", random_bytes(2, 5000)), Config::default());
    let a = client();
    let request = rrq("f", &[("blksize", "1024")]);
    a.send_to(&request, server.addr).unwrap();
    a.send_to(&request, server.addr).unwrap();
    a.send_to(&request, server.addr).unwrap();
    // One transfer, one OACK (the server's own timer is 1 s away).
    let got = receive_for(&a, Duration::from_millis(600));
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(matches!(
        Repr::parse_bytes(&got[0].1).unwrap(),
        Repr::Oack { .. }
    ));
}

#[test]
fn tsize_probe_ended_with_error_8_frees_the_slot_at_once() {
    let config = Config {
        max_transfers: 1,
        ..Config::default()
    };
    let server = Server::start(source_with("big", random_bytes(3, 123_456)), config);
    let probe = client();
    probe
        .send_to(
            &rrq("big", &[("tsize", "0"), ("blksize", "1468")]),
            server.addr,
        )
        .unwrap();
    let (tid, oack) = receive(&probe);
    assert_eq!(
        Repr::parse_bytes(&oack).unwrap(),
        Repr::Oack {
            options: vec![
                OptionRepr {
                    name: "blksize",
                    value: "1468"
                },
                OptionRepr {
                    name: "tsize",
                    value: "123456"
                }
            ]
        }
    );
    probe
        .send_to(
            &packet(Repr::Error {
                code: ErrorCode::OptionsRefused,
                message: "User aborted",
            }),
            tid,
        )
        .unwrap();
    // No retransmitted OACK (the timer would fire after 1 s), no ERROR back.
    assert!(receive_for(&probe, Duration::from_millis(1500)).is_empty());
    // The only slot is free again: the real download starts at once.
    let real = client();
    real.send_to(&rrq("big", &[("blksize", "1468")]), server.addr)
        .unwrap();
    let (_, oack) = receive(&real);
    assert!(matches!(
        Repr::parse_bytes(&oack).unwrap(),
        Repr::Oack { .. }
    ));
}

#[test]
fn requests_beyond_the_cap_wait_for_a_slot() {
    let config = Config {
        max_transfers: 1,
        ..Config::default()
    };
    let server = Server::start(source_with("f", random_bytes(4, 100)), config);
    let first = client();
    first
        .send_to(&rrq("f", &[("tsize", "0")]), server.addr)
        .unwrap();
    let (tid, _) = receive(&first);
    let second = client();
    second.send_to(&rrq("f", &[]), server.addr).unwrap();
    assert!(
        receive_for(&second, Duration::from_millis(300)).is_empty(),
        "dropped at the cap"
    );
    // The first finishes (ACK 0, DATA 1, ACK 1), then the second's retransmission is served.
    first.send_to(&packet(Repr::Ack { block: 0 }), tid).unwrap();
    let (_, data) = receive(&first);
    assert!(matches!(
        Repr::parse_bytes(&data).unwrap(),
        Repr::Data { block: 1, .. }
    ));
    first.send_to(&packet(Repr::Ack { block: 1 }), tid).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    second.send_to(&rrq("f", &[]), server.addr).unwrap();
    let (_, data) = receive(&second);
    assert!(matches!(
        Repr::parse_bytes(&data).unwrap(),
        Repr::Data { block: 1, .. }
    ));
}

#[test]
fn a_new_request_from_the_same_port_replaces_the_running_transfer() {
    let map = source_with("a", random_bytes(5, 10_000));
    map.insert("b", b"bee".to_vec()).unwrap();
    let server = Server::start(map, Config::default());
    let c = client();
    c.send_to(&rrq("a", &[("tsize", "0")]), server.addr)
        .unwrap();
    let (tid_a, _) = receive(&c);
    c.send_to(&rrq("b", &[]), server.addr).unwrap();
    let (tid_b, data) = receive(&c);
    assert_ne!(tid_a, tid_b);
    assert_eq!(
        Repr::parse_bytes(&data).unwrap(),
        Repr::Data {
            block: 1,
            data: b"bee"
        }
    );
    c.send_to(&packet(Repr::Ack { block: 1 }), tid_b).unwrap();
    // The first transfer was stopped: its OACK is never resent.
    assert!(receive_for(&c, Duration::from_millis(1500)).is_empty());
}

#[test]
fn lost_acks_are_recovered_by_retransmission() {
    // The client ignores the first DATA 2: the server resends it after its 1 s timeout.
    let data = random_bytes(6, 1500);
    let server = Server::start(source_with("f", data.clone()), Config::default());
    let c = client();
    c.send_to(&rrq("f", &[]), server.addr).unwrap();
    let (tid, _) = receive(&c);
    let sent = Instant::now();
    c.send_to(&packet(Repr::Ack { block: 1 }), tid).unwrap();
    let (_, first) = receive(&c);
    assert!(matches!(
        Repr::parse_bytes(&first).unwrap(),
        Repr::Data { block: 2, .. }
    ));
    let (_, again) = receive(&c);
    let waited = sent.elapsed();
    assert_eq!(first, again, "the same block resent");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
}

#[test]
fn shutdown_ends_running_transfers_with_an_error() {
    init_logging();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(serve(
            socket,
            source_with("f", vec![7; 5000]),
            Config::default(),
            async {
                let _ = stopped.await;
            },
        ))
    });
    let c = client();
    c.send_to(&rrq("f", &[]), addr).unwrap();
    let (tid, _) = receive(&c);
    stop.send(()).unwrap();
    let (from, bytes) = receive(&c);
    assert_eq!(from, tid);
    assert_eq!(
        Repr::parse_bytes(&bytes).unwrap(),
        Repr::Error {
            code: ErrorCode::NotDefined,
            message: "server shutting down"
        }
    );
    let started = Instant::now();
    thread.join().unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn binds_to_an_interface_or_says_why_not() {
    let is_root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    let config = Config {
        interface: Some("lo".into()),
        ..Config::default()
    };
    if is_root {
        let data = random_bytes(8, 3000);
        let server = Server::start(source_with("f", data.clone()), config.clone());
        let c = client();
        c.send_to(&rrq("f", &[]), server.addr).unwrap();
        let (_, bytes) = receive(&c);
        assert_eq!(
            Repr::parse_bytes(&bytes).unwrap(),
            Repr::Data {
                block: 1,
                data: &data[..512]
            }
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let missing = Config {
        interface: Some("slwnosuch0".into()),
        ..Config::default()
    };
    let err = runtime
        .block_on(serve(
            "127.0.0.1:0".parse::<SocketAddr>().unwrap(),
            source_with("f", vec![]),
            missing,
            async {},
        ))
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ServeError::BindDevice { .. }), "{err:?}");
    if is_root {
        assert!(text.contains("no such interface"), "{text}");
    } else {
        assert!(text.contains("CAP_NET_RAW"), "{text}");
    }
    // The privilege message, as an unprivileged process gets it.
    let eperm = ServeError::BindDevice {
        interface: "br0".into(),
        source: std::io::Error::from_raw_os_error(1),
    };
    assert!(eperm.to_string().contains("needs CAP_NET_RAW"), "{eperm}");
    // A port already taken says so.
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let err = runtime
        .block_on(serve(
            taken.local_addr().unwrap(),
            source_with("f", vec![]),
            Config::default(),
            async {},
        ))
        .unwrap_err();
    assert!(err.to_string().contains("may be running"), "{err}");
}

#[test]
fn a_flood_from_one_host_leaves_slots_for_the_others() {
    // 32 slots; one host opens 64 transfers that it never acknowledges (asking a
    // 255 s timeout), then another host fetches a file.
    let config = Config {
        max_transfers: 32,
        ..Config::default()
    };
    let data = random_bytes(9, 3000);
    let server = Server::start(source_with("f", data.clone()), config);
    let flood: Vec<UdpSocket> = (0..64)
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.2:0").unwrap();
            s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
            s
        })
        .collect();
    for s in &flood {
        s.send_to(&rrq("f", &[("timeout", "255")]), server.addr)
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut answered = 0;
    for s in &flood {
        let got = receive_for(s, Duration::from_millis(20));
        if let Some((_, first)) = got.first() {
            answered += 1;
            // The 255 s timeout is not granted: no OACK, plain DATA 1.
            assert!(
                matches!(
                    Repr::parse_bytes(first).unwrap(),
                    Repr::Data { block: 1, .. }
                ),
                "{:?}",
                Repr::parse_bytes(first)
            );
        }
    }
    // Half the slots (16) freely, then its share (8) only: 16 in all.
    assert_eq!(answered, 16, "one host gets at most half the slots");
    // Another host is served while the flood holds its slots.
    let other = UdpSocket::bind("127.0.0.3:0").unwrap();
    other
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    other.send_to(&rrq("f", &[]), server.addr).unwrap();
    let mut got = Vec::new();
    let mut block = 1u16;
    loop {
        let (tid, bytes) = receive(&other);
        let Repr::Data { block: b, data: d } = Repr::parse_bytes(&bytes).unwrap() else {
            panic!("{:?}", Repr::parse_bytes(&bytes));
        };
        if b == block {
            got.extend_from_slice(d);
            block += 1;
        }
        other.send_to(&packet(Repr::Ack { block: b }), tid).unwrap();
        if d.len() < 512 {
            break;
        }
    }
    assert_eq!(got, data);
}

#[test]
fn a_transfer_ends_after_max_transfer_time_however_it_progresses() {
    let config = Config {
        max_transfer_time: Duration::from_secs(1),
        ..Config::default()
    };
    let server = Server::start(source_with("big", random_bytes(10, 100_000)), config);
    let c = client();
    c.send_to(&rrq("big", &[("blksize", "8")]), server.addr)
        .unwrap();
    let (tid, oack) = receive(&c);
    assert!(matches!(
        Repr::parse_bytes(&oack).unwrap(),
        Repr::Oack { .. }
    ));
    c.send_to(&packet(Repr::Ack { block: 0 }), tid).unwrap();
    let started = Instant::now();
    // A slow but steady reader: one block every 200 ms.
    let ended = loop {
        assert!(started.elapsed() < Duration::from_secs(5), "never ended");
        let (_, bytes) = receive(&c);
        match Repr::parse_bytes(&bytes).unwrap() {
            Repr::Data { block, .. } => {
                std::thread::sleep(Duration::from_millis(200));
                c.send_to(&packet(Repr::Ack { block }), tid).unwrap();
            }
            Repr::Error { message, .. } => break message.to_string(),
            other => panic!("{other:?}"),
        }
    };
    assert!(ended.contains("too long"), "{ended}");
    assert!(started.elapsed() >= Duration::from_millis(900));
}
