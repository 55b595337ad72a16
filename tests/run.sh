#!/bin/bash
# tests/run.sh: install what is missing, build, and run the whole test suite (ctest).
# Options: --asan also builds with AddressSanitizer + UndefinedBehaviorSanitizer in build-asan
# and runs the suite there too (all but the SLURM and fuzz tests, which the first pass ran; leak
# detection off: Open MPI and HDF5 keep allocations until exit).
set -euo pipefail
AS_ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$AS_ROOT/jobs/deps.sh"
as_install_missing "${AS_BUILD_DEPS[@]}" "${AS_TEST_DEPS[@]}"
as_build build -DAS_WERROR=ON
cd "$AS_ROOT/build"
ctest --output-on-failure -j 2 --timeout 1200
if [ "${1:-}" = "--asan" ]; then
    as_build build-asan -DAS_SANITIZE=ON
    cd "$AS_ROOT/build-asan"
    ASAN_OPTIONS=detect_leaks=0 ctest --output-on-failure -j 2 --timeout 2400 -E "slurm|fuzz"
fi
