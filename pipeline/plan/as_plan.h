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

struct as_unit_desc {
    int model;                     /* index into the config's models */
    int64_t layer;
    double cost;                   /* estimated, relative */
    int64_t bytes;                 /* input bytes the unit reads */
};

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
    int *run_owner;                /* (n_units,) rank that computes a unit in this attempt, -1: done */
    size_t n_todo;                 /* units with run_owner >= 0 */
};

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

/* A unit is todo while any of its stages is; todo units are assigned over nranks ranks (LPT on the
 * cost of the stages left, the same rule as a fresh plan, so the result does not depend on the
 * rank count of the attempts before): fills run_owner and n_todo. */
void as_plan_reassign(struct as_plan *p);

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
