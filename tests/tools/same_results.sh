#!/bin/bash
# tests/tools/same_results.sh [--allow-new-attrs] OLD_ATTNSTAT NEW_ATTNSTAT: runs config/demo.yaml and the fixture
# configs of tests/parity_stages.sh with both programs (mpirun -np 2) and checks that the results
# files are bitwise identical (every dataset and attribute under /models and the root attributes
# that do not name a time, a commit or a command line; tests/tools/h5same.py) and that the demo's
# PNG figures are byte-identical. For refactors: build the commit before the change somewhere,
#   git worktree add /tmp/old HEAD~1 && cmake -S /tmp/old -B /tmp/old/build && cmake --build /tmp/old/build
#   bash tests/tools/same_results.sh /tmp/old/build/attnstat build/attnstat
# --allow-new-attrs: attributes that only the new file has (e.g. stage options newly recorded) are
# listed but allowed; every dataset and every attribute both files have must still be identical.
set -u
ALLOW_NEW=0
[ "${1:-}" = --allow-new-attrs ] && { ALLOW_NEW=1; shift; }
AS_SRC=$(cd "$(dirname "$0")/../.." && pwd)
OLD=$1 NEW=$2
PY=${AS_PY:-/usr/bin/python3}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1 OMPI_MCA_rmaps_base_oversubscribe=1
T=$(mktemp -d /tmp/attnstat-same.XXXXXX)
trap 'rm -rf "$T"' EXIT
FX=$AS_SRC/tests/fixtures
cat > "$T/tiny.yaml" <<YAML
output: tiny.h5
models:
  - {name: tiny, dir: $FX/tiny}
stages: {histsim: {}, monotonicity: {}, jacobian: {}, patterns: {}, activations: {}}
YAML
cat > "$T/tiny_qk.yaml" <<YAML
output: tiny_qk.h5
models:
  - {name: tiny, dir: $FX/tiny}
  - {name: tiny12, dir: $FX/tiny12}
stages: {monotonicity: {input: qk_mean, scale: 0.35355339059327373}, histsim: {quantile: sampled, samples: 5000}}
YAML
sed "s#output: ../out/demo.h5#output: demo.h5#" "$AS_SRC/config/demo.yaml" > "$T/demo.yaml"
fails=0 passes=0
for c in demo tiny tiny_qk; do
    for who in old new; do
        mkdir -p "$T/$who"
        bin=$OLD; [ $who = new ] && bin=$NEW
        if ! mpirun -np 2 "$bin" run "$T/$c.yaml" -o "$T/$who/$c.h5" --quiet > "$T/$who/$c.out" 2>&1; then
            echo "FAIL $c: $who run failed: mpirun -np 2 $bin run $T/$c.yaml"; cat "$T/$who/$c.out"; fails=$((fails + 1))
        fi
    done
    "$PY" "$AS_SRC/tests/tools/h5same.py" "$T/old/$c.h5" "$T/new/$c.h5" > "$T/$c.diff"
    same=$?
    if [ $same -ne 0 ] && [ $ALLOW_NEW = 1 ] && ! grep -v '^only in B: .*@\|items compared' "$T/$c.diff" | grep -q .; then
        sed -n 's/^only in B: /     new attribute: /p' "$T/$c.diff"
        same=0
    fi
    if [ $same -eq 0 ] &&
       "$PY" - "$T/old/$c.h5" "$T/new/$c.h5" >> "$T/$c.diff" <<'PY'
import sys, h5py, numpy as np
RUN = {"start_time", "end_time", "git_commit", "command_line", "tool_version", "figures", "config_path", "config"}
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
bad = [k for k in sorted(set(a.attrs) | set(b.attrs)) if k not in RUN and
       (k not in a.attrs or k not in b.attrs or repr(np.asarray(a.attrs[k]).tolist()) != repr(np.asarray(b.attrs[k]).tolist()))]
for k in bad:
    print("root attribute differs:", k)
sys.exit(1 if bad else 0)
PY
    then echo "ok   $c: results bitwise identical"; passes=$((passes + 1))
    else echo "FAIL $c: results differ"; cat "$T/$c.diff"; fails=$((fails + 1)); fi
done
# the demo's figures, from each program's results file, by the same program
for who in old new; do
    bin=$OLD; [ $who = new ] && bin=$NEW
    "$bin" plot "$T/$who/demo.h5" -o "$T/$who/fig" --format png > /dev/null 2>&1 || { echo "FAIL $who plot"; fails=$((fails + 1)); }
done
if diff -r "$T/old/fig" "$T/new/fig" > /dev/null; then echo "ok   demo figures byte-identical ($(ls "$T/new/fig" | wc -l) PNGs)"; passes=$((passes + 1))
else echo "FAIL demo figures differ"; diff -rq "$T/old/fig" "$T/new/fig" | head; fails=$((fails + 1)); fi
echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
