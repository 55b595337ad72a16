/* synth_acts.c: synthetic Q/K/V activations (L, T, D), D = heads * head_dim, for the activations
 * stage. One matrix per layer: rows are tokens, cols are dims.
 *
 * Every value is a formula of (seed, model, layer, tensor, token, dim) through as_synth_key and
 * as_synth_noise. What makes them look like a real model's:
 *   - a token state shared by Q, K and V of a layer: a rank-4 AR(1) process over tokens
 *     (rho 0.9), projected by a per-(layer, tensor) matrix, so Q K^T has content and locality
 *     (begin() runs the recurrence from token 0 up to the last row read: O(T), the same values
 *     for any slab);
 *   - per-dimension log-normal scales (sigma 0.2) and biases, growing with depth;
 *   - a few outlier dimensions (2 + D/512, the same dims in every layer and in Q and K, with a
 *     fixed sign) 8-20x larger than the rest, like LLMs' massive activations;
 *   - heavy tails: 3% of the noise is 3x wider;
 *   - token 0 is an attention sink: Q/K dominated by the outlier dims, V close to zero. */
#include <math.h>
#include <string.h>

#include "as_synth.h"

#define ACTS_RANK 4
#define ACTS_RHO 0.9f

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
    int64_t base = (int64_t)((as_synth_sub(key, 0) >> 11) % (uint64_t)D), stride = D / n_out;
    for (int64_t o = 0; o < n_out; o++) {
        if ((base + o * stride) % D != d)
            continue;
        uint64_t h = as_synth_sub(key, (uint64_t)(o + 1));
        *sign = (h & 1) ? 1.0 : -1.0;
        *mag = 8.0 + 12.0 * as_synth_u01(as_synth_sub(h, 2));
        return 1;
    }
    return 0;
}

/* one layer of one tensor: the token state z (T, RANK) up to the rows read, the projection w
 * (RANK, pad(D)), per-dim scale and bias (pad(D)), the outlier flags, the noise key */
struct acts_state {
    uint64_t noise_key;
    int t;
    float *z, *w, *sc, *bias;
    unsigned char *out;
};

static size_t acts_state_size(const struct as_synth_spec *s)
{
    int64_t T = s->seq_len, Dp = as_synth_pad(s->heads * s->head_dim);
    return sizeof(struct acts_state) + (size_t)(T * ACTS_RANK + (ACTS_RANK + 3) * Dp) * sizeof(float) + (size_t)Dp;
}

static void acts_begin(const struct as_synth_spec *s, const int64_t *mat, int64_t row_end, void *state, int t)
{
    struct acts_state *p = state;
    int64_t l = mat[0], T = s->seq_len, D = s->heads * s->head_dim, Dp = as_synth_pad(D);
    float *tmp;
    p->t = t;
    p->z = (float *)(p + 1);
    p->w = p->z + T * ACTS_RANK;
    p->sc = p->w + ACTS_RANK * Dp;
    p->bias = p->sc + Dp;
    tmp = p->bias + Dp;
    p->out = (unsigned char *)(tmp + Dp);
    double depth = s->layers > 1 ? (double)l / (double)(s->layers - 1) : 0.0;
    float growth = (float)(1.0 + 1.5 * depth);
    /* the layer's token state, shared by Q, K and V: z_i = rho z_{i-1} + sqrt(1 - rho^2) e_i */
    uint64_t kz = as_synth_key(s, l, 40);
    const float innov = 0.43588989f; /* sqrt(1 - 0.81) */
    for (int r = 0; r < ACTS_RANK; r++) {
        float *e = tmp;
        int64_t done = 0;
        while (done < row_end) { /* innovations in chunks of pad(D) tokens */
            int64_t n = row_end - done < Dp ? row_end - done : Dp;
            uint64_t ck = as_synth_sub(as_synth_sub(kz, (uint64_t)r), (uint64_t)(done / Dp));
            as_synth_noise(ck, n, 0, 1.0f, e);
            for (int64_t i = done; i < done + n; i++)
                p->z[i * ACTS_RANK + r] = i ? ACTS_RHO * p->z[(i - 1) * ACTS_RANK + r] + innov * e[i - done] : e[0];
            done += n;
        }
    }
    /* K's projection is half Q's (so scores have content), half its own */
    uint64_t kwq = as_synth_key(s, l, 41), kwt = as_synth_key(s, l, 42 + (uint64_t)t);
    for (int r = 0; r < ACTS_RANK; r++) {
        float *w = p->w + r * Dp;
        as_synth_noise(as_synth_sub(kwt, (uint64_t)r), D, 0, 1.0f, w);
        if (t != ACTS_V) {
            as_synth_noise(as_synth_sub(kwq, (uint64_t)r), D, 0, 1.0f, tmp);
            for (int64_t d = 0; d < D; d++)
                w[d] = 0.7f * tmp[d] + 0.7f * w[d];
        }
    }
    uint64_t kp = as_synth_key(s, l, 50 + (uint64_t)t);
    as_synth_noise(as_synth_sub(kp, 0), D, 0, 1.0f, p->sc);
    as_synth_noise(as_synth_sub(kp, 1), D, 0, 1.0f, p->bias);
    memset(p->out, 0, (size_t)Dp);
    for (int64_t d = 0; d < Dp; d++) {
        if (d >= D) {
            p->sc[d] = p->bias[d] = 0;
            continue;
        }
        double sign = 0, mag = 0;
        p->sc[d] = growth * as_synth_expf(0.2f * p->sc[d]);
        p->bias[d] = 0.15f * p->sc[d] * p->bias[d];
        p->out[d] = (unsigned char)(t != ACTS_V && is_outlier(s, d, D, &sign, &mag));
        if (p->out[d]) {
            p->bias[d] = (float)(sign * mag) * growth;
            p->sc[d] *= (float)(mag * 0.3);
        }
    }
    p->noise_key = as_synth_key(s, l, 70 + (uint64_t)t);
}

static void acts_row(const struct as_synth_spec *s, void *state, int64_t i, float *dst)
{
    struct acts_state *p = state;
    int64_t D = s->heads * s->head_dim;
    float z[ACTS_RANK];
    for (int r = 0; r < ACTS_RANK; r++)
        z[r] = 0.25f * p->z[i * ACTS_RANK + r]; /* 0.5 / sqrt(RANK) */
    as_synth_noise(as_synth_sub(p->noise_key, (uint64_t)i), D, 8, 3.0f, dst);
    as_synth_mix(dst, D, p->bias, p->sc, 0.6f, z, p->w, ACTS_RANK, as_synth_pad(D));
    if (i == 0) /* attention sink: outlier dims dominate Q/K, V nearly zero */
        for (int64_t d = 0; d < D; d++)
            dst[d] *= p->t == ACTS_V ? 0.1f : p->out[d] ? 3.0f : 0.2f;
}

static void q_begin(const struct as_synth_spec *s, const int64_t *mat, int64_t row_end, void *state)
{
    acts_begin(s, mat, row_end, state, ACTS_Q);
}

static void k_begin(const struct as_synth_spec *s, const int64_t *mat, int64_t row_end, void *state)
{
    acts_begin(s, mat, row_end, state, ACTS_K);
}

static void v_begin(const struct as_synth_spec *s, const int64_t *mat, int64_t row_end, void *state)
{
    acts_begin(s, mat, row_end, state, ACTS_V);
}

static const struct as_synth_gen gen_q = { "q_acts", 3, shape_ltd, acts_state_size, q_begin, acts_row };
static const struct as_synth_gen gen_k = { "k_acts", 3, shape_ltd, acts_state_size, k_begin, acts_row };
static const struct as_synth_gen gen_v = { "v_acts", 3, shape_ltd, acts_state_size, v_begin, acts_row };

const struct as_synth_gen *const as_synth_acts_gens[] = { &gen_q, &gen_k, &gen_v, NULL };
