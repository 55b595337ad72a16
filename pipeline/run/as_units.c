/* as_units.c: each rank computes the units the plan gives it and journals each one; rank 0
 * counts progress and relays a stop. Messages (3 int64 each) to and from rank 0:
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

/* The stages of unit ui still to do, then their journal records, written together: durable
 * before the unit counts as done. */
static int run_unit(struct as_run *r, size_t ui, struct as_error *err)
{
    const struct as_unit_desc *ud = &r->plan.units[ui];
    const struct as_plan_model *mr = &r->plan.models[ud->model];
    if (as_inputs_open(r, ud->model, err))
        return as_error_prefix(err, "rank %d unit %s/L%lld: ", r->rank, mr->m->name, (long long)ud->layer);
    for (int s = 0; s < r->cfg->n_stages; s++) {
        if (!as_plan_stage_todo(&r->plan, ui, s))
            continue;
        const struct as_plan_stage *ps = &mr->st[s];
        struct as_run_stage *rs = as_run_stage_of(r, ud->model, s);
        unsigned char *row = rs->rows + (size_t)ud->layer * ps->row_size;
        struct as_unit u;
        as_inputs_unit(&u, r, ud->model, s, ud->layer);
        if (as_exec_run_unit(&rs->ex, &u, row, err)) {
            r->journal.staged.len = 0; /* nothing of a failed unit counts */
            return as_error_prefix(err, "rank %d unit %s/L%lld: ", r->rank, mr->m->name, (long long)ud->layer);
        }
        as_journal_add(&r->journal, AS_JREC_UNIT, mr->key[s], ud->layer, row, ps->row_size);
    }
    if (as_inputs_check(r, ud->model, err)) { /* the rows may mix two versions of a file */
        r->journal.staged.len = 0;
        return as_error_prefix(err, "rank %d unit %s/L%lld: ", r->rank, mr->m->name, (long long)ud->layer);
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

int as_units_all(struct as_run *r, int progress, struct as_error *err)
{
    struct progress pg = { .enabled = r->rank == 0 && progress, .tty = isatty(2), .total = r->plan.n_todo };
    /* tests only: slow every unit down, to act while a run is in flight */
    const char *delay = getenv("ATTNSTAT_TEST_UNIT_DELAY_MS");
    useconds_t delay_us = delay ? (useconds_t)(atoi(delay) * 1000) : 0;
    pg.t0 = pg.last_print = as_now();
    int stop = 0, *finished = as_xcalloc((size_t)r->nranks, sizeof *finished), n_finished = 0;
    int64_t msg[3] = { 0, 0, 0 };
    MPI_Status st;
    for (size_t ui = 0; ui < r->plan.n_units; ui++) {
        const struct as_unit_desc *ud = &r->plan.units[ui];
        if (r->plan.run_owner[ui] != r->rank || r->plan.models[ud->model].failed ||
            r->fail_layer[ud->model] != INT64_MAX)
            continue;
        int flag;
        if (r->rank == 0) {
            for (;;) { /* what the other ranks reported so far */
                AS_MPI(MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, r->comm, &flag, &st));
                if (!flag)
                    break;
                AS_MPI(MPI_Recv(msg, 3, MPI_INT64_T, st.MPI_SOURCE, st.MPI_TAG, r->comm, &st));
                handle(r, &st, msg, &pg, &stop, finished, &n_finished);
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
        int rc = run_unit(r, ui, err);
        r->busy += as_now() - t0;
        r->units_done += !rc;
        if (rc && as_run_skippable(r, err)) { /* recorded; this rank goes on with other models */
            r->fail_layer[ud->model] = ud->layer;
            as_strlcpy(r->fail_msg[ud->model], err->msg, sizeof r->fail_msg[0]);
            as_error_clear(err);
            rc = 0;
        }
        if (r->rank == 0) {
            pg.done += !rc;
            progress_print(&pg, 0);
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
            handle(r, &st, msg, &pg, &stop, finished, &n_finished);
            progress_print(&pg, 0);
        }
        send_all(r, NULL, msg, TAG_DONE);
        if (!err->status && !stop && !as_stop_requested)
            progress_print(&pg, 1);
        else if (pg.enabled && pg.tty)
            fputc('\n', stderr);
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
    as_inputs_close(&r->open);
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
