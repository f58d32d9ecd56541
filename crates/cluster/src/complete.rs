//! Completion: the ONE place that fills defaults, makes derivations and checks how
//! fields relate. Input: a decoded [`Spec`]; output: an explicit [`Cluster`].
//!
//! Defaults (all here, nowhere else):
//! - `cluster.domain`: `<name>.internal`
//! - `network.server`: the interface's address inside `network.subnet` (asks [`Host`])
//! - `network.dns`: `[server]`; `network.http_port`: 8080
//! - `network.dhcp`: authoritative, no pool, 1h leases, unknown machines ignored
//! - `os`: flatcar, stable, amd64, assets in `/var/lib/slipway/assets`, Ignition for
//!   Flatcar, cloud-config for CoreOS, `/dev/sda`
//! - `kubernetes`: endpoint = first control-plane node on 6443, `api_name` `api`, pods
//!   10.244.0.0/16, services 10.96.0.0/12, cluster DNS = 10th service address, flannel,
//!   registry.k8s.io
//! - `access.user`: core
//! - a node: hostname from the MAC (`52-54-00-99-00-01`, as the seeds did), roles
//!   `[worker]`, an address from the subnet picked by a hash of the MAC (stable when
//!   other nodes come and go), disk and kernel args from its profile or the OS; when no
//!   node says `etcd`, every control-plane node runs etcd (stacked, as kubeadm does).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;

use crate::decode::{Spanned, did_you_mean};
use crate::diagnostic::{Diagnostic, Diagnostics, Span};
use crate::model::*;
use crate::spec::{KubernetesSpec, NodeSpec, ProfileSpec, Spec};
use crate::types::{LeaseTime, MacAddr, is_dns_label, is_dns_name};

/// What completion may ask of the machine it runs on.
pub trait Host {
    /// The IPv4 addresses (with prefix) of interface `name`, or `None` if there is no
    /// such interface.
    fn interface_ipv4(&self, name: &str) -> Option<Vec<Ipv4Net>>;
}

/// A [`Host`] with no interfaces, for checking files away from the provisioning host.
pub struct NoHost;

impl Host for NoHost {
    fn interface_ipv4(&self, _: &str) -> Option<Vec<Ipv4Net>> {
        None
    }
}

/// Where the default OS assets live.
pub const DEFAULT_ASSETS: &str = "/var/lib/slipway/assets";

/// Completes `spec`; relative paths are taken from `base_dir` (the file's directory).
/// Returns `None` when an essential part is missing or invalid (all problems are in
/// `d`); a `Some` may still come with errors in `d`, and is only valid when `d` has
/// none.
pub fn complete(
    spec: &Spec,
    base_dir: &Path,
    host: &dyn Host,
    d: &mut Diagnostics,
) -> Option<Cluster> {
    let cluster = cluster_info(spec, d);
    let network = network(spec, host, d);
    let os = os(spec, base_dir, d);
    let access = access(spec, d);
    let profiles = profiles(&spec.profiles, d);
    let network = network?;
    let k = KubeBase::new(spec, d);
    let nodes = nodes(spec, &network, &os, &profiles, &k, d);
    check_fleet(spec, &nodes, &profiles, d);
    let kubernetes = kubernetes(spec, &network, &nodes, k, base_dir, d);
    if let (Some(o), Some(kube), Some(flag)) = (&os, &kubernetes, &spec.kubernetes.serve_images)
        && kube.images.serve
        && let AssetSource::Remote(url) = &o.assets
    {
        d.push(
            Diagnostic::error(
                flag.span,
                format!("`kubernetes.serve_images` needs a local asset mirror (`os.assets` is {url}): the images are kept under it"),
            )
            .with_help("set `os.assets` to a directory, or remove `serve_images`"),
        );
    }
    let upgrade = os
        .as_ref()
        .map(|o| crate::upgrade::complete(&spec.upgrade, o.distro, &o.channel, base_dir, d));
    Some(Cluster {
        cluster: cluster?,
        network,
        os: os?,
        kubernetes: kubernetes?,
        access,
        profiles: profiles.into_iter().map(|(p, _)| p).collect(),
        upgrade: upgrade?,
        nodes,
        index: Default::default(),
    })
}

fn required<'a, T>(
    v: &'a Option<Spanned<T>>,
    section: Span,
    given: &[String],
    what: &str,
    d: &mut Diagnostics,
) -> Option<&'a Spanned<T>> {
    let key = what.rsplit('.').next().unwrap_or(what);
    if v.is_none() && section != Span::FILE && !given.iter().any(|g| g == key) {
        d.error(section, format!("`{what}` is required"));
    }
    v.as_ref()
}

fn cluster_info(spec: &Spec, d: &mut Diagnostics) -> Option<ClusterInfo> {
    let c = &spec.cluster;
    let name = required(&c.name, c.span, &c.given, "cluster.name", d)?;
    if !is_dns_label(&name.value) {
        d.push(
            Diagnostic::error(
                name.span,
                format!("cluster name `{}` is not a valid DNS label", name.value),
            )
            .with_help("use 1-63 lower-case letters, digits and `-`"),
        );
    }
    let domain = match &c.domain {
        Some(dom) => {
            let v = dom.value.trim_end_matches('.').to_string();
            if !is_dns_name(&v) {
                d.error(
                    dom.span,
                    format!("domain `{}` is not a valid DNS name", dom.value),
                );
            }
            v
        }
        None => format!("{}.internal", name.value),
    };
    Some(ClusterInfo {
        name: name.value.clone(),
        domain,
    })
}

/// First and last usable host addresses of `net`.
fn host_range(net: Ipv4Net) -> (u32, u32) {
    (u32::from(net.network()) + 1, u32::from(net.broadcast()) - 1)
}

fn usable(net: Ipv4Net, ip: Ipv4Addr) -> bool {
    let (lo, hi) = host_range(net);
    (lo..=hi).contains(&u32::from(ip))
}

/// Checks that `ip` is a usable host address of `net`; reports at `span` otherwise.
fn in_subnet(net: Ipv4Net, ip: &Spanned<Ipv4Addr>, what: &str, d: &mut Diagnostics) -> bool {
    if !net.contains(&ip.value) {
        d.error(
            ip.span,
            format!("{what} {} is outside the subnet {net}", ip.value),
        );
        false
    } else if ip.value == net.network() || ip.value == net.broadcast() {
        let which = if ip.value == net.network() {
            "network"
        } else {
            "broadcast"
        };
        d.error(
            ip.span,
            format!("{what} {} is the subnet's {which} address", ip.value),
        );
        false
    } else {
        true
    }
}

fn network(spec: &Spec, host: &dyn Host, d: &mut Diagnostics) -> Option<Network> {
    let n = &spec.network;
    let interface =
        required(&n.interface, n.span, &n.given, "network.interface", d).map(|s| s.value.clone());
    let subnet = required(&n.subnet, n.span, &n.given, "network.subnet", d)?;
    let net = subnet.value;
    if net.prefix_len() > 30 {
        d.error(
            subnet.span,
            format!("subnet {net} is too small for a cluster (at most /30)"),
        );
        return None;
    }
    let interface = interface?;
    let server = match &n.server {
        Some(s) => {
            in_subnet(net, s, "server address", d);
            s.value
        }
        None => {
            match host.interface_ipv4(&interface) {
                None => {
                    d.push(
                    Diagnostic::error(n.interface.as_ref().map_or(n.span, |i| i.span), format!("interface `{interface}` does not exist on this machine, so slipway's address cannot be derived from it"))
                        .with_help("set `network.server`, or check the file on the provisioning host"),
                );
                    return None;
                }
                Some(addrs) => match addrs.iter().find(|a| net.contains(&a.addr())) {
                    Some(a) => a.addr(),
                    None => {
                        d.push(
                        Diagnostic::error(n.interface.as_ref().map_or(n.span, |i| i.span), format!("interface `{interface}` has no address in {net}"))
                            .with_help("give the interface an address in the subnet, or set `network.server`"),
                    );
                        return None;
                    }
                },
            }
        }
    };
    let gateway = n.gateway.as_ref().map(|g| {
        in_subnet(net, g, "gateway", d);
        g.value
    });
    for ntp in &n.ntp {
        if ntp.value.parse::<IpAddr>().is_err() && !is_dns_name(&ntp.value.to_ascii_lowercase()) {
            d.error(
                ntp.span,
                format!(
                    "NTP server `{}` is not an address or a host name",
                    ntp.value
                ),
            );
        }
    }
    let mode = n
        .dhcp_mode
        .as_ref()
        .map_or(DhcpMode::Authoritative, |m| m.value);
    let unknown = n
        .unknown_machines
        .as_ref()
        .map_or(UnknownPolicy::Ignore, |u| u.value);
    if let Some(pool) = &n.pool {
        let p = pool.value;
        if !net.contains(&p.first) || !net.contains(&p.last) {
            d.error(
                pool.span,
                format!("DHCP pool {p} is not inside the subnet {net}"),
            );
        } else if !usable(net, p.first) || !usable(net, p.last) {
            d.error(
                pool.span,
                format!("DHCP pool {p} includes the subnet's network or broadcast address"),
            );
        }
        for (ip, what) in [
            (Some(server), "slipway's own address"),
            (gateway, "the gateway"),
        ] {
            if let Some(ip) = ip.filter(|ip| p.contains(*ip)) {
                d.error(pool.span, format!("DHCP pool {p} contains {what} {ip}"));
            }
        }
        if mode != DhcpMode::Authoritative {
            let m = if mode == DhcpMode::Proxy {
                "proxy"
            } else {
                "off"
            };
            d.warning(
                pool.span,
                format!("the DHCP pool is unused when `dhcp.mode` is `{m}`"),
            );
        }
    }
    if let Some(u) = &n.unknown_machines
        && u.value == UnknownPolicy::Discover
        && mode == DhcpMode::Authoritative
        && n.pool.is_none()
    {
        d.push(
            Diagnostic::error(
                u.span,
                "`unknown_machines: discover` needs a DHCP pool to give them addresses",
            )
            .with_help("add `pool: FIRST-LAST` to `network.dhcp`"),
        );
    }
    for relay in &n.relays {
        if relay.value == server {
            d.error(
                relay.span,
                format!("DHCP relay {} is slipway's own address", relay.value),
            );
        } else if mode == DhcpMode::Off {
            d.warning(
                relay.span,
                "DHCP relays are unused when `dhcp.mode` is `off`",
            );
        }
    }
    Some(Network {
        interface,
        server,
        subnet: net,
        gateway,
        dns: n
            .dns
            .as_ref()
            .map_or_else(|| vec![server], |v| v.iter().map(|s| s.value).collect()),
        upstream_dns: n.upstream_dns.iter().map(|s| s.value).collect(),
        dns_clients: n.dns_clients.iter().map(|s| s.value).collect(),
        dns_rate_limit: n.dns_rate_limit.as_ref().map_or(1000, |r| r.value),
        ntp: n.ntp.iter().map(|s| s.value.clone()).collect(),
        http_port: n.http_port.as_ref().map_or(8080, |p| p.value),
        dhcp: Dhcp {
            mode,
            pool: n.pool.as_ref().map(|p| p.value),
            lease_time: n
                .lease_time
                .as_ref()
                .map_or(LeaseTime::Seconds(3600), |l| l.value),
            unknown_machines: unknown,
            relays: n.relays.iter().map(|r| r.value).collect(),
            new_clients_per_second: n.new_clients_per_second.as_ref().map_or(1000, |r| r.value),
        },
    })
}

fn check_disk(disk: &Spanned<String>, d: &mut Diagnostics) {
    let v = &disk.value;
    let ok = v.starts_with("/dev/")
        && v.len() > 5
        && !v.split('/').any(|c| c == ".." || c == ".")
        && !v.contains(|c: char| c.is_whitespace() || c.is_control());
    if !ok {
        d.push(
            Diagnostic::error(
                disk.span,
                format!("install disk `{v}` is not an absolute /dev path"),
            )
            .with_help("e.g. /dev/sda, /dev/nvme0n1 or /dev/disk/by-id/..."),
        );
    }
}

fn is_version(v: &str) -> bool {
    let parts: Vec<&str> = v.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let path = Path::new(p);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

fn os(spec: &Spec, base: &Path, d: &mut Diagnostics) -> Option<Os> {
    let o = &spec.os;
    let distro = o.distro.as_ref().map_or(Distro::Flatcar, |x| x.value);
    let channels: &[&str] = match distro {
        Distro::Flatcar => &["stable", "beta", "alpha", "lts"],
        Distro::Coreos => &["stable", "beta", "alpha"],
        Distro::Generic => &[],
    };
    let channel = match &o.channel {
        Some(c) if !channels.is_empty() && !channels.contains(&c.value.as_str()) => {
            d.push(
                Diagnostic::error(
                    c.span,
                    format!("unknown {} channel `{}`", distro_name(distro), c.value),
                )
                .with_help(format!("one of: {}", channels.join(", "))),
            );
            c.value.clone()
        }
        Some(c) => c.value.clone(),
        None => "stable".into(),
    };
    let version = match (&o.version, distro) {
        (Some(v), Distro::Generic) => v.value.clone(),
        (Some(v), _) => {
            if v.value != "current" && !is_version(&v.value) {
                d.error(
                    v.span,
                    format!(
                        "{} version `{}` is not a release number like 4081.2.0 (or `current`)",
                        distro_name(distro),
                        v.value
                    ),
                );
            }
            v.value.clone()
        }
        (None, Distro::Generic) => "current".into(),
        (None, _) => {
            if !o.given.iter().any(|g| g == "version") {
                d.error(
                    o.span,
                    format!("`os.version` is required for {}", distro_name(distro)),
                );
            }
            String::new()
        }
    };
    let assets = match &o.assets {
        None => AssetSource::Mirror(DEFAULT_ASSETS.into()),
        Some(a) if a.value.starts_with("http://") || a.value.starts_with("https://") => {
            if a.value.contains(|c: char| c.is_whitespace()) {
                d.error(a.span, format!("assets URL `{}` contains spaces", a.value));
            }
            AssetSource::Remote(a.value.trim_end_matches('/').to_string())
        }
        Some(a) if a.value.contains("://") => {
            d.push(
                Diagnostic::error(
                    a.span,
                    format!(
                        "assets `{}`: only http:// and https:// URLs are supported",
                        a.value
                    ),
                )
                .with_help("or give a local directory for slipway to serve"),
            );
            AssetSource::Remote(a.value.clone())
        }
        Some(a) => AssetSource::Mirror(resolve(base, &a.value)),
    };
    let config_format = match (&o.config_format, distro) {
        (None, Distro::Flatcar) => ConfigFormat::Ignition,
        (None, Distro::Coreos) => ConfigFormat::CloudConfig,
        (None, Distro::Generic) => ConfigFormat::Template,
        (Some(f), Distro::Generic) if f.value != ConfigFormat::Template => {
            d.error(f.span, "a generic OS takes `config_format: template`");
            f.value
        }
        (Some(f), Distro::Flatcar | Distro::Coreos) if f.value == ConfigFormat::Template => {
            d.error(
                f.span,
                format!(
                    "{} takes `ignition` or `cloud-config`, not `template`",
                    distro_name(distro)
                ),
            );
            f.value
        }
        (Some(f), _) => f.value,
    };
    if let Some(disk) = &o.install_disk {
        check_disk(disk, d);
    }
    let generic = match (&o.generic, distro) {
        (Some(g), Distro::Generic) => Some(GenericBoot {
            kernel: g
                .kernel
                .as_ref()
                .map(|k| k.value.clone())
                .unwrap_or_default(),
            initrds: g.initrds.clone(),
            template: g.template.as_ref().map(|t| resolve(base, &t.value)),
        }),
        (None, Distro::Generic) => {
            d.push(
                Diagnostic::error(
                    o.distro.as_ref().map_or(o.span, |x| x.span),
                    "`distro: generic` needs an `os.generic` section",
                )
                .with_help("give `generic: {kernel: ..., initrds: [...]}`"),
            );
            None
        }
        (Some(_), _) => {
            let at = o.generic_span.unwrap_or(o.span);
            d.error(
                at,
                format!(
                    "`os.generic` is only for `distro: generic`, not {}",
                    distro_name(distro)
                ),
            );
            None
        }
        (None, _) => None,
    };
    Some(Os {
        distro,
        channel,
        version,
        arch: o.arch.as_ref().map_or(Arch::Amd64, |a| a.value),
        assets,
        config_format,
        install_disk: o
            .install_disk
            .as_ref()
            .map_or_else(|| "/dev/sda".into(), |x| x.value.clone()),
        kernel_args: o.kernel_args.clone(),
        install_timeout: o
            .install_timeout
            .as_ref()
            .map_or(LeaseTime::Seconds(1800), |t| t.value),
        generic,
        mirror: os_mirror(o.mirror.as_ref(), base, d),
    })
}

/// `os.mirror`: the base URL must be http(s); each trusted key needs a file and a
/// fingerprint (40 hex digits for a v4 key, 64 for v6; spaces are ignored).
fn os_mirror(m: Option<&crate::spec::MirrorSpec>, base: &Path, d: &mut Diagnostics) -> OsMirror {
    let Some(m) = m else {
        return OsMirror::default();
    };
    let base_url = m
        .base_url
        .as_ref()
        .map(|u| http_url(u, "`os.mirror.base_url`", d));
    let mut trusted_keys = Vec::new();
    for k in &m.trusted_keys {
        let (Some(file), Some(fp)) = (&k.file, &k.fingerprint) else {
            d.push(
                Diagnostic::error(k.span, "a trusted key needs `file` and `fingerprint`")
                    .with_help("e.g. `{file: keys/release.asc, fingerprint: F88CFEDE...}`"),
            );
            continue;
        };
        let fingerprint: String = fp
            .value
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_uppercase();
        if !(fingerprint.len() == 40 || fingerprint.len() == 64)
            || !fingerprint.chars().all(|c| c.is_ascii_hexdigit())
        {
            d.push(
                Diagnostic::error(
                    fp.span,
                    format!("`{}` is not an OpenPGP fingerprint", fp.value),
                )
                .with_help("40 hex digits (a v4 key) or 64 (v6), as `gpg --fingerprint` prints"),
            );
            continue;
        }
        trusted_keys.push(TrustedKey {
            file: resolve(base, &file.value),
            fingerprint,
        });
    }
    let ipxe = m.ipxe.as_ref().and_then(|p| {
        let (Some(url), Some(sum)) = (&p.url, &p.sha256) else {
            d.push(
                Diagnostic::error(p.span, "`os.mirror.ipxe` needs `url` and `sha256`").with_help(
                    "the Debian `ipxe` package's URL and the SHA-256 its Packages index lists",
                ),
            );
            return None;
        };
        let url = http_url(url, "`os.mirror.ipxe.url`", d);
        let sha256 = sum.value.to_ascii_lowercase();
        if sha256.len() != 64 || !sha256.chars().all(|c| c.is_ascii_hexdigit()) {
            d.error(
                sum.span,
                format!("`{}` is not a SHA-256 (64 hex digits)", sum.value),
            );
            return None;
        }
        Some(IpxePackage { url, sha256 })
    });
    OsMirror {
        base_url,
        trusted_keys,
        ipxe,
    }
}

/// An http(s) URL without a trailing slash; anything else is reported.
fn http_url(u: &Spanned<String>, what: &str, d: &mut Diagnostics) -> String {
    let ok = (u.value.starts_with("http://") || u.value.starts_with("https://"))
        && !u.value.contains(|c: char| c.is_whitespace());
    if !ok {
        d.error(
            u.span,
            format!("{what}: `{}` is not an http:// or https:// URL", u.value),
        );
    }
    u.value.trim_end_matches('/').to_string()
}

fn distro_name(d: Distro) -> &'static str {
    match d {
        Distro::Flatcar => "Flatcar",
        Distro::Coreos => "CoreOS",
        Distro::Generic => "the generic OS",
    }
}

const SSH_KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

fn access(spec: &Spec, d: &mut Diagnostics) -> Access {
    let a = &spec.access;
    let user = match &a.user {
        Some(u) => {
            let v = &u.value;
            let ok = !v.is_empty()
                && v.len() <= 32
                && v.bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
                && v.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            if !ok {
                d.error(u.span, format!("user name `{v}` is not a valid login name"));
            }
            v.clone()
        }
        None => "core".into(),
    };
    for key in &a.ssh_authorized_keys {
        let mut parts = key.value.split_whitespace();
        let (kind, body) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let body_ok = body.len() >= 16
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b));
        if !SSH_KEY_TYPES.contains(&kind) || !body_ok {
            let shown: String = key.value.chars().take(24).collect();
            d.push(
                Diagnostic::error(key.span, format!("`{shown}...` is not an SSH public key"))
                    .with_help(
                        "paste a line of ~/.ssh/id_ed25519.pub: `ssh-ed25519 AAAA... comment`",
                    ),
            );
        }
    }
    if let Some(h) = &a.password_hash {
        let v = &h.value;
        let id = v
            .strip_prefix('$')
            .and_then(|r| r.split_once('$'))
            .map(|(id, _)| id);
        match id {
            Some("1") => d.warning(
                h.span,
                "MD5 password hashes ($1$) are weak; use `mkpasswd -m yescrypt`",
            ),
            Some("5" | "6" | "y" | "gy" | "7" | "2a" | "2b" | "2y") => {}
            _ => d.push(
                Diagnostic::error(
                    h.span,
                    "`password_hash` is not a crypt(3) hash (it looks like a plain password)",
                )
                .with_help("make one with `mkpasswd -m yescrypt` or `openssl passwd -6`"),
            ),
        }
    }
    if a.ssh_authorized_keys.is_empty() && a.password_hash.is_none() {
        d.push(
            Diagnostic::warning(Span::FILE, "no `access.ssh_authorized_keys` and no `password_hash`: nobody can log in to the machines")
                .with_help("add your public key under `access.ssh_authorized_keys`"),
        );
    }
    Access {
        user,
        ssh_authorized_keys: a
            .ssh_authorized_keys
            .iter()
            .map(|k| k.value.trim().to_string())
            .collect(),
        password_hash: a.password_hash.as_ref().map(|h| h.value.clone()),
    }
}

/// Whether `k` is a valid Kubernetes label key (`[prefix/]name`).
pub fn is_label_key(k: &str) -> bool {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    prefix.is_none_or(is_dns_name) && !name.is_empty() && is_label_value(name)
}

/// Whether `v` is a valid Kubernetes label value (may be empty).
pub fn is_label_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            && v.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric)
            && v.as_bytes().last().is_some_and(u8::is_ascii_alphanumeric))
}

fn labels(
    items: &[(crate::yaml::Key, Spanned<String>)],
    d: &mut Diagnostics,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v) in items {
        if !is_label_key(&k.text) {
            d.error(
                k.span,
                format!("`{}` is not a valid Kubernetes label key", k.text),
            );
        }
        if !is_label_value(&v.value) {
            d.error(
                v.span,
                format!("`{}` is not a valid Kubernetes label value", v.value),
            );
        }
        out.insert(k.text.clone(), v.value.clone());
    }
    out
}

fn profiles(specs: &[ProfileSpec], d: &mut Diagnostics) -> Vec<(Profile, Span)> {
    let mut seen: HashMap<&str, Span> = HashMap::new();
    let mut out = Vec::new();
    for p in specs {
        let Some(name) = &p.name else { continue };
        if !is_dns_label(&name.value) {
            d.error(
                name.span,
                format!("profile name `{}` is not a valid DNS label", name.value),
            );
        }
        if let Some(first) = seen.insert(&name.value, name.span) {
            d.error(
                name.span,
                format!(
                    "duplicate profile `{}` (first on line {})",
                    name.value, first.line
                ),
            );
            continue;
        }
        if let Some(disk) = &p.install_disk {
            check_disk(disk, d);
        }
        if let Some(h) = &p.hostname
            && !is_dns_label(&h.value)
        {
            d.error(
                h.span,
                format!("hostname `{}` is not a valid DNS label", h.value),
            );
        }
        let selector = Selector {
            role: p.role.as_ref().map(|r| r.value),
            labels: labels(&p.labels, d),
            mac: p.mac.as_ref().map(|m| m.value),
            hostname: p.hostname.as_ref().map(|h| h.value.clone()),
        };
        out.push((
            Profile {
                name: name.value.clone(),
                selector,
                install_disk: p.install_disk.as_ref().map(|x| x.value.clone()),
                kernel_args: p.kernel_args.clone(),
                boot_files: BootFiles {
                    bios: p.boot_files.bios.as_ref().map(|s| s.value.clone()),
                    uefi: p.boot_files.uefi.as_ref().map(|s| s.value.clone()),
                },
                metadata: p.metadata.clone(),
            },
            name.span,
        ));
    }
    out
}

/// What nodes need from `kubernetes:` before the endpoint can be resolved.
struct KubeBase {
    api_name: String,
    vip: Option<Ipv4Addr>,
}

impl KubeBase {
    fn new(spec: &Spec, d: &mut Diagnostics) -> Self {
        let k = &spec.kubernetes;
        let api_name = match &k.api_name {
            Some(a) => {
                if !is_dns_label(&a.value) {
                    d.error(
                        a.span,
                        format!("`api_name` `{}` is not a valid DNS label", a.value),
                    );
                }
                a.value.clone()
            }
            None => "api".into(),
        };
        let vip = k
            .control_plane_endpoint
            .as_ref()
            .and_then(|e| e.value.0.parse().ok());
        KubeBase { api_name, vip }
    }
}

/// FNV-1a: a stable hash, the same in every build and version.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn nodes(
    spec: &Spec,
    net: &Network,
    os: &Option<Os>,
    profiles: &[(Profile, Span)],
    k: &KubeBase,
    d: &mut Diagnostics,
) -> Vec<Node> {
    let subnet = net.subnet;
    let mut macs: HashMap<MacAddr, Span> = HashMap::new();
    let mut hostnames: HashMap<String, Span> = HashMap::new();
    // Addresses nodes may not take, with what holds them.
    let mut reserved: HashMap<Ipv4Addr, String> = HashMap::new();
    reserved.insert(net.server, "slipway's own address".into());
    if let Some(g) = net.gateway {
        reserved.insert(g, "the gateway".into());
    }
    let mut out: Vec<(Node, &NodeSpec)> = Vec::with_capacity(spec.nodes.len());
    for n in &spec.nodes {
        let Some(mac) = &n.mac else { continue };
        if let Some(first) = macs.get(&mac.value) {
            d.error(
                mac.span,
                format!("duplicate MAC {} (first on line {})", mac.value, first.line),
            );
        } else {
            macs.insert(mac.value, mac.span);
        }
        let hostname = match &n.hostname {
            Some(h) => {
                if !is_dns_label(&h.value) {
                    d.push(
                        Diagnostic::error(h.span, format!("hostname `{}` is not a valid DNS label", h.value))
                            .with_help("use 1-63 lower-case letters, digits and `-`, not starting or ending with `-`"),
                    );
                }
                h.value.clone()
            }
            None => mac.value.dashed(),
        };
        let at = n.hostname.as_ref().map_or(mac.span, |h| h.span);
        if let Some(first) = hostnames.get(&hostname) {
            d.error(
                at,
                format!(
                    "duplicate hostname `{hostname}` (first on line {})",
                    first.line
                ),
            );
        } else {
            hostnames.insert(hostname.clone(), at);
        }
        if hostname == k.api_name {
            d.error(at, format!("hostname `{hostname}` is taken by the API endpoint name (`kubernetes.api_name`)"));
        }
        let mut roles: Vec<Role> = match &n.roles {
            Some(r) if r.is_empty() => {
                if !n.roles_invalid {
                    d.error(at, format!("node `{hostname}` has an empty `roles` list"));
                }
                vec![]
            }
            Some(r) => r.iter().map(|r| r.value).collect(),
            None => vec![Role::Worker],
        };
        roles.sort();
        roles.dedup();
        let labels = labels(&n.labels, d);
        let profile = pick_profile(n, mac.value, &hostname, &roles, &labels, profiles, d);
        let disk = match (
            &n.install_disk,
            profile.and_then(|p| p.install_disk.clone()),
        ) {
            (Some(x), _) => {
                check_disk(x, d);
                x.value.clone()
            }
            (None, Some(x)) => x,
            (None, None) => os
                .as_ref()
                .map_or_else(|| "/dev/sda".into(), |o| o.install_disk.clone()),
        };
        let kernel_args = n
            .kernel_args
            .clone()
            .or_else(|| profile.and_then(|p| p.kernel_args.clone()))
            .unwrap_or_default();
        let inherited = profile.map(|p| p.boot_files.clone()).unwrap_or_default();
        let boot_files = BootFiles {
            bios: n
                .boot_files
                .bios
                .as_ref()
                .map(|s| s.value.clone())
                .or(inherited.bios),
            uefi: n
                .boot_files
                .uefi
                .as_ref()
                .map(|s| s.value.clone())
                .or(inherited.uefi),
        };
        let mut metadata = profile.map(|p| p.metadata.clone()).unwrap_or_default();
        metadata.extend(n.metadata.clone());
        let bmc = n.bmc.as_ref().map(|b| Bmc {
            driver: b.driver.value,
            address: b.address.value.clone(),
            port: b.port.as_ref().map_or(
                match b.driver.value {
                    BmcDriver::Ipmi => 623,
                    BmcDriver::Redfish => 443,
                },
                |p| p.value,
            ),
            user: b.user.value.clone(),
            password: b.password.clone(),
            cipher_suite: match b.driver.value {
                BmcDriver::Ipmi => Some(b.cipher_suite.as_ref().map_or(17, |c| c.value)),
                BmcDriver::Redfish => None,
            },
            tls: b.tls.clone(),
            system: b.system.as_ref().map(|s| s.value.clone()),
            session_auth: b.session_auth,
        });
        let ip = match &n.ip {
            Some(ip) => {
                if in_subnet(subnet, ip, "address", d) {
                    if let Some(holder) = reserved.get(&ip.value) {
                        d.error(
                            ip.span,
                            format!("address {} is already used by {holder}", ip.value),
                        );
                    } else if net.dhcp.pool.is_some_and(|p| p.contains(ip.value)) {
                        d.push(
                            Diagnostic::error(
                                ip.span,
                                format!(
                                    "static address {} is inside the DHCP pool {}",
                                    ip.value,
                                    net.dhcp.pool.map(|p| p.to_string()).unwrap_or_default()
                                ),
                            )
                            .with_help("static addresses must be outside `network.dhcp.pool`"),
                        );
                    }
                    reserved
                        .entry(ip.value)
                        .or_insert_with(|| format!("node `{hostname}` (line {})", ip.span.line));
                }
                ip.value
            }
            None => Ipv4Addr::UNSPECIFIED,
        };
        let node = Node {
            mac: mac.value,
            hostname,
            ip,
            roles,
            install_disk: disk,
            kernel_args,
            boot_files,
            labels,
            taints: n.taints.clone(),
            profile: profile.map(|p| p.name.clone()),
            bmc,
            metadata,
        };
        out.push((node, n));
    }
    // A VIP endpoint is reserved too, unless it is a node's own address.
    if let Some(vip) = k.vip {
        reserved
            .entry(vip)
            .or_insert_with(|| "the control-plane endpoint".into());
    }
    assign_addresses(&mut out, net, &reserved, d);
    // Stacked etcd when nobody says otherwise.
    if !out.iter().any(|(n, _)| n.has_role(Role::Etcd)) {
        for (n, _) in &mut out {
            if n.has_role(Role::ControlPlane) {
                n.roles.push(Role::Etcd);
                n.roles.sort();
            }
        }
    }
    out.into_iter().map(|(n, _)| n).collect()
}

fn assign_addresses(
    nodes: &mut [(Node, &NodeSpec)],
    net: &Network,
    reserved: &HashMap<Ipv4Addr, String>,
    d: &mut Diagnostics,
) {
    let (lo, hi) = host_range(net.subnet);
    let size = u64::from(hi - lo) + 1;
    let pool = net.dhcp.pool;
    let mut taken: HashSet<u32> = reserved.keys().map(|ip| u32::from(*ip)).collect();
    let mut order: Vec<usize> = (0..nodes.len())
        .filter(|i| nodes[*i].1.ip.is_none())
        .collect();
    order.sort_by_key(|i| nodes[*i].0.mac);
    let free = size.saturating_sub(taken.len() as u64 + pool.map_or(0, |p| p.len()));
    if (order.len() as u64) > free {
        let at = nodes[order[0]].0.mac;
        let span = nodes[order[0]].1.span;
        d.error(
            span,
            format!(
                "the subnet {} has {free} free addresses for {} nodes without `ip` (first: {at})",
                net.subnet,
                order.len()
            ),
        );
        return;
    }
    for i in order {
        let mac = nodes[i].0.mac;
        let mut off = fnv1a(&mac.octets()) % size;
        loop {
            let candidate = lo + u32::try_from(off).unwrap_or(0);
            let ip = Ipv4Addr::from(candidate);
            if !taken.contains(&candidate) && !pool.is_some_and(|p| p.contains(ip)) {
                taken.insert(candidate);
                nodes[i].0.ip = ip;
                break;
            }
            off = (off + 1) % size;
        }
    }
}

fn pick_profile<'p>(
    n: &NodeSpec,
    mac: MacAddr,
    hostname: &str,
    roles: &[Role],
    labels: &BTreeMap<String, String>,
    profiles: &'p [(Profile, Span)],
    d: &mut Diagnostics,
) -> Option<&'p Profile> {
    if let Some(name) = &n.profile {
        let found = profiles
            .iter()
            .find(|(p, _)| p.name == name.value)
            .map(|(p, _)| p);
        if found.is_none() {
            let names: Vec<&str> = profiles.iter().map(|(p, _)| p.name.as_str()).collect();
            let mut diag =
                Diagnostic::error(name.span, format!("unknown profile `{}`", name.value));
            if let Some(m) = did_you_mean(&name.value, &names) {
                diag = diag.with_help(format!("did you mean `{m}`?"));
            }
            d.push(diag);
        }
        return found;
    }
    let matching: Vec<&Profile> = profiles
        .iter()
        .map(|(p, _)| p)
        .filter(|p| p.selector.matches(mac, hostname, roles, labels))
        .collect();
    let best = matching.iter().map(|p| p.selector.specificity()).max()?;
    let top: Vec<&&Profile> = matching
        .iter()
        .filter(|p| p.selector.specificity() == best)
        .collect();
    if top.len() > 1 {
        d.push(
            Diagnostic::error(n.mac.as_ref().map_or(n.span, |m| m.span), format!(
                "node `{hostname}` matches profiles `{}` and `{}` equally ({best} selector terms each)",
                top[0].name, top[1].name
            ))
            .with_help("make one selector more specific, or set `profile:` on the node"),
        );
    }
    Some(top[0])
}

fn kubernetes(
    spec: &Spec,
    net: &Network,
    nodes: &[Node],
    base: KubeBase,
    base_dir: &Path,
    d: &mut Diagnostics,
) -> Option<Kubernetes> {
    let k = &spec.kubernetes;
    let version = required(&k.version, k.span, &k.given, "kubernetes.version", d)?;
    let v = version.value.trim_start_matches('v');
    let (core, pre) = v.split_once('-').unwrap_or((v, ""));
    if !is_version(core) || pre.contains(|c: char| !(c.is_ascii_alphanumeric() || c == '.')) {
        d.error(
            version.span,
            format!("Kubernetes version `{}` is not like v1.31.2", version.value),
        );
    }
    if is_version(core) {
        let minor = core.split('.').nth(1).and_then(|m| m.parse::<u32>().ok());
        let major = core.split('.').next();
        if major != Some("1")
            || !minor.is_some_and(|m| (MIN_K8S_MINOR..=MAX_K8S_MINOR).contains(&m))
        {
            d.push(
                Diagnostic::error(
                    version.span,
                    format!(
                        "slipway renders Kubernetes 1.{MIN_K8S_MINOR} to 1.{MAX_K8S_MINOR}, not {}",
                        version.value
                    ),
                )
                .with_help("kubeadm's configuration API (v1beta3 before 1.31, v1beta4 from 1.31), the pause image and the kubelet flags are known for those versions only"),
            );
        }
    }
    let pod_subnet = k
        .pod_subnet
        .as_ref()
        .map_or_else(|| net_of("10.244.0.0/16"), |s| s.value);
    let service_subnet = k
        .service_subnet
        .as_ref()
        .map_or_else(|| net_of("10.96.0.0/12"), |s| s.value);
    let pairs = [
        (
            pod_subnet,
            k.pod_subnet.as_ref().map(|s| s.span),
            "pod subnet",
            service_subnet,
            "service subnet",
        ),
        (
            pod_subnet,
            k.pod_subnet.as_ref().map(|s| s.span),
            "pod subnet",
            net.subnet,
            "node subnet",
        ),
        (
            service_subnet,
            k.service_subnet.as_ref().map(|s| s.span),
            "service subnet",
            net.subnet,
            "node subnet",
        ),
    ];
    for (a, at, an, b, bn) in pairs {
        if a.contains(&b.network()) || b.contains(&a.network()) {
            match at {
                Some(at) => d.error(at, format!("{an} {a} overlaps the {bn} {b}")),
                None => d.push(
                    Diagnostic::error(
                        k.span,
                        format!("the default {an} {a} overlaps the {bn} {b}"),
                    )
                    .with_help(format!(
                        "set `kubernetes.{}` to a free range",
                        an.replace(' ', "_")
                    )),
                ),
            }
        }
    }
    let cluster_dns = match &k.cluster_dns {
        Some(c) => {
            if !service_subnet.contains(&c.value) {
                d.error(
                    c.span,
                    format!(
                        "cluster DNS address {} is outside the service subnet {service_subnet}",
                        c.value
                    ),
                );
            }
            c.value
        }
        None => {
            let tenth = Ipv4Addr::from(u32::from(service_subnet.network()).saturating_add(10));
            if !service_subnet.contains(&tenth) {
                d.error(k.span, format!("service subnet {service_subnet} is too small to derive `cluster_dns`; set it"));
            }
            tenth
        }
    };
    for san in &k.extra_sans {
        let name = san.value.strip_prefix("*.").unwrap_or(&san.value);
        if san.value.parse::<IpAddr>().is_err() && !is_dns_name(name) {
            d.error(
                san.span,
                format!("`{}` is neither an IP address nor a DNS name", san.value),
            );
        }
    }
    let mut registry_mirrors = BTreeMap::new();
    for (key, urls) in &k.registry_mirrors {
        if !is_dns_name(key.text.split(':').next().unwrap_or("")) {
            d.error(
                key.span,
                format!("`{}` is not a registry host name", key.text),
            );
        }
        for u in urls {
            if !(u.value.starts_with("http://") || u.value.starts_with("https://")) {
                d.error(
                    u.span,
                    format!("mirror `{}` must be an http:// or https:// URL", u.value),
                );
            }
        }
        registry_mirrors.insert(
            key.text.clone(),
            urls.iter().map(|u| u.value.clone()).collect(),
        );
    }
    let control_planes: Vec<&Node> = nodes
        .iter()
        .filter(|n| n.has_role(Role::ControlPlane))
        .collect();
    let endpoint = match &k.control_plane_endpoint {
        None => {
            let first = control_planes.first()?;
            Endpoint {
                node: Some(first.hostname.clone()),
                address: first.ip,
                port: 6443,
            }
        }
        Some(e) => {
            let (host, port) = &e.value;
            let port = port.unwrap_or(6443);
            if let Ok(ip) = host.parse::<Ipv4Addr>() {
                match nodes.iter().find(|n| n.ip == ip) {
                    Some(n) => {
                        if !n.has_role(Role::ControlPlane) {
                            d.error(e.span, format!("control-plane endpoint {ip} is node `{}`, which has no control-plane role", n.hostname));
                        }
                        Endpoint {
                            node: Some(n.hostname.clone()),
                            address: ip,
                            port,
                        }
                    }
                    None => {
                        if !net.subnet.contains(&ip) {
                            d.push(
                                Diagnostic::error(
                                    e.span,
                                    format!(
                                        "control-plane endpoint {ip} is a virtual IP outside the nodes' subnet {}",
                                        net.subnet
                                    ),
                                )
                                .with_help("kube-vip announces the virtual IP with ARP: it must be a free address of the nodes' subnet"),
                            );
                        } else if ip == net.server || Some(ip) == net.gateway {
                            d.error(
                                e.span,
                                format!(
                                    "control-plane endpoint {ip} is {}",
                                    if ip == net.server {
                                        "slipway's own address"
                                    } else {
                                        "the gateway"
                                    }
                                ),
                            );
                        } else if net.dhcp.pool.is_some_and(|p| p.contains(ip)) {
                            d.error(
                                e.span,
                                format!("control-plane endpoint {ip} is inside the DHCP pool"),
                            );
                        } else if net.subnet.contains(&ip) && !usable(net.subnet, ip) {
                            d.error(
                                e.span,
                                format!(
                                    "control-plane endpoint {ip} is not a usable address of {}",
                                    net.subnet
                                ),
                            );
                        }
                        Endpoint {
                            node: None,
                            address: ip,
                            port,
                        }
                    }
                }
            } else {
                match nodes.iter().find(|n| n.hostname == *host) {
                    Some(n) => {
                        if !n.has_role(Role::ControlPlane) {
                            d.error(
                                e.span,
                                format!(
                                    "control-plane endpoint `{host}` has no control-plane role"
                                ),
                            );
                        }
                        Endpoint {
                            node: Some(n.hostname.clone()),
                            address: n.ip,
                            port,
                        }
                    }
                    None => {
                        d.push(
                            Diagnostic::error(e.span, format!("control-plane endpoint `{host}` is neither a node's hostname nor an IPv4 address"))
                                .with_help("give a virtual IP, or the hostname of a control-plane node"),
                        );
                        return None;
                    }
                }
            }
        }
    };
    if let Some(i) = &k.vip_interface
        && endpoint.node.is_some()
    {
        d.push(
            Diagnostic::error(
                i.span,
                "`kubernetes.vip_interface` applies only when `control_plane_endpoint` is a virtual IP",
            )
            .with_help("remove it, or give a free address of the nodes' subnet as the endpoint"),
        );
    }
    let plugin = k
        .network_plugin
        .as_ref()
        .map_or(NetworkPlugin::Flannel, |p| p.value);
    let cni = cni(k, plugin, base_dir, d);
    let network_plugin = match (&k.network_plugin, &cni.manifest) {
        (None, Some(_)) => NetworkPlugin::None,
        _ => plugin,
    };
    Some(Kubernetes {
        version: format!("v{v}"),
        control_plane_endpoint: endpoint,
        api_name: base.api_name,
        extra_sans: k.extra_sans.iter().map(|s| s.value.clone()).collect(),
        pod_subnet,
        service_subnet,
        cluster_dns,
        network_plugin,
        cni,
        vip_interface: k.vip_interface.as_ref().map(|i| i.value.clone()),
        image_repository: k
            .image_repository
            .as_ref()
            .map_or_else(|| "registry.k8s.io".into(), |r| r.value.clone()),
        registry_mirrors,
        sysext_url: k
            .sysext_url
            .as_ref()
            .map(|u| http_url(u, "`kubernetes.sysext_url`", d)),
        images: image_mirror(k, d),
    })
}

/// `serve_images`, `extra_images`, `image_sources`: references must name a registry
/// host and a tag or digest; sources are http(s) URLs keyed by registry host; the
/// last two only with `serve_images: true` (otherwise nothing would read them).
fn image_mirror(k: &crate::spec::KubernetesSpec, d: &mut Diagnostics) -> ImageMirror {
    let serve = k.serve_images.as_ref().is_some_and(|s| s.value);
    let mut extra = Vec::new();
    for r in &k.extra_images {
        if let Err(why) = check_image_reference(&r.value) {
            d.push(
                Diagnostic::error(
                    r.span,
                    format!("`kubernetes.extra_images`: `{}` {why}", r.value),
                )
                .with_help("write the full reference, e.g. docker.io/library/busybox:1.36"),
            );
        }
        extra.push(r.value.clone());
    }
    let mut sources = BTreeMap::new();
    for (key, url) in &k.image_sources {
        if !is_dns_name(key.text.split(':').next().unwrap_or("")) {
            d.error(
                key.span,
                format!(
                    "`kubernetes.image_sources`: `{}` is not a registry host name",
                    key.text
                ),
            );
        }
        sources.insert(
            key.text.clone(),
            http_url(url, "`kubernetes.image_sources`", d),
        );
    }
    if !serve {
        let first = k
            .extra_images
            .first()
            .map(|r| (r.span, "extra_images"))
            .or_else(|| {
                k.image_sources
                    .first()
                    .map(|(key, _)| (key.span, "image_sources"))
            });
        if let Some((span, key)) = first {
            d.push(
                Diagnostic::error(
                    span,
                    format!("`kubernetes.{key}` applies only with `kubernetes.serve_images: true`"),
                )
                .with_help("set `serve_images: true`, or remove it"),
            );
        }
    }
    ImageMirror {
        serve,
        extra,
        sources,
    }
}

/// Whether `r` is a full image reference: `host[:port]/repository[:tag|@sha256:hex]`,
/// the host with a dot or a port (or `localhost`), lower-case repository components.
pub fn check_image_reference(r: &str) -> Result<(), &'static str> {
    let (name, _) = split_reference(r).ok_or("has no tag or digest (`:tag` or `@sha256:...`)")?;
    let (host, repo) = name
        .split_once('/')
        .ok_or("does not name a registry host (`registry/repository:tag`)")?;
    if !(host.contains('.') || host.contains(':') || host == "localhost") {
        return Err("does not name a registry host (`registry/repository:tag`)");
    }
    let ok_component = |c: &str| {
        !c.is_empty()
            && c.chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
            && c.starts_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
    };
    if !repo.split('/').all(ok_component) {
        return Err("has an invalid repository name (lower-case letters, digits, `._-`, `/`)");
    }
    Ok(())
}

/// Splits `name:tag` or `name@sha256:hex` into the name and the tag or digest;
/// `None` when neither is there or the tag or digest is malformed.
pub fn split_reference(r: &str) -> Option<(&str, &str)> {
    if let Some((name, digest)) = r.split_once('@') {
        let hex = digest.strip_prefix("sha256:")?;
        let ok = hex.len() == 64
            && hex
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
        return ok.then_some((name, digest));
    }
    let slash = r.rfind('/').unwrap_or(0);
    let colon = r[slash..].rfind(':')? + slash;
    let (name, tag) = (&r[..colon], &r[colon + 1..]);
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
    ok.then_some((name, tag))
}

/// The oldest Kubernetes minor version slipway renders (1.27).
pub const MIN_K8S_MINOR: u32 = 27;
/// The newest Kubernetes minor version slipway renders (1.35).
pub const MAX_K8S_MINOR: u32 = 35;

/// The flannel version slipway renders unless `kubernetes.cni_version` says otherwise.
pub const FLANNEL_VERSION: &str = "v0.26.1";
/// The calico version slipway renders unless `kubernetes.cni_version` says otherwise.
pub const CALICO_VERSION: &str = "v3.29.1";

/// Whether `name` can be a Linux network interface name.
fn is_interface_name(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@:".contains(c))
}

/// The CNI settings of `k` for `plugin`: each key refused where it has no effect.
fn cni(k: &KubernetesSpec, plugin: NetworkPlugin, base_dir: &Path, d: &mut Diagnostics) -> Cni {
    if let Some(p) = &k.network_plugin
        && p.value == NetworkPlugin::Cilium
    {
        d.push(
            Diagnostic::error(
                p.span,
                "cilium is installed with Helm or the cilium CLI, and slipway renders no Helm charts",
            )
            .with_help("choose flannel or calico, or `none` with your own manifest in `kubernetes.cni_manifest` (e.g. from `helm template cilium`)"),
        );
    }
    let manifest = k.cni_manifest.as_ref().and_then(|m| {
        if let Some(p) = &k.network_plugin
            && p.value != NetworkPlugin::None
        {
            d.push(
                Diagnostic::error(
                    m.span,
                    format!(
                        "`kubernetes.cni_manifest` replaces the plugin slipway renders, but `network_plugin` is `{}`",
                        p.value.as_str()
                    ),
                )
                .with_help("set `network_plugin: none` (or remove it) to apply your manifest"),
            );
            return None;
        }
        let text = m.value.trim();
        if text.starts_with("http://") || text.starts_with("https://") {
            if text.chars().any(char::is_whitespace) {
                d.error(m.span, format!("`{text}` is not a URL"));
                return None;
            }
            return Some(CniManifest::Url(text.to_string()));
        }
        let path = resolve(base_dir, text);
        if !path.is_file() {
            d.error(
                m.span,
                format!(
                    "`kubernetes.cni_manifest`: {} is not a file (give a file or an http(s) URL)",
                    path.display()
                ),
            );
            return None;
        }
        Some(CniManifest::File(path))
    });
    let rendered =
        manifest.is_none() && matches!(plugin, NetworkPlugin::Flannel | NetworkPlugin::Calico);
    let only_rendered = |key: &str, span: Span, d: &mut Diagnostics| {
        d.push(
            Diagnostic::error(
                span,
                format!("`kubernetes.{key}` applies to the flannel and calico that slipway renders, not to `{}`", if manifest_given(k) { "your cni_manifest".to_string() } else { plugin.as_str().to_string() }),
            )
            .with_help("remove it"),
        );
    };
    let version = match &k.cni_version {
        Some(v) if !rendered => {
            only_rendered("cni_version", v.span, d);
            None
        }
        Some(v) => {
            let t = v.value.trim_start_matches('v');
            if !is_version(t) {
                d.error(
                    v.span,
                    format!("CNI version `{}` is not like v3.29.1", v.value),
                );
            }
            Some(format!("v{t}"))
        }
        None if rendered => Some(
            match plugin {
                NetworkPlugin::Calico => CALICO_VERSION,
                _ => FLANNEL_VERSION,
            }
            .to_string(),
        ),
        None => None,
    };
    let mtu = k.cni_mtu.as_ref().and_then(|m| {
        if !rendered {
            only_rendered("cni_mtu", m.span, d);
            return None;
        }
        if plugin == NetworkPlugin::Flannel {
            d.push(
                Diagnostic::error(
                    m.span,
                    "flannel takes its MTU from the node's interface (less the VXLAN overhead)",
                )
                .with_help("remove `cni_mtu`, or set the interface's MTU"),
            );
            return None;
        }
        if !(576..=9216).contains(&m.value) {
            d.error(
                m.span,
                format!("MTU {} is not between 576 and 9216", m.value),
            );
        }
        Some(m.value)
    });
    let interface = k.cni_interface.as_ref().and_then(|i| {
        if !rendered {
            only_rendered("cni_interface", i.span, d);
            return None;
        }
        if !is_interface_name(&i.value) {
            d.error(
                i.span,
                format!("`{}` is not a network interface name", i.value),
            );
        }
        Some(i.value.clone())
    });
    if let Some(i) = &k.vip_interface
        && !is_interface_name(&i.value)
    {
        d.error(
            i.span,
            format!("`{}` is not a network interface name", i.value),
        );
    }
    Cni {
        version,
        mtu,
        interface,
        manifest,
    }
}

fn manifest_given(k: &KubernetesSpec) -> bool {
    k.cni_manifest.is_some()
}

fn net_of(s: &str) -> Ipv4Net {
    s.parse().unwrap_or_default()
}

fn check_fleet(spec: &Spec, nodes: &[Node], profiles: &[(Profile, Span)], d: &mut Diagnostics) {
    let at = spec.nodes_span.unwrap_or(Span::FILE);
    if nodes.is_empty() && spec.nodes.is_empty() {
        d.error(at, "the cluster has no nodes");
        return;
    }
    let roles_known = spec.nodes.iter().all(|n| !n.roles_invalid);
    if !nodes.iter().any(|n| n.has_role(Role::ControlPlane)) && !nodes.is_empty() && roles_known {
        d.push(
            Diagnostic::error(at, "no node has the `control-plane` role").with_help(
                "add `roles: [control-plane]` to one node (or three, for high availability)",
            ),
        );
    }
    let etcd = nodes.iter().filter(|n| n.has_role(Role::Etcd)).count();
    if etcd > 0 && etcd % 2 == 0 {
        d.push(
            Diagnostic::warning(
                at,
                format!(
                    "{etcd} etcd members: an even number tolerates no more failures than {}",
                    etcd - 1
                ),
            )
            .with_help("use an odd number of etcd members (1, 3, 5)"),
        );
    }
    for (p, span) in profiles {
        if !nodes
            .iter()
            .any(|n| n.profile.as_deref() == Some(p.name.as_str()))
        {
            d.warning(*span, format!("profile `{}` applies to no node", p.name));
        }
    }
}
