//! In-place OS updates on the installed system (`upgrade.os_updates`): Flatcar's
//! `update_engine` pointed at slipway (`/etc/flatcar/update.conf`), its own reboots
//! turned off, and a small reboot coordinator that asks slipway for the reboot lock.
//!
//! The coordinator is a timer and a oneshot service: every few minutes it asks
//! `update_engine_client -status`; when an update is installed and waits for a reboot
//! (`UPDATE_STATUS_UPDATED_NEED_REBOOT`) it `POST`s to slipway's reboot-lock URL and
//! reboots only on a 200, else it tries again at the next tick. The URL carries the
//! node's `ready` report token (the same credential `slipway-ready.service` already
//! holds): nothing new is handed out. After the reboot, `update_engine`'s next check
//! reports the new version and slipway counts the node as done.

use slipway_cluster::{Cluster, Node};

use crate::provision::{File, Unit};
use crate::secrets::Secrets;
use crate::urls::Urls;

/// Where Flatcar's `update_engine` reads its server, group and reboot strategy.
pub const UPDATE_CONF_PATH: &str = "/etc/flatcar/update.conf";
/// The coordinator script (it holds the node's report token: root only).
pub const COORDINATOR_PATH: &str = "/opt/slipway/bin/reboot-coordinator";
/// The coordinator's service.
pub const SERVICE_NAME: &str = "slipway-reboot.service";
/// The coordinator's timer.
pub const TIMER_NAME: &str = "slipway-reboot.timer";

/// The update URL (`SERVER=`): `http://<server>:<port>/v1/update/`.
pub fn update_url(urls: &Urls) -> String {
    format!("{}/v1/update/", urls.base())
}

/// The reboot-lock URL of `node` with its `ready` report token.
pub fn reboot_url(urls: &Urls, node: &Node, token: &str) -> String {
    format!("{}/v1/reboot/{}/{token}", urls.base(), node.mac.dashed())
}

/// `/etc/flatcar/update.conf`: slipway as the update server, the cluster's group, and
/// `REBOOT_STRATEGY=off` (slipway coordinates reboots; locksmith stays out).
pub fn update_conf(cluster: &Cluster, urls: &Urls) -> String {
    format!(
        "# slipway: in-place OS updates come from slipway, which also coordinates reboots\n\
         GROUP={}\n\
         SERVER={}\n\
         REBOOT_STRATEGY=off\n",
        cluster.upgrade.group,
        update_url(urls)
    )
}

/// The coordinator script for `node`, asking `url` for the reboot lock.
pub fn coordinator_script(url: &str) -> String {
    format!(
        "#!/bin/sh\n\
         # slipway: reboot into an installed OS update only when slipway grants the reboot lock.\n\
         set -u\n\
         status=$(update_engine_client -status 2>/dev/null) || exit 0\n\
         case \"$status\" in\n\
         \x20 *UPDATE_STATUS_UPDATED_NEED_REBOOT*) ;;\n\
         \x20 *) exit 0 ;;\n\
         esac\n\
         code=$(curl -sS -o /dev/null -w '%{{http_code}}' --max-time 60 -X POST '{url}') || code=000\n\
         if [ \"$code\" = 200 ]; then\n\
         \x20 echo 'slipway granted the reboot lock: rebooting'\n\
         \x20 exec systemctl reboot\n\
         fi\n\
         echo \"slipway did not grant the reboot lock (HTTP $code): asking again later\"\n"
    )
}

/// The coordinator's oneshot service.
pub fn service_unit() -> String {
    format!(
        "# slipway: ask for the reboot lock once an OS update is installed\n\
         [Unit]\n\
         Description=slipway: reboot into an installed OS update when slipway allows\n\
         Wants=network-online.target\n\
         After=network-online.target update-engine.service\n\
         ConditionPathExists={COORDINATOR_PATH}\n\n\
         [Service]\n\
         Type=oneshot\n\
         ExecStart={COORDINATOR_PATH}\n\n\
         [Install]\n\
         WantedBy=multi-user.target\n"
    )
}

/// The coordinator's timer: every 5 minutes (a little jitter).
pub fn timer_unit() -> String {
    format!(
        "# slipway: ask for the reboot lock every 5 minutes while an update waits\n\
         [Unit]\n\
         Description=slipway: reboot coordinator\n\n\
         [Timer]\n\
         OnBootSec=5min\n\
         OnUnitActiveSec=5min\n\
         RandomizedDelaySec=30s\n\
         Unit={SERVICE_NAME}\n\n\
         [Install]\n\
         WantedBy=timers.target\n"
    )
}

/// What `node`'s installed system gets for OS updates: nothing unless
/// `upgrade.os_updates`; else `update.conf` and, when the node has a report token (its
/// machine is tracked), the coordinator script, service and timer.
pub fn provision(
    cluster: &Cluster,
    node: &Node,
    urls: &Urls,
    secrets: &dyn Secrets,
) -> (Vec<File>, Vec<Unit>) {
    if !cluster.upgrade.os_updates {
        return (Vec::new(), Vec::new());
    }
    let mut files = vec![File {
        path: UPDATE_CONF_PATH.into(),
        contents: update_conf(cluster, urls),
        mode: 0o644,
    }];
    let Some((_, ready)) = secrets.report_tokens(node) else {
        return (files, Vec::new());
    };
    files.push(File {
        path: COORDINATOR_PATH.into(),
        contents: coordinator_script(&reboot_url(urls, node, &ready)),
        mode: 0o700,
    });
    let units = vec![
        Unit {
            name: SERVICE_NAME.into(),
            contents: service_unit(),
        },
        Unit {
            name: TIMER_NAME.into(),
            contents: timer_unit(),
        },
    ];
    (files, units)
}
