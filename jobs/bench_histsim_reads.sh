#!/bin/bash
# jobs/bench_histsim_reads.sh [--quick] [--dir DIR] [--keep] [--np N]: issue 15, deliverable 3: how
# many times histsim reads each input byte. One float32 qk_mean (L, H, T, T) .npy (8 x 16 x 1024 x
# 1024 = 0.5 GiB; --quick 4 x 8 x 256 x 256), `attnstat run` (np=2) with histsim:
#   exact, cache_mb: 0, spill: off      nothing kept: run() reads the triangles again
#   exact, cache_mb: 0, spill: DIR      the triangles go to a spill file in DIR and back
#   exact, cache_mb: 160 / 4096         kept in memory (while reads run below 4 GB/s)
#   exact, defaults, TMPDIR=DIR         cache_mb: 160 and spill: auto, as under SLURM
#   sampled                             one round over the sampled elements, then the triangles
# With OLD_ATTNSTAT=path (e.g. a build of the commit before), the same exact (cache_mb 0 and 160)
# and sampled rows of that program too. The table: reads = sum of /run/rank_bytes_read / the
# input's bytes, wall time, peak RSS per rank; the exact rows' results must be bitwise identical
# (tests/tools/h5same.py; only the attributes recording cache_mb and spill, and the stage key
# that hashes the options, may differ), and so must the sampled ones. TMPDIR is unset for the
# runs but the one that sets it, so elsewhere `spill: auto` is off.
source "$(dirname "$0")/bench/common.sh"
bench_parse_args histsim_reads "$@"

if ((QUICK)); then
    L=4 H=8 T=256
else
    L=8 H=16 T=1024
fi
d="$SCRATCH/data"
mkdir -p "$d" "$SCRATCH/out" "$SCRATCH/spill"
echo
echo "## qk_mean ($L, $H, $T, $T) float32 .npy"
bench_cmd "$PY" "$BENCH/make_inputs.py" qk "$d/qk_mean.pt" --shape "$L" "$H" "$T" --npy
rm -f "$d/qk_mean.pt"
ls -l "$d"
INPUT_BYTES=$(stat -c %s "$d/qk_mean.npy")

# ROWS: name|program|histsim options|environment (VAR=VALUE or empty)
ROWS=("exact cache_mb:0 spill:off|$ATTNSTAT|{cache_mb: 0, spill: off}"
      "exact cache_mb:0 spill:DIR|$ATTNSTAT|{cache_mb: 0, spill: '$SCRATCH/spill'}"
      "exact cache_mb:160|$ATTNSTAT|{cache_mb: 160}"
      "exact cache_mb:4096|$ATTNSTAT|{cache_mb: 4096}"
      "exact default, TMPDIR=DIR|$ATTNSTAT|{}|TMPDIR=$SCRATCH/spill"
      "sampled|$ATTNSTAT|{quantile: sampled}")
if [[ -n ${OLD_ATTNSTAT:-} ]]; then
    ROWS+=("old: exact cache_mb:0|$OLD_ATTNSTAT|{cache_mb: 0}"
           "old: exact cache_mb:160|$OLD_ATTNSTAT|{cache_mb: 160}"
           "old: sampled|$OLD_ATTNSTAT|{quantile: sampled}")
fi
i=0
for row in "${ROWS[@]}"; do
    IFS='|' read -r name prog opts envs <<< "$row"
    i=$((i + 1))
    bench_config "$SCRATCH/r$i.yaml" <<YAML
output: out/r$i.h5
models:
  - name: m
    tensors: {qk_mean: data/qk_mean.npy}
stages:
  histsim: $opts
YAML
    bench_warm "$d/qk_mean.npy"
    (
        unset TMPDIR
        [[ -z $envs ]] || export "${envs?}"
        bench_measure_mpi reads "$name" "$NP" "$prog" run "$SCRATCH/r$i.yaml" --quiet
    )
    if [[ -n $(ls -A "$SCRATCH/spill") ]]; then
        echo "bench: the spill left files in $SCRATCH/spill" >&2
        exit 1
    fi
done

echo
"$PY" - "$SCRATCH" "$INPUT_BYTES" "$AS_ROOT/tests/tools/h5same.py" "${ROWS[@]}" <<'PY'
import subprocess, sys
import h5py
scratch, input_bytes, h5same, rows = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
res = {}
for line in open(f"{scratch}/results.tsv"):
    case, tool, wall, rss, status = line.rstrip("\n").split("\t")
    res[tool] = (wall, rss, status)
print(f"input: {input_bytes / 2**20:.0f} MiB")
print(f"| {'run (np=2, histsim)':<28} | reads / input | wall s | peak RSS MB/rank | results |")
print(f"|{'-' * 30}|---------------|--------|------------------|---------|")
bad = 0
ref = {}
for i, row in enumerate(rows, 1):
    name = row.split("|")[0]
    wall, rss, status = res.get(name, ("nan", "nan", "missing"))
    path = f"{scratch}/out/r{i}.h5"
    try:
        with h5py.File(path, "r") as f:
            reads = float(f["run/rank_bytes_read"][()].sum()) / input_bytes
    except OSError:
        reads = float("nan")
    kind = "sampled" if "sampled" in name else "exact"
    same = status
    if status == "ok":
        if kind not in ref:
            ref[kind] = path
            same = "reference"
        else:
            out = subprocess.run([sys.executable, h5same, ref[kind], path], capture_output=True, text=True).stdout
            diff = [l for l in out.splitlines() if "items compared" not in l and
                    not any(a in l for a in ("histsim@cache_mb", "histsim@spill", "histsim@key"))]
            same = "identical" if not diff else "DIFFER"
            if diff:
                bad += 1
                print("\n".join("   " + l for l in diff), file=sys.stderr)
    print(f"| {name:<28} | {reads:13.3f} | {float(wall):6.2f} | {rss:>16} | {same} |")
sys.exit(1 if bad else 0)
PY
