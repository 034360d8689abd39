#!/usr/bin/env bash
# Runs clang-tidy (the repo's .clang-tidy profile) over Umbra's sources.
#   scripts/tidy.sh              the C++ files changed since main (committed or not)
#   scripts/tidy.sh --all        every source file (slow: minutes per folder on 2 cores)
#   scripts/tidy.sh FILE...      those files
# clang-tidy 16 is used: Debian's clang 14 cannot parse libstdc++ 12's
# std::expected. Exits non-zero when clang-tidy reports anything.
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh"
umbra_ensure_packages clang-tidy-16
umbra_build default umbra  # compile_commands.json and the generated protobuf headers
cd "$UMBRA_ROOT"
files=()
if [[ ${1:-} == --all ]]; then
  mapfile -t files < <(git ls-files '*.cc' | grep -v '^tests/fuzz/')
elif (($#)); then
  files=("$@")
else
  mapfile -t files < <({ git diff --name-only main...HEAD; git diff --name-only HEAD; } | grep '\.cc$' | sort -u |
                       while read -r f; do [[ -f $f ]] && echo "$f"; done)
fi
((${#files[@]})) || { umbra_log "no C++ source to check"; exit 0; }
umbra_log "clang-tidy on ${#files[@]} file(s)"
# The flags the fuzz preset also needs for clang 16 with libstdc++ 12.
printf '%s\n' "${files[@]}" | xargs -P "$(nproc)" -n 4 clang-tidy-16 -p build/default --quiet \
  --extra-arg=-std=gnu++2b --extra-arg=-U__cpp_concepts --extra-arg=-D__cpp_concepts=202002L \
  --extra-arg=-Wno-builtin-macro-redefined --warnings-as-errors='*'
