//! `convert --from sextant`: the seeds' own cluster description becomes a slipway file
//! that `check` accepts, with everything that could not be carried said aloud.

use std::net::Ipv4Addr;
use std::path::Path;

use slipway_cluster::{LeaseTime, NoHost, Role, load_str, sextant};

const FIXTURE: &str = include_str!("data/sextant-cluster-desc.yml");

#[test]
fn the_sample_converts_into_a_valid_cluster() {
    let out = sextant::convert("cluster-desc.yml", FIXTURE);
    assert!(
        !out.diagnostics.has_errors(),
        "{}",
        out.diagnostics.render(FIXTURE)
    );
    let yaml = out.yaml.unwrap_or_else(|| panic!("no output"));
    let loaded = load_str("converted.yaml", &yaml, Path::new("/"), &NoHost);
    assert!(
        !loaded.diagnostics.has_errors(),
        "{}\n{yaml}",
        loaded.diagnostics.render(&yaml)
    );
    let c = loaded.cluster.unwrap_or_else(|| panic!("no cluster"));

    assert_eq!(c.cluster.domain, "ail.example.com");
    assert_eq!(c.network.server, Ipv4Addr::new(10, 10, 14, 253));
    assert_eq!(c.network.subnet.to_string(), "10.10.14.0/24");
    assert_eq!(c.network.gateway, Some(Ipv4Addr::new(10, 10, 14, 254)));
    assert_eq!(c.network.dns, [Ipv4Addr::new(10, 10, 14, 253)]);
    assert_eq!(
        c.network
            .upstream_dns
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>(),
        ["8.8.8.8:53", "8.8.4.4:53"]
    );
    assert_eq!(
        c.network.dhcp.pool.map(|p| p.to_string()).as_deref(),
        Some("10.10.14.1-10.10.14.127")
    );
    assert_eq!(c.network.dhcp.lease_time, LeaseTime::Infinite);
    assert_eq!(c.os.version, "1122.2.0");
    assert_eq!(c.os.channel, "stable");
    // sextant's v1.6.2 (hyperkube) is older than anything kubeadm installs.
    assert_eq!(c.kubernetes.version, "v1.31.2");
    assert!(
        out.notes
            .iter()
            .any(|n| n.contains("v1.6.2") && n.contains("v1.31.2")),
        "{:?}",
        out.notes
    );
    assert_eq!(c.kubernetes.service_subnet.to_string(), "10.100.0.0/24");
    assert_eq!(c.kubernetes.cluster_dns, Ipv4Addr::new(10, 100, 0, 10));
    assert_eq!(
        c.kubernetes.extra_sans,
        ["10.100.0.1", "192.168.61.73", "aa-bb-cc-dd"]
    );
    assert_eq!(c.access.ssh_authorized_keys.len(), 2);
    assert!(c.access.ssh_authorized_keys[1].ends_with("dev@example"));

    let hosts: Vec<&str> = c.nodes.iter().map(|n| n.hostname.as_str()).collect();
    assert_eq!(
        hosts,
        [
            "node1",
            "node2",
            "node3",
            "00-25-90-c0-f6-ee",
            "00-25-90-c0-f6-d6"
        ]
    );
    assert_eq!(c.nodes[0].roles, [Role::ControlPlane, Role::Etcd]);
    assert_eq!(c.nodes[1].roles, [Role::Etcd, Role::Worker]);
    assert_eq!(c.nodes[3].roles, [Role::Worker]);
    assert_eq!(
        c.nodes[2].labels.get("ingress").map(String::as_str),
        Some("true")
    );
    assert_eq!(
        c.kubernetes.control_plane_endpoint.node.as_deref(),
        Some("node1")
    );
    for n in &c.nodes {
        assert!(
            !c.network.dhcp.pool.is_some_and(|p| p.contains(n.ip)),
            "{} in the pool",
            n.ip
        );
    }
}

#[test]
fn what_is_not_carried_is_said() {
    let out = sextant::convert("cluster-desc.yml", FIXTURE);
    let notes = out.notes.join("\n");
    for expected in [
        "`ceph` not carried",
        "`dockerdomain` not carried",
        "`coreos` not carried",
        "`start_pxe` not carried",
        "`set_ntp` not carried",
        "`ingress_hostnetwork` not carried",
        "flannel_backend `host-gw` is not carried",
        "node key `ceph_monitor` is not carried",
        "network.interface `eth0` is a guess",
        "unknown_machines: ignore",
    ] {
        assert!(
            notes.contains(expected),
            "missing note `{expected}` in:\n{notes}"
        );
    }
}

#[test]
fn unknown_keys_are_notes_and_bad_values_are_errors() {
    let text = FIXTURE.replace(
        "lease: \"infinite\"",
        "lease: \"infinite\"\nfancy_new_key: 1",
    );
    let out = sextant::convert("c.yml", &text);
    assert!(
        out.notes
            .iter()
            .any(|n| n.starts_with("unknown key `fancy_new_key` (line ")),
        "{:?}",
        out.notes
    );

    let text = FIXTURE.replace("netmask: 255.255.255.0", "netmask: 255.0.255.0");
    let out = sextant::convert("c.yml", &text);
    assert!(out.yaml.is_none());
    let errs: Vec<String> = out.diagnostics.items.iter().map(|d| d.short()).collect();
    assert_eq!(errs, ["6:10: error: `255.0.255.0` is not a netmask"]);
}
