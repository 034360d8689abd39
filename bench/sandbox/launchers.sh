#!/usr/bin/env bash
# What a ready-made sandbox launcher costs per spawn, against a plain
# fork+exec of the same program, in one run (the figures move with the
# machine's load; the ratios less so):
#   bench/sandbox/launchers.sh [N]
# unshare(1) and bubblewrap each make every namespace anew, network included,
# and add an exec of their own; build/default/bench/sandbox/sandbox_bench
# measures Umbra's own launcher (runtime/sandbox) the same way.
set -euo pipefail
n=${1:-200}
time_it() {
  local start end
  start=$(date +%s%N)
  for ((i = 0; i < n; i++)); do "$@" >/dev/null 2>&1; done
  end=$(date +%s%N)
  echo $(((end - start) / n / 1000))
}
base=$(time_it /bin/true)
printf '%-34s %6s us  %5s\n' "plain fork+exec (baseline)" "$base" "1.00x"
report() {
  local name=$1; shift
  local us
  us=$(time_it "$@")
  printf '%-34s %6s us  %5.2fx\n' "$name" "$us" "$(echo "$us / $base" | bc -l)"
}
report "unshare --pid --mount --net --ipc" unshare --pid --fork --mount --net --ipc /bin/true
if command -v bwrap >/dev/null; then
  report "bwrap --unshare-all, ro /usr" bwrap --unshare-all --die-with-parent --ro-bind /usr /usr \
    --symlink usr/lib /lib --symlink usr/lib64 /lib64 --proc /proc --dev /dev --tmpfs /tmp /usr/bin/true
else
  echo "bubblewrap not installed (apt-get install bubblewrap): skipped"
fi
