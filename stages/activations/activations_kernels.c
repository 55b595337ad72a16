/* activations_kernels.c: the optimized kernels of the activations stage (contracts in
 * activations.h). */
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "activations.h"
#include "as_math.h"
#include "as_prof.h"
#include "as_simd.h"
#include "as_util.h"

/* ---- moments */

void as_act_moments_merge(struct as_act_moments *acc, const struct as_act_moments *b)
{
    if (!b->n)
        return;
    if (!acc->n) {
        *acc = *b;
        return;
    }
    double na = (double)acc->n, nb = (double)b->n, nt = na + nb;
    double delta = b->mean - acc->mean;
    acc->mean += delta * (nb / nt);
    acc->m2 += b->m2 + delta * delta * (na * nb / nt);
    acc->n += b->n;
}

double as_act_moments_var(const struct as_act_moments *m)
{
    return m->n < 2 ? NAN : m->m2 / (double)(m->n - 1);
}

/* ---- linear bins */

void as_act_linspace(double lo, double hi, int64_t num, double *out)
{
    if (num <= 0)
        return;
    if (num == 1) {
        out[0] = lo;
        return;
    }
    double div = (double)(num - 1), delta = hi - lo, step = delta / div;
    for (int64_t i = 0; i < num; i++)
        out[i] = step == 0 ? (double)i / div * delta + lo : (double)i * step + lo;
    out[num - 1] = hi;
}

int as_act_linbins_init(struct as_act_linbins *b, double lo, double hi, int64_t n, struct as_error *err)
{
    memset(b, 0, sizeof *b);
    if (!(n >= 1 && n <= 100000000) || !isfinite(lo) || !isfinite(hi) || !(hi > lo))
        return as_error_set(err, AS_ERR_CONFIG, "histogram edges need min < max (finite) and 1 <= bins <= 1e8, "
                            "got min=%g max=%g bins=%lld", lo, hi, (long long)n);
    b->edges = as_xcalloc((size_t)(n + 1), sizeof *b->edges);
    b->n = n;
    as_act_linspace(lo, hi, n + 1, b->edges);
    b->lo = lo;
    b->inv_step = (double)n / (hi - lo);
    if (!isfinite(b->inv_step))
        b->inv_step = 0; /* the edge walk still finds the bin */
    /* how far t = (x - lo) * inv_step may be from x's position among the computed edges, in
     * bins: a few roundings of the edges (of size ~ max|edge|) and of t (~ n); beyond 0.5 the
     * vector path defers every value to the edge walk */
    double big = fabs(lo) > fabs(hi) ? fabs(lo) : fabs(hi);
    b->slack = 64 * DBL_EPSILON * (big * b->inv_step + (double)n);
    return 0;
}

void as_act_linbins_release(struct as_act_linbins *b)
{
    free(b->edges);
    memset(b, 0, sizeof *b);
}

/* First guess from the uniform step, then walk to the exact edges (at most a step or two). */
static inline int64_t linbins_find(const struct as_act_linbins *b, double x)
{
    const double *e = b->edges;
    int64_t n = b->n;
    if (!(x >= e[0] && x <= e[n]))
        return -1;
    double t = (x - b->lo) * b->inv_step;
    int64_t i = t < 0 ? 0 : t >= (double)(n - 1) ? n - 1 : (int64_t)t;
    while (i > 0 && x < e[i])
        i--;
    while (i < n - 1 && x >= e[i + 1])
        i++;
    return i;
}

int64_t as_act_linbins_find(const struct as_act_linbins *b, double x) { return linbins_find(b, x); }

void as_act_density(const int64_t *counts, const double *edges, int64_t nbins, double *out)
{
    int64_t total = 0;
    for (int64_t i = 0; i < nbins; i++)
        total += counts[i];
    for (int64_t i = 0; i < nbins; i++)
        out[i] = total ? (double)counts[i] / (edges[i + 1] - edges[i]) / (double)total : NAN;
}

/* ---- log bins: a lookup by (exponent, top LUT_BITS mantissa bits) gives a bin at or below the
 * right one; a short walk over the exact edges finishes. */

#define LUT_BITS 8

static inline uint64_t dbits(double x)
{
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

int as_act_logbins_init(struct as_act_logbins *b, double min, int64_t nlog, struct as_error *err)
{
    memset(b, 0, sizeof *b);
    if (!(min >= 1e-300 && min < 1) || !(nlog >= 1 && nlog <= 1000000))
        return as_error_set(err, AS_ERR_CONFIG, "probability bins need 1e-300 <= min < 1 and 1 <= bins <= 1e6, "
                            "got min=%g bins=%lld", min, (long long)nlog);
    int64_t n = nlog + 1;
    b->edges = as_xcalloc((size_t)(n + 1), sizeof *b->edges);
    as_act_linspace(log10(min), 0.0, nlog + 1, b->edges + 1);
    b->edges[0] = 0;
    for (int64_t i = 1; i <= n; i++)
        b->edges[i] = pow(10.0, b->edges[i]);
    b->n = n;
    double l1 = log10(min), step = (0.0 - l1) / (double)nlog; /* as_act_linspace's step */
    b->t_scale = 1.0 / (M_LN10 * step);
    b->t_off = -l1 / step;
    b->e_min = (int)(dbits(b->edges[1]) >> 52);
    b->lut_n = (int64_t)(1023 - b->e_min + 1) << LUT_BITS;
    b->lut = as_xcalloc((size_t)b->lut_n, sizeof *b->lut);
    int64_t i = 1;
    for (int64_t key = 0; key < b->lut_n; key++) {
        uint64_t u = ((uint64_t)(b->e_min + (key >> LUT_BITS)) << 52) | ((uint64_t)(key & ((1 << LUT_BITS) - 1))
                                                                          << (52 - LUT_BITS));
        double lo;
        memcpy(&lo, &u, sizeof lo);
        while (i < n - 1 && b->edges[i + 1] <= lo)
            i++;
        b->lut[key] = (int32_t)i;
    }
    return 0;
}

void as_act_logbins_release(struct as_act_logbins *b)
{
    free(b->edges);
    free(b->lut);
    memset(b, 0, sizeof *b);
}

static inline int64_t logbins_find(const struct as_act_logbins *b, double p)
{
    const double *e = b->edges;
    int64_t n = b->n;
    if (!(p >= 0 && p <= e[n]))
        return -1;
    if (p < e[1])
        return 0;
    uint64_t u = dbits(p);
    int64_t key = ((int64_t)(u >> 52) - b->e_min) << LUT_BITS | (int64_t)((u >> (52 - LUT_BITS)) & ((1 << LUT_BITS) - 1));
    int64_t i = b->lut[key];
    while (i < n - 1 && p >= e[i + 1])
        i++;
    return i;
}

int64_t as_act_logbins_find(const struct as_act_logbins *b, double p) { return logbins_find(b, p); }

/* ---- the vector loops of activations_simd.h, instantiated for a scalar "vector" (1 lane: any
 * machine, and a twin for the tests), SSE2 (the x86-64 baseline), AVX2 and AVX-512 (chosen at
 * run time when the CPU has them). All give the same bits. */

#define SIMD_CHAINS 8

/* t of a probability must be this far from an integer for the log-space bin to be trusted:
 * the arithmetic of t (|z k1| <= 745 k1, k1 <= 1/(ln 10 * 8e-6) at 1e6 bins over 8 decades)
 * is off by < 1e-8, and the computed p and edges by a few ulp, far below this. */
#define PROB_T_SLACK 1e-6

#define SIMD_ISA scalar
#define SIMD_TARGET
#define VD double
#define VW 1
#define VSET1(a) (a)
#define VZERO() 0.0
#define VADD(a, b) ((a) + (b))
#define VSUB(a, b) ((a) - (b))
#define VMUL(a, b) ((a) * (b))
#define VMAX(a, b) ((a) > (b) ? (a) : (b))
#define VMIN(a, b) ((a) < (b) ? (a) : (b))
#define VLOADU(ptr) (*(ptr))
#define VSTOREU(ptr, v) (*(ptr) = (v))
#define VLOADF32(ptr) ((double)*(ptr))
#define VLOADF64(ptr) (*(ptr))
#define VTRUNC(v) ((double)(int32_t)(v))
#define VSTORE_I32(ptr, v) (*(ptr) = (int32_t)(v))
#define VM int
#define VLT(a, b) ((a) < (b))
#define VGT(a, b) ((a) > (b))
#define VEQ(a, b) ((a) == (b))
#define VAND(a, b) ((a) && (b))
#define VOR(a, b) ((a) || (b))
#define VSEL(m, a, b) ((m) ? (a) : (b))
#define VINRANGE(v, lo, hi) ((v) >= (lo) && (v) <= (hi))
#define VEXP_BITS(t) as_exp_scale(t)
#include "activations_simd.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define AS_ACT_X86 1
#include <immintrin.h>

#define SIMD_ISA sse2
#define SIMD_TARGET
#define VD __m128d
#define VW 2
#define VSET1(a) _mm_set1_pd(a)
#define VZERO() _mm_setzero_pd()
#define VADD(a, b) _mm_add_pd(a, b)
#define VSUB(a, b) _mm_sub_pd(a, b)
#define VMUL(a, b) _mm_mul_pd(a, b)
#define VMAX(a, b) _mm_max_pd(a, b) /* a > b ? a : b: NaN a gives b */
#define VMIN(a, b) _mm_min_pd(a, b)
#define VLOADU(ptr) _mm_loadu_pd(ptr)
#define VSTOREU(ptr, v) _mm_storeu_pd(ptr, v)
#define VLOADF32(ptr) _mm_cvtps_pd(_mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)(const void *)(ptr))))
#define VLOADF64(ptr) _mm_loadu_pd(ptr)
#define VTRUNC(v) _mm_cvtepi32_pd(_mm_cvttpd_epi32(v))
#define VSTORE_I32(ptr, v) _mm_storel_epi64((__m128i *)(void *)(ptr), _mm_cvttpd_epi32(v))
#define VM __m128d
#define VLT(a, b) _mm_cmplt_pd(a, b)
#define VGT(a, b) _mm_cmpgt_pd(a, b)
#define VEQ(a, b) _mm_cmpeq_pd(a, b)
#define VAND(a, b) _mm_and_pd(a, b)
#define VOR(a, b) _mm_or_pd(a, b)
#define VSEL(m, a, b) _mm_or_pd(_mm_and_pd(m, a), _mm_andnot_pd(m, b))
#define VINRANGE(v, lo, hi) (_mm_movemask_pd(_mm_and_pd(_mm_cmpge_pd(v, lo), _mm_cmple_pd(v, hi))) == 3)
#define VEXP_BITS(t)                                                                               \
    _mm_castsi128_pd(_mm_slli_epi64(                                                               \
        _mm_add_epi64(_mm_sub_epi64(_mm_castpd_si128(t), _mm_set1_epi64x(0x4338000000000000LL)),  \
                      _mm_set1_epi64x(1023)),                                                      \
        52))
#include "activations_simd.h"

#define SIMD_ISA avx2
#define SIMD_TARGET __attribute__((target("avx2")))
#define VD __m256d
#define VW 4
#define VSET1(a) _mm256_set1_pd(a)
#define VZERO() _mm256_setzero_pd()
#define VADD(a, b) _mm256_add_pd(a, b)
#define VSUB(a, b) _mm256_sub_pd(a, b)
#define VMUL(a, b) _mm256_mul_pd(a, b)
#define VMAX(a, b) _mm256_max_pd(a, b)
#define VMIN(a, b) _mm256_min_pd(a, b)
#define VLOADU(ptr) _mm256_loadu_pd(ptr)
#define VSTOREU(ptr, v) _mm256_storeu_pd(ptr, v)
#define VLOADF32(ptr) _mm256_cvtps_pd(_mm_loadu_ps(ptr))
#define VLOADF64(ptr) _mm256_loadu_pd(ptr)
#define VTRUNC(v) _mm256_cvtepi32_pd(_mm256_cvttpd_epi32(v))
#define VSTORE_I32(ptr, v) _mm_storeu_si128((__m128i *)(void *)(ptr), _mm256_cvttpd_epi32(v))
#define VM __m256d
#define VLT(a, b) _mm256_cmp_pd(a, b, _CMP_LT_OQ)
#define VGT(a, b) _mm256_cmp_pd(a, b, _CMP_GT_OQ)
#define VEQ(a, b) _mm256_cmp_pd(a, b, _CMP_EQ_OQ)
#define VAND(a, b) _mm256_and_pd(a, b)
#define VOR(a, b) _mm256_or_pd(a, b)
#define VSEL(m, a, b) _mm256_or_pd(_mm256_and_pd(m, a), _mm256_andnot_pd(m, b))
#define VINRANGE(v, lo, hi)                                                                        \
    (_mm256_movemask_pd(_mm256_and_pd(_mm256_cmp_pd(v, lo, _CMP_GE_OQ), _mm256_cmp_pd(v, hi, _CMP_LE_OQ))) == 15)
#define VEXP_BITS(t)                                                                               \
    _mm256_castsi256_pd(_mm256_slli_epi64(                                                         \
        _mm256_add_epi64(_mm256_sub_epi64(_mm256_castpd_si256(t), _mm256_set1_epi64x(0x4338000000000000LL)), \
                         _mm256_set1_epi64x(1023)),                                                \
        52))
#include "activations_simd.h"

#define SIMD_ISA avx512
#define SIMD_TARGET __attribute__((target("avx512f")))
#define VD __m512d
#define VW 8
#define VSET1(a) _mm512_set1_pd(a)
#define VZERO() _mm512_setzero_pd()
#define VADD(a, b) _mm512_add_pd(a, b)
#define VSUB(a, b) _mm512_sub_pd(a, b)
#define VMUL(a, b) _mm512_mul_pd(a, b)
#define VMAX(a, b) _mm512_max_pd(a, b)
#define VMIN(a, b) _mm512_min_pd(a, b)
#define VLOADU(ptr) _mm512_loadu_pd(ptr)
#define VSTOREU(ptr, v) _mm512_storeu_pd(ptr, v)
#define VLOADF32(ptr) _mm512_cvtps_pd(_mm256_loadu_ps(ptr))
#define VLOADF64(ptr) _mm512_loadu_pd(ptr)
#define VTRUNC(v) _mm512_cvtepi32_pd(_mm512_cvttpd_epi32(v))
#define VSTORE_I32(ptr, v) _mm256_storeu_si256((__m256i *)(void *)(ptr), _mm512_cvttpd_epi32(v))
#define VM __mmask8
#define VLT(a, b) _mm512_cmp_pd_mask(a, b, _CMP_LT_OQ)
#define VGT(a, b) _mm512_cmp_pd_mask(a, b, _CMP_GT_OQ)
#define VEQ(a, b) _mm512_cmp_pd_mask(a, b, _CMP_EQ_OQ)
#define VAND(a, b) ((__mmask8)((a) & (b)))
#define VOR(a, b) ((__mmask8)((a) | (b)))
#define VSEL(m, a, b) _mm512_mask_blend_pd(m, b, a)
#define VINRANGE(v, lo, hi)                                                                        \
    ((_mm512_cmp_pd_mask(v, lo, _CMP_GE_OQ) & _mm512_cmp_pd_mask(v, hi, _CMP_LE_OQ)) == 0xff)
#define VEXP_BITS(t)                                                                               \
    _mm512_castsi512_pd(_mm512_slli_epi64(                                                         \
        _mm512_add_epi64(_mm512_sub_epi64(_mm512_castpd_si512(t), _mm512_set1_epi64(0x4338000000000000LL)), \
                         _mm512_set1_epi64(1023)),                                                 \
        52))
#include "activations_simd.h"
#endif

struct simd_ops {
    const char *name;
    double (*accum_f32)(const float *, double *, int, int64_t, double);
    double (*accum_f64)(const double *, double *, int, int64_t, double);
    double (*max_f32)(const float *, int64_t);
    double (*max_f64)(const double *, int64_t);
    double (*exp_f32)(const float *, int64_t, double, double, double *, double *);
    double (*exp_f64)(const double *, int64_t, double, double, double *, double *);
    double (*sq_dev)(const double *, int64_t, double);
    void (*tbins)(const double *, int64_t, double, double, double, int32_t *);
    void (*lin_bins_f32)(const float *, int64_t, double, double, double, double, int32_t *);
    void (*lin_bins_f64)(const double *, int64_t, double, double, double, double, int32_t *);
    double (*sum_f32)(const float *, int64_t, int, double);
    double (*sum_f64)(const double *, int64_t, int, double);
};

#define SIMD_OPS(isa)                                                                              \
    {                                                                                              \
        #isa, row_accum_##isa##_f32, row_accum_##isa##_f64, row_max_##isa##_f32, row_max_##isa##_f64, \
            row_exp_##isa##_f32, row_exp_##isa##_f64, sq_dev_##isa##_f64, row_tbins_##isa##_f64,     \
            lin_bins_##isa##_f32, lin_bins_##isa##_f64, sum_##isa##_f32, sum_##isa##_f64                 \
    }

/* indexed by enum as_simd, up to the widest this build has */
static const struct simd_ops simd_table[] = {
    SIMD_OPS(scalar),
#ifdef AS_ACT_X86
    SIMD_OPS(sse2),
    SIMD_OPS(avx2),
    SIMD_OPS(avx512),
#endif
};

static const struct simd_ops *simd_ops(void)
{
    size_t l = (size_t)as_simd_level(), top = sizeof simd_table / sizeof *simd_table - 1;
    return &simd_table[l < top ? l : top];
}

/* ---- moments and linear histograms (the vector loops above) */

void as_act_moments_f32(const float *x, size_t n, struct as_act_moments *out)
{
    const struct simd_ops *o = simd_ops();
    double mean = n ? o->sum_f32(x, (int64_t)n, 0, 0) / (double)n : 0;
    *out = (struct as_act_moments){ (int64_t)n, mean, n ? o->sum_f32(x, (int64_t)n, 1, mean) : 0 };
}

void as_act_moments_f64(const double *x, size_t n, struct as_act_moments *out)
{
    const struct simd_ops *o = simd_ops();
    double mean = n ? o->sum_f64(x, (int64_t)n, 0, 0) / (double)n : 0;
    *out = (struct as_act_moments){ (int64_t)n, mean, n ? o->sum_f64(x, (int64_t)n, 1, mean) : 0 };
}

#define HIST_CHUNK 2048 /* values binned per vector call */
#define HIST_COPIES 4   /* interleaved counters: runs of equal bins do not wait on each other */
#define HIST_LOCAL 256  /* bins up to which the copies live on the stack */

/* counts += histogram of x[0..n): the vector bins, the exact search near an edge. */
static void hist_any(const struct as_act_linbins *b, const void *x, int f64, size_t n, int64_t *counts)
{
    const struct simd_ops *o = simd_ops();
    int32_t kb[HIST_CHUNK];
    int64_t local[HIST_COPIES * HIST_LOCAL];
    int copies = b->n <= HIST_LOCAL ? HIST_COPIES : 1;
    int64_t *cnt = copies > 1 ? local : counts, nb = copies > 1 ? b->n : 0;
    if (copies > 1)
        memset(local, 0, (size_t)(copies * b->n) * sizeof *local);
    for (size_t i0 = 0; i0 < n; i0 += HIST_CHUNK) {
        int64_t m = (int64_t)(n - i0 < HIST_CHUNK ? n - i0 : HIST_CHUNK);
        if (f64)
            o->lin_bins_f64((const double *)x + i0, m, b->lo, b->inv_step, (double)b->n, b->slack, kb);
        else
            o->lin_bins_f32((const float *)x + i0, m, b->lo, b->inv_step, (double)b->n, b->slack, kb);
        for (int64_t j = 0; j < m; j++) {
            int64_t k = kb[j];
            if (AS_UNLIKELY(k < 0)) {
                if (k == -1)
                    continue;
                k = linbins_find(b, f64 ? ((const double *)x)[i0 + (size_t)j] : ((const float *)x)[i0 + (size_t)j]);
                if (k < 0)
                    continue;
            }
            cnt[(j & (copies - 1)) * nb + k]++;
        }
    }
    if (copies > 1)
        for (int64_t k = 0; k < b->n; k++)
            counts[k] += (local[k] + local[nb + k]) + (local[2 * nb + k] + local[3 * nb + k]);
}

void as_act_hist_f32(const struct as_act_linbins *b, const float *x, size_t n, int64_t *counts)
{
    hist_any(b, x, 0, n, counts);
}

void as_act_hist_f64(const struct as_act_linbins *b, const double *x, size_t n, int64_t *counts)
{
    hist_any(b, x, 1, n, counts);
}

/* ---- scores */


/* counts[(j & 1) * pb->n + bin] += 1 for the probability p_j = ex[j] * inv of every j < c, with
 * z[j] = ln ex[j] up to the exp's ulps and s = 1 / inv the row's sum (z is overwritten). The bin
 * comes from t = (log10 p_j - log10 min) / step = z[j] k1 + (t_off - ln(s) k1): bin floor(t) + 1,
 * clamped to [0, nlog] (t < 0 is the underflow bin, t >= nlog - 1 the last), one multiply-add in
 * vector lanes (row_tbins). Only a t near one of the bin boundaries 0 .. nlog - 1 (or NaN) goes
 * to the exact search of p_j in the edges, so the counts are those of
 * as_act_logbins_find(pb, min(p_j, 1)) for every j. */
static void prob_bin_row(const struct simd_ops *o, const struct as_act_logbins *pb, const double *restrict z,
                         const double *restrict ex, int32_t *restrict kb, int64_t c, double s, double inv,
                         int64_t *restrict counts)
{
    int64_t nb = pb->n;
    double k1 = pb->t_scale;
    o->tbins(z, c, k1, pb->t_off - log(s) * k1, (double)(nb - 1) - 0.5, kb);
    int64_t *c0 = counts, *c1 = counts + nb, *c2 = counts + 2 * nb, *c3 = counts + 3 * nb;
    for (int64_t j0 = 0; j0 < c; j0 += 4) {
        if (AS_LIKELY(j0 + 4 <= c && (kb[j0] | kb[j0 + 1] | kb[j0 + 2] | kb[j0 + 3]) >= 0)) {
            c0[kb[j0]]++, c1[kb[j0 + 1]]++, c2[kb[j0 + 2]]++, c3[kb[j0 + 3]]++;
            continue;
        }
        for (int64_t j = j0; j < j0 + 4 && j < c; j++) { /* near a boundary (or NaN), or the tail */
            int64_t k = kb[j];
            if (k < 0) {
                double pr = ex[j] * inv;
                k = logbins_find(pb, pr < 1 ? pr : 1.0);
                if (k < 0) /* only NaN, from overflowed products */
                    continue;
            }
            counts[(j & 3) * nb + k]++;
        }
    }
}

/* The per-row reductions of one head's raw products x[0..n) of score row i (x = q_i . k_j over
 * the head's columns), x float (sgemm) or double (dgemm):
 *   - add x into the full-width row p (set it, for the first head);
 *   - return sum_j (x_j - mraw)^2;
 *   - unless pb is NULL, add the causal softmax of x * scale over j <= i to the probability
 *     histogram counts (4 interleaved copies of pb->n counters, so equal neighbours do not wait
 *     on each other).
 * z, ex and kb are scratch (n,). */
static double score_row(const struct simd_ops *o, const void *x, int f64, double *p, int first, double *z,
                        double *ex, int32_t *kb, int64_t i, int64_t n, double mraw, double scale,
                        const struct as_act_logbins *pb, int64_t *counts)
{
    double sq = f64 ? o->accum_f64(x, p, first, n, mraw) : o->accum_f32(x, p, first, n, mraw);
    if (!pb)
        return sq;
    int64_t c = i + 1;
    double xmax = f64 ? o->max_f64(x, c) : o->max_f32(x, c);
    double s = f64 ? o->exp_f64(x, c, xmax, scale, z, ex) : o->exp_f32(x, c, xmax, scale, z, ex);
    prob_bin_row(o, pb, z, ex, kb, c, s, 1.0 / s, counts);
    return sq;
}

int as_act_softmax_hist(const double *x, int64_t c, double scale, const struct as_act_logbins *pb, int64_t *counts,
                        struct as_error *err)
{
    const struct simd_ops *o = simd_ops();
    double *z = as_xmalloc((size_t)(2 * c + 1) * sizeof *z);
    int32_t *kb = as_xmalloc((size_t)(c + 1) * sizeof *kb);
    int64_t *cnt = as_xcalloc((size_t)(4 * pb->n), sizeof *cnt);
    if (c > 0) {
        double s = o->exp_f64(x, c, o->max_f64(x, c), scale, z, z + c);
        prob_bin_row(o, pb, z, z + c, kb, c, s, 1.0 / s, cnt);
    }
    for (int64_t b = 0; b < pb->n; b++)
        counts[b] += (cnt[b] + cnt[pb->n + b]) + (cnt[2 * pb->n + b] + cnt[3 * pb->n + b]);
    free(z), free(kb), free(cnt);
    return 0;
}

/* Copy x (n, d) of `in` into head-major dst (heads, n, hd) of `out` (F32 or F64): each head's
 * operand is then one contiguous n x hd matrix that gemm streams without TLB misses. */
static void to_head_major(const void *x, enum as_dtype in, void *dst, enum as_dtype out, int64_t n, int64_t d,
                          int64_t heads)
{
    int64_t hd = d / heads;
    size_t isz = as_dtype_traits[in].size, osz = as_dtype_traits[out].size;
    for (int64_t h = 0; h < heads; h++)
        for (int64_t i = 0; i < n; i++)
            as_dtype_convert(in, (const char *)x + (size_t)(i * d + h * hd) * isz, out,
                             (char *)dst + (size_t)((h * n + i) * hd) * osz, (size_t)hd);
}

int as_act_scores(const void *q, const void *k, enum as_dtype dtype, int64_t n, int64_t d, int64_t heads,
                  enum as_act_gemm gemm, int64_t block, const struct as_act_logbins *pb,
                  struct as_act_moments *full, struct as_act_moments *head, int64_t *prob_counts,
                  struct as_error *err)
{
    AS_ASSERT(n >= 1 && heads >= 1 && d % heads == 0 && block >= 1);
    AS_ASSERT(dtype == AS_DTYPE_F32 || dtype == AS_DTYPE_F64);
    int64_t hd = d / heads, blk = block < n ? block : n;
    enum as_dtype wt = dtype == AS_DTYPE_F64 || gemm == AS_ACT_GEMM_F64 ? AS_DTYPE_F64 : AS_DTYPE_F32;
    size_t wsz = as_dtype_traits[wt].size;
    double sqrt_d = sqrt((double)hd), scale = 1.0 / sqrt_d, nn = (double)n * (double)n;
    const struct simd_ops *o = simd_ops();

    double *cq = as_xcalloc((size_t)d, sizeof *cq), *ck = as_xcalloc((size_t)d, sizeof *ck);
    double *hm2 = as_xcalloc((size_t)heads, sizeof *hm2), *mraw = as_xcalloc((size_t)heads, sizeof *mraw);
    double *pbuf = as_xmalloc((size_t)(blk * n) * sizeof *pbuf), *e = as_xmalloc((size_t)(2 * n) * sizeof *e);
    void *cbuf = as_xmalloc((size_t)(blk * n) * wsz);
    void *qh = as_xmalloc((size_t)(n * d) * wsz), *kh = as_xmalloc((size_t)(n * d) * wsz);
    int64_t *cnt = pb ? as_xcalloc((size_t)(4 * pb->n), sizeof *cnt) : NULL;
    int32_t *kb = as_xmalloc((size_t)n * sizeof *kb);
    to_head_major(q, dtype, qh, wt, n, d, heads);
    to_head_major(k, dtype, kh, wt, n, d, heads);

    /* exact means from the column sums (of the input values: the copies are exact) */
    for (int64_t i = 0; i < n; i++)
        for (int64_t c = 0; c < d; c++) {
            if (dtype == AS_DTYPE_F64) {
                cq[c] += ((const double *)q)[i * d + c];
                ck[c] += ((const double *)k)[i * d + c];
            } else {
                cq[c] += ((const float *)q)[i * d + c];
                ck[c] += ((const float *)k)[i * d + c];
            }
        }
    double dot_all = 0;
    for (int64_t h = 0; h < heads; h++) {
        double dot = 0;
        for (int64_t c = h * hd; c < (h + 1) * hd; c++)
            dot += cq[c] * ck[c];
        mraw[h] = dot / nn;
        dot_all += dot;
    }
    double mraw_all = dot_all / nn, m2_all = 0;

    /* OpenBLAS gives thread-count dependent bits (the N-edge columns of a split go to other
     * kernels): run the products on one thread, and give the caller's setting back. */
    int threads = openblas_get_num_threads();
    if (threads != 1)
        openblas_set_num_threads(1);
    for (int64_t r0 = 0; r0 < n; r0 += blk) {
        int64_t m = n - r0 < blk ? n - r0 : blk;
        for (int64_t h = 0; h < heads; h++) {
            size_t qo = (size_t)((h * n + r0) * hd), ko = (size_t)(h * n * hd);
            double t0 = as_now();
            if (wt == AS_DTYPE_F64)
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)hd, 1.0,
                            (const double *)qh + qo, (int)hd, (const double *)kh + ko, (int)hd, 0.0, cbuf, (int)n);
            else
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)hd, 1.0f,
                            (const float *)qh + qo, (int)hd, (const float *)kh + ko, (int)hd, 0.0f, cbuf, (int)n);
            as_prof_add("activations.gemm", as_now() - t0, 2.0 * (double)m * (double)n * (double)hd);
            for (int64_t r = 0; r < m; r++) {
                double *prow = pbuf + r * n;
                hm2[h] += score_row(o, (const char *)cbuf + (size_t)(r * n) * wsz, wt == AS_DTYPE_F64, prow, h == 0,
                                    e, e + n, kb, r0 + r, n, mraw[h], scale, pb, cnt);
            }
        }
        for (int64_t r = 0; r < m; r++)
            m2_all += o->sq_dev(pbuf + r * n, n, mraw_all);
    }
    if (threads != 1)
        openblas_set_num_threads(threads);

    for (int64_t b = 0; pb && b < pb->n; b++)
        prob_counts[b] += (cnt[b] + cnt[pb->n + b]) + (cnt[2 * pb->n + b] + cnt[3 * pb->n + b]);
    /* raw products x = sqrt(hd) S: (S - mean)^2 = (x - mraw)^2 / hd */
    full->n = n * n;
    full->mean = mraw_all / sqrt_d;
    full->m2 = m2_all / (double)hd;
    for (int64_t h = 0; h < heads; h++) {
        head[h].n = n * n;
        head[h].mean = mraw[h] / sqrt_d;
        head[h].m2 = hm2[h] / (double)hd;
    }
    free(cq);
    free(ck);
    free(hm2);
    free(mraw);
    free(pbuf);
    free(e);
    free(kb);
    free(cbuf);
    free(qh);
    free(kh);
    free(cnt);
    return 0;
}
