//! `slipway kubernetes-upgrade`: the HA example (3 control planes, here 3 workers) moved
//! from v1.31.2 to v1.32.0, walked with a stand-in `--run` that logs when each node
//! starts and ends and keeps the script it was given. Asserted from the log: the first
//! control plane first and alone, every control plane alone, never more than
//! `--max-unavailable` workers at once and that many at some point, hooks around each
//! node; each node got exactly its rendered script (`--write-scripts`), with the SHA-256
//! of the mirror's sysext image. A node that fails halts the walk with the nodes after
//! it untouched, and the same command then goes on from the failed node. A jump of two
//! minors is refused.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// examples/ha.yaml at v1.32.0 with a third worker and the mirror in `dir`, the
/// sysext image in the mirror, and the stand-in `run.sh`.
fn setup(name: &str) -> Dir {
    let dir = std::env::temp_dir().join(format!("slipway-k8s-up-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("mirror/extensions")).unwrap_or_else(|e| panic!("{e}"));
    let text =
        std::fs::read_to_string(root().join("examples/ha.yaml")).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        text.contains("  version: v1.31.2\n")
            && text.contains("  assets: /var/lib/slipway/assets\n")
    );
    let worker2 = "  - {mac: 52:54:00:99:01:12, hostname: worker2, ip: 10.99.0.22}\n";
    assert!(text.contains(worker2), "ha.yaml moved on");
    let text = text
        .replace("  version: v1.31.2\n", "  version: v1.32.0\n")
        .replace(
            "  assets: /var/lib/slipway/assets\n",
            &format!("  assets: {}\n", dir.join("mirror").display()),
        )
        .replace(
            worker2,
            &format!(
                "{worker2}  - {{mac: 52:54:00:99:01:13, hostname: worker3, ip: 10.99.0.23}}\n"
            ),
        );
    std::fs::write(dir.join("ha.yaml"), text).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.join("mirror/extensions/kubernetes-v1.32.0-x86-64.raw"),
        b"the sysext image",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // The stand-in for ssh: logs start and end (nanoseconds), keeps the script, fails
    // for $FAIL_HOST.
    let run = format!(
        "#!/bin/sh\n\
         d={d}\n\
         echo \"start $SLIPWAY_NODE $SLIPWAY_ROLE $(date +%s%N)\" >> $d/log\n\
         cat > $d/got-$1.sh\n\
         sleep 0.3\n\
         if [ \"$1\" = \"$FAIL_HOST\" ]; then echo \"fail $1\" >> $d/log; exit 3; fi\n\
         echo \"end $1 $(date +%s%N)\" >> $d/log\n",
        d = dir.display()
    );
    let path = dir.join("run.sh");
    std::fs::write(&path, run).unwrap_or_else(|e| panic!("{e}"));
    let st = Command::new("chmod")
        .arg("755")
        .arg(&path)
        .status()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(st.success());
    Dir(dir)
}

fn slipway(dir: &Path, args: &[&str], fail_host: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_slipway"))
        .arg("--offline")
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("kubernetes-upgrade")
        .arg(dir.join("ha.yaml"))
        .args(args)
        .env("FAIL_HOST", fail_host)
        .output()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The log's lines as (what, host, time).
fn log(dir: &Path) -> Vec<(String, String, u128)> {
    std::fs::read_to_string(dir.join("log"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // The first number after the host (hooks get the hostname appended).
            let t = f[2..].iter().find_map(|t| t.parse().ok()).unwrap_or(0);
            (f[0].to_string(), f[1].to_string(), t)
        })
        .collect()
}

/// Intervals (host, start, end) of the nodes that ended.
fn intervals(lines: &[(String, String, u128)]) -> Vec<(String, u128, u128)> {
    lines
        .iter()
        .filter(|(w, _, _)| w == "start")
        .filter_map(|(_, h, s)| {
            let end = lines.iter().find(|(w, h2, _)| w == "end" && h2 == h)?;
            Some((h.clone(), *s, end.2))
        })
        .collect()
}

fn overlap(a: &(String, u128, u128), b: &(String, u128, u128)) -> bool {
    a.1 < b.2 && b.1 < a.2
}

#[test]
fn the_walk_follows_kubeadms_order_and_limits() {
    let d = setup("walk");
    let dir = &d.0;
    let run = dir.join("run.sh").display().to_string();

    let dry = slipway(dir, &["--from", "v1.31.2", "--dry-run", "--run", &run], "");
    assert!(dry.status.success(), "{}", text(&dry));
    let t = text(&dry);
    assert!(t.contains("wave 1: cp1 [kubeadm upgrade apply]"), "{t}");
    assert!(t.contains("wave 2: cp2 [kubeadm upgrade node]"), "{t}");
    assert!(t.contains("(dry run: nothing changed)"), "{t}");
    assert!(!dir.join("log").exists(), "a dry run ran something");

    let scripts = dir.join("scripts");
    let w = slipway(
        dir,
        &[
            "--from",
            "v1.31.2",
            "--write-scripts",
            scripts.to_str().unwrap_or_default(),
        ],
        "",
    );
    assert!(w.status.success(), "{}", text(&w));

    let pre = format!(
        "echo \"pre $SLIPWAY_NODE $(date +%s%N)\" >> {}/log",
        dir.display()
    );
    let post = format!(
        "echo \"post $SLIPWAY_NODE $(date +%s%N)\" >> {}/log",
        dir.display()
    );
    let out = slipway(
        dir,
        &[
            "--from",
            "v1.31.2",
            "--max-unavailable",
            "2",
            "--run",
            &run,
            "--pre-hook",
            &pre,
            "--post-hook",
            &post,
        ],
        "",
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("all 6 nodes run v1.32.0"),
        "{}",
        text(&out)
    );
    let lines = log(dir);
    let iv = intervals(&lines);
    assert_eq!(iv.len(), 6, "{lines:?}");
    assert_eq!(iv[0].0, "cp1", "the first control plane first: {iv:?}");
    for (i, a) in iv.iter().enumerate() {
        for b in &iv[i + 1..] {
            if overlap(a, b) {
                assert!(
                    a.0.starts_with("worker") && b.0.starts_with("worker"),
                    "{} and {} at once: {iv:?}",
                    a.0,
                    b.0
                );
            }
        }
        // Each worker starts only after every control plane ended.
        if a.0.starts_with("worker") {
            for cp in iv.iter().filter(|c| c.0.starts_with("cp")) {
                assert!(cp.2 <= a.1, "{} before {} ended", a.0, cp.0);
            }
        }
    }
    let workers: Vec<_> = iv.iter().filter(|i| i.0.starts_with("worker")).collect();
    let most = workers
        .iter()
        .map(|a| workers.iter().filter(|b| overlap(a, b)).count())
        .max()
        .unwrap_or(0);
    assert_eq!(
        most, 2,
        "at most and at some point 2 workers at once: {iv:?}"
    );
    // Hooks: pre before the node's start, post after its end.
    for (host, start, end) in &iv {
        let at = |what: &str| {
            lines
                .iter()
                .find(|(w, h, _)| w == what && h == host)
                .map(|l| l.2)
                .unwrap_or_else(|| panic!("no {what} hook for {host}: {lines:?}"))
        };
        assert!(
            at("pre") <= *start && at("post") >= *end,
            "{host}: {lines:?}"
        );
    }
    // Each node got its own rendered script, checking the mirror's image.
    for (host, _, _) in &iv {
        let got = std::fs::read_to_string(dir.join(format!("got-{host}.sh")))
            .unwrap_or_else(|e| panic!("{host}: {e}"));
        let want = std::fs::read_to_string(scripts.join(format!("{host}.sh")))
            .unwrap_or_else(|e| panic!("{host}: {e}"));
        assert_eq!(got, want, "{host}");
        assert!(got.contains(&format!("on {host},")), "{host}");
    }
    let cp1 = std::fs::read_to_string(scripts.join("cp1.sh")).unwrap_or_default();
    assert!(cp1.contains("kubeadm upgrade apply --yes --certificate-renewal=false"));
    let sum: String = {
        use sha2::Digest as _;
        sha2::Sha256::digest(b"the sysext image")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    assert!(
        cp1.contains(&format!(
            "echo \"{sum}  $dir/$image.part\" | sha256sum --check"
        )),
        "the mirror's image SHA-256 in the script: {cp1}"
    );
    let worker1 = std::fs::read_to_string(scripts.join("worker1.sh")).unwrap_or_default();
    assert!(worker1.contains("kubeadm upgrade node --certificate-renewal=false"));
    assert!(
        scripts.join("order.txt").exists()
            && scripts.join("slipway-kubernetes-upgrade.service").exists()
    );

    // Done: a second run runs nothing.
    let before = log(dir).len();
    let again = slipway(dir, &["--from", "v1.31.2", "--run", &run], "");
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(log(dir).len(), before, "a finished walk ran nodes again");
}

#[test]
fn a_failure_halts_with_the_rest_untouched_and_a_rerun_goes_on() {
    let d = setup("halt");
    let dir = &d.0;
    let run = dir.join("run.sh").display().to_string();
    let out = slipway(dir, &["--from", "v1.31.2", "--run", &run], "cp2");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("HALTED: cp2"), "{t}");
    assert!(
        t.contains("untouched: cp3, worker1, worker2, worker3"),
        "{t}"
    );
    let hosts: Vec<String> = log(dir)
        .into_iter()
        .filter(|l| l.0 == "start")
        .map(|l| l.1)
        .collect();
    assert_eq!(hosts, ["cp1", "cp2"], "nothing after the failure");

    let out = slipway(dir, &["--from", "v1.31.2", "--run", &run], "");
    assert!(out.status.success(), "{}", text(&out));
    let hosts: Vec<String> = log(dir)
        .into_iter()
        .filter(|l| l.0 == "start")
        .map(|l| l.1)
        .collect();
    assert_eq!(
        hosts,
        ["cp1", "cp2", "cp2", "cp3", "worker1", "worker2", "worker3"],
        "the re-run goes on from the failed node"
    );
}

#[test]
fn two_minors_at_once_are_refused() {
    let d = setup("skip");
    let dir = &d.0;
    let run = dir.join("run.sh").display().to_string();
    let out = slipway(dir, &["--from", "v1.30.4", "--run", &run], "");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("v1.31.x first"), "{}", text(&out));
    assert!(!dir.join("log").exists());
}

#[test]
fn a_node_that_hangs_is_killed_at_the_timeout_and_halts() {
    let d = setup("hang");
    let dir = &d.0;
    let started = std::time::Instant::now();
    let out = slipway(
        dir,
        &["--from", "v1.31.2", "--run", "sleep 30 #", "--timeout", "1"],
        "",
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("HALTED: cp1") && t.contains("did not finish in 1 s"),
        "{t}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "not killed in time"
    );
}
