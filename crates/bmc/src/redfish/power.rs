//! Power: reading `PowerState`, and choosing the `ComputerSystem.Reset` requests
//! for a [`PowerAction`] from what the system allows.

use serde_json::Value;

use super::json::{clean_path, clean_text, str_prop};
use crate::{Error, PowerAction, PowerState, Result};

/// The power state in a ComputerSystem. A transition counts as where it is going
/// (`PoweringOn` is on, `PoweringOff` is off); `Paused` is on.
pub(crate) fn power_state(system: &Value) -> Result<PowerState> {
    match str_prop(system, "PowerState") {
        Some("On" | "PoweringOn" | "Paused") => Ok(PowerState::On),
        Some("Off" | "PoweringOff") => Ok(PowerState::Off),
        Some(other) => Err(Error::Protocol(format!(
            "unknown PowerState {:?}",
            clean_text(other, 40)
        ))),
        None => Err(Error::Protocol(
            "the ComputerSystem has no PowerState".to_string(),
        )),
    }
}

/// Whether the system is fully off: `PowerState` is `Off`, not `PoweringOff`
/// (powering on during the power-off may be refused or lost).
pub(crate) fn is_off(system: &Value) -> bool {
    str_prop(system, "PowerState") == Some("Off")
}

/// Where to POST a reset, and which `ResetType`s it takes (`None`: not said).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResetAction {
    /// The action's target path.
    pub(crate) target: String,
    /// `ResetType@Redfish.AllowableValues`, or the ActionInfo's, if given.
    pub(crate) allowed: Option<Vec<String>>,
    /// The `@Redfish.ActionInfo` link, to read when `allowed` is not inline.
    pub(crate) action_info: Option<String>,
}

/// The reset action of a ComputerSystem at `system_path`, falling back to the
/// standard target when the system does not name one.
pub(crate) fn reset_action(system_path: &str, system: &Value) -> ResetAction {
    let action = system
        .get("Actions")
        .and_then(|a| a.get("#ComputerSystem.Reset"));
    let target = action
        .and_then(|a| str_prop(a, "target"))
        .and_then(clean_path)
        .unwrap_or_else(|| format!("{system_path}/Actions/ComputerSystem.Reset"));
    let allowed = action
        .and_then(|a| a.get("ResetType@Redfish.AllowableValues"))
        .and_then(string_list);
    let action_info = action
        .and_then(|a| str_prop(a, "@Redfish.ActionInfo"))
        .and_then(clean_path);
    ResetAction {
        target,
        allowed,
        action_info,
    }
}

/// `AllowableValues` of the `ResetType` parameter in an ActionInfo resource.
pub(crate) fn action_info_reset_types(info: &Value) -> Option<Vec<String>> {
    info.get("Parameters")?
        .as_array()?
        .iter()
        .find(|p| str_prop(p, "Name") == Some("ResetType"))?
        .get("AllowableValues")
        .and_then(string_list)
}

fn string_list(v: &Value) -> Option<Vec<String>> {
    Some(
        v.as_array()?
            .iter()
            .filter_map(Value::as_str)
            .take(64)
            .map(|s| clean_text(s, 64))
            .collect(),
    )
}

/// One step of a power action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// POST the reset action with this `ResetType`.
    Reset(&'static str),
    /// Wait until the system reports `Off`.
    WaitOff,
}

/// The steps for `action`, given the allowed reset types (`None`: unknown, so
/// try the standard one) and the present state (used when `PowerCycle` must be
/// done as `ForceOff`, wait, `On`).
pub(crate) fn plan(
    action: PowerAction,
    allowed: Option<&[String]>,
    state: Option<PowerState>,
) -> Result<Vec<Step>> {
    let ok = |t: &str| allowed.is_none_or(|a| a.iter().any(|x| x == t));
    let pick = |choices: &[&'static str]| choices.iter().copied().find(|t| ok(t));
    let unsupported = |wanted: &str| {
        Error::Unsupported(format!(
            "power {action}: the system allows no {wanted} (ResetType allowed: {})",
            allowed.map(|a| a.join(", ")).unwrap_or_default()
        ))
    };
    let one = |choices: &[&'static str]| {
        pick(choices)
            .map(|t| vec![Step::Reset(t)])
            .ok_or_else(|| unsupported(&choices.join(" or ")))
    };
    match action {
        PowerAction::On => one(&["On", "ForceOn"]),
        PowerAction::Off => one(&["ForceOff"]),
        PowerAction::Reset => one(&["ForceRestart"]),
        PowerAction::Soft => one(&["GracefulShutdown"]),
        PowerAction::Cycle => {
            if ok("PowerCycle") {
                return Ok(vec![Step::Reset("PowerCycle")]);
            }
            let on = pick(&["On", "ForceOn"])
                .ok_or_else(|| unsupported("PowerCycle, nor ForceOff and On"))?;
            if state == Some(PowerState::Off) {
                return Ok(vec![Step::Reset(on)]);
            }
            if !ok("ForceOff") {
                return Err(unsupported("PowerCycle, nor ForceOff and On"));
            }
            Ok(vec![
                Step::Reset("ForceOff"),
                Step::WaitOff,
                Step::Reset(on),
            ])
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn power_states_map_transitions_to_their_end() {
        for (s, want) in [
            ("On", PowerState::On),
            ("PoweringOn", PowerState::On),
            ("Paused", PowerState::On),
            ("Off", PowerState::Off),
            ("PoweringOff", PowerState::Off),
        ] {
            assert_eq!(power_state(&json!({ "PowerState": s })).unwrap(), want);
        }
        assert!(matches!(
            power_state(&json!({"PowerState": "Exploded"})),
            Err(Error::Protocol(_))
        ));
        assert!(matches!(
            power_state(&json!({"PowerState": 1})),
            Err(Error::Protocol(_))
        ));
        assert!(power_state(&json!({})).is_err());
        assert!(is_off(&json!({"PowerState": "Off"})));
        assert!(!is_off(&json!({"PowerState": "PoweringOff"})));
    }

    #[test]
    fn reset_action_reads_target_and_allowed_values() {
        let sys = json!({"Actions": {"#ComputerSystem.Reset": {
            "target": "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset",
            "ResetType@Redfish.AllowableValues": ["On", "ForceOff"]}}});
        let a = reset_action("/redfish/v1/Systems/1", &sys);
        assert_eq!(
            a.target,
            "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset"
        );
        assert_eq!(a.allowed, Some(strings(&["On", "ForceOff"])));
        let a = reset_action(
            "/redfish/v1/Systems/x",
            &json!({"Actions": {"#ComputerSystem.Reset": {"target": "//evil/x"}}}),
        );
        assert_eq!(
            a.target,
            "/redfish/v1/Systems/x/Actions/ComputerSystem.Reset"
        );
        assert_eq!(a.allowed, None);
        let a = reset_action(
            "/s",
            &json!({"Actions": {"#ComputerSystem.Reset": {"@Redfish.ActionInfo": "/s/ResetActionInfo"}}}),
        );
        assert_eq!(a.action_info.as_deref(), Some("/s/ResetActionInfo"));
        let info = json!({"Parameters": [{"Name": "Other"}, {"Name": "ResetType", "AllowableValues": ["On", "PowerCycle"]}]});
        assert_eq!(
            action_info_reset_types(&info),
            Some(strings(&["On", "PowerCycle"]))
        );
    }

    #[test]
    fn plans_follow_allowed_values() {
        use PowerAction::*;
        assert_eq!(plan(On, None, None).unwrap(), vec![Step::Reset("On")]);
        assert_eq!(
            plan(Off, None, None).unwrap(),
            vec![Step::Reset("ForceOff")]
        );
        assert_eq!(
            plan(Reset, None, None).unwrap(),
            vec![Step::Reset("ForceRestart")]
        );
        assert_eq!(
            plan(Soft, None, None).unwrap(),
            vec![Step::Reset("GracefulShutdown")]
        );
        assert_eq!(
            plan(Cycle, None, None).unwrap(),
            vec![Step::Reset("PowerCycle")]
        );

        let sushy = strings(&[
            "On",
            "ForceOff",
            "GracefulShutdown",
            "GracefulRestart",
            "ForceRestart",
            "Nmi",
            "ForceOn",
        ]);
        assert_eq!(
            plan(Cycle, Some(&sushy), Some(PowerState::On)).unwrap(),
            vec![Step::Reset("ForceOff"), Step::WaitOff, Step::Reset("On")]
        );
        assert_eq!(
            plan(Cycle, Some(&sushy), Some(PowerState::Off)).unwrap(),
            vec![Step::Reset("On")]
        );
        let force_on_only = strings(&["ForceOn", "ForceOff"]);
        assert_eq!(
            plan(On, Some(&force_on_only), None).unwrap(),
            vec![Step::Reset("ForceOn")]
        );
        let err = plan(Soft, Some(&force_on_only), None).unwrap_err();
        assert!(
            matches!(err, Error::Unsupported(ref m) if m.contains("GracefulShutdown") && m.contains("ForceOn, ForceOff"))
        );
        assert!(plan(Cycle, Some(&strings(&["On"])), Some(PowerState::On)).is_err());
    }
}
