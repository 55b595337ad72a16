/* activations_simd.h: the vector loops of the activations kernels, as a template that
 * activations_kernels.c includes once per instruction set; it instantiates itself for float and
 * double gemm products (X_T; X_F64 defined for double) and then undefines the set's macros.
 * Before the #include, define:
 *   SIMD_ISA          the set's name in the functions' names (row_exp_avx2_f32, ...)
 *   SIMD_TARGET       a function attribute (target("avx2")) or nothing
 *   VD, VW            vector of doubles and its lane count (1, 2, 4 or 8)
 *   VSET1 VZERO VADD VSUB VMUL VMAX VMIN VLOADU VSTOREU   arithmetic, loads and stores; VMAX(a, b)
 *                     is a > b ? a : b and VMIN(a, b) a < b ? a : b, lane by lane
 *   VLOADF32 VLOADF64 VW floats or doubles, as doubles
 *   VTRUNC(v)         v rounded toward zero (|v| < 2^31); VSTORE_I32(p, v) stores VW such as int32
 *   VM, VLT VGT VEQ VAND VOR VSEL(m, a, b)   lane masks: comparisons (false for NaN), logic,
 *                     m ? a : b
 *   VINRANGE(v, lo, hi)   all lanes in [lo, hi] (false for NaN)
 *   VEXP_BITS(t)      as_exp_scale lane by lane: (bits(t) - 0x4338000000000000 + 1023) << 52
 *
 * Determinism across instruction sets: every sum is split over SIMD_CHAINS = 8 partial sums,
 * element j of a loop going to chain j mod 8 whatever the vector width (8 scalars, 4 SSE2
 * registers of 2 lanes, 2 AVX2 registers of 4, 1 AVX-512 register), combined in one fixed tree
 * (as_sum8). Every lane does the same IEEE operations as as_exp1 (pipeline/as_math.h)
 * with no FMA (-ffp-contract=off), so every set gives the same bits on every machine. */

#ifndef SIMD_X_PASS
#define SIMD_X_PASS 1
#define SIMD_CAT_(f, isa, x) f##_##isa##x
#define SIMD_CAT(f, isa, x) SIMD_CAT_(f, isa, x)

#define X_T float
#define VLOADX VLOADF32
#define SIMD_NAME(f) SIMD_CAT(f, SIMD_ISA, _f32)
#include "activations_simd.h"
#undef X_T
#undef VLOADX
#undef SIMD_NAME

#define X_T double
#define X_F64 1
#define VLOADX VLOADF64
#define SIMD_NAME(f) SIMD_CAT(f, SIMD_ISA, _f64)
#include "activations_simd.h"
#undef X_T
#undef X_F64
#undef VLOADX
#undef SIMD_NAME

#undef SIMD_CAT_
#undef SIMD_CAT
#undef SIMD_X_PASS
#undef SIMD_ISA
#undef SIMD_TARGET
#undef VD
#undef VW
#undef VSET1
#undef VZERO
#undef VADD
#undef VSUB
#undef VMUL
#undef VMAX
#undef VMIN
#undef VLOADU
#undef VSTOREU
#undef VLOADF32
#undef VLOADF64
#undef VTRUNC
#undef VSTORE_I32
#undef VM
#undef VLT
#undef VGT
#undef VEQ
#undef VAND
#undef VOR
#undef VSEL
#undef VINRANGE
#undef VEXP_BITS

#else /* one instantiation */

#define SIMD_NV (SIMD_CHAINS / VW) /* vectors per 8-element step */
#define SIMD_EXP_N 16
#define SIMD_EXP_NV (SIMD_EXP_N / VW)

/* p[0..n) = (first ? 0 : p) + x, and the sum over j of (x_j - mraw)^2. */
static SIMD_TARGET double SIMD_NAME(row_accum)(const X_T *restrict x, double *restrict p, int first, int64_t n,
                                               double mraw)
{
    VD acc[SIMD_NV], mv = VSET1(mraw);
    _Pragma("GCC unroll 8") for (int u = 0; u < SIMD_NV; u++)
        acc[u] = VZERO();
    int64_t j = 0;
    if (first)
        for (; j + SIMD_CHAINS <= n; j += SIMD_CHAINS)
            _Pragma("GCC unroll 8") for (int u = 0; u < SIMD_NV; u++) {
                VD v = VLOADX(x + j + u * VW), d = VSUB(v, mv);
                VSTOREU(p + j + u * VW, v);
                acc[u] = VADD(acc[u], VMUL(d, d));
            }
    else
        for (; j + SIMD_CHAINS <= n; j += SIMD_CHAINS)
            _Pragma("GCC unroll 8") for (int u = 0; u < SIMD_NV; u++) {
                VD v = VLOADX(x + j + u * VW), d = VSUB(v, mv);
                VSTOREU(p + j + u * VW, VADD(VLOADU(p + j + u * VW), v));
                acc[u] = VADD(acc[u], VMUL(d, d));
            }
    double lane[SIMD_CHAINS];
    _Pragma("GCC unroll 8") for (int u = 0; u < SIMD_NV; u++)
        VSTOREU(lane + u * VW, acc[u]);
    for (; j < n; j++) {
        double v = x[j], d = v - mraw;
        p[j] = first ? v : p[j] + v;
        lane[j % SIMD_CHAINS] += d * d;
    }
    return as_sum8(lane);
}

#ifdef X_F64 /* once per instruction set */
/* The sum over j of (p_j - m)^2. */
static SIMD_TARGET double SIMD_NAME(sq_dev)(const double *restrict p, int64_t n, double m)
{
    VD acc[SIMD_NV], mv = VSET1(m);
    _Pragma("GCC unroll 8") for (int u = 0; u < SIMD_NV; u++)
        acc[u] = VZERO();
    int64_t j = 0;
    for (; j + SIMD_CHAINS <= n; j += SIMD_CHAINS)
        _Pragma("GCC unroll 8") for (int u = 0; u < SIMD_NV; u++) {
            VD d = VSUB(VLOADU(p + j + u * VW), mv);
            acc[u] = VADD(acc[u], VMUL(d, d));
        }
    double lane[SIMD_CHAINS];
    _Pragma("GCC unroll 8") for (int u = 0; u < SIMD_NV; u++)
        VSTOREU(lane + u * VW, acc[u]);
    for (; j < n; j++) {
        double d = p[j] - m;
        lane[j % SIMD_CHAINS] += d * d;
    }
    return as_sum8(lane);
}
#endif

/* The largest of x[0..c) (NaN ignored, as v > m ? v : m), -inf when c = 0. */
static SIMD_TARGET double SIMD_NAME(row_max)(const X_T *restrict x, int64_t c)
{
    VD m[SIMD_NV];
    _Pragma("GCC unroll 8") for (int u = 0; u < SIMD_NV; u++)
        m[u] = VSET1(-INFINITY);
    int64_t j = 0;
    for (; j + SIMD_CHAINS <= c; j += SIMD_CHAINS)
        _Pragma("GCC unroll 8") for (int u = 0; u < SIMD_NV; u++)
            m[u] = VMAX(VLOADX(x + j + u * VW), m[u]);
    double lane[SIMD_CHAINS], r = -INFINITY;
    _Pragma("GCC unroll 8") for (int u = 0; u < SIMD_NV; u++)
        VSTOREU(lane + u * VW, m[u]);
    for (int k = 0; k < SIMD_CHAINS; k++)
        r = lane[k] > r ? lane[k] : r;
    for (; j < c; j++)
        r = (double)x[j] > r ? (double)x[j] : r;
    return r;
}

/* For j < c: z[j] = (x_j - xmax) * scale, ex[j] = exp(z[j]) (as_exp1's bits); returns the sum of
 * ex. */
static SIMD_TARGET double SIMD_NAME(row_exp)(const X_T *restrict x, int64_t c, double xmax, double scale,
                                             double *restrict z, double *restrict ex)
{
    const VD vmax = VSET1(xmax), vscale = VSET1(scale), lo = VSET1(AS_EXP_MIN), hi = VSET1(AS_EXP_MAX);
    const VD log2e = VSET1(AS_EXP_LOG2E), shift = VSET1(AS_EXP_SHIFT);
    const VD ln2hi = VSET1(AS_EXP_LN2_HI), ln2lo = VSET1(AS_EXP_LN2_LO);
    VD acc[SIMD_NV];
    _Pragma("GCC unroll 8") for (int u = 0; u < SIMD_NV; u++)
        acc[u] = VZERO();
    int64_t j = 0;
    /* SIMD_EXP_N values a step: enough independent chains to hide the latency of Horner's rule.
     * Value j + u VW + w goes to lane w of acc[u mod NV], that is chain (j + u VW + w) mod 8,
     * in increasing j: the order of the scalar tail */
    for (; j + SIMD_EXP_N <= c; j += SIMD_EXP_N) {
        VD v[SIMD_EXP_NV];
        int ok = 1;
        _Pragma("GCC unroll 16") for (int u = 0; u < SIMD_EXP_NV; u++) {
            v[u] = VMUL(VSUB(VLOADX(x + j + u * VW), vmax), vscale);
            VSTOREU(z + j + u * VW, v[u]);
            ok &= VINRANGE(v[u], lo, hi);
        }
        if (!ok) { /* a lane out of range or NaN: as_exp1 for the step, rare */
            for (int k = 0; k < SIMD_EXP_N; k++)
                ex[j + k] = as_exp1(z[j + k]);
            _Pragma("GCC unroll 16") for (int u = 0; u < SIMD_EXP_NV; u++)
                acc[u % SIMD_NV] = VADD(acc[u % SIMD_NV], VLOADU(ex + j + u * VW));
            continue;
        }
        /* as_exp1, one operation at a time over the vectors */
        VD t[SIMD_EXP_NV], r[SIMD_EXP_NV], q[SIMD_EXP_NV];
#define SIMD_EACH _Pragma("GCC unroll 16") for (int u = 0; u < SIMD_EXP_NV; u++)
        SIMD_EACH t[u] = VADD(VMUL(v[u], log2e), shift);
        SIMD_EACH r[u] = VSUB(t[u], shift); /* n */
        SIMD_EACH r[u] = VSUB(VSUB(v[u], VMUL(r[u], ln2hi)), VMUL(r[u], ln2lo));
        SIMD_EACH AS_EXP_POLY(VD, VMUL, VADD, VSET1, r[u], q[u]);
        SIMD_EACH {
            VD e = VMUL(q[u], VEXP_BITS(t[u]));
            VSTOREU(ex + j + u * VW, e);
            acc[u % SIMD_NV] = VADD(acc[u % SIMD_NV], e);
        }
#undef SIMD_EACH
    }
    double lane[SIMD_CHAINS];
    _Pragma("GCC unroll 8") for (int u = 0; u < SIMD_NV; u++)
        VSTOREU(lane + u * VW, acc[u]);
    for (; j < c; j++) {
        z[j] = ((double)x[j] - xmax) * scale;
        ex[j] = as_exp1(z[j]);
        lane[j % SIMD_CHAINS] += ex[j];
    }
    return as_sum8(lane);
}

#ifdef X_F64 /* once per instruction set */
/* For j < c: kb[j] = the probability bin floor(tc) of tc = clamp(z[j] k1 + c0, -0.5, tmax) + 1,
 * or -1 where z[j] k1 + c0 is NaN or tc is within PROB_T_SLACK of an integer (see
 * prob_bin_row). Lane-wise, and exact where not -1: the width cannot change a count. */
static SIMD_TARGET void SIMD_NAME(row_tbins)(const double *restrict z, int64_t c, double k1, double c0,
                                             double tmax, int32_t *restrict kb)
{
    const VD vk1 = VSET1(k1), vc0 = VSET1(c0), lo = VSET1(-0.5), hi = VSET1(tmax), one = VSET1(1.0);
    const VD sl = VSET1(PROB_T_SLACK), sh = VSET1(1.0 - PROB_T_SLACK), bad = VSET1(-1.0);
    int64_t j = 0;
    for (; j + VW <= c; j += VW) {
        VD t = VADD(VMUL(VLOADU(z + j), vk1), vc0);
        VD tc = VADD(VMIN(VMAX(t, lo), hi), one); /* NaN t: VMAX gives lo */
        VD k = VTRUNC(tc), f = VSUB(tc, k);
        VM ok = VAND(VAND(VGT(f, sl), VLT(f, sh)), VEQ(t, t));
        VSTORE_I32(kb + j, VSEL(ok, k, bad));
    }
    for (; j < c; j++) {
        double t = z[j] * k1 + c0;
        double tc = (t > -0.5 ? t : -0.5);
        tc = (tc < tmax ? tc : tmax) + 1.0;
        double k = (double)(int32_t)tc, f = tc - k;
        kb[j] = f > PROB_T_SLACK && f < 1.0 - PROB_T_SLACK && t == t ? (int32_t)k : -1;
    }
}
#endif

/* For j < n: kb[j] = the bin floor(t) of t = (x_j - lo) * inv of linear bins 0 .. nb-1 where t
 * is in (slack, nb - slack) and slack away from an integer; -1 where t < -slack or t > nb +
 * slack (outside the edges: not counted); -2 otherwise (near an edge, or NaN: the exact search
 * decides). Lane-wise, so the same on every width. */
static SIMD_TARGET void SIMD_NAME(lin_bins)(const X_T *restrict x, int64_t n, double lo, double inv, double nb,
                                            double slack, int32_t *restrict kb)
{
    const VD vlo = VSET1(lo), vinv = VSET1(inv), sl = VSET1(slack), sh = VSET1(1.0 - slack);
    const VD tlo = VSET1(-slack), thi = VSET1(nb - slack), tout = VSET1(nb + slack);
    const VD out = VSET1(-1.0), near = VSET1(-2.0);
    int64_t j = 0;
    for (; j + VW <= n; j += VW) {
        VD t = VMUL(VSUB(VLOADX(x + j), vlo), vinv);
        VD tc = VMIN(VMAX(t, tlo), thi); /* in int32 range; NaN: tlo */
        VD k = VTRUNC(tc), f = VSUB(tc, k);
        VM in = VAND(VAND(VGT(t, sl), VLT(t, thi)), VAND(VGT(f, sl), VLT(f, sh)));
        VM outside = VOR(VLT(t, tlo), VGT(t, tout));
        VSTORE_I32(kb + j, VSEL(in, k, VSEL(outside, out, near)));
    }
    for (; j < n; j++) {
        double t = ((double)x[j] - lo) * inv;
        double tc = t > -slack ? t : -slack;
        tc = tc < nb - slack ? tc : nb - slack;
        double k = (double)(int32_t)tc, f = tc - k;
        kb[j] = t > slack && t < nb - slack && f > slack && f < 1.0 - slack ? (int32_t)k
                : t < -slack || t > nb + slack                             ? -1
                                                                           : -2;
    }
}

/* Sum of x[0..n) (pass 1) or, with dev, of (x_j - m)^2 (pass 2). */
static SIMD_TARGET double SIMD_NAME(sum)(const X_T *restrict x, int64_t n, int dev, double m)
{
    VD acc[SIMD_NV], mv = VSET1(m);
    _Pragma("GCC unroll 8") for (int u = 0; u < SIMD_NV; u++)
        acc[u] = VZERO();
    int64_t j = 0;
    if (dev)
        for (; j + SIMD_CHAINS <= n; j += SIMD_CHAINS)
            _Pragma("GCC unroll 8") for (int u = 0; u < SIMD_NV; u++) {
                VD d = VSUB(VLOADX(x + j + u * VW), mv);
                acc[u] = VADD(acc[u], VMUL(d, d));
            }
    else
        for (; j + SIMD_CHAINS <= n; j += SIMD_CHAINS)
            _Pragma("GCC unroll 8") for (int u = 0; u < SIMD_NV; u++)
                acc[u] = VADD(acc[u], VLOADX(x + j + u * VW));
    double lane[SIMD_CHAINS];
    _Pragma("GCC unroll 8") for (int u = 0; u < SIMD_NV; u++)
        VSTOREU(lane + u * VW, acc[u]);
    for (; j < n; j++) {
        double v = x[j], d = v - m;
        lane[j % SIMD_CHAINS] += dev ? d * d : v;
    }
    return as_sum8(lane);
}

#undef SIMD_NV
#undef SIMD_EXP_N
#undef SIMD_EXP_NV

#endif
