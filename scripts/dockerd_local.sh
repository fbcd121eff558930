#!/usr/bin/env bash
# dockerd_local.sh start|stop STATE_DIR: a Docker engine for the tests (tests/conftest.py `dockerd`)
# and CI, started as root from Debian's docker.io (apt-get install docker.io), the way
# scripts/slurm_local.sh starts Slurm. No systemd needed.
#   start: dockerd --iptables=false --bridge=none (no firewall or bridge changes on the machine:
#          builds and containers use --network host / --network none), default data root
#          /var/lib/docker (so images and the layer cache survive between runs on a machine) and
#          socket /var/run/docker.sock; waits until `docker info` answers (60 s). Pid and log in STATE_DIR.
#   stop:  SIGTERM to that pid, waits for it to exit (30 s), then SIGKILL.
# Environment: DOCKERD (default: dockerd on PATH, else /usr/sbin/dockerd), DOCKER (client, default docker).
set -euo pipefail
ACTION=${1:?usage: dockerd_local.sh start|stop STATE_DIR}
STATE=${2:?usage: dockerd_local.sh start|stop STATE_DIR}
DOCKER=${DOCKER:-docker}
log() { printf '[dockerd_local] %s\n' "$*" >&2; }
mkdir -p "$STATE"
PIDFILE="$STATE/dockerd.pid"

case "$ACTION" in
start)
  DOCKERD=${DOCKERD:-$(command -v dockerd || echo /usr/sbin/dockerd)}
  [ -x "$DOCKERD" ] || { log "no dockerd ($DOCKERD): apt-get install docker.io"; exit 2; }
  [ "$(id -u)" = 0 ] || { log "dockerd must run as root"; exit 2; }
  started=$SECONDS
  "$DOCKERD" --iptables=false --bridge=none --pidfile "$PIDFILE" > "$STATE/dockerd.log" 2>&1 &
  for _ in $(seq 120); do
    if "$DOCKER" info --format '{{.ServerVersion}}' >/dev/null 2>&1; then
      log "dockerd $("$DOCKER" info --format '{{.ServerVersion}} ({{.Driver}})') up in $((SECONDS - started)) s, pid $(cat "$PIDFILE")"
      exit 0
    fi
    kill -0 $! 2>/dev/null || { log "dockerd exited; last lines of $STATE/dockerd.log:"; tail -n 20 "$STATE/dockerd.log" >&2; exit 1; }
    sleep 0.5
  done
  log "dockerd did not answer within 60 s; log: $STATE/dockerd.log"; exit 1 ;;
stop)
  [ -f "$PIDFILE" ] || { log "no $PIDFILE: nothing to stop"; exit 0; }
  pid=$(cat "$PIDFILE")
  kill -TERM "$pid" 2>/dev/null || { log "dockerd $pid already gone"; exit 0; }
  for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || { log "dockerd $pid stopped"; exit 0; }; sleep 0.5; done
  kill -KILL "$pid" 2>/dev/null || true
  log "dockerd $pid killed after 30 s" ;;
*) log "usage: dockerd_local.sh start|stop STATE_DIR"; exit 2 ;;
esac
