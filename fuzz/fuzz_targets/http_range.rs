//! The asset mirror's conditional and range requests (crates/http `files`): the first
//! input byte picks a file of `slipway_fuzz::http_root` (1000 bytes, empty, 70,000
//! bytes that stream, or missing), the rest is up to four lines: `Range`, `If-Range`,
//! `If-None-Match`, `If-Modified-Since`. `parse_range` alone, for several file sizes:
//! a part is inside the file, and only digits make one. `serve_under` with those
//! headers: the status, `Content-Range` and body agree with each other and the file.
#![no_main]

use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use slipway_fuzz::{Input, http_byte_at, http_root};
use slipway_http::files::{Range, parse_range, serve_under};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"))
    })
}

fn check_range(value: &str, len: u64) -> Range {
    let range = parse_range(value, len);
    if let Range::Part(start, end) = range {
        assert!(
            start <= end && end < len,
            "{value:?} on {len} bytes: {start}-{end}"
        );
    }
    if range != Range::Full {
        // RFC 9110: first-pos, last-pos and suffix-length are 1*DIGIT.
        let spec = value.trim().strip_prefix("bytes=").unwrap_or("");
        assert!(
            spec.chars()
                .all(|c| c.is_ascii_digit() || c == '-' || c.is_whitespace()),
            "{value:?} read as {range:?}"
        );
    }
    range
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let (name, len) = [
        ("a.bin", 1000),
        ("empty", 0),
        ("big.bin", 70_000),
        ("missing", 0),
    ][usize::from(input.u8() % 4)];
    let text = String::from_utf8_lossy(input.rest()).into_owned();
    let lines: Vec<&str> = text.splitn(4, '\n').collect();
    if let Some(value) = lines.first() {
        for n in [0, 1, 1000, u64::MAX] {
            check_range(value, n);
        }
    }
    let names: [HeaderName; 4] = [
        header::RANGE,
        header::IF_RANGE,
        header::IF_NONE_MATCH,
        header::IF_MODIFIED_SINCE,
    ];
    let mut headers = HeaderMap::new();
    for (name, value) in names.into_iter().zip(&lines) {
        if let Ok(value) = HeaderValue::from_str(value)
            && !value.is_empty()
        {
            headers.insert(name, value);
        }
    }
    let (root, _) = http_root();
    let (parts, body) = runtime().block_on(async {
        let response = serve_under(root, name, &headers).await;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map(|b| b.to_bytes());
        (parts, body.unwrap_or_else(|e| panic!("body: {e}")))
    });
    let content_range = parts
        .headers
        .get(header::CONTENT_RANGE)
        .map(|v| v.to_str().unwrap_or_else(|e| panic!("{e}")).to_owned());
    let content_length = parts.headers.get(header::CONTENT_LENGTH).map(|v| {
        v.to_str()
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("{v:?}"))
    });
    let expect = |start: u64, count: u64| {
        assert_eq!(body.len() as u64, count);
        assert_eq!(content_length, Some(body.len()));
        for (i, b) in body.iter().enumerate() {
            assert_eq!(*b, http_byte_at(start + i as u64), "byte {i} from {start}");
        }
    };
    match parts.status {
        StatusCode::NOT_FOUND => assert_eq!(name, "missing"),
        StatusCode::OK => {
            assert!(content_range.is_none());
            expect(0, len);
        }
        StatusCode::PARTIAL_CONTENT => {
            let Some(range) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
                panic!("206 without a Range");
            };
            let Range::Part(start, end) = parse_range(range, len) else {
                panic!("206 for {range:?}");
            };
            assert_eq!(content_range, Some(format!("bytes {start}-{end}/{len}")));
            expect(start, end - start + 1);
        }
        StatusCode::RANGE_NOT_SATISFIABLE => {
            assert_eq!(content_range, Some(format!("bytes */{len}")));
            assert!(body.is_empty());
        }
        StatusCode::NOT_MODIFIED => assert!(body.is_empty()),
        other => panic!("status {other}"),
    }
});
