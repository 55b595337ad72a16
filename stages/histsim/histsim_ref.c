/* histsim_ref.c: naive reference twins of the histsim kernels. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "as_util.h"
#include "histsim.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double as_hs_select_ref(const double *x, size_t n, uint64_t k)
{
    double *c = as_xcalloc(n, sizeof *c);
    memcpy(c, x, n * sizeof *c);
    qsort(c, n, sizeof *c, cmp_double);
    double v = c[k];
    free(c);
    return v;
}

int as_hs_bucket_ref(double v, const double *edges, int n_edges)
{
    int lo = 0, hi = n_edges; /* first index i with v <= edges[i] */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (edges[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo - 1;
}

static void probs(const double *counts, int n, double *p)
{
    double s = 0;
    for (int b = 0; b < n; b++)
        s += counts[b] + 1e-12;
    for (int b = 0; b < n; b++)
        p[b] = (counts[b] + 1e-12) / s;
}

double as_hs_within_ref(const double *counts, int n_bins)
{
    double *p = as_xcalloc((size_t)n_bins, sizeof *p), h = 0;
    probs(counts, n_bins, p);
    for (int b = 0; b < n_bins; b++)
        h -= p[b] * log(p[b]);
    free(p);
    return 1.0 - h / log((double)n_bins);
}

double as_hs_js_similarity_ref(const double *cp, const double *cq, int n_bins)
{
    double *p = as_xcalloc((size_t)n_bins, sizeof *p), *q = as_xcalloc((size_t)n_bins, sizeof *q);
    probs(cp, n_bins, p);
    probs(cq, n_bins, q);
    double sp = 0, sq = 0, kl_p = 0, kl_q = 0;
    for (int b = 0; b < n_bins; b++) {
        p[b] += 1e-12;
        q[b] += 1e-12;
        sp += p[b];
        sq += q[b];
    }
    for (int b = 0; b < n_bins; b++) {
        double pp = p[b] / sp, qq = q[b] / sq, m = 0.5 * (pp + qq);
        kl_p += pp * log(pp / m);
        kl_q += qq * log(qq / m);
    }
    free(p);
    free(q);
    return 1.0 - 0.5 * (kl_p + kl_q);
}

void as_hs_window32_ref(struct as_hs_window *w, const float *v, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        uint32_t b;
        memcpy(&b, &v[k], 4);
        if (as_hs_f32_nonfinite(b)) {
            w->nonfinite++;
            continue;
        }
        uint32_t key = as_hs_f32_key(b);
        for (int q = 0; q < 2; q++) {
            w->below[q] += key < w->lo[q];
            if (key - w->lo[q] < w->span[q])
                w->hist[q][key - w->lo[q]]++;
        }
    }
}
