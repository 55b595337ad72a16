/* as_report_table.c: the long CSV table and the per-stage summaries (markdown, LaTeX, HTML) of a
 * results file; the contract is in as_report.h. */
#include "as_report.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "as_report_impl.h"
#include "as_results_read.h"
#include "as_stage.h"

/* ---- walking the file: every (model, stage, field) with layer/head dimensions */

enum field_shape { SHAPE_NONE = 0, SHAPE_LAYER, SHAPE_LAYER_HEAD, SHAPE_HEAD, SHAPE_COUNT };

struct field_data {
    const char *model, *stage, *field;
    const char *model_id, *dataset;
    int64_t seq_len;
    enum field_shape shape;
    int is_int;
    int64_t rows, cols;            /* SHAPE_LAYER: (L, 1); LAYER_HEAD: (L, H); HEAD: (1, H) */
    double *v;                     /* rows * cols, as float64 */
    int64_t *iv;                   /* the same as int64 when is_int */
};

typedef int (*field_fn)(const struct field_data *fd, void *ctx, struct as_error *err);

static enum field_shape shape_of(const struct as_results_field_info *fi)
{
    if (fi->is_scale || fi->ndim < 1 || fi->ndim > 2)
        return SHAPE_NONE;
    const char *d0 = fi->dim_names[0], *d1 = fi->ndim == 2 ? fi->dim_names[1] : NULL;
    if (fi->ndim == 1 && !strcmp(d0, AS_RESULTS_DIM_LAYER))
        return SHAPE_LAYER;
    if (fi->ndim == 1 && !strcmp(d0, AS_RESULTS_DIM_HEAD))
        return SHAPE_HEAD;
    if (fi->ndim == 2 && !strcmp(d0, AS_RESULTS_DIM_LAYER) && !strcmp(d1, AS_RESULTS_DIM_HEAD))
        return SHAPE_LAYER_HEAD;
    return SHAPE_NONE;
}

char *as_report_attr(const struct as_results_file *rf, const char *model, const char *name)
{
    const struct as_results_obj at = { model, NULL, NULL };
    struct as_error ignore = { AS_OK, "" };
    char *s = NULL;
    if (as_results_attr_str(rf, model ? &at : NULL, name, &s, &ignore) <= 0) {
        free(s);
        s = as_xstrdup("");
    }
    return s;
}

int as_report_model_failed(const struct as_results_file *rf, const char *model)
{
    char *st = as_report_attr(rf, model, AS_RESULTS_ATTR_STATUS);
    int failed = !strcmp(st, AS_RESULTS_STATUS_FAILED);
    free(st);
    return failed;
}

/* Every field of the shapes above, in file order; stage NULL: all stages. *n_found counts the
 * stage groups of that name seen (to tell an unknown --stage). */
static int walk(const struct as_results_file *rf, const char *only_stage, field_fn fn, void *ctx, int *n_found,
                struct as_error *err)
{
    struct as_results_list models = AS_RESULTS_LIST_INIT;
    int rc = -1;
    if (as_results_models(rf, &models, err))
        return -1;
    for (int i = 0; i < models.n; i++) {
        const char *model = models.v[i];
        if (as_report_model_failed(rf, model))
            continue;
        struct as_results_model_info mi;
        if (as_results_model_info(rf, model, &mi, err))
            goto out;
        int64_t seq_len = mi.seq_len, folder_T; /* the layout's seq_len (its folder) when there is one */
        const struct as_results_obj at = { model, NULL, NULL };
        struct as_error ignore = { AS_OK, "" };
        if (as_results_attr_i64(rf, &at, AS_RESULTS_ATTR_MODEL_SEQ_LEN, &folder_T, &ignore) == 1 && folder_T > 0)
            seq_len = folder_T;
        char *model_id = as_report_attr(rf, model, AS_RESULTS_ATTR_MODEL_ID);
        char *dataset = as_report_attr(rf, model, AS_RESULTS_ATTR_DATASET);
        struct as_results_list stages = AS_RESULTS_LIST_INIT;
        int r = as_results_stages(rf, model, &stages, err);
        for (int s = 0; !r && s < stages.n; s++) {
            const char *stage = stages.v[s];
            if (!strcmp(stage, AS_RESULTS_GROUP_MATRICES) || (only_stage && strcmp(stage, only_stage)))
                continue;
            (*n_found)++;
            struct as_results_list fields = AS_RESULTS_LIST_INIT;
            r = as_results_fields(rf, model, stage, &fields, err);
            for (int f = 0; !r && f < fields.n; f++) {
                struct as_results_field_info fi;
                int q = as_results_field_info(rf, model, stage, fields.v[f], &fi, err);
                if (q < 0) {
                    r = -1;
                    break;
                }
                enum field_shape sh = q ? shape_of(&fi) : SHAPE_NONE;
                if (sh == SHAPE_NONE || fi.count == 0)
                    continue;
                struct field_data fd = { model, stage, fields.v[f], model_id, dataset, seq_len, sh,
                                         fi.type == AS_FTYPE_I64, sh == SHAPE_HEAD ? 1 : fi.dims[0],
                                         sh == SHAPE_LAYER_HEAD ? fi.dims[1] : sh == SHAPE_HEAD ? fi.dims[0] : 1,
                                         NULL, NULL };
                fd.v = as_xcalloc((size_t)fi.count, sizeof *fd.v);
                if (fd.is_int) {
                    fd.iv = as_xcalloc((size_t)fi.count, sizeof *fd.iv);
                    r = as_results_field_i64(rf, model, stage, fields.v[f], fd.iv, (size_t)fi.count, err);
                    for (int64_t k = 0; !r && k < fi.count; k++)
                        fd.v[k] = (double)fd.iv[k];
                } else {
                    r = as_results_field_f64(rf, model, stage, fields.v[f], fd.v, (size_t)fi.count, err);
                }
                if (!r)
                    r = fn(&fd, ctx, err);
                free(fd.v);
                free(fd.iv);
            }
            as_results_list_release(&fields);
        }
        as_results_list_release(&stages);
        free(model_id);
        free(dataset);
        if (r)
            goto out;
    }
    rc = 0;
out:
    as_results_list_release(&models);
    return rc;
}

/* ---- CSV */

/* A CSV field, quoted when it holds a comma, a quote, a line end or leading/trailing space. */
static void csv_field(FILE *out, const char *s)
{
    if (!s[strcspn(s, ",\"\r\n")] && s[0] != ' ' && (!s[0] || s[strlen(s) - 1] != ' ')) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

static void csv_number(FILE *out, double v)
{
    if (v != v)
        fputs("nan", out);
    else if (v == 1.0 / 0.0)
        fputs("inf", out);
    else if (v == -1.0 / 0.0)
        fputs("-inf", out);
    else { /* the shortest of %.15g, %.16g, %.17g that reads back as v */
        char buf[40];
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(buf, sizeof buf, "%.*g", prec, v);
            if (strtod(buf, NULL) == v)
                break;
        }
        fputs(buf, out);
    }
}

static int csv_rows(const struct field_data *fd, void *ctx, struct as_error *err)
{
    (void)err;
    FILE *out = ctx;
    for (int64_t r = 0; r < fd->rows; r++)
        for (int64_t c = 0; c < fd->cols; c++) {
            int64_t k = r * fd->cols + c;
            csv_field(out, fd->model);
            fputc(',', out);
            csv_field(out, fd->model_id);
            fputc(',', out);
            csv_field(out, fd->dataset);
            fprintf(out, ",%lld,", (long long)fd->seq_len);
            csv_field(out, fd->stage);
            fputc(',', out);
            csv_field(out, fd->field);
            fputc(',', out);
            if (fd->shape != SHAPE_HEAD)
                fprintf(out, "%lld", (long long)r);
            fputc(',', out);
            if (fd->shape != SHAPE_LAYER)
                fprintf(out, "%lld", (long long)c);
            fputc(',', out);
            if (fd->is_int)
                fprintf(out, "%lld", (long long)fd->iv[k]);
            else
                csv_number(out, fd->v[k]);
            fputc('\n', out);
        }
    return 0;
}

/* ---- summaries */

struct summary_row {
    char *stage, *model, *field;
    char stats[4][40];             /* min, max, mean, std as the summary log prints them */
};

struct summary {
    struct summary_row *v;
    int n, cap;
};

/* The summary of one field: the numbers of as_log_stats_rows, the summary log's own function. */
static int summary_add(const struct field_data *fd, void *ctx, struct as_error *err)
{
    (void)err;
    struct summary *s = ctx;
    if (fd->shape == SHAPE_HEAD)
        return 0;
    struct as_strbuf line = AS_STRBUF_INIT;
    as_log_stats_rows(&line, fd->model, fd->stage, fd->field, fd->v, (size_t)fd->rows, (size_t)fd->cols,
                      (size_t)fd->cols);
    const char *bar = strstr(as_strbuf_str(&line), " | ");
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 16;
        s->v = as_xrealloc(s->v, (size_t)s->cap, sizeof *s->v);
    }
    struct summary_row *r = &s->v[s->n];
    memset(r, 0, sizeof *r);
    static const char *const keys[4] = { "min=", "max=", "mean=", "std=" };
    for (int k = 0; k < 4; k++) {
        const char *p = bar ? strstr(bar, keys[k]) : NULL;
        if (!p) {
            as_strlcpy(r->stats[k], "nan", sizeof r->stats[k]);
            continue;
        }
        p += strlen(keys[k]);
        size_t n = strcspn(p, " \n");
        snprintf(r->stats[k], sizeof r->stats[k], "%.*s", (int)n, p);
    }
    as_strbuf_release(&line);
    r->stage = as_xstrdup(fd->stage);
    r->model = as_xstrdup(fd->model);
    r->field = as_xstrdup(fd->field);
    s->n++;
    return 0;
}

static void summary_release(struct summary *s)
{
    for (int i = 0; i < s->n; i++) {
        free(s->v[i].stage);
        free(s->v[i].model);
        free(s->v[i].field);
    }
    free(s->v);
    memset(s, 0, sizeof *s);
}

/* The stages of the summary in order of first appearance. */
static int next_stage(const struct summary *s, int from, const char **stage)
{
    for (int i = from; i < s->n; i++) {
        int seen = 0;
        for (int j = 0; j < i && !seen; j++)
            seen = !strcmp(s->v[j].stage, s->v[i].stage);
        if (!seen) {
            *stage = s->v[i].stage;
            return i;
        }
    }
    return -1;
}

static void md_text(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '|' || *s == '\\')
            fputc('\\', out);
        fputc(*s == '\n' ? ' ' : *s, out);
    }
}

static void tex_text(FILE *out, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '_': case '&': case '%': case '#': case '$': case '{': case '}':
            fputc('\\', out);
            fputc(*s, out);
            break;
        case '~': fputs("\\textasciitilde{}", out); break;
        case '^': fputs("\\textasciicircum{}", out); break;
        case '\\': fputs("\\textbackslash{}", out); break;
        default: fputc(*s, out);
        }
    }
}

static void summary_markdown(FILE *out, const struct summary *s)
{
    const char *stage;
    int first = 1;
    for (int i = next_stage(s, 0, &stage); i >= 0; i = next_stage(s, i + 1, &stage)) {
        fprintf(out, "%s## %s\n\n| model | field | min | max | mean | std |\n|---|---|---:|---:|---:|---:|\n",
                first ? "" : "\n", stage);
        first = 0;
        for (int k = i; k < s->n; k++) {
            const struct summary_row *r = &s->v[k];
            if (strcmp(r->stage, stage))
                continue;
            fputs("| ", out);
            md_text(out, r->model);
            fputs(" | ", out);
            md_text(out, r->field);
            fprintf(out, " | %s | %s | %s | %s |\n", r->stats[0], r->stats[1], r->stats[2], r->stats[3]);
        }
    }
}

static void summary_latex(FILE *out, const struct summary *s)
{
    const char *stage;
    int first = 1;
    for (int i = next_stage(s, 0, &stage); i >= 0; i = next_stage(s, i + 1, &stage)) {
        fprintf(out, "%s%% attnstat summary: stage %s\n\\begin{table}[ht]\n\\centering\n\\begin{tabular}{llrrrr}\n"
                "\\hline\nmodel & field & min & max & mean & std \\\\\n\\hline\n", first ? "" : "\n", stage);
        first = 0;
        for (int k = i; k < s->n; k++) {
            const struct summary_row *r = &s->v[k];
            if (strcmp(r->stage, stage))
                continue;
            tex_text(out, r->model);
            fputs(" & ", out);
            tex_text(out, r->field);
            fprintf(out, " & %s & %s & %s & %s \\\\\n", r->stats[0], r->stats[1], r->stats[2], r->stats[3]);
        }
        fputs("\\hline\n\\end{tabular}\n\\caption{", out);
        tex_text(out, stage);
        fputs(": per model and field, min, max, mean and std (population) over layers and heads}\n\\end{table}\n",
              out);
    }
}

/* ---- entry points */

static int unknown_stage(const struct as_results_file *rf, const char *results, const char *stage,
                         struct as_error *err)
{
    struct as_results_list models = AS_RESULTS_LIST_INIT;
    struct as_strbuf have = AS_STRBUF_INIT;
    if (!as_results_models(rf, &models, err))
        for (int i = 0; i < models.n; i++) {
            struct as_results_list st = AS_RESULTS_LIST_INIT;
            if (as_results_stages(rf, models.v[i], &st, err))
                break;
            for (int s = 0; s < st.n; s++) {
                char pat[200];
                snprintf(pat, sizeof pat, "%s, ", st.v[s]);
                if (strcmp(st.v[s], AS_RESULTS_GROUP_MATRICES) && !strstr(as_strbuf_str(&have), pat))
                    as_strbuf_addf(&have, "%s", pat);
            }
            as_results_list_release(&st);
        }
    if (have.len >= 2)
        have.buf[have.len - 2] = '\0';
    as_error_set(err, AS_ERR_USAGE, "no stage '%s' in '%s' (it has: %s)", stage, results,
                 have.len ? have.buf : "none");
    as_strbuf_release(&have);
    as_results_list_release(&models);
    return -1;
}

int as_report_table(const char *results_path, const char *stage, enum as_report_format fmt, FILE *out,
                    struct as_error *err)
{
    struct as_results_file *rf;
    struct summary s = { NULL, 0, 0 };
    int found = 0, rc = -1;
    if (as_results_open(results_path, &rf, err))
        return -1;
    if (fmt == AS_REPORT_CSV) {
        fputs("model,model_id,dataset,seq_len,stage,field,layer,head,value\n", out);
        if (walk(rf, stage, csv_rows, out, &found, err))
            goto out;
    } else {
        if (walk(rf, stage, summary_add, &s, &found, err))
            goto out;
        if (fmt == AS_REPORT_MARKDOWN)
            summary_markdown(out, &s);
        else
            summary_latex(out, &s);
    }
    if (stage && !found) {
        unknown_stage(rf, results_path, stage, err);
        goto out;
    }
    if (fflush(out) || ferror(out)) {
        as_error_set(err, AS_ERR_IO, "cannot write the table: %s", strerror(errno ? errno : EIO));
        goto out;
    }
    rc = 0;
out:
    summary_release(&s);
    as_results_close(rf);
    return rc;
}

int as_report_summary_html(const char *results_path, struct as_strbuf *html, struct as_error *err)
{
    struct as_results_file *rf;
    struct summary s = { NULL, 0, 0 };
    int found = 0, rc = -1;
    if (as_results_open(results_path, &rf, err))
        return -1;
    if (walk(rf, NULL, summary_add, &s, &found, err))
        goto out;
    const char *stage;
    for (int i = next_stage(&s, 0, &stage); i >= 0; i = next_stage(&s, i + 1, &stage)) {
        as_strbuf_addf(html, "<h3>");
        as_report_html_text(html, stage);
        as_strbuf_addf(html, "</h3>\n<table>\n<tr><th>model</th><th>field</th><th>min</th><th>max</th><th>mean</th>"
                             "<th>std</th></tr>\n");
        for (int k = i; k < s.n; k++) {
            const struct summary_row *r = &s.v[k];
            if (strcmp(r->stage, stage))
                continue;
            as_strbuf_addf(html, "<tr><td>");
            as_report_html_text(html, r->model);
            as_strbuf_addf(html, "</td><td>");
            as_report_html_text(html, r->field);
            as_strbuf_addf(html, "</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n", r->stats[0], r->stats[1],
                           r->stats[2], r->stats[3]);
        }
        as_strbuf_addf(html, "</table>\n");
    }
    rc = 0;
out:
    summary_release(&s);
    as_results_close(rf);
    return rc;
}
