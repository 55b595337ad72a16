/* as_plot.c: paper figures from a results file: which figures (the stages' ops->figures), their
 * look (the style table below), the numbers (read through as_results_read.h), and the mean-score
 * matrix of one (layer, head). Drawing is in as_plot_draw.c, the command line in as_plot_cli.c;
 * the contract is in as_plot.h. */
#define _GNU_SOURCE
#include "as_plot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "as_plot_impl.h"
#include "as_reader.h"
#include "as_results_read.h"
#include "as_stage_registry.h"

/* The input tensor the --matrix figure draws (a model records its file in attribute
 * AS_RESULTS_ATTR_INPUT_PREFIX MATRIX_INPUT). */
#define MATRIX_INPUT "qk_mean"

/* ---- what to draw */

enum fig_kind { FIG_ANY = 0, FIG_HEATMAP, FIG_LINES, FIG_KIND_COUNT };
enum fig_range { RANGE_AUTO = 0, RANGE_UNIT };   /* AUTO: one range shared by the models drawn */

struct fig_spec {
    const char *stage, *field;
    enum fig_kind kind;            /* FIG_ANY: by the dataset's shape */
    enum fig_range range;
    const char *title;             /* heatmaps: "<title> - <model>"; NULL: "<stage>: <field>" */
    const char *axis;              /* colour-bar label or y-axis label */
    const char *std_field;         /* lines: the field holding the std for the optional band */
};

/* The look of the paper's figures. Which fields get a figure is up to the stages (ops->figures);
 * a field listed there with no row here is drawn by its shape with an automatic range and its
 * name as label. Figures are drawn, and listed in the file's `figures` attribute, in this
 * table's order first, then the other listed fields in registry order (see collect_specs). */
static const struct fig_spec fig_styles[] = {
    { "histsim", "within_diag", FIG_HEATMAP, RANGE_UNIT, "Within-diagonal similarity", "Similarity", NULL },
    { "histsim", "within_lower", FIG_HEATMAP, RANGE_UNIT, "Within-lower-triangle similarity", "Similarity", NULL },
    { "histsim", "js_similarity", FIG_HEATMAP, RANGE_UNIT, "JS similarity, diagonal vs lower triangle",
      "JS similarity", NULL },
    { "jacobian", "r_diag", FIG_HEATMAP, RANGE_AUTO, "Jacobian diagonal energy ratio", "r_diag", NULL },
    { "jacobian", "cos_diag", FIG_HEATMAP, RANGE_AUTO, "Jacobian diagonal cosine", "cos_diag", NULL },
    { "monotonicity", "violation_rate", FIG_LINES, RANGE_AUTO, "Monotonicity violation rate", "Violation rate",
      NULL },
    { "monotonicity", "absolute_error", FIG_LINES, RANGE_AUTO, "Monotonicity absolute error", "Absolute error",
      "absolute_error_std" },
    { "monotonicity", "relative_error", FIG_LINES, RANGE_AUTO, "Monotonicity relative error", "Relative error",
      "relative_error_std" },
    { "patterns", "layer_entropy", FIG_LINES, RANGE_AUTO, "Attention entropy of the last query", "Entropy (nats)",
      NULL },
    { "activations", "q_var", FIG_LINES, RANGE_AUTO, "Query activation variance", "Var(Q)", NULL },
    { "activations", "k_var", FIG_LINES, RANGE_AUTO, "Key activation variance", "Var(K)", NULL },
    { "activations", "v_var", FIG_LINES, RANGE_AUTO, "Value activation variance", "Var(V)", NULL },
};
#define FIG_STYLES_N (sizeof fig_styles / sizeof fig_styles[0])

struct spec_list {
    struct fig_spec *v;
    int n;
};

/* Does the stage list `field` in its ops->figures? */
static int stage_lists(const struct as_stage_ops *ops, const char *field)
{
    for (int k = 0; ops && ops->figures && ops->figures[k]; k++)
        if (!strcmp(ops->figures[k], field))
            return 1;
    return 0;
}

static const struct fig_spec *style_of(const char *stage, const char *field)
{
    for (size_t i = 0; i < FIG_STYLES_N; i++)
        if (!strcmp(fig_styles[i].stage, stage) && !strcmp(fig_styles[i].field, field))
            return &fig_styles[i];
    return NULL;
}

/* Every field a registered stage lists in ops->figures, once: those with a style in the style
 * table's order, then the others in registry order (drawn by shape). Owned: free(out->v). */
static void collect_specs(struct spec_list *out)
{
    size_t cap = 1;
    for (int i = 0; as_stages[i]; i++)
        for (int k = 0; as_stages[i]->figures && as_stages[i]->figures[k]; k++)
            cap++;
    out->v = as_xcalloc(cap, sizeof *out->v);
    out->n = 0;
    for (size_t i = 0; i < FIG_STYLES_N; i++)
        if (stage_lists(as_stage_find(fig_styles[i].stage), fig_styles[i].field))
            out->v[out->n++] = fig_styles[i];
    for (int i = 0; as_stages[i]; i++) {
        const struct as_stage_ops *ops = as_stages[i];
        for (int k = 0; ops->figures && ops->figures[k]; k++) {
            int seen = style_of(ops->name, ops->figures[k]) != NULL;
            for (int j = 0; j < k; j++)   /* a name listed twice is drawn once */
                seen |= !strcmp(ops->figures[j], ops->figures[k]);
            if (!seen)
                out->v[out->n++] = (struct fig_spec){ ops->name, ops->figures[k], FIG_ANY, RANGE_AUTO, NULL,
                                                      ops->figures[k], NULL };
        }
    }
}

/* ---- small helpers */

/* [A-Za-z0-9._+-] kept, anything else becomes '_'. */
void as_plot_safe_name(const char *in, char *out, size_t n)
{
    size_t i = 0;
    for (; in[i] && i + 1 < n; i++) {
        unsigned char c = (unsigned char)in[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                 c == '_' || c == '+' || c == '-';
        out[i] = ok ? (char)c : '_';
    }
    out[i] = 0;
    if (out[0] == '.')
        out[0] = '_';
}

int as_plot_mkdir_p(const char *dir, struct as_error *err)
{
    char buf[4096];
    if (as_strlcpy(buf, dir, sizeof buf))
        return as_error_set(err, AS_ERR_IO, "output directory name '%s' is too long", dir);
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || !*p) {
            char c = *p;
            *p = 0;
            if (mkdir(buf, 0777) && errno != EEXIST)
                return as_error_set(err, AS_ERR_IO, "cannot create directory '%s': %s", buf, strerror(errno));
            *p = c;
            if (!c)
                break;
        }
    }
    struct stat st;
    if (stat(dir, &st) || !S_ISDIR(st.st_mode))
        return as_error_set(err, AS_ERR_IO, "'%s' is not a directory", dir);
    return 0;
}

/* Is `name` one of the comma-separated items of `list`? */
static int in_list(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncmp(p, name, n))
            return 1;
        if (!e)
            break;
        p = e + 1;
    }
    return 0;
}

/* ---- the open results file */

struct model {
    char name[256];
    char safe[256];                /* for file names */
    int64_t L, H, T;
    int color;                     /* 0 .. AS_PLOT_MODEL_COLOURS - 1, by position in the file */
};

struct ctx {
    const char *results;
    char dir[4096];
    unsigned formats;
    int std_band;
    struct as_results_file *rf;    /* NULL once closed */
    struct model *m;
    int n;
    struct as_strbuf *made;        /* caller's list, may be NULL */
    struct as_strbuf names;        /* what this call drew */
};

static int open_model(struct ctx *c, const char *name, struct model *m, struct as_error *err)
{
    memset(m, 0, sizeof *m);
    if (as_strlcpy(m->name, name, sizeof m->name))
        return as_error_set(err, AS_ERR_INPUT, "'%s': model name '%.40s...' is too long", c->results, name);
    as_plot_safe_name(name, m->safe, sizeof m->safe);
    struct as_results_model_info mi;
    if (as_results_model_info(c->rf, name, &mi, err))
        return -1;
    m->L = mi.n_layers;
    m->H = mi.n_heads;
    m->T = mi.seq_len;
    return 0;
}

/* The models of the file in its order; only those in `only` (comma list) when it is not NULL;
 * with `only` naming one model, that one. */
static int open_models(struct ctx *c, const char *only, struct as_error *err)
{
    struct as_results_list names = AS_RESULTS_LIST_INIT;
    struct as_strbuf all = AS_STRBUF_INIT;
    int rc = -1;
    if (as_results_models(c->rf, &names, err))
        return -1;
    c->m = as_xcalloc(names.n ? (size_t)names.n : 1, sizeof *c->m);
    for (int i = 0; i < names.n; i++) {
        const char *name = names.v[i];
        as_strbuf_addf(&all, "%s%s", all.len ? ", " : "", name);
        if (only && !in_list(only, name))
            continue;
        if (open_model(c, name, &c->m[c->n], err))
            goto out;
        c->m[c->n].color = i % AS_PLOT_MODEL_COLOURS;
        c->n++;
    }
    if (only) {   /* every name asked for must exist */
        for (const char *p = only; *p;) {
            const char *e = strchr(p, ',');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            int found = 0;
            for (int k = 0; k < c->n; k++)
                if (strlen(c->m[k].name) == len && !strncmp(c->m[k].name, p, len))
                    found = 1;
            if (!found && len) {
                as_error_set(err, AS_ERR_USAGE, "no model '%.*s' in '%s' (it has: %s)", (int)len, p, c->results,
                             all.len ? all.buf : "no models");
                goto out;
            }
            if (!e)
                break;
            p = e + 1;
        }
    }
    rc = 0;
out:
    as_strbuf_release(&all);
    as_results_list_release(&names);
    return rc;
}

/* Close the results file (so that it can be opened read-write to record the figures). */
static void ctx_close_file(struct ctx *c)
{
    as_results_close(c->rf);
    c->rf = NULL;
}

static void ctx_release(struct ctx *c)
{
    ctx_close_file(c);
    free(c->m);
    as_strbuf_release(&c->names);
    c->m = NULL;
    c->n = 0;
}

static int ctx_init(struct ctx *c, const char *results, const struct as_plot_opts *o, struct as_strbuf *made,
                    struct as_error *err)
{
    memset(c, 0, sizeof *c);
    c->results = results;
    c->made = made;
    c->formats = o && o->formats ? o->formats : AS_PLOT_PNG;
    c->std_band = o ? o->std_band : 0;
    const char *dir = o && o->out_dir && *o->out_dir ? o->out_dir : ".";
    if (as_strlcpy(c->dir, dir, sizeof c->dir))
        return as_error_set(err, AS_ERR_IO, "output directory name '%.64s...' is too long", dir);
    if (c->formats & ~(unsigned)(AS_PLOT_PNG | AS_PLOT_PDF | AS_PLOT_SVG))
        return as_error_set(err, AS_ERR_USAGE, "unknown figure format bits 0x%x", c->formats);
    return 0;
}

static int ctx_emit(struct ctx *c, const char *base, enum as_plot_shape shape, as_plot_draw_fn draw, const void *arg,
                    struct as_error *err)
{
    const struct as_plot_out out = { c->dir, c->formats, &c->names, c->made };
    return as_plot_emit(&out, base, shape, draw, arg, err);
}

/* Record what this call drew in the results file (closed by now): a failure is a warning. */
static void ctx_record(const struct ctx *c)
{
    struct as_error err = { AS_OK, "" };
    if (c->names.len && as_results_record_figures(c->results, c->names.buf, &err))
        fprintf(stderr, "attnstat: warning: %s\n", err.msg);
}

/* ---- one field of every model */

/* One field of one model, as doubles; NaN where not computed. (L,) fields: cols == 1. */
struct series {
    enum fig_kind kind;            /* 0: absent */
    int64_t rows, cols;
    double *v;                     /* rows * cols, C order */
    double *sd;                    /* (rows,) std for the band, or NULL */
    int n_missing;
};

static void series_release(struct series *s)
{
    free(s->v);
    free(s->sd);
    memset(s, 0, sizeof *s);
}

/* Read field <stage>/<field> of model m if it has the shape of `want` ((L,) lines, (L, H) heatmap;
 * FIG_ANY: either) and its dimension scales, if any, are named layer (and head).
 * 1 read, 0 absent or another shape (a warning when the name matches but the shape does not),
 * -1 on a read error. */
static int read_series(const struct ctx *c, const struct model *m, const char *stage, const char *field,
                       enum fig_kind want, struct series *s, struct as_error *err)
{
    memset(s, 0, sizeof *s);
    struct as_results_field_info fi;
    int r = as_results_field_info(c->rf, m->name, stage, field, &fi, err);
    if (r <= 0)
        return r;
    if (fi.ndim < 1 || fi.ndim > 2 || fi.is_scale)
        return 0;
    enum fig_kind kind = fi.ndim == 2 ? FIG_HEATMAP : FIG_LINES;
    if (want != FIG_ANY && want != kind)
        return 0;
    const char *n0 = fi.dim_names[0], *n1 = fi.ndim == 2 ? fi.dim_names[1] : "";
    if ((n0[0] && strcmp(n0, AS_RESULTS_DIM_LAYER)) || (n1[0] && strcmp(n1, AS_RESULTS_DIM_HEAD)))
        return 0;
    int64_t L = m->L, H = m->H;
    if (fi.ndim == 2 && !strcmp(n1, AS_RESULTS_DIM_HEAD))
        H = fi.dims[1];   /* the scale says heads: a stage may count them its own way */
    if (fi.dims[0] != L || (fi.ndim == 2 && fi.dims[1] != H)) {
        /* a field of the style table, or one whose scales say (layer[, head]): worth a word */
        if (want != FIG_ANY || (n0[0] && (fi.ndim == 1 || n1[0]))) {
            char got[64], exp[64];
            if (fi.ndim == 2) {
                snprintf(got, sizeof got, "%llu, %llu", (unsigned long long)fi.dims[0],
                         (unsigned long long)fi.dims[1]);
                snprintf(exp, sizeof exp, "%lld, %lld", (long long)L, (long long)H);
            } else {
                snprintf(got, sizeof got, "%llu,", (unsigned long long)fi.dims[0]);
                snprintf(exp, sizeof exp, "%lld,", (long long)L);
            }
            fprintf(stderr, "attnstat: warning: model '%s': '%s/%s' has shape (%s), expected (%s): not drawn\n",
                    m->name, stage, field, got, exp);
        }
        return 0;
    }
    s->kind = kind;
    s->rows = L;
    s->cols = fi.ndim == 2 ? H : 1;
    s->v = as_xcalloc((size_t)(s->rows * s->cols), sizeof *s->v);
    if (as_results_field_f64(c->rf, m->name, stage, field, s->v, (size_t)(s->rows * s->cols), err)) {
        series_release(s);
        return -1;
    }
    /* not computed: NaN, or a user-defined fill value other than 0 (0 is a real value too often) */
    double fill = fi.has_fill && fi.fill != 0.0 ? fi.fill : NAN;
    for (int64_t i = 0; i < s->rows * s->cols; i++) {
        if (s->v[i] == fill || !isfinite(s->v[i]))
            s->v[i] = NAN;
        if (isnan(s->v[i]))
            s->n_missing++;
    }
    return 1;
}

/* Draw one figure spec: a heatmap per model, or one lines figure across models. */
static int draw_spec(struct ctx *c, const struct fig_spec *sp, struct as_error *err)
{
    struct series *s = as_xcalloc((size_t)c->n, sizeof *s);
    struct as_plot_line *lv = NULL;
    enum fig_kind kind = sp->kind;
    int rc = -1, have = 0;
    char title[256], base[700];
    if (sp->title)
        as_strlcpy(title, sp->title, sizeof title);
    else
        snprintf(title, sizeof title, "%s: %s", sp->stage, sp->field);
    for (int m = 0; m < c->n; m++) {
        int r = read_series(c, &c->m[m], sp->stage, sp->field, kind, &s[m], err);
        if (r < 0)
            goto out;
        if (r == 0)
            continue;
        kind = s[m].kind;
        have++;
        if (kind == FIG_LINES && sp->std_field && c->std_band) {
            struct series sd;
            r = read_series(c, &c->m[m], sp->stage, sp->std_field, FIG_LINES, &sd, err);
            if (r < 0)
                goto out;
            if (r > 0) {
                s[m].sd = sd.v;
                sd.v = NULL;
            }
        }
    }
    if (!have) {
        rc = 0;
        goto out;
    }
    if (kind == FIG_HEATMAP) {
        double lo = 0.0, hi = 1.0;
        if (sp->range == RANGE_AUTO) {
            lo = INFINITY;
            hi = -INFINITY;
            for (int m = 0; m < c->n; m++)
                for (int64_t i = 0; s[m].kind && i < s[m].rows * s[m].cols; i++)
                    if (!isnan(s[m].v[i])) {
                        lo = fmin(lo, s[m].v[i]);
                        hi = fmax(hi, s[m].v[i]);
                    }
            if (!(lo <= hi)) {
                lo = 0.0;
                hi = 1.0;
            }
        }
        for (int m = 0; m < c->n; m++) {
            if (!s[m].kind)
                continue;
            char full[400], sub[128] = "";
            snprintf(full, sizeof full, "%s \xe2\x80\x94 %s", title, c->m[m].name);
            if (s[m].n_missing)
                snprintf(sub, sizeof sub, "grey: not computed (%d of %lld)", s[m].n_missing,
                         (long long)(s[m].rows * s[m].cols));
            struct as_plot_heatmap h = { full, sub[0] ? sub : NULL, "Head", "Layer", sp->axis, s[m].v, s[m].rows,
                                         s[m].cols, lo, hi, 0, AS_PLOT_SHAPE_SQUARE };
            snprintf(base, sizeof base, "%s_%s_%s", c->m[m].safe, sp->stage, sp->field);
            if (ctx_emit(c, base, AS_PLOT_SHAPE_SQUARE, as_plot_draw_heatmap, &h, err))
                goto out;
        }
    } else {
        lv = as_xcalloc((size_t)have, sizeof *lv);
        int n = 0;
        for (int m = 0; m < c->n; m++)
            if (s[m].kind)
                lv[n++] = (struct as_plot_line){ c->m[m].name, c->m[m].color, s[m].v, s[m].sd, s[m].rows };
        struct as_plot_lines l = { title, sp->axis, lv, n, c->std_band && sp->std_field, AS_PLOT_SHAPE_WIDE, 0 };
        snprintf(base, sizeof base, "all_%s_%s", sp->stage, sp->field);
        if (ctx_emit(c, base, AS_PLOT_SHAPE_WIDE, as_plot_draw_lines, &l, err))
            goto out;
    }
    rc = 0;
out:
    for (int m = 0; m < c->n; m++)
        series_release(&s[m]);
    free(s);
    free(lv);
    return rc;
}

/* ---- every figure of a results file */

int as_plot_results(const char *results_path, const struct as_plot_opts *o, struct as_strbuf *made,
                    struct as_error *err)
{
    struct ctx c;
    struct spec_list specs = { NULL, 0 };
    int rc = -1;
    if (ctx_init(&c, results_path, o, made, err))
        return -1;
    if (as_results_open(results_path, &c.rf, err) || open_models(&c, o ? o->models : NULL, err))
        goto out;
    if (!as_results_is_complete(c.rf))
        fprintf(stderr, "attnstat: warning: '%s' is not complete: figures show only the units that finished\n",
                results_path);
    if (as_plot_mkdir_p(c.dir, err))
        goto out;
    collect_specs(&specs);
    for (int i = 0; i < specs.n; i++)
        if (draw_spec(&c, &specs.v[i], err))
            goto out;
    rc = 0;
out:
    free(specs.v);
    ctx_close_file(&c);
    ctx_record(&c);   /* what was drawn, even if a later figure failed */
    ctx_release(&c);
    return rc;
}

int as_plot_run_figures(const char *results_path, const char *dir, unsigned formats, struct as_error *err)
{
    if (formats & AS_PLOT_STYLE_PAPER) {
        struct as_plot_paper_opts po = { dir, 0, 0, 1 };
        return as_plot_paper(results_path, &po, NULL, err);
    }
    struct as_plot_opts o = { dir, formats, NULL, 0 };
    return as_plot_results(results_path, &o, NULL, err);
}

/* ---- one T x T matrix of the input qk_mean */

static int open_input(const char *results, const char *spec, const char *key, struct as_tensor_file *tf,
                      struct as_error *err)
{
    if (!strncmp(spec, "synthetic:", 10))
        return as_tensor_file_open(tf, &as_reader_synth, spec, key ? key : MATRIX_INPUT, err);
    if (spec[0] != '/' && access(spec, F_OK)) {
        const char *slash = strrchr(results, '/');
        if (slash) {
            char alt[4096];
            if ((size_t)snprintf(alt, sizeof alt, "%.*s/%s", (int)(slash - results), results, spec) < sizeof alt &&
                !access(alt, F_OK))
                return as_tensor_file_open(tf, NULL, alt, key, err);
        }
    }
    return as_tensor_file_open(tf, NULL, spec, key, err);
}

void as_plot_mask_upper(double *v, int64_t T, double *lo, double *hi)
{
    *lo = INFINITY;
    *hi = -INFINITY;
    for (int64_t i = 0; i < T; i++)
        for (int64_t j = 0; j < T; j++) {
            double *x = &v[i * T + j];
            if (j > i || !isfinite(*x)) {
                *x = NAN;
                continue;
            }
            *lo = fmin(*lo, *x);
            *hi = fmax(*hi, *x);
        }
    if (!(*lo <= *hi)) {
        *lo = 0.0;
        *hi = 1.0;
    }
}

int as_plot_matrix(const char *results_path, const char *model, int64_t layer, int64_t head,
                   const struct as_plot_opts *o, struct as_strbuf *made, struct as_error *err)
{
    struct ctx c;
    struct as_tensor_file tf;
    int tf_open = 0, rc = -1;
    char *spec = NULL, *key = NULL;
    double *v = NULL;
    if (ctx_init(&c, results_path, o, made, err))
        return -1;
    if (as_results_open(results_path, &c.rf, err))
        goto out;
    if (strchr(model, ',')) {
        as_error_set(err, AS_ERR_USAGE, "--matrix takes one model, not '%s'", model);
        goto out;
    }
    if (open_models(&c, model, err))
        goto out;
    if (c.n != 1) {
        as_error_set(err, AS_ERR_USAGE, "no model '%s' in '%s'", model, results_path);
        goto out;
    }
    const struct model *m = &c.m[0];
    if (layer < 0 || layer >= m->L || head < 0 || head >= m->H) {
        as_error_set(err, AS_ERR_USAGE, "model '%s' has layers 0..%lld and heads 0..%lld: no layer %lld head %lld",
                     model, (long long)m->L - 1, (long long)m->H - 1, (long long)layer, (long long)head);
        goto out;
    }
    const struct as_results_obj at = { m->name, NULL, NULL };
    struct as_error ignore = { AS_OK, "" };
    if (as_results_attr_str(c.rf, &at, AS_RESULTS_ATTR_INPUT_PREFIX MATRIX_INPUT, &spec, &ignore) <= 0) {
        as_error_set(err, AS_ERR_INPUT, "'%s': model '%s' records no input '" MATRIX_INPUT "' (attribute '"
                     AS_RESULTS_ATTR_INPUT_PREFIX MATRIX_INPUT "')", results_path, model);
        goto out;
    }
    if (as_results_attr_str(c.rf, &at, AS_RESULTS_ATTR_INPUT_KEY_PREFIX MATRIX_INPUT, &key, &ignore) < 0)
        key = NULL;
    if (open_input(results_path, spec, key, &tf, err)) {
        as_error_prefix(err, "model '%s' input " MATRIX_INPUT ": ", model);
        goto out;
    }
    tf_open = 1;
    const struct as_tensor_info *ti = as_tensor_file_info(&tf);
    if (ti->ndim != 4 || ti->shape[0] <= layer || ti->shape[1] <= head || ti->shape[2] != ti->shape[3] ||
        ti->shape[2] < 1) {
        as_error_set(err, AS_ERR_INPUT, "model '%s': input " MATRIX_INPUT " '%s' is not (L, H, T, T) with L > %lld, "
                     "H > %lld", model, spec, (long long)layer, (long long)head);
        goto out;
    }
    int64_t T = ti->shape[2]; /* T * T fits: the reader checked the shape's element count */
    v = as_xcalloc((size_t)(T * T), sizeof *v);
    int64_t start[4] = { layer, head, 0, 0 }, count[4] = { 1, 1, T, T };
    if (as_tensor_file_read(&tf, start, count, AS_DTYPE_F64, v, err)) {
        as_error_prefix(err, "model '%s': ", model);
        goto out;
    }
    double lo, hi;
    as_plot_mask_upper(v, T, &lo, &hi);
    char title[400], base[700];
    snprintf(title, sizeof title, "Mean QK score \xe2\x80\x94 %s, layer %lld, head %lld", model, (long long)layer,
             (long long)head);
    struct as_plot_heatmap h = { title, NULL, "Key position", "Query position", "Mean score", v, T, T, lo, hi, 1,
                                 AS_PLOT_SHAPE_SQUARE };
    snprintf(base, sizeof base, "%s_" MATRIX_INPUT "_layer%lld_head%lld", m->safe, (long long)layer,
             (long long)head);
    ctx_close_file(&c);
    if (as_plot_mkdir_p(c.dir, err) || ctx_emit(&c, base, AS_PLOT_SHAPE_SQUARE, as_plot_draw_heatmap, &h, err))
        goto out;
    rc = 0;
out:
    if (tf_open)
        as_tensor_file_close(&tf);
    free(v);
    free(spec);
    free(key);
    ctx_close_file(&c);
    ctx_record(&c);   /* what was drawn, even if a later figure failed */
    ctx_release(&c);
    return rc;
}
