//! Each broken file reports its problems at the exact line:column with the exact
//! message. The base file is valid; each case edits it and lists what `check` says.

use std::path::Path;

use slipway_cluster::{NoHost, load_str};

const BASE: &str = "\
cluster:
  name: lab
network:
  interface: br0
  server: 10.99.0.1
  subnet: 10.99.0.0/24
  gateway: 10.99.0.254
  dhcp:
    pool: 10.99.0.200-10.99.0.250
os:
  version: 4081.2.0
kubernetes:
  version: v1.31.2
  service_subnet: 10.100.0.0/16
access:
  ssh_authorized_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlaceholderPlaceholder t@x']
nodes:
  - mac: 52:54:00:99:00:01
    hostname: cp1
    ip: 10.99.0.11
    roles: [control-plane]
  - mac: 52:54:00:99:00:02
    hostname: w1
    ip: 10.99.0.21
";

/// Loads BASE with `edits` (each `(from, to)` replaces the first `from`) applied and
/// returns the diagnostics in `line:col: severity: message` form.
fn check(edits: &[(&str, &str)]) -> Vec<String> {
    let mut text = BASE.to_string();
    for (from, to) in edits {
        assert!(
            text.contains(from),
            "edit target `{from}` not in the base file"
        );
        text = text.replacen(from, to, 1);
    }
    let loaded = load_str("t.yaml", &text, Path::new("/srv"), &NoHost);
    loaded.diagnostics.items.iter().map(|d| d.short()).collect()
}

fn help(edits: &[(&str, &str)]) -> Vec<Option<String>> {
    let mut text = BASE.to_string();
    for (from, to) in edits {
        text = text.replacen(from, to, 1);
    }
    let loaded = load_str("t.yaml", &text, Path::new("/srv"), &NoHost);
    loaded
        .diagnostics
        .items
        .iter()
        .map(|d| d.help.clone())
        .collect()
}

#[test]
fn base_file_is_valid() {
    assert_eq!(check(&[]), Vec::<String>::new());
}

#[test]
fn unknown_keys_with_suggestions() {
    let edits = [
        ("    hostname: cp1", "    hostnme: cp1"),
        ("  gateway:", "  gatway:"),
    ];
    assert_eq!(
        check(&edits),
        [
            "7:3: error: unknown key `gatway` in `network`",
            "19:5: error: unknown key `hostnme` in a node",
        ]
    );
    assert_eq!(
        help(&edits),
        [
            Some("did you mean `gateway`?".into()),
            Some("did you mean `hostname`?".into())
        ]
    );
}

#[test]
fn bad_mac_ip_and_cidr() {
    assert_eq!(
        check(&[
            ("mac: 52:54:00:99:00:02", "mac: 52:54:00:99:00:zz"),
            ("ip: 10.99.0.11", "ip: 10.99.0.300"),
            ("subnet: 10.99.0.0/24", "subnet: 10.99.0.0/33"),
        ]),
        [
            "6:11: error: `network.subnet`: `10.99.0.0/33` is not an IPv4 subnet in CIDR form (e.g. 10.0.0.0/24)",
            "20:9: error: `ip`: `10.99.0.300` is not an IPv4 address",
            "22:10: error: `mac`: `52:54:00:99:00:zz` is not a MAC address (expected six hex bytes, e.g. 52:54:00:12:34:56)",
        ]
    );
}

#[test]
fn cidr_with_host_bits() {
    assert_eq!(
        check(&[("subnet: 10.99.0.0/24", "subnet: 10.99.0.7/24")]),
        ["6:11: error: `network.subnet`: `10.99.0.7/24` has host bits set"]
    );
}

#[test]
fn duplicate_mac_ip_and_hostname() {
    assert_eq!(
        check(&[("52:54:00:99:00:02", "52-54-00-99-00-01")]),
        ["22:10: error: duplicate MAC 52:54:00:99:00:01 (first on line 18)"]
    );
    // The duplicate's other problems are still reported.
    assert_eq!(
        check(&[
            ("52:54:00:99:00:02", "52-54-00-99-00-01"),
            ("ip: 10.99.0.21", "ip: 10.98.0.21")
        ]),
        [
            "22:10: error: duplicate MAC 52:54:00:99:00:01 (first on line 18)",
            "24:9: error: address 10.98.0.21 is outside the subnet 10.99.0.0/24",
        ]
    );
    assert_eq!(
        check(&[
            ("hostname: w1", "hostname: cp1"),
            ("ip: 10.99.0.21", "ip: 10.99.0.11")
        ]),
        [
            "23:15: error: duplicate hostname `cp1` (first on line 19)",
            "24:9: error: address 10.99.0.11 is already used by node `cp1` (line 20)",
        ]
    );
}

#[test]
fn addresses_outside_the_subnet_or_inside_the_pool() {
    assert_eq!(
        check(&[
            ("ip: 10.99.0.21", "ip: 10.98.0.21"),
            ("ip: 10.99.0.11", "ip: 10.99.0.210"),
            ("gateway: 10.99.0.254", "gateway: 10.99.1.254"),
            ("server: 10.99.0.1", "server: 10.99.0.255"),
        ]),
        [
            "5:11: error: server address 10.99.0.255 is the subnet's broadcast address",
            "7:12: error: gateway 10.99.1.254 is outside the subnet 10.99.0.0/24",
            "20:9: error: static address 10.99.0.210 is inside the DHCP pool 10.99.0.200-10.99.0.250",
            "24:9: error: address 10.98.0.21 is outside the subnet 10.99.0.0/24",
        ]
    );
}

#[test]
fn pool_problems() {
    assert_eq!(
        check(&[(
            "pool: 10.99.0.200-10.99.0.250",
            "pool: 10.99.0.1-10.99.0.50"
        )]),
        [
            "9:11: error: DHCP pool 10.99.0.1-10.99.0.50 contains slipway's own address 10.99.0.1",
            "20:9: error: static address 10.99.0.11 is inside the DHCP pool 10.99.0.1-10.99.0.50",
            "24:9: error: static address 10.99.0.21 is inside the DHCP pool 10.99.0.1-10.99.0.50",
        ]
    );
    assert_eq!(
        check(&[(
            "pool: 10.99.0.200-10.99.0.250",
            "pool: 10.99.0.250-10.99.0.200"
        )]),
        [
            "9:11: error: `network.dhcp.pool`: address range `10.99.0.250-10.99.0.200` ends before it starts"
        ]
    );
}

#[test]
fn no_control_plane_and_even_etcd() {
    assert_eq!(
        check(&[("roles: [control-plane]", "roles: [worker]")]),
        ["17:1: error: no node has the `control-plane` role"]
    );
    assert_eq!(
        check(&[
            ("roles: [control-plane]", "roles: [control-plane, etcd]"),
            (
                "ip: 10.99.0.21",
                "ip: 10.99.0.21\n    roles: [worker, etcd]"
            )
        ]),
        ["17:1: warning: 2 etcd members: an even number tolerates no more failures than 1"]
    );
}

#[test]
fn hostname_disk_and_role() {
    assert_eq!(
        check(&[
            ("hostname: w1", "hostname: W_1"),
            ("ip: 10.99.0.11", "ip: 10.99.0.11\n    install_disk: sda"),
            ("roles: [control-plane]", "roles: [control-plane, master]"),
        ]),
        [
            "21:19: error: install disk `sda` is not an absolute /dev path",
            "22:28: error: role: unknown value `master`",
            "24:15: error: hostname `W_1` is not a valid DNS label",
        ]
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let found = check(&[
        ("  name: lab", "  name: Lab"),
        ("version: v1.31.2", "version: 1.31"),
        ("version: 4081.2.0", "version: latest"),
        ("    hostname: w1", "    hostname: w1\n    color: blue"),
    ]);
    assert_eq!(
        found,
        [
            "2:9: error: cluster name `Lab` is not a valid DNS label",
            "11:12: error: Flatcar version `latest` is not a release number like 4081.2.0 (or `current`)",
            "13:12: error: Kubernetes version `1.31` is not like v1.31.2",
            "24:5: error: unknown key `color` in a node",
        ]
    );
}

#[test]
fn missing_sections_and_empty_file() {
    assert_eq!(
        load_str("e.yaml", "", Path::new("/"), &NoHost)
            .diagnostics
            .items[0]
            .short(),
        "0:0: error: the cluster file is empty"
    );
    let found: Vec<String> = load_str("e.yaml", "nodes: []\n", Path::new("/"), &NoHost)
        .diagnostics
        .items
        .iter()
        .map(|d| d.short())
        .collect();
    assert_eq!(
        found,
        [
            "0:0: error: `os.version` is required for Flatcar",
            "0:0: warning: no `access.ssh_authorized_keys` and no `password_hash`: nobody can log in to the machines",
            "1:1: error: missing section `cluster:` (name and domain)",
            "1:1: error: missing section `kubernetes:` (at least `version`)",
            "1:1: error: missing section `network:` (interface and subnet)",
        ]
    );
}

#[test]
fn yaml_syntax_error_has_a_position() {
    assert_eq!(
        check(&[("    hostname: w1", "    hostname: [w1")]),
        ["24:7: error: invalid YAML: illegal placement of ':' indicator"]
    );
}

#[test]
fn type_errors() {
    assert_eq!(
        check(&[
            ("roles: [control-plane]", "roles: control-plane"),
            ("  name: lab", "  name: [lab]")
        ]),
        [
            "2:9: error: `cluster.name` must be a single value, not a list",
            "21:12: error: `roles` must be a list"
        ]
    );
    assert_eq!(
        help(&[("roles: [control-plane]", "roles: control-plane")])
            .last()
            .cloned()
            .flatten()
            .as_deref(),
        Some("write `[control-plane]` or one `- item` per line")
    );
}

#[test]
fn inline_bmc_password_is_refused() {
    let bmc = "ip: 10.99.0.21\n    bmc: {driver: ipmi, address: 10.0.0.9, user: admin, password: hunter2}";
    assert_eq!(
        check(&[("ip: 10.99.0.21", bmc)]),
        ["25:67: error: inline BMC passwords are refused: the cluster file is not a secret store"]
    );
    let allowed = "ip: 10.99.0.21\n    bmc: {driver: ipmi, address: 10.0.0.9, user: admin, password: hunter2, allow_inline_password: true}";
    assert_eq!(check(&[("ip: 10.99.0.21", allowed)]), Vec::<String>::new());
}

#[test]
fn endpoint_and_subnet_relations() {
    assert_eq!(
        check(&[(
            "service_subnet: 10.100.0.0/16",
            "service_subnet: 10.100.0.0/16\n  control_plane_endpoint: w1"
        )]),
        ["15:27: error: control-plane endpoint `w1` has no control-plane role"]
    );
    assert_eq!(
        check(&[(
            "service_subnet: 10.100.0.0/16",
            "service_subnet: 10.99.0.0/16"
        )]),
        ["14:19: error: service subnet 10.99.0.0/16 overlaps the node subnet 10.99.0.0/24"]
    );
}

#[test]
fn boot_files_are_relative_tftp_paths() {
    assert_eq!(
        check(&[(
            "    ip: 10.99.0.21",
            "    ip: 10.99.0.21\n    boot_files: {bios: /srv/tftp/pxelinux.0, uefi: ../x.efi, arm: y}"
        )]),
        [
            "25:24: error: boot file `/srv/tftp/pxelinux.0` must be a relative path on the TFTP server (at most 127 characters)",
            "25:52: error: boot file `../x.efi` must be a relative path on the TFTP server (at most 127 characters)",
            "25:62: error: unknown key `arm` in `boot_files`",
        ]
    );
}

#[test]
fn bmc_options_belong_to_their_driver_and_are_checked() {
    let with = |bmc: &str| check(&[("ip: 10.99.0.21", &format!("ip: 10.99.0.21\n    bmc: {bmc}"))]);
    let ok = "{driver: redfish, address: b, user: u, password_env: P, tls_fingerprint: 'sha256:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89', system: s1, auth: session}";
    assert_eq!(with(ok), Vec::<String>::new());
    assert_eq!(
        with("{driver: ipmi, address: b, user: u, password_env: P, cipher_suite: 3}"),
        Vec::<String>::new()
    );
    assert_eq!(
        with("{driver: ipmi, address: b, user: u, password_env: P, cipher_suite: 1}"),
        ["25:77: error: `bmc.cipher_suite`: 1 is not supported"]
    );
    assert_eq!(
        with("{driver: ipmi, address: b, user: u, password_env: P, tls_insecure: true}"),
        ["25:63: error: `bmc.tls_insecure` applies to the redfish driver only"]
    );
    assert_eq!(
        with("{driver: redfish, address: b, user: u, password_env: P, cipher_suite: 17}"),
        ["25:66: error: `bmc.cipher_suite` applies to the ipmi driver only"]
    );
    assert_eq!(
        with("{driver: redfish, address: b, user: u, password_env: P, tls_fingerprint: 'ab:cd'}"),
        ["25:83: error: `bmc.tls_fingerprint` is not a SHA-256 fingerprint"]
    );
    assert_eq!(
        with(
            "{driver: redfish, address: b, user: u, password_env: P, tls_insecure: true, tls_ca: /x.pem}"
        ),
        [
            "25:11: error: `bmc` takes one of `tls_fingerprint`, `tls_ca`, `tls_insecure`, not several"
        ]
    );
}

#[test]
fn dhcp_relays_are_addresses_and_not_slipway_itself() {
    let relays = |list: &str| {
        check(&[(
            "    pool: 10.99.0.200-10.99.0.250\n",
            &format!("    pool: 10.99.0.200-10.99.0.250\n    relays: {list}\n"),
        )])
    };
    assert_eq!(relays("[10.98.0.1, 10.97.0.1]"), Vec::<String>::new());
    assert_eq!(
        relays("[10.98.0.1, 10.99.0.1]"),
        ["10:25: error: DHCP relay 10.99.0.1 is slipway's own address"]
    );
    let bad = relays("[10.98.0.300]");
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert!(bad[0].starts_with("10:14: error:"), "{bad:?}");
}

#[test]
fn cni_settings_are_refused_where_they_do_nothing() {
    let k = "  service_subnet: 10.100.0.0/16\n";
    let with = |extra: &str| check(&[(k, &format!("{k}{extra}"))]);
    assert_eq!(
        with("  network_plugin: cilium\n"),
        [
            "15:19: error: cilium is installed with Helm or the cilium CLI, and slipway renders no Helm charts"
        ]
    );
    assert_eq!(
        with("  cni_mtu: 1400\n"),
        ["15:12: error: flannel takes its MTU from the node's interface (less the VXLAN overhead)"]
    );
    assert!(with("  network_plugin: calico\n  cni_mtu: 1400\n").is_empty());
    assert_eq!(
        with("  network_plugin: calico\n  cni_mtu: 100\n"),
        ["16:12: error: MTU 100 is not between 576 and 9216"]
    );
    assert_eq!(
        with("  network_plugin: none\n  cni_version: v1.0.0\n"),
        [
            "16:16: error: `kubernetes.cni_version` applies to the flannel and calico that slipway renders, not to `none`"
        ]
    );
    assert_eq!(
        with("  network_plugin: flannel\n  cni_manifest: https://example.com/cni.yaml\n"),
        [
            "16:17: error: `kubernetes.cni_manifest` replaces the plugin slipway renders, but `network_plugin` is `flannel`"
        ]
    );
    assert!(with("  cni_manifest: https://example.com/cni.yaml\n").is_empty());
    assert_eq!(
        with("  cni_manifest: my-cni.yaml\n"),
        [
            "15:17: error: `kubernetes.cni_manifest`: /srv/my-cni.yaml is not a file (give a file or an http(s) URL)"
        ]
    );
    assert_eq!(
        with("  cni_interface: a/b\n"),
        ["15:18: error: `a/b` is not a network interface name"]
    );
    assert_eq!(
        with("  vip_interface: eth0\n"),
        [
            "15:18: error: `kubernetes.vip_interface` applies only when `control_plane_endpoint` is a virtual IP"
        ]
    );
}

#[test]
fn a_virtual_endpoint_must_be_a_free_address_of_the_subnet() {
    let k = "  service_subnet: 10.100.0.0/16\n";
    let vip = |ip: &str| check(&[(k, &format!("{k}  control_plane_endpoint: {ip}\n"))]);
    assert!(vip("10.99.0.10").is_empty());
    assert_eq!(
        vip("10.98.0.10"),
        [
            "15:27: error: control-plane endpoint 10.98.0.10 is a virtual IP outside the nodes' subnet 10.99.0.0/24"
        ]
    );
    assert_eq!(
        vip("10.99.0.210"),
        ["15:27: error: control-plane endpoint 10.99.0.210 is inside the DHCP pool"]
    );
    assert_eq!(
        vip("10.99.0.21"),
        [
            "15:27: error: control-plane endpoint 10.99.0.21 is node `w1`, which has no control-plane role"
        ]
    );
    assert!(
        check(&[(
            k,
            &format!("{k}  control_plane_endpoint: 10.99.0.10\n  vip_interface: eno1\n")
        )])
        .is_empty()
    );
}

#[test]
fn kubernetes_versions_slipway_cannot_render_are_refused() {
    let v = |ver: &str| check(&[("version: v1.31.2", &format!("version: {ver}"))]);
    assert!(v("v1.27.0").is_empty());
    assert!(v("v1.35.1").is_empty());
    assert_eq!(
        v("v1.26.9"),
        ["13:12: error: slipway renders Kubernetes 1.27 to 1.35, not v1.26.9"]
    );
    assert_eq!(
        v("v1.36.0"),
        ["13:12: error: slipway renders Kubernetes 1.27 to 1.35, not v1.36.0"]
    );
    assert_eq!(
        v("v2.0.0"),
        ["13:12: error: slipway renders Kubernetes 1.27 to 1.35, not v2.0.0"]
    );
}

#[test]
fn mirror_keys_are_checked_where_they_are_written() {
    let edits = [
        (
            "  version: 4081.2.0\n",
            "  version: 4081.2.0\n  mirror:\n    base_url: ftp://mirror.lan/flatcar\n    trusted_keys:\n      - {file: k.asc, fingerprint: 'F88C FEDE'}\n      - {file: k.asc}\n      - {file: k.asc, fingerprint: f88cfedeff29a5b4d9523864e25d9aed0593b34a, size: 1}\n",
        ),
        (
            "  service_subnet: 10.100.0.0/16\n",
            "  service_subnet: 10.100.0.0/16\n  sysext_url: extensions.lan\n",
        ),
    ];
    assert_eq!(
        check(&edits),
        [
            "13:15: error: `os.mirror.base_url`: `ftp://mirror.lan/flatcar` is not an http:// or https:// URL",
            "15:36: error: `F88C FEDE` is not an OpenPGP fingerprint",
            "16:10: error: a trusted key needs `file` and `fingerprint`",
            "17:78: error: unknown key `size` in `os.mirror.trusted_keys[]`",
            "21:15: error: `kubernetes.sysext_url`: `extensions.lan` is not an http:// or https:// URL",
        ]
    );
}

#[test]
fn mirror_keys_complete_to_paths_and_fingerprints() {
    let text = BASE.replace(
        "  version: 4081.2.0\n",
        "  version: 4081.2.0\n  mirror:\n    trusted_keys: [{file: keys/k.asc, fingerprint: 'f88c fede ff29 a5b4 d952  3864 e25d 9aed 0593 b34a'}]\n",
    );
    let loaded = load_str("t.yaml", &text, Path::new("/srv"), &NoHost);
    let c = loaded.valid().expect("valid");
    assert_eq!(c.os.mirror.base_url, None);
    assert_eq!(c.os.mirror.trusted_keys.len(), 1);
    assert_eq!(
        c.os.mirror.trusted_keys[0].file,
        Path::new("/srv/keys/k.asc")
    );
    assert_eq!(
        c.os.mirror.trusted_keys[0].fingerprint,
        "F88CFEDEFF29A5B4D9523864E25D9AED0593B34A"
    );
    assert_eq!(c.kubernetes.sysext_url, None);
}
