#!/usr/bin/env bash
# Throughput and latency of `GET /` with 20 processes, on loopback, under wrk.
#
#   bench/rest.sh [duration=10s] [connections=32] [threads=1]
#
# Builds the release binary, starts it on a config of 20 `sleep` processes (port 0: it
# reads the address file), waits for `running`, runs wrk (apt-get install -y wrk) against
# `/` and `/status`, then shuts the manager down. Measures; asserts nothing.
set -euo pipefail

duration=${1:-10s}
connections=${2:-32}
threads=${3:-1}
root=$(cd "$(dirname "$0")/.." && pwd)

command -v wrk >/dev/null || { echo "wrk not found: apt-get install -y wrk" >&2; exit 1; }
cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p pymanager
bin="$root/target/release/pymanager"

dir=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill -INT "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

{
    printf '{"http": {"enabled": true, "port": 0}, "keep-alive": true, "processes": {'
    for i in $(seq 1 20); do
        [ "$i" -gt 1 ] && printf ','
        printf '"p%d": {"executable": "sleep", "arguments": ["1000"]}' "$i"
    done
    printf '}}\n'
} > "$dir/pymanager.json"

"$bin" -f "$dir/pymanager.json" > "$dir/out.log" 2>&1 &
pid=$!
"$bin" ctl -f "$dir/pymanager.json" wait --timeout 30 >/dev/null 2>&1 || {
    # Without `ctl` (older builds): wait for the address file and `running`.
    for _ in $(seq 1 300); do
        [ -s "$dir/.pymanager/pymanager.json.addr" ] && \
            curl -sf "$(cat "$dir/.pymanager/pymanager.json.addr")/status" | grep -q '"running"' && break
        sleep 0.1
    done
}
url=$(cat "$dir/.pymanager/pymanager.json.addr")
echo "pymanager $("$bin" -V 2>/dev/null | cut -d' ' -f2) at $url; $(nproc) cores; $(curl -s "$url/" | head -c 120)..."
echo "response size of GET /: $(curl -s "$url/" | wc -c) bytes"

for path in / /status; do
    echo
    echo "== GET $path: wrk -t$threads -c$connections -d$duration --latency"
    wrk -t"$threads" -c"$connections" -d"$duration" --latency "$url$path" \
        | grep -E 'Requests/sec|Latency  |50%|90%|99%|Non-2xx|Socket errors'
done
echo
