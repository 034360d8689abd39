#!/usr/bin/env bash
# Formats Umbra's C++ sources with the repo's .clang-format.
#   scripts/format.sh           rewrite every tracked .cc/.h in place
#   scripts/format.sh --check   change nothing; list the files that differ and exit 1
# The suite runs the check (ctest -R FormatCheck); it skips, saying why, when
# clang-format is missing. Generated code (build/) is never touched.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if ! command -v clang-format >/dev/null; then
  echo "clang-format is not installed (apt-get install clang-format): not checked" >&2
  exit 77
fi
mapfile -t files < <(git ls-files '*.cc' '*.h' 2>/dev/null || find . -path ./build -prune -o \( -name '*.cc' -o -name '*.h' \) -print)
if [[ ${1:-} != --check ]]; then
  printf '%s\n' "${files[@]}" | xargs -P "$(nproc)" -n 16 clang-format -i
  exit 0
fi
bad=()
for f in "${files[@]}"; do
  clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
((${#bad[@]})) || exit 0
echo "not formatted as .clang-format says (run scripts/format.sh):" >&2
printf '  %s\n' "${bad[@]}" >&2
exit 1
