//! What a component asks of its host, read before it is compiled.
//!
//! Compiling a 12–18 MB component (an interpreter inside: ComponentizeJS, componentize-py)
//! takes seconds; the linker finds a missing import only afterwards. Reading the import
//! section takes microseconds (nested core modules are skipped, not parsed), so a
//! component that cannot run is refused first, with the import named and the build flag
//! or change that removes it. The same pass refuses component-model async (`async`
//! lifts and lowers, streams, futures, tasks): the engine runs synchronous components
//! only, and a verifier needs nothing else (its host calls already wait asynchronously
//! in the host, not in the guest).

use wasmparser::{CanonicalFunction, CanonicalOption, Chunk, Parser, Payload};

/// WASI 0.2 interfaces the host links (with nothing granted through them): a component
/// built for `wasm32-wasip2` imports some of them even when it uses none.
const WASI_PROVIDED: &[&str] = &[
    "wasi:io/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:cli/",
    "wasi:filesystem/",
    "wasi:sockets/",
];

/// Minor versions of `pymanager:verifier` the host provides (major 1).
const PYMANAGER_MINORS: std::ops::RangeInclusive<u64> = 0..=2;

/// Refuses, in one line, a component whose imports the host does not provide or which
/// uses component-model async; `what` names the file.
pub(crate) fn check(bytes: &[u8], what: &str) -> Result<(), String> {
    let mut found = Found::default();
    scan(bytes, 0, &mut found).map_err(|e| format!("{what} is not a valid component: {e}"))?;
    let missing: Vec<&String> = found.imports.iter().filter(|i| !provided(i)).collect();
    if let Some(first) = missing.first() {
        let names = missing
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let verb = if missing.len() == 1 { "it" } else { "them" };
        return Err(format!(
            "{what} imports {names}, which pymanager does not provide ({})",
            remedy(first, verb)
        ));
    }
    if let Some(feature) = found.uses_async {
        return Err(format!(
            "{what} uses component-model async ({feature}), which pymanager does not run: \
             build it with synchronous exports (host calls such as sleep and http-request \
             already wait without blocking pymanager)"
        ));
    }
    Ok(())
}

#[derive(Default)]
struct Found {
    imports: Vec<String>,
    uses_async: Option<&'static str>,
}

/// Reads the top-level imports of the component in `bytes`, and looks for async
/// canonical functions in it and in nested components (not in core modules: they have
/// none).
fn scan(mut bytes: &[u8], depth: usize, found: &mut Found) -> wasmparser::Result<()> {
    let mut parser = Parser::new(0);
    loop {
        let (consumed, payload) = match parser.parse(bytes, true)? {
            Chunk::Parsed { consumed, payload } => (consumed, payload),
            // Not possible with eof = true.
            Chunk::NeedMoreData(_) => return Ok(()),
        };
        bytes = &bytes[consumed..];
        match payload {
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    found.imports.push(import?.name.name.to_string());
                }
            }
            Payload::ComponentCanonicalSection(reader) => {
                for f in reader {
                    if let Some(feature) = async_feature(&f?) {
                        found.uses_async.get_or_insert(feature);
                    }
                }
            }
            Payload::ModuleSection {
                unchecked_range, ..
            } => {
                bytes = bytes.get(unchecked_range.len()..).unwrap_or_default();
            }
            Payload::ComponentSection {
                unchecked_range, ..
            } => {
                let len = unchecked_range.len().min(bytes.len());
                scan(&bytes[..len], depth + 1, found)?;
                bytes = &bytes[len..];
            }
            Payload::End(_) => return Ok(()),
            _ => {}
        }
    }
}

fn async_feature(f: &CanonicalFunction) -> Option<&'static str> {
    use CanonicalFunction as F;
    let is_async = |options: &[CanonicalOption]| {
        options
            .iter()
            .any(|o| matches!(o, CanonicalOption::Async | CanonicalOption::Callback(_)))
    };
    match f {
        F::Lift { options, .. } if is_async(options) => Some("an async export"),
        F::Lower { options, .. } if is_async(options) => Some("an async import"),
        F::TaskReturn { .. } | F::TaskCancel | F::ContextGet { .. } | F::ContextSet { .. } => {
            Some("tasks")
        }
        F::StreamNew { .. } | F::StreamRead { .. } | F::StreamWrite { .. } => Some("streams"),
        F::FutureNew { .. } | F::FutureRead { .. } | F::FutureWrite { .. } => Some("futures"),
        F::BackpressureInc | F::BackpressureDec | F::WaitableSetNew | F::WaitableSetWait { .. } => {
            Some("waitables")
        }
        _ => None,
    }
}

/// True when the host links this import (`pymanager:verifier/host@1.0.0`, WASI 0.2 …).
/// `probe` came with 1.1.0; `host`, `types` and `probe` of earlier minor versions are
/// served by their 1.2.0 versions, which keep every earlier function and type unchanged.
fn provided(name: &str) -> bool {
    let Some((path, version)) = name.split_once('@') else {
        return false;
    };
    let mut v = version.split('.').map(|p| p.parse::<u64>().ok());
    let (major, minor) = (v.next().flatten(), v.next().flatten());
    if matches!(path, "pymanager:verifier/host" | "pymanager:verifier/types") {
        return major == Some(1) && minor.is_some_and(|m| PYMANAGER_MINORS.contains(&m));
    }
    if path == "pymanager:verifier/probe" {
        return major == Some(1) && minor.is_some_and(|m| m >= 1 && PYMANAGER_MINORS.contains(&m));
    }
    WASI_PROVIDED.iter().any(|p| path.starts_with(p)) && major == Some(0) && minor == Some(2)
}

/// What to do about an import the host does not provide.
fn remedy(import: &str, verb: &str) -> String {
    if import.starts_with("wasi:http/") {
        return format!(
            "a ComponentizeJS build removes {verb} with '-d http fetch-event'; in any \
             language, reach hosts through pymanager:verifier/host's http-request, not \
             wasi:http"
        );
    }
    if let Some(v) = import.split_once('@').map(|(_, v)| v)
        && import.starts_with("wasi:")
        && !v.starts_with("0.2.")
    {
        return format!(
            "pymanager runs WASI 0.2 components: build for wasm32-wasip2 / WASI 0.2 to remove {verb}"
        );
    }
    if import.starts_with("pymanager:verifier/") {
        return "it was built against a newer WIT than this pymanager's \
                (pymanager:verifier@1.0 to @1.2): update pymanager or build against wit/ of this one"
            .into();
    }
    format!(
        "a verifier may import only pymanager:verifier/host, pymanager:verifier/probe and the WASI 0.2 interfaces \
         io, clocks, random, cli, filesystem and sockets: remove what uses {verb}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_host_provides() {
        assert!(provided("pymanager:verifier/host@1.0.0"));
        assert!(provided("pymanager:verifier/host@1.1.0"));
        assert!(provided("pymanager:verifier/host@1.2.0"));
        assert!(provided("pymanager:verifier/probe@1.2.0"));
        assert!(!provided("pymanager:verifier/host@1.3.0"));
        assert!(!provided("pymanager:verifier/host@2.0.0"));
        assert!(provided("pymanager:verifier/probe@1.1.0"));
        assert!(!provided("pymanager:verifier/probe@1.0.0"));
        assert!(!provided("pymanager:verifier/probe@1.3.0"));
        assert!(provided("wasi:cli/environment@0.2.6"));
        assert!(provided("wasi:io/streams@0.2.10"));
        assert!(!provided("wasi:io/streams@0.3.0"));
        assert!(!provided("wasi:http/types@0.2.10"));
        assert!(!provided("wasi:keyvalue/store@0.2.0"));
        assert!(!provided("env"));
    }

    #[test]
    fn the_remedy_names_the_flag() {
        assert!(remedy("wasi:http/types@0.2.10", "it").contains("-d http fetch-event"));
        assert!(remedy("wasi:cli/environment@0.3.0", "it").contains("WASI 0.2"));
    }

    /// A component that imports `name` as an (empty) instance, and nothing else.
    pub(crate) fn importing(name: &str) -> Vec<u8> {
        use wasm_encoder::{
            Component, ComponentImportSection, ComponentTypeRef, ComponentTypeSection, InstanceType,
        };
        let mut types = ComponentTypeSection::new();
        types.instance(&InstanceType::new());
        let mut imports = ComponentImportSection::new();
        imports.import(name, ComponentTypeRef::Instance(0));
        let mut c = Component::new();
        c.section(&types).section(&imports);
        c.finish()
    }

    #[test]
    fn an_import_the_host_lacks_is_named_with_its_remedy() {
        let e = check(&importing("wasi:http/types@0.2.10"), "v.wasm").unwrap_err();
        assert_eq!(
            e,
            "v.wasm imports wasi:http/types@0.2.10, which pymanager does not provide (a \
             ComponentizeJS build removes it with '-d http fetch-event'; in any language, \
             reach hosts through pymanager:verifier/host's http-request, not wasi:http)"
        );
        check(&importing("wasi:cli/environment@0.2.3"), "v.wasm").unwrap();
    }

    #[test]
    fn component_model_async_is_refused_up_front() {
        use wasm_encoder::{CanonicalFunctionSection, Component};
        let mut canon = CanonicalFunctionSection::new();
        canon.backpressure_inc();
        let mut c = Component::new();
        c.section(&canon);
        let e = check(&c.finish(), "v.wasm").unwrap_err();
        assert!(
            e.starts_with(
                "v.wasm uses component-model async (waitables), which pymanager does not run"
            ),
            "{e}"
        );
    }

    #[test]
    fn the_built_ins_pass() {
        for b in crate::runtime::types::BUILTINS {
            check(b.component.unwrap(), b.module).unwrap();
        }
    }
}
