//! `kea-dhcp4.conf` for Kea 2.2 (Debian 12: `kea-dhcp4-server`), built as JSON data.
//!
//! Checked with `kea-dhcp4 -t kea-dhcp4.conf`. Kea reads `//` comments, so the file
//! starts with the usual header; the rest is plain JSON.

use serde_json::{Value, json};
use slipway_cluster::{Cluster, DhcpMode, UnknownPolicy};

use super::{CLIENT_ARCHES, Export, Options, header, join, ntp_split};
use crate::urls::Urls;

/// Builds the Kea export.
pub(super) fn export(cluster: &Cluster, opts: &Options) -> Export {
    let urls = Urls::new(cluster);
    let net = &cluster.network;
    let server = net.server.to_string();
    let authoritative = net.dhcp.mode == DhcpMode::Authoritative;

    let mut options = vec![json!({"name": "domain-name", "data": cluster.cluster.domain})];
    if !net.dns.is_empty() {
        options.push(json!({"name": "domain-name-servers", "data": join(&net.dns, ", ")}));
    }
    let (ntp, _) = ntp_split(cluster);
    if !ntp.is_empty() {
        options.push(json!({"name": "ntp-servers", "data": join(&ntp, ", ")}));
    }

    // Classes, in order; each firmware class excludes iPXE so exactly one sets the boot file.
    let mut ipxe = json!({
        "name": "ipxe",
        "comment": "iPXE (user class iPXE): the chain script over HTTP, so it does not load itself again",
        "test": "substring(option[77].hex,0,4) == 'iPXE'",
        "boot-file-name": urls.chain(),
    });
    if authoritative {
        ipxe["option-data"] = json!([
            {"name": "ipxe-encap-opts", "always-send": true},
            {"space": "ipxe", "name": "no-pxedhcp", "data": "1", "always-send": true},
        ]);
    }
    let mut classes = vec![ipxe];
    for arch in &CLIENT_ARCHES {
        let tests: Vec<String> = arch
            .codes
            .iter()
            .map(|c| format!("option[93].hex == 0x{c:04x}"))
            .collect();
        classes.push(json!({
            "name": arch.tag,
            "comment": arch.what,
            "test": format!("not member('ipxe') and ({})", tests.join(" or ")),
            "next-server": server,
            "boot-file-name": arch.file,
        }));
    }

    let reservations: Vec<Value> = cluster
        .nodes
        .iter()
        .map(|n| {
            json!({
                "hw-address": n.mac.to_string(),
                "ip-address": n.ip.to_string(),
                "hostname": n.hostname,
            })
        })
        .collect();
    let mut subnet = json!({
        "id": 1,
        "subnet": net.subnet.to_string(),
        "interface": net.interface,
        "next-server": server,
        "option-data": [],
        "pools": [],
        "reservations": reservations,
    });
    if let Some(g) = net.gateway {
        subnet["option-data"] = json!([{"name": "routers", "data": g.to_string()}]);
    }
    match (net.dhcp.unknown_machines, net.dhcp.pool) {
        (UnknownPolicy::Discover, Some(pool)) => {
            subnet["comment"] =
                json!("unknown_machines: discover. Machines that are not nodes get pool addresses");
            subnet["pools"] = json!([{"pool": format!("{} - {}", pool.first, pool.last)}]);
        }
        (UnknownPolicy::Discover, None) => {}
        (UnknownPolicy::Ignore, _) => {
            subnet["comment"] =
                json!("unknown_machines: ignore. No pool: only the reserved nodes get an address");
        }
    }

    let mut dhcp4 = json!({
        "interfaces-config": {"interfaces": [net.interface]},
        "lease-database": {"type": "memfile", "lfc-interval": 3600},
        "authoritative": authoritative,
        "valid-lifetime": net.dhcp.lease_time.as_secs(),
        "calculate-tee-times": true,
        // Reservations are by MAC and lie outside the pool (the cluster file checks it).
        "host-reservation-identifiers": ["hw-address"],
        "match-client-id": false,
        "reservations-global": false,
        "reservations-in-subnet": true,
        "reservations-out-of-pool": true,
        "option-data": options,
        "client-classes": classes,
        "subnet4": [subnet],
    });
    if authoritative {
        dhcp4["option-def"] = json!([
            {"space": "dhcp4", "name": "ipxe-encap-opts", "code": 175, "type": "empty", "encapsulate": "ipxe"},
            {"space": "ipxe", "name": "no-pxedhcp", "code": 176, "type": "uint8"},
        ]);
    }
    let config = json!({ "Dhcp4": dhcp4 });

    let mut text = header("//", cluster, opts);
    text.push_str(&format!(
        "// Kea DHCPv4 configuration for the provisioning network {}. Check: kea-dhcp4 -t kea-dhcp4.conf\n",
        net.subnet
    ));
    match net.dhcp.mode {
        DhcpMode::Authoritative => {}
        DhcpMode::Proxy => text.push_str(
            "// network.dhcp.mode is proxy: Kea cannot be a ProxyDHCP server. This is the configuration\n\
             // the site's own DHCP server needs (not authoritative), or use the dnsmasq export.\n",
        ),
        DhcpMode::Off => text.push_str(
            "// network.dhcp.mode is off: this is the site's DHCP server, pointing machines here.\n",
        ),
    }
    let (_, names) = ntp_split(cluster);
    if !names.is_empty() {
        text.push_str(&format!(
            "// NTP servers given by name cannot go in DHCP option 42: {}\n",
            names.join(", ")
        ));
    }
    let body = serde_json::to_string_pretty(&config).unwrap_or_else(|_| config.to_string());
    text.push_str(&body);
    text.push('\n');

    let mut out = Export::default();
    out.add_text("kea-dhcp4.conf", text);
    out.notes.push(format!(
        "Kea hands out next-server {}: serve the boot programs there over TFTP (the `tftp-root` export) and {} over HTTP (the `nginx` export)",
        net.server,
        urls.chain()
    ));
    out
}
