//! `dhcpd.conf` for ISC dhcpd 4.4 (Debian 12: `isc-dhcp-server`).
//!
//! Checked with `dhcpd -t -cf dhcpd.conf`.

use slipway_cluster::{Cluster, DhcpMode, UnknownPolicy};

use super::{CLIENT_ARCHES, Export, Lines, Options, header, join, ntp_split};
use crate::urls::Urls;

/// Builds the ISC dhcpd export.
pub(super) fn export(cluster: &Cluster, opts: &Options) -> Export {
    let urls = Urls::new(cluster);
    let net = &cluster.network;
    let mask = super::subnet_mask(cluster);
    let authoritative = net.dhcp.mode == DhcpMode::Authoritative;
    let lease = net.dhcp.lease_time.as_secs();
    let mut s = Lines::new(header("#", cluster, opts));
    s.line(format!(
        "# ISC dhcpd configuration for the provisioning network {}.",
        net.subnet
    ));
    s.line("# Check: dhcpd -t -cf dhcpd.conf. Serve it on the interface named in");
    s.line(format!(
        "# /etc/default/isc-dhcp-server: INTERFACESv4=\"{}\".",
        net.interface
    ));
    match net.dhcp.mode {
        DhcpMode::Authoritative => {}
        DhcpMode::Proxy => {
            s.line("# network.dhcp.mode is proxy: dhcpd cannot be a ProxyDHCP server. This is the");
            s.line("# configuration the site's own DHCP server needs (merge it there, not authoritative),");
            s.line("# or use the dnsmasq export, which can.");
        }
        DhcpMode::Off => {
            s.line(
                "# network.dhcp.mode is off: this is the site's DHCP server, pointing machines at",
            );
            s.line(format!("# the provisioning server {}.", net.server));
        }
    }
    s.blank();
    s.line("# DHCP option 93: the client's firmware (RFC 4578).");
    s.line("option arch code 93 = unsigned integer 16;");
    s.line("# iPXE's own options (option 175).");
    s.line("option space ipxe;");
    s.line("option ipxe-encap-opts code 175 = encapsulate ipxe;");
    s.line("option ipxe.no-pxedhcp code 176 = unsigned integer 8;");
    s.blank();
    if authoritative {
        s.line("authoritative;");
    }
    s.line("ddns-update-style none;");
    s.line(format!(
        "# Lease time: {} (network.dhcp.lease_time).",
        net.dhcp.lease_time
    ));
    s.line(format!("default-lease-time {lease};"));
    s.line(format!("max-lease-time {lease};"));
    s.line(format!(
        "option domain-name \"{}\";",
        cluster.cluster.domain
    ));
    if !net.dns.is_empty() {
        s.line(format!(
            "option domain-name-servers {};",
            join(&net.dns, ", ")
        ));
    }
    let (ntp, names) = ntp_split(cluster);
    if !names.is_empty() {
        s.line(format!(
            "# NTP servers given by name cannot go in DHCP option 42: {}",
            names.join(", ")
        ));
    }
    if !ntp.is_empty() {
        s.line(format!("option ntp-servers {};", join(&ntp, ", ")));
    }

    s.blank();
    s.line(format!("subnet {} netmask {mask} {{", net.subnet.network()));
    if let Some(g) = net.gateway {
        s.line(format!("  option routers {g};"));
    }
    s.line("  # TFTP server of the boot programs (see the tftp-root export).");
    s.line(format!("  next-server {};", net.server));
    if net.dhcp.unknown_machines == UnknownPolicy::Ignore {
        s.line("  # unknown_machines: ignore. Only the hosts below get an address.");
        s.line("  deny unknown-clients;");
    }
    s.line(
        "  # iPXE (user class iPXE) gets the chain script over HTTP, so it does not load itself",
    );
    s.line("  # again; each firmware gets its iPXE build over TFTP.");
    s.line("  if exists user-class and option user-class = \"iPXE\" {");
    s.line(format!("    filename \"{}\";", urls.chain()));
    if authoritative {
        s.line("    # Do not wait for a ProxyDHCP answer.");
        s.line("    option ipxe.no-pxedhcp 1;");
    }
    for arch in &CLIENT_ARCHES {
        let test: Vec<String> = arch
            .codes
            .iter()
            .map(|c| format!("option arch = {:02x}:{:02x}", c >> 8, c & 0xff))
            .collect();
        s.line(format!("  }} elsif {} {{", test.join(" or ")));
        s.line(format!("    # {}", arch.what));
        s.line(format!("    filename \"{}\";", arch.file));
    }
    s.line("  }");
    if let (UnknownPolicy::Discover, Some(pool)) = (net.dhcp.unknown_machines, net.dhcp.pool) {
        s.line("  # unknown_machines: discover. Machines that are not nodes get these addresses.");
        s.line("  pool {");
        s.line(format!("    range {} {};", pool.first, pool.last));
        s.line("  }");
    }
    s.line("}");

    s.blank();
    s.line("# The nodes.");
    for node in &cluster.nodes {
        s.line(format!("host {} {{", node.hostname));
        s.line(format!("  hardware ethernet {};", node.mac));
        s.line(format!("  fixed-address {};", node.ip));
        s.line(format!("  option host-name \"{}\";", node.hostname));
        s.line("}");
    }

    let mut out = Export::default();
    out.add_text("dhcpd.conf", s.finish());
    out.notes.push(format!(
        "dhcpd hands out next-server {}: serve the boot programs there over TFTP (the `tftp-root` export) and {} over HTTP (the `nginx` export)",
        net.server,
        urls.chain()
    ));
    out
}
