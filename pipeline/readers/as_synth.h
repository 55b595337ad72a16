/* as_synth.h: built-in synthetic models, so every stage can run with no data of the user's.
 *
 * A synthetic model is a spec (layers, heads, seq_len, batch, head_dim, seed, model name). Every
 * tensor of it is a stack of matrices: its last two dims are (rows, cols), the dims before them
 * (layer first) index the matrix. Any row of any matrix is generated on its own, on demand, for
 * exactly the slab read() asks for: nothing is ever made a layer at a time, so a synthetic model
 * costs the memory of a file (one row plus a matrix's shared state, O(T * head_dim)).
 *
 * Determinism: a value is a function of (seed, model, layer, matrix, row, col) alone. Every
 * element goes through counter-based hashes (as_mix64 once per row, a 32-bit hash per element),
 * whole rows are always made (all cols, the same loop whatever the slab), and every kernel does
 * the same IEEE float operations lane by lane with no FMA and fixed partial sums, whatever the
 * instruction set (as_simd.h). So any rank, any slab or block decomposition, any machine gives
 * the same bits.
 *
 * Tensors (float32), with what makes each statistic non-trivial:
 *   qk_mean, qk_var, attention_probs_mean, attention_probs_var   (L, H, T, T)
 *       scores = head offset - ALiBi-like slope_h(layer) |i - j| + diagonal bonus + attention
 *       sink (column 0, some heads) + heavy-tailed noise; probs = causal softmax of each row
 *       (rows sum to 1 over j <= i, 0 above the diagonal); variances derived from them
 *   attn, grad                                                    (L, B, H, T, T)
 *       attn = causal softmax(tau_h Q K^T / sqrt(d) - m_h (i - j) + sink_h [j = 0]), Q, K (T, d)
 *       normal; grad = W V^T / (B T), W, V (T, d) normal (non-zero above the diagonal)
 *   q_acts, k_acts, v_acts                                        (L, T, D), D = H * head_dim
 *       a rank-4 AR(1) token state shared by Q, K, V; per-dim log-normal scales and biases
 *       growing with depth; outlier dims (the same in every layer, in Q and K); heavy tails;
 *       token 0 an attention sink (outlier dims dominate Q/K, V close to zero)
 * It is opened as a reader (as_reader_synth) on a spec string made by as_synth_spec_format(),
 * with the tensor name as the key. */
#ifndef AS_PIPELINE_AS_SYNTH_H
#define AS_PIPELINE_AS_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#include "as_error.h"
#include "as_reader.h"

struct as_synth_spec {
    int64_t layers, heads, seq_len, batch, head_dim;
    uint64_t seed;
    char model[128];
};

/* "synthetic:layers=6,heads=8,seq_len=128,batch=2,head_dim=16,seed=7,model=synth-b" */
void as_synth_spec_format(const struct as_synth_spec *s, char *buf, size_t n);
int as_synth_spec_parse(const char *text, struct as_synth_spec *s, struct as_error *err);

/* Rows are written padded: a row buffer of n values has room for as_synth_pad(n). */
#define AS_SYNTH_PAD 16
static inline int64_t as_synth_pad(int64_t n) { return (n + AS_SYNTH_PAD - 1) / AS_SYNTH_PAD * AS_SYNTH_PAD; }

/* One generator per tensor name. */
struct as_synth_gen {
    const char *name;
    int ndim;                      /* including the layer dim; >= 3 */
    void (*shape)(const struct as_synth_spec *s, int64_t *shape);
    /* Bytes of the state one matrix's rows share (what begin() fills, row()'s scratch). */
    size_t (*state_size)(const struct as_synth_spec *s);
    /* Prepare matrix `mat` (its ndim - 2 leading indices, layer first) for rows < row_end.
     * The state depends on (s, mat) only; row_end only bounds how much of it is filled. */
    void (*begin)(const struct as_synth_spec *s, const int64_t *mat, int64_t row_end, void *state);
    /* Row r (< row_end) of the matrix begin() prepared: all cols into dst, which has room for
     * as_synth_pad(cols) floats (the padding is scratch). */
    void (*row)(const struct as_synth_spec *s, void *state, int64_t r, float *dst);
};

/* Generators (NULL-terminated tables): the score tensors (reader_synth.c), attention
 * probabilities and gradients (synth_attn.c), Q/K/V activations (synth_acts.c). */
extern const struct as_synth_gen *const as_synth_score_gens[];
extern const struct as_synth_gen *const as_synth_attn_gens[];
extern const struct as_synth_gen *const as_synth_acts_gens[];

/* Hash of (seed, model name, layer, stream): the base of every per-matrix key. */
uint64_t as_synth_key(const struct as_synth_spec *s, int64_t layer, uint64_t stream);
/* Key of item `i` (a row, a column, a matrix) under key k. */
static inline uint64_t as_synth_sub(uint64_t k, uint64_t i)
{
    uint64_t x = k ^ ((i + 1) * 0x9e3779b97f4a7c15ULL);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}
/* Uniform [0, 1) from a key. */
static inline double as_synth_u01(uint64_t k) { return (double)(k >> 11) * (1.0 / 9007199254740992.0); }
/* e^x in float (|x| < 87), the same bits on every machine (no libm). */
float as_synth_expf(float x);

/* ---- the vector kernels of the generators (synth_kernels.c). n values are made, rounded up to
 * AS_SYNTH_PAD (buffers have room for as_synth_pad(n)); element j depends on j and the
 * arguments only. */

/* dst[j] = approximately standard normal z of (key, j) (Irwin-Hall sum of four 14-bit
 * uniforms), times tail_scale for about tail_per256 / 256 of the j (heavy tails; 0: none). */
void as_synth_noise(uint64_t key, int64_t n, unsigned tail_per256, float tail_scale, float *dst);
/* dst[j] = a + b |i - j| + c dst[j] */
void as_synth_ramp(float *dst, int64_t n, int64_t i, float a, float b, float c);
/* dst[j] = a + b dst[j]^2 */
void as_synth_square(float *dst, int64_t n, float a, float b);
/* dst[j] = c dst[j] (1 - dst[j]) */
void as_synth_bernvar(float *dst, int64_t n, float c);
/* Causal softmax of row i: dst[0..i] = exp(x_j - max) / sum (sum in double, fixed partial
 * sums), dst[i+1 .. as_synth_pad(n)) = 0. Only dst[0..i] is read. */
void as_synth_softmax_causal(float *dst, int64_t i, int64_t n);
/* dst[j] = alpha sum_k q[k] xt[k ld + j] (k in order 0..d-1) + b |i - j|: a row of Q X^T with
 * X^T stored (d, ld), ld >= as_synth_pad(n). */
void as_synth_dot(float *dst, int64_t n, const float *q, const float *xt, int64_t d, int64_t ld, float alpha,
                  int64_t i, float b);
/* dst[j] = bias[j] + scale[j] (g dst[j] + sum_r z[r] w[r ld + j]) for r < rank. */
void as_synth_mix(float *dst, int64_t n, const float *bias, const float *scale, float g, const float *z,
                  const float *w, int rank, int64_t ld);
/* dst[j] = src[j] for j < n (exactly n: no padding). */
void as_synth_widen(double *dst, const float *src, int64_t n);

#endif
