//! Typed reading of the spanned YAML tree, collecting every problem.
//!
//! Each reader returns `None` after recording a diagnostic, so one pass finds every
//! problem in the file. [`Fields`] reads a mapping and, when done, reports each key
//! nobody asked for, with a "did you mean" drawn from the keys that were asked for.

use std::str::FromStr;

use crate::diagnostic::{Diagnostic, Diagnostics, Span};
use crate::yaml::{Key, Node, Value};

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Where it is in the file.
    pub span: Span,
}

impl<T> Spanned<T> {
    /// Wraps `value` found at `span`.
    pub fn new(value: T, span: Span) -> Self {
        Spanned { value, span }
    }
}

/// The closest of `candidates` to `word`, if close enough to be a likely typo.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(word, c), *c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

thread_local! {
    /// While [`record_asked`] runs: every (mapping, key) a [`Fields`] was asked for.
    static ASKED: std::cell::RefCell<Option<Vec<(String, &'static str)>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `f`, returning with its result every key any [`Fields`] was asked for meanwhile
/// on this thread, as (the mapping's description, the key): the keys the reader
/// accepts, straight from the reader.
pub fn record_asked<T>(f: impl FnOnce() -> T) -> (T, Vec<(String, &'static str)>) {
    ASKED.with(|a| *a.borrow_mut() = Some(Vec::new()));
    let out = f();
    let asked = ASKED.with(|a| a.borrow_mut().take()).unwrap_or_default();
    (out, asked)
}

/// Reads one mapping; see the module docs.
pub struct Fields<'a> {
    entries: &'a [(Key, Node)],
    used: Vec<bool>,
    asked: Vec<&'static str>,
    what: &'a str,
    /// Where the mapping is.
    pub span: Span,
}

impl<'a> Fields<'a> {
    /// Starts reading `node` as a mapping described as `what` in messages; records an
    /// error and returns `None` if it is not one. A null node reads as an empty mapping.
    pub fn new(node: &'a Node, what: &'a str, d: &mut Diagnostics) -> Option<Self> {
        let entries: &[(Key, Node)] = match &node.value {
            Value::Map(entries) => entries,
            Value::Null => &[],
            _ => {
                d.error(
                    node.span,
                    format!(
                        "{what} must be a mapping of `key: value`, not {}",
                        node.kind()
                    ),
                );
                return None;
            }
        };
        Some(Fields {
            entries,
            used: vec![false; entries.len()],
            asked: Vec::new(),
            what,
            span: node.span,
        })
    }

    /// The value of `key`, if present and not null.
    pub fn get(&mut self, key: &'static str) -> Option<&'a Node> {
        self.asked.push(key);
        ASKED.with(|a| {
            if let Some(asked) = a.borrow_mut().as_mut() {
                asked.push((self.what.to_string(), key));
            }
        });
        let i = self.entries.iter().position(|(k, _)| k.text == key)?;
        self.used[i] = true;
        let node = &self.entries[i].1;
        (!node.is_null()).then_some(node)
    }

    /// The key itself, for messages about a key that is present but not allowed.
    pub fn key_span(&self, key: &str) -> Option<Span> {
        self.entries
            .iter()
            .find(|(k, _)| k.text == key)
            .map(|(k, _)| k.span)
    }

    /// Every key present in the mapping (null values included).
    pub fn present(&self) -> Vec<String> {
        self.entries.iter().map(|(k, _)| k.text.clone()).collect()
    }

    /// The keys nobody asked for (so far).
    pub fn unused(&self) -> Vec<&'a Key> {
        self.entries
            .iter()
            .zip(&self.used)
            .filter(|(_, u)| !**u)
            .map(|((k, _), _)| k)
            .collect()
    }

    /// Reports every key that was not asked for.
    pub fn finish(self, d: &mut Diagnostics) {
        for ((key, _), used) in self.entries.iter().zip(&self.used) {
            if *used {
                continue;
            }
            let mut diag = Diagnostic::error(
                key.span,
                format!("unknown key `{}` in {}", key.text, self.what),
            );
            if let Some(s) = did_you_mean(&key.text, &self.asked) {
                diag = diag.with_help(format!("did you mean `{s}`?"));
            } else {
                let mut known = self.asked.clone();
                known.sort_unstable();
                known.dedup();
                diag = diag.with_help(format!("known keys here: {}", known.join(", ")));
            }
            d.push(diag);
        }
    }
}

/// A scalar as text.
pub fn string(node: &Node, what: &str, d: &mut Diagnostics) -> Option<Spanned<String>> {
    match &node.value {
        Value::Scalar { text, .. } => Some(Spanned::new(text.clone(), node.span)),
        _ => {
            d.error(
                node.span,
                format!("{what} must be a single value, not {}", node.kind()),
            );
            None
        }
    }
}

/// A scalar parsed with `FromStr`; the parse error becomes the message.
pub fn parse<T: FromStr>(node: &Node, what: &str, d: &mut Diagnostics) -> Option<Spanned<T>>
where
    T::Err: std::fmt::Display,
{
    let s = string(node, what, d)?;
    match s.value.trim().parse::<T>() {
        Ok(v) => Some(Spanned::new(v, s.span)),
        Err(e) => {
            d.error(s.span, format!("{what}: {e}"));
            None
        }
    }
}

/// A scalar parsed with `FromStr` whose error message does not say what it wanted;
/// `expected` does ("an IPv4 address", "a CIDR like 10.0.0.0/24").
pub fn parse_as<T: FromStr>(
    node: &Node,
    what: &str,
    expected: &str,
    d: &mut Diagnostics,
) -> Option<Spanned<T>> {
    let s = string(node, what, d)?;
    match s.value.trim().parse::<T>() {
        Ok(v) => Some(Spanned::new(v, s.span)),
        Err(_) => {
            d.error(s.span, format!("{what}: `{}` is not {expected}", s.value));
            None
        }
    }
}

/// `true` or `false` (YAML 1.2 booleans only; `yes`/`no` are refused with a hint).
pub fn boolean(node: &Node, what: &str, d: &mut Diagnostics) -> Option<Spanned<bool>> {
    let s = string(node, what, d)?;
    match s.value.as_str() {
        "true" | "True" | "TRUE" => Some(Spanned::new(true, s.span)),
        "false" | "False" | "FALSE" => Some(Spanned::new(false, s.span)),
        other => {
            d.push(
                Diagnostic::error(
                    s.span,
                    format!("{what} must be true or false, not `{other}`"),
                )
                .with_help("YAML 1.2 booleans are `true` and `false`"),
            );
            None
        }
    }
}

/// One of `choices`, with a "did you mean" when it is close to one.
pub fn choice(
    node: &Node,
    what: &str,
    choices: &[&'static str],
    d: &mut Diagnostics,
) -> Option<Spanned<&'static str>> {
    let s = string(node, what, d)?;
    if let Some(c) = choices.iter().find(|c| **c == s.value) {
        return Some(Spanned::new(*c, s.span));
    }
    let mut diag = Diagnostic::error(s.span, format!("{what}: unknown value `{}`", s.value));
    diag = match did_you_mean(&s.value, choices) {
        Some(m) => diag.with_help(format!(
            "did you mean `{m}`? (one of: {})",
            choices.join(", ")
        )),
        None => diag.with_help(format!("expected one of: {}", choices.join(", "))),
    };
    d.push(diag);
    None
}

/// One of the named `options`, as its value (`pick(n, "mode", &[("proxy", Mode::Proxy), ...])`).
pub fn pick<T: Copy>(
    node: &Node,
    what: &str,
    options: &[(&'static str, T)],
    d: &mut Diagnostics,
) -> Option<Spanned<T>> {
    let names: Vec<&'static str> = options.iter().map(|(n, _)| *n).collect();
    let c = choice(node, what, &names, d)?;
    let value = options
        .iter()
        .find(|(n, _)| *n == c.value)
        .map(|(_, v)| *v)?;
    Some(Spanned::new(value, c.span))
}

/// The items of a list; a scalar where a list is expected is an error with a hint.
pub fn list<'a>(node: &'a Node, what: &str, d: &mut Diagnostics) -> Option<&'a [Node]> {
    match &node.value {
        Value::Seq(items) => Some(items),
        Value::Null => Some(&[]),
        Value::Scalar { text, .. } => {
            d.push(
                Diagnostic::error(node.span, format!("{what} must be a list"))
                    .with_help(format!("write `[{text}]` or one `- item` per line")),
            );
            None
        }
        Value::Map(_) => {
            d.error(node.span, format!("{what} must be a list, not a mapping"));
            None
        }
    }
}

/// A list of scalars, each parsed with `item`; bad items are reported and skipped.
pub fn list_of<T>(
    node: &Node,
    what: &str,
    d: &mut Diagnostics,
    mut item: impl FnMut(&Node, &mut Diagnostics) -> Option<T>,
) -> Vec<T> {
    list(node, what, d)
        .unwrap_or_default()
        .iter()
        .filter_map(|n| item(n, d))
        .collect()
}

/// A mapping of names to single values (labels, registry mirrors' keys, ...).
pub fn string_map(node: &Node, what: &str, d: &mut Diagnostics) -> Vec<(Key, Spanned<String>)> {
    match &node.value {
        Value::Map(entries) => entries
            .iter()
            .filter_map(|(k, v)| {
                let what = format!("{what} `{}`", k.text);
                let value = match &v.value {
                    Value::Null => Spanned::new(String::new(), v.span),
                    _ => string(v, &what, d)?,
                };
                Some((k.clone(), value))
            })
            .collect(),
        Value::Null => Vec::new(),
        _ => {
            d.error(
                node.span,
                format!(
                    "{what} must be a mapping of `name: value`, not {}",
                    node.kind()
                ),
            );
            Vec::new()
        }
    }
}

/// Free-form data (node metadata) as JSON, typing plain scalars by the YAML 1.2 core
/// schema: booleans, integers, floats; quoted scalars stay strings.
pub fn json(node: &Node) -> serde_json::Value {
    use serde_json::Value as J;
    match &node.value {
        Value::Null => J::Null,
        Value::Scalar { text, quoted: true } => J::String(text.clone()),
        Value::Scalar {
            text,
            quoted: false,
        } => match text.as_str() {
            "true" | "True" | "TRUE" => J::Bool(true),
            "false" | "False" | "FALSE" => J::Bool(false),
            t => {
                if let Ok(i) = t.parse::<i64>() {
                    J::from(i)
                } else if let Some(f) = t
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite() && t.contains(|c: char| c.is_ascii_digit()))
                    .and_then(serde_json::Number::from_f64)
                {
                    J::Number(f)
                } else {
                    J::String(t.to_string())
                }
            }
        },
        Value::Seq(items) => J::Array(items.iter().map(json).collect()),
        Value::Map(entries) => J::Object(
            entries
                .iter()
                .map(|(k, v)| (k.text.clone(), json(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(text: &str) -> Node {
        let mut d = Diagnostics::new("t");
        crate::yaml::parse(text, &mut d).unwrap_or(Node {
            value: Value::Null,
            span: Span::FILE,
        })
    }

    #[test]
    fn unknown_keys_get_a_suggestion() {
        let n = node("hostname: a\nhostnme: b\nzzz: 1\n");
        let mut d = Diagnostics::new("t");
        let mut f = Fields::new(&n, "a node", &mut d).unwrap_or_else(|| panic!("not a map"));
        assert!(f.get("hostname").is_some());
        f.get("ip");
        f.finish(&mut d);
        assert_eq!(
            d.items[0].short(),
            "2:1: error: unknown key `hostnme` in a node"
        );
        assert_eq!(d.items[0].help.as_deref(), Some("did you mean `hostname`?"));
        assert_eq!(
            d.items[1].help.as_deref(),
            Some("known keys here: hostname, ip")
        );
    }

    #[test]
    fn metadata_types_scalars() {
        let n = node("a: 1\nb: '1'\nc: true\nd: 1.5\ne: [x, ~]\nf: 1.30.2\n");
        assert_eq!(
            json(&n).to_string(),
            r#"{"a":1,"b":"1","c":true,"d":1.5,"e":["x",null],"f":"1.30.2"}"#
        );
    }

    #[test]
    fn choices_suggest() {
        let n = node("athoritative");
        let mut d = Diagnostics::new("t");
        assert!(choice(&n, "`mode`", &["authoritative", "proxy", "off"], &mut d).is_none());
        assert_eq!(
            d.items[0].help.as_deref(),
            Some("did you mean `authoritative`? (one of: authoritative, proxy, off)")
        );
    }
}
