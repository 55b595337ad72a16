/* as_units.c: each rank computes the tasks the plan gives it (whole layers and pieces of split
 * layers) and journals each one; rank 0 counts progress and relays a stop. Tasks run in two
 * rounds: whole layers and phase-0 pieces, then (when some layer's stage has two phases) the
 * phase-0 buffers of those layers go to the ranks of their phase-1 pieces and those run. Each
 * round has this protocol; messages (3 int64 each) to and from rank 0:
 *   PROGRESS r->0 {units finished (0/1), failed (0/1), 0}   after each unit
 *   FINISH   r->0                                          a rank has no unit left
 *   STOP     0->r                                          finish the unit in flight, then stop
 *   DONE     0->r                                          every rank finished: nothing unmatched
 * A failing rank or a stop signal thus ends every rank after its unit in flight; the errors are
 * then agreed on, so every rank returns the same status. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "as_mpi.h"
#include "as_run_internal.h"
#include "as_util.h"

enum { TAG_PROGRESS = 11, TAG_FINISH = 12, TAG_STOP = 13, TAG_DONE = 14 };

struct progress {
    size_t done, total;
    double t0, last_print;
    int tty, enabled;
};

static void progress_print(struct progress *pg, int final)
{
    if (!pg->enabled)
        return;
    double now = as_now(), el = now - pg->t0;
    if (!final && now - pg->last_print < (pg->tty ? 0.2 : 10.0))
        return;
    pg->last_print = now;
    double eta = pg->done ? el / (double)pg->done * (double)(pg->total - pg->done) : 0;
    fprintf(stderr, "%sattnstat: units %zu/%zu (%3.0f%%), elapsed %.1f s, eta %.1f s%s", pg->tty ? "\r" : "",
            pg->done, pg->total, pg->total ? 100.0 * (double)pg->done / (double)pg->total : 100.0, el, eta,
            pg->tty && !final ? "" : "\n");
    fflush(stderr);
}

unsigned char *as_run_parts(struct as_run *r, int model, int s)
{
    struct as_run_stage *rs = as_run_stage_of(r, model, s);
    if (!rs->parts) {
        const struct as_stage_shape *sh = &r->plan.models[model].st[s].shape;
        rs->parts = as_xcalloc((size_t)sh->n_layers, sh->phase_bytes[sh->n_phases - 1]);
    }
    return rs->parts;
}

/* The phase-0 buffer of a two-phase split layer on this rank, allocated (zeroed) on first use. */
static unsigned char *phase0_buf(struct as_run *r, int model, int s, int64_t layer)
{
    struct as_run_stage *rs = as_run_stage_of(r, model, s);
    const struct as_stage_shape *sh = &r->plan.models[model].st[s].shape;
    if (!rs->phase0)
        rs->phase0 = as_xcalloc((size_t)sh->n_layers, sizeof *rs->phase0);
    if (!rs->phase0[layer])
        rs->phase0[layer] = as_xcalloc(1, sh->phase_bytes[0]);
    return rs->phase0[layer];
}

static void phase0_free(struct as_run *r)
{
    for (int i = 0; i < r->plan.n_models; i++)
        for (int s = 0; s < r->cfg->n_stages; s++) {
            struct as_run_stage *rs = as_run_stage_of(r, i, s);
            for (int64_t l = 0; rs->phase0 && l < r->plan.models[i].st[s].shape.n_layers; l++)
                free(rs->phase0[l]);
            free(rs->phase0);
            rs->phase0 = NULL;
        }
}

/* One piece of a split stage: its parts into the phase-0 buffer of the layer, or (last phase)
 * into the stage's parts buffer and the journal. */
static int run_piece(struct as_run *r, const struct as_unit_desc *t, struct as_error *err)
{
    const struct as_plan_model *mr = &r->plan.models[t->model];
    struct as_run_stage *rs = as_run_stage_of(r, t->model, t->stage);
    const struct as_stage_shape *sh = &mr->st[t->stage].shape;
    int last = t->phase == sh->n_phases - 1;
    size_t off, len;
    as_exec_part_span(&rs->ex, t->phase, t->part0, t->part1, &off, &len);
    unsigned char *out = last ? as_run_parts(r, t->model, t->stage) + (size_t)t->layer * sh->phase_bytes[sh->n_phases - 1]
                              : phase0_buf(r, t->model, t->stage, t->layer);
    out += off;
    struct as_unit u;
    as_inputs_unit(&u, r, t->model, t->stage, t->layer);
    u.phase = t->phase;
    u.part0 = t->part0;
    u.part1 = t->part1;
    const unsigned char *prev = t->phase ? rs->phase0[t->layer] : NULL;
    if (as_exec_run_part(&rs->ex, &u, prev, out, err))
        return -1;
    if (last) {
        unsigned char *rec = as_xmalloc(16 + len);
        memcpy(rec, &t->part0, 8);
        memcpy(rec + 8, &t->part1, 8);
        memcpy(rec + 16, out, len);
        as_journal_add(&r->journal, AS_JREC_PART, mr->key[t->stage], t->layer, rec, 16 + len);
        free(rec);
    }
    return 0;
}

/* Task k: the stages of a whole layer still to do (not split), or one piece; then their journal
 * records, written together: durable before the task counts as done. */
static int run_task(struct as_run *r, size_t k, struct as_error *err)
{
    const struct as_unit_desc *t = &r->plan.tasks[k];
    const struct as_plan_model *mr = &r->plan.models[t->model];
    size_t ui = mr->first_unit + (size_t)t->layer;
    if (as_inputs_open(r, t->model, err))
        return as_error_prefix(err, "rank %d unit %s/L%lld: ", r->rank, mr->m->name, (long long)t->layer);
    for (int s = 0; s < r->cfg->n_stages; s++) {
        if (t->stage >= 0 ? s != t->stage : !as_plan_stage_todo(&r->plan, ui, s) || r->plan.split[ui * (size_t)r->cfg->n_stages + (size_t)s])
            continue;
        int rc;
        if (t->stage >= 0) {
            rc = run_piece(r, t, err);
        } else {
            const struct as_plan_stage *ps = &mr->st[s];
            struct as_run_stage *rs = as_run_stage_of(r, t->model, s);
            unsigned char *row = rs->rows + (size_t)t->layer * ps->row_size;
            struct as_unit u;
            as_inputs_unit(&u, r, t->model, s, t->layer);
            rc = as_exec_run_unit(&rs->ex, &u, row, err);
            if (!rc)
                as_journal_add(&r->journal, AS_JREC_UNIT, mr->key[s], t->layer, row, ps->row_size);
        }
        if (rc) {
            r->journal.staged.len = 0; /* nothing of a failed task counts */
            return as_error_prefix(err, "rank %d unit %s/L%lld: ", r->rank, mr->m->name, (long long)t->layer);
        }
    }
    if (as_inputs_check(r, t->model, err)) { /* the rows may mix two versions of a file */
        r->journal.staged.len = 0;
        return as_error_prefix(err, "rank %d unit %s/L%lld: ", r->rank, mr->m->name, (long long)t->layer);
    }
    return as_journal_flush(&r->journal, err);
}

/* on_error: skip: every rank learns each model's lowest failing layer and its message, and the
 * plan marks those models failed. Each rank runs its units in (model, layer) order and skips a
 * model's later units once one failed, so the lowest failing layer over the ranks is the lowest
 * failing layer of the model whatever the rank count. */
static void agree_failures(struct as_run *r)
{
    int nm = r->plan.n_models;
    int64_t *low = as_xcalloc((size_t)nm, sizeof *low);
    AS_MPI(MPI_Allreduce(r->fail_layer, low, nm, MPI_INT64_T, MPI_MIN, r->comm));
    for (int i = 0; i < nm; i++) {
        if (low[i] == INT64_MAX)
            continue;
        int who = r->fail_layer[i] == low[i] ? r->rank : INT32_MAX, first;
        AS_MPI(MPI_Allreduce(&who, &first, 1, MPI_INT, MPI_MIN, r->comm));
        struct as_error e = { .status = AS_ERR_INPUT };
        if (r->rank == first)
            as_strlcpy(e.msg, r->fail_msg[i], sizeof e.msg);
        AS_MPI(MPI_Bcast(e.msg, sizeof e.msg, MPI_CHAR, first, r->comm));
        as_run_fail_model(r, i, &e);
    }
    free(low);
}

static void send_all(struct as_run *r, const int *finished, int64_t *msg, int tag)
{
    for (int q = 1; q < r->nranks; q++)
        if (!finished || !finished[q])
            AS_MPI(MPI_Send(msg, 3, MPI_INT64_T, q, tag, r->comm));
}

/* Rank 0: one message from another rank. */
static void handle(struct as_run *r, const MPI_Status *st, int64_t *msg, struct progress *pg, int *stop, int *finished,
                   int *n_finished)
{
    if (st->MPI_TAG == TAG_PROGRESS) {
        pg->done += (size_t)msg[0];
        if (msg[1] && !*stop) {
            *stop = 1;
            send_all(r, finished, msg, TAG_STOP);
        }
    } else if (st->MPI_TAG == TAG_FINISH) {
        finished[st->MPI_SOURCE] = 1;
        (*n_finished)++;
    }
}

/* Whether task k runs in round `round` (0: whole layers and phase-0 pieces, 1: phase-1 pieces). */
static int in_round(const struct as_unit_desc *t, int round)
{
    return (t->stage >= 0 && t->phase == 1) == (round == 1);
}

/* COLLECTIVE: this rank's tasks of one round, with the progress and stop protocol. */
static int run_round(struct as_run *r, int round, struct progress *pg, struct as_error *err)
{
    /* tests only: slow every task down, to act while a run is in flight */
    const char *delay = getenv("ATTNSTAT_TEST_UNIT_DELAY_MS");
    useconds_t delay_us = delay ? (useconds_t)(atoi(delay) * 1000) : 0;
    int stop = 0, *finished = as_xcalloc((size_t)r->nranks, sizeof *finished), n_finished = 0;
    int64_t msg[3] = { 0, 0, 0 };
    MPI_Status st;
    for (size_t k = 0; k < r->plan.n_tasks; k++) {
        const struct as_unit_desc *t = &r->plan.tasks[k];
        if (r->plan.task_owner[k] != r->rank || !in_round(t, round) || r->plan.models[t->model].failed ||
            r->fail_layer[t->model] != INT64_MAX)
            continue;
        int flag;
        if (r->rank == 0) {
            for (;;) { /* what the other ranks reported so far */
                AS_MPI(MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, r->comm, &flag, &st));
                if (!flag)
                    break;
                AS_MPI(MPI_Recv(msg, 3, MPI_INT64_T, st.MPI_SOURCE, st.MPI_TAG, r->comm, &st));
                handle(r, &st, msg, pg, &stop, finished, &n_finished);
            }
        } else {
            AS_MPI(MPI_Iprobe(0, TAG_STOP, r->comm, &flag, &st));
            if (flag)
                stop = 1;
        }
        if (stop || as_stop_requested)
            break;
        if (delay_us)
            usleep(delay_us);
        double t0 = as_now();
        int rc = run_task(r, k, err);
        r->busy += as_now() - t0;
        r->units_done += !rc;
        if (rc && as_run_skippable(r, err)) { /* recorded; this rank goes on with other models */
            r->fail_layer[t->model] = t->layer;
            as_strlcpy(r->fail_msg[t->model], err->msg, sizeof r->fail_msg[0]);
            as_error_clear(err);
            rc = 0;
        }
        if (r->rank == 0) {
            pg->done += !rc;
            progress_print(pg, 0);
            if (rc && !stop) {
                stop = 1;
                send_all(r, finished, msg, TAG_STOP);
            }
        } else {
            msg[0] = !rc;
            msg[1] = rc != 0;
            msg[2] = 0;
            AS_MPI(MPI_Send(msg, 3, MPI_INT64_T, 0, TAG_PROGRESS, r->comm));
        }
        if (rc)
            break;
    }
    if (r->rank == 0) {
        while (n_finished < r->nranks - 1) {
            AS_MPI(MPI_Recv(msg, 3, MPI_INT64_T, MPI_ANY_SOURCE, MPI_ANY_TAG, r->comm, &st));
            handle(r, &st, msg, pg, &stop, finished, &n_finished);
            progress_print(pg, 0);
        }
        send_all(r, NULL, msg, TAG_DONE);
    } else {
        msg[0] = msg[1] = msg[2] = 0;
        AS_MPI(MPI_Send(msg, 3, MPI_INT64_T, 0, TAG_FINISH, r->comm));
        for (;;) { /* drain STOPs until DONE: nothing is left unmatched */
            AS_MPI(MPI_Recv(msg, 3, MPI_INT64_T, 0, MPI_ANY_TAG, r->comm, &st));
            if (st.MPI_TAG == TAG_DONE)
                break;
        }
    }
    free(finished);
    if (!err->status && as_stop_requested)
        as_error_set(err, AS_ERR_STOPPED, "stopped by a signal; run again with --resume to finish");
    int any_stop = as_stop_requested, all_stop;
    AS_MPI(MPI_Allreduce(&any_stop, &all_stop, 1, MPI_INT, MPI_MAX, r->comm));
    if (all_stop && !err->status)
        as_error_set(err, AS_ERR_STOPPED, "stopped by a signal; run again with --resume to finish");
    if (as_mpi_agree_all(r->comm, err))
        return -1;
    if (r->cfg->on_error == AS_ON_ERROR_SKIP)
        agree_failures(r);
    return 0;
}

enum { TAG_XCHG = 21 };
#define XCHG_CHUNK ((size_t)1 << 30)

/* COLLECTIVE: the phase-0 buffer of every two-phase split layer to each rank with a phase-1 piece
 * of it: every phase-0 piece's bytes from its owner (point to point, in task order, which both
 * sides walk alike; MPI keeps the order of messages between two ranks). */
static void exchange_phase0(struct as_run *r)
{
    const struct as_plan *p = &r->plan;
    size_t n_req = 0, cap = 64;
    MPI_Request *req = as_xcalloc(cap, sizeof *req);
    int *recv = as_xcalloc((size_t)r->nranks, sizeof *recv);
    for (size_t u = 0; u < p->n_units; u++) {
        size_t a = p->unit_task[u], b = p->unit_task[u + 1];
        for (size_t k0 = a; k0 < b;) { /* the tasks of one split stage of this unit: [k0, k1) */
            const struct as_unit_desc *t0 = &p->tasks[k0];
            size_t k1 = k0 + 1;
            while (k1 < b && p->tasks[k1].stage == t0->stage)
                k1++;
            if (t0->stage < 0 || p->models[t0->model].failed || p->models[t0->model].st[t0->stage].shape.n_phases < 2) {
                k0 = k1;
                continue;
            }
            memset(recv, 0, (size_t)r->nranks * sizeof *recv);
            for (size_t k = k0; k < k1; k++)
                if (p->tasks[k].phase == 1)
                    recv[p->task_owner[k]] = 1;
            struct as_run_stage *rs = as_run_stage_of(r, t0->model, t0->stage);
            unsigned char *buf = recv[r->rank] ? phase0_buf(r, t0->model, t0->stage, t0->layer) : NULL;
            for (size_t k = k0; k < k1; k++) {
                const struct as_unit_desc *t = &p->tasks[k];
                int from = p->task_owner[k];
                if (t->phase != 0)
                    continue;
                size_t off, len;
                as_exec_part_span(&rs->ex, 0, t->part0, t->part1, &off, &len);
                for (int to = 0; to < r->nranks; to++) {
                    if (!recv[to] || to == from || (r->rank != from && r->rank != to))
                        continue;
                    for (size_t c = 0; c < len; c += XCHG_CHUNK) {
                        size_t n = len - c < XCHG_CHUNK ? len - c : XCHG_CHUNK;
                        if (n_req == cap) {
                            cap *= 2;
                            req = as_xrealloc(req, cap, sizeof *req);
                        }
                        if (r->rank == from)
                            AS_MPI(MPI_Isend(rs->phase0[t->layer] + off + c, (int)n, MPI_BYTE, to, TAG_XCHG, r->comm,
                                             &req[n_req++]));
                        else
                            AS_MPI(MPI_Irecv(buf + off + c, (int)n, MPI_BYTE, from, TAG_XCHG, r->comm, &req[n_req++]));
                    }
                }
            }
            k0 = k1;
        }
    }
    AS_MPI(MPI_Waitall((int)n_req, req, MPI_STATUSES_IGNORE));
    free(req);
    free(recv);
}

int as_units_all(struct as_run *r, int progress, struct as_error *err)
{
    struct progress pg = { .enabled = r->rank == 0 && progress, .tty = isatty(2), .total = r->plan.n_tasks };
    pg.t0 = pg.last_print = as_now();
    int rc = run_round(r, 0, &pg, err);
    if (!rc && r->plan.n_phases == 2) {
        exchange_phase0(r);
        rc = run_round(r, 1, &pg, err);
    }
    phase0_free(r);
    as_inputs_close(&r->open);
    if (!rc && pg.enabled)
        progress_print(&pg, 1);
    else if (pg.enabled && pg.tty)
        fputc('\n', stderr);
    return rc;
}
