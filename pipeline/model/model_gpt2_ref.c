/* model_gpt2_ref.c: naive double-precision twins of GPT-2's attention and MLP blocks (triple
 * loops, exact tanh, no BLAS), the reference the float32 kernels are tested against. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model_gpt2.h"
#include "as_util.h"

static void layernorm_ref(const double *x, int n, int E, const float *g, const float *b, double eps, double *y)
{
    for (int i = 0; i < n; i++) {
        double s = 0, ss = 0;
        for (int j = 0; j < E; j++)
            s += x[i * E + j];
        double mean = s / E;
        for (int j = 0; j < E; j++)
            ss += (x[i * E + j] - mean) * (x[i * E + j] - mean);
        double rstd = 1.0 / sqrt(ss / E + eps);
        for (int j = 0; j < E; j++)
            y[i * E + j] = (x[i * E + j] - mean) * rstd * g[j] + b[j];
    }
}

/* y (n, m) = a (n, k) @ w (k, m) + bias */
static void linear_ref(const double *a, const float *w, const float *bias, int n, int k, int m, double *y)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < m; j++) {
            double s = bias[j];
            for (int t = 0; t < k; t++)
                s += a[i * k + t] * w[(size_t)t * m + j];
            y[i * m + j] = s;
        }
}

void as_gpt2_attn_ref(const struct as_gpt2_layer *w, const struct as_model_config *c, double *x, int T,
                      const struct as_head_mask *mask)
{
    int E = c->n_embd, H = c->n_head, d = c->head_dim;
    double *a = as_xmalloc((size_t)T * E * sizeof *a), *qkv = as_xmalloc((size_t)T * 3 * E * sizeof *qkv);
    double *y = as_xcalloc((size_t)T * E, sizeof *y), *p = as_xmalloc((size_t)T * sizeof *p);
    double *o = as_xmalloc((size_t)T * E * sizeof *o);
    layernorm_ref(x, T, E, w->ln1_w, w->ln1_b, c->ln_eps, a);
    linear_ref(a, w->attn_w, w->attn_b, T, E, 3 * E, qkv);
    for (int h = 0; h < H; h++)
        for (int i = 0; i < T; i++) {
            double mx = -INFINITY, sum = 0;
            for (int j = 0; j <= i; j++) {
                double s = 0;
                for (int t = 0; t < d; t++)
                    s += qkv[i * 3 * E + h * d + t] * qkv[j * 3 * E + E + h * d + t];
                p[j] = s / sqrt((double)d);
                mx = p[j] > mx ? p[j] : mx;
            }
            for (int j = 0; j <= i; j++)
                sum += (p[j] = exp(p[j] - mx));
            for (int j = 0; j <= i; j++)
                for (int t = 0; t < d; t++)
                    y[i * E + h * d + t] += p[j] / sum * qkv[j * 3 * E + 2 * E + h * d + t];
        }
    if (mask)
        for (int i = 0; i < mask->n; i++)
            memset(y + (size_t)mask->row * E + (size_t)mask->heads[i] * d, 0, (size_t)d * sizeof *y);
    linear_ref(y, w->proj_w, w->proj_b, T, E, E, o);
    for (size_t i = 0; i < (size_t)T * E; i++)
        x[i] += o[i];
    free(a);
    free(qkv);
    free(y);
    free(p);
    free(o);
}

void as_gpt2_mlp_ref(const struct as_gpt2_layer *w, const struct as_model_config *c, double *x, int n)
{
    int E = c->n_embd, NI = c->n_inner;
    double *a = as_xmalloc((size_t)n * E * sizeof *a), *h = as_xmalloc((size_t)n * NI * sizeof *h);
    double *o = as_xmalloc((size_t)n * E * sizeof *o);
    layernorm_ref(x, n, E, w->ln2_w, w->ln2_b, c->ln_eps, a);
    linear_ref(a, w->fc_w, w->fc_b, n, E, NI, h);
    for (size_t i = 0; i < (size_t)n * NI; i++)
        h[i] = 0.5 * h[i] * (1.0 + tanh(sqrt(2.0 / M_PI) * (h[i] + 0.044715 * h[i] * h[i] * h[i])));
    linear_ref(h, w->out_w, w->out_b, n, NI, E, o);
    for (size_t i = 0; i < (size_t)n * E; i++)
        x[i] += o[i];
    free(a);
    free(h);
    free(o);
}
