//! Golden tests: every artifact of every node of the example clusters, rendered with
//! the fixed example secrets, must equal the file under `tests/golden/`. After an
//! intended change, regenerate with `SLIPWAY_BLESS=1 cargo test -p slipway-render
//! --test golden` and review the diff.
//!
//! Each artifact is also checked by a real tool where one runs here: `sh -n` for shell,
//! the typed `ignition-config` parser for Ignition, `cloud-init schema` for
//! cloud-configs (when installed), a YAML parser for kubeadm configs.

use std::path::{Path, PathBuf};
use std::process::Command;

use slipway_cluster::{Cluster, ConfigFormat, NoHost, load_file};
use slipway_render::{Artifact, ExampleSecrets, RenderError, render};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn cluster(name: &str) -> Cluster {
    let path = root().join("examples").join(name);
    let (_, loaded) = load_file(&path, &NoHost).unwrap_or_else(|e| panic!("{e}"));
    loaded
        .valid()
        .cloned()
        .unwrap_or_else(|| panic!("{name} is invalid"))
}

fn file_name(a: Artifact, format: ConfigFormat) -> &'static str {
    let config_ext = match format {
        ConfigFormat::Ignition => "ign.json",
        ConfigFormat::CloudConfig => "cloud-config.yml",
        ConfigFormat::Template => "txt",
    };
    match (a, config_ext) {
        (Artifact::Ipxe, _) => "install.ipxe",
        (Artifact::IpxeLocal, _) => "local.ipxe",
        (Artifact::Pxelinux, _) => "pxelinux.cfg",
        (Artifact::Grub, _) => "grub.cfg",
        (Artifact::InstallConfig, "ign.json") => "install-config.ign.json",
        (Artifact::InstallConfig, "txt") => "install-config.txt",
        (Artifact::InstallConfig, _) => "install-config.sh",
        (Artifact::Install, _) => "install.sh",
        (Artifact::Installed, "ign.json") => "installed.ign.json",
        (Artifact::Installed, "cloud-config.yml") => "installed.cloud-config.yml",
        (Artifact::Installed, _) => "installed.txt",
        (Artifact::Kubeadm, _) => "kubeadm.yaml",
    }
}

fn golden(example: &str) {
    let c = cluster(example);
    let bless = std::env::var_os("SLIPWAY_BLESS").is_some();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(example.trim_end_matches(".yaml"));
    let template =
        c.os.generic
            .as_ref()
            .and_then(|g| g.template.as_ref())
            .map(|p| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())));
    let mut mismatches = Vec::new();
    for node in &c.nodes {
        for a in Artifact::ALL {
            if c.os.config_format == ConfigFormat::Template && a == Artifact::Install {
                let err = render(&c, node, a, &ExampleSecrets, template.as_deref());
                assert!(matches!(err, Err(RenderError::Unsupported(_))), "{err:?}");
                continue;
            }
            let text = render(&c, node, a, &ExampleSecrets, template.as_deref())
                .unwrap_or_else(|e| panic!("{} {a:?}: {e}", node.hostname));
            validate(&c, a, &text, &format!("{example} {} {a:?}", node.hostname));
            let path = dir
                .join(&node.hostname)
                .join(file_name(a, c.os.config_format));
            if bless {
                std::fs::create_dir_all(path.parent().unwrap_or(&dir))
                    .unwrap_or_else(|e| panic!("{e}"));
                std::fs::write(&path, &text).unwrap_or_else(|e| panic!("{e}"));
            } else {
                let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
                    panic!("{}: {e} (bless with SLIPWAY_BLESS=1)", path.display())
                });
                if want != text {
                    mismatches.push(path.display().to_string());
                }
            }
        }
    }
    // The cluster's own artifacts: the pod network manifest.
    if let Some(text) = slipway_render::cni::manifest(&c) {
        let path = dir.join("cni.yaml");
        if bless {
            std::fs::write(&path, &text).unwrap_or_else(|e| panic!("{e}"));
        } else {
            let want = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (bless with SLIPWAY_BLESS=1)", path.display()));
            if want != text {
                mismatches.push(path.display().to_string());
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "rendered output differs from golden files (review, then bless):\n{}",
        mismatches.join("\n")
    );
}

fn validate(c: &Cluster, a: Artifact, text: &str, what: &str) {
    let is_shell = a == Artifact::Install
        || (a == Artifact::InstallConfig && c.os.config_format == ConfigFormat::CloudConfig);
    if is_shell {
        let dir = tempdir(what);
        let path = dir.join("script.sh");
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        let out = Command::new("sh")
            .arg("-n")
            .arg(&path)
            .output()
            .unwrap_or_else(|e| panic!("sh: {e}"));
        assert!(
            out.status.success(),
            "{what}: sh -n: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = std::fs::remove_dir_all(dir);
    }
    let is_ignition = c.os.config_format == ConfigFormat::Ignition
        && matches!(a, Artifact::InstallConfig | Artifact::Installed);
    if is_ignition {
        let (config, warnings) = ignition_config::Config::parse_str(text)
            .unwrap_or_else(|e| panic!("{what}: not Ignition: {e}"));
        assert!(warnings.is_empty(), "{what}: {warnings:?}");
        assert!(
            matches!(config, ignition_config::Config::V3_3(_)),
            "{what}: not spec 3.3"
        );
    }
    if a == Artifact::Installed && c.os.config_format == ConfigFormat::CloudConfig {
        assert!(text.starts_with("#cloud-config\n"), "{what}");
        cloud_init_schema(text, what);
    }
    if a == Artifact::Kubeadm
        || a == Artifact::Installed && c.os.config_format == ConfigFormat::CloudConfig
    {
        for doc in text.split("\n---\n") {
            let loaded =
                slipway_cluster::yaml::parse(doc, &mut slipway_cluster::Diagnostics::new("doc"));
            assert!(loaded.is_some(), "{what}: not YAML:\n{doc}");
        }
    }
    if matches!(a, Artifact::Ipxe | Artifact::IpxeLocal) {
        assert!(text.starts_with("#!ipxe\n"), "{what}");
    }
}

/// `cloud-init schema` knows cloud-init's keys; coreos-cloudinit's own `coreos:` key
/// is checked apart (it is removed before the check, and its units are checked here).
fn cloud_init_schema(text: &str, what: &str) {
    let Ok(probe) = Command::new("cloud-init").arg("--version").output() else {
        panic!(
            "{what}: cloud-init is not installed (apt-get install cloud-init; scripts/test does)"
        );
    };
    assert!(probe.status.success());
    let without_coreos: String = {
        let mut out = String::new();
        let mut skipping = false;
        for line in text.lines() {
            if line.starts_with("coreos:") {
                skipping = true;
                continue;
            }
            if skipping && (line.starts_with(' ') || line.is_empty()) {
                continue;
            }
            skipping = false;
            out.push_str(line);
            out.push('\n');
        }
        out
    };
    let dir = tempdir(what);
    let path = dir.join("user-data");
    std::fs::write(&path, &without_coreos).unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new("cloud-init")
        .args(["schema", "--config-file"])
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && all.contains("Valid"),
        "{what}: cloud-init schema:\n{all}\n---\n{without_coreos}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn tempdir(what: &str) -> PathBuf {
    let tag: String = what
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let dir = std::env::temp_dir().join(format!("slipway-golden-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    dir
}

#[test]
fn lab_artifacts_match_golden_files() {
    golden("lab.yaml");
}

#[test]
fn ha_artifacts_match_golden_files() {
    golden("ha.yaml");
}

#[test]
fn sextant_like_artifacts_match_golden_files() {
    golden("sextant-like.yaml");
}

#[test]
fn rocky_kickstart_artifacts_match_golden_files() {
    golden("rocky-kickstart.yaml");
}

#[test]
fn templates_refuse_undefined_variables() {
    let c = cluster("rocky-kickstart.yaml");
    let err = render(
        &c,
        &c.nodes[0],
        Artifact::Installed,
        &ExampleSecrets,
        Some("host {{ node.hostname }} rack {{ node.metadata.rack }}\n"),
    );
    assert!(
        matches!(err, Err(RenderError::Template(ref m)) if m.contains("undefined")),
        "{err:?}"
    );
    let ok = render(
        &c,
        &c.nodes[1],
        Artifact::Installed,
        &ExampleSecrets,
        Some("host {{ node.hostname }} rack {{ node.metadata.rack }}\n"),
    );
    assert_eq!(ok, Ok("host rw1 rack r2\n".to_string()));
    let syntax = render(
        &c,
        &c.nodes[1],
        Artifact::Installed,
        &ExampleSecrets,
        Some("{% if %}"),
    );
    assert!(
        matches!(syntax, Err(RenderError::Template(_))),
        "{syntax:?}"
    );
}

#[test]
fn external_etcd_is_refused_clearly() {
    let text = std::fs::read_to_string(root().join("examples/lab.yaml")).unwrap_or_default();
    let text = text.replace(
        "    hostname: worker1\n    ip: 10.99.0.21\n",
        "    hostname: worker1\n    ip: 10.99.0.21\n    roles: [worker, etcd]\n",
    );
    let loaded = slipway_cluster::load_str("lab.yaml", &text, Path::new("/"), &NoHost);
    let c = loaded
        .valid()
        .cloned()
        .unwrap_or_else(|| panic!("{}", loaded.diagnostics.render(&text)));
    let err = render(&c, &c.nodes[0], Artifact::Kubeadm, &ExampleSecrets, None);
    assert!(
        matches!(err, Err(RenderError::Unsupported(ref m)) if m.contains("worker1")),
        "{err:?}"
    );
}
