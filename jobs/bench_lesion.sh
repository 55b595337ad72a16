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
#   attnstat np=2   `mpirun -np 2 attnstat run` with the lesion stage: all L x H lesions, the
#                   pipeline (units per layer over 2 ranks, results file); peak RSS per rank
# Cases: gpt2-large (36 x 20 x 1280, vocab 50257, 774 M parameters, ~3.1 GB F32, made with torch
# into the scratch folder); --quick: gpt2-tiny (4 x 4 x 128, vocab 1000).
# torch's way costs one whole forward pass per lesion (the same for every lesion), so in the
# full case it runs TORCH_LAYERS layers' lesions (default 2: 40 of 720; all in --quick) and the
# table's last lines scale its per-lesion time to all of them (its clean pass and load added).
# Targets: attnstat np=2 >= 3x faster than torch's way for all lesions, peak RSS per rank <=
# weights + 25%.
source "$(dirname "$0")/bench/common.sh"
bench_parse_args lesion "$@"
bench_build lesion_run
LESION_RUN="$BENCH_BIN/lesion_run"
PT_OK=1

if ((QUICK)); then
    CASES=("gpt2-tiny 4 4 128 1000 64 4")
else
    CASES=("gpt2-large 36 20 1280 50257 1024 1")
    TORCH_LAYERS=${TORCH_LAYERS:-2}
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
    torch_layers=$L
    ((QUICK)) || torch_layers=$TORCH_LAYERS
    bench_measure "$name" "notebook (torch, seed's way), $torch_layers of $L layers" "${PYRUN[@]}" \
        "$BENCH/lesion_torch.py" run "$d" "$d/tokens.txt" --layers "$torch_layers" --json "$SCRATCH/out/$name.torch.json"
    torch_log=$(ls "$SCRATCH/log.$name".notebook* | head -1)
    bench_warm "$d/model.safetensors"
    cat > "$SCRATCH/out/$name.yaml" <<YAML
output: $SCRATCH/out/$name.h5
models: [{name: $name, weights: $d}]
stages: {lesion: {tokens: $d/tokens.txt}}
YAML
    bench_measure_mpi "$name" "attnstat np=$NP (lesion stage, all lesions)" "$NP" "$ATTNSTAT" run \
        "$SCRATCH/out/$name.yaml" --quiet
    bench_warm "$d/model.safetensors"
    bench_measure "$name" "lesion_run rows (1 proc)" env OPENBLAS_NUM_THREADS=1 "$LESION_RUN" "$d" "$d/tokens.txt" \
        --json "$SCRATCH/out/$name.rows.json"
    bench_measure "$name" "lesion_run full, $full_layers layer(s) (1 proc)" env OPENBLAS_NUM_THREADS=1 \
        "$LESION_RUN" "$d" "$d/tokens.txt" --mode full --layers "$full_layers"
    if ((QUICK)); then bench_target "$name" "speedup=3"; else bench_target "$name" "rss_mb=$(( weights_mb * 125 / 100 ))"; fi  # the speed-up: the last lines
    echo "# per-lesion cost:"
    for f in "$SCRATCH/log.$name".*; do
        grep -hE "lesions" "$f" | sed "s|^|#   ${f##*/log.$name.}: |" || true
    done
    "$PY" - "$SCRATCH/out/$name.torch.json" "$SCRATCH/out/$name.rows.json" "$SCRATCH/out/$name.h5" "$torch_log" \
        "$RESULTS" "$name" "$L" "$H" <<'PY'
import json, re, sys
import h5py
a, b = (json.load(open(p)) for p in sys.argv[1:3])
n = len(a["delta_logprob"])   # the layers torch lesioned
d = max(abs(x - y) for ra, rb in zip(a["delta_logprob"], b["delta_logprob"][:n]) for x, y in zip(ra, rb))
print(f"# torch vs lesion_run rows: max |delta_logprob difference| {d:.2e} over {n} layers (both float32); "
      f"top5 {'equal' if a['top5_clean'] == b['top5_clean'] else 'DIFFER'}")
g = h5py.File(sys.argv[3])[f"/models/{sys.argv[6]}/lesion"]
dp = max(abs(x - y) for ra, rb in zip(a["delta_logprob"], g["delta_logprob"][()][:n]) for x, y in zip(ra, rb))
print(f"# torch vs attnstat (lesion stage): max |delta_logprob difference| {dp:.2e} over {n} layers")
log = open(sys.argv[4]).read()
m = re.search(r"load ([\d.]+) s, clean pass ([\d.]+) s, (\d+) lesions ([\d.]+) s", log)
L, H = int(sys.argv[7]), int(sys.argv[8])
if m:
    load, clean, k, t = float(m[1]), float(m[2]), int(m[3]), float(m[4])
    full = load + clean + t / k * L * H
    rows = [r.split("\t") for r in open(sys.argv[5]).read().splitlines() if r.startswith(sys.argv[6] + "\t")]
    ours = [float(r[2]) for r in rows if r[1].startswith("attnstat")]
    print(f"# torch, the seed's way, all {L * H} lesions: {full:.1f} s (load {load:.1f} s + clean {clean:.2f} s + "
          f"{L * H} x {t / k:.3f} s measured on {k}); attnstat np=2: {ours[0]:.1f} s -> {full / ours[0]:.1f}x faster"
          if ours else "# attnstat row missing")
PY
    rm -f "$d/model.safetensors"
done
bench_table
