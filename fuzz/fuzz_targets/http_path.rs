//! HTTP request targets as the machine routes read them (crates/http): any bytes as a
//! request target (`http`'s URI parser, as hyper uses it), its path percent-decoded
//! (`slipway_http::fuzzing::percent_decode`) and resolved under the mirror directory
//! (`files::resolve`), the report query values (`fuzzing::query_value`) and the MACs
//! in path segments. Properties: the decoder agrees with a strict RFC 3986 one; a
//! resolved file is inside the served directory; query values are bounded and free of
//! control characters; a parsed MAC prints and parses back to itself.
#![no_main]

use axum::http::Uri;
use libfuzzer_sys::fuzz_target;
use slipway_cluster::MacAddr;
use slipway_http::files::resolve;
use slipway_http::fuzzing::{percent_decode, query_value};

/// `%XX` with exactly two hex digits; anything else after a `%` is malformed.
fn strict_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |c: u8| (c as char).to_digit(16);
            let hi = hex(*b.get(i + 1)?)?;
            let lo = hex(*b.get(i + 2)?)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        assert_eq!(percent_decode(text), strict_decode(text), "{text:?}");
    }
    let Ok(uri) = Uri::try_from(data) else {
        return;
    };
    let (root, real_root) = slipway_fuzz::http_root();
    if let Some(path) = percent_decode(uri.path())
        && let Some(file) = resolve(root, &path)
    {
        assert!(
            file.starts_with(real_root),
            "{path:?} resolved to {}",
            file.display()
        );
    }
    for key in ["reason", "hostname"] {
        if let Some(value) = query_value(&uri, key) {
            assert!(value.chars().count() <= 200);
            assert!(!value.chars().any(char::is_control), "{value:?}");
        }
    }
    for segment in uri.path().split('/') {
        let segment = segment.strip_suffix(".ipxe").unwrap_or(segment);
        if let Ok(mac) = segment.parse::<MacAddr>() {
            assert_eq!(mac.to_string().parse::<MacAddr>(), Ok(mac));
        }
    }
});
