//! The zero-copy mirror path against real sockets and curl on loopback: mirror files
//! (large ones with `sendfile`, small ones in the head's write) answer Range, HEAD and
//! conditional requests with the statuses, headers and bytes the hyper path gives for
//! the same request; keep-alive carries on into hyper; slow readers and slow headers
//! are dropped; `/api/` stays 404.

#![allow(missing_docs)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use slipway_cluster::MacAddr;
use slipway_http::api::types::{
    ClusterView, KubernetesView, MachineList, MachineView, NodeList, NodeView, OsView,
};
use slipway_http::bounded::{INLINE_MAX, Limits, MirrorFiles};
use slipway_http::{ApiError, CloudConfigFile, ConfigFile, Provisioning, Reply, ReportEvent};

/// The machine routes' answers, with a mirror directory.
struct Stub {
    mirror: PathBuf,
}

impl Provisioning for Stub {
    fn cni_manifest(&self) -> Reply {
        Reply::NotFound
    }
    fn chain(&self) -> Reply {
        Reply::text("#!ipxe\n")
    }
    fn ipxe_script(&self, _: MacAddr, _: SocketAddr, _: &str) -> Reply {
        Reply::NotFound
    }
    fn config(&self, _: MacAddr, _: ConfigFile, _: Option<&str>, _: SocketAddr) -> Reply {
        Reply::NotFound
    }
    fn cloud_config(&self, _: CloudConfigFile, _: SocketAddr) -> Reply {
        Reply::NotFound
    }
    fn report(&self, _: MacAddr, _: &str, _: ReportEvent, _: SocketAddr) -> Reply {
        Reply::NotFound
    }
    fn cluster(&self) -> ClusterView {
        ClusterView {
            name: "t".into(),
            domain: "example".into(),
            server: [10, 0, 0, 1].into(),
            os: OsView {
                distro: "flatcar".into(),
                channel: "stable".into(),
                version: "4081.2.0".into(),
                config_format: "ignition".into(),
            },
            kubernetes: KubernetesView {
                version: "v1.31.2".into(),
                endpoint: "10.0.0.11:6443".into(),
            },
            nodes: 1,
        }
    }
    fn nodes(&self) -> NodeList {
        NodeList { nodes: Vec::new() }
    }
    fn node(&self, _: &str) -> Result<NodeView, ApiError> {
        Err(ApiError::Disabled)
    }
    fn machines(&self) -> Result<MachineList, ApiError> {
        Err(ApiError::Disabled)
    }
    fn machine(&self, _: &str) -> Result<MachineView, ApiError> {
        Err(ApiError::Disabled)
    }
    fn operator_token(&self) -> Option<String> {
        None
    }
    fn reinstall(&self, _: &str) -> Result<MachineView, ApiError> {
        Err(ApiError::Disabled)
    }
    fn boot_dir(&self) -> Option<PathBuf> {
        None
    }
    fn mirror_dir(&self) -> Option<PathBuf> {
        Some(self.mirror.clone())
    }
}

/// Size of the large test file: sent with `sendfile`, not a multiple of a page.
const BIG: usize = 8 * 1024 * 1024 + 12_345;
/// Size of the small test file: read whole and sent with the head.
const SMALL: usize = 4000;

/// Deterministic bytes that differ at every offset worth checking.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A mirror in a temporary directory: `big.bin`, `small.bin`, `api/v1/big.bin` and a
/// 64 MiB sparse `huge.bin`.
struct Mirror {
    dir: PathBuf,
    big: Vec<u8>,
    small: Vec<u8>,
}

impl Mirror {
    fn new(name: &str) -> Mirror {
        let dir = std::env::temp_dir().join(format!("slipway-zc-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("api/v1")).unwrap_or_else(|e| panic!("{e}"));
        let big = pattern(BIG, 7);
        let small = pattern(SMALL, 11);
        assert!(BIG as u64 > INLINE_MAX && (SMALL as u64) <= INLINE_MAX);
        for (file, data) in [
            ("big.bin", &big),
            ("small.bin", &small),
            ("api/v1/big.bin", &big),
        ] {
            std::fs::write(dir.join(file), data).unwrap_or_else(|e| panic!("{e}"));
        }
        let huge = std::fs::File::create(dir.join("huge.bin")).unwrap_or_else(|e| panic!("{e}"));
        huge.set_len(64 << 20).unwrap_or_else(|e| panic!("{e}"));
        Mirror { dir, big, small }
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `serve` on a runtime of its own with a bound loopback listener; returns its
/// address. The server stops when the sender is dropped.
fn start<F, Fut>(serve: F) -> (SocketAddr, tokio::sync::oneshot::Sender<()>)
where
    F: FnOnce(tokio::net::TcpListener, tokio::sync::oneshot::Receiver<()>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = std::io::Result<()>>,
{
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
            let _ = serve(listener, stopped).await;
        });
    });
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("{e}"));
    (addr, stop)
}

/// The machine listener ([`slipway_http::serve_within`]) on `mirror`.
fn start_machine(
    mirror: &Mirror,
    limits: Limits,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let stub = Arc::new(Stub {
        mirror: mirror.dir.clone(),
    });
    start(move |listener, stopped| {
        slipway_http::serve_within(listener, stub, limits, async {
            let _ = stopped.await;
        })
    })
}

/// The machine router alone on `mirror`, every request through hyper: the mirror files
/// answered by its fallback route ([`slipway_http::bounded::serve_bounded`]).
fn start_hyper_only(mirror: &Mirror) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let stub = Arc::new(Stub {
        mirror: mirror.dir.clone(),
    });
    start(move |listener, stopped| {
        slipway_http::bounded::serve_bounded(
            listener,
            slipway_http::router(stub),
            Limits::default(),
            async {
                let _ = stopped.await;
            },
        )
    })
}

/// A response as curl saw it: status, headers (names lowercase; `date` left out) and
/// body.
#[derive(Debug)]
struct Got {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

/// Fetches `url` with curl and `args`, within 30 s.
fn curl(url: &str, args: &[&str]) -> Got {
    let out = Command::new("curl")
        .args(["-s", "-i", "--max-time", "30"])
        .args(args)
        .arg(url)
        .output()
        .unwrap_or_else(|e| panic!("curl: {e}"));
    assert!(out.status.success(), "curl {url} {args:?}: {out:?}");
    parse_response(&out.stdout)
}

fn parse_response(raw: &[u8]) -> Got {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .filter(|(n, _)| n != "date")
        .collect();
    Got {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

fn header<'a>(got: &'a Got, name: &str) -> &'a str {
    got.headers.get(name).map_or("", String::as_str)
}

fn sha256(file: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("sha256sum: {e}"));
    String::from_utf8_lossy(&out.stdout)
        .split(' ')
        .next()
        .unwrap_or("")
        .to_string()
}

#[test]
fn a_large_file_downloaded_whole_matches_by_sha256() {
    let mirror = Mirror::new("whole");
    let (addr, _stop) = start_machine(&mirror, Limits::default());
    let out = mirror.dir.join("downloaded");
    let status = Command::new("curl")
        .args(["-s", "-f", "--max-time", "30", "-o"])
        .arg(&out)
        .arg(format!("http://{addr}/big.bin"))
        .status()
        .unwrap_or_else(|e| panic!("curl: {e}"));
    assert!(status.success(), "curl failed: {status}");
    let want = sha256(&mirror.dir.join("big.bin"));
    assert_eq!(want.len(), 64, "sha256sum printed {want:?}");
    assert_eq!(sha256(&out), want);
}

/// Ranges and conditions for a file of `len` bytes with entity tag `tag`, each with
/// the status and the bytes it must give.
fn cases(len: usize, tag: &str) -> Vec<(Vec<String>, u16, std::ops::Range<usize>)> {
    let h = |s: String| vec!["-H".to_string(), s];
    vec![
        (Vec::new(), 200, 0..len),
        (h("Range: bytes=0-99".into()), 206, 0..100),
        (h("Range: bytes=-100".into()), 206, len - 100..len),
        (h("Range: bytes=100-".into()), 206, 100..len),
        (
            h(format!("Range: bytes={}-{}", len - 10, len + 1000)),
            206,
            len - 10..len,
        ),
        (h(format!("Range: bytes={len}-")), 416, 0..0),
        (h("Range: bytes=-0".into()), 416, 0..0),
        (h("Range: bytes=0-1,5-6".into()), 200, 0..len),
        (h(format!("If-None-Match: {tag}")), 304, 0..0),
        (
            [
                h("Range: bytes=0-99".into()),
                h("If-Range: \"other\"".into()),
            ]
            .concat(),
            200,
            0..len,
        ),
        (
            [h("Range: bytes=0-99".into()), h(format!("If-Range: {tag}"))].concat(),
            206,
            0..100,
        ),
    ]
}

#[test]
fn ranges_and_conditions_answer_as_the_hyper_path_does() {
    let mirror = Mirror::new("ranges");
    let (addr, _stop) = start_machine(&mirror, Limits::default());
    let (hyper_addr, _stop_hyper) = start_hyper_only(&mirror);
    for (file, data) in [("small.bin", &mirror.small), ("big.bin", &mirror.big)] {
        let url = format!("http://{addr}/{file}");
        let plain = curl(&url, &[]);
        let tag = header(&plain, "etag").to_string();
        assert!(tag.starts_with('"'), "{file}: etag {tag:?}");
        for (args, status, bytes) in cases(data.len(), &tag) {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let got = curl(&url, &args);
            assert_eq!(got.status, status, "{file} {args:?}: {got:?}");
            // The same request through hyper and the router's mirror route: the same
            // status, headers (all but `date`) and bytes.
            let by_hyper = curl(&format!("http://{hyper_addr}/{file}"), &args);
            assert_eq!(
                (by_hyper.status, &by_hyper.headers),
                (got.status, &got.headers),
                "{file} {args:?}: hyper and zero-copy differ"
            );
            assert!(by_hyper.body == got.body, "{file} {args:?}: bodies differ");
            assert_eq!(got.body, data[bytes.clone()], "{file} {args:?}: body");
            let names: Vec<&str> = got.headers.keys().map(String::as_str).collect();
            let want: &[&str] = match status {
                200 => &[
                    "accept-ranges",
                    "content-length",
                    "content-type",
                    "etag",
                    "last-modified",
                ],
                206 => &[
                    "accept-ranges",
                    "content-length",
                    "content-range",
                    "content-type",
                    "etag",
                    "last-modified",
                ],
                416 => &[
                    "accept-ranges",
                    "content-length",
                    "content-range",
                    "content-type",
                    "etag",
                    "last-modified",
                ],
                _ => &["accept-ranges", "content-type", "etag", "last-modified"],
            };
            assert_eq!(names, want, "{file} {args:?}: headers");
            let len = data.len();
            match status {
                206 => assert_eq!(
                    header(&got, "content-range"),
                    format!("bytes {}-{}/{len}", bytes.start, bytes.end - 1)
                ),
                416 => {
                    assert_eq!(header(&got, "content-range"), format!("bytes */{len}"));
                    assert_eq!(header(&got, "content-length"), "0");
                }
                _ => {}
            }
            if status == 200 || status == 206 {
                assert_eq!(header(&got, "content-length"), bytes.len().to_string());
            }
            assert_eq!(header(&got, "etag"), tag, "{file} {args:?}");
        }
    }
}

/// Sends `request` on a new connection and reads until the server closes it (5 s at
/// most).
fn raw(addr: SocketAddr, request: &str) -> Vec<u8> {
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap_or_else(|e| panic!("{e}"));
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap_or_else(|e| panic!("{e}"));
    s.write_all(request.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

#[test]
fn head_gives_the_length_and_no_body() {
    let mirror = Mirror::new("head");
    let (addr, _stop) = start_machine(&mirror, Limits::default());
    let got = parse_response(&raw(
        addr,
        "HEAD /big.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    ));
    assert_eq!(got.status, 200);
    assert_eq!(header(&got, "content-length"), BIG.to_string());
    assert_eq!(header(&got, "connection"), "close");
    assert!(
        got.body.is_empty(),
        "{} body bytes after HEAD",
        got.body.len()
    );
}

#[test]
fn keep_alive_goes_on_from_a_zero_copy_answer_to_the_router() {
    let mirror = Mirror::new("keepalive");
    let (addr, _stop) = start_machine(&mirror, Limits::default());
    let (one, two, three) = (
        mirror.dir.join("one"),
        mirror.dir.join("two"),
        mirror.dir.join("three"),
    );
    let out = Command::new("curl")
        .args(["-s", "-f", "-v", "--max-time", "30"])
        .arg(format!("http://{addr}/big.bin"))
        .arg("-o")
        .arg(&one)
        .arg(format!("http://{addr}/big.bin"))
        .arg("-o")
        .arg(&two)
        .arg(format!("http://{addr}/boot.ipxe"))
        .arg("-o")
        .arg(&three)
        .output()
        .unwrap_or_else(|e| panic!("curl: {e}"));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert_eq!(
        log.matches("Re-using existing connection").count(),
        2,
        "one connection for the three: {log}"
    );
    let read = |p: &Path| std::fs::read(p).unwrap_or_else(|e| panic!("{e}"));
    assert!(read(&one) == mirror.big, "first big download differs");
    assert!(read(&two) == mirror.big, "second big download differs");
    assert_eq!(read(&three), b"#!ipxe\n", "the route after them");
}

/// Whether the server has closed `s` (reads end with EOF or an error) within
/// `within`; counts the bytes read meanwhile into `total`.
fn closed_within(s: &mut TcpStream, within: Duration, total: &mut usize) -> bool {
    let end = Instant::now() + within;
    let mut buf = vec![0u8; 1 << 20];
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap_or_else(|e| panic!("{e}"));
    while Instant::now() < end {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => *total += n,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn a_client_that_stops_reading_a_zero_copy_answer_is_dropped_after_the_idle_timeout() {
    let mirror = Mirror::new("idle");
    let (addr, _stop) = start_machine(
        &mirror,
        Limits {
            idle_timeout: Duration::from_secs(1),
            ..Limits::default()
        },
    );
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap_or_else(|e| panic!("{e}"));
    s.write_all(b"GET /huge.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap_or_else(|e| panic!("{e}"));
    // Read nothing for 3 s: the socket buffers fill, sendfile stalls.
    std::thread::sleep(Duration::from_secs(3));
    let mut total = 0;
    assert!(
        closed_within(&mut s, Duration::from_secs(10), &mut total),
        "still open"
    );
    assert!(
        total > 0 && total < 64 << 20,
        "{total} bytes came through: the stalled connection was not dropped"
    );
}

#[test]
fn a_slow_header_client_is_dropped_after_the_header_timeout_and_others_are_served() {
    let mirror = Mirror::new("slowheader");
    let (addr, _stop) = start_machine(
        &mirror,
        Limits {
            header_timeout: Duration::from_secs(1),
            ..Limits::default()
        },
    );
    let mut slow =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap_or_else(|e| panic!("{e}"));
    slow.write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let got = curl(&format!("http://{addr}/small.bin"), &[]);
    assert_eq!(got.status, 200, "served meanwhile");
    let mut total = 0;
    assert!(
        closed_within(&mut slow, Duration::from_secs(5), &mut total),
        "the slow-header client is still open"
    );
    assert_eq!(total, 0, "no answer to half a head");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "closed after {took:?}"
    );
}

#[test]
fn api_paths_stay_404_whatever_the_mirror_holds() {
    let mirror = Mirror::new("api");
    let (addr, _stop) = start_machine(&mirror, Limits::default());
    for path in ["/api/v1/big.bin", "/%61pi/v1/big.bin", "/api"] {
        let got = curl(&format!("http://{addr}{path}"), &[]);
        assert_eq!(got.status, 404, "{path}");
        assert!(
            String::from_utf8_lossy(&got.body).contains("operator API"),
            "{path}: {got:?}"
        );
    }
}

#[test]
fn mirror_files_are_answered_without_the_router() {
    // A router without the mirror: what it answers is 404; the files still come, so
    // the zero-copy path sent them (the large one with sendfile, the small one inline).
    let mirror = Mirror::new("proof");
    let dir = mirror.dir.clone();
    let (addr, _stop) = start(move |listener, stopped| {
        slipway_http::bounded::serve_bounded_with_mirror(
            listener,
            axum::Router::new(),
            Limits::default(),
            MirrorFiles::new(move || Some(dir.clone())),
            async {
                let _ = stopped.await;
            },
        )
    });
    let big = curl(
        &format!("http://{addr}/big.bin"),
        &["-H", "Range: bytes=-100"],
    );
    assert_eq!(big.status, 206);
    assert_eq!(big.body, mirror.big[BIG - 100..]);
    let small = curl(&format!("http://{addr}/small.bin"), &[]);
    assert_eq!(small.status, 200);
    assert_eq!(small.body, mirror.small);
    let missing = curl(&format!("http://{addr}/nothing.bin"), &[]);
    assert_eq!(
        missing.status, 404,
        "a file not in the mirror goes to the router"
    );
}

/// A router without the mirror: `/small` answers `ok`, `POST /echo` its body.
fn start_without_mirror_route(mirror: &Mirror) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let dir = mirror.dir.clone();
    start(move |listener, stopped| {
        let app = axum::Router::new()
            .route("/small", axum::routing::get(|| async { "ok\n" }))
            .route(
                "/echo",
                axum::routing::post(|body: String| async move { body }),
            );
        slipway_http::bounded::serve_bounded_with_mirror(
            listener,
            app,
            Limits::default(),
            MirrorFiles::new(move || Some(dir.clone())),
            async {
                let _ = stopped.await;
            },
        )
    })
}

/// Reads one response from `s` (`buf` keeps what was read past it): status, headers
/// and body (none for a `HEAD`).
fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>, head_only: bool) -> Got {
    let mut chunk = vec![0u8; 1 << 16];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = s.read(&mut chunk).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            n > 0,
            "closed before a whole head: {:?}",
            String::from_utf8_lossy(buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let mut got = parse_response(&buf[..head_end]);
    let len: usize = if head_only {
        0
    } else {
        header(&got, "content-length")
            .parse()
            .unwrap_or_else(|e| panic!("{e}: {got:?}"))
    };
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk).unwrap_or_else(|e| panic!("{e}"));
        assert!(n > 0, "closed within a body");
        buf.extend_from_slice(&chunk[..n]);
    }
    got.body = buf[head_end..head_end + len].to_vec();
    buf.drain(..head_end + len);
    got
}

#[test]
fn after_a_request_hyper_answered_the_next_large_file_goes_zero_copy() {
    let mirror = Mirror::new("handback");
    let (addr, _stop) = start_without_mirror_route(&mirror);
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap_or_else(|e| panic!("{e}"));
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap_or_else(|e| panic!("{e}"));
    // All at once, pipelined: hyper answers three (a HEAD, a GET, a POST with a body),
    // then the zero-copy path two, then hyper again. The router has no mirror: a large
    // file answered 200 was answered by the zero-copy path.
    s.write_all(
        b"HEAD /small HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /small HTTP/1.1\r\nHost: t\r\n\r\n\
          POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello\
          GET /big.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=-100\r\n\r\n\
          HEAD /big.bin HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /small HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut buf = Vec::new();
    let head = read_response(&mut s, &mut buf, true);
    assert_eq!((head.status, header(&head, "content-length")), (200, "3"));
    let small = read_response(&mut s, &mut buf, false);
    assert_eq!((small.status, &small.body[..]), (200, &b"ok\n"[..]));
    let echo = read_response(&mut s, &mut buf, false);
    assert_eq!((echo.status, &echo.body[..]), (200, &b"hello"[..]));
    let big = read_response(&mut s, &mut buf, false);
    assert_eq!(big.status, 206, "{big:?}");
    assert_eq!(big.body, mirror.big[BIG - 100..]);
    let big_head = read_response(&mut s, &mut buf, true);
    assert_eq!(big_head.status, 200, "{big_head:?}");
    assert_eq!(header(&big_head, "content-length"), BIG.to_string());
    let last = read_response(&mut s, &mut buf, false);
    assert_eq!((last.status, &last.body[..]), (200, &b"ok\n"[..]));
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(
        buf.is_empty() && rest.is_empty(),
        "more after the last answer"
    );

    // curl: a route, then a large file, on one connection.
    let out = Command::new("curl")
        .args(["-s", "-f", "-v", "--max-time", "30", "-o", "/dev/null"])
        .arg(format!("http://{addr}/small"))
        .args(["-o"])
        .arg(mirror.dir.join("after"))
        .arg(format!("http://{addr}/big.bin"))
        .output()
        .unwrap_or_else(|e| panic!("curl: {e}"));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert_eq!(
        log.matches("Re-using existing connection").count(),
        1,
        "{log}"
    );
    let after = std::fs::read(mirror.dir.join("after")).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        after == mirror.big,
        "the large file after the route differs"
    );
}

#[test]
fn links_inside_the_mirror_are_followed_and_nothing_outside_is_reached() {
    let mirror = Mirror::new("links");
    let outside = mirror.dir.with_extension("outside");
    std::fs::write(&outside, b"secret").unwrap_or_else(|e| panic!("{e}"));
    std::os::unix::fs::symlink("big.bin", mirror.dir.join("inside-link.bin"))
        .unwrap_or_else(|e| panic!("{e}"));
    std::os::unix::fs::symlink(&outside, mirror.dir.join("outside-link.bin"))
        .unwrap_or_else(|e| panic!("{e}"));
    let (addr, _stop) = start_machine(&mirror, Limits::default());
    let (hyper_addr, _stop_hyper) = start_hyper_only(&mirror);
    for base in [addr, hyper_addr] {
        let inside = curl(
            &format!("http://{base}/inside-link.bin"),
            &["-H", "Range: bytes=-100"],
        );
        assert_eq!(inside.status, 206, "{base}");
        assert_eq!(inside.body, mirror.big[BIG - 100..]);
        let name = outside
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        for path in [
            "/outside-link.bin".to_string(),
            format!("/../{name}"),
            format!("/%2e%2e/{name}"),
            format!("/%2e%2e%2f{name}"),
            "/sub%5c..%5cbig.bin".to_string(),
        ] {
            let got = curl(&format!("http://{base}{path}"), &["--path-as-is"]);
            assert_eq!(got.status, 404, "{base}{path}: {got:?}");
            assert!(got.body != b"secret", "{base}{path}");
        }
    }
    let _ = std::fs::remove_file(&outside);
}
