//! Problems found in a cluster file, with their place, and how to print them.
//!
//! Every problem the loader finds is a [`Diagnostic`]: a severity, a [`Span`] in the
//! file, a one-line message and an optional help line. They are collected, never
//! thrown, so one run reports every problem at once. [`Diagnostics::render`] prints
//! them the way compilers do:
//!
//! ```text
//! lab.yaml:12:5: error: unknown key `hostnme` in a node
//!    |
//! 12 |     hostnme: cp1
//!    |     ^^^^^^^
//!    = help: did you mean `hostname`?
//! ```

use std::fmt::{self, Write as _};

/// A place in the source text: 1-based line, 1-based column (in characters), and the
/// number of characters to underline (at least one is shown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// Line, counting from 1. Zero means "the file as a whole".
    pub line: u32,
    /// Column in characters, counting from 1.
    pub col: u32,
    /// Width to underline, in characters.
    pub len: u32,
}

impl Span {
    /// A span covering the whole file (no line to show).
    pub const FILE: Span = Span {
        line: 0,
        col: 0,
        len: 0,
    };

    /// A span at `line`:`col` (both 1-based) covering `len` characters.
    pub fn new(line: u32, col: u32, len: u32) -> Self {
        Span { line, col, len }
    }
}

/// How bad a problem is. Errors make the file invalid; warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The file is usable but something looks wrong.
    Warning,
    /// The file cannot be used.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One problem in a cluster file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Where the problem is.
    pub span: Span,
    /// What is wrong, in one line.
    pub message: String,
    /// What to do about it, if we can tell.
    pub help: Option<String>,
}

impl Diagnostic {
    /// An error at `span`.
    pub fn error(span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            span,
            message: message.into(),
            help: None,
        }
    }

    /// A warning at `span`.
    pub fn warning(span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            span,
            message: message.into(),
            help: None,
        }
    }

    /// The same diagnostic with a help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// `line:col: severity: message`, the compact form used by tests and logs.
    pub fn short(&self) -> String {
        format!(
            "{}:{}: {}: {}",
            self.span.line, self.span.col, self.severity, self.message
        )
    }
}

/// The problems found in one file, with the file's name and text to show them.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics {
    /// Name shown before each position (normally the path as the user gave it).
    pub file: String,
    /// Every problem, sorted by position once loading ends.
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// An empty list for `file`.
    pub fn new(file: impl Into<String>) -> Self {
        Diagnostics {
            file: file.into(),
            items: Vec::new(),
        }
    }

    /// Adds one problem.
    pub fn push(&mut self, d: Diagnostic) {
        self.items.push(d);
    }

    /// Adds an error at `span`.
    pub fn error(&mut self, span: Span, message: impl Into<String>) {
        self.push(Diagnostic::error(span, message));
    }

    /// Adds a warning at `span`.
    pub fn warning(&mut self, span: Span, message: impl Into<String>) {
        self.push(Diagnostic::warning(span, message));
    }

    /// Whether any problem is an error.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    /// Number of errors.
    pub fn error_count(&self) -> usize {
        self.items
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    /// Number of warnings.
    pub fn warning_count(&self) -> usize {
        self.items.len() - self.error_count()
    }

    /// Sorts by position and drops exact duplicates.
    pub fn sort(&mut self) {
        self.items.sort_by(|a, b| {
            (a.span.line, a.span.col, b.severity, &a.message).cmp(&(
                b.span.line,
                b.span.col,
                a.severity,
                &b.message,
            ))
        });
        self.items.dedup();
    }

    /// Renders every problem as `file:line:col: severity: message`, followed by the
    /// offending line of `source` with the span underlined and the help, if any.
    pub fn render(&self, source: &str) -> String {
        let lines: Vec<&str> = source.lines().collect();
        let mut out = String::new();
        for d in &self.items {
            render_one(&mut out, &self.file, &lines, d);
        }
        out
    }
}

fn render_one(out: &mut String, file: &str, lines: &[&str], d: &Diagnostic) {
    let Span { line, col, len } = d.span;
    if line == 0 {
        let _ = writeln!(out, "{file}: {}: {}", d.severity, d.message);
    } else {
        let _ = writeln!(out, "{file}:{line}:{col}: {}: {}", d.severity, d.message);
    }
    let number = line.to_string();
    let pad = " ".repeat(number.len());
    if let Some(text) = lines.get((line as usize).wrapping_sub(1)) {
        // Tabs would shift the caret; show them as single spaces.
        let shown: String = text
            .chars()
            .map(|c| if c == '\t' { ' ' } else { c })
            .collect();
        let width = shown.chars().count() as u32;
        let start = col.saturating_sub(1).min(width);
        let caret_len = len.max(1).min(width.saturating_sub(start).max(1));
        let _ = writeln!(out, "{pad} |");
        let _ = writeln!(out, "{number} | {shown}");
        let _ = writeln!(
            out,
            "{pad} | {}{}",
            " ".repeat(start as usize),
            "^".repeat(caret_len as usize)
        );
    }
    if let Some(help) = &d.help {
        let _ = writeln!(out, "{pad} = help: {help}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_position_line_caret_and_help() {
        let mut ds = Diagnostics::new("lab.yaml");
        ds.push(
            Diagnostic::error(Span::new(2, 3, 7), "unknown key `hostnme` in a node")
                .with_help("did you mean `hostname`?"),
        );
        let text = ds.render("nodes:\n  hostnme: cp1\n");
        assert_eq!(
            text,
            "lab.yaml:2:3: error: unknown key `hostnme` in a node\n  |\n2 |   hostnme: cp1\n  |   ^^^^^^^\n  = help: did you mean `hostname`?\n"
        );
    }

    #[test]
    fn file_level_problem_has_no_position() {
        let mut ds = Diagnostics::new("x.yaml");
        ds.error(Span::FILE, "the file is empty");
        assert_eq!(ds.render(""), "x.yaml: error: the file is empty\n");
    }

    #[test]
    fn caret_is_clamped_to_the_line() {
        let mut ds = Diagnostics::new("f");
        ds.error(Span::new(1, 50, 9), "m");
        let text = ds.render("ab\n");
        assert!(text.ends_with("1 | ab\n  |   ^\n"), "{text}");
    }
}
