//! Tries to reach the host's file system; passes (wrongly) only if it could.
use pymanager_guest::{Verifier, export_verifiers};
use serde::Deserialize;

#[derive(Deserialize)]
struct Args {
    /// A file the test created; the guest tries to read it.
    read: String,
    /// A path the test watches; the guest tries to create it.
    write: String,
}

struct OpenFile;
impl Verifier for OpenFile {
    type Args = Args;
    fn verify(a: Args) -> Result<(), String> {
        let read = std::fs::read(&a.read);
        let write = std::fs::write(&a.write, b"escaped");
        let cwd = std::fs::read_dir(".").map(|d| d.count());
        match (read, write, cwd) {
            (Err(r), Err(w), Err(c)) => {
                Err(format!("no file access: read: {r}; write: {w}; list: {c}"))
            }
            _ => Ok(()),
        }
    }
}

export_verifiers!(OpenFile);
