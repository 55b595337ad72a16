/* activations_ref.c: naive double-precision twins of the activations kernels (plain loops, whole
 * matrices in memory), for tests only. */
#include <math.h>
#include <stdlib.h>

#include "activations.h"
#include "as_math.h"
#include "as_util.h"

void as_act_moments_ref(const double *x, size_t n, struct as_act_moments *out)
{
    double sum = 0, m2 = 0;
    for (size_t i = 0; i < n; i++)
        sum += x[i];
    double mean = n ? sum / (double)n : 0;
    for (size_t i = 0; i < n; i++)
        m2 += (x[i] - mean) * (x[i] - mean);
    out->n = (int64_t)n;
    out->mean = mean;
    out->m2 = m2;
}

/* numpy: bin i holds edges[i] <= x < edges[i+1]; the last bin also holds x == edges[nbins]. */
static int64_t find_bin_ref(const double *edges, int64_t nbins, double x)
{
    for (int64_t b = 0; b < nbins; b++)
        if (edges[b] <= x && (x < edges[b + 1] || (b == nbins - 1 && x == edges[b + 1])))
            return b;
    return -1;
}

void as_act_hist_ref(const double *edges, int64_t nbins, const double *x, size_t n, int64_t *counts)
{
    for (size_t i = 0; i < n; i++) {
        int64_t b = find_bin_ref(edges, nbins, x[i]);
        if (b >= 0)
            counts[b]++;
    }
}

void as_act_softmax_hist_ref(const double *x, int64_t c, double scale, const double *edges, int64_t nbins,
                             int64_t *counts)
{
    double mx = -INFINITY, lane[8] = { 0 };
    double *e = as_xmalloc((size_t)(c + 1) * sizeof *e);
    for (int64_t j = 0; j < c; j++)
        mx = x[j] > mx ? x[j] : mx;
    for (int64_t j = 0; j < c; j++) {
        e[j] = as_exp1((x[j] - mx) * scale);
        lane[j % 8] += e[j];
    }
    double inv = 1.0 / as_sum8(lane);
    for (int64_t j = 0; j < c; j++) {
        double p = e[j] * inv;
        int64_t b = find_bin_ref(edges, nbins, p < 1 ? p : 1.0);
        if (b >= 0)
            counts[b]++;
    }
    free(e);
}

/* Moments of an n x n matrix held in memory, two passes. */
static void matrix_moments(const double *s, int64_t n, struct as_act_moments *out)
{
    as_act_moments_ref(s, (size_t)(n * n), out);
}

int as_act_scores_ref(const double *q, const double *k, int64_t n, int64_t d, int64_t heads,
                      const double *prob_edges, int64_t n_prob_bins, struct as_act_moments *full,
                      struct as_act_moments *head, int64_t *prob_counts, struct as_error *err)
{
    int64_t hd = d / heads;
    double sqrt_d = sqrt((double)hd);
    double *s = as_xmalloc((size_t)(n * n) * sizeof *s), *p = as_xmalloc((size_t)n * sizeof *p);
    /* full width: S = Q K^T / sqrt(head_dim) */
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double dot = 0;
            for (int64_t c = 0; c < d; c++)
                dot += q[i * d + c] * k[j * d + c];
            s[i * n + j] = dot / sqrt_d;
        }
    matrix_moments(s, n, full);
    for (int64_t h = 0; h < heads; h++) {
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++) {
                double dot = 0;
                for (int64_t c = h * hd; c < (h + 1) * hd; c++)
                    dot += q[i * d + c] * k[j * d + c];
                s[i * n + j] = dot / sqrt_d;
            }
        matrix_moments(s, n, &head[h]);
        /* causal softmax of each row over j <= i */
        for (int64_t i = 0; i < n; i++) {
            double mx = -INFINITY, sum = 0;
            for (int64_t j = 0; j <= i; j++)
                mx = fmax(mx, s[i * n + j]);
            for (int64_t j = 0; j <= i; j++) {
                p[j] = exp(s[i * n + j] - mx);
                sum += p[j];
            }
            for (int64_t j = 0; j <= i; j++) {
                int64_t b = find_bin_ref(prob_edges, n_prob_bins, p[j] / sum);
                if (b >= 0)
                    prob_counts[b]++;
            }
        }
    }
    free(s);
    free(p);
    return 0;
}
