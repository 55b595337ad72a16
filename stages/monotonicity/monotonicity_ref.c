/* monotonicity_ref.c: the notebook's violation statistics by the direct O(T^3) loop over
 * columns k and pairs i < j, in double precision (two-pass std with n - 1, as torch.std). */
#include <math.h>
#include <string.h>

#include "monotonicity.h"

void as_mono_count_ref(const double *ct, int64_t T, double eps, struct as_mono_stats *out)
{
    int64_t n = 0;
    double sum_abs = 0, sum_rel = 0;
    for (int64_t k = 0; k < T; k++) {
        const double *c = ct + k * T;
        double sa = 0, sr = 0;
        for (int64_t i = 0; i < T; i++)
            for (int64_t j = i + 1; j < T; j++) {
                double d = c[i] - c[j];
                if (d < -eps) {
                    n++;
                    sa += fabs(d);
                    sr += fabs(d) / (fmax(c[i], c[j]) + AS_MONO_REL_DELTA);
                }
            }
        sum_abs += sa;
        sum_rel += sr;
    }
    memset(out, 0, sizeof *out);
    out->combinations = T * (T - 1) / 2 * T;
    out->violations = n;
    out->violation_rate = (double)n / (double)(out->combinations > 0 ? out->combinations : 1);
    if (n < 1)
        return;
    out->abs_mean = sum_abs / (double)n;
    out->rel_mean = sum_rel / (double)n;
    if (n < 2)
        return;
    double ssa = 0, ssr = 0;
    for (int64_t k = 0; k < T; k++) {
        const double *c = ct + k * T;
        double qa = 0, qr = 0;
        for (int64_t i = 0; i < T; i++)
            for (int64_t j = i + 1; j < T; j++) {
                double d = c[i] - c[j];
                if (d < -eps) {
                    double ea = fabs(d) - out->abs_mean;
                    double er = fabs(d) / (fmax(c[i], c[j]) + AS_MONO_REL_DELTA) - out->rel_mean;
                    qa += ea * ea;
                    qr += er * er;
                }
            }
        ssa += qa;
        ssr += qr;
    }
    out->abs_std = sqrt(ssa / (double)(n - 1));
    out->rel_std = sqrt(ssr / (double)(n - 1));
}
