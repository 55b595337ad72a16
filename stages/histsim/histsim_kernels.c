/* histsim_kernels.c: quantile ranks, torch-exact lerp/linspace, vector bucketing, entropies. */
#include <float.h>
#include <math.h>
#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "as_math.h"
#include "as_simd.h"
#include "as_util.h"
#include "histsim.h"

void as_hs_rank(double q, uint64_t n, int f64, uint64_t *lo, uint64_t *hi, double *w)
{
    if (f64) {
        double r = q * (double)(n - 1);
        *lo = (uint64_t)r;
        *hi = (uint64_t)ceil(r);
        *w = r - (double)*lo;
    } else {
        float r = (float)q * (float)(n - 1);
        *lo = (uint64_t)r;
        *hi = (uint64_t)ceilf(r);
        *w = (double)(r - (float)*lo);
    }
    if (*hi > n - 1)
        *hi = n - 1;
    if (*lo > n - 1)
        *lo = n - 1;
}

float as_hs_lerp32(float a, float b, float w)
{
    return fabsf(w) < 0.5f ? a + w * (b - a) : b - (b - a) * (1.0f - w);
}

double as_hs_lerp64(double a, double b, double w)
{
    return fabs(w) < 0.5 ? a + w * (b - a) : b - (b - a) * (1.0 - w);
}

void as_hs_linspace32(float lo, float hi, int steps, float *out)
{
    if (steps == 1) {
        out[0] = lo;
        return;
    }
    float step = (hi - lo) / (float)(steps - 1);
    int half = steps / 2;
    for (int k = 0; k < steps; k++)
        out[k] = k < half ? lo + step * (float)k : hi - step * (float)(steps - k - 1);
}

void as_hs_linspace64(double lo, double hi, int steps, double *out)
{
    if (steps == 1) {
        out[0] = lo;
        return;
    }
    double step = (hi - lo) / (double)(steps - 1);
    int half = steps / 2;
    for (int k = 0; k < steps; k++)
        out[k] = k < half ? lo + step * (double)k : hi - step * (double)(steps - k - 1);
}

/* ---- bucketing
 *
 * The bin of v is torch.bucketize(v, edges, right=False) - 1: i = the number of edges < v, bin
 * i - 1 for i in 1..nb; v <= e0 or v > e_nb is in no bin. The edges are nearly equidistant, so
 * g = (v - e0) * nb / (e_nb - e0) is v's position in bins up to the edges' rounding: where g is
 * more than `slack` from an integer, its integer part is the bin (the fast path, 8 values a
 * step); elsewhere (and for NaN and inf) the exact walk over the edges decides. */

struct hs_fast {
    double e0, inv, slack, nb;
};

/* float32 edges (torch.linspace in float32) are off their ideal positions by a few float32 ulps
 * of the largest edge, float64 ones by as many float64 ulps; g computed in that type is off by
 * a few ulps of its operands (v - e0 up to twice the largest edge, g up to nb). Past a quarter
 * bin, no fast path. */
static struct hs_fast hs_fast_init(double e0, double enb, int nb, double eps)
{
    struct hs_fast f = { e0, 0, 1.0, (double)nb };
    double span = enb - e0, big = fabs(e0) > fabs(enb) ? fabs(e0) : fabs(enb);
    if (span > 0 && isfinite(span)) {
        f.inv = (double)nb / span;
        f.slack = 16 * eps * (big * f.inv + (double)nb) + 1e-9;
    }
    if (!(f.slack < 0.25))
        f.slack = 1.0; /* never in (slack, 1 - slack): everything goes to the walk */
    return f;
}

#define HS_WALK(T)                                                                                 \
    static int hs_walk_##T(const T *edges, int nb, const struct hs_fast *f, T v)                  \
    {                                                                                              \
        if (!(v > edges[0]) || v > edges[nb])                                                      \
            return -1;                                                                             \
        double g = ((double)v - f->e0) * f->inv; /* v in (e0, e_nb]: i in 1..nb */                 \
        int i = g < 0 ? 1 : g >= nb ? nb : (int)g + 1;                                             \
        while (i > 1 && !(edges[i - 1] < v))                                                       \
            i--;                                                                                   \
        while (i < nb && edges[i] < v)                                                             \
            i++;                                                                                   \
        return i - 1;                                                                              \
    }
HS_WALK(float)
HS_WALK(double)

/* kb[j] for j < n: the bin by the fast path, -1 outside the edges (finite v), -2 for the walk
 * (near an edge, or not finite); lane[j % 8] += x[j] for finite x[j]. g is computed in float32
 * (its rounding is in hs_fast_init's slack), 8 values a step with SSE2 or AVX2 (picked at run
 * time): lane by lane the same operations, so the same bits. */
struct hs_fast32 {
    float e0, inv, slack, nb;
};

static void hs_fast_tail(const struct hs_fast32 *f, const float *x, size_t j, size_t n, int32_t *kb, double *lane)
{
    for (; j < n; j++) {
        float v = x[j];
        int fin = fabsf(v) <= FLT_MAX;
        if (fin)
            lane[j % 8] += (double)v;
        float g = (v - f->e0) * f->inv;
        float gc = g > -f->slack ? g : -f->slack;
        gc = gc < f->nb - f->slack ? gc : f->nb - f->slack;
        int32_t k = (int32_t)gc;
        float fr = gc - (float)k;
        kb[j] = g > f->slack && g < f->nb - f->slack && fr > f->slack && fr < 1.0f - f->slack ? k
                : fin && (g < -f->slack || g > f->nb + f->slack)                                 ? -1
                                                                                                 : -2;
    }
}

#if defined(__SSE2__)
static size_t hs_fast_sse2(const struct hs_fast32 *f, const float *x, size_t n, int32_t *kb, double *lane)
{
    const __m128 ve0 = _mm_set1_ps(f->e0), vinv = _mm_set1_ps(f->inv), sl = _mm_set1_ps(f->slack);
    const __m128 sh = _mm_set1_ps(1.0f - f->slack), thi = _mm_set1_ps(f->nb - f->slack);
    const __m128 tlo = _mm_set1_ps(-f->slack), tout = _mm_set1_ps(f->nb + f->slack), big = _mm_set1_ps(FLT_MAX);
    const __m128 absm = _mm_castsi128_ps(_mm_set1_epi32(0x7fffffff));
    const __m128i m1 = _mm_set1_epi32(-1), m2 = _mm_set1_epi32(-2);
    __m128d acc[4];
    for (int u = 0; u < 4; u++)
        acc[u] = _mm_loadu_pd(lane + 2 * u);
    size_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int h = 0; h < 2; h++) {
            __m128 v = _mm_loadu_ps(x + j + 4 * h);
            __m128 fin = _mm_cmple_ps(_mm_and_ps(v, absm), big); /* NaN, inf: false */
            __m128 vz = _mm_and_ps(v, fin);
            acc[2 * h] = _mm_add_pd(acc[2 * h], _mm_cvtps_pd(vz));
            acc[2 * h + 1] = _mm_add_pd(acc[2 * h + 1], _mm_cvtps_pd(_mm_movehl_ps(vz, vz)));
            __m128 g = _mm_mul_ps(_mm_sub_ps(v, ve0), vinv);
            __m128 gc = _mm_min_ps(_mm_max_ps(g, tlo), thi); /* int32 range; NaN: tlo */
            __m128i k = _mm_cvttps_epi32(gc);
            __m128 fr = _mm_sub_ps(gc, _mm_cvtepi32_ps(k));
            __m128i in = _mm_castps_si128(_mm_and_ps(_mm_and_ps(_mm_cmpgt_ps(g, sl), _mm_cmplt_ps(g, thi)),
                                                     _mm_and_ps(_mm_cmpgt_ps(fr, sl), _mm_cmplt_ps(fr, sh))));
            __m128i out = _mm_castps_si128(_mm_and_ps(fin, _mm_or_ps(_mm_cmplt_ps(g, tlo), _mm_cmpgt_ps(g, tout))));
            __m128i code = _mm_or_si128(_mm_and_si128(out, m1), _mm_andnot_si128(out, m2));
            _mm_storeu_si128((__m128i *)(void *)(kb + j + 4 * h),
                             _mm_or_si128(_mm_and_si128(in, k), _mm_andnot_si128(in, code)));
        }
    for (int u = 0; u < 4; u++)
        _mm_storeu_pd(lane + 2 * u, acc[u]);
    return j;
}
#endif

#if defined(__x86_64__) && defined(__GNUC__)
#define HS_HAVE_AVX2 1
__attribute__((target("avx2"))) static size_t hs_fast_avx2(const struct hs_fast32 *f, const float *x, size_t n,
                                                            int32_t *kb, double *lane)
{
    const __m256 ve0 = _mm256_set1_ps(f->e0), vinv = _mm256_set1_ps(f->inv), sl = _mm256_set1_ps(f->slack);
    const __m256 sh = _mm256_set1_ps(1.0f - f->slack), thi = _mm256_set1_ps(f->nb - f->slack);
    const __m256 tlo = _mm256_set1_ps(-f->slack), tout = _mm256_set1_ps(f->nb + f->slack);
    const __m256 big = _mm256_set1_ps(FLT_MAX), absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256i m1 = _mm256_set1_epi32(-1), m2 = _mm256_set1_epi32(-2);
    __m256d acc0 = _mm256_loadu_pd(lane), acc1 = _mm256_loadu_pd(lane + 4);
    size_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 v = _mm256_loadu_ps(x + j);
        __m256 fin = _mm256_cmp_ps(_mm256_and_ps(v, absm), big, _CMP_LE_OQ);
        __m256 vz = _mm256_and_ps(v, fin);
        acc0 = _mm256_add_pd(acc0, _mm256_cvtps_pd(_mm256_castps256_ps128(vz)));
        acc1 = _mm256_add_pd(acc1, _mm256_cvtps_pd(_mm256_extractf128_ps(vz, 1)));
        __m256 g = _mm256_mul_ps(_mm256_sub_ps(v, ve0), vinv);
        __m256 gc = _mm256_min_ps(_mm256_max_ps(g, tlo), thi);
        __m256i k = _mm256_cvttps_epi32(gc);
        __m256 fr = _mm256_sub_ps(gc, _mm256_cvtepi32_ps(k));
        __m256 in = _mm256_and_ps(_mm256_and_ps(_mm256_cmp_ps(g, sl, _CMP_GT_OQ), _mm256_cmp_ps(g, thi, _CMP_LT_OQ)),
                                  _mm256_and_ps(_mm256_cmp_ps(fr, sl, _CMP_GT_OQ), _mm256_cmp_ps(fr, sh, _CMP_LT_OQ)));
        __m256 out = _mm256_and_ps(fin, _mm256_or_ps(_mm256_cmp_ps(g, tlo, _CMP_LT_OQ), _mm256_cmp_ps(g, tout, _CMP_GT_OQ)));
        __m256i code = _mm256_blendv_epi8(m2, m1, _mm256_castps_si256(out));
        _mm256_storeu_si256((__m256i *)(void *)(kb + j), _mm256_blendv_epi8(code, k, _mm256_castps_si256(in)));
    }
    _mm256_storeu_pd(lane, acc0);
    _mm256_storeu_pd(lane + 4, acc1);
    return j;
}
#endif

static void hs_fast_bins(const struct hs_fast32 *f, const float *x, size_t n, int32_t *kb, double *lane)
{
    size_t j = 0;
    enum as_simd l = as_simd_level();
#ifdef HS_HAVE_AVX2
    if (l >= AS_SIMD_AVX2)
        j = hs_fast_avx2(f, x, n, kb, lane);
    else
#endif
#if defined(__SSE2__)
    if (l >= AS_SIMD_SSE2)
        j = hs_fast_sse2(f, x, n, kb, lane);
#endif
    hs_fast_tail(f, x, j, n, kb, lane);
}

/* ---- the window pass: keys are compared as signed integers after flipping the sign bit
 * (sk = key ^ 2^31 = b ^ ((b >> 31 arithmetic) & 0x7fffffff)), which SSE2 and AVX2 can do; a
 * step with a value inside a window counts its values one by one. Lane counters are 32-bit:
 * a call of more than 2^31 values goes the scalar way after that. */

/* the in-window values of v[j .. j+m): counted into the histograms only */
static void hs_window_inside(struct as_hs_window *w, const float *v, size_t j, size_t m)
{
    for (size_t q = j; q < j + m; q++) {
        uint32_t b;
        memcpy(&b, &v[q], 4);
        if (as_hs_f32_nonfinite(b))
            continue;
        uint32_t key = as_hs_f32_key(b), d0 = key - w->lo[0], d1 = key - w->lo[1];
        if (d0 < w->span[0])
            w->hist[0][d0]++;
        if (d1 < w->span[1])
            w->hist[1][d1]++;
    }
}

/* v[j .. n) one by one: the scalar tail */
static void hs_window_scalar(struct as_hs_window *w, const float *v, size_t j, size_t n)
{
    for (size_t q = j; q < n; q++) {
        uint32_t b;
        memcpy(&b, &v[q], 4);
        if (as_hs_f32_nonfinite(b)) {
            w->nonfinite++;
            continue;
        }
        uint32_t key = as_hs_f32_key(b);
        w->below[0] += key < w->lo[0];
        w->below[1] += key < w->lo[1];
    }
    hs_window_inside(w, v, j, n - j);
}

static uint32_t hs_window_end(const struct as_hs_window *w, int q) /* clamped to the top key (a NaN) */
{
    uint64_t e = (uint64_t)w->lo[q] + w->span[q];
    return (e > 0xffffffffu ? 0xffffffffu : (uint32_t)e) ^ 0x80000000u;
}

#if defined(__SSE2__)
static size_t hs_window_sse2(struct as_hs_window *w, const float *v, size_t n)
{
    const __m128i expo = _mm_set1_epi32(0x7f800000), low31 = _mm_set1_epi32(0x7fffffff);
    const __m128i slo0 = _mm_set1_epi32((int)(w->lo[0] ^ 0x80000000u)), slo1 = _mm_set1_epi32((int)(w->lo[1] ^ 0x80000000u));
    const __m128i shi0 = _mm_set1_epi32((int)hs_window_end(w, 0)), shi1 = _mm_set1_epi32((int)hs_window_end(w, 1));
    __m128i cb0 = _mm_setzero_si128(), cb1 = _mm_setzero_si128(), cnf = _mm_setzero_si128();
    size_t j = 0, lim = n < ((size_t)1 << 31) ? n : ((size_t)1 << 31);
    for (; j + 4 <= lim; j += 4) {
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(v + j));
        __m128i bad = _mm_cmpeq_epi32(_mm_and_si128(b, expo), expo);
        __m128i sk = _mm_xor_si128(b, _mm_and_si128(_mm_srai_epi32(b, 31), low31));
        __m128i lt0 = _mm_andnot_si128(bad, _mm_cmplt_epi32(sk, slo0));
        __m128i lt1 = _mm_andnot_si128(bad, _mm_cmplt_epi32(sk, slo1));
        __m128i w0 = _mm_andnot_si128(_mm_or_si128(bad, lt0), _mm_cmplt_epi32(sk, shi0));
        __m128i w1 = _mm_andnot_si128(_mm_or_si128(bad, lt1), _mm_cmplt_epi32(sk, shi1));
        cb0 = _mm_sub_epi32(cb0, lt0);
        cb1 = _mm_sub_epi32(cb1, lt1);
        cnf = _mm_sub_epi32(cnf, bad);
        if (_mm_movemask_epi8(_mm_or_si128(w0, w1)))
            hs_window_inside(w, v, j, 4);
    }
    uint32_t l[3][4];
    _mm_storeu_si128((__m128i *)(void *)l[0], cb0);
    _mm_storeu_si128((__m128i *)(void *)l[1], cb1);
    _mm_storeu_si128((__m128i *)(void *)l[2], cnf);
    w->below[0] += (uint64_t)l[0][0] + l[0][1] + l[0][2] + l[0][3];
    w->below[1] += (uint64_t)l[1][0] + l[1][1] + l[1][2] + l[1][3];
    w->nonfinite += (uint64_t)l[2][0] + l[2][1] + l[2][2] + l[2][3];
    return j;
}
#endif

#ifdef HS_HAVE_AVX2
__attribute__((target("avx2"))) static size_t hs_window_avx2(struct as_hs_window *w, const float *v, size_t n)
{
    const __m256i expo = _mm256_set1_epi32(0x7f800000), low31 = _mm256_set1_epi32(0x7fffffff);
    const __m256i slo0 = _mm256_set1_epi32((int)(w->lo[0] ^ 0x80000000u));
    const __m256i slo1 = _mm256_set1_epi32((int)(w->lo[1] ^ 0x80000000u));
    const __m256i shi0 = _mm256_set1_epi32((int)hs_window_end(w, 0)), shi1 = _mm256_set1_epi32((int)hs_window_end(w, 1));
    __m256i cb0 = _mm256_setzero_si256(), cb1 = _mm256_setzero_si256(), cnf = _mm256_setzero_si256();
    size_t j = 0, lim = n < ((size_t)1 << 31) ? n : ((size_t)1 << 31);
    for (; j + 8 <= lim; j += 8) {
        __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(v + j));
        __m256i bad = _mm256_cmpeq_epi32(_mm256_and_si256(b, expo), expo);
        __m256i sk = _mm256_xor_si256(b, _mm256_and_si256(_mm256_srai_epi32(b, 31), low31));
        __m256i lt0 = _mm256_andnot_si256(bad, _mm256_cmpgt_epi32(slo0, sk));
        __m256i lt1 = _mm256_andnot_si256(bad, _mm256_cmpgt_epi32(slo1, sk));
        __m256i w0 = _mm256_andnot_si256(_mm256_or_si256(bad, lt0), _mm256_cmpgt_epi32(shi0, sk));
        __m256i w1 = _mm256_andnot_si256(_mm256_or_si256(bad, lt1), _mm256_cmpgt_epi32(shi1, sk));
        cb0 = _mm256_sub_epi32(cb0, lt0);
        cb1 = _mm256_sub_epi32(cb1, lt1);
        cnf = _mm256_sub_epi32(cnf, bad);
        if (_mm256_movemask_epi8(_mm256_or_si256(w0, w1)))
            hs_window_inside(w, v, j, 8);
    }
    uint32_t l[3][8];
    _mm256_storeu_si256((__m256i *)(void *)l[0], cb0);
    _mm256_storeu_si256((__m256i *)(void *)l[1], cb1);
    _mm256_storeu_si256((__m256i *)(void *)l[2], cnf);
    for (int k = 0; k < 8; k++) {
        w->below[0] += l[0][k];
        w->below[1] += l[1][k];
        w->nonfinite += l[2][k];
    }
    return j;
}
#endif

void as_hs_window32(struct as_hs_window *w, const float *v, size_t n)
{
    size_t j = 0;
    enum as_simd l = as_simd_level();
#ifdef HS_HAVE_AVX2
    if (l >= AS_SIMD_AVX2)
        j = hs_window_avx2(w, v, n);
    else
#endif
#if defined(__SSE2__)
    if (l >= AS_SIMD_SSE2)
        j = hs_window_sse2(w, v, n);
#endif
    hs_window_scalar(w, v, j, n);
}

#define HS_CHUNK 1024 /* values per hs_fast_bins call */
#define HS_COPIES 8   /* interleaved counters: runs of equal bins do not wait on each other */
#define HS_LOCAL 256  /* bins up to which the copies live on the stack */

/* One value that the fast path left to the walk: counts or not, into counter copy cnt. */
static void hs_slow_one(const float *edges, int nb, const struct hs_fast *f, float v, int32_t k, uint64_t *cnt,
                        uint64_t *outside, uint64_t *nonfinite)
{
    if (k == -2 && !isfinite(v))
        ++*nonfinite;
    else if (k == -1 || (k = hs_walk_float(edges, nb, f, v)) < 0)
        ++*outside;
    else
        cnt[k]++;
}

uint64_t as_hs_hist32(const float *x, size_t n, const float *edges, int n_edges, uint64_t *counts,
                      uint64_t *nonfinite, double *sum)
{
    int nb = n_edges - 1;
    struct hs_fast f = hs_fast_init(edges[0], edges[nb], nb, FLT_EPSILON);
    struct hs_fast32 f32 = { (float)f.e0, (float)f.inv, (float)f.slack, (float)f.nb };
    uint64_t local[HS_COPIES * HS_LOCAL], outside = 0;
    int32_t kb[HS_CHUNK];
    double lane[8] = { 0 };
    /* HS_COPIES copies of the counters, value j in copy j % HS_COPIES; many bins: one copy */
    int copies = nb <= HS_LOCAL ? HS_COPIES : 1;
    size_t cs = copies > 1 ? (size_t)nb : 0;
    uint64_t *cnt = copies > 1 ? local : counts;
    if (copies > 1)
        memset(local, 0, HS_COPIES * cs * sizeof *local);
    for (size_t i0 = 0; i0 < n; i0 += HS_CHUNK) {
        size_t m = n - i0 < HS_CHUNK ? n - i0 : HS_CHUNK;
        /* chains by index in the chunk: chunks are multiples of 8, so j % 8 of the whole call */
        hs_fast_bins(&f32, x + i0, m, kb, lane);
        for (size_t j0 = 0; j0 < m; j0 += HS_COPIES) {
            const int32_t *k = kb + j0;
            if (AS_LIKELY(copies > 1 && j0 + HS_COPIES <= m &&
                          (k[0] | k[1] | k[2] | k[3] | k[4] | k[5] | k[6] | k[7]) >= 0)) {
                for (int c = 0; c < HS_COPIES; c++)
                    cnt[(size_t)c * cs + (size_t)k[c]]++;
                continue;
            }
            for (size_t j = j0; j < j0 + HS_COPIES && j < m; j++) {
                uint64_t *cj = cnt + (j % (size_t)copies) * cs;
                if (kb[j] >= 0)
                    cj[kb[j]]++;
                else
                    hs_slow_one(edges, nb, &f, x[i0 + j], kb[j], cj, &outside, nonfinite);
            }
        }
    }
    if (copies > 1)
        for (int b = 0; b < nb; b++) {
            uint64_t t = 0;
            for (int c = 0; c < HS_COPIES; c++)
                t += local[(size_t)c * cs + (size_t)b];
            counts[b] += t;
        }
    if (sum)
        *sum += as_sum8(lane);
    return outside;
}

uint64_t as_hs_hist64(const double *x, size_t n, const double *edges, int n_edges, uint64_t *counts,
                      uint64_t *nonfinite, double *sum)
{
    int nb = n_edges - 1;
    struct hs_fast f = hs_fast_init(edges[0], edges[nb], nb, DBL_EPSILON);
    uint64_t outside = 0;
    double lane[8] = { 0 };
    for (size_t j = 0; j < n; j++) {
        double v = x[j];
        if (!isfinite(v)) {
            ++*nonfinite;
            continue;
        }
        lane[j % 8] += v;
        int k = hs_walk_double(edges, nb, &f, v);
        if (k < 0)
            outside++;
        else
            counts[k]++;
    }
    if (sum)
        *sum += as_sum8(lane);
    return outside;
}

double as_hs_within(const uint64_t *counts, int n_bins)
{
    double tot = 0, h = 0;
    for (int b = 0; b < n_bins; b++)
        tot += (double)counts[b] + 1e-12;
    for (int b = 0; b < n_bins; b++) {
        double p = ((double)counts[b] + 1e-12) / tot;
        h -= p * log(p);
    }
    return 1.0 - h / log((double)n_bins);
}

double as_hs_js_similarity(const uint64_t *cp, const uint64_t *cq, int n_bins)
{
    double tp = 0, tq = 0, sp = 0, sq = 0, kl_p = 0, kl_q = 0;
    for (int b = 0; b < n_bins; b++) {
        tp += (double)cp[b] + 1e-12;
        tq += (double)cq[b] + 1e-12;
    }
    for (int b = 0; b < n_bins; b++) {
        sp += ((double)cp[b] + 1e-12) / tp + 1e-12;
        sq += ((double)cq[b] + 1e-12) / tq + 1e-12;
    }
    for (int b = 0; b < n_bins; b++) {
        double p = (((double)cp[b] + 1e-12) / tp + 1e-12) / sp;
        double q = (((double)cq[b] + 1e-12) / tq + 1e-12) / sq;
        double m = 0.5 * (p + q);
        kl_p += p * log(p / m);
        kl_q += q * log(q / m);
    }
    return 1.0 - 0.5 * (kl_p + kl_q);
}
