//! The registry client against a scripted registry on loopback: the anonymous bearer
//! challenge (token fetched from the realm with the scope and service asked for, then
//! sent), a blob redirected to another host (which never sees the token), a resumed
//! blob (`Range` from the part's length), and a corrupted blob refused by digest.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use slipway_mirror::oci::{Client, Descriptor, ImageRef, digest_of};

/// One request as the server saw it: method, path with query, headers (lower-case).
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: HashMap<String, String>,
}

type Handler = Arc<dyn Fn(&Seen) -> (u16, Vec<(String, String)>, Vec<u8>) + Send + Sync>;

/// A tiny HTTP/1.1 server (one request per connection); returns its port and log.
fn server(handler: Handler) -> (u16, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("{e}"))
        .port();
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let Ok(clone) = conn.try_clone() else {
                continue;
            };
            let mut r = BufReader::new(clone);
            let mut first = String::new();
            let _ = r.read_line(&mut first);
            let mut headers = HashMap::new();
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).is_err() || h.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                }
            }
            let path = first
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_string();
            let seen = Seen { path, headers };
            log2.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(seen.clone());
            let (status, hs, body) = handler(&seen);
            let mut head = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (k, v) in hs {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(&body);
        }
    });
    (port, log)
}

fn hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

#[test]
fn bearer_tokens_redirects_resume_and_digests() {
    let layer: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let layer_digest = digest_of(&layer);
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let config_digest = digest_of(&config);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer_digest}","size":{}}}]}}"#,
        config.len(),
        layer.len()
    );

    // The "CDN" blobs are redirected to: serves ranges, and a corrupted copy of the
    // layer under /bad/.
    let cdn_layer = layer.clone();
    let (cdn, cdn_log) = server(Arc::new(move |s: &Seen| {
        let mut body = cdn_layer.clone();
        if s.path.starts_with("/bad/") {
            body[0] ^= 1;
        }
        match s
            .headers
            .get("range")
            .and_then(|r| r.strip_prefix("bytes="))
        {
            Some(r) => {
                let from: usize = r.trim_end_matches('-').parse().unwrap_or(0);
                let part = body[from..].to_vec();
                let cr = format!("bytes {from}-{}/{}", body.len() - 1, body.len());
                (206, vec![("Content-Range".into(), cr)], part)
            }
            None => (200, Vec::new(), body),
        }
    }));

    let registry_port = Arc::new(Mutex::new(0u16));
    let rp = registry_port.clone();
    let (manifest2, config2, ld) = (manifest.clone(), config.clone(), layer_digest.clone());
    let (port, log) = server(Arc::new(move |s: &Seen| {
        let me = *rp.lock().unwrap_or_else(|e| e.into_inner());
        if s.path.starts_with("/token?") {
            return (200, Vec::new(), br#"{"token":"tok-123"}"#.to_vec());
        }
        if s.headers.get("authorization").map(String::as_str) != Some("Bearer tok-123") {
            let challenge = format!(
                r#"Bearer realm="http://127.0.0.1:{me}/token",service="test-registry",scope="repository:pre/lib/img:pull""#
            );
            return (
                401,
                vec![("WWW-Authenticate".into(), challenge)],
                Vec::new(),
            );
        }
        if s.path == "/v2/pre/lib/img/manifests/1" {
            let d = digest_of(manifest2.as_bytes());
            return (
                200,
                vec![
                    (
                        "Content-Type".into(),
                        "application/vnd.oci.image.manifest.v1+json".into(),
                    ),
                    ("Docker-Content-Digest".into(), d),
                ],
                manifest2.clone().into_bytes(),
            );
        }
        if s.path.ends_with(&format!("/blobs/{}", digest_of(&config2))) {
            return (200, Vec::new(), config2.clone());
        }
        if s.path == format!("/v2/pre/lib/img/blobs/{ld}") {
            let loc = format!("http://127.0.0.1:{cdn}/cdn/{ld}");
            return (307, vec![("Location".into(), loc)], Vec::new());
        }
        if s.path == format!("/v2/pre/lib/bad/blobs/{ld}") {
            let loc = format!("http://127.0.0.1:{cdn}/bad/{ld}");
            return (307, vec![("Location".into(), loc)], Vec::new());
        }
        (404, Vec::new(), Vec::new())
    }));
    *registry_port.lock().unwrap_or_else(|e| e.into_inner()) = port;

    let source = format!("http://127.0.0.1:{port}/pre");
    let image = ImageRef::parse("registry.example/lib/img:1").unwrap_or_else(|e| panic!("{e}"));
    let client = Client::new();
    let (bytes, ctype, digest) = client
        .manifest(&image, &source, "1")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(bytes, manifest.as_bytes());
    assert_eq!(ctype, "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(digest, digest_of(manifest.as_bytes()));
    {
        let log = log.lock().unwrap_or_else(|e| e.into_inner());
        let token = log
            .iter()
            .find(|s| s.path.starts_with("/token?"))
            .unwrap_or_else(|| panic!("no token request: {log:?}"));
        assert!(
            token
                .path
                .contains("scope=repository%3Apre%2Flib%2Fimg%3Apull")
                && token.path.contains("service=test-registry"),
            "{}",
            token.path
        );
    }

    let dir = std::env::temp_dir().join(format!("slipway-oci-client-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let desc = |d: &str, size: usize| Descriptor {
        media_type: String::new(),
        digest: d.to_string(),
        size: size as u64,
        platform: None,
        annotations: None,
    };

    // A resumed blob: half of it already in the part; the redirect target is asked for
    // the rest, without the token.
    let dest = dir.join(&layer_digest[7..]);
    std::fs::write(dest.with_extension("part"), &layer[..40_000]).unwrap_or_else(|e| panic!("{e}"));
    let n = client
        .blob(
            &image,
            &source,
            &desc(&layer_digest, layer.len()),
            &dest,
            &|_| {},
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(n, 60_000, "bytes downloaded on resume");
    assert_eq!(
        hex(&std::fs::read(&dest).unwrap_or_default()),
        layer_digest[7..]
    );
    {
        let cdn_log = cdn_log.lock().unwrap_or_else(|e| e.into_inner());
        let last = cdn_log
            .last()
            .unwrap_or_else(|| panic!("the CDN saw nothing"));
        assert_eq!(
            last.headers.get("range").map(String::as_str),
            Some("bytes=40000-")
        );
        assert!(
            cdn_log
                .iter()
                .all(|s| !s.headers.contains_key("authorization")),
            "the token leaked to another host"
        );
    }

    // A corrupted blob: refused with both digests, nothing landed, no part kept.
    let bad = ImageRef::parse("registry.example/lib/bad:1").unwrap_or_else(|e| panic!("{e}"));
    let dest2 = dir.join("bad");
    let err = client
        .blob(
            &bad,
            &source,
            &desc(&layer_digest, layer.len()),
            &dest2,
            &|_| {},
        )
        .err()
        .unwrap_or_else(|| panic!("a corrupted blob was accepted"));
    let actual = {
        let mut b = layer.clone();
        b[0] ^= 1;
        digest_of(&b)
    };
    assert!(
        err.contains(&format!("expected {layer_digest}, got {actual}")),
        "{err}"
    );
    assert!(!dest2.exists() && !dest2.with_extension("part").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
