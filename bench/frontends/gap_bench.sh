#!/usr/bin/env bash
# The recovery gap as real programs see it, per fault type, against the gap
# Umbra's own trace records for the same fault (the `recovered` event of
# `umbra run --jsonl`: detection to serving again):
#   ping -i 0.002 through the shadowed NIC: the longest silence between replies;
#   iperf3 TCP through it: the lowest 100 ms interval (and the median one);
#   fio 4 KiB random writes, depth 16, O_DIRECT, on the disk's FUSE file: the
#     largest completion latency.
# One fault per trial (`umbra inject DEVICE FAULT` 1 s into a 3 s run), the
# faults spaced so that the restart policy's backoff is back at its start.
# Needs root, /dev/fuse, fio; the network part also /dev/net/tun, network
# namespaces, iperf3 (skipped, with the reason, when missing). Usage:
#   bench/frontends/gap_bench.sh [TRIALS-PER-FAULT]     (default 3)
# FAULTS="segfault abort" picks the fault types; "none" (the first by
# default) is the baseline: the same runs without a fault. NET=0 skips the
# network part.
set -euo pipefail
trials=${1:-3}
faults=${FAULTS:-none segfault abort sigkill hang}
root=$(cd "$(dirname "$0")/../.." && pwd)
umbra=${UMBRA:-$root/build/default/cli/umbra}
export UMBRA_BUILD_DIR=${UMBRA_BUILD_DIR:-$root/build/default}
id=$$
work=$(mktemp -d /tmp/umbra-gap-bench-$id.XXXX)
app=umbra-gap-app-$id peer=umbra-gap-peer-$id
run_pid=

cleanup() {
  [ -n "$run_pid" ] && kill -TERM "$run_pid" 2>/dev/null && wait "$run_pid" 2>/dev/null || true
  # A server whose client never came (a failed trial) still waits.
  [ -s "$work/iperf-server.pid" ] && kill "$(cat "$work/iperf-server.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

net=${NET:-1}
why="NET=0"
if [ "$(id -u)" != 0 ]; then net=0 why="not root"; fi
[ -c /dev/net/tun ] || { net=0; why="no /dev/net/tun"; }
command -v iperf3 > /dev/null || { net=0; why="no iperf3"; }
if [ $net = 1 ] && ! ip netns add "umbra-gap-probe-$id" 2> /dev/null; then net=0 why="no network namespaces"; fi
ip netns del "umbra-gap-probe-$id" 2> /dev/null || true
[ $net = 1 ] || echo "network part skipped: $why"

nic=""
if [ $net = 1 ]; then
  nic="devices {
  name: \"nic0\" bus: \"platform\" compatible: \"umbra,e1000-emu\" device_class: \"net\"
  settings { key: \"backend\" value: \"tap\" }
  settings { key: \"tap\" value: \"umgw${id: -5}\" }
  frontend { interface: \"umga${id: -5}\" netns: \"$app\" address: \"10.78.0.1/24\"
             wire_netns: \"$peer\" wire_address: \"10.78.0.2/24\" }
}
drivers { name: \"nic\" bus: \"platform\" compatible: \"umbra,e1000-emu\" binary: \"umbra-driver-nic\" }"
fi
cat > "$work/gap.textproto" <<PB
name: "gap-bench"
settings {
  heartbeat_period_ms: 50
  restart_budget { max_restarts: 10000 window_ms: 60000 backoff_ms: 5 }
}
buses { name: "platform" }
devices {
  name: "disk0" bus: "platform" compatible: "umbra,disk-emu" device_class: "block"
  settings { key: "blocks" value: "32768" }
  settings { key: "queue_depth" value: "32" }
  settings { key: "image" value: "$work/disk0.img" }
  frontend {}
}
drivers { name: "disk" bus: "platform" compatible: "umbra,disk-emu" binary: "umbra-driver-disk" }
$nic
PB
"$umbra" run "$work/gap.textproto" --jsonl --run-dir "$work/run" > "$work/run.log" 2>&1 &
run_pid=$!
for _ in $(seq 100); do grep -q "listening on" "$work/run.log" && break; sleep 0.1; done
grep -q "listening on" "$work/run.log" || { cat "$work/run.log"; exit 1; }

# Injects FAULT into DEVICE after 1 s; prints the gap (ms) the machine
# recorded for the recovery that followed.
inject_and_gap() {
  sleep 1
  if [ "$2" = none ]; then echo -; return; fi
  local from
  from=$(wc -l < "$work/run.log")
  "$umbra" inject "$1" "$2" --run-dir "$work/run" > /dev/null
  for _ in $(seq 100); do
    tail -n +"$((from + 1))" "$work/run.log" | grep '"kind":"recovered"' | grep -q "\"$1\"" && break
    sleep 0.05
  done
  tail -n +"$((from + 1))" "$work/run.log" | grep '"kind":"recovered"' | grep "\"$1\"" | head -1 |
    sed -n 's/.*serving again after \([0-9]*\) us.*/\1/p' | python3 -c 'import sys; v=sys.stdin.read().strip(); print(f"{int(v)/1000:.1f}" if v else "-")'
}

# The longest silence (ms) between ping replies in ping -D output.
longest_silence() {
  python3 -c '
import re, sys
t = [float(m.group(1)) for m in (re.match(r"\[(\d+\.\d+)\].*bytes from", l) for l in open(sys.argv[1])) if m]
print(f"{max(b - a for a, b in zip(t, t[1:])) * 1000:.1f}" if len(t) > 1 else "-")' "$1"
}

# lowest and median 100 ms interval (Mbit/s) of iperf3 -J output.
iperf_intervals() {
  python3 -c '
import json, statistics, sys
try:
  v = [i["sum"]["bits_per_second"] / 1e6 for i in json.load(open(sys.argv[1]))["intervals"]]
  print(f"{min(v):.0f} {statistics.median(v):.0f}")
except Exception:
  print("failed")' "$1"
}

fio_max_ms() {
  fio --name=g --filename="$work/run/disk0" --rw=randwrite --bs=4k --size=128m --ioengine=libaio --iodepth=16 \
    --direct=1 --runtime=3 --time_based --norandommap --randrepeat=0 --output-format=json 2> /dev/null |
    python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]["write"]; print("%.1f" % (j["clat_ns"]["max"] / 1e6))' || echo failed
}

printf '%-9s %5s | %12s %10s | %16s %10s | %12s %10s\n' fault trial "ping silence" "umbra nic" \
  "iperf3 low/med" "umbra nic" "fio max clat" "umbra disk"
printf '%-9s %5s | %12s %10s | %16s %10s | %12s %10s\n' "" "" ms ms Mbit/s ms ms ms
for fault in $faults; do
  for trial in $(seq "$trials"); do
    ping_ms=- ping_gap=- iperf=- iperf_gap=-
    if [ $net = 1 ]; then
      ip netns exec "$app" ping -D -i 0.002 -w 3 10.78.0.2 > "$work/ping.txt" 2>&1 &
      ping_pid=$!
      ping_gap=$(inject_and_gap nic0 "$fault")
      wait $ping_pid || true
      ping_ms=$(longest_silence "$work/ping.txt")
      sleep 1.5
      ip netns exec "$peer" iperf3 -s -1 -D -I "$work/iperf-server.pid"
      sleep 0.3
      ip netns exec "$app" iperf3 -c 10.78.0.2 -t 3 -i 0.1 -J > "$work/iperf.json" 2>&1 &
      iperf_pid=$!
      iperf_gap=$(inject_and_gap nic0 "$fault")
      wait $iperf_pid || true
      iperf=$(iperf_intervals "$work/iperf.json" | tr ' ' /)
      [ "$iperf" != failed ] || sed -n 's/.*"error":\s*"\(.*\)".*/iperf3: \1/p' "$work/iperf.json" >&2
      sleep 1.5
    fi
    fio_out=$work/fio.txt
    (fio_max_ms > "$fio_out") &
    fio_pid=$!
    disk_gap=$(inject_and_gap disk0 "$fault")
    wait $fio_pid || true
    printf '%-9s %5s | %12s %10s | %16s %10s | %12s %10s\n' "$fault" "$trial" "$ping_ms" "$ping_gap" "$iperf" \
      "$iperf_gap" "$(cat "$fio_out")" "$disk_gap"
    sleep 1.5
  done
done
