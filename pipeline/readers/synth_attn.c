/* synth_attn.c: synthetic attention probabilities "attn" and upstream gradients "grad", both
 * (L, B, H, T, T) float32, for the jacobian and patterns stages.
 *
 * Per (layer, batch item b, head h), with d = head_dim and approximate standard normals from
 * as_synth_noise (one key per matrix and stream, then one per row of Q or W and one per column
 * of K or V, so a matrix's K^T / V^T is made column by column in (d, T) layout):
 *   attn = causal softmax_j( tau_h * Q K^T / sqrt(d) - m_h (i - j) + sink_h [j = 0] ), Q, K (T, d),
 *          tau_h in [0.5, 3) from the head's hash (sharp and flat heads), m_h = 2^(-8 (h+1) / H)
 *          (ALiBi slopes), sink_h in [0, 4) in about half the heads; entries above the diagonal 0
 *   grad = dLoss/dattn of the read-out Loss = sum(W * (attn V)) / (B T): W V^T / (B T),
 *          W, V (T, d); non-zero above the diagonal too, like a real dOut V^T
 * Dot products are float, in the order k = 0 .. d-1 (as_synth_dot): no BLAS, so nothing depends
 * on a thread count. A row costs O(T d); a matrix's K^T or V^T O(T d), made once per read. */
#include <math.h>

#include "as_synth.h"

enum { STREAM_Q = 0x617474, STREAM_K, STREAM_V, STREAM_W, STREAM_HEAD };

static void shape_lbhtt(const struct as_synth_spec *s, int64_t *sh)
{
    sh[0] = s->layers;
    sh[1] = s->batch;
    sh[2] = s->heads;
    sh[3] = s->seq_len;
    sh[4] = s->seq_len;
}

/* the state of one (layer, b, h) matrix: its parameters, the row stream's key, the row vector
 * (padded d) and X^T (d, pad(T)) */
struct prod_state {
    uint64_t row_key;
    float alpha, slope, sink;
    int is_attn;
    float *q, *xt;
};

static size_t prod_state_size(const struct as_synth_spec *s)
{
    return sizeof(struct prod_state) + (size_t)(as_synth_pad(s->head_dim) + s->head_dim * as_synth_pad(s->seq_len)) * sizeof(float);
}

static void prod_begin(const struct as_synth_spec *s, const int64_t *mat, int64_t row_end, void *state,
                       uint64_t srow, uint64_t scol, int is_attn)
{
    struct prod_state *p = state;
    int64_t l = mat[0], b = mat[1], h = mat[2], H = s->heads, T = s->seq_len, d = s->head_dim;
    uint64_t m = (uint64_t)(b * H + h);
    p->q = (float *)(p + 1);
    p->xt = p->q + as_synth_pad(d);
    p->is_attn = is_attn;
    p->row_key = as_synth_sub(as_synth_key(s, l, srow), m);
    uint64_t ck = as_synth_sub(as_synth_key(s, l, scol), m);
    /* attn reads keys j <= i only */
    int64_t n = is_attn ? (row_end < T ? row_end : T) : T;
    for (int64_t k = 0; k < d; k++)
        as_synth_noise(as_synth_sub(ck, (uint64_t)k), n, 0, 1.0f, p->xt + k * as_synth_pad(T));
    if (is_attn) {
        uint64_t hk = as_synth_sub(as_synth_key(s, l, STREAM_HEAD), (uint64_t)h);
        double sink = as_synth_u01(as_synth_sub(hk, 2));
        p->alpha = (float)((0.5 + 2.5 * as_synth_u01(as_synth_sub(hk, 1))) / sqrt((double)d));
        p->slope = as_synth_expf((float)(-8.0 * 0.6931471805599453 * (double)(h + 1) / (double)H));
        p->sink = sink < 0.5 ? (float)(8.0 * sink) : 0.0f;
    } else {
        p->alpha = (float)(1.0 / ((double)s->batch * (double)T));
        p->slope = 0;
        p->sink = 0;
    }
}

static void attn_begin(const struct as_synth_spec *s, const int64_t *mat, int64_t row_end, void *state)
{
    prod_begin(s, mat, row_end, state, STREAM_Q, STREAM_K, 1);
}

static void grad_begin(const struct as_synth_spec *s, const int64_t *mat, int64_t row_end, void *state)
{
    prod_begin(s, mat, row_end, state, STREAM_W, STREAM_V, 0);
}

static void prod_row(const struct as_synth_spec *s, void *state, int64_t i, float *dst)
{
    struct prod_state *p = state;
    int64_t T = s->seq_len, d = s->head_dim, n = p->is_attn ? i + 1 : T;
    as_synth_noise(as_synth_sub(p->row_key, (uint64_t)i), d, 0, 1.0f, p->q);
    as_synth_dot(dst, n, p->q, p->xt, d, as_synth_pad(T), p->alpha, i, -p->slope);
    if (p->is_attn) {
        dst[0] += p->sink;
        as_synth_softmax_causal(dst, i, T);
    }
}

static const struct as_synth_gen gen_attn = { "attn", 5, shape_lbhtt, prod_state_size, attn_begin, prod_row };
static const struct as_synth_gen gen_grad = { "grad", 5, shape_lbhtt, prod_state_size, grad_begin, prod_row };

const struct as_synth_gen *const as_synth_attn_gens[] = { &gen_attn, &gen_grad, NULL };
