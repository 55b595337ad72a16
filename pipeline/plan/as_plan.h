/* as_plan.h: the plan of a run, a pure function of (config, input descriptions, journal records):
 * each model's stages with their shapes and result schemas, the (model, layer) work units with
 * their costs, and which rank owns each unit. No MPI, no file I/O: the inputs are described by
 * the caller (pipeline/run probes the files), so every function here is testable for any rank
 * count in one process, resumes at another rank count included.
 *
 *   inputs (probed) --as_plan_build--> units + owner[]    (LPT over nranks)
 *   journal records --as_plan_mark_done--> done[]         (records that do not fit are ignored)
 *                   --as_plan_reassign---> run_owner[]    (the units left, LPT over nranks) */
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
    size_t first_unit;             /* units of this model: first_unit + layer */
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
    unsigned char *done;           /* (n_units,) 1: finished in an earlier attempt (journal) */
    int *run_owner;                /* (n_units,) rank that computes a unit in this attempt, -1: done */
    size_t n_todo;                 /* units with run_owner >= 0 */
};

/* The tensor names the config's stages read, each once, in stage order then inputs() order:
 * the order of a model's struct as_plan_inputs. Returns the count (<= max). Names borrowed from
 * the stages' configs. */
int as_plan_input_names(const struct as_config *cfg, const char **names, int max);

/* Build the plan: shapes and schemas of every (model, stage) from the described inputs
 * (inputs[i] for cfg->models[i], borrowed until as_plan_release), units, costs, and the LPT
 * assignment to nranks ranks (owner == run_owner, nothing done). Errors name the model and the
 * stage. Released with as_plan_release, also after an error. */
int as_plan_build(struct as_plan *p, const struct as_config *cfg, const struct as_plan_inputs *inputs, int nranks,
                  struct as_error *err);
void as_plan_release(struct as_plan *p);

/* Bytes of the journal payload of unit u: the rows of every stage that covers its layer, in
 * stage order. */
size_t as_plan_unit_payload(const struct as_plan *p, size_t u);

/* Journal replay: mark (model, layer) finished when a record of payload_len bytes fits this plan.
 * Returns the unit's index, or -1 (and changes nothing) for a record of another plan. */
long as_plan_mark_done(struct as_plan *p, int64_t model, int64_t layer, uint64_t payload_len);

/* Assign the units not done over nranks ranks (LPT, the same rule as a fresh plan, so the result
 * does not depend on the rank count of the attempts before): fills run_owner and n_todo. */
void as_plan_reassign(struct as_plan *p);

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
