//! Reading Redfish JSON that came from the network: `@odata.id` links, collection
//! members, Redfish error messages. Nothing here trusts its input: every string
//! taken from a reply is checked or cleaned before it is used in a URL or a message.

use serde_json::Value;

/// The longest `@odata.id` path accepted.
const MAX_PATH: usize = 1024;
/// The most members read from one collection (all pages together).
pub(crate) const MAX_MEMBERS: usize = 1024;

/// The `@odata.id` of `value`, checked with [`clean_path`].
pub(crate) fn odata_id(value: &Value) -> Option<String> {
    value.get("@odata.id")?.as_str().and_then(clean_path)
}

/// The `@odata.id` of the object at `value[key]`.
pub(crate) fn link(value: &Value, key: &str) -> Option<String> {
    odata_id(value.get(key)?)
}

/// A string property.
pub(crate) fn str_prop<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key)?.as_str()
}

/// Checks a path taken from a reply before it is put in a request URL: an absolute
/// path on this service (`/redfish/...`), or an absolute URL whose path is then
/// taken (the host is always the configured one). Drops a `#fragment` and any
/// query, refuses `//authority` forms, whitespace, control and non-ASCII
/// characters, and overlong paths.
pub(crate) fn clean_path(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let path = if let Some(rest) = raw
        .strip_prefix("https://")
        .or_else(|| raw.strip_prefix("http://"))
    {
        &rest[rest.find('/')?..]
    } else {
        raw
    };
    let path = path.split(['#', '?']).next().unwrap_or_default();
    let path = path.trim_end_matches('/');
    let ok = path.starts_with('/')
        && !path.starts_with("//")
        && path.len() <= MAX_PATH
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-._~%!$&'()*+,;=:@".contains(&b));
    ok.then(|| path.to_string())
}

/// The last segment of a path (a resource's id as the URL names it).
pub(crate) fn last_segment(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The member links of a collection page.
pub(crate) fn members(collection: &Value) -> Vec<String> {
    collection
        .get("Members")
        .and_then(Value::as_array)
        .map(|m| m.iter().filter_map(odata_id).take(MAX_MEMBERS).collect())
        .unwrap_or_default()
}

/// The next page of a collection, if any.
pub(crate) fn next_link(collection: &Value) -> Option<String> {
    collection
        .get("Members@odata.nextLink")?
        .as_str()
        .and_then(clean_path)
}

/// Text from a peer, fit for an error message: control characters become spaces,
/// at most `max` characters, trimmed.
pub(crate) fn clean_text(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out.trim().to_string()
}

/// The human-readable reason in a Redfish error reply: the `Message` of each
/// `error.@Message.ExtendedInfo` entry, else `error.message`, else `error.code`;
/// for a body that is not JSON, its beginning. `None` when the body says nothing.
pub(crate) fn error_message(body: &[u8]) -> Option<String> {
    const MAX_MESSAGES: usize = 4;
    const MAX_LEN: usize = 300;
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        let text = String::from_utf8_lossy(&body[..body.len().min(4 * MAX_LEN)]);
        let text = clean_text(&text, MAX_LEN);
        return (!text.is_empty()).then_some(text);
    };
    let error = value.get("error").unwrap_or(&value);
    let mut messages: Vec<String> = error
        .get("@Message.ExtendedInfo")
        .and_then(Value::as_array)
        .map(|infos| {
            infos
                .iter()
                .filter_map(|info| str_prop(info, "Message"))
                .map(|m| clean_text(m, MAX_LEN))
                .filter(|m| !m.is_empty())
                .take(MAX_MESSAGES)
                .collect()
        })
        .unwrap_or_default();
    if messages.is_empty()
        && let Some(m) = str_prop(error, "message").or_else(|| str_prop(error, "code"))
    {
        messages.push(clean_text(m, MAX_LEN));
    }
    messages.retain(|m| !m.is_empty());
    messages.dedup();
    (!messages.is_empty()).then(|| messages.join("; "))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_from_the_network_are_checked() {
        assert_eq!(
            clean_path("/redfish/v1/Systems/1").as_deref(),
            Some("/redfish/v1/Systems/1")
        );
        assert_eq!(
            clean_path("/redfish/v1/Systems/").as_deref(),
            Some("/redfish/v1/Systems")
        );
        assert_eq!(
            clean_path("https://10.0.0.1:443/redfish/v1/SessionService/Sessions/7").as_deref(),
            Some("/redfish/v1/SessionService/Sessions/7")
        );
        assert_eq!(
            clean_path("/redfish/v1/Systems/1#/Boot").as_deref(),
            Some("/redfish/v1/Systems/1")
        );
        assert_eq!(clean_path("//evil.example/x"), None);
        assert_eq!(clean_path("redfish/v1"), None);
        assert_eq!(clean_path("/a b"), None);
        assert_eq!(clean_path("/a\r\nHost: x"), None);
        assert_eq!(clean_path("/é"), None);
        assert_eq!(clean_path(&format!("/{}", "a".repeat(2000))), None);
        assert_eq!(clean_path("https://host"), None);
    }

    #[test]
    fn error_messages_prefer_extended_info() {
        let body = json!({"error": {"code": "Base.1.0.GeneralError", "message": "general",
            "@Message.ExtendedInfo": [{"Message": "The value 'X' is not allowed."},
                                      {"Message": "Second\nline"}]}});
        assert_eq!(
            error_message(body.to_string().as_bytes()).as_deref(),
            Some("The value 'X' is not allowed.; Second line")
        );
        let body = json!({"error": {"code": "Base.1.0.GeneralError", "message": "Incorrect",
            "@Message.ExtendedInfo": [{"MessageId": "Base.1.0.GeneralError"}]}});
        assert_eq!(
            error_message(body.to_string().as_bytes()).as_deref(),
            Some("Incorrect")
        );
        assert_eq!(
            error_message(b"<html>Bad\x01 gateway</html>").as_deref(),
            Some("<html>Bad  gateway</html>")
        );
        assert_eq!(error_message(b""), None);
        assert_eq!(error_message(b"{}"), None);
        assert_eq!(error_message(b"[1,2]"), None);
    }

    #[test]
    fn members_skip_bad_links() {
        let c = json!({"Members": [{"@odata.id": "/redfish/v1/Systems/1"}, {"x": 1},
            {"@odata.id": 5}, {"@odata.id": "//bad"}, "junk"]});
        assert_eq!(members(&c), vec!["/redfish/v1/Systems/1".to_string()]);
        assert_eq!(members(&json!({"Members": 3})), Vec::<String>::new());
    }

    #[test]
    fn clean_text_bounds_length() {
        assert_eq!(clean_text(&"x".repeat(10), 4), "xxxx…");
        assert_eq!(clean_text(" a\tb ", 10), "a b");
    }
}
