/* as_test_stage.h: run one stage on one model in one process through the serial executor
 * (pipeline/stage/as_exec.h), exactly as the MPI driver would, so stage tests need no MPI. */
#ifndef AS_TESTS_AS_TEST_STAGE_H
#define AS_TESTS_AS_TEST_STAGE_H

#include "as_exec.h"
#include "as_stage.h"

struct as_test_stage_result {
    const struct as_stage_ops *ops;
    void *cfg;                     /* owned: ops->release */
    struct as_exec ex;             /* shape, schema, rows, model block, out (attributes), log */
};

/* ops->configure from YAML text (NULL: no node, the defaults). The stage must not keep pointers
 * into the document, which is freed before this returns. *cfg owned by the caller (ops->release). */
int as_test_stage_configure(const struct as_stage_ops *ops, const char *yaml, void **cfg, struct as_error *err);

/* Configure `ops` from YAML `opts` ("{}" for defaults), then as_exec_model on the open tensor
 * files `in` (in the order ops->inputs() gives; borrowed) with no head-count hint. Release res
 * whatever this returns. */
int as_test_run_stage(const struct as_stage_ops *ops, const char *opts, const char *model,
                      struct as_tensor_file **in, struct as_test_stage_result *res, struct as_error *err);
void as_test_stage_result_release(struct as_test_stage_result *res);
/* Pointer to field `name` inside the rows of layer l (per-layer) or the model block; NULL if absent. */
const double *as_test_field(const struct as_test_stage_result *res, const char *name, int64_t layer);
/* The attribute called `name` of a finalize's out, or NULL. */
const struct as_attr *as_test_attr(const struct as_stage_out *out, const char *name);

#endif
