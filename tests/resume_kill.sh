#!/bin/bash
# resume.kill: a run is SIGKILLed at several points (during the quantile prepass, mid-units, during
# the final write), resumed with --resume, and compared bitwise with an uninterrupted run; finished
# units are never recomputed. Also: SIGTERM gives exit 75 within 30 s with a consistent journal,
# and a resume with a changed config reuses the (model, stage)s whose inputs and options did not
# change and gives the results of a fresh run of the new config.
source "$(dirname "$0")/lib.sh"
# heavy enough to be killed mid-way (~ several seconds at np=2)
cat > "$TMP/c.yaml" <<YAML
output: out.h5
models:
  - name: m1
    synthetic: {layers: 24, heads: 8, seq_len: 512, seed: 1}
  - name: m2
    synthetic: {layers: 20, heads: 12, seq_len: 384, seed: 2}
stages:
  histsim: {}
  monotonicity: {}
YAML
check_cmd "uninterrupted run np=2" run_np 2 run "$TMP/c.yaml" -o "$TMP/ref.h5" --quiet
total=44

units_in_journal() { # (model, layer) units of results file $1 whose 2 stages are in its journal
    "$AS_PY" - "$1.journal" <<'PY'
import collections, os, struct, sys
d = sys.argv[1]; n = 0; layers = collections.Counter()
for f in sorted(os.listdir(d)) if os.path.isdir(d) else []:
    b = open(os.path.join(d, f), "rb").read(); o = 0
    while o + 48 <= len(b):  # record: u32 magic "ASJ2", u32 kind, u64 key[2], i64 index, u64 len, u64 hash
        magic, kind = struct.unpack_from("<II", b, o); ln = struct.unpack_from("<Q", b, o + 32)[0]
        if magic != 0x324a5341 or o + 48 + ln > len(b): break
        if kind == 1: n += 1
        o += 48 + ln
print(n // 2)  # a unit's two records are written together
PY
}
# kill_when WHAT OUT: start a run writing OUT, SIGKILL mpirun and every rank when WHAT happens:
# prepass (journal exists, no unit yet), units (>= 6 units journaled), write (OUT.partial exists)
kill_when() {
    local what=$1 out=$2
    ATTNSTAT_TEST_HOLD_WRITE=$([ "$what" = write ] && echo 5 || echo 0) \
        run_np 2 run "$TMP/c.yaml" -o "$out" --quiet > "$TMP/kill.out" 2>&1 &
    local pid=$! t=0
    while kill -0 $pid 2>/dev/null && [ $t -lt 3000 ]; do
        case $what in
            prepass) [ -d "$out.journal" ] && [ "$(units_in_journal "$out")" -eq 0 ] && break ;;
            units) [ "$(units_in_journal "$out")" -ge 6 ] && break ;;
            write) [ -e "$out.partial" ] && break ;;
        esac
        sleep 0.01; t=$((t + 1))
    done
    pkill -KILL -f "^$ATTNSTAT run $TMP/c.yaml -o $out" 2>/dev/null
    kill -KILL $pid 2>/dev/null
    wait $pid 2>/dev/null
}
for what in prepass units write; do
    out="$TMP/k-$what.h5"
    kill_when "$what" "$out"
    if [ -e "$out" ]; then
        ok "kill during $what: the run had already finished (nothing to resume)"
        continue
    fi
    before=$(units_in_journal "$out")
    run_np 2 run "$TMP/c.yaml" -o "$out" --resume > "$TMP/resume.out" 2>&1
    rc=$?
    line=$(grep -m1 "resuming" "$TMP/resume.out")
    if [ $rc -ne 0 ]; then fail "resume after kill during $what: exit $rc"; sed 's/^/    /' "$TMP/resume.out" | tail; continue; fi
    ok "resume after kill during $what ($before units journaled): $line"
    check_cmd "kill during $what + resume == uninterrupted (bitwise)" "$AS_PY" "$AS_SRC/tests/tools/h5same.py" "$TMP/ref.h5" "$out"
    if grep -q "resuming: $before of $total units finished earlier" "$TMP/resume.out"; then
        ok "kill during $what: resume computed only the $((total - before)) missing units"
    else
        fail "kill during $what: resume did not reuse the $before journaled units: $line"
    fi
    [ -d "$out.journal" ] && fail "journal left behind after a complete run" || ok "journal removed after completion"
done

# SIGTERM: exit 75 within 30 s, journal consistent, resume completes
wait_units() { # wait_units OUT N PID: until N units of OUT are journaled (or the run ended)
    local t=0
    while kill -0 "$3" 2>/dev/null && [ "$(units_in_journal "$1")" -lt "$2" ] && [ $t -lt 3000 ]; do
        sleep 0.01; t=$((t + 1))
    done
}
run_np 2 run "$TMP/c.yaml" -o "$TMP/term.h5" --quiet > "$TMP/term.out" 2>&1 &
pid=$!
wait_units "$TMP/term.h5" 4 $pid
t0=$(date +%s)
pkill -TERM -f "^$ATTNSTAT run $TMP/c.yaml -o $TMP/term.h5" 2>/dev/null  # the ranks, as srun forwards it
wait $pid; rc=$?
t1=$(date +%s)
if [ $rc -eq 75 ] && [ $((t1 - t0)) -le 30 ]; then ok "SIGTERM: exit 75 after $((t1 - t0)) s"; else fail "SIGTERM: exit $rc after $((t1 - t0)) s: $(tail -2 "$TMP/term.out")"; fi
grep -q "stopped by a signal" "$TMP/term.out" && ok "SIGTERM message" || fail "SIGTERM message missing: $(tail -1 "$TMP/term.out")"
[ -e "$TMP/term.h5" ] && fail "a results file exists after SIGTERM" || ok "no results file after SIGTERM"
check_cmd "resume after SIGTERM" run_np 3 run "$TMP/c.yaml" -o "$TMP/term.h5" --resume --quiet
check_cmd "SIGTERM + resume (np 2 then 3) == uninterrupted" "$AS_PY" "$AS_SRC/tests/tools/h5same.py" "$TMP/ref.h5" "$TMP/term.h5"

# a changed config: the resume recomputes monotonicity (its options changed), reuses histsim
"$MPIEXEC" -np 2 --oversubscribe "$ATTNSTAT" run "$TMP/c.yaml" -o "$TMP/chg.h5" --quiet > /dev/null 2>&1 &
pid=$!; wait_units "$TMP/chg.h5" 4 $pid; kill -USR1 $pid; wait $pid; rc=$?  # USR1 to mpirun: it forwards it to the ranks
[ $rc -eq 75 ] && ok "SIGUSR1 to mpirun: exit 75" || fail "SIGUSR1 to mpirun: exit $rc"
before=$(units_in_journal "$TMP/chg.h5")
sed 's/monotonicity: {}/monotonicity: {epsilon: 1e-9}/' "$TMP/c.yaml" > "$TMP/c2.yaml"
check_cmd "fresh run of the changed config" run_np 2 run "$TMP/c2.yaml" -o "$TMP/chg-ref.h5" --quiet
run_np 3 run "$TMP/c2.yaml" -o "$TMP/chg.h5" --resume > "$TMP/chg.out" 2>&1; rc=$?
if [ $rc -eq 0 ] && grep -q "resuming: 0 of $total units finished earlier ($before of $((2 * total)) unit stages)" "$TMP/chg.out"; then
    ok "changed config on resume: the $before histsim rows of the journal reused, monotonicity recomputed"
else
    fail "changed config on resume: exit $rc: $(grep -m1 'error\|resuming' "$TMP/chg.out")"
fi
check_cmd "changed config + resume == fresh run of the changed config (bitwise)" "$AS_PY" "$AS_SRC/tests/tools/h5same.py" "$TMP/chg-ref.h5" "$TMP/chg.h5"
finish
