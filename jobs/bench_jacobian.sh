#!/bin/bash
# jobs/bench_jacobian.sh [--quick] [--dir DIR] [--keep] [--np N]: issue 5, jacobian stage.
# The notebook's per-head loop (seed 004, jobs/bench/notebook_jacobian.py) vs `attnstat run`
# (np=2) on the same jacobian.pt = {"attn": (L,B,H,T,T), "grad": (L,B,H,T,T)}, 12 layers, 12 heads,
# T=256: B=16 (604 MB per tensor): >= 4x faster, peak RSS per rank < 1/8 of the notebook's;
# B=64 (2.4 GB per tensor): the same, and the speed ratio must be larger than at B=16.
source "$(dirname "$0")/bench/common.sh"
bench_parse_args jacobian "$@"
bench_detect_pt

if ((QUICK)); then
    CASES=("B2-quick 2 2 4 64 speedup=4 rss_frac=0.125" "B8-quick 2 8 4 64 speedup=4 rss_frac=0.125 grow=B2-quick")
else
    CASES=("B16 12 16 12 256 speedup=4 rss_frac=0.125" "B64 12 64 12 256 speedup=4 rss_frac=0.125 grow=B16")
fi

for c in "${CASES[@]}"; do
    read -r name L B H T targets <<< "$c"
    bench_want "$name" || continue
    d="$SCRATCH/data/$name"
    mkdir -p "$d" "$SCRATCH/out"
    echo
    echo "## $name: attn, grad ($L, $B, $H, $T, $T) float32 in jacobian.pt"
    bench_cmd "$PY" "$BENCH/make_inputs.py" jacobian "$d/jacobian.pt" --shape "$L" "$B" "$H" "$T" "${NPY_FLAG[@]}"
    ls -l "$d"
    if ((PT_OK)); then
        tens="    tensors: {attn: {file: jacobian.pt, key: attn}, grad: {file: jacobian.pt, key: grad}}"
        files=("$d/jacobian.pt")
    else
        tens="    tensors: {attn: attn.npy, grad: grad.npy}"
        files=("$d/attn.npy" "$d/grad.npy")
    fi
    bench_config "$SCRATCH/$name.yaml" <<YAML
output: out/$name.h5
models:
  - name: $name
    dir: data/$name
$tens
stages:
  jacobian: {}
YAML
    bench_warm "$d/jacobian.pt"
    bench_measure "$name" notebook "${PYRUN[@]}" "$BENCH/notebook_jacobian.py" "$d/jacobian.pt"
    bench_warm "${files[@]}"
    bench_measure_mpi "$name" "attnstat np=$NP" "$NP" "$ATTNSTAT" run "$SCRATCH/$name.yaml" --quiet
    # shellcheck disable=SC2086
    bench_target "$name" $targets
    rm -f "$d"/*.pt "$d"/*.npy
done
bench_table
bench_footer
