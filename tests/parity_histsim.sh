#!/bin/bash
# parity.histsim: attnstat's histsim on fixtures from real small ALiBi models agrees with the
# reference values of seed_reference.py (committed JSON) within compare_results.py's tolerances.
source "$(dirname "$0")/lib.sh"
for fx in tiny tiny12; do
    cat > "$TMP/$fx.yaml" <<YAML
output: $fx.h5
models:
  - name: $fx
    dir: $AS_SRC/tests/fixtures/$fx
    tensors: {qk_mean: qk_mean.npy}
stages:
  histsim: {}
YAML
    check_cmd "$fx: run np=2" run_np 2 run "$TMP/$fx.yaml" --quiet
    check_cmd "$fx: histsim matches the reference" "$AS_PY" "$AS_SRC/tests/gen/compare_results.py" "$TMP/$fx.h5" "$fx" \
        "$AS_SRC/tests/fixtures/$fx/reference.json" --stages histsim
done
finish
