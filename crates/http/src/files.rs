//! Serving the asset mirror: large files streamed (never read whole), single byte
//! ranges (`Range`, `If-Range`), `Content-Length`, `ETag` and `Last-Modified` with
//! conditional requests, and no way out of the mirror directory.

use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

/// Bytes read per chunk while streaming a file: what one slow reader can hold in
/// memory on top of its socket buffers.
const CHUNK: usize = 256 * 1024;

/// Maps a URL path onto a file under `root`, refusing anything that could leave it:
/// `..`, absolute components, NUL bytes, backslashes. Symlinks must resolve inside the
/// root too.
pub fn resolve(root: &Path, url_path: &str) -> Option<PathBuf> {
    if url_path.contains('\0') || url_path.contains('\\') {
        return None;
    }
    let rel = Path::new(url_path.trim_start_matches('/'));
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    let full = root.join(rel);
    let real = full.canonicalize().ok()?;
    let real_root = root.canonicalize().ok()?;
    real.starts_with(&real_root).then_some(real)
}

/// An entity tag from size and modification time, as nginx makes them.
pub fn etag(len: u64, modified: SystemTime) -> String {
    let secs = modified
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("\"{secs:x}-{len:x}\"")
}

/// A parsed single `Range: bytes=...` request against a file of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// The whole file (no Range, or one we do not honour, like several ranges).
    Full,
    /// Bytes `start..=end`.
    Part(u64, u64),
    /// Cannot be satisfied (416).
    Unsatisfiable,
}

/// Parses a `Range` header value for a file of `len` bytes (RFC 9110 §14.2).
pub fn parse_range(value: &str, len: u64) -> Range {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Range::Full;
    };
    if spec.contains(',') {
        return Range::Full;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Range::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    // Positions and lengths are digits only (RFC 9110 §14.1.1); u64's parser would also
    // take a leading `+`.
    if !a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit()) {
        return Range::Full;
    }
    let parsed = match (a.is_empty(), b.is_empty()) {
        (true, true) => return Range::Full,
        (true, false) => match b.parse::<u64>() {
            Ok(0) => return Range::Unsatisfiable,
            Ok(n) => Some((len.saturating_sub(n), len.saturating_sub(1))),
            Err(_) => return Range::Full,
        },
        (false, _) => {
            let Ok(start) = a.parse::<u64>() else {
                return Range::Full;
            };
            let end = if b.is_empty() {
                len.saturating_sub(1)
            } else {
                match b.parse::<u64>() {
                    Ok(e) if e >= start => e.min(len.saturating_sub(1)),
                    _ => return Range::Full,
                }
            };
            Some((start, end))
        }
    };
    match parsed {
        Some((s, e)) if len > 0 && s < len && s <= e => Range::Part(s, e),
        _ => Range::Unsatisfiable,
    }
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn plain(status: StatusCode, msg: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::from(msg));
    *r.status_mut() = status;
    r
}

/// Files up to this size are read whole when opened and sent from memory; larger files
/// stream.
const SMALL: u64 = 64 * 1024;

/// What the blocking part found.
enum Opened {
    /// No such file (or a directory, or outside the root).
    Missing,
    /// The file could not be read.
    Unreadable,
    /// A small file, read whole.
    Small(std::fs::Metadata, Vec<u8>),
    /// A large file, open, to stream.
    Large(std::fs::Metadata, std::fs::File),
}

/// Resolves `url_path` under `root` (see [`resolve`]) and serves the file there,
/// honouring the request's conditional and range headers; large bodies stream from
/// disk through the blocking pool.
///
/// Resolving, opening and reading a small file run on the event loop itself, as nginx
/// does without `aio threads`: they are a few microseconds for files in the page cache,
/// and a hop to the blocking pool per request cost more than the work (measured: wrk on a
/// 1 KiB file spent most of its time switching threads).
pub async fn serve_under(root: &Path, url_path: &str, headers: &HeaderMap) -> Response<Body> {
    match resolve(root, url_path) {
        Some(path) => respond(open(&path), &path, headers).await,
        None => plain(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// Opens `path` and reads it whole when it is small.
fn open(path: &Path) -> Opened {
    use std::io::Read;
    let Ok(mut file) = std::fs::File::open(path) else {
        return Opened::Missing;
    };
    let Ok(meta) = file.metadata() else {
        return Opened::Unreadable;
    };
    if !meta.is_file() {
        return Opened::Missing;
    }
    if meta.len() > SMALL {
        return Opened::Large(meta, file);
    }
    // Read at most SMALL + 1 bytes: a file that grew since is served as it is now, up
    // to the length announced below (taken from what was read).
    let mut data = Vec::with_capacity(meta.len() as usize);
    match (&mut file).take(SMALL + 1).read_to_end(&mut data) {
        Ok(_) if data.len() as u64 <= SMALL => Opened::Small(meta, data),
        Ok(_) => Opened::Large(meta, file),
        Err(_) => Opened::Unreadable,
    }
}

/// What to answer for a file, decided from its length, modification time and the
/// request's conditional and range headers alone (pure): both the hyper path
/// ([`serve_under`]) and the zero-copy path of the bounded listener answer from it, so
/// they agree on statuses and headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// 200, 206, 304 or 416.
    pub status: StatusCode,
    /// `ETag`, `Last-Modified`, `Accept-Ranges`, `Content-Type`, and `Content-Range`
    /// for 206 and 416; `Content-Length` for 200 and 206 (hyper adds `content-length: 0`
    /// to a 416 and none to a 304 itself).
    pub headers: HeaderMap,
    /// The bytes to send, `(start, count)`; `None` for 304 and 416.
    pub body: Option<(u64, u64)>,
}

/// Decides the answer for the file at `path` (for its content type) of `len` bytes last
/// modified at `modified`, given the request `headers`: `If-None-Match`, then
/// `If-Modified-Since`; a single `Range`, dropped when `If-Range` does not match.
pub fn plan(path: &Path, len: u64, modified: SystemTime, headers: &HeaderMap) -> Plan {
    let tag = etag(len, modified);
    let last_modified = httpdate::fmt_http_date(modified);

    let not_modified = match header_str(headers, header::IF_NONE_MATCH) {
        Some(inm) => inm.split(',').any(|t| t.trim() == tag || t.trim() == "*"),
        None => header_str(headers, header::IF_MODIFIED_SINCE)
            .and_then(|s| httpdate::parse_http_date(s).ok())
            .is_some_and(|since| {
                modified
                    .duration_since(since)
                    .map_or(true, |d| d.as_secs() == 0)
            }),
    };
    let mut range = header_str(headers, header::RANGE).map_or(Range::Full, |r| parse_range(r, len));
    if let Some(if_range) = header_str(headers, header::IF_RANGE)
        && if_range.trim() != tag
        && if_range.trim() != last_modified
    {
        range = Range::Full;
    }

    let mut out = HeaderMap::new();
    let mut put = |name: header::HeaderName, value: String| {
        if let Ok(v) = HeaderValue::try_from(value) {
            out.insert(name, v);
        }
    };
    put(header::ETAG, tag);
    put(header::LAST_MODIFIED, last_modified);
    put(header::ACCEPT_RANGES, "bytes".into());
    put(header::CONTENT_TYPE, content_type(path).into());
    let (status, body) = if not_modified {
        (StatusCode::NOT_MODIFIED, None)
    } else {
        match range {
            Range::Full => (StatusCode::OK, Some((0, len))),
            Range::Part(s, e) => {
                put(header::CONTENT_RANGE, format!("bytes {s}-{e}/{len}"));
                (StatusCode::PARTIAL_CONTENT, Some((s, e - s + 1)))
            }
            Range::Unsatisfiable => {
                put(header::CONTENT_RANGE, format!("bytes */{len}"));
                (StatusCode::RANGE_NOT_SATISFIABLE, None)
            }
        }
    };
    if let Some((_, count)) = body {
        out.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    }
    Plan {
        status,
        headers: out,
        body,
    }
}

async fn respond(opened: Opened, path: &Path, headers: &HeaderMap) -> Response<Body> {
    let (meta, body) = match opened {
        Opened::Missing => return plain(StatusCode::NOT_FOUND, "not found\n"),
        Opened::Unreadable => {
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "cannot read file\n");
        }
        Opened::Small(meta, data) => (meta, Ok(data)),
        Opened::Large(meta, file) => (meta, Err(file)),
    };
    let len = match &body {
        Ok(data) => data.len() as u64,
        Err(_) => meta.len(),
    };
    let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    let plan = plan(path, len, modified, headers);
    let body = match (plan.body, body) {
        (None, _) => Body::empty(),
        (Some((start, count)), Ok(mut data)) => {
            // start + count <= len = data.len(), by parse_range.
            data.truncate((start + count) as usize);
            data.drain(..start as usize);
            Body::from(data)
        }
        (Some((start, count)), Err(file)) => {
            let mut file = tokio::fs::File::from_std(file);
            if start > 0 && file.seek(std::io::SeekFrom::Start(start)).await.is_err() {
                return plain(StatusCode::INTERNAL_SERVER_ERROR, "cannot read file\n");
            }
            Body::from_stream(ReaderStream::with_capacity(file.take(count), CHUNK))
        }
    };
    let mut response = Response::new(body);
    *response.status_mut() = plan.status;
    *response.headers_mut() = plan.headers;
    response
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "json" | "ign" => "application/json",
        "yml" | "yaml" | "sh" | "txt" | "ipxe" | "cfg" | "asc" | "sig" | "sha256" | "DIGESTS" => {
            "text/plain; charset=utf-8"
        }
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-99", 1000), Range::Part(0, 99));
        assert_eq!(parse_range("bytes=900-", 1000), Range::Part(900, 999));
        assert_eq!(parse_range("bytes=-100", 1000), Range::Part(900, 999));
        assert_eq!(parse_range("bytes=-5000", 1000), Range::Part(0, 999));
        assert_eq!(parse_range("bytes=990-5000", 1000), Range::Part(990, 999));
        assert_eq!(parse_range("bytes=1000-", 1000), Range::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 1000), Range::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-0", 0), Range::Unsatisfiable);
        assert_eq!(parse_range("bytes=5-1", 1000), Range::Full);
        assert_eq!(parse_range("bytes=0-1,5-6", 1000), Range::Full);
        assert_eq!(parse_range("items=0-1", 1000), Range::Full);
        assert_eq!(parse_range("bytes=x-1", 1000), Range::Full);
        // Found by fuzz/fuzz_targets/http_range.rs: a sign is not a digit.
        assert_eq!(parse_range("bytes=+29-", 1000), Range::Full);
        assert_eq!(parse_range("bytes=0-+9", 1000), Range::Full);
        assert_eq!(parse_range("bytes=-+9", 1000), Range::Full);
    }

    #[test]
    fn traversal_is_refused() {
        let root = std::env::temp_dir().join(format!("slipway-files-{}", std::process::id()));
        let _ = std::fs::create_dir_all(root.join("v1"));
        let _ = std::fs::write(root.join("v1/a.bin"), b"x");
        assert!(resolve(&root, "/v1/a.bin").is_some());
        for bad in [
            "/../etc/passwd",
            "/v1/../../etc/passwd",
            "//etc/passwd",
            "/v1/a.bin\0",
            "/v1\\..\\x",
            "/./v1/a.bin",
        ] {
            assert_eq!(resolve(&root, bad), None, "{bad}");
        }
        #[cfg(unix)]
        {
            let _ = std::os::unix::fs::symlink("/etc", root.join("escape"));
            assert_eq!(resolve(&root, "/escape/passwd"), None);
        }
        let _ = std::fs::remove_dir_all(&root);
    }
}
