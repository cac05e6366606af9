//! Raw bytes into the config parser: it must never panic, and every error it returns
//! must be one line (the CLI prints it as it is).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check(data);
});

fn check(data: &[u8]) {
    match pymanager::config::parse(data, Path::new("pymanager.json")) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                assert!(!w.contains('\n'), "multi-line warning: {w:?}");
            }
        }
        Err(e) => {
            let line = e.to_string();
            assert!(!line.contains('\n'), "multi-line error: {line:?}");
            assert!((1..=5).contains(&e.exit_code()));
        }
    }
}
