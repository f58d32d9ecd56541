//! Container images: pulled by digest from their registries (or from
//! `kubernetes.image_sources`) into an OCI image layout under `<assets>/oci`, which
//! `slipway serve` answers the registry protocol from.
//!
//! The layout (`oci-layout`, `index.json`, `blobs/sha256/<hex>`) keeps, per image:
//! - the object its tag resolved to, byte for byte — an image index (OCI index or
//!   Docker manifest list) or a single manifest — so the digest a node sees for the tag
//!   is upstream's;
//! - for an index, only the manifest of the cluster's platform (`linux/<os.arch>`) and
//!   its blobs: the index still lists the other platforms, whose manifests slipway does
//!   not hold (asking for one is `MANIFEST_UNKNOWN`). containerd pulling by tag takes
//!   the index, picks its platform's manifest by digest, and finds everything;
//! - in `index.json`, one descriptor per reference, annotated with
//!   `org.opencontainers.image.ref.name` = the full reference
//!   (`registry.k8s.io/pause:3.10`: two registries' `pause` never collide) and
//!   [`SOURCE_ANNOTATION`] = where it was pulled from.
//!
//! A tag is resolved once: a reference already in `index.json` whose blobs are all
//! there and hash to their digests is not asked for again (a re-run makes no request).
//! Every blob is hashed while it downloads into `<blob>.part`, checked against its
//! descriptor's size and digest, and only then renamed into place; a mismatch deletes
//! the part and names the blob, the expected and the actual digest.
//!
//! The registry protocol's pull side is written here rather than taken from
//! `oci-client`: that crate is async (tokio + reqwest) while the mirror is blocking
//! `ureq` like the rest of `slipway mirror`, and what a pull needs is small — GET
//! with `Accept`, the anonymous bearer-token challenge (`WWW-Authenticate: Bearer
//! realm=..,service=..,scope=..`), redirects followed by hand so the token is only sent
//! to the host that asked for it. The JSON types are the few fields used, here.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use slipway_cluster::{Arch, AssetSource, Cluster};

use crate::fetch::{Failure, SetupError, Summary, human};

/// The layout's directory under the asset mirror.
pub const LAYOUT_DIR: &str = "oci";
/// The largest manifest or index read (4 MiB, as registries commonly cap them).
pub const MAX_MANIFEST: u64 = 4 << 20;
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list (schema 2).
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// The annotation naming a reference in `index.json`.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
/// The annotation recording where a reference was pulled from.
pub const SOURCE_ANNOTATION: &str = "io.slipway.image.source";

/// A content descriptor (the fields slipway uses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The media type of what it points at.
    #[serde(default)]
    pub media_type: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// For an index's entries: the platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An index entry's platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// `amd64`, `arm64`, ...
    pub architecture: String,
    /// `linux`, ...
    pub os: String,
    /// `v8`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// A manifest or an index, read loosely: which one it is follows from its media type
/// (or, without one, from which of `manifests` / `layers` it has).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Object {
    /// Its `mediaType` field, when it has one.
    #[serde(default)]
    pub media_type: Option<String>,
    /// A manifest's config.
    #[serde(default)]
    pub config: Option<Descriptor>,
    /// A manifest's layers.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// An index's manifests.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

impl Object {
    /// Whether this is an index (OCI index or Docker manifest list).
    pub fn is_index(&self, content_type: &str) -> bool {
        let t = self.media_type.as_deref().unwrap_or(content_type);
        t == OCI_INDEX || t == DOCKER_LIST || (t.is_empty() && !self.manifests.is_empty())
    }
}

/// The layout's `index.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LayoutIndex {
    /// 2.
    pub schema_version: u32,
    /// [`OCI_INDEX`].
    #[serde(default)]
    pub media_type: String,
    /// One per reference.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

impl Default for LayoutIndex {
    fn default() -> Self {
        LayoutIndex {
            schema_version: 2,
            media_type: OCI_INDEX.into(),
            manifests: Vec::new(),
        }
    }
}

impl LayoutIndex {
    /// Reads `<layout>/index.json` (empty when there is none).
    pub fn load(layout: &Path) -> Result<LayoutIndex, String> {
        let path = layout.join("index.json");
        match fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(LayoutIndex::default()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// The descriptor recorded for `reference`.
    pub fn find(&self, reference: &str) -> Option<&Descriptor> {
        self.manifests
            .iter()
            .find(|d| ref_name(d) == Some(reference))
    }
}

/// The reference a layout descriptor is annotated with.
pub fn ref_name(d: &Descriptor) -> Option<&str> {
    d.annotations
        .as_ref()?
        .get(REF_NAME_ANNOTATION)
        .map(String::as_str)
}

/// Whether `digest` is `sha256:` and 64 lower-case hex digits.
pub fn valid_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Where the blob `digest` lives in `layout` (`None` for a malformed digest).
pub fn blob_path(layout: &Path, digest: &str) -> Option<PathBuf> {
    valid_digest(digest).then(|| layout.join("blobs/sha256").join(&digest[7..]))
}

/// `sha256:<hex>` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A full image reference, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// As written: `registry.k8s.io/pause:3.10` (the layout's ref name).
    pub full: String,
    /// `registry.k8s.io`.
    pub registry: String,
    /// `pause` (Docker Hub's one-component names get `library/`).
    pub repository: String,
    /// The tag, or `sha256:<hex>`.
    pub reference: String,
}

impl ImageRef {
    /// Splits a full reference (`host/repo:tag` or `host/repo@sha256:..`).
    pub fn parse(full: &str) -> Result<ImageRef, String> {
        slipway_cluster::complete::check_image_reference(full)
            .map_err(|why| format!("image `{full}` {why}"))?;
        let (name, reference) = slipway_cluster::complete::split_reference(full)
            .ok_or_else(|| format!("image `{full}` has no tag or digest"))?;
        let (registry, repo) = name
            .split_once('/')
            .ok_or_else(|| format!("image `{full}` names no registry"))?;
        let repository = if registry == "docker.io" && !repo.contains('/') {
            format!("library/{repo}")
        } else {
            repo.to_string()
        };
        Ok(ImageRef {
            full: full.to_string(),
            registry: registry.to_string(),
            repository,
            reference: reference.to_string(),
        })
    }

    /// The base URL the image is pulled from: `kubernetes.image_sources` for its
    /// registry, else the registry over HTTPS (Docker Hub's API host for docker.io).
    pub fn source(&self, cluster: &Cluster) -> String {
        match cluster.kubernetes.images.sources.get(&self.registry) {
            Some(s) => s.trim_end_matches('/').to_string(),
            None if self.registry == "docker.io" => "https://registry-1.docker.io".into(),
            None => format!("https://{}", self.registry),
        }
    }

    /// `<origin>/v2/<prefix/><repository>/<kind>/<reference>` for `source`.
    fn url(&self, source: &str, kind: &str, reference: &str) -> String {
        let (origin, prefix) = split_source(source);
        let prefix = prefix.trim_matches('/');
        let repo = if prefix.is_empty() {
            self.repository.clone()
        } else {
            format!("{prefix}/{}", self.repository)
        };
        format!("{origin}/v2/{repo}/{kind}/{reference}")
    }

    /// The repository as the source knows it (with the source's path prefix).
    fn source_repository(&self, source: &str) -> String {
        let prefix = split_source(source).1.trim_matches('/').to_string();
        if prefix.is_empty() {
            self.repository.clone()
        } else {
            format!("{prefix}/{}", self.repository)
        }
    }
}

/// `http://h:p/prefix` → (`http://h:p`, `/prefix`).
fn split_source(source: &str) -> (&str, &str) {
    let after = source.find("://").map_or(0, |i| i + 3);
    match source[after..].find('/') {
        Some(i) => source.split_at(after + i),
        None => (source, ""),
    }
}

/// The layout directory of `cluster` (`<os.assets>/oci`), when the assets are local.
pub fn layout_dir(cluster: &Cluster) -> Option<PathBuf> {
    match &cluster.os.assets {
        AssetSource::Mirror(d) => Some(d.join(LAYOUT_DIR)),
        AssetSource::Remote(_) => None,
    }
}

/// Which images: all the cluster's, or the CNI's only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// Every image ([`slipway_render::images::cluster_images`]).
    All,
    /// The rendered CNI's ([`slipway_render::cni::images`]).
    Cni,
}

/// The references to mirror for `cluster`.
pub fn references(cluster: &Cluster, which: Which) -> Vec<String> {
    match which {
        Which::All => slipway_render::images::cluster_images(cluster),
        Which::Cni => slipway_render::cni::images(cluster),
    }
}

fn arch_name(arch: Arch) -> &'static str {
    match arch {
        Arch::Amd64 => "amd64",
        Arch::Arm64 => "arm64",
    }
}

/// How often a long blob download reports its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// A blocking registry client: anonymous bearer tokens, manual redirects.
pub struct Client {
    agent: ureq::Agent,
    /// Tokens by (host, scope).
    tokens: Mutex<HashMap<(String, String), String>>,
    /// Requests sent (token requests included).
    pub requests: AtomicU64,
}

const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

fn host_of(url: &str) -> &str {
    let after = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[after..];
    rest.split(['/', '?']).next().unwrap_or(rest)
}

/// The `key="value"` parameters of a `WWW-Authenticate: Bearer ...` challenge.
fn bearer_params(header: &str) -> Option<HashMap<String, String>> {
    let rest = header.trim();
    let (scheme, params) = rest.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut out = HashMap::new();
    let mut s = params.trim();
    while !s.is_empty() {
        let (k, v) = s.split_once('=')?;
        let k = k.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let v = v.trim_start();
        let (value, rest) = if let Some(v) = v.strip_prefix('"') {
            let end = v.find('"')?;
            (&v[..end], &v[end + 1..])
        } else {
            let end = v.find(',').unwrap_or(v.len());
            (&v[..end], &v[end..])
        };
        out.insert(k, value.to_string());
        s = rest.trim_start().trim_start_matches(',').trim_start();
    }
    Some(out)
}

fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A response: status, headers we use, and the body.
type Resp = ureq::http::Response<ureq::Body>;

fn header<'a>(r: &'a Resp, name: &str) -> Option<&'a str> {
    r.headers().get(name).and_then(|v| v.to_str().ok())
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

impl Client {
    /// A client with slipway's timeouts.
    pub fn new() -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .build()
            .new_agent();
        Client {
            agent,
            tokens: Mutex::new(HashMap::new()),
            requests: AtomicU64::new(0),
        }
    }

    /// GET `url` for `repository` (the scope of a token), following up to 10
    /// redirects and answering one bearer challenge per host. Returns the final
    /// response, whatever its status.
    /// `range_from`: ask for the bytes from there on (`Range`, kept across redirects).
    fn get(
        &self,
        url: &str,
        accept: Option<&str>,
        repository: &str,
        range_from: Option<u64>,
    ) -> Result<Resp, String> {
        let mut url = url.to_string();
        let scope = format!("repository:{repository}:pull");
        // One bearer challenge per host (a redirect may lead to another that asks).
        let mut challenged: Vec<String> = Vec::new();
        for _ in 0..10 {
            let host = host_of(&url).to_string();
            let token = self
                .tokens
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&(host.clone(), scope.clone()))
                .cloned();
            let mut req = self.agent.get(&url);
            if let Some(a) = accept {
                req = req.header("Accept", a);
            }
            if let Some(t) = &token {
                req = req.header("Authorization", format!("Bearer {t}"));
            }
            if let Some(from) = range_from {
                req = req.header("Range", format!("bytes={from}-"));
            }
            self.requests.fetch_add(1, Ordering::Relaxed);
            let resp = req.call().map_err(|e| format!("{url}: {e}"))?;
            let status = resp.status().as_u16();
            if (300..400).contains(&status) {
                let loc = header(&resp, "location")
                    .ok_or_else(|| format!("{url}: HTTP {status} without a Location"))?;
                url = absolute(&url, loc);
                continue;
            }
            if status == 401 && !challenged.contains(&host) {
                challenged.push(host.clone());
                let challenge = header(&resp, "www-authenticate").unwrap_or("").to_string();
                let params = bearer_params(&challenge).ok_or_else(|| {
                    format!(
                        "{url}: HTTP 401 and no bearer challenge (`{challenge}`): slipway pulls anonymously only"
                    )
                })?;
                let t = self.token(&params, &scope)?;
                self.tokens
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert((host, scope.clone()), t);
                continue;
            }
            return Ok(resp);
        }
        Err(format!("{url}: too many redirects"))
    }

    /// An anonymous token from the challenge's realm.
    fn token(&self, params: &HashMap<String, String>, scope: &str) -> Result<String, String> {
        let realm = params
            .get("realm")
            .ok_or("a bearer challenge without a realm")?;
        if !(realm.starts_with("https://") || realm.starts_with("http://")) {
            return Err(format!("token realm `{realm}` is not an http(s) URL"));
        }
        let scope = params.get("scope").map_or(scope, String::as_str);
        let mut url = format!("{realm}?scope={}", query_escape(scope));
        if let Some(s) = params.get("service") {
            url.push_str(&format!("&service={}", query_escape(s)));
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        let resp = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| format!("token {url}: {e}"))?;
        if resp.status().as_u16() != 200 {
            return Err(format!("token {url}: HTTP {}", resp.status().as_u16()));
        }
        let body = resp
            .into_body()
            .into_with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|e| format!("token {url}: {e}"))?;
        #[derive(Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let t: Token =
            serde_json::from_slice(&body).map_err(|e| format!("token {url}: not JSON: {e}"))?;
        t.token
            .or(t.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| format!("token {url}: no token in the answer"))
    }

    /// A manifest or index by tag or digest: (bytes, content type, digest). The digest
    /// is checked against a digest reference and the registry's
    /// `Docker-Content-Digest`.
    pub fn manifest(
        &self,
        image: &ImageRef,
        source: &str,
        reference: &str,
    ) -> Result<(Vec<u8>, String, String), String> {
        let url = image.url(source, "manifests", reference);
        let resp = self.get(
            &url,
            Some(ACCEPT_MANIFESTS),
            &image.source_repository(source),
            None,
        )?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(format!("{url}: HTTP {status}"));
        }
        let ctype = header(&resp, "content-type")
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let announced = header(&resp, "docker-content-digest").map(str::to_string);
        let body = resp
            .into_body()
            .into_with_config()
            .limit(MAX_MANIFEST)
            .read_to_vec()
            .map_err(|e| {
                format!(
                    "{url}: {e} (manifests are read up to {})",
                    human(MAX_MANIFEST)
                )
            })?;
        let digest = digest_of(&body);
        if valid_digest(reference) && reference != digest {
            return Err(format!(
                "{url}: manifest digest mismatch: expected {reference}, got {digest}"
            ));
        }
        if let Some(a) = announced
            && valid_digest(&a)
            && a != digest
        {
            return Err(format!(
                "{url}: the registry announced {a} but the manifest hashes to {digest}"
            ));
        }
        Ok((body, ctype, digest))
    }

    /// Downloads the blob `d` into `dest` (through `<dest>.part`, resumed when a part
    /// is there), verifying its size and digest. Returns the bytes downloaded.
    /// `progress` is called every few seconds with the bytes done so far.
    pub fn blob(
        &self,
        image: &ImageRef,
        source: &str,
        d: &Descriptor,
        dest: &Path,
        progress: &dyn Fn(u64),
    ) -> Result<u64, String> {
        let url = image.url(source, "blobs", &d.digest);
        let part = dest.with_extension("part");
        let mut hasher = Sha256::new();
        let mut have = 0u64;
        if let Ok(mut f) = File::open(&part) {
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = f
                    .read(&mut buf)
                    .map_err(|e| format!("{}: {e}", part.display()))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                have += n as u64;
            }
            if have > d.size {
                have = 0;
                hasher = Sha256::new();
            }
        }
        let repo = image.source_repository(source);
        if have == d.size && d.size > 0 {
            // A part downloaded whole before a crash: verify and land it, no request.
            return land(&part, dest, &d.digest, hasher, have, 0, d.size, &url);
        }
        let mut resp = None;
        if have > 0 && have < d.size {
            let r = self.get(&url, None, &repo, Some(have))?;
            if r.status().as_u16() == 206 {
                resp = Some(r);
            }
        }
        let (resp, mut file) = match resp {
            Some(r) => (
                r,
                OpenOptions::new()
                    .append(true)
                    .open(&part)
                    .map_err(|e| format!("{}: {e}", part.display()))?,
            ),
            None => {
                have = 0;
                hasher = Sha256::new();
                let r = if d.size == 0 {
                    None
                } else {
                    Some(self.get(&url, None, &repo, None)?)
                };
                if let Some(r) = &r
                    && r.status().as_u16() != 200
                {
                    return Err(format!("{url}: HTTP {}", r.status().as_u16()));
                }
                let f = File::create(&part).map_err(|e| format!("{}: {e}", part.display()))?;
                match r {
                    Some(r) => (r, f),
                    None => {
                        return land(&part, dest, &d.digest, hasher, 0, 0, d.size, &url);
                    }
                }
            }
        };
        let want = d.size - have;
        let mut reader = resp.into_body().into_with_config().limit(want).reader();
        let mut buf = vec![0u8; 1 << 16];
        let mut got = 0u64;
        let mut last = std::time::Instant::now();
        loop {
            if last.elapsed() >= PROGRESS_EVERY {
                progress(have + got);
                last = std::time::Instant::now();
            }
            let n = match reader.read(&mut buf) {
                Ok(n) => n,
                Err(e) => {
                    let _ = file.sync_all();
                    return Err(format!(
                        "{url}: {e} after {} (the part is kept; a re-run resumes)",
                        human(got)
                    ));
                }
            };
            if n == 0 {
                break;
            }
            file.write_all(&buf[..n])
                .map_err(|e| format!("{}: {e}", part.display()))?;
            hasher.update(&buf[..n]);
            got += n as u64;
        }
        file.sync_all()
            .map_err(|e| format!("{}: {e}", part.display()))?;
        drop(file);
        land(&part, dest, &d.digest, hasher, have, got, d.size, &url)
    }
}

/// Checks the part's size and digest, then renames it over `dest`; a mismatch
/// deletes the part.
#[allow(clippy::too_many_arguments)]
fn land(
    part: &Path,
    dest: &Path,
    digest: &str,
    hasher: Sha256,
    had: u64,
    got: u64,
    size: u64,
    url: &str,
) -> Result<u64, String> {
    let total = had + got;
    let actual = format!("sha256:{}", hex(&hasher.finalize()));
    if total != size {
        if total > size {
            let _ = fs::remove_file(part);
        }
        return Err(format!(
            "blob {digest} from {url}: {total} bytes, the manifest says {size}{}",
            if total < size {
                " (the part is kept; a re-run resumes)"
            } else {
                ""
            }
        ));
    }
    if actual != digest {
        let _ = fs::remove_file(part);
        return Err(format!(
            "blob {digest} from {url}: digest mismatch: expected {digest}, got {actual} (deleted)"
        ));
    }
    fs::rename(part, dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    if let Some(dir) = dest.parent()
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(got)
}

fn absolute(base: &str, loc: &str) -> String {
    if loc.starts_with("http://") || loc.starts_with("https://") {
        return loc.to_string();
    }
    let after = base.find("://").map_or(0, |i| i + 3);
    let origin_end = base[after..].find('/').map_or(base.len(), |i| after + i);
    if loc.starts_with('/') {
        format!("{}{loc}", &base[..origin_end])
    } else {
        let dir_end = base.rfind('/').map_or(base.len(), |i| i + 1);
        format!("{}{loc}", &base[..dir_end])
    }
}

/// Whether the blob `d` is in `layout` with its size and digest (hashed again).
fn blob_ok(layout: &Path, d: &Descriptor) -> bool {
    let Some(p) = blob_path(layout, &d.digest) else {
        return false;
    };
    match fs::metadata(&p) {
        Ok(m) if m.len() == d.size => {}
        _ => return false,
    }
    let Ok(mut f) = File::open(&p) else {
        return false;
    };
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(_) => return false,
        }
    }
    format!("sha256:{}", hex(&h.finalize())) == d.digest
}

/// Reads a manifest blob of `layout` (bounded).
fn read_blob(layout: &Path, digest: &str) -> Option<Vec<u8>> {
    let p = blob_path(layout, digest)?;
    let f = File::open(p).ok()?;
    let mut v = Vec::new();
    f.take(MAX_MANIFEST + 1).read_to_end(&mut v).ok()?;
    (v.len() as u64 <= MAX_MANIFEST && digest_of(&v) == digest).then_some(v)
}

/// The platform manifest of an index for `arch` (linux).
fn pick_platform<'a>(index: &'a Object, arch: &str) -> Option<&'a Descriptor> {
    index.manifests.iter().find(|m| {
        m.platform
            .as_ref()
            .is_some_and(|p| p.os == "linux" && p.architecture == arch)
            && (m.media_type.is_empty()
                || m.media_type == OCI_MANIFEST
                || m.media_type == DOCKER_MANIFEST)
    })
}

/// The blobs an image needs, from the layout alone: the top object, the platform
/// manifest (for an index), config and layers. `None` when a manifest is missing or
/// unreadable.
fn needed_local(layout: &Path, top: &Descriptor, arch: &str) -> Option<Vec<Descriptor>> {
    let bytes = read_blob(layout, &top.digest)?;
    let obj: Object = serde_json::from_slice(&bytes).ok()?;
    let mut out = vec![top.clone()];
    let manifest = if obj.is_index(&top.media_type) {
        let m = pick_platform(&obj, arch)?.clone();
        let b = read_blob(layout, &m.digest)?;
        out.push(m);
        serde_json::from_slice::<Object>(&b).ok()?
    } else {
        obj
    };
    out.extend(manifest.config);
    out.extend(manifest.layers);
    Some(out)
}

/// One image's state in the layout: complete (every blob verified), or why not.
pub fn image_complete(layout: &Path, index: &LayoutIndex, reference: &str, arch: Arch) -> bool {
    index
        .find(reference)
        .and_then(|top| needed_local(layout, top, arch_name(arch)))
        .is_some_and(|blobs| blobs.iter().all(|b| blob_ok(layout, b)))
}

/// Cheap presence check (no hashing): the reference is recorded and its blobs are
/// there with their sizes.
pub fn image_present(layout: &Path, index: &LayoutIndex, reference: &str, arch: Arch) -> bool {
    index
        .find(reference)
        .and_then(|top| needed_local(layout, top, arch_name(arch)))
        .is_some_and(|blobs| {
            blobs.iter().all(|b| {
                blob_path(layout, &b.digest)
                    .and_then(|p| fs::metadata(p).ok())
                    .is_some_and(|m| m.len() == b.size)
            })
        })
}

/// Writes `oci-layout` and `index.json` atomically.
fn save_index(layout: &Path, index: &LayoutIndex) -> Result<(), String> {
    let marker = layout.join("oci-layout");
    if !marker.exists() {
        write_atomic(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    }
    let mut bytes = serde_json::to_vec_pretty(index).map_err(|e| e.to_string())?;
    bytes.push(b'\n');
    write_atomic(&layout.join("index.json"), &bytes)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let part = path.with_extension("part");
    let r = (|| {
        let mut f = File::create(&part)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&part, path)?;
        if let Some(d) = path.parent() {
            File::open(d)?.sync_all()?;
        }
        Ok::<(), std::io::Error>(())
    })();
    r.map_err(|e| format!("{}: {e}", path.display()))
}

/// What the pull of one image did.
#[derive(Debug, Default)]
struct Pulled {
    blobs_fetched: Vec<PathBuf>,
    blobs_present: Vec<PathBuf>,
    bytes: u64,
}

/// Stores a manifest's bytes as a blob (verified: its digest was computed from them).
fn store_manifest(layout: &Path, digest: &str, bytes: &[u8]) -> Result<PathBuf, String> {
    let p = blob_path(layout, digest).ok_or_else(|| format!("malformed digest {digest}"))?;
    if !blob_ok(
        layout,
        &Descriptor {
            media_type: String::new(),
            digest: digest.into(),
            size: bytes.len() as u64,
            platform: None,
            annotations: None,
        },
    ) {
        write_atomic(&p, bytes)?;
    }
    Ok(p)
}

/// What the workers of one run share.
struct Shared<'a> {
    client: Client,
    cluster: &'a Cluster,
    layout: PathBuf,
    out: Mutex<&'a mut (dyn Write + Send)>,
    /// Blobs being downloaded (two images sharing a layer never write one part).
    inflight: Mutex<std::collections::HashSet<String>>,
    landed: std::sync::Condvar,
}

impl Shared<'_> {
    fn say(&self, line: &str) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    /// Waits until no other worker downloads `digest`, then claims it.
    fn claim(&self, digest: &str) {
        let mut set = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
        while set.contains(digest) {
            set = self.landed.wait(set).unwrap_or_else(|e| e.into_inner());
        }
        set.insert(digest.to_string());
    }

    /// [`store_manifest`], claimed (images sharing a manifest write it once).
    fn store_manifest(&self, digest: &str, bytes: &[u8]) -> Result<PathBuf, String> {
        self.claim(digest);
        let r = store_manifest(&self.layout, digest, bytes);
        self.release(digest);
        r
    }

    fn release(&self, digest: &str) {
        self.inflight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(digest);
        self.landed.notify_all();
    }
}

fn pull_one(sh: &Shared, image: &ImageRef) -> Result<(Descriptor, Pulled), String> {
    let (client, cluster, layout) = (&sh.client, sh.cluster, sh.layout.as_path());
    let source = image.source(cluster);
    let arch = arch_name(cluster.os.arch);
    let (top_bytes, ctype, top_digest) = client.manifest(image, &source, &image.reference)?;
    let top: Object = serde_json::from_slice(&top_bytes)
        .map_err(|e| format!("{}: the manifest is not JSON: {e}", image.full))?;
    let top_type = top
        .media_type
        .clone()
        .filter(|t| !t.is_empty())
        .unwrap_or(ctype);
    if ![OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST].contains(&top_type.as_str()) {
        return Err(format!(
            "{}: unsupported manifest type `{top_type}` (OCI or Docker schema 2 only)",
            image.full
        ));
    }
    let mut pulled = Pulled::default();
    let manifest = if top.is_index(&top_type) {
        let m = pick_platform(&top, arch).ok_or_else(|| {
            format!(
                "{}: the index has no linux/{arch} manifest (platforms: {})",
                image.full,
                top.manifests
                    .iter()
                    .filter_map(|m| m
                        .platform
                        .as_ref()
                        .map(|p| format!("{}/{}", p.os, p.architecture)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        if m.size > MAX_MANIFEST {
            return Err(format!(
                "{}: manifest {} is too large",
                image.full, m.digest
            ));
        }
        let (bytes, _, digest) = client.manifest(image, &source, &m.digest)?;
        if bytes.len() as u64 != m.size {
            return Err(format!(
                "{}: manifest {}: {} bytes, the index says {}",
                image.full,
                m.digest,
                bytes.len(),
                m.size
            ));
        }
        pulled
            .blobs_fetched
            .push(sh.store_manifest(&digest, &bytes)?);
        serde_json::from_slice::<Object>(&bytes)
            .map_err(|e| format!("{}: manifest {digest} is not JSON: {e}", image.full))?
    } else {
        top.clone()
    };
    let config = manifest
        .config
        .clone()
        .ok_or_else(|| format!("{}: the manifest has no config", image.full))?;
    for d in std::iter::once(&config).chain(manifest.layers.iter()) {
        let path = blob_path(layout, &d.digest)
            .ok_or_else(|| format!("{}: malformed blob digest `{}`", image.full, d.digest))?;
        sh.claim(&d.digest);
        if blob_ok(layout, d) {
            sh.release(&d.digest);
            pulled.blobs_present.push(path);
            continue;
        }
        let start = std::time::Instant::now();
        let progress = |done: u64| {
            let rate = done as f64 / start.elapsed().as_secs_f64().max(0.001);
            sh.say(&format!(
                "  {} {}: {} of {} ({}/s)",
                image.full,
                d.digest,
                human(done),
                human(d.size),
                human(rate as u64)
            ));
        };
        let r = client.blob(image, &source, d, &path, &progress);
        sh.release(&d.digest);
        let n = r?;
        sh.say(&format!(
            "  {} {} ({})",
            image.full,
            d.digest,
            human(d.size)
        ));
        pulled.bytes += n;
        pulled.blobs_fetched.push(path);
    }
    // The top object last: the image is recorded only once everything is there.
    pulled
        .blobs_fetched
        .push(sh.store_manifest(&top_digest, &top_bytes)?);
    let mut annotations = BTreeMap::new();
    annotations.insert(REF_NAME_ANNOTATION.to_string(), image.full.clone());
    annotations.insert(
        SOURCE_ANNOTATION.to_string(),
        image.url(&source, "manifests", &image.reference),
    );
    Ok((
        Descriptor {
            media_type: top_type,
            digest: top_digest,
            size: top_bytes.len() as u64,
            platform: None,
            annotations: Some(annotations),
        },
        pulled,
    ))
}

/// Pulls `cluster`'s images ([`references`]) into its layout, `parallel` images at
/// once. Images already complete are not asked for; progress lines go to `out`; an
/// image that fails is in the summary's failures (named by reference, with the blob
/// and digests). Returns the summary and the number of requests sent.
pub fn mirror(
    cluster: &Cluster,
    which: Which,
    parallel: usize,
    out: &mut (dyn Write + Send),
) -> Result<(Summary, u64), SetupError> {
    let layout = layout_dir(cluster).ok_or_else(|| {
        SetupError("os.assets is a URL: no local mirror to keep images in".into())
    })?;
    fs::create_dir_all(layout.join("blobs/sha256"))
        .map_err(|e| SetupError(format!("{}: {e}", layout.display())))?;
    let index = LayoutIndex::load(&layout).map_err(SetupError)?;
    let mut summary = Summary::default();
    let mut queue = std::collections::VecDeque::new();
    for r in references(cluster, which) {
        match ImageRef::parse(&r) {
            Ok(i) if image_complete(&layout, &index, &i.full, cluster.os.arch) => {
                let _ = writeln!(out, "image {}: verified, skipped", i.full);
                summary.up_to_date.push(PathBuf::from(&i.full));
            }
            Ok(i) => queue.push_back(i),
            Err(e) => summary.failures.push(Failure {
                file: PathBuf::from(&r),
                reason: e,
            }),
        }
    }
    let workers = parallel.max(1).min(queue.len().max(1));
    let sh = Shared {
        client: Client::new(),
        cluster,
        layout: layout.clone(),
        out: Mutex::new(out),
        inflight: Mutex::new(std::collections::HashSet::new()),
        landed: std::sync::Condvar::new(),
    };
    let queue = Mutex::new(queue);
    let index = Mutex::new(index);
    let summary_m = Mutex::new(summary);
    let fatal: Mutex<Option<String>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                    let Some(image) = next else { break };
                    sh.say(&format!(
                        "image {}: from {}",
                        image.full,
                        image.source(cluster)
                    ));
                    let r = pull_one(&sh, &image);
                    let mut summary = summary_m.lock().unwrap_or_else(|e| e.into_inner());
                    match r {
                        Ok((desc, pulled)) => {
                            sh.say(&format!(
                                "image {}: {} ({} blobs fetched, {}; {} already there)",
                                image.full,
                                desc.digest,
                                pulled.blobs_fetched.len(),
                                human(pulled.bytes),
                                pulled.blobs_present.len()
                            ));
                            // Recorded only now, every blob in place.
                            let mut index = index.lock().unwrap_or_else(|e| e.into_inner());
                            index.manifests.retain(|d| ref_name(d) != Some(&image.full));
                            index.manifests.push(desc);
                            index
                                .manifests
                                .sort_by(|a, b| ref_name(a).cmp(&ref_name(b)));
                            if let Err(e) = save_index(&sh.layout, &index) {
                                *fatal.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                            }
                            summary.bytes += pulled.bytes;
                            summary.fetched.push(PathBuf::from(&image.full));
                        }
                        Err(reason) => summary.failures.push(Failure {
                            file: PathBuf::from(&image.full),
                            reason,
                        }),
                    }
                }
            });
        }
    });
    if let Some(e) = fatal.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(SetupError(e));
    }
    let mut summary = summary_m.into_inner().unwrap_or_else(|e| e.into_inner());
    summary.fetched.sort();
    summary.up_to_date.sort();
    summary.failures.sort_by(|a, b| a.file.cmp(&b.file));
    Ok((summary, sh.client.requests.load(Ordering::Relaxed)))
}

/// A line of `--dry-run` for an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedImage {
    /// The reference.
    pub reference: String,
    /// Where it is pulled from (the manifest URL).
    pub url: String,
    /// Its size for the cluster's platform (manifests, config, layers), when known:
    /// from the layout, or by asking the source for the manifests (no blobs).
    pub size: Option<u64>,
    /// Already complete in the layout.
    pub up_to_date: bool,
}

/// `--dry-run`: each image, its source and size, without pulling a blob.
pub fn dry_run(cluster: &Cluster, which: Which) -> Result<Vec<PlannedImage>, SetupError> {
    let layout = layout_dir(cluster)
        .ok_or_else(|| SetupError("os.assets is a URL: no local mirror".into()))?;
    let index = LayoutIndex::load(&layout).unwrap_or_default();
    let arch = arch_name(cluster.os.arch);
    let client = Client::new();
    let mut out = Vec::new();
    for r in references(cluster, which) {
        let image = ImageRef::parse(&r).map_err(SetupError)?;
        let source = image.source(cluster);
        let url = image.url(&source, "manifests", &image.reference);
        let local = index
            .find(&image.full)
            .and_then(|top| needed_local(&layout, top, arch));
        let up_to_date = image_present(&layout, &index, &image.full, cluster.os.arch);
        let size = match local {
            Some(blobs) => Some(blobs.iter().map(|b| b.size).sum()),
            None => remote_size(&client, &image, &source, arch),
        };
        out.push(PlannedImage {
            reference: image.full,
            url,
            size,
            up_to_date,
        });
    }
    Ok(out)
}

fn remote_size(client: &Client, image: &ImageRef, source: &str, arch: &str) -> Option<u64> {
    let (bytes, ctype, _) = client.manifest(image, source, &image.reference).ok()?;
    let top: Object = serde_json::from_slice(&bytes).ok()?;
    let mut total = bytes.len() as u64;
    let manifest = if top.is_index(&ctype) {
        let m = pick_platform(&top, arch)?;
        let (b, _, _) = client.manifest(image, source, &m.digest).ok()?;
        total += b.len() as u64;
        serde_json::from_slice::<Object>(&b).ok()?
    } else {
        top
    };
    Some(
        total
            + manifest.config.map_or(0, |c| c.size)
            + manifest.layers.iter().map(|l| l.size).sum::<u64>(),
    )
}

/// The images `cluster`'s nodes will pull that the layout lacks (with
/// `kubernetes.serve_images`; nothing otherwise). A presence check: sizes, not
/// digests (`slipway mirror` re-verifies).
pub fn missing(cluster: &Cluster) -> Vec<String> {
    if !cluster.kubernetes.images.serve {
        return Vec::new();
    }
    let Some(layout) = layout_dir(cluster) else {
        return Vec::new();
    };
    let index = LayoutIndex::load(&layout).unwrap_or_default();
    references(cluster, Which::All)
        .into_iter()
        .filter(|r| !image_present(&layout, &index, r, cluster.os.arch))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        let p = bearer_params(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        )
        .expect("parses");
        assert_eq!(p["realm"], "https://auth.docker.io/token");
        assert_eq!(p["service"], "registry.docker.io");
        assert_eq!(p["scope"], "repository:library/busybox:pull");
        assert!(bearer_params("Basic realm=\"x\"").is_none());
    }

    #[test]
    fn references_split() {
        let i = ImageRef::parse("docker.io/busybox:1.36").expect("ok");
        assert_eq!(i.repository, "library/busybox");
        let i = ImageRef::parse("registry.k8s.io/coredns/coredns:v1.11.3").expect("ok");
        assert_eq!(
            (
                i.registry.as_str(),
                i.repository.as_str(),
                i.reference.as_str()
            ),
            ("registry.k8s.io", "coredns/coredns", "v1.11.3")
        );
        assert_eq!(
            i.url("http://127.0.0.1:5000/pre/", "manifests", "v1"),
            "http://127.0.0.1:5000/v2/pre/coredns/coredns/manifests/v1"
        );
        assert!(ImageRef::parse("pause:3.10").is_err());
        assert!(ImageRef::parse("registry.k8s.io/pause").is_err());
        let d = format!("registry.k8s.io/pause@sha256:{}", "a".repeat(64));
        assert_eq!(ImageRef::parse(&d).expect("ok").reference.len(), 71);
    }

    #[test]
    fn digests_are_strict() {
        assert!(valid_digest(&format!("sha256:{}", "0".repeat(64))));
        assert!(!valid_digest(&format!("sha256:{}", "A".repeat(64))));
        assert!(!valid_digest("sha256:../../etc/passwd"));
        assert!(blob_path(Path::new("/x"), "sha512:00").is_none());
    }

    #[test]
    fn redirects_resolve() {
        assert_eq!(absolute("http://a:1/v2/x", "/b/c"), "http://a:1/b/c");
        assert_eq!(
            absolute("http://a:1/v2/x", "https://cdn/y"),
            "https://cdn/y"
        );
    }
}
