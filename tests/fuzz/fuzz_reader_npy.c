/* fuzz_reader_npy.c: libFuzzer harness for the .npy reader (and, built as fuzz_reader_hdf5 with
 * AS_FUZZ_HDF5, for the HDF5 reader):
 * writes the input to a temp file, opens, lists and reads every tensor whole and as a middle
 * hyperslab. Any error is fine; a crash, a sanitizer report or a message that does not name the
 * file is a finding.
 *
 *   fuzz_reader_npy -max_total_time=120 corpus/ tests/fuzz/corpus_npy */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "as_reader.h"

static char tmp_path[64];

static void check_msg(const struct as_error *err)
{
    if (!strstr(err->msg, tmp_path) || strchr(err->msg, '\n')) {
        fprintf(stderr, "bad message: %s\n", err->msg);
        abort();
    }
}

static void read_one(void *ctx, const char *key, const struct as_tensor_info *ti0, const char *extra)
{
    const struct as_reader_ops *ops = ctx;
    struct as_tensor_file tf;
    struct as_error err = { 0 };
    (void)ti0;
    (void)extra;
    if (as_tensor_file_open(&tf, ops, tmp_path, key && *key ? key : NULL, &err)) {
        check_msg(&err);
        return;
    }
    const struct as_tensor_info *ti = as_tensor_file_info(&tf);
    int64_t start[AS_MAX_DIMS] = { 0 }, count[AS_MAX_DIMS];
    int64_t n = as_shape_numel(ti->ndim, ti->shape);
    if (n >= 0 && n <= (1 << 22)) {
        double *d = malloc((size_t)(n ? n : 1) * sizeof *d);
        if (d && as_tensor_file_read(&tf, start, ti->shape, AS_DTYPE_F64, d, &err))
            check_msg(&err);
        for (int k = 0; k < ti->ndim; k++) {
            start[k] = ti->shape[k] > 2 ? 1 : 0;
            count[k] = ti->shape[k] - 2 * start[k];
        }
        if (d && as_tensor_file_read(&tf, start, count, AS_DTYPE_F32, d, &err))
            check_msg(&err);
        free(d);
    }
    as_tensor_file_close(&tf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!tmp_path[0])
        snprintf(tmp_path, sizeof tmp_path, "%s/fuzz_reader_%d.bin", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp",
                 (int)getpid());
    FILE *f = fopen(tmp_path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    struct as_error err = { 0 };
#ifdef AS_FUZZ_HDF5
    const struct as_reader_ops *ops = &as_reader_hdf5;
#else
    const struct as_reader_ops *ops = &as_reader_npy;
#endif
    if (ops->list(tmp_path, read_one, (void *)ops, &err))
        check_msg(&err);
    return 0;
}
