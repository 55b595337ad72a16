/* as_prepass.c: the collective prepass protocol. For each (model, stage) with a prepass, round by
 * round: every rank adds its units into integer counters, the counters are summed over all ranks
 * (order-free, so exact), rank 0 journals the sum, and every rank reduces it into the stage's
 * state alike. A resume replays journaled rounds without reading any data. */
#include <stdlib.h>
#include <string.h>

#include "as_mpi.h"
#include "as_run_internal.h"
#include "as_util.h"

/* The journaled sum of a prepass round, if the interrupted run got that far. */
static int journal_prepass(struct as_journal *j, const uint64_t key[2], int round, uint64_t *acc, size_t n)
{
    struct as_jrec rec;
    j->pos = 0;
    while (as_journal_next(j, &rec))
        if (rec.kind == AS_JREC_PREPASS && rec.key[0] == key[0] && rec.key[1] == key[1] && rec.index == round &&
            as_journal_prepass_read(&rec, acc, n) == 0)
            return 1;
    return 0;
}

/* The executor of (model i, stage s) on this rank: shape, schema, zeroed state and state_init. */
static int state_init(struct as_run *r, int i, int s, struct as_error *err)
{
    const struct as_stage_cfg *sc = &r->cfg->stages[s];
    const struct as_plan_model *mr = &r->plan.models[i];
    const struct as_plan_stage *ps = &mr->st[s];
    const struct as_tensor_info *info[AS_STAGE_MAX_INPUTS];
    for (int k = 0; k < ps->n_inputs; k++)
        info[k] = &mr->in->in[ps->in_idx[k]].info;
    if (as_exec_begin(&as_run_stage_of(r, i, s)->ex, sc->ops, sc->cfg, info, mr->n_heads ? mr->n_heads : mr->m->heads,
                      err))
        return as_error_prefix(err, "model '%s' stage %s: ", mr->m->name, sc->ops->name);
    return 0;
}

/* One unit's share of a round: layer l, phase-0 parts [p0, p1) (the whole layer: [0, parts)). */
static int prepass_unit(struct as_run *r, int i, int s, int round, int64_t l, int64_t p0, int64_t p1, uint64_t *acc,
                        struct as_error *err)
{
    struct as_exec *ex = &as_run_stage_of(r, i, s)->ex;
    struct as_unit u;
    if (as_inputs_open(r, i, err))
        return -1;
    as_inputs_unit(&u, r, i, s, l);
    if (p1 > p0) {
        u.part0 = p0;
        u.part1 = p1;
    }
    if (as_exec_prepass_unit(ex, round, &u, acc, err))
        return -1;
    return as_inputs_check(r, i, err);
}

/* This rank's share of one round: the layers (or, of a split layer, the phase-0 pieces) whose
 * task it has, so that the prepass and the run of a layer share a rank; returns the failing layer
 * (its lowest), or INT64_MAX. */
static int64_t round_local(struct as_run *r, int i, int s, int round, uint64_t *acc, struct as_error *err)
{
    int64_t failed_at = INT64_MAX;
    const struct as_plan *p = &r->plan;
    const struct as_plan_model *mr = &p->models[i];
    double t0 = as_now();
    for (int64_t l = 0; l < mr->st[s].shape.n_layers && !err->status; l++) {
        size_t u = mr->first_unit + (size_t)l;
        if (as_stop_requested) {
            as_error_set(err, AS_ERR_STOPPED, "stopped by a signal during the prepass of model '%s'", mr->m->name);
            break;
        }
        int rc = 0;
        if (p->split[u * (size_t)r->cfg->n_stages + (size_t)s]) {
            for (size_t k = p->unit_task[u]; k < p->unit_task[u + 1] && !rc; k++) {
                const struct as_unit_desc *t = &p->tasks[k];
                if (t->stage == s && t->phase == 0 && p->task_owner[k] == r->rank)
                    rc = prepass_unit(r, i, s, round, l, t->part0, t->part1, acc, err);
            }
        } else if ((p->run_owner[u] >= 0 ? p->run_owner[u] : p->owner[u]) == r->rank) {
            rc = prepass_unit(r, i, s, round, l, 0, 0, acc, err);
        }
        if (rc) {
            as_error_prefix(err, "rank %d unit %s/L%lld: ", r->rank, mr->m->name, (long long)l);
            failed_at = l;
        }
    }
    r->busy += as_now() - t0;
    return failed_at;
}

static int prepass_stage(struct as_run *r, int i, int s, struct as_error *err)
{
    const struct as_stage_cfg *sc = &r->cfg->stages[s];
    struct as_exec *ex = &as_run_stage_of(r, i, s)->ex;
    const struct as_plan_model *mr = &r->plan.models[i];
    const char *model = mr->m->name;
    int more = 1;
    for (int round = 0; more; round++) {
        size_t n = as_exec_prepass_count(ex, round);
        uint64_t *acc = as_xcalloc(n, sizeof *acc);
        if (!journal_prepass(&r->journal, mr->key[s], round, acc, n)) { /* else replay: identical on every rank */
            int64_t failed_at = round_local(r, i, s, round, acc, err);
            /* every rank takes part in the sum, failed or not, then they agree (on the lowest
             * failing layer, so the message does not depend on the rank count) */
            for (size_t off = 0; off < n; off += (size_t)1 << 24) {
                size_t c = n - off < ((size_t)1 << 24) ? n - off : ((size_t)1 << 24);
                AS_MPI(MPI_Allreduce(MPI_IN_PLACE, acc + off, (int)c, MPI_UINT64_T, MPI_SUM, r->comm));
            }
            /* the sum counts only if every rank contributed in full */
            if (!as_mpi_agree_first_all(r->comm, failed_at, err) && r->rank == 0)
                as_journal_prepass(&r->journal, mr->key[s], round, acc, n, err);
            if (as_mpi_agree_all(r->comm, err)) {
                free(acc);
                return -1;
            }
        }
        if (as_exec_prepass_reduce(ex, round, acc, &more, err))
            as_error_prefix(err, "model '%s' stage %s: ", model, sc->ops->name);
        free(acc);
        if (err->status)
            return -1; /* identical on every rank: no agreement needed */
    }
    return 0;
}

int as_prepass_all(struct as_run *r, struct as_error *err)
{
    for (int i = 0; i < r->plan.n_models; i++)
        for (int s = 0; s < r->cfg->n_stages; s++) {
            const struct as_plan_model *mr = &r->plan.models[i];
            /* a reused (model, stage) is not run and not finalized: it needs no state */
            if (mr->failed || !mr->st[s].active || mr->reused[s])
                continue;
            state_init(r, i, s, err); /* identical on every rank */
            if (!as_mpi_agree_all(r->comm, err) &&
                (!as_exec_has_prepass(&as_run_stage_of(r, i, s)->ex) || !prepass_stage(r, i, s, err)))
                continue;
            if (!as_run_skippable(r, err))
                return -1;
            as_run_fail_model(r, i, err); /* on_error: skip; the next model */
        }
    return 0;
}
