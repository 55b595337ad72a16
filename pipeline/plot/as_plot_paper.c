/* as_plot_paper.c: `attnstat plot --style paper`, the analysis notebooks' own files (names, sizes,
 * labels) from a results file alone; the contract is in as_plot.h (as_plot_paper). */
#define _GNU_SOURCE
#include "as_plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "as_plot_impl.h"
#include "as_results_read.h"
#include "as_stage.h"

/* The histsim heatmaps: field, file-name part, the notebook's print_stats name, colour-bar label. */
static const struct {
    const char *field, *stat_name, *cbar;
} heatmaps[] = {
    { "within_diag", "Within-diagonal similarity", "Similarity" },
    { "within_lower", "Within-lower similarity", "Similarity" },
    { "js_similarity", "JS similarity", "JS similarity" },
};
#define N_HEATMAPS (sizeof heatmaps / sizeof heatmaps[0])

/* The monotonicity figures: field, std field, file name, y label. */
static const struct {
    const char *field, *std_field, *file, *ylabel;
} mono_figs[] = {
    { "violation_rate", NULL, "violation_rate", "Violation Rate" },
    { "absolute_error", "absolute_error_std", "average_absolute_error", "Average Absolute Error" },
    { "relative_error", "relative_error_std", "average_relative_error", "Average Relative Error" },
};
#define N_MONO (sizeof mono_figs / sizeof mono_figs[0])

struct pmodel {
    char *name, *model_id, *dataset, *label; /* owned; "" when absent */
    char stem[256];                /* model id with '/' as '_', or the file-safe name */
    int64_t L, H, T;
    int ok;                        /* status ok and shape readable */
};

struct pctx {
    const char *results;
    char dir[4096];
    unsigned formats;              /* 0: the notebooks' */
    int std_band;
    struct as_results_file *rf;
    struct pmodel *m;
    int n;
    struct as_strbuf names;        /* drawn by this call */
    struct as_strbuf *made;
};

static char *attr_or_empty(const struct as_results_file *rf, const char *model, const char *name)
{
    const struct as_results_obj at = { model, NULL, NULL };
    struct as_error ignore = { AS_OK, "" };
    char *s = NULL;
    if (as_results_attr_str(rf, &at, name, &s, &ignore) <= 0) {
        free(s);
        s = as_xstrdup("");
    }
    return s;
}

static int load_models(struct pctx *c, struct as_error *err)
{
    struct as_results_list names = AS_RESULTS_LIST_INIT;
    if (as_results_models(c->rf, &names, err))
        return -1;
    c->m = as_xcalloc(names.n ? (size_t)names.n : 1, sizeof *c->m);
    for (int i = 0; i < names.n; i++) {
        struct pmodel *m = &c->m[c->n++];
        m->name = as_xstrdup(names.v[i]);
        m->model_id = attr_or_empty(c->rf, m->name, AS_RESULTS_ATTR_MODEL_ID);
        m->dataset = attr_or_empty(c->rf, m->name, AS_RESULTS_ATTR_DATASET);
        m->label = attr_or_empty(c->rf, m->name, AS_RESULTS_ATTR_LABEL);
        char *status = attr_or_empty(c->rf, m->name, AS_RESULTS_ATTR_STATUS);
        struct as_results_model_info mi;
        struct as_error ignore = { AS_OK, "" };
        m->ok = strcmp(status, AS_RESULTS_STATUS_FAILED) && !as_results_model_info(c->rf, m->name, &mi, &ignore);
        free(status);
        if (m->ok) {
            const struct as_results_obj at = { m->name, NULL, NULL };
            int64_t folder_T;
            m->L = mi.n_layers;
            m->H = mi.n_heads;
            m->T = mi.seq_len; /* the layout's seq_len (the folder) names the files when there is one */
            if (as_results_attr_i64(c->rf, &at, AS_RESULTS_ATTR_MODEL_SEQ_LEN, &folder_T, &ignore) == 1 && folder_T > 0)
                m->T = folder_T;
        }
        if (m->model_id[0]) {
            as_strlcpy(m->stem, m->model_id, sizeof m->stem);
            for (char *p = m->stem; *p; p++)
                if (*p == '/')
                    *p = '_';
            char tmp[256];
            as_plot_safe_name(m->stem, tmp, sizeof tmp);
            as_strlcpy(m->stem, tmp, sizeof m->stem);
        } else {
            as_plot_safe_name(m->name, m->stem, sizeof m->stem);
        }
    }
    as_results_list_release(&names);
    return 0;
}

/* The folder of a model's files, relative to DIR: "<dataset>/" or "". */
static void model_sub(const struct pmodel *m, char *out, size_t n)
{
    if (m->dataset[0]) {
        char safe[256];
        as_plot_safe_name(m->dataset, safe, sizeof safe);
        snprintf(out, n, "%s/", safe);
    } else {
        out[0] = '\0';
    }
}

static int ensure_dir(const struct pctx *c, const char *sub, struct as_error *err)
{
    char d[4400];
    snprintf(d, sizeof d, "%s/%s", c->dir, sub);
    return as_plot_mkdir_p(d, err);
}

static int emit(struct pctx *c, const char *base, unsigned dflt, enum as_plot_shape shape, as_plot_draw_fn draw,
                const void *arg, struct as_error *err)
{
    const struct as_plot_out out = { c->dir, c->formats ? c->formats : dflt, &c->names, c->made };
    return as_plot_emit(&out, base, shape, draw, arg, err);
}

/* A numeric field of one model with exactly `count` values, as doubles (owned), or NULL when the
 * model has no such field of that size. */
static double *read_field(const struct pctx *c, const char *model, const char *stage, const char *field,
                          int64_t count, struct as_error *err, int *failed)
{
    struct as_results_field_info fi;
    int r = as_results_field_info(c->rf, model, stage, field, &fi, err);
    if (r < 0)
        *failed = 1;
    if (r <= 0 || fi.count != count || fi.is_scale)
        return NULL;
    double *v = as_xcalloc((size_t)count, sizeof *v);
    if (as_results_field_f64(c->rf, model, stage, field, v, (size_t)count, err)) {
        free(v);
        *failed = 1;
        return NULL;
    }
    return v;
}

/* The histsim heatmaps and summary of one model. */
static int draw_histsim(struct pctx *c, const struct pmodel *m, struct as_error *err)
{
    char sub[300], base[1200];
    struct as_strbuf txt = AS_STRBUF_INIT;
    int rc = -1, failed = 0, any = 0;
    model_sub(m, sub, sizeof sub);
    for (size_t k = 0; k < N_HEATMAPS; k++) {
        double *v = read_field(c, m->name, "histsim", heatmaps[k].field, m->L * m->H, err, &failed);
        if (failed)
            goto out;
        if (!v)
            continue;
        if (!any++ && ensure_dir(c, sub, err)) {
            free(v);
            goto out;
        }
        /* the summary line, computed as the stage computes the summary log's */
        struct as_strbuf line = AS_STRBUF_INIT;
        as_log_stats_rows(&line, m->name, "histsim", heatmaps[k].field, v, (size_t)m->L, (size_t)m->H, (size_t)m->H);
        const char *bar = strstr(as_strbuf_str(&line), " | ");
        as_strbuf_addf(&txt, "%s%s", heatmaps[k].stat_name, bar ? bar : "\n");
        as_strbuf_release(&line);
        for (int64_t i = 0; i < m->L * m->H; i++)
            if (!isfinite(v[i]))
                v[i] = NAN;
        struct as_plot_heatmap h = { "", NULL, "Head", "Layer", heatmaps[k].cbar, v, m->L, m->H, 0.0, 1.0, 0,
                                     AS_PLOT_SHAPE_PAPER_SQUARE };
        snprintf(base, sizeof base, "%sattention_stats_%s_%s_%lld", sub, heatmaps[k].field, m->stem, (long long)m->T);
        int e = emit(c, base, AS_PLOT_PNG, AS_PLOT_SHAPE_PAPER_SQUARE, as_plot_draw_heatmap, &h, err);
        free(v);
        if (e)
            goto out;
    }
    if (any) {
        char name[1300], path[5600];
        snprintf(name, sizeof name, "%sattention_stats_summary_%s_%lld.txt", sub, m->stem, (long long)m->T);
        snprintf(path, sizeof path, "%s/%s", c->dir, name);
        FILE *f = fopen(path, "w");
        if (!f || fputs(as_strbuf_str(&txt), f) == EOF || fclose(f)) {
            as_error_set(err, AS_ERR_IO, "cannot write '%s'", path);
            goto out;
        }
        as_strbuf_addf(&c->names, "%s\n", name);
        if (c->made)
            as_strbuf_addf(c->made, "%s\n", name);
    }
    rc = 0;
out:
    as_strbuf_release(&txt);
    return rc;
}

/* The stored matrices of one model (group matrices, datasets qk_mean_<l>_<h>, qk_var_<l>_<h>). */
static int draw_matrices(struct pctx *c, const struct pmodel *m, struct as_error *err)
{
    struct as_results_list f = AS_RESULTS_LIST_INIT;
    struct as_results_list stages = AS_RESULTS_LIST_INIT;
    int has = 0, rc = -1;
    if (as_results_stages(c->rf, m->name, &stages, err))
        return -1;
    for (int i = 0; i < stages.n; i++)
        has |= !strcmp(stages.v[i], AS_RESULTS_GROUP_MATRICES);
    as_results_list_release(&stages);
    if (!has)
        return 0;
    if (as_results_fields(c->rf, m->name, AS_RESULTS_GROUP_MATRICES, &f, err))
        return -1;
    char sub[300], base[1200];
    model_sub(m, sub, sizeof sub);
    if (f.n && ensure_dir(c, sub, err))
        goto out;
    for (int i = 0; i < f.n; i++) {
        const char *kind;
        if (!strncmp(f.v[i], AS_RESULTS_MATRIX_MEAN_PREFIX, strlen(AS_RESULTS_MATRIX_MEAN_PREFIX)))
            kind = "mean";
        else if (!strncmp(f.v[i], AS_RESULTS_MATRIX_VAR_PREFIX, strlen(AS_RESULTS_MATRIX_VAR_PREFIX)))
            kind = "variance";
        else
            continue;
        struct as_results_field_info fi;
        if (as_results_field_info(c->rf, m->name, AS_RESULTS_GROUP_MATRICES, f.v[i], &fi, err) <= 0 || fi.ndim != 2 ||
            fi.dims[0] != fi.dims[1])
            continue;
        const struct as_results_obj at = { m->name, AS_RESULTS_GROUP_MATRICES, f.v[i] };
        int64_t layer = -1, head = -1;
        struct as_error ignore = { AS_OK, "" };
        if (as_results_attr_i64(c->rf, &at, AS_RESULTS_ATTR_MATRIX_LAYER, &layer, &ignore) != 1 ||
            as_results_attr_i64(c->rf, &at, AS_RESULTS_ATTR_MATRIX_HEAD, &head, &ignore) != 1)
            continue;
        int64_t T = fi.dims[0];
        double *v = as_xcalloc((size_t)(T * T), sizeof *v);
        if (as_results_field_f64(c->rf, m->name, AS_RESULTS_GROUP_MATRICES, f.v[i], v, (size_t)(T * T), err)) {
            free(v);
            goto out;
        }
        double lo, hi;
        as_plot_mask_upper(v, T, &lo, &hi);
        struct as_plot_heatmap h = { "", NULL, "Key Position", "Query Position",
                                     !strcmp(kind, "mean") ? "Mean Attention Score" : "Attention Score Variance", v, T,
                                     T, lo, hi, 1, AS_PLOT_SHAPE_PAPER_SQUARE };
        snprintf(base, sizeof base, "%sattention_heatmap_%s_%s_%lld_%lld_%lld", sub, kind, m->stem, (long long)m->T,
                 (long long)layer, (long long)head);
        int e = emit(c, base, AS_PLOT_PNG, AS_PLOT_SHAPE_PAPER_SQUARE, as_plot_draw_heatmap, &h, err);
        free(v);
        if (e)
            goto out;
    }
    rc = 0;
out:
    as_results_list_release(&f);
    return rc;
}

/* The monotonicity figures of every (dataset, T): one folder each. */
static int draw_monotonicity(struct pctx *c, struct as_error *err)
{
    int *done = as_xcalloc(c->n ? (size_t)c->n : 1, sizeof *done), rc = -1, failed = 0;
    struct as_plot_line *lv = as_xcalloc(c->n ? (size_t)c->n : 1, sizeof *lv);
    double **vals = as_xcalloc(c->n ? 2 * (size_t)c->n : 2, sizeof *vals);
    for (int g = 0; g < c->n; g++) {
        if (done[g] || !c->m[g].ok)
            continue;
        char sub[400], safe[256];
        as_plot_safe_name(c->m[g].dataset, safe, sizeof safe);
        if (c->m[g].dataset[0])
            snprintf(sub, sizeof sub, "%s/%lld/", safe, (long long)c->m[g].T);
        else
            snprintf(sub, sizeof sub, "%lld/", (long long)c->m[g].T);
        int made_dir = 0;
        for (size_t k = 0; k < N_MONO; k++) {
            int n = 0, nv = 0;
            for (int i = g; i < c->n; i++) {
                const struct pmodel *m = &c->m[i];
                if (!m->ok || strcmp(m->dataset, c->m[g].dataset) || m->T != c->m[g].T)
                    continue;
                done[i] = 1;
                double *y = read_field(c, m->name, "monotonicity", mono_figs[k].field, m->L, err, &failed);
                if (failed)
                    goto out;
                if (!y)
                    continue;
                double *sd = NULL;
                if (c->std_band && mono_figs[k].std_field) {
                    sd = read_field(c, m->name, "monotonicity", mono_figs[k].std_field, m->L, err, &failed);
                    if (failed) {
                        free(y);
                        goto out;
                    }
                }
                for (int64_t l = 0; l < m->L; l++) {
                    if (!isfinite(y[l]))
                        y[l] = NAN;
                    if (sd && !isfinite(sd[l]))
                        sd[l] = NAN;
                }
                vals[nv++] = y;
                if (sd)
                    vals[nv++] = sd;
                lv[n] = (struct as_plot_line){ m->label[0] ? m->label : m->name, n % AS_PLOT_MODEL_COLOURS, y, sd, m->L };
                n++;
            }
            if (n) {
                if (!made_dir++ && ensure_dir(c, sub, err))
                    goto free_vals;
                struct as_plot_lines l = { "", mono_figs[k].ylabel, lv, n, c->std_band && mono_figs[k].std_field,
                                           AS_PLOT_SHAPE_WIDE, 1 };
                char base[1200];
                snprintf(base, sizeof base, "%s%s", sub, mono_figs[k].file);
                if (emit(c, base, AS_PLOT_PDF, AS_PLOT_SHAPE_WIDE, as_plot_draw_lines, &l, err))
                    goto free_vals;
            }
            for (int i = 0; i < nv; i++)
                free(vals[i]);
            continue;
        free_vals:
            for (int i = 0; i < nv; i++)
                free(vals[i]);
            goto out;
        }
    }
    rc = 0;
out:
    free(vals);
    free(lv);
    free(done);
    return rc;
}

int as_plot_paper(const char *results_path, const struct as_plot_paper_opts *o, struct as_strbuf *made,
                  struct as_error *err)
{
    struct pctx c;
    memset(&c, 0, sizeof c);
    c.results = results_path;
    c.made = made;
    c.formats = o ? o->formats : 0;
    c.std_band = o ? o->std_band : 0;
    const char *dir = o && o->out_dir && *o->out_dir ? o->out_dir : ".";
    if (as_strlcpy(c.dir, dir, sizeof c.dir))
        return as_error_set(err, AS_ERR_IO, "output directory name '%.64s...' is too long", dir);
    int rc = -1;
    if (as_results_open(results_path, &c.rf, err) || load_models(&c, err))
        goto out;
    if (!as_results_is_complete(c.rf))
        fprintf(stderr, "attnstat: warning: '%s' is not complete: figures show only the units that finished\n",
                results_path);
    if (as_plot_mkdir_p(c.dir, err))
        goto out;
    for (int i = 0; i < c.n; i++)
        if (c.m[i].ok && (draw_histsim(&c, &c.m[i], err) || draw_matrices(&c, &c.m[i], err)))
            goto out;
    if (draw_monotonicity(&c, err))
        goto out;
    rc = 0;
out:
    as_results_close(c.rf);
    if (o && o->record && c.names.len) {
        struct as_error e2 = { AS_OK, "" };
        if (as_results_record_figures(results_path, c.names.buf, &e2))
            fprintf(stderr, "attnstat: warning: %s\n", e2.msg);
    }
    for (int i = 0; i < c.n; i++) {
        free(c.m[i].name);
        free(c.m[i].model_id);
        free(c.m[i].dataset);
        free(c.m[i].label);
    }
    free(c.m);
    as_strbuf_release(&c.names);
    return rc;
}
