#!/bin/bash
# parity.stages: every stage, through the whole MPI pipeline, on fixtures from real small ALiBi
# models in the users' own format (torch.save .pt), agrees with seed_reference.py's values
# (committed JSON) within compare_results.py's tolerances; monotonicity also on qk_mean scaled by
# 1/sqrt(head_dim), which has violations. tiny12 has 12 heads (not a power of two).
source "$(dirname "$0")/lib.sh"
FX=$AS_SRC/tests/fixtures
cat > "$TMP/tiny.yaml" <<YAML
output: tiny.h5
models:
  - name: tiny
    dir: $FX/tiny          # qk_mean.pt, attention_probs_mean.pt, jacobian.pt {attn, grad}, q/k/v_acts.pt
stages:
  histsim: {}
  monotonicity: {}
  jacobian: {}
  patterns: {}
  activations: {}
YAML
check_cmd "tiny: all stages from .pt, np=2" run_np 2 run "$TMP/tiny.yaml" --quiet
check_cmd "tiny: every stage matches the reference" "$AS_PY" "$AS_SRC/tests/gen/compare_results.py" "$TMP/tiny.h5" tiny "$FX/tiny/reference.json"
cat > "$TMP/tiny_qk.yaml" <<YAML
output: tiny_qk.h5
models:
  - {name: tiny, dir: $FX/tiny}
stages:
  monotonicity: {input: qk_mean, scale: 0.35355339059327373}
YAML
check_cmd "tiny: monotonicity on scaled qk_mean, np=3" run_np 3 run "$TMP/tiny_qk.yaml" --quiet
check_cmd "tiny: scaled-qk monotonicity (with violations) matches" "$AS_PY" "$AS_SRC/tests/gen/compare_results.py" "$TMP/tiny_qk.h5" tiny "$FX/tiny/reference_mono_qk.json"
"$AS_PY" -c "import h5py,sys; v=h5py.File('$TMP/tiny_qk.h5')['/models/tiny/monotonicity/violations'][()]; print('violations per layer', list(v)); sys.exit(0 if v.sum() > 0 else 1)" && ok "the scaled-qk case has violations" || fail "no violations in the scaled-qk case"
for sl in standard; do
cat > "$TMP/tiny12.yaml" <<YAML
output: tiny12.h5
models:
  - {name: tiny12, dir: $FX/tiny12}
stages:
  histsim: {}
  monotonicity: {slopes: $sl}
YAML
check_cmd "tiny12 (12 heads): histsim + monotonicity" run_np 2 run "$TMP/tiny12.yaml" --quiet
check_cmd "tiny12: matches the reference" "$AS_PY" "$AS_SRC/tests/gen/compare_results.py" "$TMP/tiny12.h5" tiny12 "$FX/tiny12/reference.json"
done
cat > "$TMP/tiny12_qk.yaml" <<YAML
output: tiny12_qk.h5
models:
  - {name: tiny12, dir: $FX/tiny12}
stages:
  monotonicity: {input: qk_mean, scale: 0.5}
YAML
check_cmd "tiny12: scaled-qk monotonicity" run_np 2 run "$TMP/tiny12_qk.yaml" --quiet
check_cmd "tiny12: scaled-qk monotonicity matches" "$AS_PY" "$AS_SRC/tests/gen/compare_results.py" "$TMP/tiny12_qk.h5" tiny12 "$FX/tiny12/reference_mono_qk.json"
finish
