//! In-place OS updates: the IO around `slipway-omaha`'s pure rollout. Answers
//! `update_engine`'s Omaha requests (node identified by the request's source address,
//! the Omaha machine id is the node's own), offers the mirrored update payload
//! (`<os.assets>/<os.version>/flatcar_production_update.gz`, hashed once per
//! (path, size, mtime)), hands out the reboot lock (after the `upgrade.reboot_hook`),
//! persists the [`Rollout`] in the state directory on every change (written whole and
//! renamed into place) and records each step in the machine's life.
//!
//! The target is `os.version`: a reload with a new version starts a new rollout; a
//! reload with the same version keeps the rollout and takes the new policy and nodes.

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use sha1::Digest as _;
use slipway_cluster::{AssetSource, Cluster, MacAddr, Node};
use slipway_http::Reply;
use slipway_http::update::{OsUpdateAction, OsUpdateNode, OsUpdateView};
use slipway_lifecycle::Input;
use slipway_omaha::protocol::{
    self, AppResponse, FLATCAR_APP_ID, Offer, Progress, Response, UpdateCheck,
};
use slipway_omaha::rollout::{
    Canary, Decision, HaltReason, Phase, Policy, RebootDecision, Role, Rollout,
};
use slipway_store::tracker::{Tracker, now};

/// The update payload's name in `<os.assets>/<version>/` (what `slipway mirror` lands).
pub const PAYLOAD: &str = "flatcar_production_update.gz";
/// The rollout's file in the state directory.
pub const STATE_FILE: &str = "os-update.json";
/// How long a successful reboot hook counts for its node's reboot lock.
const HOOK_VALID_SECS: u64 = 900;

/// What the cluster file makes of OS updates: every `upgrade:` key lands here or in the
/// installed config.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `upgrade.os_updates`.
    pub enabled: bool,
    /// The target version (`os.version`); `None` when disabled or `current`.
    pub target: Option<String>,
    /// The Omaha group a request's `track` must name.
    pub group: String,
    /// The rollout policy.
    pub policy: Policy,
    /// The reboot hook and its time limit in seconds.
    pub hook: Option<(PathBuf, u64)>,
    /// The payload file, when the assets are mirrored here.
    pub payload: Option<PathBuf>,
    /// The URL the payload's name is appended to.
    pub codebase: String,
}

/// The [`Settings`] of `c`.
pub fn settings(c: &Cluster) -> Settings {
    let u = &c.upgrade;
    let target = (u.os_updates && c.os.version != "current").then(|| c.os.version.clone());
    let version = &c.os.version;
    let payload = match &c.os.assets {
        AssetSource::Mirror(dir) => Some(dir.join(version).join(PAYLOAD)),
        AssetSource::Remote(_) => None,
    };
    Settings {
        enabled: u.os_updates,
        target,
        group: u.group.clone(),
        policy: Policy {
            max_updating: u.max_updating,
            max_per_period: u.max_per_period,
            period_secs: u.period_secs(),
            update_timeout_secs: u.update_timeout_secs(),
            control_planes_one_at_a_time: u.control_planes_one_at_a_time,
            safe_mode: u.safe_mode,
        },
        hook: u
            .reboot_hook
            .clone()
            .map(|h| (h, u.reboot_hook_timeout_secs())),
        payload,
        codebase: format!(
            "{}/{version}/",
            slipway_render::Urls::new(c).assets().trim_end_matches('/')
        ),
    }
}

/// The payload's digests, for one (path, size, mtime).
#[derive(Clone)]
struct Digests {
    path: PathBuf,
    size: u64,
    mtime: Option<SystemTime>,
    sha1: [u8; 20],
    sha256: [u8; 32],
}

/// A reboot hook's run for one node.
#[derive(Debug, Clone)]
enum HookRun {
    Running,
    Succeeded(u64),
    Failed,
}

/// At most one line per `every` of one kind; counts the rest.
struct Budget {
    last: HashMap<&'static str, Instant>,
}

impl Budget {
    fn due(&mut self, kind: &'static str, every: Duration) -> bool {
        let now = Instant::now();
        match self.last.get(kind) {
            Some(t) if now.duration_since(*t) < every => false,
            _ => {
                self.last.insert(kind, now);
                true
            }
        }
    }
}

/// The OS update service: the persisted rollout, the payload's digests, the reboot hooks.
pub struct OsUpdates {
    path: PathBuf,
    rollout: Mutex<Option<Rollout>>,
    digests: Mutex<Option<Digests>>,
    hooks: Arc<Mutex<HashMap<String, HookRun>>>,
    logs: Mutex<Budget>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn role(n: &Node) -> Role {
    if n.has_role(slipway_cluster::Role::ControlPlane) {
        Role::ControlPlane
    } else {
        Role::Worker
    }
}

/// `phase` as the API and the events name it.
pub fn phase_name(phase: &Phase) -> String {
    match phase {
        Phase::Idle => "idle".into(),
        Phase::Granted => "granted".into(),
        Phase::Downloading => "downloading".into(),
        Phase::Downloaded => "downloaded".into(),
        Phase::Installed => "installed".into(),
        Phase::RebootGranted => "reboot-granted".into(),
        Phase::Complete => "complete".into(),
        Phase::Failed { code: Some(c) } => format!("failed (error {c})"),
        Phase::Failed { code: None } => "failed".into(),
    }
}

fn halt_text(r: &HaltReason) -> String {
    match r {
        HaltReason::Timeout { node, elapsed_secs } => {
            format!("timeout: {node} in flight for {elapsed_secs} s")
        }
        HaltReason::NodeFailed {
            node,
            code: Some(c),
        } => format!("{node} failed (error {c})"),
        HaltReason::NodeFailed { node, code: None } => format!("{node} failed"),
        HaltReason::CanaryComplete { node } => {
            format!("canary {node} complete: check it, then resume")
        }
        HaltReason::Operator(why) => format!("operator: {why}"),
    }
}

/// The source address, an IPv4-mapped IPv6 one as IPv4.
fn source_ip(peer: SocketAddr) -> IpAddr {
    match peer.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

impl OsUpdates {
    /// The service, its rollout loaded from `<state_dir>/os-update.json` if there.
    pub fn open(state_dir: &Path) -> std::io::Result<OsUpdates> {
        let path = state_dir.join(STATE_FILE);
        let rollout = match std::fs::File::open(&path) {
            Ok(f) => {
                let mut text = String::new();
                f.take(64 << 20).read_to_string(&mut text)?;
                Some(
                    serde_json::from_str::<Rollout>(&text)
                        .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?,
                )
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        Ok(OsUpdates {
            path,
            rollout: Mutex::new(rollout),
            digests: Mutex::new(None),
            hooks: Arc::new(Mutex::new(HashMap::new())),
            logs: Mutex::new(Budget {
                last: HashMap::new(),
            }),
        })
    }

    fn log_due(&self, kind: &'static str) -> bool {
        lock(&self.logs).due(kind, Duration::from_secs(60))
    }

    /// Writes the rollout whole, then renames it into place.
    fn persist(&self, r: &Rollout) {
        let write = || -> std::io::Result<()> {
            let json = serde_json::to_vec_pretty(r).map_err(std::io::Error::other)?;
            let tmp = self.path.with_extension("json.tmp");
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&json)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        if let Err(e) = write() {
            tracing::error!(path = %self.path.display(), "cannot store the OS update rollout: {e}");
        }
    }

    /// Brings the stored rollout in line with `c`: a new one for a new target, else the
    /// policy and nodes of the file. Returns the rollout (`None`: no target).
    fn sync<'a>(
        &self,
        guard: &'a mut MutexGuard<'_, Option<Rollout>>,
        c: &Cluster,
        s: &Settings,
    ) -> Option<&'a mut Rollout> {
        let target = s.target.as_ref()?;
        let before = guard.clone();
        let nodes = c.nodes.iter().map(|n| (n.hostname.clone(), role(n)));
        match guard.as_mut() {
            Some(r) if &r.target_version == target => {
                if r.policy != s.policy {
                    if !s.policy.safe_mode && r.canary == Canary::Pending {
                        r.canary = Canary::Done;
                    }
                    r.policy = s.policy.clone();
                }
                for (h, role) in nodes {
                    r.add_node(h, role);
                }
                r.nodes.retain(|h, _| c.node_by_hostname(h).is_some());
            }
            _ => {
                tracing::info!(target = %target, "OS update rollout: new target version");
                **guard = Some(Rollout::new(target.clone(), s.policy.clone(), nodes));
            }
        }
        if **guard != before
            && let Some(r) = guard.as_ref()
        {
            self.persist(r);
        }
        guard.as_mut()
    }

    /// The payload's offer, hashing it when its (path, size, mtime) is new.
    fn offer(&self, s: &Settings, target: &str) -> Option<Offer> {
        let path = s.payload.as_ref()?;
        let meta = match std::fs::metadata(path) {
            Ok(m) if m.is_file() && m.len() > 0 => m,
            _ => {
                if self.log_due("payload") {
                    tracing::warn!(path = %path.display(), "no OS update payload in the mirror: nodes are told there is no update (run `slipway mirror`)");
                }
                return None;
            }
        };
        let mtime = meta.modified().ok();
        let mut cache = lock(&self.digests);
        let fresh = cache
            .as_ref()
            .is_some_and(|d| &d.path == path && d.size == meta.len() && d.mtime == mtime);
        if !fresh {
            let started = Instant::now();
            match hash(path) {
                Ok((size, sha1, sha256)) => {
                    tracing::info!(path = %path.display(), size, ms = started.elapsed().as_millis() as u64, "OS update payload hashed");
                    *cache = Some(Digests {
                        path: path.clone(),
                        size,
                        mtime,
                        sha1,
                        sha256,
                    });
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), "cannot read the OS update payload: {e}");
                    return None;
                }
            }
        }
        let d = cache.as_ref()?;
        Some(Offer {
            version: target.to_string(),
            codebase: s.codebase.clone(),
            package_name: PAYLOAD.into(),
            size: d.size,
            sha1: d.sha1,
            sha256: d.sha256,
        })
    }

    /// Answers an Omaha request from `peer`.
    pub fn answer(
        &self,
        c: &Cluster,
        tracker: Option<&Arc<Tracker>>,
        body: &[u8],
        peer: SocketAddr,
    ) -> Reply {
        let request = match protocol::parse_request(body) {
            Ok(r) => r,
            Err(e) => {
                if self.log_due("parse") {
                    tracing::warn!(peer = %source_ip(peer), "an Omaha request that cannot be read: {e}");
                }
                return Reply::BadRequest(format!("not an Omaha request: {e}\n"));
            }
        };
        let s = settings(c);
        let now = now();
        let ip = source_ip(peer);
        let node = c.nodes.iter().find(|n| IpAddr::V4(n.ip) == ip);
        let mut response = Response::new(now);
        let mut events: Vec<(MacAddr, String)> = Vec::new();
        let mut completed: Vec<&Node> = Vec::new();
        for app in &request.apps {
            if !app.appid.eq_ignore_ascii_case(FLATCAR_APP_ID) {
                response.apps.push(AppResponse::unknown(app));
                continue;
            }
            let Some(node) = node else {
                if self.log_due("unknown") {
                    tracing::warn!(target: "audit", peer = %ip, "OS update check from an address that is no node's: no update (at most one such line a minute)");
                }
                response
                    .apps
                    .push(AppResponse::answer(app, UpdateCheck::NoUpdate));
                continue;
            };
            let version = app.version.clone().unwrap_or_default();
            let track_ok = app.track.as_deref().is_none_or(|t| t == s.group);
            if !track_ok && self.log_due("track") {
                tracing::warn!(host = node.hostname, track = ?app.track, group = s.group, "OS update check for another group: no update");
            }
            let Some(target) = s.target.clone().filter(|_| track_ok) else {
                response
                    .apps
                    .push(AppResponse::answer(app, UpdateCheck::NoUpdate));
                continue;
            };
            // Hash (if need be) before taking the rollout: it may take seconds.
            let offer = (app.updatecheck && version != target)
                .then(|| self.offer(&s, &target))
                .flatten();
            let host = node.hostname.as_str();
            let mut guard = lock(&self.rollout);
            let Some(r) = self.sync(&mut guard, c, &s) else {
                response
                    .apps
                    .push(AppResponse::answer(app, UpdateCheck::NoUpdate));
                continue;
            };
            let before = r.clone();
            for e in &app.events {
                let Some(p) = e.progress() else { continue };
                let text = match &p {
                    Progress::Checking => None,
                    Progress::Downloading => Some(format!("downloading {target}")),
                    Progress::Downloaded => Some(format!("downloaded {target}")),
                    Progress::Installed => {
                        Some(format!("installed {target}, waiting for the reboot lock"))
                    }
                    Progress::Rebooted { previous_version } => {
                        Some(format!("rebooted from {previous_version} into {version}"))
                    }
                    Progress::Error { event_type, code } => Some(format!(
                        "update failed (event {}, error {})",
                        event_type.0,
                        code.map_or_else(|| "?".into(), |c| c.to_string())
                    )),
                };
                r.on_event(host, &p, now);
                if let Some(t) = text {
                    events.push((node.mac, t));
                }
            }
            let check = if !app.updatecheck {
                UpdateCheck::NoUpdate
            } else if version == target || offer.is_some() {
                match (r.on_check(host, now, &version), offer) {
                    (Decision::Update, Some(o)) => UpdateCheck::Update(o),
                    (Decision::NoUpdate(why), _) => {
                        tracing::debug!(host, ?why, "no update");
                        UpdateCheck::NoUpdate
                    }
                    (Decision::Update, None) => UpdateCheck::NoUpdate,
                }
            } else {
                // No payload to offer: no grant either.
                r.tick(now);
                UpdateCheck::NoUpdate
            };
            let (was, is) = (
                before.nodes.get(host).map(|n| n.phase.clone()),
                r.nodes.get(host).map(|n| n.phase.clone()),
            );
            if was != is {
                match &is {
                    Some(Phase::Granted) => {
                        events.push((node.mac, format!("update offered: {version} -> {target}")));
                        tracing::info!(host, from = version, to = target, "OS update offered");
                    }
                    Some(Phase::Complete) => {
                        completed.push(node);
                        events.push((node.mac, format!("complete: running {target}")));
                        tracing::info!(host, version = target, "OS update complete");
                    }
                    _ => {}
                }
            }
            if before.halted.is_none()
                && let Some(h) = &r.halted
            {
                let why = halt_text(&h.reason);
                tracing::warn!("OS update rollout halted: {why}");
                events.push((node.mac, format!("rollout halted: {why}")));
            }
            if *r != before {
                self.persist(r);
            }
            drop(guard);
            response.apps.push(AppResponse::answer(app, check));
        }
        if let Some(t) = tracker {
            for node in completed {
                events.push((node.mac, carry_installed(c, t, node)));
            }
            for (mac, text) in events {
                if let Err(e) = t.record(mac, now, Input::OsUpdate(text)) {
                    tracing::error!(%mac, "cannot record an OS update event: {e}");
                }
            }
        }
        Reply::Ok {
            content_type: "application/xml",
            body: response.to_xml(),
        }
    }

    /// The reboot lock for `node` (its token already checked): 200 granted, 409 not now
    /// (with why). Runs the reboot hook first, in the background: the node asks again.
    pub fn reboot_lock(&self, c: &Cluster, tracker: &Arc<Tracker>, node: &Node) -> Reply {
        let s = settings(c);
        let now = now();
        let host = node.hostname.clone();
        let mut guard = lock(&self.rollout);
        let Some(r) = self.sync(&mut guard, c, &s) else {
            return Reply::Conflict("no OS update rollout\n".into());
        };
        let holds = r
            .nodes
            .get(&host)
            .is_some_and(|n| n.phase == Phase::RebootGranted);
        let trial = r.clone().reboot_lock(&host, now);
        let was_running = r.halted.is_none();
        if let RebootDecision::Wait(why) = trial {
            let before = r.clone();
            r.tick(now);
            if *r != before {
                self.persist(r);
            }
            if was_running && let Some(h) = &r.halted {
                tracing::warn!("OS update rollout halted: {}", halt_text(&h.reason));
            }
            return Reply::Conflict(format!("not now: {why:?}\n"));
        }
        if !holds && let Some((hook, timeout)) = &s.hook {
            let mut hooks = lock(&self.hooks);
            match hooks.get(&host) {
                Some(HookRun::Succeeded(at)) if now.saturating_sub(*at) < HOOK_VALID_SECS => {}
                Some(HookRun::Running) => {
                    return Reply::Conflict("the reboot hook is running\n".into());
                }
                _ => {
                    if hooks.values().any(|h| matches!(h, HookRun::Running)) {
                        return Reply::Conflict("another node's reboot hook is running\n".into());
                    }
                    hooks.insert(host.clone(), HookRun::Running);
                    let run = HookJob {
                        hook: hook.clone(),
                        timeout: Duration::from_secs(*timeout),
                        host: host.clone(),
                        mac: node.mac,
                        ip: node.ip.to_string(),
                        hooks: self.hooks.clone(),
                        tracker: tracker.clone(),
                    };
                    if let Err(e) = std::thread::Builder::new()
                        .name("reboot-hook".into())
                        .spawn(move || run.run())
                    {
                        hooks.remove(&host);
                        tracing::error!("cannot start the reboot hook: {e}");
                        return Reply::Error("cannot start the reboot hook\n".into());
                    }
                    return Reply::Conflict("the reboot hook started: ask again\n".into());
                }
            }
            hooks.remove(&host);
        }
        let decision = r.reboot_lock(&host, now);
        let granted = decision == RebootDecision::Granted;
        let snapshot = r.clone();
        drop(guard);
        self.persist(&snapshot);
        if granted {
            if !holds {
                tracing::info!(host, "OS update: reboot lock granted");
                if let Err(e) = tracker.record(
                    node.mac,
                    now,
                    Input::OsUpdate(format!("reboot granted ({})", snapshot.target_version)),
                ) {
                    tracing::error!(host, "cannot record the reboot grant: {e}");
                }
            }
            Reply::text("granted\n")
        } else {
            Reply::Conflict(format!("not now: {decision:?}\n"))
        }
    }

    /// The rollout as the API shows it.
    pub fn view(&self, c: &Cluster) -> OsUpdateView {
        let s = settings(c);
        let mut guard = lock(&self.rollout);
        let payload = s.payload.as_ref().is_some_and(|p| p.is_file());
        let mut r = self.sync(&mut guard, c, &s);
        // A timeout shows (and halts) when looked at, not only at the next request.
        if let Some(r) = r.as_deref_mut() {
            let was_running = r.halted.is_none();
            r.tick(now());
            if was_running && let Some(h) = &r.halted {
                tracing::warn!("OS update rollout halted: {}", halt_text(&h.reason));
                let snapshot = r.clone();
                self.persist(&snapshot);
            }
        }
        view_of(&s, payload, r.as_deref())
    }

    /// Halts or resumes the rollout.
    pub fn control(&self, c: &Cluster, action: OsUpdateAction) -> OsUpdateView {
        let s = settings(c);
        let now = now();
        let mut guard = lock(&self.rollout);
        if let Some(r) = self.sync(&mut guard, c, &s) {
            match action {
                OsUpdateAction::Halt => r.halt("halted by the operator", now),
                OsUpdateAction::Resume => r.resume(now),
            }
            let r = r.clone();
            self.persist(&r);
        }
        drop(guard);
        self.view(c)
    }

    /// `node`'s phase in the rollout, as `slipway status` shows it (`None`: no rollout
    /// or not in it).
    pub fn phase_of(&self, hostname: &str) -> Option<String> {
        let guard = lock(&self.rollout);
        let r = guard.as_ref()?;
        let n = r.nodes.get(hostname)?;
        let name = phase_name(&n.phase);
        match n.phase {
            // Never checked in: nothing to say.
            Phase::Idle => n.version.as_ref().map(|v| format!("idle (running {v})")),
            _ => Some(format!("{name} {}", r.target_version)),
        }
    }
}

/// After `node` completed its update to `c.os.version`: its recorded install follows
/// when the update is all that set it apart from the file ([`crate::carried_build`]),
/// so that `slipway upgrade` does not re-image it for the version it already runs.
/// The text for its history.
fn carry_installed(c: &Cluster, t: &Tracker, node: &Node) -> String {
    let Some(old) = t.machine(node.mac).and_then(|m| m.installed_build) else {
        return "its install was not recorded: `slipway upgrade --include-unknown` would re-image it".into();
    };
    if old.os_version == c.os.version {
        return format!("its recorded install is {} already", old.os_version);
    }
    match crate::carried_build(c, node, &old) {
        Some(new) => match t.carry_installed(node.mac, &old, new) {
            Ok(true) => format!(
                "recorded install carried from {} to {} (the file renders nothing else for it)",
                old.os_version, c.os.version
            ),
            Ok(false) => "its recorded install changed meanwhile: left as it is".into(),
            Err(e) => {
                tracing::error!(mac = %node.mac, "cannot record the install carried: {e}");
                "its recorded install could not be carried (store error)".into()
            }
        },
        None => format!(
            "its install config differs from the file's beyond the version: `slipway upgrade` would still re-image it (recorded: {})",
            old.os_version
        ),
    }
}

fn view_of(s: &Settings, payload: bool, r: Option<&Rollout>) -> OsUpdateView {
    OsUpdateView {
        enabled: s.enabled,
        target: r.map(|r| r.target_version.clone()),
        group: s.group.clone(),
        payload,
        halted: r
            .and_then(|r| r.halted.as_ref())
            .map(|h| halt_text(&h.reason)),
        canary: match r.map(|r| &r.canary) {
            Some(Canary::Pending) => "pending".into(),
            Some(Canary::Running(n)) => format!("running {n}"),
            Some(Canary::Done) | None => "done".into(),
        },
        in_flight: r.map_or(0, Rollout::in_flight),
        nodes: r
            .map(|r| {
                r.nodes
                    .iter()
                    .map(|(h, n)| OsUpdateNode {
                        hostname: h.clone(),
                        role: match n.role {
                            Role::ControlPlane => "control-plane".into(),
                            Role::Worker => "worker".into(),
                        },
                        phase: phase_name(&n.phase),
                        version: n.version.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// (size, SHA-1, SHA-256) of the file at `path`.
fn hash(path: &Path) -> std::io::Result<(u64, [u8; 20], [u8; 32])> {
    let mut f = std::fs::File::open(path)?;
    let mut sha1 = sha1::Sha1::new();
    let mut sha256 = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        sha1.update(&buf[..n]);
        sha256.update(&buf[..n]);
    }
    let mut a = [0u8; 20];
    a.copy_from_slice(&sha1.finalize());
    let mut b = [0u8; 32];
    b.copy_from_slice(&sha256.finalize());
    Ok((size, a, b))
}

/// One run of the reboot hook, on a thread of its own.
struct HookJob {
    hook: PathBuf,
    timeout: Duration,
    host: String,
    mac: MacAddr,
    ip: String,
    hooks: Arc<Mutex<HashMap<String, HookRun>>>,
    tracker: Arc<Tracker>,
}

impl HookJob {
    fn run(self) {
        tracing::info!(host = self.host, hook = %self.hook.display(), "OS update: running the reboot hook");
        let outcome = self.execute();
        let now = now();
        let (run, text) = match outcome {
            Ok(()) => (HookRun::Succeeded(now), "reboot hook succeeded".to_string()),
            Err(why) => {
                tracing::warn!(host = self.host, hook = %self.hook.display(), "OS update: the reboot hook failed: {why}; no reboot granted");
                (HookRun::Failed, format!("reboot hook failed: {why}"))
            }
        };
        lock(&self.hooks).insert(self.host.clone(), run);
        if let Err(e) = self.tracker.record(self.mac, now, Input::OsUpdate(text)) {
            tracing::error!(
                host = self.host,
                "cannot record the reboot hook's outcome: {e}"
            );
        }
    }

    fn execute(&self) -> Result<(), String> {
        let mut child = std::process::Command::new(&self.hook)
            .arg(&self.host)
            .env("SLIPWAY_NODE_MAC", self.mac.to_string())
            .env("SLIPWAY_NODE_IP", &self.ip)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.hook.display()))?;
        let started = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => return Err(format!("it exited with {status}")),
                Ok(None) if started.elapsed() >= self.timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("killed after {} s", self.timeout.as_secs()));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(100)),
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}
