//! The downloads: resume, parallelism, progress, verification and atomic landing.
//!
//! Every file is downloaded to `<dest>.part` (resumed with an HTTP `Range` request
//! when a partial one is there), fsynced, verified (OpenPGP signature or SHA-256), and
//! only then renamed over `<dest>` (and the directory fsynced): a file that does not
//! verify is deleted and nothing good is touched. What was verified is recorded in
//! `<mirror>/.slipway-mirror.verified` (path, size, modification time), so a re-run
//! fetches nothing that is still there unchanged.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, UNIX_EPOCH};

use slipway_cluster::Cluster;

use crate::plan::{Check, FLATCAR_FINGERPRINT, FLATCAR_KEY, Item, Part, Plan, Trust, plan};
use crate::verify::{Keyring, sha256, sum_for};

/// The verified-manifest's file name in the mirror directory.
pub const MANIFEST: &str = ".slipway-mirror.verified";

/// What `slipway mirror` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// Only this part (`--only`).
    pub only: Option<Part>,
    /// Downloads at once (`--parallel`, at least 1).
    pub parallel: usize,
    /// Progress as redrawn lines (a terminal) or plain lines.
    pub terminal: bool,
    /// How often plain progress lines are written.
    pub progress_every: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            only: None,
            parallel: 4,
            terminal: false,
            progress_every: Duration::from_secs(5),
        }
    }
}

/// One file that failed (nothing was landed for it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The file (relative to the mirror directory).
    pub file: PathBuf,
    /// Why: for a mismatch, the expected and actual fingerprint or SHA-256.
    pub reason: String,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Summary {
    /// Files downloaded and verified in this run.
    pub fetched: Vec<PathBuf>,
    /// Files already verified (nothing fetched).
    pub up_to_date: Vec<PathBuf>,
    /// Bytes downloaded.
    pub bytes: u64,
    /// Files that failed.
    pub failures: Vec<Failure>,
    /// The version `current` resolved to, when the cluster names `current`.
    pub current: Option<String>,
}

/// A line of `--dry-run`: what would be fetched, to where, and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// Upstream URL.
    pub url: String,
    /// Destination (absolute).
    pub dest: PathBuf,
    /// `Content-Length` of a HEAD request, when the upstream answered one.
    pub size: Option<u64>,
    /// Already verified in the mirror.
    pub up_to_date: bool,
}

/// An error before any download starts (configuration, keys, `current`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SetupError(pub String);

/// The roots HTTPS servers are checked against: this machine's CA store (which
/// `SSL_CERT_FILE` and `SSL_CERT_DIR` override), as curl and apt use it, so a site
/// behind a TLS-inspecting proxy whose CA the machine trusts can mirror; Mozilla's
/// roots (built in) when the machine has none.
fn root_certs() -> ureq::tls::RootCerts {
    let found = rustls_native_certs::load_native_certs();
    if found.certs.is_empty() {
        return ureq::tls::RootCerts::WebPki;
    }
    let certs: Vec<ureq::tls::Certificate<'static>> = found
        .certs
        .iter()
        .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    ureq::tls::RootCerts::new_with_certs(&certs)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(root_certs())
                .build(),
        )
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .build()
        .new_agent()
}

/// The keyring and trusted fingerprints of `plan`.
fn trust(plan: &Plan) -> Result<Keys, SetupError> {
    match &plan.trust {
        Trust::Flatcar => Ok((
            Keyring::from_armored(FLATCAR_KEY)
                .map_err(|e| SetupError(format!("Flatcar's key kept in slipway: {e}")))?,
            vec![FLATCAR_FINGERPRINT.to_string()],
        )),
        Trust::Configured(keys) => {
            let mut ring: Option<Keyring> = None;
            let mut fps = Vec::new();
            for (file, fp) in keys {
                let text = fs::read_to_string(file).map_err(|e| {
                    SetupError(format!(
                        "os.mirror.trusted_keys: reading {}: {e}",
                        file.display()
                    ))
                })?;
                let k = Keyring::from_armored(&text).map_err(|e| {
                    SetupError(format!("os.mirror.trusted_keys: {}: {e}", file.display()))
                })?;
                if !k.fingerprints().contains(fp) {
                    return Err(SetupError(format!(
                        "os.mirror.trusted_keys: {} holds {}, not the fingerprint given ({fp})",
                        file.display(),
                        k.fingerprints().join(", ")
                    )));
                }
                fps.push(fp.clone());
                match &mut ring {
                    Some(r) => r.extend(k),
                    None => ring = Some(k),
                }
            }
            ring.map(|r| (r, fps))
                .ok_or_else(|| SetupError("os.mirror.trusted_keys is empty".into()))
        }
        Trust::Missing => Err(SetupError(
            "no trusted key for this OS's signatures: give `os.mirror.trusted_keys` \
             (an armored key file and its fingerprint)"
                .into(),
        )),
    }
}

/// The record of what `current` resolved to: `<mirror>/<channel>-current`.
pub fn current_record(dir: &Path, cluster: &Cluster) -> PathBuf {
    dir.join(format!("{}-current", cluster.os.channel))
}

/// A small file (signature, sums, version.txt) into memory.
fn get_small(agent: &ureq::Agent, url: &str) -> Result<Vec<u8>, String> {
    let resp = agent.get(url).call().map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status().as_u16();
    if status != 200 {
        return Err(format!("{url}: HTTP {status}"));
    }
    resp.into_body()
        .with_config()
        .limit(1 << 20)
        .read_to_vec()
        .map_err(|e| format!("{url}: {e}"))
}

/// Resolves `current` once: from the record if there is one, else from upstream's
/// signed `current/version.txt` (then recorded).
fn resolve_current(
    agent: &ureq::Agent,
    cluster: &Cluster,
    dir: &Path,
    ring: &Keyring,
    trusted: &[String],
) -> Result<String, SetupError> {
    let record = current_record(dir, cluster);
    if let Ok(v) = fs::read_to_string(&record)
        && !v.trim().is_empty()
    {
        return Ok(v.trim().to_string());
    }
    let p0 = plan(cluster, None);
    let url = format!("{}/current/version.txt", p0.os_base);
    let text = get_small(agent, &url).map_err(|e| SetupError(format!("resolving current: {e}")))?;
    let sig = get_small(agent, &format!("{url}.sig"))
        .map_err(|e| SetupError(format!("resolving current: signature: {e}")))?;
    ring.verify(trusted, &sig, text.as_slice())
        .map_err(|e| SetupError(format!("resolving current: {url}: {e}")))?;
    let v = crate::plan::version_of(&String::from_utf8_lossy(&text))
        .ok_or_else(|| SetupError(format!("{url}: no FLATCAR_VERSION= line")))?;
    fs::create_dir_all(dir).map_err(|e| SetupError(format!("{}: {e}", dir.display())))?;
    write_atomic(&record, format!("{v}\n").as_bytes())
        .map_err(|e| SetupError(format!("{}: {e}", record.display())))?;
    Ok(v)
}

/// Writes `path` through `<path>.part`, fsync, rename, fsync of the directory.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let part = part_of(path);
    {
        let mut f = File::create(&part)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&part, path)?;
    sync_dir(path)
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(d) => File::open(d)?.sync_all(),
        None => Ok(()),
    }
}

fn part_of(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

/// One manifest entry: size and modification time (ns) of the verified file, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    size: u64,
    mtime: u128,
    how: String,
}

fn stamp(path: &Path) -> Option<(u64, u128)> {
    let m = fs::metadata(path).ok()?;
    let t = m
        .modified()
        .ok()?
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_nanos();
    Some((m.len(), t))
}

/// The verified-manifest: relative path → entry.
#[derive(Debug, Default)]
struct Manifest {
    entries: BTreeMap<String, Entry>,
}

impl Manifest {
    fn load(dir: &Path) -> Manifest {
        let mut entries = BTreeMap::new();
        if let Ok(text) = fs::read_to_string(dir.join(MANIFEST)) {
            for line in text.lines() {
                let mut f = line.splitn(4, '\t');
                if let (Some(size), Some(mtime), Some(how), Some(path)) =
                    (f.next(), f.next(), f.next(), f.next())
                    && let (Ok(size), Ok(mtime)) = (size.parse(), mtime.parse())
                {
                    entries.insert(
                        path.to_string(),
                        Entry {
                            size,
                            mtime,
                            how: how.to_string(),
                        },
                    );
                }
            }
        }
        Manifest { entries }
    }

    fn save(&self, dir: &Path) -> std::io::Result<()> {
        let mut s = String::from(
            "# slipway mirror: files verified (size, mtime ns, how, path); delete to re-verify\n",
        );
        for (p, e) in &self.entries {
            s.push_str(&format!("{}\t{}\t{}\t{p}\n", e.size, e.mtime, e.how));
        }
        write_atomic(&dir.join(MANIFEST), s.as_bytes())
    }

    /// Whether `rel` is there, unchanged since it was verified.
    fn fresh(&self, dir: &Path, rel: &Path) -> bool {
        let Some(e) = self.entries.get(&rel.to_string_lossy().to_string()) else {
            return false;
        };
        stamp(&dir.join(rel)) == Some((e.size, e.mtime))
    }

    fn record(&mut self, dir: &Path, rel: &Path, how: &str) {
        if let Some((size, mtime)) = stamp(&dir.join(rel)) {
            self.entries.insert(
                rel.to_string_lossy().to_string(),
                Entry {
                    size,
                    mtime,
                    how: how.to_string(),
                },
            );
        }
    }
}

/// A keyring and the fingerprints trusted in it.
type Keys = (Keyring, Vec<String>);

/// What a run works from.
struct Prepared {
    plan: Plan,
    dir: PathBuf,
    keys: Option<Keys>,
    current: Option<String>,
}

/// The plan and its trust for `cluster`, with `current` resolved (network, once).
fn prepare(
    agent: &ureq::Agent,
    cluster: &Cluster,
    only: Option<Part>,
) -> Result<Prepared, SetupError> {
    let p0 = plan(cluster, None);
    let dir = p0.dir.clone().ok_or_else(|| {
        SetupError(
            "os.assets is a URL: the machines fetch the OS from there, slipway holds no \
             mirror to fill (give a directory to mirror into)"
                .into(),
        )
    })?;
    let wants_os =
        only.is_none_or(|p| p == Part::Os) && p0.items.iter().any(|i| i.part == Part::Os);
    let keys = if wants_os { Some(trust(&p0)?) } else { None };
    let mut current = None;
    let p = match (&keys, cluster.os.version.as_str()) {
        (Some((ring, fps)), "current") => {
            let v = resolve_current(agent, cluster, &dir, ring, fps)?;
            current = Some(v.clone());
            plan(cluster, Some(&v))
        }
        _ => p0,
    };
    Ok(Prepared {
        plan: p,
        dir,
        keys,
        current,
    })
}

/// `--dry-run`: each file's URL, destination and size (HEAD), without downloading.
/// `current` is resolved from the record when there is one (else upstream `current/`).
pub fn dry_run(cluster: &Cluster, only: Option<Part>) -> Result<Vec<Planned>, SetupError> {
    let agent = agent();
    let p0 = plan(cluster, None);
    let dir = p0
        .dir
        .clone()
        .ok_or_else(|| SetupError("os.assets is a URL: no mirror to fill".into()))?;
    let recorded = fs::read_to_string(current_record(&dir, cluster)).ok();
    let p = match recorded.as_deref().map(str::trim) {
        Some(v) if cluster.os.version == "current" && !v.is_empty() => plan(cluster, Some(v)),
        _ => p0,
    };
    let manifest = Manifest::load(&dir);
    let mut out = Vec::new();
    for item in p.only(only) {
        let mut files = vec![(item.url.clone(), item.dest.clone())];
        if let Check::Signature { url, dest } = &item.check {
            files.push((url.clone(), dest.clone()));
        }
        for (url, dest) in files {
            let size = agent.head(&url).call().ok().and_then(|r| {
                (r.status().as_u16() == 200)
                    .then(|| {
                        r.headers()
                            .get("content-length")?
                            .to_str()
                            .ok()?
                            .parse()
                            .ok()
                    })
                    .flatten()
            });
            out.push(Planned {
                up_to_date: manifest.fresh(&dir, &dest),
                url,
                dest: dir.join(dest),
                size,
            });
        }
    }
    Ok(out)
}

/// Progress of one download.
#[derive(Debug, Clone)]
struct FileState {
    name: String,
    done: u64,
    resumed_from: u64,
    total: Option<u64>,
    started: Instant,
    finished: bool,
}

/// Progress display shared by the workers.
struct Progress<'a> {
    files: Mutex<Vec<FileState>>,
    out: Mutex<(&'a mut (dyn Write + Send), usize)>,
    terminal: bool,
    start: Instant,
}

/// `12.3 MiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn line(name: &str, done: u64, total: Option<u64>, rate: f64) -> String {
    let eta = match total {
        Some(t) if rate > 0.0 && t >= done => format!("{:.0} s", (t - done) as f64 / rate),
        _ => "?".into(),
    };
    let total = total.map_or_else(|| "?".into(), human);
    format!(
        "{name}: {} / {total}, {}/s, ETA {eta}",
        human(done),
        human(rate as u64)
    )
}

impl<'a> Progress<'a> {
    fn new(out: &'a mut (dyn Write + Send), terminal: bool) -> Self {
        Progress {
            files: Mutex::new(Vec::new()),
            out: Mutex::new((out, 0)),
            terminal,
            start: Instant::now(),
        }
    }

    fn begin(&self, name: &str) -> usize {
        let mut f = self.files.lock().unwrap_or_else(|e| e.into_inner());
        f.push(FileState {
            name: name.into(),
            done: 0,
            resumed_from: 0,
            total: None,
            started: Instant::now(),
            finished: false,
        });
        f.len() - 1
    }

    fn update(&self, i: usize, change: impl FnOnce(&mut FileState)) {
        let mut f = self.files.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = f.get_mut(i) {
            change(s);
        }
    }

    /// An event line (always printed, above the redrawn block on a terminal).
    fn say(&self, text: &str) {
        let mut o = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let (w, lines) = &mut *o;
        if self.terminal && *lines > 0 {
            let _ = write!(w, "\x1b[{lines}F\x1b[J");
            *lines = 0;
        }
        let _ = writeln!(w, "{text}");
        let _ = w.flush();
    }

    /// The status: one line per active download and one overall.
    fn report(&self) {
        let files = self.files.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut lines = Vec::new();
        let (mut done, mut total, mut known) = (0u64, 0u64, true);
        for f in &files {
            done += f.done - f.resumed_from;
            match f.total {
                Some(t) => total += t - f.resumed_from,
                None => known = false,
            }
            if !f.finished {
                let secs = f.started.elapsed().as_secs_f64().max(0.001);
                let rate = (f.done - f.resumed_from) as f64 / secs;
                lines.push(line(&f.name, f.done, f.total, rate));
            }
        }
        if lines.is_empty() {
            return;
        }
        let rate = done as f64 / self.start.elapsed().as_secs_f64().max(0.001);
        lines.push(line("overall", done, known.then_some(total), rate));
        let mut o = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let (w, shown) = &mut *o;
        if self.terminal {
            if *shown > 0 {
                let _ = write!(w, "\x1b[{shown}F\x1b[J");
            }
            *shown = lines.len();
        }
        for l in &lines {
            let _ = writeln!(w, "{l}");
        }
        let _ = w.flush();
    }
}

/// Downloads `url` into `part`, resuming what is there with a Range request.
fn download(
    agent: &ureq::Agent,
    url: &str,
    part: &Path,
    progress: &Progress,
    i: usize,
) -> Result<u64, String> {
    let have = fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let mut req = agent.get(url);
    if have > 0 {
        req = req.header("Range", format!("bytes={have}-"));
    }
    let resp = req.call().map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status().as_u16();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let length: Option<u64> = header("content-length").and_then(|v| v.parse().ok());
    let (mut file, start, total) = match status {
        206 if have > 0 => {
            let total = header("content-range")
                .and_then(|r| r.rsplit('/').next().and_then(|t| t.parse().ok()))
                .or(length.map(|l| l + have));
            let f = OpenOptions::new()
                .append(true)
                .open(part)
                .map_err(|e| format!("{}: {e}", part.display()))?;
            (f, have, total)
        }
        200 => {
            let f = File::create(part).map_err(|e| format!("{}: {e}", part.display()))?;
            (f, 0, length)
        }
        416 if have > 0 => return Ok(0),
        s => return Err(format!("{url}: HTTP {s}")),
    };
    progress.update(i, |s| {
        s.done = start;
        s.resumed_from = start;
        s.total = total;
        s.started = Instant::now();
    });
    let mut body = resp.into_body().into_reader();
    let mut buf = vec![0u8; 1 << 16];
    let mut written = start;
    let result = loop {
        match body.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                if let Err(e) = file.write_all(&buf[..n]) {
                    break Err(format!("{}: {e}", part.display()));
                }
                written += n as u64;
                progress.update(i, |s| s.done = written);
            }
            Err(e) => break Err(format!("{url}: {e}")),
        }
    };
    // What arrived is kept (fsynced) for the next run to resume from.
    let _ = file.sync_all();
    result.map_err(|e| {
        format!(
            "download interrupted after {} of {}: {e}; run again to resume",
            human(written),
            total.map_or_else(|| "?".into(), human)
        )
    })?;
    if let Some(t) = total
        && written != t
    {
        return Err(format!(
            "{url}: download ended after {} of {} ({written} of {t} bytes); run again to resume",
            human(written),
            human(t)
        ));
    }
    Ok(written - start)
}

/// Shared state of a run.
struct Run<'a> {
    agent: ureq::Agent,
    dir: PathBuf,
    keys: Option<Keys>,
    manifest: Mutex<Manifest>,
    progress: Progress<'a>,
}

impl Run<'_> {
    fn record(&self, rel: &Path, how: &str) -> Result<(), String> {
        let mut m = self.manifest.lock().unwrap_or_else(|e| e.into_inner());
        m.record(&self.dir, rel, how);
        m.save(&self.dir)
            .map_err(|e| format!("{}: {e}", self.dir.join(MANIFEST).display()))
    }

    fn verify_sig(&self, sig: &[u8], path: &Path) -> Result<String, String> {
        let (ring, fps) = self
            .keys
            .as_ref()
            .ok_or_else(|| "no trusted key".to_string())?;
        let f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        ring.verify(fps, sig, std::io::BufReader::new(f))
            .map(|fp| format!("openpgp:{fp}"))
            .map_err(|e| e.to_string())
    }

    /// One item: its files fetched, verified and landed, or a failure.
    fn item(&self, item: &Item) -> Result<Option<u64>, String> {
        let dest = self.dir.join(&item.dest);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        let name = item.dest.to_string_lossy().to_string();
        match &item.check {
            Check::Signature { url, dest: sig_rel } => {
                let sig_dest = self.dir.join(sig_rel);
                // Both already here (a lost manifest): verify them where they are.
                if let Ok(sig) = fs::read(&sig_dest)
                    && dest.is_file()
                    && let Ok(how) = self.verify_sig(&sig, &dest)
                {
                    self.record(&item.dest, &how)?;
                    self.record(sig_rel, "signature")?;
                    self.progress
                        .say(&format!("{name}: already here, verified ({how})"));
                    return Ok(None);
                }
                let sig = get_small(&self.agent, url)
                    .map_err(|e| format!("its signature is missing or unreadable: {e}"))?;
                let part = part_of(&dest);
                let i = self.progress.begin(&name);
                let got = download(&self.agent, &item.url, &part, &self.progress, i);
                self.progress.update(i, |s| s.finished = true);
                let got = got?;
                match self.verify_sig(&sig, &part) {
                    Ok(how) => {
                        fs::rename(&part, &dest).map_err(|e| format!("{}: {e}", dest.display()))?;
                        sync_dir(&dest).map_err(|e| format!("{}: {e}", dest.display()))?;
                        write_atomic(&sig_dest, &sig)
                            .map_err(|e| format!("{}: {e}", sig_dest.display()))?;
                        self.record(&item.dest, &how)?;
                        self.record(sig_rel, "signature")?;
                        self.progress
                            .say(&format!("{name}: {} fetched, verified ({how})", human(got)));
                        Ok(Some(got))
                    }
                    Err(e) => {
                        let _ = fs::remove_file(&part);
                        Err(format!("{e}; the download was deleted"))
                    }
                }
            }
            Check::Sha256Sums { url, name: listed } => {
                let sums = get_small(&self.agent, url)?;
                let expected = sum_for(&String::from_utf8_lossy(&sums), listed)
                    .ok_or_else(|| format!("{url} lists no SHA-256 for {listed}"))?;
                self.by_sha256(item, &expected, &format!("from {url}"))
            }
            Check::Sha256(expected) => {
                let got = self.by_sha256(item, expected, "pinned")?;
                self.unpack(item)?;
                Ok(got)
            }
        }
    }

    /// `item` fetched (unless already here) and landed when its SHA-256 is `expected`.
    fn by_sha256(&self, item: &Item, expected: &str, source: &str) -> Result<Option<u64>, String> {
        let dest = self.dir.join(&item.dest);
        let name = item.dest.to_string_lossy().to_string();
        if dest.is_file()
            && let Ok(f) = File::open(&dest)
            && sha256(std::io::BufReader::new(f)).ok().as_deref() == Some(expected)
        {
            self.record(&item.dest, &format!("sha256:{expected}"))?;
            self.progress
                .say(&format!("{name}: already here, verified (sha256)"));
            return Ok(None);
        }
        let part = part_of(&dest);
        let i = self.progress.begin(&name);
        let got = download(&self.agent, &item.url, &part, &self.progress, i);
        self.progress.update(i, |s| s.finished = true);
        let got = got?;
        let f = File::open(&part).map_err(|e| format!("{}: {e}", part.display()))?;
        let actual =
            sha256(std::io::BufReader::new(f)).map_err(|e| format!("{}: {e}", part.display()))?;
        if actual != expected {
            let _ = fs::remove_file(&part);
            return Err(format!(
                "SHA-256 mismatch: expected {expected} ({source}), got {actual}; the download was deleted"
            ));
        }
        fs::rename(&part, &dest).map_err(|e| format!("{}: {e}", dest.display()))?;
        sync_dir(&dest).map_err(|e| format!("{}: {e}", dest.display()))?;
        self.record(&item.dest, &format!("sha256:{expected}"))?;
        self.progress.say(&format!(
            "{name}: {} fetched, verified (sha256)",
            human(got)
        ));
        Ok(Some(got))
    }

    /// The members of the verified package `item` written next to it (each atomically)
    /// and recorded with their own SHA-256.
    fn unpack(&self, item: &Item) -> Result<(), String> {
        if item.unpack.is_empty() {
            return Ok(());
        }
        let deb = fs::read(self.dir.join(&item.dest))
            .map_err(|e| format!("{}: {e}", item.dest.display()))?;
        let wanted: Vec<&str> = item.unpack.iter().map(|m| m.path.as_str()).collect();
        let files = crate::deb::members(&deb, &wanted).map_err(|e| e.to_string())?;
        for (m, bytes) in item.unpack.iter().zip(files) {
            let dest = self.dir.join(&m.dest);
            write_atomic(&dest, &bytes).map_err(|e| format!("{}: {e}", dest.display()))?;
            let sum = sha256(bytes.as_slice()).map_err(|e| e.to_string())?;
            self.record(
                &m.dest,
                &format!("sha256:{sum} from {}", item.dest.display()),
            )?;
            self.progress.say(&format!(
                "{}: {} taken out of {}",
                m.dest.display(),
                human(bytes.len() as u64),
                item.dest.display()
            ));
        }
        Ok(())
    }
}

/// Fills the mirror of `cluster`: every planned file not already verified is
/// downloaded (resumed), verified and landed. Progress and events go to `out`.
/// Failures of single files are in the summary (the others still land).
pub fn mirror(
    cluster: &Cluster,
    opts: &Options,
    out: &mut (dyn Write + Send),
) -> Result<Summary, SetupError> {
    let agent = agent();
    let Prepared {
        plan,
        dir,
        keys,
        current,
    } = prepare(&agent, cluster, opts.only)?;
    fs::create_dir_all(&dir).map_err(|e| SetupError(format!("{}: {e}", dir.display())))?;
    let manifest = Manifest::load(&dir);
    let mut summary = Summary {
        current,
        ..Default::default()
    };
    let mut queue = VecDeque::new();
    for item in plan.only(opts.only) {
        let sig_fresh = match &item.check {
            Check::Signature { dest, .. } => manifest.fresh(&dir, dest),
            Check::Sha256Sums { .. } | Check::Sha256(_) => true,
        };
        let unpacked = item.unpack.iter().all(|m| manifest.fresh(&dir, &m.dest));
        if manifest.fresh(&dir, &item.dest) && sig_fresh && unpacked {
            summary.up_to_date.push(item.dest.clone());
        } else {
            queue.push_back(item.clone());
        }
    }
    let run = Run {
        agent,
        dir,
        keys,
        manifest: Mutex::new(manifest),
        progress: Progress::new(out, opts.terminal),
    };
    let queue = Mutex::new(queue);
    let results = Mutex::new(Vec::new());
    let workers = opts
        .parallel
        .max(1)
        .min(queue.lock().map_or(1, |q| q.len().max(1)));
    let running = std::sync::atomic::AtomicUsize::new(workers);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                    let Some(item) = next else { break };
                    let r = run.item(&item);
                    results
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((item.dest.clone(), r));
                }
                running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            });
        }
        s.spawn(|| {
            let tick = if opts.terminal {
                Duration::from_millis(500)
            } else {
                opts.progress_every
            };
            let mut last = Instant::now();
            while running.load(std::sync::atomic::Ordering::SeqCst) > 0 {
                std::thread::sleep(Duration::from_millis(50));
                if last.elapsed() >= tick {
                    run.progress.report();
                    last = Instant::now();
                }
            }
        });
    });
    for (dest, r) in results.into_inner().unwrap_or_else(|e| e.into_inner()) {
        match r {
            Ok(Some(n)) => {
                summary.bytes += n;
                summary.fetched.push(dest);
            }
            Ok(None) => summary.up_to_date.push(dest),
            Err(reason) => summary.failures.push(Failure { file: dest, reason }),
        }
    }
    summary.fetched.sort();
    summary.up_to_date.sort();
    summary.failures.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(summary)
}

/// The files a node will ask for that are not in the mirror directory (absolute
/// paths), in two lists: the files no machine installs without (kernel, initramfs,
/// disk image, `version.txt`) and the rest (signatures, the update payload, the
/// Kubernetes sysext, iPXE's boot programs). Both empty when the assets are a URL or the OS is generic.
pub fn missing(cluster: &Cluster) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let p = plan(cluster, None);
    let Some(dir) = &p.dir else {
        return (Vec::new(), Vec::new());
    };
    let absent = |rel: &Path| {
        let f = dir.join(rel);
        (!f.is_file()).then_some(f)
    };
    let mut os = Vec::new();
    let mut rest = Vec::new();
    for item in &p.items {
        let target = if item.required { &mut os } else { &mut rest };
        if item.unpack.is_empty() {
            target.extend(absent(&item.dest));
        }
        rest.extend(item.unpack.iter().filter_map(|m| absent(&m.dest)));
        if let Check::Signature { dest, .. } = &item.check {
            rest.extend(absent(dest));
        }
    }
    (os, rest)
}
