/* as_exec.c: the serial executor (one stage, one model, one process); see as_exec.h. */
#include "as_exec.h"

#include <stdlib.h>
#include <string.h>

#include "as_util.h"

int as_exec_shape(struct as_exec *ex, const struct as_stage_ops *ops, const void *cfg,
                  const struct as_tensor_info *const *info, int64_t n_heads_hint, struct as_error *err)
{
    memset(ex, 0, sizeof *ex);
    ex->ops = ops;
    ex->cfg = cfg;
    ex->n_inputs = ops->inputs(cfg, ex->inputs);
    AS_ASSERT(ex->n_inputs >= 0 && ex->n_inputs <= AS_STAGE_MAX_INPUTS);
    const struct as_tensor_info *ip[AS_STAGE_MAX_INPUTS] = { 0 };
    for (int k = 0; k < ex->n_inputs; k++) {
        ex->info[k] = *info[k];
        ip[k] = &ex->info[k];
    }
    ex->shape.n_heads = n_heads_hint;
    if (ops->shape(cfg, ip, &ex->shape, err))
        return -1;
    /* a stage splits layers with all three of run_part, part_offset and combine, or none */
    AS_ASSERT(!ops->run_part == !ops->part_offset && !ops->run_part == !ops->combine && (ops->run_part || ops->run));
    AS_ASSERT(ex->shape.n_phases >= 0 && ex->shape.n_phases <= 2 && (ops->run_part || !ex->shape.n_phases));
    for (int f = 0; f < ex->shape.n_phases; f++)
        AS_ASSERT(ex->shape.parts[f] >= 1);
    as_schema_of(&ex->schema, ops, cfg, &ex->shape);
    return 0;
}

int as_exec_state_init(struct as_exec *ex, struct as_error *err)
{
    const struct as_stage_ops *ops = ex->ops;
    AS_ASSERT(!ex->state);
    size_t ss = ops->state_size ? ops->state_size(ex->cfg, &ex->shape) : 0;
    ex->state = as_xcalloc(1, ss);
    if (!ops->state_init)
        return 0;
    const struct as_tensor_info *ip[AS_STAGE_MAX_INPUTS] = { 0 };
    for (int k = 0; k < ex->n_inputs; k++)
        ip[k] = &ex->info[k];
    return ops->state_init(ex->cfg, ex->state, &ex->shape, ip, err);
}

int as_exec_begin(struct as_exec *ex, const struct as_stage_ops *ops, const void *cfg,
                  const struct as_tensor_info *const *info, int64_t n_heads_hint, struct as_error *err)
{
    if (as_exec_shape(ex, ops, cfg, info, n_heads_hint, err))
        return -1;
    return as_exec_state_init(ex, err);
}

void as_exec_unit(struct as_exec *ex, const char *model, int64_t layer, struct as_tensor_file *const *in,
                  struct as_unit *u)
{
    AS_ASSERT(layer >= 0 && layer < ex->shape.n_layers);
    memset(u, 0, sizeof *u);
    u->model = model;
    u->layer = layer;
    u->shape = &ex->shape;
    u->scratch = &ex->scratch;
    u->part0 = 0;
    u->part1 = as_exec_splits(ex) ? ex->shape.parts[0] : 1;
    for (int k = 0; k < ex->n_inputs; k++)
        u->in[k] = in[k];
}

int as_exec_has_prepass(const struct as_exec *ex)
{
    return ex->ops->prepass != NULL;
}

size_t as_exec_prepass_count(const struct as_exec *ex, int round)
{
    return ex->ops->prepass ? ex->ops->prepass_count(ex->cfg, ex->state, round) : 0;
}

int as_exec_prepass_unit(struct as_exec *ex, int round, struct as_unit *u, uint64_t *acc, struct as_error *err)
{
    AS_ASSERT(ex->state && ex->ops->prepass);
    return ex->ops->prepass(ex->cfg, ex->state, round, u, acc, err);
}

int as_exec_prepass_reduce(struct as_exec *ex, int round, const uint64_t *sum, int *more, struct as_error *err)
{
    AS_ASSERT(ex->state && ex->ops->prepass_reduce);
    return ex->ops->prepass_reduce(ex->cfg, ex->state, round, sum, more, err);
}

int as_exec_splits(const struct as_exec *ex)
{
    return ex->ops->run_part && ex->shape.n_phases > 0;
}

void as_exec_part_span(const struct as_exec *ex, int phase, int64_t p0, int64_t p1, size_t *off, size_t *len)
{
    AS_ASSERT(as_exec_splits(ex) && phase >= 0 && phase < ex->shape.n_phases && 0 <= p0 && p0 <= p1 &&
              p1 <= ex->shape.parts[phase]);
    size_t a = ex->ops->part_offset(ex->cfg, &ex->shape, phase, p0), b = ex->ops->part_offset(ex->cfg, &ex->shape, phase, p1);
    AS_ASSERT(a <= b && b <= ex->shape.phase_bytes[phase]);
    *off = a;
    *len = b - a;
}

int as_exec_run_part(struct as_exec *ex, struct as_unit *u, const unsigned char *prev, unsigned char *out,
                     struct as_error *err)
{
    AS_ASSERT(ex->state && as_exec_splits(ex) && u->layer >= 0 && u->layer < ex->shape.n_layers &&
              u->phase >= 0 && u->phase < ex->shape.n_phases && (u->phase == 0) == (prev == NULL));
    return ex->ops->run_part(ex->cfg, ex->state, u, prev, out, err);
}

int as_exec_combine(struct as_exec *ex, int64_t layer, const unsigned char *last, unsigned char *row,
                    struct as_error *err)
{
    AS_ASSERT(ex->state && as_exec_splits(ex));
    return ex->ops->combine(ex->cfg, ex->state, &ex->shape, layer, last, row, err);
}

int as_exec_run_unit(struct as_exec *ex, struct as_unit *u, unsigned char *row, struct as_error *err)
{
    AS_ASSERT(ex->state && u->layer >= 0 && u->layer < ex->shape.n_layers);
    if (!as_exec_splits(ex))
        return ex->ops->run(ex->cfg, ex->state, u, row, err);
    /* every part of every phase, then combine: the same records as any split */
    unsigned char *buf[2] = { NULL, NULL };
    int rc = 0, nph = ex->shape.n_phases;
    for (int f = 0; f < nph && !rc; f++) {
        buf[f] = as_xcalloc(1, ex->shape.phase_bytes[f] ? ex->shape.phase_bytes[f] : 1);
        u->phase = f;
        u->part0 = 0;
        u->part1 = ex->shape.parts[f];
        rc = ex->ops->run_part(ex->cfg, ex->state, u, f ? buf[0] : NULL, buf[f], err);
    }
    u->phase = 0;
    u->part0 = 0;
    u->part1 = ex->shape.parts[0];
    if (!rc)
        rc = ex->ops->combine(ex->cfg, ex->state, &ex->shape, u->layer, buf[nph - 1], row, err);
    free(buf[0]);
    free(buf[1]);
    return rc;
}

int as_exec_finalize(struct as_exec *ex, const char *model, const unsigned char *rows, struct as_stage_out *out,
                     struct as_error *err)
{
    AS_ASSERT(ex->state);
    return ex->ops->finalize(ex->cfg, ex->state, model, &ex->shape, rows, out, err);
}

/* Every prepass round over the layers in layer order; the sum is the driver's, whatever the ranks. */
static int exec_prepass(struct as_exec *ex, const char *model, struct as_tensor_file *const *in,
                        struct as_error *err)
{
    int more = 1;
    for (int round = 0; more; round++) {
        size_t n = as_exec_prepass_count(ex, round);
        uint64_t *acc = as_xcalloc(n, sizeof *acc);
        int rc = 0;
        for (int64_t l = 0; l < ex->shape.n_layers && !rc; l++) {
            struct as_unit u;
            as_exec_unit(ex, model, l, in, &u);
            rc = as_exec_prepass_unit(ex, round, &u, acc, err);
        }
        if (!rc)
            rc = as_exec_prepass_reduce(ex, round, acc, &more, err);
        free(acc);
        if (rc)
            return -1;
    }
    return 0;
}

int as_exec_model(struct as_exec *ex, const struct as_stage_ops *ops, const void *cfg, const char *model,
                  struct as_tensor_file *const *in, int64_t n_heads_hint, struct as_error *err)
{
    const struct as_tensor_info *info[AS_STAGE_MAX_INPUTS] = { 0 };
    const char *names[AS_STAGE_MAX_INPUTS];
    int n_in = ops->inputs(cfg, names);
    AS_ASSERT(n_in >= 0 && n_in <= AS_STAGE_MAX_INPUTS);
    for (int k = 0; k < n_in; k++)
        info[k] = as_tensor_file_info(in[k]);
    if (as_exec_begin(ex, ops, cfg, info, n_heads_hint, err))
        return -1;
    size_t rs = ex->schema.row_size, ms = ex->schema.model_size;
    ex->rows = as_xcalloc((size_t)(ex->shape.n_layers > 0 ? ex->shape.n_layers : 0), rs);
    ex->model_block = as_xcalloc(1, ms);
    if (as_exec_has_prepass(ex) && exec_prepass(ex, model, in, err))
        return -1;
    for (int64_t l = 0; l < ex->shape.n_layers; l++) {
        struct as_unit u;
        as_exec_unit(ex, model, l, in, &u);
        if (as_exec_run_unit(ex, &u, as_schema_row(&ex->schema, ex->rows, l), err))
            return -1;
    }
    ex->out.model_fields = ex->model_block;
    ex->out.log = &ex->log;
    return as_exec_finalize(ex, model, ex->rows, &ex->out, err);
}

const void *as_exec_field(const struct as_exec *ex, const char *name, int64_t layer)
{
    int k = as_schema_find(&ex->schema, name);
    if (k < 0)
        return NULL;
    if (ex->schema.fields[k].per_layer) {
        AS_ASSERT(ex->rows && layer >= 0 && layer < ex->shape.n_layers);
        return as_schema_row_const(&ex->schema, ex->rows, layer) + ex->schema.offset[k];
    }
    AS_ASSERT(ex->model_block);
    return ex->model_block + ex->schema.offset[k];
}

void as_exec_release(struct as_exec *ex)
{
    if (ex->ops) {
        if (ex->scratch && ex->ops->scratch_release)
            ex->ops->scratch_release(ex->cfg, ex->scratch);
        if (ex->state && ex->ops->state_release)
            ex->ops->state_release(ex->cfg, ex->state);
    }
    free(ex->state);
    free(ex->rows);
    free(ex->model_block);
    as_strbuf_release(&ex->log);
    memset(ex, 0, sizeof *ex);
}
