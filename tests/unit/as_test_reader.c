/* as_test_reader.c: slab checks shared by the reader tests. */
#include "as_test_reader.h"

#include <stdio.h>
#include <stdlib.h>

#include "as_test.h"

#define ATOL_EXACT 0.0 /* fixtures hold values every type widens to exactly */
#define RTOL_EXACT 0.0

/* want[i] for the slab start/count of a C-order tensor of `shape` whose values are `all` */
void as_test_slab_expect(int nd, const int64_t *shape, const double *all, const int64_t *start, const int64_t *count,
                        double *want)
{
    int64_t n = as_shape_numel(nd, count), idx[AS_MAX_DIMS] = { 0 };
    for (int64_t k = 0; k < n; k++) {
        int64_t flat = 0;
        for (int d = 0; d < nd; d++)
            flat = flat * shape[d] + start[d] + idx[d];
        want[k] = all[flat];
        for (int d = nd - 1; d >= 0; d--) {
            if (++idx[d] < count[d])
                break;
            idx[d] = 0;
        }
    }
}

/* Read slab start/count in both output types and compare with the json values. */
void as_test_check_slab(struct as_tensor_file *tf, const double *all, const int64_t *start, const int64_t *count,
                       const char *what)
{
    const struct as_tensor_info *ti = as_tensor_file_info(tf);
    int64_t n = as_shape_numel(ti->ndim, count);
    double *want = malloc((size_t)(n ? n : 1) * sizeof *want), *got = malloc((size_t)(n ? n : 1) * sizeof *got);
    float *got32 = malloc((size_t)(n ? n : 1) * sizeof *got32);
    AS_ASSERT(want && got && got32);
    as_test_slab_expect(ti->ndim, ti->shape, all, start, count, want);
    struct as_error err = { 0 };
    int rc = as_tensor_file_read(tf, start, count, AS_DTYPE_F64, got, &err);
    CHECK_MSG(rc == 0, "%s %s: %s", tf->path, what, err.msg);
    if (!rc && !CHECK_ARRAY(got, want, (size_t)n, ATOL_EXACT, RTOL_EXACT))
        fprintf(stderr, "  in %s key '%s' slab %s (float64)\n", tf->path, tf->key, what);
    rc = as_tensor_file_read(tf, start, count, AS_DTYPE_F32, got32, &err);
    CHECK_MSG(rc == 0, "%s %s: %s", tf->path, what, err.msg);
    for (int64_t i = 0; i < n; i++) {
        got[i] = got32[i];
        want[i] = (double)(float)want[i];
    }
    if (!rc && !CHECK_ARRAY(got, want, (size_t)n, ATOL_EXACT, RTOL_EXACT))
        fprintf(stderr, "  in %s key '%s' slab %s (float32)\n", tf->path, tf->key, what);
    free(want);
    free(got);
    free(got32);
}

void as_test_check_slabs(struct as_tensor_file *tf, const double *all)
{
    const struct as_tensor_info *ti = as_tensor_file_info(tf);
    int nd = ti->ndim;
    int64_t start[AS_MAX_DIMS] = { 0 }, count[AS_MAX_DIMS];
    for (int d = 0; d < nd; d++)
        count[d] = ti->shape[d];
    as_test_check_slab(tf, all, start, count, "full");
    if (nd == 4) {
        int64_t s1[4] = { 1, 0, 0, 0 }, c1[4] = { 1, ti->shape[1], ti->shape[2], ti->shape[3] };
        as_test_check_slab(tf, all, s1, c1, "layer 1");
        int64_t s2[4] = { 1, 2, 0, 0 }, c2[4] = { 1, 1, ti->shape[2], ti->shape[3] };
        as_test_check_slab(tf, all, s2, c2, "layer 1 head 2");
        int64_t s3[4] = { 0, 2, 0, 0 }, c3[4] = { ti->shape[0], 1, ti->shape[2], ti->shape[3] };
        as_test_check_slab(tf, all, s3, c3, "head 2 of every layer");
    }
    if (as_shape_numel(nd, ti->shape) > 0) {
        for (int d = 0; d < nd; d++) {
            start[d] = ti->shape[d] > 2 ? 1 : 0;
            count[d] = ti->shape[d] - 2 * start[d];
        }
        as_test_check_slab(tf, all, start, count, "middle");
        for (int d = 0; d < nd; d++) {
            start[d] = ti->shape[d] - 1;
            count[d] = 1;
        }
        as_test_check_slab(tf, all, start, count, "last element");
    }
}
