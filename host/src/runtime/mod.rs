//! Runs verifiers as sandboxed WebAssembly components (wasmtime, WASI preview 2).
