/* activations.h: kernels of the activation-statistics stage (Q/K/V histograms and variances,
 * statistics of the scaled scores Q K^T / sqrt(head_dim), histogram of causal softmax
 * probabilities), each with a naive double-precision `_ref` twin in activations_ref.c.
 *
 * Shapes: q, k are (n, d) row-major, one batch item with the kept tokens only (n tokens, d =
 * heads * head_dim model width); head h is columns h*head_dim .. (h+1)*head_dim-1.
 *
 * Accumulation and determinism:
 *   - every reduction is in double, in a fixed order that depends only on the sizes (never on
 *     the thread count or on who calls);
 *   - the score products are computed with OpenBLAS gemm, per head, in row blocks of `block`
 *     rows (block x n scores at a time): sgemm (float32 accumulation over head_dim) or dgemm on
 *     double copies (enum as_act_gemm). The full-width scores are the sum over heads of the
 *     per-head products, accumulated in double;
 *   - OpenBLAS is NOT thread-count independent: when it splits a gemm between threads, the
 *     columns at the edge of a thread's share go through other kernels and round differently
 *     (0.3.21, dgemm 300x300x256: 1752 elements differ between 1 and 2 threads). as_act_scores
 *     therefore sets openblas_set_num_threads(1) around its gemm calls and restores the caller's
 *     count (a global setting: do not call it concurrently with other BLAS users). Parallelism
 *     comes from the pipeline (one layer per rank), not from BLAS threads;
 *   - the gemm kernel OpenBLAS picks depends on the call's shape, so results depend on `block`
 *     (fixed by the stage) but not on anything else: same inputs, same bits;
 *   - the mean of the scores is exact in double without the products:
 *     mean = (sum_i q_i) . (sum_j k_j) / (n^2 sqrt(head_dim)); the products only feed
 *     M2 = sum (S - mean)^2, so the variance has no cancellation. */
#ifndef AS_STAGES_ACTIVATIONS_ACTIVATIONS_H
#define AS_STAGES_ACTIVATIONS_ACTIVATIONS_H

#include <stddef.h>
#include <stdint.h>

#include "as_dtype.h"
#include "as_error.h"

/* Count, mean and M2 = sum (x - mean)^2 of a set of values. */
struct as_act_moments {
    int64_t n;
    double mean, m2;
};

/* Two-pass moments of x[0..n) in double (4 interleaved partial sums, fixed order). The mean is
 * non-finite iff some value is non-finite (or, for float64 input, the sum overflows). */
void as_act_moments_f32(const float *x, size_t n, struct as_act_moments *out);
void as_act_moments_f64(const double *x, size_t n, struct as_act_moments *out);
/* Merge b into acc (Chan et al.): exact pooling of two sets' moments, no cancellation. */
void as_act_moments_merge(struct as_act_moments *acc, const struct as_act_moments *b);
/* Unbiased variance M2 / (n - 1); NaN when n < 2 (as torch.var). */
double as_act_moments_var(const struct as_act_moments *m);

/* numpy.linspace(lo, hi, num): out[i] = lo + i * ((hi - lo) / (num - 1)), out[num-1] = hi.
 * out is (num,). */
void as_act_linspace(double lo, double hi, int64_t num, double *out);

/* Histogram bins with numpy.histogram semantics for explicit edges: bin i is
 * [edges[i], edges[i+1]), the last bin is closed [edges[n-1], edges[n]]; values outside or NaN
 * are not counted. */
struct as_act_linbins {
    int64_t n;                     /* bins */
    double *edges;                 /* (n + 1,) owned; numpy.linspace(lo, hi, n + 1) */
    double lo, inv_step;           /* first guess of the bin: (x - lo) * inv_step */
    double slack;                  /* the guess is trusted this far from a bin boundary */
};
int as_act_linbins_init(struct as_act_linbins *b, double lo, double hi, int64_t n, struct as_error *err);
void as_act_linbins_release(struct as_act_linbins *b);
/* Bin of x, or -1 when x is outside [edges[0], edges[n]] or NaN. */
int64_t as_act_linbins_find(const struct as_act_linbins *b, double x);
/* counts (b->n,) += histogram of x[0..n). */
void as_act_hist_f32(const struct as_act_linbins *b, const float *x, size_t n, int64_t *counts);
void as_act_hist_f64(const struct as_act_linbins *b, const double *x, size_t n, int64_t *counts);
/* numpy density=True: out[i] = counts[i] / (edges[i+1] - edges[i]) / sum(counts), evaluated in
 * that order; NaN everywhere when no value fell inside (numpy's 0/0). out is (nbins,). */
void as_act_density(const int64_t *counts, const double *edges, int64_t nbins, double *out);

/* Bins for probabilities: bin 0 is the underflow bin [0, min) (exact zeros included), bins
 * 1..nlog are log-spaced, edges[1..nlog+1] = numpy.logspace(log10(min), 0, nlog + 1) (that is
 * 10 ** linspace), same half-open/closed-last convention, so p = 1 lands in the last bin. */
struct as_act_logbins {
    int64_t n;                     /* bins: nlog + 1 */
    double *edges;                 /* (n + 1,) owned: 0, min, ..., 1 */
    int32_t *lut;                  /* owned: first guess of the bin by exponent and top mantissa bits */
    int64_t lut_n;
    int e_min;                     /* biased exponent of edges[1] */
    double t_scale, t_off;         /* bin - 1 ~ floor(ln(p) * t_scale + t_off), the fast path */
};
/* min in [1e-300, 1), nlog >= 1. */
int as_act_logbins_init(struct as_act_logbins *b, double min, int64_t nlog, struct as_error *err);
void as_act_logbins_release(struct as_act_logbins *b);
/* Bin of p, or -1 when p is outside [0, 1] or NaN. */
int64_t as_act_logbins_find(const struct as_act_logbins *b, double p);

enum as_act_gemm {
    AS_ACT_GEMM_F32 = 0,           /* cblas_sgemm on float32 data (float32 accumulation) */
    AS_ACT_GEMM_F64,               /* cblas_dgemm (float32 data is copied to double first) */
    AS_ACT_GEMM_COUNT
};

/* Statistics of the scores of one batch item:
 *   full          S = Q K^T / sqrt(head_dim), all n x n entries (full model width);
 *   head[h]       S_h = Q_h K_h^T / sqrt(head_dim), all n x n entries;            (heads,)
 *   prob_counts  += histogram (pb) of the causal row softmax of every S_h: row i over j <= i,
 *                   n (n + 1) / 2 probabilities per head.                            (pb->n,)
 *                   pb NULL: no softmax (prob_counts unused), the rest is unchanged, bitwise.
 * q, k: (n, d) of `dtype` (AS_DTYPE_F32 or AS_DTYPE_F64); float64 data always uses dgemm.
 * block: rows of scores per gemm call (>= 1). Memory: block * n * 12 bytes, plus 2 n d doubles
 * when float32 data goes through dgemm. Returns 0 (memory comes from as_xmalloc). */
int as_act_scores(const void *q, const void *k, enum as_dtype dtype, int64_t n, int64_t d, int64_t heads,
                  enum as_act_gemm gemm, int64_t block, const struct as_act_logbins *pb,
                  struct as_act_moments *full, struct as_act_moments *head, int64_t *prob_counts,
                  struct as_error *err);

/* counts (pb->n,) += histogram (pb) of the softmax of x[0..c) * scale: the row kernel of
 * as_act_scores' probability histogram, alone. z = (x - max x) * scale, e = exp(z) (as_exp1's
 * bits), s = the sum of e over 8 partial sums (element j in sum j mod 8, combined
 * ((0+1)+(2+3))+((4+5)+(6+7))), p = e * (1 / s) clamped to 1; the bin of each p is found from
 * z in log space, or by searching the edges when that is within rounding of a boundary, so the
 * counts are exactly as_act_softmax_hist_ref's. Returns 0 (memory comes from as_xmalloc). */
int as_act_softmax_hist(const double *x, int64_t c, double scale, const struct as_act_logbins *pb, int64_t *counts,
                        struct as_error *err);

/* The row loops use the vector instruction set of as_simd_level() (pipeline/as_simd.h):
 * AVX-512, AVX2, SSE2 or plain C, all with the same bits. */

/* ---- naive twins (activations_ref.c): plain loops in double, obviously correct, slow. */

/* Two-pass moments over x[0..n). */
void as_act_moments_ref(const double *x, size_t n, struct as_act_moments *out);
/* counts (nbins,) += histogram of x by a linear scan of the edges (numpy semantics). */
void as_act_hist_ref(const double *edges, int64_t nbins, const double *x, size_t n, int64_t *counts);
/* As as_act_softmax_hist, by the definition: plain loops, a linear scan of the edges. */
void as_act_softmax_hist_ref(const double *x, int64_t c, double scale, const double *edges, int64_t nbins,
                             int64_t *counts);
/* As as_act_scores, from the full n x n score matrices held in memory, triple-loop products. */
int as_act_scores_ref(const double *q, const double *k, int64_t n, int64_t d, int64_t heads,
                      const double *prob_edges, int64_t n_prob_bins, struct as_act_moments *full,
                      struct as_act_moments *head, int64_t *prob_counts, struct as_error *err);

#endif
