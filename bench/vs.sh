#!/usr/bin/env bash
# Two builds of ours side by side, so that a regression shows the day it lands:
#
#   bench/vs.sh OLD [run.py options]      # default: --only rest,scale --reps 5
#
# OLD is another build's binary, or a commit: then its tree is exported (git archive, no
# second checkout) to $TMPDIR/pymanager-vs-<commit> and built there in release mode (~20 min
# cold on 2 cores; the build is kept for the next run). The new build is
# target/release/pymanager (or PYMANAGER_BIN). Both run the same configs, interleaved
# (new, old, new, old, ...), and summary.md gets a `ratio ours-vs/ours` column: above 1
# means the old build took longer (or, for requests/s, served more).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
[ $# -ge 1 ] || { sed -n '2,11p' "$0" >&2; exit 2; }
old=$1
shift

if [ ! -x "$old" ]; then
    commit=$(git -C "$root" rev-parse --short "$old^{commit}")
    tree="${TMPDIR:-/tmp}/pymanager-vs-$commit"
    if [ ! -x "$tree/target/release/pymanager" ]; then
        mkdir -p "$tree"
        git -C "$root" archive "$commit" | tar -x -C "$tree"
        echo "building $commit in $tree (release)..." >&2
        cargo build --release --quiet --manifest-path "$tree/Cargo.toml" -p pymanager \
            --bin pymanager --target-dir "$tree/target"
    fi
    old="$tree/target/release/pymanager"
fi

"$here/setup.sh"
if [ $# -eq 0 ]; then
    set -- --only rest,scale --reps 5
fi
exec "$here/.venv/bin/python" "$here/run.py" --managers ours --vs "$old" "$@"
