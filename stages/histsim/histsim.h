/* histsim.h: kernels of the histogram-similarity stage (seed 000).
 *
 * Bin edges are float32 (float64 for float64 input) and computed exactly as torch computes them:
 *   rank = q * (n - 1)             in the working precision (n - 1 rounded to it first)
 *   lo = floor(rank), hi = ceil(rank), w = rank - lo
 *   quantile = w < 0.5 ? a + w * (b - a) : b - (b - a) * (1 - w)   (torch.lerp), a = x(lo), b = x(hi)
 *   step = (hi_q - lo_q) / (n_edges - 1); edge k = lo_q + step * k for k < n_edges / 2,
 *   else hi_q - step * (n_edges - 1 - k)
 * every operation rounded to the working type, no FMA (this folder builds with -ffp-contract=off).
 * A value v falls in bin b when edge[b] < v <= edge[b+1] (torch.bucketize(right=False) - 1); a
 * value equal to the lowest edge, or outside the edges, is in no bin. */
#ifndef AS_STAGES_HISTSIM_HISTSIM_H
#define AS_STAGES_HISTSIM_HISTSIM_H

#include <stddef.h>
#include <stdint.h>

#define AS_HS_MAX_EDGES 4097

/* Order-preserving integer keys of finite floats (and back). */
static inline uint32_t as_hs_key32(float x)
{
    uint32_t u;
    __builtin_memcpy(&u, &x, 4);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
static inline float as_hs_unkey32(uint32_t k)
{
    uint32_t u = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
    float x;
    __builtin_memcpy(&x, &u, 4);
    return x;
}
static inline uint64_t as_hs_key64(double x)
{
    uint64_t u;
    __builtin_memcpy(&u, &x, 8);
    return (u & 0x8000000000000000ull) ? ~u : (u | 0x8000000000000000ull);
}
static inline double as_hs_unkey64(uint64_t k)
{
    uint64_t u = (k & 0x8000000000000000ull) ? (k & 0x7fffffffffffffffull) : ~k;
    double x;
    __builtin_memcpy(&x, &u, 8);
    return x;
}

/* The sortable key of a float32's bits, and whether the bits are inf or NaN. */
static inline int as_hs_f32_nonfinite(uint32_t b) { return (b & 0x7f800000u) == 0x7f800000u; }
static inline uint32_t as_hs_f32_key(uint32_t b) { return (b & 0x80000000u) ? ~b : (b | 0x80000000u); }

/* The exact-quantile window pass over float32 values: for each of the two quantiles q, the
 * number of finite values whose key is below lo[q], and a histogram of the keys in
 * [lo[q], lo[q] + span[q]) (hist[q][key - lo[q]] += 1). Non-finite values are only counted. */
struct as_hs_window {
    uint32_t lo[2], span[2];
    uint64_t *hist[2];
    uint64_t below[2], nonfinite; /* accumulated */
};
void as_hs_window32(struct as_hs_window *w, const float *v, size_t n);
void as_hs_window32_ref(struct as_hs_window *w, const float *v, size_t n);

/* Order-statistic ranks (0-based) of quantile q among n values, and the interpolation weight,
 * computed in float32 (f64 = 0) or float64 (f64 = 1) as torch.quantile does. n >= 1. */
void as_hs_rank(double q, uint64_t n, int f64, uint64_t *lo, uint64_t *hi, double *w);
/* torch.lerp(a, b, w) in float32 / float64. */
float as_hs_lerp32(float a, float b, float w);
double as_hs_lerp64(double a, double b, double w);
/* torch.linspace(lo, hi, steps) in float32 / float64. */
void as_hs_linspace32(float lo, float hi, int steps, float *out);
void as_hs_linspace64(double lo, double hi, int steps, double *out);

/* Histogram counts: counts[b] += 1 for every value of x[0..n) that falls in bin b of the n_edges
 * edges (n_edges - 1 bins; torch.bucketize(right=False) - 1, compared in the input's type).
 * Returns the number of values in no bin. Non-finite values are skipped and counted in
 * *nonfinite. sum (may be NULL) += the sum of the finite values, taken as 8 partial sums (value
 * j in sum j mod 8) added ((0+1)+(2+3))+((4+5)+(6+7)): the same bits on every machine. */
uint64_t as_hs_hist32(const float *x, size_t n, const float *edges, int n_edges, uint64_t *counts,
                      uint64_t *nonfinite, double *sum);
uint64_t as_hs_hist64(const double *x, size_t n, const double *edges, int n_edges, uint64_t *counts,
                      uint64_t *nonfinite, double *sum);

/* 1 - entropy(p) / ln(n_bins), p = (counts + 1e-12) normalised (the notebook's within_similarity). */
double as_hs_within(const uint64_t *counts, int n_bins);
/* 1 - JS(p, q), p and q from counts as above then the notebook's extra 1e-12 smoothing; natural log. */
double as_hs_js_similarity(const uint64_t *cp, const uint64_t *cq, int n_bins);

/* What the stage (histsim.c) did with the head ranges of its full pass, totals of this process
 * (all models), for tests and benchmarks; none of it changes a result. */
struct as_hs_keep_stats {
    uint64_t memory;               /* kept in memory (cache_mb) */
    uint64_t spilled;              /* written to a spill file ... */
    uint64_t spill_dropped;        /* ... of which a write failed (run() reads the input again) */
    uint64_t from_spill;           /* run() read back from a spill file in full */
    uint64_t spill_failed;         /* run() met a failed spill read (read the rest from the input) */
    uint64_t reread;               /* run() found nothing kept: read the triangles from the input */
};
void as_hs_keep_stats(struct as_hs_keep_stats *out);
/* Zero the counters and the read-speed probe that turns the memory cache off (see histsim.c). */
void as_hs_keep_stats_reset(void);

/* ---- naive twins (histsim_ref.c), double precision, obviously correct */
/* The k-th smallest (0-based) of n finite floats (copies and sorts). */
double as_hs_select_ref(const double *x, size_t n, uint64_t k);
/* torch.bucketize(v, edges, right=False) - 1 by binary search; -1 or >= n_edges-1: no bin. */
int as_hs_bucket_ref(double v, const double *edges, int n_edges);
double as_hs_within_ref(const double *counts, int n_bins);
double as_hs_js_similarity_ref(const double *cp, const double *cq, int n_bins);

#endif
