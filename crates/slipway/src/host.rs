//! The real machine's interfaces, for deriving `network.server`.

use ipnet::Ipv4Net;
use slipway_cluster::Host;

/// Reads interface addresses from the running system.
pub struct SystemHost;

impl Host for SystemHost {
    fn interface_ipv4(&self, name: &str) -> Option<Vec<Ipv4Net>> {
        let all = match if_addrs::get_if_addrs() {
            Ok(all) => all,
            Err(e) => {
                tracing::warn!("cannot list network interfaces: {e}");
                return None;
            }
        };
        let mut found = false;
        let mut out = Vec::new();
        for iface in all.iter().filter(|i| i.name == name) {
            found = true;
            if let if_addrs::IfAddr::V4(v4) = &iface.addr {
                let prefix = u32::from(v4.netmask).leading_ones() as u8;
                if let Ok(net) = Ipv4Net::new(v4.ip, prefix) {
                    out.push(net);
                }
            }
        }
        // An interface that is up with no IPv4 address is still "found".
        (found || std::path::Path::new("/sys/class/net").join(name).exists()).then_some(out)
    }
}
