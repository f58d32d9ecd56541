//! A read-only OCI distribution registry over the image layout `slipway mirror`
//! fills (`<assets>/oci`: `index.json`, `blobs/sha256/<hex>`), for the nodes'
//! containerd to pull the cluster's images from.
//!
//! - `GET/HEAD /v2/`: 200 (`Docker-Distribution-API-Version: registry/2.0`).
//! - `GET/HEAD /v2/<name>/manifests/<tag|digest>`: the manifest or index, with its
//!   media type as `Content-Type` and `Docker-Content-Digest`.
//! - `GET/HEAD /v2/<name>/blobs/<digest>`: the blob (ranges, conditional requests:
//!   [`crate::files::serve_under`]).
//! - `GET /v2/<name>/tags/list`.
//! - Anything else: the registry's JSON errors (`NAME_UNKNOWN`, `MANIFEST_UNKNOWN`,
//!   `BLOB_UNKNOWN`, `NAME_INVALID`, `DIGEST_INVALID`, `UNSUPPORTED` for any write).
//!
//! Images are keyed in the layout by their full reference (`registry.k8s.io/pause:3.10`).
//! containerd asks a mirror for `/v2/<repository>/manifests/<ref>?ns=<registry>`: with
//! `ns` the registry is taken from it; without, `<name>` may be the full
//! `registry/repository`, or a bare repository held from one registry only (held from
//! several, it is ambiguous: 404 saying so). A digest is only answered for a name that
//! holds it (its tags' manifests and, for an index, the platform manifest kept).
//!
//! [`lookup`] is the pure part (paths and the layout, no HTTP); [`route`] the axum one.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode, Uri, header};
use axum::response::IntoResponse;
use serde::Deserialize;

/// The largest manifest served (as `slipway mirror` stores them).
pub const MAX_MANIFEST: u64 = 4 << 20;
/// The layout's directory under the asset mirror.
pub const LAYOUT_DIR: &str = "oci";
const API_VERSION: &str = "registry/2.0";
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A registry error: HTTP status, code and message (the JSON error body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryError {
    /// 400, 404, 405, 500.
    pub status: u16,
    /// `MANIFEST_UNKNOWN`, ...
    pub code: &'static str,
    /// What was asked for and why it is not there.
    pub message: String,
}

fn err(status: u16, code: &'static str, message: impl Into<String>) -> RegistryError {
    RegistryError {
        status,
        code,
        message: message.into(),
    }
}

/// A request, parsed from the path after `/v2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `/v2/`.
    Base,
    /// `/v2/<name>/manifests/<reference>`.
    Manifest {
        /// The repository name.
        name: String,
        /// Tag or digest.
        reference: String,
    },
    /// `/v2/<name>/blobs/<digest>`.
    Blob {
        /// The repository name.
        name: String,
        /// `sha256:<hex>`.
        digest: String,
    },
    /// `/v2/<name>/tags/list`.
    Tags {
        /// The repository name.
        name: String,
    },
}

/// What a request resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// `/v2/`.
    Base,
    /// A manifest: its bytes' file, media type and digest.
    Manifest {
        /// The blob file.
        path: PathBuf,
        /// Its media type (the `Content-Type`).
        media_type: String,
        /// `sha256:<hex>`.
        digest: String,
    },
    /// A blob: its path relative to the layout, and digest.
    Blob {
        /// `blobs/sha256/<hex>`.
        rel: String,
        /// `sha256:<hex>`.
        digest: String,
    },
    /// The tags of a name.
    Tags {
        /// The name as asked.
        name: String,
        /// Its tags, sorted.
        tags: Vec<String>,
    },
}

/// Whether `digest` is `sha256:` and 64 lower-case hex digits (nothing else reaches
/// the file system).
pub fn valid_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// A repository name as the distribution spec has it: components of lower-case
/// letters and digits separated by `.`, `_`, `__` or `-`s, joined by `/`; at most 255
/// characters.
pub fn valid_name(name: &str) -> bool {
    name.len() <= 255
        && !name.is_empty()
        && name.split('/').all(|c| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && c.starts_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
                && c.ends_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
        })
}

fn valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
}

/// A registry host as `ns` carries it: `host[:port]`, letters, digits, `.-`.
fn valid_ns(ns: &str) -> bool {
    let (host, port) = ns.split_once(':').unwrap_or((ns, "0"));
    !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-".contains(&b))
        && port.parse::<u16>().is_ok()
}

/// Parses the path after `/v2` (`/`, `/<name>/manifests/<ref>`, ...).
pub fn parse(path: &str) -> Result<Request, RegistryError> {
    let rest = path.trim_start_matches('/');
    if rest.is_empty() {
        return Ok(Request::Base);
    }
    let parts: Vec<&str> = rest.split('/').collect();
    if parts.len() >= 3 && parts[parts.len() - 2] == "tags" && parts[parts.len() - 1] == "list" {
        let name = parts[..parts.len() - 2].join("/");
        return if valid_name(&name) {
            Ok(Request::Tags { name })
        } else {
            Err(err(
                400,
                "NAME_INVALID",
                format!("invalid repository name `{name}`"),
            ))
        };
    }
    if parts.len() < 3 {
        return Err(err(
            404,
            "NAME_UNKNOWN",
            format!("no such endpoint: /v2/{rest}"),
        ));
    }
    let (last, kind) = (parts[parts.len() - 1], parts[parts.len() - 2]);
    let name = parts[..parts.len() - 2].join("/");
    if kind != "manifests" && kind != "blobs" {
        return Err(err(
            404,
            "NAME_UNKNOWN",
            format!("no such endpoint: /v2/{rest}"),
        ));
    }
    if !valid_name(&name) {
        return Err(err(
            400,
            "NAME_INVALID",
            format!("invalid repository name `{name}`"),
        ));
    }
    if kind == "blobs" {
        if !valid_digest(last) {
            return Err(err(
                400,
                "DIGEST_INVALID",
                format!("invalid digest `{last}` (sha256:<64 hex> only)"),
            ));
        }
        return Ok(Request::Blob {
            name,
            digest: last.to_string(),
        });
    }
    if last.contains(':') {
        if !valid_digest(last) {
            return Err(err(
                400,
                "DIGEST_INVALID",
                format!("invalid digest `{last}` (sha256:<64 hex> only)"),
            ));
        }
    } else if !valid_tag(last) {
        return Err(err(
            400,
            "MANIFEST_INVALID",
            format!("invalid tag `{last}`"),
        ));
    }
    Ok(Request::Manifest {
        name,
        reference: last.to_string(),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Desc {
    #[serde(default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Index {
    #[serde(default)]
    manifests: Vec<Desc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Object {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Vec<Desc>,
}

/// One image of the layout: registry, repository (Docker Hub's `library/` kept as
/// written and also matched without), tag or digest, and its top descriptor.
struct Entry {
    registry: String,
    repository: String,
    reference: String,
    media_type: String,
    digest: String,
}

fn entries(layout: &Path) -> Result<Vec<Entry>, RegistryError> {
    let path = layout.join("index.json");
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(err(
                500,
                "UNKNOWN",
                format!("reading the image layout: {e}"),
            ));
        }
    };
    let index: Index = serde_json::from_slice(&bytes).map_err(|e| {
        err(
            500,
            "UNKNOWN",
            format!("the image layout's index.json: {e}"),
        )
    })?;
    Ok(index
        .manifests
        .into_iter()
        .filter(|d| valid_digest(&d.digest))
        .filter_map(|d| {
            let full = d.annotations.get(REF_NAME)?.clone();
            let (name, reference) = match full.split_once('@') {
                Some((n, dg)) => (n.to_string(), dg.to_string()),
                None => {
                    let slash = full.rfind('/')?;
                    let colon = full[slash..].rfind(':')? + slash;
                    (full[..colon].to_string(), full[colon + 1..].to_string())
                }
            };
            let (registry, repository) = name.split_once('/')?;
            Some(Entry {
                registry: registry.to_string(),
                repository: repository.to_string(),
                reference,
                media_type: d.media_type,
                digest: d.digest,
            })
        })
        .collect())
}

/// Whether `e` is the repository `name` (from `ns` when given).
fn matches(e: &Entry, name: &str, ns: Option<&str>) -> bool {
    let same_repo = |repo: &str| {
        e.repository == repo
            || (e.registry == "docker.io"
                && (e.repository.strip_prefix("library/") == Some(repo)
                    || repo.strip_prefix("library/") == Some(e.repository.as_str())))
    };
    match ns {
        Some(ns) => e.registry == ns && same_repo(name),
        None => {
            same_repo(name)
                || name
                    .split_once('/')
                    .is_some_and(|(r, repo)| r == e.registry && same_repo(repo))
        }
    }
}

/// The entries of `name`, all from one registry (ambiguity without `ns` is an error).
fn of_name<'a>(
    all: &'a [Entry],
    name: &str,
    ns: Option<&str>,
) -> Result<Vec<&'a Entry>, RegistryError> {
    let found: Vec<&Entry> = all.iter().filter(|e| matches(e, name, ns)).collect();
    if found.is_empty() {
        return Err(err(
            404,
            "NAME_UNKNOWN",
            format!(
                "repository `{name}` is not mirrored{}",
                ns.map(|n| format!(" from {n}")).unwrap_or_default()
            ),
        ));
    }
    let mut registries: Vec<&str> = found.iter().map(|e| e.registry.as_str()).collect();
    registries.sort_unstable();
    registries.dedup();
    if ns.is_none() && registries.len() > 1 {
        return Err(err(
            404,
            "NAME_UNKNOWN",
            format!(
                "repository `{name}` is mirrored from several registries ({}): ask with ?ns=<registry> or name it <registry>/{name}",
                registries.join(", ")
            ),
        ));
    }
    Ok(found)
}

fn read_bounded(path: &Path) -> Option<Vec<u8>> {
    let f = std::fs::File::open(path).ok()?;
    let mut v = Vec::new();
    f.take(MAX_MANIFEST + 1).read_to_end(&mut v).ok()?;
    (v.len() as u64 <= MAX_MANIFEST).then_some(v)
}

fn blob_file(layout: &Path, digest: &str) -> PathBuf {
    layout.join("blobs/sha256").join(&digest[7..])
}

/// Resolves `req` against the layout at `layout`, `ns` being containerd's `?ns=`.
pub fn lookup(layout: &Path, req: &Request, ns: Option<&str>) -> Result<Found, RegistryError> {
    let ns = match ns {
        Some(n) if !valid_ns(n) => {
            return Err(err(400, "NAME_INVALID", format!("invalid ns `{n}`")));
        }
        other => other,
    };
    match req {
        Request::Base => Ok(Found::Base),
        Request::Tags { name } => {
            let all = entries(layout)?;
            let mut tags: Vec<String> = of_name(&all, name, ns)?
                .iter()
                .filter(|e| !e.reference.contains(':'))
                .map(|e| e.reference.clone())
                .collect();
            tags.sort();
            tags.dedup();
            Ok(Found::Tags {
                name: name.clone(),
                tags,
            })
        }
        Request::Manifest { name, reference } => {
            let all = entries(layout)?;
            let mine = of_name(&all, name, ns)?;
            let unknown = || {
                err(
                    404,
                    "MANIFEST_UNKNOWN",
                    format!("manifest `{reference}` of `{name}` is not mirrored"),
                )
            };
            let (digest, media_type) = if valid_digest(reference) {
                let mut hit = None;
                for e in &mine {
                    if &e.digest == reference {
                        hit = Some((e.digest.clone(), e.media_type.clone()));
                        break;
                    }
                    // An index's platform manifests (the one kept is on disk).
                    let Some(bytes) = read_bounded(&blob_file(layout, &e.digest)) else {
                        continue;
                    };
                    let Ok(obj) = serde_json::from_slice::<Object>(&bytes) else {
                        continue;
                    };
                    if let Some(m) = obj.manifests.iter().find(|m| &m.digest == reference) {
                        hit = Some((m.digest.clone(), m.media_type.clone()));
                        break;
                    }
                }
                hit.ok_or_else(unknown)?
            } else {
                let mut tagged: Vec<&&Entry> =
                    mine.iter().filter(|e| &e.reference == reference).collect();
                tagged.sort_by(|a, b| a.registry.cmp(&b.registry));
                let e = tagged.first().ok_or_else(unknown)?;
                (e.digest.clone(), e.media_type.clone())
            };
            let path = blob_file(layout, &digest);
            if !path.is_file() {
                return Err(unknown());
            }
            let media_type = if media_type.is_empty() {
                read_bounded(&path)
                    .and_then(|b| serde_json::from_slice::<Object>(&b).ok())
                    .and_then(|o| o.media_type)
                    .unwrap_or_else(|| "application/vnd.oci.image.manifest.v1+json".into())
            } else {
                media_type
            };
            Ok(Found::Manifest {
                path,
                media_type,
                digest,
            })
        }
        Request::Blob { name, digest } => {
            let all = entries(layout)?;
            of_name(&all, name, ns)?;
            if !blob_file(layout, digest).is_file() {
                return Err(err(
                    404,
                    "BLOB_UNKNOWN",
                    format!("blob {digest} of `{name}` is not mirrored"),
                ));
            }
            Ok(Found::Blob {
                rel: format!("blobs/sha256/{}", &digest[7..]),
                digest: digest.clone(),
            })
        }
    }
}

/// The JSON error response.
pub fn error_response(e: &RegistryError) -> Response<Body> {
    let body =
        serde_json::json!({"errors": [{"code": e.code, "message": e.message, "detail": null}]});
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    r.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static(API_VERSION),
    );
    r
}

/// Answers `/v2/...` from the layout at `layout` (`None`: no local mirror, so
/// nothing is mirrored).
pub async fn route(
    layout: Option<PathBuf>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        return error_response(&err(405, "UNSUPPORTED", "this registry is read-only"));
    }
    let path = uri.path().strip_prefix("/v2").unwrap_or("");
    let req = match parse(path) {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    let Some(layout) = layout else {
        return error_response(&err(
            404,
            "NAME_UNKNOWN",
            "no image is mirrored (no local asset mirror)",
        ));
    };
    let ns = crate::machine::query_value(uri, "ns");
    let found = match lookup(&layout, &req, ns.as_deref()) {
        Ok(f) => f,
        Err(e) => return error_response(&e),
    };
    let mut resp = match found {
        Found::Base => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "{}",
        )
            .into_response(),
        Found::Tags { name, tags } => {
            let body = serde_json::json!({"name": name, "tags": tags});
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response()
        }
        Found::Manifest {
            path,
            media_type,
            digest,
        } => {
            let Some(bytes) = read_bounded(&path) else {
                return error_response(&err(
                    500,
                    "UNKNOWN",
                    format!("cannot read manifest {digest}"),
                ));
            };
            let mut r = Response::new(Body::from(bytes.clone()));
            let h = r.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&media_type) {
                h.insert(header::CONTENT_TYPE, v);
            }
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            if let Ok(v) = HeaderValue::from_str(&digest) {
                h.insert("docker-content-digest", v.clone());
                if let Ok(e) = HeaderValue::from_str(&format!("\"{digest}\"")) {
                    h.insert(header::ETAG, e);
                }
            }
            r
        }
        Found::Blob { rel, digest } => {
            let mut r = crate::files::serve_under(&layout, &rel, headers).await;
            if r.status().is_success() {
                let h = r.headers_mut();
                h.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                );
                if let Ok(v) = HeaderValue::from_str(&digest) {
                    h.insert("docker-content-digest", v);
                }
            }
            r
        }
    };
    resp.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static(API_VERSION),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn paths_parse_strictly() {
        assert_eq!(parse("/"), Ok(Request::Base));
        assert_eq!(
            parse("/coredns/coredns/manifests/v1.11.3"),
            Ok(Request::Manifest {
                name: "coredns/coredns".into(),
                reference: "v1.11.3".into()
            })
        );
        assert_eq!(
            parse(&format!("/pause/blobs/{}", d('a'))),
            Ok(Request::Blob {
                name: "pause".into(),
                digest: d('a')
            })
        );
        assert_eq!(
            parse("/pause/blobs/sha256:zz").map_err(|e| e.code),
            Err("DIGEST_INVALID")
        );
        assert!(parse("/pause/blobs/sha256:../../x").is_err());
        assert!(parse("/pause/blobs/sha256%3A..%2F..%2Fx").is_err());
        assert_eq!(
            parse("/pause/manifests/sha256:abc").map_err(|e| e.code),
            Err("DIGEST_INVALID")
        );
        assert_eq!(
            parse("/../etc/manifests/x").map_err(|e| e.code),
            Err("NAME_INVALID")
        );
        assert_eq!(
            parse("/Pause/manifests/x").map_err(|e| e.code),
            Err("NAME_INVALID")
        );
        assert_eq!(
            parse("/pause/uploads/x").map_err(|e| e.code),
            Err("NAME_UNKNOWN")
        );
        assert_eq!(
            parse("/a/tags/list"),
            Ok(Request::Tags { name: "a".into() })
        );
    }

    fn layout() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("slipway-registry-{}", std::process::id()));
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap_or_else(|e| panic!("{e}"));
        let child = d('c');
        let index = serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": child, "size": 2,
                           "platform": {"os": "linux", "architecture": "amd64"}}]
        });
        std::fs::write(blobs.join("a".repeat(64)), index.to_string())
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(blobs.join("b".repeat(64)), "{}").unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(blobs.join("c".repeat(64)), "{}").unwrap_or_else(|e| panic!("{e}"));
        let top = serde_json::json!({"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": d('a'), "size": 1,
             "annotations": {REF_NAME: "registry.k8s.io/pause:3.10"}},
            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": d('b'), "size": 2,
             "annotations": {REF_NAME: "quay.io/x/pause:3.10"}},
            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": d('b'), "size": 2,
             "annotations": {REF_NAME: "docker.io/busybox:1.36"}}
        ]});
        std::fs::write(dir.join("index.json"), top.to_string()).unwrap_or_else(|e| panic!("{e}"));
        dir
    }

    #[test]
    fn lookups_use_ns_and_refuse_ambiguity() {
        let l = layout();
        let m = |name: &str, r: &str| Request::Manifest {
            name: name.into(),
            reference: r.into(),
        };
        match lookup(&l, &m("pause", "3.10"), Some("registry.k8s.io")) {
            Ok(Found::Manifest {
                digest, media_type, ..
            }) => {
                assert_eq!(digest, d('a'));
                assert_eq!(media_type, "application/vnd.oci.image.index.v1+json");
            }
            other => panic!("{other:?}"),
        }
        // The platform manifest of the index, by digest.
        assert!(matches!(
            lookup(&l, &m("pause", &d('c')), Some("registry.k8s.io")),
            Ok(Found::Manifest { .. })
        ));
        // Not held under another name.
        assert_eq!(
            lookup(&l, &m("x/pause", &d('c')), Some("quay.io")).map_err(|e| e.code),
            Err("MANIFEST_UNKNOWN")
        );
        assert_eq!(
            lookup(&l, &m("pause", "3.10"), Some("quay.io")).map_err(|e| e.code),
            Err("NAME_UNKNOWN")
        );
        assert!(matches!(
            lookup(&l, &m("registry.k8s.io/pause", "3.10"), None),
            Ok(Found::Manifest { .. })
        ));
        assert!(matches!(
            lookup(&l, &m("pause", "3.10"), None),
            Ok(Found::Manifest { .. })
        ));
        assert!(matches!(
            lookup(&l, &m("library/busybox", "1.36"), Some("docker.io")),
            Ok(Found::Manifest { .. })
        ));
        assert_eq!(
            lookup(&l, &m("pause", "3.9"), None).map_err(|e| e.code),
            Err("MANIFEST_UNKNOWN")
        );
        assert_eq!(
            lookup(&l, &m("pause", "3.10"), Some("../x")).map_err(|e| e.code),
            Err("NAME_INVALID")
        );
        let b = Request::Blob {
            name: "pause".into(),
            digest: d('e'),
        };
        assert_eq!(
            lookup(&l, &b, None).map_err(|e| e.code),
            Err("BLOB_UNKNOWN")
        );
        let _ = std::fs::remove_dir_all(&l);
    }
}
