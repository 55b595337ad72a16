# tests/lib.sh: shared helpers for the script tests (sourced). ctest sets ATTNSTAT, AS_SRC, AS_PY,
# MPIEXEC and the Open MPI root/oversubscribe variables; running a script by hand works too.
set -u
: "${AS_SRC:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${ATTNSTAT:=$AS_SRC/build/attnstat}"
: "${AS_PY:=/usr/bin/python3}"
: "${MPIEXEC:=mpirun}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
export OMPI_MCA_rmaps_base_oversubscribe=1
TMP=$(mktemp -d /tmp/attnstat-test.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
FAILS=0
PASSES=0

# run_np N ARGS...: attnstat under mpirun with N ranks; prints the command on failure.
run_np() {
    local n=$1; shift
    "$MPIEXEC" -np "$n" --oversubscribe "$ATTNSTAT" "$@"
}

ok() { PASSES=$((PASSES + 1)); echo "ok   $*"; }
fail() { FAILS=$((FAILS + 1)); echo "FAIL $*"; }

# check_cmd DESC CMD...: the command must succeed
check_cmd() {
    local desc=$1; shift
    if "$@" > "$TMP/last.out" 2>&1; then ok "$desc"; else fail "$desc: $*"; sed 's/^/    /' "$TMP/last.out" | tail -20; fi
}

finish() {
    echo "$PASSES passed, $FAILS failed"
    [ "$FAILS" -eq 0 ]
}
