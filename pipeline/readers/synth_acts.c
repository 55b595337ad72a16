/* synth_acts.c: synthetic Q/K/V activations (L, T, D), D = heads * head_dim, for the activations
 * stage.
 *
 * Every value is a formula of (seed, model, layer, tensor, token, dim) through as_synth_key and
 * as_synth_normal, so any rank can make any layer. What makes them look like a real model's:
 *   - a token state shared by Q, K and V of a layer: a rank-4 AR(1) process over tokens
 *     (rho 0.9), projected by a per-(layer, tensor) matrix, so Q K^T has content and locality;
 *   - per-dimension log-normal scales and biases, growing with depth;
 *   - a few outlier dimensions (2 + D/512, the same dims in every layer and in Q and K, with a
 *     fixed sign) 8-20x larger than the rest, like LLMs' massive activations;
 *   - heavy tails: 3% of the noise is 3x wider;
 *   - token 0 is an attention sink: Q/K dominated by the outlier dims, V close to zero. */
#include <math.h>
#include <stdlib.h>

#include "as_synth.h"
#include "as_util.h"

#define ACTS_RANK 4
#define ACTS_RHO 0.9

enum { ACTS_Q, ACTS_K, ACTS_V };

static void shape_ltd(const struct as_synth_spec *s, int64_t *sh)
{
    sh[0] = s->layers;
    sh[1] = s->seq_len;
    sh[2] = s->heads * s->head_dim;
}

/* Outlier dims: n_out of them, evenly spaced from a hashed start, the same in every layer. */
static int is_outlier(const struct as_synth_spec *s, int64_t d, int64_t D, double *sign, double *mag)
{
    int64_t n_out = 2 + D / 512;
    if (n_out > D)
        n_out = D;
    uint64_t key = as_synth_key(s, -1, 60);
    int64_t base = (int64_t)((as_mix64(key) >> 11) % (uint64_t)D), stride = D / n_out;
    for (int64_t o = 0; o < n_out; o++) {
        if ((base + o * stride) % D != d)
            continue;
        uint64_t h = as_mix64(key ^ (uint64_t)(o + 1));
        *sign = (h & 1) ? 1.0 : -1.0;
        *mag = 8.0 + 12.0 * as_u01(as_mix64(h ^ 2));
        return 1;
    }
    return 0;
}

static int gen_layer(const struct as_synth_spec *s, int64_t l, int t, float *dst, struct as_error *err)
{
    int64_t T = s->seq_len, D = s->heads * s->head_dim;
    double depth = s->layers > 1 ? (double)l / (double)(s->layers - 1) : 0.0;
    double growth = 1.0 + 1.5 * depth;
    double *z = malloc((size_t)(T * ACTS_RANK) * sizeof *z);
    double *w = malloc((size_t)(ACTS_RANK * D) * sizeof *w);
    double *sc = malloc((size_t)D * sizeof *sc), *bias = malloc((size_t)D * sizeof *bias);
    unsigned char *out = malloc((size_t)D);
    if (!z || !w || !sc || !bias || !out) {
        free(z), free(w), free(sc), free(bias), free(out);
        return as_error_set(err, AS_ERR_NOMEM, "out of memory for synthetic activations (%lld x %lld)",
                            (long long)T, (long long)D);
    }
    /* the layer's token state, shared by Q, K and V */
    uint64_t kz = as_synth_key(s, l, 40);
    for (int64_t i = 0; i < T; i++)
        for (int r = 0; r < ACTS_RANK; r++) {
            double e = as_synth_normal(kz, (uint64_t)(i * ACTS_RANK + r));
            z[i * ACTS_RANK + r] = i ? ACTS_RHO * z[(i - 1) * ACTS_RANK + r] + sqrt(1 - ACTS_RHO * ACTS_RHO) * e : e;
        }
    /* K's projection is half Q's (so scores have content), half its own */
    uint64_t kwq = as_synth_key(s, l, 41), kwt = as_synth_key(s, l, 42 + (uint64_t)t);
    for (int64_t k = 0; k < ACTS_RANK * D; k++) {
        double own = as_synth_normal(kwt, (uint64_t)k);
        w[k] = t == ACTS_V ? own : 0.7 * as_synth_normal(kwq, (uint64_t)k) + 0.7 * own;
    }
    uint64_t kp = as_synth_key(s, l, 50 + (uint64_t)t);
    for (int64_t d = 0; d < D; d++) {
        double sign = 0, mag = 0;
        sc[d] = growth * exp(0.35 * as_synth_normal(kp, (uint64_t)(2 * d)));
        bias[d] = 0.3 * sc[d] * as_synth_normal(kp, (uint64_t)(2 * d + 1));
        out[d] = (unsigned char)(t != ACTS_V && is_outlier(s, d, D, &sign, &mag));
        if (out[d]) {
            bias[d] = sign * mag * 0.5 * growth;
            sc[d] *= mag * 0.3;
        }
    }
    uint64_t kn = as_synth_key(s, l, 70 + (uint64_t)t);
    double amp = 0.8 / sqrt((double)ACTS_RANK);
    for (int64_t i = 0; i < T; i++)
        for (int64_t d = 0; d < D; d++) {
            uint64_t idx = (uint64_t)(i * D + d);
            double tail = as_u01(as_mix64(kn ^ (idx * 0xd6e8feb86659fd93ULL) ^ 99)) < 0.03 ? 3.0 : 1.0;
            double lat = 0;
            for (int r = 0; r < ACTS_RANK; r++)
                lat += z[i * ACTS_RANK + r] * w[r * D + d];
            double v = bias[d] + sc[d] * (0.6 * tail * as_synth_normal(kn, idx) + amp * lat);
            if (i == 0) /* attention sink: outlier dims dominate Q/K, V nearly zero */
                v = t == ACTS_V ? 0.1 * v : out[d] ? 3.0 * v : 0.2 * v;
            dst[i * D + d] = (float)v;
        }
    free(z), free(w), free(sc), free(bias), free(out);
    return 0;
}

static int gen_q_layer(const struct as_synth_spec *s, int64_t l, float *dst, struct as_error *err)
{
    return gen_layer(s, l, ACTS_Q, dst, err);
}

static int gen_k_layer(const struct as_synth_spec *s, int64_t l, float *dst, struct as_error *err)
{
    return gen_layer(s, l, ACTS_K, dst, err);
}

static int gen_v_layer(const struct as_synth_spec *s, int64_t l, float *dst, struct as_error *err)
{
    return gen_layer(s, l, ACTS_V, dst, err);
}

static const struct as_synth_gen gen_q = { "q_acts", 3, shape_ltd, gen_q_layer };
static const struct as_synth_gen gen_k = { "k_acts", 3, shape_ltd, gen_k_layer };
static const struct as_synth_gen gen_v = { "v_acts", 3, shape_ltd, gen_v_layer };

const struct as_synth_gen *const as_synth_acts_gens[] = { &gen_q, &gen_k, &gen_v, NULL };
