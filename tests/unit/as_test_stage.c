/* as_test_stage.c: the serial stage runner for tests. */
#include "as_test_stage.h"

#include <stdlib.h>
#include <string.h>

int as_test_run_stage(const struct as_stage_ops *ops, const char *opts, const char *model,
                      struct as_tensor_file **in, struct as_test_stage_result *res, struct as_error *err)
{
    memset(res, 0, sizeof *res);
    res->ops = ops;
    struct as_ydoc doc;
    if (as_ydoc_parse_string(&doc, "test.yaml", opts, strlen(opts), err))
        return -1;
    int rc = ops->configure(&res->cfg, doc.root->kind == AS_YNODE_MAP && doc.root->n ? doc.root : NULL, err);
    as_ydoc_release(&doc);
    if (rc)
        return -1;
    const char *names[AS_STAGE_MAX_INPUTS];
    int n_in = ops->inputs(res->cfg, names);
    const struct as_tensor_info *info[AS_STAGE_MAX_INPUTS];
    for (int k = 0; k < n_in; k++)
        info[k] = as_tensor_file_info(in[k]);
    if (ops->shape(res->cfg, info, &res->shape, err))
        return -1;
    res->n_fields = ops->schema(res->cfg, &res->shape, res->fields);
    res->row_size = as_schema_row_size(res->fields, res->n_fields);
    res->rows = calloc((size_t)res->shape.n_layers, res->row_size ? res->row_size : 1);
    res->model_block = calloc(1, as_schema_model_size(res->fields, res->n_fields) + 8);
    size_t ss = ops->state_size ? ops->state_size(res->cfg, &res->shape) : 0;
    res->state = calloc(1, ss ? ss : 1);
    if (ops->state_init && ops->state_init(res->cfg, res->state, &res->shape, info, err))
        return -1;
    void *scratch = NULL;
    struct as_unit u = { .model = model, .shape = &res->shape, .scratch = &scratch };
    for (int k = 0; k < n_in; k++)
        u.in[k] = in[k];
    if (ops->prepass) {
        int more = 1;
        for (int round = 0; more; round++) {
            size_t n = ops->prepass_count(res->cfg, res->state, round);
            uint64_t *acc = calloc(n, sizeof *acc);
            for (int64_t l = 0; l < res->shape.n_layers; l++) {
                u.layer = l;
                if (ops->prepass(res->cfg, res->state, round, &u, acc, err)) {
                    free(acc);
                    return -1;
                }
            }
            rc = ops->prepass_reduce(res->cfg, res->state, round, acc, &more, err);
            free(acc);
            if (rc)
                return -1;
        }
    }
    for (int64_t l = 0; l < res->shape.n_layers; l++) {
        u.layer = l;
        if (ops->run(res->cfg, res->state, &u, res->rows + (size_t)l * res->row_size, err))
            return -1;
    }
    if (scratch && ops->scratch_release)
        ops->scratch_release(res->cfg, scratch);
    res->out.model_fields = res->model_block;
    res->out.log = &res->log;
    return ops->finalize(res->cfg, res->state, model, &res->shape, res->rows, &res->out, err);
}

void as_test_stage_result_release(struct as_test_stage_result *res)
{
    if (res->state && res->ops->state_release)
        res->ops->state_release(res->cfg, res->state);
    if (res->cfg && res->ops->release)
        res->ops->release(res->cfg);
    free(res->state);
    free(res->rows);
    free(res->model_block);
    as_strbuf_release(&res->log);
    memset(res, 0, sizeof *res);
}

const double *as_test_field(const struct as_test_stage_result *res, const char *name, int64_t layer)
{
    for (int k = 0; k < res->n_fields; k++)
        if (!strcmp(res->fields[k].name, name)) {
            size_t off = as_schema_offset(res->fields, res->n_fields, k);
            if (res->fields[k].per_layer)
                return (const double *)(res->rows + (size_t)layer * res->row_size + off);
            return (const double *)(res->model_block + off);
        }
    return NULL;
}
