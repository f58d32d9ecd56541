//! Boot override: the `Boot` object PATCHed onto a ComputerSystem.

use serde_json::{Value, json};

use crate::{BootDevice, BootMode, BootOverride};

/// The Redfish `BootSourceOverrideTarget` for a device.
pub(crate) fn target(device: BootDevice) -> &'static str {
    match device {
        BootDevice::Pxe => "Pxe",
        BootDevice::Disk => "Hdd",
        BootDevice::UefiHttp => "UefiHttp",
    }
}

/// The Redfish `BootSourceOverrideMode` for a mode.
pub(crate) fn mode(mode: BootMode) -> &'static str {
    match mode {
        BootMode::Bios => "Legacy",
        BootMode::Uefi => "UEFI",
    }
}

/// The PATCH body for an override.
pub(crate) fn patch_body(boot: BootOverride) -> Value {
    let mut b = json!({
        "BootSourceOverrideTarget": target(boot.device),
        "BootSourceOverrideEnabled": if boot.once { "Once" } else { "Continuous" },
    });
    if let (Some(m), Some(obj)) = (boot.mode, b.as_object_mut()) {
        obj.insert("BootSourceOverrideMode".to_string(), json!(mode(m)));
    }
    json!({ "Boot": b })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bodies_name_target_frequency_and_mode() {
        let b = patch_body(BootOverride {
            device: BootDevice::Pxe,
            once: true,
            mode: None,
        });
        assert_eq!(
            b,
            json!({"Boot": {"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Once"}})
        );
        let b = patch_body(BootOverride {
            device: BootDevice::Disk,
            once: false,
            mode: Some(BootMode::Bios),
        });
        assert_eq!(
            b,
            json!({"Boot": {"BootSourceOverrideTarget": "Hdd", "BootSourceOverrideEnabled": "Continuous",
                "BootSourceOverrideMode": "Legacy"}})
        );
        let b = patch_body(BootOverride {
            device: BootDevice::UefiHttp,
            once: true,
            mode: Some(BootMode::Uefi),
        });
        assert_eq!(b["Boot"]["BootSourceOverrideTarget"], "UefiHttp");
        assert_eq!(b["Boot"]["BootSourceOverrideMode"], "UEFI");
    }
}
