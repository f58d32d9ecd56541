//! Ignition configs (spec 3.3, which every current Flatcar reads), built with the typed
//! `ignition-config` crate: the installed system's config, and the live system's
//! config that runs the install script.

use base64::Engine as _;
use ignition_config::v3_3::{Config, File, Passwd, Resource, Storage, Systemd, Unit, User};

use crate::provision::Provision;

/// The spec version written.
pub const SPEC: &str = "3.3.0";

fn data_url(contents: &str) -> String {
    format!(
        "data:;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(contents)
    )
}

fn file(path: &str, mode: u32, source: String) -> File {
    let mut f = File::new(path.to_string());
    f.mode = Some(i64::from(mode));
    f.overwrite = Some(true);
    f.contents = Some(Resource {
        compression: None,
        http_headers: None,
        source: Some(source),
        verification: None,
    });
    f
}

fn unit(name: &str, contents: &str) -> Unit {
    let mut u = Unit::new(name.to_string());
    u.enabled = Some(true);
    u.contents = Some(contents.to_string());
    u
}

/// Drops `null` fields (the typed structs write every optional field), so the config
/// says only what it sets.
fn strip_nulls(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

fn to_json(c: &Config) -> String {
    // Serializing these plain structs cannot fail.
    let mut v = serde_json::to_value(c).unwrap_or_default();
    strip_nulls(&mut v);
    serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
}

/// The installed system's Ignition config.
pub fn installed(p: &Provision) -> String {
    let mut user = User::new(p.user.clone());
    if !p.ssh_authorized_keys.is_empty() {
        user.ssh_authorized_keys = Some(p.ssh_authorized_keys.clone());
    }
    user.password_hash = p.password_hash.clone();
    if p.user != "core" {
        user.groups = Some(vec!["sudo".into(), "docker".into()]);
    }
    let config = Config {
        passwd: Some(Passwd {
            groups: None,
            users: Some(vec![user]),
        }),
        storage: Some(Storage {
            files: Some(
                p.files
                    .iter()
                    .map(|f| file(&f.path, f.mode, data_url(&f.contents)))
                    .collect(),
            ),
            ..Default::default()
        }),
        systemd: Some(Systemd {
            units: Some(p.units.iter().map(|u| unit(&u.name, &u.contents)).collect()),
        }),
        ..Default::default()
    };
    to_json(&config)
}

/// The live (PXE-booted) system's config: fetch the install script and run it once the
/// network is up.
pub fn install(script_url: &str, ssh_authorized_keys: &[String]) -> String {
    let mut config = Config::default();
    if !ssh_authorized_keys.is_empty() {
        let mut core = User::new("core".into());
        core.ssh_authorized_keys = Some(ssh_authorized_keys.to_vec());
        config.passwd = Some(Passwd {
            groups: None,
            users: Some(vec![core]),
        });
    }
    config.storage = Some(Storage {
        files: Some(vec![file(
            "/opt/slipway/install.sh",
            0o755,
            script_url.to_string(),
        )]),
        ..Default::default()
    });
    let service = "[Unit]\n\
                   Description=slipway: install the OS to disk\n\
                   Wants=network-online.target\n\
                   After=network-online.target\n\n\
                   [Service]\n\
                   Type=oneshot\n\
                   ExecStart=/opt/slipway/install.sh\n\
                   StandardOutput=journal+console\n\n\
                   [Install]\n\
                   WantedBy=multi-user.target\n";
    config.systemd = Some(Systemd {
        units: Some(vec![unit("slipway-install.service", service)]),
    });
    to_json(&config)
}
