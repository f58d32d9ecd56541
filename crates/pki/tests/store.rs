//! The PKI in its state directory: made once, reused, extended for new nodes,
//! private, refused when unsafe, rotated only on request.

mod common;

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::time::{Duration, SystemTime};

use common::*;
use slipway_pki::{CaKind, CertProblem, LeafKind, Pki, PkiError, San};

const DAY: u64 = 86400;

fn mode(path: &Path) -> Result<u32, Box<dyn std::error::Error>> {
    Ok(fs::symlink_metadata(path)?.permissions().mode() & 0o7777)
}

fn chmod(path: &Path, mode: u32) -> R {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn rel_written(pki: &Pki, dir: &TempDir) -> Vec<String> {
    let root = dir.path().join("pki");
    let mut names: Vec<String> = pki
        .written()
        .iter()
        .filter_map(|p| p.strip_prefix(&root).ok())
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_second_run_reuses_everything_byte_for_byte() -> R {
    let dir = TempDir::new("reuse")?;
    let c = cluster(LAB)?;
    let first = Pki::load_or_create(dir.path(), &c)?;
    assert!(!first.written().is_empty());
    let before = snapshot(&dir.path().join("pki"))?;
    for rel in [
        "ca.crt",
        "ca.key",
        "etcd/ca.crt",
        "etcd/ca.key",
        "front-proxy-ca.crt",
        "front-proxy-ca.key",
        "sa.key",
        "sa.pub",
        "admin.crt",
        "admin.key",
        "admin.conf",
        "nodes/cp1/apiserver.crt",
        "nodes/cp1/etcd/server.key",
        "nodes/worker2/kubelet.crt",
    ] {
        assert!(
            before.contains_key(rel),
            "{rel} missing: {:?}",
            before.keys()
        );
    }
    let second = Pki::load_or_create(dir.path(), &c)?;
    assert_eq!(snapshot(&dir.path().join("pki"))?, before);
    assert!(second.written().is_empty(), "{:?}", second.written());
    assert_eq!(second.ca_cert_pem(), first.ca_cert_pem());
    assert_eq!(second.ca_cert_hash(), first.ca_cert_hash());
    assert_eq!(second.admin_kubeconfig(), first.admin_kubeconfig());
    Ok(())
}

#[test]
fn no_shared_token_or_certificate_key_is_made() -> R {
    let dir = TempDir::new("token")?;
    let pki = Pki::load_or_create(dir.path(), &cluster(LAB)?)?;
    let files = snapshot(&dir.path().join("pki"))?;
    assert!(
        !files.contains_key("token") && !files.contains_key("certificate-key"),
        "{:?}",
        files.keys()
    );
    assert_eq!(pki.legacy_token_id(), None);
    assert!(pki.ca_cert_hash().starts_with("sha256:") && pki.ca_cert_hash().len() == 7 + 64);
    // Another state directory, another CA.
    let other_dir = TempDir::new("token-other")?;
    let other = Pki::load_or_create(other_dir.path(), &cluster(LAB)?)?;
    assert_ne!(other.ca_cert_hash(), pki.ca_cert_hash());
    Ok(())
}

#[test]
fn an_old_shared_token_is_named_and_left_alone() -> R {
    let dir = TempDir::new("legacy-token")?;
    let c = cluster(LAB)?;
    Pki::load_or_create(dir.path(), &c)?;
    fs::write(dir.pki("token"), "abc123.0123456789abcdef\n")?;
    chmod(&dir.pki("token"), 0o600)?;
    let pki = Pki::load_or_create(dir.path(), &c)?;
    assert_eq!(pki.legacy_token_id(), Some("abc123"));
    assert!(pki.written().is_empty());
    assert_eq!(
        fs::read_to_string(dir.pki("token"))?,
        "abc123.0123456789abcdef\n"
    );
    let shown = format!("{pki:?}");
    assert!(!shown.contains("0123456789abcdef"), "{shown}");
    Ok(())
}

/// The parts of a join kubeconfig.
struct JoinParts {
    server: String,
    ca_pem: String,
    user: String,
    cert_pem: String,
    key_pem: String,
}

/// The parts of join kubeconfig `kubeconfig`, checking that its context is consistent.
fn join_parts(kubeconfig: &str) -> Result<JoinParts, Box<dyn std::error::Error>> {
    use base64::Engine as _;
    let docs = yaml_rust2::YamlLoader::load_from_str(kubeconfig)?;
    let doc = docs.first().ok_or("empty kubeconfig")?;
    let text = |v: &yaml_rust2::Yaml| -> Result<String, Box<dyn std::error::Error>> {
        Ok(v.as_str().ok_or("missing field")?.to_string())
    };
    let decoded = |v: &yaml_rust2::Yaml| -> Result<String, Box<dyn std::error::Error>> {
        let bytes = base64::engine::general_purpose::STANDARD.decode(text(v)?)?;
        Ok(String::from_utf8(bytes)?)
    };
    assert_eq!(doc["kind"].as_str(), Some("Config"));
    // kubeadm takes the credentials of the current context's user.
    let context = text(&doc["current-context"])?;
    assert_eq!(text(&doc["contexts"][0]["name"])?, context);
    let user = text(&doc["contexts"][0]["context"]["user"])?;
    assert_eq!(text(&doc["users"][0]["name"])?, user);
    assert_eq!(
        text(&doc["contexts"][0]["context"]["cluster"])?,
        text(&doc["clusters"][0]["name"])?
    );
    Ok(JoinParts {
        server: text(&doc["clusters"][0]["cluster"]["server"])?,
        ca_pem: decoded(&doc["clusters"][0]["cluster"]["certificate-authority-data"])?,
        user,
        cert_pem: decoded(&doc["users"][0]["user"]["client-certificate-data"])?,
        key_pem: decoded(&doc["users"][0]["user"]["client-key-data"])?,
    })
}

#[test]
fn join_credentials_are_per_node_short_lived_and_signed_by_the_cluster_ca() -> R {
    use slipway_pki::inspect::{CertInfo, key_spki};
    let dir = TempDir::new("join")?;
    let pki = Pki::load_or_create(dir.path(), &cluster(LAB)?)?;
    let before = snapshot(&dir.path().join("pki"))?;
    let now = SystemTime::now();
    let cred = pki.join_credential_at("worker1", now)?;
    let JoinParts {
        server,
        ca_pem,
        user,
        cert_pem,
        key_pem,
    } = join_parts(&cred.kubeconfig)?;
    assert_eq!(server, "https://10.99.0.11:6443");
    assert_eq!(ca_pem, pki.ca_cert_pem());
    assert_eq!(user, "system:bootstrap:slipway-worker1");
    assert_eq!(cert_pem, cred.cert.cert_pem);
    assert_eq!(key_pem, cred.cert.key_pem);

    let info = CertInfo::parse(&cert_pem)?;
    assert!(info.signed_by(&CertInfo::parse(pki.ca_cert_pem())?));
    assert!(!info.signed_by(&CertInfo::parse(pki.ca_cert_pem_of(CaKind::Etcd))?));
    assert!(!info.signed_by(&CertInfo::parse(pki.ca_cert_pem_of(CaKind::FrontProxy))?));
    assert_eq!(info.common_name, "system:bootstrap:slipway-worker1");
    assert_eq!(
        info.organizations,
        ["system:bootstrappers:kubeadm:default-node-token"]
    );
    assert!(info.client_auth && !info.server_auth && !info.is_ca);
    assert_eq!(
        info.spki_der,
        key_spki(&key_pem)?,
        "the key is the certificate's"
    );
    // Valid from a few minutes ago (clock skew) ...
    let skew = now.duration_since(info.not_before)?;
    assert!(
        skew >= Duration::from_secs(60) && skew <= Duration::from_secs(10 * 60),
        "{skew:?}"
    );
    // ... until the install window (lab: the default 30 minutes) and an hour.
    let window = Duration::from_secs(30 * 60);
    let end = info.not_after.duration_since(now)?;
    assert!(end + Duration::from_secs(1) >= window, "{end:?}");
    assert!(end <= window + Duration::from_secs(3600 + 60), "{end:?}");
    assert!(
        end.as_secs().abs_diff(window.as_secs() + 3600) <= 1,
        "{end:?}"
    );
    assert_eq!(cred.not_after, info.not_after);

    // Every mint: a new key, a new serial; nothing stored.
    let again = pki.join_credential_at("worker1", now)?;
    let info2 = CertInfo::parse(&again.cert.cert_pem)?;
    assert_ne!(info2.spki_der, info.spki_der);
    assert_ne!(info2.serial, info.serial);
    assert_ne!(again.serial, cred.serial);
    assert_ne!(again.cert.key_pem, cred.cert.key_pem);
    assert_eq!(snapshot(&dir.path().join("pki"))?, before);

    // Another node, another user; a stranger, none.
    let cp = pki.join_credential("cp1")?;
    assert_eq!(cp.user, "system:bootstrap:slipway-cp1");
    assert!(matches!(
        pki.join_credential("nosuch"),
        Err(PkiError::UnknownNode { .. })
    ));
    let shown = format!("{cred:?}");
    assert!(
        !shown.contains("PRIVATE") && !shown.contains("client-key-data"),
        "{shown}"
    );
    Ok(())
}

#[test]
fn join_credentials_follow_the_install_timeout() -> R {
    use slipway_pki::inspect::CertInfo;
    let now = SystemTime::now();
    for (timeout, secs) in [("2h", 3 * 3600), ("infinite", 25 * 3600)] {
        let text = LAB.replace(
            "  kernel_args: [console=ttyS0]\n",
            &format!("  kernel_args: [console=ttyS0]\n  install_timeout: {timeout}\n"),
        );
        assert_ne!(text, LAB, "the example changed: update this test");
        let dir = TempDir::new("join-timeout")?;
        let pki = Pki::load_or_create(dir.path(), &cluster(&text)?)?;
        assert_eq!(pki.plan().join_validity, Duration::from_secs(secs));
        let cred = pki.join_credential_at("worker2", now)?;
        let end = CertInfo::parse(&cred.cert.cert_pem)?
            .not_after
            .duration_since(now)?;
        // Certificates count whole seconds.
        assert!(end.as_secs().abs_diff(secs) <= 1, "{timeout}: {end:?}");
    }
    Ok(())
}

#[test]
fn directories_are_0700_and_files_0600() -> R {
    let dir = TempDir::new("modes")?;
    Pki::load_or_create(dir.path(), &cluster(SEXTANT)?)?;
    let mut seen = 0;
    let mut stack = vec![dir.path().join("pki")];
    while let Some(d) = stack.pop() {
        assert_eq!(mode(&d)?, 0o700, "{}", d.display());
        for entry in fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                assert_eq!(mode(&path)?, 0o600, "{}", path.display());
                seen += 1;
            }
        }
    }
    assert!(seen > 30, "{seen}");
    Ok(())
}

#[test]
fn a_new_node_gets_its_files_and_nothing_else_changes() -> R {
    let dir = TempDir::new("add-node")?;
    Pki::load_or_create(dir.path(), &cluster(LAB)?)?;
    let before = snapshot(&dir.path().join("pki"))?;

    let with_worker =
        format!("{LAB}  - mac: 52:54:00:99:00:04\n    hostname: worker3\n    ip: 10.99.0.23\n");
    let pki = Pki::load_or_create(dir.path(), &cluster(&with_worker)?)?;
    let after = snapshot(&dir.path().join("pki"))?;
    assert_eq!(
        changed(&before, &after),
        ["nodes/worker3/kubelet.crt", "nodes/worker3/kubelet.key"]
    );
    assert_eq!(
        rel_written(&pki, &dir),
        ["nodes/worker3/kubelet.crt", "nodes/worker3/kubelet.key"]
    );

    // A second control-plane node (stacked etcd, as cp1).
    let with_cp = format!(
        "{with_worker}  - mac: 52:54:00:99:00:05\n    hostname: cp2\n    ip: 10.99.0.12\n    roles: [control-plane]\n"
    );
    Pki::load_or_create(dir.path(), &cluster(&with_cp)?)?;
    let third = snapshot(&dir.path().join("pki"))?;
    let names = changed(&after, &third);
    assert!(
        names.iter().all(|n| n.starts_with("nodes/cp2/")),
        "{names:?}"
    );
    let mut expected: Vec<String> = [
        "apiserver",
        "apiserver-kubelet-client",
        "apiserver-etcd-client",
        "front-proxy-client",
        "etcd/server",
        "etcd/peer",
        "etcd/healthcheck-client",
        "kubelet",
    ]
    .iter()
    .flat_map(|b| [format!("nodes/cp2/{b}.crt"), format!("nodes/cp2/{b}.key")])
    .collect();
    expected.sort();
    assert_eq!(names, expected);
    Ok(())
}

#[test]
fn changed_names_are_reported_and_fixed_only_by_rotation() -> R {
    let dir = TempDir::new("names-changed")?;
    Pki::load_or_create(dir.path(), &cluster(LAB)?)?;
    let before = snapshot(&dir.path().join("pki"))?;

    let moved = LAB.replace("ip: 10.99.0.21", "ip: 10.99.0.23");
    assert_ne!(moved, LAB);
    let c = cluster(&moved)?;
    let mut pki = Pki::load_or_create(dir.path(), &c)?;
    assert_eq!(
        snapshot(&dir.path().join("pki"))?,
        before,
        "nothing rewritten"
    );
    let problems: Vec<_> = pki
        .status()
        .into_iter()
        .filter(|s| !s.problems.is_empty())
        .collect();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].name, "kubelet");
    assert_eq!(problems[0].node.as_deref(), Some("worker1"));
    assert_eq!(
        problems[0].problems,
        [CertProblem::NamesChanged {
            missing: vec![San::Ip("10.99.0.23".parse()?)],
            unexpected: vec![San::Ip("10.99.0.21".parse()?)],
        }]
    );
    let message = problems[0].problems[0].to_string();
    assert!(
        message.contains("IP:10.99.0.23") && message.contains("rotate"),
        "{message}"
    );

    pki.rotate_leaves(Some("worker1"))?;
    let after = snapshot(&dir.path().join("pki"))?;
    assert_eq!(
        changed(&before, &after),
        ["nodes/worker1/kubelet.crt", "nodes/worker1/kubelet.key"]
    );
    assert!(pki.status().iter().all(|s| s.problems.is_empty()));
    let again = Pki::load_or_create(dir.path(), &c)?;
    assert!(again.status().iter().all(|s| s.problems.is_empty()));
    assert!(again.written().is_empty());

    assert!(matches!(
        pki.rotate_leaves(Some("nope")),
        Err(PkiError::UnknownNode { .. })
    ));
    Ok(())
}

#[test]
fn group_or_world_access_is_refused() -> R {
    let dir = TempDir::new("perms")?;
    let c = cluster(LAB)?;
    Pki::load_or_create(dir.path(), &c)?;
    let key = dir.pki("nodes/cp1/apiserver.key");
    chmod(&key, 0o640)?;
    let err = Pki::load_or_create(dir.path(), &c)
        .err()
        .ok_or("a group-readable key was accepted")?;
    assert!(
        matches!(err, PkiError::InsecurePermissions { .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains(&key.display().to_string()), "{message}");
    assert!(
        message.contains("640") && message.contains("chmod 600"),
        "{message}"
    );
    assert_eq!(mode(&key)?, 0o640, "left for the operator to fix");
    chmod(&key, 0o600)?;

    chmod(&dir.pki("ca.crt"), 0o604)?;
    assert!(matches!(
        Pki::load_or_create(dir.path(), &c),
        Err(PkiError::InsecurePermissions { is_dir: false, .. })
    ));
    chmod(&dir.pki("ca.crt"), 0o600)?;

    chmod(&dir.pki("nodes/worker1"), 0o750)?;
    let err = Pki::load_or_create(dir.path(), &c)
        .err()
        .ok_or("an open directory was accepted")?;
    assert!(err.to_string().contains("chmod 700"), "{err}");
    chmod(&dir.pki("nodes/worker1"), 0o700)?;

    Pki::load_or_create(dir.path(), &c)?;
    Ok(())
}

#[test]
fn symbolic_links_are_refused() -> R {
    let dir = TempDir::new("symlink")?;
    let c = cluster(LAB)?;
    Pki::load_or_create(dir.path(), &c)?;
    let sa_pub = dir.pki("sa.pub");
    let elsewhere = dir.path().join("sa.pub-elsewhere");
    fs::rename(&sa_pub, &elsewhere)?;
    symlink(&elsewhere, &sa_pub)?;
    let err = Pki::load_or_create(dir.path(), &c)
        .err()
        .ok_or("a symlink was accepted")?;
    assert!(matches!(err, PkiError::NotPlainFile { .. }), "{err:?}");
    Ok(())
}

#[test]
fn a_ca_certificate_without_its_key_is_refused() -> R {
    let dir = TempDir::new("ca-no-key")?;
    let c = cluster(LAB)?;
    Pki::load_or_create(dir.path(), &c)?;
    let cert = fs::read(dir.pki("etcd/ca.crt"))?;
    let key = fs::read(dir.pki("etcd/ca.key"))?;
    fs::remove_file(dir.pki("etcd/ca.key"))?;
    let err = Pki::load_or_create(dir.path(), &c)
        .err()
        .ok_or("a CA without its key was accepted")?;
    assert!(matches!(err, PkiError::MissingKey { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("etcd/ca.key") && message.contains("Restore"),
        "{message}"
    );
    assert!(!dir.pki("etcd/ca.key").exists(), "no new key made");
    assert_eq!(fs::read(dir.pki("etcd/ca.crt"))?, cert);

    // Restored, it is used again.
    fs::write(dir.pki("etcd/ca.key"), &key)?;
    chmod(&dir.pki("etcd/ca.key"), 0o600)?;
    let pki = Pki::load_or_create(dir.path(), &c)?;
    assert!(pki.written().is_empty());

    // A key without its certificate is refused too.
    fs::remove_file(dir.pki("front-proxy-ca.crt"))?;
    let err = Pki::load_or_create(dir.path(), &c)
        .err()
        .ok_or("a CA key without its certificate was accepted")?;
    assert!(matches!(err, PkiError::MissingCert { .. }), "{err:?}");
    assert!(!dir.pki("front-proxy-ca.crt").exists());
    Ok(())
}

#[test]
fn a_ca_key_from_elsewhere_is_refused() -> R {
    let dir = TempDir::new("ca-mismatch")?;
    let other = TempDir::new("ca-mismatch-other")?;
    let c = cluster(LAB)?;
    Pki::load_or_create(dir.path(), &c)?;
    Pki::load_or_create(other.path(), &c)?;
    fs::copy(other.pki("ca.key"), dir.pki("ca.key"))?;
    let err = Pki::load_or_create(dir.path(), &c)
        .err()
        .ok_or("a mismatched CA key was accepted")?;
    assert!(matches!(err, PkiError::KeyMismatch { .. }), "{err:?}");
    Ok(())
}

#[test]
fn a_leaf_from_another_ca_is_reported() -> R {
    let dir = TempDir::new("foreign-leaf")?;
    let other = TempDir::new("foreign-leaf-other")?;
    let c = cluster(LAB)?;
    Pki::load_or_create(dir.path(), &c)?;
    Pki::load_or_create(other.path(), &c)?;
    for f in ["nodes/cp1/apiserver.crt", "nodes/cp1/apiserver.key"] {
        fs::copy(other.pki(f), dir.pki(f))?;
    }
    fs::copy(
        other.pki("nodes/worker2/kubelet.crt"),
        dir.pki("nodes/worker2/kubelet.crt"),
    )?;
    let mut pki = Pki::load_or_create(dir.path(), &c)?;
    let status = pki.status();
    let of = |host: &str, name: &str| {
        status
            .iter()
            .find(|s| s.node.as_deref() == Some(host) && s.name == name)
            .map(|s| s.problems.clone())
    };
    assert_eq!(
        of("cp1", "apiserver"),
        Some(vec![CertProblem::NotSignedByCa])
    );
    assert_eq!(
        of("worker2", "kubelet"),
        Some(vec![CertProblem::KeyMismatch, CertProblem::NotSignedByCa])
    );
    pki.rotate_leaves(None)?;
    assert!(pki.status().iter().all(|s| s.problems.is_empty()));
    Ok(())
}

#[test]
fn status_reports_every_certificate_and_its_end() -> R {
    let dir = TempDir::new("status")?;
    let pki = Pki::load_or_create(dir.path(), &cluster(SPLIT)?)?;
    let now = SystemTime::now();
    let status = pki.status();
    assert_eq!(status.len(), 19);
    for s in &status {
        let is_ca = s.node.is_none() && s.name != "admin";
        let want = now + Duration::from_secs(if is_ca { 3650 } else { 365 } * DAY);
        let off = match s.not_after.duration_since(want) {
            Ok(d) => d,
            Err(e) => e.duration(),
        };
        assert!(off < Duration::from_secs(DAY), "{s:?}");
        let days = if is_ca { 3650 } else { 365 };
        assert!(s.days_left == days || s.days_left == days - 1, "{s:?}");
        assert!(s.problems.is_empty(), "{s:?}");
        assert!(s.path.exists(), "{s:?}");
        assert!(s.path.starts_with(dir.path().join("pki")), "{s:?}");
    }
    let names: Vec<(Option<&str>, &str, &str)> = status
        .iter()
        .map(|s| (s.node.as_deref(), s.name.as_str(), s.subject_cn.as_str()))
        .collect();
    assert_eq!(
        &names[..3],
        &[
            (None, "ca", "kubernetes"),
            (None, "etcd/ca", "etcd-ca"),
            (None, "front-proxy-ca", "front-proxy-ca"),
        ]
    );
    assert!(names.contains(&(Some("etcd1"), "etcd/server", "etcd1")));
    assert!(names.contains(&(Some("w1"), "kubelet", "system:node:w1")));
    assert_eq!(names.last(), Some(&(None, "admin", "kubernetes-admin")));
    let apiserver = status
        .iter()
        .find(|s| s.name == "apiserver" && s.node.as_deref() == Some("cp2"))
        .ok_or("no apiserver of cp2")?;
    assert_eq!(apiserver.path, dir.pki("nodes/cp2/apiserver.crt"));
    Ok(())
}

#[test]
fn expired_leaves_are_reported_until_rotated() -> R {
    let dir = TempDir::new("expired")?;
    let c = cluster(LAB)?;
    let long_ago = SystemTime::now() - Duration::from_secs(400 * DAY);
    Pki::load_or_create_at(dir.path(), &c, long_ago)?;
    let mut pki = Pki::load_or_create(dir.path(), &c)?;
    assert!(
        pki.written().is_empty(),
        "not renewed behind the operator's back"
    );
    for s in pki.status() {
        if s.node.is_none() && s.name != "admin" {
            assert!(s.problems.is_empty() && s.days_left > 3000, "{s:?}");
        } else {
            assert_eq!(s.problems, [CertProblem::Expired], "{s:?}");
            assert!((-36..=-34).contains(&s.days_left), "{s:?}");
        }
    }
    let ca_before = fs::read(dir.pki("ca.key"))?;
    pki.rotate_leaves(None)?;
    assert!(pki.status().iter().all(|s| s.problems.is_empty()));
    assert_eq!(fs::read(dir.pki("ca.key"))?, ca_before);
    Ok(())
}

#[test]
fn rotating_all_leaves_keeps_cas_and_secrets() -> R {
    let dir = TempDir::new("rotate-leaves")?;
    let c = cluster(LAB)?;
    let mut pki = Pki::load_or_create(dir.path(), &c)?;
    let before = snapshot(&dir.path().join("pki"))?;
    pki.rotate_leaves(None)?;
    let after = snapshot(&dir.path().join("pki"))?;
    let names = changed(&before, &after);
    let leaves: Vec<&String> = before
        .keys()
        .filter(|k| k.starts_with("nodes/") || k.starts_with("admin."))
        .collect();
    assert_eq!(names.iter().collect::<Vec<_>>(), leaves);
    let again = Pki::load_or_create(dir.path(), &c)?;
    assert!(again.written().is_empty());
    assert_eq!(again.admin_kubeconfig(), pki.admin_kubeconfig());
    Ok(())
}

#[test]
fn rotating_a_ca_reissues_exactly_what_it_signed() -> R {
    let dir = TempDir::new("rotate-ca")?;
    let c = cluster(LAB)?;
    let mut pki = Pki::load_or_create(dir.path(), &c)?;
    let before = snapshot(&dir.path().join("pki"))?;
    let hash = pki.ca_cert_hash().to_string();

    pki.rotate_ca(CaKind::Etcd)?;
    let after = snapshot(&dir.path().join("pki"))?;
    assert_eq!(
        changed(&before, &after),
        [
            "etcd/ca.crt",
            "etcd/ca.key",
            "nodes/cp1/apiserver-etcd-client.crt",
            "nodes/cp1/apiserver-etcd-client.key",
            "nodes/cp1/etcd/healthcheck-client.crt",
            "nodes/cp1/etcd/healthcheck-client.key",
            "nodes/cp1/etcd/peer.crt",
            "nodes/cp1/etcd/peer.key",
            "nodes/cp1/etcd/server.crt",
            "nodes/cp1/etcd/server.key",
        ]
    );
    assert_eq!(pki.ca_cert_hash(), hash);
    assert!(pki.status().iter().all(|s| s.problems.is_empty()));

    pki.rotate_ca(CaKind::Cluster)?;
    let third = snapshot(&dir.path().join("pki"))?;
    let names = changed(&after, &third);
    for want in [
        "ca.crt",
        "ca.key",
        "admin.crt",
        "admin.conf",
        "nodes/cp1/apiserver.crt",
        "nodes/cp1/apiserver-kubelet-client.crt",
        "nodes/worker2/kubelet.crt",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    for kept in [
        "front-proxy-ca.crt",
        "nodes/cp1/front-proxy-client.crt",
        "etcd/ca.crt",
        "sa.key",
        "token",
    ] {
        assert!(!names.iter().any(|n| n == kept), "{kept} in {names:?}");
    }
    assert_ne!(pki.ca_cert_hash(), hash);
    let reloaded = Pki::load_or_create(dir.path(), &c)?;
    assert!(reloaded.written().is_empty());
    assert_eq!(reloaded.ca_cert_hash(), pki.ca_cert_hash());
    assert!(reloaded.status().iter().all(|s| s.problems.is_empty()));
    Ok(())
}

#[test]
fn an_interrupted_ca_rotation_is_finished_by_the_next_run() -> R {
    let dir = TempDir::new("pending")?;
    let c = cluster(LAB)?;
    Pki::load_or_create(dir.path(), &c)?;
    // As if rotate_ca had stopped right after writing the new CA aside.
    let new = slipway_pki::issue::new_ca(CaKind::FrontProxy, SystemTime::now())?;
    let pending = dir.pki("front-proxy-ca.pending");
    fs::write(&pending, format!("{}{}", new.key_pem, new.cert_pem))?;
    chmod(&pending, 0o600)?;
    // ... and a leftover temporary file of an interrupted write.
    let tmp = dir.pki("nodes/cp1/.apiserver.crt.tmp");
    fs::write(&tmp, b"half")?;
    chmod(&tmp, 0o600)?;

    let pki = Pki::load_or_create(dir.path(), &c)?;
    assert!(!pending.exists() && !tmp.exists());
    assert_eq!(
        fs::read_to_string(dir.pki("front-proxy-ca.crt"))?,
        new.cert_pem
    );
    assert_eq!(
        fs::read_to_string(dir.pki("front-proxy-ca.key"))?,
        new.key_pem
    );
    assert_eq!(
        rel_written(&pki, &dir),
        [
            "front-proxy-ca.crt",
            "front-proxy-ca.key",
            "nodes/cp1/front-proxy-client.crt",
            "nodes/cp1/front-proxy-client.key",
        ]
    );
    assert!(pki.status().iter().all(|s| s.problems.is_empty()));
    assert!(verifies(
        &dir.pki("front-proxy-ca.crt"),
        &dir.pki("nodes/cp1/front-proxy-client.crt"),
        "sslclient"
    )?);
    Ok(())
}

#[test]
fn each_node_gets_the_files_of_its_roles() -> R {
    let dir = TempDir::new("node-files")?;
    let pki = Pki::load_or_create(dir.path(), &cluster(SPLIT)?)?;
    let paths =
        |host: &str| -> Vec<String> { pki.node_files(host).into_iter().map(|f| f.path).collect() };
    assert_eq!(
        paths("cp1"),
        [
            "ca.crt",
            "ca.key",
            "front-proxy-ca.crt",
            "front-proxy-ca.key",
            "etcd/ca.crt",
            "etcd/ca.key",
            "sa.key",
            "sa.pub",
            "apiserver.crt",
            "apiserver.key",
            "apiserver-kubelet-client.crt",
            "apiserver-kubelet-client.key",
            "apiserver-etcd-client.crt",
            "apiserver-etcd-client.key",
            "front-proxy-client.crt",
            "front-proxy-client.key",
            "kubelet.crt",
            "kubelet.key",
        ]
    );
    assert_eq!(
        paths("etcd1"),
        [
            "ca.crt",
            "etcd/ca.crt",
            "etcd/server.crt",
            "etcd/server.key",
            "etcd/peer.crt",
            "etcd/peer.key",
            "etcd/healthcheck-client.crt",
            "etcd/healthcheck-client.key",
            "kubelet.crt",
            "kubelet.key",
        ]
    );
    assert_eq!(paths("w1"), ["ca.crt", "kubelet.crt", "kubelet.key"]);
    assert!(pki.node_files("nope").is_empty());

    for host in ["cp1", "etcd1", "w1"] {
        for f in pki.node_files(host) {
            // Each file is what is stored for it.
            let stored = match f.path.as_str() {
                "ca.crt" | "ca.key" | "front-proxy-ca.crt" | "front-proxy-ca.key"
                | "etcd/ca.crt" | "etcd/ca.key" | "sa.key" | "sa.pub" => dir.pki(&f.path),
                _ => dir.pki(&format!("nodes/{host}/{}", f.path)),
            };
            assert_eq!(
                fs::read_to_string(&stored)?,
                f.contents,
                "{host} {}",
                f.path
            );
            let want = if f.path.ends_with(".key") {
                0o600
            } else {
                0o644
            };
            assert_eq!(f.mode, want, "{}", f.path);
            assert_eq!(f.is_secret(), f.path.ends_with(".key"));
            let shown = format!("{f:?}");
            assert!(!shown.contains("-----BEGIN"), "{shown}");
            assert!(shown.contains(&f.path), "{shown}");
        }
    }
    let shown = format!("{pki:?}");
    assert!(
        !shown.contains("-----BEGIN") && !shown.contains("PRIVATE"),
        "{shown}"
    );
    Ok(())
}

#[test]
fn leaf_kinds_name_kubeadms_files() {
    let names: Vec<&str> = [
        LeafKind::ApiServer,
        LeafKind::ApiServerKubeletClient,
        LeafKind::ApiServerEtcdClient,
        LeafKind::FrontProxyClient,
        LeafKind::EtcdServer,
        LeafKind::EtcdPeer,
        LeafKind::EtcdHealthcheckClient,
    ]
    .iter()
    .map(|k| k.base_name())
    .collect();
    assert_eq!(
        names,
        [
            "apiserver",
            "apiserver-kubelet-client",
            "apiserver-etcd-client",
            "front-proxy-client",
            "etcd/server",
            "etcd/peer",
            "etcd/healthcheck-client",
        ]
    );
}
