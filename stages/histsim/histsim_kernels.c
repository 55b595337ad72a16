/* histsim_kernels.c: quantile ranks, torch-exact lerp/linspace, O(1) bucketing, entropies. */
#include <math.h>

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

/* The bucket of v: i = number of edges < v (torch's lower bound), bin = i - 1. The edges are
 * nearly equidistant, so start from the arithmetic estimate and walk to the exact boundary. */
#define HS_HIST_BODY(T)                                                                            \
    uint64_t outside = 0;                                                                          \
    int nb = n_edges - 1;                                                                          \
    double e0 = edges[0], span = (double)edges[nb] - e0;                                           \
    double inv = span > 0 ? (double)nb / span : 0.0;                                               \
    double s = 0;                                                                                  \
    for (size_t k = 0; k < n; k++) {                                                               \
        T v = x[k * stride];                                                                       \
        if (!isfinite(v)) {                                                                        \
            ++*nonfinite;                                                                          \
            continue;                                                                              \
        }                                                                                          \
        s += v;                                                                                    \
        if (!(v > edges[0]) || v > edges[nb]) {                                                    \
            outside++;                                                                             \
            continue;                                                                              \
        }                                                                                          \
        /* v in (e0, e_nb]: i in 1..nb */                                                          \
        double g = ((double)v - e0) * inv;                                                         \
        int i = (int)g + 1;                                                                        \
        if (i < 1)                                                                                 \
            i = 1;                                                                                 \
        if (i > nb)                                                                                \
            i = nb;                                                                                \
        while (i > 1 && !(edges[i - 1] < v))                                                       \
            i--;                                                                                   \
        while (i < nb && edges[i] < v)                                                             \
            i++;                                                                                   \
        counts[i - 1]++;                                                                           \
    }                                                                                              \
    if (sum)                                                                                       \
        *sum += s;                                                                                 \
    return outside;

uint64_t as_hs_hist32(const float *x, size_t n, size_t stride, const float *edges, int n_edges, uint64_t *counts,
                      uint64_t *nonfinite, double *sum)
{
    HS_HIST_BODY(float)
}

uint64_t as_hs_hist64(const double *x, size_t n, size_t stride, const double *edges, int n_edges,
                      uint64_t *counts, uint64_t *nonfinite, double *sum)
{
    HS_HIST_BODY(double)
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
