//! A 1 GiB file is streamed, not loaded: the process's peak resident memory grows by
//! only a few MiB while curl downloads it. (Alone in its own test binary, so no other
//! test moves the peak.)

mod common;

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_1_gib_file_streams_in_bounded_memory() {
    let s = common::start("large", "ignition");
    let path = s
        .dir
        .join("mirror/4081.2.0/flatcar_production_image.bin.bz2");
    let f = std::fs::File::create(&path).unwrap_or_else(|e| panic!("{e}"));
    f.set_len(1 << 30).unwrap_or_else(|e| panic!("{e}")); // sparse: reads as zeros
    drop(f);
    let before = peak_rss_kib();
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "120",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{size_download}",
        ])
        .arg(format!(
            "http://{}/4081.2.0/flatcar_production_image.bin.bz2",
            s.addr
        ))
        .output()
        .unwrap_or_else(|e| panic!("curl: {e}"));
    let got = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(got, format!("200 {}", 1u64 << 30));
    let after = peak_rss_kib();
    let grew_mib = after.saturating_sub(before) as f64 / 1024.0;
    println!(
        "peak RSS before {before} KiB, after {after} KiB: +{grew_mib:.1} MiB for a 1 GiB download"
    );
    assert!(after > 0, "cannot read VmHWM");
    assert!(
        grew_mib < 32.0,
        "peak RSS grew by {grew_mib:.1} MiB while serving 1 GiB"
    );
}
