//! The IPMI commands this driver sends, their request data and their response
//! parsing, and the meanings of completion codes and RMCP+ status codes.

use crate::{BmcInfo, BootDevice, BootMode, BootOverride, Error, PowerAction, PowerState, Result};

/// Network function: chassis.
pub(crate) const NETFN_CHASSIS: u8 = 0x00;
/// Network function: application.
pub(crate) const NETFN_APP: u8 = 0x06;

/// App: Get Device ID.
pub(crate) const CMD_GET_DEVICE_ID: u8 = 0x01;
/// App: Get Channel Authentication Capabilities.
pub(crate) const CMD_GET_CHANNEL_AUTH_CAPS: u8 = 0x38;
/// App: Set Session Privilege Level.
pub(crate) const CMD_SET_SESSION_PRIVILEGE: u8 = 0x3B;
/// App: Close Session.
pub(crate) const CMD_CLOSE_SESSION: u8 = 0x3C;
/// Chassis: Get Chassis Status.
pub(crate) const CMD_GET_CHASSIS_STATUS: u8 = 0x01;
/// Chassis: Chassis Control.
pub(crate) const CMD_CHASSIS_CONTROL: u8 = 0x02;
/// Chassis: Set System Boot Options.
pub(crate) const CMD_SET_BOOT_OPTIONS: u8 = 0x08;
/// Chassis: Get System Boot Options.
pub(crate) const CMD_GET_BOOT_OPTIONS: u8 = 0x09;

/// Boot option parameter 0: set in progress.
pub(crate) const BOOT_PARAM_SET_IN_PROGRESS: u8 = 0;
/// Boot option parameter 4: boot info acknowledge.
pub(crate) const BOOT_PARAM_INFO_ACK: u8 = 4;
/// Boot option parameter 5: boot flags.
pub(crate) const BOOT_PARAM_BOOT_FLAGS: u8 = 5;

/// Get Channel Authentication Capabilities request data: channel Eh ("this
/// channel") with bit 7 asking for the IPMI v2.0 extended data, and the privilege.
pub(crate) fn channel_auth_caps_request(privilege: u8) -> [u8; 2] {
    [0x8E, privilege & 0x0F]
}

/// Checks a Get Channel Authentication Capabilities response for RMCP+ support.
pub(crate) fn supports_rmcp_plus(data: &[u8]) -> bool {
    // data: channel, auth type support (bit 7: extended capabilities present),
    // flags, extended capabilities (bit 1: IPMI v2.0 connections), OEM ID, aux.
    match (data.get(1), data.get(3)) {
        (Some(types), Some(ext)) => types & 0x80 != 0 && ext & 0x02 != 0,
        _ => false,
    }
}

/// Chassis Control request data byte for an action.
pub(crate) fn chassis_control_code(action: PowerAction) -> u8 {
    match action {
        PowerAction::Off => 0x00,
        PowerAction::On => 0x01,
        PowerAction::Cycle => 0x02,
        PowerAction::Reset => 0x03,
        PowerAction::Soft => 0x05,
    }
}

/// Parses Get Chassis Status response data.
pub(crate) fn parse_chassis_status(data: &[u8]) -> Result<PowerState> {
    let current = data.first().ok_or_else(|| {
        Error::Protocol("Get Chassis Status response has no power state".to_string())
    })?;
    Ok(if current & 0x01 != 0 {
        PowerState::On
    } else {
        PowerState::Off
    })
}

/// Set System Boot Options data for parameter 5 (boot flags, spec table 28-14):
/// parameter selector, then five data bytes.
pub(crate) fn boot_flags_request(boot: BootOverride) -> Result<[u8; 6]> {
    let device = match boot.device {
        BootDevice::Pxe => 0x01,  // force PXE
        BootDevice::Disk => 0x02, // force boot from default hard drive
        BootDevice::UefiHttp => {
            return Err(Error::Unsupported(
                "IPMI has no UEFI HTTP boot device; use Redfish".to_string(),
            ));
        }
    };
    // Byte 1: bit 7 valid, bit 6 persistent (all future boots), bit 5 EFI.
    let mut flags = 0x80;
    if !boot.once {
        flags |= 0x40;
    }
    if boot.mode == Some(BootMode::Uefi) {
        flags |= 0x20;
    }
    // Byte 2: boot device selector in bits 5:2.
    Ok([BOOT_PARAM_BOOT_FLAGS, flags, device << 2, 0, 0, 0])
}

/// The boot override encoded in Get System Boot Options parameter 5 response
/// data, if the flags are valid and name a device this driver knows.
pub(crate) fn parse_boot_flags(data: &[u8]) -> Option<BootOverride> {
    // data: parameter version, parameter valid | selector, then 5 flag bytes.
    let flags = data.get(2..7)?;
    if flags[0] & 0x80 == 0 {
        return None;
    }
    let device = match (flags[1] >> 2) & 0x0F {
        0x01 => BootDevice::Pxe,
        0x02 => BootDevice::Disk,
        _ => return None,
    };
    Some(BootOverride {
        device,
        once: flags[0] & 0x40 == 0,
        mode: Some(if flags[0] & 0x20 != 0 {
            BootMode::Uefi
        } else {
            BootMode::Bios
        }),
    })
}

/// Parses Get Device ID response data.
pub(crate) fn parse_device_id(data: &[u8]) -> Result<BmcInfo> {
    if data.len() < 11 {
        return Err(Error::Protocol(format!(
            "Get Device ID response is {} bytes, expected at least 11",
            data.len()
        )));
    }
    let device_id = data[0];
    let device_rev = data[1] & 0x0F;
    let fw_major = data[2] & 0x7F;
    let fw_minor = data[3];
    let manufacturer = u32::from_le_bytes([data[6], data[7], data[8] & 0x0F, 0]);
    let product = u16::from_le_bytes([data[9], data[10]]);
    // The minor revision is BCD: 08h is ".08".
    let firmware = if fw_minor >> 4 <= 9 && fw_minor & 0x0F <= 9 {
        format!("{fw_major}.{fw_minor:02x}")
    } else {
        format!("{fw_major}.{fw_minor}")
    };
    let manufacturer = match manufacturer_name(manufacturer) {
        Some(name) => format!("{name} ({manufacturer})"),
        None => format!("IANA {manufacturer}"),
    };
    Ok(BmcInfo {
        manufacturer,
        model: format!("product {product:#06x}, device {device_id:#04x} rev {device_rev}"),
        firmware,
    })
}

/// Names of common BMC vendors by IANA enterprise number.
fn manufacturer_name(iana: u32) -> Option<&'static str> {
    Some(match iana {
        2 => "IBM",
        11 => "Hewlett-Packard",
        343 => "Intel",
        674 => "Dell",
        2011 => "Huawei",
        4753 => "MontaVista",
        5771 => "Cisco",
        7244 => "Quanta",
        10368 => "Fujitsu",
        10876 => "Supermicro",
        11129 => "Google",
        15370 => "Giga-Byte",
        19046 => "Lenovo",
        20974 => "American Megatrends",
        40981 => "Facebook",
        49622 => "OpenBMC",
        _ => return None,
    })
}

/// What a completion code means (spec table 5-2), with the command-specific codes
/// of the commands this driver sends.
pub(crate) fn completion_code_meaning(netfn: u8, cmd: u8, cc: u8) -> String {
    let generic = match cc {
        0xC0 => "node busy",
        0xC1 => "invalid command (not supported)",
        0xC2 => "command invalid for the given LUN",
        0xC3 => "timeout while processing the command",
        0xC4 => "out of space",
        0xC5 => "reservation cancelled or invalid",
        0xC6 => "request data truncated",
        0xC7 => "request data length invalid",
        0xC8 => "request data field length limit exceeded",
        0xC9 => "parameter out of range",
        0xCA => "cannot return the number of requested data bytes",
        0xCB => "requested sensor, data or record not present",
        0xCC => "invalid data field in request",
        0xCD => "command illegal for the specified sensor or record type",
        0xCE => "command response could not be provided",
        0xCF => "cannot execute duplicated request",
        0xD0 => "SDR repository in update mode",
        0xD1 => "device in firmware update mode",
        0xD2 => "BMC initialization in progress",
        0xD3 => "destination unavailable",
        0xD4 => "insufficient privilege level",
        0xD5 => "command not supported in the present state",
        0xD6 => "command sub-function disabled or unavailable",
        0xFF => "unspecified error",
        _ => "",
    };
    let specific = match (netfn, cmd, cc) {
        (NETFN_CHASSIS, CMD_SET_BOOT_OPTIONS, 0x80) => "parameter not supported",
        (NETFN_CHASSIS, CMD_SET_BOOT_OPTIONS, 0x81) => {
            "attempt to set 'set in progress' while not in 'set complete' state"
        }
        (NETFN_CHASSIS, CMD_SET_BOOT_OPTIONS, 0x82) => "attempt to write a read-only parameter",
        (NETFN_APP, CMD_SET_SESSION_PRIVILEGE, 0x80) => {
            "requested level not available for this user"
        }
        (NETFN_APP, CMD_SET_SESSION_PRIVILEGE, 0x81) => {
            "requested level exceeds the channel or user privilege limit"
        }
        (NETFN_APP, CMD_SET_SESSION_PRIVILEGE, 0x82) => "cannot disable user-level authentication",
        (NETFN_APP, CMD_CLOSE_SESSION, 0x87) => "invalid session ID",
        _ => "",
    };
    let text = if !specific.is_empty() {
        specific
    } else if !generic.is_empty() {
        generic
    } else if (0x01..=0x7E).contains(&cc) {
        "OEM completion code"
    } else if (0x80..=0xBE).contains(&cc) {
        "command-specific completion code"
    } else {
        "unknown completion code"
    };
    format!("completion code {cc:#04x}: {text}")
}

/// What an RMCP+ status code (Open Session Response, RAKP 2 and 4) means (spec
/// table 13-15).
pub(crate) fn rmcp_status_meaning(status: u8) -> &'static str {
    match status {
        0x00 => "no errors",
        0x01 => "insufficient resources to create a session",
        0x02 => "invalid session ID",
        0x03 => "invalid payload type",
        0x04 => "invalid authentication algorithm",
        0x05 => "invalid integrity algorithm",
        0x06 => "no matching authentication payload",
        0x07 => "no matching integrity payload",
        0x08 => "inactive session ID",
        0x09 => "invalid role",
        0x0A => "unauthorized role or privilege level requested",
        0x0B => "insufficient resources to create a session at the requested role",
        0x0C => "invalid name length",
        0x0D => "unauthorized name",
        0x0E => "unauthorized GUID",
        0x0F => "invalid integrity check value",
        0x10 => "invalid confidentiality algorithm",
        0x11 => "no cipher suite match with proposed security algorithms",
        0x12 => "illegal or unrecognized parameter",
        _ => "unknown status code",
    }
}

/// Whether an RMCP+ status code says the proposed algorithms are not supported.
pub(crate) fn status_is_unsupported_suite(status: u8) -> bool {
    matches!(status, 0x03..=0x07 | 0x10 | 0x11)
}

/// Whether an RMCP+ status code is about the user's credentials or rights.
pub(crate) fn status_is_auth(status: u8) -> bool {
    matches!(status, 0x09 | 0x0A | 0x0C..=0x0F)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn boot_flags_bits() {
        let f =
            |device, once, mode| boot_flags_request(BootOverride { device, once, mode }).unwrap();
        assert_eq!(f(BootDevice::Pxe, true, None), [5, 0x80, 0x04, 0, 0, 0]);
        assert_eq!(
            f(BootDevice::Disk, false, Some(BootMode::Uefi)),
            [5, 0xE0, 0x08, 0, 0, 0]
        );
        assert_eq!(
            f(BootDevice::Pxe, false, Some(BootMode::Bios)),
            [5, 0xC0, 0x04, 0, 0, 0]
        );
        assert!(matches!(
            boot_flags_request(BootOverride {
                device: BootDevice::UefiHttp,
                once: true,
                mode: None
            }),
            Err(Error::Unsupported(_))
        ));
        // The Get response carries version, selector, then the same five bytes.
        let got = parse_boot_flags(&[1, 5, 0xE0, 0x08, 0, 0, 0]).unwrap();
        assert_eq!(
            got,
            BootOverride {
                device: BootDevice::Disk,
                once: false,
                mode: Some(BootMode::Uefi)
            }
        );
        assert_eq!(parse_boot_flags(&[1, 5, 0x00, 0x04, 0, 0, 0]), None);
        assert_eq!(parse_boot_flags(&[1, 5, 0x80]), None);
    }

    #[test]
    fn device_id_like_ipmitool() {
        // ipmi_sim's "mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02".
        let data = [
            0x00, 0x03, 0x09, 0x08, 0x02, 0x9F, 0x91, 0x12, 0x00, 0x02, 0x0F,
        ];
        let info = parse_device_id(&data).unwrap();
        assert_eq!(info.firmware, "9.08");
        assert_eq!(info.manufacturer, "MontaVista (4753)");
        assert_eq!(info.model, "product 0x0f02, device 0x00 rev 3");
        assert!(parse_device_id(&data[..10]).is_err());
    }

    #[test]
    fn chassis_status() {
        assert_eq!(parse_chassis_status(&[0x01, 0, 0]).unwrap(), PowerState::On);
        assert_eq!(
            parse_chassis_status(&[0x60, 0, 0]).unwrap(),
            PowerState::Off
        );
        assert!(parse_chassis_status(&[]).is_err());
    }

    #[test]
    fn code_meanings() {
        assert_eq!(
            completion_code_meaning(NETFN_CHASSIS, CMD_CHASSIS_CONTROL, 0xD4),
            "completion code 0xd4: insufficient privilege level"
        );
        assert!(
            completion_code_meaning(NETFN_CHASSIS, CMD_SET_BOOT_OPTIONS, 0x80)
                .contains("parameter not supported")
        );
        assert!(completion_code_meaning(0, 0, 0x90).contains("command-specific"));
        assert_eq!(rmcp_status_meaning(0x0D), "unauthorized name");
        assert!(status_is_auth(0x0F) && !status_is_auth(0x11));
        assert!(status_is_unsupported_suite(0x04));
    }
}
