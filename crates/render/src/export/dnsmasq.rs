//! `dnsmasq.conf`: DNS for the cluster domain, TFTP, and DHCP as `network.dhcp` says.
//!
//! Checked against dnsmasq 2.90 (Debian 12): `dnsmasq --test -C dnsmasq.conf`.

use slipway_cluster::{Cluster, DhcpMode, UnknownPolicy};

use super::{CLIENT_ARCHES, Export, ExportError, Lines, Options, header, join, ntp_split};
use crate::urls::Urls;

/// Builds the dnsmasq export.
pub(super) fn export(cluster: &Cluster, opts: &Options) -> Result<Export, ExportError> {
    let tftp_root = super::path_text(&opts.tftp_root, "the TFTP root", &[',', '#'])?;
    let urls = Urls::new(cluster);
    let net = &cluster.network;
    let domain = &cluster.cluster.domain;
    let server = net.server;
    let mut out = Export::default();
    let mut s = Lines::new(header("#", cluster, opts));
    s.line(format!(
        "# dnsmasq configuration for the provisioning network {} on {}.",
        net.subnet, net.interface
    ));
    s.line(
        "# Check: dnsmasq --test -C dnsmasq.conf. Run: dnsmasq -C dnsmasq.conf, or copy it into",
    );
    s.line("# /etc/dnsmasq.d/ (then the system's other dnsmasq settings apply too).");
    s.blank();
    s.line(format!("interface={}", net.interface));
    s.line("# Listen on that interface's addresses only, next to other DNS/DHCP servers.");
    s.line("bind-dynamic");

    // DNS.
    s.blank();
    s.line(format!(
        "# --- DNS: the cluster domain {domain} is answered here"
    ));
    s.line(format!("domain={domain}"));
    s.line(format!("local=/{domain}/"));
    s.line("# Not this machine's /etc/hosts or /etc/resolv.conf: only what the cluster file says.");
    s.line("no-hosts");
    s.line("no-resolv");
    if net.upstream_dns.is_empty() {
        s.line("# No upstream_dns: names outside the domain are refused.");
    } else {
        s.line("# Names outside the domain go to upstream_dns.");
        for up in &net.upstream_dns {
            if up.port() == 53 {
                s.line(format!("server={}", up.ip()));
            } else {
                s.line(format!("server={}#{}", up.ip(), up.port()));
            }
        }
    }
    for node in &cluster.nodes {
        s.line(format!(
            "host-record={},{},{}",
            cluster.fqdn(node),
            node.hostname,
            node.ip
        ));
    }
    let k = &cluster.kubernetes;
    let api = format!("{}.{domain}", k.api_name);
    match k
        .control_plane_endpoint
        .node
        .as_deref()
        .and_then(|h| cluster.node_by_hostname(h))
    {
        Some(node) => {
            s.line(format!("# The API endpoint is {}.", node.hostname));
            s.line(format!("cname={api},{}", cluster.fqdn(node)));
        }
        None => {
            s.line("# The API endpoint (a virtual address).");
            s.line(format!(
                "host-record={api},{}",
                k.control_plane_endpoint.address
            ));
        }
    }
    if server_name_free(cluster) {
        s.line("# The provisioning server itself.");
        s.line(format!("host-record={SERVER_NAME}.{domain},{server}"));
    }

    // TFTP.
    s.blank();
    s.line("# --- TFTP: the boot programs (iPXE, pxelinux)");
    s.line(format!(
        "# Fill it with: slipway export CLUSTER-FILE --for tftp-root --to {tftp_root}"
    ));
    s.line("enable-tftp");
    s.line(format!("tftp-root={tftp_root}"));

    match net.dhcp.mode {
        DhcpMode::Off => {
            s.blank();
            s.line(
                "# --- DHCP: off (network.dhcp.mode); the site's DHCP server points machines here:",
            );
            s.line(format!(
                "# next-server {server}, boot file by firmware as in the `isc-dhcpd` or `kea` export."
            ));
        }
        mode => dhcp(&mut s, cluster, &urls, mode),
    }
    out.add_text("dnsmasq.conf", s.finish());
    out.notes.push(format!(
        "dnsmasq serves TFTP from {tftp_root}: fill it with `slipway export CLUSTER-FILE --for tftp-root --to {tftp_root}`"
    ));
    out.notes.push(format!(
        "iPXE then loads {} over HTTP: serve it with the `nginx` export",
        urls.chain()
    ));
    Ok(out)
}

/// The name the provisioning server gets in the cluster domain.
pub(super) const SERVER_NAME: &str = "slipway";

/// Whether `slipway.<domain>` is free for the server (not a node or the API name).
pub(super) fn server_name_free(cluster: &Cluster) -> bool {
    cluster.node_by_hostname(SERVER_NAME).is_none() && cluster.kubernetes.api_name != SERVER_NAME
}

fn dhcp(s: &mut Lines, cluster: &Cluster, urls: &Urls, mode: DhcpMode) {
    let net = &cluster.network;
    let server = net.server;
    let subnet = net.subnet.network();
    let mask = super::subnet_mask(cluster);
    let lease = match net.dhcp.lease_time {
        slipway_cluster::LeaseTime::Infinite => "infinite".to_string(),
        t => t.as_secs().to_string(),
    };
    let proxy = mode == DhcpMode::Proxy;
    s.blank();
    if proxy {
        s.line(
            "# --- DHCP: proxy (network.dhcp.mode). The site's DHCP server hands out addresses;",
        );
        s.line("# this answers PXE clients with boot information only.");
        s.line(format!("dhcp-range={subnet},proxy,{mask}"));
    } else {
        s.line("# --- DHCP: authoritative (network.dhcp.mode): the network's DHCP server.");
        s.line("dhcp-authoritative");
        s.line("# The nodes' fixed addresses (dhcp-host below); lease time in seconds.");
        s.line(format!("dhcp-range={subnet},static,{mask},{lease}"));
    }
    match net.dhcp.unknown_machines {
        UnknownPolicy::Ignore => {
            s.line("# unknown_machines: ignore. A MAC that is not a node gets no answer at all.");
            s.line("dhcp-ignore=tag:!known");
        }
        UnknownPolicy::Discover => {
            s.line("# unknown_machines: discover. Other machines get an answer too.");
            if let (Some(pool), false) = (net.dhcp.pool, proxy) {
                s.line("# Their dynamic pool:");
                s.line(format!(
                    "dhcp-range={},{},{mask},{lease}",
                    pool.first, pool.last
                ));
            }
        }
    }
    if !proxy {
        s.line(match net.gateway {
            Some(g) => format!("dhcp-option=option:router,{g}"),
            None => "# No gateway: send no router.\ndhcp-option=option:router".into(),
        });
        s.line(format!(
            "dhcp-option=option:dns-server,{}",
            join(&net.dns, ",")
        ));
        let (ntp, names) = ntp_split(cluster);
        if !names.is_empty() {
            s.line(format!(
                "# NTP servers given by name cannot go in DHCP option 42: {}",
                names.join(", ")
            ));
        }
        if !ntp.is_empty() {
            s.line(format!("dhcp-option=option:ntp-server,{}", join(&ntp, ",")));
        }
        s.line(format!(
            "dhcp-option=option:domain-name,{}",
            cluster.cluster.domain
        ));
    }
    s.line("# The nodes: MAC, address, hostname.");
    for node in &cluster.nodes {
        s.line(format!(
            "dhcp-host={},{},{}",
            node.mac, node.ip, node.hostname
        ));
    }

    s.blank();
    s.line("# --- PXE: each firmware gets an iPXE build over TFTP; iPXE (user class iPXE) gets");
    s.line("# the chain script over HTTP instead, so it does not load itself again.");
    for arch in &CLIENT_ARCHES {
        s.line(format!("# {}", arch.what));
        for code in arch.codes {
            s.line(format!(
                "dhcp-match=set:{},option:client-arch,{code}",
                arch.tag
            ));
        }
    }
    s.line("dhcp-userclass=set:ipxe,iPXE");
    if proxy {
        for arch in &CLIENT_ARCHES {
            for csa in arch.csa {
                s.line(format!(
                    "pxe-service=tag:!ipxe,{csa},\"slipway {}\",{},{server}",
                    arch.tag, arch.file
                ));
            }
        }
        s.line("# iPXE: no PXE menu (tag:!ipxe above) but the chain script, with a next-server.");
    } else {
        for arch in &CLIENT_ARCHES {
            s.line(format!(
                "dhcp-boot=tag:{},tag:!ipxe,{},,{server}",
                arch.tag, arch.file
            ));
        }
    }
    s.line(format!("dhcp-boot=tag:ipxe,{},,{server}", urls.chain()));
    if !proxy {
        s.line("# Tell iPXE not to wait for a ProxyDHCP answer (ipxe.no-pxedhcp).");
        s.line("dhcp-option=tag:ipxe,encap:175,176,1b");
    }
}
