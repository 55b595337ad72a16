#!/bin/bash
# tests/merge_parts.sh: array mode. Parts of one config (attnstat run CONFIG --models SUBSET) merged
# with `attnstat merge` must equal a single run under /models, bitwise, dimension scales included;
# merge must refuse parts of another config, a model in two parts, an incomplete part, a missing
# or non-HDF5 part and a forgotten part, each with exit 4 and a message naming the file/model.
source "$(dirname "$0")/lib.sh"
cd "$TMP" || exit 1
H5SAME="$AS_SRC/tests/tools/h5same.py"

cat > c.yaml <<'EOF'
output: out/full.h5
models:
  - name: m-a
    synthetic: {layers: 3, heads: 4, seq_len: 32, seed: 1}
  - name: m-b
    synthetic: {layers: 2, heads: 2, seq_len: 48, seed: 2}
  - name: m-c
    synthetic: {layers: 4, heads: 4, seq_len: 16, seed: 3}
  - name: m-d
    synthetic: {layers: 1, heads: 8, seq_len: 24, seed: 4}
stages:
  histsim: {}
  monotonicity: {}
EOF

check_cmd "single run, 2 ranks" run_np 2 run c.yaml -o full.h5 --quiet
check_cmd "part 0 (m-a,m-c), 2 ranks" run_np 2 run c.yaml --models m-a,m-c -o p0.h5 --quiet
check_cmd "part 1 (m-b,m-d), 3 ranks" run_np 3 run c.yaml --models m-d,m-b -o p1.h5 --quiet
# parts given out of order: the merged file still lists the models in the config's order
check_cmd "merge p1 p0" "$ATTNSTAT" merge merged.h5 p1.h5 p0.h5
check_cmd "merged /models equals the single run (h5same)" "$AS_PY" "$H5SAME" full.h5 merged.h5
check_cmd "merged file is complete (attnstat summary)" "$ATTNSTAT" summary merged.h5
[ ! -e merged.h5.partial ] && ok "no merged.h5.partial left" || fail "merged.h5.partial left behind"

# what h5same does not compare: dimension scales (DIMENSION_LIST / REFERENCE_LIST hold object
# addresses that H5Ocopy does not remap), model order, and the merge's root attributes
cat > check.py <<'EOF'
import sys
import h5py
def dims(f):
    out = {}
    def visit(name, o):
        if isinstance(o, h5py.Dataset):
            out[name] = [(d.label, [s.name for s in d.values()]) for d in o.dims]
            if "REFERENCE_LIST" in o.attrs:
                out[name + "@REFERENCE_LIST"] = sorted((f[r].name, int(i)) for r, i in o.attrs["REFERENCE_LIST"])
    f["models"].visititems(visit)
    return out
with h5py.File("full.h5", "r") as a, h5py.File("merged.h5", "r") as b:
    bad = []
    da, db = dims(a), dims(b)
    if da != db or not da:
        bad.append("dimension scales differ: %s" % sorted(k for k in set(da) | set(db) if da.get(k) != db.get(k))[:5])
    if list(a["models"]) != list(b["models"]):
        bad.append("model order %s != %s" % (list(b["models"]), list(a["models"])))
    r = b.attrs
    want = {"complete": 1, "mpi_size": 3, "merged_from": "p1.h5\np0.h5", "config": a.attrs["config"],
            "config_path": "c.yaml"}
    for k, v in want.items():
        if k not in r or r[k] != v:
            bad.append("root attribute %s = %r, want %r" % (k, r.get(k), v))
    for k in ("tool_version", "git_commit", "command_line", "start_time", "end_time"):
        if not r.get(k):
            bad.append("root attribute %s missing" % k)
    if "sweep_part" in r:
        bad.append("merged file carries a sweep_part attribute")
    for i, (part, n) in enumerate((("p1.h5", 3), ("p0.h5", 2))):
        g = b.get("run/parts/%d" % i)
        if g is None or g.attrs.get("file") != part or g["rank_busy_seconds"].shape != (n,):
            bad.append("/run/parts/%d is not %s's /run (%d ranks)" % (i, part, n))
    print("\n".join(bad) or "ok")
    sys.exit(1 if bad else 0)
EOF
check_cmd "dimension scales, model order, root attributes, /run/parts" "$AS_PY" check.py

# merge of a merged file and a single part file both work as parts of a bigger merge: a re-merge
check_cmd "re-merge of a one-part merge" "$ATTNSTAT" merge again.h5 full.h5
check_cmd "re-merged equals the single run" "$AS_PY" "$H5SAME" full.h5 again.h5

# ---- refusals: exit code, message, and nothing written at OUT
(cat c.yaml; echo "# another config") > c2.yaml
check_cmd "part of another config" run_np 1 run c2.yaml --models m-b,m-d -o q1.h5 --quiet
cp p1.h5 incomplete.h5
"$AS_PY" -c "import h5py; h5py.File('incomplete.h5', 'r+').attrs['complete'] = 0"
cp p0.h5 p0-copy.h5
echo "not hdf5" > junk.h5

# refuse DESC CODE PATTERN ARGS...: attnstat ARGS must exit CODE, print PATTERN, leave no x.h5
refuse() {
    local desc=$1 code=$2 pat=$3; shift 3
    rm -f x.h5 x.h5.partial
    "$ATTNSTAT" "$@" > out.txt 2>&1
    local rc=$?
    if [ "$rc" = "$code" ] && grep -q -- "$pat" out.txt && [ ! -e x.h5 ] && [ ! -e x.h5.partial ]; then
        ok "$desc"
    else
        fail "$desc: attnstat $* -> exit $rc (want $code, message matching '$pat', no x.h5)"
        sed 's/^/    /' out.txt | head -5
    fi
}
refuse "different config" 4 "part 'q1.h5' was made from a different config than part 'p0.h5'" \
    merge x.h5 p0.h5 q1.h5
refuse "duplicate model" 4 "model 'm-a' is in two parts: 'p0.h5' and 'p0-copy.h5'" \
    merge x.h5 p0.h5 p1.h5 p0-copy.h5
refuse "incomplete part" 4 "part 'incomplete.h5' is not complete" merge x.h5 p0.h5 incomplete.h5
refuse "missing part file" 4 "cannot open part 'nope.h5': No such file" merge x.h5 p0.h5 nope.h5
refuse "not an HDF5 file" 4 "part 'junk.h5' is not an HDF5 file" merge x.h5 p0.h5 junk.h5
refuse "forgotten part" 4 "2 models of the config are in no part ('m-b', 'm-d')" merge x.h5 p0.h5
refuse "OUT is a part" 2 "OUT 'p0.h5' is also given as a part" merge p0.h5 p0.h5 p1.h5
refuse "part given twice" 2 "part 'p0.h5' is given twice" merge x.h5 p0.h5 p1.h5 p0.h5
refuse "no parts" 2 "merge needs OUT.h5 and at least one PART.h5" merge x.h5
refuse "unknown option" 2 "unknown option '--force'" merge --force x.h5 p0.h5
refuse "unwritable output" 5 "cannot create the folder of '/proc/x/y.h5'" merge /proc/x/y.h5 p0.h5 p1.h5

# parts run with --set overrides: merged with the same overrides applied to the config again
check_cmd "single run with --set" run_np 2 run c.yaml --set stages.histsim.edges=50 -o sfull.h5 --quiet
check_cmd "part 0 with --set" run_np 2 run c.yaml --set stages.histsim.edges=50 --models m-a,m-c -o s0.h5 --quiet
check_cmd "part 1 with --set" run_np 2 run c.yaml --set stages.histsim.edges=50 --models m-b,m-d -o s1.h5 --quiet
check_cmd "merge parts run with --set" "$ATTNSTAT" merge smerged.h5 s0.h5 s1.h5
check_cmd "merged --set parts == the single --set run (h5same)" "$AS_PY" "$H5SAME" sfull.h5 smerged.h5
check_cmd "the merged file records the overrides" "$AS_PY" -c "
import h5py; v = h5py.File('smerged.h5').attrs['config_overrides']
assert (v.decode() if isinstance(v, bytes) else v) == 'stages.histsim.edges=50', v"
refuse "parts with other overrides" 4 "was run with other --set overrides" merge y.h5 s0.h5 p1.h5

finish
