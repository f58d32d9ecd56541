//! coreos-cloudinit cloud-configs (Flatcar and the seeds' CoreOS), built as data.

use serde_json::{Map, Value, json};

use crate::provision::Provision;

/// Writes `p` as a `#cloud-config` document.
pub fn installed(p: &Provision) -> String {
    let mut doc = Map::new();
    doc.insert("hostname".into(), json!(p.hostname));
    let mut user = Map::new();
    user.insert("name".into(), json!(p.user));
    if p.user != "core" {
        user.insert("groups".into(), json!(["sudo", "docker"]));
    }
    if let Some(hash) = &p.password_hash {
        user.insert("passwd".into(), json!(hash));
    }
    if !p.ssh_authorized_keys.is_empty() {
        user.insert("ssh_authorized_keys".into(), json!(p.ssh_authorized_keys));
    }
    doc.insert("users".into(), json!([Value::Object(user)]));
    let files: Vec<Value> = p
        .files
        .iter()
        .map(|f| json!({"path": f.path, "permissions": format!("0{:o}", f.mode), "owner": "root", "content": f.contents}))
        .collect();
    doc.insert("write_files".into(), Value::Array(files));
    let mut units = vec![json!({"name": "systemd-networkd.service", "command": "restart"})];
    units.extend(p.units.iter().map(
        |u| json!({"name": u.name, "enable": true, "command": "start", "content": u.contents}),
    ));
    doc.insert("coreos".into(), json!({"units": units}));
    format!(
        "#cloud-config\n# slipway: first-boot config of {}\n{}",
        p.hostname,
        slipway_cluster::emit::to_yaml(&Value::Object(doc))
    )
}
