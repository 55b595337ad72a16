/* activations.c: the activation-statistics stage (seed 002, demos 1 and 2) behind struct
 * as_stage_ops.
 *
 * Inputs: Q, K, V activations, (L, T, D) or (L, B, T, D), D = heads * head_dim, head h in
 * columns h*head_dim .. (h+1)*head_dim-1. One unit = one layer, read one batch item (T x D per
 * tensor) at a time; batch items are pooled: histogram counts add, moments merge exactly (Chan).
 *
 * Options (stages.activations):
 *   q, k, v           tensor names (default q_acts, k_acts, v_acts)
 *   heads             required (the width alone cannot tell it); must divide D
 *   skip_first_token  default true: token 0 (the attention sink) is left out of everything, as
 *                     the tutorial's [0, 1:, :] does; scores are then over tokens 1: x 1:
 *   edges             {min: -5, max: 5, bins: 100}: numpy.linspace(min, max, bins + 1)
 *   prob_hist         default true; false leaves out prob_hist, prob_hist_edges and the
 *                     softmax of the scores (over half the stage's time at head_dim 128)
 *   prob_bins         {min: 1e-8, bins: 50}: prob_hist has bins + 1 columns, column 0 the
 *                     underflow bin [0, min) (holds the exact zeros of underflowed exp), then
 *                     `bins` log-spaced bins, edges numpy.logspace(log10(min), 0, bins + 1), the
 *                     last closed so p = 1 counts
 *   gemm              float32 (default: cblas_sgemm, float32 accumulation over head_dim) or
 *                     float64 (cblas_dgemm on double copies; float64 input always uses dgemm)
 *
 * Fields (per layer): q_hist k_hist v_hist (numpy density=True over the edges), q_var k_var
 * v_var (unbiased), qk_mean qk_std (S = Q K^T / sqrt(head_dim) over the full width, unbiased
 * std), qk_head_mean qk_head_std (per head), prob_hist (fraction of the causal softmax
 * probabilities of every head's scores in each bin, sums to 1). Per model: hist_edges,
 * prob_hist_edges. A non-finite input value is an input error of the unit. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activations.h"
#include "as_stage.h"
#include "as_util.h"

#define ACT_WHAT "stages.activations"
/* Score rows per gemm call. Fixed, because the bits depend on it (OpenBLAS picks kernels by
 * shape). OpenBLAS packs the T x head_dim operand on every call, so few rows waste time packing:
 * at D=4096, H=32, T=2048 the per-head gemms run at 62/74/85/88 GFLOP/s for 64/128/256/512 rows
 * (one 2047x2047x4096 sgemm: 100). 256 rows: block buffers of 12 T KiB. */
#define ACT_BLOCK_ROWS 256

enum { ACT_Q, ACT_K, ACT_V, ACT_NIN };

extern const struct as_stage_ops as_stage_activations;

struct act_cfg {
    char *name[ACT_NIN];           /* owned tensor names */
    int64_t heads;
    int skip_first;
    int gemm;                      /* enum as_act_gemm */
    int64_t block;
    struct as_act_linbins hist;    /* value histogram edges */
    int prob_on;                   /* prob_hist computed (the causal softmax of every score) */
    struct as_act_logbins prob;    /* probability bins (underflow + log-spaced) */
    double prob_min;
    double hist_min, hist_max;     /* edges.min, edges.max */
    int64_t hist_bins;             /* edges.bins */
    int64_t prob_bins;             /* prob_bins.bins (log-spaced bins, without the underflow bin) */
};

static const char *const act_gemm_names[] = { "float32", "float64", NULL };
/* the `gemm` attribute says what the products are computed with */
static const char *const act_gemm_attr[] = { "sgemm (float32 products; dgemm for float64 input)",
                                             "dgemm (float64 products)", NULL };

/* Every option, recorded as an attribute of the group. `heads` records the head count used
 * (the model's when the option is not given), prob_bins.min is `prob_min`, and `prob_hist`, a
 * dataset of the group, is recorded as prob_hist_on. */
static const struct as_stage_option act_options[] = {
    { .key = "q", .type = AS_OPT_STRP, .offset = offsetof(struct act_cfg, name[0]) },
    { .key = "k", .type = AS_OPT_STRP, .offset = offsetof(struct act_cfg, name[1]) },
    { .key = "v", .type = AS_OPT_STRP, .offset = offsetof(struct act_cfg, name[2]) },
    { .key = "skip_first_token", .type = AS_OPT_BOOL, .offset = offsetof(struct act_cfg, skip_first), .parse = 1,
      .i64_default = 1 },
    { .key = "edges.min", .attr = "edges_min", .type = AS_OPT_F64, .offset = offsetof(struct act_cfg, hist_min) },
    { .key = "edges.max", .attr = "edges_max", .type = AS_OPT_F64, .offset = offsetof(struct act_cfg, hist_max) },
    { .key = "edges.bins", .attr = "edges_bins", .type = AS_OPT_I64, .offset = offsetof(struct act_cfg, hist_bins) },
    { .key = "prob_hist", .attr = "prob_hist_on", .type = AS_OPT_BOOL, .offset = offsetof(struct act_cfg, prob_on),
      .parse = 1, .i64_default = 1 },
    { .key = "prob_bins.min", .attr = "prob_min", .type = AS_OPT_F64, .offset = offsetof(struct act_cfg, prob_min) },
    { .key = "prob_bins.bins", .attr = "prob_bins", .type = AS_OPT_I64,
      .offset = offsetof(struct act_cfg, prob_bins) },
    { .key = "gemm", .type = AS_OPT_ENUM, .offset = offsetof(struct act_cfg, gemm), .parse = 1,
      .i64_default = AS_ACT_GEMM_F32, .choices = act_gemm_names, .names = act_gemm_attr },
    { .key = NULL },
};

/* Schema order. The last two exist only with prob_hist on; the per-layer ones are packed in
 * this order in a row (hist_edges is per model). */
enum {
    ACT_F_QH, ACT_F_KH, ACT_F_VH, ACT_F_QV, ACT_F_KV, ACT_F_VV, ACT_F_QKM, ACT_F_QKS, ACT_F_QKHM,
    ACT_F_QKHS, ACT_F_HE, ACT_F_PH, ACT_F_PHE, ACT_F_COUNT
};

static void act_release(void *cfgv)
{
    struct act_cfg *c = cfgv;
    if (!c)
        return;
    for (int i = 0; i < ACT_NIN; i++)
        free(c->name[i]);
    as_act_linbins_release(&c->hist);
    as_act_logbins_release(&c->prob);
    free(c);
}

static int get_name(const struct as_ynode *n, const char *key, const char *dflt, char **out, struct as_error *err)
{
    const char *s;
    if (as_ynode_get_str(n, ACT_WHAT, key, dflt, &s, err))
        return -1;
    if (!s[0] || strlen(s) > 255)
        return as_ynode_error(as_ynode_get(n, key), err, ACT_WHAT ".%s: bad tensor name '%s'", key, s);
    *out = as_xstrdup(s);
    return 0;
}

static int act_configure(void **out, const struct as_ynode *n, struct as_error *err)
{
    static const char *const extra_keys[] = { "heads", "edges", "prob_bins", NULL };
    static const char *const ekeys[] = { "min", "max", "bins", NULL };
    static const char *const pkeys[] = { "min", "bins", NULL };
    struct act_cfg *c = as_xcalloc(1, sizeof *c);
    double lo, hi;
    int64_t bins, pbins;
    if (as_stage_options_parse(act_options, n, ACT_WHAT, extra_keys, c, err) ||
        get_name(n, "q", "q_acts", &c->name[ACT_Q], err) || get_name(n, "k", "k_acts", &c->name[ACT_K], err) ||
        get_name(n, "v", "v_acts", &c->name[ACT_V], err))
        goto fail;
    c->block = ACT_BLOCK_ROWS;
    /* heads: optional; without it each model's own head count is used (its `heads:` key, its
     * synthetic spec, or another stage's input) */
    if (as_ynode_get_int(n, ACT_WHAT, "heads", 0, 1, 1 << 20, &c->heads, err))
        goto fail;

    const struct as_ynode *en = as_ynode_get(n, "edges");
    if (as_ynode_check_keys(en, ACT_WHAT ".edges", ekeys, err) ||
        as_ynode_get_double(en, ACT_WHAT ".edges", "min", -5.0, &lo, err) ||
        as_ynode_get_double(en, ACT_WHAT ".edges", "max", 5.0, &hi, err) ||
        as_ynode_get_int(en, ACT_WHAT ".edges", "bins", 100, 1, 1000000, &bins, err))
        goto fail;
    if (!(hi > lo)) {
        as_ynode_error(en, err, ACT_WHAT ".edges: min %g is not below max %g", lo, hi);
        goto fail;
    }
    if (as_act_linbins_init(&c->hist, lo, hi, bins, err))
        goto fail;
    c->hist_min = lo;
    c->hist_max = hi;
    c->hist_bins = bins;

    const struct as_ynode *pn = as_ynode_get(n, "prob_bins");
    if (as_ynode_check_keys(pn, ACT_WHAT ".prob_bins", pkeys, err) ||
        as_ynode_get_double(pn, ACT_WHAT ".prob_bins", "min", 1e-8, &c->prob_min, err) ||
        as_ynode_get_int(pn, ACT_WHAT ".prob_bins", "bins", 50, 1, 100000, &pbins, err))
        goto fail;
    if (!(c->prob_min >= 1e-300 && c->prob_min < 1)) {
        as_ynode_error(pn, err, ACT_WHAT ".prob_bins: min %g is outside [1e-300, 1)", c->prob_min);
        goto fail;
    }
    if (as_act_logbins_init(&c->prob, c->prob_min, pbins, err))
        goto fail;
    c->prob_bins = pbins;
    *out = c;
    return 0;
fail:
    act_release(c);
    return -1;
}

static int act_inputs(const void *cfgv, const char **names)
{
    const struct act_cfg *c = cfgv;
    for (int i = 0; i < ACT_NIN; i++)
        names[i] = c->name[i];
    return ACT_NIN;
}

/* Sizes of one unit, from the inputs. */
struct act_dims {
    int64_t L, B, T, D, n, s0;     /* n tokens kept, from token s0 */
};

static void shape_str(const struct as_tensor_info *ti, char *buf, size_t len)
{
    as_shape_str(ti, buf, len);
}

static int get_dims(const struct act_cfg *c, const struct as_tensor_info *const *info, struct act_dims *dm, int64_t heads,
                    struct as_error *err)
{
    const struct as_tensor_info *q = info[0];
    char s0[128], s1[128];
    if (q->ndim != 3 && q->ndim != 4) {
        shape_str(q, s0, sizeof s0);
        return as_error_set(err, AS_ERR_INPUT, "tensor '%s' has shape %s; expected (layers, tokens, width) or "
                            "(layers, batch, tokens, width)", c->name[0], s0);
    }
    for (int i = 1; i < ACT_NIN; i++) {
        int same = info[i]->ndim == q->ndim;
        for (int d = 0; same && d < q->ndim; d++)
            same = info[i]->shape[d] == q->shape[d];
        if (!same) {
            shape_str(q, s0, sizeof s0);
            shape_str(info[i], s1, sizeof s1);
            return as_error_set(err, AS_ERR_INPUT, "tensor '%s' has shape %s but '%s' has %s", c->name[i], s1,
                                c->name[0], s0);
        }
    }
    int nd = q->ndim;
    dm->L = q->shape[0];
    dm->B = nd == 4 ? q->shape[1] : 1;
    dm->T = q->shape[nd - 2];
    dm->D = q->shape[nd - 1];
    dm->s0 = c->skip_first ? 1 : 0;
    dm->n = dm->T - dm->s0;
    if (dm->L < 1 || dm->B < 1 || dm->D < 1 || dm->T < 1) {
        shape_str(q, s0, sizeof s0);
        return as_error_set(err, AS_ERR_INPUT, "tensor '%s' has an empty shape %s", c->name[0], s0);
    }
    if (heads < 1)
        return as_error_set(err, AS_ERR_CONFIG, "the head count is unknown: give the model's 'heads:' or "
                            ACT_WHAT ".heads (Q/K/V activations do not show it)");
    if (dm->D % heads)
        return as_error_set(err, AS_ERR_CONFIG, "%lld heads do not divide the width %lld of '%s'",
                            (long long)heads, (long long)dm->D, c->name[0]);
    if (dm->n < 1)
        return as_error_set(err, AS_ERR_INPUT, "tensor '%s' has 1 token: none is left after skip_first_token",
                            c->name[0]);
    if (dm->n > INT32_MAX || dm->D > INT32_MAX)
        return as_error_set(err, AS_ERR_INPUT, "tensor '%s' is too large for BLAS (int sizes)", c->name[0]);
    return 0;
}

static int act_shape(const void *cfgv, const struct as_tensor_info *const *info, struct as_stage_shape *out,
                     struct as_error *err)
{
    const struct act_cfg *c = cfgv;
    struct act_dims dm;
    int64_t heads = c->heads ? c->heads : out->n_heads;
    if (get_dims(c, info, &dm, heads, err))
        return -1;
    size_t isz = 0;
    for (int i = 0; i < ACT_NIN; i++)
        isz += as_dtype_traits[info[i]->dtype].size;
    out->n_layers = dm.L;
    out->n_heads = heads;
    out->seq_len = dm.T;
    /* about one unit per (score, head) for the softmax and reductions, plus the gemm's 2 D flops
     * per score at ~128 flops a unit (measured: D=4096, H=32, T=2048 takes ~1.3 s) */
    out->unit_cost = (double)dm.B * (double)dm.n * (double)dm.n * ((double)heads + (double)dm.D / 64.0);
    out->unit_bytes = dm.B * dm.n * dm.D * (int64_t)isz;
    return 0;
}

static void set_field(struct as_field *f, const char *name, const char *desc, int per_layer, int64_t dim,
                      const char *dim_name)
{
    memset(f, 0, sizeof *f);
    f->name = name;
    f->description = desc;
    f->type = AS_FTYPE_F64;
    f->per_layer = per_layer;
    if (dim > 0) {
        f->ndim = 1;
        f->dims[0] = dim;
        f->dim_names[0] = dim_name;
    }
}

static int act_schema(const void *cfgv, const struct as_stage_shape *sh, struct as_field *f)
{
    const struct act_cfg *c = cfgv;
    int64_t nb = c->hist.n, np = c->prob.n, H = sh->n_heads;
    set_field(&f[ACT_F_QH], "q_hist", "density of the Q values per layer (numpy.histogram density=True over "
              "hist_edges; tokens 1: when skip_first_token)", 1, nb, "bin");
    set_field(&f[ACT_F_KH], "k_hist", "density of the K values per layer, as q_hist", 1, nb, "bin");
    set_field(&f[ACT_F_VH], "v_hist", "density of the V values per layer, as q_hist", 1, nb, "bin");
    set_field(&f[ACT_F_QV], "q_var", "unbiased variance of the Q values over tokens and width", 1, 0, NULL);
    set_field(&f[ACT_F_KV], "k_var", "unbiased variance of the K values over tokens and width", 1, 0, NULL);
    set_field(&f[ACT_F_VV], "v_var", "unbiased variance of the V values over tokens and width", 1, 0, NULL);
    set_field(&f[ACT_F_QKM], "qk_mean", "mean of the scores Q K^T / sqrt(head_dim) over the full width "
              "(all token pairs)", 1, 0, NULL);
    set_field(&f[ACT_F_QKS], "qk_std", "unbiased standard deviation of the scores Q K^T / sqrt(head_dim) over "
              "the full width", 1, 0, NULL);
    set_field(&f[ACT_F_QKHM], "qk_head_mean", "mean of each head's scores Q_h K_h^T / sqrt(head_dim) (all "
              "token pairs)", 1, H, "head");
    set_field(&f[ACT_F_QKHS], "qk_head_std", "unbiased standard deviation of each head's scores "
              "Q_h K_h^T / sqrt(head_dim)", 1, H, "head");
    set_field(&f[ACT_F_PH], "prob_hist", "fraction of the causal softmax probabilities (row i over j <= i of "
              "each head's scores, all heads) in each bin of prob_hist_edges; bin 0 is [0, min)", 1, np, "bin");
    set_field(&f[ACT_F_HE], "hist_edges", "edges of q_hist, k_hist, v_hist (numpy.linspace)", 0, nb + 1, "edge");
    set_field(&f[ACT_F_PHE], "prob_hist_edges", "edges of prob_hist: 0, then numpy.logspace(log10(min), 0, "
              "bins + 1)", 0, np + 1, "edge");
    return c->prob_on ? ACT_F_COUNT : ACT_F_PH;
}

/* Locate the first non-finite value of x[0..n) for the message. */
static int nonfinite_error(const struct act_cfg *c, int t, const void *x, enum as_dtype dt, const struct act_dims *dm,
                           int64_t layer, int64_t b, struct as_error *err)
{
    int64_t n = dm->n * dm->D;
    for (int64_t i = 0; i < n; i++) {
        double v = dt == AS_DTYPE_F64 ? ((const double *)x)[i] : ((const float *)x)[i];
        if (!isfinite(v))
            return as_error_set(err, AS_ERR_INPUT, "tensor '%s' layer %lld batch %lld token %lld dim %lld: "
                                "non-finite value %g", c->name[t], (long long)layer, (long long)b,
                                (long long)(dm->s0 + i / dm->D), (long long)(i % dm->D), v);
    }
    return as_error_set(err, AS_ERR_INPUT, "tensor '%s' layer %lld batch %lld: the values overflow a float64 sum",
                        c->name[t], (long long)layer, (long long)b);
}

/* Read tensor t's batch item b of the layer (kept tokens), check it, add its moments and
 * histogram. */
static int take(const struct act_cfg *c, struct as_unit *u, int t, const struct act_dims *dm, int64_t b,
                enum as_dtype dt, void *buf, struct as_act_moments *mom, int64_t *counts, struct as_error *err)
{
    const struct as_tensor_info *ti = as_tensor_file_info(u->in[t]);
    int64_t start[4], count[4];
    int nd = ti->ndim, k = 0;
    start[k] = u->layer, count[k++] = 1;
    if (nd == 4)
        start[k] = b, count[k++] = 1;
    start[k] = dm->s0, count[k++] = dm->n;
    start[k] = 0, count[k++] = dm->D;
    if (as_tensor_file_read(u->in[t], start, count, dt, buf, err))
        return -1;
    size_t n = (size_t)(dm->n * dm->D);
    struct as_act_moments m;
    if (dt == AS_DTYPE_F64) {
        as_act_moments_f64(buf, n, &m);
        if (isfinite(m.mean))
            as_act_hist_f64(&c->hist, buf, n, counts);
    } else {
        as_act_moments_f32(buf, n, &m);
        if (isfinite(m.mean))
            as_act_hist_f32(&c->hist, buf, n, counts);
    }
    if (!isfinite(m.mean) || !isfinite(m.m2))
        return nonfinite_error(c, t, buf, dt, dm, u->layer, b, err);
    as_act_moments_merge(mom, &m);
    return 0;
}

static int act_run(const void *cfgv, const void *state, struct as_unit *u, unsigned char *row, struct as_error *err)
{
    const struct act_cfg *c = cfgv;
    const struct as_tensor_info *info[ACT_NIN];
    struct act_dims dm;
    for (int i = 0; i < ACT_NIN; i++)
        info[i] = as_tensor_file_info(u->in[i]);
    if (get_dims(c, info, &dm, u->shape->n_heads, err))
        return -1;
    int64_t H = u->shape->n_heads, nb = c->hist.n, np = c->prob.n, ne = dm.n * dm.D;
    enum as_dtype dt_qk = as_dtype_working(info[ACT_Q]->dtype) == AS_DTYPE_F64 ||
                                  as_dtype_working(info[ACT_K]->dtype) == AS_DTYPE_F64
                              ? AS_DTYPE_F64 : AS_DTYPE_F32;
    enum as_dtype dt_v = as_dtype_working(info[ACT_V]->dtype);
    int ret = -1;

    size_t wsz = as_dtype_traits[dt_qk].size > as_dtype_traits[dt_v].size ? as_dtype_traits[dt_qk].size
                                                                           : as_dtype_traits[dt_v].size;
    void *a = as_xmalloc((size_t)ne * wsz), *kb = as_xmalloc((size_t)ne * wsz);
    int64_t *hc = as_xcalloc((size_t)(ACT_NIN * nb), sizeof *hc), *pc = as_xcalloc((size_t)np, sizeof *pc);
    struct as_act_moments mom[ACT_NIN] = { { 0, 0, 0 } }, full = { 0, 0, 0 }, full_b;
    struct as_act_moments *head = as_xcalloc((size_t)H, sizeof *head), *head_b = as_xcalloc((size_t)H, sizeof *head_b);
    for (int64_t b = 0; b < dm.B; b++) {
        if (take(c, u, ACT_V, &dm, b, dt_v, a, &mom[ACT_V], hc + ACT_V * nb, err) ||
            take(c, u, ACT_Q, &dm, b, dt_qk, a, &mom[ACT_Q], hc + ACT_Q * nb, err) ||
            take(c, u, ACT_K, &dm, b, dt_qk, kb, &mom[ACT_K], hc + ACT_K * nb, err))
            goto out;
        if (as_act_scores(a, kb, dt_qk, dm.n, dm.D, H, (enum as_act_gemm)c->gemm, c->block,
                          c->prob_on ? &c->prob : NULL, &full_b, head_b, pc, err))
            goto out;
        if (!isfinite(full_b.m2)) {
            as_error_set(err, AS_ERR_INPUT, "tensors '%s' and '%s' layer %lld batch %lld: the scores overflow "
                         "(values too large)", c->name[ACT_Q], c->name[ACT_K], (long long)u->layer, (long long)b);
            goto out;
        }
        as_act_moments_merge(&full, &full_b);
        for (int64_t h = 0; h < H; h++)
            as_act_moments_merge(&head[h], &head_b[h]);
    }

    struct as_schema sc;
    as_schema_of(&sc, &as_stage_activations, cfgv, u->shape);
    for (int t = 0; t < ACT_NIN; t++)
        as_act_density(hc + t * nb, c->hist.edges, nb, as_schema_f64(&sc, row, ACT_F_QH + t));
    for (int t = 0; t < ACT_NIN; t++)
        *as_schema_f64(&sc, row, ACT_F_QV + t) = as_act_moments_var(&mom[t]);
    *as_schema_f64(&sc, row, ACT_F_QKM) = full.mean;
    *as_schema_f64(&sc, row, ACT_F_QKS) = sqrt(as_act_moments_var(&full));
    double *hm = as_schema_f64(&sc, row, ACT_F_QKHM), *hs = as_schema_f64(&sc, row, ACT_F_QKHS);
    for (int64_t h = 0; h < H; h++) {
        hm[h] = head[h].mean;
        hs[h] = sqrt(as_act_moments_var(&head[h]));
    }
    int64_t total = 0;
    for (int64_t i = 0; i < np; i++)
        total += pc[i];
    if (c->prob_on) {
        double *ph = as_schema_f64(&sc, row, ACT_F_PH);
        for (int64_t i = 0; i < np; i++)
            ph[i] = (double)pc[i] / (double)total;
    }
    ret = 0;
out:
    free(a);
    free(kb);
    free(hc);
    free(pc);
    free(head);
    free(head_b);
    return ret;
}

static int act_finalize(const void *cfgv, const void *state, const char *model, const struct as_stage_shape *sh,
                        const unsigned char *rows, struct as_stage_out *out, struct as_error *err)
{
    const struct act_cfg *c = cfgv;
    struct as_schema sc;
    as_schema_of(&sc, &as_stage_activations, cfgv, sh);
    memcpy(as_schema_f64(&sc, out->model_fields, ACT_F_HE), c->hist.edges, (size_t)(c->hist.n + 1) * sizeof(double));
    if (c->prob_on)
        memcpy(as_schema_f64(&sc, out->model_fields, ACT_F_PHE), c->prob.edges,
               (size_t)(c->prob.n + 1) * sizeof(double));

    out->n_attrs = 0;
    as_stage_out_i64(out, "heads", sh->n_heads);
    as_stage_out_options(out, act_options, c);

    if (out->log && sh->n_layers > 0) {
        static const int logged[] = { ACT_F_QV, ACT_F_KV, ACT_F_VV, ACT_F_QKM, ACT_F_QKS };
        size_t stride = sc.row_size / sizeof(double);
        for (size_t i = 0; i < sizeof logged / sizeof logged[0]; i++)
            as_log_stats(out->log, model, "activations", sc.fields[logged[i]].name,
                         as_schema_f64_const(&sc, rows, logged[i]), (size_t)sh->n_layers, stride);
        as_log_stats_rows(out->log, model, "activations", "qk_head_std", as_schema_f64_const(&sc, rows, ACT_F_QKHS),
                          (size_t)sh->n_layers, (size_t)sh->n_heads, stride);
    }
    return 0;
}

static const char *const act_figures[] = { "q_hist", "k_hist", "v_hist", "q_var", "k_var", "v_var", "qk_mean",
                                           "qk_std", "qk_head_mean", "qk_head_std", "prob_hist", NULL };

const struct as_stage_ops as_stage_activations = {
    .name = "activations",
    .configure = act_configure,
    .release = act_release,
    .inputs = act_inputs,
    .shape = act_shape,
    .schema = act_schema,
    .run = act_run,
    .finalize = act_finalize,
    .figures = act_figures,
};
