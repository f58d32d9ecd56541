//! slipway's DHCP server against real clients (busybox udhcpc, ISC dhclient, Kea's
//! perfdhcp) in network namespaces: reserved addresses, options, boot files by
//! firmware, unknown MACs ignored, leases that survive `kill -9`.

mod support;

use std::collections::HashMap;
use std::process::Stdio;

use support::{Lab, Slipway};

const CLUSTER: &str = "\
cluster: {name: lab, domain: lab.test}
network:
  interface: eth0
  server: 10.199.0.1
  subnet: 10.199.0.0/24
  gateway: 10.199.0.254
  dhcp: {mode: authoritative, unknown_machines: UNKNOWN, pool: 10.199.0.100-10.199.0.250, lease_time: 1h}
os: {version: 4081.2.0, assets: mirror}
kubernetes: {version: v1.31.2, service_subnet: 10.100.0.0/16}
access: {ssh_authorized_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlaceholderPlaceholder t@x']}
nodes:
  - {mac: 52:54:00:99:00:01, hostname: cp1, ip: 10.199.0.11, roles: [control-plane]}
  - {mac: 52:54:00:99:00:02, hostname: w1, ip: 10.199.0.21}
";

const SCRIPT: &str = "#!/bin/sh\ncase \"$1\" in bound|renew) env > \"$OUT\" ;; esac\nexit 0\n";

struct Net {
    lab: Lab,
    server: String,
    client: String,
    file: std::path::PathBuf,
    state: std::path::PathBuf,
}

fn setup(unknown: &str) -> Net {
    let mut lab = Lab::new();
    let server = lab.host("s", "52:54:00:99:00:fe", Some("10.199.0.1/24"));
    let client = lab.host("c", "52:54:00:99:00:01", None);
    let file = lab.file("cluster.yaml", &CLUSTER.replace("UNKNOWN", unknown));
    let state = lab.dir.join("state");
    let script = lab.file("udhcpc.sh", SCRIPT);
    support::run(&["chmod", "+x", script.to_str().unwrap_or_default()]);
    Net {
        lab,
        server,
        client,
        file,
        state,
    }
}

impl Net {
    fn start(&self) -> Slipway {
        Slipway::start(
            &self.lab,
            &self.server,
            &self.file,
            &self.state,
            &["--http-listen", "10.199.0.1:8080"],
        )
    }

    fn set_mac(&self, mac: &str) {
        support::run(&[
            "ip",
            "-n",
            &self.client,
            "link",
            "set",
            "eth0",
            "address",
            mac,
        ]);
    }

    /// Runs udhcpc once with `extra` options; returns the variables its script saw.
    fn udhcpc(&self, extra: &[&str]) -> Option<HashMap<String, String>> {
        let out = self.lab.dir.join(format!("udhcpc-{}.env", rand()));
        let status = self
            .lab
            .cmd(&self.client, "timeout")
            .args([
                "20", "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", "3", "-T", "1",
                "-A", "1",
            ])
            .args([
                "-s",
                self.lab.dir.join("udhcpc.sh").to_str().unwrap_or_default(),
            ])
            .args(extra)
            .env("OUT", &out)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("udhcpc: {e} (apt-get install busybox-static)"));
        if !status.success() {
            return None;
        }
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        Some(
            text.lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }
}

fn rand() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

#[test]
fn udhcpc_gets_its_reservation_options_and_boot_files() {
    let net = setup("ignore");
    let slipway = net.start();

    let env = net
        .udhcpc(&[])
        .unwrap_or_else(|| panic!("no lease:\n{}", slipway.logs()));
    assert_eq!(env.get("ip").map(String::as_str), Some("10.199.0.11"));
    assert_eq!(env.get("subnet").map(String::as_str), Some("255.255.255.0"));
    assert_eq!(env.get("router").map(String::as_str), Some("10.199.0.254"));
    assert_eq!(env.get("dns").map(|d| d.trim()), Some("10.199.0.1"));
    assert_eq!(env.get("domain").map(String::as_str), Some("lab.test"));
    assert_eq!(env.get("hostname").map(String::as_str), Some("cp1"));
    assert_eq!(env.get("serverid").map(String::as_str), Some("10.199.0.1"));
    assert_eq!(env.get("lease").map(String::as_str), Some("3600"));
    assert_eq!(
        env.get("boot_file"),
        None,
        "an OS's DHCP client gets no boot file"
    );

    // PXE firmware, by architecture (option 93) and vendor class (60).
    let uefi = net
        .udhcpc(&["-V", "PXEClient:Arch:00007:UNDI:003016", "-x", "0x5d:0007"])
        .unwrap_or_default();
    assert_eq!(
        uefi.get("boot_file").map(String::as_str),
        Some("snponly.efi")
    );
    assert_eq!(uefi.get("siaddr").map(String::as_str), Some("10.199.0.1"));
    let bios = net
        .udhcpc(&["-V", "PXEClient:Arch:00000:UNDI:002001", "-x", "0x5d:0000"])
        .unwrap_or_default();
    assert_eq!(
        bios.get("boot_file").map(String::as_str),
        Some("undionly.kpxe")
    );
    // iPXE (user class "iPXE") gets the HTTP chain script.
    let ipxe = net.udhcpc(&["-x", "0x4d:69505845"]).unwrap_or_default();
    assert_eq!(
        ipxe.get("boot_file").map(String::as_str),
        Some("http://10.199.0.1:8080/boot.ipxe")
    );

    // The other node gets its own address.
    net.set_mac("52:54:00:99:00:02");
    let w1 = net.udhcpc(&[]).unwrap_or_default();
    assert_eq!(w1.get("ip").map(String::as_str), Some("10.199.0.21"));

    // A machine that is not in the cluster file gets nothing, and is logged.
    net.set_mac("02:00:00:00:00:99");
    assert!(net.udhcpc(&[]).is_none(), "an unknown MAC got an address");
    let logs = slipway.logs();
    assert!(
        logs.contains("ignoring a machine that is not in the cluster file")
            && logs.contains("02:00:00:00:00:99"),
        "{logs}"
    );
    assert_eq!(
        logs.matches("ignoring a machine").count(),
        1,
        "logged once, not per packet:\n{logs}"
    );
}

#[test]
fn dhclient_gets_its_reservation() {
    let net = setup("ignore");
    let slipway = net.start();
    let leases = net.lab.dir.join("dhclient.leases");
    // dhclient scrubs its script's environment: read what it got from its lease file.
    let status = net
        .lab
        .cmd(&net.client, "timeout")
        .args([
            "30",
            "dhclient",
            "-1",
            "-sf",
            "/bin/true",
            "-lf",
            leases.to_str().unwrap_or_default(),
        ])
        .args([
            "-pf",
            net.lab
                .dir
                .join("dhclient.pid")
                .to_str()
                .unwrap_or_default(),
            "eth0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("dhclient: {e}"));
    let lease = std::fs::read_to_string(&leases).unwrap_or_default();
    assert!(
        status.success(),
        "dhclient ({status}):\n{lease}\n{}",
        slipway.logs()
    );
    for expected in [
        "fixed-address 10.199.0.11;",
        "option host-name \"cp1\";",
        "option routers 10.199.0.254;",
        "option domain-name \"lab.test\";",
        "option dhcp-server-identifier 10.199.0.1;",
        "option dhcp-lease-time 3600;",
    ] {
        assert!(
            lease.contains(expected),
            "missing `{expected}` in:\n{lease}"
        );
    }
}

#[test]
fn leases_survive_kill_9_and_no_address_is_given_twice() {
    let net = setup("discover");
    let slipway = net.start();
    net.set_mac("02:00:00:00:00:0a");
    let a = net
        .udhcpc(&[])
        .unwrap_or_else(|| panic!("no lease:\n{}", slipway.logs()));
    let a_ip = a.get("ip").cloned().unwrap_or_default();
    assert!(
        a_ip.starts_with("10.199.0.1") || a_ip.starts_with("10.199.0.2"),
        "{a_ip}"
    );
    slipway.kill9();

    let slipway = net.start();
    assert!(
        slipway.logs().contains("leases restored"),
        "{}",
        slipway.logs()
    );
    net.set_mac("02:00:00:00:00:0b");
    let b = net
        .udhcpc(&[])
        .unwrap_or_else(|| panic!("no lease after restart:\n{}", slipway.logs()));
    assert_ne!(
        b.get("ip"),
        Some(&a_ip),
        "the crashed server's lease was handed out again"
    );
    net.set_mac("02:00:00:00:00:0a");
    let a2 = net.udhcpc(&[]).unwrap_or_default();
    assert_eq!(
        a2.get("ip"),
        Some(&a_ip),
        "the first client keeps its address after the crash"
    );
}

#[test]
fn perfdhcp_load_without_errors() {
    let net = setup("discover");
    // perfdhcp's giaddr must be a listed relay (any other relayed request is dropped).
    std::fs::write(
        &net.file,
        CLUSTER
            .replace("UNKNOWN", "discover")
            .replace("lease_time: 1h}", "lease_time: 1h, relays: [10.199.0.50]}"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let slipway = net.start();
    // perfdhcp plays a relay agent: it needs an address, and gets answers at giaddr:67.
    support::run(&[
        "ip",
        "-n",
        &net.client,
        "addr",
        "add",
        "10.199.0.50/24",
        "dev",
        "eth0",
    ]);
    let out = net
        .lab
        .cmd(&net.client, "timeout")
        .args([
            "60", "perfdhcp", "-4", "-l", "eth0", "-r", "50", "-R", "100", "-p", "4", "-t", "1",
        ])
        .output()
        .unwrap_or_else(|e| panic!("perfdhcp: {e} (apt-get install kea-admin)"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let num = |label: &str| -> u64 {
        text.lines()
            .filter(|l| l.trim_start().starts_with(label))
            .filter_map(|l| {
                l.rsplit(':').next().and_then(|v| {
                    v.split_whitespace()
                        .next()
                        .and_then(|n| n.parse::<u64>().ok())
                })
            })
            .sum()
    };
    let sent = num("sent packets");
    let received = num("received packets");
    assert!(sent > 50, "perfdhcp sent too little:\n{text}");
    assert!(
        received * 10 >= sent * 9,
        "fewer than 90% answered ({received}/{sent}):\n{text}\n{}",
        slipway.logs()
    );
}

#[test]
fn sighup_reloads_the_cluster_file_and_keeps_running_on_a_bad_one() {
    let net = setup("ignore");
    let slipway = net.start();
    net.set_mac("52:54:00:99:00:03");
    assert!(net.udhcpc(&[]).is_none(), "not in the file yet");

    // A broken edit: refused, the old configuration keeps serving.
    std::fs::write(
        &net.file,
        CLUSTER
            .replace("UNKNOWN", "ignore")
            .replace("hostname: w1", "hostnme: w1"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    support::run(&["kill", "-HUP", &slipway.child.id().to_string()]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !slipway.logs().contains("reload refused") {
        assert!(
            std::time::Instant::now() < deadline,
            "no reload attempt logged:\n{}",
            slipway.logs()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        slipway.logs().contains("unknown key `hostnme`"),
        "the errors are logged:\n{}",
        slipway.logs()
    );
    net.set_mac("52:54:00:99:00:01");
    assert_eq!(
        net.udhcpc(&[])
            .and_then(|e| e.get("ip").cloned())
            .as_deref(),
        Some("10.199.0.11"),
        "still serving"
    );

    // A good edit adds a node.
    let grown = CLUSTER.replace("UNKNOWN", "ignore")
        + "  - {mac: 52:54:00:99:00:03, hostname: w2, ip: 10.199.0.23}\n";
    std::fs::write(&net.file, grown).unwrap_or_else(|e| panic!("{e}"));
    support::run(&["kill", "-HUP", &slipway.child.id().to_string()]);
    while !slipway.logs().contains("cluster file reloaded") {
        assert!(
            std::time::Instant::now() < deadline,
            "no reload:\n{}",
            slipway.logs()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    net.set_mac("52:54:00:99:00:03");
    let env = net
        .udhcpc(&[])
        .unwrap_or_else(|| panic!("the new node got nothing:\n{}", slipway.logs()));
    assert_eq!(env.get("ip").map(String::as_str), Some("10.199.0.23"));
    assert_eq!(env.get("hostname").map(String::as_str), Some("w2"));
}

#[test]
fn a_taken_port_or_state_stops_the_start_with_a_clear_message() {
    let net = setup("ignore");
    let _first = net.start();
    let second = |state: &std::path::Path| {
        let out = net
            .lab
            .cmd(&net.server, env!("CARGO_BIN_EXE_slipway"))
            .args([
                "--state-dir",
                state.to_str().unwrap_or_default(),
                "serve",
                net.file.to_str().unwrap_or_default(),
                "--http-listen",
                "10.199.0.1:8080",
                "--no-api",
            ])
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // The same state directory: refused, the first keeps its leases to itself.
    let (code, err) = second(&net.state);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("is another `slipway serve` running with this state directory?"),
        "{err}"
    );
    // Another state directory, the same HTTP port.
    let (code, err) = second(&net.lab.dir.join("state2"));
    assert_eq!(code, Some(1));
    assert!(
        err.contains("HTTP: cannot listen on 10.199.0.1:8080")
            && err.contains("Address already in use"),
        "{err}"
    );
}

fn dig(net: &Net, args: &[&str]) -> String {
    let out = net
        .lab
        .cmd(&net.client, "dig")
        .args(["@10.199.0.1", "+time=2", "+tries=2", "+short"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("dig: {e} (apt-get install bind9-dnsutils)"));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn dns_serves_nodes_the_api_name_and_names_of_pool_leases() {
    let net = setup("discover");
    let slipway = net.start();
    net.set_mac("02:00:00:00:00:0c");
    let env = net
        .udhcpc(&[])
        .unwrap_or_else(|| panic!("no lease:\n{}", slipway.logs()));
    let pool_ip = env.get("ip").cloned().unwrap_or_default();
    support::run(&[
        "ip",
        "-n",
        &net.client,
        "addr",
        "add",
        "10.199.0.60/24",
        "dev",
        "eth0",
    ]);
    assert_eq!(dig(&net, &["cp1.lab.test"]), "10.199.0.11");
    assert_eq!(dig(&net, &["api.lab.test"]), "10.199.0.11");
    assert_eq!(dig(&net, &["slipway.lab.test"]), "10.199.0.1");
    assert_eq!(dig(&net, &["-x", "10.199.0.21"]), "w1.lab.test.");
    assert_eq!(dig(&net, &["+tcp", "w1.lab.test"]), "10.199.0.21");
    assert_eq!(
        dig(&net, &["02-00-00-00-00-0c.lab.test"]),
        pool_ip,
        "a pool lease gets a name:\n{}",
        slipway.logs()
    );
    assert_eq!(dig(&net, &["nope.lab.test"]), "");
}

/// Runs the PXE client script in `ns`; returns its JSON report.
fn pxe_client(lab: &Lab, ns: &str, mac: &str, arch: u16) -> serde_json::Value {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/pxe_client.py");
    let out = lab
        .cmd(ns, "python3")
        .arg(script)
        .args([mac, &arch.to_string(), "2"])
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn proxy_mode_beside_the_sites_dnsmasq() {
    let mut lab = Lab::new();
    let server = lab.host("s", "52:54:00:99:00:fe", Some("10.199.0.1/24"));
    let site = lab.host("d", "52:54:00:99:00:fd", Some("10.199.0.2/24"));
    let client = lab.host("c", "52:54:00:99:00:01", None);
    let proxy = CLUSTER
        .replace("{mode: authoritative, unknown_machines: UNKNOWN, pool: 10.199.0.100-10.199.0.250, lease_time: 1h}", "{mode: proxy}");
    let file = lab.file("cluster.yaml", &proxy);
    // The site's DHCP server hands out addresses and knows nothing of PXE.
    let leases = lab.dir.join("dnsmasq.leases");
    let mut dnsmasq = lab
        .cmd(&site, "dnsmasq")
        .args([
            "--keep-in-foreground",
            "--port=0",
            "--interface=eth0",
            "--bind-interfaces",
            "--no-ping",
            "--log-dhcp",
        ])
        .args([
            "--dhcp-range=10.199.0.100,10.199.0.150,255.255.255.0,1h",
            "--conf-file=/dev/null",
        ])
        .arg(format!("--dhcp-leasefile={}", leases.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("dnsmasq: {e}"));
    let state = lab.dir.join("state");
    let slipway = Slipway::start(
        &lab,
        &server,
        &file,
        &state,
        &["--http-listen", "10.199.0.1:8080"],
    );

    // The machine's PXE firmware sees two offers: an address from the site, boot
    // information (and no address) from slipway; then asks slipway on 4011.
    support::run(&[
        "ip",
        "-n",
        &client,
        "addr",
        "add",
        "10.199.0.199/24",
        "dev",
        "eth0",
    ]);
    let report = pxe_client(&lab, &client, "52:54:00:99:00:01", 7);
    let offers = report["offers"].as_array().cloned().unwrap_or_default();
    let from_site = offers
        .iter()
        .find(|o| o["server_id"] == "10.199.0.2")
        .unwrap_or_else(|| panic!("no offer from dnsmasq: {report}"));
    assert!(
        from_site["yiaddr"]
            .as_str()
            .is_some_and(|a| a.starts_with("10.199.0.1")),
        "{report}"
    );
    let from_us = offers
        .iter()
        .find(|o| o["server_id"] == "10.199.0.1")
        .unwrap_or_else(|| panic!("no proxy offer: {report}\n{}", slipway.logs()));
    assert_eq!(
        from_us["yiaddr"], "0.0.0.0",
        "a proxy never hands out addresses"
    );
    assert_eq!(from_us["bootfile"], "snponly.efi");
    assert_eq!(from_us["vendor_class"], "PXEClient");
    assert_eq!(report["proxy_ack"]["type"], 5, "ACK on 4011: {report}");
    assert_eq!(report["proxy_ack"]["bootfile"], "snponly.efi");

    // A machine slipway does not know gets the site's address but nothing from slipway.
    support::run(&[
        "ip",
        "-n",
        &client,
        "link",
        "set",
        "eth0",
        "address",
        "02:00:00:00:00:44",
    ]);
    let report = pxe_client(&lab, &client, "02:00:00:00:00:44", 7);
    let offers = report["offers"].as_array().cloned().unwrap_or_default();
    assert!(
        offers.iter().any(|o| o["server_id"] == "10.199.0.2"),
        "{report}"
    );
    assert!(
        !offers.iter().any(|o| o["server_id"] == "10.199.0.1"),
        "slipway answered a stranger: {report}"
    );
    let _ = dnsmasq.kill();
    let _ = dnsmasq.wait();
}

/// The uid and gid `pid` runs as (real ids, from /proc).
fn ids_of(pid: u32) -> (u32, u32) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let first = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(u32::MAX)
    };
    (first("Uid:"), first("Gid:"))
}

#[test]
fn serve_becomes_an_unprivileged_user_once_its_sockets_are_bound() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let id = |flag: &str| {
        String::from_utf8_lossy(&support::run(&["id", flag, "nobody"]).stdout)
            .trim()
            .parse::<u32>()
            .unwrap_or_else(|e| panic!("id {flag} nobody: {e}"))
    };
    let (uid, gid) = (id("-u"), id("-g"));
    let net = setup("ignore");
    let slipway = Slipway::start(
        &net.lab,
        &net.server,
        &net.file,
        &net.state,
        &["--http-listen", "10.199.0.1:8080", "--user", "nobody"],
    );
    let pid = slipway.child.id();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while ids_of(pid) != (uid, gid) {
        assert!(
            std::time::Instant::now() < deadline,
            "still {:?}:\n{}",
            ids_of(pid),
            slipway.logs()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Port 67 on eth0 was bound as root and still answers.
    let env = net
        .udhcpc(&[])
        .unwrap_or_else(|| panic!("no lease after dropping root:\n{}", slipway.logs()));
    assert_eq!(env.get("ip").map(String::as_str), Some("10.199.0.11"));
    // The state is the new user's, and private.
    let meta = |p: &std::path::Path| std::fs::metadata(p).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(meta(&net.state).uid(), uid);
    assert_eq!(meta(&net.state).permissions().mode() & 0o777, 0o700);
    let db = net.state.join("state.redb");
    assert_eq!(meta(&db).uid(), uid);
    assert_eq!(meta(&db).permissions().mode() & 0o777, 0o600);
    // A reload (cluster file, PKI in the state directory) works as that user.
    let grown = CLUSTER.replace("UNKNOWN", "ignore")
        + "  - {mac: 52:54:00:99:00:03, hostname: w2, ip: 10.199.0.23}\n";
    std::fs::write(&net.file, grown).unwrap_or_else(|e| panic!("{e}"));
    support::run(&["kill", "-HUP", &pid.to_string()]);
    while !slipway.logs().contains("cluster file reloaded") {
        assert!(
            !slipway.logs().contains("reload refused"),
            "{}",
            slipway.logs()
        );
        assert!(
            std::time::Instant::now() < deadline + std::time::Duration::from_secs(10),
            "no reload:\n{}",
            slipway.logs()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    net.set_mac("52:54:00:99:00:03");
    let env = net
        .udhcpc(&[])
        .unwrap_or_else(|| panic!("the new node got nothing:\n{}", slipway.logs()));
    assert_eq!(env.get("ip").map(String::as_str), Some("10.199.0.23"));
}
