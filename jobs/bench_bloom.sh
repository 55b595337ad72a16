#!/bin/bash
# jobs/bench_bloom.sh [--quick] [--layers N] [--reps R] [--no-check] [--fs-gbps G] [--node-gbps G]
#                     [--dir DIR] [--keep] [--np N]: issue 15, the paper's largest case on one machine.
#
# 1. check (the projection against a measured BLOOM layer; skipped by --no-check): the cost
#    model of jobs/bench/plan_sim.c is fitted on real files, `jobs/scaling.sh jobs/scaling.yaml
#    --ranks 1` (its models written to .npy, a warm and a cold run at np = 1: 5.8 GB), and one
#    BLOOM T = 2048 layer (112 heads, histsim + monotonicity) is written to .npy (3.8 GB). Then R
#    times (default 3; 1 with --quick), alternating, np = 1, inputs page-cached: the fit config, and
#    the BLOOM layer; plan_sim predicts the layer's busy time from that rep's fit. Target: the
#    median of predicted / measured within 1 +- 0.25. The same ratio in CPU seconds (user + system
#    of mpirun -np 1 and its rank, /usr/bin/time) is shown next to it: busy seconds are wall time,
#    so on a shared machine they also hold the other jobs' share of the core, which differs from
#    one run to the next. The .npy files are deleted afterwards.
# 2. bloom: BLOOM's shape at T = 2048 from the generator, `synthetic: {layers: 70, heads: 112,
#    seq_len: 2048, seed: 1}` (131 GB per float32 tensor), histsim + monotonicity + patterns,
#    mpirun -np N (default 2): wall, busy per rank, peak RSS per rank (target <= 512 MB). --quick
#    (or --layers N) runs N layers (quick: 4) and extrapolates to 70 layers: start-up + busy max
#    x (70 / N) (the units are whole layers, LPT-placed: each rank gets 70 / np of them).
# 3. projection: plan_sim fitted on the median rep's fit run (and the cold run's disk rate, shown
#    for comparison) projects the paper sweep (5 models x 5 seq_len x 3 datasets, histsim +
#    monotonicity: the qk_mean and attention_probs_mean tensors, about 2 TB) to 1, 8 and 64 nodes of
#    64 ranks, reading from a file system of --fs-gbps GB/s aggregate (default 100) and
#    --node-gbps GB/s per node (default 10); the assumption is printed with the table.
# Needs about 10 GB free in DIR for the check (it stops before writing anything when there is not).
source "$(dirname "$0")/bench/common.sh"
REPS=""
LAYERS=""
CHECK=1
FS_GBPS=100
NODE_GBPS=10
ARGS=()
while (($#)); do
    case $1 in
        --reps) REPS=${2:?--reps needs a number}; shift ;;
        --layers) LAYERS=${2:?--layers needs a number}; shift ;;
        --no-check) CHECK=0 ;;
        --fs-gbps) FS_GBPS=${2:?--fs-gbps needs a number}; shift ;;
        --node-gbps) NODE_GBPS=${2:?--node-gbps needs a number}; shift ;;
        *) ARGS+=("$1") ;;
    esac
    shift
done
bench_parse_args bloom "${ARGS[@]}"
REPS=${REPS:-$( ((QUICK)) && echo 1 || echo 3)}
LAYERS=${LAYERS:-$( ((QUICK)) && echo 4 || echo 70)}
FULL_LAYERS=70
bench_build materialize plan_sim scaling_plot
MATERIALIZE="$BENCH_BIN/materialize"
PLAN_SIM="$BENCH_BIN/plan_sim"
export OPENBLAS_NUM_THREADS=1
CHECK_TSV="$SCRATCH/check.tsv"
: > "$CHECK_TSV"

busy_of() {    # busy_of RESULTS.h5: "max mean units_per_rank_max bytes_sum"
    "$PY" - "$1" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    b, u, n = f["run/rank_busy_seconds"][()], f["run/rank_units"][()], f["run/rank_bytes_read"][()]
    print(f"{b.max():.3f} {b.mean():.3f} {u.max()} {n.sum():.6g}")
PY
}

# cpu_run PREFIX CONFIG: `mpirun -np 1 attnstat run CONFIG -o PREFIX.h5` under /usr/bin/time:
# PREFIX.cpu = "wall user system" (mpirun and its rank)
cpu_run() {
    echo "+ OPENBLAS_NUM_THREADS=1 /usr/bin/time -f '%e %U %S' -o $1.cpu mpirun -np 1 $ATTNSTAT run $2 -o $1.h5 --quiet"
    /usr/bin/time -f '%e %U %S' -o "$1.cpu" mpirun -np 1 "$ATTNSTAT" run "$2" -o "$1.h5" --quiet
}

# ---- 1. the check: fit on files, one BLOOM layer from files
FIT_WARM=""
FIT_COLD=""
if ((CHECK)) && bench_want check; then
    echo
    echo "## check: plan_sim fitted on jobs/scaling.yaml (files, np = 1) vs one measured BLOOM T = 2048 layer"
    avail=$(df -B1 --output=avail "$SCRATCH" | tail -1)
    need=$((10 * 1000 * 1000 * 1000))
    if ((avail < need + 2 * 1000 * 1000 * 1000)); then
        echo "bench: the check needs about 10 GB in $SCRATCH, $((avail / 1000000)) MB free: skipped (--no-check, or --dir elsewhere)" >&2
        printf 'check\t-\tnan\tnan\tno-space\n' >> "$CHECK_TSV"
    else
        bench_cmd env ATTNSTAT="$ATTNSTAT" bash "$AS_ROOT/jobs/scaling.sh" "$AS_ROOT/jobs/scaling.yaml" --ranks 1 \
            --dir "$SCRATCH/fit" --keep-data | sed 's/^/  | /'
        FIT_COLD="$SCRATCH/fit/strong-np1-cold.h5"
        mkdir -p "$SCRATCH/data/bloom1" "$SCRATCH/out"
        bench_cmd "$MATERIALIZE" "synthetic:layers=1,heads=112,seq_len=2048,batch=2,head_dim=16,seed=1,model=bloom" \
            "$SCRATCH/data/bloom1" qk_mean attention_probs_mean
        bench_config "$SCRATCH/bloom1.yaml" <<YAML
output: out/bloom1.h5
models:
  - name: bloom
    dir: data/bloom1
    heads: 112
stages:
  histsim: {}
  monotonicity: {}
YAML
        mapfile -t fit_files < "$SCRATCH/fit/strong-np1.yaml.files"
        for ((r = 1; r <= REPS; r++)); do
            bench_warm "${fit_files[@]}"
            cpu_run "$SCRATCH/out/fit-$r" "$SCRATCH/fit/strong-np1.yaml"
            bench_warm "$SCRATCH/data/bloom1/qk_mean.npy" "$SCRATCH/data/bloom1/attention_probs_mean.npy"
            cpu_run "$SCRATCH/out/bloom1-$r" "$SCRATCH/bloom1.yaml"
            # prediction of the layer from this rep's fit (busy seconds), and the same in CPU seconds
            line=$("$PLAN_SIM" "$SCRATCH/out/fit-$r.h5" --ranks 1 --nodes 1 --compare "$SCRATCH/out/bloom1-$r.h5" | tail -1)
            read -r _ _ _ pred meas _ _ _ _ ratio <<< "$line"
            fitb=$(busy_of "$SCRATCH/out/fit-$r.h5" | cut -d' ' -f1)
            read -r fitc bloomc <<< "$(cat "$SCRATCH/out/fit-$r.cpu" "$SCRATCH/out/bloom1-$r.cpu" | awk '{ printf "%s ", $2 + $3 }')"
            rcpu=$(awk -v p="$pred" -v fb="$fitb" -v fc="$fitc" -v bc="$bloomc" 'BEGIN { printf "%.3f", p * fc / fb / bc }')
            echo "  -> rep $r: fit busy $fitb s (cpu $fitc s); BLOOM layer busy predicted $pred s, measured $meas s:" \
                "predicted / measured $ratio (busy), $rcpu (cpu)"
            printf 'check\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$fitb" "$pred" "$meas" "$ratio" "$fitc" "$bloomc" "$rcpu" >> "$CHECK_TSV"
        done
        rm -rf "$SCRATCH/data" "$SCRATCH/fit/data"
        echo "# removed the .npy files"
        # the median rep's fit is the projection's
        FIT_WARM=$("$PY" - "$CHECK_TSV" "$SCRATCH/out" <<'PY'
import sys
rows = [l.split("\t") for l in open(sys.argv[1]) if l.strip()]
rows.sort(key=lambda r: float(r[5]))
print("%s/fit-%s.h5" % (sys.argv[2], rows[len(rows) // 2][1]))
PY
)
    fi
fi

# ---- 2. BLOOM from the generator
if bench_want bloom; then
    echo
    echo "## bloom: synthetic {layers: $LAYERS, heads: 112, seq_len: 2048, seed: 1}, histsim + monotonicity + patterns, np = $NP"
    mkdir -p "$SCRATCH/out"
    bench_config "$SCRATCH/bloom.yaml" <<YAML
output: out/bloom.h5
models:
  - name: bloom
    synthetic: {layers: $LAYERS, heads: 112, seq_len: 2048, seed: 1}
stages:
  histsim: {}
  monotonicity: {}
  patterns: {}
YAML
    bench_measure_mpi bloom "attnstat synthetic" "$NP" "$ATTNSTAT" run "$SCRATCH/bloom.yaml" --quiet
    sed 's/^/  | /' "$SCRATCH/out/bloom.log" | grep -E "rank [0-9]+ busy|balance" || true
fi

# ---- the tables
echo
if [[ -s $CHECK_TSV ]]; then
    echo "# check: predicted / measured busy time of one BLOOM T = 2048 layer (histsim + monotonicity, np = 1, page-cached .npy),"
    echo "# plan_sim fitted on jobs/scaling.yaml at np = 1 (page-cached .npy) in the same rep"
    "$PY" - "$CHECK_TSV" <<'PY'
import sys, statistics
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
if len(rows[0]) < 9:
    print("| check | skipped: not enough disk space |"); sys.exit(0)
print("| rep | fit busy s | BLOOM layer busy: predicted s | measured s | predicted / measured | fit cpu s | BLOOM layer cpu s | predicted / measured (cpu) |")
print("|---|---|---|---|---|---|---|---|")
for r in rows:
    print("| %s | %s | %s | %s | %s | %s | %s | %s |" % tuple(r[1:9]))
med = statistics.median(float(r[5]) for r in rows)
medc = statistics.median(float(r[8]) for r in rows)
ok = abs(med - 1) <= 0.25
print("| median | | | | %.3f: %s | | | %.3f: %s |" % (med, "PASS" if ok else "FAIL", medc, "PASS" if abs(medc - 1) <= 0.25 else "FAIL"))
print("(target: predicted / measured in 0.75..1.25; busy = /run/rank_busy_seconds, what plan_sim fits and predicts;")
print(" cpu = user + system seconds of mpirun -np 1 and its rank, the same ratio insensitive to other jobs' share of the cores)")
PY
fi
if [[ -s $RESULTS ]] && grep -q '^bloom' "$RESULTS"; then
    echo
    echo "# bloom: BLOOM T = 2048 from the generator (131 GB per tensor at 70 layers), histsim + monotonicity + patterns, np = $NP"
    "$PY" - "$RESULTS" "$SCRATCH/out/bloom.h5" "$LAYERS" "$FULL_LAYERS" "$NP" <<'PY'
import math, sys, h5py
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip() and l.startswith("bloom\t")]
path, L, full, np_ = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
case, tool, wall, rss, status = rows[-1]
print("| layers | ranks | wall s | busy s per rank (max) | s per layer per rank | GB generated per rank | peak RSS MB per rank | 70 layers: wall | RSS target | PASS/FAIL |")
print("|---|---|---|---|---|---|---|---|---|---|")
if status != "ok":
    print("| %d | %d | %s | - | - | - | - | - | <= 512 MB | FAIL |" % (L, np_, status)); sys.exit(0)
with h5py.File(path, "r") as f:
    b, u, n = f["run/rank_busy_seconds"][()], f["run/rank_units"][()], f["run/rank_bytes_read"][()]
wall, rss = float(wall), float(rss)
per_layer = b.max() / u.max()
if L == full:
    ext = "%.1f min (measured)" % (wall / 60)
else:
    est = (wall - b.max()) + per_layer * math.ceil(full / np_)
    ext = "%.1f min (extrapolated)" % (est / 60)
print("| %d | %d | %.1f | %.1f | %.2f | %.1f | %.0f | %s | <= 512 MB | %s |"
      % (L, np_, wall, b.max(), per_layer, n.max() / 1e9, rss, ext, "PASS" if rss <= 512 else "FAIL"))
PY
fi
if [[ -n $FIT_WARM ]]; then
    echo
    echo "# projection of the paper sweep (histsim + monotonicity), fitted on $FIT_WARM (files, np = 1)"
    bench_cmd "$PLAN_SIM" "$FIT_WARM" --cold "$FIT_COLD" --ranks 1,64,512,4096 --nodes 1,8,64 --ranks-per-node 64 \
        --fs-gbps "$FS_GBPS" --node-gbps "$NODE_GBPS"
fi
((QUICK == 0)) || echo "(quick mode: $LAYERS layers and $REPS rep(s); the full run is 70 layers)"
