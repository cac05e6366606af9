#!/usr/bin/env bash
# Installs what `cargo test` needs beyond a Rust toolchain:
# - the wasm32-wasip2 target (the built-in verifiers are compiled for it; rustup does not
#   add targets by itself here);
# - Debian's Chromium and its WebDriver (chromedriver), for the dashboard's browser tests;
# - node >= 20 with npm, for the JavaScript verifier example (its packages come pinned from
#   examples/js-verifier/package-lock.json, installed by its build.sh with `npm ci`);
# - python3 with venv, for the Python verifiers (componentize-py==0.25.1, pinned, goes into
#   examples/python-verifier/.venv, made by that example's build.sh) and for the wheel's
#   tests (scripts/python-tests.sh makes its venvs from the pinned python/requirements-*.txt);
# - the validators of `pymanager export` (below), and Debian's systemd for
#   `systemd-analyze verify`.
# Safe to run again: it installs only what is missing.
set -euo pipefail

rustup target add wasm32-wasip2

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
command -v systemd-analyze >/dev/null || missing+=(systemd)
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

# The validators `pymanager export` is checked against (tests/export.rs), each in a venv of
# its own under target/validators (docker-compose 1.29.2 needs jsonschema < 4, and
# kubernetes-validate a newer one):
# - docker-compose 1.29.2 (validates a file offline with `config`, no daemon; its
#   compose_spec.json is also the compose-spec schema the tests check with jsonschema).
#   It needs PyYAML 5.4.1, which builds only with Cython < 3, without build isolation;
# - kubernetes-validate 1.31.0, which carries the schemas of Kubernetes 1.31.
validators="$PWD/target/validators"
if [ ! -x "$validators/compose/bin/docker-compose" ]; then
    rm -rf "$validators/compose"
    python3 -m venv "$validators/compose"
    "$validators/compose/bin/pip" install -q "cython==0.29.37" "wheel==0.43.0" "setuptools==69.5.1"
    "$validators/compose/bin/pip" install -q --no-build-isolation "pyyaml==5.4.1" "docker-compose==1.29.2"
fi
if [ ! -x "$validators/k8s/bin/kubernetes-validate" ]; then
    rm -rf "$validators/k8s"
    python3 -m venv "$validators/k8s"
    "$validators/k8s/bin/pip" install -q "kubernetes-validate==1.31.0"
fi
"$validators/compose/bin/docker-compose" version --short
"$validators/k8s/bin/kubernetes-validate" --version 2>/dev/null || true
systemd-analyze --version | head -1
