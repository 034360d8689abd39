#!/usr/bin/env bash
# A private one-node Slurm cluster in a folder of its own, for tests and
# benchmarks: munged on its own key and socket, slurmctld and slurmd on free
# ports, all started as daemons and stopped by their pid files.
#
#   scripts/slurm-cluster.sh start DIR [CPUS]   # then: export SLURM_CONF=DIR/slurm.conf
#   scripts/slurm-cluster.sh stop DIR
#
# Needs root (slurmd runs the jobs) and Debian's slurm-wlm and munge.
set -euo pipefail

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
    shuf -i 20000-60000 -n 1
}

start() {
  local dir=$1 cpus=${2:-$(nproc)}
  mkdir -p "$dir"/{munge,state,spool,log}
  dir=$(cd "$dir" && pwd)
  chmod 700 "$dir/munge"
  head -c 1024 /dev/urandom > "$dir/munge/munge.key"
  chmod 400 "$dir/munge/munge.key"
  munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/socket" \
    --pid-file="$dir/munge/munged.pid" --seed-file="$dir/munge/seed" --log-file="$dir/log/munged.log"
  local host
  host=$(hostname -s)
  cat > "$dir/slurm.conf" <<CONF
ClusterName=umbra
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=sched_interval=1
ReturnToService=2
SlurmUser=root
SlurmdUser=root
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=umbra Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF=$dir/slurm.conf
  slurmctld -f "$SLURM_CONF"
  slurmd -f "$SLURM_CONF"
  local i
  for i in $(seq 60); do
    if sinfo -h -o %T 2>/dev/null | grep -q idle; then return 0; fi
    sleep 0.5
  done
  echo "slurm-cluster: the node never became idle" >&2
  sinfo >&2 || true
  tail -20 "$dir/log/slurmctld.log" >&2 || true
  return 1
}

stop() {
  local dir=$1 f
  SLURM_CONF=$dir/slurm.conf scancel --user="$(id -un)" 2>/dev/null || true
  for f in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
    [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
  done
  sleep 0.5
}

case "${1:-}" in
  start) start "${2:?DIR}" "${3:-}" ;;
  stop) stop "${2:?DIR}" ;;
  *) echo "usage: $0 start DIR [CPUS] | stop DIR" >&2; exit 64 ;;
esac
