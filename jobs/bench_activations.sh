#!/bin/bash
# jobs/bench_activations.sh [--quick] [--dir DIR] [--keep] [--np N]: issue 6, activations stage.
# The tutorial's code as written (seed 002 demos 1-2, jobs/bench/notebook_activations.py) vs
# `attnstat run` (np=2, activations: {heads: 32}) on the same q_acts.pt, k_acts.pt, v_acts.pt
# (32, 2048, 4096) float32 (1 GB each): >= 3x faster, peak RSS per rank < 1/4 of the tutorial's.
# Then the GEMM throughput: bare cblas_sgemm of attnstat's shapes (jobs/bench/sgemm_peak.c, the
# CMake target sgemm_peak of the build attnstat comes from, see jobs/bench/common.sh; 1 OpenBLAS
# thread per process, 2 processes at once) vs attnstat's own GEMM rate, timed inside the stage
# around its cblas_sgemm calls (the summary log's "profile activations.gemm" lines):
# target >= 70%. The whole stage's FLOPs / busy seconds is shown too, for context.
source "$(dirname "$0")/bench/common.sh"
bench_parse_args activations "$@"
bench_detect_pt

if ((QUICK)); then
    name=acts-quick L=4 T=512 D=1024 H=8 SG_LAYERS=4
else
    name=acts L=32 T=2048 D=4096 H=32 SG_LAYERS=8
fi
bench_want "$name" || bench_table # the one case: any other --case is an error
# score rows per gemm call in attnstat, as the stage has it
BLOCK=$(sed -n 's/^#define ACT_BLOCK_ROWS \([0-9]*\).*/\1/p' "$AS_ROOT/stages/activations/activations.c")

d="$SCRATCH/data/$name"
mkdir -p "$d" "$SCRATCH/out"
echo
echo "## $name: q_acts, k_acts, v_acts ($L, $T, $D) float32, $H heads"
bench_cmd "$PY" "$BENCH/make_inputs.py" acts "$d" --shape "$L" "$T" "$D" "${NPY_FLAG[@]}"
ls -l "$d"
if ((PT_OK)); then
    tens=""
    files=("$d"/{q,k,v}_acts.pt)
else
    tens="    tensors: {q_acts: q_acts.npy, k_acts: k_acts.npy, v_acts: v_acts.npy}"
    files=("$d"/{q,k,v}_acts.npy)
fi
bench_config "$SCRATCH/$name.yaml" <<YAML
output: out/$name.h5
models:
  - name: $name
    dir: data/$name
$tens
stages:
  activations: {heads: $H}
YAML
bench_warm "$d"/{q,k,v}_acts.pt
bench_measure "$name" notebook "${PYRUN[@]}" "$BENCH/notebook_activations.py" "$d" "$H"
bench_warm "${files[@]}"
bench_measure_mpi "$name" "attnstat np=$NP" "$NP" "$ATTNSTAT" run "$SCRATCH/$name.yaml" --quiet
bench_target "$name" speedup=3 rss_frac=0.25
as_wall=$(awk -F'\t' -v c="$name" '$1 == c && $2 ~ /^attnstat/ { print $3 }' "$RESULTS")
rm -f "$d"/*_acts.*
bench_table
bench_footer

# ---- GEMM throughput
echo
echo "## GEMM: bare cblas_sgemm, 1 thread per process, $NP processes at once"
bench_build sgemm_peak
SG="$BENCH_BIN/sgemm_peak"
n=$((T - 1))
run_pair() {    # run_pair LABEL ARGS...: NP copies at once; mean GFLOP/s per process
    local label=$1 r
    shift
    echo "+ $NP x OPENBLAS_NUM_THREADS=1 $SG $*  # concurrently" >&2
    for ((r = 0; r < NP; r++)); do
        OPENBLAS_NUM_THREADS=1 "$SG" "$@" > "$SCRATCH/sg.$label.$r" &
    done
    wait
    cat "$SCRATCH"/sg."$label".* | sed 's/^/  /' >&2
    cat "$SCRATCH"/sg."$label".* | sed 's/.*gflops=\([0-9.]*\).*/\1/' | awk '{ s += $1 } END { printf "%.2f\n", s / NR }'
}
bare_blk=$(run_pair blocked blocked "$n" "$D" "$H" "$BLOCK" "$SG_LAYERS")
bare_sq=$(run_pair square square "$n" "$n" "$D" "$((SG_LAYERS / 2 > 0 ? SG_LAYERS / 2 : 1))")
bench_cmd "$PY" "$BENCH/gemm_rate.py" "$SCRATCH/out/$name.h5" "$n" "$D" "$as_wall" "$bare_blk" "$bare_sq" "$BLOCK" "$H"
((QUICK == 0)) || echo "(quick mode: small shapes; the targets are for the full shapes)"
