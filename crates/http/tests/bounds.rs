//! The HTTP listener's bounds, against real sockets on loopback: slow-header clients are
//! closed after the header timeout while others are served, one address cannot take
//! more than its share of connections, and a client that stops reading is closed after
//! the idle timeout. Each test runs on the plain listener and on the machine listener's
//! (with a mirror: the zero-copy path reads each request head and hands the request to
//! hyper).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use slipway_http::bounded::{Limits, MirrorFiles, serve_bounded, serve_bounded_with_mirror};

/// Serves a tiny router within `limits` on a runtime of its own, with an (empty)
/// mirror for the zero-copy path when `with_mirror`; returns its address.
fn start(limits: Limits, with_mirror: bool) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let _ = addr_tx.send(listener.local_addr().unwrap_or_else(|e| panic!("{e}")));
            let app = Router::new()
                .route("/small", get(|| async { "ok\n" }))
                .route("/big", get(|| async { vec![0u8; 64 << 20] }));
            let stop = async {
                let _ = stopped.await;
            };
            let _ = if with_mirror {
                // A mirror directory that does not exist: every request goes to the router.
                let none = std::env::temp_dir().join("slipway-bounds-no-such-mirror");
                let mirror = MirrorFiles::new(move || Some(none.clone()));
                serve_bounded_with_mirror(listener, app, limits, mirror, stop).await
            } else {
                serve_bounded(listener, app, limits, stop).await
            };
        });
    });
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("{e}"));
    (addr, stop)
}

fn connect_from(local: &str, to: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .unwrap_or_else(|e| panic!("{e}"));
    let from: SocketAddr = format!("{local}:0")
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    socket.bind(&from.into()).unwrap_or_else(|e| panic!("{e}"));
    socket
        .connect_timeout(&to.into(), Duration::from_secs(2))
        .unwrap_or_else(|e| panic!("{e}"));
    let s: TcpStream = socket.into();
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap_or_else(|e| panic!("{e}"));
    s
}

fn get_small(from: &str, to: SocketAddr) -> String {
    let mut s = connect_from(from, to);
    s.write_all(b"GET /small HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// Whether the server has closed `s` (reads end with EOF or an error) within `within`.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let end = Instant::now() + within;
    let mut buf = [0u8; 65536];
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap_or_else(|e| panic!("{e}"));
    while Instant::now() < end {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return true,
        }
    }
    false
}

fn slow_header_clients_are_closed_and_others_served_meanwhile(with_mirror: bool) {
    let (addr, _stop) = start(
        Limits {
            header_timeout: Duration::from_secs(1),
            max_per_client: 100,
            ..Limits::default()
        },
        with_mirror,
    );
    // 60 clients that never finish their headers.
    let mut slow: Vec<TcpStream> = (0..60)
        .map(|_| {
            let mut s = connect_from("127.0.0.2", addr);
            s.write_all(b"GET /small HTTP/1.1\r\nHost: t\r\n")
                .unwrap_or_else(|e| panic!("{e}"));
            s
        })
        .collect();
    assert!(
        get_small("127.0.0.1", addr).contains("200 OK"),
        "served meanwhile"
    );
    let started = Instant::now();
    for s in &mut slow {
        assert!(
            closed_within(s, Duration::from_secs(5)),
            "a slow-header client still open"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

fn one_address_gets_its_share_of_connections_and_no_more(with_mirror: bool) {
    // 8 connections in all: past 4 open, one address gets its share (4) only.
    let (addr, _stop) = start(
        Limits {
            max_per_client: 4,
            max_connections: 8,
            ..Limits::default()
        },
        with_mirror,
    );
    let held: Vec<TcpStream> = (0..4).map(|_| connect_from("127.0.0.3", addr)).collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut fifth = connect_from("127.0.0.3", addr);
    assert!(
        closed_within(&mut fifth, Duration::from_secs(2)),
        "the fifth is closed at once"
    );
    assert!(
        get_small("127.0.0.4", addr).contains("200 OK"),
        "another address is served"
    );
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        get_small("127.0.0.3", addr).contains("200 OK"),
        "its slots come back"
    );
}

fn a_client_that_stops_reading_is_closed_after_the_idle_timeout(with_mirror: bool) {
    let (addr, _stop) = start(
        Limits {
            idle_timeout: Duration::from_secs(1),
            ..Limits::default()
        },
        with_mirror,
    );
    let mut s = connect_from("127.0.0.5", addr);
    s.write_all(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap_or_else(|e| panic!("{e}"));
    // Read nothing for 3 s: the socket buffers fill, the server's writes stall.
    std::thread::sleep(Duration::from_secs(3));
    let mut total = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap_or_else(|e| panic!("{e}"));
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
    assert!(
        total < 64 << 20,
        "the whole 64 MiB came through ({total} bytes): the stalled connection was not closed"
    );
}

#[test]
fn slow_header_clients_are_closed_and_others_served_meanwhile_plain() {
    slow_header_clients_are_closed_and_others_served_meanwhile(false);
}

#[test]
fn slow_header_clients_are_closed_and_others_served_meanwhile_with_mirror() {
    slow_header_clients_are_closed_and_others_served_meanwhile(true);
}

#[test]
fn one_address_gets_its_share_of_connections_and_no_more_plain() {
    one_address_gets_its_share_of_connections_and_no_more(false);
}

#[test]
fn one_address_gets_its_share_of_connections_and_no_more_with_mirror() {
    one_address_gets_its_share_of_connections_and_no_more(true);
}

#[test]
fn a_client_that_stops_reading_is_closed_after_the_idle_timeout_plain() {
    a_client_that_stops_reading_is_closed_after_the_idle_timeout(false);
}

#[test]
fn a_client_that_stops_reading_is_closed_after_the_idle_timeout_with_mirror() {
    a_client_that_stops_reading_is_closed_after_the_idle_timeout(true);
}
