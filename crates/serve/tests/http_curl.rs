//! The HTTP service against a real client (curl): boot scripts, secrets only to their
//! machine, Range/ETag/conditional requests on the mirror, no path traversal, the API.

mod common;

use common::{curl, start};

#[test]
fn boot_scripts_and_unknown_machines() {
    let s = start("boot", "ignition");
    let base = format!("http://{}", s.addr);
    let chain = curl(&format!("{base}/boot.ipxe"), &[]);
    assert_eq!(chain.status, 200);
    assert!(chain.text().starts_with("#!ipxe\n"));
    assert!(
        chain
            .text()
            .contains("http://127.0.0.1:8080/ipxe/${mac:hexhyp}.ipxe")
    );
    // The pod network manifest the init node applies: public, no secret in it.
    let cni = curl(&format!("{base}/cni/manifest.yaml"), &[]);
    assert_eq!(cni.status, 200);
    assert!(cni.text().contains("kind: DaemonSet"), "{}", cni.text());
    assert!(!cni.text().contains("PRIVATE KEY"));

    let own = curl(
        &format!("{base}/ipxe/52-54-00-99-00-01.ipxe?buildarch=x86_64&platform=pcbios"),
        &[],
    );
    assert_eq!(own.status, 200);
    assert!(
        own.text()
            .contains("kernel http://127.0.0.1:8080/4081.2.0/flatcar_production_pxe.vmlinuz"),
        "{}",
        own.text()
    );

    let unknown = curl(&format!("{base}/ipxe/52-54-00-99-00-99.ipxe"), &[]);
    assert_eq!(unknown.status, 404);
    assert_eq!(
        curl(&format!("{base}/ipxe/not-a-mac.ipxe"), &[]).status,
        404
    );
    assert_eq!(
        curl(
            &format!("{base}/config/52-54-00-99-00-99/installed"),
            &["--interface", "127.0.0.11"]
        )
        .status,
        404
    );
}

#[test]
fn secrets_only_to_the_machine_they_belong_to() {
    let s = start("secrets", "ignition");
    let url = format!("http://{}/config/52-54-00-99-00-01/installed", s.addr);
    let stranger = curl(&url, &[]);
    assert_eq!(stranger.status, 403, "127.0.0.1 is not cp1");
    assert!(!stranger.text().contains("token"));
    let other_node = curl(&url, &["--interface", "127.0.0.21"]);
    assert_eq!(other_node.status, 403, "w1 may not read cp1's config");
    let owner = curl(&url, &["--interface", "127.0.0.11"]);
    assert_eq!(owner.status, 200);
    assert_eq!(owner.header("content-type"), Some("application/json"));
    let (config, warnings) =
        ignition_config::Config::parse_slice(&owner.body).unwrap_or_else(|e| panic!("{e}"));
    assert!(warnings.is_empty());
    assert!(matches!(config, ignition_config::Config::V3_3(_)));
    // The install config and script carry the machine's report token: only for it too.
    let install = format!("http://{}/config/52-54-00-99-00-01/install", s.addr);
    assert_eq!(curl(&install, &[]).status, 403);
    assert_eq!(curl(&install, &["--interface", "127.0.0.11"]).status, 200);
    let script_url = format!("http://{}/config/52:54:00:99:00:01/install.sh", s.addr);
    assert_eq!(curl(&script_url, &[]).status, 403);
    let script = curl(&script_url, &["--interface", "127.0.0.11"]);
    assert_eq!(script.status, 200);
    assert!(script.text().contains("flatcar-install -d '/dev/sda'"));
}

#[test]
fn seed_layout_for_cloud_config_sites() {
    let s = start("seed", "cloud-config");
    let base = format!("http://{}", s.addr);
    let mine = curl(
        &format!("{base}/cloud-configs/52:54:00:99:00:01.yml"),
        &["--interface", "127.0.0.11"],
    );
    assert_eq!(mine.status, 200);
    assert!(mine.text().starts_with("#cloud-config\n"));
    assert_eq!(
        curl(&format!("{base}/cloud-configs/52:54:00:99:00:01.yml"), &[]).status,
        403
    );
    let install = curl(&format!("{base}/cloud-configs/install.sh"), &[]);
    assert_eq!(install.status, 200);
    assert!(install.text().contains("/cloud-configs/\"$mac\".yml"));
}

#[test]
fn mirror_ranges_etags_and_conditionals() {
    let s = start("mirror", "ignition");
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let file = s
        .dir
        .join("mirror/4081.2.0/flatcar_production_image.bin.bz2");
    std::fs::write(&file, &data).unwrap_or_else(|e| panic!("{e}"));
    let url = format!(
        "http://{}/4081.2.0/flatcar_production_image.bin.bz2",
        s.addr
    );

    let full = curl(&url, &[]);
    assert_eq!(full.status, 200);
    assert_eq!(full.body, data);
    assert_eq!(full.header("content-length"), Some("100000"));
    assert_eq!(full.header("accept-ranges"), Some("bytes"));
    let etag = full
        .header("etag")
        .unwrap_or_else(|| panic!("no ETag"))
        .to_string();
    let modified = full
        .header("last-modified")
        .unwrap_or_else(|| panic!("no Last-Modified"))
        .to_string();

    let part = curl(&url, &["-r", "1000-1999"]);
    assert_eq!(part.status, 206);
    assert_eq!(part.body, &data[1000..2000]);
    assert_eq!(part.header("content-range"), Some("bytes 1000-1999/100000"));
    assert_eq!(part.header("content-length"), Some("1000"));
    let tail = curl(&url, &["-r", "-10"]);
    assert_eq!(tail.body, &data[99_990..]);
    let beyond = curl(&url, &["-r", "200000-"]);
    assert_eq!(beyond.status, 416);
    assert_eq!(beyond.header("content-range"), Some("bytes */100000"));

    let same = curl(&url, &["-H", &format!("If-None-Match: {etag}")]);
    assert_eq!(same.status, 304);
    assert!(same.body.is_empty());
    let since = curl(&url, &["-H", &format!("If-Modified-Since: {modified}")]);
    assert_eq!(since.status, 304);
    let stale = curl(&url, &["-r", "0-9", "-H", "If-Range: \"stale\""]);
    assert_eq!(
        stale.status, 200,
        "If-Range with another ETag gets the whole file"
    );
    assert_eq!(stale.body.len(), 100_000);
    let fresh = curl(&url, &["-r", "0-9", "-H", &format!("If-Range: {etag}")]);
    assert_eq!(fresh.status, 206);

    let head = curl(&url, &["-I"]);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("100000"));
}

#[test]
fn no_way_out_of_the_mirror() {
    let s = start("traversal", "ignition");
    let base = format!("http://{}", s.addr);
    for path in [
        "/../../../../etc/passwd",
        "/4081.2.0/../../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/4081.2.0/%2e%2e%2f%2e%2e%2fetc/passwd",
        "/%00",
        "/..%5c..%5cetc",
    ] {
        let got = curl(&format!("{base}{path}"), &["--path-as-is"]);
        assert_eq!(got.status, 404, "{path}");
        assert!(!got.text().contains("root:"), "{path}");
    }
    assert_eq!(
        curl(&format!("{base}/4081.2.0/x"), &["-X", "PUT", "-d", "x"]).status,
        405
    );
}

#[test]
fn json_api() {
    let s = start("api", "ignition");
    // Not on the machines' listener.
    let machines = format!("http://{}", s.addr);
    assert_eq!(curl(&format!("{machines}/api/v1/nodes"), &[]).status, 404);
    let base = format!("http://{}", s.api);
    assert_eq!(curl(&format!("{base}/api/v1/nodes"), &[]).status, 401);
    let auth = format!("authorization: Bearer {}", common::API_TOKEN);
    let curl = |url: &str, _: &[&str]| curl(url, &["-H", &auth]);
    let nodes = curl(&format!("{base}/api/v1/nodes"), &[]);
    assert_eq!(nodes.status, 200);
    let v: serde_json::Value =
        serde_json::from_slice(&nodes.body).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v["nodes"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        v["nodes"][0]["urls"]["installed_config"],
        "http://127.0.0.1:8080/config/52-54-00-99-00-01/installed"
    );
    let one = curl(&format!("{base}/api/v1/nodes/w1"), &[]);
    let w: serde_json::Value = serde_json::from_slice(&one.body).unwrap_or_default();
    assert_eq!(w["ip"], "127.0.0.21");
    assert_eq!(curl(&format!("{base}/api/v1/nodes/nope"), &[]).status, 404);
    let cluster: serde_json::Value =
        serde_json::from_slice(&curl(&format!("{base}/api/v1/cluster"), &[]).body)
            .unwrap_or_default();
    assert_eq!(cluster["kubernetes"]["endpoint"], "cp1:6443");
}
