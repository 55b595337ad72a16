#!/bin/bash
# jobs/submit-array.sh: array mode. Splits a config's models into N groups, submits a job array
# whose task i runs `attnstat run CONFIG --models <group i> -o OUT.part<i>.h5` (jobs/attnstat-array.sbatch,
# resumable and requeued like jobs/attnstat.sbatch), then a job that waits for every task
# (--dependency=afterok) and runs `attnstat merge OUT OUT.part0.h5 ...`.
#
#   jobs/submit-array.sh CONFIG [--groups N] [-o OUT.h5] [-- sbatch options for the tasks]
#   e.g. jobs/submit-array.sh config/sweep.yaml --groups 8 -- -n 16 -t 04:00:00
#   jobs/submit-array.sh --which     print the attnstat binary the jobs would run, and why; no jobs
#
# Groups balance the input bytes `attnstat validate --json` reports per model (longest first, each to the
# lightest group); OUT defaults to the config's output. The group lists go to OUT.groups. Prints
# "array job A, merge job M" and, last, the line "ARRAY_JOB=A MERGE_JOB=M" for scripts.
# The binary (jobs never build), the first of: $ATTNSTAT if set; `attnstat` on PATH (type -P: an
# installed one, cmake --install puts it in PREFIX/bin); $PWD/build/attnstat (run from a source
# checkout); build/attnstat of the checkout this script is in. None: exit 2 with the places
# tried. Its absolute path is exported as ATTNSTAT, so every task and the merge job run it.
# Slurm's SBATCH_* input variables (SBATCH_PARTITION, SBATCH_ACCOUNT, ...) apply to both jobs. If
# a task fails for good, the merge job is cancelled (--kill-on-invalid-dep=yes); fix it, rerun the
# task and merge by hand.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
die() { echo "submit-array.sh: error: $*" >&2; exit 2; }

# find_attnstat: ATTNSTAT = the binary (absolute), ATTNSTAT_FROM = the rule that found it
find_attnstat() {
    local c
    if [ -n "${ATTNSTAT:-}" ]; then
        if [ ! -f "$ATTNSTAT" ] || [ ! -x "$ATTNSTAT" ]; then
            die "ATTNSTAT='$ATTNSTAT' is not an executable file (unset it to look on PATH)"
        fi
        ATTNSTAT_FROM=ATTNSTAT
    elif c=$(type -P attnstat); then
        ATTNSTAT=$c ATTNSTAT_FROM=PATH
    elif [ -f "$PWD/build/attnstat" ] && [ -x "$PWD/build/attnstat" ]; then
        ATTNSTAT=$PWD/build/attnstat ATTNSTAT_FROM="build/attnstat"
    elif [ -f "$here/../build/attnstat" ] && [ -x "$here/../build/attnstat" ]; then
        ATTNSTAT=$here/../build/attnstat ATTNSTAT_FROM="the checkout of $0"
    else
        die "no attnstat binary (tried ATTNSTAT, attnstat on PATH, $PWD/build/attnstat," \
            "$here/../build/attnstat): install it (cmake --install BUILD --prefix PREFIX; PREFIX/bin" \
            "on PATH), or set ATTNSTAT; jobs never build"
    fi
    ATTNSTAT=$(cd "$(dirname "$ATTNSTAT")" && pwd)/$(basename "$ATTNSTAT")
}

config=
groups=4
out=
while [ $# -gt 0 ]; do
    case $1 in
        --groups) [ $# -ge 2 ] || die "--groups needs a number"; groups=$2; shift 2 ;;
        -o | --output) [ $# -ge 2 ] || die "$1 needs a file name"; out=$2; shift 2 ;;
        --) shift; break ;;
        --which) find_attnstat; echo "$ATTNSTAT"; echo "submit-array.sh: attnstat: $ATTNSTAT (from $ATTNSTAT_FROM)" >&2; exit 0 ;;
        -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown option '$1'" ;;
        *) [ -z "$config" ] || die "unexpected argument '$1'"; config=$1; shift ;;
    esac
done
[ -n "$config" ] || die "usage: jobs/submit-array.sh CONFIG [--groups N] [-o OUT.h5] [-- sbatch options]"
[[ $groups =~ ^[1-9][0-9]*$ ]] || die "--groups: '$groups' is not a positive number"
[ -r "$config" ] || die "cannot read config '$config'"
config=$(cd "$(dirname "$config")" && pwd)/$(basename "$config")
find_attnstat
export ATTNSTAT
echo "submit-array.sh: attnstat: $ATTNSTAT (from $ATTNSTAT_FROM)" >&2

# the models and the bytes each reads, from `attnstat validate --json` (which also checks every
# input now, rather than in N jobs later); jq reads it
command -v jq > /dev/null || die "submit-array.sh needs jq (Debian: apt-get install jq)"
json=$("$ATTNSTAT" validate "$config" --json) || die "attnstat validate '$config' failed (see above)"
mapfile -t models < <(jq -r '.models[].name' <<<"$json")
[ "${#models[@]}" -gt 0 ] || die "'$config' has no models"
if [ -z "$out" ]; then
    out=$(jq -r '.output' <<<"$json")
    [ -n "$out" ] && [ "$out" != null ] || die "cannot tell the config's output: give -o OUT.h5"
fi
case $out in /*) ;; *) out=$PWD/$out ;; esac
prefix=${out%.h5}
mkdir -p "$(dirname "$out")"
[ "$groups" -le "${#models[@]}" ] || groups=${#models[@]}

# LPT over bytes (config order among equals); the models of a group stay in config order
listfile=$prefix.groups
jq -r '.models[] | "\(.bytes)\t\(.name)"' <<<"$json" | awk -F'\t' -v G="$groups" '
    { name[NR] = $2; cost[NR] = $1 > 0 ? $1 : 1 }
    END {
        for (i = 1; i <= NR; i++) order[i] = i
        for (i = 2; i <= NR; i++)                      # insertion sort, by cost descending
            for (j = i; j > 1 && cost[order[j]] > cost[order[j - 1]]; j--) { t = order[j]; order[j] = order[j - 1]; order[j - 1] = t }
        for (k = 1; k <= NR; k++) {
            best = 0
            for (g = 1; g < G; g++) if (load[g] < load[best]) best = g
            grp[order[k]] = best; load[best] += cost[order[k]]
        }
        for (g = 0; g < G; g++) {
            line = ""
            for (i = 1; i <= NR; i++) if (grp[i] == g) line = line (line == "" ? "" : ",") name[i]
            print line
        }
    }' > "$listfile" || die "cannot write the groups to '$listfile'"

parts=()
for ((i = 0; i < groups; i++)); do parts+=("$prefix.part$i.h5"); done
logdir=$(dirname "$out")
aid=$(sbatch --parsable --array=0-$((groups - 1)) -o "$logdir/attnstat-%A_%a.out" "$@" \
    "$here/attnstat-array.sbatch" "$here/attnstat.sbatch" "$listfile" "$prefix" "$config")
aid=${aid%%;*}
printf -v merge_cmd '%q ' "$ATTNSTAT" merge "$out" "${parts[@]}"
mid=$(sbatch --parsable --dependency=afterok:"$aid" --kill-on-invalid-dep=yes -J attnstat-merge -n 1 \
    -o "$logdir/attnstat-merge-%j.out" --wrap "exec $merge_cmd")
mid=${mid%%;*}
echo "submit-array.sh: $groups groups of ${#models[@]} models (lists in $listfile)" >&2
echo "submit-array.sh: array job $aid (parts ${prefix}.part0..$((groups - 1)).h5), merge job $mid -> $out" >&2
echo "ARRAY_JOB=$aid MERGE_JOB=$mid"
