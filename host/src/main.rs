//! The `pymanager` binary: everything lives in the library; this prints its error, if any,
//! once, and exits with its code.

fn main() {
    let code = match pymanager::app::try_main() {
        Ok(code) => code,
        Err(e) => {
            e.print();
            e.exit_code()
        }
    };
    std::process::exit(code);
}
