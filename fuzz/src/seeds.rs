//! The seed corpus: valid inputs of every kind each target reads, built with the
//! crates' own encoders where they have one. `examples/seeds.rs` writes them to
//! `fuzz/corpus/<target>/seed-<name>`; libFuzzer starts from them and adds what it
//! finds (see docs/fuzzing.md for how the corpus is kept).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use slipway_dhcp::wire::{self, MessageType, Packet, code};
use slipway_tftp::wire::{ErrorCode, OptionRepr, Repr, RequestRepr};

use crate::{mac, put_frame};

/// One seed: a file name (without the `seed-` prefix) and its bytes.
pub type Seed = (String, Vec<u8>);

/// Every target's seeds, by target name.
pub fn all() -> Vec<(&'static str, Vec<Seed>)> {
    vec![
        ("dhcp_packet", dhcp_packet()),
        ("dhcp_engine", dhcp_engine()),
        ("tftp_packet", tftp_packet()),
        ("tftp_transfer", tftp_transfer()),
        ("dns_fast", dns_fast()),
        ("http_path", http_path()),
        ("http_range", http_range()),
        ("ipmi", ipmi()),
    ]
}

fn named(items: Vec<(&str, Vec<u8>)>) -> Vec<Seed> {
    items.into_iter().map(|(n, b)| (n.to_owned(), b)).collect()
}

// --- DHCP -------------------------------------------------------------------------

/// A BOOTREQUEST of `kind` from `m`, as the crate's tests build them.
fn request(kind: MessageType, m: slipway_cluster::MacAddr) -> Packet {
    let mut chaddr = [0u8; 16];
    chaddr[..6].copy_from_slice(&m.octets());
    let mut p = Packet {
        op: wire::BOOTREQUEST,
        htype: 1,
        hlen: 6,
        hops: 0,
        xid: 0x1234_5678,
        secs: 4,
        flags: 0x8000,
        ciaddr: Ipv4Addr::UNSPECIFIED,
        yiaddr: Ipv4Addr::UNSPECIFIED,
        siaddr: Ipv4Addr::UNSPECIFIED,
        giaddr: Ipv4Addr::UNSPECIFIED,
        chaddr,
        sname: [0; 64],
        file: [0; 128],
        options: BTreeMap::new(),
    };
    p.set(code::MESSAGE_TYPE, vec![kind as u8]);
    p.set(
        code::PARAMETER_LIST,
        vec![1, 3, 6, 12, 15, 28, 42, 43, 60, 66, 67],
    );
    p.set(code::MAX_MESSAGE_SIZE, 1472u16.to_be_bytes().to_vec());
    p
}

/// PXE firmware of architecture `arch` (0 BIOS, 7 UEFI, 16 HTTP boot).
fn pxe(kind: MessageType, m: slipway_cluster::MacAddr, arch: u16) -> Packet {
    let mut p = request(kind, m);
    p.set(code::CLIENT_ARCH, arch.to_be_bytes().to_vec());
    p.set(code::CLIENT_NDI, vec![1, 3, 16]);
    p.set(code::CLIENT_GUID, [vec![0], vec![0x11; 16]].concat());
    let class = if arch == 16 {
        format!("HTTPClient:Arch:{arch:05}:UNDI:003016")
    } else {
        format!("PXEClient:Arch:{arch:05}:UNDI:002001")
    };
    p.set(code::VENDOR_CLASS, class.into_bytes());
    p
}

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 99, 0, last)
}

/// Valid DHCP packets of every kind the server meets.
fn dhcp_packets() -> Vec<(&'static str, Packet)> {
    let server = ip(1);
    let mut out = Vec::new();
    out.push(("discover-bios", pxe(MessageType::Discover, mac(0x10), 0)));
    out.push((
        "discover-uefi-reserved",
        pxe(MessageType::Discover, mac(1), 7),
    ));
    out.push(("discover-http", pxe(MessageType::Discover, mac(0x11), 16)));
    let mut p = pxe(MessageType::Request, mac(0x10), 0);
    p.set_ips(code::REQUESTED_IP, &[ip(200)]);
    p.set_ips(code::SERVER_ID, &[server]);
    out.push(("request-selecting", p));
    let mut p = request(MessageType::Request, mac(1));
    p.set(code::USER_CLASS, b"iPXE".to_vec());
    p.set(code::IPXE, vec![19, 1, 1, 24, 1, 1]);
    p.set_ips(code::REQUESTED_IP, &[ip(11)]);
    p.set_ips(code::SERVER_ID, &[server]);
    out.push(("request-ipxe", p));
    let mut p = request(MessageType::Request, mac(2));
    p.ciaddr = ip(21);
    p.flags = 0;
    p.set(code::HOSTNAME, b"w1".to_vec());
    p.set(
        code::CLIENT_ID,
        [vec![1], mac(2).octets().to_vec()].concat(),
    );
    out.push(("request-renewing-os", p));
    let mut p = request(MessageType::Decline, mac(0x10));
    p.set_ips(code::REQUESTED_IP, &[ip(200)]);
    p.set_ips(code::SERVER_ID, &[server]);
    out.push(("decline", p));
    let mut p = request(MessageType::Release, mac(0x10));
    p.ciaddr = ip(200);
    p.set_ips(code::SERVER_ID, &[server]);
    out.push(("release", p));
    let mut p = request(MessageType::Inform, mac(2));
    p.ciaddr = ip(21);
    out.push(("inform", p));
    let mut p = pxe(MessageType::Discover, mac(0x12), 7);
    p.giaddr = Ipv4Addr::new(10, 98, 0, 1);
    p.hops = 1;
    out.push(("discover-relayed", p));
    let mut p = request(MessageType::Discover, mac(0x13));
    p.set(code::RAPID_COMMIT, Vec::new());
    p.set(code::HOSTNAME, b"new-machine".to_vec());
    out.push(("discover-rapid-commit", p));
    let mut p = pxe(MessageType::Request, mac(0x10), 0);
    p.ciaddr = ip(200);
    out.push(("request-pxe-port", p));
    let mut p = pxe(MessageType::Discover, mac(0x14), 6);
    p.set(code::USER_CLASS, [vec![4], b"gPXE".to_vec()].concat());
    p.set(code::VENDOR_SPECIFIC, vec![9; 600]);
    out.push(("discover-unsupported-long-option", p));
    out
}

fn dhcp_packet() -> Vec<Seed> {
    dhcp_packets()
        .into_iter()
        .map(|(n, p)| (n.to_owned(), p.emit()))
        .collect()
}

/// Writers of `dhcp_engine` steps (see `fuzz_targets/dhcp_engine.rs`).
struct DhcpSteps(Vec<u8>);

impl DhcpSteps {
    fn new(flags: u8) -> DhcpSteps {
        DhcpSteps(vec![flags])
    }
    /// A datagram on port 67 (or 4011 when `pxe`) from 10.99.0.`src`, `dt` s later.
    fn packet(mut self, pxe: bool, dt: u8, src: u8, p: &Packet) -> DhcpSteps {
        self.0.extend_from_slice(&[u8::from(pxe), dt, src]);
        put_frame(&mut self.0, &p.emit());
        self
    }
    /// `secs` seconds pass.
    fn wait(mut self, secs: u16) -> DhcpSteps {
        self.0.extend_from_slice(&[2, 0]);
        self.0.extend_from_slice(&secs.to_be_bytes());
        self
    }
    /// The configuration is reloaded with `flags`.
    fn reload(mut self, flags: u8) -> DhcpSteps {
        self.0.extend_from_slice(&[3, 0, flags]);
        self
    }
}

fn dhcp_engine() -> Vec<Seed> {
    let packets: BTreeMap<&str, Packet> = dhcp_packets().into_iter().collect();
    let p = |name: &str| {
        packets
            .get(name)
            .cloned()
            .unwrap_or_else(|| panic!("{name}"))
    };
    let discover = |m: u8| pxe(MessageType::Discover, mac(m), 0);
    let mut out = Vec::new();
    out.push((
        "pool-lease-life",
        DhcpSteps::new(0)
            .packet(false, 0, 0, &p("discover-bios"))
            .packet(false, 1, 0, &p("request-selecting"))
            .packet(false, 2, 0, &p("request-pxe-port"))
            .wait(1800)
            .packet(false, 0, 200, &p("release"))
            .wait(4000),
    ));
    out.push((
        "reserved-uefi-ipxe",
        DhcpSteps::new(0)
            .packet(false, 0, 0, &p("discover-uefi-reserved"))
            .packet(false, 1, 0, &p("request-ipxe"))
            .packet(false, 1, 21, &p("request-renewing-os"))
            .packet(false, 0, 21, &p("inform")),
    ));
    out.push((
        "decline-quarantine",
        DhcpSteps::new(0)
            .packet(false, 0, 0, &p("discover-bios"))
            .packet(false, 1, 0, &p("decline"))
            .packet(false, 1, 0, &p("discover-bios"))
            .wait(700)
            .packet(false, 0, 0, &p("discover-bios")),
    ));
    out.push((
        "proxy",
        DhcpSteps::new(1)
            .packet(false, 0, 0, &p("discover-bios"))
            .packet(true, 1, 50, &p("request-pxe-port"))
            .packet(false, 0, 0, &p("discover-http"))
            .packet(false, 0, 0, &p("discover-unsupported-long-option")),
    ));
    out.push((
        "relays",
        DhcpSteps::new(0)
            .packet(false, 0, 1, &p("discover-relayed"))
            .packet(false, 0, 1, &{
                let mut q = p("discover-relayed");
                q.giaddr = Ipv4Addr::new(192, 0, 2, 1);
                q
            }),
    ));
    out.push((
        "pool-exhausted",
        DhcpSteps::new(0)
            .packet(false, 0, 0, &discover(0x20))
            .packet(false, 0, 0, &discover(0x21))
            .packet(false, 0, 0, &discover(0x22))
            .packet(false, 0, 0, &discover(0x23))
            .wait(61)
            .packet(false, 0, 0, &discover(0x23)),
    ));
    out.push((
        "short-leases-expire",
        DhcpSteps::new(0x30)
            .packet(false, 0, 0, &p("discover-rapid-commit"))
            .wait(2)
            .packet(false, 0, 0, &p("discover-rapid-commit"))
            .reload(0x20),
    ));
    out.push((
        "rate-limited",
        (0..14)
            .fold(DhcpSteps::new(8), |s, i| {
                s.packet(false, 0, 0, &discover(0x30 + i % 3))
            })
            .wait(600)
            .packet(false, 0, 0, &discover(0x40)),
    ));
    out.push((
        "unknown-ignored-then-reload",
        DhcpSteps::new(4)
            .packet(false, 0, 0, &discover(0x50))
            .packet(false, 0, 0, &discover(0x51))
            .packet(false, 0, 0, &p("discover-uefi-reserved"))
            .reload(2)
            .packet(false, 0, 0, &p("discover-uefi-reserved"))
            .reload(0)
            .packet(false, 0, 0, &discover(0x50)),
    ));
    out.into_iter().map(|(n, s)| (n.to_owned(), s.0)).collect()
}

// --- TFTP -------------------------------------------------------------------------

fn emit(repr: &Repr<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    repr.emit(&mut out);
    out
}

fn rrq(filename: &str, mode: &str, options: &[(&str, &str)]) -> Vec<u8> {
    emit(&Repr::Rrq(RequestRepr {
        filename,
        mode,
        options: options
            .iter()
            .map(|&(name, value)| OptionRepr { name, value })
            .collect(),
    }))
}

fn tftp_packet() -> Vec<Seed> {
    let mut padded = rrq("pxelinux.0", "octet", &[("tsize", "0")]);
    padded.extend_from_slice(&[0, 0, 0]);
    named(vec![
        ("rrq", rrq("pxelinux.0", "octet", &[])),
        (
            "rrq-options",
            rrq(
                "pxelinux.cfg/01-52-54-00-99-00-01",
                "octet",
                &[
                    ("blksize", "1468"),
                    ("tsize", "0"),
                    ("timeout", "1"),
                    ("windowsize", "16"),
                ],
            ),
        ),
        ("rrq-padded", padded),
        ("rrq-netascii", rrq("boot\\grub\\grub.cfg", "NetASCII", &[])),
        ("rrq-traversal", rrq("/../etc/passwd", "octet", &[])),
        ("rrq-mail", rrq("x", "mail", &[])),
        (
            "wrq",
            emit(&Repr::Wrq(RequestRepr {
                filename: "upload.bin",
                mode: "octet",
                options: vec![],
            })),
        ),
        (
            "data",
            emit(&Repr::Data {
                block: 1,
                data: b"#!ipxe\nchain http://10.99.0.1:8080/boot.ipxe\n",
            }),
        ),
        ("ack", emit(&Repr::Ack { block: 65535 })),
        (
            "error",
            emit(&Repr::Error {
                code: ErrorCode::OptionsRefused,
                message: "TFTP Aborted",
            }),
        ),
        (
            "oack",
            emit(&Repr::Oack {
                options: vec![
                    OptionRepr {
                        name: "blksize",
                        value: "1468",
                    },
                    OptionRepr {
                        name: "tsize",
                        value: "1000",
                    },
                ],
            }),
        ),
    ])
}

/// Writers of `tftp_transfer` steps (see `fuzz_targets/tftp_transfer.rs`).
struct TftpSteps(Vec<u8>);

impl TftpSteps {
    /// A file of `size` bytes asked for with `rrq`.
    fn new(size: u16, rrq: &[u8]) -> TftpSteps {
        let mut out = size.to_be_bytes().to_vec();
        put_frame(&mut out, rrq);
        TftpSteps(out)
    }
    fn op(mut self, op: u8, args: &[u8]) -> TftpSteps {
        self.0.push(op);
        self.0.extend_from_slice(args);
        self
    }
    fn ack(self, block: u16) -> TftpSteps {
        self.op(3, &block.to_be_bytes())
    }
    fn datagram(mut self, stranger: bool, bytes: &[u8]) -> TftpSteps {
        self.0.push(u8::from(stranger));
        put_frame(&mut self.0, bytes);
        self
    }
    fn wait_ms(self, ms: u16) -> TftpSteps {
        self.op(2, &ms.to_be_bytes())
    }
}

fn tftp_transfer() -> Vec<Seed> {
    let plain = rrq("pxelinux.0", "octet", &[]);
    let options = rrq(
        "undionly.kpxe",
        "octet",
        &[
            ("blksize", "8"),
            ("tsize", "0"),
            ("windowsize", "4"),
            ("timeout", "2"),
        ],
    );
    let error = emit(&Repr::Error {
        code: ErrorCode::NotDefined,
        message: "TFTP Aborted",
    });
    let mut out = vec![
        (
            "plain-two-blocks",
            TftpSteps::new(600, &plain).ack(1).ack(2),
        ),
        ("empty-file", TftpSteps::new(0, &plain).ack(1)),
        (
            "options-windows",
            TftpSteps::new(100, &options)
                .ack(0)
                .ack(4)
                .ack(2)
                .op(4, &[])
                .op(4, &[])
                .op(4, &[]),
        ),
        (
            "tsize-probe",
            TftpSteps::new(1000, &options).datagram(false, &error),
        ),
        (
            "timeouts",
            TftpSteps::new(2000, &plain)
                .wait_ms(1000)
                .op(6, &[])
                .op(6, &[])
                .ack(1)
                .op(6, &[])
                .op(6, &[])
                .op(6, &[])
                .op(6, &[])
                .op(6, &[]),
        ),
        (
            "strangers-duplicates",
            TftpSteps::new(1500, &plain)
                .datagram(true, &emit(&Repr::Ack { block: 1 }))
                .ack(1)
                .ack(1)
                .datagram(false, &plain)
                .op(5, &[])
                .ack(2)
                .op(7, &[]),
        ),
    ];
    // A file of 65535 bytes in 8-byte blocks: the block number wraps.
    let wrap = rrq("big", "octet", &[("blksize", "8"), ("windowsize", "64")]);
    let mut steps = TftpSteps::new(u16::MAX, &wrap).ack(0);
    for _ in 0..40 {
        steps = steps.op(4, &[]);
    }
    out.push(("many-windows", steps));
    let mut seeds: Vec<Seed> = out.into_iter().map(|(n, s)| (n.to_owned(), s.0)).collect();
    for (name, refused) in [
        ("refused-wrq", tftp_packet()[6].1.clone()),
        ("refused-traversal", rrq("../x", "octet", &[])),
    ] {
        seeds.push((name.to_owned(), TftpSteps::new(10, &refused).0));
    }
    seeds
}

// --- DNS --------------------------------------------------------------------------

/// A query for `name` of type `qtype`, with an OPT record when `edns`.
fn query(id: u16, name: &str, qtype: u16, edns: bool) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, u8::from(edns)]);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    if edns {
        q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    }
    q
}

fn dns_fast() -> Vec<Seed> {
    named(vec![
        ("a-node", query(1, "cp1.lab.slipway.test", 1, false)),
        ("a-node-edns", query(2, "worker1.lab.slipway.test", 1, true)),
        (
            "a-mixed-case",
            query(3, "WoRkEr2.Lab.Slipway.Test", 1, false),
        ),
        ("a-server", query(4, "slipway.lab.slipway.test", 1, true)),
        (
            "a-dynamic",
            query(5, "discovered.lab.slipway.test", 1, false),
        ),
        ("ptr", query(6, "11.0.99.10.in-addr.arpa", 12, false)),
        ("ptr-edns", query(7, "200.0.99.10.in-addr.arpa", 12, true)),
        ("aaaa", query(8, "cp1.lab.slipway.test", 28, false)),
        ("nxdomain", query(9, "nope.lab.slipway.test", 1, false)),
        ("outside", query(10, "example.com", 1, false)),
    ])
}

// --- HTTP -------------------------------------------------------------------------

fn http_path() -> Vec<Seed> {
    let paths = [
        (
            "ipxe-script",
            "/ipxe/52-54-00-99-00-01.ipxe?platform=efi&buildarch=x86_64",
        ),
        ("config", "/config/52:54:00:99:00:01/install.sh"),
        (
            "report-failed",
            "/report/52:54:00:99:00:01/k3y/failed?reason=disk%20%2Fdev%2Fvda%20not%20found",
        ),
        (
            "report-ready",
            "/report/52-54-00-99-00-02/k3y/ready?hostname=worker1&x=%00",
        ),
        (
            "mirror",
            "/flatcar/stable/4081.2.0/flatcar_production_pxe.vmlinuz",
        ),
        ("mirror-file", "/a.bin"),
        ("mirror-nested", "/dir/b.txt"),
        ("mirror-escaped", "/dir/%62.txt"),
        ("traversal-encoded", "/%2e%2e/%2e%2e/etc/passwd"),
        ("traversal", "/dir/../../etc/passwd"),
        ("symlink-out", "/escape/passwd"),
        ("utf8", "/caf%C3%A9/%E2%82%AC.txt?reason=%F0%9F%92%A5"),
        ("bad-escape", "/a%2"),
        ("absolute-form", "http://10.99.0.1:8080/boot.ipxe?x=1"),
    ];
    paths
        .iter()
        .map(|(n, p)| ((*n).to_owned(), p.as_bytes().to_vec()))
        .collect()
}

/// The entity tag and date of the files the `http_range` target serves (it sets their
/// modification time to 2023-11-14 22:13:20 UTC): what conditional requests match.
pub const HTTP_MTIME_SECS: u64 = 1_700_000_000;

fn http_range() -> Vec<Seed> {
    // File 0 is 1000 bytes: its tag is "<mtime hex>-3e8".
    let tag = format!("\"{HTTP_MTIME_SECS:x}-3e8\"");
    let date = "Tue, 14 Nov 2023 22:13:20 GMT";
    let seed = |file: u8, lines: &[&str]| {
        let mut b = vec![file];
        b.extend_from_slice(lines.join("\n").as_bytes());
        b
    };
    named(vec![
        ("first-100", seed(0, &["bytes=0-99"])),
        ("from-900", seed(0, &["bytes=900-"])),
        ("suffix", seed(0, &["bytes=-100"])),
        ("suffix-zero", seed(0, &["bytes=-0"])),
        ("past-end", seed(0, &["bytes=1000-"])),
        ("two-ranges", seed(0, &["bytes=0-1,5-6"])),
        ("if-range-tag", seed(0, &["bytes=10-19", &tag])),
        ("if-range-date", seed(0, &["bytes=10-19", date])),
        ("if-range-stale", seed(0, &["bytes=10-19", "\"0-0\""])),
        (
            "not-modified-tag",
            seed(0, &["", "", &format!("\"x\", {tag}")]),
        ),
        ("not-modified-date", seed(0, &["", "", "", date])),
        ("empty-file", seed(1, &["bytes=0-0"])),
        ("large-file", seed(2, &["bytes=65000-65600"])),
        ("missing-file", seed(3, &["bytes=0-1"])),
    ])
}

// --- IPMI -------------------------------------------------------------------------

fn ipmi() -> Vec<Seed> {
    slipway_bmc::ipmi::fuzz_seeds()
        .into_iter()
        .enumerate()
        .map(|(i, b)| (format!("{i:02}"), b))
        .collect()
}
