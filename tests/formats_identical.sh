#!/bin/bash
# formats.identical: the same model's tensors as torch .pt, safetensors (float32 and bfloat16
# widened exactly), HDF5 and .npy give bitwise-identical results through the whole pipeline.
source "$(dirname "$0")/lib.sh"
FX=$AS_SRC/tests/fixtures/tiny
mkdir -p "$TMP/st" "$TMP/h5" "$TMP/npy"
"$AS_PY" - "$FX" "$TMP" <<'PY'
import json, struct, sys
import numpy as np, h5py
fx, out = sys.argv[1], sys.argv[2]
names = ["qk_mean", "attention_probs_mean", "attn", "grad", "q_acts", "k_acts", "v_acts"]
arrs = {n: np.load(f"{fx}/{n}.npy") for n in names}
# safetensors by hand: 8-byte header length, JSON header, raw little-endian data
hdr, blobs, off = {}, [], 0
for n, a in arrs.items():
    b = np.ascontiguousarray(a, dtype="<f4").tobytes()
    hdr[n] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
    blobs.append(b); off += len(b)
h = json.dumps(hdr).encode(); h += b" " * (-len(h) % 8)
with open(f"{out}/st/model.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h))); f.write(h); [f.write(b) for b in blobs]
with h5py.File(f"{out}/h5/model.h5", "w") as f:
    for n, a in arrs.items():
        f.create_dataset(f"acts/{n}" if n.endswith("acts") else n, data=a, chunks=True if n == "attn" else None)
for n, a in arrs.items():
    np.save(f"{out}/npy/{n}.npy", a)
PY
stages='  histsim: {}
  monotonicity: {}
  jacobian: {}
  patterns: {}
  activations: {}'
# the .pt files in the fixture folder, found by name (attn/grad inside jacobian.pt)
printf 'output: pt.h5\nmodels:\n  - {name: tiny, dir: %s}\nstages:\n%s\n' "$FX" "$stages" > "$TMP/pt.yaml"
tensors() { # tensors FILE -> a tensors: map reading every tensor from one dict-like file
    local f=$1 k=""
    for n in qk_mean attention_probs_mean attn grad q_acts k_acts v_acts; do
        local key=$n; [ "${2:-}" = h5 ] && case $n in *_acts) key=acts/$n ;; esac
        k="$k$n: {file: $f, key: $key}, "
    done
    echo "{${k%, }}"
}
printf 'output: st.h5\nmodels:\n  - name: tiny\n    dir: %s\n    tensors: %s\nstages:\n%s\n' "$TMP/st" "$(tensors model.safetensors)" "$stages" > "$TMP/st.yaml"
printf 'output: h5.h5\nmodels:\n  - name: tiny\n    dir: %s\n    tensors: %s\nstages:\n%s\n' "$TMP/h5" "$(tensors model.h5 h5)" "$stages" > "$TMP/h5.yaml"
printf 'output: npy.h5\nmodels:\n  - {name: tiny, dir: %s}\nstages:\n%s\n' "$TMP/npy" "$stages" > "$TMP/npy.yaml"
for f in pt st h5 npy; do
    check_cmd "run from $f" run_np 2 run "$TMP/$f.yaml" --quiet
done
# provenance (input paths, digests) differs by design; the statistics must not
for f in st h5 npy; do
    check_cmd ".pt == $f (bitwise, statistics)" "$AS_PY" "$AS_SRC/tests/tools/h5same.py" "$TMP/pt.h5" "$TMP/$f.h5" --stats-only
done
finish
