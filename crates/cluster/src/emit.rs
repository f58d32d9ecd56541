//! Writing data back out as YAML (for `check --output yaml` and `convert`).

use serde_json::Value as J;
use yaml_rust2::YamlEmitter;
use yaml_rust2::yaml::{Hash, Yaml};

/// Converts JSON-shaped data into YAML text, keeping key order, quoting every string
/// that would otherwise read back as another type.
pub fn to_yaml(value: &J) -> String {
    let mut out = String::new();
    let mut emitter = YamlEmitter::new(&mut out);
    emitter.multiline_strings(true);
    // Writing into a String cannot fail, and every JSON value has a YAML form.
    let _ = emitter.dump(&convert(value));
    let body = out.strip_prefix("---\n").unwrap_or(&out);
    format!("{body}\n")
}

fn convert(v: &J) -> Yaml {
    match v {
        J::Null => Yaml::Null,
        J::Bool(b) => Yaml::Boolean(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Yaml::Integer(i),
            None => Yaml::Real(n.to_string()),
        },
        J::String(s) => Yaml::String(s.clone()),
        J::Array(items) => Yaml::Array(items.iter().map(convert).collect()),
        J::Object(map) => {
            let mut h = Hash::new();
            for (k, v) in map {
                h.insert(Yaml::String(k.clone()), convert(v));
            }
            Yaml::Hash(h)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_that_look_like_other_types_are_quoted() {
        let v = serde_json::json!({"a": "true", "b": "1.30", "c": 5, "d": ["x", null], "e": "52:54:00:00:00:01"});
        let text = to_yaml(&v);
        let mut d = crate::Diagnostics::new("t");
        let back = crate::yaml::parse(&text, &mut d).map(|n| crate::decode::json(&n));
        assert_eq!(back, Some(v), "{text}");
    }
}
