/* jacobian.c: the streaming softmax-Jacobian kernel (one (b, h) slab at a time). */
#include "jacobian.h"

#include <math.h>
#include <string.h>

void as_jacobian_acc_init(struct as_jacobian_acc *acc)
{
    memset(acc, 0, sizeof *acc);
}

static int64_t count_nonfinite(const double *x, int64_t n)
{
    int64_t c = 0;
    for (int64_t k = 0; k < n; k++)
        c += !isfinite(x[k]);
    return c;
}

static double clamp_norm(double sq)
{
    double n = sqrt(sq);
    return n > AS_JACOBIAN_COS_EPS ? n : AS_JACOBIAN_COS_EPS;
}

void as_jacobian_acc_add(struct as_jacobian_acc *acc, const double *A, const double *g, int64_t T,
                         double row_tol, struct as_jacobian_slab_check *chk)
{
    double full2 = 0, diag2 = 0, g2 = 0, dot_df = 0, dot_gf = 0, a_all = 0, apos = 0, ent = 0;
    int64_t npos = 0, bad = 0, first_bad = -1;
    double first_sum = 0;

    for (int64_t i = 0; i < T; i++) {
        const double *a = A + i * T, *y = g + i * T;
        /* walk 1: the row's sums (s = A.g), its entropy and its positive entries */
        double s = 0, rs = 0, re = 0, rp = 0;
        int64_t rn = 0;
        for (int64_t j = 0; j < T; j++) {
            double x = a[j];
            s += x * y[j];
            rs += x;
            if (x != 0) { /* 0 * log(1e-10) adds nothing: skip the log */
                re -= x * log(x + AS_JACOBIAN_LOG_EPS);
                if (x > 0) {
                    rp += x;
                    rn++;
                }
            }
        }
        /* walk 2 (the row is in L1): the three gradients and their products */
        for (int64_t j = 0; j < T; j++) {
            double x = a[j], gv = y[j];
            double gf = x * (gv - s), gd = x * (1.0 - x) * gv;
            full2 += gf * gf;
            diag2 += gd * gd;
            dot_df += gd * gf;
            dot_gf += gv * gf;
            g2 += gv * gv;
        }
        if (!(fabs(rs - 1.0) <= row_tol)) {
            if (first_bad < 0) {
                first_bad = i;
                first_sum = rs;
            }
            bad++;
        }
        a_all += rs;
        ent += re;
        apos += rp;
        npos += rn;
    }
    /* every A value is in a_all and every g value in g2: finite sums mean finite inputs */
    int64_t bad_a = 0, bad_g = 0;
    if (!isfinite(a_all + g2)) {
        bad_a = count_nonfinite(A, T * T);
        bad_g = count_nonfinite(g, T * T);
    }

    double nf = clamp_norm(full2);
    acc->cos_diag += dot_df / (clamp_norm(diag2) * nf);
    acc->cos_ste += dot_gf / (clamp_norm(g2) * nf);
    acc->full2 += full2;
    acc->diag2 += diag2;
    acc->a_pos_sum += apos;
    acc->a_pos_n += npos;
    acc->ent_sum += ent;
    acc->n_rows += T;
    acc->n_samples++;
    acc->bad_rows += bad;
    acc->nonfinite_attn += bad_a;
    acc->nonfinite_grad += bad_g;
    if (chk) {
        chk->bad_rows = bad;
        chk->first_bad_row = first_bad;
        chk->first_bad_sum = first_sum;
        chk->nonfinite_attn = bad_a;
        chk->nonfinite_grad = bad_g;
    }
}

void as_jacobian_acc_finish(const struct as_jacobian_acc *acc, struct as_jacobian_head *out)
{
    double nb = (double)acc->n_samples;
    double r = (acc->diag2 / nb) / (acc->full2 / nb + AS_JACOBIAN_R_EPS);
    out->a_mean = acc->a_pos_sum / (double)acc->a_pos_n; /* 0/0 = NaN when no entry is > 0 */
    out->entropy = acc->ent_sum / (double)acc->n_rows;
    out->r_diag = r;
    out->r_offdiag = 1.0 - r;
    out->cos_diag = acc->cos_diag / nb;
    out->cos_ste = acc->cos_ste / nb;
    out->bad_rows = acc->bad_rows;
    out->nonfinite = acc->nonfinite_attn + acc->nonfinite_grad;
}
