/* as_math.h: a vectorised float64 exp for the softmaxes (monotonicity, activations), and the
 * fixed combination of 8 partial sums the vector kernels share.
 *
 * exp(x) = 2^n * p(r): n = round(x / ln 2), r = x - n ln2 (Cody-Waite, two constants),
 * p = the degree-12 Taylor polynomial of e^r on |r| <= ln2/2 (truncation < 2e-18 relative),
 * evaluated by Estrin's scheme (AS_EXP_POLY: a dependency chain of 7 operations instead of
 * Horner's 24, so several vectors are in flight at once). At most 2 ulp from libm
 * (tests/unit/test_math.c). No FMA and
 * no CPU-specific dispatch: the SSE2 path (x86-64 baseline) and the scalar path do the same IEEE
 * operations in the same order, so every machine gives the same bits. x < -708.39 gives 0
 * (libm gives a subnormal there), x > 709.78 gives +inf, NaN gives NaN. */
#ifndef AS_PIPELINE_AS_MATH_H
#define AS_PIPELINE_AS_MATH_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define AS_EXP_LOG2E 1.4426950408889634
#define AS_EXP_LN2_HI 6.93147180369123816490e-01 /* ln2 with its low 32 bits zero: n*LN2_HI exact */
#define AS_EXP_LN2_LO 1.90821492927058770002e-10
#define AS_EXP_SHIFT 6755399441055744.0          /* 1.5 * 2^52: adding it rounds to an integer */
#define AS_EXP_MIN (-708.39)
#define AS_EXP_MAX 709.78

/* out = p(r), Estrin's scheme, with the operations MUL(a, b), ADD(a, b) and constants C(x) of
 * any type (double, __m128d, __m256d): the one definition of the polynomial's rounding, shared
 * by every path (as_exp1, as_vexp, the activations stage's vector loops). */
#define AS_EXP_POLY(T, MUL, ADD, C, r, out)                                                       \
    do {                                                                                          \
        T r2_ = MUL(r, r);                                                                        \
        T r4_ = MUL(r2_, r2_);                                                                    \
        T a1_ = ADD(C(0.5), MUL(C(1.0 / 6.0), r));                                                \
        T a2_ = ADD(C(1.0 / 24.0), MUL(C(1.0 / 120.0), r));                                       \
        T a3_ = ADD(C(1.0 / 720.0), MUL(C(1.0 / 5040.0), r));                                     \
        T a4_ = ADD(C(1.0 / 40320.0), MUL(C(1.0 / 362880.0), r));                                 \
        T a5_ = ADD(C(1.0 / 3628800.0), MUL(C(1.0 / 39916800.0), r));                             \
        T a6_ = ADD(a5_, MUL(C(1.0 / 479001600.0), r2_));                                         \
        T u_ = ADD(ADD(ADD(a1_, MUL(a2_, r2_)), MUL(ADD(a3_, MUL(a4_, r2_)), r4_)),                \
                   MUL(a6_, MUL(r4_, r4_)));                                                      \
        (out) = ADD(C(1.0), ADD(r, MUL(r2_, u_))); /* the big terms last: one rounding each */    \
    } while (0)

#define AS_EXP_MUL1(a, b) ((a) * (b))
#define AS_EXP_ADD1(a, b) ((a) + (b))
#define AS_EXP_C1(x) (x)

static inline double as_exp_poly(double r)
{
    double p;
    AS_EXP_POLY(double, AS_EXP_MUL1, AS_EXP_ADD1, AS_EXP_C1, r, p);
    return p;
}

/* The one way 8 partial sums l[0..8) are combined (vector kernels keep value j in sum j mod 8,
 * whatever their width): ((0+1)+(2+3))+((4+5)+(6+7)). */
static inline double as_sum8(const double *l)
{
    return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

/* 2^n for t = x log2e + AS_EXP_SHIFT: the integer n sits in t's low bits. */
static inline double as_exp_scale(double t)
{
    int64_t ni;
    memcpy(&ni, &t, 8);
    uint64_t bits = (uint64_t)((ni - INT64_C(0x4338000000000000)) + 1023) << 52;
    double scale;
    memcpy(&scale, &bits, 8);
    return scale;
}

static inline double as_exp1(double x)
{
    if (!(x >= AS_EXP_MIN)) /* also NaN */
        return x != x ? x : 0.0;
    if (x > AS_EXP_MAX)
        return INFINITY;
    double t = x * AS_EXP_LOG2E + AS_EXP_SHIFT;
    double n = t - AS_EXP_SHIFT;
    double r = (x - n * AS_EXP_LN2_HI) - n * AS_EXP_LN2_LO;
    return as_exp_poly(r) * as_exp_scale(t);
}

#if defined(__SSE2__)
/* exp of two lanes known to lie in [AS_EXP_MIN, AS_EXP_MAX]: the same operations as as_exp1. */
#define AS_VEXP_STEP(v, out)                                                                      \
    do {                                                                                          \
        __m128d t_ = _mm_add_pd(_mm_mul_pd((v), log2e), shift);                                   \
        __m128d n_ = _mm_sub_pd(t_, shift);                                                       \
        __m128d r_ = _mm_sub_pd(_mm_sub_pd((v), _mm_mul_pd(n_, ln2hi)), _mm_mul_pd(n_, ln2lo));   \
        __m128d p_;                                                                               \
        AS_EXP_POLY(__m128d, _mm_mul_pd, _mm_add_pd, _mm_set1_pd, r_, p_);                        \
        __m128i e_ = _mm_add_epi64(_mm_sub_epi64(_mm_castpd_si128(t_), bias), e1023);             \
        (out) = _mm_mul_pd(p_, _mm_castsi128_pd(_mm_slli_epi64(e_, 52)));                         \
    } while (0)
#endif

/* x[i] = exp(x[i]) for i < n. */
static inline void as_vexp(double *x, size_t n)
{
    size_t i = 0;
#if defined(__SSE2__)
    const __m128d log2e = _mm_set1_pd(AS_EXP_LOG2E), shift = _mm_set1_pd(AS_EXP_SHIFT);
    const __m128d ln2hi = _mm_set1_pd(AS_EXP_LN2_HI), ln2lo = _mm_set1_pd(AS_EXP_LN2_LO);
    const __m128d lo = _mm_set1_pd(AS_EXP_MIN), hi = _mm_set1_pd(AS_EXP_MAX);
    const __m128i bias = _mm_set1_epi64x(0x4338000000000000LL), e1023 = _mm_set1_epi64x(1023);
    /* eight values at a time: four independent chains keep the multiplier busy */
    for (; i + 8 <= n; i += 8) {
        __m128d v0 = _mm_loadu_pd(x + i), v1 = _mm_loadu_pd(x + i + 2);
        __m128d v2 = _mm_loadu_pd(x + i + 4), v3 = _mm_loadu_pd(x + i + 6);
        __m128d in = _mm_and_pd(_mm_and_pd(_mm_and_pd(_mm_cmpge_pd(v0, lo), _mm_cmple_pd(v0, hi)),
                                           _mm_and_pd(_mm_cmpge_pd(v1, lo), _mm_cmple_pd(v1, hi))),
                                _mm_and_pd(_mm_and_pd(_mm_cmpge_pd(v2, lo), _mm_cmple_pd(v2, hi)),
                                           _mm_and_pd(_mm_cmpge_pd(v3, lo), _mm_cmple_pd(v3, hi))));
        if (_mm_movemask_pd(in) != 3) { /* a lane out of range or NaN: the scalar path, rare */
            for (int k = 0; k < 8; k++)
                x[i + k] = as_exp1(x[i + k]);
            continue;
        }
        __m128d o0, o1, o2, o3;
        AS_VEXP_STEP(v0, o0);
        AS_VEXP_STEP(v1, o1);
        AS_VEXP_STEP(v2, o2);
        AS_VEXP_STEP(v3, o3);
        _mm_storeu_pd(x + i, o0);
        _mm_storeu_pd(x + i + 2, o1);
        _mm_storeu_pd(x + i + 4, o2);
        _mm_storeu_pd(x + i + 6, o3);
    }
#endif
    for (; i < n; i++)
        x[i] = as_exp1(x[i]);
}

#endif
