# shellcheck shell=bash disable=SC2034
# jobs/bench/common.sh: shared by jobs/bench_*.sh (source it; do not run it).
#
# Options every benchmark takes:
#   --quick            small shapes (< 1 minute): checks that the script works
#   --dir DIR          scratch folder for inputs and results (default /tmp/attnstat-bench/<name>)
#   --keep             keep the scratch folder at the end
#   --np N             MPI ranks for attnstat (default 2)
#   --torch-threads N  torch.set_num_threads for the notebook (default: torch's own default)
#   --case NAME        only the case NAME (e.g. mpt-7b; the table's first column names them)
# Environment: ATTNSTAT (the attnstat to measure, used as is; default build/attnstat, brought up to
# date first with `cmake --build build --target attnstat`), PY (default /usr/bin/python3).
# The benchmark programs (read_layers, sgemm_peak: targets of jobs/bench/CMakeLists.txt) are built
# with `cmake --build BENCH_BUILD --target NAME` and run as BENCH_BUILD/jobs/bench/NAME; BENCH_BUILD
# is the folder of ATTNSTAT when that is a CMake build, else build/ (configured if needed).

set -euo pipefail

AS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH="$AS_ROOT/jobs/bench"
PY=${PY:-/usr/bin/python3}
if [[ -n ${ATTNSTAT:-} ]]; then
    ATTNSTAT_GIVEN=1
    BENCH_BUILD=$(dirname "$ATTNSTAT")
    [[ -f $BENCH_BUILD/CMakeCache.txt ]] || BENCH_BUILD="$AS_ROOT/build"
else
    ATTNSTAT_GIVEN=0
    BENCH_BUILD="$AS_ROOT/build"
    ATTNSTAT="$BENCH_BUILD/attnstat"
fi
BENCH_BIN="$BENCH_BUILD/jobs/bench"
QUICK=0
KEEP=0
NP=2
TORCH_THREADS=""
SCRATCH=""
ONLY_CASE=""
# Address-space cap for the notebook runs (KiB): a notebook that needs more fails with
# "can't allocate memory" (reported as OOM) instead of pushing the machine into swap/OOM-kill.
NB_ULIMIT_KB=${NB_ULIMIT_KB:-$((20 * 1024 * 1024))}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

bench_usage() {
    sed -n '4,15p' "$BENCH/common.sh" | sed 's/^# \{0,1\}//'
}

bench_parse_args() {    # bench_parse_args NAME "$@"
    local name=$1
    shift
    while (($#)); do
        case $1 in
            --quick) QUICK=1 ;;
            --keep) KEEP=1 ;;
            --dir) SCRATCH=${2:?--dir needs a folder}; shift ;;
            --dir=*) SCRATCH=${1#--dir=} ;;
            --np) NP=${2:?--np needs a number}; shift ;;
            --torch-threads) TORCH_THREADS=${2:?--torch-threads needs a number}; shift ;;
            --case) ONLY_CASE=${2:?--case needs a name}; shift ;;
            -h|--help) bench_usage; exit 0 ;;
            *) echo "bench: unknown option '$1'" >&2; bench_usage >&2; exit 2 ;;
        esac
        shift
    done
    SCRATCH=${SCRATCH:-/tmp/attnstat-bench/$name}
    mkdir -p "$SCRATCH"
    SCRATCH=$(cd "$SCRATCH" && pwd)
    RESULTS="$SCRATCH/results.tsv"
    TARGETS="$SCRATCH/targets.tsv"
    : > "$RESULTS"
    : > "$TARGETS"
    if ((KEEP == 0)); then
        trap 'bench_cleanup' EXIT
    fi
    bench_check_tools
    bench_set_pyrun
    echo "# scratch: $SCRATCH  mode: $( ((QUICK)) && echo quick || echo full )  np: $NP"
    echo "# torch threads (notebook): ${TORCH_THREADS:-default=$("$PY" -c 'import torch; print(torch.get_num_threads())')}"
    echo "# attnstat: $ATTNSTAT ($("$ATTNSTAT" --version 2>&1 | head -1))"
}

bench_cleanup() {
    local rc=$?
    if [[ -n ${SCRATCH:-} && -d $SCRATCH ]]; then
        rm -rf -- "$SCRATCH"
        echo "# removed $SCRATCH (use --keep to keep it)"
    fi
    return $rc
}

bench_check_tools() {
    if [[ ! -x $PY ]]; then
        echo "bench: $PY not found: the benchmarks need Debian's python3 (apt-get install python3-torch python3-numpy python3-h5py)" >&2
        exit 1
    fi
    if ! "$PY" -c 'import torch, numpy, h5py' 2>/dev/null; then
        echo "bench: $PY cannot import torch, numpy and h5py: apt-get install -y python3-torch python3-numpy python3-h5py" >&2
        exit 1
    fi
    if [[ ! -x /usr/bin/time ]]; then
        echo "# /usr/bin/time missing: apt-get install -y time"
        apt-get install -y time >/dev/null || { echo "bench: cannot install the 'time' package" >&2; exit 1; }
    fi
    command -v mpirun >/dev/null || { echo "bench: mpirun not found (apt-get install openmpi-bin)" >&2; exit 1; }
    if ((ATTNSTAT_GIVEN == 0)); then
        bench_build attnstat
    elif [[ ! -x $ATTNSTAT ]]; then
        echo "bench: ATTNSTAT='$ATTNSTAT' is not an executable (unset it to use build/attnstat, built here)" >&2
        exit 1
    fi
}

# bench_build TARGET...: build CMake targets in BENCH_BUILD (configured first if it is not yet a
# build); the output goes to SCRATCH/build.log, shown when the build fails.
bench_build() {
    local log="$SCRATCH/build.log"
    if [[ ! -f $BENCH_BUILD/CMakeCache.txt ]]; then
        echo "+ cmake -S $(printf '%q' "$AS_ROOT") -B $(printf '%q' "$BENCH_BUILD")"
        cmake -S "$AS_ROOT" -B "$BENCH_BUILD" > "$log" 2>&1 || { cat "$log" >&2; echo "bench: cmake configure failed" >&2; exit 1; }
    fi
    echo "+ cmake --build $(printf '%q' "$BENCH_BUILD") -j2 --target $*"
    if ! cmake --build "$BENCH_BUILD" -j2 --target "$@" > "$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "bench: cmake --build $BENCH_BUILD --target $* failed" >&2
        exit 1
    fi
}

# Print a command (shell-quoted) and run it.
bench_cmd() {
    echo "+ $(printf '%q ' "$@")"
    "$@"
}

# The notebook's python: PYRUN=(...) (torch's default thread count unless --torch-threads).
bench_set_pyrun() {
    PYRUN=(env BENCH_TORCH_THREADS="$TORCH_THREADS" "$PY")
}

bench_warm() {    # read files into the page cache
    local f
    for f in "$@"; do cat -- "$f" > /dev/null; done
}

# Does this attnstat read .pt files? (0 = yes)
bench_pt_ok() {
    "$ATTNSTAT" inspect "$1" > /dev/null 2>&1
}

# time -v fields: wall seconds, max RSS MB
_tv_wall() {
    awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, a, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + a[i]; print s }' "$1"
}
_tv_rss_mb() {
    awk -F': ' '/Maximum resident set size/ { printf "%.1f\n", $2 / 1024 }' "$1"
}

# bench_measure CASE TOOL cmd...: one process under /usr/bin/time -v; records a row of RESULTS.
# TOOL "notebook*" runs under the address-space cap; exit 99 (or an allocation failure) = OOM.
bench_measure() {
    local case=$1 tool=$2
    shift 2
    local tv="$SCRATCH/time.$$.$RANDOM" rc=0 status=ok
    echo "+ $(printf '%q ' "$@")   # case=$case tool=$tool"
    if [[ $tool == notebook* ]]; then
        ( ulimit -v "$NB_ULIMIT_KB"; exec /usr/bin/time -v -o "$tv" "$@" ) > "$tv.out" 2>&1 || rc=$?
    else
        /usr/bin/time -v -o "$tv" "$@" > "$tv.out" 2>&1 || rc=$?
    fi
    if ((rc != 0)); then
        if ((rc == 99)) || grep -qiE "can't allocate memory|out of memory|MemoryError|cannot allocate" "$tv.out"; then
            status=OOM
        else
            status="exit$rc"
        fi
        echo "  -> $tool failed ($status); last lines:" >&2
        tail -n 5 "$tv.out" | sed 's/^/     /' >&2
    fi
    local wall rss
    wall=$(_tv_wall "$tv" 2>/dev/null || true)
    rss=$(_tv_rss_mb "$tv" 2>/dev/null || true)
    printf '%s\t%s\t%s\t%s\t%s\n' "$case" "$tool" "${wall:-nan}" "${rss:-nan}" "$status" >> "$RESULTS"
    echo "  -> wall ${wall:-?} s, peak RSS ${rss:-?} MB, $status"
    cp "$tv.out" "$SCRATCH/log.$(echo "$case.$tool" | tr -c 'A-Za-z0-9_.=-' _)"
    rm -f "$tv" "$tv.out"
}

# bench_measure_mpi CASE TOOL NP cmd...: whole mpirun wall time; RSS = max over ranks of each
# rank's own /usr/bin/time -v (jobs/bench/rankwrap.sh).
bench_measure_mpi() {
    local case=$1 tool=$2 np=$3
    shift 3
    local tv="$SCRATCH/time.$$.$RANDOM" rc=0 status=ok
    local cmd=(mpirun -np "$np" "$BENCH/rankwrap.sh" "$tv.rank" "$@")
    echo "+ OPENBLAS_NUM_THREADS=1 $(printf '%q ' "${cmd[@]}")   # case=$case tool=$tool"
    OPENBLAS_NUM_THREADS=1 /usr/bin/time -v -o "$tv" "${cmd[@]}" > "$tv.out" 2>&1 || rc=$?
    if ((rc != 0)); then
        status="exit$rc"
        echo "  -> $tool failed ($status); last lines:" >&2
        tail -n 5 "$tv.out" | sed 's/^/     /' >&2
    fi
    local wall rss=0 r f
    wall=$(_tv_wall "$tv" 2>/dev/null || true)
    local per=""
    for ((r = 0; r < np; r++)); do
        f="$tv.rank.$r"
        if [[ -f $f ]]; then
            local x
            x=$(_tv_rss_mb "$f")
            per+="${per:+ }$x"
            rss=$(awk -v a="$rss" -v b="$x" 'BEGIN { print (b > a ? b : a) }')
        fi
    done
    printf '%s\t%s\t%s\t%s\t%s\n' "$case" "$tool" "${wall:-nan}" "$rss" "$status" >> "$RESULTS"
    echo "  -> wall ${wall:-?} s, peak RSS per rank: $per MB, $status"
    cp "$tv.out" "$SCRATCH/log.$(echo "$case.$tool" | tr -c 'A-Za-z0-9_.=-' _)"
    rm -f "$tv" "$tv.out" "$tv".rank.*
}

# bench_target CASE KEY=VALUE...: targets of a case (attnstat vs notebook), checked by table.py.
#   speedup=X      notebook wall / attnstat wall >= X
#   grow=C         notebook wall / attnstat wall > the same ratio of case C (the ratio grows)
#   rss_mb=X       attnstat peak RSS per rank <= X MB
#   rss_frac=X     attnstat peak RSS per rank <= X * notebook's
#   wall=X         attnstat wall <= X s
bench_target() {
    local case=$1
    shift
    printf '%s\t%s\n' "$case" "$*" >> "$TARGETS"
}

bench_want() {    # bench_want CASE: true when --case is not given or names CASE
    [[ -z $ONLY_CASE || $ONLY_CASE == "$1" ]] || return 1
    BENCH_MATCHED=1
}

bench_table() {
    if [[ -n $ONLY_CASE && -z ${BENCH_MATCHED:-} ]]; then
        echo "bench: no case named '$ONLY_CASE'" >&2
        exit 2
    fi
    echo
    "$PY" "$BENCH/table.py" "$RESULTS" "$TARGETS"
    ((QUICK == 0)) || echo "(quick mode: small shapes; the targets are for the full shapes)"
}

# PT_OK=1 if attnstat reads torch.save files, else 0 (then inputs get a .npy copy and the
# configs name the .npy; the table says so).
bench_detect_pt() {
    local probe="$SCRATCH/probe.pt"
    "$PY" -c "import torch; torch.save(torch.zeros(2, 2, 4, 4), '$probe')"
    if bench_pt_ok "$probe"; then
        PT_OK=1
        echo "# attnstat reads .pt: yes (configs read the same .pt files as the notebook)"
    else
        PT_OK=0
        echo "# attnstat reads .pt: NO ('$ATTNSTAT inspect probe.pt' fails: $("$ATTNSTAT" inspect "$probe" 2>&1 | head -1))"
        echo "# FALLBACK: attnstat reads a .npy copy of the same values; the notebook reads the .pt"
    fi
    rm -f "$probe"
    NPY_FLAG=()
    ((PT_OK)) || NPY_FLAG=(--npy)
}

# bench_config FILE: write stdin to FILE and show it.
bench_config() {
    cat > "$1"
    echo "# config $1:"
    sed 's/^/#   /' "$1"
}

bench_footer() {
    ((PT_OK)) || echo "NOTE: attnstat read .npy copies of the inputs (its .pt reader is not in this build); the notebook read the .pt files."
}
