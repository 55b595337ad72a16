/* monotonicity.c: the ALiBi monotonicity stage: per layer, how often the head-mean causal
 * attention's cumulative mass C[i,k] drops from an earlier query i to a later one j (see
 * monotonicity.h for the definition and the kernels).
 *
 *   stages:
 *     monotonicity:
 *       input: attention_probs_mean   # (L, H, T, T) content scores
 *       scale: 1.0                    # multiplies the scores before the ALiBi bias
 *       slopes: standard              # standard | bloom | [m_0, ..., m_{H-1}]
 *       epsilon: 1e-10                # violation when C[i,k] - C[j,k] < -epsilon (>= 0)
 *       method: auto                  # auto | fast | ref (results agree; only speed differs)
 *
 * Memory per unit: C, one (T, T) float64 buffer, and a block of rows or columns; the input is read one
 * block of rows of one head at a time, its causal part only. */
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "monotonicity.h"

#define WHAT "stages.monotonicity"

enum mono_method { MONO_METHOD_AUTO = 0, MONO_METHOD_FAST, MONO_METHOD_REF, MONO_METHOD_COUNT };

static const char *const mono_rule_names[] = { "standard", "bloom", "list", NULL };
static const char *const mono_method_names[] = { "auto", "fast", "ref", NULL };

struct mono_cfg {
    char input[256];
    double scale;
    double eps;
    int rule;                      /* enum as_mono_rule */
    double *list;                  /* (n_list,) explicit slopes when rule == LIST, owned */
    int64_t n_list;
    int method;                    /* enum mono_method */
};

/* Every option, recorded as an attribute of the group; the scalars are parsed from here. */
static const struct as_stage_option mono_options[] = {
    { .key = "epsilon", .type = AS_OPT_F64, .offset = offsetof(struct mono_cfg, eps), .parse = 1,
      .f64_default = 1e-10 },
    { .key = "input", .type = AS_OPT_STR, .offset = offsetof(struct mono_cfg, input) },
    { .key = "scale", .type = AS_OPT_F64, .offset = offsetof(struct mono_cfg, scale), .parse = 1, .f64_default = 1.0 },
    { .key = "slopes", .type = AS_OPT_ENUM, .offset = offsetof(struct mono_cfg, rule), .names = mono_rule_names },
    { .key = "method", .type = AS_OPT_ENUM, .offset = offsetof(struct mono_cfg, method), .parse = 1,
      .i64_default = MONO_METHOD_AUTO, .choices = mono_method_names },
    { .key = NULL },
};

/* Per-layer fields, in schema (and row) order. */
enum {
    F_COMBINATIONS, F_VIOLATIONS, F_RATE, F_ABS, F_ABS_STD, F_REL, F_REL_STD, F_PER_LAYER_COUNT,
    F_SLOPES = F_PER_LAYER_COUNT   /* the per-model field */
};

static void mono_release(void *cfgp)
{
    struct mono_cfg *c = cfgp;
    if (!c)
        return;
    free(c->list);
    free(c);
}

static int mono_configure(void **out, const struct as_ynode *node, struct as_error *err)
{
    struct mono_cfg *c = as_xcalloc(1, sizeof *c);
    const char *input;
    int rule = AS_MONO_RULE_STANDARD;
    *out = NULL;
    if (as_stage_options_parse(mono_options, node, WHAT, NULL, c, err) ||
        as_ynode_get_str(node, WHAT, "input", "attention_probs_mean", &input, err))
        goto fail;
    if (!*input || as_strlcpy(c->input, input, sizeof c->input) < 0) {
        as_ynode_error(as_ynode_get(node, "input"), err, WHAT ".input: expected a tensor name of 1 to %zu characters",
                       sizeof c->input - 1);
        goto fail;
    }
    if (c->eps < 0) {
        as_ynode_error(as_ynode_get(node, "epsilon"), err, WHAT ".epsilon: must be >= 0, found %g", c->eps);
        goto fail;
    }
    const struct as_ynode *sl = as_ynode_get(node, "slopes");
    if (sl && sl->kind == AS_YNODE_SEQ) {
        if (!sl->n) {
            as_ynode_error(sl, err, WHAT ".slopes: expected standard, bloom or a list of one slope per head");
            goto fail;
        }
        c->list = as_xcalloc(sl->n, sizeof *c->list);
        c->n_list = (int64_t)sl->n;
        for (size_t i = 0; i < sl->n; i++) {
            char what[64];
            snprintf(what, sizeof what, WHAT ".slopes[%zu]", i);
            if (as_ynode_to_double(sl->items[i], what, &c->list[i], err))
                goto fail;
        }
        rule = AS_MONO_RULE_LIST;
    } else {
        static const char *const rules[] = { "standard", "bloom", NULL };
        if (as_ynode_get_enum(node, WHAT, "slopes", AS_MONO_RULE_STANDARD, rules, &rule, err))
            goto fail;
    }
    c->rule = rule;
    *out = c;
    return 0;
fail:
    mono_release(c);
    return -1;
}

static int mono_inputs(const void *cfgp, const char **names)
{
    const struct mono_cfg *c = cfgp;
    names[0] = c->input;
    return 1;
}

static void mono_shape_parts(const struct mono_cfg *c, struct as_stage_shape *out);

static int mono_shape(const void *cfgp, const struct as_tensor_info *const *info, struct as_stage_shape *out,
                      struct as_error *err)
{
    const struct mono_cfg *c = cfgp;
    const struct as_tensor_info *ti = info[0];
    int64_t tt, bytes, combos;
    if (ti->ndim != 4 || ti->shape[2] != ti->shape[3] || ti->shape[0] < 1 || ti->shape[1] < 1 ||
        ti->shape[2] < 1) {
        char dims[160] = "";
        size_t len = 0;
        for (int d = 0; d < ti->ndim && len < sizeof dims; d++)
            len += (size_t)snprintf(dims + len, sizeof dims - len, "%s%" PRId64, d ? ", " : "", ti->shape[d]);
        return as_error_set(err, AS_ERR_INPUT,
                            "input '%s': expected a non-empty 4-d (layers, heads, T, T) tensor, found shape (%s)",
                            c->input, dims);
    }
    int64_t L = ti->shape[0], H = ti->shape[1], T = ti->shape[2];
    if (c->rule == AS_MONO_RULE_LIST && c->n_list != H)
        return as_error_set(err, AS_ERR_CONFIG, WHAT ".slopes: %" PRId64 " slopes given but input '%s' has %" PRId64
                            " heads", c->n_list, c->input, H);
    if (as_mul_i64(T, T, &tt) || as_mul_i64(tt, H, &bytes) ||
        as_mul_i64(bytes, (int64_t)as_dtype_traits[ti->dtype].size, &bytes) ||
        as_mul_i64(T * (T - 1) / 2, T, &combos) || tt > INT64_MAX / 16)
        return as_error_set(err, AS_ERR_INPUT, "input '%s': T = %" PRId64 " is too large", c->input, T);
    out->n_layers = L;
    out->n_heads = H;
    out->seq_len = T;
    out->unit_cost = (double)H * (double)tt + (double)tt * log2((double)T);
    out->unit_bytes = bytes / 2 + H * T * (int64_t)as_dtype_traits[ti->dtype].size; /* the causal part */
    mono_shape_parts(c, out);
    return 0;
}

static int mono_schema(const void *cfgp, const struct as_stage_shape *sh, struct as_field *f)
{
    static const struct { const char *name, *desc; enum as_ftype type; } pl[F_PER_LAYER_COUNT] = {
        { "combinations", "pairs i<j of query positions times key columns k: T(T-1)/2*T", AS_FTYPE_I64 },
        { "violations", "(i<j, k) with C[i,k] - C[j,k] < -epsilon, C the row-wise cumulative sum of the "
          "head-mean causal softmax of scale*scores - ALiBi", AS_FTYPE_I64 },
        { "violation_rate", "violations / combinations", AS_FTYPE_F64 },
        { "absolute_error", "mean of |C[i,k] - C[j,k]| over violations (0 if none)", AS_FTYPE_F64 },
        { "absolute_error_std", "sample std (n-1) of |C[i,k] - C[j,k]| over violations (0 if fewer than 2)",
          AS_FTYPE_F64 },
        { "relative_error", "mean of |C[i,k] - C[j,k]| / (max(C[i,k], C[j,k]) + 1e-5) over violations",
          AS_FTYPE_F64 },
        { "relative_error_std", "sample std (n-1) of the relative error over violations (0 if fewer than 2)",
          AS_FTYPE_F64 },
    };
    memset(f, 0, sizeof *f * (F_PER_LAYER_COUNT + 1));
    for (int k = 0; k < F_PER_LAYER_COUNT; k++) {
        f[k].name = pl[k].name;
        f[k].description = pl[k].desc;
        f[k].type = pl[k].type;
        f[k].per_layer = 1;
    }
    struct as_field *s = &f[F_SLOPES];
    s->name = "alibi_slopes";
    s->description = "ALiBi slope m_h of each head (bias -m_h*(i-j))";
    s->type = AS_FTYPE_F64;
    s->ndim = 1;
    s->dims[0] = sh->n_heads;
    s->dim_names[0] = "head";
    return F_PER_LAYER_COUNT + 1;
}

static void mono_slopes_fill(const struct mono_cfg *c, int64_t H, double *out)
{
    if (c->rule == AS_MONO_RULE_LIST)
        memcpy(out, c->list, (size_t)H * sizeof *out);
    else
        as_mono_slopes((enum as_mono_rule)c->rule, H, out);
}

/* ---- units finer than a layer
 *
 * Phase 0: parts = blocks of query rows of about equal causal area; part p computes rows
 * [row(p), row(p+1)) of C (every head's softmax summed in head order, then the cumulative sum):
 * row by row the operations of the whole layer, so the same bits. Its buffer is C, (T, T) float64.
 * Phase 1: parts = blocks of columns k; part p counts the violations of its columns into one
 * record per column (struct as_mono_col), combined in column order. `method: ref` (and auto at
 * small T) counts all columns at once: one part, its record the layer's statistics. */
#define MONO_MAX_PARTS 128

static int mono_use_ref(const struct mono_cfg *c, int64_t T)
{
    return c->method == MONO_METHOD_REF || (c->method == MONO_METHOD_AUTO && T <= AS_MONO_AUTO_REF_MAX_T);
}

/* First row of row block b of P (b = P: T): about equal causal area T^2 b / (2P) before it. */
static int64_t mono_row_bound(int64_t T, int64_t P, int64_t b)
{
    int64_t prev = 0;
    for (int64_t k = 1; k <= b; k++) {
        int64_t r = k == P ? T : (int64_t)llround((double)T * sqrt((double)k / (double)P));
        if (r < prev + 1)
            r = prev + 1;
        if (r > T - (P - k))
            r = T - (P - k);
        prev = r;
    }
    return prev;
}

static int64_t mono_col_bound(int64_t T, int64_t P, int64_t b)
{
    return b * (T / P) + (b < T % P ? b : T % P);
}

static size_t mono_part_offset(const void *cfgp, const struct as_stage_shape *sh, int phase, int64_t p)
{
    const struct mono_cfg *c = cfgp;
    int64_t T = sh->seq_len;
    if (phase == 0)
        return (size_t)mono_row_bound(T, sh->parts[0], p) * (size_t)T * sizeof(double);
    if (mono_use_ref(c, T))
        return p ? sizeof(struct as_mono_stats) : 0;
    return (size_t)mono_col_bound(T, sh->parts[1], p) * sizeof(struct as_mono_col);
}

static void mono_shape_parts(const struct mono_cfg *c, struct as_stage_shape *out)
{
    int64_t T = out->seq_len, tt = T * T;
    out->n_phases = 2;
    out->parts[0] = T < MONO_MAX_PARTS ? T : MONO_MAX_PARTS;
    out->parts[1] = mono_use_ref(c, T) ? 1 : out->parts[0];
    out->phase_cost[0] = (double)out->n_heads * (double)tt;
    out->phase_cost[1] = (double)tt * log2((double)T);
    out->phase_bytes[0] = (size_t)tt * sizeof(double);
    out->phase_bytes[1] = mono_use_ref(c, T) ? sizeof(struct as_mono_stats) : (size_t)T * sizeof(struct as_mono_col);
}

/* Rows [i0, i1) of C of one layer into c. */
static int mono_rows(const struct mono_cfg *c, struct as_unit *u, const double *slopes, int64_t i0, int64_t i1,
                     double *out, struct as_error *err)
{
    const int64_t H = u->shape->n_heads, T = u->shape->seq_len, l = u->layer, nr = i1 - i0;
    int ret = -1;
    double *buf = as_xmalloc((size_t)(nr * i1) * sizeof *buf), *acc = as_xcalloc((size_t)(nr * i1), sizeof *acc);
    for (int64_t h = 0; h < H; h++) {
        /* the causal part only: rows [i0, i1), columns [0, i1) */
        int64_t start[4] = { l, h, i0, 0 }, count[4] = { 1, 1, nr, i1 }, bad_in, bad_scaled;
        if (as_tensor_file_read(u->in[0], start, count, AS_DTYPE_F64, buf, err)) {
            as_error_prefix(err, "model '%s' layer %" PRId64 " head %" PRId64 ": ", u->model, l, h);
            goto out;
        }
        if (!as_mono_rows_accum(buf, i1, i0, i1, c->scale, slopes[h], acc, i1))
            continue;
        /* a non-finite value somewhere in the rows: count them in the whole head (the message is
         * then the same however the layer is split) */
        double *head = as_xmalloc((size_t)(T * T) * sizeof *head);
        int64_t hs[4] = { l, h, 0, 0 }, hc[4] = { 1, 1, T, T };
        if (as_tensor_file_read(u->in[0], hs, hc, AS_DTYPE_F64, head, err)) {
            free(head);
            as_error_prefix(err, "model '%s' layer %" PRId64 " head %" PRId64 ": ", u->model, l, h);
            goto out;
        }
        bad_in = bad_scaled = 0;
        for (int64_t i = 0; i < T; i++)
            for (int64_t j = 0; j <= i; j++) {
                double x = head[i * T + j];
                if (!isfinite(x))
                    bad_in++;
                else if (!isfinite(x * c->scale + (-slopes[h]) * (double)(i - j)))
                    bad_scaled++;
            }
        free(head);
        if (bad_in) {
            as_error_set(err, AS_ERR_INPUT, "model '%s' layer %" PRId64 " head %" PRId64 ": %" PRId64
                         " non-finite values in '%s'", u->model, l, h, bad_in, c->input);
            goto out;
        }
        as_error_set(err, AS_ERR_INPUT, "model '%s' layer %" PRId64 " head %" PRId64 ": %" PRId64
                     " values of '%s' overflow with scale %g and slope %g", u->model, l, h,
                     bad_scaled ? bad_scaled : 1, c->input, c->scale, slopes[h]);
        goto out;
    }
    as_mono_cumsum_rows(acc, i1, i0, i1, T, H, out);
    ret = 0;
out:
    free(buf);
    free(acc);
    return ret;
}

static int mono_run_part(const void *cfgp, const void *state, struct as_unit *u, const unsigned char *prev,
                         unsigned char *out, struct as_error *err)
{
    const struct mono_cfg *c = cfgp;
    const struct as_stage_shape *sh = u->shape;
    const int64_t H = sh->n_heads, T = sh->seq_len;
    int rc = 0;
    if (u->phase == 0) {
        double *slopes = as_xmalloc((size_t)H * sizeof *slopes);
        mono_slopes_fill(c, H, slopes);
        int64_t first = mono_row_bound(T, sh->parts[0], u->part0);
        for (int64_t p = u->part0; p < u->part1 && !rc; p++) {
            int64_t i0 = mono_row_bound(T, sh->parts[0], p), i1 = mono_row_bound(T, sh->parts[0], p + 1);
            rc = mono_rows(c, u, slopes, i0, i1, (double *)out + (i0 - first) * T, err);
        }
        free(slopes);
        return rc;
    }
    const double *C = (const double *)prev;
    if (mono_use_ref(c, T)) {
        double *ct = as_xmalloc((size_t)(T * T) * sizeof *ct);
        as_mono_transpose_cols(C, T, 0, T, ct);
        struct as_mono_stats st;
        as_mono_count_ref(ct, T, c->eps, &st);
        memcpy(out, &st, sizeof st);
        free(ct);
        return 0;
    }
    int64_t k0 = mono_col_bound(T, sh->parts[1], u->part0), k1 = mono_col_bound(T, sh->parts[1], u->part1);
    double *ct = as_xmalloc((size_t)((k1 - k0) * T) * sizeof *ct);
    double *work = as_xmalloc((size_t)as_mono_work_size(T) * sizeof *work);
    as_mono_transpose_cols(C, T, k0, k1, ct);
    as_mono_count_cols(ct, T, k0, k1, c->eps, work, (struct as_mono_col *)out);
    free(ct);
    free(work);
    return 0;
}

static int mono_combine(const void *cfgp, const void *state, const struct as_stage_shape *sh, int64_t layer,
                        const unsigned char *last, unsigned char *row, struct as_error *err)
{
    const struct mono_cfg *c = cfgp;
    struct as_mono_stats st;
    if (mono_use_ref(c, sh->seq_len))
        memcpy(&st, last, sizeof st);
    else
        as_mono_combine_cols((const struct as_mono_col *)last, sh->seq_len, &st);
    struct as_schema sc;
    as_schema_of(&sc, &as_stage_monotonicity, cfgp, sh);
    *as_schema_i64(&sc, row, F_COMBINATIONS) = st.combinations;
    *as_schema_i64(&sc, row, F_VIOLATIONS) = st.violations;
    *as_schema_f64(&sc, row, F_RATE) = st.violation_rate;
    *as_schema_f64(&sc, row, F_ABS) = st.abs_mean;
    *as_schema_f64(&sc, row, F_ABS_STD) = st.abs_std;
    *as_schema_f64(&sc, row, F_REL) = st.rel_mean;
    *as_schema_f64(&sc, row, F_REL_STD) = st.rel_std;
    return 0;
}

static int mono_finalize(const void *cfgp, const void *state, const char *model, const struct as_stage_shape *sh,
                         const unsigned char *rows, struct as_stage_out *out, struct as_error *err)
{
    const struct mono_cfg *c = cfgp;
    const int64_t L = sh->n_layers, H = sh->n_heads;
    struct as_schema sc;
    as_schema_of(&sc, &as_stage_monotonicity, cfgp, sh);
    /* the model block holds alibi_slopes; the attribute borrows it */
    double *slopes = as_schema_f64(&sc, out->model_fields, F_SLOPES);
    mono_slopes_fill(c, H, slopes);
    as_stage_out_vec(out, "alibi_slopes", slopes, H);
    as_stage_out_options(out, mono_options, c);

    int64_t with = 0, top[3] = { -1, -1, -1 };
    double top_rate[3] = { 0, 0, 0 }, sum_rate = 0;
    for (int64_t l = 0; l < L; l++) {
        int64_t viol;
        double rate;
        const unsigned char *r = as_schema_row_const(&sc, rows, l);
        viol = *as_schema_i64_const(&sc, r, F_VIOLATIONS);
        rate = *as_schema_f64_const(&sc, r, F_RATE);
        sum_rate += rate;
        if (viol <= 0)
            continue;
        with++;
        for (int s = 0; s < 3; s++) {
            if (top[s] < 0 || rate > top_rate[s]) {
                for (int m = 2; m > s; m--) {
                    top[m] = top[m - 1];
                    top_rate[m] = top_rate[m - 1];
                }
                top[s] = l;
                top_rate[s] = rate;
                break;
            }
        }
    }
    as_strbuf_addf(out->log, "%s monotonicity | violations in %" PRId64 " of %" PRId64 " layers; highest rate:",
                   model, with, L);
    if (!with)
        as_strbuf_addf(out->log, " none");
    for (int s = 0; s < 3 && top[s] >= 0; s++)
        as_strbuf_addf(out->log, "%s L%" PRId64 " %.4g", s ? "," : "", top[s] + 1, top_rate[s]);
    as_strbuf_addf(out->log, "\n%s monotonicity | mean violation rate %.4g over %" PRId64 " layers\n", model,
                   L > 0 ? sum_rate / (double)L : 0.0, L);
    return 0;
}

static const char *const mono_figures[] = { "violation_rate", "absolute_error", "relative_error", NULL };

const struct as_stage_ops as_stage_monotonicity = {
    .name = "monotonicity",
    .configure = mono_configure,
    .release = mono_release,
    .inputs = mono_inputs,
    .shape = mono_shape,
    .schema = mono_schema,
    .run_part = mono_run_part,
    .part_offset = mono_part_offset,
    .combine = mono_combine,
    .finalize = mono_finalize,
    .figures = mono_figures,
};
