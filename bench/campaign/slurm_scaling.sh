#!/usr/bin/env bash
# Campaign throughput: faults per second per core for each workload (one job,
# in this process's shell), then the same campaign as a Slurm array of 1 and
# of 2 one-job shards on a private one-node cluster, with the ratio.
#
#   bench/campaign/slurm_scaling.sh [RUNS_PER_CELL]     (root; slurm-wlm and munge)
#
# The array's time runs from submission to the merge job's end, so it
# includes Slurm's scheduling (sched_interval=1 here) and the merge.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
umbra=$root/build/default/cli/umbra
runs=${1:-6}
tmp=$(mktemp -d /tmp/umbra-slurm-bench.XXXXXX)
trap '"$root/scripts/slurm-cluster.sh" stop "$tmp/cluster"; rm -rf "$tmp"' EXIT

faults_per_s() { sed -n 's/.* in \([0-9.]*\) s: \([0-9.]*\) faults\/s.*/\2/p' "$1" | tail -1; }

echo "faults per second on one core (one job), $runs runs per cell:"
for w in echo-stream file-transfer disk-verifier audio-playback uart-echo sqlite; do
  "$umbra" campaign --workload "$w" --runs "$runs" --jobs 1 --seed 7 > /dev/null 2> "$tmp/$w.err" || true
  printf '  %-16s %s\n' "$w" "$(faults_per_s "$tmp/$w.err")"
done

"$root/scripts/slurm-cluster.sh" start "$tmp/cluster"
export SLURM_CONF=$tmp/cluster/slurm.conf
cat > "$tmp/c.textproto" <<C
workloads: "echo-stream"
workloads: "disk-verifier"
faults: "segfault"
faults: "sigkill"
runs_per_cell: $((runs * 10))
jobs: 1
C
declare -A took
for n in 1 2; do
  start=$(date +%s.%N)
  "$umbra" campaign "$tmp/c.textproto" --seed 5 --slurm --shards "$n" --out "$tmp/s$n" > /dev/null
  while [ -n "$(squeue -h)" ]; do sleep 0.2; done
  end=$(date +%s.%N)
  took[$n]=$(echo "$end - $start" | bc -l)
  faults=$(grep -o '"injected":"[0-9]*"' "$tmp"/s"$n"/shards/*.jsonl | sed 's/.*"\([0-9]*\)"/\1/' | paste -sd+ | bc)
  printf 'slurm array of %d shard(s): %s faults in %.2f s: %.1f faults/s\n' "$n" "$faults" "${took[$n]}" \
    "$(echo "$faults / ${took[$n]}" | bc -l)"
done
printf 'scaling 1 -> 2 shards: %.2fx\n' "$(echo "${took[1]} / ${took[2]}" | bc -l)"
