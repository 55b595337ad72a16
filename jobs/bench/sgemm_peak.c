/* sgemm_peak.c: bare cblas_sgemm throughput, 1 OpenBLAS thread, the shapes attnstat's
 * activations stage uses (jobs/bench_activations.sh runs 2 copies at once, one per core).
 *
 *   sgemm_peak blocked N D HEADS BLOCK LAYERS   attnstat's loop: per layer, for each block of
 *       BLOCK score rows and each head h, C (m x N) = Q_h[r0:r0+m] K_h^T (K = D / HEADS), head-major
 *       float32 copies, RowMajor NoTrans x Trans; FLOPs 2 N^2 D per layer
 *   sgemm_peak square M N K REPS                C (M x N) = A (M x K) B^T, REPS times
 *
 * Prints "gflops=<GFLOP/s> seconds=<s> flops=<count>".
 * Build: a CMake target, `cmake --build BUILD --target sgemm_peak` (BUILD/jobs/bench/sgemm_peak). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void openblas_set_num_threads(int);

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static float *randbuf(size_t n)
{
    float *p = malloc(n * sizeof *p);
    if (!p) {
        fprintf(stderr, "sgemm_peak: out of memory (%zu floats)\n", n);
        exit(1);
    }
    unsigned s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 1103515245u + 12345u;
        p[i] = ((s >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
    return p;
}

int main(int argc, char **argv)
{
    openblas_set_num_threads(1);
    if (argc == 7 && !strcmp(argv[1], "blocked")) {
        long n = atol(argv[2]), d = atol(argv[3]), heads = atol(argv[4]), blk = atol(argv[5]), layers = atol(argv[6]);
        long hd = d / heads;
        float *q = randbuf((size_t)(n * d)), *k = randbuf((size_t)(n * d)), *c = randbuf((size_t)(blk * n));
        double t0 = 0, flops = 0;
        for (long l = -1; l < layers; l++) {      /* layer -1: warm-up, not timed */
            if (l == 0)
                t0 = now();
            for (long r0 = 0; r0 < n; r0 += blk) {
                long m = n - r0 < blk ? n - r0 : blk;
                for (long h = 0; h < heads; h++)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)hd, 1.0f,
                                q + (h * n + r0) * hd, (int)hd, k + h * n * hd, (int)hd, 0.0f, c, (int)n);
            }
            if (l >= 0)
                flops += 2.0 * n * n * d;
        }
        double dt = now() - t0;
        printf("gflops=%.2f seconds=%.3f flops=%.6e checksum=%g\n", flops / dt * 1e-9, dt, flops, (double)c[0]);
        return 0;
    }
    if (argc == 6 && !strcmp(argv[1], "square")) {
        long m = atol(argv[2]), n = atol(argv[3]), kk = atol(argv[4]), reps = atol(argv[5]);
        float *a = randbuf((size_t)(m * kk)), *b = randbuf((size_t)(n * kk)), *c = randbuf((size_t)(m * n));
        double t0 = 0, flops = 0;
        for (long r = -1; r < reps; r++) {
            if (r == 0)
                t0 = now();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)kk, 1.0f, a, (int)kk, b,
                        (int)kk, 0.0f, c, (int)n);
            if (r >= 0)
                flops += 2.0 * m * n * kk;
        }
        double dt = now() - t0;
        printf("gflops=%.2f seconds=%.3f flops=%.6e checksum=%g\n", flops / dt * 1e-9, dt, flops, (double)c[0]);
        return 0;
    }
    fprintf(stderr, "usage: sgemm_peak blocked N D HEADS BLOCK LAYERS | sgemm_peak square M N K REPS\n");
    return 2;
}
