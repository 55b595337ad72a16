#!/bin/bash
# jobs/bench_histsim.sh [--quick] [--dir DIR] [--keep] [--np N] [--case NAME]: issue 2, histsim stage.
# The notebook (seed 000, jobs/bench/notebook_histsim.py) vs `attnstat run` (np=2) on the same
# qk_mean.pt: BLOOM shape (70,112,256,256) and mpt-7b shape (32,32,256,256).
# Targets: BLOOM >= 30x faster, <= 300 MB per rank; mpt-7b >= 15x faster, <= 300 MB per rank.
# attnstat runs twice: the default (exact quantiles over all values: a 2-round radix-select
# prepass reads the tensor twice more) and `quantile: sampled` (the notebook's 1M-sample method).
source "$(dirname "$0")/bench/common.sh"
bench_parse_args histsim "$@"
bench_detect_pt

if ((QUICK)); then
    CASES=("bloom-quick 4 8 256 256 30" "mpt-7b-quick 2 4 256 256 15")
else
    CASES=("bloom 70 112 256 256 30" "mpt-7b 32 32 256 256 15")
fi

for c in "${CASES[@]}"; do
    read -r name L H T _ speedup <<< "$c"
    bench_want "$name" || continue
    d="$SCRATCH/data/$name/$T"
    mkdir -p "$d" "$SCRATCH/out"
    echo
    echo "## $name: qk_mean ($L, $H, $T, $T) float32"
    bench_cmd "$PY" "$BENCH/make_inputs.py" qk "$d/qk_mean.pt" --shape "$L" "$H" "$T" "${NPY_FLAG[@]}"
    ls -l "$d"
    tens=""
    ((PT_OK)) || tens="    tensors: {qk_mean: qk_mean.npy}"
    bench_config "$SCRATCH/$name.yaml" <<YAML
output: out/$name.h5
models:
  - name: $name
    dir: data/$name/$T
$tens
stages:
  histsim: {}
YAML
    # the notebook's own quantile method (1M sampled values) as a second attnstat row
    sed -e 's/histsim: {}/histsim: {quantile: sampled}/' -e "s#out/$name.h5#out/$name.sampled.h5#" \
        "$SCRATCH/$name.yaml" > "$SCRATCH/$name.sampled.yaml"
    bench_warm "$d/qk_mean.pt"
    bench_measure "$name" notebook "${PYRUN[@]}" "$BENCH/notebook_histsim.py" "$d" "$SCRATCH/out/$name.notebook.log"
    ((PT_OK)) && bench_warm "$d/qk_mean.pt" || bench_warm "$d/qk_mean.npy"
    bench_measure_mpi "$name" "attnstat np=$NP" "$NP" "$ATTNSTAT" run "$SCRATCH/$name.yaml" --quiet
    ((PT_OK)) && bench_warm "$d/qk_mean.pt" || bench_warm "$d/qk_mean.npy"
    bench_measure_mpi "$name" "attnstat np=$NP quantile:sampled" "$NP" "$ATTNSTAT" run "$SCRATCH/$name.sampled.yaml" --quiet
    bench_target "$name" "speedup=$speedup" "rss_mb=300"
    rm -f "$d"/qk_mean.*
done
bench_table
bench_footer
