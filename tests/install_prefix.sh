#!/bin/bash
# tests/install_prefix.sh: `cmake --install BUILD --prefix TMP/prefix`, then the installed tree:
#   1. PREFIX/bin/attnstat --version prints "attnstat X.Y.Z (<git describe>)", the same as the build's
#   2. the job scripts (PREFIX/share/attnstat/jobs: attnstat.sbatch, attnstat-array.sbatch,
#      submit-array.sh, executable) and PREFIX/share/attnstat/config/demo.yaml are installed, and the
#      installed attnstat validates the installed demo config
#   3. the installed job scripts' binary lookup (`--which`), from a folder with no build/:
#      PREFIX/bin first on PATH and ATTNSTAT unset -> PREFIX/bin/attnstat (both scripts); ATTNSTAT
#      set -> ATTNSTAT; nothing on PATH -> $SLURM_SUBMIT_DIR/build/attnstat; nothing anywhere ->
#      exit 2 and an error naming the places tried; ATTNSTAT set to a missing file -> exit 2
#   4. the installed attnstat.sbatch runs a small config outside Slurm (ATTNSTAT_LAUNCH=mpirun,
#      1 rank) with the attnstat it finds on PATH
#   5. freshness: the build's git describe equals `git -C AS_SRC describe --always --dirty
#      --abbrev=12` (cmake/as_version.cmake takes it at every build; a mismatch = a stale build)
# ctest sets AS_BUILD (the build folder); by hand it defaults to the folder of ATTNSTAT.
source "$(dirname "$0")/lib.sh"
: "${AS_BUILD:=$(cd "$(dirname "$ATTNSTAT")" && pwd)}"
[ -f "$AS_BUILD/cmake_install.cmake" ] || { echo "SKIP: no cmake_install.cmake in '$AS_BUILD' (set AS_BUILD)"; exit 77; }
command -v cmake > /dev/null || { echo "SKIP: no cmake"; exit 77; }

P=$TMP/prefix
JOBS=$P/share/attnstat/jobs
if ! cmake --install "$AS_BUILD" --prefix "$P" > "$TMP/install.log" 2>&1; then
    fail "cmake --install $AS_BUILD --prefix $P"
    sed 's/^/    /' "$TMP/install.log" | tail -20
    finish
    exit
fi
ok "cmake --install $AS_BUILD --prefix TMP/prefix"

# ---- 1. the installed binary and its version
vre='^attnstat [0-9]+\.[0-9]+\.[0-9]+ \(([^()]+)\)$'
iv=$("$P/bin/attnstat" --version 2>&1)
bv=$("$ATTNSTAT" --version 2>&1)
if [[ $iv =~ $vre ]]; then
    ok "PREFIX/bin/attnstat --version: $iv"
else
    fail "PREFIX/bin/attnstat --version printed '$iv', want 'attnstat X.Y.Z (<git describe>)'"
fi
if [ "$iv" = "$bv" ]; then ok "installed and built binaries report the same version"; else fail "installed '$iv' != built '$bv'"; fi

# ---- 2. the job scripts and the demo config
for f in attnstat.sbatch attnstat-array.sbatch submit-array.sh; do
    check_cmd "installed, executable: share/attnstat/jobs/$f" test -f "$JOBS/$f" -a -x "$JOBS/$f"
done
check_cmd "installed: share/attnstat/config/demo.yaml" test -f "$P/share/attnstat/config/demo.yaml"
check_cmd "installed attnstat validates the installed demo config" \
    "$P/bin/attnstat" validate "$P/share/attnstat/config/demo.yaml"

# ---- 3. the binary lookup of the installed scripts
mkdir -p "$TMP/empty" "$TMP/submit/build"
cd "$TMP/empty" || exit 1
# lookup SCRIPT [env args...]: the script's --which, in the environment given (ATTNSTAT and
# SLURM_SUBMIT_DIR unset unless given); stdout to which.out, stderr to which.err
lookup() {
    local script=$1; shift
    env -u ATTNSTAT -u SLURM_SUBMIT_DIR "$@" bash "$script" --which > "$TMP/which.out" 2> "$TMP/which.err"
}
for s in attnstat.sbatch submit-array.sh; do
    if lookup "$JOBS/$s" PATH="$P/bin:$PATH" && [ "$(cat "$TMP/which.out")" = "$P/bin/attnstat" ] &&
        grep -q "from PATH" "$TMP/which.err"; then
        ok "installed $s, ATTNSTAT unset, PREFIX/bin on PATH: picks PREFIX/bin/attnstat"
    else
        fail "installed $s --which with PREFIX/bin on PATH: '$(cat "$TMP/which.out")' ($(cat "$TMP/which.err"))"
    fi
done
if lookup "$JOBS/attnstat.sbatch" PATH="$P/bin:$PATH" ATTNSTAT="$ATTNSTAT" &&
    [ "$(cat "$TMP/which.out")" = "$ATTNSTAT" ]; then
    ok "attnstat.sbatch: ATTNSTAT wins over PATH"
else
    fail "attnstat.sbatch --which with ATTNSTAT set: '$(cat "$TMP/which.out")' ($(cat "$TMP/which.err"))"
fi
lookup "$JOBS/attnstat.sbatch" ATTNSTAT="$TMP/nonexistent"; rc=$?
if [ "$rc" = 2 ] && grep -q "not an executable" "$TMP/which.err"; then
    ok "attnstat.sbatch: a missing ATTNSTAT is an error (exit 2), no fallback"
else
    fail "attnstat.sbatch --which with ATTNSTAT missing: exit $rc ($(cat "$TMP/which.err"))"
fi
# without attnstat on PATH: only system folders, if they hold no attnstat
bare=/usr/bin:/bin
if [ -n "$(PATH=$bare type -P attnstat)" ]; then
    echo "skip PATH-less lookups: $bare has an attnstat"
else
    ln -s "$P/bin/attnstat" "$TMP/submit/build/attnstat"
    if lookup "$JOBS/attnstat.sbatch" PATH="$bare" SLURM_SUBMIT_DIR="$TMP/submit" &&
        [ "$(cat "$TMP/which.out")" = "$TMP/submit/build/attnstat" ]; then
        ok "attnstat.sbatch: nothing on PATH -> \$SLURM_SUBMIT_DIR/build/attnstat"
    else
        fail "attnstat.sbatch --which, SLURM_SUBMIT_DIR set: '$(cat "$TMP/which.out")' ($(cat "$TMP/which.err"))"
    fi
    for s in attnstat.sbatch submit-array.sh; do
        lookup "$JOBS/$s" PATH="$bare"; rc=$?
        if [ "$rc" = 2 ] && grep -q "no attnstat binary (tried ATTNSTAT, attnstat on PATH" "$TMP/which.err"; then
            ok "installed $s: no binary anywhere -> exit 2, names the places tried"
        else
            fail "installed $s --which with no binary: exit $rc, '$(cat "$TMP/which.out")' ($(cat "$TMP/which.err"))"
        fi
    done
fi

# ---- 4. the installed batch script runs, outside Slurm, with the attnstat on PATH
cat > c.yaml <<'EOF'
output: run.h5
models:
  - name: tiny
    synthetic: {layers: 2, heads: 2, seq_len: 16, seed: 5}
stages:
  histsim: {}
EOF
if env -u ATTNSTAT -u SLURM_SUBMIT_DIR -u SLURM_NTASKS -u SLURM_JOB_ID PATH="$P/bin:$PATH" ATTNSTAT_LAUNCH=mpirun \
    bash "$JOBS/attnstat.sbatch" c.yaml --quiet > run.out 2>&1 &&
    grep -q "attnstat from PATH: mpirun -np 1 $P/bin/attnstat run c.yaml --resume --quiet" run.out &&
    "$P/bin/attnstat" summary run.h5 > summary.out 2>&1; then
    ok "installed attnstat.sbatch (ATTNSTAT_LAUNCH=mpirun) runs PREFIX/bin/attnstat from PATH"
else
    fail "installed attnstat.sbatch c.yaml (ATTNSTAT_LAUNCH=mpirun)"
    sed 's/^/    /' run.out summary.out 2>/dev/null | tail -20
fi

# ---- 5. git describe freshness of the build
if describe=$(git -C "$AS_SRC" describe --always --dirty --abbrev=12 2>/dev/null) && [ -n "$describe" ]; then
    [[ $bv =~ $vre ]] && built=${BASH_REMATCH[1]} || built=
    if [ "$built" = "$describe" ]; then
        ok "the build's git describe is current: $describe"
    else
        fail "the build says '$built', git describe says '$describe': rebuild (cmake --build $AS_BUILD) before testing"
    fi
else
    echo "skip freshness: $AS_SRC is not a git checkout"
fi

finish
