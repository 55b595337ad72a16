#!/bin/bash
# jobs/demo.sh: install what is missing, build, and run the demo pipeline on the built-in
# synthetic models with 2 MPI ranks. Results: out/demo.h5, summary log: out/demo.log.
set -euo pipefail
AS_ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$AS_ROOT/jobs/deps.sh"
as_install_missing "${AS_BUILD_DEPS[@]}"
as_build build
cd "$AS_ROOT"
mpirun -np 2 build/attnstat run config/demo.yaml
echo
cat out/demo.log
echo
echo "demo done: results in $AS_ROOT/out/demo.h5, summary log in $AS_ROOT/out/demo.log"
