#!/usr/bin/env bash
# The one command: set up (venv with the original pymanager and supervisord, wrk, a release
# build of ours), then run every scenario. Arguments go to bench/run.py (--quick, --reps N,
# --only ready,exit,shutdown,footprint,rest,verifier, --managers ours,original,supervisord).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
"$here/setup.sh"
exec "$here/.venv/bin/python" "$here/run.py" "$@"
