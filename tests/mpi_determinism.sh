#!/bin/bash
# mpi.determinism: the same config gives bitwise-identical /models datasets and attributes for
# np = 1, 2, 3, 4, 7 and for OPENBLAS_NUM_THREADS = 1 and 2, on every stage: a real-model fixture
# read from .pt and synthetic models of different shapes (12 heads: not a power of two).
source "$(dirname "$0")/lib.sh"
cat > "$TMP/c.yaml" <<YAML
output: out.h5
models:
  - name: tiny
    dir: $AS_SRC/tests/fixtures/tiny
  - name: synth-a
    synthetic: {layers: 5, heads: 6, seq_len: 40, seed: 1, batch: 2, head_dim: 8}
  - name: synth-b
    synthetic: {layers: 3, heads: 12, seq_len: 33, seed: 2, batch: 3, head_dim: 4}
stages:
  histsim: {}
  monotonicity: {}
  jacobian: {}
  patterns: {}
  activations: {}
YAML
for n in 1 2 3 4 7; do
    check_cmd "run np=$n" run_np $n run "$TMP/c.yaml" -o "$TMP/np$n.h5" --quiet
    check_cmd "np=$n results complete" "$AS_PY" -c "import h5py,sys; sys.exit(0 if h5py.File('$TMP/np$n.h5').attrs.get('complete') == 1 else 1)"
done
for n in 2 3 4 7; do
    check_cmd "np=1 == np=$n bitwise" "$AS_PY" "$AS_SRC/tests/tools/h5same.py" "$TMP/np1.h5" "$TMP/np$n.h5"
done
OPENBLAS_NUM_THREADS=2 check_cmd "run np=2 with 2 OpenBLAS threads" run_np 2 run "$TMP/c.yaml" -o "$TMP/blas2.h5" --quiet
check_cmd "OPENBLAS_NUM_THREADS=1 == 2 bitwise" "$AS_PY" "$AS_SRC/tests/tools/h5same.py" "$TMP/np2.h5" "$TMP/blas2.h5"
finish
