//! The cluster's authoritative data, built from a [`Cluster`] with no IO.
//!
//! A [`Zone`] holds one forward zone (the cluster domain) and the reverse zones that
//! cover the node subnet, and answers [`Zone::lookup`] with an [`Answer`]: records,
//! "no data", "no such name", or "not mine". Dynamic names (DHCP leases) are added
//! and removed with [`Zone::set_dynamic`] and [`Zone::remove_dynamic`]; static names
//! (nodes, the API name, the server) always win over them.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::ops::Bound;

use hickory_proto::rr::rdata::{A, NS, PTR, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use ipnet::Ipv4Net;
use slipway_cluster::Cluster;

use crate::Error;

/// TTL of the static records (nodes, API name, server, NS).
pub const STATIC_TTL: u32 = 300;
/// TTL of dynamic records: leases come and go, so caches should not keep them long.
pub const DYNAMIC_TTL: u32 = 60;
/// TTL of the SOA record and its MINIMUM field: how long a "no such name" may be
/// cached (RFC 2308), short so that a new lease is seen soon.
pub const NEGATIVE_TTL: u32 = 30;
/// The label of slipway's own name in the cluster domain: `slipway.<domain>`.
pub const SERVER_LABEL: &str = "slipway";

/// A name as a map key: its labels lower-cased, from the root down. The names under
/// a name are then one contiguous range of keys starting with its key.
type Key = Vec<Box<[u8]>>;

fn key_of(name: &Name) -> Key {
    name.iter()
        .rev()
        .map(|label| label.to_ascii_lowercase().into_boxed_slice())
        .collect()
}

/// What the zone says about a name and type.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Answer {
    /// The name has records of the type asked for (all its records for `ANY`).
    Records {
        /// The answer section.
        answers: Vec<Record>,
        /// Records for the additional section (the server's address for NS answers).
        additionals: Vec<Record>,
    },
    /// The name exists but has no records of that type (NOERROR, empty answer).
    NoData {
        /// The SOA of the zone the name is in, for the authority section.
        soa: Record,
    },
    /// The name does not exist in the zone (NXDOMAIN).
    NxDomain {
        /// The SOA of the zone the name is in, for the authority section.
        soa: Record,
    },
    /// The name is outside every zone served here.
    NotAuthoritative,
}

/// The reverse zones (`in-addr.arpa`) that cover `subnet`, whole octets only.
///
/// A prefix that is a multiple of 8 gives one zone (`/24` → `c.b.a.in-addr.arpa`,
/// `/16` → `b.a.in-addr.arpa`). Other prefixes give the zones of the next octet
/// boundary that cover the subnet: a `/20` gives its 16 `/24` zones, a `/12` its 16
/// `/16` zones, and a `/25` to `/30` the one `/24` zone that contains it (no
/// RFC 2317 classless delegation: the other addresses of that `/24` are simply not
/// known). At most 128 zones.
///
/// ```
/// let zones = slipway_dns::reverse_zones("10.99.0.0/24".parse().unwrap());
/// assert_eq!(zones[0].to_string(), "0.99.10.in-addr.arpa.");
/// let zones = slipway_dns::reverse_zones("10.16.0.0/23".parse().unwrap());
/// assert_eq!(zones.len(), 2);
/// assert_eq!(zones[1].to_string(), "1.16.10.in-addr.arpa.");
/// ```
pub fn reverse_zones(subnet: Ipv4Net) -> Vec<Name> {
    let prefix = subnet.prefix_len();
    // Zone prefix: the subnet's prefix rounded up to whole octets, at most /24.
    let zone_prefix = prefix.div_ceil(8).saturating_mul(8).min(24);
    let count: u32 = if zone_prefix > prefix {
        1 << (zone_prefix - prefix)
    } else {
        1
    };
    let step: u32 = 1u32.checked_shl(32 - u32::from(zone_prefix)).unwrap_or(0);
    let base = u32::from(subnet.network());
    // Labels kept: the zone's octets plus `in-addr` and `arpa`.
    let labels = usize::from(zone_prefix / 8) + 2;
    (0..count)
        .map(|i| {
            let address = Ipv4Addr::from(base.wrapping_add(i.wrapping_mul(step)));
            reverse_name(address).trim_to(labels)
        })
        .collect()
}

/// The reverse name of an address: `10.99.0.11` → `11.0.99.10.in-addr.arpa.`.
///
/// ```
/// let name = slipway_dns::reverse_name("10.99.0.11".parse().unwrap());
/// assert_eq!(name.to_string(), "11.0.99.10.in-addr.arpa.");
/// ```
pub fn reverse_name(address: Ipv4Addr) -> Name {
    let mut name = Name::from(address);
    name.set_fqdn(true);
    name
}

/// Lower-cases a dynamic hostname and checks that it is one DNS label.
fn normalize_hostname(hostname: &str) -> Result<String, Error> {
    let label = hostname.to_ascii_lowercase();
    let valid = !label.is_empty()
        && label.len() <= 63
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-');
    if valid {
        Ok(label)
    } else {
        Err(Error::InvalidHostname {
            hostname: hostname.chars().take(80).collect(),
        })
    }
}

fn parse_domain(domain: &str) -> Result<Name, Error> {
    let mut name = Name::from_ascii(domain).map_err(|e| Error::InvalidName {
        name: domain.to_string(),
        reason: e.to_string(),
    })?;
    name.set_fqdn(true);
    Ok(name.to_lowercase())
}

fn child(label: &str, parent: &Name) -> Result<Name, Error> {
    let mut name = parent
        .prepend_label(label.to_ascii_lowercase().as_bytes())
        .map_err(|e| Error::InvalidName {
            name: format!("{label}.{parent}"),
            reason: e.to_string(),
        })?;
    name.set_fqdn(true);
    Ok(name)
}

/// The authoritative data of one cluster: the forward zone of `cluster.domain` and the
/// reverse zones of `network.subnet`, with the static names from the cluster file and
/// the dynamic names added since.
///
/// Served names (TTL [`STATIC_TTL`] unless said otherwise):
///
/// | name | records |
/// |---|---|
/// | `<domain>` and each reverse zone | SOA (`slipway.<domain>`, `hostmaster.<domain>`, TTL and MINIMUM [`NEGATIVE_TTL`]), NS `slipway.<domain>` |
/// | `slipway.<domain>` | A `network.server` |
/// | `<hostname>.<domain>` | A of the node |
/// | `<api_name>.<domain>` | A `kubernetes.control_plane_endpoint.address` |
/// | reverse name of the server, each node, and a virtual endpoint address in the subnet | PTR to its name |
/// | dynamic `<hostname>.<domain>` and its reverse name | A and PTR, TTL [`DYNAMIC_TTL`] |
///
/// ```
/// use slipway_dns::proto::rr::{Name, RecordType};
/// use slipway_dns::{Answer, Zone};
///
/// let text = "\
/// cluster: {name: lab, domain: lab.test}
/// network: {interface: br0, server: 10.99.0.1, subnet: 10.99.0.0/24}
/// os: {version: 4081.2.0}
/// kubernetes: {version: v1.31.2, service_subnet: 10.100.0.0/16}
/// access: {ssh_authorized_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExample me']}
/// nodes:
///   - {mac: 52:54:00:99:00:01, hostname: cp1, ip: 10.99.0.11, roles: [control-plane]}
/// ";
/// let loaded = slipway_cluster::load_str("lab.yaml", text, ".".as_ref(), &slipway_cluster::NoHost);
/// let mut zone = Zone::from_cluster(loaded.valid().unwrap()).unwrap();
///
/// let name = Name::from_ascii("CP1.lab.test.").unwrap();
/// let Answer::Records { answers, .. } = zone.lookup(&name, RecordType::A) else { panic!() };
/// assert_eq!(answers[0].data.to_string(), "10.99.0.11");
///
/// zone.set_dynamic("discovered", "10.99.0.200".parse().unwrap()).unwrap();
/// let name = Name::from_ascii("200.0.99.10.in-addr.arpa.").unwrap();
/// let Answer::Records { answers, .. } = zone.lookup(&name, RecordType::PTR) else { panic!() };
/// assert_eq!(answers[0].data.to_string(), "discovered.lab.test.");
/// ```
#[derive(Debug, Clone)]
pub struct Zone {
    domain: Name,
    server_name: Name,
    subnet: Ipv4Net,
    /// The forward zone first, then the reverse zones.
    origins: Vec<Name>,
    origin_keys: Vec<Key>,
    serial: u32,
    statics: BTreeMap<Key, Vec<Record>>,
    /// Addresses with a static PTR, and the name it points to.
    static_addresses: BTreeMap<Ipv4Addr, Name>,
    /// Dynamic hostname (lower-cased label) → address.
    dynamic: BTreeMap<String, Ipv4Addr>,
    dynamic_records: BTreeMap<Key, Vec<Record>>,
}

impl Zone {
    /// Builds the zones of a completed cluster. Fails only if a name from the cluster
    /// cannot be a DNS name (which the cluster's validation already prevents).
    pub fn from_cluster(cluster: &Cluster) -> Result<Zone, Error> {
        let domain = parse_domain(&cluster.cluster.domain)?;
        let server_name = child(SERVER_LABEL, &domain)?;
        let subnet = cluster.network.subnet;
        let mut origins = vec![domain.clone()];
        origins.extend(reverse_zones(subnet));
        let origin_keys = origins.iter().map(key_of).collect();
        let mut zone = Zone {
            domain,
            server_name,
            subnet,
            origins,
            origin_keys,
            serial: 1,
            statics: BTreeMap::new(),
            static_addresses: BTreeMap::new(),
            dynamic: BTreeMap::new(),
            dynamic_records: BTreeMap::new(),
        };

        let server = zone.server_name.clone();
        zone.add_static_a(&server, cluster.network.server);
        zone.add_static_ptr(cluster.network.server, &server);
        for node in &cluster.nodes {
            let name = child(&node.hostname, &zone.domain)?;
            zone.add_static_a(&name, node.ip);
            zone.add_static_ptr(node.ip, &name);
        }
        let endpoint = &cluster.kubernetes.control_plane_endpoint;
        let api = child(&cluster.kubernetes.api_name, &zone.domain)?;
        zone.add_static_a(&api, endpoint.address);
        if endpoint.node.is_none() {
            // A virtual IP: its reverse name is the API name (a node's is the node's).
            zone.add_static_ptr(endpoint.address, &api);
        }
        Ok(zone)
    }

    fn add_static_a(&mut self, name: &Name, address: Ipv4Addr) {
        let record = Record::from_rdata(name.clone(), STATIC_TTL, RData::A(A(address)));
        let records = self.statics.entry(key_of(name)).or_default();
        if !records.contains(&record) {
            records.push(record);
        }
    }

    /// Adds a PTR if the address is in a reverse zone and has none yet (first wins).
    fn add_static_ptr(&mut self, address: Ipv4Addr, target: &Name) {
        let owner = reverse_name(address);
        let in_reverse_zone = self.origin_index(&key_of(&owner)).is_some_and(|i| i > 0);
        if !in_reverse_zone || self.static_addresses.contains_key(&address) {
            return;
        }
        self.static_addresses.insert(address, target.clone());
        let record = Record::from_rdata(owner.clone(), STATIC_TTL, RData::PTR(PTR(target.clone())));
        self.statics.entry(key_of(&owner)).or_default().push(record);
    }

    /// The cluster domain (the forward zone's origin), lower-case, fully qualified.
    pub fn domain(&self) -> &Name {
        &self.domain
    }

    /// slipway's own name, `slipway.<domain>`: the zones' primary name server.
    pub fn server_name(&self) -> &Name {
        &self.server_name
    }

    /// The origins of every zone served: the cluster domain first, then the reverse
    /// zones ([`reverse_zones`] of the subnet).
    pub fn origins(&self) -> &[Name] {
        &self.origins
    }

    /// The SOA serial: 1 when built, one more on every dynamic change (wrapping, as
    /// RFC 1982 serial arithmetic allows).
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// The dynamic names, as (hostname, address), sorted by hostname.
    pub fn dynamic(&self) -> impl Iterator<Item = (&str, Ipv4Addr)> {
        self.dynamic.iter().map(|(h, a)| (h.as_str(), *a))
    }

    /// Every record served, zone apexes (SOA, NS) first, then static and dynamic
    /// names; for inspection and tests.
    pub fn records(&self) -> Vec<Record> {
        let mut all = Vec::new();
        for origin in &self.origins {
            all.push(self.soa_record(origin));
            all.push(self.ns_record(origin));
        }
        all.extend(self.statics.values().flatten().cloned());
        all.extend(self.dynamic_records.values().flatten().cloned());
        all
    }

    fn soa_record(&self, origin: &Name) -> Record {
        let hostmaster = child("hostmaster", &self.domain).unwrap_or_else(|_| self.domain.clone());
        let soa = SOA::new(
            self.server_name.clone(),
            hostmaster,
            self.serial,
            3600,
            600,
            86400,
            NEGATIVE_TTL,
        );
        Record::from_rdata(origin.clone(), NEGATIVE_TTL, RData::SOA(soa))
    }

    fn ns_record(&self, origin: &Name) -> Record {
        Record::from_rdata(
            origin.clone(),
            STATIC_TTL,
            RData::NS(NS(self.server_name.clone())),
        )
    }

    /// The index in `origins` of the most specific zone containing `key`.
    fn origin_index(&self, key: &Key) -> Option<usize> {
        self.origin_keys
            .iter()
            .enumerate()
            .filter(|(_, origin)| key.starts_with(origin))
            .max_by_key(|(_, origin)| origin.len())
            .map(|(i, _)| i)
    }

    /// Whether some record lives strictly below `key` (then `key` is an empty
    /// non-terminal: it exists, with no records).
    fn has_descendant(&self, key: &Key) -> bool {
        [&self.statics, &self.dynamic_records].iter().any(|map| {
            map.range::<Key, _>((Bound::Excluded(key), Bound::Unbounded))
                .next()
                .is_some_and(|(k, _)| k.starts_with(key))
        })
    }

    /// The SOA of the zone a name is in, if it is in one (for negative answers).
    pub fn soa_for(&self, name: &Name) -> Option<Record> {
        let index = self.origin_index(&key_of(name))?;
        self.origins
            .get(index)
            .map(|origin| self.soa_record(origin))
    }

    /// Answers a query, case-insensitively. `ANY` returns every record at the name.
    pub fn lookup(&self, name: &Name, rtype: RecordType) -> Answer {
        let key = key_of(name);
        let Some(origin) = self.origin_index(&key).and_then(|i| self.origins.get(i)) else {
            return Answer::NotAuthoritative;
        };
        let mut at_name: Vec<Record> = Vec::new();
        if key_of(origin) == key {
            at_name.push(self.soa_record(origin));
            at_name.push(self.ns_record(origin));
        }
        for map in [&self.statics, &self.dynamic_records] {
            if let Some(records) = map.get(&key) {
                at_name.extend(records.iter().cloned());
            }
        }
        if at_name.is_empty() {
            let soa = self.soa_record(origin);
            return if self.has_descendant(&key) {
                Answer::NoData { soa }
            } else {
                Answer::NxDomain { soa }
            };
        }
        let answers: Vec<Record> = at_name
            .into_iter()
            .filter(|r| rtype == RecordType::ANY || r.record_type() == rtype)
            .collect();
        if answers.is_empty() {
            return Answer::NoData {
                soa: self.soa_record(origin),
            };
        }
        let additionals = if answers.iter().any(|r| r.record_type() == RecordType::NS) {
            self.statics
                .get(&key_of(&self.server_name))
                .map(|records| {
                    records
                        .iter()
                        .filter(|r| r.record_type() == RecordType::A)
                        .cloned()
                        .collect()
                })
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        Answer::Records {
            answers,
            additionals,
        }
    }

    /// Adds or moves a dynamic name: `<hostname>.<domain>` A `address` and the PTR
    /// back, TTL [`DYNAMIC_TTL`]. A name has one address and an address one dynamic
    /// name: a previous address of `hostname`, and another dynamic name that had
    /// `address`, are removed. Returns whether anything changed.
    ///
    /// Refused (the zone is unchanged): a hostname that is not one DNS label, a static
    /// name, an address outside the subnet, or the address of a static name.
    pub fn set_dynamic(&mut self, hostname: &str, address: Ipv4Addr) -> Result<bool, Error> {
        let label = normalize_hostname(hostname)?;
        let name = child(&label, &self.domain)?;
        let name_key = key_of(&name);
        if self.statics.contains_key(&name_key) || self.origin_keys.contains(&name_key) {
            return Err(Error::StaticName { hostname: label });
        }
        if !self.subnet.contains(&address) {
            return Err(Error::OutsideSubnet {
                address,
                subnet: self.subnet,
            });
        }
        if let Some(owner) = self.static_addresses.get(&address) {
            return Err(Error::StaticAddress {
                address,
                owner: owner.to_string(),
            });
        }
        if self.dynamic.get(&label) == Some(&address) {
            return Ok(false);
        }
        self.forget_dynamic(&label);
        let previous = self
            .dynamic
            .iter()
            .find(|(_, a)| **a == address)
            .map(|(h, _)| h.clone());
        if let Some(previous) = previous {
            self.forget_dynamic(&previous);
        }
        let owner = reverse_name(address);
        self.dynamic_records.insert(
            name_key,
            vec![Record::from_rdata(
                name.clone(),
                DYNAMIC_TTL,
                RData::A(A(address)),
            )],
        );
        self.dynamic_records.insert(
            key_of(&owner),
            vec![Record::from_rdata(
                owner,
                DYNAMIC_TTL,
                RData::PTR(PTR(name)),
            )],
        );
        self.dynamic.insert(label, address);
        self.serial = self.serial.wrapping_add(1);
        Ok(true)
    }

    /// Removes a dynamic name and its PTR; returns the address it had, or `None` if
    /// there was no such dynamic name (static names are never removed).
    pub fn remove_dynamic(&mut self, hostname: &str) -> Option<Ipv4Addr> {
        let label = hostname.to_ascii_lowercase();
        let address = self.forget_dynamic(&label)?;
        self.serial = self.serial.wrapping_add(1);
        Some(address)
    }

    fn forget_dynamic(&mut self, label: &str) -> Option<Ipv4Addr> {
        let address = self.dynamic.remove(label)?;
        if let Ok(name) = child(label, &self.domain) {
            self.dynamic_records.remove(&key_of(&name));
        }
        self.dynamic_records.remove(&key_of(&reverse_name(address)));
        Some(address)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use slipway_cluster::{NoHost, load_file, load_str};

    use super::*;

    fn example(name: &str) -> Cluster {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples")
            .join(name);
        let (text, loaded) = load_file(&path, &NoHost).expect("example readable");
        assert!(
            !loaded.diagnostics.has_errors(),
            "{}",
            loaded.diagnostics.render(&text)
        );
        loaded.cluster.expect("valid example")
    }

    fn cluster(text: &str) -> Cluster {
        let loaded = load_str("test.yaml", text, Path::new("."), &NoHost);
        assert!(
            !loaded.diagnostics.has_errors(),
            "{}",
            loaded.diagnostics.render(text)
        );
        loaded.cluster.expect("valid cluster")
    }

    fn cluster_with(subnet: &str, server: &str, endpoint: &str, nodes: &str) -> Cluster {
        cluster(&format!(
            "cluster: {{name: t, domain: t.test}}
network: {{interface: br0, server: {server}, subnet: {subnet}}}
os: {{version: 4081.2.0}}
kubernetes: {{version: v1.31.2, service_subnet: 10.100.0.0/16{endpoint}}}
access: {{ssh_authorized_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExample me']}}
nodes:
{nodes}"
        ))
    }

    fn name(text: &str) -> Name {
        Name::from_ascii(text).expect("name")
    }

    /// The data of the answer records, as text, sorted.
    fn data(zone: &Zone, qname: &str, rtype: RecordType) -> Vec<String> {
        match zone.lookup(&name(qname), rtype) {
            Answer::Records { answers, .. } => {
                let mut data: Vec<String> = answers.iter().map(|r| r.data.to_string()).collect();
                data.sort();
                data
            }
            other => panic!("{qname} {rtype}: expected records, got {other:?}"),
        }
    }

    fn ttl(zone: &Zone, qname: &str, rtype: RecordType) -> u32 {
        match zone.lookup(&name(qname), rtype) {
            Answer::Records { answers, .. } => answers[0].ttl,
            other => panic!("{qname} {rtype}: expected records, got {other:?}"),
        }
    }

    fn is_nxdomain(zone: &Zone, qname: &str) -> bool {
        matches!(
            zone.lookup(&name(qname), RecordType::A),
            Answer::NxDomain { .. }
        )
    }

    #[test]
    fn lab_example_records() {
        let zone = Zone::from_cluster(&example("lab.yaml")).expect("zone");
        let origins: Vec<String> = zone.origins().iter().map(ToString::to_string).collect();
        assert_eq!(origins, ["lab.slipway.test.", "0.99.10.in-addr.arpa."]);
        assert_eq!(zone.server_name().to_string(), "slipway.lab.slipway.test.");

        assert_eq!(
            data(&zone, "cp1.lab.slipway.test.", RecordType::A),
            ["10.99.0.11"]
        );
        assert_eq!(
            data(&zone, "worker1.lab.slipway.test.", RecordType::A),
            ["10.99.0.21"]
        );
        assert_eq!(
            data(&zone, "worker2.lab.slipway.test.", RecordType::A),
            ["10.99.0.22"]
        );
        assert_eq!(
            data(&zone, "slipway.lab.slipway.test.", RecordType::A),
            ["10.99.0.1"]
        );
        // The endpoint defaults to the first control-plane node.
        assert_eq!(
            data(&zone, "api.lab.slipway.test.", RecordType::A),
            ["10.99.0.11"]
        );
        assert_eq!(
            ttl(&zone, "cp1.lab.slipway.test.", RecordType::A),
            STATIC_TTL
        );

        assert_eq!(
            data(&zone, "11.0.99.10.in-addr.arpa.", RecordType::PTR),
            ["cp1.lab.slipway.test."]
        );
        assert_eq!(
            data(&zone, "22.0.99.10.in-addr.arpa.", RecordType::PTR),
            ["worker2.lab.slipway.test."]
        );
        assert_eq!(
            data(&zone, "1.0.99.10.in-addr.arpa.", RecordType::PTR),
            ["slipway.lab.slipway.test."]
        );
        // No record for an address nobody has, the gateway included.
        assert!(is_nxdomain(&zone, "12.0.99.10.in-addr.arpa."));

        // Every record: 2 zones x (SOA, NS) + 5 A (3 nodes, api, server) + 4 PTR.
        assert_eq!(zone.records().len(), 4 + 5 + 4);
    }

    #[test]
    fn apex_soa_ns_and_glue() {
        let zone = Zone::from_cluster(&example("lab.yaml")).expect("zone");
        for origin in ["lab.slipway.test.", "0.99.10.in-addr.arpa."] {
            let soa = data(&zone, origin, RecordType::SOA);
            assert_eq!(
                soa,
                [format!(
                    "slipway.lab.slipway.test. hostmaster.lab.slipway.test. 1 3600 600 86400 {NEGATIVE_TTL}"
                )]
            );
            assert_eq!(
                data(&zone, origin, RecordType::NS),
                ["slipway.lab.slipway.test."]
            );
            let Answer::Records { additionals, .. } = zone.lookup(&name(origin), RecordType::NS)
            else {
                panic!("NS answer");
            };
            assert_eq!(additionals.len(), 1);
            assert_eq!(additionals[0].name.to_string(), "slipway.lab.slipway.test.");
            assert_eq!(additionals[0].data.to_string(), "10.99.0.1");
            // ANY: everything at the name.
            let mut any = data(&zone, origin, RecordType::ANY);
            any.retain(|d| d == "slipway.lab.slipway.test.");
            assert_eq!(any.len(), 1);
            assert_eq!(data(&zone, origin, RecordType::ANY).len(), 2);
        }
    }

    #[test]
    fn negative_answers_and_case() {
        let zone = Zone::from_cluster(&example("lab.yaml")).expect("zone");
        match zone.lookup(&name("nope.lab.slipway.test."), RecordType::A) {
            Answer::NxDomain { soa } => {
                assert_eq!(soa.name.to_string(), "lab.slipway.test.");
                assert_eq!(soa.record_type(), RecordType::SOA);
            }
            other => panic!("expected NXDOMAIN, got {other:?}"),
        }
        // Below a name that exists: still NXDOMAIN.
        assert!(is_nxdomain(&zone, "x.cp1.lab.slipway.test."));
        match zone.lookup(&name("cp1.lab.slipway.test."), RecordType::AAAA) {
            Answer::NoData { soa } => assert_eq!(soa.name.to_string(), "lab.slipway.test."),
            other => panic!("expected NODATA, got {other:?}"),
        }
        match zone.lookup(&name("99.0.99.10.in-addr.arpa."), RecordType::PTR) {
            Answer::NxDomain { soa } => assert_eq!(soa.name.to_string(), "0.99.10.in-addr.arpa."),
            other => panic!("expected NXDOMAIN, got {other:?}"),
        }
        for outside in [
            "example.com.",
            "slipway.test.",
            "test.",
            ".",
            "0.98.10.in-addr.arpa.",
            "99.10.in-addr.arpa.",
        ] {
            assert_eq!(
                zone.lookup(&name(outside), RecordType::A),
                Answer::NotAuthoritative,
                "{outside}"
            );
        }
        assert_eq!(
            data(&zone, "CP1.Lab.SLIPWAY.test.", RecordType::A),
            ["10.99.0.11"]
        );
        assert_eq!(
            data(&zone, "11.0.99.10.IN-ADDR.ARPA.", RecordType::PTR),
            ["cp1.lab.slipway.test."]
        );
        // A non-FQDN name is the same name.
        assert_eq!(
            data(&zone, "cp1.lab.slipway.test", RecordType::A),
            ["10.99.0.11"]
        );
    }

    #[test]
    fn sextant_like_example_records() {
        let cluster = example("sextant-like.yaml");
        let zone = Zone::from_cluster(&cluster).expect("zone");
        assert_eq!(zone.domain().to_string(), "ail.example.com.");
        assert_eq!(zone.origins().len(), 2);
        assert_eq!(zone.origins()[1].to_string(), "14.10.10.in-addr.arpa.");
        assert_eq!(cluster.nodes.len(), 5);
        for node in &cluster.nodes {
            let fqdn = format!("{}.ail.example.com.", node.hostname);
            assert_eq!(data(&zone, &fqdn, RecordType::A), [node.ip.to_string()]);
            assert_eq!(
                data(&zone, &reverse_name(node.ip).to_string(), RecordType::PTR),
                [fqdn]
            );
        }
        // Derived hostnames from the MAC.
        assert_eq!(
            data(&zone, "00-25-90-c0-f6-ee.ail.example.com.", RecordType::A).len(),
            1
        );
        // control_plane_endpoint: node1:6443
        assert_eq!(
            data(&zone, "api.ail.example.com.", RecordType::A),
            ["10.10.14.130"]
        );
        assert_eq!(
            data(&zone, "slipway.ail.example.com.", RecordType::A),
            ["10.10.14.253"]
        );
        assert_eq!(
            data(&zone, "253.14.10.10.in-addr.arpa.", RecordType::PTR),
            ["slipway.ail.example.com."]
        );
        // The node's reverse name stays the node's, not the API name's.
        assert_eq!(
            data(&zone, "130.14.10.10.in-addr.arpa.", RecordType::PTR),
            ["node1.ail.example.com."]
        );
    }

    #[test]
    fn fleet_example_every_node_both_ways() {
        let cluster = example("fleet-1000.yaml");
        let zone = Zone::from_cluster(&cluster).expect("zone");
        let origins: Vec<String> = zone.origins().iter().map(ToString::to_string).collect();
        assert_eq!(origins, ["fleet.example.com.", "20.10.in-addr.arpa."]);
        assert_eq!(cluster.nodes.len(), 1000);
        for node in &cluster.nodes {
            let fqdn = format!("{}.fleet.example.com.", node.hostname);
            assert_eq!(data(&zone, &fqdn, RecordType::A), [node.ip.to_string()]);
            assert_eq!(
                data(&zone, &reverse_name(node.ip).to_string(), RecordType::PTR),
                [fqdn]
            );
        }
        // A /16 reverse zone: a /24 with nodes in it exists without records of its own.
        let third = cluster.nodes[0].ip.octets()[2];
        assert!(matches!(
            zone.lookup(
                &name(&format!("{third}.20.10.in-addr.arpa.")),
                RecordType::PTR
            ),
            Answer::NoData { .. }
        ));
    }

    #[test]
    fn virtual_ip_endpoint_has_a_ptr() {
        let cluster = cluster_with(
            "10.99.0.0/24",
            "10.99.0.1",
            ", control_plane_endpoint: '10.99.0.5:6443', api_name: k8s",
            "  - {mac: 52:54:00:99:00:01, hostname: cp1, ip: 10.99.0.11, roles: [control-plane]}\n",
        );
        let zone = Zone::from_cluster(&cluster).expect("zone");
        assert_eq!(data(&zone, "k8s.t.test.", RecordType::A), ["10.99.0.5"]);
        assert_eq!(
            data(&zone, "5.0.99.10.in-addr.arpa.", RecordType::PTR),
            ["k8s.t.test."]
        );
        assert!(is_nxdomain(&zone, "api.t.test."));
    }

    #[test]
    fn reverse_zone_shapes() {
        let zones = |subnet: &str| -> Vec<String> {
            reverse_zones(subnet.parse().expect("subnet"))
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(zones("10.99.0.0/24"), ["0.99.10.in-addr.arpa."]);
        assert_eq!(zones("10.99.0.0/16"), ["99.10.in-addr.arpa."]);
        assert_eq!(zones("10.0.0.0/8"), ["10.in-addr.arpa."]);
        assert_eq!(zones("192.168.1.64/26"), ["1.168.192.in-addr.arpa."]);
        assert_eq!(zones("192.168.1.4/30"), ["1.168.192.in-addr.arpa."]);
        assert_eq!(
            zones("10.16.2.0/23"),
            ["2.16.10.in-addr.arpa.", "3.16.10.in-addr.arpa."]
        );
        let twenty = zones("10.16.16.0/20");
        assert_eq!(twenty.len(), 16);
        assert_eq!(twenty[0], "16.16.10.in-addr.arpa.");
        assert_eq!(twenty[15], "31.16.10.in-addr.arpa.");
        let twelve = zones("172.16.0.0/12");
        assert_eq!(twelve.len(), 16);
        assert_eq!(twelve[0], "16.172.in-addr.arpa.");
        assert_eq!(twelve[15], "31.172.in-addr.arpa.");
        assert_eq!(zones("10.0.0.0/17").len(), 128);
        assert_eq!(zones("0.0.0.0/0"), ["in-addr.arpa."]);
        assert_eq!(
            reverse_name(Ipv4Addr::new(192, 168, 1, 7)).to_string(),
            "7.1.168.192.in-addr.arpa."
        );
    }

    #[test]
    fn non_octet_prefix_zones_serve_their_addresses() {
        let cluster = cluster_with(
            "10.16.16.0/20",
            "10.16.16.1",
            "",
            "  - {mac: 52:54:00:99:00:01, hostname: cp1, ip: 10.16.31.200, roles: [control-plane]}\n",
        );
        let zone = Zone::from_cluster(&cluster).expect("zone");
        assert_eq!(zone.origins().len(), 17);
        assert_eq!(
            data(&zone, "200.31.16.10.in-addr.arpa.", RecordType::PTR),
            ["cp1.t.test."]
        );
        assert_eq!(
            data(&zone, "1.16.16.10.in-addr.arpa.", RecordType::PTR),
            ["slipway.t.test."]
        );
        // Each /24 zone has its own apex.
        assert_eq!(
            data(&zone, "20.16.10.in-addr.arpa.", RecordType::NS),
            ["slipway.t.test."]
        );
        // Outside the /20: not ours.
        assert_eq!(
            zone.lookup(&name("1.32.16.10.in-addr.arpa."), RecordType::PTR),
            Answer::NotAuthoritative
        );
    }

    #[test]
    fn empty_non_terminals_in_a_slash_16_reverse_zone() {
        let cluster = cluster_with(
            "10.99.0.0/16",
            "10.99.0.1",
            "",
            "  - {mac: 52:54:00:99:00:01, hostname: cp1, ip: 10.99.5.11, roles: [control-plane]}\n",
        );
        let mut zone = Zone::from_cluster(&cluster).expect("zone");
        assert_eq!(zone.origins()[1].to_string(), "99.10.in-addr.arpa.");
        assert_eq!(
            data(&zone, "11.5.99.10.in-addr.arpa.", RecordType::PTR),
            ["cp1.t.test."]
        );
        // 5.99.10.in-addr.arpa exists (a name below it does) but has no records.
        assert!(matches!(
            zone.lookup(&name("5.99.10.in-addr.arpa."), RecordType::PTR),
            Answer::NoData { .. }
        ));
        assert!(is_nxdomain(&zone, "6.99.10.in-addr.arpa."));
        zone.set_dynamic("d", Ipv4Addr::new(10, 99, 6, 1))
            .expect("set");
        assert!(matches!(
            zone.lookup(&name("6.99.10.in-addr.arpa."), RecordType::PTR),
            Answer::NoData { .. }
        ));
        zone.remove_dynamic("d");
        assert!(is_nxdomain(&zone, "6.99.10.in-addr.arpa."));
    }

    #[test]
    fn dynamic_names_come_and_go() {
        let mut zone = Zone::from_cluster(&example("lab.yaml")).expect("zone");
        let address = Ipv4Addr::new(10, 99, 0, 200);
        assert!(is_nxdomain(&zone, "new.lab.slipway.test."));
        assert_eq!(zone.serial(), 1);

        assert!(zone.set_dynamic("New", address).expect("set"));
        assert_eq!(zone.serial(), 2);
        assert_eq!(
            data(&zone, "new.lab.slipway.test.", RecordType::A),
            ["10.99.0.200"]
        );
        assert_eq!(
            ttl(&zone, "new.lab.slipway.test.", RecordType::A),
            DYNAMIC_TTL
        );
        assert_eq!(
            data(&zone, "200.0.99.10.in-addr.arpa.", RecordType::PTR),
            ["new.lab.slipway.test."]
        );
        assert_eq!(
            zone.dynamic().collect::<Vec<_>>(),
            [("new", Ipv4Addr::new(10, 99, 0, 200))]
        );
        // The SOA serial follows.
        assert!(data(&zone, "lab.slipway.test.", RecordType::SOA)[0].contains(" 2 3600 "));

        // Same again: no change, no new serial.
        assert!(!zone.set_dynamic("new", address).expect("set"));
        assert_eq!(zone.serial(), 2);

        // Moving the name removes the old PTR.
        let moved = Ipv4Addr::new(10, 99, 0, 201);
        assert!(zone.set_dynamic("new", moved).expect("move"));
        assert!(is_nxdomain(&zone, "200.0.99.10.in-addr.arpa."));
        assert_eq!(
            data(&zone, "new.lab.slipway.test.", RecordType::A),
            ["10.99.0.201"]
        );

        // Another name taking the address takes it over.
        assert!(zone.set_dynamic("other", moved).expect("take over"));
        assert!(is_nxdomain(&zone, "new.lab.slipway.test."));
        assert_eq!(
            data(&zone, "201.0.99.10.in-addr.arpa.", RecordType::PTR),
            ["other.lab.slipway.test."]
        );

        assert_eq!(zone.remove_dynamic("OTHER"), Some(moved));
        assert!(is_nxdomain(&zone, "other.lab.slipway.test."));
        assert!(is_nxdomain(&zone, "201.0.99.10.in-addr.arpa."));
        assert_eq!(zone.remove_dynamic("other"), None);
        assert_eq!(zone.dynamic().count(), 0);
        // The static data is untouched.
        assert_eq!(zone.records().len(), 13);
    }

    #[test]
    fn dynamic_names_cannot_shadow_static_ones() {
        let mut zone = Zone::from_cluster(&example("lab.yaml")).expect("zone");
        let free = Ipv4Addr::new(10, 99, 0, 200);
        for taken in ["cp1", "CP1", "api", "slipway"] {
            assert!(
                matches!(zone.set_dynamic(taken, free), Err(Error::StaticName { .. })),
                "{taken}"
            );
        }
        assert!(matches!(
            zone.set_dynamic("new", Ipv4Addr::new(10, 99, 0, 11)),
            Err(Error::StaticAddress { .. })
        ));
        assert!(matches!(
            zone.set_dynamic("new", Ipv4Addr::new(10, 99, 0, 1)),
            Err(Error::StaticAddress { .. })
        ));
        assert!(matches!(
            zone.set_dynamic("new", Ipv4Addr::new(10, 98, 0, 5)),
            Err(Error::OutsideSubnet { .. })
        ));
        for bad in [
            "",
            "a.b",
            "-a",
            "a-",
            "under_score",
            "space here",
            "é",
            "x\0",
            &"a".repeat(64),
        ] {
            assert!(
                matches!(
                    zone.set_dynamic(bad, free),
                    Err(Error::InvalidHostname { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(
            zone.set_dynamic(&"a".repeat(63), free)
                .expect("63 bytes is a label")
        );
        assert_eq!(zone.remove_dynamic("cp1"), None);
        assert_eq!(
            data(&zone, "cp1.lab.slipway.test.", RecordType::A),
            ["10.99.0.11"]
        );
        assert_eq!(zone.serial(), 2);
    }
}
