//! `slipway mirror` against a local upstream (no internet): a fake Flatcar release
//! signed by a key this test generates, and a sysext with its SHA256SUMS.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use pgp::composed::{
    DetachedSignature, EncryptionCaps, KeyType, SecretKeyParamsBuilder, SignedPublicKey,
    SignedSecretKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::ser::Serialize;
use pgp::types::{KeyDetails, Password};
use slipway_cluster::{Cluster, NoHost, load_str};
use slipway_mirror::fetch::{Options, Summary, mirror};
use slipway_mirror::verify::{hex, sha256};

/// One request the upstream saw: method, path, Range header.
type Seen = (String, String, Option<String>);

/// A tiny HTTP/1.1 server: GET/HEAD of in-memory files, Range, and cutting a file
/// mid-body once.
#[derive(Clone)]
struct Upstream {
    port: u16,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    cut_once: Arc<Mutex<HashSet<String>>>,
}

impl Upstream {
    fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let up = Upstream {
            port: listener.local_addr().expect("addr").port(),
            files: Arc::default(),
            seen: Arc::default(),
            cut_once: Arc::default(),
        };
        let server = up.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let s = server.clone();
                std::thread::spawn(move || s.serve(conn));
            }
        });
        up
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn put(&self, path: &str, body: &[u8]) {
        self.files
            .lock()
            .expect("lock")
            .insert(path.to_string(), body.to_vec());
    }

    fn remove(&self, path: &str) {
        self.files.lock().expect("lock").remove(path);
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }

    fn serve(&self, conn: TcpStream) {
        let mut reader = BufReader::new(conn.try_clone().expect("clone"));
        let mut first = String::new();
        if reader.read_line(&mut first).is_err() {
            return;
        }
        let mut range = None;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("range")
            {
                range = Some(v.trim().to_string());
            }
        }
        let mut parts = first.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        self.seen
            .lock()
            .expect("lock")
            .push((method.clone(), path.clone(), range.clone()));
        let mut out = conn;
        let body = self.files.lock().expect("lock").get(&path).cloned();
        let Some(body) = body else {
            let _ = out.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            return;
        };
        let len = body.len();
        let start = range
            .as_deref()
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|n| n.parse::<usize>().ok());
        let (status, from, extra) = match start {
            Some(n) if n >= len => {
                let _ = out.write_all(
                    format!("HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
                );
                return;
            }
            Some(n) => (
                "206 Partial Content",
                n,
                format!("Content-Range: bytes {n}-{}/{len}\r\n", len - 1),
            ),
            None => ("200 OK", 0, String::new()),
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nAccept-Ranges: bytes\r\n{extra}Connection: close\r\n\r\n",
            len - from
        );
        let _ = out.write_all(head.as_bytes());
        if method == "HEAD" {
            return;
        }
        let cut = self.cut_once.lock().expect("lock").remove(&path);
        if cut {
            let _ = out.write_all(&body[from..from + (len - from) / 2]);
            let _ = out.flush();
            let _ = out.shutdown(std::net::Shutdown::Both);
            return;
        }
        let _ = out.write_all(&body[from..]);
    }
}

fn keygen() -> SignedSecretKey {
    let mut p = SecretKeyParamsBuilder::default();
    p.key_type(KeyType::Ed25519Legacy)
        .can_certify(true)
        .can_sign(true)
        .can_encrypt(EncryptionCaps::None)
        .primary_user_id("Test Release <release@example.test>".into());
    p.build()
        .expect("params")
        .generate(rand::thread_rng())
        .expect("keygen")
}

fn sign(key: &SignedSecretKey, data: &[u8]) -> Vec<u8> {
    DetachedSignature::sign_binary_data(
        rand::thread_rng(),
        &key.primary_key,
        &Password::empty(),
        HashAlgorithm::Sha256,
        data,
    )
    .expect("sign")
    .to_bytes()
    .expect("bytes")
}

const VERSION: &str = "9999.0.0";
const SYSEXT: &str = "kubernetes-v1.31.2-x86-64.raw";
const OS_FILES: [&str; 5] = [
    "flatcar_production_pxe.vmlinuz",
    "flatcar_production_pxe_image.cpio.gz",
    "flatcar_production_image.bin.bz2",
    "version.txt",
    "flatcar_production_update.gz",
];
/// Files a run lands: the OS files, the sysext, the iPXE package.
const LANDED: usize = OS_FILES.len() + 2;
const IPXE_DEB: &str = "ipxe_9.9_all.deb";

/// A Debian package built by Debian's own `dpkg-deb` holding stand-ins for iPXE's
/// programs (each its name repeated), and its SHA-256.
fn ipxe_deb(dir: &Path) -> (Vec<u8>, String) {
    let root = dir.join("ipxe-pkg");
    std::fs::create_dir_all(root.join("DEBIAN")).expect("pkg dir");
    std::fs::create_dir_all(root.join("usr/lib/ipxe")).expect("pkg dir");
    std::fs::write(
        root.join("DEBIAN/control"),
        "Package: ipxe\nVersion: 9.9\nArchitecture: all\nMaintainer: t <t@x>\nDescription: test\n",
    )
    .expect("control");
    for p in slipway_mirror::IPXE_PROGRAMS {
        std::fs::write(root.join("usr/lib/ipxe").join(p), p.repeat(1000)).expect("program");
    }
    let deb = dir.join(IPXE_DEB);
    let out = std::process::Command::new("dpkg-deb")
        .args(["-Zxz", "--root-owner-group", "--build"])
        .arg(&root)
        .arg(&deb)
        .output()
        .expect("dpkg-deb (Debian's dpkg) runs");
    assert!(
        out.status.success(),
        "dpkg-deb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = read(&deb);
    let sum = sha256(bytes.as_slice()).expect("sum");
    (bytes, sum)
}

/// One test's world: an upstream with a signed release, a key file, a scratch dir.
struct World {
    up: Upstream,
    key: SignedSecretKey,
    dir: PathBuf,
    contents: HashMap<String, Vec<u8>>,
    ipxe_sha256: String,
}

impl World {
    fn new(name: &str) -> World {
        let dir =
            std::env::temp_dir().join(format!("slipway-mirror-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch");
        let up = Upstream::start();
        let key = keygen();
        let public = SignedPublicKey::from(key.clone());
        std::fs::write(
            dir.join("release.asc"),
            public.to_armored_string(Default::default()).expect("armor"),
        )
        .expect("key file");
        let mut contents = HashMap::new();
        for (i, f) in OS_FILES.iter().enumerate() {
            let body: Vec<u8> = if *f == "version.txt" {
                format!("FLATCAR_BUILD=9999\nFLATCAR_VERSION={VERSION}\n").into_bytes()
            } else {
                // A few hundred KiB, distinct per file.
                (0..300_000u32)
                    .map(|n| (n.wrapping_mul(31) as u8) ^ i as u8)
                    .collect()
            };
            contents.insert(f.to_string(), body);
        }
        let (deb, ipxe_sha256) = ipxe_deb(&dir);
        up.put(&format!("/deb/{IPXE_DEB}"), &deb);
        let w = World {
            up,
            key,
            dir,
            contents,
            ipxe_sha256,
        };
        for f in OS_FILES {
            w.publish(VERSION, f, &w.contents[f]);
        }
        w.publish("current", "version.txt", &w.contents["version.txt"]);
        let sysext: Vec<u8> = (0..100_000u32).map(|n| (n % 251) as u8).collect();
        let sum = sha256(sysext.as_slice()).expect("sum");
        w.up.put(&format!("/ext/{SYSEXT}"), &sysext);
        w.up.put(
            "/ext/SHA256SUMS",
            format!("{}  other.raw\n{sum}  {SYSEXT}\n", "0".repeat(64)).as_bytes(),
        );
        w
    }

    /// Puts `file` (and its signature by the test key) under `<version>/`.
    fn publish(&self, version: &str, file: &str, body: &[u8]) {
        self.up.put(&format!("/amd64-usr/{version}/{file}"), body);
        self.up.put(
            &format!("/amd64-usr/{version}/{file}.sig"),
            &sign(&self.key, body),
        );
    }

    fn fingerprint(&self) -> String {
        hex(self.key.primary_key.fingerprint().as_bytes())
    }

    fn assets(&self) -> PathBuf {
        self.dir.join("assets")
    }

    fn cluster(&self, version: &str) -> Cluster {
        let text = format!(
            "\
cluster: {{name: lab, domain: lab.test}}
network: {{interface: br0, server: 10.99.0.1, subnet: 10.99.0.0/24, gateway: 10.99.0.1}}
os:
  distro: flatcar
  channel: stable
  version: {version}
  assets: assets
  mirror:
    base_url: {base}
    trusted_keys:
      - {{file: release.asc, fingerprint: '{fp}'}}
    ipxe: {{url: '{deb}', sha256: {deb_sum}}}
kubernetes:
  version: v1.31.2
  service_subnet: 10.100.0.0/16
  sysext_url: {ext}
access:
  user: core
  ssh_authorized_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlaceholderPlaceholder t@x']
nodes:
  - {{mac: '52:54:00:99:00:01', hostname: cp1, ip: 10.99.0.11, roles: [control-plane]}}
",
            base = self.up.url("/amd64-usr"),
            fp = self.fingerprint(),
            ext = self.up.url("/ext"),
            deb = self.up.url(&format!("/deb/{IPXE_DEB}")),
            deb_sum = self.ipxe_sha256,
        );
        let loaded = load_str("c.yaml", &text, &self.dir, &NoHost);
        loaded
            .valid()
            .cloned()
            .unwrap_or_else(|| panic!("cluster: {:?}", loaded.diagnostics))
    }

    fn run(&self, cluster: &Cluster) -> (Summary, String) {
        let mut out = Vec::new();
        let s = mirror(
            cluster,
            &Options {
                parallel: 3,
                ..Default::default()
            },
            &mut out,
        )
        .expect("setup");
        (s, String::from_utf8_lossy(&out).into_owned())
    }
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn mirrors_a_signed_release_and_a_rerun_fetches_nothing() {
    let w = World::new("full");
    let c = w.cluster(VERSION);
    let (s, out) = w.run(&c);
    assert!(s.failures.is_empty(), "{:?}\n{out}", s.failures);
    assert_eq!(s.fetched.len(), LANDED, "{s:?}");
    for f in OS_FILES {
        let p = w.assets().join(VERSION).join(f);
        assert_eq!(read(&p), w.contents[f], "{f}");
        assert!(w.assets().join(VERSION).join(format!("{f}.sig")).is_file());
        assert!(!w.assets().join(VERSION).join(format!("{f}.part")).exists());
    }
    assert!(w.assets().join("extensions").join(SYSEXT).is_file());
    assert!(out.contains("verified (openpgp:"), "{out}");
    // iPXE's programs came out of the package, byte for byte.
    for p in slipway_mirror::IPXE_PROGRAMS {
        assert_eq!(
            read(&w.assets().join("ipxe").join(p)),
            p.repeat(1000).into_bytes(),
            "{p}"
        );
    }
    // Exactly what a node asks for is there.
    assert_eq!(slipway_mirror::fetch::missing(&c), (vec![], vec![]));

    let before = w.up.seen().len();
    let (s, _) = w.run(&c);
    assert!(s.failures.is_empty() && s.fetched.is_empty(), "{s:?}");
    assert_eq!(s.up_to_date.len(), LANDED);
    assert_eq!(
        w.up.seen().len(),
        before,
        "a re-run asked upstream: {:?}",
        &w.up.seen()[before..]
    );
}

#[test]
fn current_is_resolved_once_and_recorded() {
    let w = World::new("current");
    let c = w.cluster("current");
    let (s, out) = w.run(&c);
    assert!(s.failures.is_empty(), "{:?}\n{out}", s.failures);
    assert_eq!(s.current.as_deref(), Some(VERSION));
    // Laid out where nodes ask (`current/...`), fetched from the resolved version.
    for f in OS_FILES {
        assert_eq!(read(&w.assets().join("current").join(f)), w.contents[f]);
    }
    assert_eq!(
        std::fs::read_to_string(w.assets().join("stable-current"))
            .expect("record")
            .trim(),
        VERSION
    );
    let seen = w.up.seen();
    assert!(seen.iter().any(|(_, p, _)| p == &format!("/amd64-usr/{VERSION}/flatcar_production_image.bin.bz2")));
    let before = seen.len();
    let (s, _) = w.run(&c);
    assert!(s.fetched.is_empty() && s.failures.is_empty());
    assert_eq!(w.up.seen().len(), before, "current was resolved again");
}

#[test]
fn a_tampered_byte_is_refused_deleted_and_named() {
    let w = World::new("tampered");
    let mut bad = w.contents["flatcar_production_pxe.vmlinuz"].clone();
    bad[1000] ^= 1;
    // The signature stays the one of the good file.
    w.up.put(
        &format!("/amd64-usr/{VERSION}/flatcar_production_pxe.vmlinuz"),
        &bad,
    );
    let (s, out) = w.run(&w.cluster(VERSION));
    assert_eq!(s.failures.len(), 1, "{s:?}\n{out}");
    let f = &s.failures[0];
    assert_eq!(
        f.file,
        Path::new(VERSION).join("flatcar_production_pxe.vmlinuz")
    );
    assert!(f.reason.contains(&w.fingerprint()), "{}", f.reason);
    assert!(f.reason.contains("does not match"), "{}", f.reason);
    let dest = w
        .assets()
        .join(VERSION)
        .join("flatcar_production_pxe.vmlinuz");
    assert!(!dest.exists() && !PathBuf::from(format!("{}.part", dest.display())).exists());
    // The others landed.
    assert_eq!(s.fetched.len(), LANDED - 1);
}

#[test]
fn good_files_stay_when_a_new_download_does_not_verify() {
    let w = World::new("keep-good");
    let c = w.cluster(VERSION);
    let (s, _) = w.run(&c);
    assert!(s.failures.is_empty());
    let dest = w
        .assets()
        .join(VERSION)
        .join("flatcar_production_image.bin.bz2");
    // Upstream changes under the same signature; the local signature and the
    // manifest are gone, so the file is fetched again.
    let mut bad = w.contents["flatcar_production_image.bin.bz2"].clone();
    bad[7] ^= 0x80;
    w.up.put(
        &format!("/amd64-usr/{VERSION}/flatcar_production_image.bin.bz2"),
        &bad,
    );
    std::fs::remove_file(format!("{}.sig", dest.display())).expect("rm sig");
    std::fs::remove_file(w.assets().join(slipway_mirror::fetch::MANIFEST)).expect("rm manifest");
    let (s, out) = w.run(&c);
    assert_eq!(s.failures.len(), 1, "{s:?}\n{out}");
    assert_eq!(
        read(&dest),
        w.contents["flatcar_production_image.bin.bz2"],
        "the good file was touched"
    );
}

#[test]
fn a_signature_by_an_untrusted_key_is_refused() {
    let w = World::new("wrong-key");
    let other = keygen();
    let body = &w.contents["flatcar_production_pxe_image.cpio.gz"];
    w.up.put(
        &format!("/amd64-usr/{VERSION}/flatcar_production_pxe_image.cpio.gz.sig"),
        &sign(&other, body),
    );
    let (s, out) = w.run(&w.cluster(VERSION));
    assert_eq!(s.failures.len(), 1, "{s:?}\n{out}");
    let reason = &s.failures[0].reason;
    assert!(
        reason.contains(&w.fingerprint()),
        "expected fingerprint named: {reason}"
    );
    assert!(
        reason.contains(&hex(other.primary_key.fingerprint().as_bytes())),
        "actual issuer named: {reason}"
    );
    assert!(reason.contains("not a trusted key"), "{reason}");
    assert!(
        !w.assets()
            .join(VERSION)
            .join("flatcar_production_pxe_image.cpio.gz")
            .exists()
    );
}

#[test]
fn a_missing_signature_is_refused() {
    let w = World::new("no-sig");
    w.up.remove(&format!(
        "/amd64-usr/{VERSION}/flatcar_production_image.bin.bz2.sig"
    ));
    let (s, out) = w.run(&w.cluster(VERSION));
    assert_eq!(s.failures.len(), 1, "{s:?}\n{out}");
    assert!(
        s.failures[0].reason.contains("signature is missing"),
        "{:?}",
        s.failures
    );
    assert!(s.failures[0].reason.contains("404"), "{:?}", s.failures);
    assert!(
        !w.assets()
            .join(VERSION)
            .join("flatcar_production_image.bin.bz2")
            .exists()
    );
}

#[test]
fn a_truncated_download_is_resumed_with_range_on_the_next_run() {
    let w = World::new("truncated");
    let path = format!("/amd64-usr/{VERSION}/flatcar_production_image.bin.bz2");
    w.up.cut_once.lock().expect("lock").insert(path.clone());
    let c = w.cluster(VERSION);
    let (s, out) = w.run(&c);
    assert_eq!(s.failures.len(), 1, "{s:?}\n{out}");
    assert!(
        s.failures[0].reason.contains("run again to resume"),
        "{:?}",
        s.failures
    );
    let dest = w
        .assets()
        .join(VERSION)
        .join("flatcar_production_image.bin.bz2");
    let part = PathBuf::from(format!("{}.part", dest.display()));
    let kept = std::fs::metadata(&part)
        .expect("the partial file is kept")
        .len();
    assert!(kept > 0 && kept < w.contents["flatcar_production_image.bin.bz2"].len() as u64);
    assert!(!dest.exists());

    let before = w.up.seen().len();
    let (s, out) = w.run(&c);
    assert!(s.failures.is_empty(), "{:?}\n{out}", s.failures);
    assert_eq!(read(&dest), w.contents["flatcar_production_image.bin.bz2"]);
    let again: Vec<Seen> = w.up.seen()[before..].to_vec();
    assert!(
        again.contains(&("GET".into(), path.clone(), Some(format!("bytes={kept}-")))),
        "{again:?}"
    );
    // Only that file (and its signature) was asked for again.
    assert!(
        again.iter().all(|(_, p, _)| p.starts_with(&path)),
        "{again:?}"
    );
}

#[test]
fn a_sysext_digest_mismatch_names_both_sums() {
    let w = World::new("sysext");
    w.up.put(
        "/ext/SHA256SUMS",
        format!("{}  {SYSEXT}\n", "ab".repeat(32)).as_bytes(),
    );
    let (s, out) = w.run(&w.cluster(VERSION));
    assert_eq!(s.failures.len(), 1, "{s:?}\n{out}");
    let r = &s.failures[0].reason;
    assert!(r.contains(&"ab".repeat(32)) && r.contains("got "), "{r}");
    assert!(!w.assets().join("extensions").join(SYSEXT).exists());
}

/// Flatcar signs with a yearly signing subkey of its primary key: a signature by a
/// subkey of a trusted primary key verifies (and names the primary's fingerprint);
/// one keyring file may hold several keys.
#[test]
fn a_signing_subkey_of_a_trusted_key_verifies_in_a_keyring_of_several() {
    use pgp::composed::SubkeyParamsBuilder;
    let mut sub = SubkeyParamsBuilder::default();
    sub.key_type(KeyType::Ed25519Legacy)
        .can_sign(true)
        .can_encrypt(EncryptionCaps::None)
        .can_authenticate(false);
    let mut p = SecretKeyParamsBuilder::default();
    p.key_type(KeyType::Ed25519Legacy)
        .can_certify(true)
        .can_sign(false)
        .can_encrypt(EncryptionCaps::None)
        .primary_user_id("Release <r@example.test>".into())
        .subkeys(vec![sub.build().expect("subkey")]);
    let key = p
        .build()
        .expect("params")
        .generate(rand::thread_rng())
        .expect("keygen");
    let other = keygen();
    let armored = [&other, &key]
        .iter()
        .map(|k| {
            SignedPublicKey::from((*k).clone())
                .to_armored_string(Default::default())
                .expect("armor")
        })
        .collect::<Vec<_>>()
        .join("\n");
    let ring = slipway_mirror::verify::Keyring::from_armored(&armored).expect("keyring");
    assert_eq!(ring.fingerprints().len(), 2);
    let data = b"flatcar_production_image.bin.bz2 contents";
    let sig = DetachedSignature::sign_binary_data(
        rand::thread_rng(),
        &key.secret_subkeys[0].key,
        &Password::empty(),
        HashAlgorithm::Sha256,
        &data[..],
    )
    .expect("sign")
    .to_bytes()
    .expect("bytes");
    let primary = hex(key.primary_key.fingerprint().as_bytes());
    assert_eq!(
        ring.verify(std::slice::from_ref(&primary), &sig, &data[..])
            .expect("verifies"),
        primary
    );
    // Trusting only the other key in the same file: refused.
    let other_fp = hex(other.primary_key.fingerprint().as_bytes());
    let err = ring
        .verify(&[other_fp], &sig, &data[..])
        .expect_err("not trusted");
    assert!(err.to_string().contains("not a trusted key"), "{err}");
}

#[test]
fn an_ipxe_package_that_does_not_match_its_pin_is_refused_and_nothing_is_unpacked() {
    let w = World::new("ipxe-pin");
    let mut bad = read(&w.dir.join(IPXE_DEB));
    let n = bad.len() - 10;
    bad[n] ^= 1;
    w.up.put(&format!("/deb/{IPXE_DEB}"), &bad);
    let (s, out) = w.run(&w.cluster(VERSION));
    assert_eq!(s.failures.len(), 1, "{s:?}\n{out}");
    let f = &s.failures[0];
    assert_eq!(f.file, Path::new("ipxe").join(IPXE_DEB));
    assert!(
        f.reason.contains(&w.ipxe_sha256),
        "expected sum named: {}",
        f.reason
    );
    assert!(f.reason.contains("pinned"), "{}", f.reason);
    assert!(!w.assets().join("ipxe").join("undionly.kpxe").exists());
    assert!(!w.assets().join("ipxe").join(IPXE_DEB).exists());
    // A programs file lost later is taken out again without a download.
    w.up.put(&format!("/deb/{IPXE_DEB}"), &read(&w.dir.join(IPXE_DEB)));
    let (s, out) = w.run(&w.cluster(VERSION));
    assert!(s.failures.is_empty(), "{s:?}\n{out}");
    std::fs::remove_file(w.assets().join("ipxe").join("ipxe.efi")).expect("rm");
    let before = w.up.seen().len();
    let (s, out) = w.run(&w.cluster(VERSION));
    assert!(s.failures.is_empty(), "{s:?}\n{out}");
    assert_eq!(
        read(&w.assets().join("ipxe").join("ipxe.efi")),
        "ipxe.efi".repeat(1000).into_bytes()
    );
    assert_eq!(
        w.up.seen().len(),
        before,
        "the package was fetched again: {out}"
    );
}

#[test]
fn debians_real_ipxe_package_matches_the_pin_and_holds_the_programs() {
    // The pinned default, checked against Debian's own archive (reachable wherever
    // scripts/test runs: it installs its packages from there).
    let (url, pinned) = slipway_mirror::DEBIAN_IPXE;
    let file = url.rsplit('/').next().expect("a file name");
    let version = file
        .strip_prefix("ipxe_")
        .and_then(|v| v.strip_suffix("_all.deb"))
        .expect("ipxe_<version>_all.deb");
    let cached = Path::new("/var/cache/apt/archives").join(file);
    let bytes = if cached.is_file() {
        read(&cached)
    } else {
        let dir = std::env::temp_dir().join(format!("slipway-ipxe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let out = std::process::Command::new("apt-get")
            .current_dir(&dir)
            .args(["download", &format!("ipxe={version}")])
            .output()
            .expect("apt-get runs");
        assert!(
            out.status.success(),
            "apt-get download ipxe={version}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let b = read(&dir.join(file));
        let _ = std::fs::remove_dir_all(&dir);
        b
    };
    assert_eq!(sha256(bytes.as_slice()).expect("sum"), pinned, "{file}");
    let wanted: Vec<String> = slipway_mirror::IPXE_PROGRAMS
        .iter()
        .map(|p| format!("usr/lib/ipxe/{p}"))
        .collect();
    let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
    let got = slipway_mirror::deb::members(&bytes, &wanted).expect("Debian's package unpacks");
    assert!(
        got[0].len() > 10_000,
        "undionly.kpxe is {} bytes",
        got[0].len()
    );
    assert_eq!(&got[1][..2], b"MZ", "ipxe.efi is a PE file");
    assert_eq!(&got[2][..2], b"MZ", "snponly.efi is a PE file");
}
