//! Finding things on a Redfish service: links in the service root, the members
//! of (paged) collections, the ComputerSystem to drive, and its Manager.

use serde_json::Value;

use super::http::Http;
use super::json::{
    MAX_MEMBERS, clean_text, last_segment, link, members, next_link, odata_id, str_prop,
};
use crate::{Error, Result};

/// The most collection pages followed.
const MAX_PAGES: usize = 32;
/// The most systems fetched one by one to match a configured name or UUID.
const MAX_PROBED: usize = 64;

/// The service root's link to `key` (`Systems`, `Managers`, ...), or the standard path.
pub(crate) fn root_link(root: &Value, key: &str) -> String {
    link(root, key).unwrap_or_else(|| format!("/redfish/v1/{key}"))
}

/// The session collection the service root names, if it names one.
pub(crate) fn sessions_link(root: &Value) -> Option<String> {
    root.get("Links")
        .and_then(|l| link(l, "Sessions"))
        .or_else(|| {
            // Some services only link the SessionService; its collection is standard.
            link(root, "SessionService").map(|s| format!("{s}/Sessions"))
        })
}

/// The Manager of a system: the first of its `Links.ManagedBy`.
pub(crate) fn managed_by(system: &Value) -> Option<String> {
    system
        .get("Links")?
        .get("ManagedBy")?
        .as_array()?
        .iter()
        .find_map(odata_id)
}

/// All member links of a collection, following `Members@odata.nextLink`.
pub(crate) fn collection(http: &mut Http, path: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut page = Some(path.to_string());
    let mut pages = 0;
    while let Some(p) = page.take() {
        pages += 1;
        let value = http.get(&p)?.value;
        out.extend(members(&value));
        if out.len() >= MAX_MEMBERS || pages >= MAX_PAGES {
            break;
        }
        page = next_link(&value).filter(|n| *n != p);
    }
    out.truncate(MAX_MEMBERS);
    Ok(out)
}

/// Picks the ComputerSystem: the only one, or the one `wanted` names (by its
/// `@odata.id` path, its id, or, fetching each, its `Id`, `Name` or `UUID`).
pub(crate) fn select_system(
    http: &mut Http,
    systems_path: &str,
    wanted: Option<&str>,
) -> Result<String> {
    let all = collection(http, systems_path)?;
    let list = || all.join(", ");
    let Some(wanted) = wanted.map(str::trim).filter(|w| !w.is_empty()) else {
        return match all.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(Error::Protocol(format!(
                "{}: the BMC lists no ComputerSystem in {systems_path}",
                http.addr()
            ))),
            _ => Err(Error::Protocol(format!(
                "{}: the BMC has {} ComputerSystems ({}); choose one with the `system` setting",
                http.addr(),
                all.len(),
                list()
            ))),
        };
    };
    let wanted_path = wanted.trim_end_matches('/');
    if let Some(p) = all
        .iter()
        .find(|p| p.as_str() == wanted_path || last_segment(p) == wanted)
    {
        return Ok(p.clone());
    }
    for p in all.iter().take(MAX_PROBED) {
        let sys = http.get(p)?.value;
        let hit = ["Id", "Name"]
            .iter()
            .any(|k| str_prop(&sys, k) == Some(wanted))
            || str_prop(&sys, "UUID").is_some_and(|u| u.eq_ignore_ascii_case(wanted));
        if hit {
            return Ok(p.clone());
        }
    }
    Err(Error::Protocol(format!(
        "{}: no ComputerSystem {:?}; the BMC has: {}",
        http.addr(),
        clean_text(wanted, 200),
        if all.is_empty() {
            "none".to_string()
        } else {
            list()
        }
    )))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn links_from_the_service_root() {
        assert_eq!(root_link(&json!({}), "Systems"), "/redfish/v1/Systems");
        assert_eq!(
            root_link(&json!({"Systems": {"@odata.id": "/rf/Systems"}}), "Systems"),
            "/rf/Systems"
        );
        assert_eq!(
            sessions_link(&json!({"Links": {"Sessions": {"@odata.id": "/redfish/v1/SessionService/Sessions"}}}))
                .as_deref(),
            Some("/redfish/v1/SessionService/Sessions")
        );
        assert_eq!(
            sessions_link(&json!({"SessionService": {"@odata.id": "/redfish/v1/SessionService"}}))
                .as_deref(),
            Some("/redfish/v1/SessionService/Sessions")
        );
        assert_eq!(sessions_link(&json!({"Systems": {}})), None);
    }

    #[test]
    fn manager_link_of_a_system() {
        let sys = json!({"Links": {"ManagedBy": [{"@odata.id": "/redfish/v1/Managers/bmc"}]}});
        assert_eq!(
            managed_by(&sys).as_deref(),
            Some("/redfish/v1/Managers/bmc")
        );
        assert_eq!(managed_by(&json!({"Links": {"ManagedBy": []}})), None);
        assert_eq!(managed_by(&json!({})), None);
    }
}
