#!/bin/bash
# mpi.determinism: the same config at np = 1, 2, 3 gives bitwise-identical /models datasets and
# attributes; every results file is marked complete. Real-model fixtures and synthetic models.
source "$(dirname "$0")/lib.sh"
cat > "$TMP/c.yaml" <<YAML
output: out.h5
models:
  - name: tiny
    dir: $AS_SRC/tests/fixtures/tiny
    tensors: {qk_mean: qk_mean.npy, attention_probs_mean: attention_probs_mean.npy}
  - name: tiny12
    dir: $AS_SRC/tests/fixtures/tiny12
    tensors: {qk_mean: qk_mean.npy, attention_probs_mean: attention_probs_mean.npy}
  - name: synth-a
    synthetic: {layers: 5, heads: 6, seq_len: 40, seed: 1}
  - name: synth-b
    synthetic: {layers: 3, heads: 12, seq_len: 33, seed: 2}
stages:
  histsim: {}
YAML
for n in 1 2 3; do
    check_cmd "run np=$n" run_np $n run "$TMP/c.yaml" -o "$TMP/np$n.h5" --quiet
    check_cmd "np=$n results complete" "$AS_PY" -c "import h5py,sys; sys.exit(0 if h5py.File('$TMP/np$n.h5')['/'].attrs.get('complete') == 1 else 1)"
done
check_cmd "np=1 == np=2 bitwise" "$AS_PY" "$AS_SRC/tests/tools/h5same.py" "$TMP/np1.h5" "$TMP/np2.h5"
check_cmd "np=1 == np=3 bitwise" "$AS_PY" "$AS_SRC/tests/tools/h5same.py" "$TMP/np1.h5" "$TMP/np3.h5"
finish
