//! No silent fields: every key the cluster file accepts (taken from the reader itself,
//! [`slipway_cluster::spec::accepted_keys`]) either changes something slipway hands
//! out — a rendered artifact of some node, the CNI manifest, an export, the DHCP
//! server's configuration, the DNS zone or its limits, the PKI's certificates, the
//! install window, a BMC's connection settings, where a service listens — or makes
//! the file refused, or is listed as informational in the README ("Informational
//! keys"). A key the reader accepts without a case below fails the test by name.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use slipway_cluster::{Cluster, NoHost, load_str};
use slipway_render::export::{Options, Target, export};
use slipway_render::{Artifact, ExampleSecrets, render};

/// A Flatcar cluster with nearly every key set.
const FLATCAR: &str = "\
cluster:
  name: lab
  domain: lab.test
network:
  interface: br0
  server: 10.99.0.1
  subnet: 10.99.0.0/24
  gateway: 10.99.0.254
  dns: [10.99.0.53]
  dns_clients: [192.168.7.0/24]
  dns_rate_limit: 100
  upstream_dns: [10.99.0.53]
  ntp: [10.99.0.123]
  http_port: 8080
  dhcp:
    mode: authoritative
    pool: 10.99.0.200-10.99.0.250
    lease_time: 1h
    unknown_machines: ignore
    new_clients_per_second: 50
    relays: [10.99.0.2]
os:
  distro: flatcar
  channel: stable
  version: 4081.2.0
  arch: amd64
  assets: mirror
  install_disk: /dev/vda
  kernel_args: [console=ttyS0]
  config_format: ignition
  install_timeout: 30m
  mirror:
    base_url: https://mirror.lan/flatcar
    trusted_keys:
      - {file: release.asc, fingerprint: F88CFEDEFF29A5B4D9523864E25D9AED0593B34A}
    ipxe:
      url: https://deb.lan/ipxe_1_all.deb
      sha256: 49dc854857dcfb354292bdc79ce7419e0d72988666723395b2e102d147c3730d
kubernetes:
  version: v1.31.2
  control_plane_endpoint: cp1:6443
  api_name: api
  extra_sans: [k8s.example.com]
  pod_subnet: 10.244.0.0/16
  service_subnet: 10.100.0.0/16
  cluster_dns: 10.100.0.10
  network_plugin: calico
  cni_version: v3.29.1
  cni_mtu: 1450
  cni_interface: eno1
  image_repository: registry.k8s.io
  registry_mirrors: {docker.io: ['http://10.99.0.1:5000']}
  sysext_url: https://sysext.lan/k8s
access:
  user: core
  ssh_authorized_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlaceholderPlaceholder t@x']
  password_hash: '$6$salt$hashhashhash'
upgrade:
  os_updates: true
  group: lab-nodes
  max_updating: 2
  max_per_period: 5
  period: 2h
  update_timeout: 45m
  control_planes_one_at_a_time: true
  safe_mode: true
  reboot_hook: drain.sh
  reboot_hook_timeout: 5m
profiles:
  - name: workers
    selector: {role: worker}
    install_disk: /dev/sda
    kernel_args: [quiet]
    boot_files: {bios: pxe/w.kpxe, uefi: pxe/w.efi}
nodes:
  - mac: 52:54:00:99:00:01
    hostname: cp1
    ip: 10.99.0.11
    roles: [control-plane]
    labels: {zone: a}
    taints: ['dedicated=infra:NoSchedule']
    install_disk: /dev/vdb
    kernel_args: [mitigations=off]
    boot_files: {bios: pxe/cp.kpxe, uefi: pxe/cp.efi}
    bmc: {driver: ipmi, address: 10.99.1.11, port: 623, user: admin, password_env: HOME, cipher_suite: 17}
  - mac: 52:54:00:99:00:02
    hostname: w1
    ip: 10.99.0.21
    bmc: {driver: redfish, address: 10.99.1.21, user: admin, password_file: bmc-password, tls_fingerprint: 'AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89', system: /redfish/v1/Systems/1, auth: session}
  - mac: 52:54:00:99:00:03
    hostname: w2
    ip: 10.99.0.22
    profile: workers
";

/// The kickstart example (a generic OS with a template): for the keys only templates
/// read.
const GENERIC: &str = "examples/rocky-kickstart.yaml";

/// Which file a case starts from.
#[derive(Clone, Copy)]
enum Base {
    Flatcar,
    Generic,
}

/// What the change must do.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Expect {
    /// Change what slipway hands out.
    Differs,
    /// Make the file invalid (the key is a consent or a constraint).
    Refused,
}

/// One key's case: `setup` edits the base for both sides, `change` only the second;
/// each edit replaces the first occurrence of its text.
struct Case {
    key: &'static str,
    base: Base,
    setup: Vec<(&'static str, &'static str)>,
    change: Vec<(&'static str, &'static str)>,
    expect: Expect,
}

fn differs(key: &'static str, from: &'static str, to: &'static str) -> Case {
    Case {
        key,
        base: Base::Flatcar,
        setup: Vec::new(),
        change: vec![(from, to)],
        expect: Expect::Differs,
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn cases() -> Vec<Case> {
    let mut v = vec![
        differs("cluster.name", "name: lab", "name: lab2"),
        differs("cluster.domain", "domain: lab.test", "domain: lab2.test"),
        differs("network.interface", "interface: br0", "interface: br1"),
        differs("network.server", "server: 10.99.0.1", "server: 10.99.0.3"),
        differs(
            "network.subnet",
            "subnet: 10.99.0.0/24",
            "subnet: 10.99.0.0/23",
        ),
        differs(
            "network.gateway",
            "gateway: 10.99.0.254",
            "gateway: 10.99.0.253",
        ),
        differs("network.dns", "dns: [10.99.0.53]", "dns: [10.99.0.54]"),
        differs(
            "network.dns_clients",
            "dns_clients: [192.168.7.0/24]",
            "dns_clients: [192.168.8.0/24]",
        ),
        differs(
            "network.dns_rate_limit",
            "dns_rate_limit: 100",
            "dns_rate_limit: 7",
        ),
        differs(
            "network.upstream_dns",
            "upstream_dns: [10.99.0.53]",
            "upstream_dns: [10.99.0.54]",
        ),
        differs("network.ntp", "ntp: [10.99.0.123]", "ntp: [10.99.0.124]"),
        differs("network.http_port", "http_port: 8080", "http_port: 8081"),
        differs("network.dhcp.mode", "mode: authoritative", "mode: proxy"),
        differs(
            "network.dhcp.pool",
            "pool: 10.99.0.200-10.99.0.250",
            "pool: 10.99.0.200-10.99.0.240",
        ),
        differs(
            "network.dhcp.lease_time",
            "lease_time: 1h",
            "lease_time: 2h",
        ),
        differs(
            "network.dhcp.unknown_machines",
            "unknown_machines: ignore",
            "unknown_machines: discover",
        ),
        differs(
            "network.dhcp.new_clients_per_second",
            "new_clients_per_second: 50",
            "new_clients_per_second: 5",
        ),
        differs(
            "network.dhcp.relays",
            "relays: [10.99.0.2]",
            "relays: [10.99.0.3]",
        ),
        differs("os.channel", "channel: stable", "channel: beta"),
        differs("os.version", "version: 4081.2.0", "version: 4081.3.0"),
        differs("os.arch", "arch: amd64", "arch: arm64"),
        differs(
            "os.assets",
            "assets: mirror",
            "assets: http://10.99.0.9/flatcar",
        ),
        Case {
            key: "os.install_disk",
            base: Base::Flatcar,
            // cp1 then takes the default.
            setup: vec![("    install_disk: /dev/vdb\n", "")],
            change: vec![("install_disk: /dev/vda", "install_disk: /dev/vdc")],
            expect: Expect::Differs,
        },
        differs(
            "os.kernel_args",
            "kernel_args: [console=ttyS0]",
            "kernel_args: [console=tty0]",
        ),
        differs(
            "os.config_format",
            "config_format: ignition",
            "config_format: cloud-config",
        ),
        differs(
            "os.install_timeout",
            "install_timeout: 30m",
            "install_timeout: 45m",
        ),
        Case {
            key: "os.distro",
            base: Base::Flatcar,
            // OS updates are Flatcar's only: asked for with CoreOS, the file is refused.
            setup: vec![("  os_updates: true\n", "")],
            change: vec![("distro: flatcar", "distro: coreos")],
            expect: Expect::Differs,
        },
        differs(
            "upgrade.os_updates",
            "os_updates: true",
            "os_updates: false",
        ),
        differs("upgrade.group", "group: lab-nodes", "group: lab-canary"),
        differs("upgrade.max_updating", "max_updating: 2", "max_updating: 3"),
        differs(
            "upgrade.max_per_period",
            "max_per_period: 5",
            "max_per_period: 6",
        ),
        differs("upgrade.period", "period: 2h", "period: 3h"),
        differs(
            "upgrade.update_timeout",
            "update_timeout: 45m",
            "update_timeout: 50m",
        ),
        differs(
            "upgrade.control_planes_one_at_a_time",
            "control_planes_one_at_a_time: true",
            "control_planes_one_at_a_time: false",
        ),
        differs("upgrade.safe_mode", "safe_mode: true", "safe_mode: false"),
        differs(
            "upgrade.reboot_hook",
            "reboot_hook: drain.sh",
            "reboot_hook: drain2.sh",
        ),
        differs(
            "upgrade.reboot_hook_timeout",
            "reboot_hook_timeout: 5m",
            "reboot_hook_timeout: 6m",
        ),
        differs(
            "os.mirror.base_url",
            "base_url: https://mirror.lan/flatcar",
            "base_url: https://mirror2.lan/flatcar",
        ),
        differs(
            "os.mirror.trusted_keys[].file",
            "file: release.asc",
            "file: release2.asc",
        ),
        differs(
            "os.mirror.trusted_keys[].fingerprint",
            "fingerprint: F88CFEDEFF29A5B4D9523864E25D9AED0593B34A",
            "fingerprint: 0000000000000000000000000000000000000001",
        ),
        differs(
            "os.mirror.ipxe.url",
            "url: https://deb.lan/ipxe_1_all.deb",
            "url: https://deb.lan/ipxe_2_all.deb",
        ),
        differs(
            "os.mirror.ipxe.sha256",
            "sha256: 49dc854857dcfb354292bdc79ce7419e0d72988666723395b2e102d147c3730d",
            "sha256: 0000000000000000000000000000000000000000000000000000000000000001",
        ),
        differs(
            "kubernetes.sysext_url",
            "sysext_url: https://sysext.lan/k8s",
            "sysext_url: https://sysext2.lan/k8s",
        ),
        differs("kubernetes.version", "version: v1.31.2", "version: v1.30.6"),
        differs(
            "kubernetes.control_plane_endpoint",
            "control_plane_endpoint: cp1:6443",
            "control_plane_endpoint: 10.99.0.10:6443",
        ),
        differs("kubernetes.api_name", "api_name: api", "api_name: k8s"),
        differs(
            "kubernetes.extra_sans",
            "extra_sans: [k8s.example.com]",
            "extra_sans: [k9s.example.com]",
        ),
        differs(
            "kubernetes.pod_subnet",
            "pod_subnet: 10.244.0.0/16",
            "pod_subnet: 10.245.0.0/16",
        ),
        differs(
            "kubernetes.service_subnet",
            "service_subnet: 10.100.0.0/16\n  cluster_dns: 10.100.0.10",
            "service_subnet: 10.101.0.0/16\n  cluster_dns: 10.101.0.10",
        ),
        differs(
            "kubernetes.cluster_dns",
            "cluster_dns: 10.100.0.10",
            "cluster_dns: 10.100.0.11",
        ),
        differs(
            "kubernetes.network_plugin",
            "network_plugin: calico\n  cni_version: v3.29.1\n  cni_mtu: 1450",
            "network_plugin: flannel",
        ),
        differs(
            "kubernetes.cni_version",
            "cni_version: v3.29.1",
            "cni_version: v3.29.2",
        ),
        differs("kubernetes.cni_mtu", "cni_mtu: 1450", "cni_mtu: 1400"),
        differs(
            "kubernetes.cni_interface",
            "cni_interface: eno1",
            "cni_interface: eno2",
        ),
        differs(
            "kubernetes.cni_manifest",
            "network_plugin: calico\n  cni_version: v3.29.1\n  cni_mtu: 1450\n  cni_interface: eno1",
            "cni_manifest: https://example.com/cni.yaml",
        ),
        Case {
            key: "kubernetes.vip_interface",
            base: Base::Flatcar,
            setup: vec![(
                "control_plane_endpoint: cp1:6443",
                "control_plane_endpoint: 10.99.0.10:6443",
            )],
            change: vec![(
                "control_plane_endpoint: 10.99.0.10:6443",
                "control_plane_endpoint: 10.99.0.10:6443\n  vip_interface: eno7",
            )],
            expect: Expect::Differs,
        },
        differs(
            "kubernetes.image_repository",
            "image_repository: registry.k8s.io",
            "image_repository: registry.lan/k8s",
        ),
        differs(
            "kubernetes.registry_mirrors",
            "http://10.99.0.1:5000",
            "http://10.99.0.1:5001",
        ),
        differs(
            "kubernetes.serve_images",
            "sysext_url: https://sysext.lan/k8s",
            "sysext_url: https://sysext.lan/k8s\n  serve_images: true",
        ),
        Case {
            key: "kubernetes.extra_images",
            base: Base::Flatcar,
            setup: vec![(
                "sysext_url: https://sysext.lan/k8s",
                "sysext_url: https://sysext.lan/k8s\n  serve_images: true",
            )],
            change: vec![(
                "serve_images: true",
                "serve_images: true\n  extra_images: [ghcr.io/example/tool:1.0]",
            )],
            expect: Expect::Differs,
        },
        Case {
            key: "kubernetes.image_sources",
            base: Base::Flatcar,
            setup: vec![(
                "sysext_url: https://sysext.lan/k8s",
                "sysext_url: https://sysext.lan/k8s\n  serve_images: true",
            )],
            change: vec![(
                "serve_images: true",
                "serve_images: true\n  image_sources: {registry.k8s.io: 'https://harbor.lan/k8s'}",
            )],
            expect: Expect::Differs,
        },
        differs("access.user", "user: core", "user: ops"),
        differs(
            "access.ssh_authorized_keys",
            "Placeholder t@x",
            "Placeholder u@x",
        ),
        differs(
            "access.password_hash",
            "$6$salt$hashhashhash",
            "$6$salt$otherhash",
        ),
        // A name is what `profile:` refers to: a node naming no profile is refused.
        Case {
            key: "profiles[].name",
            base: Base::Flatcar,
            setup: Vec::new(),
            change: vec![("- name: workers", "- name: workers2")],
            expect: Expect::Refused,
        },
        differs(
            "profiles[].selector.role",
            "selector: {role: worker}",
            "selector: {role: control-plane}",
        ),
        differs(
            "profiles[].selector.hostname",
            "selector: {role: worker}",
            "selector: {hostname: cp1}",
        ),
        differs(
            "profiles[].selector.mac",
            "selector: {role: worker}",
            "selector: {mac: '52:54:00:99:00:01'}",
        ),
        differs(
            "profiles[].selector.labels",
            "selector: {role: worker}",
            "selector: {labels: {zone: a}}",
        ),
        differs(
            "profiles[].install_disk",
            "install_disk: /dev/sda",
            "install_disk: /dev/sdb",
        ),
        differs(
            "profiles[].kernel_args",
            "kernel_args: [quiet]",
            "kernel_args: [debug]",
        ),
        differs(
            "profiles[].boot_files",
            "pxe/w.kpxe, uefi: pxe/w.efi",
            "pxe/w2.kpxe, uefi: pxe/w2.efi",
        ),
        differs("boot_files.bios", "bios: pxe/cp.kpxe", "bios: pxe/cp2.kpxe"),
        differs("boot_files.uefi", "uefi: pxe/cp.efi", "uefi: pxe/cp2.efi"),
        differs(
            "nodes[].boot_files",
            "{bios: pxe/cp.kpxe, uefi: pxe/cp.efi}",
            "{bios: pxe/x.kpxe}",
        ),
        differs(
            "nodes[].mac",
            "mac: 52:54:00:99:00:01",
            "mac: 52:54:00:99:00:09",
        ),
        differs("nodes[].hostname", "hostname: w2", "hostname: w3"),
        differs("nodes[].ip", "ip: 10.99.0.22", "ip: 10.99.0.23"),
        differs(
            "nodes[].roles",
            "hostname: w1\n    ip: 10.99.0.21",
            "hostname: w1\n    ip: 10.99.0.21\n    roles: [control-plane, worker]",
        ),
        differs("nodes[].labels", "labels: {zone: a}", "labels: {zone: b}"),
        differs(
            "nodes[].taints",
            "dedicated=infra:NoSchedule",
            "dedicated=infra:NoExecute",
        ),
        differs(
            "nodes[].install_disk",
            "install_disk: /dev/vdb",
            "install_disk: /dev/vdd",
        ),
        differs(
            "nodes[].kernel_args",
            "kernel_args: [mitigations=off]",
            "kernel_args: [nosmt]",
        ),
        differs(
            "nodes[].profile",
            "    profile: workers\n",
            "    profile: workers\n    install_disk: /dev/sdz\n",
        ),
        differs(
            "nodes[].bmc.driver",
            "driver: ipmi, address: 10.99.1.11, port: 623, user: admin, password_env: HOME, cipher_suite: 17",
            "driver: redfish, address: 10.99.1.11, port: 623, user: admin, password_env: HOME",
        ),
        differs(
            "nodes[].bmc.address",
            "address: 10.99.1.11",
            "address: 10.99.1.12",
        ),
        differs("nodes[].bmc.port", "port: 623", "port: 624"),
        differs(
            "nodes[].bmc.user",
            "user: admin, password_env",
            "user: root, password_env",
        ),
        differs(
            "nodes[].bmc.cipher_suite",
            "cipher_suite: 17",
            "cipher_suite: 3",
        ),
        differs(
            "nodes[].bmc.password_env",
            "password_env: HOME",
            "password_env: PATH",
        ),
        differs(
            "nodes[].bmc.password_file",
            "password_file: bmc-password",
            "password_file: bmc-password2",
        ),
        Case {
            key: "nodes[].bmc.password",
            base: Base::Flatcar,
            setup: vec![(
                "password_env: HOME",
                "password: inline-1, allow_inline_password: true",
            )],
            change: vec![("password: inline-1", "password: inline-2")],
            expect: Expect::Differs,
        },
        Case {
            key: "nodes[].bmc.allow_inline_password",
            base: Base::Flatcar,
            setup: vec![(
                "password_env: HOME",
                "password: inline-1, allow_inline_password: true",
            )],
            change: vec![(
                "allow_inline_password: true",
                "allow_inline_password: false",
            )],
            expect: Expect::Refused,
        },
        differs(
            "nodes[].bmc.system",
            "system: /redfish/v1/Systems/1",
            "system: /redfish/v1/Systems/2",
        ),
        differs("nodes[].bmc.auth", ", auth: session", ""),
        differs(
            "nodes[].bmc.tls_fingerprint",
            "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89",
            "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:88",
        ),
        differs(
            "nodes[].bmc.tls_ca",
            "tls_fingerprint: 'AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89'",
            "tls_ca: bmc-ca.pem",
        ),
        differs(
            "nodes[].bmc.tls_insecure",
            "tls_fingerprint: 'AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89'",
            "tls_insecure: true",
        ),
    ];
    // Only templates read these: the kickstart example.
    let generic = |key, from, to| Case {
        key,
        base: Base::Generic,
        setup: Vec::new(),
        change: vec![(from, to)],
        expect: Expect::Differs,
    };
    v.extend([
        generic(
            "os.generic.kernel",
            "kernel: rocky/9/images/pxeboot/vmlinuz",
            "kernel: rocky/9/images/pxeboot/vmlinuz2",
        ),
        generic(
            "os.generic.initrds",
            "initrds: [rocky/9/images/pxeboot/initrd.img]",
            "initrds: [rocky/9/images/pxeboot/initrd2.img]",
        ),
        generic(
            "os.generic.template",
            "template: templates/rocky.ks.j2",
            "template: templates/rocky-minimal.ks.j2",
        ),
        generic("nodes[].metadata", "metadata: {rack: r2}", "metadata: {rack: r3}"),
        Case {
            key: "profiles[].metadata",
            base: Base::Generic,
            setup: vec![(
                "\nnodes:",
                "\nprofiles:\n  - {name: racked, selector: {hostname: rcp1}, metadata: {rack: r7}}\nnodes:",
            )],
            change: vec![("metadata: {rack: r7}", "metadata: {rack: r8}")],
            expect: Expect::Differs,
        },
    ]);
    v
}

/// Every section key: present in a path as a parent of another key.
fn is_section(key: &str, keys: &[String]) -> bool {
    keys.iter()
        .any(|k| k.starts_with(&format!("{key}.")) || k.starts_with(&format!("{key}[].")))
}

/// The keys the README lists as informational (the list under its "Informational keys"
/// heading, one `` `key` `` per item).
fn informational() -> Vec<String> {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap_or_default();
    let Some(section) = readme.split("### Informational keys").nth(1) else {
        return Vec::new();
    };
    section
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("- `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect()
}

fn load(text: &str, dir: &Path) -> Option<Cluster> {
    load_str("c.yaml", text, dir, &NoHost).valid().cloned()
}

/// Everything slipway hands out for `c`, by name.
fn fingerprint(c: &Cluster, dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let template =
        c.os.generic
            .as_ref()
            .and_then(|g| g.template.as_ref())
            .and_then(|p| std::fs::read_to_string(p).ok());
    for node in &c.nodes {
        for a in Artifact::ALL {
            let text = render(c, node, a, &ExampleSecrets, template.as_deref())
                .unwrap_or_else(|e| format!("error: {e}"));
            out.insert(format!("{} {a:?}", node.hostname), text);
        }
        if node.bmc.is_some() {
            let cfg = crate::bmc_cmd::bmc_config(node, dir);
            let password = match &cfg {
                Ok(crate::bmc_cmd::BmcConfig::Ipmi(c)) => c.password.expose().to_string(),
                Ok(crate::bmc_cmd::BmcConfig::Redfish(c)) => c.password.expose().to_string(),
                Err(_) => String::new(),
            };
            out.insert(
                format!("{} bmc", node.hostname),
                format!("{cfg:?} password {password}"),
            );
        }
    }
    out.insert(
        "cni".into(),
        format!(
            "{:?} {:?}",
            slipway_render::cni::plan(c),
            slipway_render::cni::manifest(c)
        ),
    );
    for target in [
        Target::Dnsmasq,
        Target::IscDhcpd,
        Target::Kea,
        Target::Nginx,
    ] {
        let opts = Options::new("c.yaml", dir.join("export"));
        let text = match export(c, target, &opts) {
            Ok(e) => e.files.iter().fold(String::new(), |mut s, f| {
                let _ = write!(s, "{:?}", f);
                s
            }),
            Err(e) => format!("error: {e}"),
        };
        out.insert(format!("export {target:?}"), text);
    }
    // The DHCP configuration, its maps in a stable order.
    let mut dhcp = slipway_serve::dhcp::config(c);
    let reservations: BTreeMap<String, String> = dhcp
        .reservations
        .drain()
        .map(|(mac, r)| (mac.to_string(), format!("{r:?}")))
        .collect();
    let relays: std::collections::BTreeSet<std::net::Ipv4Addr> = dhcp.relays.drain().collect();
    out.insert(
        "dhcp".into(),
        format!("{dhcp:?} reservations {reservations:?} relays {relays:?}"),
    );
    out.insert(
        "dns".into(),
        format!(
            "{:?} {:?} upstream {:?}",
            slipway_dns::Zone::from_cluster(c).map(|z| format!("{z:?}")),
            slipway_serve::dns_options(c),
            c.network.upstream_dns
        ),
    );
    out.insert("pki".into(), format!("{:?}", slipway_pki::plan::plan(c)));
    // What `slipway mirror` fetches, from where, verified with which keys.
    out.insert(
        "mirror".into(),
        format!("{:?}", slipway_mirror::plan(c, None)),
    );
    // Which images `slipway mirror` pulls, from where.
    out.insert(
        "images".into(),
        slipway_mirror::oci::references(c, slipway_mirror::oci::Which::All)
            .iter()
            .map(|r| match slipway_mirror::oci::ImageRef::parse(r) {
                Ok(i) => format!("{r} <- {}\n", i.source(c)),
                Err(e) => format!("{r}: {e}\n"),
            })
            .collect(),
    );
    // What the OS update endpoint and the reboot lock work with.
    out.insert(
        "os updates".into(),
        format!("{:?}", slipway_serve::os_update::settings(c)),
    );
    out.insert(
        "install window".into(),
        format!("{:?}", slipway_serve::install_window(c)),
    );
    out.insert(
        "listen".into(),
        format!("{:?}", crate::serve_cmd::default_listen(c)),
    );
    out
}

#[test]
fn every_key_of_the_cluster_file_changes_what_slipway_hands_out() {
    let dir = std::env::temp_dir().join(format!("slipway-silent-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("bmc-password"), "pw-from-file\n").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("bmc-password2"), "pw-from-file-2\n").unwrap_or_else(|e| panic!("{e}"));
    for hook in ["drain.sh", "drain2.sh"] {
        std::fs::write(dir.join(hook), "#!/bin/sh\n").unwrap_or_else(|e| panic!("{e}"));
    }
    // The kickstart example beside its template, and a second template to switch to.
    let generic_dir = dir.join("generic");
    std::fs::create_dir_all(generic_dir.join("templates")).unwrap_or_else(|e| panic!("{e}"));
    let template = std::fs::read_to_string(repo().join("examples/templates/rocky.ks.j2"))
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(generic_dir.join("templates/rocky.ks.j2"), &template)
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        generic_dir.join("templates/rocky-minimal.ks.j2"),
        "# minimal kickstart for {{ node.hostname }}\ntext\nreboot\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let generic_text = std::fs::read_to_string(repo().join(GENERIC)).unwrap_or_default();
    let keys = slipway_cluster::spec::accepted_keys();
    let informational = informational();
    let cases = cases();
    let mut problems = Vec::new();
    for key in &keys {
        if is_section(key, &keys) && !cases.iter().any(|c| c.key == key) {
            continue;
        }
        let Some(case) = cases.iter().find(|c| c.key == key) else {
            if !informational.contains(key) {
                problems.push(format!(
                    "{key}: no case here and not listed under \"Informational keys\" in the README"
                ));
            }
            continue;
        };
        let (text, base_dir) = match case.base {
            Base::Flatcar => (FLATCAR.to_string(), dir.clone()),
            Base::Generic => (generic_text.clone(), generic_dir.clone()),
        };
        let edit = |mut t: String, edits: &[(&str, &str)]| -> Result<String, String> {
            for (from, to) in edits {
                if !t.contains(from) {
                    return Err(format!(
                        "{key}: the case edits `{from}`, which is not in the file"
                    ));
                }
                t = t.replacen(from, to, 1);
            }
            Ok(t)
        };
        let before = match edit(text, &case.setup) {
            Ok(t) => t,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        let after = match edit(before.clone(), &case.change) {
            Ok(t) => t,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        let Some(a) = load(&before, &base_dir) else {
            let loaded = load_str("c.yaml", &before, &base_dir, &NoHost);
            problems.push(format!(
                "{key}: the case's base is invalid:\n{}",
                loaded.diagnostics.render(&before)
            ));
            continue;
        };
        let b = load(&after, &base_dir);
        let (fa, fa2) = (fingerprint(&a, &base_dir), fingerprint(&a, &base_dir));
        let unstable: Vec<&String> = fa.keys().filter(|k| fa.get(*k) != fa2.get(*k)).collect();
        if !unstable.is_empty() {
            problems.push(format!(
                "{key}: the fingerprint is not deterministic: {unstable:?}"
            ));
            continue;
        }
        match (case.expect, b) {
            (Expect::Refused, None) => {}
            (Expect::Refused, Some(_)) => {
                problems.push(format!("{key}: the change was expected to be refused"));
            }
            (Expect::Differs, None) => {
                let loaded = load_str("c.yaml", &after, &base_dir, &NoHost);
                problems.push(format!(
                    "{key}: the changed file is invalid:\n{}",
                    loaded.diagnostics.render(&after)
                ));
            }
            (Expect::Differs, Some(b)) => {
                if fa == fingerprint(&b, &base_dir) {
                    problems.push(format!(
                        "{key}: changing it changes nothing slipway hands out (a silent field)"
                    ));
                }
            }
        }
    }
    for case in &cases {
        if !keys.iter().any(|k| k == case.key) {
            problems.push(format!(
                "{}: a case for a key the reader does not accept",
                case.key
            ));
        }
    }
    for key in &informational {
        if !keys.contains(key) {
            problems.push(format!(
                "{key}: listed as informational in the README, but not a key"
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
