#!/bin/bash
# jobs/bench/rankwrap.sh PREFIX CMD...: run one MPI rank under /usr/bin/time -v, report in PREFIX.<rank>.
out=$1
shift
exec /usr/bin/time -v -o "$out.${OMPI_COMM_WORLD_RANK:-${PMIX_RANK:-0}}" "$@"
