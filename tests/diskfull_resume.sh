#!/bin/bash
# diskfull.resume: the output on a file system that fills up. A size-limited tmpfs (root) holds
# the output; at fill levels where the journal, the summary log, the results file and the figures
# each run out of space, every rank exits 5 within 30 s with one line naming the file and the error, no results
# file claims to be complete, and once space is freed `run --resume` finishes bitwise identical to
# an uninterrupted run. Without root (no tmpfs), RLIMIT_FSIZE stands in for the results file.
source "$(dirname "$0")/lib.sh"
cd "$TMP" || exit 1
H5SAME="$AS_SRC/tests/tools/h5same.py"
{
    echo "output: out.h5"
    echo "models:"
    for i in $(seq 1 24); do echo "  - {name: m$i, synthetic: {layers: 3, heads: 4, seq_len: 24, seed: $i}}"; done
    echo "stages: {histsim: {}, monotonicity: {}, patterns: {}}"
    echo "figures: {formats: [png]}"
} > c.yaml
check_cmd "uninterrupted reference run" run_np 2 run c.yaml -o ref.h5 --quiet
R=$(stat -c %s ref.h5); G=$(stat -c %s ref.log); GA=$(( (G + 4095) / 4096 * 4096 ))
RA=$(( (R + 4095) / 4096 * 4096 )); F=$(du -s --block-size=1 ref_figures | awk '{print $1}')
# the journal's size at its largest: hold the finished .partial file and measure
mkdir -p m
ATTNSTAT_TEST_HOLD_WRITE=2 run_np 2 run c.yaml -o m/out.h5 --quiet > /dev/null 2>&1 &
pid=$!
for _ in $(seq 200); do [ -e m/out.h5.partial ] && break; sleep 0.02; done
J=$(du -s --block-size=1 m/out.h5.journal | awk '{print $1}')   # allocated, whole pages
wait $pid
echo "results file $R bytes, summary log $G bytes, journal $J bytes"

mnt=$TMP/fs
mkdir -p "$mnt"
if ! mount -t tmpfs -o size=64k tmpfs "$mnt" 2> /dev/null; then
    # not root: a file size limit makes the results file fail (EFBIG) while the journal fits
    ( ulimit -f $(( (R / 2) / 1024 )); run_np 2 run c.yaml -o lim.h5 --quiet ) > lim.out 2>&1; rc=$?
    [ $rc -eq 5 ] && grep -q "lim.h5.partial.*File too large" lim.out && ok "EFBIG: exit 5 naming the file" \
        || fail "EFBIG: exit $rc: $(grep -m1 error lim.out)"
    check_cmd "resume after EFBIG" run_np 2 run c.yaml -o lim.h5 --resume --quiet
    check_cmd "EFBIG + resume == uninterrupted (bitwise)" "$AS_PY" "$H5SAME" ref.h5 lim.h5
    finish
    exit $?
fi
trap 'umount "$mnt" 2> /dev/null; rm -rf "$TMP"' EXIT
seen=""
# fill levels (the log is written before the results file, the figures after it): half the
# journal; the journal and half the log; the journal, the log and half the results file; all that
# and half the figures (then the results file is complete at OUTPUT: figures can be made again)
for size in $((J / 2)) $((J + G / 2)) $((J + GA + R / 2)) $((J + GA + RA + F / 2)); do
    umount "$mnt"
    mount -t tmpfs -o size=$(( (size + 4095) / 4096 * 4 ))k tmpfs "$mnt"
    t0=$(date +%s.%N)
    timeout 120 "$MPIEXEC" -np 2 --oversubscribe "$ATTNSTAT" run c.yaml -o "$mnt/out.h5" --quiet > full.out 2>&1
    rc=$?
    t=$(echo "$(date +%s.%N) - $t0" | bc)
    line=$(grep -m1 "attnstat: error" full.out)
    what=journal
    echo "$line" | grep -q "out.h5.partial" && what="results file"
    echo "$line" | grep -q "out.log" && what="summary log"
    echo "$line" | grep -q "cannot write figure" && what="figures"
    if [ $rc -eq 5 ] && [ "$(echo "$t < 30" | bc)" = 1 ] && echo "$line" | grep -qi "no space left on device"; then
        ok "$size bytes: the $what ran out: exit 5 after ${t}s: $line"
        seen="$seen|$what"
    else
        fail "$size bytes: exit $rc after ${t}s: $line"
    fi
    [ "$(grep -c 'attnstat: error' full.out)" -eq 1 ] && ok "one error line" || fail "$(grep -c 'attnstat: error' full.out) error lines"
    if [ "$what" = figures ]; then
        "$ATTNSTAT" summary "$mnt/out.h5" > /dev/null && ok "the results file is complete, only figures are missing" \
            || fail "figures ran out but the results file is not complete"
    elif [ -e "$mnt/out.h5" ]; then fail "a results file at OUTPUT after running out of space"; else ok "no results file at OUTPUT"; fi
    # space freed: the same folder, larger; resume
    mkdir -p keep && cp -a "$mnt/." keep/ && umount "$mnt" && mount -t tmpfs -o size=16m tmpfs "$mnt" && cp -a keep/. "$mnt/" && rm -rf keep
    check_cmd "$size bytes: resume once space is freed" run_np 3 run c.yaml -o "$mnt/out.h5" --resume --quiet
    check_cmd "$size bytes: resume == uninterrupted (bitwise)" "$AS_PY" "$H5SAME" ref.h5 "$mnt/out.h5"
done
for w in journal "results file" "summary log" figures; do
    case "$seen" in *"|$w"*) ok "a level where the $w ran out was tested" ;; *) fail "no level made the $w run out (sizes: journal $J, results $R, log $G)" ;; esac
done
finish
