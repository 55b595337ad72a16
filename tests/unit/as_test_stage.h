/* as_test_stage.h: run one stage on one model in one process (prepass rounds summed locally),
 * exactly as the MPI driver would, so stage tests need no MPI. */
#ifndef AS_TESTS_AS_TEST_STAGE_H
#define AS_TESTS_AS_TEST_STAGE_H

#include "as_stage.h"

struct as_test_stage_result {
    struct as_stage_shape shape;
    struct as_field fields[AS_STAGE_MAX_FIELDS];
    int n_fields;
    size_t row_size;
    unsigned char *rows;           /* owned */
    unsigned char *model_block;    /* owned */
    struct as_stage_out out;
    struct as_strbuf log;
    void *cfg, *state;
    const struct as_stage_ops *ops;
};

/* Configure `ops` from YAML `opts` ("{}" for defaults), open nothing: `in` are open tensor files
 * in the order ops->inputs() gives. Runs prepass, every layer, finalize. */
int as_test_run_stage(const struct as_stage_ops *ops, const char *opts, const char *model,
                      struct as_tensor_file **in, struct as_test_stage_result *res, struct as_error *err);
void as_test_stage_result_release(struct as_test_stage_result *res);
/* Pointer to field `name` inside the rows of layer l (per-layer) or the model block; NULL if absent. */
const double *as_test_field(const struct as_test_stage_result *res, const char *name, int64_t layer);

#endif
