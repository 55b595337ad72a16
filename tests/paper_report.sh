# tests/paper_report.sh: `attnstat report` makes one self-contained HTML page (no network, no
# external file) that a real headless browser (Debian's chromium) renders with no console error and
# in which every image decodes (the page's own script writes each image's decoded size into
# #image-check, which --dump-dom shows).
. "$(dirname "$0")/lib.sh"
CFG="$AS_SRC/config/paper.yaml"
FIX="$AS_SRC/tests/fixtures"
BROWSER=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$BROWSER" ] && [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    apt-get install -y -q chromium > "$TMP/apt.log" 2>&1 || true
    BROWSER=$(command -v chromium || true)
fi
[ -n "$BROWSER" ] || { echo "SKIP: chromium is not installed and cannot be (apt-get install -y chromium)"; exit 77; }

root="$TMP/root"
for ds in wikipedia dclm; do
    d="$root/results-final-$ds/bigscience_bloom-7b1/256"
    mkdir -p "$d"
    cp "$FIX/tiny/qk_mean.npy" "$FIX/tiny/attention_probs_mean.npy" "$d/"
done
d="$root/results-final-wikipedia/anas-awadalla_mpt-7b/256"
mkdir -p "$d" && cp "$FIX/tiny12/qk_mean.npy" "$FIX/tiny12/attention_probs_mean.npy" "$d/"
cd "$root"
check_cmd "run config/paper.yaml on a fake data root" run_np 2 run "$CFG" --set data_root=. -o "$TMP/out/paper.h5" --quiet
cd "$TMP"
check_cmd "report" "$ATTNSTAT" report "$TMP/out/paper.h5" -o "$TMP/report.html"
html="$TMP/report.html"

# self-contained: every src is a data: URI, no link, script or style from elsewhere
srcs=$(grep -o ' src="[^"]\{0,12\}' "$html" | sort | uniq -c)
[ "$(grep -o ' src="' "$html" | wc -l)" = "$(grep -o ' src="data:image/png;base64,' "$html" | wc -l)" ] \
    && ! grep -qi '<link\|@import\|url(\|https\?://' "$html" \
    && ok "the page is self-contained (every image a data: URI, no link, no URL)" || { fail "self-contained"; echo "$srcs"; }
for sec in provenance failures summary-log figures tables; do
    grep -q "id=\"$sec\"" "$html" || fail "section $sec missing"
done
grep -q "skipped sweep combinations\|Sweep combinations left out" "$html" && grep -q "dclm-mpt-30b-2048" "$html" \
    && ok "sections, and the skipped sweep combinations listed" || fail "skipped combinations"
grep -q "wikipedia-bloom-7b-256 histsim js_similarity | min=" "$html" && ok "the summary log is in the page" || fail "summary log"

# the browser: no console message, every image decoded
"$BROWSER" --headless --no-sandbox --disable-gpu --enable-logging=stderr --v=0 --virtual-time-budget=10000 \
    --user-data-dir="$TMP/chromium" --dump-dom "file://$html" > "$TMP/dom.html" 2> "$TMP/browser.err"
n_img=$(grep -o '<img ' "$html" | wc -l)
check=$(sed -n '/id="image-check"/,/<\/pre>/p' "$TMP/dom.html")
if echo "$check" | grep -q "images $n_img decoded $n_img" && [ "$n_img" -ge 10 ] && ! echo "$check" | grep -q BROKEN; then
    ok "chromium decodes all $n_img images"
else
    fail "images in chromium ($n_img in the page)"; echo "$check" | head -20
fi
echo "$check" | grep -q "attention_stats_js_similarity_bigscience_bloom-7b1_256.png 3200x3200" \
    && echo "$check" | grep -q "violation_rate.png 900x600" && ok "decoded sizes: heatmaps 3200 px, lines 900 x 600" \
    || { fail "decoded sizes"; echo "$check" | head; }
if grep -q "CONSOLE\|Uncaught\|Refused to\|Failed to load\|net::ERR" "$TMP/browser.err"; then
    fail "console errors"; grep "CONSOLE\|Uncaught\|Refused to\|Failed to load\|net::ERR" "$TMP/browser.err" | head
else
    ok "no console message, no blocked or failed load"
fi
finish
