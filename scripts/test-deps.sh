#!/usr/bin/env bash
# Installs what `cargo test` needs beyond a Rust toolchain: the wasm32-wasip2 target (the
# built-in verifiers are compiled for it; rustup does not add targets by itself here) and,
# for the dashboard's browser tests, Debian's Chromium and its WebDriver (chromedriver).
# Safe to run again: it installs only what is missing.
set -euo pipefail

rustup target add wasm32-wasip2

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq chromium chromium-driver >/dev/null
fi
/usr/bin/chromium --version
/usr/bin/chromedriver --version
