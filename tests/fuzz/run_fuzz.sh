#!/usr/bin/env bash
# Runs one fuzz target for a bounded time over a copy of its seed corpus.
#   run_fuzz.sh BINARY CORPUS_DIR SECONDS
# Exit: 0 no crash, leak or sanitizer report; 1 one was found (the input is
# kept and printed); 77 the target was not built (no clang 16 here).
set -uo pipefail
bin=$1 corpus=$2 seconds=$3
if [ ! -x "$bin" ]; then
  echo "SKIP: $bin is not built: the fuzz preset needs clang-16 and libclang-rt-16-dev (./test installs them)"
  exit 77
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/umbra-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$work/artifacts"
# The seeds stay as they are; what the run finds goes to the copy.
"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$work/artifacts/" "$work/corpus" "$corpus" > "$work/log" 2>&1
rc=$?
tail -n 25 "$work/log"
if [ "$rc" -ne 0 ]; then
  for f in "$work"/artifacts/*; do
    [ -f "$f" ] || continue
    keep=${TMPDIR:-/tmp}/$(basename "$bin")-$(basename "$f")
    cp "$f" "$keep"
    echo "crashing input kept in $keep (base64 below); reproduce with: $bin $keep"
    base64 "$f" | head -c 4000
    echo
  done
  exit 1
fi
