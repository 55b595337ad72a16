#!/bin/bash
# jobs/scaling.sh: strong and weak scaling of `attnstat run` on this machine, on files, with the
# time spent reading input apart from the time spent computing.
#
#   bash jobs/scaling.sh CONFIG [--ranks 1,2,4,8] [--weak] [--dir DIR] [--source files|synthetic]
#                               [--no-cold] [--keep-data]
#
# Inputs (--source): `files` (default): CONFIG's built-in synthetic models are first written to
# .npy files (jobs/bench/materialize: the same values, float32) under DIR/data/<model>/ and every
# run reads those files (a config whose models are all files is used as it is). `synthetic`: the
# runs use the generator itself (no files, no read time; jobs/bench_synth.sh shows a synthetic
# run costs 0.95-1.15x the page-cached file run, so this measures compute scaling only).
# Strong (default): the same models at each rank count. Weak (--weak): at N ranks, N copies of each
# model (names suffixed -w0..-w<N-1>), so the work per rank stays constant; with files the copies
# read the same files (no N-fold disk use), with the generator their seeds differ.
#
# At each rank count N, with files, two runs of the same plan (the same units on the same ranks):
#   warm   every input file read into the page cache first (`cat > /dev/null`): busy = compute
#          (+ copying from the page cache, a few % of it)
#   cold   every input file evicted from the page cache first (fsync + posix_fadvise DONTNEED);
#          skipped by --no-cold and in weak mode (copies share files: only the first is cold)
# read s = cold busy - warm busy, per rank: the time a rank waits for storage. No timer inside
# attnstat splits its busy time (the summary log has busy seconds and bytes read per rank only),
# so the split is this difference of two runs; on this VM "storage" is the virtual disk.
# Each run is `mpirun -np N --oversubscribe --bind-to none $ATTNSTAT run CFG -o DIR/<mode>-np<N>-<kind>.h5`;
# from each results file /run/rank_busy_seconds, /run/rank_bytes_read, /run/rank_units and the
# root start/end times; wall time is measured around mpirun (the root times have 1 s resolution).
# Writes a table to stdout and DIR/<mode>.tsv, a plot DIR/<mode>.png (jobs/bench/scaling_plot.c,
# PLplot + cairo), then the projection of jobs/bench/plan_sim.c (attnstat's own cost model and LPT
# scheduler, fitted on the first warm run and, with cold runs, its bytes read per rank-second; the
# paper sweep at these ranks and 64, 512, 4096; each measured run next to its prediction) to stdout
# and DIR/<mode>-projection.txt. Both programs are CMake targets of the build ATTNSTAT comes from:
# built first with `cmake --build BUILD --target scaling_plot plan_sim materialize` (log:
# DIR/build.log), run as BUILD/jobs/bench/<name>; skipped with a note when ATTNSTAT is not in a
# CMake build folder (then --source files needs a config of files).
#   speed-up    strong: wall(base) / wall(N) * base; weak (scaled speed-up, the work grows with N):
#               wall(base) / wall(N) * N; base = the first rank count of --ranks (warm runs)
#   efficiency  speed-up / N
#   compute     per-rank busy seconds of the warm run (mean, max); balance = mean / max
#   read        per-rank cold busy - warm busy (mean, max); disk MB/s = bytes read / read s, per rank
#   MB read     bytes read by all ranks (histsim reads a layer twice when it exceeds cache_mb)
#   cpu s, cores  user + system CPU of mpirun and its ranks (/usr/bin/time), and cpu / wall: the cores
#               the run actually got (on a shared machine, less than min(ranks, nproc))
# The machine's core count bounds the speed-up: ranks beyond `nproc` share cores (oversubscribed).
# --keep-data keeps DIR/data (default: deleted at the end).
# Environment: ATTNSTAT (default build/attnstat), MPIEXEC (default mpirun), OPENBLAS_NUM_THREADS (1).
set -euo pipefail
AS_ROOT=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "scaling.sh: error: $*" >&2; exit 2; }

config=
ranks=1,2,4,8
mode=strong
source=files
cold=1
keep_data=0
dir=$AS_ROOT/out/scaling
while [ $# -gt 0 ]; do
    case $1 in
        --ranks) [ $# -ge 2 ] || die "--ranks needs a list"; ranks=$2; shift 2 ;;
        --weak) mode=weak; shift ;;
        --dir) [ $# -ge 2 ] || die "--dir needs a folder"; dir=$2; shift 2 ;;
        --source) [ $# -ge 2 ] || die "--source needs files or synthetic"; source=$2; shift 2 ;;
        --no-cold) cold=0; shift ;;
        --keep-data) keep_data=1; shift ;;
        -h | --help) sed -n '2,46p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown option '$1'" ;;
        *) [ -z "$config" ] || die "unexpected argument '$1'"; config=$1; shift ;;
    esac
done
[ -n "$config" ] || die "usage: jobs/scaling.sh CONFIG [--ranks 1,2,4,8] [--weak] [--dir DIR] [--source files|synthetic]"
[ -r "$config" ] || die "cannot read config '$config'"
[[ $ranks =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "--ranks: '$ranks' is not a list like 1,2,4,8"
[[ $source == files || $source == synthetic ]] || die "--source: '$source' is not files or synthetic"
ATTNSTAT=${ATTNSTAT:-$AS_ROOT/build/attnstat}
[ -x "$ATTNSTAT" ] || die "no attnstat binary at '$ATTNSTAT' (build it first or set ATTNSTAT)"
MPIEXEC=${MPIEXEC:-mpirun}
PY=/usr/bin/python3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
config=$(cd "$(dirname "$config")" && pwd)/$(basename "$config")
[ "$source" = files ] && [ "$mode" = strong ] || cold=0

# the plot, projection and materialize programs, from the CMake build ATTNSTAT comes from
build=$(cd "$(dirname "$ATTNSTAT")" && pwd)
helpers_missing=
if [ ! -f "$build/CMakeCache.txt" ]; then
    helpers_missing="$ATTNSTAT is not in a CMake build folder: set ATTNSTAT=BUILD/attnstat"
else
    echo "+ cmake --build $build -j2 --target scaling_plot plan_sim materialize > $dir/build.log" >&2
    cmake --build "$build" -j2 --target scaling_plot plan_sim materialize > "$dir/build.log" 2>&1 ||
        helpers_missing="cmake --build $build --target scaling_plot plan_sim materialize failed: see $dir/build.log"
fi

# The models of CONFIG (validate --json) and its stages block (as written) -> DIR/models.json
"$ATTNSTAT" validate "$config" --json > "$dir/validate.json" || die "attnstat validate '$config' failed"
# gen_config N OUT: CONFIG's models as the runs use them (files or generator; N copies when weak),
# with CONFIG's stages block. Prints the input files to warm or evict, one per line, to OUT.files.
gen_config() {
    "$PY" - "$config" "$dir/validate.json" "$1" "$2" "$source" "$mode" "$dir/data" <<'EOF'
import json, os, re, sys
config, vjson, n, out, source, mode, data = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7]
v = json.load(open(vjson))
models = v["models"]
synth = [m for m in models if all(i["format"] == "synthetic" for i in m["inputs"])]
if len(synth) not in (0, len(models)):
    sys.exit("scaling.sh: error: CONFIG mixes synthetic and file models; give one kind")
if not synth and (source == "synthetic" or mode == "weak"):
    sys.exit("scaling.sh: error: --source synthetic and --weak need a config of synthetic models")
files = sorted({i["path"] for m in models for i in m["inputs"] if i["format"] != "synthetic"})
if not synth and mode == "strong":
    open(out, "w").write(open(config).read())  # file models: CONFIG as it is
    open(out + ".files", "w").write("".join(f + "\n" for f in files))
    sys.exit(0)
text = open(config).read().splitlines()
stages, inside = [], False
for line in text:
    if re.match(r"stages\s*:", line):
        inside = True
    elif inside and line and not line[0].isspace() and not line.startswith("#"):
        inside = False
    if inside:
        stages.append(line)
files = set()
with open(out, "w") as f:
    f.write("# generated by jobs/scaling.sh (%s, %s, %d cop%s of each model of %s)\n"
            % (mode, source, n, "y" if n == 1 else "ies", config))
    f.write("output: out.h5\nmodels:\n")
    for k in range(n):
        for m in models:
            kv = dict(x.split("=", 1) for x in m["inputs"][0]["path"].split(":", 1)[1].split(","))
            name = m["name"] + ("-w%d" % k if mode == "weak" else "")
            if source == "synthetic":
                f.write("  - name: %s\n    synthetic: {layers: %s, heads: %s, seq_len: %s, batch: %s, head_dim: %s, seed: %d}\n"
                        % (name, kv["layers"], kv["heads"], kv["seq_len"], kv["batch"], kv["head_dim"], int(kv["seed"]) + 7919 * k))
            else:  # materialized: the same values (spec includes model=<name>), copies share files
                f.write("  - name: %s\n    dir: %s/%s\n    heads: %s\n" % (name, data, m["name"], kv["heads"]))
                files.update("%s/%s/%s.npy" % (data, m["name"], i["name"]) for i in m["inputs"])
    f.write("\n".join(stages) + "\n")
open(out + ".files", "w").write("".join(x + "\n" for x in sorted(files)))
EOF
}

# materialize the synthetic models (files mode): DIR/data/<model>/<tensor>.npy
if [ "$source" = files ]; then
    "$PY" - "$dir/validate.json" > "$dir/materialize.txt" <<'EOF'
import json, sys
for m in json.load(open(sys.argv[1]))["models"]:
    if m["inputs"] and all(i["format"] == "synthetic" for i in m["inputs"]):
        print(m["name"], m["inputs"][0]["path"], " ".join(sorted({i["key"] for i in m["inputs"]})))
EOF
    if [ -s "$dir/materialize.txt" ]; then
        [ -z "$helpers_missing" ] || die "--source files needs jobs/bench/materialize: $helpers_missing"
        need=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["bytes"])' "$dir/validate.json")
        avail=$(df -B1 --output=avail "$dir" | tail -1)
        [ "$need" -lt "$((avail - 1024 * 1024 * 1024))" ] ||
            die "materializing needs $((need / 1000000)) MB in $dir, $((avail / 1000000)) MB free"
        echo "scaling.sh: writing the synthetic models to .npy under $dir/data ($((need / 1000000)) MB)" >&2
        rm -rf "$dir/data"
        while read -r name spec tensors; do
            mkdir -p "$dir/data/$name"
            # shellcheck disable=SC2086
            "$build/jobs/bench/materialize" "$spec" "$dir/data/$name" $tensors > /dev/null ||
                die "materialize $spec failed"
        done < "$dir/materialize.txt"
        sync
        [ "$keep_data" = 1 ] || trap 'rm -rf "$dir/data"' EXIT
    fi
fi

warm() { while read -r f; do cat -- "$f" > /dev/null; done < "$1"; }
evict() {    # drop the files' pages from the page cache (clean pages: fsync first)
    "$PY" - "$1" <<'EOF'
import os, sys
for p in open(sys.argv[1]).read().split():
    fd = os.open(p, os.O_RDONLY)
    os.fsync(fd)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
EOF
}

run_one() {    # run_one N KIND CFG
    local n=$1 kind=$2 cfg=$3
    local out=$dir/$mode-np$n-$kind.h5 cpu=$dir/$mode-np$n-$kind.cpu
    local cmd=("$MPIEXEC" -np "$n" --oversubscribe --bind-to none "$ATTNSTAT" run "$cfg" -o "$out" --quiet)
    echo "+ ${cmd[*]}   # $kind" >&2
    local timed=()
    [ -x /usr/bin/time ] && timed=(/usr/bin/time -f '%U %S' -o "$cpu")
    local t0 t1
    t0=$(date +%s.%N)
    "${timed[@]}" "${cmd[@]}" || die "the $kind run at $n ranks failed (exit $?)"
    t1=$(date +%s.%N)
    echo "$n $kind $t0 $t1 $out $cpu" >> "$raw"
}

tsv=$dir/$mode.tsv
raw=$dir/$mode.raw
: > "$raw"
echo "scaling.sh: $mode scaling of $config ($source) at ranks $ranks on $(nproc) cores (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
for n in ${ranks//,/ }; do
    cfg=$dir/$mode-np$n.yaml
    gen_config "$([ "$mode" = weak ] && echo "$n" || echo 1)" "$cfg" || exit 2
    if [ "$source" = files ]; then
        warm "$cfg.files"
        run_one "$n" warm "$cfg"
        if [ "$cold" = 1 ]; then
            evict "$cfg.files"
            run_one "$n" cold "$cfg"
        fi
    else
        run_one "$n" synthetic "$cfg"
    fi
done

# the table, from the results files
"$PY" - "$raw" "$tsv" "$mode" "$source" <<'EOF'
import sys
from datetime import datetime
import h5py
import numpy as np
raw, tsv, mode, source = sys.argv[1:5]
runs = {}
order = []
for line in open(raw):
    n, kind, t0, t1, path, cpu_file = line.split()
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
    if n not in order:
        order.append(n)
    runs[(n, kind)] = dict(ranks=n, wall=float(t1) - float(t0), file_wall=(ts[1] - ts[0]).total_seconds(),
                           busy=busy, bytes=nbytes, units=int(units.sum()), cpu=cpu, path=path)
main_kind = "synthetic" if source == "synthetic" else "warm"
base = runs[(order[0], main_kind)]
cols = ["ranks", "units", "wall_s", "speedup", "efficiency", "compute_mean_s", "compute_max_s", "balance",
        "cold_wall_s", "read_mean_s", "read_max_s", "disk_MB_per_s", "MB_read", "cpu_s", "cores_used", "file_wall_s"]
nan = float("nan")
with open(tsv, "w") as out:
    out.write("# %s scaling (%s)\n" % (mode, source))
    out.write("\t".join(cols) + "\n")
    what = "generator: compute + generation" if source == "synthetic" else "warm = page-cached files"
    print("%s scaling, %s (base: %d rank%s); compute = busy of the %s run; read = cold busy - warm busy"
          % (mode, source, base["ranks"], "" if base["ranks"] == 1 else "s", main_kind))
    print("| ranks | units | wall s | speed-up | eff | compute s mean / max | balance | cold wall s | read s mean / max | disk MB/s per rank | MB read | cpu s | cores |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n in order:
        r = runs[(n, main_kind)]
        c = runs.get((n, "cold"))
        sp = base["wall"] / r["wall"] * (base["ranks"] if mode == "strong" else r["ranks"])
        eff = sp / r["ranks"]
        bm, bx = r["busy"].mean(), r["busy"].max()
        bal = bm / bx if bx > 0 else 1.0
        if c is not None:
            rd = np.maximum(c["busy"] - r["busy"], 0.0)
            rmean, rmax, cwall = rd.mean(), rd.max(), c["wall"]
            mbps = (c["bytes"] / 1e6 / np.where(rd > 0, rd, nan)).mean()
        else:
            rmean = rmax = cwall = mbps = nan
        vals = [r["ranks"], r["units"], r["wall"], sp, eff, bm, bx, bal, cwall, rmean, rmax, mbps,
                r["bytes"].sum() / 1e6, r["cpu"], r["cpu"] / r["wall"], r["file_wall"]]
        out.write("\t".join(str(v) if isinstance(v, int) else "%.4g" % v for v in vals) + "\n")
        f = lambda x, p=2: "-" if np.isnan(x) else "%.*f" % (p, x)
        print("| %d | %d | %s | %s | %s | %s / %s | %s | %s | %s / %s | %s | %s | %s | %s |"
              % (n, r["units"], f(r["wall"]), f(sp), f(eff), f(bm), f(bx), f(bal, 3), f(cwall), f(rmean), f(rmax),
                 f(mbps, 0), f(r["bytes"].sum() / 1e6, 0), f(r["cpu"], 1), f(r["cpu"] / r["wall"])))
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

# the projection, fitted on the first warm (or synthetic) run; with cold runs, the disk rate of the
# first cold run is shown next to it; it also predicts each measured run with the driver's own plan
if [ -n "$helpers_missing" ]; then
    echo "projection: skipped ($helpers_missing)"
else
    echo
    kind=$([ "$source" = synthetic ] && echo synthetic || echo warm)
    mapfile -t files < <(awk -v k="$kind" '$2 == k { print $5 }' "$raw")
    cold_arg=()
    if [ "$cold" = 1 ]; then
        cold_arg=(--cold "$(awk '$2 == "cold" { print $5; exit }' "$raw")")
    fi
    "$build/jobs/bench/plan_sim" "${files[0]}" "${cold_arg[@]}" --ranks "$ranks,64,512,4096" --compare "${files[@]}" |
        tee "$dir/$mode-projection.txt"
fi
