/* as_report_html.c: `attnstat report`, one self-contained HTML page from a results file (contract
 * in as_report.h). */
#define _GNU_SOURCE
#include "as_report.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "as_plot.h"
#include "as_report_impl.h"
#include "as_results_read.h"

void as_report_html_text(struct as_strbuf *html, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': as_strbuf_addf(html, "&amp;"); break;
        case '<': as_strbuf_addf(html, "&lt;"); break;
        case '>': as_strbuf_addf(html, "&gt;"); break;
        case '"': as_strbuf_addf(html, "&quot;"); break;
        default: as_strbuf_add(html, s, 1);
        }
    }
}

/* The whole file as an owned buffer; NULL when it cannot be read. */
static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct as_strbuf sb = AS_STRBUF_INIT;
    char buf[65536];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, f)) > 0)
        as_strbuf_add(&sb, buf, k);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        as_strbuf_release(&sb);
        return NULL;
    }
    *n = sb.len;
    return sb.buf ? (unsigned char *)sb.buf : (unsigned char *)as_xcalloc(1, 1);
}

static void base64(struct as_strbuf *out, const unsigned char *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char q[4];
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        q[0] = tab[v >> 18 & 63];
        q[1] = tab[v >> 12 & 63];
        q[2] = i + 1 < n ? tab[v >> 6 & 63] : '=';
        q[3] = i + 2 < n ? tab[v & 63] : '=';
        as_strbuf_add(out, q, 4);
    }
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

static const char css[] =
    "body{font-family:'DejaVu Sans',Arial,sans-serif;margin:2em auto;max-width:1100px;color:#222;line-height:1.4}"
    "h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}"
    "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ddd;padding:.2em .6em;"
    "font-size:.9em}th{background:#f3f3f3;text-align:left}td{font-variant-numeric:tabular-nums}"
    "pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.85em;white-space:pre-wrap}"
    "figure{display:inline-block;margin:.5em;vertical-align:top;text-align:center}"
    "figure img{width:360px;height:auto;border:1px solid #eee}figure.wide img{width:420px}"
    "figcaption{font-size:.75em;color:#555;max-width:420px;word-break:break-all}.bad{color:#b00}";

/* Writes into #image-check how many images decoded, and each one's decoded size. */
static const char check_script[] =
    "window.addEventListener('load',function(){var im=document.getElementsByTagName('img'),o=[],ok=0;"
    "for(var i=0;i<im.length;i++){var g=im[i].complete&&im[i].naturalWidth>0;if(g)ok++;"
    "o.push((g?'ok ':'BROKEN ')+im[i].getAttribute('alt')+' '+im[i].naturalWidth+'x'+im[i].naturalHeight);}"
    "document.getElementById('image-check').textContent='images '+im.length+' decoded '+ok+'\\n'+o.join('\\n');});";

static void prov_row(struct as_strbuf *h, const char *key, const char *val)
{
    as_strbuf_addf(h, "<tr><th>%s</th><td>", key);
    as_report_html_text(h, val);
    as_strbuf_addf(h, "</td></tr>\n");
}

static void provenance(const struct as_results_file *rf, const char *results, struct as_strbuf *h)
{
    static const char *const str_keys[] = { AS_RESULTS_ATTR_TOOL_VERSION, AS_RESULTS_ATTR_GIT_COMMIT,
                                            AS_RESULTS_ATTR_CONFIG_PATH, AS_RESULTS_ATTR_COMMAND_LINE,
                                            AS_RESULTS_ATTR_CONFIG_OVERRIDES, AS_RESULTS_ATTR_START_TIME,
                                            AS_RESULTS_ATTR_END_TIME, AS_RESULTS_ATTR_SWEEP_PART, NULL };
    static const char *const int_keys[] = { AS_RESULTS_ATTR_MPI_SIZE, AS_RESULTS_ATTR_UNITS_COMPUTED,
                                            AS_RESULTS_ATTR_UNITS_REUSED, NULL };
    as_strbuf_addf(h, "<h2 id=\"provenance\">Provenance</h2>\n<table>\n");
    prov_row(h, "results file", results);
    prov_row(h, "complete", as_results_is_complete(rf) ? "yes" : "no");
    for (int k = 0; str_keys[k]; k++) {
        char *v = as_report_attr(rf, NULL, str_keys[k]);
        if (v[0])
            prov_row(h, str_keys[k], v);
        free(v);
    }
    for (int k = 0; int_keys[k]; k++) {
        int64_t v;
        struct as_error ignore = { AS_OK, "" };
        if (as_results_attr_i64(rf, NULL, int_keys[k], &v, &ignore) == 1) {
            char buf[32];
            snprintf(buf, sizeof buf, "%lld", (long long)v);
            prov_row(h, int_keys[k], buf);
        }
    }
    as_strbuf_addf(h, "</table>\n<h3>Config</h3>\n<pre>");
    char *cfg = as_report_attr(rf, NULL, AS_RESULTS_ATTR_CONFIG);
    as_report_html_text(h, cfg);
    free(cfg);
    as_strbuf_addf(h, "</pre>\n");
}

/* Failed models with their errors, skipped sweep combinations. */
static void failures(const struct as_results_file *rf, struct as_strbuf *h)
{
    char *failed = as_report_attr(rf, NULL, AS_RESULTS_ATTR_FAILED_MODELS);
    char *skipped = as_report_attr(rf, NULL, AS_RESULTS_ATTR_SWEEP_SKIPPED);
    as_strbuf_addf(h, "<h2 id=\"failures\">Failed and skipped models</h2>\n");
    if (!failed[0] && !skipped[0])
        as_strbuf_addf(h, "<p>None: every model of the config ran.</p>\n");
    if (failed[0]) {
        as_strbuf_addf(h, "<table>\n<tr><th>failed model</th><th>error</th></tr>\n");
        for (char *save = NULL, *m = strtok_r(failed, "\n", &save); m; m = strtok_r(NULL, "\n", &save)) {
            char *why = as_report_attr(rf, m, AS_RESULTS_ATTR_ERROR);
            as_strbuf_addf(h, "<tr><td class=\"bad\">");
            as_report_html_text(h, m);
            as_strbuf_addf(h, "</td><td>");
            as_report_html_text(h, why);
            as_strbuf_addf(h, "</td></tr>\n");
            free(why);
        }
        as_strbuf_addf(h, "</table>\n");
    }
    if (skipped[0]) {
        as_strbuf_addf(h, "<p>Sweep combinations left out (missing: skip):</p>\n<pre>");
        as_report_html_text(h, skipped);
        as_strbuf_addf(h, "</pre>\n");
    }
    free(failed);
    free(skipped);
}

/* The summary log beside the results file (OUTPUT.log), else the stages' summaries. */
static void summary_log(const struct as_results_file *rf, const char *results, struct as_strbuf *h,
                        struct as_error *err)
{
    char log[4200];
    as_strlcpy(log, results, sizeof log - 8);
    char *dot = strrchr(log, '.'), *slash = strrchr(log, '/');
    if (dot && (!slash || dot > slash))
        *dot = '\0';
    strcat(log, ".log");
    size_t n = 0;
    unsigned char *text = slurp(log, &n);
    as_strbuf_addf(h, "<h2 id=\"summary-log\">Summary log</h2>\n");
    if (text) {
        as_strbuf_addf(h, "<p>From <code>");
        as_report_html_text(h, log);
        as_strbuf_addf(h, "</code>:</p>\n<pre>");
        as_report_html_text(h, (const char *)text);
        as_strbuf_addf(h, "</pre>\n");
        free(text);
        return;
    }
    as_strbuf_addf(h, "<p>The stages' summaries recorded in the results file:</p>\n<pre>");
    struct as_results_list models = AS_RESULTS_LIST_INIT;
    if (!as_results_models(rf, &models, err))
        for (int i = 0; i < models.n; i++) {
            struct as_results_list st = AS_RESULTS_LIST_INIT;
            if (as_results_stages(rf, models.v[i], &st, err))
                continue;
            for (int s = 0; s < st.n; s++) {
                const struct as_results_obj at = { models.v[i], st.v[s], NULL };
                char *lines = NULL;
                struct as_error ignore = { AS_OK, "" };
                if (as_results_attr_str(rf, &at, AS_RESULTS_ATTR_STAGE_SUMMARY, &lines, &ignore) == 1)
                    as_report_html_text(h, lines);
                free(lines);
            }
            as_results_list_release(&st);
        }
    as_results_list_release(&models);
    as_error_clear(err);
    as_strbuf_addf(h, "</pre>\n");
}

/* Every paper figure as PNG, inline. */
static int figures(const char *results, struct as_strbuf *h, struct as_error *err)
{
    const char *tmpdir = getenv("TMPDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/attnstat-report.XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (!mkdtemp(dir))
        return as_error_set(err, AS_ERR_IO, "cannot create a temporary folder '%s': %s", dir, strerror(errno));
    struct as_strbuf made = AS_STRBUF_INIT;
    struct as_plot_paper_opts po = { dir, AS_PLOT_PNG, 1, 0 };
    int rc = as_plot_paper(results, &po, &made, err);
    as_strbuf_addf(h, "<h2 id=\"figures\">Figures</h2>\n");
    int n_fig = 0;
    for (char *save = NULL, *name = made.buf ? strtok_r(made.buf, "\n", &save) : NULL; !rc && name;
         name = strtok_r(NULL, "\n", &save)) {
        size_t len = strlen(name);
        if (len < 4 || strcmp(name + len - 4, ".png"))
            continue;
        char path[8300];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        size_t n = 0;
        unsigned char *png = slurp(path, &n);
        if (!png) {
            rc = as_error_set(err, AS_ERR_IO, "cannot read figure '%s'", path);
            break;
        }
        int wide = strstr(name, "attention_") == NULL;
        as_strbuf_addf(h, "<figure%s><img alt=\"", wide ? " class=\"wide\"" : "");
        as_report_html_text(h, name);
        as_strbuf_addf(h, "\" src=\"data:image/png;base64,");
        base64(h, png, n);
        as_strbuf_addf(h, "\"><figcaption>");
        as_report_html_text(h, name);
        as_strbuf_addf(h, "</figcaption></figure>\n");
        free(png);
        n_fig++;
    }
    if (!rc && !n_fig)
        as_strbuf_addf(h, "<p>No figure: the results have no histsim, monotonicity or stored matrices.</p>\n");
    as_strbuf_release(&made);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}

int as_report_html(const char *results_path, const char *out_path, struct as_error *err)
{
    struct as_results_file *rf;
    struct as_strbuf h = AS_STRBUF_INIT;
    int rc = -1;
    if (as_results_open(results_path, &rf, err))
        return -1;
    if (!as_results_has_models(rf)) {
        as_results_close(rf);
        return as_error_set(err, AS_ERR_INPUT, "'%s' has no /models group: not an attnstat results file", results_path);
    }
    as_strbuf_addf(&h, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                       "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
                       "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n<title>attnstat report: ");
    as_report_html_text(&h, results_path);
    as_strbuf_addf(&h, "</title>\n<style>%s</style>\n</head>\n<body>\n<h1>attnstat report</h1>\n<p>", css);
    as_report_html_text(&h, results_path);
    as_strbuf_addf(&h, "</p>\n<p><a href=\"#provenance\">Provenance</a> &middot; <a href=\"#failures\">Failed and "
                       "skipped models</a> &middot; <a href=\"#summary-log\">Summary log</a> &middot; "
                       "<a href=\"#figures\">Figures</a> &middot; <a href=\"#tables\">Summary tables</a></p>\n");
    provenance(rf, results_path, &h);
    failures(rf, &h);
    summary_log(rf, results_path, &h, err);
    as_results_close(rf); /* the figures open it again */
    if (figures(results_path, &h, err))
        goto out;
    as_strbuf_addf(&h, "<h2 id=\"tables\">Summary tables</h2>\n<p>Per stage, model and field: min, max, mean and "
                       "std (population) over layers and heads, as the summary log prints them.</p>\n");
    if (as_report_summary_html(results_path, &h, err))
        goto out;
    as_strbuf_addf(&h, "<h2>Image check</h2>\n<pre id=\"image-check\">script did not run</pre>\n<script>%s</script>\n"
                       "</body>\n</html>\n", check_script);
    FILE *f = fopen(out_path, "w");
    if (!f) {
        as_error_set(err, AS_ERR_IO, "cannot write report '%s': %s", out_path, strerror(errno));
        goto out;
    }
    size_t w = fwrite(h.buf, 1, h.len, f);
    int bad = w != h.len || ferror(f);
    if (fclose(f) || bad) {
        as_error_set(err, AS_ERR_IO, "cannot write report '%s': %s", out_path, strerror(errno ? errno : EIO));
        remove(out_path);
        goto out;
    }
    rc = 0;
out:
    as_strbuf_release(&h);
    return rc;
}
