/* as_plan_tasks.c: this attempt's tasks (whole layers and pieces of split layers) from what is
 * left, and the journal replay of pieces. Pure: no MPI, no file I/O. */
#include <stdlib.h>
#include <string.h>

#include "as_plan.h"

static size_t idx(const struct as_plan *p, size_t u, int s)
{
    return u * (size_t)p->cfg->n_stages + (size_t)s;
}

struct task_list {
    struct as_unit_desc *t;
    size_t n, cap;
};

static void push(struct task_list *l, struct as_unit_desc t)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->t = as_xrealloc(l->t, l->cap, sizeof *l->t);
    }
    l->t[l->n++] = t;
}

/* The pieces of stage s of unit u (n[f] per phase); last-phase pieces already finished are left out. */
static void push_pieces(struct as_plan *p, struct task_list *l, size_t u, int s, const int64_t n[2])
{
    const struct as_unit_desc *ud = &p->units[u];
    const struct as_stage_shape *sh = &p->models[ud->model].st[s].shape;
    const unsigned char *done = as_plan_parts_done(p, ud->model, s);
    int64_t last = sh->n_phases - 1, P_last = sh->parts[last];
    for (int f = 0; f < sh->n_phases; f++) {
        int64_t P = sh->parts[f];
        for (int64_t b = 0; b < n[f]; b++) {
            int64_t p0 = b * P / n[f], p1 = (b + 1) * P / n[f], left = 0;
            if (f == last && done) {
                for (int64_t k = p0; k < p1; k++)
                    left += !done[ud->layer * P_last + k];
                if (!left)
                    continue;
            }
            double share = (double)(p1 - p0) / (double)P;
            push(l, (struct as_unit_desc){ .model = ud->model, .layer = ud->layer, .cost = sh->phase_cost[f] * share,
                                           .bytes = f ? 0 : (int64_t)((double)sh->unit_bytes * share), .stage = s,
                                           .phase = f, .part0 = p0, .part1 = p1 });
        }
    }
}

void as_plan_reassign(struct as_plan *p)
{
    int ns = p->cfg->n_stages;
    int split = p->cfg->split;
    if (split == AS_SPLIT_AUTO && p->nranks < 2)
        split = AS_SPLIT_OFF; /* one rank: nothing to balance */
    double target[2] = { 0, 0 };   /* 1/16 of a rank's share of each phase */
    for (size_t u = 0; u < p->n_units; u++)
        for (int s = 0; s < ns; s++)
            if (as_plan_stage_todo(p, u, s)) {
                const struct as_stage_shape *sh = &p->models[p->units[u].model].st[s].shape;
                target[0] += sh->n_phases ? sh->phase_cost[0] : sh->unit_cost;
                target[1] += sh->n_phases > 1 ? sh->phase_cost[1] : 0;
            }
    target[0] /= 16.0 * p->nranks;
    target[1] /= 16.0 * p->nranks;
    struct task_list l = { 0 };
    memset(p->split, 0, p->n_units * (size_t)ns);
    p->n_todo = 0;
    for (size_t u = 0; u < p->n_units; u++) {
        const struct as_unit_desc *ud = &p->units[u];
        const struct as_plan_model *mr = &p->models[ud->model];
        struct as_unit_desc whole = { .model = ud->model, .layer = ud->layer, .stage = -1 };
        int any = 0, any_whole = 0;
        size_t first = l.n;
        for (int s = 0; s < ns; s++) {
            if (!as_plan_stage_todo(p, u, s))
                continue;
            any = 1;
            const struct as_stage_shape *sh = &mr->st[s].shape;
            int64_t n[2];
            as_plan_pieces(sh, sh->unit_cost, target, split, n);
            const unsigned char *done = as_plan_parts_done(p, ud->model, s);
            if (!n[0] && done) { /* some parts finished earlier: only the others are left */
                int64_t P_last = sh->parts[sh->n_phases - 1];
                for (int64_t k = 0; k < P_last && !n[0]; k++)
                    if (done[ud->layer * P_last + k])
                        n[0] = n[1] = 1;
            }
            if (!n[0]) {
                whole.cost += sh->unit_cost;
                whole.bytes += sh->unit_bytes;
                any_whole = 1;
                continue;
            }
            p->split[idx(p, u, s)] = 1;
            p->from_parts[idx(p, u, s)] = 1;
            push_pieces(p, &l, u, s, n);
        }
        if (any_whole) { /* the whole-layer task first, then the pieces */
            push(&l, whole);
            memmove(l.t + first + 1, l.t + first, (l.n - 1 - first) * sizeof *l.t);
            l.t[first] = whole;
        }
        p->n_todo += (size_t)any;
    }
    free(p->tasks);
    free(p->task_owner);
    p->tasks = l.t;
    p->n_tasks = l.n;
    p->task_owner = as_xcalloc(l.n + 1, sizeof *p->task_owner);
    p->balance = as_plan_schedule(p->tasks, p->n_tasks, p->nranks, p->task_owner, p->load);
    p->n_phases = 1;
    free(p->unit_task);
    p->unit_task = as_xcalloc(p->n_units + 1, sizeof *p->unit_task);
    for (size_t u = 0, k = 0; u <= p->n_units; u++) { /* tasks are in unit order */
        while (k < p->n_tasks && p->models[p->tasks[k].model].first_unit + (size_t)p->tasks[k].layer < u)
            k++;
        p->unit_task[u] = k;
    }
    for (size_t u = 0; u < p->n_units; u++)
        p->run_owner[u] = -1;
    for (size_t k = 0; k < p->n_tasks; k++) {
        const struct as_unit_desc *t = &p->tasks[k];
        if (t->stage < 0)
            p->run_owner[p->models[t->model].first_unit + (size_t)t->layer] = p->task_owner[k];
        else if (t->phase == 1)
            p->n_phases = 2;
    }
}

