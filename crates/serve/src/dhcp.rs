//! The DHCP engine's side of `serve`: its configuration from the cluster file, and what
//! slipway does with its events (machines seen go to the lifecycle, pool leases get and
//! lose a name in the DNS zone).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::mpsc;

use slipway_cluster::{Cluster, MacAddr};
use slipway_dhcp::Event;
use slipway_render::Urls;
use slipway_render::urls::bootfiles;
use slipway_store::tracker::Tracker;

/// The DHCP engine's configuration for `c`: addresses, options, reservations, and the
/// boot files and URLs (the HTTP routes come from the render crate's URL layout).
pub fn config(c: &Cluster) -> slipway_dhcp::Config {
    let urls = Urls::new(c);
    let net = &c.network;
    slipway_dhcp::Config {
        mode: net.dhcp.mode,
        server: net.server,
        subnet: net.subnet,
        gateway: net.gateway,
        dns: net.dns.clone(),
        domain: c.cluster.domain.clone(),
        ntp: net.ntp.iter().filter_map(|n| n.parse().ok()).collect(),
        lease_secs: net.dhcp.lease_time.as_secs(),
        pool: net.dhcp.pool.map(|p| (p.first, p.last)),
        unknown: net.dhcp.unknown_machines,
        reservations: c
            .nodes
            .iter()
            .map(|n| {
                (
                    n.mac,
                    slipway_dhcp::Reservation {
                        ip: n.ip,
                        hostname: n.hostname.clone(),
                        boot: n.boot_files.clone(),
                    },
                )
            })
            .collect(),
        relays: net.dhcp.relays.iter().copied().collect(),
        new_clients_per_sec: net.dhcp.new_clients_per_second,
        boot: slipway_dhcp::BootFiles {
            bios: bootfiles::BIOS_IPXE.into(),
            uefi: bootfiles::UEFI_IPXE.into(),
            http: urls.boot_file(bootfiles::UEFI_IPXE_FULL),
            ipxe_chain: urls.chain(),
        },
    }
}

/// Records machines seen in DHCP in their lifecycle on a thread of its own, a burst
/// in one commit, so the DHCP loop never waits for the machine store.
pub struct Recorder {
    seen: mpsc::Sender<(MacAddr, String)>,
}

impl Recorder {
    /// Starts the recording thread.
    pub fn start(tracker: Arc<Tracker>) -> std::io::Result<Recorder> {
        let (seen, rx) = mpsc::channel::<(MacAddr, String)>();
        std::thread::Builder::new()
            .name("dhcp-lifecycle".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let now = slipway_store::tracker::now();
                    let burst: Vec<_> = std::iter::once(first)
                        .chain(rx.try_iter())
                        .map(|(mac, firmware)| {
                            (mac, now, slipway_lifecycle::Input::DhcpSeen { firmware })
                        })
                        .collect();
                    if let Err(e) = tracker.record_many(burst) {
                        tracing::error!("cannot record machines seen in DHCP: {e}");
                    }
                }
            })?;
        Ok(Recorder { seen })
    }

    /// Queues "`mac` was seen in DHCP, booting with `firmware`".
    pub fn seen(&self, mac: MacAddr, firmware: &str) {
        let _ = self.seen.send((mac, firmware.to_string()));
    }
}

/// What slipway does with the DHCP engine's events: a known machine's lease is
/// recorded in its lifecycle with the firmware the engine recognised; a pool lease
/// gets a name in the cluster zone (its hostname, else its dashed MAC), which goes
/// when the lease ends.
pub fn on_event(
    known: HashSet<MacAddr>,
    recorder: Recorder,
    zone: Option<slipway_dns::ZoneHandle>,
) -> Arc<slipway_dhcp::driver::OnEvent> {
    let name =
        |mac: &MacAddr, hostname: &Option<String>| hostname.clone().unwrap_or_else(|| mac.dashed());
    Arc::new(move |event: &Event| match event {
        Event::Bound {
            mac,
            ip,
            hostname,
            client,
            ..
        } => {
            if known.contains(mac) {
                recorder.seen(*mac, client.as_str());
            } else if let Some(zone) = &zone {
                let _ = zone.set_dynamic(&name(mac, hostname), *ip);
            }
        }
        Event::Expired { mac, ip, hostname } if !known.contains(mac) => {
            if let Some(zone) = &zone {
                // The name goes only if it still points at this lease's address.
                let name = name(mac, hostname);
                if let Some(now_at) = zone.remove_dynamic(&name)
                    && now_at != *ip
                {
                    let _ = zone.set_dynamic(&name, now_at);
                }
            }
        }
        _ => {}
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const CLUSTER: &str = "\
cluster: {name: lab, domain: lab.test}
network:
  interface: br0
  server: 10.99.0.1
  subnet: 10.99.0.0/24
  gateway: 10.99.0.254
  ntp: [10.99.0.1, ntp.example.org]
  dhcp: {pool: 10.99.0.200-10.99.0.202, lease_time: 1h, unknown_machines: discover, relays: [10.98.0.1]}
os: {version: 4081.2.0}
kubernetes: {version: v1.31.2, service_subnet: 10.100.0.0/16}
access: {ssh_authorized_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlaceholderPlaceholder t@x']}
profiles:
  - {name: syslinux, selector: {role: worker}, boot_files: {bios: pxelinux.0}}
nodes:
  - {mac: 52:54:00:99:00:01, hostname: cp1, ip: 10.99.0.11, roles: [control-plane]}
  - {mac: 52:54:00:99:00:02, hostname: w1, ip: 10.99.0.21}
  - {mac: 52:54:00:99:00:03, hostname: w2, ip: 10.99.0.23, boot_files: {uefi: ipxe.efi}}
";

    #[test]
    fn the_engine_gets_the_cluster_s_addresses_reservations_and_boot_urls() {
        let loaded =
            slipway_cluster::load_str("t.yaml", CLUSTER, Path::new("/"), &slipway_cluster::NoHost);
        let Some(c) = loaded.valid() else {
            panic!("{}", loaded.diagnostics.render(CLUSTER));
        };
        let cfg = config(c);
        assert_eq!(cfg.server, std::net::Ipv4Addr::new(10, 99, 0, 1));
        assert_eq!(cfg.lease_secs, 3600);
        assert_eq!(
            cfg.ntp,
            [std::net::Ipv4Addr::new(10, 99, 0, 1)],
            "names are not addresses"
        );
        assert_eq!(
            cfg.pool,
            Some((
                "10.99.0.200".parse().unwrap_or_else(|e| panic!("{e}")),
                "10.99.0.202".parse().unwrap_or_else(|e| panic!("{e}"))
            ))
        );
        assert_eq!(cfg.relays, [std::net::Ipv4Addr::new(10, 98, 0, 1)].into());
        assert_eq!(cfg.boot.bios, "undionly.kpxe");
        assert_eq!(cfg.boot.uefi, "snponly.efi");
        assert_eq!(cfg.boot.http, "http://10.99.0.1:8080/boot/ipxe.efi");
        assert_eq!(cfg.boot.ipxe_chain, "http://10.99.0.1:8080/boot.ipxe");
        let boot = |m: u8| {
            cfg.reservations
                .get(&MacAddr([0x52, 0x54, 0, 0x99, 0, m]))
                .map(|r| (r.hostname.clone(), r.boot.bios.clone(), r.boot.uefi.clone()))
        };
        assert_eq!(boot(1), Some(("cp1".into(), None, None)));
        assert_eq!(
            boot(2),
            Some(("w1".into(), Some("pxelinux.0".into()), None)),
            "the profile's"
        );
        assert_eq!(
            boot(3),
            Some((
                "w2".into(),
                Some("pxelinux.0".into()),
                Some("ipxe.efi".into())
            )),
            "the profile's and its own"
        );
    }
}
