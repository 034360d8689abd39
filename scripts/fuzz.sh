#!/usr/bin/env bash
# Builds the fuzz targets (clang 16, ASan + UBSan) and runs each for longer
# than the test suite does, keeping what they find in fuzz-corpus/.
#   scripts/fuzz.sh [SECONDS-PER-TARGET] [TARGET...]     (default 600 s, every target)
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh"
seconds=${1:-600}
shift || true
umbra_ensure_packages clang-16 libclang-rt-16-dev
umbra_build fuzz fuzz_targets
targets=("$@")
((${#targets[@]})) || targets=(spec machine trace driver_host)
for t in "${targets[@]}"; do
  corpus=$UMBRA_ROOT/fuzz-corpus/$t
  mkdir -p "$corpus" "$UMBRA_ROOT/fuzz-artifacts"
  umbra_log "fuzzing $t for $seconds s (corpus $corpus)"
  "$UMBRA_ROOT/build/fuzz/tests/fuzz/${t}_fuzz" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$UMBRA_ROOT/fuzz-artifacts/${t}-" \
    "$corpus" "$UMBRA_ROOT/tests/fuzz/corpus/$t"
done
