/* as_run_internal.h: what the files of pipeline/run share; not a public header.
 *
 * A run: as_inputs_probe_all describes every input, as_plan_build (pipeline/plan) makes the plan,
 * the journal replays finished units, as_prepass_all runs the collective prepass rounds,
 * as_units_all computes this rank's units (progress and stop protocol), the rows are gathered
 * and finalized on every rank, as_summary_* writes provenance and the summary log, and
 * as_results_write_all (pipeline/results) the file. */
#ifndef AS_RUN_AS_RUN_INTERNAL_H
#define AS_RUN_AS_RUN_INTERNAL_H

#include <mpi.h>
#include <stdint.h>

#include "as_config.h"
#include "as_driver.h"
#include "as_exec.h"
#include "as_journal.h"
#include "as_plan.h"
#include "as_results.h"
#include "as_results_read.h"
#include "as_stage.h"

/* One stage on one model on this rank: the executor's building blocks (pipeline/stage/as_exec.h:
 * state, scratch, attributes and log lines) and the driver's own buffers. */
struct as_run_stage {
    struct as_exec ex;
    unsigned char *rows;           /* (n_layers, row_size), owned; complete after the gather */
    unsigned char *model_block;    /* (model_size,), owned; filled by finalize */
    struct as_results_stage_copy *copy; /* owned: reused whole from the earlier results file
                                    * (attributes, summary lines), or NULL */
    /* units finer than a layer */
    unsigned char *parts;          /* (n_layers, last phase_bytes) or NULL: last-phase parts, owned */
    unsigned char **phase0;        /* (n_layers,) or NULL: phase-0 buffers of two-phase split layers */
};

/* The input tensors open on this rank: the models used last (least recently used closed first),
 * so the prepass and the units of a model, and a model probed here, share one open. */
#define AS_RUN_OPEN_SLOTS 8
struct as_run_open {
    struct as_run_open_slot {
        int model;                 /* -1: free */
        uint64_t used;             /* tick of the last use */
        struct as_tensor_file tf[AS_MAX_TENSORS];
    } slot[AS_RUN_OPEN_SLOTS];
    int cur;                       /* slot of the model opened last */
    uint64_t tick;
    uint64_t bytes_closed;         /* bytes read through handles already closed */
    double seconds_closed;         /* and the time their reads took */
};

struct as_run {
    MPI_Comm comm;
    int rank, nranks;
    struct as_config *cfg;         /* borrowed */
    struct as_plan_inputs *inputs; /* (n_models,) owned */
    struct as_plan plan;
    struct as_run_stage *st;       /* (n_models * n_stages,) owned; as_run_stage_of() */
    struct as_journal journal;
    struct as_run_open open;
    double busy;                   /* seconds this rank spent in prepass and units */
    int64_t units_done;            /* units this rank computed */
    int64_t *fail_layer;           /* (n_models,) on_error: skip: this rank's lowest failing layer
                                    * of each model, INT64_MAX for none */
    char (*fail_msg)[AS_ERROR_MSG_MAX]; /* (n_models,) its message */
};

/* With on_error: skip, whether err is a model's own failure (its inputs or a stage refusing
 * them), to be recorded while the other models go on; otherwise it ends the run. */
static inline int as_run_skippable(const struct as_run *r, const struct as_error *err)
{
    return r->cfg->on_error == AS_ON_ERROR_SKIP && (err->status == AS_ERR_INPUT || err->status == AS_ERR_CONFIG);
}

/* The plan marks model i failed with err's message (without its "rank N " prefix, so the recorded
 * message does not depend on the rank count); err is cleared. Identically on every rank. */
void as_run_fail_model(struct as_run *r, int model, struct as_error *err);

static inline struct as_run_stage *as_run_stage_of(struct as_run *r, int model, int stage)
{
    return &r->st[(size_t)model * (size_t)r->cfg->n_stages + (size_t)stage];
}

/* as_inputs.c: describe every input of every model (find, open, check, digest): inputs[i] for
 * cfg->models[i], (n_models,) allocated here, freed by the caller. Errors name model and tensor;
 * with on_error: skip a model's own failure is recorded in its inputs (failed, error) instead. */
int as_inputs_probe(const struct as_config *cfg, struct as_plan_inputs **inputs, struct as_error *err);
/* COLLECTIVE: the same, each input described once in the whole run: model i by rank i % nranks,
 * the descriptions gathered on every rank. The handles a rank opened stay in r->open. An error
 * (on_error: stop) is that of the lowest model index, whatever the rank count. */
int as_inputs_probe_all(struct as_run *r, struct as_error *err);
/* Open the inputs of `model` on this rank (or reuse them, still open) and check that they still
 * are what the plan saw. */
int as_inputs_open(struct as_run *r, int model, struct as_error *err);
/* After a unit: the inputs of `model` must still be the files the plan described (size, mtime),
 * else AS_ERR_INPUT naming the file: results are never mixed from two versions of a file. */
int as_inputs_check(struct as_run *r, int model, struct as_error *err);
void as_inputs_init(struct as_run_open *o);
void as_inputs_close(struct as_run_open *o);
uint64_t as_inputs_bytes(const struct as_run_open *o);
double as_inputs_read_seconds(const struct as_run_open *o);
/* The unit (model, stage s, layer) as a stage sees it, on the open inputs. */
void as_inputs_unit(struct as_unit *u, struct as_run *r, int model, int s, int64_t layer);

/* as_prepass.c: COLLECTIVE. Every model's stages: state set-up, then the prepass rounds (this
 * rank's units, integer sums over all ranks, journaled by rank 0, replayed on a resume). */
int as_prepass_all(struct as_run *r, struct as_error *err);

/* as_units.c: COLLECTIVE. Compute the units run_owner gives this rank, journal each, report
 * progress to rank 0 (printed there when enabled); one failing rank or a stop signal stops
 * every rank after its unit in flight. */
int as_units_all(struct as_run *r, int progress, struct as_error *err);

/* The last-phase parts buffer of (model, stage), allocated (zeroed) on first use. */
unsigned char *as_run_parts(struct as_run *r, int model, int s);

/* as_reuse.c: COLLECTIVE. With --resume, the (model, stage)s whose key a stage group of the
 * results file already at OUTPUT has are taken from it whole (rows, model block, attributes,
 * summary lines) and marked reused in the plan; returns how many. */
int as_reuse_all(struct as_run *r);
/* The key as 32 hex digits (AS_RESULTS_ATTR_KEY). */
void as_reuse_key_hex(const uint64_t key[2], char hex[33]);

/* as_summary.c: the model group attributes (provenance of every input), owned by attrs/names;
 * returns how many. */
int as_summary_model_attrs(const struct as_plan_model *mr, int full_digest, struct as_attr *attrs,
                           char (*names)[96], int max);
/* COLLECTIVE: the per-rank lines of the summary log (busy time, units, bytes read, balance,
 * profile counters) and the per-rank arrays of /run, allocated here (nranks each). */
void as_summary_ranks_all(struct as_run *r, struct as_strbuf *log, double **busy, double **bytes,
                          int64_t **units, int64_t **opens, double **read_s);
void as_summary_fmt_bytes(char *buf, size_t n, double b);

#endif
