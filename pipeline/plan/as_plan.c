/* as_plan.c: LPT scheduling of (model, layer) units. */
#include "as_plan.h"

#include <stdlib.h>

#include "as_util.h"

struct order {
    const struct as_unit_desc *u;
    size_t i;
};

static int by_cost_desc(const void *a, const void *b)
{
    const struct order *x = a, *y = b;
    if (x->u->cost != y->u->cost)
        return x->u->cost > y->u->cost ? -1 : 1;
    if (x->u->model != y->u->model)
        return x->u->model < y->u->model ? -1 : 1;
    if (x->u->layer != y->u->layer)
        return x->u->layer < y->u->layer ? -1 : 1;
    return 0;
}

void as_plan_assign(const struct as_unit_desc *units, size_t n, int nranks, int *owner, double *load)
{
    struct order *o = as_xcalloc(n, sizeof *o);
    double *l = as_xcalloc((size_t)nranks, sizeof *l);
    for (size_t i = 0; i < n; i++) {
        o[i].u = &units[i];
        o[i].i = i;
    }
    qsort(o, n, sizeof *o, by_cost_desc);
    /* n * nranks is fine for the sizes here (thousands of units, hundreds of ranks); a heap would
     * do for more */
    for (size_t k = 0; k < n; k++) {
        int best = 0;
        for (int r = 1; r < nranks; r++)
            if (l[r] < l[best])
                best = r;
        owner[o[k].i] = best;
        l[best] += o[k].u->cost;
    }
    if (load)
        for (int r = 0; r < nranks; r++)
            load[r] = l[r];
    free(l);
    free(o);
}

double as_plan_balance(const double *load, int nranks)
{
    double sum = 0, mx = 0;
    for (int r = 0; r < nranks; r++) {
        sum += load[r];
        if (load[r] > mx)
            mx = load[r];
    }
    return mx > 0 ? sum / nranks / mx : 1.0;
}
