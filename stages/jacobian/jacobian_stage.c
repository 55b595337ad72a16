/* jacobian_stage.c: the "jacobian" stage: diagonal vs lateral energy of the softmax backward per
 * (layer, head), streamed one (b, h) slab of attn and grad at a time (see jacobian.h).
 *
 * Options (stages.jacobian):
 *   attn: tensor name of the probabilities A (L, B, H, T, T)      default "attn"
 *   grad: tensor name of dL/dA (L, B, H, T, T)                    default "grad"
 *   strict: rows of A that do not sum to 1 are an error           default false (a warning)
 *   row_sum_tol: allowed |sum_j A[i, j] - 1|                       default 1e-3
 * Results, per layer: a_mean, entropy, r_diag, r_offdiag, cos_diag, cos_ste (L, H) and
 * bad_rows (L,). */
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "as_stage.h"
#include "jacobian.h"

#define JAC_NAME_MAX 256

extern const struct as_stage_ops as_stage_jacobian;
#define JAC_N_METRICS 6

struct jac_cfg {
    char attn[JAC_NAME_MAX];
    char grad[JAC_NAME_MAX];
    int strict;
    double row_sum_tol;
};

/* Every option, recorded as an attribute of the group; the scalars are parsed from here. */
static const struct as_stage_option jac_options[] = {
    { .key = "attn", .type = AS_OPT_STR, .offset = offsetof(struct jac_cfg, attn) },
    { .key = "grad", .type = AS_OPT_STR, .offset = offsetof(struct jac_cfg, grad) },
    { .key = "strict", .type = AS_OPT_BOOL, .offset = offsetof(struct jac_cfg, strict), .parse = 1, .i64_default = 0 },
    { .key = "row_sum_tol", .type = AS_OPT_F64, .offset = offsetof(struct jac_cfg, row_sum_tol), .parse = 1,
      .f64_default = 1e-3 },
    { .key = NULL },
};

/* Fields in schema order: the metrics (L, H), then bad_rows (L,). */
enum { JAC_F_BAD_ROWS = JAC_N_METRICS };

static const char *const metric_names[JAC_N_METRICS] = {
    "a_mean", "entropy", "r_diag", "r_offdiag", "cos_diag", "cos_ste",
};
static const char *const metric_desc[JAC_N_METRICS] = {
    "mean of the attention probabilities that are > 0, over batch, queries and keys",
    "mean over batch and queries of -sum_j A log(A + 1e-10) (nats)",
    "mean_b |A*(1-A)*g|^2 / (mean_b |A*(g - sum_j A g)|^2 + 1e-12): energy of the diagonal part",
    "1 - r_diag: energy share of the lateral (off-diagonal) part of the softmax backward",
    "mean over batch of cosine(diagonal-only backward, full softmax backward), eps 1e-8 per norm",
    "mean over batch of cosine(g (identity STE), full softmax backward), eps 1e-8 per norm",
};

static int jac_configure(void **out, const struct as_ynode *node, struct as_error *err)
{
    const char *what = "stages.jacobian", *attn, *grad;
    struct jac_cfg *c = as_xcalloc(1, sizeof *c);
    if (as_stage_options_parse(jac_options, node, what, NULL, c, err) ||
        as_ynode_get_str(node, what, "attn", "attn", &attn, err) ||
        as_ynode_get_str(node, what, "grad", "grad", &grad, err))
        goto fail;
    if (!*attn || as_strlcpy(c->attn, attn, sizeof c->attn)) {
        as_ynode_error(as_ynode_get(node, "attn"), err, "%s.attn: a tensor name of 1..%d bytes", what,
                       JAC_NAME_MAX - 1);
        goto fail;
    }
    if (!*grad || as_strlcpy(c->grad, grad, sizeof c->grad)) {
        as_ynode_error(as_ynode_get(node, "grad"), err, "%s.grad: a tensor name of 1..%d bytes", what,
                       JAC_NAME_MAX - 1);
        goto fail;
    }
    if (!(c->row_sum_tol >= 0)) {
        as_ynode_error(as_ynode_get(node, "row_sum_tol"), err, "%s.row_sum_tol: %g is negative", what,
                       c->row_sum_tol);
        goto fail;
    }
    *out = c;
    return 0;
fail:
    free(c);
    return -1;
}

static void jac_release(void *cfg)
{
    free(cfg);
}

static int jac_inputs(const void *cfg, const char **names)
{
    const struct jac_cfg *c = cfg;
    names[0] = c->attn;
    names[1] = c->grad;
    return 2;
}

static void fmt_shape(char *buf, size_t n, const struct as_tensor_info *ti)
{
    size_t len = 0;
    buf[0] = '\0';
    len += (size_t)snprintf(buf, n, "(");
    for (int d = 0; d < ti->ndim && len < n; d++)
        len += (size_t)snprintf(buf + len, n - len, "%s%lld", d ? ", " : "", (long long)ti->shape[d]);
    if (len < n)
        snprintf(buf + len, n - len, ")");
}

static int jac_shape(const void *cfg, const struct as_tensor_info *const *info, struct as_stage_shape *out,
                     struct as_error *err)
{
    const struct jac_cfg *c = cfg;
    const struct as_tensor_info *a = info[0], *g = info[1];
    int same = a->ndim == 5 && g->ndim == 5;
    for (int d = 0; same && d < 5; d++)
        same = a->shape[d] == g->shape[d] && a->shape[d] > 0;
    if (!same || a->shape[3] != a->shape[4]) {
        char sa[160], sg[160];
        fmt_shape(sa, sizeof sa, a);
        fmt_shape(sg, sizeof sg, g);
        return as_error_set(err, AS_ERR_INPUT,
                            "jacobian: input '%s' %s and '%s' %s must both be (L, B, H, T, T) with "
                            "identical non-empty shapes", c->attn, sa, c->grad, sg);
    }
    int64_t per_layer = as_shape_numel(4, a->shape + 1); /* B * H * T * T of one input */
    if (per_layer < 0 || per_layer > INT64_MAX / 16)
        return as_error_set(err, AS_ERR_INPUT, "jacobian: input '%s' is too large", c->attn);
    out->n_layers = a->shape[0];
    out->n_heads = a->shape[2];
    out->seq_len = a->shape[3];
    out->unit_cost = 2.0 * (double)per_layer;
    out->unit_bytes = per_layer * (int64_t)(as_dtype_traits[a->dtype].size + as_dtype_traits[g->dtype].size);
    return 0;
}

static int jac_schema(const void *cfg, const struct as_stage_shape *sh, struct as_field *f)
{
    int n = 0;
    for (int k = 0; k < JAC_N_METRICS; k++, n++) {
        memset(&f[n], 0, sizeof f[n]);
        f[n].name = metric_names[k];
        f[n].description = metric_desc[k];
        f[n].type = AS_FTYPE_F64;
        f[n].per_layer = 1;
        f[n].ndim = 1;
        f[n].dims[0] = sh->n_heads;
        f[n].dim_names[0] = "head";
    }
    memset(&f[n], 0, sizeof f[n]);
    f[n].name = "bad_rows";
    f[n].description = "rows of the attention probabilities (all batch items and heads) whose sum is "
                       "not 1 within row_sum_tol";
    f[n].type = AS_FTYPE_I64;
    f[n].per_layer = 1;
    f[n].ndim = 0;
    return n + 1;
}

static int jac_run(const void *cfg, const void *state, struct as_unit *u, unsigned char *row,
                   struct as_error *err)
{
    const struct jac_cfg *c = cfg;
    const struct as_tensor_info *ti = as_tensor_file_info(u->in[0]);
    int64_t B = ti->shape[1], H = ti->shape[2], T = ti->shape[3], l = u->layer;
    double *A = as_xmalloc((size_t)(T * T) * sizeof *A), *g = as_xmalloc((size_t)(T * T) * sizeof *g);
    struct as_jacobian_acc *acc = as_xcalloc((size_t)H, sizeof *acc);
    int64_t bad_rows = 0;
    int ret = -1;
    struct as_schema sc;
    as_schema_of(&sc, &as_stage_jacobian, cfg, u->shape);
    for (int64_t h = 0; h < H; h++)
        as_jacobian_acc_init(&acc[h]);
    /* file order (b outer, h inner), one (b, h) slab of each input at a time */
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            const int64_t start[5] = { l, b, h, 0, 0 }, count[5] = { 1, 1, 1, T, T };
            struct as_jacobian_slab_check chk;
            if (as_tensor_file_read(u->in[0], start, count, AS_DTYPE_F64, A, err) ||
                as_tensor_file_read(u->in[1], start, count, AS_DTYPE_F64, g, err))
                goto out;
            as_jacobian_acc_add(&acc[h], A, g, T, c->row_sum_tol, &chk);
            if (c->strict && chk.bad_rows && !chk.nonfinite_attn && !chk.nonfinite_grad) {
                as_error_set(err, AS_ERR_INPUT,
                             "model '%s' layer %lld head %lld batch %lld: %lld rows of '%s' do not sum to 1 "
                             "within row_sum_tol %g (first: row %lld sums to %.9g; strict: true)",
                             u->model, (long long)l, (long long)h, (long long)b, (long long)chk.bad_rows,
                             c->attn, c->row_sum_tol, (long long)chk.first_bad_row, chk.first_bad_sum);
                goto out;
            }
        }
    for (int64_t h = 0; h < H; h++) {
        if (acc[h].nonfinite_attn || acc[h].nonfinite_grad) {
            as_error_set(err, AS_ERR_INPUT,
                         "model '%s' layer %lld head %lld: %lld NaN/Inf values in '%s' and %lld in '%s'",
                         u->model, (long long)l, (long long)h, (long long)acc[h].nonfinite_attn, c->attn,
                         (long long)acc[h].nonfinite_grad, c->grad);
            goto out;
        }
        struct as_jacobian_head r;
        as_jacobian_acc_finish(&acc[h], &r);
        const double v[JAC_N_METRICS] = { r.a_mean, r.entropy, r.r_diag, r.r_offdiag, r.cos_diag, r.cos_ste };
        for (int k = 0; k < JAC_N_METRICS; k++)
            as_schema_f64(&sc, row, k)[h] = v[k];
        bad_rows += r.bad_rows;
    }
    *as_schema_i64(&sc, row, JAC_F_BAD_ROWS) = bad_rows;
    ret = 0;
out:
    free(A);
    free(g);
    free(acc);
    return ret;
}

static int jac_finalize(const void *cfg, const void *state, const char *model, const struct as_stage_shape *sh,
                        const unsigned char *rows, struct as_stage_out *out, struct as_error *err)
{
    const struct jac_cfg *c = cfg;
    int64_t L = sh->n_layers, H = sh->n_heads;
    struct as_schema sc;
    as_schema_of(&sc, &as_stage_jacobian, cfg, sh);
    double *v = as_xcalloc((size_t)(L * H), sizeof *v);
    for (int k = 0; k < JAC_N_METRICS; k++) {
        for (int64_t l = 0; l < L; l++)
            memcpy(v + l * H, as_schema_f64_const(&sc, as_schema_row_const(&sc, rows, l), k), (size_t)H * sizeof *v);
        as_log_stats(out->log, model, "jacobian", metric_names[k], v, (size_t)(L * H), 1);
    }
    free(v);

    int64_t total = 0;
    for (int64_t l = 0; l < L; l++)
        total += *as_schema_i64_const(&sc, as_schema_row_const(&sc, rows, l), JAC_F_BAD_ROWS);
    if (total) {
        as_strbuf_addf(out->log, "%s jacobian warning: %lld rows of '%s' do not sum to 1 within %g (layers:",
                       model, (long long)total, c->attn, c->row_sum_tol);
        for (int64_t l = 0; l < L; l++)
            as_strbuf_addf(out->log, " %lld",
                           (long long)*as_schema_i64_const(&sc, as_schema_row_const(&sc, rows, l), JAC_F_BAD_ROWS));
        as_strbuf_addf(out->log, ")\n");
    }
    as_stage_out_options(out, jac_options, c);
    as_stage_out_f64(out, "cos_eps", AS_JACOBIAN_COS_EPS);
    return 0;
}

static const char *const jac_figures[] = { "r_diag", "cos_diag", "cos_ste", "entropy", NULL };

const struct as_stage_ops as_stage_jacobian = {
    .name = "jacobian",
    .configure = jac_configure,
    .release = jac_release,
    .inputs = jac_inputs,
    .shape = jac_shape,
    .schema = jac_schema,
    .run = jac_run,
    .finalize = jac_finalize,
    .figures = jac_figures,
};
