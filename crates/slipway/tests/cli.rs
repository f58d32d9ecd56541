//! The `slipway` binary as a user runs it: exit codes, what goes to stdout and stderr.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use base64::Engine as _;

fn slipway(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run slipway: {e}"))
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A scratch file in its own directory, removed when the test ends (pass or fail).
struct Tmp(PathBuf);

impl Tmp {
    fn path(&self) -> &Path {
        &self.0
    }
    fn to_str(&self) -> Option<&str> {
        self.0.to_str()
    }
}

impl std::ops::Deref for Tmp {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Tmp {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn tmp(name: &str) -> Tmp {
    let dir = std::env::temp_dir().join(format!("slipway-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    Tmp(dir.join(name))
}

#[test]
fn check_accepts_every_example_and_prints_the_node_table() {
    for name in ["lab.yaml", "sextant-like.yaml", "fleet-1000.yaml"] {
        let path = root().join("examples").join(name);
        let out = slipway(&["check", path.to_str().unwrap_or_default()]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out.stderr));
        let stdout = text(&out.stdout);
        let header = ["HOSTNAME", "MAC", "IP", "ROLES", "DISK", "PROFILE"];
        assert!(
            stdout.lines().any(|l| l.split_whitespace().eq(header)),
            "{stdout}"
        );
    }
    let out = slipway(&[
        "check",
        root()
            .join("examples/lab.yaml")
            .to_str()
            .unwrap_or_default(),
    ]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(
            "cluster    lab (domain lab.slipway.test): 3 nodes, 1 control-plane, 1 etcd, 2 worker"
        ),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == [
                    "cp1",
                    "52:54:00:99:00:01",
                    "10.99.0.11",
                    "control-plane,etcd",
                    "/dev/vda",
                    "-"
                ]),
        "{stdout}"
    );
}

#[test]
fn check_takes_several_files_and_exits_with_the_worst() {
    let mut files: Vec<String> = std::fs::read_dir(root().join("examples"))
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    let mut args = vec!["check"];
    args.extend(files.iter().map(String::as_str));
    let out = slipway(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let headers = text(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("== "))
        .count();
    assert_eq!(headers, files.len());

    let broken = tmp("several-broken.yaml");
    std::fs::write(broken.path(), "cluster: {name: x}\n").unwrap_or_else(|e| panic!("{e}"));
    args.push(broken.to_str().unwrap_or_default());
    assert_eq!(slipway(&args).status.code(), Some(2));
    let out = slipway(&["check", "-o", "json", &files[0], &files[1]]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "slipway: --output yaml|json takes exactly one file (2 given)\n"
    );
}

#[test]
fn a_broken_file_exits_2_with_positions_the_line_and_a_caret() {
    let path = tmp("broken.yaml");
    let lab = std::fs::read_to_string(root().join("examples/lab.yaml")).unwrap_or_default();
    let broken = lab
        .replace("    hostname: worker1", "    hostnme: worker1")
        .replace("ip: 10.99.0.22", "ip: 10.99.1.22");
    std::fs::write(path.path(), &broken).unwrap_or_else(|e| panic!("{e}"));
    let p = path.to_str().unwrap_or_default();
    let out = slipway(&["check", p]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout for an invalid file"
    );
    let stderr = text(&out.stderr);
    let line_of = |needle: &str| {
        broken
            .lines()
            .position(|l| l.contains(needle))
            .map_or(0, |i| i + 1)
    };
    let l1 = line_of("hostnme");
    let l2 = line_of("10.99.1.22");
    let expected = format!(
        "{p}:{l1}:5: error: unknown key `hostnme` in a node\n   |\n{l1} |     hostnme: worker1\n   |     ^^^^^^^\n   = help: did you mean `hostname`?\n\
         {p}:{l2}:9: error: address 10.99.1.22 is outside the subnet 10.99.0.0/24\n   |\n{l2} |     ip: 10.99.1.22\n   |         ^^^^^^^^^^\n\
         {p}: 2 errors found\n"
    );
    assert_eq!(stderr, expected);
}

#[test]
fn json_and_yaml_output_are_the_completed_cluster() {
    let lab = root().join("examples/lab.yaml");
    let out = slipway(&[
        "check",
        "--output",
        "json",
        lab.to_str().unwrap_or_default(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON: {e}"));
    assert_eq!(
        v["nodes"][0]["roles"],
        serde_json::json!(["control-plane", "etcd"])
    );
    assert_eq!(v["kubernetes"]["cluster_dns"], "10.100.0.10");
    assert_eq!(v["network"]["dhcp"]["lease_time"], "1h");

    let out = slipway(&["check", "-o", "yaml", lab.to_str().unwrap_or_default()]);
    assert_eq!(out.status.code(), Some(0));
    let completed = tmp("completed.yaml");
    std::fs::write(completed.path(), &out.stdout).unwrap_or_else(|e| panic!("{e}"));
    let again = slipway(&[
        "check",
        "-o",
        "json",
        completed.to_str().unwrap_or_default(),
    ]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    let w: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap_or_default();
    assert_eq!(v, w, "the completed YAML completes to the same cluster");
}

#[test]
fn convert_from_sextant_then_check() {
    let fixture = root().join("crates/cluster/tests/data/sextant-cluster-desc.yml");
    let dest = tmp("from-sextant.yaml");
    let out = slipway(&[
        "convert",
        "--from",
        "sextant",
        fixture.to_str().unwrap_or_default(),
        "-o",
        dest.to_str().unwrap_or_default(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("note: `ceph` not carried"), "{stderr}");
    let check = slipway(&["check", dest.to_str().unwrap_or_default()]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stderr));
    assert!(text(&check.stdout).contains("5 nodes, 1 control-plane, 3 etcd, 4 worker"));
}

#[test]
fn a_missing_file_is_a_clear_error_with_exit_1() {
    let out = slipway(&["check", "/nonexistent/cluster.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "slipway: cannot read /nonexistent/cluster.yaml: No such file or directory (os error 2)\n"
    );
}

#[test]
fn binary_garbage_is_refused_not_panicked_on() {
    let path = tmp("garbage.yaml");
    std::fs::write(path.path(), [0xff, 0xfe, 0x00, b'a', b':']).unwrap_or_else(|e| panic!("{e}"));
    let out = slipway(&["check", path.to_str().unwrap_or_default()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not UTF-8 text (byte 0)"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn offline_check_needs_the_server_address() {
    let path = tmp("noserver.yaml");
    let lab = std::fs::read_to_string(root().join("examples/lab.yaml")).unwrap_or_default();
    std::fs::write(
        &path,
        lab.replace("  server: 10.99.0.1 ", "  # server removed ")
            .replace("interface: br0", "interface: slipway-no-such0"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = slipway(&["check", "--offline", path.to_str().unwrap_or_default()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr)
            .contains("error: interface `slipway-no-such0` does not exist on this machine"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn render_prints_what_the_machine_gets() {
    let lab = root().join("examples/lab.yaml");
    let lab = lab.to_str().unwrap_or_default();
    let out = slipway(&[
        "render",
        lab,
        "--node",
        "52-54-00-99-00-02",
        "--artifact",
        "ipxe",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let expected =
        std::fs::read_to_string(root().join("crates/render/tests/golden/lab/worker1/install.ipxe"))
            .unwrap_or_default();
    assert_eq!(
        text(&out.stdout),
        expected,
        "the CLI prints the golden artifact"
    );
    let out = slipway(&["render", lab, "--node", "cp1", "--artifact", "pxelinux"]);
    assert!(text(&out.stdout).contains("kernel 4081.2.0/flatcar_production_pxe.vmlinuz"));

    let out = slipway(&["render", lab, "--node", "nosuch"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no node `nosuch`"));
    let out = slipway(&["render", lab, "--node", "cp1", "--artifact", "cloud-config"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("use `--artifact installed`"),
        "{}",
        text(&out.stderr)
    );

    // Secrets come from the PKI in the state directory, made on first use.
    let state = tmp("state");
    let out = slipway(&[
        "--state-dir",
        state.to_str().unwrap_or_default(),
        "render",
        lab,
        "--node",
        "worker1",
        "--artifact",
        "kubeadm",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // No shared token: the worker joins with its own credential, in a file.
    assert!(state.join("pki/ca.key").exists());
    assert!(!state.join("pki/token").exists() && !state.join("pki/certificate-key").exists());
    let kubeadm = text(&out.stdout);
    assert!(
        kubeadm.contains("kubeConfigPath: /etc/kubernetes/slipway-join.conf")
            && !kubeadm.contains("token:")
            && !kubeadm.contains("certificateKey"),
        "{kubeadm}"
    );
    let out = slipway(&[
        "--state-dir",
        state.to_str().unwrap_or_default(),
        "render",
        lab,
        "--node",
        "worker1",
        "--artifact",
        "installed",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let ign: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let files = ign["storage"]["files"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let join = files
        .iter()
        .find(|f| f["path"] == "/etc/kubernetes/slipway-join.conf")
        .unwrap_or_else(|| panic!("no join kubeconfig in {ign}"));
    assert_eq!(join["mode"], 0o600);
    let conf = join["contents"]["source"]
        .as_str()
        .and_then(|s| s.strip_prefix("data:;base64,"))
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    assert!(
        conf.contains("name: \"system:bootstrap:slipway-worker1\"")
            && conf.contains("client-key-data: "),
        "{conf}"
    );
    // The cluster CA of the state directory is embedded.
    let ca = std::fs::read_to_string(state.join("pki/ca.crt")).unwrap_or_default();
    assert!(
        !ca.is_empty() && conf.contains(&base64::engine::general_purpose::STANDARD.encode(&ca)),
        "{conf}"
    );
    let status = slipway(&[
        "--state-dir",
        state.to_str().unwrap_or_default(),
        "pki",
        lab,
        "status",
    ]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status.stderr));
    assert!(
        text(&status.stdout)
            .lines()
            .any(|l| l.starts_with("apiserver ") && l.contains("cp1")),
        "{}",
        text(&status.stdout)
    );
}

#[test]
fn render_all_writes_every_artifact_of_every_node_privately() {
    use std::os::unix::fs::PermissionsExt;
    let lab = root().join("examples/lab.yaml");
    let lab = lab.to_str().unwrap_or_default();
    let out_dir = tmp("all");
    let to = out_dir.as_ref().to_str().unwrap_or_default();
    let out = slipway(&["render", lab, "--all", "--to", to, "--example-secrets"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("rendered 24 files"),
        "{}",
        text(&out.stderr)
    );
    let dir = out_dir.as_ref().join("worker1");
    let mode = std::fs::metadata(&dir).map(|m| m.permissions().mode() & 0o777);
    assert_eq!(mode.ok(), Some(0o700));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "grub.cfg",
            "install-config.ign",
            "install.ipxe",
            "install.sh",
            "installed.ign",
            "kubeadm.yaml",
            "local.ipxe",
            "pxelinux.cfg"
        ]
    );
    for n in &names {
        let m = std::fs::metadata(dir.join(n)).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(m.ok(), Some(0o600), "{n}");
    }
    // The same bytes as `render --node`.
    let one = slipway(&["render", lab, "--node", "worker1", "--artifact", "ipxe"]);
    let written = std::fs::read_to_string(dir.join("install.ipxe")).unwrap_or_default();
    assert_eq!(text(&one.stdout), written);
    // --all needs --to, and excludes --node.
    let out = slipway(&["render", lab, "--all"]);
    assert_eq!(out.status.code(), Some(2));
    let out = slipway(&["render", lab, "--all", "--to", to, "--node", "cp1"]);
    assert_eq!(out.status.code(), Some(2));
}
