/* monotonicity_kernels.c: slopes, per-head causal softmax, cumulative sum and the
 * O(T^2 log T) violation statistics of the monotonicity stage.
 *
 * Counting. For one column c = C[:,k] we need, over the pairs i < j with P(c[i], c[j]), where
 * P(a, b) = fl(a - b) < -eps, the count and the sums of d = c[j] - c[i], d^2, d/den(c[j]) and
 * (d/den(c[j]))^2, den(b) = b + 1e-5 (on a violation c[i] < c[j], so the notebook's max is c[j]).
 * P is monotone: non-increasing in a (rounding is monotone), non-decreasing in b. A bottom-up
 * merge sort of c (carrying original indices) splits every pair i < j exactly once into a sorted
 * left block holding i and a sorted right block holding j. Sweeping the right block upwards, the
 * qualifying i are a growing prefix of the left block, so one pointer and running sums over that
 * prefix, cnt, S1 = sum (c[i] - s), S2 = sum (c[i] - s)^2 (s = the left block's smallest value),
 * give per j, with e = c[j] - s:
 *   sum d = cnt*e - S1,    sum d^2 = e*(cnt*e - 2*S1) + S2.
 * These are added to per-j sums D1[j], D2[j]; at the end of the column each j adds D1, D2,
 * D1/den(c[j]) and D2/den(c[j])^2 to the layer's totals. Base blocks of AS_MONO_BASE elements
 * are checked pair by pair. P is evaluated on the very doubles the notebook compares, so the
 * counts are exact, and a column without violations costs only the sort.
 *
 * Precision. Unshifted, cnt*c[j] - sum c[i] cancels badly when the differences are tiny next to
 * c (~1), and the d^2 form worse (relative error ~1e-16 * (c/d)^2). With the shift, e <= max d
 * <= sum d, so the forms cancel by at most a factor cnt; all sums are double-double (~106 bits;
 * c[i] - s and the products exact via two_sum and fma), so every sum is good to ~cnt*1e-32
 * relative, and the variance sum d^2 - (sum d)^2/n to ~1e-32 * mean^2/var: the std stays exact
 * to double precision even when it is 1e-10 of the mean (where torch's own rounding of each
 * element dominates). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "as_math.h"
#include "as_util.h"
#include "monotonicity.h"

/* ---- double-double arithmetic (hi + lo, |lo| <= ulp(hi)/2) */
struct dd {
    double hi, lo;
};

static inline struct dd two_sum(double a, double b)
{
    double s = a + b, bb = s - a;
    struct dd r = { s, (a - (s - bb)) + (b - bb) };
    return r;
}

static inline struct dd fast_two_sum(double a, double b)
{
    double s = a + b;
    struct dd r = { s, b - (s - a) };
    return r;
}

static inline struct dd two_prod(double a, double b)
{
    double p = a * b;
    struct dd r = { p, fma(a, b, -p) };
    return r;
}

/* The "sloppy" sum: error ~2^-104 (|x| + |y|), so relative to the result when x and y have the
 * same sign (all the accumulations here) and within the bounded cancellation of the groups. */
static inline struct dd dd_add(struct dd x, struct dd y)
{
    struct dd s = two_sum(x.hi, y.hi);
    s.lo += x.lo + y.lo;
    return fast_two_sum(s.hi, s.lo);
}

static inline struct dd dd_neg(struct dd x)
{
    struct dd r = { -x.hi, -x.lo };
    return r;
}

static inline struct dd dd_mul_d(struct dd x, double y)
{
    struct dd p = two_prod(x.hi, y);
    p.lo += x.lo * y;
    return fast_two_sum(p.hi, p.lo);
}

static inline struct dd dd_mul(struct dd x, struct dd y)
{
    struct dd p = two_prod(x.hi, y.hi);
    p.lo += x.hi * y.lo + x.lo * y.hi;
    return fast_two_sum(p.hi, p.lo);
}

static inline struct dd dd_div_d(struct dd x, double y)
{
    double q1 = x.hi / y;
    struct dd r = dd_add(x, dd_neg(two_prod(q1, y)));
    double q2 = r.hi / y;
    return fast_two_sum(q1, q2);
}

/* ---- slopes */
void as_mono_slopes(enum as_mono_rule rule, int64_t H, double *out)
{
    if (rule == AS_MONO_RULE_STANDARD) {
        for (int64_t h = 0; h < H; h++)
            out[h] = pow(2.0, (double)(-8 * (h + 1)) / (double)H);
        return;
    }
    AS_ASSERT(rule == AS_MONO_RULE_BLOOM && H >= 1);
    int64_t p = 1;
    while (p * 2 <= H)
        p *= 2;
    double base = pow(2.0, -pow(2.0, -(log2((double)p) - 3.0)));
    for (int64_t h = 0; h < p; h++)
        out[h] = pow(base, (double)(h + 1));
    double extra = pow(2.0, -pow(2.0, -(log2((double)(2 * p)) - 3.0)));
    for (int64_t r = 0; r < H - p; r++)
        out[p + r] = pow(extra, (double)(2 * r + 1));
}

/* ---- softmax and cumulative sum */
int as_mono_rows_accum(double *s, int64_t ld, int64_t i0, int64_t i1, double scale, double slope, double *acc,
                       int64_t ld_acc)
{
    int bad = 0;
    /* bias[d] = (-m) * d, the same double torch computes for i - j = d */
    double *bias = as_xcalloc((size_t)(i1 > 0 ? i1 : 1), sizeof *bias);
    for (int64_t d = 0; d < i1; d++)
        bias[d] = (-slope) * (double)d;
    for (int64_t i = i0; i < i1; i++) {
        double *x = s + (i - i0) * ld, *a = acc + (i - i0) * ld_acc;
        const double *bi = bias + i; /* bi[-j] = bias[i - j] */
        int64_t n = i + 1, j;
        /* four independent chains for the max and the sum: the order is fixed, so the bits are */
        double m0 = -INFINITY, m1 = -INFINITY, m2 = -INFINITY, m3 = -INFINITY, lo = INFINITY;
        for (j = 0; j + 4 <= n; j += 4) {
            /* as torch: (S*scale) + ((-m)*(i-j)) */
            x[j] = x[j] * scale + bi[-j];
            x[j + 1] = x[j + 1] * scale + bi[-(j + 1)];
            x[j + 2] = x[j + 2] * scale + bi[-(j + 2)];
            x[j + 3] = x[j + 3] * scale + bi[-(j + 3)];
            m0 = x[j] > m0 ? x[j] : m0;
            m1 = x[j + 1] > m1 ? x[j + 1] : m1;
            m2 = x[j + 2] > m2 ? x[j + 2] : m2;
            m3 = x[j + 3] > m3 ? x[j + 3] : m3;
            double l01 = x[j] < x[j + 1] ? x[j] : x[j + 1], l23 = x[j + 2] < x[j + 3] ? x[j + 2] : x[j + 3];
            lo = l01 < lo ? l01 : lo;
            lo = l23 < lo ? l23 : lo;
        }
        for (; j < n; j++) {
            x[j] = x[j] * scale + bi[-j];
            m0 = x[j] > m0 ? x[j] : m0;
            lo = x[j] < lo ? x[j] : lo;
        }
        m0 = m1 > m0 ? m1 : m0;
        m2 = m3 > m2 ? m3 : m2;
        double mx = m2 > m0 ? m2 : m0;
        for (j = 0; j < n; j++)
            x[j] -= mx;
        as_vexp(x, (size_t)n);
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (j = 0; j + 4 <= n; j += 4) {
            s0 += x[j];
            s1 += x[j + 1];
            s2 += x[j + 2];
            s3 += x[j + 3];
        }
        for (; j < n; j++)
            s0 += x[j];
        double sum = (s0 + s1) + (s2 + s3);
        /* a NaN or +inf makes the sum NaN; a -inf shows in the minimum */
        bad |= !isfinite(sum) || !(lo > -INFINITY) || !isfinite(mx);
        double inv = 1.0 / sum; /* torch's softmax multiplies by the reciprocal */
        for (j = 0; j < n; j++)
            a[j] += x[j] * inv;
    }
    free(bias);
    return bad;
}

int as_mono_head_accum(double *s, int64_t T, double scale, double slope, double *acc)
{
    return as_mono_rows_accum(s, T, 0, T, scale, slope, acc, T);
}

void as_mono_cumsum_rows(const double *acc, int64_t ld_acc, int64_t i0, int64_t i1, int64_t T, int64_t H, double *c)
{
    for (int64_t i = i0; i < i1; i++) {
        const double *r = acc + (i - i0) * ld_acc;
        double *o = c + (i - i0) * T, run = 0;
        for (int64_t j = 0; j < T; j++) {
            run += j <= i ? r[j] / (double)H : 0.0;
            o[j] = run;
        }
    }
}

void as_mono_cumsum_t(double *acc, int64_t T, int64_t H, double *ct)
{
    as_mono_cumsum_rows(acc, T, 0, T, T, H, acc); /* in place: each entry is read before it is written */
    as_mono_transpose_cols(acc, T, 0, T, ct);
}

void as_mono_transpose_cols(const double *c, int64_t T, int64_t k0, int64_t k1, double *ct)
{
    enum { B = 32 };
    for (int64_t i0 = 0; i0 < T; i0 += B)
        for (int64_t kb = k0; kb < k1; kb += B)
            for (int64_t i = i0; i < i0 + B && i < T; i++)
                for (int64_t k = kb; k < kb + B && k < k1; k++)
                    ct[(k - k0) * T + i] = c[i * T + k];
}

/* ---- counting */

/* Per column: the sums of d and d^2 of each element j (by original index) as right-hand member
 * of its violating pairs, gathered over the merge levels; divided by den(c[j]) once at the end. */
struct mono_col {
    int64_t n;                     /* violations */
    struct dd *d1, *d2;            /* (T,) sum d, sum d^2 per j */
};

/* Add the contribution of one j (original index jj, value b) with cnt qualifying i, given
 * t1 = sum (a_i - s) and t2 = sum (a_i - s)^2 for a shift s <= every a_i: with c = b - s,
 *   sum d = cnt*c - t1,  sum d^2 = cnt*c^2 - 2c*t1 + t2.
 * The shift is the smallest qualifying a (or b itself), so c <= max d <= sum d and the
 * cancellation is at most a factor cnt: the double-double error stays ~cnt*1e-32 relative. */
static inline void mono_add_group(struct mono_col *col, int32_t jj, double b, double s, int64_t cnt,
                                  struct dd t1, struct dd t2)
{
    double n = (double)cnt;
    struct dd c = two_sum(b, -s);
    struct dd d1 = dd_add(dd_mul_d(c, n), dd_neg(t1));
    struct dd d2 = dd_add(dd_mul(c, dd_add(d1, dd_neg(t1))), t2); /* c*(cnt*c - 2 t1) + t2 */
    col->n += cnt;
    col->d1[jj] = dd_add(col->d1[jj], d1);
    col->d2[jj] = dd_add(col->d2[jj], d2);
}

/* t1 += a - s, t2 += (a - s)^2 */
static inline void dd_acc_value(struct dd *t1, struct dd *t2, double a, double s)
{
    struct dd x = two_sum(a, -s);
    *t1 = dd_add(*t1, x);
    *t2 = dd_add(*t2, dd_mul(x, x));
}

/* Pairs inside one unsorted base block v[0..n) of original indices i0..i0+n-1: direct,
 * O(n^2) comparisons; shift s = b. */
static void mono_count_base(const double *v, int64_t n, int32_t i0, double eps, struct mono_col *col)
{
    for (int64_t j = 1; j < n; j++) {
        double b = v[j];
        int64_t cnt = 0;
        struct dd t1 = { 0, 0 }, t2 = { 0, 0 };
        for (int64_t i = 0; i < j; i++) {
            if (v[i] - b < -eps) {
                cnt++;
                dd_acc_value(&t1, &t2, v[i], b);
            }
        }
        if (cnt)
            mono_add_group(col, i0 + (int32_t)j, b, b, cnt, t1, t2);
    }
}

/* Pairs (i in l, j in r), l[0..nl) and r[0..nr) sorted ascending, ri the original indices of
 * r; shift s = l[0]. */
static void mono_count_cross(const double *l, int64_t nl, const double *r, const int32_t *ri, int64_t nr,
                             double eps, struct mono_col *col)
{
    if (!(l[0] - r[nr - 1] < -eps))
        return; /* not even the smallest left value against the largest right one */
    int64_t p = 0, q = 0;
    while (q < nr && !(l[0] - r[q] < -eps))
        q++;
    struct dd t1 = { 0, 0 }, t2 = { 0, 0 };
    for (; q < nr; q++) {
        double b = r[q];
        while (p < nl && l[p] - b < -eps) {
            dd_acc_value(&t1, &t2, l[p], l[0]);
            p++;
        }
        mono_add_group(col, ri[q], b, l[0], p, t1, t2);
    }
}

/* Branch-free merge (the comparisons of ~random data would mispredict half the time). */
static void mono_merge(const double *l, const int32_t *li, int64_t nl, const double *r, const int32_t *ri,
                       int64_t nr, double *o, int32_t *oi)
{
    int64_t i = 0, j = 0, k = 0;
    while (i < nl && j < nr) {
        double x = l[i], y = r[j];
        int64_t t = y < x;
        int32_t xi = li[i], yi = ri[j];
        o[k] = t ? y : x;
        oi[k] = (int32_t)(xi + ((yi - xi) & -(int32_t)t));
        k++;
        j += t;
        i += 1 - t;
    }
    for (; i < nl; i++, k++) {
        o[k] = l[i];
        oi[k] = li[i];
    }
    for (; j < nr; j++, k++) {
        o[k] = r[j];
        oi[k] = ri[j];
    }
}

static void mono_sort_small(double *v, int32_t *vi, int64_t n)
{
    for (int64_t i = 1; i < n; i++) {
        double x = v[i];
        int32_t xi = vi[i];
        int64_t j = i;
        for (; j > 0 && v[j - 1] > x; j--) {
            v[j] = v[j - 1];
            vi[j] = vi[j - 1];
        }
        v[j] = x;
        vi[j] = xi;
    }
}

enum { AS_MONO_BASE = 8 };

int64_t as_mono_work_size(int64_t T)
{
    return 7 * T; /* values 2T, per-element dd sums 4T, indices 2T int32 */
}

static void mono_finish(int64_t T, int64_t n, struct dd a1, struct dd a2, struct dd r1, struct dd r2,
                        struct as_mono_stats *out)
{
    memset(out, 0, sizeof *out);
    out->combinations = T * (T - 1) / 2 * T;
    out->violations = n;
    out->violation_rate = (double)n / (double)(out->combinations > 0 ? out->combinations : 1);
    if (n < 1)
        return;
    double dn = (double)n;
    out->abs_mean = dd_div_d(a1, dn).hi;
    out->rel_mean = dd_div_d(r1, dn).hi;
    if (n < 2)
        return;
    /* (sum x^2 - sum x * (sum x / n)) / (n - 1) */
    struct dd va = dd_add(a2, dd_neg(dd_mul(a1, dd_div_d(a1, dn))));
    struct dd vr = dd_add(r2, dd_neg(dd_mul(r1, dd_div_d(r1, dn))));
    out->abs_std = va.hi > 0 ? sqrt(va.hi / (dn - 1)) : 0.0;
    out->rel_std = vr.hi > 0 ? sqrt(vr.hi / (dn - 1)) : 0.0;
}

/* The violation sums of columns [k0, k1), one record each, from ct (their columns of C, column k
 * at ct + (k - k0)*T). */
void as_mono_count_cols(const double *ct, int64_t T, int64_t k0, int64_t k1, double eps, double *work,
                        struct as_mono_col *rec)
{
    AS_ASSERT(T >= 0 && T <= INT32_MAX && eps >= 0 && 0 <= k0 && k0 <= k1 && k1 <= T);
    struct mono_col col = { 0, (struct dd *)(work + 2 * T), (struct dd *)(work + 4 * T) };
    for (int64_t k = k0; k < k1; k++) {
        const double *c = ct + (k - k0) * T;
        struct as_mono_col *o = &rec[k - k0];
        struct dd abs1 = { 0, 0 }, abs2 = { 0, 0 }, rel1 = { 0, 0 }, rel2 = { 0, 0 };
        double *a = work, *b = work + T;
        int32_t *ai = (int32_t *)(work + 6 * T), *bi = ai + T;
        memset(o, 0, sizeof *o);
        memcpy(a, c, (size_t)T * sizeof *a);
        memset(col.d1, 0, (size_t)T * sizeof *col.d1);
        memset(col.d2, 0, (size_t)T * sizeof *col.d2);
        col.n = 0;
        for (int64_t i = 0; i < T; i++)
            ai[i] = (int32_t)i;
        for (int64_t lo = 0; lo < T; lo += AS_MONO_BASE) {
            int64_t m = T - lo < AS_MONO_BASE ? T - lo : AS_MONO_BASE;
            mono_count_base(a + lo, m, (int32_t)lo, eps, &col);
            mono_sort_small(a + lo, ai + lo, m);
        }
        for (int64_t w = AS_MONO_BASE; w < T; w *= 2) {
            for (int64_t lo = 0; lo < T; lo += 2 * w) {
                int64_t mid = lo + w < T ? lo + w : T, hi = lo + 2 * w < T ? lo + 2 * w : T;
                if (mid < hi) {
                    mono_count_cross(a + lo, mid - lo, a + mid, ai + mid, hi - mid, eps, &col);
                    if (2 * w < T) /* the last level's order is not needed */
                        mono_merge(a + lo, ai + lo, mid - lo, a + mid, ai + mid, hi - mid, b + lo, bi + lo);
                } else {
                    memcpy(b + lo, a + lo, (size_t)(mid - lo) * sizeof *a);
                    memcpy(bi + lo, ai + lo, (size_t)(mid - lo) * sizeof *ai);
                }
            }
            double *t = a;
            a = b;
            b = t;
            int32_t *ti = ai;
            ai = bi;
            bi = ti;
        }
        if (!col.n)
            continue;
        for (int64_t j = 0; j < T; j++) {
            if (col.d1[j].hi == 0)
                continue;
            double den = c[j] + AS_MONO_REL_DELTA; /* max(c[i], c[j]) = c[j] on a violation */
            abs1 = dd_add(abs1, col.d1[j]);
            abs2 = dd_add(abs2, col.d2[j]);
            rel1 = dd_add(rel1, dd_div_d(col.d1[j], den));
            rel2 = dd_add(rel2, dd_div_d(dd_div_d(col.d2[j], den), den));
        }
        o->violations = col.n;
        o->s[0] = abs1.hi, o->s[1] = abs1.lo, o->s[2] = abs2.hi, o->s[3] = abs2.lo;
        o->s[4] = rel1.hi, o->s[5] = rel1.lo, o->s[6] = rel2.hi, o->s[7] = rel2.lo;
    }
}

void as_mono_combine_cols(const struct as_mono_col *rec, int64_t T, struct as_mono_stats *out)
{
    struct dd abs1 = { 0, 0 }, abs2 = { 0, 0 }, rel1 = { 0, 0 }, rel2 = { 0, 0 };
    int64_t n = 0;
    for (int64_t k = 0; k < T; k++) { /* column order: the same sums however the columns were split */
        const struct as_mono_col *o = &rec[k];
        if (!o->violations)
            continue;
        n += o->violations;
        abs1 = dd_add(abs1, (struct dd){ o->s[0], o->s[1] });
        abs2 = dd_add(abs2, (struct dd){ o->s[2], o->s[3] });
        rel1 = dd_add(rel1, (struct dd){ o->s[4], o->s[5] });
        rel2 = dd_add(rel2, (struct dd){ o->s[6], o->s[7] });
    }
    mono_finish(T, n, abs1, abs2, rel1, rel2, out);
}

void as_mono_count(const double *ct, int64_t T, double eps, double *work, struct as_mono_stats *out)
{
    struct as_mono_col *rec = as_xcalloc((size_t)(T > 0 ? T : 1), sizeof *rec);
    as_mono_count_cols(ct, T, 0, T, eps, work, rec);
    as_mono_combine_cols(rec, T, out);
    free(rec);
}
