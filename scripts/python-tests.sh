#!/usr/bin/env bash
# The Python side, as its users get it: builds the wheel (dev profile, reusing the target/
# that `cargo test` built: only the binary is linked again), installs it with its [python]
# extra into a fresh venv beside the pinned pytest and pytest-xdist, and runs python/tests
# (the API, the plugin on examples/pytest with real services, xdist, Ctrl-C, kill -9).
#   scripts/python-tests.sh [PYTEST ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."
work=target/py-ci
rm -rf "$work"
mkdir -p "$work"
pip_install() {
    "$1/bin/pip" install --quiet --disable-pip-version-check "${@:2}"
}
python3 -m venv "$work/build"
pip_install "$work/build" -r python/requirements-build.txt
"$work/build/bin/maturin" build --profile dev --out "$work/wheels"
python3 -m venv "$work/venv"
pip_install "$work/venv" -r python/requirements-test.txt
wheel=$(ls "$work"/wheels/pymanager_rs-*.whl)
pip_install "$work/venv" "$wheel[python]"
ls -l "$wheel"
"$work/venv/bin/mypy" --strict --cache-dir "$work/mypy-cache" python/pymanager_rs
# The venv's own python: the tests find the binary beside the package, as users do.
"$work/venv/bin/python" -m pytest python/tests -p no:cacheprovider "$@"
