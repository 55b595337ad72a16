/* as_driver.c: a run from config to results. Units are (model, layer); each rank runs every
 * configured stage on the units the plan gives it. Determinism: each unit's rows depend only on
 * its inputs; prepass sums are integers; rows are combined with a bitwise OR of disjoint
 * buffers; every reduction over layers happens in layer order in finalize(). So results do not
 * depend on the rank count. */
#include "as_driver.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "as_mpi.h"
#include "as_matrices.h"
#include "as_plot.h"
#include "as_run_internal.h"
#include "as_util.h"
#include "as_version.h"

volatile int as_stop_requested;

static void run_release(struct as_run *r)
{
    for (int i = 0; r->st && i < r->plan.n_models; i++)
        for (int s = 0; s < r->cfg->n_stages; s++) {
            struct as_run_stage *rs = as_run_stage_of(r, i, s);
            as_exec_release(&rs->ex);
            free(rs->rows);
            free(rs->model_block);
            free(rs->parts);
            as_results_stage_copy_release(rs->copy);
            free(rs->copy);
        }
    free(r->st);
    free(r->fail_layer);
    free(r->fail_msg);
    as_inputs_close(&r->open);
    as_plan_release(&r->plan);
    free(r->inputs);
    as_journal_close(&r->journal);
}

/* Rows and per-model blocks of every (model, stage). */
static void alloc_buffers(struct as_run *r)
{
    r->st = as_xcalloc((size_t)r->plan.n_models * (size_t)r->cfg->n_stages, sizeof *r->st);
    for (int i = 0; i < r->plan.n_models; i++)
        for (int s = 0; s < r->cfg->n_stages; s++) {
            const struct as_plan_stage *ps = &r->plan.models[i].st[s];
            if (!ps->active)
                continue;
            struct as_run_stage *rs = as_run_stage_of(r, i, s);
            rs->rows = as_xcalloc((size_t)ps->shape.n_layers, ps->row_size);
            rs->model_block = as_xcalloc(1, ps->model_size);
        }
}

void as_run_fail_model(struct as_run *r, int model, struct as_error *err)
{
    const char *msg = err->msg;
    int n = 0;
    if (sscanf(msg, "rank %*d %n", &n) == 0 && n > 0) /* "rank 3 unit m/L2: ..." -> "unit m/L2: ..." */
        msg += n;
    as_plan_fail_model(&r->plan, model, msg);
    as_error_clear(err);
}

struct replay {
    struct as_run *r;
    const struct as_jrec *rec;
};

static void replay_row(int model, int stage, void *arg)
{
    const struct replay *rp = arg;
    const struct as_plan_stage *ps = &rp->r->plan.models[model].st[stage];
    memcpy(as_run_stage_of(rp->r, model, stage)->rows + (size_t)rp->rec->index * ps->row_size, rp->rec->payload,
           ps->row_size);
}

static void replay_part(int model, int stage, void *arg)
{
    const struct replay *rp = arg;
    const struct as_stage_shape *sh = &rp->r->plan.models[model].st[stage].shape;
    const struct as_stage_cfg *sc = &rp->r->cfg->stages[stage];
    int last = sh->n_phases - 1;
    int64_t p0;
    memcpy(&p0, rp->rec->payload, 8);
    size_t off = sc->ops->part_offset(sc->cfg, sh, last, p0);
    memcpy(as_run_parts(rp->r, model, stage) + (size_t)rp->rec->index * sh->phase_bytes[last] + off,
           rp->rec->payload + 16, rp->rec->len - 16);
}

/* Journal replay: the rows of finished (model, stage, layer)s in place, and the finished parts of
 * split layers, found by key whatever the models' order or names. */
static void replay_journal(struct as_run *r)
{
    struct as_jrec rec;
    struct replay rp = { r, &rec };
    r->journal.pos = 0;
    while (as_journal_next(&r->journal, &rec))
        if (rec.kind == AS_JREC_UNIT) {
            as_plan_mark_done(&r->plan, rec.key, rec.index, rec.len, replay_row, &rp);
        } else if (rec.kind == AS_JREC_PART && rec.len >= 16) {
            int64_t p[2];
            memcpy(p, rec.payload, 16);
            as_plan_mark_parts(&r->plan, rec.key, rec.index, p[0], p[1], rec.len - 16, replay_part, &rp);
        }
}

/* COLLECTIVE: every rank ends up with every row (rows of other ranks' units are zero here). */
static void gather_rows(struct as_run *r)
{
    for (int i = 0; i < r->plan.n_models; i++)
        for (int s = 0; s < r->cfg->n_stages; s++) {
            const struct as_plan_stage *ps = &r->plan.models[i].st[s];
            if (!ps->active)
                continue;
            unsigned char *rows = as_run_stage_of(r, i, s)->rows;
            size_t n = (size_t)ps->shape.n_layers * ps->row_size;
            for (size_t off = 0; off < n; off += (size_t)1 << 30) {
                size_t c = n - off < ((size_t)1 << 30) ? n - off : ((size_t)1 << 30);
                AS_MPI(MPI_Allreduce(MPI_IN_PLACE, rows + off, (int)c, MPI_BYTE, MPI_BOR, r->comm));
            }
        }
}

/* COLLECTIVE: the rows of layers made of parts (split in this attempt, or all parts finished
 * earlier): every rank gets every part (bitwise OR of disjoint bytes), then combines them, in the
 * same way as a whole layer. */
static int combine_parts(struct as_run *r, struct as_error *err)
{
    int ns = r->cfg->n_stages;
    for (int i = 0; i < r->plan.n_models; i++) {
        const struct as_plan_model *mr = &r->plan.models[i];
        for (int s = 0; s < ns; s++) {
            const struct as_plan_stage *ps = &mr->st[s];
            if (mr->failed || !ps->active || mr->reused[s] || ps->shape.n_phases < 1)
                continue;
            int any = 0;
            for (int64_t l = 0; l < ps->shape.n_layers && !any; l++)
                any = r->plan.from_parts[(mr->first_unit + (size_t)l) * (size_t)ns + (size_t)s];
            if (!any)
                continue;
            struct as_run_stage *rs = as_run_stage_of(r, i, s);
            size_t lb = ps->shape.phase_bytes[ps->shape.n_phases - 1], n = (size_t)ps->shape.n_layers * lb;
            unsigned char *parts = as_run_parts(r, i, s);
            for (size_t off = 0; off < n; off += (size_t)1 << 30) {
                size_t c = n - off < ((size_t)1 << 30) ? n - off : ((size_t)1 << 30);
                AS_MPI(MPI_Allreduce(MPI_IN_PLACE, parts + off, (int)c, MPI_BYTE, MPI_BOR, r->comm));
            }
            for (int64_t l = 0; l < ps->shape.n_layers; l++)
                if (r->plan.from_parts[(mr->first_unit + (size_t)l) * (size_t)ns + (size_t)s] &&
                    as_exec_combine(&rs->ex, l, parts + (size_t)l * lb, rs->rows + (size_t)l * ps->row_size, err))
                    return as_error_prefix(err, "model '%s' stage %s layer %lld: ", mr->m->name,
                                           r->cfg->stages[s].ops->name, (long long)l);
        }
    }
    return 0;
}

/* Every stage's finalize, identically on every rank. */
static int finalize_all(struct as_run *r, struct as_error *err)
{
    for (int i = 0; i < r->plan.n_models; i++) {
        const struct as_plan_model *mr = &r->plan.models[i];
        for (int s = 0; s < r->cfg->n_stages; s++) {
            const struct as_plan_stage *ps = &mr->st[s];
            if (mr->failed || !ps->active || mr->reused[s])
                continue;
            const struct as_stage_cfg *sc = &r->cfg->stages[s];
            struct as_run_stage *rs = as_run_stage_of(r, i, s);
            rs->ex.out.model_fields = rs->model_block;
            rs->ex.out.log = &rs->ex.log;
            if (as_exec_finalize(&rs->ex, mr->m->name, rs->rows, &rs->ex.out, err))
                return as_error_prefix(err, "model '%s' stage %s: ", mr->m->name, sc->ops->name);
        }
    }
    return 0;
}

static int write_log(const char *path, const char *text, struct as_error *err)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return as_error_set(err, AS_ERR_IO, "cannot write summary log '%s': %s", path, strerror(errno));
    int bad = fputs(text, f) < 0 || fflush(f) || fsync(fileno(f));
    int e = errno;
    if (fclose(f) && !bad) {
        bad = 1;
        e = errno;
    }
    if (bad) {
        unlink(path);
        return as_error_set(err, AS_ERR_IO, "cannot write summary log '%s': %s", path, strerror(e));
    }
    return 0;
}

/* The model groups' attributes and stage blocks, for the results writer; summary-log lines. */
struct write_desc {
    struct as_results_model *rm;   /* (n_models,) */
    struct as_results_stage *rs;   /* (n_models * n_stages,) */
    struct as_attr (*attrs)[4 * AS_MAX_TENSORS + 6];
    char (*names)[4 * AS_MAX_TENSORS + 6][96];
    char (*keys)[AS_MAX_STAGES][33]; /* (n_models,) the stages' keys in hex */
    struct as_strbuf failed;       /* names of the failed models, one per line */
    int n_failed;
};

static void describe_results(struct as_run *r, struct write_desc *w, struct as_strbuf *log)
{
    const struct as_config *cfg = r->cfg;
    int nm = r->plan.n_models;
    w->rm = as_xcalloc((size_t)nm, sizeof *w->rm);
    w->rs = as_xcalloc((size_t)nm * (size_t)cfg->n_stages + 1, sizeof *w->rs);
    w->attrs = as_xcalloc((size_t)nm, sizeof *w->attrs);
    w->names = as_xcalloc((size_t)nm, sizeof *w->names);
    w->keys = as_xcalloc((size_t)nm, sizeof *w->keys);
    for (int i = 0; i < nm; i++) {
        const struct as_plan_model *mr = &r->plan.models[i];
        int na = as_summary_model_attrs(mr, cfg->full_digest, w->attrs[i], w->names[i],
                                        (int)(sizeof w->attrs[i] / sizeof w->attrs[i][0]));
        w->rm[i] = (struct as_results_model){ mr->m->name, mr->n_layers, mr->n_heads, mr->seq_len,
                                              r->plan.owner + mr->first_unit, w->attrs[i], na,
                                              w->rs + (size_t)i * cfg->n_stages, 0, NULL };
        if (mr->failed) {
            w->rm[i].error = mr->error;
            as_strbuf_addf(&w->failed, "%s%s", w->n_failed++ ? "\n" : "", mr->m->name);
            continue;
        }
        for (int s = 0; s < cfg->n_stages; s++) {
            const struct as_plan_stage *ps = &mr->st[s];
            if (!ps->active)
                continue;
            struct as_run_stage *st = as_run_stage_of(r, i, s);
            as_reuse_key_hex(mr->key[s], w->keys[i][s]);
            const char *lines = st->copy ? st->copy->log : as_strbuf_str(&st->ex.log);
            w->rs[(size_t)i * cfg->n_stages + w->rm[i].n_stages++] = (struct as_results_stage){
                cfg->stages[s].ops->name, ps->fields, ps->n_fields, ps->shape.n_layers, st->rows, st->model_block,
                st->copy ? st->copy->attrs : st->ex.out.attrs, st->copy ? st->copy->n_attrs : st->ex.out.n_attrs,
                w->keys[i][s], lines };
            as_strbuf_addf(log, "%s", lines);
        }
    }
    for (int i = 0; i < nm; i++)
        if (r->plan.models[i].failed)
            as_strbuf_addf(log, "failed model %s (on_error: skip): %s\n", r->plan.models[i].m->name,
                           r->plan.models[i].error);
}

static void write_desc_release(struct write_desc *w)
{
    free(w->rm);
    free(w->rs);
    free(w->attrs);
    free(w->names);
    free(w->keys);
    as_strbuf_release(&w->failed);
}

static const struct as_plan_model *first_failed(const struct as_plan *p)
{
    for (int i = 0; i < p->n_models; i++)
        if (p->models[i].failed)
            return &p->models[i];
    return NULL;
}

/* What a resume found finished: units (every stage done) and unit stages. */
static void report_resume(const struct as_run *r)
{
    size_t total = 0, done = 0;
    for (size_t u = 0; u < r->plan.n_units; u++) {
        const struct as_plan_model *mr = &r->plan.models[r->plan.units[u].model];
        for (int s = 0; s < r->cfg->n_stages; s++)
            if (mr->st[s].active && r->plan.units[u].layer < mr->st[s].shape.n_layers) {
                total++;
                done += !as_plan_stage_todo(&r->plan, u, s);
            }
    }
    fprintf(stderr, "attnstat: resuming: %zu of %zu units finished earlier (%zu of %zu unit stages)\n",
            r->plan.n_units - r->plan.n_todo, r->plan.n_units, done, total);
}

int as_run_all(MPI_Comm comm, struct as_config *cfg, const struct as_run_opts *opts, struct as_error *err)
{
    struct as_run r = { .comm = comm, .cfg = cfg, .journal = { .fd = -1 } };
    as_inputs_init(&r.open);
    r.rank = as_mpi_rank(comm);
    r.nranks = as_mpi_size(comm);
    char start_time[32], end_time[32];
    as_iso_time(start_time, sizeof start_time);
    struct write_desc w = { 0 };
    struct as_strbuf log = AS_STRBUF_INIT;
    double *rank_busy = NULL, *rank_bytes = NULL, *rank_read_s = NULL;
    int64_t *rank_units = NULL, *rank_opens = NULL;

    if (as_inputs_probe_all(&r, err))
        goto out;
    as_plan_build(&r.plan, cfg, r.inputs, r.nranks, err); /* identical on every rank */
    if (err->status)
        goto out;
    r.fail_layer = as_xcalloc((size_t)r.plan.n_models, sizeof *r.fail_layer);
    r.fail_msg = as_xcalloc((size_t)r.plan.n_models, sizeof *r.fail_msg);
    for (int i = 0; i < r.plan.n_models; i++)
        r.fail_layer[i] = INT64_MAX;
    alloc_buffers(&r);
    struct as_strbuf desc = AS_STRBUF_INIT;
    as_plan_describe(&r.plan, &desc);
    int rc = as_journal_open_all(comm, &r.journal, cfg->output, as_strbuf_str(&desc), opts->resume, err);
    as_strbuf_release(&desc);
    if (rc)
        goto out;
    replay_journal(&r);
    if (opts->resume)
        as_reuse_all(&r);
    as_plan_reassign(&r.plan);
    int64_t units_reused = (int64_t)(r.plan.n_units - r.plan.n_todo), units_computed = (int64_t)r.plan.n_todo;
    if (r.rank == 0 && opts->resume && opts->progress)
        report_resume(&r);
    if (as_prepass_all(&r, err) || as_units_all(&r, opts->progress, err))
        goto out;
    gather_rows(&r);
    if (combine_parts(&r, err) || finalize_all(&r, err)) /* identical on every rank */
        goto out;

    as_strbuf_addf(&log, "attnstat %s (%s) summary: config %s, %d model%s, %zu units, %d rank%s, started %s\n",
                   as_version(), as_git_describe(), cfg->path, r.plan.n_models, r.plan.n_models == 1 ? "" : "s",
                   r.plan.n_units, r.nranks, r.nranks == 1 ? "" : "s", start_time);
    describe_results(&r, &w, &log);
    if (cfg->skipped.len)
        as_strbuf_addf(&log, "skipped sweep combinations (missing: skip):\n%s", as_strbuf_str(&cfg->skipped));
    as_summary_ranks_all(&r, &log, &rank_busy, &rank_bytes, &rank_units, &rank_opens, &rank_read_s);
    as_strbuf_addf(&log, "units computed %lld, reused from an earlier run %lld\n", (long long)units_computed,
                   (long long)units_reused);
    as_iso_time(end_time, sizeof end_time);
    struct as_results_run run = { cfg->doc.text, cfg->path, opts->command_line, start_time, end_time, r.nranks,
                                  rank_busy, rank_bytes, rank_units, w.n_failed == 0, cfg->selection,
                                  as_strbuf_str(&cfg->skipped), units_computed, units_reused,
                                  as_strbuf_str(&w.failed), rank_opens, rank_read_s };
    /* the log first: a run whose log cannot be written leaves no results file at OUTPUT either */
    as_strbuf_addf(&log, "results %s (%s)\n", cfg->output, w.n_failed ? "complete = 0: models failed" : "complete");
    rc = r.rank == 0 ? write_log(cfg->log, as_strbuf_str(&log), err) : 0;
    if (as_mpi_agree_all(comm, err))
        goto out;
    /* the results, with what the config asks besides (labels, overrides, stored matrices) */
    rc = as_matrices_write_results_all(comm, cfg, &run, w.rm, r.plan.n_models, err);
    if (rc && r.rank == 0)
        unlink(cfg->log); /* it would speak of results that are not there */
    if (!rc && r.rank == 0 && cfg->figures)
        rc = as_plot_run_figures(cfg->output, cfg->figures_dir, cfg->figure_formats, err);
    if (rc == 0 && r.rank != 0)
        as_error_clear(err);
    if (!as_mpi_agree_all(comm, err) && w.n_failed) { /* identical on every rank */
        as_error_set(err, AS_ERR_INPUT, "%d model%s failed (on_error: skip), the others' results are in '%s' "
                     "(complete = 0): %s: %s; fix the input%s and run again with --resume", w.n_failed,
                     w.n_failed == 1 ? "" : "s", cfg->output, first_failed(&r.plan)->m->name,
                     first_failed(&r.plan)->error, w.n_failed == 1 ? "" : "s (the summary log lists them all)");
    } else if (!err->status) {
        as_journal_remove_all(comm, &r.journal); /* the results file is complete: nothing to resume */
    }
out:
    as_strbuf_release(&log);
    write_desc_release(&w);
    free(rank_busy);
    free(rank_bytes);
    free(rank_units);
    free(rank_opens);
    free(rank_read_s);
    run_release(&r);
    return err->status ? -1 : 0;
}
