# tests/paper_reproduce.sh: config/paper.yaml on a tiny fake data root (a few of its combinations,
# copies of tests/fixtures/tiny*), with --set data_root=.; --set overrides and their errors; the
# paper figures (names, pixel and page sizes, heatmap colours against the values, byte-stable
# PNGs); the long table against the results file (h5py + pandas) and the markdown/LaTeX summaries
# against the summary log.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
CFG="$AS_SRC/config/paper.yaml"
FIX="$AS_SRC/tests/fixtures"
if ! "$PY" -c 'import h5py, numpy, PIL' 2>/dev/null; then echo "SKIP: needs python3-h5py, python3-numpy, python3-pil"; exit 77; fi
command -v pdfinfo > /dev/null || { echo "SKIP: needs pdfinfo (poppler-utils)"; exit 77; }

# the fake data root: <root>/results-final-<dataset>/<model id, / as _>/<seq_len>/
root="$TMP/root"
mk() { mkdir -p "$root/results-final-$1/$2/$3"; cp "$FIX/$4/qk_mean.npy" "$FIX/$4/attention_probs_mean.npy" "$root/results-final-$1/$2/$3/"; }
mk wikipedia bigscience_bloom-7b1 256 tiny
mk wikipedia anas-awadalla_mpt-7b 256 tiny12
mk dclm bigscience_bloom 64 tiny
cp "$FIX/tiny/qk_mean.npy" "$root/results-final-wikipedia/bigscience_bloom-7b1/256/qk_var.npy"

# ---- --set
cd "$root"
out=$("$ATTNSTAT" validate "$CFG" --set data_root=. --list-models 2>&1)
[ "$(echo "$out" | tr '\n' ' ')" = "wikipedia-mpt-7b-256 dclm-bloom-176b-64 wikipedia-bloom-7b-256 " ] \
    && ok "validate --set data_root=. finds the 3 combinations, in the config's order" \
    || fail "validate --set data_root=. --list-models: $out"
out=$("$ATTNSTAT" validate "$CFG" --list-models 2>&1); rc=$?
[ $rc -eq 3 ] && echo "$out" | grep -q "data_root is not set" && ok "no data_root: config error saying to set it" \
    || fail "no data_root: rc=$rc $out"
out=$("$ATTNSTAT" validate "$CFG" --set data_root=. --set stages.histsim.edgs=100 2>&1); rc=$?
[ $rc -eq 3 ] && echo "$out" | grep -q "^attnstat: error: --set stages.histsim.edgs=100: .*unknown key 'edgs'" \
    && ok "--set of an unknown nested key: exit 3 naming it" || fail "unknown key: rc=$rc $out"
out=$("$ATTNSTAT" validate "$CFG" --set data_root=. --set outptu=x.h5 2>&1); rc=$?
[ $rc -eq 3 ] && echo "$out" | grep -q "unknown key 'outptu'" && ok "--set of an unknown top-level key: exit 3" \
    || fail "unknown top key: rc=$rc $out"
out=$("$ATTNSTAT" validate "$CFG" --set data_root=. --set stages.histsim.edges=many 2>&1); rc=$?
[ $rc -eq 3 ] && echo "$out" | grep -q "stages.histsim.edges.*many" && ok "--set with a wrong type: the type error, exit 3" \
    || fail "type error: rc=$rc $out"
out=$("$ATTNSTAT" validate "$CFG" --set data_root 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q "expected KEY=VALUE" && ok "--set without '=': usage error, exit 2" \
    || fail "no '=': rc=$rc $out"
out=$("$ATTNSTAT" validate "$CFG" --set data_root=. --set output.x=1 2>&1); rc=$?
[ $rc -eq 3 ] && echo "$out" | grep -q "'output' is a value, not a mapping" && ok "--set through a value: exit 3" \
    || fail "through a value: rc=$rc $out"
out=$("$ATTNSTAT" validate "$CFG" --set data_root=. --set sweep.9.missing=error 2>&1); rc=$?
[ $rc -eq 3 ] && echo "$out" | grep -q "is a list of 5" && ok "--set with a list index out of range: exit 3" \
    || fail "index: rc=$rc $out"
out=$("$ATTNSTAT" validate "$CFG" --set data_root=. --set sweep.0.missing=error 2>&1); rc=$?
[ $rc -eq 3 ] && echo "$out" | grep -q "combinations are missing" && ok "--set into a list (sweep.0.missing=error) applies" \
    || fail "list override: rc=$rc $out"
out=$("$ATTNSTAT" validate "$CFG" --set data_root=. --set 'figures.matrices=[{model: wikipedia-mpt-7b-256, layer: 0, head: zero}]' 2>&1); rc=$?
[ $rc -eq 3 ] && echo "$out" | grep -q "head.*zero" && ok "--set with a YAML value (a list of mappings) is checked" \
    || fail "yaml value: rc=$rc $out"

# ---- the run
check_cmd "run config/paper.yaml --set data_root=. (np 2)" \
    run_np 2 run "$CFG" --set data_root=. --set stages.histsim.edges=100 -o "$TMP/out/paper.h5" --quiet
H5="$TMP/out/paper.h5"
"$PY" - "$H5" <<'EOF' && ok "the edges override took effect; results record the overrides" || fail "overrides in results"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
assert f["models/wikipedia-bloom-7b-256/histsim/bins"].shape == (100,), f["models/wikipedia-bloom-7b-256/histsim/bins"].shape
if "config_overrides" in f.attrs:
    ov = f.attrs["config_overrides"]
    ov = ov.decode() if isinstance(ov, bytes) else ov
    assert ov == "data_root=.\nstages.histsim.edges=100", repr(ov)
    assert f["models/wikipedia-bloom-7b-256"].attrs["label"] in ("bloom-7b", b"bloom-7b")
else:
    print("note: this build's driver does not write config_overrides and labels yet (unit.table covers them)")
EOF
cd "$TMP"

# ---- plot --style paper
check_cmd "plot --style paper" "$ATTNSTAT" plot "$H5" --style paper -o "$TMP/fig"
want="dclm/64/average_absolute_error.pdf
dclm/64/average_relative_error.pdf
dclm/64/violation_rate.pdf
dclm/attention_stats_js_similarity_bigscience_bloom_64.png
dclm/attention_stats_summary_bigscience_bloom_64.txt
dclm/attention_stats_within_diag_bigscience_bloom_64.png
dclm/attention_stats_within_lower_bigscience_bloom_64.png
wikipedia/256/average_absolute_error.pdf
wikipedia/256/average_relative_error.pdf
wikipedia/256/violation_rate.pdf
wikipedia/attention_stats_js_similarity_anas-awadalla_mpt-7b_256.png
wikipedia/attention_stats_js_similarity_bigscience_bloom-7b1_256.png
wikipedia/attention_stats_summary_anas-awadalla_mpt-7b_256.txt
wikipedia/attention_stats_summary_bigscience_bloom-7b1_256.txt
wikipedia/attention_stats_within_diag_anas-awadalla_mpt-7b_256.png
wikipedia/attention_stats_within_diag_bigscience_bloom-7b1_256.png
wikipedia/attention_stats_within_lower_anas-awadalla_mpt-7b_256.png
wikipedia/attention_stats_within_lower_bigscience_bloom-7b1_256.png"
got=$(cd "$TMP/fig" && find . -type f | sed 's|^\./||' | grep -v '^attention_heatmap\|/attention_heatmap' | LC_ALL=C sort)
[ "$got" = "$want" ] && ok "the notebooks' file names, per dataset and sequence length" || { fail "file names"; diff <(echo "$want") <(echo "$got"); }
bad=0
for f in $(cd "$TMP/fig" && find . -name '*.pdf'); do
    ps=$(pdfinfo "$TMP/fig/$f" | sed -n 's/^Page size: *\([0-9.]* x [0-9.]*\) pts.*/\1/p')
    [ "$ps" = "324 x 216" ] || { bad=1; echo "    $f: page size '$ps'"; }
done
[ $bad -eq 0 ] && ok "monotonicity PDFs are 4.5 x 3 in (324 x 216 pt)" || fail "PDF page sizes"
pdftotext "$TMP/fig/wikipedia/256/violation_rate.pdf" "$TMP/vr.txt" 2>/dev/null
if "$PY" -c "import h5py,sys; sys.exit('label' not in h5py.File('$H5','r')['models/wikipedia-bloom-7b-256'].attrs)"; then
    grep -qx "bloom-7b" "$TMP/vr.txt" && grep -qx "mpt-7b" "$TMP/vr.txt" && ! grep -q "wikipedia-bloom" "$TMP/vr.txt" \
        && grep -q "Violation Rate" "$TMP/vr.txt" && ok "monotonicity legend shows the labels, y axis 'Violation Rate'" \
        || { fail "legend labels"; cat "$TMP/vr.txt"; }
else
    grep -q "wikipedia-bloom-7b-256" "$TMP/vr.txt" && grep -q "Violation Rate" "$TMP/vr.txt" \
        && ok "monotonicity legend (model names: this driver writes no labels yet), y axis 'Violation Rate'" || fail "legend"
fi
"$PY" - "$H5" "$TMP/fig" <<'EOF' && ok "heatmaps: 3200 x 3200 px, cell colours match the colour bar at their values; summaries = log lines" || fail "heatmap pixels or summary"
import sys, h5py, numpy as np
from PIL import Image
f = h5py.File(sys.argv[1], "r"); d = sys.argv[2]
log = open(sys.argv[1][:-3] + ".log").read().splitlines()
names = {"within_diag": "Within-diagonal similarity", "within_lower": "Within-lower similarity", "js_similarity": "JS similarity"}
def area(L, H):
    """the data area, fractions of the page from the left and the top: the heatmap box
    (as_plot_draw_heatmap) shrunk, centred, to square cells as imshow(aspect="equal") draws them"""
    x0, x1, y0, y1 = 0.145, 0.765, 1 - 0.885, 1 - 0.105
    cell = min((x1 - x0) / H, (y1 - y0) / L)        # an 8 x 8 in page: the same scale both ways
    dx, dy = ((x1 - x0) - cell * H) / 2, ((y1 - y0) - cell * L) / 2
    return x0 + dx, x1 - dx, y0 + dy, y1 - dy
for model, stem, T, ds in [("wikipedia-bloom-7b-256", "bigscience_bloom-7b1", 256, "wikipedia"),
                           ("dclm-bloom-176b-64", "bigscience_bloom", 64, "dclm")]:
    summary = open(f"{d}/{ds}/attention_stats_summary_{stem}_{T}.txt").read().splitlines()
    for k, (field, title) in enumerate(names.items()):
        v = f[f"models/{model}/histsim/{field}"][()]
        L, H = v.shape
        x0, x1, y0, y1 = area(L, H)
        bar_x = x1 + 0.0425
        assert abs((x1 - x0) / H - (y1 - y0) / L) < 1e-12   # square cells
        im = np.asarray(Image.open(f"{d}/{ds}/attention_stats_{field}_{stem}_{T}.png").convert("RGB")).astype(int)
        assert im.shape == (3200, 3200, 3), im.shape
        W = im.shape[1]
        for l in range(L):
            for h in range(H):
                cx = int((x0 + (h + 0.5) / H * (x1 - x0)) * W)
                cy = int((y1 - (l + 0.5) / L * (y1 - y0)) * W)            # layer 0 at the bottom
                by = int((y1 - min(max(v[l, h], 0), 1) * (y1 - y0)) * W)  # the colour bar at the value
                got, ref = im[cy, cx], im[min(max(by, int(y0 * W) + 3), int(y1 * W) - 3), int(bar_x * W)]
                assert np.abs(got - ref).max() <= 8, (model, field, l, h, v[l, h], got, ref)
        line = [x for x in log if x.startswith(f"{model} histsim {field} | ")]
        assert summary[k] == title + line[0][len(f"{model} histsim {field}"):], (summary[k], line)
EOF
mkdir -p "$TMP/fig2"
"$ATTNSTAT" plot "$H5" --style paper -o "$TMP/fig2" > /dev/null 2>&1
same=1
for f in $(cd "$TMP/fig" && find . -name '*.png' -o -name '*.txt'); do cmp -s "$TMP/fig/$f" "$TMP/fig2/$f" || { same=0; echo "    differs: $f"; }; done
[ $same -eq 1 ] && ok "PNG and summary files are byte-identical when remade" || fail "byte-stable PNGs"

# ---- matrices (figures.matrices: written once the driver calls as_matrices_write_results_all)
if "$PY" -c "import h5py,sys; sys.exit('matrices' not in h5py.File('$H5','r')['models/wikipedia-bloom-7b-256'])"; then
    [ -f "$TMP/fig/wikipedia/attention_heatmap_mean_bigscience_bloom-7b1_256_0_0.png" ] \
        && [ -f "$TMP/fig/wikipedia/attention_heatmap_variance_bigscience_bloom-7b1_256_0_0.png" ] \
        && ok "attention_heatmap_{mean,variance} from the stored matrices" || fail "attention heatmaps"
else
    echo "note: this build's driver does not store figures.matrices yet (unit.table covers them)"
fi

# ---- tables
"$ATTNSTAT" table "$H5" -o "$TMP/long.csv" && "$PY" - "$H5" "$TMP/long.csv" <<'EOF' && ok "table CSV: every value equals its dataset (pandas.read_csv, no options)" || fail "table CSV"
import sys, csv, h5py, numpy as np
# exact: the csv module and Python's float() (correctly rounded)
rows = list(csv.DictReader(open(sys.argv[2])))
cols = list(rows[0].keys())
try:   # pandas reads it with no options; its default (fast) float parser may be some ulp off: close
    import pandas as pd
    df = pd.read_csv(sys.argv[2])
    assert list(df.columns) == cols and len(df) == len(rows), (list(df.columns), len(df))
    assert np.allclose(df["value"].to_numpy(float), [float(r["value"]) for r in rows], rtol=1e-13, atol=0, equal_nan=True)
    assert str(df["layer"].dtype) in ("float64", "int64") and df["seq_len"].dtype.kind == "i"
except ImportError:
    print("note: python3-pandas is not installed: checked with the csv module only")
assert cols == ["model", "model_id", "dataset", "seq_len", "stage", "field", "layer", "head", "value"], cols
f = h5py.File(sys.argv[1], "r")
seen = set()
def idx(x):
    return None if x is None or (isinstance(x, float) and np.isnan(x)) or x == "" else int(float(x))
for r in rows:
    ds = f[f"models/{r['model']}/{r['stage']}/{r['field']}"]
    l, h = idx(r["layer"]), idx(r["head"])
    want = ds[()][l, h] if ds.ndim == 2 else ds[()][l if l is not None else h]
    got = float(r["value"])
    assert (np.isnan(want) and np.isnan(got)) or got == float(want), (r, want)
    assert str(f[f"models/{r['model']}"].attrs["model_id"]) == str(r["model_id"])
    seen.add((r["model"], r["stage"], r["field"]))
# every (layer, head) and per-layer field of every model is there
for m in f["models"]:
    for st in f["models"][m]:
        g = f["models"][m][st]
        if not isinstance(g, h5py.Group) or st == "matrices":
            continue
        for fld in g:
            ds = g[fld]
            dims = [ds.dims[i].label for i in range(ds.ndim)]
            if dims in (["layer"], ["layer", "head"], ["head"]):
                assert (m, st, fld) in seen, (m, st, fld)
print(len(rows), "rows")
EOF
"$ATTNSTAT" table "$H5" --format markdown > "$TMP/sum.md" && "$ATTNSTAT" table "$H5" --format latex -o "$TMP/sum.tex" \
  && "$PY" - "$H5" "$TMP/sum.md" "$TMP/sum.tex" <<'EOF' && ok "markdown and LaTeX summaries equal the summary log's lines" || fail "summaries vs log"
import sys, re
log = open(sys.argv[1][:-3] + ".log").read().splitlines()
md = open(sys.argv[2]).read().splitlines()
tex = open(sys.argv[3]).read().splitlines()
n = 0
for line in log:
    m = re.match(r"^(\S+) (\S+) (\S+) \| min=(\S+) max=(\S+) mean=(\S+) std=(\S+)$", line)
    if not m:
        continue
    model, stage, field, *st = m.groups()
    assert f"| {model} | {field} | {' | '.join(st)} |" in md, line
    esc = lambda s: s.replace("_", "\\_")
    assert f"{esc(model)} & {esc(field)} & {' & '.join(st)} \\\\" in tex, line
    n += 1
assert n >= 9, n
assert "## histsim" in md and "## monotonicity" in md
EOF
out=$("$ATTNSTAT" table "$H5" --stage nope 2>&1 >/dev/null); rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q "no stage 'nope'.*histsim, monotonicity" && ok "table --stage of an unknown stage: exit 2 naming the stages" || fail "unknown stage: rc=$rc $out"
finish
