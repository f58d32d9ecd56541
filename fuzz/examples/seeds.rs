//! Writes the seed corpus: `fuzz/corpus/<target>/seed-<name>` for every seed of
//! `slipway_fuzz::seeds` (existing seeds are overwritten; what libFuzzer added to the
//! corpus stays). `scripts/fuzz --seeds` runs it.
//!
//! Built like the targets (the crates under test are instrumented, and only a libFuzzer
//! binary links their coverage callbacks), so it is one: its initialization writes the
//! files and exits before any input is run.
#![no_main]

use std::path::Path;

fn write_seeds() -> std::io::Result<()> {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for (target, seeds) in slipway_fuzz::seeds::all() {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir)?;
        for (name, bytes) in &seeds {
            std::fs::write(dir.join(format!("seed-{name}")), bytes)?;
        }
        println!("{target}: {} seeds", seeds.len());
    }
    Ok(())
}

libfuzzer_sys::fuzz_target!(
    init: {
        let code = match write_seeds() {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("cannot write the seeds: {e}");
                1
            }
        };
        std::process::exit(code);
    },
    |_data: &[u8]| {}
);
