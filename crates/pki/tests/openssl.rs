//! The certificates as another implementation sees them: every check here goes
//! through the `openssl` command-line tool (Debian package `openssl`).

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::*;
use slipway_pki::Pki;

fn s(p: &Path) -> Result<&str, Box<dyn std::error::Error>> {
    Ok(p.to_str().ok_or("non-UTF-8 path")?)
}

/// The subjectAltName of a certificate as openssl prints it, as a set of `DNS:x`
/// and `IP:x` (IP addresses normalized, since openssl 3.0 prints `::1` in full).
fn openssl_sans(cert: &Path) -> Result<BTreeSet<String>, Box<dyn std::error::Error>> {
    let out = openssl(&["x509", "-noout", "-ext", "subjectAltName", "-in", s(cert)?])?;
    let mut lines = out.lines();
    let header = lines.next().unwrap_or_default();
    assert!(header.contains("X509v3 Subject Alternative Name"), "{out}");
    let mut set = BTreeSet::new();
    for item in lines.collect::<Vec<_>>().join(",").split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        if let Some(ip) = item.strip_prefix("IP Address:") {
            set.insert(format!("IP:{}", ip.parse::<IpAddr>()?));
        } else if item.starts_with("DNS:") {
            set.insert(item.to_string());
        } else {
            return Err(format!("unexpected name {item}").into());
        }
    }
    Ok(set)
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn text(cert: &Path) -> Result<String, Box<dyn std::error::Error>> {
    openssl(&["x509", "-noout", "-text", "-in", s(cert)?])
}

fn subject(cert: &Path) -> Result<String, Box<dyn std::error::Error>> {
    let out = openssl(&[
        "x509",
        "-noout",
        "-subject",
        "-nameopt",
        "RFC2253",
        "-in",
        s(cert)?,
    ])?;
    Ok(out.trim().trim_start_matches("subject=").to_string())
}

/// Whether `openssl x509 -checkend` says the certificate is still valid in `days`.
fn valid_in(cert: &Path, days: u64) -> Result<bool, Box<dyn std::error::Error>> {
    let secs = (days * 86400).to_string();
    Ok(openssl(&["x509", "-noout", "-checkend", &secs, "-in", s(cert)?]).is_ok())
}

#[test]
fn every_chain_verifies_for_its_purpose() -> R {
    let dir = TempDir::new("chains")?;
    Pki::load_or_create(dir.path(), &cluster(SPLIT)?)?;
    let ca = dir.pki("ca.crt");
    let etcd_ca = dir.pki("etcd/ca.crt");
    let fp_ca = dir.pki("front-proxy-ca.crt");
    let node = |host: &str, rel: &str| dir.pki(&format!("nodes/{host}/{rel}.crt"));
    for cp in ["cp1", "cp2"] {
        assert!(verifies(&ca, &node(cp, "apiserver"), "sslserver")?);
        assert!(verifies(
            &ca,
            &node(cp, "apiserver-kubelet-client"),
            "sslclient"
        )?);
        assert!(verifies(
            &etcd_ca,
            &node(cp, "apiserver-etcd-client"),
            "sslclient"
        )?);
        assert!(verifies(
            &fp_ca,
            &node(cp, "front-proxy-client"),
            "sslclient"
        )?);
        // wrong CA, wrong purpose
        assert!(!verifies(&etcd_ca, &node(cp, "apiserver"), "sslserver")?);
        assert!(!verifies(&ca, &node(cp, "apiserver"), "sslclient")?);
        assert!(!verifies(
            &ca,
            &node(cp, "apiserver-kubelet-client"),
            "sslserver"
        )?);
        assert!(!verifies(
            &ca,
            &node(cp, "front-proxy-client"),
            "sslclient"
        )?);
    }
    for cert in ["etcd/server", "etcd/peer"] {
        assert!(verifies(&etcd_ca, &node("etcd1", cert), "sslserver")?);
        assert!(verifies(&etcd_ca, &node("etcd1", cert), "sslclient")?);
        assert!(!verifies(&ca, &node("etcd1", cert), "sslserver")?);
    }
    assert!(verifies(
        &etcd_ca,
        &node("etcd1", "etcd/healthcheck-client"),
        "sslclient"
    )?);
    assert!(!verifies(
        &etcd_ca,
        &node("etcd1", "etcd/healthcheck-client"),
        "sslserver"
    )?);
    for host in ["cp1", "cp2", "etcd1", "w1"] {
        assert!(verifies(&ca, &node(host, "kubelet"), "sslserver")?);
        assert!(!verifies(&ca, &node(host, "kubelet"), "sslclient")?);
    }
    assert!(verifies(&ca, &dir.pki("admin.crt"), "sslclient")?);
    // The separate etcd node runs no control plane, the control plane no etcd.
    assert!(!node("etcd1", "apiserver").exists());
    assert!(!node("cp1", "etcd/server").exists());
    assert!(!node("w1", "etcd/server").exists() && !node("w1", "apiserver").exists());
    Ok(())
}

#[test]
fn apiserver_names_are_exactly_the_expected_ones() -> R {
    let dir = TempDir::new("apiserver-sans")?;
    Pki::load_or_create(dir.path(), &cluster(SPLIT)?)?;
    let sans = openssl_sans(&dir.pki("nodes/cp2/apiserver.crt"))?;
    assert_eq!(
        sans,
        set(&[
            "DNS:cp2",
            "DNS:cp2.split.example",
            "DNS:kubernetes",
            "DNS:kubernetes.default",
            "DNS:kubernetes.default.svc",
            "DNS:kubernetes.default.svc.cluster.local",
            "DNS:kubernetes.default.svc.split.example",
            "DNS:api.split.example",
            "DNS:*.apps.split.example",
            "DNS:lb.split.example",
            "IP:192.168.50.12",
            "IP:192.168.50.5",
            "IP:10.96.0.1",
            "IP:203.0.113.7",
        ])
    );

    // Endpoint given as a node: its name is in every API server certificate too, as
    // kubeadm wants when controlPlaneEndpoint is written as `node1:6443`.
    let dir = TempDir::new("apiserver-sans-sextant")?;
    Pki::load_or_create(dir.path(), &cluster(SEXTANT)?)?;
    let sans = openssl_sans(&dir.pki("nodes/node1/apiserver.crt"))?;
    assert_eq!(
        sans,
        set(&[
            "DNS:node1",
            "DNS:node1.ail.example.com",
            "DNS:kubernetes",
            "DNS:kubernetes.default",
            "DNS:kubernetes.default.svc",
            "DNS:kubernetes.default.svc.cluster.local",
            "DNS:kubernetes.default.svc.ail.example.com",
            "DNS:api.ail.example.com",
            "DNS:aa-bb-cc-dd",
            "IP:10.10.14.130",
            "IP:10.100.0.1",
            "IP:192.168.61.73",
        ])
    );
    Ok(())
}

#[test]
fn etcd_and_kubelet_names_and_subjects() -> R {
    let dir = TempDir::new("etcd-sans")?;
    Pki::load_or_create(dir.path(), &cluster(SPLIT)?)?;
    let etcd = set(&[
        "DNS:etcd1",
        "DNS:etcd1.split.example",
        "DNS:localhost",
        "IP:192.168.50.21",
        "IP:127.0.0.1",
        "IP:::1",
    ]);
    for cert in ["server", "peer"] {
        let path = dir.pki(&format!("nodes/etcd1/etcd/{cert}.crt"));
        assert_eq!(openssl_sans(&path)?, etcd, "{cert}");
        assert_eq!(subject(&path)?, "CN=etcd1");
    }
    let kubelet = dir.pki("nodes/w1/kubelet.crt");
    assert_eq!(
        openssl_sans(&kubelet)?,
        set(&["DNS:w1", "DNS:w1.split.example", "IP:192.168.50.31"])
    );
    assert_eq!(subject(&kubelet)?, "CN=system:node:w1,O=system:nodes");
    let subjects = [
        ("nodes/cp1/apiserver.crt", "CN=kube-apiserver"),
        (
            "nodes/cp1/apiserver-kubelet-client.crt",
            "CN=kube-apiserver-kubelet-client,O=kubeadm:cluster-admins",
        ),
        (
            "nodes/cp1/apiserver-etcd-client.crt",
            "CN=kube-apiserver-etcd-client",
        ),
        ("nodes/cp1/front-proxy-client.crt", "CN=front-proxy-client"),
        (
            "nodes/etcd1/etcd/healthcheck-client.crt",
            "CN=kube-etcd-healthcheck-client",
        ),
        ("admin.crt", "CN=kubernetes-admin,O=kubeadm:cluster-admins"),
        ("ca.crt", "CN=kubernetes"),
        ("etcd/ca.crt", "CN=etcd-ca"),
        ("front-proxy-ca.crt", "CN=front-proxy-ca"),
    ];
    for (rel, want) in subjects {
        assert_eq!(subject(&dir.pki(rel))?, want, "{rel}");
    }
    // Client certificates carry no names.
    let out = openssl(&[
        "x509",
        "-noout",
        "-ext",
        "subjectAltName",
        "-in",
        s(&dir.pki("admin.crt"))?,
    ])?;
    assert!(
        !out.contains("DNS:") && !out.contains("IP Address"),
        "{out}"
    );
    Ok(())
}

#[test]
fn key_usages_validity_and_key_type() -> R {
    let dir = TempDir::new("usages")?;
    Pki::load_or_create(dir.path(), &cluster(SPLIT)?)?;
    for ca in ["ca.crt", "etcd/ca.crt", "front-proxy-ca.crt"] {
        let t = text(&dir.pki(ca))?;
        assert!(t.contains("CA:TRUE"), "{ca}: {t}");
        assert!(t.contains("Certificate Sign"), "{ca}: {t}");
        assert!(!t.contains("TLS Web"), "{ca}: {t}");
        assert!(t.contains("NIST CURVE: P-256"), "{ca}: {t}");
        assert!(valid_in(&dir.pki(ca), 3649)? && !valid_in(&dir.pki(ca), 3651)?);
    }
    let server = ["nodes/cp1/apiserver.crt", "nodes/w1/kubelet.crt"];
    let client = [
        "nodes/cp1/apiserver-kubelet-client.crt",
        "nodes/cp1/apiserver-etcd-client.crt",
        "nodes/cp1/front-proxy-client.crt",
        "nodes/etcd1/etcd/healthcheck-client.crt",
        "admin.crt",
    ];
    let both = ["nodes/etcd1/etcd/server.crt", "nodes/etcd1/etcd/peer.crt"];
    for (certs, server_auth, client_auth) in [
        (&server[..], true, false),
        (&client[..], false, true),
        (&both[..], true, true),
    ] {
        for rel in certs {
            let t = text(&dir.pki(rel))?;
            assert!(t.contains("CA:FALSE"), "{rel}: {t}");
            assert!(t.contains("Digital Signature"), "{rel}: {t}");
            assert!(!t.contains("Certificate Sign"), "{rel}: {t}");
            assert_eq!(
                t.contains("TLS Web Server Authentication"),
                server_auth,
                "{rel}: {t}"
            );
            assert_eq!(
                t.contains("TLS Web Client Authentication"),
                client_auth,
                "{rel}: {t}"
            );
            assert!(t.contains("NIST CURVE: P-256"), "{rel}: {t}");
            assert!(
                valid_in(&dir.pki(rel), 364)? && !valid_in(&dir.pki(rel), 366)?,
                "{rel}"
            );
        }
    }
    Ok(())
}

#[test]
fn every_key_matches_its_certificate() -> R {
    let dir = TempDir::new("keys")?;
    Pki::load_or_create(dir.path(), &cluster(SPLIT)?)?;
    let files = snapshot(&dir.path().join("pki"))?;
    let mut pairs = 0;
    for rel in files.keys().filter(|k| k.ends_with(".crt")) {
        let key = dir.pki(&rel.replace(".crt", ".key"));
        let from_cert = openssl(&["x509", "-noout", "-pubkey", "-in", s(&dir.pki(rel))?])?;
        let from_key = openssl(&["pkey", "-pubout", "-in", s(&key)?])?;
        assert_eq!(from_cert, from_key, "{rel}");
        pairs += 1;
    }
    // 3 CAs, cp1/cp2: 4 + kubelet, etcd1: 3 + kubelet, w1: kubelet, admin
    assert_eq!(pairs, 3 + 2 * 5 + 4 + 1 + 1);
    let sa_pub = openssl(&["pkey", "-pubout", "-in", s(&dir.pki("sa.key"))?])?;
    assert_eq!(sa_pub, std::fs::read_to_string(dir.pki("sa.pub"))?);
    Ok(())
}

#[test]
fn ca_hash_is_what_the_kubeadm_docs_pipeline_prints() -> R {
    let dir = TempDir::new("hash")?;
    let pki = Pki::load_or_create(dir.path(), &cluster(LAB)?)?;
    let script = format!(
        "openssl x509 -pubkey -noout -in '{}' | openssl ec -pubin -outform der 2>/dev/null | sha256sum",
        s(&dir.pki("ca.crt"))?
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()?;
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout)?;
    let hex = stdout.split_whitespace().next().ok_or("no output")?;
    assert_eq!(hex.len(), 64, "{stdout}");
    assert_eq!(pki.ca_cert_hash(), format!("sha256:{hex}"));
    assert_eq!(
        slipway_pki::secrets::ca_cert_hash(pki.ca_cert_pem())?,
        pki.ca_cert_hash()
    );
    Ok(())
}

#[test]
fn admin_kubeconfig_works_with_the_ca() -> R {
    let dir = TempDir::new("kubeconfig")?;
    let pki = Pki::load_or_create(dir.path(), &cluster(SPLIT)?)?;
    let on_disk = std::fs::read_to_string(dir.pki("admin.conf"))?;
    assert_eq!(on_disk, pki.admin_kubeconfig());
    assert_eq!(pki.admin_kubeconfig_path(), dir.pki("admin.conf"));
    let docs = yaml_rust2::YamlLoader::load_from_str(&on_disk)?;
    let doc = docs.first().ok_or("empty kubeconfig")?;
    assert_eq!(doc["apiVersion"].as_str(), Some("v1"));
    assert_eq!(doc["kind"].as_str(), Some("Config"));
    let cluster = &doc["clusters"][0];
    assert_eq!(cluster["name"].as_str(), Some("split"));
    assert_eq!(
        cluster["cluster"]["server"].as_str(),
        Some("https://192.168.50.5:6443")
    );
    assert_eq!(
        doc["current-context"].as_str(),
        Some("kubernetes-admin@split")
    );
    assert_eq!(doc["users"][0]["name"].as_str(), Some("kubernetes-admin"));
    let decode = |v: &yaml_rust2::Yaml| -> Result<Vec<u8>, Box<dyn std::error::Error>> {
        Ok(STANDARD.decode(v.as_str().ok_or("missing data")?)?)
    };
    let ca = decode(&cluster["cluster"]["certificate-authority-data"])?;
    assert_eq!(ca, std::fs::read(dir.pki("ca.crt"))?);
    let cert = decode(&doc["users"][0]["user"]["client-certificate-data"])?;
    let key = decode(&doc["users"][0]["user"]["client-key-data"])?;
    let out = TempDir::new("kubeconfig-out")?;
    let (cert_path, key_path) = (out.path().join("admin.crt"), out.path().join("admin.key"));
    std::fs::write(&cert_path, &cert)?;
    std::fs::write(&key_path, &key)?;
    assert!(verifies(&dir.pki("ca.crt"), &cert_path, "sslclient")?);
    assert_eq!(
        subject(&cert_path)?,
        "CN=kubernetes-admin,O=kubeadm:cluster-admins"
    );
    assert_eq!(
        openssl(&["x509", "-noout", "-pubkey", "-in", s(&cert_path)?])?,
        openssl(&["pkey", "-pubout", "-in", s(&key_path)?])?
    );
    Ok(())
}

#[test]
fn rotated_certificates_verify_against_the_rotated_ca() -> R {
    let dir = TempDir::new("rotate-openssl")?;
    let mut pki = Pki::load_or_create(dir.path(), &cluster(LAB)?)?;
    let old_etcd_ca = TempDir::new("rotate-openssl-old")?;
    let old = old_etcd_ca.path().join("ca.crt");
    std::fs::copy(dir.pki("etcd/ca.crt"), &old)?;
    pki.rotate_ca(slipway_pki::CaKind::Etcd)?;
    let server = dir.pki("nodes/cp1/etcd/server.crt");
    assert!(verifies(&dir.pki("etcd/ca.crt"), &server, "sslserver")?);
    assert!(!verifies(&old, &server, "sslserver")?);
    assert!(verifies(
        &dir.pki("etcd/ca.crt"),
        &dir.pki("nodes/cp1/apiserver-etcd-client.crt"),
        "sslclient"
    )?);
    assert!(verifies(
        &dir.pki("ca.crt"),
        &dir.pki("nodes/cp1/apiserver.crt"),
        "sslserver"
    )?);
    Ok(())
}

#[test]
fn join_credentials_verify_as_bootstrap_clients_of_the_cluster_ca() -> R {
    let dir = TempDir::new("join-openssl")?;
    let pki = Pki::load_or_create(dir.path(), &cluster(SPLIT)?)?;
    let cred = pki.join_credential("w1")?;
    let docs = yaml_rust2::YamlLoader::load_from_str(&cred.kubeconfig)?;
    let doc = docs.first().ok_or("empty kubeconfig")?;
    let decode = |v: &yaml_rust2::Yaml| -> Result<Vec<u8>, Box<dyn std::error::Error>> {
        Ok(STANDARD.decode(v.as_str().ok_or("missing data")?)?)
    };
    assert_eq!(
        doc["clusters"][0]["cluster"]["server"].as_str(),
        Some("https://192.168.50.5:6443")
    );
    let out = TempDir::new("join-openssl-out")?;
    let (ca, cert, key) = (
        out.path().join("ca.crt"),
        out.path().join("join.crt"),
        out.path().join("join.key"),
    );
    std::fs::write(
        &ca,
        decode(&doc["clusters"][0]["cluster"]["certificate-authority-data"])?,
    )?;
    std::fs::write(
        &cert,
        decode(&doc["users"][0]["user"]["client-certificate-data"])?,
    )?;
    std::fs::write(&key, decode(&doc["users"][0]["user"]["client-key-data"])?)?;
    assert_eq!(std::fs::read(&ca)?, std::fs::read(dir.pki("ca.crt"))?);
    // A TLS client of the cluster CA, nothing else.
    assert!(verifies(&ca, &cert, "sslclient")?);
    assert!(!verifies(&ca, &cert, "sslserver")?);
    assert!(!verifies(&dir.pki("etcd/ca.crt"), &cert, "sslclient")?);
    assert!(!verifies(
        &dir.pki("front-proxy-ca.crt"),
        &cert,
        "sslclient"
    )?);
    assert_eq!(
        subject(&cert)?,
        "CN=system:bootstrap:slipway-w1,O=system:bootstrappers:kubeadm:default-node-token"
    );
    assert_eq!(
        openssl(&["x509", "-noout", "-pubkey", "-in", s(&cert)?])?,
        openssl(&["pkey", "-pubout", "-in", s(&key)?])?
    );
    let t = text(&cert)?;
    assert!(t.contains("TLS Web Client Authentication"), "{t}");
    assert!(!t.contains("TLS Web Server Authentication"), "{t}");
    assert!(t.contains("CA:FALSE"), "{t}");
    // SPLIT keeps the default install window, 30 minutes: valid for 1.5 hours.
    let cert_path = s(&cert)?;
    let checkend = |secs: u64| {
        openssl(&[
            "x509",
            "-noout",
            "-checkend",
            &secs.to_string(),
            "-in",
            cert_path,
        ])
        .is_ok()
    };
    assert!(checkend(5400 - 120));
    assert!(!checkend(5400 + 120));
    Ok(())
}
