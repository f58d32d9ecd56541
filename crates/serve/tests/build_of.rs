//! `build_of`: what a machine is installed with, as `slipway upgrade` compares it. The
//! same file gives the same fingerprint every time (real secrets never enter it); the
//! OS version, the node and the install config each change it.

mod common;

use slipway_cluster::{NoHost, load_str};

fn cluster(text: &str) -> slipway_cluster::Cluster {
    load_str("t.yaml", text, std::path::Path::new("/"), &NoHost)
        .valid()
        .cloned()
        .unwrap_or_else(|| panic!("invalid test cluster"))
}

#[test]
fn the_fingerprint_is_stable_and_sensitive() {
    let dir = std::env::temp_dir();
    for format in ["ignition", "cloud-config"] {
        let text = common::cluster_text(&dir, format);
        let c = cluster(&text);
        let cp1 = &c.nodes[0];
        let w1 = &c.nodes[1];
        let a = slipway_serve::build_of(&c, cp1, None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.os_version, "4081.2.0");
        assert_eq!(a.config_sha256.len(), 64);
        assert_eq!(
            slipway_serve::build_of(&c, cp1, None).ok(),
            Some(a.clone()),
            "{format}: the same file, the same build"
        );
        assert_ne!(
            slipway_serve::build_of(&c, w1, None).ok(),
            Some(a.clone()),
            "{format}: another node, another config"
        );
        let newer = cluster(&text.replace("4081.2.0", "4116.0.0"));
        let b = slipway_serve::build_of(&newer, &newer.nodes[0], None)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(b.os_version, "4116.0.0");
        assert_ne!(b.config_sha256, a.config_sha256, "{format}");
        let rekeyed = cluster(&text.replace("Placeholder t@x", "Placeholder other@x"));
        let k = slipway_serve::build_of(&rekeyed, &rekeyed.nodes[0], None)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(k.os_version, a.os_version);
        assert_ne!(
            k.config_sha256, a.config_sha256,
            "{format}: ssh keys changed"
        );
    }
}

#[test]
fn an_in_place_update_carries_the_build_only_when_the_version_was_all_that_differed() {
    let dir = std::env::temp_dir();
    for format in ["ignition", "cloud-config"] {
        let text = common::cluster_text(&dir, format);
        let old = cluster(&text);
        let installed =
            slipway_serve::build_of(&old, &old.nodes[0], None).unwrap_or_else(|e| panic!("{e}"));
        let newer = cluster(&text.replace("4081.2.0", "4116.0.0"));
        let want = slipway_serve::build_of(&newer, &newer.nodes[0], None)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            slipway_serve::carried_build(&newer, &newer.nodes[0], &installed),
            Some(want),
            "{format}: installed from this file at 4081.2.0, updated to 4116.0.0"
        );
        // Installed with another SSH key than the file has now: the update does not make
        // it what the file renders.
        let rekeyed = cluster(&text.replace("Placeholder t@x", "Placeholder other@x"));
        let other = slipway_serve::build_of(&rekeyed, &rekeyed.nodes[0], None)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            slipway_serve::carried_build(&newer, &newer.nodes[0], &other),
            None,
            "{format}"
        );
        // Another node's build, or the same version: nothing carried.
        let w1 =
            slipway_serve::build_of(&old, &old.nodes[1], None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            slipway_serve::carried_build(&newer, &newer.nodes[0], &w1),
            None
        );
        assert_eq!(
            slipway_serve::carried_build(&old, &old.nodes[0], &installed),
            None
        );
    }
}
