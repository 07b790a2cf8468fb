//! The SingleStepTests MOO reader (`vmscope conformance sst`) on arbitrary files, plain and gzip:
//! `moo::read_file` through a scratch file (its parser is private); errors are fine, panics are not.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vmscope::conformance::moo;

fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("vmscope-fuzz-moo-{}.moo", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
    std::fs::write(path, data).expect("write the scratch file");
    if let Ok(file) = moo::read_file(path) {
        for t in &file.tests {
            let _ = t.hash_hex();
        }
    }
    let _ = moo::read_revocations(path);
});
