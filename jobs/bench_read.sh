#!/bin/bash
# jobs/bench_read.sh [--quick] [--dir DIR] [--keep]: issue 3, reading a float32 .pt of BLOOM's
# shape (70,112,256,256) layer by layer from the page cache through attnstat's readers
# (jobs/bench/read_layers.c: as_tensor_file_open + as_tensor_file_read of {1,H,T,T} slabs; the
# CMake target read_layers, built in the build attnstat comes from, see jobs/bench/common.sh),
# 1 process and 2 processes at once (each half the layers), next to torch.load of the same file.
# Targets: >= 1 GB/s per process, peak RSS <= one layer (29 MB) + 64 MB.
source "$(dirname "$0")/bench/common.sh"
bench_parse_args read "$@"

if ((QUICK)); then
    L=8 H=16 T=128
else
    L=70 H=112 T=256
fi
LAYER_MB=$(awk -v h="$H" -v t="$T" 'BEGIN { printf "%.1f", h * t * t * 4 / 1048576 }')
RSS_MAX=$(awk -v a="$LAYER_MB" 'BEGIN { printf "%.1f", a + 64 }')

# ---- the driver
bench_build read_layers
RL="$BENCH_BIN/read_layers"

d="$SCRATCH/data"
mkdir -p "$d"
echo
echo "## qk_mean ($L, $H, $T, $T) float32: one layer = $LAYER_MB MB"
bench_cmd "$PY" "$BENCH/make_inputs.py" qk "$d/qk_mean.pt" --shape "$L" "$H" "$T"
F="$d/qk_mean.pt"
if ! "$RL" "$F" 0 1 > /dev/null 2> "$SCRATCH/rl.err"; then
    echo "bench_read.sh: $RL cannot read $F: $(head -1 "$SCRATCH/rl.err")" >&2
    exit 1
fi
ls -l "$d"

ROWS="$SCRATCH/read.tsv"
: > "$ROWS"
measure() {    # measure LABEL TIMEFILE: append a row from read_layers' output and time -v
    local label=$1 tv=$2 out=$3
    local wall rss
    wall=$(_tv_wall "$tv")
    rss=$(_tv_rss_mb "$tv")
    printf '%s\t%s\t%s\t%s\n' "$label" "$wall" "$rss" "$(cat "$out")" >> "$ROWS"
}

echo
bench_warm "$F"
echo "+ /usr/bin/time -v $RL $F"
/usr/bin/time -v -o "$SCRATCH/t1" "$RL" "$F" > "$SCRATCH/o1"
cat "$SCRATCH/o1"
measure "attnstat reader, 1 process (layers 0-$((L - 1)))" "$SCRATCH/t1" "$SCRATCH/o1"

bench_warm "$F"
h=$((L / 2))
echo "+ /usr/bin/time -v $RL $F 0 $h & /usr/bin/time -v $RL $F $h $((L - h))   # concurrently"
/usr/bin/time -v -o "$SCRATCH/t2a" "$RL" "$F" 0 "$h" > "$SCRATCH/o2a" &
/usr/bin/time -v -o "$SCRATCH/t2b" "$RL" "$F" "$h" "$((L - h))" > "$SCRATCH/o2b" &
wait
cat "$SCRATCH/o2a" "$SCRATCH/o2b"
measure "attnstat reader, 2 processes: #0 (layers 0-$((h - 1)))" "$SCRATCH/t2a" "$SCRATCH/o2a"
measure "attnstat reader, 2 processes: #1 (layers $h-$((L - 1)))" "$SCRATCH/t2b" "$SCRATCH/o2b"

bench_warm "$d/qk_mean.pt"
echo "+ /usr/bin/time -v $PY $BENCH/torch_load.py $d/qk_mean.pt"
/usr/bin/time -v -o "$SCRATCH/t3" "$PY" "$BENCH/torch_load.py" "$d/qk_mean.pt" > "$SCRATCH/o3"
cat "$SCRATCH/o3"
sed -E 's/.* ([0-9.]+) GB in ([0-9.]+) s = ([0-9.]+) GB\/s/reader=torch.load seconds=\2 gbps=\3/' "$SCRATCH/o3" > "$SCRATCH/o3b"
measure "torch.load (whole tensor, .pt)" "$SCRATCH/t3" "$SCRATCH/o3b"

echo
"$PY" - "$ROWS" "$RSS_MAX" "$LAYER_MB" <<'PYEOF'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
rss_max, layer_mb = float(sys.argv[2]), float(sys.argv[3])
head = ("reader", "format", "wall s (process)", "read s", "GB/s per process", "peak RSS MB", "target", "PASS/FAIL")
out = []
for label, wall, rss, kv in rows:
    f = dict(x.split("=", 1) for x in kv.split())
    gbps = float(f["gbps"])
    if label.startswith("torch"):
        t, ok = "", ""
    else:
        ok = "PASS" if gbps >= 1.0 and float(rss) <= rss_max else "FAIL"
        t = f">=1 GB/s, RSS<={rss_max:.0f}MB ({layer_mb:.0f}+64)"
    out.append((label, f.get("reader", "?"), f"{float(wall):.2f}", f"{float(f['seconds']):.3f}", f"{gbps:.2f}",
                f"{float(rss):.0f}", t, ok))
w = [max(len(r[i]) for r in out + [head]) for i in range(len(head))]
fmt = "  ".join("{:<%d}" % x for x in w)
print(fmt.format(*head))
print("  ".join("-" * x for x in w))
for r in out:
    print(fmt.format(*r))
PYEOF
((QUICK == 0)) || echo "(quick mode: small shapes; the targets are for the full shapes)"
