//! The server against a real client: `dig` (Debian `bind9-dnsutils`) on loopback.
//!
//! Every server listens on 127.0.0.1 on a free port; upstreams are other servers
//! started here. No query leaves the machine.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use slipway_cluster::{Cluster, NoHost, load_file, load_str};
use slipway_dns::proto::rr::rdata::{A, SOA};
use slipway_dns::proto::rr::{Name, RData, Record, RecordSet, RecordType, RrKey};
use slipway_dns::{Listeners, Options, Zone, ZoneHandle, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Every test finishes well within this, or fails.
const TEST_TIME: Duration = Duration::from_secs(60);

fn lab() -> Cluster {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/lab.yaml");
    let (text, loaded) = load_file(&path, &NoHost).expect("lab.yaml readable");
    assert!(
        !loaded.diagnostics.has_errors(),
        "{}",
        loaded.diagnostics.render(&text)
    );
    loaded.cluster.expect("valid lab.yaml")
}

/// A one-node cluster `upstream.test` on 10.50.0.0/24, to act as an upstream.
fn upstream_cluster() -> Cluster {
    let text = "\
cluster: {name: up, domain: upstream.test}
network: {interface: br9, server: 10.50.0.1, subnet: 10.50.0.0/24}
os: {version: 4081.2.0}
kubernetes: {version: v1.31.2, service_subnet: 10.100.0.0/16}
access: {ssh_authorized_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExample me']}
nodes:
  - {mac: 52:54:00:50:00:09, hostname: cp9, ip: 10.50.0.9, roles: [control-plane]}
";
    let loaded = load_str("upstream.yaml", text, Path::new("."), &NoHost);
    assert!(
        !loaded.diagnostics.has_errors(),
        "{}",
        loaded.diagnostics.render(text)
    );
    loaded.cluster.expect("valid upstream cluster")
}

/// A running slipway DNS server.
struct Running {
    addr: SocketAddr,
    zone: ZoneHandle,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), slipway_dns::Error>>,
}

impl Running {
    async fn start(cluster: &Cluster, upstreams: Vec<SocketAddr>, options: Options) -> Running {
        let zone = ZoneHandle::new(Zone::from_cluster(cluster).expect("zone"));
        let listeners = Listeners::bind("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("bind loopback");
        let addr = listeners.udp_addr().expect("udp addr");
        assert_eq!(listeners.tcp_addr().expect("tcp addr"), addr);
        let (stop, stopped) = oneshot::channel::<()>();
        let served = zone.clone();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            serve(listeners, served, &upstreams, &options, shutdown).await
        });
        Running {
            addr,
            zone,
            stop: Some(stop),
            task,
        }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("server stops within 10 s")
            .expect("server task did not panic");
        assert!(result.is_ok(), "server ended with {result:?}");
    }
}

/// What dig printed, in parts.
#[derive(Debug)]
struct Dig {
    text: String,
    status: String,
    flags: Vec<String>,
    /// Section name (ANSWER, AUTHORITY, ADDITIONAL) → record lines split in fields.
    sections: BTreeMap<String, Vec<Vec<String>>>,
}

impl Dig {
    fn section(&self, name: &str) -> &[Vec<String>] {
        self.sections.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The data of the answer records of `rtype` (fields after the type).
    fn answers(&self, rtype: &str) -> Vec<String> {
        self.section("ANSWER")
            .iter()
            .filter(|fields| fields.get(3).map(String::as_str) == Some(rtype))
            .map(|fields| fields[4..].join(" "))
            .collect()
    }

    fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// The `udp:` payload size of the response's OPT record, if it had one.
    fn edns_udp(&self) -> Option<u16> {
        let line = self.text.lines().find(|l| l.starts_with("; EDNS:"))?;
        line.split("udp:").nth(1)?.trim().parse().ok()
    }
}

async fn dig(server: SocketAddr, args: &[&str]) -> Dig {
    let output = tokio::process::Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .arg("-p")
        .arg(server.port().to_string())
        .args(["+time=3", "+tries=1", "+norecurse"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("running dig: install it (Debian package bind9-dnsutils)");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let status = text
        .lines()
        .find_map(|l| l.split("status: ").nth(1))
        .and_then(|rest| rest.split(',').next())
        .unwrap_or("NO ANSWER")
        .to_string();
    let flags = text
        .lines()
        .find_map(|l| l.strip_prefix(";; flags:"))
        .and_then(|rest| rest.split(';').next())
        .map(|f| f.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let mut sections: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(name) = line
            .strip_prefix(";; ")
            .and_then(|l| l.strip_suffix(" SECTION:"))
        {
            current = Some(name.to_string());
        } else if line.trim().is_empty() || line.starts_with(';') {
            current = None;
        } else if let Some(name) = &current {
            sections
                .entry(name.clone())
                .or_default()
                .push(line.split_whitespace().map(str::to_string).collect());
        }
    }
    Dig {
        text,
        status,
        flags,
        sections,
    }
}

fn check_dig_installed() {
    let found = std::process::Command::new("dig")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "these tests need `dig`: apt-get install bind9-dnsutils"
    );
}

async fn bounded(test: impl Future<Output = ()>) {
    check_dig_installed();
    tokio::time::timeout(TEST_TIME, test)
        .await
        .expect("test finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_the_cluster_names() {
    bounded(async {
        let server = Running::start(&lab(), vec![], Options::default()).await;
        let at = server.addr;

        let cp1 = dig(at, &["cp1.lab.slipway.test", "A"]).await;
        assert_eq!(cp1.status, "NOERROR", "{}", cp1.text);
        assert!(cp1.has_flag("aa"), "authoritative: {}", cp1.text);
        assert!(cp1.has_flag("qr"));
        assert!(
            !cp1.has_flag("ra"),
            "no upstreams, no recursion: {}",
            cp1.text
        );
        assert_eq!(cp1.answers("A"), ["10.99.0.11"], "{}", cp1.text);
        assert_eq!(cp1.section("ANSWER")[0][1], "300", "TTL: {}", cp1.text);

        let api = dig(at, &["api.lab.slipway.test"]).await;
        assert_eq!(api.answers("A"), ["10.99.0.11"], "{}", api.text);
        let own = dig(at, &["slipway.lab.slipway.test"]).await;
        assert_eq!(own.answers("A"), ["10.99.0.1"], "{}", own.text);

        let ptr = dig(at, &["-x", "10.99.0.21"]).await;
        assert_eq!(ptr.status, "NOERROR", "{}", ptr.text);
        assert!(ptr.has_flag("aa"));
        assert_eq!(
            ptr.answers("PTR"),
            ["worker1.lab.slipway.test."],
            "{}",
            ptr.text
        );

        let soa = dig(at, &["lab.slipway.test", "SOA"]).await;
        assert!(soa.has_flag("aa"));
        assert_eq!(
            soa.answers("SOA"),
            ["slipway.lab.slipway.test. hostmaster.lab.slipway.test. 1 3600 600 86400 30"],
            "{}",
            soa.text
        );
        // The NS comes along in the authority section.
        assert_eq!(soa.section("AUTHORITY")[0][3], "NS", "{}", soa.text);

        let ns = dig(at, &["0.99.10.in-addr.arpa", "NS"]).await;
        assert_eq!(
            ns.answers("NS"),
            ["slipway.lab.slipway.test."],
            "{}",
            ns.text
        );
        assert_eq!(
            ns.section("ADDITIONAL")[0][4],
            "10.99.0.1",
            "glue: {}",
            ns.text
        );

        let unknown = dig(at, &["nope.lab.slipway.test"]).await;
        assert_eq!(unknown.status, "NXDOMAIN", "{}", unknown.text);
        assert!(unknown.has_flag("aa"));
        assert!(unknown.section("ANSWER").is_empty());
        let authority = unknown.section("AUTHORITY");
        assert_eq!(authority.len(), 1, "{}", unknown.text);
        assert_eq!(authority[0][0], "lab.slipway.test.");
        assert_eq!(authority[0][3], "SOA");

        let unknown_ptr = dig(at, &["-x", "10.99.0.99"]).await;
        assert_eq!(unknown_ptr.status, "NXDOMAIN", "{}", unknown_ptr.text);
        assert_eq!(
            unknown_ptr.section("AUTHORITY")[0][0],
            "0.99.10.in-addr.arpa."
        );

        let nodata = dig(at, &["cp1.lab.slipway.test", "AAAA"]).await;
        assert_eq!(nodata.status, "NOERROR", "{}", nodata.text);
        assert!(nodata.has_flag("aa"));
        assert!(nodata.section("ANSWER").is_empty());
        assert_eq!(nodata.section("AUTHORITY")[0][3], "SOA", "{}", nodata.text);

        let upper = dig(at, &["WORKER2.Lab.SLIPWAY.Test"]).await;
        assert_eq!(upper.status, "NOERROR", "{}", upper.text);
        assert_eq!(upper.answers("A"), ["10.99.0.22"], "{}", upper.text);

        let any = dig(at, &["lab.slipway.test", "ANY"]).await;
        assert_eq!(any.status, "NOERROR", "{}", any.text);
        // RFC 8482: one synthesized HINFO, not every record of the name.
        assert_eq!(any.answers("HINFO"), ["\"RFC8482\" \"\""], "{}", any.text);

        let axfr = dig(at, &["lab.slipway.test", "AXFR"]).await;
        assert!(axfr.text.contains("Transfer failed"), "{}", axfr.text);

        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_and_edns() {
    bounded(async {
        let server = Running::start(&lab(), vec![], Options::default()).await;
        let at = server.addr;

        let tcp = dig(at, &["+tcp", "worker1.lab.slipway.test"]).await;
        assert_eq!(tcp.answers("A"), ["10.99.0.21"], "{}", tcp.text);
        assert!(tcp.has_flag("aa"));
        assert!(tcp.text.contains("(TCP)"), "{}", tcp.text);
        let tcp_ptr = dig(at, &["+tcp", "-x", "10.99.0.11"]).await;
        assert_eq!(
            tcp_ptr.answers("PTR"),
            ["cp1.lab.slipway.test."],
            "{}",
            tcp_ptr.text
        );

        let edns = dig(at, &["+bufsize=1232", "cp1.lab.slipway.test"]).await;
        assert_eq!(edns.answers("A"), ["10.99.0.11"], "{}", edns.text);
        assert_eq!(
            edns.edns_udp(),
            Some(1232),
            "OPT in the answer: {}",
            edns.text
        );

        let nxdomain_edns = dig(at, &["+bufsize=4096", "nope.lab.slipway.test"]).await;
        assert_eq!(nxdomain_edns.status, "NXDOMAIN");
        assert_eq!(
            nxdomain_edns.edns_udp(),
            Some(4096),
            "{}",
            nxdomain_edns.text
        );

        let plain = dig(at, &["+noedns", "cp1.lab.slipway.test"]).await;
        assert_eq!(plain.answers("A"), ["10.99.0.11"], "{}", plain.text);
        assert_eq!(
            plain.edns_udp(),
            None,
            "no OPT without EDNS: {}",
            plain.text
        );

        // EDNS version 1 is not spoken: BADVERS, as RFC 6891 says.
        let badvers = dig(at, &["+edns=1", "+noednsneg", "cp1.lab.slipway.test"]).await;
        assert_eq!(badvers.status, "BADVERS", "{}", badvers.text);

        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_names_appear_and_disappear() {
    bounded(async {
        let server = Running::start(&lab(), vec![], Options::default()).await;
        let at = server.addr;
        let address = Ipv4Addr::new(10, 99, 0, 201);

        let before = dig(at, &["discovered.lab.slipway.test"]).await;
        assert_eq!(before.status, "NXDOMAIN", "{}", before.text);

        assert!(server.zone.set_dynamic("discovered", address).expect("set"));
        let a = dig(at, &["discovered.lab.slipway.test"]).await;
        assert_eq!(a.status, "NOERROR", "{}", a.text);
        assert!(a.has_flag("aa"));
        assert_eq!(a.answers("A"), ["10.99.0.201"], "{}", a.text);
        assert_eq!(a.section("ANSWER")[0][1], "60", "dynamic TTL: {}", a.text);
        let ptr = dig(at, &["+tcp", "-x", "10.99.0.201"]).await;
        assert_eq!(
            ptr.answers("PTR"),
            ["discovered.lab.slipway.test."],
            "{}",
            ptr.text
        );
        let soa = dig(at, &["lab.slipway.test", "SOA"]).await;
        assert!(
            soa.answers("SOA")[0].contains(" 2 3600 "),
            "serial 2: {}",
            soa.text
        );

        assert_eq!(server.zone.remove_dynamic("discovered"), Some(address));
        let after = dig(at, &["discovered.lab.slipway.test"]).await;
        assert_eq!(after.status, "NXDOMAIN", "{}", after.text);
        let after_ptr = dig(at, &["-x", "10.99.0.201"]).await;
        assert_eq!(after_ptr.status, "NXDOMAIN", "{}", after_ptr.text);

        // A static name stays the file's.
        assert!(server.zone.set_dynamic("cp1", address).is_err());
        let cp1 = dig(at, &["cp1.lab.slipway.test"]).await;
        assert_eq!(cp1.answers("A"), ["10.99.0.11"]);

        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_other_names_or_refuses_them() {
    bounded(async {
        let upstream = Running::start(&upstream_cluster(), vec![], Options::default()).await;
        let front = Running::start(&lab(), vec![upstream.addr], Options::default()).await;
        let alone = Running::start(&lab(), vec![], Options::default()).await;

        // Through slipway: answered by the upstream, not authoritative, recursion available.
        let forwarded = dig(front.addr, &["+recurse", "cp9.upstream.test"]).await;
        assert_eq!(forwarded.status, "NOERROR", "{}", forwarded.text);
        assert_eq!(forwarded.answers("A"), ["10.50.0.9"], "{}", forwarded.text);
        assert!(!forwarded.has_flag("aa"), "{}", forwarded.text);
        assert!(forwarded.has_flag("ra"), "{}", forwarded.text);

        let forwarded_tcp = dig(front.addr, &["+recurse", "+tcp", "-x", "10.50.0.9"]).await;
        assert_eq!(
            forwarded_tcp.answers("PTR"),
            ["cp9.upstream.test."],
            "{}",
            forwarded_tcp.text
        );

        let missing = dig(front.addr, &["+recurse", "nope.upstream.test"]).await;
        assert_eq!(missing.status, "NXDOMAIN", "{}", missing.text);
        assert!(!missing.has_flag("aa"));

        // The cluster's own names are still answered here, authoritatively.
        let own = dig(front.addr, &["+recurse", "cp1.lab.slipway.test"]).await;
        assert_eq!(own.answers("A"), ["10.99.0.11"]);
        assert!(own.has_flag("aa"));
        assert!(
            own.has_flag("ra"),
            "with upstreams, recursion available: {}",
            own.text
        );

        // A query that does not ask for recursion is not forwarded.
        let norecurse = dig(front.addr, &["cp9.upstream.test"]).await;
        assert_eq!(norecurse.status, "REFUSED", "{}", norecurse.text);

        // No upstreams: refused.
        let refused = dig(alone.addr, &["+recurse", "cp9.upstream.test"]).await;
        assert_eq!(refused.status, "REFUSED", "{}", refused.text);
        assert!(!refused.has_flag("ra"), "{}", refused.text);
        assert!(refused.section("ANSWER").is_empty());
        let refused_ptr = dig(alone.addr, &["+recurse", "-x", "10.50.0.9"]).await;
        assert_eq!(refused_ptr.status, "REFUSED", "{}", refused_ptr.text);

        // A dead first upstream does not hold up the second one for long.
        let hole = black_hole().await;
        let mut options = Options::default();
        options.upstream_timeout = Duration::from_millis(500);
        let upstreams = vec![hole.local_addr().expect("addr"), upstream.addr];
        let second = Running::start(&lab(), upstreams, options).await;
        let started = std::time::Instant::now();
        let via_second = dig(second.addr, &["+recurse", "cp9.upstream.test"]).await;
        assert_eq!(
            via_second.answers("A"),
            ["10.50.0.9"],
            "{}",
            via_second.text
        );
        eprintln!(
            "dead first upstream: answered after {:?}",
            started.elapsed()
        );
        assert!(started.elapsed() < Duration::from_millis(1500));

        front.stop().await;
        alone.stop().await;
        second.stop().await;
        upstream.stop().await;
    })
    .await;
}

/// A plain hickory authority for `big.test` whose `many.big.test` has 100 A records:
/// more than fits in 1232 bytes, so over UDP it answers truncated.
async fn start_big_upstream() -> (
    SocketAddr,
    hickory_server::Server<hickory_server::zone_handler::Catalog>,
) {
    use hickory_server::store::in_memory::InMemoryZoneHandler;
    use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};

    let origin = Name::from_ascii("big.test.").expect("name");
    let many = Name::from_ascii("many.big.test.").expect("name");
    let mut records = BTreeMap::new();
    let mut soa = RecordSet::new(origin.clone(), RecordType::SOA, 0);
    soa.insert(
        Record::from_rdata(
            origin.clone(),
            60,
            RData::SOA(SOA::new(
                Name::from_ascii("ns.big.test.").expect("name"),
                Name::from_ascii("hostmaster.big.test.").expect("name"),
                1,
                3600,
                600,
                86400,
                60,
            )),
        ),
        1,
    );
    records.insert(RrKey::new(origin.clone().into(), RecordType::SOA), soa);
    let mut set = RecordSet::new(many.clone(), RecordType::A, 0);
    for i in 0..100u8 {
        set.insert(
            Record::from_rdata(many.clone(), 60, RData::A(A(Ipv4Addr::new(10, 77, 0, i)))),
            1,
        );
    }
    records.insert(RrKey::new(many.into(), RecordType::A), set);
    let handler: InMemoryZoneHandler =
        InMemoryZoneHandler::new(origin.clone(), records, ZoneType::Primary, AxfrPolicy::Deny)
            .expect("zone");
    let mut catalog = Catalog::new();
    catalog.upsert(origin.into(), vec![std::sync::Arc::new(handler)]);
    let listeners = Listeners::bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    let addr = listeners.udp_addr().expect("addr");
    let mut server = hickory_server::Server::new(catalog);
    server.register_socket(listeners.udp);
    server.register_listener(listeners.tcp, Duration::from_secs(5), 16);
    (addr, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn falls_back_to_tcp_when_the_upstream_truncates() {
    bounded(async {
        let (big, mut big_server) = start_big_upstream().await;
        // Over UDP the upstream itself truncates...
        let direct = dig(big, &["+bufsize=1232", "+ignore", "many.big.test"]).await;
        assert!(direct.has_flag("tc"), "upstream truncates: {}", direct.text);
        assert!(direct.answers("A").len() < 100, "{}", direct.text);

        // ...so slipway must ask it again over TCP to have all 100 records.
        let front = Running::start(&lab(), vec![big], Options::default()).await;
        let full = dig(front.addr, &["+recurse", "+tcp", "many.big.test"]).await;
        assert_eq!(full.status, "NOERROR", "{}", full.text);
        assert_eq!(full.answers("A").len(), 100, "{}", full.text);
        // And slipway truncates toward a UDP client in turn; dig then retries over TCP.
        let truncated = dig(
            front.addr,
            &["+recurse", "+bufsize=1232", "+ignore", "many.big.test"],
        )
        .await;
        assert!(truncated.has_flag("tc"), "{}", truncated.text);
        let retried = dig(front.addr, &["+recurse", "+bufsize=1232", "many.big.test"]).await;
        assert_eq!(retried.answers("A").len(), 100, "{}", retried.text);

        front.stop().await;
        big_server
            .shutdown_gracefully()
            .await
            .expect("upstream stops");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_connections_are_bounded_and_time_out() {
    bounded(async {
        let mut options = Options::default();
        options.tcp_max_connections = 2;
        options.tcp_idle_timeout = Duration::from_millis(700);
        let server = Running::start(&lab(), vec![], options).await;
        let at = server.addr;

        let mut first = tokio::net::TcpStream::connect(at).await.expect("connect");
        let mut second = tokio::net::TcpStream::connect(at).await.expect("connect");
        // Let the server accept both before the third arrives.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut third = tokio::net::TcpStream::connect(at).await.expect("connect");
        let mut buf = [0u8; 16];
        let closed = tokio::time::timeout(Duration::from_millis(500), third.read(&mut buf))
            .await
            .expect("the third connection is closed at once");
        assert!(matches!(closed, Ok(0) | Err(_)), "third: {closed:?}");

        // The idle ones are closed after the timeout.
        for idle in [&mut first, &mut second] {
            let closed = tokio::time::timeout(Duration::from_secs(3), idle.read(&mut buf))
                .await
                .expect("an idle connection is closed after the timeout");
            assert!(matches!(closed, Ok(0) | Err(_)), "idle: {closed:?}");
        }

        // Then there is room again.
        let tcp = dig(at, &["+tcp", "cp1.lab.slipway.test"]).await;
        assert_eq!(tcp.answers("A"), ["10.99.0.11"], "{}", tcp.text);

        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_garbage() {
    bounded(async {
        let server = Running::start(&lab(), vec![], Options::default()).await;
        let at = server.addr;

        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let garbage: [&[u8]; 6] = [
            b"",
            b"\x00",
            b"\x12\x34\x01\x00\x00\x01",
            b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03cp1\xc0\x0c\x00\x01\x00\x01",
            &[0xff; 512],
            // A header claiming 65535 questions.
            b"\x12\x34\x01\x00\xff\xff\xff\xff\xff\xff\xff\xff",
        ];
        for packet in garbage {
            udp.send_to(packet, at).await.expect("send");
        }
        let mut tcp = tokio::net::TcpStream::connect(at).await.expect("connect");
        tcp.write_all(b"\x00\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff")
            .await
            .expect("write");
        let mut short = tokio::net::TcpStream::connect(at).await.expect("connect");
        short.write_all(b"\xff\xff\x00").await.expect("write");
        drop(short);

        // Still serving, on both.
        let after = dig(at, &["cp1.lab.slipway.test"]).await;
        assert_eq!(after.answers("A"), ["10.99.0.11"], "{}", after.text);
        let after_tcp = dig(at, &["+tcp", "cp1.lab.slipway.test"]).await;
        assert_eq!(after_tcp.answers("A"), ["10.99.0.11"], "{}", after_tcp.text);

        server.stop().await;
    })
    .await;
}

/// A UDP socket that never answers (held open, so no ICMP "port unreachable"), and a
/// port where nothing listens on TCP.
async fn black_hole() -> tokio::net::UdpSocket {
    tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_upstream_gives_servfail_in_bounded_time() {
    bounded(async {
        let hole = black_hole().await;
        let mut options = Options::default();
        options.upstream_timeout = Duration::from_millis(300);
        let front = Running::start(&lab(), vec![hole.local_addr().expect("addr")], options).await;

        let started = std::time::Instant::now();
        let answer = dig(front.addr, &["+recurse", "+time=5", "lost.example"]).await;
        assert_eq!(answer.status, "SERVFAIL", "{}", answer.text);
        eprintln!("silent upstream: SERVFAIL after {:?}", started.elapsed());
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "took {:?}",
            started.elapsed()
        );
        // The zone is still answered at once meanwhile.
        let own = dig(front.addr, &["cp1.lab.slipway.test"]).await;
        assert_eq!(own.answers("A"), ["10.99.0.11"]);

        front.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_queries_in_flight_are_bounded() {
    bounded(async {
        let hole = black_hole().await;
        let mut options = Options::default();
        options.upstream_timeout = Duration::from_secs(2);
        options.max_forwarded = 1;
        let front = Running::start(&lab(), vec![hole.local_addr().expect("addr")], options).await;
        let at = front.addr;

        // The first forwarded query waits on the silent upstream...
        let first = tokio::spawn(async move {
            let started = std::time::Instant::now();
            let answer = dig(at, &["+recurse", "+time=8", "first.example"]).await;
            (answer, started.elapsed())
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        // ...so the second finds no room and fails at once.
        let started = std::time::Instant::now();
        let second = dig(at, &["+recurse", "second.example"]).await;
        assert_eq!(second.status, "SERVFAIL", "{}", second.text);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "took {:?}",
            started.elapsed()
        );
        let (first, waited) = first.await.expect("dig task");
        assert_eq!(first.status, "SERVFAIL", "{}", first.text);
        // It really was waiting on the upstream all that time.
        assert!(
            waited > Duration::from_millis(1500),
            "first took {waited:?}"
        );
        eprintln!("first forwarded query: SERVFAIL after {waited:?}");

        front.stop().await;
    })
    .await;
}

/// The fast path (plain queries for A and PTR names of the zone) answers exactly as the
/// general path does: a query with an EDNS cookie goes the general way, the same query
/// without EDNS or with plain EDNS the fast way; the answers must not differ.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_and_general_paths_answer_alike() {
    bounded(async {
        let upstream = Running::start(&upstream_cluster(), vec![], Options::default()).await;
        let server = Running::start(&lab(), vec![upstream.addr], Options::default()).await;
        let at = server.addr;
        for (name, rtype) in [
            ("cp1.lab.slipway.test", "A"),
            ("CP1.Lab.Slipway.Test", "A"),
            ("11.0.99.10.in-addr.arpa", "PTR"),
        ] {
            // An EDNS option (the cookie) sends the query the general way.
            let general = dig(at, &[name, rtype, "+recurse", "+cookie"]).await;
            assert_eq!(general.status, "NOERROR", "{}", general.text);
            for fast_args in [&["+recurse", "+nocookie"][..], &["+recurse", "+noedns"][..]] {
                let mut args = vec![name, rtype];
                args.extend_from_slice(fast_args);
                let fast = dig(at, &args).await;
                assert_eq!(fast.status, "NOERROR", "{}", fast.text);
                assert_eq!(fast.flags, general.flags, "{}\n{}", fast.text, general.text);
                assert_eq!(
                    fast.section("ANSWER"),
                    general.section("ANSWER"),
                    "{}\n{}",
                    fast.text,
                    general.text
                );
                assert_eq!(fast.section("AUTHORITY"), general.section("AUTHORITY"));
                let want_edns = !fast_args.contains(&"+noedns");
                assert_eq!(fast.edns_udp(), want_edns.then_some(1232), "{}", fast.text);
            }
        }
        // With forwarding on, answers say "recursion available" on both paths.
        let fast = dig(at, &["cp1.lab.slipway.test", "A", "+recurse", "+noedns"]).await;
        assert!(
            fast.has_flag("ra") && fast.has_flag("aa") && fast.has_flag("rd"),
            "{}",
            fast.text
        );
        // Names that do not exist, and forwarded names, still go the general way.
        let nx = dig(at, &["nosuch.lab.slipway.test", "A", "+noedns"]).await;
        assert_eq!(nx.status, "NXDOMAIN", "{}", nx.text);
        assert_eq!(
            nx.section("AUTHORITY")
                .first()
                .and_then(|f| f.get(3))
                .map(String::as_str),
            Some("SOA")
        );
        let fwd = dig(at, &["cp9.upstream.test", "A", "+recurse", "+noedns"]).await;
        assert_eq!(fwd.answers("A"), ["10.50.0.9"], "{}", fwd.text);
        server.stop().await;
        upstream.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_allowed_clients_get_answers() {
    bounded(async {
        let mut options = Options::default();
        options.allowed_clients = vec!["127.0.0.1/32".parse().expect("net")];
        let server = Running::start(&lab(), vec![], options).await;
        let inside = dig(server.addr, &["cp1.lab.slipway.test", "A"]).await;
        assert_eq!(inside.answers("A"), ["10.99.0.11"], "{}", inside.text);
        // Another source address (dig -b): no answer at all, over UDP or TCP.
        let outside = dig(
            server.addr,
            &["-b", "127.0.0.2", "cp1.lab.slipway.test", "A"],
        )
        .await;
        assert_eq!(outside.status, "NO ANSWER", "{}", outside.text);
        let outside_tcp = dig(
            server.addr,
            &["-b", "127.0.0.2", "+tcp", "cp1.lab.slipway.test", "A"],
        )
        .await;
        assert_eq!(outside_tcp.status, "NO ANSWER", "{}", outside_tcp.text);
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_gets_one_hinfo_record_as_rfc_8482_says() {
    bounded(async {
        let server = Running::start(&lab(), vec![], Options::default()).await;
        for proto in ["+notcp", "+tcp"] {
            let any = dig(server.addr, &[proto, "cp1.lab.slipway.test", "ANY"]).await;
            assert_eq!(any.status, "NOERROR", "{}", any.text);
            assert_eq!(any.section("ANSWER").len(), 1, "{}", any.text);
            assert_eq!(any.answers("HINFO"), ["\"RFC8482\" \"\""], "{}", any.text);
        }
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_its_rate_is_dropped_and_others_are_not() {
    bounded(async {
        let mut options = Options::default();
        options.rate_limit = 10;
        let server = Running::start(&lab(), vec![], options).await;
        // 100 queries at once from one socket: the burst (20) is answered, then about
        // 10 per second.
        let flood = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let query = {
            // cp1.lab.slipway.test A, id i.
            let mut q = vec![0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
            for label in ["cp1", "lab", "slipway", "test"] {
                q.push(label.len() as u8);
                q.extend_from_slice(label.as_bytes());
            }
            q.extend_from_slice(&[0, 0, 1, 0, 1]);
            q
        };
        for i in 0..100u16 {
            let mut q = query.clone();
            q[..2].copy_from_slice(&i.to_be_bytes());
            flood.send_to(&q, server.addr).await.expect("send");
        }
        let mut answered = 0;
        let mut buf = [0u8; 512];
        while let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_millis(300), flood.recv_from(&mut buf)).await
        {
            answered += 1;
        }
        assert!((20..=25).contains(&answered), "answered {answered} of 100");
        // Another client address is unaffected.
        let other = dig(
            server.addr,
            &["-b", "127.0.0.1", "cp1.lab.slipway.test", "A"],
        )
        .await;
        assert_eq!(other.answers("A"), ["10.99.0.11"], "{}", other.text);
        server.stop().await;
    })
    .await;
}
