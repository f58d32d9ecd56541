//! What slipway's fuzz targets (`fuzz_targets/`) share: a reader that cuts the fuzzer's
//! bytes into fields, the small configurations the engines under test are built from,
//! and the seed corpus (`fuzz/corpus/<target>/`, written by `examples/seeds.rs`).
//!
//! The sequence targets (`dhcp_engine`, `tftp_transfer`) read their input as a list of
//! steps: an opcode byte, a few argument bytes, and a datagram as a frame (two bytes of
//! big-endian length, then that many bytes). A reader past the end yields zeros and
//! empty slices, so every byte string is a valid input.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::net::Ipv4Addr;

pub mod seeds;

/// The largest single allocation a target may make: 256 MiB. Inputs are a few KiB;
/// an allocation sized from a length field an attacker wrote is the bug to catch.
pub const MAX_ALLOCATION: usize = 256 << 20;

/// The system allocator, refusing (abort, which libFuzzer reports as a crash with its
/// input) any single allocation over [`MAX_ALLOCATION`]. libFuzzer's own
/// `-malloc_limit_mb` needs a sanitizer's allocator hooks, which a build without ASan
/// (the only kind the stable toolchain makes) does not have; its `-rss_limit_mb`
/// watchdog still bounds the total.
pub struct BoundedAlloc;

#[global_allocator]
static ALLOCATOR: BoundedAlloc = BoundedAlloc;

impl BoundedAlloc {
    fn check(size: usize) {
        if size > MAX_ALLOCATION {
            use std::io::Write;
            // No formatting: it could allocate.
            let _ = std::io::stderr()
                .write_all(b"==slipway-fuzz== allocation over MAX_ALLOCATION (256 MiB)\n");
            std::process::abort();
        }
    }
}

// SAFETY: every call goes to the system allocator with the caller's arguments; only
// oversized requests are refused, by aborting before any allocation.
unsafe impl GlobalAlloc for BoundedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::check(layout.size());
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::check(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout` (see `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::check(new_size);
        // SAFETY: as for `dealloc`; the caller's contract for `realloc` holds.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// A cursor over the fuzzer's bytes.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// A cursor at the start of `data`.
    pub fn new(data: &'a [u8]) -> Input<'a> {
        Input { data }
    }

    /// Whether every byte was read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next byte (0 past the end).
    pub fn u8(&mut self) -> u8 {
        let (first, rest) = self.data.split_first().unwrap_or((&0, &[]));
        self.data = rest;
        *first
    }

    /// The next two bytes, big-endian (zeros past the end).
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    /// The next `n` bytes, or as many as are left.
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// A frame: a two-byte length, then that many bytes (or as many as are left).
    pub fn frame(&mut self) -> &'a [u8] {
        let n = usize::from(self.u16());
        self.bytes(n)
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        self.bytes(self.data.len())
    }
}

/// Appends `bytes` as a frame (see [`Input::frame`]).
pub fn put_frame(out: &mut Vec<u8>, bytes: &[u8]) {
    let n = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(&bytes[..usize::from(n)]);
}

/// The DHCP lab of the `dhcp_engine` target: 10.99.0.0/24, slipway on .1, two
/// reserved machines (`52:54:00:99:00:01` on .11, `..:02` on .21), a pool of three
/// addresses (.200-.202, so that it runs out), a relay 10.98.0.1. `flags` picks what
/// a reload may change: the mode (bits 0-1), the unknown-machine policy (bit 2), the
/// rate limit (bit 3) and the lease time (bits 4-5).
pub fn dhcp_config(flags: u8) -> slipway_dhcp::Config {
    use slipway_cluster::{BootFiles as NodeBootFiles, DhcpMode, UnknownPolicy};
    use slipway_dhcp::{BootFiles, Config, Reservation};
    let reservation = |ip: u8, hostname: &str, bios: Option<&str>| Reservation {
        ip: Ipv4Addr::new(10, 99, 0, ip),
        hostname: hostname.into(),
        boot: NodeBootFiles {
            bios: bios.map(str::to_owned),
            uefi: None,
        },
    };
    Config {
        mode: match flags & 3 {
            0 | 3 => DhcpMode::Authoritative,
            1 => DhcpMode::Proxy,
            _ => DhcpMode::Off,
        },
        server: Ipv4Addr::new(10, 99, 0, 1),
        subnet: ipnet::Ipv4Net::new(Ipv4Addr::new(10, 99, 0, 0), 24).unwrap_or_default(),
        gateway: Some(Ipv4Addr::new(10, 99, 0, 254)),
        dns: vec![Ipv4Addr::new(10, 99, 0, 1)],
        domain: "lab.test".into(),
        ntp: vec![Ipv4Addr::new(10, 99, 0, 1)],
        lease_secs: [3600, 60, u32::MAX, 1][usize::from((flags >> 4) & 3)],
        pool: Some((Ipv4Addr::new(10, 99, 0, 200), Ipv4Addr::new(10, 99, 0, 202))),
        unknown: if flags & 4 == 0 {
            UnknownPolicy::Discover
        } else {
            UnknownPolicy::Ignore
        },
        reservations: HashMap::from([
            (mac(1), reservation(11, "cp1", None)),
            (mac(2), reservation(21, "w1", Some("custom.kpxe"))),
        ]),
        relays: [Ipv4Addr::new(10, 98, 0, 1)].into(),
        new_clients_per_sec: if flags & 8 == 0 { 0 } else { 2 },
        boot: BootFiles {
            bios: "undionly.kpxe".into(),
            uefi: "snponly.efi".into(),
            http: "http://10.99.0.1:8080/boot/ipxe.efi".into(),
            ipxe_chain: "http://10.99.0.1:8080/boot.ipxe".into(),
        },
    }
}

/// `52:54:00:99:00:<n>`, the lab's MACs.
pub fn mac(n: u8) -> slipway_cluster::MacAddr {
    slipway_cluster::MacAddr([0x52, 0x54, 0, 0x99, 0, n])
}

/// The cluster file the DNS target serves: the repository's `examples/lab.yaml`.
pub const LAB_YAML: &str = include_str!("../../examples/lab.yaml");

/// The zone of [`LAB_YAML`] (domain `lab.slipway.test`, subnet 10.99.0.0/24), with
/// one dynamic name, `discovered` on 10.99.0.200.
pub fn dns_zone() -> slipway_dns::ZoneHandle {
    let loaded = slipway_cluster::load_str(
        "lab.yaml",
        LAB_YAML,
        std::path::Path::new("."),
        &slipway_cluster::NoHost,
    );
    let Some(cluster) = loaded.valid() else {
        panic!(
            "examples/lab.yaml does not load:\n{}",
            loaded.diagnostics.render(LAB_YAML)
        );
    };
    let zone = match slipway_dns::Zone::from_cluster(cluster) {
        Ok(zone) => slipway_dns::ZoneHandle::new(zone),
        Err(e) => panic!("no zone from examples/lab.yaml: {e}"),
    };
    if let Err(e) = zone.set_dynamic("discovered", Ipv4Addr::new(10, 99, 0, 200)) {
        panic!("dynamic name refused: {e}");
    }
    zone
}

/// The directory the HTTP targets serve files from, made once per process under the
/// temporary directory (`$TMPDIR`, which `scripts/fuzz` points at its own work
/// directory): `a.bin` (1000 bytes), `empty`, `big.bin` (70,000 bytes: past the size
/// the file server reads whole, so it streams), `dir/b.txt`, `café/€.txt`, and two
/// symbolic links, `escape` to `/etc` (outside) and `link` to `dir` (inside). Every
/// file was last modified at [`seeds::HTTP_MTIME_SECS`], so entity tags are known.
/// Returns the directory and its canonical path.
pub fn http_root() -> &'static (std::path::PathBuf, std::path::PathBuf) {
    static ROOT: std::sync::OnceLock<(std::path::PathBuf, std::path::PathBuf)> =
        std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("slipway-fuzz-http-{}", std::process::id()));
        let made = make_http_root(&root);
        if let Err(e) = made {
            panic!("cannot make {}: {e}", root.display());
        }
        let real = root
            .canonicalize()
            .unwrap_or_else(|e| panic!("{}: {e}", root.display()));
        (root, real)
    })
}

/// The byte at `offset` of the HTTP targets' files.
pub fn http_byte_at(offset: u64) -> u8 {
    (offset % 251) as u8
}

fn make_http_root(root: &std::path::Path) -> std::io::Result<()> {
    use std::time::{Duration, SystemTime};
    let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(seeds::HTTP_MTIME_SECS);
    std::fs::create_dir_all(root.join("dir"))?;
    std::fs::create_dir_all(root.join("café"))?;
    for (name, len) in [
        ("a.bin", 1000),
        ("empty", 0),
        ("big.bin", 70_000),
        ("dir/b.txt", 5),
        ("café/€.txt", 3),
    ] {
        let path = root.join(name);
        let bytes: Vec<u8> = (0..len).map(http_byte_at).collect();
        std::fs::write(&path, bytes)?;
        std::fs::File::options()
            .write(true)
            .open(&path)?
            .set_modified(mtime)?;
    }
    for (link, target) in [("escape", "/etc"), ("link", "dir")] {
        let path = root.join(link);
        if std::fs::symlink_metadata(&path).is_err() {
            std::os::unix::fs::symlink(target, &path)?;
        }
    }
    Ok(())
}
