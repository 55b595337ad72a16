#!/bin/bash
# jobs/bench_monotonicity.sh [--quick] [--dir DIR] [--keep] [--np N]: issue 4, monotonicity stage.
# The notebook (seed 001, jobs/bench/notebook_monotonicity.py) vs `attnstat run` (np=2) on the
# same attention_probs_mean.pt (L,H,T,T):
#   mpt-7b (32,32,256,256): >= 15x faster, <= 300 MB per rank
#   BLOOM (70,112,256,256): attnstat time <= 1/30 of the notebook's, <= 400 MB per rank
#   length scaling, 4 layers x 8 heads, T = 512, 1024, 2048, 4096: time and peak RSS of both per T
#   (the notebook runs under `ulimit -v` 20 GB: "OOM" when it needs more; larger T are then
#   skipped); attnstat at T=4096: <= 180 s, < 2 GB per rank.
source "$(dirname "$0")/bench/common.sh"
bench_parse_args monotonicity "$@"
bench_detect_pt

if ((QUICK)); then
    CASES=("mpt-7b-quick 4 4 128 speedup=15 rss_mb=300" "bloom-quick 4 8 128 speedup=30 rss_mb=400")
    SCALING=(128 256)
    SL=4 SH=8
else
    CASES=("mpt-7b 32 32 256 speedup=15 rss_mb=300" "bloom 70 112 256 speedup=30 rss_mb=400")
    SCALING=(512 1024 2048 4096)
    SL=4 SH=8
fi
for T in "${SCALING[@]}"; do
    t="rss_mb=2048"
    [[ $T == "${SCALING[-1]}" ]] && t="wall=180 rss_mb=2048"
    CASES+=("L${SL}H${SH}-T$T $SL $SH $T $t")
done

nb_oom=""
for c in "${CASES[@]}"; do
    read -r name L H T targets <<< "$c"
    bench_want "$name" || continue
    d="$SCRATCH/data/$name/$T"
    mkdir -p "$d" "$SCRATCH/out"
    echo
    echo "## $name: attention_probs_mean ($L, $H, $T, $T) float32"
    bench_cmd "$PY" "$BENCH/make_inputs.py" probs "$d/attention_probs_mean.pt" --shape "$L" "$H" "$T" "${NPY_FLAG[@]}"
    ls -l "$d"
    tens=""
    ((PT_OK)) || tens="    tensors: {attention_probs_mean: attention_probs_mean.npy}"
    bench_config "$SCRATCH/$name.yaml" <<YAML
output: out/$name.h5
models:
  - name: $name
    dir: data/$name/$T
$tens
stages:
  monotonicity: {}
YAML
    if [[ $name == L* && -n $nb_oom ]]; then
        echo "# notebook not run at T=$T: it ran out of memory at T=$nb_oom"
        printf '%s\t%s\t%s\t%s\t%s\n' "$name" notebook nan nan "skipped(OOM@T=$nb_oom)" >> "$RESULTS"
    else
        bench_warm "$d/attention_probs_mean.pt"
        bench_measure "$name" notebook "${PYRUN[@]}" "$BENCH/notebook_monotonicity.py" "$SCRATCH/data" "$name" "$T"
        if [[ $name == L* && $(tail -n 1 "$RESULTS" | cut -f5) == OOM ]]; then
            nb_oom=$T
        fi
    fi
    ((PT_OK)) && bench_warm "$d/attention_probs_mean.pt" || bench_warm "$d/attention_probs_mean.npy"
    bench_measure_mpi "$name" "attnstat np=$NP" "$NP" "$ATTNSTAT" run "$SCRATCH/$name.yaml" --quiet
    # shellcheck disable=SC2086
    bench_target "$name" $targets
    rm -f "$d"/attention_probs_mean.*
done
bench_table
[[ -n $nb_oom ]] && echo "notebook: OOM at T=$nb_oom (address space capped at $((NB_ULIMIT_KB / 1024 / 1024)) GB)"
bench_footer
