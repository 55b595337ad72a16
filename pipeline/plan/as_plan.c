/* as_plan.c: LPT scheduling of units and tasks; how many pieces a split layer runs in. */
#include "as_plan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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
    return x->i < y->i ? -1 : x->i > y->i; /* list order: a total order, so qsort is deterministic */
}

/* A binary min-heap of ranks by (load, rank): the least-loaded rank, ties to the lowest. */
static int heap_less(const double *l, int a, int b)
{
    return l[a] < l[b] || (l[a] == l[b] && a < b);
}

static void heap_down(int *h, int n, const double *l, int k)
{
    for (;;) {
        int c = 2 * k + 1;
        if (c >= n)
            return;
        if (c + 1 < n && heap_less(l, h[c + 1], h[c]))
            c++;
        if (!heap_less(l, h[c], h[k]))
            return;
        int t = h[c];
        h[c] = h[k];
        h[k] = t;
        k = c;
    }
}

void as_plan_assign(const struct as_unit_desc *units, size_t n, int nranks, int *owner, double *load)
{
    struct order *o = as_xcalloc(n ? n : 1, sizeof *o);
    double *l = as_xcalloc((size_t)nranks, sizeof *l);
    int *h = as_xcalloc((size_t)nranks, sizeof *h);
    for (size_t i = 0; i < n; i++) {
        o[i].u = &units[i];
        o[i].i = i;
    }
    qsort(o, n, sizeof *o, by_cost_desc);
    for (int r = 0; r < nranks; r++) /* all loads 0: ranks in order are a heap */
        h[r] = r;
    for (size_t k = 0; k < n; k++) {
        int best = h[0];
        owner[o[k].i] = best;
        l[best] += o[k].u->cost;
        heap_down(h, nranks, l, 0);
    }
    if (load)
        for (int r = 0; r < nranks; r++)
            load[r] = l[r];
    free(h);
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

void as_plan_pieces(const struct as_stage_shape *sh, double cost, const double target[2], int split, int64_t n[2])
{
    n[0] = n[1] = 0;
    if (sh->n_phases < 1 || split == AS_SPLIT_OFF)
        return;
    if (split == AS_SPLIT_AUTO) {
        if (!(cost > AS_PLAN_MIN_PIECE_COST && cost > 4 * target[0])) /* whole layers balance well enough */
            return;
        for (int f = 0; f < sh->n_phases; f++) {
            /* phase 0 pieces no smaller than the minimum; phase 1 pieces (after the exchange) are
             * sized to their own phase's share, which may be smaller */
            double floor_cost = f ? AS_PLAN_MIN_PIECE_COST / 16 : AS_PLAN_MIN_PIECE_COST;
            double piece = target[f] > floor_cost ? target[f] : floor_cost;
            double want = ceil(sh->phase_cost[f] / piece);
            n[f] = want < 1 ? 1 : want > (double)sh->parts[f] ? sh->parts[f] : (int64_t)want;
        }
        return;
    }
    for (int f = 0; f < sh->n_phases; f++)
        n[f] = split < sh->parts[f] ? split : sh->parts[f];
}

double as_plan_schedule(const struct as_unit_desc *tasks, size_t n, int nranks, int *owner, double *load)
{
    double max[2] = { 0, 0 }, total = 0;
    double *l = as_xcalloc((size_t)nranks, sizeof *l);
    if (load)
        memset(load, 0, (size_t)nranks * sizeof *load);
    for (int f = 0; f < 2; f++) {
        struct as_unit_desc *sub = as_xcalloc(n ? n : 1, sizeof *sub);
        size_t *map = as_xcalloc(n ? n : 1, sizeof *map), m = 0;
        int *own = as_xcalloc(n ? n : 1, sizeof *own);
        for (size_t k = 0; k < n; k++)
            if ((tasks[k].stage >= 0 && tasks[k].phase == 1) == (f == 1)) {
                map[m] = k;
                sub[m++] = tasks[k];
            }
        as_plan_assign(sub, m, nranks, own, l);
        for (size_t k = 0; k < m; k++)
            owner[map[k]] = own[k];
        for (int r = 0; r < nranks; r++) {
            total += l[r];
            if (l[r] > max[f])
                max[f] = l[r];
            if (load)
                load[r] += l[r];
        }
        free(own);
        free(map);
        free(sub);
    }
    free(l);
    return max[0] + max[1] > 0 ? total / nranks / (max[0] + max[1]) : 1.0;
}
