#!/usr/bin/env bash
# jobs/slurm/stop-local-slurm.sh - stop the single-node Slurm cluster started by start-local-slurm.sh.
#
# Only processes recorded in our PID files are signalled (after checking that the PID
# still belongs to the expected program); munged is stopped only if start-local-slurm.sh
# started it.  Jobs still queued/running on the cluster are cancelled first.
# Idempotent: running it when nothing is up is a no-op.
#
#   --purge   also delete $SLURM_LOCAL_DIR (logs, state) and the generated
#             /etc/slurm/slurm.conf (restoring a backed-up original, if any)
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

SLURM_LOCAL_DIR=${SLURM_LOCAL_DIR:-/tmp/local-slurm}
RUN=$SLURM_LOCAL_DIR/run
CONF=/etc/slurm/slurm.conf
MARKER="# Managed by start-local-slurm.sh - overwritten on each run"
PURGE=0
[ "${1:-}" = "--purge" ] && PURGE=1

log() { printf '[stop-local-slurm %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# running PID: process exists and is not a zombie (a daemon that exited may stay a zombie for a
# second or two until PID 1 reaps it; 'kill -0' would still succeed on it)
running() {
  local st
  st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  st=${st##*) }
  [[ "${st%% *}" != [ZX] ]]
}

# alive PIDFILE NAME: true if PIDFILE holds the PID of a live process whose comm starts with NAME
alive() {
  local pid
  [ -s "$1" ] || return 1
  pid=$(<"$1") || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$2"* ]] && running "$pid"
}

stop_pidfile() {
  local pid i
  if ! alive "$1" "$2"; then
    [ -e "$1" ] && log "$2: stale pid file $1 removed"
    rm -f "$1"
    return 0
  fi
  pid=$(<"$1")
  log "stopping $2 (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do running "$pid" || break; sleep 0.1; done
  if running "$pid"; then
    log "$2 (pid $pid) ignored SIGTERM for 15 s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$1"
}

[ "$(id -u)" -eq 0 ] || { log "ERROR: must be run as root"; exit 1; }

# Cancel whatever is still queued or running, so no job steps outlive slurmd.
if alive "$RUN/slurmctld.pid" slurmctld; then
  jobs=$(timeout 10 squeue -h -o '%A' 2>/dev/null | sort -u | tr '\n' ' ' || true)
  if [ -n "${jobs// /}" ]; then
    log "cancelling jobs: $jobs"
    # shellcheck disable=SC2086
    timeout 10 scancel $jobs 2>/dev/null || true
    for ((i = 0; i < 60; i++)); do
      [ -z "$(timeout 10 squeue -h -o '%A' 2>/dev/null || true)" ] && break
      sleep 0.5
    done
  fi
fi

stop_pidfile "$RUN/slurmd.pid" slurmd
stop_pidfile "$RUN/slurmctld.pid" slurmctld
if [ -e "$RUN/munged.pid" ]; then
  stop_pidfile "$RUN/munged.pid" munged
else
  log "munged was not started by start-local-slurm.sh; leaving it alone"
fi

if [ "$PURGE" = 1 ]; then
  log "purging $SLURM_LOCAL_DIR"
  rm -rf "${SLURM_LOCAL_DIR:?}"
  if [ -f "$CONF" ] && grep -qxF "$MARKER" "$CONF"; then
    if [ -e "$CONF.pre-local-slurm" ]; then mv -f "$CONF.pre-local-slurm" "$CONF"; else rm -f "$CONF"; fi
  fi
fi
log "done"
