#!/bin/bash
# jobs/scaling.sh: strong and weak scaling of `attnstat run` on this machine.
#
#   bash jobs/scaling.sh CONFIG [--ranks 1,2,4,8] [--weak] [--dir DIR]
#
# Strong (default): the same CONFIG at each rank count. Weak (--weak): at N ranks, a generated
# config whose models are N copies of CONFIG's models (names suffixed -w0..-w<N-1>, synthetic seeds
# offset per copy), so the work per rank stays constant; CONFIG's models must be synthetic.
# Each run is `mpirun -np N --oversubscribe --bind-to none $ATTNSTAT run ... -o DIR/<mode>-np<N>.h5`.
# From each results file: /run/rank_busy_seconds, /run/rank_bytes_read and the root start/end
# times; wall time is measured around mpirun (the root times have 1 s resolution; both shown).
# Writes a table to stdout and DIR/<mode>.tsv, and a plot DIR/<mode>.png (jobs/bench/scaling_plot.c,
# PLplot + cairo). Then the projection of jobs/bench/plan_sim.c (attnstat's own cost model and
# scheduler, fitted on the first run; the paper sweep at these ranks and 64, 512; each measured
# run next to its prediction) to stdout and DIR/<mode>-projection.txt. Both programs are CMake
# targets of the build ATTNSTAT comes from: built first with `cmake --build BUILD --target
# scaling_plot plan_sim` (log: DIR/build.log), run as BUILD/jobs/bench/<name>; skipped with a note
# when ATTNSTAT is not in a CMake build folder (e.g. an installed attnstat) or the build fails.
#   speed-up    strong: wall(base) / wall(N) * base; weak (scaled speed-up, the work grows with N):
#               wall(base) / wall(N) * N; base = the first rank count of --ranks
#   efficiency  speed-up / N
#   busy        per-rank seconds computing (mean, max); balance = mean / max (1 = perfect)
#   read MB/s   bytes read by all ranks / wall
#   cpu s, cores  user + system CPU of mpirun and its ranks (/usr/bin/time), and cpu / wall: the cores
#               the run actually got (on a shared machine, less than min(ranks, nproc))
# The machine's core count bounds the speed-up: ranks beyond `nproc` share cores (oversubscribed).
# Environment: ATTNSTAT (default build/attnstat), MPIEXEC (default mpirun), OPENBLAS_NUM_THREADS (1).
set -euo pipefail
AS_ROOT=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "scaling.sh: error: $*" >&2; exit 2; }

config=
ranks=1,2,4,8
mode=strong
dir=$AS_ROOT/out/scaling
while [ $# -gt 0 ]; do
    case $1 in
        --ranks) [ $# -ge 2 ] || die "--ranks needs a list"; ranks=$2; shift 2 ;;
        --weak) mode=weak; shift ;;
        --dir) [ $# -ge 2 ] || die "--dir needs a folder"; dir=$2; shift 2 ;;
        -h | --help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown option '$1'" ;;
        *) [ -z "$config" ] || die "unexpected argument '$1'"; config=$1; shift ;;
    esac
done
[ -n "$config" ] || die "usage: jobs/scaling.sh CONFIG [--ranks 1,2,4,8] [--weak] [--dir DIR]"
[ -r "$config" ] || die "cannot read config '$config'"
[[ $ranks =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "--ranks: '$ranks' is not a list like 1,2,4,8"
ATTNSTAT=${ATTNSTAT:-$AS_ROOT/build/attnstat}
[ -x "$ATTNSTAT" ] || die "no attnstat binary at '$ATTNSTAT' (build it first or set ATTNSTAT)"
MPIEXEC=${MPIEXEC:-mpirun}
PY=/usr/bin/python3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
config=$(cd "$(dirname "$config")" && pwd)/$(basename "$config")

# the plot and projection programs, from the CMake build ATTNSTAT comes from ("" = built)
build=$(cd "$(dirname "$ATTNSTAT")" && pwd)
helpers_missing=
if [ ! -f "$build/CMakeCache.txt" ]; then
    helpers_missing="$ATTNSTAT is not in a CMake build folder: set ATTNSTAT=BUILD/attnstat"
else
    echo "+ cmake --build $build -j2 --target scaling_plot plan_sim > $dir/build.log" >&2
    cmake --build "$build" -j2 --target scaling_plot plan_sim > "$dir/build.log" 2>&1 ||
        helpers_missing="cmake --build $build --target scaling_plot plan_sim failed: see $dir/build.log"
fi

# weak_config N OUT: CONFIG with its models replaced by N copies of each (synthetic only). The specs
# come from `attnstat validate` (every synthetic tensor prints its spec), the rest of the config
# (stages, figures dropped) from the text.
weak_config() {
    "$ATTNSTAT" validate "$config" > "$dir/validate.txt" || die "attnstat validate '$config' failed"
    "$PY" - "$config" "$1" "$2" "$dir/validate.txt" <<'EOF'
import re
import sys
config, n, out, plan = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
specs = {}
for line in open(plan):
    m = re.search(r"synthetic:(\S+) \[", line)
    if m:
        kv = dict(x.split("=", 1) for x in m.group(1).split(","))
        specs.setdefault(kv["model"], kv)
names = [l.split(":")[0][6:] for l in open(plan) if l.startswith("model ")]
missing = [x for x in names if x not in specs]
if missing or not names:
    sys.exit("scaling.sh: error: --weak needs synthetic models; not synthetic: %s" % ", ".join(missing or ["(none found)"]))
# the top-level stages: block, as written
text = open(config).read().splitlines()
stages, inside = [], False
for line in text:
    if re.match(r"stages\s*:", line):
        inside = True
    elif inside and line and not line[0].isspace() and not line.startswith("#"):
        inside = False
    if inside:
        stages.append(line)
with open(out, "w") as f:
    f.write("# generated by jobs/scaling.sh --weak from %s: %d copies of each model\n" % (config, n))
    f.write("output: weak.h5\nmodels:\n")
    for k in range(n):
        for name in names:
            s = specs[name]
            f.write("  - name: %s-w%d\n    synthetic: {layers: %s, heads: %s, seq_len: %s, batch: %s, head_dim: %s, seed: %d}\n"
                    % (name, k, s["layers"], s["heads"], s["seq_len"], s["batch"], s["head_dim"], int(s["seed"]) + 7919 * k))
    f.write("\n".join(stages) + "\n")
EOF
}

tsv=$dir/$mode.tsv
raw=$dir/$mode.raw
: > "$raw"
echo "scaling.sh: $mode scaling of $config at ranks $ranks on $(nproc) cores (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
for n in ${ranks//,/ }; do
    cfg=$config
    if [ "$mode" = weak ]; then
        cfg=$dir/weak-np$n.yaml
        weak_config "$n" "$cfg"
    fi
    out=$dir/$mode-np$n.h5
    cmd=("$MPIEXEC" -np "$n" --oversubscribe --bind-to none "$ATTNSTAT" run "$cfg" -o "$out" --quiet)
    echo "+ ${cmd[*]}" >&2
    timed=()
    [ -x /usr/bin/time ] && timed=(/usr/bin/time -f '%U %S' -o "$dir/$mode-np$n.cpu")
    t0=$(date +%s.%N)
    "${timed[@]}" "${cmd[@]}" || die "the run at $n ranks failed (exit $?)"
    t1=$(date +%s.%N)
    echo "$n $t0 $t1 $out $dir/$mode-np$n.cpu" >> "$raw"
done

# the table, from the results files
"$PY" - "$raw" "$tsv" "$mode" <<'EOF'
import sys
from datetime import datetime
import h5py
import numpy as np
raw, tsv, mode = sys.argv[1:4]
rows = []
for line in open(raw):
    n, t0, t1, path, cpu_file = line.split()
    n = int(n)
    try:
        cpu = sum(float(x) for x in open(cpu_file).read().split()[-2:])
    except (OSError, ValueError):
        cpu = float("nan")
    with h5py.File(path, "r") as f:
        busy = f["run/rank_busy_seconds"][()]
        nbytes = f["run/rank_bytes_read"][()]
        units = f["run/rank_units"][()]
        ts = [datetime.strptime(f.attrs[k], "%Y-%m-%dT%H:%M:%SZ") for k in ("start_time", "end_time")]
        assert f.attrs["complete"] == 1 and int(f.attrs["mpi_size"]) == n, path
    rows.append(dict(ranks=n, wall=float(t1) - float(t0), file_wall=(ts[1] - ts[0]).total_seconds(),
                     busy_mean=busy.mean(), busy_max=busy.max(), busy_sum=busy.sum(), units=int(units.sum()),
                     mbps=nbytes.sum() / 1e6 / (float(t1) - float(t0)), cpu=cpu))
base = rows[0]
cols = ["ranks", "units", "wall_s", "file_wall_s", "speedup", "efficiency", "busy_mean_s", "busy_max_s",
        "balance", "read_MB_per_s", "cpu_s", "cores_used"]
with open(tsv, "w") as out:
    out.write("# %s scaling\n" % mode)
    out.write("\t".join(cols) + "\n")
    print("%s scaling (base: %d rank%s)" % (mode, base["ranks"], "" if base["ranks"] == 1 else "s"))
    print("%5s %6s %8s %8s %8s %6s %9s %9s %7s %9s %8s %6s" % ("ranks", "units", "wall s", "file s", "speedup",
          "eff", "busy avg", "busy max", "balance", "read MB/s", "cpu s", "cores"))
    for r in rows:
        if mode == "strong":
            sp = base["wall"] / r["wall"] * base["ranks"]
        else:  # scaled speed-up: the work grew by ranks / base ranks
            sp = base["wall"] / r["wall"] * r["ranks"]
        eff = sp / r["ranks"]
        bal = r["busy_mean"] / r["busy_max"] if r["busy_max"] > 0 else 1.0
        vals = [r["ranks"], r["units"], r["wall"], r["file_wall"], sp, eff, r["busy_mean"], r["busy_max"], bal, r["mbps"],
                r["cpu"], r["cpu"] / r["wall"]]
        out.write("\t".join(str(v) if isinstance(v, int) else "%.4g" % v for v in vals) + "\n")
        print("%5d %6d %8.2f %8.0f %8.2f %6.2f %9.2f %9.2f %7.3f %9.1f %8.1f %6.2f" % tuple(vals))
print("table: %s" % tsv)
EOF

# the plot
if [ -n "$helpers_missing" ]; then
    echo "plot: skipped ($helpers_missing)"
elif "$build/jobs/bench/scaling_plot" "$tsv" "$dir/$mode.png" "$(nproc)"; then
    echo "plot: $dir/$mode.png"
else
    echo "plot: skipped ($build/jobs/bench/scaling_plot failed; it needs PLplot's cairo driver: apt-get install plplot-driver-cairo)"
fi

# the projection, fitted on the first run; it also predicts each measured run with the driver's
# own plan
if [ -n "$helpers_missing" ]; then
    echo "projection: skipped ($helpers_missing)"
else
    echo
    mapfile -t files < <(awk '{ print $4 }' "$raw")
    "$build/jobs/bench/plan_sim" "${files[0]}" --ranks "$ranks,64,512" --compare "${files[@]}" | tee "$dir/$mode-projection.txt"
fi
