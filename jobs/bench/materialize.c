/* materialize.c: write tensors of a built-in synthetic model to .npy files (float32, C order),
 * one matrix (the last two dims) at a time through the synthetic reader, so a synthetic run and
 * a file run of the same values can be compared (jobs/bench_synth.sh).
 *
 *   materialize SPEC DIR TENSOR...   SPEC as in as_synth_spec_format ("synthetic:layers=4,...");
 *                                    writes DIR/TENSOR.npy for each tensor
 *
 * Prints one line per file: "DIR/TENSOR.npy (shape) bytes seconds". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "as_reader.h"
#include "as_synth.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* npy v1.0 header: magic, version, header length, a dict padded with spaces to 64 bytes */
static int write_header(FILE *f, const struct as_tensor_info *ti)
{
    char dict[512], shape[256] = "";
    size_t n = 0;
    for (int d = 0; d < ti->ndim; d++)
        n += (size_t)snprintf(shape + n, sizeof shape - n, "%lld, ", (long long)ti->shape[d]);
    if (ti->ndim > 1)
        shape[n - 2] = '\0'; /* "(a, b, c)"; a single dim keeps its comma: "(a,)" */
    else
        shape[n - 1] = '\0';
    int len = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", shape);
    int total = 10 + len + 1, pad = (64 - total % 64) % 64;
    unsigned char pre[10] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0 };
    unsigned hl = (unsigned)(len + pad + 1);
    pre[8] = (unsigned char)(hl & 0xff);
    pre[9] = (unsigned char)(hl >> 8);
    if (fwrite(pre, 1, 10, f) != 10 || fwrite(dict, 1, (size_t)len, f) != (size_t)len)
        return -1;
    for (int i = 0; i < pad; i++)
        if (fputc(' ', f) == EOF)
            return -1;
    return fputc('\n', f) == EOF ? -1 : 0;
}

static int materialize(const char *spec, const char *dir, const char *name)
{
    struct as_tensor_file tf;
    struct as_error err = { 0 };
    char path[4096], sh[256];
    double t0 = now();
    if (as_tensor_file_open(&tf, &as_reader_synth, spec, name, &err)) {
        fprintf(stderr, "materialize: %s\n", err.msg);
        return -1;
    }
    const struct as_tensor_info *ti = as_tensor_file_info(&tf);
    int nd = ti->ndim;
    int64_t rows = ti->shape[nd - 2], cols = ti->shape[nd - 1], nmat = 1;
    for (int d = 0; d < nd - 2; d++)
        nmat *= ti->shape[d];
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    FILE *f = fopen(path, "wb");
    float *buf = malloc((size_t)(rows * cols) * sizeof *buf);
    int rc = -1;
    if (!f || !buf) {
        fprintf(stderr, "materialize: cannot write '%s'\n", path);
        goto out;
    }
    if (write_header(f, ti))
        goto io;
    /* matrix m: its leading indices, C order (layer by layer) */
    for (int64_t m = 0; m < nmat; m++) {
        int64_t start[AS_MAX_DIMS] = { 0 }, count[AS_MAX_DIMS];
        int64_t rest = m;
        for (int d = nd - 3; d >= 0; d--) {
            start[d] = rest % ti->shape[d];
            rest /= ti->shape[d];
            count[d] = 1;
        }
        count[nd - 2] = rows;
        count[nd - 1] = cols;
        if (as_tensor_file_read(&tf, start, count, AS_DTYPE_F32, buf, &err)) {
            fprintf(stderr, "materialize: %s\n", err.msg);
            goto out;
        }
        if (fwrite(buf, sizeof *buf, (size_t)(rows * cols), f) != (size_t)(rows * cols))
            goto io;
    }
    if (fclose(f)) {
        f = NULL;
        goto io;
    }
    f = NULL;
    printf("%s %s %lld %.2f\n", path, as_shape_str(ti, sh, sizeof sh), (long long)(nmat * rows * cols * 4), now() - t0);
    rc = 0;
    goto out;
io:
    fprintf(stderr, "materialize: cannot write '%s'\n", path);
out:
    if (f)
        fclose(f);
    free(buf);
    as_tensor_file_close(&tf);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: materialize SPEC DIR TENSOR...\n");
        return 2;
    }
    for (int i = 3; i < argc; i++)
        if (materialize(argv[1], argv[2], argv[i]))
            return 1;
    return 0;
}
