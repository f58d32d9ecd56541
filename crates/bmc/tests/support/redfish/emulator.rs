//! sushy-tools' Redfish emulator (its fake driver, no libvirt) as a test peer:
//! HTTPS on 127.0.0.1 with a certificate from a test CA, HTTP basic
//! authentication, and a set of fake ComputerSystems. Dropping an [`Emulator`]
//! kills it and removes its directory.
//!
//! The emulator comes from `install-sushy.sh` beside this file (a venv at
//! `$SLIPWAY_SUSHY_VENV`, default `/opt/slipway-test/sushy`), or from `PATH`.

use std::fs;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use slipway_bmc::Secret;
use slipway_bmc::redfish::{Config, Tls};

/// The install script, named in the panic when the emulator is missing.
pub const INSTALL_SCRIPT: &str = "crates/bmc/tests/support/redfish/install-sushy.sh";
/// The emulator's user.
pub const USER: &str = "slipway-admin";
/// The emulator's password.
pub const PASSWORD: &str = "Tr0ub4dor&3-redfish";

/// One fake ComputerSystem.
pub struct FakeSystem {
    /// Its UUID, which is also its Redfish id.
    pub uuid: &'static str,
    /// Its name.
    pub name: &'static str,
    /// Powered on at start.
    pub on: bool,
}

/// A first system.
pub const NODE_A: FakeSystem = FakeSystem {
    uuid: "5f3f6a2e-0c1d-4c55-9a43-0a0000000001",
    name: "node-a",
    on: false,
};

/// A second system, powered on.
pub const NODE_B: FakeSystem = FakeSystem {
    uuid: "5f3f6a2e-0c1d-4c55-9a43-0a0000000002",
    name: "node-b",
    on: true,
};

/// A running emulator.
pub struct Emulator {
    /// Its HTTPS port on 127.0.0.1.
    pub port: u16,
    /// The test CA (PEM) that signed its certificate.
    pub ca_pem: PathBuf,
    /// Its certificate, DER.
    pub cert_der: Vec<u8>,
    dir: PathBuf,
    log: PathBuf,
    child: Child,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// The Python interpreter of the installed `sushy-emulator`.
fn sushy_python() -> PathBuf {
    let venv = std::env::var_os("SLIPWAY_SUSHY_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/slipway-test/sushy"));
    let mut candidates = vec![venv.join("bin/sushy-emulator")];
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("sushy-emulator")));
    }
    for script in candidates {
        let Ok(text) = fs::read_to_string(&script) else {
            continue;
        };
        let shebang = text.lines().next().unwrap_or_default();
        if let Some(python) = shebang.strip_prefix("#!") {
            let python = PathBuf::from(python.trim());
            if python.is_file() {
                return python;
            }
        }
        let sibling = script.with_file_name("python3");
        if sibling.is_file() {
            return sibling;
        }
    }
    panic!(
        "sushy-emulator (sushy-tools) not found in {}/bin nor on PATH: run {INSTALL_SCRIPT} \
         (it needs the Debian packages in crates/bmc/tests/support/redfish/PACKAGES)",
        venv.display()
    );
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

/// How the emulator's certificate is made.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum CertKind {
    /// Signed by a test CA (whose PEM is then `ca_pem`).
    FromCa,
    /// Self-signed, as most BMCs' are (`ca_pem` is then the certificate itself).
    SelfSigned,
}

/// A self-signed server certificate for 127.0.0.1, as (itself as the "CA" PEM,
/// PEM, DER, key PEM).
fn make_self_signed() -> (String, String, Vec<u8>, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "self-signed BMC");
    let cert = params.self_signed(&key).expect("cert");
    (
        cert.pem(),
        cert.pem(),
        cert.der().to_vec(),
        key.serialize_pem(),
    )
}

/// A CA and a server certificate for 127.0.0.1 signed by it:
/// (CA PEM, server certificate PEM, server certificate DER, server key PEM).
fn make_certs() -> (String, String, Vec<u8>, String) {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "slipway test BMC CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA cert");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let key = rcgen::KeyPair::generate().expect("server key");
    let mut params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("server params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "bmc.test");
    let cert = params.signed_by(&key, &issuer).expect("server cert");
    (
        ca_cert.pem(),
        cert.pem(),
        cert.der().to_vec(),
        key.serialize_pem(),
    )
}

/// Another CA's certificate (PEM), which signed nothing the emulator has.
pub fn unrelated_ca_pem() -> String {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "some other CA");
    params.self_signed(&key).expect("cert").pem()
}

fn wait_ready(child: &mut Child, port: u16, ca: &Path, within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("the emulator exited ({status})"));
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok()
            && let Ok(root) = curl_get(port, ca, "/redfish/v1/")
            && root.get("Systems").is_some()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("no answer on port {port} within {within:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// GET with curl, independently of the driver under test.
fn curl_get(port: u16, ca: &Path, path: &str) -> Result<Value, String> {
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "5", "--cacert"])
        .arg(ca)
        .args(["--user", &format!("{USER}:{PASSWORD}")])
        .arg(format!("https://127.0.0.1:{port}{path}"))
        .output()
        .map_err(|e| format!("run curl (Debian package curl): {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("GET {path}: {e}"))
}

fn py_str(s: &str) -> String {
    format!("{s:?}")
}

impl Emulator {
    /// Starts the emulator with these systems and a certificate from a test CA;
    /// waits until it answers.
    pub fn start(systems: &[FakeSystem]) -> Emulator {
        Emulator::start_with(systems, CertKind::FromCa)
    }

    /// Starts the emulator with these systems and this kind of certificate.
    pub fn start_with(systems: &[FakeSystem], certs: CertKind) -> Emulator {
        let python = sushy_python();
        // This file's directory, whichever crate's tests include it.
        let support = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(Path::new(file!()).parent().unwrap_or(Path::new(".")));
        let dir = std::env::temp_dir().join(format!(
            "slipway-redfish-test-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir");

        let (ca_pem, cert_pem, cert_der, key_pem) = match certs {
            CertKind::FromCa => make_certs(),
            CertKind::SelfSigned => make_self_signed(),
        };
        let ca_path = dir.join("ca.pem");
        fs::write(&ca_path, ca_pem).expect("write CA");
        fs::write(dir.join("cert.pem"), cert_pem).expect("write cert");
        fs::write(dir.join("key.pem"), key_pem).expect("write key");

        // sushy only accepts bcrypt entries in its htpasswd file; bcrypt comes with it.
        let out = Command::new(&python)
            .args([
                "-c",
                "import bcrypt, sys; print(sys.argv[1] + ':' + \
                 bcrypt.hashpw(sys.argv[2].encode(), bcrypt.gensalt(rounds=4)).decode())",
                USER,
                PASSWORD,
            ])
            .output()
            .expect("run python for bcrypt");
        assert!(
            out.status.success(),
            "bcrypt hash failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        fs::write(dir.join("htpasswd"), &out.stdout).expect("write htpasswd");

        let systems_py: Vec<String> = systems
            .iter()
            .map(|s| {
                format!(
                    "{{'uuid': {}, 'name': {}, 'power_state': {}, 'nics': []}}",
                    py_str(s.uuid),
                    py_str(s.name),
                    py_str(if s.on { "On" } else { "Off" })
                )
            })
            .collect();
        let config = format!(
            "SUSHY_EMULATOR_FAKE_DRIVER = True\n\
             SUSHY_EMULATOR_AUTH_FILE = {}\n\
             SUSHY_EMULATOR_STATE_DIR = {}\n\
             SUSHY_EMULATOR_FAKE_SYSTEMS = [\n    {}\n]\n",
            py_str(&dir.join("htpasswd").display().to_string()),
            py_str(&dir.join("state").display().to_string()),
            systems_py.join(",\n    ")
        );
        fs::write(dir.join("emulator.conf"), config).expect("write config");

        let log = dir.join("emulator.log");
        let mut last_failure = String::new();
        for _attempt in 0..3 {
            let port = free_port();
            let log_file = fs::File::create(&log).expect("log file");
            let child = Command::new(&python)
                .arg(support.join("sushy-launch.py"))
                .arg("--config")
                .arg(dir.join("emulator.conf"))
                .args(["--interface", "127.0.0.1", "--port", &port.to_string()])
                .arg("--ssl-certificate")
                .arg(dir.join("cert.pem"))
                .arg("--ssl-key")
                .arg(dir.join("key.pem"))
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().expect("log file"))
                .stderr(log_file)
                .spawn()
                .expect("start the sushy emulator");
            let mut child = child;
            match wait_ready(&mut child, port, &ca_path, Duration::from_secs(20)) {
                Ok(()) => {
                    return Emulator {
                        port,
                        ca_pem: ca_path,
                        cert_der,
                        dir,
                        log,
                        child,
                    };
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let text = fs::read_to_string(&log).unwrap_or_default();
                    last_failure = format!("{e}\n--- emulator log ---\n{text}");
                }
            }
        }
        let _ = fs::remove_dir_all(&dir);
        panic!("the sushy emulator did not start: {last_failure}");
    }

    /// A driver configuration for this emulator.
    pub fn config(&self, tls: Tls) -> Config {
        let mut cfg = Config::new("127.0.0.1", self.port, USER, Secret::new(PASSWORD), tls);
        cfg.timeout = Duration::from_secs(10);
        cfg.power_off_wait = Duration::from_secs(15);
        cfg
    }

    /// A configuration trusting the test CA.
    pub fn trusted(&self) -> Config {
        self.config(Tls::CaFile(self.ca_pem.clone()))
    }

    /// GET with curl, independently of the driver under test.
    fn try_get(&self, path: &str) -> Result<Value, String> {
        curl_get(self.port, &self.ca_pem, path)
    }

    /// GET with curl; panics on failure.
    pub fn get(&self, path: &str) -> Value {
        self.try_get(path)
            .unwrap_or_else(|e| panic!("GET {path} from the emulator: {e}"))
    }

    /// The emulator's view of a system.
    pub fn system(&self, sys: &FakeSystem) -> Value {
        self.get(&format!("/redfish/v1/Systems/{}", sys.uuid))
    }

    /// Waits until the emulator reports `want` as the system's PowerState.
    pub fn wait_power(&self, sys: &FakeSystem, want: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let got = self.system(sys)["PowerState"].clone();
            if got == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} still {got} after {within:?}, expected {want}\n--- emulator log ---\n{}",
                sys.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The `ResetType`s the emulator performed on a system, in order (from its log).
    pub fn resets(&self, sys: &FakeSystem) -> Vec<String> {
        let prefix = format!("System \"{}\" power state set to \"", sys.uuid);
        self.log()
            .lines()
            .filter_map(|l| l.split_once(&prefix))
            .filter_map(|(_, rest)| rest.split('"').next())
            .map(str::to_string)
            .collect()
    }

    /// The emulator's log so far.
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}
