#!/bin/sh
# Builds verifier.wasm from app.py with componentize-py, in a venv of its own.
#   examples/python-verifier/build.sh            (from anywhere)
#   examples/python-verifier/build.sh --tool     (only the venv; prints componentize-py's path)
# Needs python3 (with venv) and PyPI the first time; ~10 s after that.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
venv="$here/.venv"
if [ ! -x "$venv/bin/componentize-py" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check componentize-py==0.25.1
fi
# --tool: only make sure componentize-py is there, and print its path.
if [ "${1:-}" = "--tool" ]; then
    echo "$venv/bin/componentize-py"
    exit 0
fi
cd "$here"
# Up to date: componentize-py's output differs from build to build, and a new file means a
# new compile in pymanager (its cache is keyed by content), so do not rebuild for nothing.
if [ -f verifier.wasm ] && [ -z "$(find app.py "$here/wit" -newer verifier.wasm 2>/dev/null)" ]; then
    echo "up to date: $here/verifier.wasm"
    exit 0
fi
# A temporary file of this run's own: two builds at once each write a whole file, and the
# rename makes one of them verifier.wasm, never a mix of both.
tmp="$here/verifier.wasm.$$.tmp"
trap 'rm -f "$tmp"' EXIT
"$venv/bin/componentize-py" -d "$here/wit" -w verifier-module componentize app -o "$tmp"
mv "$tmp" "$here/verifier.wasm"
echo "built $here/verifier.wasm"
