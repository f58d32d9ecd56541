//! A YAML tree that remembers where every node came from.
//!
//! `yaml-rust2` parses the text into events with positions; [`parse`] builds them into
//! a [`Node`] tree whose every node, map key included, carries its [`Span`]. Anchors
//! and aliases are resolved (with a budget against "billion laughs" files), duplicate
//! map keys are reported, and scalars keep their raw text: typing is left to the
//! decoder, so `version: 1.30` stays the string `"1.30"` and never becomes a float.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::diagnostic::{Diagnostics, Span};

/// Most nodes a file may expand to once aliases are resolved.
pub const MAX_NODES: usize = 2_000_000;
/// Deepest nesting accepted.
pub const MAX_DEPTH: usize = 64;

/// One YAML node and where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// What the node holds.
    pub value: Value,
    /// Where it starts in the file.
    pub span: Span,
}

/// The content of a [`Node`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// An empty value, `~` or `null`.
    Null,
    /// A scalar, as written (quotes removed).
    Scalar {
        /// The text.
        text: String,
        /// Whether it was quoted or a block; quoted text is never typed as a number.
        quoted: bool,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order; keys are scalars.
    Map(Vec<(Key, Node)>),
}

/// A mapping key.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// The key text.
    pub text: String,
    /// Where the key is.
    pub span: Span,
}

impl Node {
    /// A short name of the node's kind, for messages ("a mapping", "a list", ...).
    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Null => "nothing",
            Value::Scalar { .. } => "a scalar",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// Whether the node is null (absent value).
    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }
}

/// Parses `text` into a tree, reporting syntax errors and duplicate keys into `diags`.
/// Returns `None` when the text is not valid YAML; an empty file is `Some(Null)`.
pub fn parse(text: &str, diags: &mut Diagnostics) -> Option<Node> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    // Pull events one by one (the parser's own `load` recurses once per nesting level,
    // which a hostile file could use to overflow the stack), stopping at the first
    // problem that makes the tree unusable.
    loop {
        match parser.next_token() {
            Err(e) => {
                let info = e.info();
                diags.error(span_at(e.marker(), 1), format!("invalid YAML: {info}"));
                return None;
            }
            Ok((Event::StreamEnd, _)) => break,
            Ok((ev, mark)) => builder.on_event(ev, mark),
        }
        if builder.failed {
            break;
        }
    }
    for (span, msg) in builder.problems {
        diags.error(span, msg);
    }
    if builder.failed {
        return None;
    }
    builder.documents.into_iter().next().or(Some(Node {
        value: Value::Null,
        span: Span::FILE,
    }))
}

fn span_at(m: &Marker, len: usize) -> Span {
    Span::new(
        u32::try_from(m.line()).unwrap_or(u32::MAX),
        u32::try_from(m.col() + 1).unwrap_or(u32::MAX),
        u32::try_from(len).unwrap_or(u32::MAX),
    )
}

enum Frame {
    Seq(Span, usize, Vec<Node>),
    Map(Span, usize, Vec<(Key, Node)>, Option<Key>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    documents: Vec<Node>,
    problems: Vec<(Span, String)>,
    nodes: usize,
    failed: bool,
}

impl Builder {
    fn fail(&mut self, span: Span, msg: String) {
        if !self.failed {
            self.problems.push((span, msg));
        }
        self.failed = true;
    }

    fn insert(&mut self, node: Node, anchor: usize) {
        if self.failed {
            return;
        }
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => {
                if self.documents.is_empty() {
                    self.documents.push(node);
                } else if self.documents.len() == 1 {
                    self.documents.push(Node {
                        value: Value::Null,
                        span: node.span,
                    });
                    self.problems.push((
                        node.span,
                        "only one YAML document is allowed; remove the second `---`".into(),
                    ));
                }
            }
            Some(Frame::Seq(_, _, items)) => items.push(node),
            Some(Frame::Map(_, _, entries, pending)) => match pending.take() {
                None => match node.value {
                    Value::Scalar { text, .. } => {
                        *pending = Some(Key {
                            text,
                            span: node.span,
                        })
                    }
                    Value::Null => {
                        *pending = Some(Key {
                            text: String::new(),
                            span: node.span,
                        })
                    }
                    _ => {
                        let span = node.span;
                        self.fail(
                            span,
                            "mapping keys must be plain names, not lists or mappings".into(),
                        );
                    }
                },
                Some(key) => {
                    if let Some((first, _)) = entries.iter().find(|(k, _)| k.text == key.text) {
                        let line = first.span.line;
                        let msg =
                            format!("duplicate key `{}` (first given on line {line})", key.text);
                        self.problems.push((key.span, msg));
                    } else {
                        entries.push((key, node));
                    }
                }
            },
        }
    }

    fn count(&mut self, n: usize, span: Span) -> bool {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            self.fail(
                span,
                format!(
                    "the file expands to more than {MAX_NODES} values (aliases nested too deep?)"
                ),
            );
            return false;
        }
        true
    }
}

fn size(node: &Node) -> usize {
    match &node.value {
        Value::Null | Value::Scalar { .. } => 1,
        Value::Seq(items) => 1 + items.iter().map(size).sum::<usize>(),
        Value::Map(entries) => 1 + entries.iter().map(|(_, v)| 1 + size(v)).sum::<usize>(),
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.failed {
            return;
        }
        match ev {
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
            Event::Alias(id) => {
                let span = span_at(&mark, 1);
                let Some(node) = self.anchors.get(&id).cloned() else {
                    self.fail(span, "alias to an unknown anchor".into());
                    return;
                };
                if self.count(size(&node), span) {
                    // The alias stands where it is used, for messages.
                    self.insert(Node { span, ..node }, 0);
                }
            }
            Event::Scalar(text, style, anchor, _tag) => {
                let quoted = style != TScalarStyle::Plain;
                let width = match style {
                    TScalarStyle::Plain => text.lines().next().map_or(1, |l| l.chars().count()),
                    TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted => {
                        text.lines().next().map_or(0, |l| l.chars().count()) + 2
                    }
                    _ => 1,
                };
                let span = span_at(&mark, width);
                if !self.count(1, span) {
                    return;
                }
                let value =
                    if !quoted && matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL") {
                        Value::Null
                    } else {
                        Value::Scalar { text, quoted }
                    };
                self.insert(Node { value, span }, anchor);
            }
            Event::SequenceStart(anchor, _) => {
                let span = span_at(&mark, 1);
                if self.stack.len() >= MAX_DEPTH {
                    self.fail(span, format!("nesting deeper than {MAX_DEPTH} levels"));
                    return;
                }
                self.stack.push(Frame::Seq(span, anchor, Vec::new()));
            }
            Event::MappingStart(anchor, _) => {
                let span = span_at(&mark, 1);
                if self.stack.len() >= MAX_DEPTH {
                    self.fail(span, format!("nesting deeper than {MAX_DEPTH} levels"));
                    return;
                }
                self.stack.push(Frame::Map(span, anchor, Vec::new(), None));
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq(span, anchor, items)) = self.stack.pop()
                    && self.count(1, span)
                {
                    self.insert(
                        Node {
                            value: Value::Seq(items),
                            span,
                        },
                        anchor,
                    );
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map(start, anchor, entries, _)) = self.stack.pop() {
                    // A block mapping's start mark is unreliable; its first key is where
                    // a reader sees it begin.
                    let span = entries.first().map_or(start, |(k, _)| k.span);
                    if self.count(1, span) {
                        self.insert(
                            Node {
                                value: Value::Map(entries),
                                span,
                            },
                            anchor,
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(text: &str) -> (Option<Node>, Vec<String>) {
        let mut d = Diagnostics::new("t");
        let n = parse(text, &mut d);
        (n, d.items.iter().map(|d| d.short()).collect())
    }

    #[test]
    fn keys_and_values_have_positions() {
        let (n, errs) = tree("a: 1\nb:\n  - x\n  - 'y'\n");
        assert!(errs.is_empty(), "{errs:?}");
        let Some(Node {
            value: Value::Map(entries),
            ..
        }) = n
        else {
            panic!("not a map")
        };
        assert_eq!(entries[0].0.span, Span::new(1, 1, 1));
        assert_eq!(entries[1].0.text, "b");
        let Value::Seq(items) = &entries[1].1.value else {
            panic!("not a seq")
        };
        assert_eq!(items[1].span, Span::new(4, 5, 3));
        assert_eq!(
            items[1].value,
            Value::Scalar {
                text: "y".into(),
                quoted: true
            }
        );
    }

    #[test]
    fn duplicate_keys_are_reported_with_the_first_line() {
        let (_, errs) = tree("a: 1\nb: 2\na: 3\n");
        assert_eq!(
            errs,
            ["3:1: error: duplicate key `a` (first given on line 1)"]
        );
    }

    #[test]
    fn syntax_errors_carry_the_position() {
        let (n, errs) = tree("a: 1\n b: [\n");
        assert!(n.is_none());
        assert_eq!(
            errs,
            ["2:3: error: invalid YAML: mapping values are not allowed in this context"]
        );
    }

    #[test]
    fn aliases_resolve_and_bombs_are_refused() {
        let (n, errs) = tree("a: &x {k: v}\nb: *x\n");
        assert!(errs.is_empty());
        let Some(Node {
            value: Value::Map(e),
            ..
        }) = n
        else {
            panic!()
        };
        assert_eq!(e[0].1.value, e[1].1.value);

        let mut bomb = String::from("a: &a [x,x,x,x,x,x,x,x,x,x]\n");
        for i in 0..8 {
            let prev = if i == 0 {
                "a".to_string()
            } else {
                format!("l{}", i - 1)
            };
            bomb.push_str(&format!("l{i}: &l{i} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"));
        }
        let (n, errs) = tree(&bomb);
        assert!(n.is_none());
        assert!(errs[0].contains("expands to more than"), "{errs:?}");
    }

    #[test]
    fn empty_and_second_documents() {
        let (n, errs) = tree("");
        assert!(errs.is_empty());
        assert!(n.is_some_and(|n| n.is_null()));
        let (_, errs) = tree("a: 1\n---\nb: 2\n");
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].starts_with("3:1: error: only one YAML document"),
            "{errs:?}"
        );
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = "[".repeat(200) + &"]".repeat(200);
        let (n, errs) = tree(&text);
        assert!(n.is_none());
        assert!(errs[0].contains("nesting deeper"), "{errs:?}");
    }
}
