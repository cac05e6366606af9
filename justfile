# Everyday recipes. None is needed for the README's two commands.

# Build the binary (and the built-in verifiers it embeds).
build:
    cargo build --release

# Run the seed example (Ctrl-C stops it and everything it started).
example:
    cargo run --release -- -f examples/pymanager.json

# All tests, as CI runs them.
test:
    cargo test

# The wheel (dev profile) in a fresh venv, and the Python API's and pytest plugin's tests.
python-test *ARGS:
    scripts/python-tests.sh {{ARGS}}

# A release wheel in target/wheels/, checked against its manylinux tag.
wheel:
    maturin build --release --compatibility manylinux_2_34 --auditwheel check

# The README's pictures of the dashboard and its start-up waterfall, taken by its browser tests.
screenshot:
    PYMANAGER_SCREENSHOT=1 cargo test --test dashboard_look --test dashboard_startup

# Every command the READMEs and docs show, run from outside the checkout (after `cargo build`).
doc-commands:
    cargo build
    scripts/doc-commands.py

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

# CI, locally.
ci:
    .ci/run

# Benchmarks side by side with the original pymanager and supervisord.
bench:
    bench/run.sh

# The WASM runtime's micro-benchmarks.
bench-runtime:
    cargo bench -p pymanager --bench runtime

# Thousands of restarts through the REST API; reports fds, RSS and threads.
soak:
    python3 bench/soak.py
