//! Completion: defaults, derivations, profiles, address assignment, and the promise
//! that the completed description, printed as YAML, is itself a valid file that
//! completes to the same cluster.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use slipway_cluster::*;

const MINIMAL: &str = "\
cluster: {name: lab}
network: {interface: br0, subnet: 10.99.0.0/24}
os: {version: 4081.2.0}
kubernetes: {version: 1.31.2, service_subnet: 10.100.0.0/16}
access: {ssh_authorized_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlaceholderPlaceholder t@x']}
nodes:
  - {mac: 52:54:00:99:00:01, roles: [control-plane]}
  - {mac: 52:54:00:99:00:02}
";

/// A host whose only interface is br0 with the given addresses.
struct FakeHost(Vec<Ipv4Net>);

impl Host for FakeHost {
    fn interface_ipv4(&self, name: &str) -> Option<Vec<Ipv4Net>> {
        (name == "br0").then(|| self.0.clone())
    }
}

fn host() -> FakeHost {
    FakeHost(vec![
        "192.168.1.5/24".parse().unwrap_or_default(),
        "10.99.0.1/24".parse().unwrap_or_default(),
    ])
}

fn load_ok(text: &str, host: &dyn Host) -> Cluster {
    let loaded = load_str("t.yaml", text, Path::new("/srv/cluster"), host);
    assert!(
        !loaded.diagnostics.has_errors(),
        "{}",
        loaded.diagnostics.render(text)
    );
    loaded.cluster.unwrap_or_else(|| panic!("no cluster"))
}

#[test]
fn defaults_are_filled_in_one_place() {
    let c = load_ok(MINIMAL, &host());
    assert_eq!(c.cluster.domain, "lab.internal");
    assert_eq!(
        c.network.server,
        Ipv4Addr::new(10, 99, 0, 1),
        "server from br0's address in the subnet"
    );
    assert_eq!(c.network.dns, [Ipv4Addr::new(10, 99, 0, 1)]);
    assert_eq!(c.network.http_port, 8080);
    assert_eq!(c.network.dhcp.mode, DhcpMode::Authoritative);
    assert_eq!(c.network.dhcp.unknown_machines, UnknownPolicy::Ignore);
    assert_eq!(c.network.dhcp.lease_time, LeaseTime::Seconds(3600));
    assert_eq!(c.os.distro, Distro::Flatcar);
    assert_eq!(c.os.config_format, ConfigFormat::Ignition);
    assert_eq!(
        c.os.assets,
        AssetSource::Mirror("/var/lib/slipway/assets".into())
    );
    assert_eq!(c.os.install_disk, "/dev/sda");
    assert_eq!(c.kubernetes.version, "v1.31.2");
    assert_eq!(c.kubernetes.cluster_dns, Ipv4Addr::new(10, 100, 0, 10));
    assert_eq!(c.kubernetes.pod_subnet.to_string(), "10.244.0.0/16");
    assert_eq!(c.kubernetes.network_plugin, NetworkPlugin::Flannel);
    assert_eq!(c.kubernetes.image_repository, "registry.k8s.io");
    assert_eq!(c.access.user, "core");
    let cp = &c.nodes[0];
    assert_eq!(cp.hostname, "52-54-00-99-00-01");
    assert_eq!(
        cp.roles,
        [Role::ControlPlane, Role::Etcd],
        "stacked etcd by default"
    );
    assert_eq!(c.nodes[1].roles, [Role::Worker]);
    assert_eq!(
        c.kubernetes.control_plane_endpoint.node.as_deref(),
        Some("52-54-00-99-00-01")
    );
    assert_eq!(c.kubernetes.control_plane_endpoint.address, cp.ip);
    assert_eq!(c.kubernetes.control_plane_endpoint.port, 6443);
    for n in &c.nodes {
        assert!(
            c.network.subnet.contains(&n.ip) && n.ip != c.network.server,
            "{}",
            n.ip
        );
    }
    assert_ne!(c.nodes[0].ip, c.nodes[1].ip);
}

#[test]
fn server_derivation_failures_are_explained() {
    let loaded = load_str("t.yaml", MINIMAL, Path::new("/"), &NoHost);
    let d = &loaded.diagnostics.items[0];
    assert_eq!(
        d.short(),
        "2:22: error: interface `br0` does not exist on this machine, so slipway's address cannot be derived from it"
    );
    assert_eq!(
        d.help.as_deref(),
        Some("set `network.server`, or check the file on the provisioning host")
    );
    let elsewhere = FakeHost(vec!["192.168.1.5/24".parse().unwrap_or_default()]);
    let loaded = load_str("t.yaml", MINIMAL, Path::new("/"), &elsewhere);
    assert_eq!(
        loaded.diagnostics.items[0].short(),
        "2:22: error: interface `br0` has no address in 10.99.0.0/24"
    );
}

#[test]
fn addresses_are_stable_when_other_nodes_come_and_go() {
    let mut nodes = String::from("nodes:\n  - {mac: 02:00:00:00:00:01, roles: [control-plane]}\n");
    for i in 2..60 {
        nodes.push_str(&format!("  - {{mac: 02:00:00:00:01:{i:02x}}}\n"));
    }
    let head = MINIMAL.split("nodes:").next().unwrap_or_default();
    let all = load_ok(&format!("{head}{nodes}"), &host());
    // Drop every third worker: the others keep their addresses.
    let fewer: String = nodes
        .lines()
        .enumerate()
        .filter(|(i, _)| *i < 2 || i % 3 != 0)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    let some = load_ok(&format!("{head}{fewer}"), &host());
    assert!(some.nodes.len() < all.nodes.len());
    for n in &some.nodes {
        let before = all.node_by_mac(n.mac).map(|b| b.ip);
        assert_eq!(before, Some(n.ip), "{} moved", n.mac);
    }
    // And file order does not matter.
    let lines: Vec<&str> = nodes.lines().skip(1).collect();
    let reversed: String = lines.iter().rev().map(|l| format!("{l}\n")).collect();
    let rev = load_ok(&format!("{head}nodes:\n{reversed}"), &host());
    for n in &rev.nodes {
        assert_eq!(all.node_by_mac(n.mac).map(|b| b.ip), Some(n.ip));
    }
}

#[test]
fn assigned_addresses_avoid_the_pool_reserved_and_static_ones() {
    let text = MINIMAL
        .replace("subnet: 10.99.0.0/24}", "subnet: 10.99.0.0/28, gateway: 10.99.0.14, dhcp: {pool: 10.99.0.2-10.99.0.9}}")
        .replace("{mac: 52:54:00:99:00:02}", "{mac: 52:54:00:99:00:02}\n  - {mac: 52:54:00:99:00:03, ip: 10.99.0.10}\n  - {mac: 52:54:00:99:00:04}");
    let c = load_ok(&text, &host());
    let free = [11, 12, 13].map(|i| Ipv4Addr::new(10, 99, 0, i));
    let mut got: Vec<Ipv4Addr> = c
        .nodes
        .iter()
        .filter(|n| n.mac.octets()[5] != 3)
        .map(|n| n.ip)
        .collect();
    got.sort();
    assert_eq!(
        got, free,
        "three nodes fill exactly the three free addresses"
    );
    // A fourth node without an address does not fit.
    let crowded = text.replace(
        "{mac: 52:54:00:99:00:04}",
        "{mac: 52:54:00:99:00:04}\n  - {mac: 52:54:00:99:00:05}",
    );
    let loaded = load_str("t.yaml", &crowded, Path::new("/"), &host());
    let msgs: Vec<String> = loaded
        .diagnostics
        .items
        .iter()
        .map(|d| d.message.clone())
        .collect();
    assert_eq!(
        msgs,
        [
            "the subnet 10.99.0.0/28 has 3 free addresses for 4 nodes without `ip` (first: 52:54:00:99:00:01)"
        ]
    );
}

const PROFILES: &str = "
profiles:
  - {name: base, selector: {}, install_disk: /dev/vda, metadata: {rack: r0, tier: std}}
  - {name: gpu, selector: {labels: {gpu: 'true'}}, install_disk: /dev/nvme0n1, kernel_args: [iommu=pt], metadata: {tier: gpu}}
  - {name: gpu-worker, selector: {role: worker, labels: {gpu: 'true'}}, kernel_args: [iommu=pt, x=1]}
nodes:
  - {mac: 52:54:00:99:00:01, roles: [control-plane], labels: {gpu: 'true'}}
  - {mac: 52:54:00:99:00:02, labels: {gpu: 'true'}, metadata: {rack: r9}}
  - {mac: 52:54:00:99:00:03}
  - {mac: 52:54:00:99:00:04, profile: gpu, install_disk: /dev/sdb}
";

#[test]
fn the_most_specific_profile_wins() {
    let head = MINIMAL.split("nodes:").next().unwrap_or_default();
    let c = load_ok(&format!("{head}{PROFILES}"), &host());
    let p: Vec<Option<&str>> = c.nodes.iter().map(|n| n.profile.as_deref()).collect();
    assert_eq!(
        p,
        [Some("gpu"), Some("gpu-worker"), Some("base"), Some("gpu")]
    );
    assert_eq!(c.nodes[0].install_disk, "/dev/nvme0n1");
    assert_eq!(c.nodes[0].kernel_args, ["iommu=pt"]);
    assert_eq!(c.nodes[1].kernel_args, ["iommu=pt", "x=1"]);
    assert_eq!(
        c.nodes[1].install_disk, "/dev/sda",
        "gpu-worker sets no disk: the OS default"
    );
    assert_eq!(
        c.nodes[1].metadata["rack"], "r9",
        "the node's metadata wins"
    );
    assert_eq!(c.nodes[2].install_disk, "/dev/vda");
    assert_eq!(c.nodes[2].metadata["tier"], "std");
    assert_eq!(
        c.nodes[3].install_disk, "/dev/sdb",
        "the node's own disk beats its profile's"
    );
}

#[test]
fn equally_specific_profiles_are_an_error() {
    let head = MINIMAL.split("nodes:").next().unwrap_or_default();
    let text = format!(
        "{head}profiles:\n  - {{name: a, selector: {{labels: {{x: '1'}}}}}}\n  - {{name: b, selector: {{role: worker}}}}\nnodes:\n  - {{mac: 52:54:00:99:00:01, roles: [control-plane]}}\n  - {{mac: 52:54:00:99:00:02, labels: {{x: '1'}}, profile: c}}\n  - {{mac: 52:54:00:99:00:03, labels: {{x: '1'}}}}\n"
    );
    let loaded = load_str("t.yaml", &text, Path::new("/"), &host());
    let msgs: Vec<String> = loaded.diagnostics.items.iter().map(|d| d.short()).collect();
    assert_eq!(
        msgs,
        [
            "8:12: warning: profile `b` applies to no node",
            "11:57: error: unknown profile `c`",
            "12:11: error: node `52-54-00-99-00-03` matches profiles `a` and `b` equally (1 selector terms each)",
        ]
    );
}

fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "examples missing: {files:?}");
    files
}

#[test]
fn every_example_is_valid() {
    for path in examples() {
        let (text, loaded) = load_file(&path, &NoHost).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !loaded.diagnostics.has_errors(),
            "{}",
            loaded.diagnostics.render(&text)
        );
        assert!(loaded.valid().is_some_and(|c| !c.nodes.is_empty()));
    }
}

#[test]
fn completed_yaml_is_a_valid_file_that_completes_to_the_same_cluster() {
    for path in examples() {
        let (_, loaded) = load_file(&path, &NoHost).unwrap_or_else(|e| panic!("{e}"));
        let first = loaded
            .cluster
            .unwrap_or_else(|| panic!("{}", path.display()));
        let json = serde_json::to_value(&first).unwrap_or_default();
        let text = emit::to_yaml(&json);
        let again = load_str("again.yaml", &text, Path::new("/"), &NoHost);
        assert!(
            !again.diagnostics.has_errors(),
            "{}:\n{}",
            path.display(),
            again.diagnostics.render(&text)
        );
        assert_eq!(again.cluster.as_ref(), Some(&first), "{}", path.display());
    }
}

#[test]
fn relative_paths_are_taken_from_the_files_directory() {
    let text = MINIMAL.replace(
        "os: {version: 4081.2.0}",
        "os: {version: 4081.2.0, assets: mirror}",
    );
    let c = load_ok(&text, &host());
    assert_eq!(
        c.os.assets,
        AssetSource::Mirror("/srv/cluster/mirror".into())
    );
    let text = MINIMAL.replace(
        "os: {version: 4081.2.0}",
        "os: {version: 4081.2.0, assets: 'http://mirror.example/flatcar/'}",
    );
    assert_eq!(
        load_ok(&text, &host()).os.assets,
        AssetSource::Remote("http://mirror.example/flatcar".into())
    );
}

#[test]
fn generic_os_needs_its_boot_files() {
    let text = MINIMAL.replace(
        "os: {version: 4081.2.0}",
        "os: {distro: generic, generic: {kernel: rocky/vmlinuz, initrds: [rocky/initrd.img], template: ks.cfg.j2}, kernel_args: [inst.ks=auto]}",
    );
    let c = load_ok(&text, &host());
    assert_eq!(c.os.config_format, ConfigFormat::Template);
    let g = c.os.generic.unwrap_or_else(|| panic!("no generic section"));
    assert_eq!(g.kernel, "rocky/vmlinuz");
    assert_eq!(g.template, Some(PathBuf::from("/srv/cluster/ks.cfg.j2")));
    let bad = MINIMAL.replace("os: {version: 4081.2.0}", "os: {distro: generic}");
    let loaded = load_str("t.yaml", &bad, Path::new("/"), &host());
    assert_eq!(
        loaded.diagnostics.items[0].short(),
        "3:14: error: `distro: generic` needs an `os.generic` section"
    );
}

#[test]
fn secrets_never_print() {
    let text = MINIMAL.replace(
        "{mac: 52:54:00:99:00:02}",
        "{mac: 52:54:00:99:00:02, bmc: {driver: redfish, address: bmc2, user: root, password: s3cr3t-pw, allow_inline_password: true}}",
    );
    let c = load_ok(&text, &host());
    let bmc = c.nodes[1].bmc.clone().unwrap_or_else(|| panic!("no bmc"));
    assert_eq!(bmc.port, 443);
    assert!(matches!(&bmc.password, PasswordSource::Inline(p) if p == "s3cr3t-pw"));
    let shown = format!("{c:?}{}", serde_json::to_string(&c).unwrap_or_default());
    assert!(!shown.contains("s3cr3t-pw"), "{shown}");
}
