/* synth_attn.c: synthetic attention probabilities "attn" and upstream gradients "grad", both
 * (L, B, H, T, T) float32, for the jacobian and patterns stages.
 *
 * Per (layer, batch item b, head h), with d = head_dim and standard normals from
 * as_synth_normal (counter = ((b * H + h) * T + t) * d + k, one stream per matrix):
 *   attn = causal softmax_j( tau_h * Q K^T / sqrt(d) - m_h (i - j) ),  Q, K (T, d),
 *          tau_h in [0.5, 3) from the head's hash (sharp and flat heads), m_h = 2^(-8 (h+1) / H)
 *          (ALiBi slopes); entries above the diagonal are 0
 *   grad = dLoss/dattn of the read-out Loss = sum(W * (attn V)) / (B T): W V^T / (B T),
 *          W, V (T, d); non-zero above the diagonal too, like a real dOut V^T
 * Products go through cblas_dgemm in double and are rounded to float once, so the output does
 * not depend on the OpenBLAS thread count (the tests check 1 vs 2 threads). */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>

#include "as_synth.h"
#include "as_util.h"

enum { STREAM_Q = 0x617474, STREAM_K, STREAM_V, STREAM_W, STREAM_HEAD };

static void shape_lbhtt(const struct as_synth_spec *s, int64_t *sh)
{
    sh[0] = s->layers;
    sh[1] = s->batch;
    sh[2] = s->heads;
    sh[3] = s->seq_len;
    sh[4] = s->seq_len;
}

static void fill_normal(double *x, uint64_t key, uint64_t base, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = as_synth_normal(key, base + (uint64_t)i);
}

/* Two (T, d) normal matrices X (stream sx) and Y (stream sy) per (b, h), then
 * dst[b, h] = alpha_h * X Y^T, passed to finish() for the per-row work. */
static int gen_products(const struct as_synth_spec *s, int64_t l, float *dst, uint64_t sx, uint64_t sy,
                        int is_attn, struct as_error *err)
{
    int64_t B = s->batch, H = s->heads, T = s->seq_len, d = s->head_dim;
    double *X = malloc((size_t)(T * d) * sizeof *X), *Y = malloc((size_t)(T * d) * sizeof *Y);
    double *P = malloc((size_t)(T * T) * sizeof *P);
    if (!X || !Y || !P) {
        free(X);
        free(Y);
        free(P);
        return as_error_set(err, AS_ERR_NOMEM, "synthetic model '%s' layer %lld: out of memory", s->model,
                            (long long)l);
    }
    uint64_t kx = as_synth_key(s, l, sx), ky = as_synth_key(s, l, sy), kh = as_synth_key(s, l, STREAM_HEAD);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            uint64_t base = (uint64_t)((b * H + h) * T * d);
            fill_normal(X, kx, base, T * d);
            fill_normal(Y, ky, base, T * d);
            double alpha;
            if (is_attn)
                alpha = (0.5 + 2.5 * as_u01(as_mix64(kh ^ (uint64_t)h))) / sqrt((double)d);
            else
                alpha = 1.0 / ((double)B * (double)T);
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)T, (int)d, alpha, X, (int)d, Y,
                        (int)d, 0.0, P, (int)T);
            float *out = dst + (b * H + h) * T * T;
            if (!is_attn) {
                for (int64_t k = 0; k < T * T; k++)
                    out[k] = (float)P[k];
                continue;
            }
            double slope = pow(2.0, -8.0 * (double)(h + 1) / (double)H);
            for (int64_t i = 0; i < T; i++) {
                double *r = P + i * T, mx = -INFINITY, sum = 0;
                for (int64_t j = 0; j <= i; j++) {
                    r[j] -= slope * (double)(i - j);
                    mx = r[j] > mx ? r[j] : mx;
                }
                for (int64_t j = 0; j <= i; j++) {
                    r[j] = exp(r[j] - mx);
                    sum += r[j];
                }
                for (int64_t j = 0; j < T; j++)
                    out[i * T + j] = j <= i ? (float)(r[j] / sum) : 0.0f;
            }
        }
    free(X);
    free(Y);
    free(P);
    return 0;
}

static int gen_attn_layer(const struct as_synth_spec *s, int64_t l, float *dst, struct as_error *err)
{
    return gen_products(s, l, dst, STREAM_Q, STREAM_K, 1, err);
}

static int gen_grad_layer(const struct as_synth_spec *s, int64_t l, float *dst, struct as_error *err)
{
    return gen_products(s, l, dst, STREAM_W, STREAM_V, 0, err);
}

static const struct as_synth_gen gen_attn = { "attn", 5, shape_lbhtt, gen_attn_layer };
static const struct as_synth_gen gen_grad = { "grad", 5, shape_lbhtt, gen_grad_layer };

const struct as_synth_gen *const as_synth_attn_gens[] = { &gen_attn, &gen_grad, NULL };
