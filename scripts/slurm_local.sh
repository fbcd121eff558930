#!/usr/bin/env bash
# A real single-node Slurm cluster for tests and for trying `--runner slurm` on one machine.
#   scripts/slurm_local.sh start DIR   # munged + slurmctld + slurmd, config and state under DIR
#   scripts/slurm_local.sh stop DIR    # stop them by the pids in DIR (never by name)
# After `start`, `export SLURM_CONF=DIR/slurm.conf` points sbatch/squeue/scancel at it.
# Needs root and Debian's slurmctld, slurmd, slurm-client and munge packages
# (scripts/setup.sh installs them with HARNESS_WITH_SLURM=1). CPUs defaults to the machine's count.
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
action=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)
host=$(hostname)
cpus=${SLURM_LOCAL_CPUS:-$(nproc)}

write_conf() {
  mkdir -p "$dir/state" "$dir/spool" "$dir/log"
  cat > "$dir/slurm.conf" <<CONF
ClusterName=harness-local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=${SLURM_LOCAL_PORT:-6817}
SlurmdPort=$(( ${SLURM_LOCAL_PORT:-6817} + 1 ))
KillWait=${SLURM_LOCAL_KILLWAIT:-30}
MinJobAge=${SLURM_LOCAL_MINJOBAGE:-300}
JobRequeue=1
NodeName=$host CPUs=$cpus RealMemory=${SLURM_LOCAL_MEM_MB:-4000} State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
}

start_munge() {
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return 0; fi   # one is already serving
  [ -f /etc/munge/munge.key ] || mungekey -c -k /etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key
  mkdir -p /run/munge && chown munge:munge /run/munge
  /usr/sbin/munged --force --pid-file="$dir/munged.pid"
}

wait_for_idle() {
  for _ in $(seq 1 60); do
    if SLURM_CONF="$dir/slurm.conf" sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then return 0; fi
    sleep 0.5
  done
  echo "slurm_local: node not idle after 30 s; see $dir/log" >&2
  return 1
}

stop_pid_file() {
  local file=$1
  [ -f "$file" ] || return 0
  local pid; pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  fi
  rm -f "$file"
}

case $action in
  start)
    command -v slurmctld >/dev/null || [ -x /usr/sbin/slurmctld ] || { echo "slurmctld not installed" >&2; exit 1; }
    write_conf
    start_munge
    /usr/sbin/slurmctld -f "$dir/slurm.conf"
    /usr/sbin/slurmd -f "$dir/slurm.conf"
    wait_for_idle
    echo "export SLURM_CONF=$dir/slurm.conf"
    ;;
  stop)
    stop_pid_file "$dir/slurmd.pid"
    stop_pid_file "$dir/slurmctld.pid"
    stop_pid_file "$dir/munged.pid"
    ;;
  *) usage ;;
esac
