//! The loader never panics and always points inside the file, whatever it is fed:
//! every prefix of the example files, thousands of seeded random mutations of them,
//! and random text. (A coverage-guided fuzzer comes later; this runs in every CI.)

use std::path::Path;

use slipway_cluster::{NoHost, load_str};

/// xorshift64*: a small, seeded, reproducible generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Loads `text` and checks the loader's promises about its output.
fn check(text: &str) {
    let loaded = load_str("fuzz.yaml", text, Path::new("/"), &NoHost);
    let lines: Vec<&str> = text.lines().collect();
    for d in &loaded.diagnostics.items {
        if d.span.line == 0 {
            continue;
        }
        let line = d.span.line as usize;
        assert!(
            line <= lines.len() + 1,
            "line {line} beyond the file ({} lines): {}\n---\n{text}",
            lines.len(),
            d.short()
        );
        let width = lines.get(line - 1).map_or(0, |l| l.chars().count());
        assert!(
            d.span.col >= 1 && d.span.col as usize <= width + 1,
            "column outside line {line}: {}\n---\n{text}",
            d.short()
        );
    }
    if !loaded.diagnostics.has_errors() {
        assert!(
            loaded.cluster.is_some(),
            "no errors but no cluster:\n{text}"
        );
    } else {
        assert!(loaded.valid().is_none());
    }
    let rendered = loaded.diagnostics.render(text);
    assert_eq!(rendered.is_empty(), loaded.diagnostics.items.is_empty());
}

fn example(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_prefix_of_the_small_examples() {
    for name in ["lab.yaml", "sextant-like.yaml"] {
        let text = example(name);
        for (i, _) in text.char_indices() {
            check(&text[..i]);
        }
    }
}

#[test]
fn prefixes_of_the_fleet() {
    let text = example("fleet-1000.yaml");
    let step = text.len() / 150;
    for cut in (0..text.len()).step_by(step) {
        let cut = (cut..text.len())
            .find(|c| text.is_char_boundary(*c))
            .unwrap_or(text.len());
        check(&text[..cut]);
    }
}

const PIECES: &[&str] = &[
    ":",
    " ",
    "\n",
    "- ",
    "[",
    "]",
    "{",
    "}",
    "'",
    "\"",
    "#",
    "&a ",
    "*a",
    "!!str ",
    "|",
    ">",
    "\t",
    "~",
    ",",
    "?",
    "---\n",
    "...",
    "%YAML 1.2\n",
    "é",
    "\u{0}",
    "\u{feff}",
    "mac: zz",
    "ip: 10.99.0.1",
    "roles: [etcd, etcd]",
    "  ",
    "hostname: A",
    "-1",
    "99999999999999999999",
    "<<: *a",
    "\r\n",
];

fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(chars.len() + 1);
        match rng.below(5) {
            0 => {
                let piece = PIECES[rng.below(PIECES.len())];
                chars.splice(at..at, piece.chars());
            }
            1 if !chars.is_empty() => {
                let end = (at + 1 + rng.below(20)).min(chars.len());
                chars.drain(at.min(end)..end);
            }
            2 if !chars.is_empty() => {
                let i = at.min(chars.len() - 1);
                chars[i] = char::from_u32(rng.below(0x250) as u32).unwrap_or('x');
            }
            3 => {
                // Duplicate a line.
                let s: String = chars.iter().collect();
                let lines: Vec<&str> = s.lines().collect();
                if !lines.is_empty() {
                    let l = lines[rng.below(lines.len())];
                    chars.splice(at..at, format!("{l}\n").chars());
                }
            }
            _ => {
                let piece = PIECES[rng.below(PIECES.len())];
                chars.extend(piece.chars());
            }
        }
    }
    chars.into_iter().collect()
}

#[test]
fn seeded_random_mutations() {
    let mut rng = Rng(0x005e_ed0f_511b_a7e5);
    for name in ["lab.yaml", "sextant-like.yaml"] {
        let text = example(name);
        for _ in 0..1500 {
            check(&mutate(&mut rng, &text));
        }
    }
}

#[test]
fn random_text() {
    let mut rng = Rng(42);
    for _ in 0..2000 {
        let len = rng.below(200);
        let text: String = (0..len)
            .map(|_| {
                let piece = PIECES[rng.below(PIECES.len())];
                if rng.below(3) == 0 {
                    piece.to_string()
                } else {
                    char::from(b' ' + rng.below(95) as u8).to_string()
                }
            })
            .collect();
        check(&text);
    }
}

#[test]
fn hostile_shapes() {
    check(&"- ".repeat(100_000));
    check(&"[".repeat(100_000));
    check(&"{a: ".repeat(10_000));
    check(&"a:\n".repeat(10_000));
    check(&format!(
        "nodes: [{}]",
        "{mac: 52:54:00:00:00:01},".repeat(5000)
    ));
    check("cluster: &c {name: x}\nnetwork: *c\n");
}
