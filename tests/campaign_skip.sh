#!/bin/bash
# campaign.skip: a mini-campaign as users run them (a sweep of 6 models in the notebooks' layout,
# real .npy files), through everything a campaign meets:
#   - one model's file is corrupt: with on_error: skip the others finish, the file at OUTPUT says
#     complete = 0 and which model failed and why, exit 4; fixed and resumed, only that model is
#     computed and the file equals a clean run's, bitwise;
#   - the sweep grows by a dataset: the resume reuses every unit of the old file;
#   - models removed and reordered: the resume computes nothing;
#   - NaN in one model (non_finite: error) is that model's failure, not the campaign's;
#   - a file rewritten while the run reads it: exit 4 naming it, never a mixed result;
#   - each input file is opened at most np + 1 times in a run (strace), digests included.
source "$(dirname "$0")/lib.sh"
cd "$TMP" || exit 1
H5SAME="$AS_SRC/tests/tools/h5same.py"

# data/results-final-<dataset>/<model id with / as _>/<T>/{qk_mean,attention_probs_mean}.npy
"$AS_PY" - <<'PY'
import os, numpy as np
def model(path, seed, L=3, H=4, T=24):
    rng = np.random.default_rng(seed)
    os.makedirs(path, exist_ok=True)
    qk = (rng.standard_normal((L, H, T, T)) - 0.05 * np.abs(np.subtract.outer(np.arange(T), np.arange(T)))).astype(np.float32)
    p = np.exp(qk - qk.max(-1, keepdims=True)) * np.tril(np.ones((T, T), np.float32))
    np.save(f"{path}/qk_mean.npy", qk)
    np.save(f"{path}/attention_probs_mean.npy", (p / p.sum(-1, keepdims=True)).astype(np.float32))
s = 0
for d in ["wiki", "web", "code", "books"]:
    for m in ["org_a", "org_b"]:
        s += 1
        model(f"data/results-final-{d}/{m}/24", s)
PY
sweep() { # sweep OUTPUT DATASETS MODEL_IDS [extra top-level yaml]
    cat <<YAML
output: $1
on_error: skip
sweep:
  vars:
    dataset: [$2]
    model_id: [$3]
  model:
    root: "data/results-final-{dataset}"
    model_id: "{model_id}"
    seq_len: 24
    dataset: "{dataset}"
stages:
  histsim: {}
  monotonicity: {}
${4:-}
YAML
}
attr() { # attr FILE PATH@NAME: print an attribute ("" when absent)
    "$AS_PY" -c "import h5py,sys; f=h5py.File(sys.argv[1]); p,a=sys.argv[2].split('@'); v=f[p].attrs.get(a, ''); print(v.decode() if isinstance(v, bytes) else v)" "$1" "$2"
}

sweep out.h5 "wiki, web, code" "org/a, org/b" > c.yaml
# model ids "org/a" live in folders org_a: the notebooks' layout
bad=data/results-final-web/org_b/24/qk_mean.npy
cp "$bad" good.npy
head -c 700 good.npy > "$bad"                          # truncated: a corrupt input

# 1. one corrupt model: the others finish, exit 4, the failure recorded
run_np 2 run c.yaml --quiet > run1.out 2>&1; rc=$?
[ $rc -eq 4 ] && ok "a corrupt model with on_error: skip: exit 4" || fail "exit $rc: $(tail -3 run1.out)"
[ -e out.h5 ] && ok "the results file is at OUTPUT" || fail "no results file at OUTPUT"
[ "$(attr out.h5 /@complete)" != 1 ] && ok "complete is not 1" || fail "complete = 1 with a failed model"
fm=$(attr out.h5 /@failed_models)
[ "$fm" = "web_org_b_24" ] && ok "failed_models names the model: $fm" || fail "failed_models: '$fm'"
st=$(attr out.h5 /models/web_org_b_24@status); er=$(attr out.h5 /models/web_org_b_24@error)
[ "$st" = failed ] && echo "$er" | grep -q "qk_mean.npy" && ok "its group: status failed, error '$er'" || fail "status '$st' error '$er'"
"$AS_PY" -c "import h5py,sys; g=h5py.File('out.h5')['/models/web_org_b_24']; sys.exit(1 if len(g.keys()) else 0)" \
    && ok "the failed model has no datasets" || fail "the failed model has datasets"
[ "$(attr out.h5 /models/wiki_org_a_24@status)" = ok ] && ok "the other models: status ok" || fail "status of wiki_org_a_24"
grep -q "failed.*web_org_b_24" out.log && ok "the summary log lists the failure" || fail "summary log: $(grep -i fail out.log)"
"$ATTNSTAT" summary out.h5 > sum.out 2>&1; rc=$?
[ $rc -eq 4 ] && grep -q "web_org_b_24" sum.out && ok "attnstat summary: exit 4, names the failure" || fail "summary exit $rc: $(cat sum.out)"

# 2. fixed and resumed at another rank count: only that model computed; equal to a clean run
cp good.npy "$bad"
sweep clean.h5 "wiki, web, code" "org/a, org/b" > clean.yaml
check_cmd "clean run of the fixed campaign" run_np 2 run clean.yaml --quiet
run_np 3 run c.yaml --resume --quiet > run2.out 2>&1; rc=$?
[ $rc -eq 0 ] && ok "resume after the fix: exit 0" || fail "resume exit $rc: $(tail -3 run2.out)"
[ "$(attr out.h5 /@complete)" = 1 ] && ok "complete = 1" || fail "complete: $(attr out.h5 /@complete)"
[ "$(attr out.h5 /@units_reused)" = 15 ] && [ "$(attr out.h5 /@units_computed)" = 3 ] \
    && ok "units_reused 15, units_computed 3" || fail "reused $(attr out.h5 /@units_reused) computed $(attr out.h5 /@units_computed)"
check_cmd "resumed == clean run (bitwise)" "$AS_PY" "$H5SAME" clean.h5 out.h5
check_cmd "per rank: read seconds within busy seconds, files opened counted" "$AS_PY" -c "
import h5py; r = h5py.File('clean.h5')['run']
rd, busy, op = r['rank_read_seconds'][()], r['rank_busy_seconds'][()], r['rank_files_opened'][()]
assert (rd >= 0).all() and (rd <= busy + 1e-3).all() and rd.sum() > 0 and op.sum() > 0, (rd, busy, op)"

# 3. the sweep grows by a dataset: every old unit reused
sweep out.h5 "wiki, web, code, books" "org/a, org/b" > c4.yaml
sweep clean4.h5 "wiki, web, code, books" "org/a, org/b" > clean4.yaml
check_cmd "clean run of the grown sweep" run_np 2 run clean4.yaml --quiet
check_cmd "grown sweep, --resume" run_np 2 run c4.yaml --resume --quiet
[ "$(attr out.h5 /@units_reused)" = 18 ] && [ "$(attr out.h5 /@units_computed)" = 6 ] \
    && ok "grown: units_reused 18 (the old units), units_computed 6" || fail "grown: reused $(attr out.h5 /@units_reused) computed $(attr out.h5 /@units_computed)"
check_cmd "grown + resume == clean run of the grown sweep (bitwise)" "$AS_PY" "$H5SAME" clean4.h5 out.h5

# 4. a model id removed and the datasets reordered: nothing to compute
sweep out.h5 "books, code, web, wiki" "org/b" > c5.yaml
sweep clean5.h5 "books, code, web, wiki" "org/b" > clean5.yaml
check_cmd "clean run of the shrunk sweep" run_np 3 run clean5.yaml --quiet
check_cmd "shrunk and reordered, --resume" run_np 2 run c5.yaml --resume --quiet
[ "$(attr out.h5 /@units_computed)" = 0 ] && ok "shrunk and reordered: units_computed 0" || fail "computed $(attr out.h5 /@units_computed)"
check_cmd "shrunk + resume == clean run (bitwise)" "$AS_PY" "$H5SAME" clean5.h5 out.h5

# 5. NaN in one model: that model fails with the layer and head named, the others finish
"$AS_PY" -c "
import numpy as np; p='data/results-final-code/org_a/24/attention_probs_mean.npy'; x=np.load(p); x[1,2,5,3]=np.nan; np.save('nan.npy', x)"
mkdir -p nan && cp data/results-final-code/org_a/24/qk_mean.npy nan/ && cp nan.npy nan/attention_probs_mean.npy
cat > nan.yaml <<YAML
output: nan.h5
on_error: skip
models:
  - {name: ok, dir: data/results-final-wiki/org_a/24}
  - {name: withnan, dir: nan}
stages: {monotonicity: {}}
YAML
run_np 2 run nan.yaml --quiet > nan.out 2>&1; rc=$?
er=$(attr nan.h5 /models/withnan@error)
[ $rc -eq 4 ] && echo "$er" | grep -q "layer 1 head 2" && [ "$(attr nan.h5 /models/ok@status)" = ok ] \
    && ok "NaN: that model failed ('$er'), the other finished" || fail "NaN: exit $rc, error '$er'"

# a model given by its files alone, and validate --json for scripts
cat > files.yaml <<YAML
output: files.h5
on_error: skip
models:
  - {name: byfiles, tensors: {qk_mean: data/results-final-wiki/org_a/24/qk_mean.npy, attention_probs_mean: data/results-final-wiki/org_a/24/attention_probs_mean.npy}}
  - {name: gone, dir: nowhere}
stages: {histsim: {}, monotonicity: {}}
YAML
"$ATTNSTAT" validate files.yaml --json --ranks 3 > files.json 2> files.err; rc=$?
check_cmd "validate --json: models, statuses, inputs, units, plan" "$AS_PY" -c "
import json; j = json.load(open('files.json'))
m = {x['name']: x for x in j['models']}
assert $rc == 0 and j['on_error'] == 'skip' and j['units'] == 3 and len(j['plan']) == 3, j
assert m['byfiles']['status'] == 'ok' and m['byfiles']['layers'] == 3 and m['byfiles']['inputs'][0]['format'] == 'npy'
assert m['gone']['status'] == 'failed' and 'nowhere' in m['gone']['error']
assert sum(p['units'] for p in j['plan']) == 3"
run_np 2 run files.yaml --quiet > files.out 2>&1
[ "$(attr files.h5 /models/byfiles@status)" = ok ] && [ "$(attr files.h5 /models/byfiles@source)" = tensors ] \
    && ok "a model given by its tensors alone runs (source = tensors)" || fail "tensors-only model: $(grep -m1 error files.out)"

# 6. a file rewritten while the run reads it: exit 4 naming it, no complete results
"$AS_PY" -c "
import numpy as np, os; os.makedirs('big', exist_ok=True)
x = np.random.default_rng(3).random((12, 8, 192, 192)).astype(np.float32); np.save('big/attention_probs_mean.npy', x)"
cat > big.yaml <<YAML
output: big.h5
models: [{name: big, dir: big}]
stages: {monotonicity: {}}
YAML
ATTNSTAT_TEST_UNIT_DELAY_MS=300 run_np 2 run big.yaml --quiet > big.out 2>&1 &
pid=$!
for _ in $(seq 100); do [ -d big.h5.journal ] && break; sleep 0.05; done
sleep 0.5
"$AS_PY" -c "
import numpy as np; x = np.load('big/attention_probs_mean.npy'); x[-1] *= 0.5; np.save('big/attention_probs_mean.npy', x)"
wait $pid; rc=$?
# caught after a unit ("changed during the run"), or by a read landing while np.save rewrites it
# ("is truncated"): either way exit 4 naming the file, and nothing read from it kept
if [ $rc -eq 4 ] && grep -qE "big/attention_probs_mean.npy'( changed during the run| is truncated)" big.out; then
    ok "rewritten mid-run: exit 4, $(grep -m1 -oE "'big/attention_probs_mean.npy'.*" big.out | cut -c1-100)"
else
    fail "rewritten mid-run: exit $rc: $(grep -m1 error big.out)"
fi
[ "$(attr big.h5 /@complete 2>/dev/null)" != 1 ] && ok "no complete results file after the rewrite" || fail "a complete results file after a rewrite"

# 7. opens: each input file at most np + 1 times in a run of 4 ranks, full digests included
if command -v strace > /dev/null; then
    sweep opens.h5 "wiki, web, code" "org/a, org/b" "provenance: {digest: full}" > opens.yaml
    strace -f -qq -e trace=openat -o trace.txt "$MPIEXEC" -np 4 --oversubscribe "$ATTNSTAT" run opens.yaml --quiet > /dev/null 2>&1
    worst=$(grep -o 'data/results-final-[^"]*\.npy' trace.txt | sort | uniq -c | sort -rn | head -1)
    n=$(echo "$worst" | awk '{print $1}')
    [ -n "$n" ] && [ "$n" -le 5 ] && ok "np=4: each input opened at most $n times (np + 1 = 5): $worst" \
        || fail "np=4: an input opened $n times: $worst"
else
    echo "SKIP open counts: no strace"
fi
finish
