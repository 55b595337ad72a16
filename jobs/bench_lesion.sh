#!/bin/bash
# jobs/bench_lesion.sh [--quick] [--dir DIR] [--keep] [--torch-threads N] [--case NAME]: issue 17,
# head lesions (seed 002, demo 3) on a GPT-2-architecture model of random weights and a 32-token
# prompt, every (layer, head) lesion at the penultimate position:
#   notebook        jobs/bench/lesion_torch.py run: float32 torch, the seed's forward pre-hook on
#                   attn.c_proj and one whole forward pass per lesion
#   lesion_run rows jobs/bench/lesion_run.c: the C forward pass (pipeline/model), one process, one
#                   OpenBLAS thread: the clean pass, then per layer the H lesions as H rows of one
#                   pass over the layers above, at the lesioned position only (what a `lesion`
#                   stage unit computes)
#   lesion_run full the seed's way in C (a whole forward pass per lesion), first layer's H lesions
#                   only in the full case (its wall time is for those; ms per lesion printed below)
# Cases: gpt2-large (36 x 20 x 1280, vocab 50257, 774 M parameters, ~3.1 GB F32, made with torch
# into the scratch folder); --quick: gpt2-tiny (4 x 4 x 128, vocab 1000).
# Targets (single process, before MPI): >= 3x faster than torch, peak RSS <= weights + 25%.
source "$(dirname "$0")/bench/common.sh"
bench_parse_args lesion "$@"
bench_build lesion_run
LESION_RUN="$BENCH_BIN/lesion_run"
PT_OK=1

if ((QUICK)); then
    CASES=("gpt2-tiny 4 4 128 1000 64 4")
else
    CASES=("gpt2-large 36 20 1280 50257 1024 1")
fi

for c in "${CASES[@]}"; do
    read -r name L H E V P full_layers <<< "$c"
    bench_want "$name" || continue
    d="$SCRATCH/data/$name"
    mkdir -p "$d" "$SCRATCH/out"
    bytes=$(( 4 * (V * E + P * E + L * (12 * E * E + 13 * E) + 2 * E) ))
    need_mb=$(( bytes / 1000000 + 500 ))
    avail_mb=$(df -Pm "$SCRATCH" | awk 'NR == 2 { print $4 }')
    echo
    echo "## $name: $L layers x $H heads x $E, vocab $V: $(( bytes / 1000000 )) MB of F32 weights (free: $avail_mb MB)"
    if ((avail_mb < need_mb)); then
        echo "bench: $SCRATCH has $avail_mb MB free, $name needs $need_mb MB" >&2
        exit 1
    fi
    bench_cmd "$PY" "$BENCH/lesion_torch.py" make "$d" --layers "$L" --heads "$H" --embd "$E" --vocab "$V" \
        --positions "$P" --seed 0
    "$PY" -c "import random; random.seed(2); print(' '.join(str(random.randrange($V)) for _ in range(32)))" \
        > "$d/tokens.txt"
    weights_mb=$(( $(stat -c %s "$d/model.safetensors") / 1048576 ))
    bench_warm "$d/model.safetensors"
    bench_measure "$name" "notebook (torch, seed's way)" "${PYRUN[@]}" "$BENCH/lesion_torch.py" run "$d" \
        "$d/tokens.txt" --json "$SCRATCH/out/$name.torch.json"
    bench_warm "$d/model.safetensors"
    bench_measure "$name" "lesion_run rows (1 proc)" env OPENBLAS_NUM_THREADS=1 "$LESION_RUN" "$d" "$d/tokens.txt" \
        --json "$SCRATCH/out/$name.rows.json"
    bench_measure "$name" "lesion_run full, $full_layers layer(s) (1 proc)" env OPENBLAS_NUM_THREADS=1 \
        "$LESION_RUN" "$d" "$d/tokens.txt" --mode full --layers "$full_layers"
    if ((QUICK)); then bench_target "$name" "speedup=3"; else bench_target "$name" "speedup=3" "rss_mb=$(( weights_mb * 125 / 100 ))"; fi
    echo "# per-lesion cost:"
    for f in "$SCRATCH/log.$name".*; do
        grep -hE "lesions" "$f" | sed "s|^|#   ${f##*/log.$name.}: |"
    done
    "$PY" - "$SCRATCH/out/$name.torch.json" "$SCRATCH/out/$name.rows.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
d = max(abs(x - y) for ra, rb in zip(a["delta_logprob"], b["delta_logprob"]) for x, y in zip(ra, rb))
print(f"# torch vs lesion_run rows: max |delta_logprob difference| {d:.2e} (both float32); "
      f"top5 {'equal' if a['top5_clean'] == b['top5_clean'] else 'DIFFER'}")
PY
    rm -f "$d/model.safetensors"
done
bench_table
