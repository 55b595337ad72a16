#!/bin/bash
# tests/split_units.sh: units finer than a layer (issue 15.2). A layer split into pieces (split:
# 1, 3, 100 pieces per phase) gives the results of the whole layer (split: off) bit for bit, at
# np = 1, 2, 3, 7: every stage on tiny (histsim and monotonicity split, the others whole), and
# tiny12 (12 heads: histsim sampled, monotonicity on scaled qk with violations, the fast counting).
# A split run stopped half-way resumes at another rank count and split, bitwise equal. The plan of
# one BLOOM-shaped model (70 x 112 x 2048, histsim + monotonicity) at 512 ranks, and of the
# 75-model paper sweep at 512 and 4096 ranks, balances to at least 0.9 / 0.97 / 0.9.
source "$(dirname "$0")/lib.sh"
FX=$AS_SRC/tests/fixtures
cd "$TMP"

for sp in off 1 3 100; do
    cat > "tiny_$sp.yaml" <<YAML
output: tiny.h5
split: $sp
models:
  - {name: tiny, dir: $FX/tiny}
stages: {histsim: {}, monotonicity: {}, jacobian: {}, patterns: {}, activations: {}}
YAML
    cat > "t12_$sp.yaml" <<YAML
output: t12.h5
split: $sp
models:
  - {name: tiny12, dir: $FX/tiny12}
stages: {histsim: {quantile: sampled, samples: 100}, monotonicity: {input: qk_mean, scale: 0.5, method: fast}}
YAML
done

for c in tiny t12; do
    run_np 1 run "${c}_off.yaml" -o "${c}_ref.h5" --quiet > /dev/null 2>&1 || fail "$c: reference run"
    for sp in off 1 3 100; do
        for np in 1 2 3 7; do
            [ "$sp" = off ] && [ "$np" = 1 ] && continue
            if ! run_np "$np" run "${c}_$sp.yaml" -o "${c}_${sp}_$np.h5" --quiet > "run.log" 2>&1; then
                fail "$c split $sp np $np: run"; tail -5 run.log; continue
            fi
            "$AS_PY" "$AS_SRC/tests/tools/h5same.py" "${c}_ref.h5" "${c}_${sp}_$np.h5" > same.log 2>&1 &&
                ok "$c split $sp np $np: bitwise identical to the whole layers" ||
                { fail "$c split $sp np $np: results differ"; tail -5 same.log; }
        done
    done
done

# the pieces really ran: split 100 at np 3 has more tasks than layers, spread over the ranks
check_cmd "split 100 np 3: pieces on every rank" "$AS_PY" -c "
import h5py
u = h5py.File('t12_100_3.h5', 'r')['run/rank_units'][:]
assert len(u) == 3 and min(u) > 0 and sum(u) > 2 * 2, u"

# a split run stopped half-way (SIGTERM: the pieces done are journaled), resumed at np 2 split 3
ATTNSTAT_TEST_UNIT_DELAY_MS=150 run_np 3 run t12_100.yaml -o stop.h5 --quiet > stop.log 2>&1 &
pid=$!
sleep 2.5
pkill -TERM -f "attnstat run t12_100.yaml" || true
wait $pid
rc=$?
if [ "$rc" -ne 0 ] && [ -d stop.h5.journal ]; then
    ok "stopped mid-run (exit $rc), journal kept"
    grep -q . stop.h5.journal/* && ok "journal has records" || fail "journal empty"
    run_np 2 run t12_3.yaml -o stop.h5 --resume > resume.log 2>&1 && ok "resume at np 2, split 3" ||
        { fail "resume"; tail -5 resume.log; }
    grep -q "resuming: " resume.log && ok "resume reports finished work: $(grep resuming resume.log)" ||
        fail "resume did not report what was finished"
    "$AS_PY" "$AS_SRC/tests/tools/h5same.py" t12_ref.h5 stop.h5 > same.log 2>&1 &&
        ok "resumed split run bitwise identical" || { fail "resumed results differ"; tail -5 same.log; }
else
    fail "the stopped run did not stop (exit $rc)"
    tail -5 stop.log
fi

# the plans
cat > bloom.yaml <<'YAML'
output: bloom.h5
models:
  - {name: bloom, synthetic: {layers: 70, heads: 112, seq_len: 2048, seed: 1}}
stages: {histsim: {}, monotonicity: {}}
YAML
{
    echo "output: paper.h5"
    echo "models:"
    for d in wikipedia fineweb dclm; do
        for m in "bloom 70 112" "mpt30b 48 64" "falcon 36 64" "mpt7b 32 32" "bloom7b 30 32"; do
            set -- $m
            for T in 64 256 512 1024 2048; do
                echo "  - {name: ${1}_${T}_$d, synthetic: {layers: $2, heads: $3, seq_len: $T, seed: 1}}"
            done
        done
    done
    echo "stages: {histsim: {}, monotonicity: {}}"
} > paper.yaml
balance() { "$ATTNSTAT" validate "$1" --ranks "$2" --json | "$AS_PY" -c "import json,sys; print(json.load(sys.stdin)['load_balance'])"; }
check_bal() {
    local b
    b=$(balance "$1" "$2")
    "$AS_PY" -c "import sys; sys.exit(0 if $b >= $3 else 1)" && ok "$1 at $2 ranks: load balance $b >= $3" ||
        fail "$1 at $2 ranks: load balance $b < $3"
}
check_bal bloom.yaml 512 0.9
check_bal paper.yaml 512 0.97
check_bal paper.yaml 4096 0.9
check_bal bloom.yaml 2 0.99
finish
