#!/bin/sh
# Builds verifier.wasm from src/ with ComponentizeJS, from the lockfile.
#   examples/js-verifier/build.sh            (from anywhere)
# Needs node >= 20 and npm (the npm registry the first time).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
# ComponentizeJS 0.23.0 needs @bytecodealliance/preview2-shim 0.17 but lists it only as a
# development dependency of its own: package.json names it, pinned.
if [ ! -x node_modules/.bin/componentize-js ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
fi
# Up to date: a new file means a new compile in pymanager (its cache is keyed by content).
if [ -f verifier.wasm ] && [ -z "$(find src "$here/wit" package-lock.json -newer verifier.wasm 2>/dev/null)" ]; then
    echo "up to date: $here/verifier.wasm"
    exit 0
fi
# -d http fetch-event: pymanager gives a verifier no wasi:http (HTTP goes through the host
# interface, to granted hosts only); without it the component imports wasi:http/types and
# pymanager refuses it, naming this flag.
# A temporary file of this run's own: two builds at once each write a whole file, and the
# rename makes one of them verifier.wasm, never a mix of both.
tmp="$here/verifier.wasm.$$.tmp"
trap 'rm -f "$tmp"' EXIT
node_modules/.bin/componentize-js src/verifier.js --wit "$here/wit" --world-name verifier-module \
    -d http fetch-event -o "$tmp"
mv "$tmp" "$here/verifier.wasm"
echo "built $here/verifier.wasm"
