/* fuzz_reader_safetensors.c: libFuzzer harness for the safetensors reader: writes the input to a
 * temp file, opens its default tensor, lists it, opens and reads every listed tensor (whole, and a
 * middle hyperslab, in float64 and float32). Any error is fine; a crash, a sanitizer report or a
 * message that does not name the file is a finding (abort()).
 *
 *   fuzz_reader_safetensors -max_total_time=120 corpus/ tests/fixtures/readers
 * Crash inputs go to tests/fixtures/readers/regress/safetensors-<name>; test_reader_safetensors
 * opens each of them. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "as_reader.h"

extern const struct as_reader_ops as_reader_safetensors;

static char tmp_path[] = "/tmp/fuzz_safetensors_XXXXXX";
static int tmp_fd = -1;

static void check_msg(const struct as_error *err)
{
    if (!strstr(err->msg, tmp_path) || strchr(err->msg, '\n')) {
        fprintf(stderr, "bad message: %s\n", err->msg);
        abort();
    }
}

static void read_all(void *ctx, const char *key, const struct as_tensor_info *ti0, const char *extra)
{
    const struct as_reader_ops *ops = &as_reader_safetensors;
    struct as_reader *r;
    struct as_error err = { 0 };
    (void)ctx;
    (void)ti0;
    (void)extra;
    if (ops->open(&r, tmp_path, key, &err)) {
        check_msg(&err);
        return;
    }
    const struct as_tensor_info *ti = ops->info(r);
    int64_t start[AS_MAX_DIMS] = { 0 }, count[AS_MAX_DIMS];
    int64_t n = as_shape_numel(ti->ndim, ti->shape);
    if (n < 0 || n > (1 << 24))
        abort(); /* open() let through a tensor bigger than any input the fuzzer makes */
    double *d = malloc((size_t)(n ? n : 1) * sizeof *d);
    if (d) {
        if (ops->read(r, start, ti->shape, AS_DTYPE_F64, d, &err))
            check_msg(&err);
        if (ops->read(r, start, ti->shape, AS_DTYPE_F32, d, &err))
            check_msg(&err);
        for (int k = 0; k < ti->ndim; k++) {
            start[k] = ti->shape[k] > 2 ? 1 : 0;
            count[k] = ti->shape[k] - 2 * start[k];
        }
        if (ops->read(r, start, count, AS_DTYPE_F32, d, &err))
            check_msg(&err);
    }
    free(d);
    ops->close(r);
}

static void cleanup(void)
{
    if (tmp_fd >= 0) {
        close(tmp_fd);
        unlink(tmp_path);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    tmp_fd = mkstemp(tmp_path);
    if (tmp_fd < 0) {
        perror("fuzz_reader_safetensors: mkstemp");
        abort();
    }
    atexit(cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct as_reader_ops *ops = &as_reader_safetensors;
    if (ftruncate(tmp_fd, 0) || (size && pwrite(tmp_fd, data, size, 0) != (ssize_t)size))
        abort();
    struct as_reader *r;
    struct as_error err = { 0 };
    if (ops->open(&r, tmp_path, NULL, &err) == 0)
        ops->close(r);
    else
        check_msg(&err);
    if (ops->list(tmp_path, read_all, NULL, &err))
        check_msg(&err);
    return 0;
}
