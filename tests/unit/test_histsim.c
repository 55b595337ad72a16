/* test_histsim.c: histsim kernels and the whole stage against naive double-precision twins. */
#undef NDEBUG
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "as_simd.h"
#include "as_test.h"
#include "as_test_stage.h"
#include "histsim/histsim.h"

extern const struct as_stage_ops as_stage_histsim;

#define TOL_ENTROPY 1e-12

static uint64_t rng = 12345;
static double urand(void) { return as_u01(as_mix64(rng++)); }
static double nrand(void)
{
    double u1 = urand(), u2 = urand();
    return sqrt(-2 * log(u1 + 1e-300)) * cos(6.283185307179586 * u2);
}

/* The reference: quantile edges by sorting every value as float32 (torch's definition). */
static void ref_edges32(const float *x, size_t n, double q0, double q1, int n_edges, float *edges)
{
    double *d = malloc(n * sizeof *d);
    for (size_t i = 0; i < n; i++)
        d[i] = x[i];
    float qv[2];
    double qq[2] = { q0, q1 };
    for (int k = 0; k < 2; k++) {
        uint64_t lo, hi;
        double w;
        as_hs_rank(qq[k], n, 0, &lo, &hi, &w);
        qv[k] = as_hs_lerp32((float)as_hs_select_ref(d, n, lo), (float)as_hs_select_ref(d, n, hi), (float)w);
    }
    as_hs_linspace32(qv[0], qv[1], n_edges, edges);
    free(d);
}

/* Reference statistics of one (layer, head) from its T x T values and edges. */
static void ref_head(const float *v, int64_t T, const double *edges, int n_edges, double *out5)
{
    int nb = n_edges - 1;
    double *cd = calloc((size_t)nb, sizeof *cd), *cl = calloc((size_t)nb, sizeof *cl), sd = 0, sl = 0;
    for (int64_t i = 0; i < T; i++)
        for (int64_t j = 0; j <= i; j++) {
            double x = v[i * T + j];
            int b = as_hs_bucket_ref(x, edges, n_edges);
            if (i == j) {
                sd += x;
                if (b >= 0 && b < nb)
                    cd[b]++;
            } else {
                sl += x;
                if (b >= 0 && b < nb)
                    cl[b]++;
            }
        }
    out5[0] = as_hs_within_ref(cd, nb);
    out5[1] = as_hs_within_ref(cl, nb);
    out5[2] = as_hs_js_similarity_ref(cd, cl, nb);
    out5[3] = sd / (double)T;
    out5[4] = T > 1 ? sl / (double)(T * (T - 1) / 2) : NAN;
    free(cd);
    free(cl);
}

/* Run the stage on x (L, H, T, T) float32 and compare everything with the reference. */
static const char *last_search; /* the quantile_search attribute of the last check_stage32 */
static char last_search_buf[64];

static void check_stage32(const char *what, float *x, int64_t L, int64_t H, int64_t T)
{
    char path[128];
    snprintf(path, sizeof path, "/tmp/as_test_histsim_%d.npy", (int)getpid());
    int64_t shape[4] = { L, H, T, T };
    as_test_write_npy(path, "<f4", 4, shape, x);
    struct as_tensor_file tf;
    struct as_error err = { 0 };
    struct as_tensor_file *in[1] = { &tf };
    CHECK(as_tensor_file_open(&tf, NULL, path, NULL, &err) == 0);
    struct as_test_stage_result res;
    int rc = as_test_run_stage(&as_stage_histsim, "{}", "m", in, &res, &err);
    CHECK_MSG(rc == 0, "%s: %s", what, err.msg);
    if (rc == 0) {
        size_t n = (size_t)(L * H * T * T);
        float e32[200];
        double e64[200];
        ref_edges32(x, n, 0.005, 0.995, 200, e32);
        for (int k = 0; k < 200; k++)
            e64[k] = e32[k];
        const double *bins = as_test_field(&res, "bins", 0);
        int same = 1;
        for (int k = 0; k < 200; k++)
            same &= bins[k] == e64[k];
        CHECK_MSG(same, "%s: bins differ from the sorted reference", what);
        for (int a = 0; a < res.ex.out.n_attrs; a++)
            if (!strcmp(res.ex.out.attrs[a].name, "quantile_search"))
                last_search = strncpy(last_search_buf, res.ex.out.attrs[a].str, sizeof last_search_buf - 1);
        for (int64_t l = 0; l < L; l++) {
            const char *names[5] = { "within_diag", "within_lower", "js_similarity", "mean_diag", "mean_lower" };
            for (int64_t h = 0; h < H; h++) {
                double want[5];
                ref_head(x + (size_t)((l * H + h) * T * T), T, e64, 200, want);
                for (int f = 0; f < 5; f++) {
                    double got = as_test_field(&res, names[f], l)[h];
                    if (f == 4 && T == 1)
                        CHECK(isnan(got));
                    else if (!CHECK_CLOSE(got, want[f], TOL_ENTROPY, 1e-12))
                        fprintf(stderr, "  %s: %s L%lld H%lld\n", what, names[f], (long long)l, (long long)h);
                }
            }
        }
    }
    as_test_stage_result_release(&res);
    as_tensor_file_close(&tf);
    unlink(path);
}

static void test_histsim__random_normal(void)
{
    int64_t L = 3, H = 5, T = 17;
    size_t n = (size_t)(L * H * T * T);
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)nrand();
    check_stage32("random normal", x, L, H, T);
    CHECK_MSG(last_search && !strcmp(last_search, "sample window missed, radix"), "%s", last_search);
    free(x);
    /* big enough for the sampled rows to bracket the 0.5%% quantile: the one-pass window path */
    L = 2, H = 4, T = 256;
    n = (size_t)(L * H * T * T);
    x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)nrand();
    check_stage32("random normal, large", x, L, H, T);
    CHECK_MSG(last_search && !strcmp(last_search, "sample window"), "%s", last_search);
    free(x);
}

static void test_histsim__ties_and_constant(void)
{
    int64_t L = 2, H = 3, T = 9;
    size_t n = (size_t)(L * H * T * T);
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(int)(urand() * 5) * 0.5f; /* heavy ties */
    check_stage32("ties", x, L, H, T);
    for (size_t i = 0; i < n; i++)
        x[i] = 0.25f; /* constant: degenerate edges, every value in no bin */
    check_stage32("constant", x, L, H, T);
    free(x);
}

static void test_histsim__tiny_and_odd(void)
{
    float one = 1.5f;
    check_stage32("1x1x1x1", &one, 1, 1, 1);
    int64_t L = 1, H = 1, T = 2;
    float x2[4] = { -1, 2, 3, 0.5f };
    check_stage32("T=2", x2, L, H, T);
    int64_t T3 = 7;
    float *x = malloc(7 * 7 * 3 * sizeof *x);
    for (int i = 0; i < 7 * 7 * 3; i++)
        x[i] = (float)(urand() - 0.5);
    check_stage32("T=7 H=3", x, 1, 3, T3);
    free(x);
}

static void test_histsim__extreme_magnitudes(void)
{
    int64_t L = 2, H = 2, T = 11;
    size_t n = (size_t)(L * H * T * T);
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) {
        double r = urand();
        x[i] = r < 0.1 ? -3e37f : r < 0.2 ? 3e37f : r < 0.3 ? 1e-40f /* subnormal */ : r < 0.35 ? -0.0f
                                                                                             : (float)(nrand() * 1e-20);
    }
    check_stage32("extreme", x, L, H, T);
    free(x);
}

static void test_histsim__sample_window_miss_falls_back(void)
{
    /* the quantile window comes from a sample of rows: put the tails where no sample can see
     * them (a handful of huge values in one place) so the windows miss and the radix fallback has
     * to find the exact quantiles */
    int64_t L = 2, H = 4, T = 256;
    size_t n = (size_t)(L * H * T * T);
    float *x = malloc(n * sizeof *x);
    for (size_t k = 0; k < n; k++)
        x[k] = (float)nrand();
    for (size_t k = 0; k < n / 100; k++) /* 1%: both quantiles move into the outliers' range */
        x[k * 100 + 7] = (float)(k % 2 ? 1e6 + (double)k : -1e6 - (double)k);
    check_stage32("window miss", x, L, H, T);
    CHECK_MSG(last_search && !strcmp(last_search, "sample window missed, radix"), "%s", last_search);
    free(x);
}

static void test_histsim__bucket_edges_exact(void)
{
    /* values exactly on edges: the lowest edge is in no bin, the highest is in the last bin */
    float e32[200];
    double e64[200];
    as_hs_linspace32(-1.7f, 2.3f, 200, e32);
    for (int k = 0; k < 200; k++)
        e64[k] = e32[k];
    float v[400 + 4];
    int n = 0;
    for (int k = 0; k < 200; k++) {
        v[n++] = e32[k];
        v[n++] = nextafterf(e32[k], 10.0f);
    }
    v[n++] = -5;
    v[n++] = 5;
    v[n++] = nextafterf(e32[0], -10.0f);
    v[n++] = e32[199];
    uint64_t counts[199] = { 0 }, nf = 0;
    double ref[199] = { 0 };
    uint64_t outside = as_hs_hist32(v, (size_t)n, e32, 200, counts, &nf, NULL);
    uint64_t ref_out = 0;
    for (int i = 0; i < n; i++) {
        int b = as_hs_bucket_ref(v[i], e64, 200);
        if (b >= 0 && b < 199)
            ref[b]++;
        else
            ref_out++;
    }
    int same = outside == ref_out;
    for (int b = 0; b < 199; b++)
        same &= (double)counts[b] == ref[b];
    CHECK_MSG(same, "bucketing at the edges differs from torch.bucketize semantics");
    CHECK(as_hs_bucket_ref(e64[0], e64, 200) == -1);
    CHECK(as_hs_bucket_ref(e64[199], e64, 200) == 198);
    CHECK(nf == 0);
    float bad[3] = { NAN, INFINITY, 0.0f };
    as_hs_hist32(bad, 3, e32, 200, counts, &nf, NULL);
    CHECK(nf == 2);
}

/* The vector bucketing (float32 positions, exact walk near an edge; plain C, SSE2 and AVX2) against the plain scan, on
 * many values: normal, on and next to every edge, outside, non-finite; edge sets with a usual
 * span, a span tiny against the magnitude (every value takes the walk), negative and huge
 * magnitudes; odd lengths (the scalar tail). Counts equal; sums within rounding. */
static void test_histsim__bucket_vector_vs_ref(void)
{
    static const float spans[][2] = { { -1.7f, 2.3f }, { 1000.0f, 1000.001f }, { -9e-3f, -1e-3f },
                                      { -3e30f, 5e30f }, { 0.0f, 1.0f } };
    enum { N = 20011 };
    float *v = malloc(N * sizeof *v);
    double *vd = malloc(N * sizeof *vd);
    for (size_t sp = 0; sp < sizeof spans / sizeof spans[0]; sp++) {
        float e32[200];
        double e64[200], e64d[200];
        as_hs_linspace32(spans[sp][0], spans[sp][1], 200, e32);
        as_hs_linspace64(spans[sp][0], spans[sp][1], 200, e64d);
        for (int k = 0; k < 200; k++)
            e64[k] = e32[k];
        double mid = 0.5 * ((double)spans[sp][0] + spans[sp][1]), half = 0.5 * ((double)spans[sp][1] - spans[sp][0]);
        for (int i = 0; i < N; i++) {
            int k = i % 200, r = i % 7;
            v[i] = r == 0 ? e32[k] : r == 1 ? nextafterf(e32[k], INFINITY) : r == 2 ? nextafterf(e32[k], -INFINITY)
                 : r == 3 ? (float)(mid + 1.3 * half * (2 * urand() - 1))
                          : (float)(mid + half * nrand() * 0.5);
            if (i % 997 == 5)
                v[i] = i % 3 ? NAN : (i % 2 ? INFINITY : -INFINITY);
        }
        for (int t = 0; t < 2; t++) {
            size_t n = t ? 17 : N;
            uint64_t got[199] = { 0 }, want[199] = { 0 }, nf = 0, want_nf = 0, want_out = 0;
            double sum = 0, want_sum = 0;
            uint64_t out = as_hs_hist32(v, n, e32, 200, got, &nf, &sum);
            /* every instruction set: the same counts, the same bits of the sum */
            static const char *const isa[] = { "scalar", "sse2", "avx2" };
            for (int q = 0; q < 3; q++) {
                uint64_t g2[199] = { 0 }, nf2 = 0;
                double sum2 = 0;
                if (as_simd_force(isa[q]))
                    continue;
                uint64_t out2 = as_hs_hist32(v, n, e32, 200, g2, &nf2, &sum2);
                CHECK_MSG(!memcmp(g2, got, sizeof g2) && out2 == out && nf2 == nf && !memcmp(&sum2, &sum, sizeof sum),
                          "%s differs from the default", isa[q]);
            }
            as_simd_force("auto");
            for (size_t i = 0; i < n; i++) {
                if (!isfinite(v[i])) {
                    want_nf++;
                    continue;
                }
                want_sum += v[i];
                int b = as_hs_bucket_ref(v[i], e64, 200);
                if (b >= 0 && b < 199)
                    want[b]++;
                else
                    want_out++;
            }
            CHECK_MSG(!memcmp(got, want, sizeof got) && out == want_out && nf == want_nf,
                      "edges [%g, %g], n=%zu: float32 counts differ from the scan", spans[sp][0], spans[sp][1], n);
            CHECK_CLOSE(sum, want_sum, 1e-300, 1e-12 * (double)n);
            /* float64 values and edges */
            for (size_t i = 0; i < n; i++)
                vd[i] = (double)v[i] + (i % 5 == 4 ? 1e-9 * half : 0);
            memset(got, 0, sizeof got), memset(want, 0, sizeof want);
            nf = want_out = 0;
            out = as_hs_hist64(vd, n, e64d, 200, got, &nf, NULL);
            for (size_t i = 0; i < n; i++) {
                int b = isfinite(vd[i]) ? as_hs_bucket_ref(vd[i], e64d, 200) : 0;
                if (!isfinite(vd[i]))
                    continue;
                if (b >= 0 && b < 199)
                    want[b]++;
                else
                    want_out++;
            }
            CHECK_MSG(!memcmp(got, want, sizeof got) && out == want_out && nf == want_nf,
                      "edges [%g, %g], n=%zu: float64 counts differ from the scan", spans[sp][0], spans[sp][1], n);
        }
    }
    free(v);
    free(vd);
}

/* The window pass kernel against its scalar twin: windows below, across and above the data,
 * one ending at the top key; values on the window ends; non-finite values; every instruction
 * set; odd lengths. */
static void test_histsim__window_vs_ref(void)
{
    enum { N = 10007 };
    float *v = malloc(N * sizeof *v);
    for (int i = 0; i < N; i++)
        v[i] = i % 101 == 3 ? (i % 2 ? NAN : -INFINITY) : (float)(nrand() * (i % 13 ? 1.0 : 1e3));
    uint32_t k0 = as_hs_key32(-1.0f), k1 = as_hs_key32(0.5f);
    v[10] = as_hs_unkey32(k0), v[11] = as_hs_unkey32(k0 - 1), v[12] = as_hs_unkey32(k1 + 4095);
    uint32_t lo[4][2] = { { k0, k1 }, { 0, 0xfffff000u }, { k1, k0 }, { k0 - 100, k0 } }; /* 2nd: ends at 2^32 */
    static const char *const isa[] = { "scalar", "sse2", "avx2" };
    for (int c = 0; c < 4; c++)
        for (int q = 0; q < 3; q++)
            for (size_t n = N - 7; n <= N; n += 7) {
                uint64_t *h = calloc(4 * 4096, sizeof *h);
                struct as_hs_window want = { { lo[c][0], lo[c][1] }, { 4096, 4096 }, { h, h + 4096 }, { 0, 0 }, 0 };
                struct as_hs_window got = want;
                got.hist[0] = h + 2 * 4096, got.hist[1] = h + 3 * 4096;
                as_hs_window32_ref(&want, v, n);
                if (as_simd_force(isa[q]))
                    goto next;
                as_hs_window32(&got, v, n);
                CHECK_MSG(got.below[0] == want.below[0] && got.below[1] == want.below[1] &&
                              got.nonfinite == want.nonfinite && !memcmp(h, h + 2 * 4096, 2 * 4096 * sizeof *h),
                          "window case %d, %s, n=%zu: differs from the scalar twin", c, isa[q], n);
            next:
                free(h);
            }
    as_simd_force("auto");
    free(v);
}

static void test_histsim__entropy_kernels(void)
{
    for (int t = 0; t < 20; t++) {
        int nb = 1 + 3 + (int)(urand() * 300);
        uint64_t *a = calloc((size_t)nb, 8), *b = calloc((size_t)nb, 8);
        double *da = calloc((size_t)nb, 8), *db = calloc((size_t)nb, 8);
        for (int i = 0; i < nb; i++) {
            a[i] = t % 3 == 0 ? 0 : (uint64_t)(urand() * 1000);
            b[i] = t % 5 == 0 ? 7 : (uint64_t)(urand() * urand() * 1e6);
            da[i] = (double)a[i];
            db[i] = (double)b[i];
        }
        CHECK_CLOSE(as_hs_within(a, nb), as_hs_within_ref(da, nb), 1e-13, 1e-12);
        CHECK_CLOSE(as_hs_js_similarity(a, b, nb), as_hs_js_similarity_ref(da, db, nb), 1e-13, 1e-12);
        free(a); free(b); free(da); free(db);
    }
    /* a histogram with all counts in one bin is maximally similar within itself */
    uint64_t one[199] = { 0 };
    one[5] = 1000;
    CHECK(as_hs_within(one, 199) > 0.99);
    CHECK_CLOSE(as_hs_js_similarity(one, one, 199), 1.0, 1e-12, 0);
}

static void test_histsim__comparison_helpers(void)
{
    /* the test helpers themselves must catch a difference */
    double a[3] = { 1, 2, 3 }, b[3] = { 1, 2, 3.1 };
    int before = as_test_failures;
    as_test_array(__FILE__, __LINE__, "self-test", a, b, 3, 1e-6, 0);
    CHECK(as_test_failures == before + 1);
    as_test_failures = before; /* the deliberate failure above is not a real one */
    CHECK(as_test_nmse(a, a, 3) == 0);
}

static void test_histsim__float64_input(void)
{
    int64_t L = 2, H = 2, T = 6, shape[4] = { 2, 2, 6, 6 };
    size_t n = (size_t)(L * H * T * T);
    double *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = nrand();
    char path[128];
    snprintf(path, sizeof path, "/tmp/as_test_histsim64_%d.npy", (int)getpid());
    as_test_write_npy(path, "<f8", 4, shape, x);
    struct as_tensor_file tf;
    struct as_error err = { 0 };
    struct as_tensor_file *in[1] = { &tf };
    CHECK(as_tensor_file_open(&tf, NULL, path, NULL, &err) == 0);
    struct as_test_stage_result res;
    CHECK_MSG(as_test_run_stage(&as_stage_histsim, "{}", "m", in, &res, &err) == 0, "%s", err.msg);
    double q[2], qq[2] = { 0.005, 0.995 };
    for (int k = 0; k < 2; k++) {
        uint64_t lo, hi;
        double w;
        as_hs_rank(qq[k], n, 1, &lo, &hi, &w);
        q[k] = as_hs_lerp64(as_hs_select_ref(x, n, lo), as_hs_select_ref(x, n, hi), w);
    }
    double e[200];
    as_hs_linspace64(q[0], q[1], 200, e);
    CHECK_ARRAY(as_test_field(&res, "bins", 0), e, 200, 0, 0);
    as_test_stage_result_release(&res);
    as_tensor_file_close(&tf);
    unlink(path);
    free(x);
}

static void test_histsim__non_finite(void)
{
    int64_t L = 2, H = 3, T = 5, shape[4] = { 2, 3, 5, 5 };
    size_t n = (size_t)(L * H * T * T);
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)nrand();
    x[(size_t)((1 * H + 2) * T * T + 3 * T + 1)] = NAN;
    x[(size_t)((1 * H + 2) * T * T + 4 * T + 4)] = INFINITY;
    char path[128];
    snprintf(path, sizeof path, "/tmp/as_test_histsim_nf_%d.npy", (int)getpid());
    as_test_write_npy(path, "<f4", 4, shape, x);
    struct as_tensor_file tf;
    struct as_error err = { 0 };
    struct as_tensor_file *in[1] = { &tf };
    CHECK(as_tensor_file_open(&tf, NULL, path, NULL, &err) == 0);
    struct as_test_stage_result res;
    CHECK(as_test_run_stage(&as_stage_histsim, "{}", "mymodel", in, &res, &err) != 0);
    CHECK_MSG(strstr(err.msg, "model 'mymodel' layer 1 head 2: 2 non-finite values") != NULL, "%s", err.msg);
    CHECK(err.status == AS_ERR_INPUT);
    as_test_stage_result_release(&res);
    as_error_clear(&err);
    CHECK_MSG(as_test_run_stage(&as_stage_histsim, "{non_finite: skip}", "mymodel", in, &res, &err) == 0, "%s",
              err.msg);
    const int64_t *nf = (const int64_t *)as_test_field(&res, "non_finite", 1);
    CHECK(nf[2] == 2 && nf[0] == 0);
    CHECK(isfinite(as_test_field(&res, "mean_lower", 1)[2]));
    as_test_stage_result_release(&res);
    as_tensor_file_close(&tf);
    unlink(path);
    free(x);
}

static void test_histsim__sampled_deterministic(void)
{
    int64_t L = 3, H = 4, T = 20, shape[4] = { 3, 4, 20, 20 };
    size_t n = (size_t)(L * H * T * T);
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)nrand();
    char path[128];
    snprintf(path, sizeof path, "/tmp/as_test_histsim_s_%d.npy", (int)getpid());
    as_test_write_npy(path, "<f4", 4, shape, x);
    struct as_tensor_file tf;
    struct as_error err = { 0 };
    struct as_tensor_file *in[1] = { &tf };
    CHECK(as_tensor_file_open(&tf, NULL, path, NULL, &err) == 0);
    struct as_test_stage_result a, b, c, full;
    CHECK(as_test_run_stage(&as_stage_histsim, "{quantile: sampled, samples: 500, seed: 3}", "m", in, &a, &err) == 0);
    CHECK(as_test_run_stage(&as_stage_histsim, "{quantile: sampled, samples: 500, seed: 3}", "m", in, &b, &err) == 0);
    CHECK(as_test_run_stage(&as_stage_histsim, "{quantile: sampled, samples: 500, seed: 4}", "m", in, &c, &err) == 0);
    CHECK(as_test_run_stage(&as_stage_histsim, "{quantile: sampled, samples: 100000}", "m", in, &full, &err) == 0);
    CHECK(memcmp(as_test_field(&a, "bins", 0), as_test_field(&b, "bins", 0), 200 * 8) == 0);
    CHECK(memcmp(as_test_field(&a, "bins", 0), as_test_field(&c, "bins", 0), 200 * 8) != 0);
    float e[200];
    ref_edges32(x, n, 0.005, 0.995, 200, e);
    CHECK(as_test_field(&full, "bins", 0)[0] == e[0] && as_test_field(&full, "bins", 0)[199] == e[199]);
    as_test_stage_result_release(&a);
    as_test_stage_result_release(&b);
    as_test_stage_result_release(&c);
    as_test_stage_result_release(&full);
    as_tensor_file_close(&tf);
    unlink(path);
    free(x);
}

static void test_histsim__bad_shape(void)
{
    int64_t shape[3] = { 2, 4, 4 };
    float x[32] = { 0 };
    char path[128];
    snprintf(path, sizeof path, "/tmp/as_test_histsim_b_%d.npy", (int)getpid());
    as_test_write_npy(path, "<f4", 3, shape, x);
    struct as_tensor_file tf;
    struct as_error err = { 0 };
    struct as_tensor_file *in[1] = { &tf };
    CHECK(as_tensor_file_open(&tf, NULL, path, NULL, &err) == 0);
    struct as_test_stage_result res;
    CHECK(as_test_run_stage(&as_stage_histsim, "{}", "m", in, &res, &err) != 0);
    CHECK_MSG(strstr(err.msg, "must be (layers, heads, seq_len, seq_len)") != NULL, "%s", err.msg);
    as_test_stage_result_release(&res);
    as_tensor_file_close(&tf);
    unlink(path);
}

/* `edges: N` and the deprecated `bins: N` are the same option: same rows, same bin edges, same
 * attributes (`edges` records it; the dataset keeps its name `bins`, N edges). */
static int n_warnings;
static void count_warning(void *ctx, const char *line) { n_warnings++; }

static void test_histsim__edges_option(void)
{
    const char *spec = "synthetic:layers=2,heads=3,seq_len=16,batch=1,head_dim=8,seed=4,model=e";
    struct as_tensor_file tf;
    struct as_error err = { 0 };
    struct as_tensor_file *in[1] = { &tf };
    CHECK(as_tensor_file_open(&tf, &as_reader_synth, spec, "qk_mean", &err) == 0);
    struct as_test_stage_result a, b, d;
    as_stage_set_warn(count_warning, NULL);
    n_warnings = 0;
    CHECK_MSG(as_test_run_stage(&as_stage_histsim, "{edges: 33}", "m", in, &a, &err) == 0, "%s", err.msg);
    CHECK(n_warnings == 0);
    CHECK_MSG(as_test_run_stage(&as_stage_histsim, "{bins: 33}", "m", in, &b, &err) == 0, "%s", err.msg);
    CHECK(n_warnings == 1);
    CHECK_MSG(as_test_run_stage(&as_stage_histsim, "{}", "m", in, &d, &err) == 0, "%s", err.msg);
    as_stage_set_warn(NULL, NULL);
    CHECK(a.ex.schema.row_size == b.ex.schema.row_size && a.ex.schema.model_size == 33 * 8);
    CHECK(!memcmp(a.ex.rows, b.ex.rows, 2 * a.ex.schema.row_size));
    CHECK(!memcmp(a.ex.model_block, b.ex.model_block, a.ex.schema.model_size));
    const struct as_attr *ea = as_test_attr(&a.ex.out, "edges"), *eb = as_test_attr(&b.ex.out, "edges");
    CHECK(ea && eb && ea->kind == AS_ATTR_I64 && ea->i64 == 33 && eb->i64 == 33);
    CHECK(!as_test_attr(&a.ex.out, "bins") && as_test_attr(&d.ex.out, "edges")->i64 == 200);
    int k = as_schema_find(&d.ex.schema, "bins");
    CHECK(k >= 0 && d.ex.schema.fields[k].dims[0] == 200 && !strcmp(d.ex.schema.fields[k].dim_names[0], "edge"));
    as_test_stage_result_release(&a);
    as_test_stage_result_release(&b);
    as_test_stage_result_release(&d);
    as_tensor_file_close(&tf);
}

int main(void)
{
    TEST_RUN(test_histsim__comparison_helpers);
    TEST_RUN(test_histsim__bucket_edges_exact);
    TEST_RUN(test_histsim__bucket_vector_vs_ref);
    TEST_RUN(test_histsim__window_vs_ref);
    TEST_RUN(test_histsim__entropy_kernels);
    TEST_RUN(test_histsim__random_normal);
    TEST_RUN(test_histsim__sample_window_miss_falls_back);
    TEST_RUN(test_histsim__ties_and_constant);
    TEST_RUN(test_histsim__tiny_and_odd);
    TEST_RUN(test_histsim__extreme_magnitudes);
    TEST_RUN(test_histsim__float64_input);
    TEST_RUN(test_histsim__non_finite);
    TEST_RUN(test_histsim__sampled_deterministic);
    TEST_RUN(test_histsim__bad_shape);
    TEST_RUN(test_histsim__edges_option);
    return as_test_done();
}
