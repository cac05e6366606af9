#!/bin/sh
# Builds verifier.wasm from app.py with componentize-py, in a venv of its own.
#   examples/python-verifier/build.sh            (from anywhere)
# Needs python3 (with venv) and PyPI the first time; ~10 s after that.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv="$here/.venv"
if [ ! -x "$venv/bin/componentize-py" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check componentize-py==0.25.1
fi
cd "$here"
"$venv/bin/componentize-py" -d "$root/wit" -w verifier-module componentize app -o "$here/verifier.wasm.tmp"
mv "$here/verifier.wasm.tmp" "$here/verifier.wasm"
echo "built $here/verifier.wasm"
