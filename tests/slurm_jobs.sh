#!/bin/bash
# tests/slurm_jobs.sh: the job scripts on a real scheduler. Starts a single-node Slurm
# (jobs/slurm/start-local-slurm.sh; installs slurmctld slurmd slurm-client munge when missing),
# then:
#   1. jobs/attnstat.sbatch -n2 on a small sweep == a plain mpirun -np 2 run (h5same, bitwise);
#      submitted with ATTNSTAT unset and the build folder first on PATH, so the job finds
#      attnstat on PATH as an installed one would be (its log says "attnstat from PATH")
#   2. jobs/submit-array.sh (array of parts + dependent merge job) == the same single run
#   3. requeue: a ~20 s job gets SIGUSR1 (scancel --signal=USR1 --batch, as --signal=B:USR1@120
#      would send it), attnstat checkpoints and exits 75, the script requeues the job, the second
#      start resumes (--resume) and the results equal an uninterrupted run
#   4. scancel (SIGTERM): attnstat exits 75, the job ends CANCELLED without a requeue, and
#      `run --resume` afterwards gives the uninterrupted results
# Prints "SKIP: why" and exits 77 when Slurm cannot run here (not root, no packages, slurmd
# does not start). Daemons this test started are stopped on exit; a cluster that was already
# running is reused and left running.
source "$(dirname "$0")/lib.sh"
export PATH="$PATH:/usr/sbin:/sbin"
export ATTNSTAT
JOBS="$AS_SRC/jobs"
H5SAME="$AS_SRC/tests/tools/h5same.py"
export SLURM_LOCAL_DIR=${SLURM_LOCAL_DIR:-/tmp/local-slurm}
WAIT_MAX=${AS_SLURM_WAIT:-300}

skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root to start slurmctld/slurmd/munged"

daemon_alive() { # PIDFILE NAME
    local pid
    [ -s "$1" ] && pid=$(<"$1") && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$2"* ]]
}
started=0
if daemon_alive "$SLURM_LOCAL_DIR/run/slurmctld.pid" slurmctld && daemon_alive "$SLURM_LOCAL_DIR/run/slurmd.pid" slurmd; then
    echo "reusing the Slurm cluster already running (state in $SLURM_LOCAL_DIR); it stays up"
else
    started=1
fi
cleanup() {
    if [ "$started" = 1 ]; then
        bash "$JOBS/slurm/stop-local-slurm.sh" > "$TMP/stop.log" 2>&1 || { echo "stop-local-slurm.sh failed:"; cat "$TMP/stop.log"; }
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
if [ "$started" = 1 ]; then
    if ! bash "$JOBS/slurm/start-local-slurm.sh" > "$TMP/start.log" 2>&1; then
        why=$(grep -m1 'ERROR' "$TMP/start.log" | sed 's/^.*ERROR: //')
        tail -n 30 "$TMP/start.log"
        skip "Slurm did not start: ${why:-see the log above}"
    fi
fi
cd "$TMP" || exit 1

# job_wait JOBID: poll every second (bounded) until the job and all its array tasks have left the
# queue, then set JOB_RC to the worst exit code (128+signal if killed, 1 if not COMPLETED).
JOB_RC=
job_wait() {
    local jid=$1 t=0 line st ex code n=0
    JOB_RC=1
    while [ -n "$(squeue -h -j "$jid" -o %i 2>/dev/null)" ]; do
        t=$((t + 1))
        if [ "$t" -gt "$WAIT_MAX" ]; then
            echo "    job $jid still queued after ${WAIT_MAX}s: $(squeue -h -j "$jid" -o '%i %T %r')"
            scancel "$jid" 2>/dev/null
            return 1
        fi
        sleep 1
    done
    JOB_RC=0
    while read -r line; do
        [[ $line == *JobState=* ]] || continue
        n=$((n + 1))
        st=${line#*JobState=}; st=${st%% *}
        ex=${line#* ExitCode=}; ex=${ex%% *}
        code=${ex%%:*}
        if [ "${ex##*:}" -gt 0 ]; then code=$((128 + ${ex##*:})); fi
        if [ "$st" != COMPLETED ] && [ "$code" = 0 ]; then code=1; fi
        if [ "$code" -gt "$JOB_RC" ]; then JOB_RC=$code; fi
    done < <(scontrol show job -o "$jid" 2>/dev/null)
    [ "$n" -gt 0 ] || { echo "    no record of job $jid left"; JOB_RC=1; }
    return 0
}
# wait_running JOBID: until it runs (bounded)
wait_running() {
    local t=0
    while [ "$t" -lt "$WAIT_MAX" ] && [ "$(job_state "$1")" != RUNNING ]; do sleep 1; t=$((t + 1)); done
}
# job_state JOBID: its state now ("" once it has left the queue)
job_state() { squeue -h -j "$1" -o %T 2>/dev/null | head -n 1; }
show_logs() { for f in "$@"; do [ -e "$f" ] && { echo "    == $f"; sed 's/^/    /' "$f" | tail -n 15; }; done; }

cat > sweep.yaml <<'EOF'
output: out/sweep.h5
models:
  - name: s-a
    synthetic: {layers: 3, heads: 4, seq_len: 32, seed: 1}
  - name: s-b
    synthetic: {layers: 2, heads: 2, seq_len: 48, seed: 2}
  - name: s-c
    synthetic: {layers: 4, heads: 4, seq_len: 16, seed: 3}
  - name: s-d
    synthetic: {layers: 1, heads: 8, seq_len: 24, seed: 4}
  - name: s-e
    synthetic: {layers: 5, heads: 2, seq_len: 40, seed: 5}
stages:
  histsim: {}
  monotonicity: {}
EOF
check_cmd "reference: mpirun -np 2 run sweep.yaml" run_np 2 run sweep.yaml -o ref.h5 --quiet

# ---- 1. one MPI job over the sweep
jid=$(env -u ATTNSTAT PATH="$(dirname "$ATTNSTAT"):$PATH" \
    sbatch --parsable -n 2 -t 10 -o batch-%j.out "$JOBS/attnstat.sbatch" sweep.yaml -o batch.h5 --quiet)
if [ -z "$jid" ]; then
    fail "sbatch jobs/attnstat.sbatch"
else
    job_wait "$jid"
    if [ "$JOB_RC" = 0 ] && "$AS_PY" "$H5SAME" ref.h5 batch.h5 > cmp.txt 2>&1 &&
        grep -q "attnstat from PATH: srun --mpi=pmix --kill-on-bad-exit=0 $ATTNSTAT run" batch-"$jid".out; then
        ok "sbatch -n2 jobs/attnstat.sbatch (attnstat from PATH) == mpirun -np 2 (job $jid)"
    else
        fail "sbatch -n2 jobs/attnstat.sbatch: job $jid exit $JOB_RC, results differ, or the log does not say \"attnstat from PATH\""
        show_logs batch-"$jid".out cmp.txt
    fi
fi

# ---- 2. array mode: parts + merge job
mkdir -p arr
if line=$(bash "$JOBS/submit-array.sh" sweep.yaml --groups 2 -o arr/run.h5 -- -n 2 -t 10 2> submit.err) &&
    [[ $line =~ ^ARRAY_JOB=([0-9]+)\ MERGE_JOB=([0-9]+)$ ]]; then
    aid=${BASH_REMATCH[1]} mid=${BASH_REMATCH[2]}
    job_wait "$aid"
    arc=$JOB_RC
    job_wait "$mid"
    mrc=$JOB_RC
    if [ "$arc" = 0 ] && [ "$mrc" = 0 ] && [ -e arr/run.part0.h5 ] && [ -e arr/run.part1.h5 ] &&
        "$AS_PY" "$H5SAME" ref.h5 arr/run.h5 > cmp.txt 2>&1; then
        ok "submit-array.sh: 2 parts (array job $aid) + merge (job $mid) == the single run"
    else
        fail "submit-array.sh: array job $aid exit $arc, merge job $mid exit $mrc, or merged results differ"
        show_logs arr/run.groups arr/attnstat-"$aid"_0.out arr/attnstat-"$aid"_1.out arr/attnstat-merge-"$mid".out cmp.txt
    fi
else
    fail "jobs/submit-array.sh sweep.yaml --groups 2 printed '$line'"
    show_logs submit.err
fi

# ---- 3. checkpoint on SIGUSR1, requeue, resume
# units_done DIR STAGES: (model, layer) units in a journal folder (OUTPUT.journal/), from its unit
# records, one per (model, stage, layer), as pipeline/run/as_journal.h describes them: 48-byte
# header { "ASJ2", u32 kind, u64 key[2], i64 index, u64 payload length, u64 hash }, then the payload
cat > units_done.py <<'EOF'
import glob
import struct
import sys
n = 0
for path in glob.glob(sys.argv[1] + "/*"):
    data = open(path, "rb").read()
    pos = 0
    while pos + 48 <= len(data):
        magic, kind, _, _, _, length, _ = struct.unpack_from("<4sIQQqQQ", data, pos)
        if magic != b"ASJ2":
            break
        n += kind == 1
        pos += 48 + length
print(n // int(sys.argv[2]))
EOF
units_done() { "$AS_PY" units_done.py "$1" "$long_stages" 2>/dev/null || echo 0; }
# wait_units DIR JOBID: until a quarter of the units are journaled (bounded: 3x the uninterrupted
# time + 30 s, or the job is gone)
wait_units() {
    local t0 deadline
    t0=$(date +%s.%N)
    deadline=$(awk -v t="$tref" 'BEGIN { printf "%d", t * 3 + 30 }')
    while [ $(($(date +%s) - ${t0%.*})) -lt "$deadline" ] && [ "$(job_state "$2")" = RUNNING ]; do
        [ "$(units_done "$1")" -ge $((long_units / 4)) ] && break
        sleep 0.2
    done
    echo "    signal after $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s running," \
        "$(units_done "$1") of $long_units units journaled"
}
cat > long.yaml <<'EOF'
output: out/long.h5
models:
  - name: l-a
    synthetic: {layers: 36, heads: 8, seq_len: 1024, seed: 21}
  - name: l-b
    synthetic: {layers: 36, heads: 8, seq_len: 768, seed: 22}
  - name: l-c
    synthetic: {layers: 30, heads: 8, seq_len: 896, seed: 23}
stages:
  histsim: {}
  monotonicity: {}
EOF
long_units=102 long_stages=2
t0=$(date +%s.%N)
check_cmd "reference: mpirun -np 2 run long.yaml (uninterrupted)" run_np 2 run long.yaml -o long-ref.h5 --quiet
tref=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
echo "    uninterrupted run: ${tref} s"
jid=$(sbatch --parsable -n 2 -t 10 -o rq-%j.out "$JOBS/attnstat.sbatch" long.yaml -o rq.h5)
if [ -z "$jid" ]; then
    fail "sbatch jobs/attnstat.sbatch long.yaml"
else
    wait_running "$jid"
    wait_units rq.h5.journal "$jid"
    st=$(job_state "$jid")
    scancel --signal=USR1 --batch "$jid"
    # after the requeue Slurm holds the job back for 120 s (BeginTime): release it at once
    for ((t = 0; t < WAIT_MAX; t++)); do
        grep -q "requeued job $jid" rq-"$jid".out 2>/dev/null && [ "$(job_state "$jid")" = PENDING ] && break
        [ -z "$(job_state "$jid")" ] && break
        sleep 1
    done
    # not in the second of the requeue: slurmd revoked the first start's credential then, and
    # compares times in whole seconds, so a start in that second is "Job credential revoked" (the
    # job ends, exit 1, without running)
    sleep 2
    scontrol update JobId="$jid" StartTime=now 2>/dev/null
    job_wait "$jid"
    restarts=$(scontrol show job "$jid" 2>/dev/null | sed -n 's/.*Restarts=\([0-9]*\).*/\1/p')
    if [ "$st" != RUNNING ]; then
        fail "requeue: the job was '$st', not RUNNING, when SIGUSR1 was sent (machine too fast? uninterrupted run ${tref}s)"
    elif ! grep -q "attnstat exited 75" rq-"$jid".out || ! grep -q "requeued job $jid" rq-"$jid".out; then
        fail "requeue: SIGUSR1 did not make attnstat exit 75 and the job requeue"
        show_logs rq-"$jid".out
    elif [ "$restarts" != 1 ] || [ "$JOB_RC" != 0 ]; then
        fail "requeue: job $jid restarted ${restarts:-?} times (want 1), final exit $JOB_RC"
        show_logs rq-"$jid".out
    else
        ok "requeue: SIGUSR1 -> exit 75 -> scontrol requeue -> second start completes (job $jid)"
    fi
    if grep -Eq "resuming: [1-9][0-9]* of [0-9]+ units finished earlier" rq-"$jid".out; then
        ok "requeue: the second start resumed ($(grep -Eo 'resuming: [0-9]+ of [0-9]+' rq-"$jid".out | tail -n 1) units done before)"
    else
        fail "requeue: the second start did not resume from the journal (no 'resuming: N of M units finished earlier')"
        show_logs rq-"$jid".out
    fi
    if [ -e rq.h5 ] && "$AS_PY" "$H5SAME" long-ref.h5 rq.h5 > cmp.txt 2>&1; then
        ok "requeue: results equal the uninterrupted run (h5same)"
    else
        fail "requeue: results missing or different from the uninterrupted run"
        show_logs cmp.txt
    fi
fi

# ---- 4. SIGTERM (scancel, the time limit): attnstat stops resumably, the job is not requeued,
# and a later --resume finishes the run
jid=$(sbatch --parsable -n 2 -t 10 -o term-%j.out "$JOBS/attnstat.sbatch" long.yaml -o term.h5)
if [ -z "$jid" ]; then
    fail "sbatch jobs/attnstat.sbatch long.yaml (SIGTERM case)"
else
    wait_running "$jid"
    wait_units term.h5.journal "$jid"
    scancel "$jid"
    job_wait "$jid"
    state=$(scontrol show job "$jid" 2>/dev/null | sed -n 's/.*JobState=\([A-Z]*\).*/\1/p')
    restarts=$(scontrol show job "$jid" 2>/dev/null | sed -n 's/.*Restarts=\([0-9]*\).*/\1/p')
    if [ "$state" = CANCELLED ] && [ "$restarts" = 0 ] && grep -q "attnstat exited 75" term-"$jid".out &&
        ! grep -q "requeued job" term-"$jid".out && [ ! -e term.h5 ]; then
        ok "scancel: attnstat exited 75 (resumable), job $jid CANCELLED, not requeued"
    else
        fail "scancel: job $jid state '$state', restarts '$restarts', want CANCELLED/0 with attnstat exit 75 and no requeue"
        show_logs term-"$jid".out
    fi
    check_cmd "scancel: mpirun --resume finishes the cancelled run" run_np 2 run long.yaml -o term.h5 --resume --quiet
    check_cmd "scancel: resumed results equal the uninterrupted run" "$AS_PY" "$H5SAME" long-ref.h5 term.h5
fi

finish
