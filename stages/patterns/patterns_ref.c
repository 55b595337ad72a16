/* patterns_ref.c: the patterns statistics step by step as the notebook computes them (mean row
 * materialised, numpy's max/argmax semantics), for the tests. */
#include "patterns.h"

#include <math.h>
#include <stdlib.h>

#include "as_util.h"

void as_patterns_layer_ref(const double *rows, int64_t H, int64_t T, const struct as_patterns_keywords *kw,
                           struct as_patterns_out *out)
{
    double *mean = as_xcalloc((size_t)T, sizeof *mean);
    for (int64_t h = 0; h < H; h++)
        for (int64_t j = 0; j < T; j++)
            mean[j] += rows[h * T + j];
    for (int64_t j = 0; j < T; j++)
        mean[j] /= (double)H;

    double le = 0;
    for (int64_t j = 0; j < T; j++) {
        double m = mean[j] + 1e-10;
        le += m * log(m);
    }
    out->layer_entropy = -le;

    for (int64_t h = 0; h < H; h++) {
        const double *r = rows + h * T;
        double e = 0, mx = -INFINITY;
        for (int64_t j = 0; j < T; j++) {
            e += r[j] * log(r[j] + 1e-10);
            mx = fmax(mx, r[j]);
        }
        int64_t at = 0;
        while (r[at] != mx)
            at++;
        out->head_entropy[h] = -e;
        out->head_max_attention[h] = mx;
        out->head_focus_position[h] = at;
    }
    for (int64_t k = 0; kw && k < kw->K; k++) {
        out->keyword_attention[k] = 0;
        for (int64_t p = kw->start[k]; p < kw->start[k + 1]; p++)
            out->keyword_attention[k] += mean[kw->pos[p]];
    }
    free(mean);
}
