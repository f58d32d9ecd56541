//! The cluster PKI of a kubeadm cluster: the three CAs, the service-account key, every
//! node's certificates, the admin kubeconfig and the CA's discovery hash, made once
//! into the state directory and reused on every later run; and each joining node's
//! short-lived join credential ([`join`]), made anew whenever it is asked for and
//! never stored. There is no shared bootstrap token and no kubeadm certificate key.
//!
//! [`Pki::load_or_create`] creates what is missing and reuses what exists: CA keys are
//! never replaced; a node added to the cluster gets its certificates without any
//! other file changing; a certificate whose names no longer match the cluster (a
//! node's address changed, `extra_sans` edited) is reported by [`Pki::status`] and
//! replaced only by an explicit [`Pki::rotate_leaves`]. A CA is replaced only by
//! [`Pki::rotate_ca`], which reissues everything it signed.
//!
//! Keys are ECDSA P-256 (PKCS#8 PEM), the service-account key included. CAs are valid
//! for 10 years ([`CA_VALIDITY`]), leaf certificates for 1 year ([`LEAF_VALIDITY`]).
//!
//! The pieces are pure functions of their inputs: [`plan`] says which certificates a
//! cluster needs with which names, [`issue`] makes keys and certificates for a given
//! time, [`secrets`] makes tokens and hashes, [`kubeconfig`] builds kubeconfigs,
//! [`join`] makes join credentials; [`Pki`] is the thin layer that keeps them in files.
//!
//! # Files
//!
//! Under `<state_dir>/pki/` (directories 0700, files 0600, each written to a
//! temporary file and renamed into place):
//!
//! ```text
//! ca.crt ca.key  etcd/ca.crt etcd/ca.key  front-proxy-ca.crt front-proxy-ca.key
//! sa.key sa.pub                       service-account signing key pair
//! admin.crt admin.key admin.conf      operator's client certificate and kubeconfig
//! nodes/<hostname>/apiserver.crt .key, apiserver-kubelet-client.*,
//!     apiserver-etcd-client.*, front-proxy-client.*       (control-plane nodes)
//! nodes/<hostname>/etcd/server.* etcd/peer.* etcd/healthcheck-client.*  (etcd nodes)
//! nodes/<hostname>/kubelet.crt .key   kubelet serving certificate (every node)
//! ```
//!
//! # Example
//!
//! ```
//! use std::path::Path;
//! use slipway_pki::Pki;
//!
//! let text = "\
//! cluster: {name: lab}
//! network: {interface: br0, server: 10.99.0.1, subnet: 10.99.0.0/24}
//! os: {version: 4081.2.0}
//! kubernetes: {version: v1.31.2, service_subnet: 10.100.0.0/16}
//! access: {ssh_authorized_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExample me']}
//! nodes:
//!   - {mac: 52:54:00:99:00:01, hostname: cp1, ip: 10.99.0.11, roles: [control-plane]}
//!   - {mac: 52:54:00:99:00:02, hostname: worker1, ip: 10.99.0.21}
//! ";
//! let loaded = slipway_cluster::load_str("lab.yaml", text, Path::new("/"), &slipway_cluster::NoHost);
//! let cluster = loaded.valid().ok_or("invalid cluster")?;
//!
//! let state = std::env::temp_dir().join(format!("slipway-pki-doc-{}", std::process::id()));
//! let pki = Pki::load_or_create(&state, cluster)?;
//! assert!(pki.ca_cert_hash().starts_with("sha256:"));
//!
//! // A joining node's credential: its own, and it expires.
//! let cred = pki.join_credential("worker1")?;
//! assert_eq!(cred.user, "system:bootstrap:slipway-worker1");
//! assert!(cred.not_after < std::time::SystemTime::now() + std::time::Duration::from_secs(2 * 3600));
//!
//! // What each machine gets in /etc/kubernetes/pki/:
//! let cp1: Vec<String> = pki.node_files("cp1").into_iter().map(|f| f.path).collect();
//! assert!(cp1.contains(&"ca.key".to_string()) && cp1.contains(&"apiserver.crt".to_string()));
//! let worker: Vec<String> = pki.node_files("worker1").into_iter().map(|f| f.path).collect();
//! assert_eq!(worker, ["ca.crt", "kubelet.crt", "kubelet.key"]);
//!
//! // A second run reuses everything.
//! let again = Pki::load_or_create(&state, cluster)?;
//! assert_eq!(again.ca_cert_pem(), pki.ca_cert_pem());
//! assert!(again.written().is_empty());
//! for cert in again.status() {
//!     assert!(cert.problems.is_empty() && cert.days_left >= 364, "{cert:?}");
//! }
//! std::fs::remove_dir_all(&state)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod error;
pub mod inspect;
pub mod issue;
pub mod join;
pub mod kubeconfig;
pub mod plan;
pub mod secrets;
mod store;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use slipway_cluster::Cluster;

pub use error::PkiError;
use inspect::{CertInfo, key_spki, public_key_spki};
pub use issue::{CA_VALIDITY, CertKey, KeyPairPem, LEAF_VALIDITY};
pub use join::JoinCredential;
pub use plan::{CaKind, LeafId, LeafKind, LeafSpec, Plan, San};
use store::Store;

/// The file in the PKI directory where slipway before per-node join credentials kept
/// the cluster's shared bootstrap token. It is no longer made or used; when it is
/// there, [`Pki::legacy_token_id`] names the token so it can be deleted from the
/// clusters installed with it.
pub const LEGACY_TOKEN_FILE: &str = "token";
/// The admin kubeconfig's file in the PKI directory.
pub const ADMIN_KUBECONFIG_FILE: &str = "admin.conf";
/// The service-account private key's file (also its name on control-plane nodes).
pub const SA_KEY_FILE: &str = "sa.key";
/// The service-account public key's file (also its name on control-plane nodes).
pub const SA_PUB_FILE: &str = "sa.pub";

/// Mode of a private key on a node.
pub const NODE_KEY_MODE: u32 = 0o600;
/// Mode of a certificate or public key on a node.
pub const NODE_CERT_MODE: u32 = 0o644;

/// A file a node needs in `/etc/kubernetes/pki/`. Its `Debug` never shows the
/// contents.
#[derive(Clone, PartialEq, Eq)]
pub struct PkiFile {
    /// Path relative to `/etc/kubernetes/pki/`: `ca.crt`, `etcd/server.key`, ...
    pub path: String,
    /// The PEM text.
    pub contents: String,
    /// Mode on the node: [`NODE_KEY_MODE`] for private keys, [`NODE_CERT_MODE`] for
    /// certificates and public keys.
    pub mode: u32,
}

impl PkiFile {
    /// Whether it is a private key.
    pub fn is_secret(&self) -> bool {
        self.path.ends_with(".key")
    }

    fn cert(path: impl Into<String>, contents: &str) -> PkiFile {
        PkiFile {
            path: path.into(),
            contents: contents.to_string(),
            mode: NODE_CERT_MODE,
        }
    }

    fn key(path: impl Into<String>, contents: &str) -> PkiFile {
        PkiFile {
            path: path.into(),
            contents: contents.to_string(),
            mode: NODE_KEY_MODE,
        }
    }
}

impl fmt::Debug for PkiFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let contents = if self.is_secret() {
            "<redacted>".to_string()
        } else {
            format!("<{} bytes>", self.contents.len())
        };
        f.debug_struct("PkiFile")
            .field("path", &self.path)
            .field("mode", &format_args!("{:04o}", self.mode))
            .field("contents", &format_args!("{contents}"))
            .finish()
    }
}

/// Something wrong with a certificate on disk. None of these is repaired
/// automatically: rotate the certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertProblem {
    /// Its names no longer match the cluster (a node's address changed,
    /// `kubernetes.extra_sans` or the endpoint was edited, ...).
    NamesChanged {
        /// Names the cluster now wants that the certificate lacks.
        missing: Vec<San>,
        /// Names the certificate has that the cluster no longer wants.
        unexpected: Vec<San>,
    },
    /// It was not signed by the current CA (an interrupted CA rotation, or a file
    /// copied from another cluster).
    NotSignedByCa,
    /// The certificate and the private key next to it do not belong together.
    KeyMismatch,
    /// Its validity has ended.
    Expired,
}

impl fmt::Display for CertProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |names: &[San]| {
            names
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            CertProblem::NamesChanged {
                missing,
                unexpected,
            } => {
                f.write_str("its names no longer match the cluster")?;
                if !missing.is_empty() {
                    write!(f, "; missing {}", list(missing))?;
                }
                if !unexpected.is_empty() {
                    write!(f, "; no longer wanted {}", list(unexpected))?;
                }
                f.write_str(" (rotate it)")
            }
            CertProblem::NotSignedByCa => f.write_str("not signed by the current CA (rotate it)"),
            CertProblem::KeyMismatch => {
                f.write_str("does not match the private key next to it (rotate it)")
            }
            CertProblem::Expired => f.write_str("expired (rotate it)"),
        }
    }
}

/// The state of one certificate, from [`Pki::status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertStatus {
    /// kubeadm's name for it: `ca`, `etcd/ca`, `apiserver`, `etcd/server`, `kubelet`,
    /// `admin`, ...
    pub name: String,
    /// The node it belongs to (`None` for the CAs and the admin certificate).
    pub node: Option<String>,
    /// Its file.
    pub path: PathBuf,
    /// The subject's common name.
    pub subject_cn: String,
    /// The end of its validity.
    pub not_after: SystemTime,
    /// Whole days of validity left, negative once expired.
    pub days_left: i64,
    /// What is wrong with it; empty when nothing is.
    pub problems: Vec<CertProblem>,
}

/// A certificate in memory, with what was read from it.
#[derive(Debug, Clone)]
struct Entry {
    pair: CertKey,
    info: CertInfo,
    problems: Vec<CertProblem>,
}

impl Entry {
    fn new(pair: CertKey, path: &Path) -> Result<Entry, PkiError> {
        let info = CertInfo::parse(&pair.cert_pem).map_err(|reason| PkiError::Invalid {
            path: path.to_path_buf(),
            reason,
        })?;
        Ok(Entry {
            pair,
            info,
            problems: Vec::new(),
        })
    }
}

/// The three CAs.
#[derive(Debug, Clone)]
struct Cas {
    cluster: Entry,
    etcd: Entry,
    front_proxy: Entry,
}

impl Cas {
    fn get(&self, kind: CaKind) -> &Entry {
        match kind {
            CaKind::Cluster => &self.cluster,
            CaKind::Etcd => &self.etcd,
            CaKind::FrontProxy => &self.front_proxy,
        }
    }

    fn get_mut(&mut self, kind: CaKind) -> &mut Entry {
        match kind {
            CaKind::Cluster => &mut self.cluster,
            CaKind::Etcd => &mut self.etcd,
            CaKind::FrontProxy => &mut self.front_proxy,
        }
    }
}

/// The cluster's PKI, loaded from (and kept in) `<state_dir>/pki/`. Its `Debug`
/// shows no secret.
pub struct Pki {
    store: Store,
    plan: Plan,
    cas: Cas,
    leaves: std::collections::BTreeMap<LeafId, Entry>,
    sa: KeyPairPem,
    legacy_token_id: Option<String>,
    ca_hash: String,
    admin_kubeconfig: String,
    written: Vec<PathBuf>,
    /// Per hostname: its position in `plan.nodes` and those of its leaves in
    /// `plan.leaves` (O(1) lookups with thousands of nodes).
    by_host: std::collections::HashMap<String, (usize, Vec<usize>)>,
}

/// The [`Pki::by_host`] index of `plan`.
fn index_hosts(plan: &Plan) -> std::collections::HashMap<String, (usize, Vec<usize>)> {
    let mut by: std::collections::HashMap<String, (usize, Vec<usize>)> = plan
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.hostname.clone(), (i, Vec::new())))
        .collect();
    for (i, leaf) in plan.leaves.iter().enumerate() {
        if let Some(host) = &leaf.id.node
            && let Some((_, leaves)) = by.get_mut(host)
        {
            leaves.push(i);
        }
    }
    by
}

impl fmt::Debug for Pki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pki")
            .field("dir", &self.store.dir())
            .field("ca_cert_hash", &self.ca_hash)
            .field("nodes", &self.plan.nodes.len())
            .field("leaf_certificates", &self.leaves.len())
            .finish_non_exhaustive()
    }
}

fn crt(base: &str) -> String {
    format!("{base}.crt")
}

fn key(base: &str) -> String {
    format!("{base}.key")
}

fn pending(kind: CaKind) -> String {
    format!("{}.pending", kind.base_name())
}

impl Pki {
    /// Loads the PKI of `cluster` from `<state_dir>/pki/`, creating whatever is
    /// missing (the directories too), with the current time.
    ///
    /// Refuses when something in the PKI directory is open to
    /// group or others or is a symbolic link, when a CA certificate exists without its
    /// key (or the reverse) or they do not match, or when a file cannot be read.
    pub fn load_or_create(state_dir: &Path, cluster: &Cluster) -> Result<Pki, PkiError> {
        Pki::load_or_create_at(state_dir, cluster, SystemTime::now())
    }

    /// [`Pki::load_or_create`] with `now` as the time new certificates start from.
    pub fn load_or_create_at(
        state_dir: &Path,
        cluster: &Cluster,
        now: SystemTime,
    ) -> Result<Pki, PkiError> {
        let store = Store::open(state_dir)?;
        let plan = plan::plan(cluster);
        let mut written = Vec::new();
        let (cluster_ca, r1) = load_or_new_ca(&store, CaKind::Cluster, now, &mut written)?;
        let (etcd_ca, r2) = load_or_new_ca(&store, CaKind::Etcd, now, &mut written)?;
        let (front_proxy_ca, r3) = load_or_new_ca(&store, CaKind::FrontProxy, now, &mut written)?;
        let cas = Cas {
            cluster: cluster_ca,
            etcd: etcd_ca,
            front_proxy: front_proxy_ca,
        };
        let sa = load_or_new_sa(&store, &mut written)?;
        let legacy_token_id = store
            .read(LEGACY_TOKEN_FILE)?
            .and_then(|t| t.trim().split_once('.').map(|(id, _)| id.to_string()));
        // Loading a leaf verifies it against its key and CA: thousands of signature
        // checks for a large fleet, spread over every core.
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = plan.leaves.len().div_ceil(threads).max(1);
        /// One thread's leaves and the files it wrote.
        type Part = Result<(Vec<(LeafId, Entry)>, Vec<PathBuf>), PkiError>;
        let loaded: Vec<Part> = std::thread::scope(|scope| {
            let handles: Vec<_> = plan
                .leaves
                .chunks(chunk)
                .map(|specs| {
                    let (store, cas) = (&store, &cas);
                    scope.spawn(move || {
                        let mut written = Vec::new();
                        let mut out = Vec::with_capacity(specs.len());
                        for spec in specs {
                            let ca = cas.get(spec.id.kind.ca());
                            let entry = load_or_issue_leaf(store, spec, ca, now, &mut written)?;
                            out.push((spec.id.clone(), entry));
                        }
                        Ok((out, written))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(PkiError::Generate {
                            what: "leaf certificates".into(),
                            reason: "a loading thread panicked".into(),
                        })
                    })
                })
                .collect()
        });
        let mut leaves = std::collections::BTreeMap::new();
        for part in loaded {
            let (entries, w) = part?;
            leaves.extend(entries);
            written.extend(w);
        }
        let ca_hash = secrets::spki_hash(&cas.cluster.info.spki_der);
        let mut pki = Pki {
            store,
            by_host: index_hosts(&plan),
            plan,
            cas,
            leaves,
            sa,
            legacy_token_id,
            ca_hash,
            admin_kubeconfig: String::new(),
            written,
        };
        // Finish a CA rotation that was interrupted after the new CA was in place.
        for (kind, recovered) in [
            (CaKind::Cluster, r1),
            (CaKind::Etcd, r2),
            (CaKind::FrontProxy, r3),
        ] {
            if recovered {
                pki.reissue_where(now, |spec, entry| {
                    spec.id.kind.ca() == kind
                        && entry.problems.contains(&CertProblem::NotSignedByCa)
                })?;
                pki.store.remove(&pending(kind))?;
            }
        }
        pki.refresh_kubeconfig()?;
        Ok(pki)
    }

    /// The PKI directory, `<state_dir>/pki`.
    pub fn dir(&self) -> &Path {
        self.store.dir()
    }

    /// The files the last [`load_or_create`](Pki::load_or_create) or rotation wrote,
    /// in order; empty when everything was reused.
    pub fn written(&self) -> &[PathBuf] {
        &self.written
    }

    /// What the cluster needs, as computed when the PKI was loaded.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The cluster CA's certificate, PEM (`ca.crt`).
    pub fn ca_cert_pem(&self) -> &str {
        &self.cas.cluster.pair.cert_pem
    }

    /// A CA's certificate, PEM.
    pub fn ca_cert_pem_of(&self, which: CaKind) -> &str {
        &self.cas.get(which).pair.cert_pem
    }

    /// The cluster CA's discovery hash for `kubeadm join
    /// --discovery-token-ca-cert-hash`: `sha256:<hex of SHA-256 of its DER
    /// SubjectPublicKeyInfo>`. slipway's own nodes do not need it (their join
    /// credential carries the CA); it is for a node joined by hand with a token.
    pub fn ca_cert_hash(&self) -> &str {
        &self.ca_hash
    }

    /// The id of the shared bootstrap token an older slipway kept in
    /// [`LEGACY_TOKEN_FILE`], when that file is still there: clusters installed with
    /// it accept that token, which never expires, until it is deleted
    /// (`kubeadm token delete <id>`). Nothing uses it any more.
    pub fn legacy_token_id(&self) -> Option<&str> {
        self.legacy_token_id.as_deref()
    }

    /// A new join credential for node `hostname`, valid from now for the cluster's
    /// install window and an hour ([`join`]). Nothing is written: every call makes a
    /// new key and certificate. Fails with [`PkiError::UnknownNode`] for a hostname
    /// not in the cluster.
    pub fn join_credential(&self, hostname: &str) -> Result<JoinCredential, PkiError> {
        self.join_credential_at(hostname, SystemTime::now())
    }

    /// [`Pki::join_credential`] as of `now`.
    pub fn join_credential_at(
        &self,
        hostname: &str,
        now: SystemTime,
    ) -> Result<JoinCredential, PkiError> {
        if !self.by_host.contains_key(hostname) {
            return Err(PkiError::UnknownNode {
                hostname: hostname.to_string(),
            });
        }
        join::mint(
            hostname,
            &self.plan.cluster_name,
            &self.plan.server,
            &self.cas.cluster.pair,
            now,
            self.plan.join_validity,
        )
    }

    /// The service-account public key, PEM (`sa.pub`).
    pub fn service_account_pub_pem(&self) -> &str {
        &self.sa.pub_pem
    }

    /// The admin kubeconfig (also in `<state_dir>/pki/admin.conf`): client certificate
    /// CN `kubernetes-admin`, O `kubeadm:cluster-admins`, server
    /// `https://<endpoint address>:<port>`, the CA embedded.
    pub fn admin_kubeconfig(&self) -> &str {
        &self.admin_kubeconfig
    }

    /// Where the admin kubeconfig is.
    pub fn admin_kubeconfig_path(&self) -> PathBuf {
        self.store.path(ADMIN_KUBECONFIG_FILE)
    }

    /// The files node `hostname` needs in `/etc/kubernetes/pki/`; empty for a
    /// hostname that is not in the cluster.
    ///
    /// Every node gets `ca.crt` and its kubelet serving certificate (`kubelet.crt`,
    /// `kubelet.key`: point the kubelet's `tlsCertFile`/`tlsPrivateKeyFile` at them).
    /// A control-plane node also gets the CA keys (`ca.key`, `front-proxy-ca.*`,
    /// `etcd/ca.*`), `sa.key`/`sa.pub` and its `apiserver*` and `front-proxy-client`
    /// certificates; an etcd node `etcd/ca.crt` and its `etcd/server`, `etcd/peer`
    /// and `etcd/healthcheck-client` certificates.
    pub fn node_files(&self, hostname: &str) -> Vec<PkiFile> {
        let Some((node, leaves)) = self
            .by_host
            .get(hostname)
            .and_then(|(i, leaves)| Some((self.plan.nodes.get(*i)?, leaves)))
        else {
            return Vec::new();
        };
        let mut files = vec![PkiFile::cert("ca.crt", self.ca_cert_pem())];
        if node.control_plane {
            files.push(PkiFile::key("ca.key", &self.cas.cluster.pair.key_pem));
            for kind in [CaKind::FrontProxy, CaKind::Etcd] {
                let ca = &self.cas.get(kind).pair;
                files.push(PkiFile::cert(crt(kind.base_name()), &ca.cert_pem));
                files.push(PkiFile::key(key(kind.base_name()), &ca.key_pem));
            }
            files.push(PkiFile::key(SA_KEY_FILE, &self.sa.key_pem));
            files.push(PkiFile::cert(SA_PUB_FILE, &self.sa.pub_pem));
        } else if node.etcd {
            files.push(PkiFile::cert(
                crt(CaKind::Etcd.base_name()),
                &self.cas.etcd.pair.cert_pem,
            ));
        }
        for spec in leaves.iter().filter_map(|i| self.plan.leaves.get(*i)) {
            if let Some(entry) = self.leaves.get(&spec.id) {
                let base = spec.id.kind.base_name();
                files.push(PkiFile::cert(crt(base), &entry.pair.cert_pem));
                files.push(PkiFile::key(key(base), &entry.pair.key_pem));
            }
        }
        files
    }

    /// Every certificate (the CAs, then each node's, then the admin's) with its
    /// subject, end of validity, days left and problems, as of now.
    pub fn status(&self) -> Vec<CertStatus> {
        self.status_at(SystemTime::now())
    }

    /// [`Pki::status`] as of `now`.
    pub fn status_at(&self, now: SystemTime) -> Vec<CertStatus> {
        let one = |name: &str, node: Option<String>, base: String, entry: &Entry| {
            let days_left = entry.info.days_left(now);
            let mut problems = entry.problems.clone();
            if entry.info.not_after <= now {
                problems.push(CertProblem::Expired);
            }
            CertStatus {
                name: name.to_string(),
                node,
                path: self.store.path(&crt(&base)),
                subject_cn: entry.info.common_name.clone(),
                not_after: entry.info.not_after,
                days_left,
                problems,
            }
        };
        let mut out = Vec::new();
        for kind in CaKind::ALL {
            out.push(one(
                kind.base_name(),
                None,
                kind.base_name().to_string(),
                self.cas.get(kind),
            ));
        }
        for spec in &self.plan.leaves {
            if let Some(entry) = self.leaves.get(&spec.id) {
                out.push(one(
                    spec.id.kind.base_name(),
                    spec.id.node.clone(),
                    spec.id.stored_base(),
                    entry,
                ));
            }
        }
        out
    }

    /// Replaces leaf certificates (new keys, new certificates from now): every node's
    /// and the admin's with `None`, or one node's with `Some(hostname)`. The CAs are
    /// kept. Fails with [`PkiError::UnknownNode`] for a hostname not in the cluster.
    pub fn rotate_leaves(&mut self, node: Option<&str>) -> Result<(), PkiError> {
        if let Some(host) = node
            && !self.by_host.contains_key(host)
        {
            return Err(PkiError::UnknownNode {
                hostname: host.to_string(),
            });
        }
        self.written.clear();
        let now = SystemTime::now();
        self.reissue_where(now, |spec, _| {
            node.is_none() || spec.id.node.as_deref() == node
        })?;
        self.refresh_kubeconfig()
    }

    /// Replaces a CA (new key, new certificate from now) and reissues every leaf
    /// certificate it signed. Every node must then get its new files; after the
    /// cluster CA, join credentials are signed by (and carry) the new CA.
    ///
    /// The new CA is first written to `<base>.pending`, so a rotation interrupted
    /// half-way is finished by the next [`load_or_create`](Pki::load_or_create).
    pub fn rotate_ca(&mut self, which: CaKind) -> Result<(), PkiError> {
        self.written.clear();
        let now = SystemTime::now();
        let pair = issue::new_ca(which, now)?;
        self.store.write(
            &pending(which),
            &format!("{}{}", pair.key_pem, pair.cert_pem),
        )?;
        let entry = install_ca(&self.store, which, pair, &mut self.written)?;
        *self.cas.get_mut(which) = entry;
        if which == CaKind::Cluster {
            self.ca_hash = secrets::spki_hash(&self.cas.cluster.info.spki_der);
        }
        self.reissue_where(now, |spec, _| spec.id.kind.ca() == which)?;
        self.refresh_kubeconfig()?;
        self.store.remove(&pending(which))
    }

    /// Issues and writes anew every planned leaf for which `pick` is true.
    fn reissue_where(
        &mut self,
        now: SystemTime,
        pick: impl Fn(&LeafSpec, &Entry) -> bool,
    ) -> Result<(), PkiError> {
        for spec in &self.plan.leaves {
            let Some(old) = self.leaves.get(&spec.id) else {
                continue;
            };
            if !pick(spec, old) {
                continue;
            }
            let ca = self.cas.get(spec.id.kind.ca());
            let entry = issue_and_write(&self.store, spec, ca, now, &mut self.written)?;
            self.leaves.insert(spec.id.clone(), entry);
        }
        Ok(())
    }

    /// Rebuilds the admin kubeconfig, writing it when it changed.
    fn refresh_kubeconfig(&mut self) -> Result<(), PkiError> {
        let admin_id = LeafId {
            node: None,
            kind: LeafKind::Admin,
        };
        let Some(admin) = self.leaves.get(&admin_id) else {
            return Ok(());
        };
        let text = kubeconfig::admin_kubeconfig(
            &self.plan.cluster_name,
            &self.plan.server,
            &self.cas.cluster.pair.cert_pem,
            &admin.pair,
        );
        if self.store.read(ADMIN_KUBECONFIG_FILE)?.as_deref() != Some(text.as_str()) {
            self.written
                .push(self.store.write(ADMIN_KUBECONFIG_FILE, &text)?);
        }
        self.admin_kubeconfig = text;
        Ok(())
    }
}

/// Loads CA `kind`, or makes it when neither its certificate nor its key exists.
/// The flag says whether an interrupted rotation's `.pending` CA was installed.
fn load_or_new_ca(
    store: &Store,
    kind: CaKind,
    now: SystemTime,
    written: &mut Vec<PathBuf>,
) -> Result<(Entry, bool), PkiError> {
    let base = kind.base_name();
    let (crt_rel, key_rel, pending_rel) = (crt(base), key(base), pending(kind));
    if let Some(text) = store.read(&pending_rel)? {
        let invalid = |reason: &str| PkiError::Invalid {
            path: store.path(&pending_rel),
            reason: reason.to_string(),
        };
        let at = text
            .find("-----BEGIN CERTIFICATE-----")
            .ok_or_else(|| invalid("no certificate in it"))?;
        let pair = CertKey {
            key_pem: text[..at].to_string(),
            cert_pem: text[at..].to_string(),
        };
        check_pair(&pair, &store.path(&pending_rel), &store.path(&pending_rel))?;
        return Ok((install_ca(store, kind, pair, written)?, true));
    }
    match (store.read(&crt_rel)?, store.read(&key_rel)?) {
        (Some(cert_pem), Some(key_pem)) => {
            let pair = CertKey { cert_pem, key_pem };
            let entry = check_pair(&pair, &store.path(&crt_rel), &store.path(&key_rel))?;
            if !entry.info.is_ca {
                return Err(PkiError::Invalid {
                    path: store.path(&crt_rel),
                    reason: "not a CA certificate (no basicConstraints CA:TRUE)".into(),
                });
            }
            Ok((entry, false))
        }
        (Some(_), None) => Err(PkiError::MissingKey {
            cert: store.path(&crt_rel),
            key: store.path(&key_rel),
        }),
        (None, Some(_)) => Err(PkiError::MissingCert {
            key: store.path(&key_rel),
            cert: store.path(&crt_rel),
        }),
        (None, None) => {
            let pair = issue::new_ca(kind, now)?;
            store.write(&pending_rel, &format!("{}{}", pair.key_pem, pair.cert_pem))?;
            let entry = install_ca(store, kind, pair, written)?;
            store.remove(&pending_rel)?;
            Ok((entry, false))
        }
    }
}

/// Parses a certificate and key that must belong together.
fn check_pair(pair: &CertKey, cert_path: &Path, key_path: &Path) -> Result<Entry, PkiError> {
    let entry = Entry::new(pair.clone(), cert_path)?;
    let spki = key_spki(&pair.key_pem).map_err(|reason| PkiError::Invalid {
        path: key_path.to_path_buf(),
        reason,
    })?;
    if spki != entry.info.spki_der {
        return Err(PkiError::KeyMismatch {
            cert: cert_path.to_path_buf(),
            key: key_path.to_path_buf(),
        });
    }
    Ok(entry)
}

/// Writes a CA's key, then its certificate.
fn install_ca(
    store: &Store,
    kind: CaKind,
    pair: CertKey,
    written: &mut Vec<PathBuf>,
) -> Result<Entry, PkiError> {
    let base = kind.base_name();
    written.push(store.write(&key(base), &pair.key_pem)?);
    let path = store.write(&crt(base), &pair.cert_pem)?;
    written.push(path.clone());
    Entry::new(pair, &path)
}

fn load_or_new_sa(store: &Store, written: &mut Vec<PathBuf>) -> Result<KeyPairPem, PkiError> {
    let (key_path, pub_path) = (store.path(SA_KEY_FILE), store.path(SA_PUB_FILE));
    match (store.read(SA_KEY_FILE)?, store.read(SA_PUB_FILE)?) {
        (Some(key_pem), Some(pub_pem)) => {
            let key = key_spki(&key_pem).map_err(|reason| PkiError::Invalid {
                path: key_path.clone(),
                reason,
            })?;
            let public = public_key_spki(&pub_pem).map_err(|reason| PkiError::Invalid {
                path: pub_path.clone(),
                reason,
            })?;
            if key != public {
                return Err(PkiError::KeyMismatch {
                    cert: pub_path,
                    key: key_path,
                });
            }
            Ok(KeyPairPem { key_pem, pub_pem })
        }
        (Some(key_pem), None) => {
            // The public key follows from the private one: an interrupted first run.
            let pub_pem = issue::public_key_pem(&key_pem).map_err(|reason| PkiError::Invalid {
                path: key_path,
                reason,
            })?;
            written.push(store.write(SA_PUB_FILE, &pub_pem)?);
            Ok(KeyPairPem { key_pem, pub_pem })
        }
        (None, Some(_)) => Err(PkiError::MissingKey {
            cert: pub_path,
            key: key_path,
        }),
        (None, None) => {
            let sa = issue::new_service_account_key()?;
            written.push(store.write(SA_KEY_FILE, &sa.key_pem)?);
            written.push(store.write(SA_PUB_FILE, &sa.pub_pem)?);
            Ok(sa)
        }
    }
}

/// Loads a leaf and notes what is wrong with it, or issues it when its certificate or
/// key is missing.
fn load_or_issue_leaf(
    store: &Store,
    spec: &LeafSpec,
    ca: &Entry,
    now: SystemTime,
    written: &mut Vec<PathBuf>,
) -> Result<Entry, PkiError> {
    let base = spec.id.stored_base();
    let (crt_rel, key_rel) = (crt(&base), key(&base));
    let (Some(cert_pem), Some(key_pem)) = (store.read(&crt_rel)?, store.read(&key_rel)?) else {
        // A leaf's key alone is of no use (an interrupted write): make both anew.
        return issue_and_write(store, spec, ca, now, written);
    };
    let mut entry = Entry::new(CertKey { cert_pem, key_pem }, &store.path(&crt_rel))?;
    let spki = key_spki(&entry.pair.key_pem).map_err(|reason| PkiError::Invalid {
        path: store.path(&key_rel),
        reason,
    })?;
    if spki != entry.info.spki_der {
        entry.problems.push(CertProblem::KeyMismatch);
    }
    if !entry.info.signed_by(&ca.info) {
        entry.problems.push(CertProblem::NotSignedByCa);
    }
    let missing: Vec<San> = spec
        .sans
        .iter()
        .filter(|s| !entry.info.sans.contains(s))
        .cloned()
        .collect();
    let unexpected: Vec<San> = entry
        .info
        .sans
        .iter()
        .filter(|s| !spec.sans.contains(s))
        .cloned()
        .collect();
    if !missing.is_empty() || !unexpected.is_empty() {
        entry.problems.push(CertProblem::NamesChanged {
            missing,
            unexpected,
        });
    }
    Ok(entry)
}

/// Issues a leaf and writes its key, then its certificate.
fn issue_and_write(
    store: &Store,
    spec: &LeafSpec,
    ca: &Entry,
    now: SystemTime,
    written: &mut Vec<PathBuf>,
) -> Result<Entry, PkiError> {
    let base = spec.id.stored_base();
    let pair = issue::issue_leaf(spec, &ca.pair, now)?;
    written.push(store.write(&key(&base), &pair.key_pem)?);
    let path = store.write(&crt(&base), &pair.cert_pem)?;
    written.push(path.clone());
    Entry::new(pair, &path)
}
