#!/bin/bash
# failure.one_rank: one rank meets a corrupt layer (NaN/Inf in one unit of a real-size model)
# while the others are mid-work on a long model: every rank exits promptly with that rank's
# message and the input exit code, no rank hangs, and no results file claims to be complete.
source "$(dirname "$0")/lib.sh"
"$AS_PY" - "$TMP" <<'PY'
import sys, numpy as np
d = sys.argv[1]
rng = np.random.default_rng(1)
x = rng.random((6, 4, 64, 64)).astype(np.float32)
x = np.tril(x); x /= x.sum(-1, keepdims=True)        # attention probabilities
x[4, 2, 30, 7] = np.nan                                 # layer 4 is corrupt
np.save(f"{d}/attention_probs_mean.npy", x)
PY
cat > "$TMP/c.yaml" <<YAML
output: out.h5
models:
  - name: corrupt
    dir: $TMP
  - name: long
    synthetic: {layers: 64, heads: 8, seq_len: 1024, seed: 4}
stages:
  monotonicity: {}
YAML
# how long the healthy model alone takes
sed '/name: corrupt/,/dir:/d' "$TMP/c.yaml" > "$TMP/healthy.yaml"
t0=$(date +%s.%N)
run_np 3 run "$TMP/healthy.yaml" -o "$TMP/healthy.h5" --quiet > /dev/null 2>&1
t_full=$(echo "$(date +%s.%N) - $t0" | bc)
t0=$(date +%s.%N)
timeout 300 "$MPIEXEC" -np 3 --oversubscribe "$ATTNSTAT" run "$TMP/c.yaml" --quiet > "$TMP/out" 2>&1
rc=$?
t_fail=$(echo "$(date +%s.%N) - $t0" | bc)
line=$(grep -m1 "attnstat: error" "$TMP/out")
[ $rc -eq 4 ] && ok "exit 4 after ${t_fail}s (the healthy model alone takes ${t_full}s)" || fail "exit $rc: $line"
echo "$line" | grep -qE "unit corrupt/L4: model 'corrupt' layer 4 head 2: 1 non-finite values in 'attention_probs_mean'" \
    && ok "the failing rank's message: $line" || fail "message: $line"
[ "$(grep -c 'attnstat: error' "$TMP/out")" -eq 1 ] && ok "one message, from rank 0" || fail "several error lines: $(grep -c 'attnstat: error' "$TMP/out")"
if [ "$(echo "$t_fail < $t_full * 0.8" | bc)" = 1 ]; then ok "stopped promptly, before the others' work was done"; else fail "took ${t_fail}s, the full run ${t_full}s"; fi
[ -e "$TMP/out.h5" ] && fail "a results file exists" || ok "no results file"
[ -d "$TMP/out.h5.journal" ] && ok "the journal keeps the finished units for --resume" || fail "no journal"
finish
