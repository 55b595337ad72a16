/* activations_kernels.c: the optimized kernels of the activations stage (contracts in
 * activations.h). */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "activations.h"
#include "as_math.h"
#include "as_prof.h"
#include "as_util.h"

/* ---- moments */

#define MOMENTS_BODY(x, n, out)                                                                    \
    do {                                                                                           \
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;                                                     \
        size_t i = 0;                                                                              \
        for (; i + 4 <= (n); i += 4) {                                                             \
            s0 += (x)[i];                                                                          \
            s1 += (x)[i + 1];                                                                      \
            s2 += (x)[i + 2];                                                                      \
            s3 += (x)[i + 3];                                                                      \
        }                                                                                          \
        for (; i < (n); i++)                                                                       \
            s0 += (x)[i];                                                                          \
        double mean = ((s0 + s1) + (s2 + s3)) / (double)(n);                                       \
        s0 = s1 = s2 = s3 = 0;                                                                     \
        for (i = 0; i + 4 <= (n); i += 4) {                                                        \
            double d0 = (x)[i] - mean, d1 = (x)[i + 1] - mean, d2 = (x)[i + 2] - mean,             \
                   d3 = (x)[i + 3] - mean;                                                         \
            s0 += d0 * d0;                                                                         \
            s1 += d1 * d1;                                                                         \
            s2 += d2 * d2;                                                                         \
            s3 += d3 * d3;                                                                         \
        }                                                                                          \
        for (; i < (n); i++) {                                                                     \
            double d0 = (x)[i] - mean;                                                             \
            s0 += d0 * d0;                                                                         \
        }                                                                                          \
        (out)->n = (int64_t)(n);                                                                   \
        (out)->mean = mean;                                                                        \
        (out)->m2 = (s0 + s1) + (s2 + s3);                                                         \
    } while (0)

void as_act_moments_f32(const float *x, size_t n, struct as_act_moments *out)
{
    if (!n) {
        *out = (struct as_act_moments){ 0, 0, 0 };
        return;
    }
    MOMENTS_BODY(x, n, out);
}

void as_act_moments_f64(const double *x, size_t n, struct as_act_moments *out)
{
    if (!n) {
        *out = (struct as_act_moments){ 0, 0, 0 };
        return;
    }
    MOMENTS_BODY(x, n, out);
}

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
    if (!(b->edges = malloc((size_t)(n + 1) * sizeof *b->edges)))
        return as_error_set(err, AS_ERR_NOMEM, "out of memory for %lld histogram edges", (long long)n + 1);
    b->n = n;
    as_act_linspace(lo, hi, n + 1, b->edges);
    b->lo = lo;
    b->inv_step = (double)n / (hi - lo);
    if (!isfinite(b->inv_step))
        b->inv_step = 0; /* the edge walk still finds the bin */
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

void as_act_hist_f32(const struct as_act_linbins *b, const float *x, size_t n, int64_t *counts)
{
    for (size_t i = 0; i < n; i++) {
        int64_t k = linbins_find(b, x[i]);
        if (k >= 0)
            counts[k]++;
    }
}

void as_act_hist_f64(const struct as_act_linbins *b, const double *x, size_t n, int64_t *counts)
{
    for (size_t i = 0; i < n; i++) {
        int64_t k = linbins_find(b, x[i]);
        if (k >= 0)
            counts[k]++;
    }
}

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
    if (!(b->edges = malloc((size_t)(n + 1) * sizeof *b->edges)))
        return as_error_set(err, AS_ERR_NOMEM, "out of memory for %lld probability edges", (long long)n + 1);
    as_act_linspace(log10(min), 0.0, nlog + 1, b->edges + 1);
    b->edges[0] = 0;
    for (int64_t i = 1; i <= n; i++)
        b->edges[i] = pow(10.0, b->edges[i]);
    b->n = n;
    b->e_min = (int)(dbits(b->edges[1]) >> 52);
    b->lut_n = (int64_t)(1023 - b->e_min + 1) << LUT_BITS;
    if (!(b->lut = malloc((size_t)b->lut_n * sizeof *b->lut))) {
        as_act_logbins_release(b);
        return as_error_set(err, AS_ERR_NOMEM, "out of memory for the probability bin table");
    }
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

/* ---- scores */

/* The per-row reductions of one head's raw products x[0..n) of score row i (x = q_i . k_j over
 * the head's columns), for float (sgemm) or double (dgemm) products:
 *   - add x into the full-width row p (set it, for the first head);
 *   - return sum_j (x_j - mraw)^2 (two partial sums, j <= i and j > i: fixed order);
 *   - unless pb is NULL, add the causal softmax of x * scale over j <= i to the probability
 *     histogram counts (2 interleaved copies of pb->n counters, so equal neighbours do not wait
 *     on each other).
 * e is scratch (n,). */
#define ROW_FN(name, T)                                                                            \
    static double name(const T *restrict x, double *restrict p, int first, double *restrict e,    \
                       int64_t i, int64_t n, double mraw, double scale,                            \
                       const struct as_act_logbins *pb, int64_t *restrict counts)                  \
    {                                                                                              \
        /* four independent chains in a fixed order: fast, and the same bits every time */       \
        double a[4] = { 0, 0, 0, 0 }, m[4] = { -INFINITY, -INFINITY, -INFINITY, -INFINITY };      \
        int64_t j = 0, c = i + 1;                                                                  \
        for (; j + 4 <= n; j += 4)                                                                 \
            for (int q = 0; q < 4; q++) {                                                          \
                double v = x[j + q], dv = v - mraw;                                                \
                p[j + q] = first ? v : p[j + q] + v;                                               \
                a[q] += dv * dv;                                                                   \
            }                                                                                      \
        for (; j < n; j++) {                                                                       \
            double v = x[j], dv = v - mraw;                                                        \
            p[j] = first ? v : p[j] + v;                                                           \
            a[0] += dv * dv;                                                                       \
        }                                                                                          \
        double sq = (a[0] + a[1]) + (a[2] + a[3]);                                                 \
        if (!pb)                                                                                   \
            return sq;                                                                             \
        for (j = 0; j + 4 <= c; j += 4)                                                            \
            for (int q = 0; q < 4; q++) {                                                          \
                double v = x[j + q];                                                               \
                e[j + q] = v;                                                                      \
                m[q] = v > m[q] ? v : m[q];                                                        \
            }                                                                                      \
        for (; j < c; j++) {                                                                       \
            e[j] = x[j];                                                                           \
            m[0] = e[j] > m[0] ? e[j] : m[0];                                                      \
        }                                                                                          \
        double m01 = m[1] > m[0] ? m[1] : m[0], m23 = m[3] > m[2] ? m[3] : m[2];                   \
        double xmax = m23 > m01 ? m23 : m01;                                                       \
        for (j = 0; j < c; j++)                                                                    \
            e[j] = (e[j] - xmax) * scale;                                                          \
        as_vexp(e, (size_t)c);                                                                     \
        double s4[4] = { 0, 0, 0, 0 };                                                             \
        for (j = 0; j + 4 <= c; j += 4)                                                            \
            for (int q = 0; q < 4; q++)                                                            \
                s4[q] += e[j + q];                                                                 \
        for (; j < c; j++)                                                                         \
            s4[0] += e[j];                                                                         \
        double inv = 1.0 / ((s4[0] + s4[1]) + (s4[2] + s4[3]));                                    \
        int64_t nb = pb->n;                                                                        \
        for (j = 0; j < c; j++) {                                                                  \
            double pr = e[j] * inv;                                                                \
            int64_t bin = logbins_find(pb, pr < 1 ? pr : 1.0);                                     \
            if (bin >= 0) /* -1 only for NaN from overflowed products */                          \
                counts[(j & 1) * nb + bin]++;                                                      \
        }                                                                                          \
        return sq;                                                                                 \
    }

ROW_FN(row_f32, float)
ROW_FN(row_f64, double)

static double sq_dev_sum(const double *x, int64_t n, double m)
{
    double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
        double d0 = x[j] - m, d1 = x[j + 1] - m, d2 = x[j + 2] - m, d3 = x[j + 3] - m;
        a0 += d0 * d0;
        a1 += d1 * d1;
        a2 += d2 * d2;
        a3 += d3 * d3;
    }
    for (; j < n; j++) {
        double d0 = x[j] - m;
        a0 += d0 * d0;
    }
    return (a0 + a1) + (a2 + a3);
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
    int ret = -1;

    double *cq = calloc((size_t)d, sizeof *cq), *ck = calloc((size_t)d, sizeof *ck);
    double *hm2 = calloc((size_t)heads, sizeof *hm2), *mraw = calloc((size_t)heads, sizeof *mraw);
    double *pbuf = malloc((size_t)(blk * n) * sizeof *pbuf), *e = malloc((size_t)n * sizeof *e);
    void *cbuf = malloc((size_t)(blk * n) * wsz);
    void *qh = malloc((size_t)(n * d) * wsz), *kh = malloc((size_t)(n * d) * wsz);
    int64_t *cnt = pb ? calloc((size_t)(2 * pb->n), sizeof *cnt) : NULL;
    if (!cq || !ck || !hm2 || !mraw || !pbuf || !e || !cbuf || !qh || !kh || (pb && !cnt)) {
        as_error_set(err, AS_ERR_NOMEM, "out of memory for the score blocks (%lld x %lld)", (long long)blk,
                     (long long)n);
        goto out;
    }
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
                if (wt == AS_DTYPE_F64)
                    hm2[h] += row_f64((const double *)cbuf + r * n, prow, h == 0, e, r0 + r, n, mraw[h], scale, pb,
                                      cnt);
                else
                    hm2[h] += row_f32((const float *)cbuf + r * n, prow, h == 0, e, r0 + r, n, mraw[h], scale, pb,
                                      cnt);
            }
        }
        for (int64_t r = 0; r < m; r++)
            m2_all += sq_dev_sum(pbuf + r * n, n, mraw_all);
    }
    if (threads != 1)
        openblas_set_num_threads(threads);

    for (int64_t b = 0; pb && b < pb->n; b++)
        prob_counts[b] += cnt[b] + cnt[pb->n + b];
    /* raw products x = sqrt(hd) S: (S - mean)^2 = (x - mraw)^2 / hd */
    full->n = n * n;
    full->mean = mraw_all / sqrt_d;
    full->m2 = m2_all / (double)hd;
    for (int64_t h = 0; h < heads; h++) {
        head[h].n = n * n;
        head[h].mean = mraw[h] / sqrt_d;
        head[h].m2 = hm2[h] / (double)hd;
    }
    ret = 0;
out:
    free(cq);
    free(ck);
    free(hm2);
    free(mraw);
    free(pbuf);
    free(e);
    free(cbuf);
    free(qh);
    free(kh);
    free(cnt);
    return ret;
}
