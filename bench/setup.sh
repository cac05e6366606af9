#!/usr/bin/env bash
# Installs what the benchmarks compare against, into bench/.venv (gitignored), and builds
# our binary and the runtime bench in release mode. Safe to run again: it only does what is
# missing.
#
# PYMANAGER_ORIGINAL=/some/venv/bin/pymanager uses that installation of the original tool
# (created there with pymanager 0.2.6.1, bottle and requests if it does not exist yet).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"

python=${PYTHON:-python3}
if [ ! -x "$here/.venv/bin/python" ]; then
    "$python" -m venv "$here/.venv"
fi
if ! "$here/.venv/bin/python" -c 'import pymanager, bottle, requests, supervisor' 2>/dev/null; then
    "$here/.venv/bin/pip" install --quiet 'pymanager==0.2.6.1' bottle requests supervisor
fi
if [ -n "${PYMANAGER_ORIGINAL:-}" ] && [ ! -x "$PYMANAGER_ORIGINAL" ]; then
    orig_venv="$(dirname "$(dirname "$PYMANAGER_ORIGINAL")")"
    "$python" -m venv "$orig_venv"
    "$orig_venv/bin/pip" install --quiet 'pymanager==0.2.6.1' bottle requests
fi

if ! command -v wrk >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
    elif command -v sudo >/dev/null; then
        sudo apt-get install -y wrk >/dev/null
    else
        echo "wrk is missing and cannot be installed here; the REST scenario will be skipped" >&2
    fi
fi

(cd "$root" && cargo build --release --quiet -p pymanager --bin pymanager \
    && cargo bench --quiet -p pymanager --bench runtime --no-run)
