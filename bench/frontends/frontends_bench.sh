#!/usr/bin/env bash
# Real programs on shadowed devices against the same programs without Umbra,
# measured in one run (ratios, not absolute speeds):
#   fio 4 KiB random reads and writes, depth 1 and 32 (libaio, O_DIRECT), on
#     the FUSE file of a shadowed disk vs on a plain file holding the same
#     image on the same file system, and FUSE's own cost: the same image
#     through the same FuseFile with no shadow behind it (bench_fuse_floor);
#   iperf3 TCP between two namespaces through the shadowed NIC vs the same
#     two namespaces joined by a veth pair.
# Needs root, /dev/fuse, /dev/net/tun, fio and iperf3. Usage (from the repo):
#   bench/frontends/frontends_bench.sh [SECONDS-PER-RUN]      (default 5)
# RWS="randwrite" DEPTHS="32" pick fio cases; IPERF=0 skips iperf3.
set -euo pipefail
secs=${1:-5}
root=$(cd "$(dirname "$0")/../.." && pwd)
umbra=${UMBRA:-$root/build/default/cli/umbra}
export UMBRA_BUILD_DIR=${UMBRA_BUILD_DIR:-$root/build/default}
id=$$
work=$(mktemp -d /tmp/umbra-fe-bench-$id.XXXX)
app=umbra-feb-app-$id peer=umbra-feb-peer-$id va=umfv${id: -5}
run_pid= floor_pid=

cleanup() {
  [ -n "$run_pid" ] && kill -INT "$run_pid" 2>/dev/null && wait "$run_pid" 2>/dev/null || true
  [ -n "$floor_pid" ] && kill -TERM "$floor_pid" 2>/dev/null && wait "$floor_pid" 2>/dev/null || true
  ip netns del "$app" 2>/dev/null || true
  ip netns del "$peer" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/bench.textproto" <<PB
name: "fe-bench"
settings { heartbeat_period_ms: 100 }
buses { name: "platform" }
devices {
  name: "disk0" bus: "platform" compatible: "umbra,disk-emu" device_class: "block"
  settings { key: "blocks" value: "65536" }
  settings { key: "queue_depth" value: "32" }
  settings { key: "image" value: "$work/disk0.img" }
  frontend {}
}
devices {
  name: "nic0" bus: "platform" compatible: "umbra,e1000-emu" device_class: "net"
  settings { key: "backend" value: "tap" }
  settings { key: "tap" value: "umfbw${id: -5}" }
  frontend { interface: "umfba${id: -5}" netns: "$app" address: "10.79.0.1/24"
             wire_netns: "$peer" wire_address: "10.79.0.2/24" }
}
drivers { name: "disk" bus: "platform" compatible: "umbra,disk-emu" binary: "umbra-driver-disk" }
drivers { name: "nic" bus: "platform" compatible: "umbra,e1000-emu" binary: "umbra-driver-nic" }
PB
"$umbra" run "$work/bench.textproto" --run-dir "$work/run" > "$work/run.log" 2>&1 &
run_pid=$!
for _ in $(seq 100); do grep -q "listening on" "$work/run.log" && break; sleep 0.1; done
file=$work/run/disk0
plain=$work/plain.img
dd if="$file" of="$plain" bs=1M status=none   # the same 256 MiB image, on the same file system

# IOPS of one fio run: RW (randread|randwrite), DEPTH, FILE.
iops() {
  fio --name=b --filename="$3" --rw="$1" --bs=4k --size=256m --ioengine=libaio --iodepth="$2" --direct=1 \
    --runtime="$secs" --time_based --norandommap --randrepeat=0 --output-format=json 2>/dev/null |
    python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]; print(int(j["read"]["iops"]+j["write"]["iops"]))'
}

# FUSE's own cost: a copy of the image served through the same FuseFile by
# a pread/pwrite disk (no shadow).
floor_img=$work/floor.img floor=$work/floor
cp "$plain" "$floor_img"
floor_bin=$UMBRA_BUILD_DIR/bench/frontends/bench_fuse_floor
"$floor_bin" "$floor_img" "$floor" > "$work/floor.log" 2>&1 &
floor_pid=$!
for _ in $(seq 100); do grep -q serving "$work/floor.log" && break; sleep 0.1; done

ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
printf '%-20s %10s %10s %10s %11s %11s\n' "fio 4 KiB, O_DIRECT" "shadowed" "FUSE floor" "plain" "shad/plain" "floor/plain"
for rw in ${RWS:-randread randwrite}; do
  for depth in ${DEPTHS:-1 32}; do
    f=$(iops $rw $depth "$file")
    l=$(iops $rw $depth "$floor")
    p=$(iops $rw $depth "$plain")
    printf '%-20s %10d %10d %10d %11s %11s\n' "$rw depth $depth" "$f" "$l" "$p" "$(ratio $f $p)" "$(ratio $l $p)"
  done
done
kill -TERM $floor_pid; wait $floor_pid 2>/dev/null || true; floor_pid=
[ "${IPERF:-1}" = 1 ] || exit 0

# iperf3 Gbit/s from $1 to 10.x.0.2 in $2.
gbits() {
  ip netns exec "$2" iperf3 -s -1 -D
  sleep 0.3
  ip netns exec "$1" iperf3 -c "$3" -t "$secs" -J |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9)'
}
shadowed=$(gbits "$app" "$peer" 10.79.0.2)
kill -INT "$run_pid"; wait "$run_pid" 2>/dev/null || true; run_pid=
# The baseline: the same two namespaces joined by a veth pair.
ip netns add "$app" && ip netns add "$peer"
ip link add "$va" netns "$app" type veth peer name "${va}p" netns "$peer"
ip -n "$app" addr add 10.79.1.1/24 dev "$va" && ip -n "$app" link set "$va" up
ip -n "$peer" addr add 10.79.1.2/24 dev "${va}p" && ip -n "$peer" link set "${va}p" up
veth=$(gbits "$app" "$peer" 10.79.1.2)
printf '\n%-22s %12s %12s %7s\n' "iperf3 TCP, ${secs} s" "shadowed" "veth" "ratio"
printf '%-22s %12.2f %12.2f %7.3f\n' "Gbit/s" "$shadowed" "$veth" "$(python3 -c "print($shadowed/$veth)")"
