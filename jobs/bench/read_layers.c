/* read_layers.c: read a (L, ...) float32 tensor one layer at a time through attnstat's readers
 * (the as_readers layer: as_tensor_file_open / as_tensor_file_read, the calls the pipeline makes),
 * and report the read rate. A CMake target (jobs/bench/CMakeLists.txt); jobs/bench_read.sh builds
 * and runs it.
 *
 *   read_layers FILE [FIRST COUNT] [KEY]   layers FIRST .. FIRST+COUNT-1 (default: all)
 *
 * Prints "layers=<n> bytes=<b> seconds=<s> gbps=<GB/s> checksum=<x>" (GB = 1e9 bytes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "as_reader.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: read_layers FILE [FIRST COUNT] [KEY]\n");
        return 2;
    }
    struct as_tensor_file tf;
    struct as_error err = { 0 };
    double t0 = now();
    if (as_tensor_file_open(&tf, NULL, argv[1], argc > 4 ? argv[4] : NULL, &err)) {
        fprintf(stderr, "read_layers: %s\n", err.msg);
        return 4;
    }
    const struct as_tensor_info *ti = as_tensor_file_info(&tf);
    int64_t L = ti->shape[0], first = 0, n = L;
    if (argc > 3) {
        first = atoll(argv[2]);
        n = atoll(argv[3]);
    }
    if (ti->ndim < 1 || first < 0 || n < 0 || first + n > L) {
        fprintf(stderr, "read_layers: layers %lld..%lld outside the tensor's %lld\n", (long long)first,
                (long long)(first + n), (long long)L);
        return 2;
    }
    int64_t start[AS_MAX_DIMS] = { 0 }, count[AS_MAX_DIMS];
    size_t per = 1;
    count[0] = 1;
    for (int d = 1; d < ti->ndim; d++) {
        count[d] = ti->shape[d];
        per *= (size_t)ti->shape[d];
    }
    float *buf = malloc(per * sizeof *buf);
    if (!buf) {
        fprintf(stderr, "read_layers: out of memory for one layer (%zu floats)\n", per);
        return 1;
    }
    double open_s = now() - t0, sum = 0;
    t0 = now();
    for (int64_t l = first; l < first + n; l++) {
        start[0] = l;
        if (as_tensor_file_read(&tf, start, count, AS_DTYPE_F32, buf, &err)) {
            fprintf(stderr, "read_layers: layer %lld: %s\n", (long long)l, err.msg);
            return 4;
        }
        for (size_t i = 0; i < per; i += 1024)   /* touch every page of the data */
            sum += buf[i];
    }
    double dt = now() - t0;
    double bytes = (double)n * (double)per * 4.0;
    printf("reader=%s layers=%lld bytes=%.0f open_s=%.4f seconds=%.3f gbps=%.3f checksum=%g\n", tf.ops->name,
           (long long)n, bytes, open_s, dt, bytes / dt * 1e-9, sum);
    as_tensor_file_close(&tf);
    free(buf);
    return 0;
}
