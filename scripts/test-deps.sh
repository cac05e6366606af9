#!/usr/bin/env bash
# Installs what `cargo test` needs beyond a Rust toolchain:
# - the wasm32-wasip2 target (the built-in verifiers are compiled for it; rustup does not
#   add targets by itself here);
# - Debian's Chromium and its WebDriver (chromedriver), for the dashboard's browser tests;
# - node >= 20 with npm, for the JavaScript verifier example (its packages come pinned from
#   examples/js-verifier/package-lock.json, installed by its build.sh with `npm ci`);
# - python3 with venv, for the Python verifiers (componentize-py==0.25.1, pinned, goes into
#   examples/python-verifier/.venv, made by that example's build.sh) and for the wheel's
#   tests (scripts/python-tests.sh makes its venvs from the pinned python/requirements-*.txt).
# Safe to run again: it installs only what is missing.
set -euo pipefail

rustup target add wasm32-wasip2

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
/usr/bin/chromium --version
/usr/bin/chromedriver --version

# ComponentizeJS 0.23.0 needs node 20 or newer (Debian 12 ships 18: use NodeSource's or
# nodejs.org's build there).
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
    echo "node $(node --version) is too old for examples/js-verifier: install node 20 or newer" >&2
    exit 1
fi
echo "node $(node --version), npm $(npm --version), $(python3 --version)"
