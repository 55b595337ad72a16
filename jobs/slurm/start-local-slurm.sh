#!/usr/bin/env bash
# jobs/slurm/start-local-slurm.sh - install (if needed), configure and start a single-node,
# localhost-only Slurm cluster (munged + slurmctld + slurmd) for CI use, without systemd.
#
# Idempotent: safe to run again; daemons that are already running (per our PID files)
# are left alone unless the generated slurm.conf changed, in which case slurmctld and
# slurmd are restarted.  Waits (bounded) until the node is usable.
#
# Tested on Debian 12 (bookworm): slurm-wlm 22.05.8, munge 0.5.15, Open MPI 4.1.4, PMIx 4.2.2.
#
# Environment knobs (all optional):
#   SLURM_LOCAL_DIR      state/spool/log/pid directory            [/tmp/local-slurm]
#   SLURM_CLUSTER_NAME   ClusterName                              [localci]
#   SLURM_PARTITION      name of the single (default) partition   [debug]
#   SLURM_NODE_NAME      NodeName                                 [$(hostname -s)]
#   SLURM_NODE_CPUS      advertise this many CPUs instead of the real count
#                        (oversubscription for CI; uses SlurmdParameters=config_overrides)
#   SLURM_MPI_DEFAULT    MpiDefault (pmix|pmi2|none)              [pmix]
#   SLURM_START_TIMEOUT  seconds to wait for each daemon / the node [60]
#   SLURM_KEEP_STATE     1 = keep old controller state on a cold start [0]
#   SLURM_NO_INSTALL     1 = never call apt-get                    [0]
#   SLURM_MIN_JOB_AGE    MinJobAge (see the comment in slurm.conf below)          [300]
#   SLURM_LOOPBACK_ONLY  auto|1|0: make slurmctld/slurmd/srun/slurmstepd *listen* on 127.0.0.1
#                        only (CommunicationParameters=NoInAddrAny,NoCtldInAddrAny).  Slurm then
#                        binds to the address $(hostname) resolves to, and that only works if it
#                        is exactly 127.0.0.1 (with e.g. Debian's "127.0.1.1 host" srun binds
#                        127.0.1.1 but slurmstepd calls back the peer address 127.0.0.1 -> jobs
#                        hang), so 'auto' enables it only then; otherwise daemons listen on
#                        0.0.0.0 (all traffic still goes over 127.0.0.1).  1 = fail instead. [auto]
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

SLURM_LOCAL_DIR=${SLURM_LOCAL_DIR:-/tmp/local-slurm}
SLURM_CLUSTER_NAME=${SLURM_CLUSTER_NAME:-localci}
SLURM_PARTITION=${SLURM_PARTITION:-debug}
SLURM_NODE_NAME=${SLURM_NODE_NAME:-$(hostname -s)}
SLURM_NODE_CPUS=${SLURM_NODE_CPUS:-}
SLURM_MPI_DEFAULT=${SLURM_MPI_DEFAULT:-pmix}
SLURM_START_TIMEOUT=${SLURM_START_TIMEOUT:-60}
SLURM_KEEP_STATE=${SLURM_KEEP_STATE:-0}
SLURM_NO_INSTALL=${SLURM_NO_INSTALL:-0}
SLURM_MIN_JOB_AGE=${SLURM_MIN_JOB_AGE:-300}
SLURM_LOOPBACK_ONLY=${SLURM_LOOPBACK_ONLY:-auto}

CONF=/etc/slurm/slurm.conf
MARKER="# Managed by start-local-slurm.sh - overwritten on each run"
RUN=$SLURM_LOCAL_DIR/run
LOG=$SLURM_LOCAL_DIR/log
STATE=$SLURM_LOCAL_DIR/state
SPOOL=$SLURM_LOCAL_DIR/spool

log() { printf '[start-local-slurm %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; diagnostics; exit 1; }

diagnostics() {
  set +e
  log "---- diagnostics ----"
  for f in "$LOG/slurmctld.log" "$LOG/slurmd.log" /var/log/munge/munged.log; do
    [ -f "$f" ] && { echo "== tail $f" >&2; tail -n 25 "$f" >&2; }
  done
  timeout 5 scontrol show node "$SLURM_NODE_NAME" >&2 2>&1
  set -e
}

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

# stop_pidfile PIDFILE NAME: TERM (then KILL after 15 s) the process in PIDFILE, if it is NAME
stop_pidfile() {
  local pid i
  alive "$1" "$2" || { rm -f "$1"; return 0; }
  pid=$(<"$1")
  log "stopping $2 (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do running "$pid" || break; sleep 0.1; done
  if running "$pid"; then log "$2 ignored SIGTERM, sending SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; fi
  rm -f "$1"
}

# wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND every 0.2 s until it succeeds
wait_for() {
  local secs=$1 what=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out after ${secs}s waiting for $what"
    sleep 0.2
  done
}

munge_works() { munge -n -t 10 2>/dev/null | unmunge >/dev/null 2>&1; }
ctld_up()     { timeout 5 scontrol ping 2>/dev/null | grep -q 'is UP'; }

[ "$(id -u)" -eq 0 ] || die "must be run as root"
T_START=$SECONDS

# ---------------------------------------------------------------- 1. install
missing=0
for b in slurmctld slurmd sbatch srun sinfo scontrol munged munge unmunge; do
  command -v "$b" >/dev/null 2>&1 || missing=1
done
if [ "$missing" = 1 ]; then
  [ "$SLURM_NO_INSTALL" = 1 ] && die "Slurm/munge not installed and SLURM_NO_INSTALL=1"
  log "installing slurmctld slurmd slurm-client munge (apt-get)"
  t0=$SECONDS
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
  log "install took $((SECONDS - t0)) s"
fi
log "slurm $(slurmd -V | awk '{print $2}'), $(munged -V 2>&1 | awk '{print $1}')"

mkdir -p "$RUN" "$LOG" "$STATE" "$SPOOL"

# ---------------------------------------------------------------- 2. munge
install -d -o munge -g munge -m 0700 /etc/munge
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0711 /var/lib/munge
install -d -o munge -g munge -m 0700 /var/log/munge
if [ ! -s /etc/munge/munge.key ]; then
  log "creating /etc/munge/munge.key"
  (umask 077; dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none)
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key

if alive "$RUN/munged.pid" munged && munge_works; then
  log "munged already running (pid $(<"$RUN/munged.pid"), started by us)"
elif munge_works; then
  log "a munged not started by this script is already answering on the default socket; reusing it"
  rm -f "$RUN/munged.pid"
else
  rm -f "$RUN/munged.pid"
  log "starting munged"
  runuser -u munge -- munged
  wait_for "$SLURM_START_TIMEOUT" "munged" munge_works
  cp /run/munge/munged.pid "$RUN/munged.pid"   # our ownership record, used by stop-local-slurm.sh
  log "munged started (pid $(<"$RUN/munged.pid"))"
fi

# ---------------------------------------------------------------- 3. slurm.conf
hw=$(slurmd -C)                               # NodeName=x CPUs=.. Boards=.. ... RealMemory=..
hw=${hw%%$'\n'*}                               # (first line only; 2nd is UpTime=)
mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
[ -n "$mem" ] || die "could not parse 'slurmd -C' output: $hw"
if [ -n "$SLURM_NODE_CPUS" ]; then
  node_hw="CPUs=$SLURM_NODE_CPUS RealMemory=$mem"
  extra="SlurmdParameters=config_overrides"
else
  node_hw=${hw#NodeName=* }                   # drop "NodeName=xxx "
  extra=""
fi

# All traffic goes over 127.0.0.1 (NodeAddr, ControlAddr).  Listening sockets are restricted to
# 127.0.0.1 only when the hostname resolves to exactly 127.0.0.1 (see SLURM_LOOPBACK_ONLY).
comm_params=""
host_addr=$(getent ahostsv4 "$(hostname)" 2>/dev/null | awk 'NR == 1 {print $1}' || true)
case "$SLURM_LOOPBACK_ONLY" in
  auto | 1)
    if [ "$host_addr" = 127.0.0.1 ]; then
      comm_params="CommunicationParameters=NoInAddrAny,NoCtldInAddrAny"
    elif [ "$SLURM_LOOPBACK_ONLY" = 1 ]; then
      die "SLURM_LOOPBACK_ONLY=1 but hostname '$(hostname)' resolves to '${host_addr:-nothing}', not 127.0.0.1"
    else
      log "hostname resolves to '${host_addr:-nothing}', not 127.0.0.1: daemons listen on 0.0.0.0 (traffic still over 127.0.0.1)"
    fi ;;
esac

new_conf=$(cat <<EOF
$MARKER
ClusterName=$SLURM_CLUSTER_NAME
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=$SLURM_MPI_DEFAULT
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# default batch_sched_delay=3 leaves each new batch job pending 2-3 s; 0 -> ~1 s
SchedulerParameters=batch_sched_delay=0
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# One line per finished job / array task (JobId, state, ExitCode, ...); 'sacct -c' reads it.
JobCompType=jobcomp/filetxt
JobCompLoc=$LOG/jobcomp.log
# MinJobAge: seconds a finished job stays visible to scontrol/sbatch --wait.  With the default
# 300, 'sbatch --wait' returns 2, 10, 42, 74, ... s after submission (it sleeps 2, 8, 32, 32 s).
# MinJobAge=5 makes it poll every 2 s, but then 'sbatch --wait --array' can lose the exit code
# of a task that ended early (its record is purged before sbatch looks at it) -> use only
# without job arrays.  jobcomp.log (above) always has every job's/task's ExitCode, and the
# sbatch_wait function in $SLURM_LOCAL_DIR/env.sh polls every second and is array-safe.
MinJobAge=$SLURM_MIN_JOB_AGE
ReturnToService=2
MailProg=/bin/true
StateSaveLocation=$STATE
SlurmdSpoolDir=$SPOOL
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
$comm_params
$extra
NodeName=$SLURM_NODE_NAME NodeAddr=127.0.0.1 NodeHostname=$SLURM_NODE_NAME $node_hw State=UNKNOWN
PartitionName=$SLURM_PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
)

mkdir -p /etc/slurm
conf_changed=0
if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$new_conf" ]; then
  conf_changed=1
  if [ -f "$CONF" ] && ! grep -qxF "$MARKER" "$CONF" && [ ! -e "$CONF.pre-local-slurm" ]; then
    log "backing up existing $CONF to $CONF.pre-local-slurm"
    cp -p "$CONF" "$CONF.pre-local-slurm"
  fi
  printf '%s\n' "$new_conf" >"$CONF.tmp.$$"
  mv -f "$CONF.tmp.$$" "$CONF"
  log "wrote $CONF"
fi

# ---------------------------------------------------------------- 4. slurmctld + slurmd
if [ "$conf_changed" = 1 ]; then
  stop_pidfile "$RUN/slurmd.pid" slurmd
  stop_pidfile "$RUN/slurmctld.pid" slurmctld
fi
if ! alive "$RUN/slurmctld.pid" slurmctld && ! alive "$RUN/slurmd.pid" slurmd && [ "$SLURM_KEEP_STATE" != 1 ]; then
  rm -rf "${STATE:?}"/* "${SPOOL:?}"/*           # cold start: fresh job ids, no stale jobs/nodes
fi

if alive "$RUN/slurmctld.pid" slurmctld; then
  log "slurmctld already running (pid $(<"$RUN/slurmctld.pid"))"
else
  log "starting slurmctld"
  slurmctld || die "slurmctld failed to start"
  wait_for "$SLURM_START_TIMEOUT" "slurmctld" ctld_up
  alive "$RUN/slurmctld.pid" slurmctld || die "slurmctld exited (another controller on port 6817?)"
  log "slurmctld started (pid $(<"$RUN/slurmctld.pid"))"
fi

if alive "$RUN/slurmd.pid" slurmd; then
  log "slurmd already running (pid $(<"$RUN/slurmd.pid"))"
else
  log "starting slurmd"
  slurmd -N "$SLURM_NODE_NAME" || die "slurmd failed to start"
  wait_for "$SLURM_START_TIMEOUT" "slurmd pid file" test -s "$RUN/slurmd.pid"
  sleep 0.5
  alive "$RUN/slurmd.pid" slurmd || die "slurmd exited (another slurmd on port 6818?)"
  log "slurmd started (pid $(<"$RUN/slurmd.pid"))"
fi

# ---------------------------------------------------------------- 5. wait for the node
deadline=$((SECONDS + SLURM_START_TIMEOUT))
while :; do
  st=$(timeout 10 sinfo -h -N -n "$SLURM_NODE_NAME" -o '%t' 2>/dev/null | head -n 1 || true)
  case "$st" in
    idle | mix | alloc) break ;;        # mix/alloc: jobs from an earlier run are still running
    drain* | drng | down)               # e.g. left over from a previous configuration
      timeout 10 scontrol update NodeName="$SLURM_NODE_NAME" State=RESUME >/dev/null 2>&1 || true ;;
  esac
  ((SECONDS < deadline)) || die "node $SLURM_NODE_NAME not ready after ${SLURM_START_TIMEOUT}s (state '${st:-?}')"
  sleep 0.5
done

cat >"$SLURM_LOCAL_DIR/env.sh" <<'EOF'
# source this (bash) before submitting jobs.  Open MPI refuses to run as root without these:
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# sbatch_wait [sbatch args...]: like 'sbatch --wait' but polls every second and returns the
# worst result over the job and all its array tasks: the exit code, 128+signal if killed by a
# signal, 1 if not COMPLETED with exit code 0 (e.g. CANCELLED/TIMEOUT), 1 if the job record is
# already gone (needs MinJobAge longer than the whole job/array takes).
sbatch_wait() {
  local jid line st ex code n=0 rc=0
  jid=$(sbatch --parsable "$@") || return 1
  jid=${jid%%;*}
  echo "Submitted batch job $jid" >&2
  while [ -n "$(squeue -h -j "$jid" -o %i 2>/dev/null)" ]; do sleep 1; done
  while read -r line; do
    [[ $line == *JobState=* ]] || continue
    n=$((n + 1))
    st=${line#*JobState=}; st=${st%% *}
    ex=${line#* ExitCode=}; ex=${ex%% *}
    code=${ex%%:*}
    if ((${ex##*:} > 0)); then code=$((128 + ${ex##*:})); fi
    if [ "$st" != COMPLETED ] && ((code == 0)); then code=1; fi
    if ((code > rc)); then rc=$code; fi
  done < <(scontrol show job -o "$jid" 2>/dev/null)
  if ((n == 0)); then echo "sbatch_wait: no record of job $jid left (MinJobAge too small?)" >&2; return 1; fi
  return "$rc"
}
EOF

log "cluster '$SLURM_CLUSTER_NAME' ready in $((SECONDS - T_START)) s: node $SLURM_NODE_NAME is $st"
sinfo >&2
