/* as_exec.h: the serial executor: one stage on one model in one process, no MPI.
 *
 * The building blocks are what the MPI driver does per (model, stage): as_exec_shape (sizes,
 * schema), as_exec_state_init (state, before the prepass), prepass rounds (each unit adds into
 * the round's counters; the sum over all units goes to as_exec_prepass_reduce), run of every
 * unit into its row, finalize from all rows. A driver spreads units over ranks and sums the
 * counters across them; as_exec_model does it all in one process, units in layer order, and
 * gives bitwise the rows, model block and attributes the driver writes (prepass sums are
 * integers, rows depend only on their unit's inputs).
 *
 * Errors are returned as the stage sets them (no prefix added): a driver adds its own context.
 *
 *   struct as_exec ex;
 *   if (as_exec_model(&ex, &as_stage_histsim, cfg, "m", in, 0, &err) == 0)
 *       use ex.rows, ex.model_block, ex.out.attrs, as_strbuf_str(&ex.log) via ex.schema;
 *   as_exec_release(&ex);      (always, also after a failure)
 */
#ifndef AS_PIPELINE_AS_EXEC_H
#define AS_PIPELINE_AS_EXEC_H

#include <stddef.h>
#include <stdint.h>

#include "as_stage.h"

struct as_exec {
    const struct as_stage_ops *ops;
    const void *cfg;               /* borrowed: the stage's configured options */
    int n_inputs;                  /* ops->inputs() */
    const char *inputs[AS_STAGE_MAX_INPUTS]; /* tensor names, borrowed from cfg */
    struct as_stage_shape shape;
    struct as_schema schema;       /* fields and their layout */
    struct as_tensor_info info[AS_STAGE_MAX_INPUTS]; /* copies of the inputs' descriptions */
    void *state;                   /* owned (zeroed, state_size bytes), after as_exec_state_init */
    void *scratch;                 /* the stage's per-process slot (as_unit.scratch) */
    /* as_exec_model's results (owned; NULL with the building blocks alone) */
    unsigned char *rows;           /* (shape.n_layers, schema.row_size) */
    unsigned char *model_block;    /* (schema.model_size) */
    struct as_stage_out out;       /* attributes; out.model_fields = model_block, out.log = &log */
    struct as_strbuf log;          /* summary-log lines */
};

/* Sizes and schema: ops->shape(cfg, info) (n_heads_hint: the model's head count if known,
 * else 0; see as_stage_ops.shape), then ops->schema(). ex is reset first; release it with
 * as_exec_release whatever this returns. cfg and the info the pointers reach are borrowed only
 * during the call (info is copied), cfg until as_exec_release. */
int as_exec_shape(struct as_exec *ex, const struct as_stage_ops *ops, const void *cfg,
                  const struct as_tensor_info *const *info, int64_t n_heads_hint, struct as_error *err);
/* The zeroed per-model state and ops->state_init: before the first prepass round. */
int as_exec_state_init(struct as_exec *ex, struct as_error *err);
/* as_exec_shape then as_exec_state_init. */
int as_exec_begin(struct as_exec *ex, const struct as_stage_ops *ops, const void *cfg,
                  const struct as_tensor_info *const *info, int64_t n_heads_hint, struct as_error *err);

/* The unit of `layer` (0 <= layer < shape.n_layers) of model `model` (borrowed), reading the open
 * inputs in[] (ops->inputs() order, borrowed; the unit is valid while they and ex are). */
void as_exec_unit(struct as_exec *ex, const char *model, int64_t layer, struct as_tensor_file *const *in,
                  struct as_unit *u);

/* Prepass: whether the stage has one, and the counters of `round` (0 when it has none). */
int as_exec_has_prepass(const struct as_exec *ex);
size_t as_exec_prepass_count(const struct as_exec *ex, int round);
/* One unit's share of round `round`: adds into acc (as_exec_prepass_count(round) counters, zeroed
 * by the caller before the first unit of the round). */
int as_exec_prepass_unit(struct as_exec *ex, int round, struct as_unit *u, uint64_t *acc, struct as_error *err);
/* The round's sum over every unit of the model; *more = 0 when it was the last round. */
int as_exec_prepass_reduce(struct as_exec *ex, int round, const uint64_t *sum, int *more, struct as_error *err);

/* One unit's row (schema.row_size bytes; the driver's row of u->layer). A stage with run_part
 * computes the whole layer as every part of every phase, in order, then combine(): what a layer
 * split into units finer than it gives, bit for bit. */
int as_exec_run_unit(struct as_exec *ex, struct as_unit *u, unsigned char *row, struct as_error *err);

/* Units finer than a layer: whether the stage splits layers (shape.n_phases > 0), the byte span of
 * parts [p0, p1) of phase f in its layer buffer, one unit's parts (u->phase, u->part0, u->part1)
 * into out (the span's bytes; prev: the layer's phase-0 buffer in phase 1), and the row of a
 * layer from its last phase's buffer. */
int as_exec_splits(const struct as_exec *ex);
void as_exec_part_span(const struct as_exec *ex, int phase, int64_t p0, int64_t p1, size_t *off, size_t *len);
int as_exec_run_part(struct as_exec *ex, struct as_unit *u, const unsigned char *prev, unsigned char *out,
                     struct as_error *err);
int as_exec_combine(struct as_exec *ex, int64_t layer, const unsigned char *last, unsigned char *row,
                    struct as_error *err);

/* From all rows (shape.n_layers rows in layer order): the model block (out->model_fields,
 * schema.model_size bytes, caller's), attributes and log lines (out->log) through ops->finalize. */
int as_exec_finalize(struct as_exec *ex, const char *model, const unsigned char *rows, struct as_stage_out *out,
                     struct as_error *err);

/* The whole stage on one model, in this process: as_exec_begin, prepass rounds (each round sums
 * every layer's counters in layer order), run every layer, finalize; results in ex->rows,
 * ex->model_block, ex->out, ex->log (owned by ex). in[]: open inputs in ops->inputs() order
 * (borrowed). On failure err says why and ex holds what was done; as_exec_release it either way. */
int as_exec_model(struct as_exec *ex, const struct as_stage_ops *ops, const void *cfg, const char *model,
                  struct as_tensor_file *const *in, int64_t n_heads_hint, struct as_error *err);

/* Field `name` of layer `layer` (per-layer fields; layer ignored for per-model ones) in
 * as_exec_model's results; NULL if the schema has no such field. Borrowed from ex. */
const void *as_exec_field(const struct as_exec *ex, const char *name, int64_t layer);

/* Frees the state (ops->state_release), the scratch slot (ops->scratch_release), the results.
 * Leaves cfg to its owner. Safe on a zeroed or already released ex. */
void as_exec_release(struct as_exec *ex);

#endif
