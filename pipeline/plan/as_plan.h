/* as_plan.h: the plan of a run, a pure function of (config, input descriptions, journal records):
 * each model's stages with their shapes and result schemas, the (model, layer) work units with
 * their costs, and which rank owns each unit. No MPI, no file I/O: the inputs are described by
 * the caller (pipeline/run probes the files), so every function here is testable for any rank
 * count in one process, resumes at another rank count included.
 *
 *   inputs (probed) --as_plan_build--> units + owner[]    (LPT over nranks)
 *   journal records --as_plan_mark_done--> stage_done[]   (by (model, stage) key; others ignored)
 *   earlier results --as_plan_mark_reused--> stage_done[] (a whole (model, stage))
 *                   --as_plan_reassign---> run_owner[]    (the work left, LPT over nranks)
 *
 * Finished work is keyed per (model, stage) by what determines it (as_plan_model.key): the tool's
 * results-relevant version, the stage and its options, the model's head hint and synthetic spec,
 * and each input the stage reads (path, key, dtype, shape, size, mtime, digest). Not by the
 * model's name or position, nor by anything else in the config, so a sweep that grows, shrinks or
 * is reordered reuses every (model, stage) whose key is unchanged. */
#ifndef AS_PLAN_AS_PLAN_H
#define AS_PLAN_AS_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "as_config.h"
#include "as_error.h"
#include "as_reader.h"
#include "as_stage.h"
#include "as_util.h"

/* A (model, layer) unit, or a task: what one rank computes at once. A task is a whole layer
 * (stage -1: every stage of the layer still to do that is not split) or a piece of one split
 * stage of a layer: parts [part0, part1) of one phase (units finer than a layer: as_stage.h). */
struct as_unit_desc {
    int model;                     /* index into the config's models */
    int64_t layer;
    double cost;                   /* estimated, relative */
    int64_t bytes;                 /* input bytes the unit reads */
    int stage;                     /* tasks: -1 whole layer, else the split stage */
    int phase;
    int64_t part0, part1;
};

/* Config `split:` values besides a count of pieces per phase (>= 1). */
#define AS_SPLIT_AUTO (-1)
#define AS_SPLIT_OFF 0
/* `split: auto` splits no layer's stage below this cost (about 50 ms of work) and cuts no phase-0
 * piece below it (phase-1 pieces: 1/16 of it), so small layers stay whole (as_plan_pieces). */
#define AS_PLAN_MIN_PIECE_COST 16777216.0

/* One input tensor of a model, as found and opened before the plan (pipeline/run/as_inputs.c). */
struct as_plan_input {
    char name[64];                 /* tensor name, e.g. "qk_mean" */
    char path[AS_PATH_MAX];        /* file, or the synthetic spec */
    char key[256];                 /* key inside a dict-like file, "" for none */
    const struct as_reader_ops *ops;
    struct as_tensor_info info;    /* dtype and shape */
    char digest[17];               /* provenance digest, 16 hex digits */
    int64_t size, mtime;           /* bytes and mtime (ns) of the file; 0 for synthetic */
};

/* The inputs of one model, in the order as_plan_input_names() gives. */
struct as_plan_inputs {
    int n;
    struct as_plan_input in[AS_MAX_TENSORS];
    int failed;                    /* 1: describing them failed (on_error: skip); error says why */
    char error[AS_ERROR_MSG_MAX];
};

/* One stage on one model. */
struct as_plan_stage {
    int active;
    struct as_stage_shape shape;
    struct as_field fields[AS_STAGE_MAX_FIELDS];
    int n_fields;
    size_t row_size;               /* bytes of one per-layer row */
    size_t model_size;             /* bytes of the per-model block */
    int in_idx[AS_STAGE_MAX_INPUTS]; /* the stage's inputs() as indices into the model's inputs */
    int n_inputs;
};

struct as_plan_model {
    const struct as_model_cfg *m;  /* borrowed from the config */
    const struct as_plan_inputs *in; /* borrowed from the caller */
    int64_t n_layers, n_heads, seq_len;
    struct as_plan_stage st[AS_MAX_STAGES]; /* config stage order */
    uint64_t key[AS_MAX_STAGES][2]; /* what determines each stage's results (128-bit) */
    unsigned char reused[AS_MAX_STAGES]; /* 1: the whole (model, stage) comes from earlier results */
    size_t first_unit;             /* units of this model: first_unit + layer */
    int failed;                    /* 1: the model failed (on_error: skip): no units, no results */
    char error[AS_ERROR_MSG_MAX];  /* why, one line */
};

struct as_plan {
    const struct as_config *cfg;   /* borrowed */
    struct as_plan_model *models;  /* (n_models,) owned */
    int n_models;
    struct as_unit_desc *units;    /* (n_units,) owned, model-major, layer order */
    size_t n_units;
    int nranks;
    int *owner;                    /* (n_units,) rank of a unit's prepass work and of its rows */
    double *load;                  /* (nranks,) summed cost per rank under owner */
    unsigned char *stage_done;     /* (n_units, n_stages) 1: that stage of the unit is finished
                                    * (journal, earlier results) or has nothing to do */
    int *run_owner;                /* (n_units,) rank of the unit's whole-layer task in this attempt, -1: none */
    size_t n_todo;                 /* units with anything left to do (whole or in pieces) */
    /* units finer than a layer (this attempt) */
    unsigned char *split;          /* (n_units, n_stages) 1: that stage of that layer runs in pieces */
    unsigned char *from_parts;     /* (n_units, n_stages) 1: its row is combined from last-phase parts
                                    * (split now, or all its parts finished earlier) */
    unsigned char **part_done;     /* (n_models * n_stages) of splitting stages: (n_layers, last-phase
                                    * parts) 1 = finished; NULL for the others */
    struct as_unit_desc *tasks;    /* (n_tasks,) in (model, layer, whole first, stage, phase, part) order */
    size_t n_tasks;
    int *task_owner;               /* (n_tasks,) */
    size_t *unit_task;             /* (n_units + 1,) unit u's tasks are [unit_task[u], unit_task[u + 1]) */
    int n_phases;                  /* 2 when some task is a phase-1 piece, else 1 */
    double balance;                /* predicted: total cost / (nranks * sum over phases of the max load) */
};

/* The last-phase parts of (model, stage) as a flag array, or NULL when the stage does not split. */
static inline unsigned char *as_plan_parts_done(const struct as_plan *p, int model, int stage)
{
    return p->part_done ? p->part_done[(size_t)model * (size_t)p->cfg->n_stages + (size_t)stage] : NULL;
}

/* Whether stage s of unit u still has to be computed. */
static inline int as_plan_stage_todo(const struct as_plan *p, size_t u, int s)
{
    return !p->stage_done[u * (size_t)p->cfg->n_stages + (size_t)s];
}

/* The tensor names the config's stages read, each once, in stage order then inputs() order:
 * the order of a model's struct as_plan_inputs. Returns the count (<= max). Names borrowed from
 * the stages' configs. */
int as_plan_input_names(const struct as_config *cfg, const char **names, int max);

/* Build the plan: shapes and schemas of every (model, stage) from the described inputs
 * (inputs[i] for cfg->models[i], borrowed until as_plan_release), their keys, units, costs, and
 * the LPT assignment to nranks ranks (owner == run_owner, nothing done). Errors name the model and
 * the stage; with cfg->on_error == skip a model whose inputs failed or whose stage refuses them is
 * marked failed (no units) instead. Released with as_plan_release, also after an error. */
int as_plan_build(struct as_plan *p, const struct as_config *cfg, const struct as_plan_inputs *inputs, int nranks,
                  struct as_error *err);
void as_plan_release(struct as_plan *p);

/* Journal replay: stage `layer` of every (model, stage) whose key is `key` is finished when the
 * record's row of row_len bytes fits it. Calls found(model, stage, arg) for each (model, stage) it
 * marks (found may be NULL) and returns how many, 0 for a record of another plan. */
int as_plan_mark_done(struct as_plan *p, const uint64_t key[2], int64_t layer, uint64_t row_len,
                      void (*found)(int model, int stage, void *arg), void *arg);

/* The whole (model, stage) comes from an earlier results file: every layer done, no prepass, no
 * finalize (reused[stage] = 1). */
void as_plan_mark_reused(struct as_plan *p, int model, int stage);

/* The model failed (on_error: skip): its units leave the plan; error is its one-line message. */
void as_plan_fail_model(struct as_plan *p, int model, const char *error);

/* Journal replay of a piece: parts [p0, p1) of the last phase of stage `layer` of every (model,
 * stage) whose key is `key` are finished when a span of len bytes fits them; a layer whose parts
 * are all finished is done (from_parts). found as in as_plan_mark_done; returns how many. */
int as_plan_mark_parts(struct as_plan *p, const uint64_t key[2], int64_t layer, int64_t p0, int64_t p1,
                       uint64_t len, void (*found)(int model, int stage, void *arg), void *arg);

/* This attempt's tasks from what is left (the same rule as a fresh plan, so the result does not
 * depend on the rank count of the attempts before): the stages left of each unit run as one
 * whole-layer task, except that a stage that splits layers runs in pieces when cfg->split asks
 * (a count, or auto: see as_plan_pieces) or when some of its parts are already finished. Tasks
 * are assigned with as_plan_schedule; fills tasks, task_owner, split, from_parts, run_owner,
 * n_todo, load and balance. */
void as_plan_reassign(struct as_plan *p);

/* How many pieces each phase of one (model, layer, stage) of cost `cost` (unit_cost) runs in:
 * n[f] in [1, parts[f]], or n[0] = 0 when it stays whole. split: a count, AS_SPLIT_OFF, or
 * AS_SPLIT_AUTO with target[f] the cost a piece of phase f should not exceed (1/16 of a rank's
 * share of that phase's work: phases are balanced one after the other, and LPT over 16 pieces
 * per rank balances to a few percent); auto splits a layer's stage when its cost exceeds
 * 4 * target[0] (a quarter of a rank's share: below, whole layers balance well) and
 * AS_PLAN_MIN_PIECE_COST. */
void as_plan_pieces(const struct as_stage_shape *sh, double cost, const double target[2], int split, int64_t n[2]);

/* Assign tasks (whole layers and pieces) to nranks ranks: LPT (as_plan_assign) over the tasks of
 * phase 0 (whole layers and phase-0 pieces), then over the phase-1 pieces, which start after
 * the phase-0 buffers are exchanged. load[r] (may be NULL) the summed cost per rank; returns the
 * predicted balance total / (nranks * (max phase-0 load + max phase-1 load)). */
double as_plan_schedule(const struct as_unit_desc *tasks, size_t n, int nranks, int *owner, double *load);

/* The text the key of (model, stage) is a hash of (for messages and tests). */
void as_plan_key_text(const struct as_plan *p, int model, int stage, struct as_strbuf *sb);

/* The results-relevant content of the run, one line per item (inputs with path, key, dtype, shape,
 * size, mtime, digest; stages with their options): a resume must see the same. */
void as_plan_describe(const struct as_plan *p, struct as_strbuf *sb);

/* Assign n units to nranks ranks: longest-processing-time first (units by decreasing cost, ties
 * by (model, layer)), each to the least-loaded rank (ties: lowest rank). owner[i] receives the
 * rank of unit i; load[r] (may be NULL, nranks entries) the summed cost per rank. Deterministic. */
void as_plan_assign(const struct as_unit_desc *units, size_t n, int nranks, int *owner, double *load);

/* Load balance of an assignment: mean load / max load (1 = perfect). */
double as_plan_balance(const double *load, int nranks);

#endif
