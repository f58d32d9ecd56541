//! Bootstrap credentials in what the machines get, rendered with a real PKI: no
//! kubeadm config carries a credential that does not expire (no `ttl: 0s` token, no
//! token value at all, no certificate key, no token discovery); each joining node
//! gets a join credential of its own that expires shortly after the install window;
//! and no worker receives a CA's (or the service-account) private key.
//!
//! Every node of a cluster with three control-plane nodes and two workers, in both
//! config formats (Ignition, cloud-config) and both kubeadm API versions (v1beta3 for
//! Kubernetes 1.30, v1beta4 from 1.31).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use slipway_cluster::{Cluster, ConfigFormat, NoHost, Node, Role, load_str};
use slipway_pki::Pki;
use slipway_pki::inspect::{CertInfo, key_spki};
use slipway_render::kubeadm::{self, Join};
use slipway_render::{Artifact, SecretFile, Secrets, render};
use yaml_rust2::{Yaml, YamlLoader};

type R = Result<(), Box<dyn std::error::Error>>;
type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// The PKI as `slipway serve` hands it to rendering (crates/slipway/src/state.rs).
struct PkiSecrets(Pki);

impl Secrets for PkiSecrets {
    fn node_files(&self, node: &Node) -> Vec<SecretFile> {
        self.0
            .node_files(&node.hostname)
            .into_iter()
            .map(|f| SecretFile {
                path: format!("/etc/kubernetes/pki/{}", f.path),
                contents: f.contents,
                mode: f.mode,
            })
            .collect()
    }

    fn join_kubeconfig(&self, node: &Node) -> Result<String, String> {
        self.0
            .join_credential(&node.hostname)
            .map(|c| c.kubeconfig)
            .map_err(|e| e.to_string())
    }
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Res<TempDir> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("slipway-render-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The sextant-like example (three control-plane nodes with stacked etcd, two
/// workers) in `format` and Kubernetes `version`.
fn cluster(format: ConfigFormat, version: &str) -> Res<Cluster> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sextant-like.yaml");
    let text = std::fs::read_to_string(&path)?;
    let format_name = match format {
        ConfigFormat::Ignition => "ignition",
        ConfigFormat::CloudConfig => "cloud-config",
        ConfigFormat::Template => return Err("no template here".into()),
    };
    let edited = text
        .replace(
            "config_format: cloud-config",
            &format!("config_format: {format_name}"),
        )
        .replace("version: v1.31.2", &format!("version: {version}"));
    assert!(
        edited.contains(&format!("config_format: {format_name}"))
            && edited.contains(&format!("version: {version}")),
        "the example changed: update this test"
    );
    let loaded = load_str("sextant-like.yaml", &edited, Path::new("/"), &NoHost);
    let cluster = loaded
        .valid()
        .cloned()
        .ok_or_else(|| format!("invalid cluster: {:?}", loaded.diagnostics))?;
    let cps = cluster
        .nodes
        .iter()
        .filter(|n| n.has_role(Role::ControlPlane))
        .count();
    assert_eq!(cps, 3, "three control-plane nodes");
    assert_eq!(cluster.nodes.len() - cps, 2, "two workers");
    Ok(cluster)
}

/// Every combination tested.
fn clusters() -> Res<Vec<(String, Cluster)>> {
    let mut out = Vec::new();
    for format in [ConfigFormat::Ignition, ConfigFormat::CloudConfig] {
        for version in ["v1.30.6", "v1.31.2"] {
            out.push((format!("{format:?} {version}"), cluster(format, version)?));
        }
    }
    Ok(out)
}

/// The files of an installed config: path, mode, contents.
fn installed_files(format: ConfigFormat, text: &str) -> Res<Vec<(String, u32, String)>> {
    let mut out = Vec::new();
    match format {
        ConfigFormat::Ignition => {
            let v: serde_json::Value = serde_json::from_str(text)?;
            for f in v["storage"]["files"].as_array().ok_or("no files")? {
                let src = f["contents"]["source"].as_str().ok_or("no source")?;
                let b64 = src.strip_prefix("data:;base64,").ok_or("not a data URL")?;
                out.push((
                    f["path"].as_str().ok_or("no path")?.to_string(),
                    u32::try_from(f["mode"].as_i64().ok_or("no mode")?)?,
                    String::from_utf8(STANDARD.decode(b64)?)?,
                ));
            }
        }
        ConfigFormat::CloudConfig => {
            let docs = YamlLoader::load_from_str(text)?;
            let doc = docs.first().ok_or("empty cloud-config")?;
            for f in doc["write_files"].as_vec().ok_or("no write_files")? {
                let perm = f["permissions"].as_str().ok_or("no permissions")?;
                out.push((
                    f["path"].as_str().ok_or("no path")?.to_string(),
                    u32::from_str_radix(perm, 8)?,
                    f["content"].as_str().ok_or("no content")?.to_string(),
                ));
            }
        }
        ConfigFormat::Template => return Err("no template here".into()),
    }
    Ok(out)
}

/// A Go duration (`10m`, `1h30m`, `45s`) in seconds.
fn go_duration(text: &str) -> Res<u64> {
    let mut total = 0u64;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: u64 = digits.parse()?;
        digits.clear();
        total += n * match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(format!("unit {c} in {text}").into()),
        };
    }
    if !digits.is_empty() {
        return Err(format!("no unit at the end of {text}").into());
    }
    Ok(total)
}

/// Every key of every mapping in `y`, recursively.
fn keys(y: &Yaml, out: &mut BTreeSet<String>) {
    match y {
        Yaml::Hash(h) => {
            for (k, v) in h {
                if let Some(k) = k.as_str() {
                    out.insert(k.to_string());
                }
                keys(v, out);
            }
        }
        Yaml::Array(a) => a.iter().for_each(|v| keys(v, out)),
        _ => {}
    }
}

/// The keys of mapping `y`.
fn own_keys(y: &Yaml) -> Vec<String> {
    y.as_hash()
        .map(|h| {
            h.keys()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Checks one node's kubeadm config; returns its documents.
fn check_kubeadm(c: &Cluster, node: &Node, text: &str, what: &str) -> Res<Vec<Yaml>> {
    let docs = YamlLoader::load_from_str(text)?;
    let minor: u32 = c
        .kubernetes
        .version
        .split('.')
        .nth(1)
        .ok_or("version")?
        .parse()?;
    let want_api = if minor >= 31 {
        "kubeadm.k8s.io/v1beta4"
    } else {
        "kubeadm.k8s.io/v1beta3"
    };
    // Nothing that is, or stands for, a shared or lasting credential.
    let mut all = BTreeSet::new();
    docs.iter().for_each(|d| keys(d, &mut all));
    for banned in [
        "token",
        "certificateKey",
        "bootstrapToken",
        "tlsBootstrapToken",
        "caCertHashes",
        "unsafeSkipCAVerification",
        "expires",
    ] {
        assert!(!all.contains(banned), "{what}: `{banned}` in\n{text}");
    }
    assert!(
        !text.contains("ttl: 0") && !text.contains("ttl: \"0"),
        "{what}: a token that never expires in\n{text}"
    );
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    match kubeadm::join_kind(c, node) {
        Join::Init => {
            assert_eq!(
                kinds,
                [
                    "InitConfiguration",
                    "ClusterConfiguration",
                    "KubeletConfiguration"
                ],
                "{what}"
            );
            let init = &docs[0];
            assert_eq!(init["apiVersion"].as_str(), Some(want_api), "{what}");
            // kubeadm always makes a token at init: this one expires, and soon.
            let tokens = init["bootstrapTokens"]
                .as_vec()
                .ok_or("no bootstrapTokens")?;
            assert_eq!(tokens.len(), 1, "{what}");
            for t in tokens {
                let ttl = go_duration(t["ttl"].as_str().ok_or("a token without ttl")?)?;
                assert!(ttl > 0 && ttl <= 3600, "{what}: ttl {ttl}s");
                assert!(t["token"].is_badvalue(), "{what}: a token value");
            }
        }
        join => {
            assert_eq!(
                kinds,
                ["JoinConfiguration", "KubeletConfiguration"],
                "{what}"
            );
            let j = &docs[0];
            assert_eq!(j["apiVersion"].as_str(), Some(want_api), "{what}");
            // discovery.file.kubeConfigPath, kubeadm's FileDiscovery, and nothing else.
            assert_eq!(own_keys(&j["discovery"]), ["file"], "{what}");
            assert_eq!(
                own_keys(&j["discovery"]["file"]),
                ["kubeConfigPath"],
                "{what}"
            );
            assert_eq!(
                j["discovery"]["file"]["kubeConfigPath"].as_str(),
                Some(kubeadm::JOIN_KUBECONFIG_PATH),
                "{what}"
            );
            assert_eq!(
                j["nodeRegistration"]["name"].as_str(),
                Some(node.hostname.as_str())
            );
            if join == Join::ControlPlane {
                assert_eq!(own_keys(&j["controlPlane"]), ["localAPIEndpoint"], "{what}");
                assert_eq!(
                    j["controlPlane"]["localAPIEndpoint"]["advertiseAddress"].as_str(),
                    Some(node.ip.to_string().as_str()),
                    "{what}"
                );
            } else {
                assert!(j["controlPlane"].is_badvalue(), "{what}");
            }
        }
    }
    Ok(docs)
}

/// Checks a join kubeconfig: the node's own user, the cluster's CA, a client
/// certificate of kubeadm's bootstrap group that expires within the install window
/// and an hour of `now`. Returns the SPKI of its key.
fn check_join_kubeconfig(pki: &Pki, node: &Node, text: &str, now: SystemTime) -> Res<Vec<u8>> {
    let docs = YamlLoader::load_from_str(text)?;
    let doc = docs.first().ok_or("empty kubeconfig")?;
    let b64 = |y: &Yaml| -> Res<String> {
        Ok(String::from_utf8(
            STANDARD.decode(y.as_str().ok_or("missing")?)?,
        )?)
    };
    assert_eq!(doc["kind"].as_str(), Some("Config"));
    let user = format!("system:bootstrap:slipway-{}", node.hostname);
    assert_eq!(doc["users"][0]["name"].as_str(), Some(user.as_str()));
    assert_eq!(
        doc["contexts"][0]["context"]["user"].as_str(),
        Some(user.as_str())
    );
    assert_eq!(
        doc["current-context"].as_str(),
        doc["contexts"][0]["name"].as_str()
    );
    assert_eq!(
        doc["clusters"][0]["cluster"]["server"].as_str(),
        Some(pki.plan().server.as_str())
    );
    let ca = b64(&doc["clusters"][0]["cluster"]["certificate-authority-data"])?;
    assert_eq!(ca, pki.ca_cert_pem());
    let cert = CertInfo::parse(&b64(&doc["users"][0]["user"]["client-certificate-data"])?)?;
    let key = b64(&doc["users"][0]["user"]["client-key-data"])?;
    assert_eq!(cert.common_name, user);
    assert_eq!(
        cert.organizations,
        ["system:bootstrappers:kubeadm:default-node-token"]
    );
    assert!(cert.client_auth && !cert.server_auth && !cert.is_ca);
    assert!(cert.signed_by(&CertInfo::parse(pki.ca_cert_pem())?));
    assert_eq!(key_spki(&key)?, cert.spki_der);
    // The install window of the example is the default, 30 minutes.
    let left = cert.not_after.duration_since(now)?;
    assert!(
        left >= Duration::from_secs(1800) && left <= Duration::from_secs(1800 + 3600 + 60),
        "{left:?}"
    );
    assert!(cert.not_before <= now);
    Ok(cert.spki_der)
}

#[test]
fn no_rendered_kubeadm_config_carries_a_non_expiring_credential() -> R {
    for (name, c) in clusters()? {
        let state = TempDir::new("bootstrap")?;
        let pki = Pki::load_or_create(&state.0, &c)?;
        let secrets = PkiSecrets(pki);
        let mut seen = BTreeSet::new();
        for node in &c.nodes {
            let what = format!("{name} {}", node.hostname);
            let text = render(&c, node, Artifact::Kubeadm, &secrets, None)?;
            check_kubeadm(&c, node, &text, &what)?;
            seen.insert(format!("{:?}", kubeadm::join_kind(&c, node)));
            // The installed config holds the same kubeadm config.
            let installed = render(&c, node, Artifact::Installed, &secrets, None)?;
            let files = installed_files(c.os.config_format, &installed)?;
            let inside: Vec<&String> = files
                .iter()
                .filter(|(p, _, _)| p == kubeadm::CONFIG_PATH)
                .map(|(_, _, text)| text)
                .collect();
            assert_eq!(inside, [&text], "{what}");
            assert!(!installed.contains("ttl: 0s"), "{what}");
        }
        assert_eq!(
            seen.into_iter().collect::<Vec<_>>(),
            ["ControlPlane", "Init", "Worker"],
            "{name}"
        );
    }
    Ok(())
}

#[test]
fn joining_nodes_get_their_own_expiring_credential_and_workers_no_ca_key() -> R {
    for (name, c) in clusters()? {
        let state = TempDir::new("join")?;
        let secrets = PkiSecrets(Pki::load_or_create(&state.0, &c)?);
        let pki = &secrets.0;
        // The private keys only control-plane nodes may hold, by their public halves.
        let init = kubeadm::init_node(&c).ok_or("no init node")?;
        let ca_keys: std::collections::BTreeMap<String, Vec<u8>> = pki
            .node_files(&init.hostname)
            .into_iter()
            .filter(|f| {
                ["ca.key", "front-proxy-ca.key", "etcd/ca.key", "sa.key"].contains(&f.path.as_str())
            })
            .map(|f| Ok((f.path.clone(), key_spki(&f.contents)?)))
            .collect::<Result<_, String>>()?;
        assert_eq!(ca_keys.len(), 4, "{name}");
        let mut join_keys = BTreeSet::new();
        for node in &c.nodes {
            let what = format!("{name} {}", node.hostname);
            let now = SystemTime::now();
            let installed = render(&c, node, Artifact::Installed, &secrets, None)?;
            let files = installed_files(c.os.config_format, &installed)?;
            let join = kubeadm::join_kind(&c, node);
            // Every private key the node receives, as the SPKI of its public half:
            // PEM files, and the key inside the join kubeconfig.
            let mut keys = Vec::new();
            for (path, mode, text) in &files {
                if text.contains("PRIVATE KEY") {
                    assert_eq!(*mode, 0o600, "{what}: {path}");
                    keys.push((path.clone(), key_spki(text)?));
                }
            }
            let joins: Vec<&(String, u32, String)> = files
                .iter()
                .filter(|(p, _, _)| p == kubeadm::JOIN_KUBECONFIG_PATH)
                .collect();
            if join == Join::Init {
                assert!(joins.is_empty(), "{what}: the init node joins nothing");
            } else {
                let [(_, mode, text)] = joins.as_slice() else {
                    return Err(format!("{what}: {} join kubeconfigs", joins.len()).into());
                };
                assert_eq!(*mode, 0o600, "{what}");
                let spki = check_join_kubeconfig(pki, node, text, now)?;
                assert!(join_keys.insert(spki.clone()), "{what}: a key seen before");
                keys.push((kubeadm::JOIN_KUBECONFIG_PATH.to_string(), spki));
                // Removed once kubeadm join has succeeded.
                assert!(
                    installed.contains(&format!(
                        "ExecStartPost=/usr/bin/rm -f {}",
                        kubeadm::JOIN_KUBECONFIG_PATH
                    )),
                    "{what}"
                );
            }
            let held: BTreeSet<&str> = ca_keys
                .iter()
                .filter(|(_, spki)| keys.iter().any(|(_, k)| k == *spki))
                .map(|(p, _)| p.as_str())
                .collect();
            if node.has_role(Role::ControlPlane) {
                // The shared keys kubeadm would otherwise download with a certificate key.
                assert_eq!(held.len(), 4, "{what}: {held:?}");
            } else {
                assert!(held.is_empty(), "{what}: a worker holds {held:?}");
                let paths: Vec<&str> = keys.iter().map(|(p, _)| p.as_str()).collect();
                assert_eq!(
                    paths,
                    [
                        "/etc/kubernetes/pki/kubelet.key",
                        kubeadm::JOIN_KUBECONFIG_PATH
                    ],
                    "{what}"
                );
            }
            // Every render makes a new credential.
            if join != Join::Init {
                let again = render(&c, node, Artifact::Installed, &secrets, None)?;
                let text = installed_files(c.os.config_format, &again)?
                    .into_iter()
                    .find(|(p, _, _)| p == kubeadm::JOIN_KUBECONFIG_PATH)
                    .ok_or("no join kubeconfig")?
                    .2;
                let spki = check_join_kubeconfig(pki, node, &text, SystemTime::now())?;
                assert!(join_keys.insert(spki), "{what}: the same key twice");
            }
        }
    }
    Ok(())
}
