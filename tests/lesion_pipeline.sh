#!/bin/bash
# lesion.pipeline: the lesion stage through the whole MPI pipeline on tiny GPT-2 models saved in
# the Hugging Face layout (tests/fixtures/gpt2: random and briefly trained weights, F32, F16, BF16,
# sharded, with and without the `transformer.` prefix): every (layer, head) lesion within 1e-4 of
# the seed's method in float64 (the committed output of ../shared/oracle/lesion_reference.py), the
# clean log-probability, target and top-5 too; np = 1, 2, 3 bitwise identical; a head and layer
# subset; live Q/K/V activations from the model's forward pass against the saved ones of the
# reference pass; and the clear errors (token out of range, prompt too long, wrong weight shape, no
# weights).
source "$(dirname "$0")/lib.sh"
cd "$TMP" || exit 1
FX=$AS_SRC/tests/fixtures/gpt2
H5SAME="$AS_SRC/tests/tools/h5same.py"
cat > all.yaml <<YAML
output: all.h5
models:
  - {name: random, weights: $FX/random}
  - {name: trained, weights: $FX/trained}
  - {name: trained_f16, weights: $FX/trained_f16}
  - {name: trained_bf16, weights: $FX/trained_bf16}
  - {name: trained_shard, weights: $FX/trained_shard}
stages:
  lesion: {tokens: $FX/tokens_trained.txt}
YAML
# random has its own prompt: a config of its own
sed -e "s#tokens_trained#tokens_random#" -e '/trained/d' -e 's/all.h5/random.h5/' all.yaml > random.yaml
sed -e '/name: random/d' all.yaml > trained.yaml
check_cmd "trained models, np=2" run_np 2 run trained.yaml -o np2.h5 --quiet
check_cmd "random model, np=2" run_np 2 run random.yaml --quiet
"$AS_PY" - "$FX" np2.h5 random.h5 > cmp.out 2>&1 <<'PY'
import json, sys
import h5py, numpy as np
fx, trained, rnd = sys.argv[1:4]
bad = 0
for path, names in [(trained, ["trained", "trained_f16", "trained_bf16", "trained_shard"]), (rnd, ["random"])]:
    f = h5py.File(path)
    for m in names:
        g = f[f"/models/{m}/lesion"]
        ref = json.load(open(f"{fx}/{m}.reference.json"))
        d, r = g["delta_logprob"][()], np.array(ref["delta_logprob"])
        err = np.abs(d - r).max()
        ok = (err <= 1e-4 and abs(g.attrs["logprob_clean"] - ref["logprob_clean"]) <= 1e-4
              and g.attrs["target_token"] == ref["target_token"] and list(g["top5_clean"][()]) == ref["top5_clean"])
        print(f"{m}: max |delta - ref| {err:.2e}, clean {g.attrs['logprob_clean']:.6f} (ref {ref['logprob_clean']:.6f}), "
              f"top5 {list(g['top5_clean'][()])}: {'ok' if ok else 'MISMATCH'}")
        bad += not ok
sys.exit(1 if bad else 0)
PY
rc=$?
sed 's/^/    /' cmp.out
[ $rc -eq 0 ] && ok "every lesion delta within 1e-4 of the seed's method, clean log p, target, top-5" || fail "parity"
for np in 1 3; do
    check_cmd "np=$np" run_np $np run trained.yaml -o np$np.h5 --quiet
    check_cmd "np=$np == np=2 (bitwise)" "$AS_PY" "$H5SAME" np2.h5 np$np.h5
done

# a subset: heads 1 and 3 of layers 0 and 2; NaN elsewhere, the rest equal to the full run's
cat > sub.yaml <<YAML
output: sub.h5
models: [{name: trained, weights: $FX/trained}]
stages: {lesion: {tokens: $FX/tokens_trained.txt, heads: [1, 3], layers: [0, 2]}}
YAML
check_cmd "heads [1, 3], layers [0, 2]" run_np 2 run sub.yaml --quiet
check_cmd "the subset: NaN where not lesioned, equal to the full run to float32 rounding" "$AS_PY" -c "
import h5py, numpy as np
s = h5py.File('sub.h5')['/models/trained/lesion/delta_logprob'][()]
a = h5py.File('np2.h5')['/models/trained/lesion/delta_logprob'][()]
m = np.zeros_like(s, bool); m[np.ix_([0, 2], [1, 3])] = True
assert np.isnan(s[~m]).all() and not np.isnan(s[m]).any(), s
assert np.abs(s[m] - a[m]).max() < 1e-5, np.abs(s[m] - a[m]).max()"

# live activations: Q, K, V from the model's forward pass over the prompt (weights: + prompt:) give
# the activations stage the statistics of the reference forward pass's saved tensors
# (tests/gen/make_gpt2_acts.py: float64 torch, saved float32)
cat > live.yaml <<YAML
output: live.h5
models:
  - {name: live, weights: $FX/trained, prompt: $FX/tokens_trained.txt}
  - {name: saved, dir: $FX/trained_acts, heads: 4}
stages: {activations: {}}
YAML
check_cmd "activations from a live model and from saved tensors, np=2" run_np 2 run live.yaml --quiet
check_cmd "live activations == the reference pass's saved ones (histograms equal, statistics within 1e-5)" "$AS_PY" -c "
import h5py, numpy as np
f = h5py.File('live.h5'); a, b = f['/models/live/activations'], f['/models/saved/activations']
assert sorted(a.keys()) == sorted(b.keys())
for k in a.keys():
    x, y = a[k][()], b[k][()]
    assert x.shape == y.shape, k
    if k.endswith('hist') or k.endswith('edges'):
        assert (x == y).all(), k
    else:
        assert np.abs(x - y).max() <= 1e-5 * max(np.abs(y).max(), 1e-12), (k, np.abs(x - y).max())"
check_cmd "live activations, np=3" run_np 3 run live.yaml -o live3.h5 --quiet
check_cmd "live activations: np=3 == np=2 (bitwise)" "$AS_PY" "$H5SAME" live.h5 live3.h5

# errors: one line, the exit code, the file or key named
expect() { # expect NAME CODE TEXT CONFIG
    run_np 2 run "$4" --quiet > "$1.out" 2>&1; local rc=$?
    if [ $rc -eq "$2" ] && grep -q "$3" "$1.out"; then ok "$1: exit $2, $(grep -m1 -o "attnstat: error: .*" "$1.out" | cut -c1-150)"
    else fail "$1: exit $rc: $(grep -m1 error "$1.out")"; fi
}
echo "1 2 999 4" > oor.txt
sed "s#$FX/tokens_trained.txt#oor.txt#" sub.yaml > oor.yaml
expect token_out_of_range 4 "outside the vocabulary" oor.yaml
"$AS_PY" -c "print(' '.join(['5'] * 33))" > long.txt
sed "s#$FX/tokens_trained.txt#long.txt#" sub.yaml > long.yaml
expect prompt_too_long 4 "long.txt" long.yaml
mkdir -p bad && cp "$FX/trained/model.safetensors" bad/ && "$AS_PY" -c "
import json; c = json.load(open('$FX/trained/config.json')); c['n_embd'] = 48; json.dump(c, open('bad/config.json', 'w'))"
sed "s#$FX/trained#bad#" sub.yaml > badshape.yaml
expect wrong_weight_shape 4 "shape" badshape.yaml
cat > noweights.yaml <<YAML
output: nw.h5
models: [{name: m, synthetic: {layers: 2, heads: 2, seq_len: 8}}]
stages: {lesion: {tokens: $FX/tokens_trained.txt}}
YAML
expect no_weights 3 "give 'weights: DIR'" noweights.yaml
sed "s#tokens: $FX/tokens_trained.txt#tokens: $FX/tokens_trained.txt, position: 31#" sub.yaml > pos.yaml
expect position_at_the_end 3 "no next token" pos.yaml
finish
