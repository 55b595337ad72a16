/* as_test_stage.c: the stage runner of the tests, on the serial executor. */
#include "as_test_stage.h"

#include <stdlib.h>
#include <string.h>

int as_test_stage_configure(const struct as_stage_ops *ops, const char *yaml, void **cfg, struct as_error *err)
{
    *cfg = NULL;
    if (!yaml)
        return ops->configure(cfg, NULL, err);
    struct as_ydoc doc;
    if (as_ydoc_parse_string(&doc, "test.yaml", yaml, strlen(yaml), err))
        return -1;
    int rc = ops->configure(cfg, doc.root, err);
    as_ydoc_release(&doc);
    return rc;
}

int as_test_run_stage(const struct as_stage_ops *ops, const char *opts, const char *model,
                      struct as_tensor_file **in, struct as_test_stage_result *res, struct as_error *err)
{
    memset(res, 0, sizeof *res);
    res->ops = ops;
    if (as_test_stage_configure(ops, opts, &res->cfg, err))
        return -1;
    return as_exec_model(&res->ex, ops, res->cfg, model, in, 0, err);
}

void as_test_stage_result_release(struct as_test_stage_result *res)
{
    as_exec_release(&res->ex);
    if (res->cfg && res->ops->release)
        res->ops->release(res->cfg);
    memset(res, 0, sizeof *res);
}

const double *as_test_field(const struct as_test_stage_result *res, const char *name, int64_t layer)
{
    return as_exec_field(&res->ex, name, layer);
}

const struct as_attr *as_test_attr(const struct as_stage_out *out, const char *name)
{
    for (int a = 0; a < out->n_attrs; a++)
        if (!strcmp(out->attrs[a].name, name))
            return &out->attrs[a];
    return NULL;
}
