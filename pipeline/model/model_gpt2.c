/* model_gpt2.c: the GPT-2 architecture: config.json, weights, and its float32 kernels
 * (cblas_sgemm for every matrix product; LayerNorm and softmax statistics in double). */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model_gpt2.h"
#include "as_util.h"

static const char *const gelu_names[] = { "gelu_new", "gelu_pytorch_tanh", "gelu_fast", NULL };

static int gpt2_matches(const char *model_type, const char *architecture)
{
    if (model_type && !strcmp(model_type, "gpt2"))
        return 1;
    return architecture && (!strcmp(architecture, "GPT2LMHeadModel") || !strcmp(architecture, "GPT2Model"));
}

/* ---- kernels */

void as_gpt2_layernorm(const float *x, int n, int E, const float *g, const float *b, double eps, float *y)
{
    for (int i = 0; i < n; i++) {
        const float *r = x + (size_t)i * E;
        double s = 0, ss = 0;
        for (int j = 0; j < E; j++)
            s += r[j];
        double mean = s / E;
        for (int j = 0; j < E; j++)
            ss += (r[j] - mean) * (r[j] - mean);
        double rstd = 1.0 / sqrt(ss / E + eps);
        float *o = y + (size_t)i * E;
        for (int j = 0; j < E; j++)
            o[j] = (float)((r[j] - mean) * rstd * g[j] + b[j]);
    }
}

/* rows of c (n, m) = bias (m,) */
static void fill_bias(float *c, int n, int m, const float *bias)
{
    for (int i = 0; i < n; i++)
        memcpy(c + (size_t)i * m, bias, (size_t)m * sizeof *c);
}

/* c (n, m) += a (n, k) @ w (k, m): the Conv1D product */
static void gemm_acc(const float *a, const float *w, float *c, int n, int k, int m)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, m, k, 1.0f, a, k, w, m, 1.0f, c, m);
}

/* x (n, E) += y (n, E) @ proj_w + proj_b */
static void project_add(const struct as_gpt2_layer *w, int E, const float *y, float *x, int n)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < E; j++)
            x[(size_t)i * E + j] += w->proj_b[j];
    gemm_acc(y, w->proj_w, x, n, E, E);
}

/* qkv (n, 3E) of ln_1(x), split into q, k, v (n, E) */
static void qkv_of(const struct as_gpt2_layer *w, const struct as_model_config *c, const float *x, int n,
                   float *q, float *k, float *v)
{
    int E = c->n_embd;
    float *a = as_xmalloc((size_t)n * E * sizeof *a), *qkv = as_xmalloc((size_t)n * 3 * E * sizeof *qkv);
    as_gpt2_layernorm(x, n, E, w->ln1_w, w->ln1_b, c->ln_eps, a);
    fill_bias(qkv, n, 3 * E, w->attn_b);
    gemm_acc(a, w->attn_w, qkv, n, E, 3 * E);
    for (int i = 0; i < n; i++) {
        const float *r = qkv + (size_t)i * 3 * E;
        memcpy(q + (size_t)i * E, r, (size_t)E * sizeof *q);
        memcpy(k + (size_t)i * E, r + E, (size_t)E * sizeof *k);
        memcpy(v + (size_t)i * E, r + 2 * E, (size_t)E * sizeof *v);
    }
    free(a);
    free(qkv);
}

/* s[0..m) = softmax(s[0..m)) in place, statistics in double */
static void softmax_row(float *s, int m)
{
    double mx = s[0], sum = 0;
    for (int j = 1; j < m; j++)
        mx = s[j] > mx ? s[j] : mx;
    for (int j = 0; j < m; j++)
        sum += exp((double)s[j] - mx);
    for (int j = 0; j < m; j++)
        s[j] = (float)(exp((double)s[j] - mx) / sum);
}

void as_gpt2_attn(const struct as_gpt2_layer *w, const struct as_model_config *c, float *x, int T,
                  const struct as_head_mask *mask, float *q, float *k, float *v)
{
    int E = c->n_embd, H = c->n_head, d = c->head_dim;
    size_t te = (size_t)T * E;
    float *buf = as_xmalloc((3 * te + te + (size_t)T * T) * sizeof *buf);
    float *qq = q ? q : buf, *kk = k ? k : buf + te, *vv = v ? v : buf + 2 * te;
    float *y = buf + 3 * te, *s = y + te;
    qkv_of(w, c, x, T, qq, kk, vv);
    float scale = (float)(1.0 / sqrt((double)d));
    for (int h = 0; h < H; h++) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, d, scale, qq + h * d, E, kk + h * d, E, 0.0f,
                    s, T);
        for (int i = 0; i < T; i++) {
            softmax_row(s + (size_t)i * T, i + 1);
            memset(s + (size_t)i * T + i + 1, 0, (size_t)(T - i - 1) * sizeof *s);
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, d, T, 1.0f, s, T, vv + h * d, E, 0.0f, y + h * d,
                    E);
    }
    if (mask)
        for (int i = 0; i < mask->n; i++)
            memset(y + (size_t)mask->row * E + (size_t)mask->heads[i] * d, 0, (size_t)d * sizeof *y);
    project_add(w, E, y, x, T);
    free(buf);
}

void as_gpt2_attn_rows(const struct as_gpt2_layer *w, const struct as_model_config *c, float *x, int n, int p,
                       const float *k_prev, const float *v_prev, const int *zero_head)
{
    int E = c->n_embd, H = c->n_head, d = c->head_dim, ld = p + 1;
    size_t ne = (size_t)n * E;
    float *buf = as_xmalloc((4 * ne + (size_t)n * ld) * sizeof *buf);
    float *q = buf, *k = q + ne, *v = k + ne, *y = v + ne, *s = y + ne;
    qkv_of(w, c, x, n, q, k, v);
    float scale = (float)(1.0 / sqrt((double)d));
    for (int h = 0; h < H; h++) {
        if (p > 0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, p, d, scale, q + h * d, E, k_prev + h * d, E,
                        0.0f, s, ld);
        for (int i = 0; i < n; i++) {
            const float *qi = q + (size_t)i * E + h * d, *ki = k + (size_t)i * E + h * d;
            float dot = 0;
            for (int j = 0; j < d; j++)
                dot += qi[j] * ki[j];
            s[(size_t)i * ld + p] = scale * dot;
            softmax_row(s + (size_t)i * ld, ld);
        }
        if (p > 0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, d, p, 1.0f, s, ld, v_prev + h * d, E, 0.0f,
                        y + h * d, E);
        for (int i = 0; i < n; i++) {
            float pi = s[(size_t)i * ld + p], *yi = y + (size_t)i * E + h * d;
            const float *vi = v + (size_t)i * E + h * d;
            for (int j = 0; j < d; j++)
                yi[j] = (p > 0 ? yi[j] : 0.0f) + pi * vi[j];
        }
    }
    if (zero_head)
        for (int i = 0; i < n; i++)
            if (zero_head[i] >= 0)
                memset(y + (size_t)i * E + (size_t)zero_head[i] * d, 0, (size_t)d * sizeof *y);
    project_add(w, E, y, x, n);
    free(buf);
}

static const float GELU_C = 0.7978845608028654f; /* sqrt(2 / pi) */

void as_gpt2_mlp(const struct as_gpt2_layer *w, const struct as_model_config *c, float *x, int n)
{
    int E = c->n_embd, NI = c->n_inner;
    float *a = as_xmalloc((size_t)n * E * sizeof *a), *h = as_xmalloc((size_t)n * NI * sizeof *h);
    as_gpt2_layernorm(x, n, E, w->ln2_w, w->ln2_b, c->ln_eps, a);
    fill_bias(h, n, NI, w->fc_b);
    gemm_acc(a, w->fc_w, h, n, E, NI);
    for (size_t i = 0; i < (size_t)n * NI; i++) {
        float u = h[i];
        h[i] = 0.5f * u * (1.0f + tanhf(GELU_C * (u + 0.044715f * u * u * u)));
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < E; j++)
            x[(size_t)i * E + j] += w->out_b[j];
    gemm_acc(h, w->out_w, x, n, NI, E);
    free(a);
    free(h);
}

/* ---- the vtable */

static void gpt2_embed(const struct as_model *m, const int32_t *tok, int T, float *x)
{
    const struct as_gpt2 *g = m->impl;
    int E = m->cfg.n_embd;
    for (int t = 0; t < T; t++)
        for (int j = 0; j < E; j++)
            x[(size_t)t * E + j] = g->wte[(size_t)tok[t] * E + j] + g->wpe[(size_t)t * E + j];
}

static void gpt2_layer(const struct as_model *m, int l, float *x, int T, const struct as_head_mask *mask, float *q,
                       float *k, float *v)
{
    const struct as_gpt2 *g = m->impl;
    as_gpt2_attn(&g->layer[l], &m->cfg, x, T, mask, q, k, v);
    as_gpt2_mlp(&g->layer[l], &m->cfg, x, T);
}

static void gpt2_layer_rows(const struct as_model *m, int l, float *x, int n, int p, const float *k_prev,
                            const float *v_prev, const int *zero_head)
{
    const struct as_gpt2 *g = m->impl;
    as_gpt2_attn_rows(&g->layer[l], &m->cfg, x, n, p, k_prev, v_prev, zero_head);
    as_gpt2_mlp(&g->layer[l], &m->cfg, x, n);
}

static void gpt2_logits(const struct as_model *m, const float *x, int n, float *logits)
{
    const struct as_gpt2 *g = m->impl;
    int E = m->cfg.n_embd, V = m->cfg.vocab_size;
    float *a = as_xmalloc((size_t)n * E * sizeof *a);
    as_gpt2_layernorm(x, n, E, g->lnf_w, g->lnf_b, m->cfg.ln_eps, a);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, V, E, 1.0f, a, E, g->wte, E, 0.0f, logits, V);
    free(a);
}

static void gpt2_release(struct as_model *m)
{
    struct as_gpt2 *g = m->impl;
    if (!g)
        return;
    as_model_weights_release(&g->w);
    free(g->layer);
    free(g);
    m->impl = NULL;
}

static int get1(struct as_gpt2 *g, const char *name, int64_t n0, const float **out, struct as_error *err)
{
    int64_t s[1] = { n0 };
    return as_model_weights_get(&g->w, name, 1, s, out, err);
}

static int get2(struct as_gpt2 *g, const char *name, int64_t n0, int64_t n1, const float **out,
                struct as_error *err)
{
    int64_t s[2] = { n0, n1 };
    return as_model_weights_get(&g->w, name, 2, s, out, err);
}

static int gpt2_config(struct as_model_config *c, const json_t *root, const char *path, struct as_error *err)
{
    if (as_model_cfg_int(root, "n_layer", 1, &c->n_layer, path, err) ||
        as_model_cfg_int(root, "n_head", 1, &c->n_head, path, err) ||
        as_model_cfg_int(root, "n_embd", 1, &c->n_embd, path, err) ||
        as_model_cfg_int(root, "n_positions", 1, &c->n_positions, path, err) ||
        as_model_cfg_int(root, "vocab_size", 1, &c->vocab_size, path, err))
        return -1;
    c->ln_eps = 1e-5;
    if (as_model_cfg_num(root, "layer_norm_epsilon", &c->ln_eps, path, err))
        return -1;
    if (!(c->ln_eps >= 0))
        return as_error_set(err, AS_ERR_INPUT, "'%s': 'layer_norm_epsilon' must be >= 0", path);
    if (c->n_embd % c->n_head)
        return as_error_set(err, AS_ERR_INPUT, "'%s': n_embd %d is not a multiple of n_head %d", path, c->n_embd,
                            c->n_head);
    c->head_dim = c->n_embd / c->n_head;
    c->n_inner = 4 * c->n_embd;
    json_t *jni = json_object_get(root, "n_inner");
    if (jni && !json_is_null(jni) && as_model_cfg_int(root, "n_inner", 1, &c->n_inner, path, err))
        return -1;
    json_t *act = json_object_get(root, "activation_function");
    if (act) {
        const char *a = json_string_value(act);
        int ok = 0;
        for (int i = 0; gelu_names[i] && a && !ok; i++)
            ok = !strcmp(a, gelu_names[i]);
        if (!ok)
            return as_error_set(err, AS_ERR_INPUT,
                                "'%s': activation_function '%s' is not supported (gelu_new, gelu_pytorch_tanh, "
                                "gelu_fast)", path, a ? a : "?");
    }
    json_t *sa = json_object_get(root, "scale_attn_weights"), *si = json_object_get(root, "scale_attn_by_inverse_layer_idx");
    if ((sa && json_is_false(sa)) || (si && json_is_true(si)))
        return as_error_set(err, AS_ERR_INPUT,
                            "'%s': only q k^T / sqrt(head_dim) attention scaling is supported "
                            "(scale_attn_weights true, scale_attn_by_inverse_layer_idx false)", path);
    return 0;
}

static int gpt2_load(struct as_model *m, const json_t *root, const char *cfg_path, struct as_error *err)
{
    struct as_model_config *c = &m->cfg;
    if (gpt2_config(c, root, cfg_path, err))
        return -1;
    struct as_gpt2 *g = as_xcalloc(1, sizeof *g);
    m->impl = g;
    if (as_model_weights_open(&g->w, m->dir, "transformer.", err))
        return -1;
    int64_t E = c->n_embd, NI = c->n_inner;
    if (get2(g, "wte.weight", c->vocab_size, E, &g->wte, err) ||
        get2(g, "wpe.weight", c->n_positions, E, &g->wpe, err) || get1(g, "ln_f.weight", E, &g->lnf_w, err) ||
        get1(g, "ln_f.bias", E, &g->lnf_b, err))
        return -1;
    g->layer = as_xcalloc((size_t)c->n_layer, sizeof *g->layer);
    for (int l = 0; l < c->n_layer; l++) {
        struct as_gpt2_layer *L = &g->layer[l];
        char n[12][64];
        static const char *const suffix[12] = {
            "ln_1.weight",      "ln_1.bias",         "attn.c_attn.weight", "attn.c_attn.bias",
            "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight",        "ln_2.bias",
            "mlp.c_fc.weight",  "mlp.c_fc.bias",     "mlp.c_proj.weight",  "mlp.c_proj.bias",
        };
        for (int i = 0; i < 12; i++)
            snprintf(n[i], sizeof n[i], "h.%d.%s", l, suffix[i]);
        if (get1(g, n[0], E, &L->ln1_w, err) || get1(g, n[1], E, &L->ln1_b, err) ||
            get2(g, n[2], E, 3 * E, &L->attn_w, err) || get1(g, n[3], 3 * E, &L->attn_b, err) ||
            get2(g, n[4], E, E, &L->proj_w, err) || get1(g, n[5], E, &L->proj_b, err) ||
            get1(g, n[6], E, &L->ln2_w, err) || get1(g, n[7], E, &L->ln2_b, err) ||
            get2(g, n[8], E, NI, &L->fc_w, err) || get1(g, n[9], NI, &L->fc_b, err) ||
            get2(g, n[10], NI, E, &L->out_w, err) || get1(g, n[11], E, &L->out_b, err))
            return -1;
    }
    m->n_params = g->w.n_params;
    m->mapped_bytes = g->w.mapped_bytes;
    m->copied_bytes = g->w.copied_bytes;
    return 0;
}

const struct as_model_ops as_model_gpt2 = {
    .name = "gpt2",
    .matches = gpt2_matches,
    .config = gpt2_config,
    .load = gpt2_load,
    .release = gpt2_release,
    .embed = gpt2_embed,
    .layer = gpt2_layer,
    .layer_rows = gpt2_layer_rows,
    .logits = gpt2_logits,
};
