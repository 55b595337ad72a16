#!/bin/bash
# jobs/bench_synth.sh [--quick] [--dir DIR] [--keep] [--np N] [--case NAME] [--reps R]: issue 15,
# synthetic inputs cheaper than reading them.
# Each case runs `mpirun -np N attnstat run` twice on the same values: on a built-in synthetic
# model, and on .npy files of that model written by jobs/bench/materialize (page-cached before
# each file run). Runs alternate (file, synthetic) R times (default 3; 1 with --quick) and the
# table shows the median wall time, the peak RSS per rank and the ratio synthetic / file.
# Cases (full): 4 layers x 32 heads x T=1024 for histsim, monotonicity, patterns (each alone, and
# the three together), Q/K/V (4 layers, T=1024, 32 heads x 128) for activations, and attn + grad
# (batch 1) for jacobian.
# Target: synthetic / file <= 1.3 (time), and RSS per rank <= 1.3x the file run's (+ 20 MB).
# Both runs must give the same statistics: every dataset under /models of the two results files
# is compared bitwise (a case whose statistics differ fails).
source "$(dirname "$0")/bench/common.sh"
REPS=""
ARGS=()
while (($#)); do
    case $1 in
        --reps) REPS=${2:?--reps needs a number}; shift ;;
        *) ARGS+=("$1") ;;
    esac
    shift
done
bench_parse_args synth "${ARGS[@]}"
REPS=${REPS:-$( ((QUICK)) && echo 1 || echo 3)}
bench_build materialize
MATERIALIZE="$BENCH_BIN/materialize"

if ((QUICK)); then
    L=2 H=4 T=256 HD=32
else
    L=4 H=32 T=1024 HD=128
fi
# name | stages (YAML) | tensors to materialize | head_dim
CASES=(
    "histsim|histsim: {}|qk_mean|16"
    "monotonicity|monotonicity: {}|attention_probs_mean|16"
    "patterns|patterns: {}|attn|16"
    "all3|{histsim: {}, monotonicity: {}, patterns: {}}|qk_mean attention_probs_mean attn|16"
    "activations|activations: {}|q_acts k_acts v_acts|$HD"
    "jacobian|jacobian: {}|attn grad|16"
)

same_stats() {    # same_stats A.h5 B.h5: the statistics of both results files are equal
    "$PY" - "$1" "$2" <<'PY'
import sys, h5py, numpy as np
def walk(f):
    out = {}
    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and name.startswith("models/"):
            out[name] = obj[()]
    f.visititems(visit)
    return out
a, b = (walk(h5py.File(p, "r")) for p in sys.argv[1:3])
bad = [k for k in sorted(set(a) | set(b)) if k not in a or k not in b or
       np.asarray(a[k]).tobytes() != np.asarray(b[k]).tobytes()]
print(f"  -> statistics: {len(a)} datasets, {len(bad)} differ" + (f": {bad[:5]}" if bad else ""))
sys.exit(1 if bad or not a else 0)
PY
}

for c in "${CASES[@]}"; do
    IFS='|' read -r name stages tensors hd <<< "$c"
    bench_want "$name" || continue
    model="synth-$name"
    data="$SCRATCH/data/$name"
    mkdir -p "$data" "$SCRATCH/out"
    spec="synthetic:layers=$L,heads=$H,seq_len=$T,batch=1,head_dim=$hd,seed=7,model=$model"
    echo
    echo "## $name: $spec"
    # shellcheck disable=SC2086
    bench_cmd "$MATERIALIZE" "$spec" "$data" $tensors
    if [[ $stages == \{* ]]; then
        st="stages: $stages"
    else
        st=$'stages:\n  '"$stages"
    fi
    bench_config "$SCRATCH/$name.synth.yaml" <<YAML
output: out/$name.synth.h5
models:
  - name: $model
    synthetic: {layers: $L, heads: $H, seq_len: $T, batch: 1, head_dim: $hd, seed: 7}
$st
YAML
    bench_config "$SCRATCH/$name.file.yaml" <<YAML
output: out/$name.file.h5
models:
  - name: $model
    dir: data/$name
    heads: $H
$st
YAML
    files=()
    for t in $tensors; do files+=("$data/$t.npy"); done
    for ((r = 1; r <= REPS; r++)); do
        bench_warm "${files[@]}"
        bench_measure_mpi "$name" "file (.npy)" "$NP" "$ATTNSTAT" run "$SCRATCH/$name.file.yaml" --quiet
        bench_measure_mpi "$name" "synthetic" "$NP" "$ATTNSTAT" run "$SCRATCH/$name.synth.yaml" --quiet
    done
    same_stats "$SCRATCH/out/$name.synth.h5" "$SCRATCH/out/$name.file.h5" ||
        printf '%s\t%s\t%s\t%s\t%s\n' "$name" "synthetic" nan nan "stats-differ" >> "$RESULTS"
    rm -f "${files[@]}"
done

if [[ -n $ONLY_CASE && -z ${BENCH_MATCHED:-} ]]; then
    echo "bench: no case named '$ONLY_CASE'" >&2
    exit 2
fi
echo
echo "# $REPS run(s) per tool and case, alternating; wall = median, RSS = max over runs of the max over ranks"
"$PY" - "$RESULTS" <<'PY'
import sys, statistics
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
cases = []
for r in rows:
    if r[0] not in cases:
        cases.append(r[0])
head = ["case", "file wall s", "synthetic wall s", "ratio", "file RSS MB", "synthetic RSS MB", "RSS ratio", "target", "PASS/FAIL"]
out, fails = [], 0
for c in cases:
    def agg(tool):
        rs = [r for r in rows if r[0] == c and r[1].startswith(tool)]
        ok = [r for r in rs if r[4] == "ok"]
        bad = [r[4] for r in rs if r[4] != "ok"]
        if not ok or bad:
            return None, None, (bad[0] if bad else "missing")
        return statistics.median(float(r[2]) for r in ok), max(float(r[3]) for r in ok), "ok"
    fw, fm, fs = agg("file")
    sw, sm, ss = agg("synthetic")
    if fs != "ok" or ss != "ok":
        out.append([c, f"{fw:.2f}" if fw else fs, f"{sw:.2f}" if sw else ss, "-", "-", "-", "-", "<=1.3x", "FAIL"])
        fails += 1
        continue
    ratio, mratio = sw / fw, sm / fm
    ok = ratio <= 1.3 and sm <= 1.3 * fm + 20
    fails += not ok
    out.append([c, f"{fw:.2f}", f"{sw:.2f}", f"{ratio:.2f}x", f"{fm:.0f}", f"{sm:.0f}", f"{mratio:.2f}x",
                "time<=1.3x, RSS<=1.3x+20MB", "PASS" if ok else "FAIL"])
wd = [max(len(str(x[i])) for x in out + [head]) for i in range(len(head))]
for line in [head, ["-" * w for w in wd]] + out:
    print("| " + " | ".join(str(x).ljust(w) for x, w in zip(line, wd)) + " |")
sys.exit(0)
PY
((QUICK == 0)) || echo "(quick mode: small shapes; the targets are for the full shapes)"
