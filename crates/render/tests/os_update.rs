//! In-place OS updates on the installed system: `update_engine` pointed at slipway with
//! the cluster's group and its own reboots off, and the reboot coordinator (script,
//! service, timer) asking slipway's reboot lock with the node's `ready` token. Checked
//! on the rendered Ignition config of the lab, and the units with `systemd-analyze
//! verify` where it is installed.

use std::path::Path;

use base64::Engine as _;
use slipway_cluster::{Cluster, NoHost, load_file, load_str};
use slipway_render::{Artifact, ExampleSecrets, render};

fn lab(extra: &str) -> Cluster {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/lab.yaml");
    if extra.is_empty() {
        let (_, loaded) = load_file(&path, &NoHost).unwrap_or_else(|e| panic!("{e}"));
        return loaded.valid().cloned().expect("lab.yaml is valid");
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}")) + extra;
    let dir = path.parent().unwrap_or(Path::new("."));
    let loaded = load_str("lab.yaml", &text, dir, &NoHost);
    assert!(
        !loaded.diagnostics.has_errors(),
        "{}",
        loaded.diagnostics.render(&text)
    );
    loaded.cluster.expect("valid")
}

fn ignition(c: &Cluster, host: &str) -> serde_json::Value {
    let node = c.node_by_hostname(host).expect("node");
    let text = render(c, node, Artifact::Installed, &ExampleSecrets, None)
        .unwrap_or_else(|e| panic!("{e}"));
    serde_json::from_str(&text).expect("Ignition JSON")
}

fn file(config: &serde_json::Value, path: &str) -> Option<(String, u64)> {
    let f = config["storage"]["files"]
        .as_array()?
        .iter()
        .find(|f| f["path"] == path)?;
    let source = f["contents"]["source"].as_str()?;
    let b64 = source.split_once("base64,")?.1;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    Some((String::from_utf8(bytes).ok()?, f["mode"].as_u64()?))
}

fn unit(config: &serde_json::Value, name: &str) -> Option<String> {
    config["systemd"]["units"]
        .as_array()?
        .iter()
        .find(|u| u["name"] == name)
        .and_then(|u| u["contents"].as_str())
        .map(str::to_string)
}

#[test]
fn flatcar_nodes_ask_slipway_for_updates_and_for_the_reboot_lock() {
    let c = lab("");
    let first = c.nodes[0].hostname.clone();
    let config = ignition(&c, &first);
    let (conf, mode) = file(&config, "/etc/flatcar/update.conf").expect("update.conf");
    assert_eq!(
        conf,
        format!(
            "# slipway: in-place OS updates come from slipway, which also coordinates reboots\n\
             GROUP=stable\n\
             SERVER=http://{}:{}/v1/update/\n\
             REBOOT_STRATEGY=off\n",
            c.network.server, c.network.http_port
        )
    );
    assert_eq!(mode, 0o644);
    let (script, mode) =
        file(&config, "/opt/slipway/bin/reboot-coordinator").expect("the coordinator");
    assert_eq!(mode, 0o700, "it holds the node's token");
    let url = format!(
        "http://{}:{}/v1/reboot/{}/0000example0ready0token000000000",
        c.network.server,
        c.network.http_port,
        c.nodes[0].mac.dashed()
    );
    assert!(script.contains(&format!("-X POST '{url}'")), "{script}");
    assert!(
        script.contains("UPDATE_STATUS_UPDATED_NEED_REBOOT"),
        "{script}"
    );
    assert!(script.contains("exec systemctl reboot"), "{script}");
    // It reboots only after a 200: the reboot sits inside the `= 200` branch.
    let grant = script.find("= 200").expect("the 200 check");
    assert!(script.find("systemctl reboot").unwrap_or(0) > grant);
    let service = unit(&config, "slipway-reboot.service").expect("service");
    assert!(service.contains("ExecStart=/opt/slipway/bin/reboot-coordinator"));
    let timer = unit(&config, "slipway-reboot.timer").expect("timer");
    assert!(timer.contains("Unit=slipway-reboot.service"), "{timer}");
    assert!(timer.contains("WantedBy=timers.target"), "{timer}");

    // The shell script is valid sh.
    let dir = std::env::temp_dir().join(format!("slipway-os-update-render-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let script_path = dir.join("reboot-coordinator");
    std::fs::write(&script_path, &script).unwrap_or_else(|e| panic!("{e}"));
    let sh = std::process::Command::new("sh")
        .arg("-n")
        .arg(&script_path)
        .status()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(sh.success(), "sh -n:\n{script}");
    // And the units pass systemd-analyze verify (when installed), the script where the
    // service expects it being stood in for by `--root`-less verification of a copy
    // pointing at the temp file.
    if std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        std::fs::set_permissions(
            &script_path,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let service = service.replace(
            "/opt/slipway/bin/reboot-coordinator",
            script_path.to_str().unwrap_or_default(),
        );
        std::fs::write(dir.join("slipway-reboot.service"), service)
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.join("slipway-reboot.timer"), &timer).unwrap_or_else(|e| panic!("{e}"));
        let out = std::process::Command::new("systemd-analyze")
            .arg("verify")
            .arg(dir.join("slipway-reboot.service"))
            .arg(dir.join("slipway-reboot.timer"))
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let err = String::from_utf8_lossy(&out.stderr);
        // Only what concerns our units counts (the host's own units may warn).
        let ours: Vec<&str> = err
            .lines()
            .filter(|l| l.contains("slipway-reboot"))
            .collect();
        assert!(ours.is_empty(), "systemd-analyze verify:\n{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_group_is_the_clusters_and_os_updates_can_be_off() {
    let c = lab("upgrade:\n  group: canary-1\n");
    let config = ignition(&c, &c.nodes[0].hostname.clone());
    let (conf, _) = file(&config, "/etc/flatcar/update.conf").expect("update.conf");
    assert!(conf.contains("\nGROUP=canary-1\n"), "{conf}");

    let c = lab("upgrade:\n  os_updates: false\n");
    let config = ignition(&c, &c.nodes[0].hostname.clone());
    assert!(file(&config, "/etc/flatcar/update.conf").is_none());
    assert!(file(&config, "/opt/slipway/bin/reboot-coordinator").is_none());
    assert!(unit(&config, "slipway-reboot.timer").is_none());
    assert!(unit(&config, "slipway-reboot.service").is_none());
}

#[test]
fn upgrade_keys_are_checked() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/lab.yaml");
    let base = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
    let dir = path.parent().unwrap_or(Path::new("."));
    for (extra, want) in [
        ("upgrade:\n  group: 'a b'\n", "is not a group name"),
        (
            "upgrade:\n  max_updating: 0\n",
            "`upgrade.max_updating` must be at least 1",
        ),
        (
            "upgrade:\n  period: infinite\n",
            "`upgrade.period` must be a positive duration",
        ),
        (
            "upgrade:\n  reboot_hook: no-such-hook.sh\n",
            "`upgrade.reboot_hook`: no file",
        ),
        (
            "upgrade:\n  max_updatng: 2\n",
            "did you mean `max_updating`?",
        ),
        ("upgrade:\n  safe_mode: maybe\n", "safe_mode"),
    ] {
        let text = base.clone() + extra;
        let loaded = load_str("lab.yaml", &text, dir, &NoHost);
        let rendered = loaded.diagnostics.render(&text);
        assert!(loaded.diagnostics.has_errors(), "{extra}: accepted");
        assert!(rendered.contains(want), "{extra}: {rendered}");
    }
    let text = base.replace("distro: flatcar", "distro: coreos") + "upgrade:\n  os_updates: true\n";
    let loaded = load_str("lab.yaml", &text, dir, &NoHost);
    assert!(
        loaded
            .diagnostics
            .render(&text)
            .contains("needs `os.distro: flatcar`"),
        "{}",
        loaded.diagnostics.render(&text)
    );
}
