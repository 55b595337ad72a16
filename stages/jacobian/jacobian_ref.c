/* jacobian_ref.c: the softmax-Jacobian statistics straight from their definitions (jacobian.h),
 * materialising g_full and g_diag, for the tests. */
#include "jacobian.h"

#include <math.h>
#include <stdlib.h>

#include "as_util.h"

static double dot(const double *x, const double *y, int64_t n)
{
    double s = 0;
    for (int64_t k = 0; k < n; k++)
        s += x[k] * y[k];
    return s;
}

/* torch 1.13 cosine_similarity: sum((x / max(|x|, eps)) * (y / max(|y|, eps))) */
static double cosine(const double *x, const double *y, int64_t n)
{
    double nx = fmax(sqrt(dot(x, x, n)), AS_JACOBIAN_COS_EPS);
    double ny = fmax(sqrt(dot(y, y, n)), AS_JACOBIAN_COS_EPS);
    double s = 0;
    for (int64_t k = 0; k < n; k++)
        s += (x[k] / nx) * (y[k] / ny);
    return s;
}

void as_jacobian_head_ref(const double *A, const double *g, int64_t B, int64_t T, double row_tol,
                          struct as_jacobian_head *out)
{
    int64_t n = T * T;
    double *gf = as_xmalloc((size_t)n * sizeof *gf), *gd = as_xmalloc((size_t)n * sizeof *gd);
    double full2 = 0, diag2 = 0, cd = 0, cs = 0, apos = 0, ent = 0;
    int64_t npos = 0, bad = 0, nonfinite = 0;
    for (int64_t b = 0; b < B; b++) {
        const double *a = A + b * n, *y = g + b * n;
        for (int64_t i = 0; i < T; i++) {
            double s = 0, rs = 0;
            for (int64_t j = 0; j < T; j++) {
                s += a[i * T + j] * y[i * T + j];
                rs += a[i * T + j];
            }
            for (int64_t j = 0; j < T; j++) {
                double x = a[i * T + j];
                gf[i * T + j] = x * (y[i * T + j] - s);
                gd[i * T + j] = x * (1.0 - x) * y[i * T + j];
                ent -= x * log(x + AS_JACOBIAN_LOG_EPS);
                if (x > 0) {
                    apos += x;
                    npos++;
                }
            }
            if (!(fabs(rs - 1.0) <= row_tol))
                bad++;
        }
        for (int64_t k = 0; k < n; k++)
            nonfinite += !isfinite(a[k]) + !isfinite(y[k]);
        full2 += dot(gf, gf, n);
        diag2 += dot(gd, gd, n);
        cd += cosine(gd, gf, n);
        cs += cosine(y, gf, n);
    }
    double r = (diag2 / (double)B) / (full2 / (double)B + AS_JACOBIAN_R_EPS);
    out->a_mean = apos / (double)npos;
    out->entropy = ent / (double)(B * T);
    out->r_diag = r;
    out->r_offdiag = 1.0 - r;
    out->cos_diag = cd / (double)B;
    out->cos_ste = cs / (double)B;
    out->bad_rows = bad;
    out->nonfinite = nonfinite;
    free(gf);
    free(gd);
}
