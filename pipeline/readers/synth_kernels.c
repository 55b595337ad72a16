/* synth_kernels.c: the vector loops of the synthetic generators (as_synth.h).
 *
 * Written once, with GCC vector types, as a template (the second half of this file) that the
 * file includes once per instruction set: the x86-64 baseline (4 float lanes), AVX2 (8), AVX-512F
 * (16), picked by as_simd_level(). Every loop runs over the same padded range whatever the width
 * (as_synth_pad: multiples of 16), every lane does the same IEEE float operations (no FMA: the
 * build has -ffp-contract=off; no libm), integer hashes are exact, and the one sum (the
 * softmax's) has 8 fixed partial sums in double, element j in sum j mod 8: so every set gives
 * the same bits; they change speed only. */
#ifndef SYNTH_TEMPLATE
#include <math.h>
#include <string.h>

#include "as_simd.h"
#include "as_synth.h"

/* The helpers pass vectors by value, but are always inlined into the per-set functions, whose
 * own arguments are scalars and pointers: no ABI is involved. */
#pragma GCC diagnostic ignored "-Wpsabi"
#define AI static inline __attribute__((always_inline)) SK_ATTR /* SK_ATTR: the vector ABI of the instantiation (clang) */

/* one instance of every kernel per instruction set */
struct synth_kern {
    void (*noise)(uint64_t, int64_t, unsigned, float, float *);
    void (*ramp)(float *, int64_t, int64_t, float, float, float);
    void (*square)(float *, int64_t, float, float);
    void (*bernvar)(float *, int64_t, float);
    void (*softmax)(float *, int64_t, int64_t);
    void (*dot)(float *, int64_t, const float *, const float *, int64_t, int64_t, float, int64_t, float);
    void (*mix)(float *, int64_t, const float *, const float *, float, const float *, const float *, int, int64_t);
    void (*widen)(double *, const float *, int64_t);
};

#define SYNTH_TEMPLATE 1
#define SK_CAT_(a, b) a##_##b
#define SK_CAT(a, b) SK_CAT_(a, b)
#define N(f) SK_CAT(f, SK_ISA)

#define SK_ISA base
#define SK_ATTR
#define SK_W 4
#define SK_BASE 1
#include "synth_kernels.c"
#undef SK_BASE
#undef SK_ISA
#undef SK_ATTR
#undef SK_W

#if defined(__x86_64__) && defined(__GNUC__)
#define SK_ISA avx2
#define SK_ATTR __attribute__((target("avx2")))
#define SK_W 8
#include "synth_kernels.c"
#undef SK_ISA
#undef SK_ATTR
#undef SK_W

#define SK_ISA avx512
#define SK_ATTR __attribute__((target("avx512f")))
#define SK_W 16
#include "synth_kernels.c"
#undef SK_ISA
#undef SK_ATTR
#undef SK_W
#endif

static const struct synth_kern *kern(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    enum as_simd l = as_simd_level();
    if (l == AS_SIMD_AVX512)
        return &kern_avx512;
    if (l == AS_SIMD_AVX2)
        return &kern_avx2;
#endif
    return &kern_base;
}

void as_synth_noise(uint64_t key, int64_t n, unsigned tail_per256, float tail_scale, float *dst)
{
    kern()->noise(key, n, tail_per256, tail_scale, dst);
}

void as_synth_ramp(float *dst, int64_t n, int64_t i, float a, float b, float c) { kern()->ramp(dst, n, i, a, b, c); }
void as_synth_square(float *dst, int64_t n, float a, float b) { kern()->square(dst, n, a, b); }
void as_synth_bernvar(float *dst, int64_t n, float c) { kern()->bernvar(dst, n, c); }
void as_synth_softmax_causal(float *dst, int64_t i, int64_t n) { kern()->softmax(dst, i, n); }

void as_synth_dot(float *dst, int64_t n, const float *q, const float *xt, int64_t d, int64_t ldx, float alpha,
                  int64_t i, float b)
{
    kern()->dot(dst, n, q, xt, d, ldx, alpha, i, b);
}

void as_synth_mix(float *dst, int64_t n, const float *bias, const float *scale, float g, const float *z,
                  const float *w, int rank, int64_t ldw)
{
    kern()->mix(dst, n, bias, scale, g, z, w, rank, ldw);
}

void as_synth_widen(double *dst, const float *src, int64_t n) { kern()->widen(dst, src, n); }

#else /* ---- the template: SK_ISA (name), SK_ATTR (target attribute), SK_W (float lanes) */

#define SK_C (SK_W < 8 ? SK_W : 8) /* lanes of a vector of the softmax's partial sums */
typedef uint32_t N(vu) __attribute__((vector_size(4 * SK_W)));
typedef int32_t N(vi) __attribute__((vector_size(4 * SK_W)));
typedef float N(vf) __attribute__((vector_size(4 * SK_W)));
typedef float N(vfc) __attribute__((vector_size(4 * SK_C)));
typedef double N(vdc) __attribute__((vector_size(8 * SK_C)));
#define vu N(vu)
#define vi N(vi)
#define vf N(vf)
#define vfc N(vfc)
#define vdc N(vdc)

AI vi N(iota)(void)
{
    vi v;
    for (int k = 0; k < SK_W; k++)
        v[k] = k;
    return v;
}
AI vf N(ld)(const float *p)
{
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}
AI void N(st)(float *p, vf v) { memcpy(p, &v, sizeof v); }
AI vf N(sel)(vi m, vf a, vf b) { return (vf)(((vi)a & m) | ((vi)b & ~m)); } /* m ? a : b */
AI vf N(splat)(float x) { return (vf){ 0 } + x; }

/* Chris Wellons' lowbias32: two multiplies, full avalanche */
AI vu N(hash32)(vu x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

/* e^x lane by lane for x <= 88 (cephes expf: Cody-Waite reduction, degree-6 polynomial);
 * 0 below -87 (where float's softmax underflows too) */
AI vf N(vexp)(vf x)
{
    vi under = x < -87.0f;
    x = N(sel)(under, N(splat)(-87.0f), x);
    vf t = x * 1.44269504088896341f;
    vf big = t + 12582912.0f; /* 1.5 * 2^23: t rounded to an integer, in the low mantissa bits */
    vf r = big - 12582912.0f;
    vi n = (vi)big - 0x4b400000;
    vf f = x - r * 0.693359375f;
    f = f + r * 2.12194440e-4f;
    vf p = N(splat)(1.9875691500e-4f);
    p = p * f + 1.3981999507e-3f;
    p = p * f + 8.3334519073e-3f;
    p = p * f + 4.1665795894e-2f;
    p = p * f + 1.6666665459e-1f;
    p = p * f + 5.0000001201e-1f;
    vf y = p * (f * f) + f + 1.0f;
    y = (vf)((vi)y + (n << 23));
    return (vf)((vi)y & ~under);
}

#ifdef SK_BASE
float as_synth_expf(float x)
{
    float v[SK_W] = { x };
    return N(vexp)(N(ld)(v))[0];
}
#endif

SK_ATTR static void N(noise)(uint64_t key, int64_t n, unsigned tail, float ts, float *dst)
{
    uint32_t k1 = (uint32_t)key, k2 = (uint32_t)(key >> 32);
    vu iota = (vu)N(iota)();
    for (int64_t j0 = 0; j0 < as_synth_pad(n); j0 += SK_W) {
        vu x = (iota + (uint32_t)j0) * 0x9e3779b9U + k1;
        vu h1 = N(hash32)(x), h2 = N(hash32)(h1 + (k2 ^ 0x6a09e667U)); /* another 32 bits */
        /* the sum of four uniforms on 0..16383: mean 32766, sd sqrt(4 (16384^2 - 1) / 12) */
        vi s = (vi)((h1 & 0x3fff) + ((h1 >> 16) & 0x3fff) + (h2 & 0x3fff) + ((h2 >> 16) & 0x3fff)) - 32766;
        vf z = __builtin_convertvector(s, vf) * (1.0f / 9459.307f);
        vu k = ((h1 >> 14) & 3) | ((h1 >> 28) & 0xc) | ((h2 >> 10) & 0x30) | ((h2 >> 24) & 0xc0);
        N(st)(dst + j0, N(sel)(k < tail, z * ts, z));
    }
}

/* |j - i| for the lanes of block j0 */
AI vf N(dist)(int64_t j0, int64_t i)
{
    vf d = __builtin_convertvector(N(iota)() + (int32_t)(j0 - i), vf);
    return (vf)((vi)d & 0x7fffffff);
}

SK_ATTR static void N(ramp)(float *dst, int64_t n, int64_t i, float a, float b, float c)
{
    for (int64_t j0 = 0; j0 < as_synth_pad(n); j0 += SK_W)
        N(st)(dst + j0, a + b * N(dist)(j0, i) + c * N(ld)(dst + j0));
}

SK_ATTR static void N(square)(float *dst, int64_t n, float a, float b)
{
    for (int64_t j0 = 0; j0 < as_synth_pad(n); j0 += SK_W) {
        vf v = N(ld)(dst + j0);
        N(st)(dst + j0, a + b * (v * v));
    }
}

SK_ATTR static void N(bernvar)(float *dst, int64_t n, float c)
{
    for (int64_t j0 = 0; j0 < as_synth_pad(n); j0 += SK_W) {
        vf v = N(ld)(dst + j0);
        N(st)(dst + j0, c * v * (1.0f - v));
    }
}

SK_ATTR static void N(softmax)(float *dst, int64_t i, int64_t n)
{
    int64_t m = i + 1, end = as_synth_pad(m), full = as_synth_pad(n);
    vf mx = N(splat)(-INFINITY);
    for (int64_t j0 = 0; j0 < end; j0 += SK_W) {
        vf v = N(sel)((N(iota)() + (int32_t)j0) < (int32_t)m, N(ld)(dst + j0), N(splat)(-INFINITY));
        N(st)(dst + j0, v);
        mx = N(sel)(v > mx, v, mx);
    }
    float M = mx[0];
    for (int k = 1; k < SK_W; k++)
        M = mx[k] > M ? mx[k] : M; /* max is exact: the order does not matter */
    for (int64_t j0 = 0; j0 < end; j0 += SK_W)
        N(st)(dst + j0, N(vexp)(N(ld)(dst + j0) - M));
    /* 8 partial sums in double, element j into sum j mod 8, as 8 / SK_C vectors of SK_C */
    vdc acc[8 / SK_C];
    memset(acc, 0, sizeof acc);
    for (int64_t j0 = 0; j0 < end; j0 += 8)
        for (int c = 0; c < 8 / SK_C; c++) {
            vfc e;
            memcpy(&e, dst + j0 + c * SK_C, sizeof e);
            acc[c] += __builtin_convertvector(e, vdc);
        }
    double a[8];
    memcpy(a, acc, sizeof a);
    float inv = (float)(1.0 / (((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))));
    for (int64_t j0 = 0; j0 < end; j0 += SK_W)
        N(st)(dst + j0, N(ld)(dst + j0) * inv);
    if (full > end)
        memset(dst + end, 0, (size_t)(full - end) * sizeof *dst);
}

SK_ATTR static void N(dot)(float *dst, int64_t n, const float *q, const float *xt, int64_t d, int64_t ldx,
                           float alpha, int64_t i, float b)
{
    for (int64_t j0 = 0; j0 < as_synth_pad(n); j0 += SK_W) {
        vf acc = q[0] * N(ld)(xt + j0);
        for (int64_t k = 1; k < d; k++)
            acc = acc + q[k] * N(ld)(xt + k * ldx + j0);
        N(st)(dst + j0, alpha * acc + b * N(dist)(j0, i));
    }
}

SK_ATTR static void N(mix)(float *dst, int64_t n, const float *bias, const float *scale, float g, const float *z,
                           const float *w, int rank, int64_t ldw)
{
    for (int64_t j0 = 0; j0 < as_synth_pad(n); j0 += SK_W) {
        vf lat = g * N(ld)(dst + j0);
        for (int r = 0; r < rank; r++)
            lat = lat + z[r] * N(ld)(w + r * ldw + j0);
        N(st)(dst + j0, N(ld)(bias + j0) + N(ld)(scale + j0) * lat);
    }
}

SK_ATTR static void N(widen)(double *dst, const float *src, int64_t n)
{
    int64_t j = 0;
    for (; j + SK_C <= n; j += SK_C) {
        vfc v;
        memcpy(&v, src + j, sizeof v);
        vdc w = __builtin_convertvector(v, vdc);
        memcpy(dst + j, &w, sizeof w);
    }
    for (; j < n; j++)
        dst[j] = src[j];
}

static const struct synth_kern N(kern) = { N(noise), N(ramp), N(square), N(bernvar),
                                           N(softmax), N(dot), N(mix), N(widen) };

#undef vu
#undef vi
#undef vf
#undef vfc
#undef vdc
#undef SK_C
#endif
