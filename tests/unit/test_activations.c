/* test_activations.c: the activations kernels against their _ref twins (odd sizes, float16 and
 * bfloat16 inputs, histogram edge semantics), bitwise determinism over OpenBLAS thread counts and
 * block sizes, the stage's options and bad inputs, the synthetic Q/K/V generators, and parity
 * with tests/fixtures/tiny/reference.json at compare_results.py's tolerances. */
#undef NDEBUG
#include <cblas.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "activations/activations.h"
#include "as_stage.h"
#include "as_simd.h"
#include "as_test.h"
#include "as_test_stage.h"

extern const struct as_stage_ops as_stage_activations;
/* Not from as_synth.h on purpose: it declares the table weak, and a weak reference does not pull
 * synth_acts.o out of libas_core.a. This strong one does. */
struct as_synth_gen;
extern const struct as_synth_gen *const as_synth_acts_gens[];

#define FIXTURE_DIR "tests/fixtures/tiny"
#define MEAN_RTOL 1e-12            /* exact-mean formula vs mean of the stored matrix, both double */
#define DGEMM_RTOL 1e-10           /* dgemm path vs _ref triple loop */
#define SGEMM_RTOL 2e-5            /* sgemm path (float32 products) vs _ref */
#define VAR_RTOL 1e-12             /* two-pass / merged moments vs _ref */
#define PROB_MOVED_DGEMM 2         /* probabilities allowed to change bin, dgemm vs _ref */
#define PROB_MOVED_SGEMM_FRAC 2e-3 /* same, sgemm, as a fraction of all probabilities */

/* compare_results.py TOL["activations"] */
static const struct {
    const char *name;
    double atol, rtol;
} ref_tol[] = {
    { "hist_edges", 1e-12, 1e-12 }, { "q_hist", 1e-9, 1e-6 }, { "k_hist", 1e-9, 1e-6 }, { "v_hist", 1e-9, 1e-6 },
    { "q_var", 1e-9, 1e-6 },        { "k_var", 1e-9, 1e-6 },  { "v_var", 1e-9, 1e-6 },  { "qk_mean", 1e-6, 1e-6 },
    { "qk_std", 1e-6, 1e-6 },
};

/* ---- helpers */

static uint64_t rng_state = 777;
static double urand(void) { return as_test_urand(&rng_state); }
static double nrand(void) { return as_test_nrand(&rng_state); }

/* Activations-like values: per-dim offsets and scales, one outlier dim. */
static void random_acts(double *x, int64_t n, int64_t d, double offset)
{
    for (int64_t c = 0; c < d; c++) {
        double sc = exp(0.4 * nrand()) * (c == d / 2 ? 8.0 : 1.0), mu = offset + 0.5 * nrand();
        for (int64_t i = 0; i < n; i++)
            x[i * d + c] = mu + sc * nrand();
    }
}

static void to_f32(const double *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = (float)x[i];
}
static void to_f64(const float *x, double *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i];
}

static double std_of(const struct as_act_moments *m) { return sqrt(as_act_moments_var(m)); }

/* One stage run over three open tensors through the serial executor (every layer, then finalize). */
struct stage_run {
    void *cfg;                     /* owned */
    struct as_exec ex;             /* shape, schema, rows, model block, out, log */
};

static void stage_run_release(struct stage_run *r)
{
    as_exec_release(&r->ex);
    if (r->cfg)
        as_stage_activations.release(r->cfg);
    memset(r, 0, sizeof *r);
}

static int stage_run_files(struct stage_run *r, const char *yaml, struct as_tensor_file *tf, struct as_error *err)
{
    const struct as_stage_ops *ops = &as_stage_activations;
    memset(r, 0, sizeof *r);
    if (as_test_stage_configure(ops, yaml, &r->cfg, err))
        return -1;
    const char *names[AS_STAGE_MAX_INPUTS];
    int nin = ops->inputs(r->cfg, names);
    AS_ASSERT(nin == 3);
    struct as_tensor_file *in[3] = { &tf[0], &tf[1], &tf[2] };
    return as_exec_model(&r->ex, ops, r->cfg, "test", in, 0, err);
}

static int stage_run_paths(struct stage_run *r, const char *yaml, const char *const *paths, struct as_error *err)
{
    struct as_tensor_file tf[3];
    int opened = 0, ret = -1;
    memset(r, 0, sizeof *r);
    for (; opened < 3; opened++)
        if (as_tensor_file_open(&tf[opened], NULL, paths[opened], NULL, err))
            goto out;
    ret = stage_run_files(r, yaml, tf, err);
out:
    for (int i = 0; i < opened; i++)
        as_tensor_file_close(&tf[i]);
    return ret;
}

static int stage_run_synth(struct stage_run *r, const char *yaml, const char *spec, struct as_error *err)
{
    static const char *const keys[3] = { "q_acts", "k_acts", "v_acts" };
    struct as_tensor_file tf[3];
    int opened = 0, ret = -1;
    memset(r, 0, sizeof *r);
    for (; opened < 3; opened++)
        if (as_tensor_file_open(&tf[opened], &as_reader_synth, spec, keys[opened], err))
            goto out;
    ret = stage_run_files(r, yaml, tf, err);
out:
    for (int i = 0; i < opened; i++)
        as_tensor_file_close(&tf[i]);
    return ret;
}

/* Field `name` of layer l (per-layer) or the per-model field; *n its element count. */
static const double *field(const struct stage_run *r, const char *name, int64_t l, int64_t *n)
{
    int k = as_schema_find(&r->ex.schema, name);
    if (k < 0) {
        *n = 0;
        return NULL;
    }
    *n = as_field_count(&r->ex.schema.fields[k]);
    return as_exec_field(&r->ex, name, l);
}

/* ---- histogram and bins */

static void test_activations__linspace_numpy(void)
{
    double e[101];
    as_act_linspace(-5, 5, 101, e);
    CHECK(e[0] == -5 && e[100] == 5 && e[50] == 0);
    /* numpy: i * step + start with step = 10 / 100 = 0.1 (rounded) */
    double step = 10.0 / 100.0;
    for (int i = 0; i < 101; i++)
        CHECK(e[i] == (i == 100 ? 5.0 : (double)i * step + -5.0));
    CHECK(e[3] == -4.7 && e[17] == -3.3); /* the reals numpy prints */
}

static void test_activations__hist_edges(void)
{
    struct as_act_linbins b;
    struct as_error err = { 0 };
    CHECK(!as_act_linbins_init(&b, -5, 5, 100, &err));
    /* values exactly on every edge, one ulp either side, outside, NaN, and random values */
    size_t n = 0, cap = 101 * 3 + 6 + 5000;
    double *x = malloc(cap * sizeof *x);
    for (int i = 0; i <= 100; i++) {
        x[n++] = b.edges[i];
        x[n++] = nextafter(b.edges[i], -INFINITY);
        x[n++] = nextafter(b.edges[i], INFINITY);
    }
    x[n++] = -6;
    x[n++] = 6;
    x[n++] = NAN;
    x[n++] = 1e300;
    x[n++] = -1e300;
    x[n++] = 0.0;
    while (n < cap)
        x[n++] = -6 + 12 * urand();
    CHECK(as_act_linbins_find(&b, -5.0) == 0);
    CHECK(as_act_linbins_find(&b, 5.0) == 99);   /* last bin closed */
    CHECK(as_act_linbins_find(&b, nextafter(5.0, 6)) == -1);
    CHECK(as_act_linbins_find(&b, nextafter(-5.0, -6)) == -1);
    CHECK(as_act_linbins_find(&b, NAN) == -1);
    for (int i = 0; i < 100; i++) {
        CHECK(as_act_linbins_find(&b, b.edges[i]) == i);          /* [a, b) */
        if (i > 0)
            CHECK(as_act_linbins_find(&b, nextafter(b.edges[i], -INFINITY)) == i - 1);
    }
    int64_t got[100] = { 0 }, want[100] = { 0 };
    as_act_hist_f64(&b, x, n, got);
    as_act_hist_ref(b.edges, 100, x, n, want);
    CHECK(!memcmp(got, want, sizeof got));
    /* float32 values: binned by their exact double value */
    float *xf = malloc(n * sizeof *xf);
    to_f32(x, xf, n);
    to_f64(xf, x, n);
    memset(got, 0, sizeof got);
    memset(want, 0, sizeof want);
    as_act_hist_f32(&b, xf, n, got);
    as_act_hist_ref(b.edges, 100, x, n, want);
    CHECK(!memcmp(got, want, sizeof got));
    free(x);
    free(xf);
    as_act_linbins_release(&b);

    /* density = count / width / total, NaN when nothing fell inside (numpy) */
    const int64_t c[4] = { 1, 2, 0, 1 }, z[4] = { 0 };
    const double e[5] = { 0, 1, 2, 3, 5 };
    double d[4];
    as_act_density(c, e, 4, d);
    CHECK(d[0] == 0.25 && d[1] == 0.5 && d[2] == 0 && d[3] == 0.125);
    as_act_density(z, e, 4, d);
    CHECK(isnan(d[0]) && isnan(d[3]));
    /* bad bins */
    CHECK(as_act_linbins_init(&b, 1, 1, 10, &err) == -1 && err.status == AS_ERR_CONFIG);
}

static void test_activations__logbins(void)
{
    struct as_act_logbins b;
    struct as_error err = { 0 };
    CHECK(!as_act_logbins_init(&b, 1e-8, 50, &err));
    CHECK(b.n == 51 && b.edges[0] == 0 && b.edges[1] == 1e-8 && b.edges[51] == 1.0);
    CHECK(as_act_logbins_find(&b, 0.0) == 0);
    CHECK(as_act_logbins_find(&b, 4.9e-324) == 0);
    CHECK(as_act_logbins_find(&b, nextafter(1e-8, 0)) == 0);
    CHECK(as_act_logbins_find(&b, 1e-8) == 1);
    CHECK(as_act_logbins_find(&b, 1.0) == 50);
    CHECK(as_act_logbins_find(&b, nextafter(1.0, 2)) == -1);
    CHECK(as_act_logbins_find(&b, -0.0) == 0);
    CHECK(as_act_logbins_find(&b, -1e-20) == -1);
    CHECK(as_act_logbins_find(&b, NAN) == -1);
    int bad = 0;
    for (int64_t i = 0; i <= b.n; i++) {
        double v[3] = { b.edges[i], nextafter(b.edges[i], -1), nextafter(b.edges[i], 2) };
        for (int k = 0; k < 3; k++) {
            int64_t want[52] = { 0 }, w = -1;
            as_act_hist_ref(b.edges, b.n, &v[k], 1, want);
            for (int j = 0; j < b.n; j++)
                if (want[j])
                    w = j;
            bad += as_act_logbins_find(&b, v[k]) != w;
        }
    }
    for (int i = 0; i < 20000; i++) {
        double p = pow(10.0, -12 * urand());
        int64_t want[51] = { 0 }, w = -1;
        as_act_hist_ref(b.edges, b.n, &p, 1, want);
        for (int j = 0; j < b.n; j++)
            if (want[j])
                w = j;
        bad += as_act_logbins_find(&b, p) != w;
    }
    CHECK_MSG(bad == 0, "%d probabilities binned unlike the linear scan", bad);
    as_act_logbins_release(&b);
    /* many bins: the lookup walks further */
    CHECK(!as_act_logbins_init(&b, 1e-30, 5000, &err));
    bad = 0;
    for (int i = 0; i < 3000; i++) {
        double p = pow(10.0, -31 * urand());
        int64_t *want = calloc((size_t)b.n, sizeof *want), w = -1;
        as_act_hist_ref(b.edges, b.n, &p, 1, want);
        for (int j = 0; j < b.n; j++)
            if (want[j])
                w = j;
        bad += as_act_logbins_find(&b, p) != w;
        free(want);
    }
    CHECK(bad == 0);
    as_act_logbins_release(&b);
    CHECK(as_act_logbins_init(&b, 0, 10, &err) == -1 && err.status == AS_ERR_CONFIG);
}

/* ---- moments */

static void test_activations__moments(void)
{
    enum { N = 10007 };
    double *x = malloc(N * sizeof *x);
    float *xf = malloc(N * sizeof *xf);
    const double offsets[3] = { 0, 3.5, 1e6 };
    for (int o = 0; o < 3; o++) {
        for (int i = 0; i < N; i++)
            x[i] = offsets[o] + (i % 97 == 0 ? 40 : 1) * nrand();
        to_f32(x, xf, N);
        to_f64(xf, x, N);
        struct as_act_moments got, want, merged = { 0, 0, 0 }, part;
        as_act_moments_f32(xf, N, &got);
        as_act_moments_ref(x, N, &want);
        CHECK_CLOSE(got.mean, want.mean, 0, VAR_RTOL);
        CHECK_CLOSE(as_act_moments_var(&got), as_act_moments_var(&want), 0, VAR_RTOL);
        /* merging odd-sized parts (Chan) = the whole */
        const size_t cut[4] = { 0, 1, 4000, N };
        for (int k = 0; k < 3; k++) {
            as_act_moments_f64(x + cut[k], cut[k + 1] - cut[k], &part);
            as_act_moments_merge(&merged, &part);
        }
        CHECK(merged.n == N);
        CHECK_CLOSE(merged.mean, want.mean, 0, VAR_RTOL);
        CHECK_CLOSE(as_act_moments_var(&merged), as_act_moments_var(&want), 0, VAR_RTOL);
    }
    /* constant input: variance 0; one value: NaN (torch.var) */
    for (int i = 0; i < N; i++)
        xf[i] = 0.1f;
    struct as_act_moments m;
    as_act_moments_f32(xf, N, &m);
    CHECK(m.mean == (double)0.1f && m.m2 == 0);
    as_act_moments_f32(xf, 1, &m);
    CHECK(isnan(as_act_moments_var(&m)));
    /* non-finite values show in the mean */
    xf[5] = NAN;
    as_act_moments_f32(xf, N, &m);
    CHECK(!isfinite(m.mean));
    free(x);
    free(xf);
}

/* ---- scores: the gemm path against the triple loop */

static void check_scores(int64_t n, int64_t d, int64_t heads, int64_t block, enum as_act_gemm gemm, double offset)
{
    struct as_error err = { 0 };
    struct as_act_logbins pb;
    AS_ASSERT(!as_act_logbins_init(&pb, 1e-8, 50, &err));
    double *q = malloc((size_t)(n * d) * sizeof *q), *k = malloc((size_t)(n * d) * sizeof *k);
    float *qf = malloc((size_t)(n * d) * sizeof *qf), *kf = malloc((size_t)(n * d) * sizeof *kf);
    random_acts(q, n, d, offset);
    random_acts(k, n, d, -0.5 * offset);
    to_f32(q, qf, (size_t)(n * d));
    to_f32(k, kf, (size_t)(n * d));
    to_f64(qf, q, (size_t)(n * d));
    to_f64(kf, k, (size_t)(n * d));
    struct as_act_moments full, fref, *head = calloc((size_t)heads, sizeof *head),
                                      *href = calloc((size_t)heads, sizeof *href);
    int64_t got[51] = { 0 }, want[51] = { 0 }, total = heads * n * (n + 1) / 2, moved = 0;
    CHECK(!as_act_scores(qf, kf, AS_DTYPE_F32, n, d, heads, gemm, block, &pb, &full, head, got, &err));
    CHECK(!as_act_scores_ref(q, k, n, d, heads, pb.edges, pb.n, &fref, href, want, &err));
    double rtol = gemm == AS_ACT_GEMM_F64 ? DGEMM_RTOL : SGEMM_RTOL;
    char what[160];
    snprintf(what, sizeof what, "n=%lld d=%lld heads=%lld block=%lld %s", (long long)n, (long long)d,
             (long long)heads, (long long)block, gemm == AS_ACT_GEMM_F64 ? "dgemm" : "sgemm");
    double scale = std_of(&fref) + fabs(fref.mean);
    CHECK_MSG(full.n == n * n, "%s", what);
    CHECK_MSG(fabs(full.mean - fref.mean) <= MEAN_RTOL * (isnan(scale) ? fabs(fref.mean) : scale) + 1e-300,
              "%s: mean %.17g want %.17g", what, full.mean, fref.mean);
    if (n > 1)
        CHECK_MSG(fabs(std_of(&full) - std_of(&fref)) <= rtol * std_of(&fref), "%s: std %.17g want %.17g", what,
                  std_of(&full), std_of(&fref));
    else
        CHECK_MSG(isnan(std_of(&full)), "%s: std of one score must be NaN", what);
    for (int64_t h = 0; h < heads; h++) {
        double hs = std_of(&href[h]) + fabs(href[h].mean);
        CHECK_MSG(fabs(head[h].mean - href[h].mean) <= MEAN_RTOL * (n > 1 ? hs : fabs(href[h].mean)) + 1e-300,
                  "%s: head %lld mean %.17g want %.17g", what, (long long)h, head[h].mean, href[h].mean);
        if (n > 1)
            CHECK_MSG(fabs(std_of(&head[h]) - std_of(&href[h])) <= rtol * std_of(&href[h]),
                      "%s: head %lld std %.17g want %.17g", what, (long long)h, std_of(&head[h]), std_of(&href[h]));
    }
    int64_t sg = 0, sw = 0;
    for (int i = 0; i < 51; i++) {
        sg += got[i];
        sw += want[i];
        moved += llabs(got[i] - want[i]);
    }
    CHECK_MSG(sg == total && sw == total, "%s: %lld and %lld probabilities, want %lld", what, (long long)sg,
              (long long)sw, (long long)total);
    double allowed = gemm == AS_ACT_GEMM_F64 ? PROB_MOVED_DGEMM : PROB_MOVED_DGEMM + PROB_MOVED_SGEMM_FRAC * total;
    CHECK_MSG(moved <= allowed, "%s: %lld probabilities in other bins than _ref", what, (long long)moved);
    free(q), free(k), free(qf), free(kf), free(head), free(href);
    as_act_logbins_release(&pb);
}

static void test_activations__scores_vs_ref(void)
{
    static const int64_t sizes[][3] = { { 1, 12, 3 }, { 2, 12, 3 }, { 7, 12, 3 }, { 13, 20, 5 },
                                        { 33, 12, 1 }, { 50, 36, 4 }, { 97, 40, 8 }, { 5, 7, 7 } };
    static const int64_t blocks[] = { 1, 3, 64 };
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (size_t b = 0; b < sizeof blocks / sizeof blocks[0]; b++)
            for (int g = 0; g < AS_ACT_GEMM_COUNT; g++)
                check_scores(sizes[s][0], sizes[s][1], sizes[s][2], blocks[b], (enum as_act_gemm)g,
                             s % 2 ? 2.0 : 0.0);
}

/* float16 / bfloat16 inputs widen exactly (as_dtype_convert), then the float32 path applies. */
static void test_activations__half_inputs(void)
{
    enum { n = 9, d = 12, heads = 3 };
    struct as_error err = { 0 };
    struct as_act_logbins pb;
    AS_ASSERT(!as_act_logbins_init(&pb, 1e-8, 50, &err));
    for (int t = 0; t < 2; t++) {
        enum as_dtype dt = t ? AS_DTYPE_BF16 : AS_DTYPE_F16;
        uint16_t raw[2][n * d];
        float f[2][n * d];
        double x[2][n * d], via[n * d];
        for (int m = 0; m < 2; m++)
            for (int i = 0; i < n * d; i++) {
                /* sign, exponent around 1, random mantissa; a few subnormal halves */
                uint16_t sign = (uint16_t)((urand() < 0.5) << 15);
                if (dt == AS_DTYPE_F16)
                    raw[m][i] = sign | (uint16_t)((i % 17 == 0 ? 0 : 12 + (int)(5 * urand())) << 10) |
                                (uint16_t)(urand() * 1024);
                else
                    raw[m][i] = sign | (uint16_t)((124 + (int)(5 * urand())) << 7) | (uint16_t)(urand() * 128);
            }
        for (int m = 0; m < 2; m++) {
            as_dtype_convert(dt, raw[m], AS_DTYPE_F32, f[m], n * d);
            as_dtype_convert(dt, raw[m], AS_DTYPE_F64, x[m], n * d);
            to_f64(f[m], via, n * d);
            CHECK(!memcmp(via, x[m], sizeof via)); /* widening is exact */
        }
        struct as_act_moments full, fref, head[heads], href[heads];
        int64_t got[51] = { 0 }, want[51] = { 0 };
        CHECK(!as_act_scores(f[0], f[1], AS_DTYPE_F32, n, d, heads, AS_ACT_GEMM_F32, 4, &pb, &full, head, got, &err));
        CHECK(!as_act_scores_ref(x[0], x[1], n, d, heads, pb.edges, pb.n, &fref, href, want, &err));
        CHECK_CLOSE(full.mean, fref.mean, 1e-12, MEAN_RTOL);
        CHECK_CLOSE(std_of(&full), std_of(&fref), 0, SGEMM_RTOL);
        for (int h = 0; h < heads; h++)
            CHECK_CLOSE(std_of(&head[h]), std_of(&href[h]), 0, SGEMM_RTOL);
        /* the same through the float64 path */
        memset(got, 0, sizeof got);
        CHECK(!as_act_scores(x[0], x[1], AS_DTYPE_F64, n, d, heads, AS_ACT_GEMM_F32, 4, &pb, &full, head, got,
                             &err));
        CHECK_CLOSE(std_of(&full), std_of(&fref), 0, DGEMM_RTOL);
    }
    as_act_logbins_release(&pb);
}

/* ---- the softmax row kernel: log-space bins with the exact search near an edge */

/* Rows of scores with every kind of spread, including ones whose exp underflows (z < -708:
 * the scalar lanes), one-hot rows (p = 1) and flat rows of 10, 100, 1000 (p = 0.1, 0.01, 0.001:
 * exactly on an edge of the decade bins); counts must equal the _ref's exactly. */
static void test_activations__softmax_hist_vs_ref(void)
{
    struct as_error err = { 0 };
    static const struct {
        double min;
        int64_t nlog;
    } bins[] = { { 1e-8, 50 }, { 1e-300, 100000 }, { 1e-3, 1 }, { 1e-30, 5000 }, { 1e-8, 8 } };
    static const double scales[] = { 1.0, 0.088, 30.0, 4000.0 };
    enum { C = 1037 };
    double *x = malloc(C * sizeof *x);
    for (size_t b = 0; b < sizeof bins / sizeof bins[0]; b++) {
        struct as_act_logbins pb;
        AS_ASSERT(!as_act_logbins_init(&pb, bins[b].min, bins[b].nlog, &err));
        int64_t *got = calloc((size_t)pb.n, sizeof *got), *want = calloc((size_t)pb.n, sizeof *want);
        int rows = pb.n > 10000 ? 12 : 60; /* the _ref scans the edges linearly */
        for (int row = 0; row < rows; row++) {
            int64_t c = row < 20 ? row + 1 : row % 2 ? C : 1 + (int64_t)(urand() * C);
            if (row % 10 == 3)
                c = row % 30 == 3 ? 10 : row % 30 == 13 ? 100 : 1000;
            for (int64_t j = 0; j < c; j++)
                x[j] = row % 10 == 3 ? 0.5 : row % 5 == 0 ? (double)(j % 7) : nrand() * (row % 3 ? 1.0 : 40.0);
            double scale = scales[row % 4];
            CHECK(!as_act_softmax_hist(x, c, scale, &pb, got, &err));
            as_act_softmax_hist_ref(x, c, scale, pb.edges, pb.n, want);
        }
        int64_t diff = 0, total = 0;
        for (int64_t k = 0; k < pb.n; k++)
            diff += llabs(got[k] - want[k]), total += want[k];
        CHECK_MSG(diff == 0, "min=%g bins=%lld: %lld of %lld probabilities binned unlike _ref", bins[b].min,
                  (long long)bins[b].nlog, (long long)diff, (long long)total);
        free(got), free(want);
        as_act_logbins_release(&pb);
    }
    free(x);
}

/* ---- every instruction set gives the same bits */

static void test_activations__simd_bitwise(void)
{
    static const char *const isa[] = { "scalar", "sse2", "avx2", "avx512" };
    enum { n = 97, d = 40, heads = 8, nx = 4099, nisa = 4 };
    struct as_error err = { 0 };
    struct as_act_logbins pb;
    struct as_act_linbins lb;
    AS_ASSERT(!as_act_logbins_init(&pb, 1e-8, 50, &err));
    AS_ASSERT(!as_act_linbins_init(&lb, -5, 5, 100, &err));
    double *q = malloc(n * d * sizeof *q), *k = malloc(n * d * sizeof *k), *x = malloc(nx * sizeof *x);
    float *qf = malloc(n * d * sizeof *qf), *kf = malloc(n * d * sizeof *kf), *xf = malloc(nx * sizeof *xf);
    random_acts(q, n, d, 1.0);
    random_acts(k, n, d, 0.0);
    to_f32(q, qf, n * d);
    to_f32(k, kf, n * d);
    for (int i = 0; i < nx; i++) /* values on, next to and outside the edges */
        x[i] = i % 11 == 0 ? lb.edges[i % 101] : i % 13 == 0 ? nextafter(lb.edges[i % 101], -10) : 3 * nrand();
    to_f32(x, xf, nx);
    struct {
        struct as_act_moments full[2], head[2][heads], m[2];
        int64_t prob[2][51], hist[2][100];
    } r[nisa];
    memset(r, 0, sizeof r);
    int ran = 0;
    for (int s = 0; s < nisa; s++) {
        if (as_simd_force(isa[s])) {
            fprintf(stderr, "  %s: not on this CPU\n", isa[s]);
            continue;
        }
        ran |= 1 << s;
        for (int g = 0; g < 2; g++)
            CHECK(!as_act_scores(qf, kf, AS_DTYPE_F32, n, d, heads, (enum as_act_gemm)g, 16, &pb, &r[s].full[g],
                                 r[s].head[g], r[s].prob[g], &err));
        as_act_moments_f32(xf, nx, &r[s].m[0]);
        as_act_moments_f64(x, nx, &r[s].m[1]);
        as_act_hist_f32(&lb, xf, nx, r[s].hist[0]);
        as_act_hist_f64(&lb, x, nx, r[s].hist[1]);
        if (s > 0)
            CHECK_MSG(!memcmp(&r[s], &r[0], sizeof r[0]), "%s and scalar differ", isa[s]);
    }
    as_simd_force("auto");
    CHECK(ran & 1 && (ran & 2 || strcmp(as_simd_name(as_simd_level()), "scalar") == 0));
    fprintf(stderr, "  auto picks %s\n", as_simd_name(as_simd_level()));
    int64_t want[100] = { 0 };
    as_act_hist_ref(lb.edges, lb.n, x, nx, want);
    CHECK(!memcmp(want, r[0].hist[1], sizeof want));
    CHECK(as_simd_force("avx1024") == -1);
    free(q), free(k), free(x), free(qf), free(kf), free(xf);
    as_act_logbins_release(&pb);
    as_act_linbins_release(&lb);
}

/* ---- determinism: OpenBLAS thread count and block size */

static void test_activations__threads_bitwise(void)
{
    enum { n = 300, d = 256, heads = 4 }; /* 300 x 300 x 256 gemms: OpenBLAS threads them */
    struct as_error err = { 0 };
    struct as_act_logbins pb;
    AS_ASSERT(!as_act_logbins_init(&pb, 1e-8, 50, &err));
    double *q = malloc(n * d * sizeof *q), *k = malloc(n * d * sizeof *k);
    float *qf = malloc(n * d * sizeof *qf), *kf = malloc(n * d * sizeof *kf);
    random_acts(q, n, d, 1.0);
    random_acts(k, n, d, 0.0);
    to_f32(q, qf, n * d);
    to_f32(k, kf, n * d);
    int saved = openblas_get_num_threads();

    /* The bare kernels: OpenBLAS's bits do depend on its thread count (the edge columns of a
     * thread's share go through other kernels), which is why as_act_scores pins one thread.
     * Reported, not checked: it is OpenBLAS's behaviour, not ours. */
    float *c1 = malloc(n * n * sizeof *c1), *c2 = malloc(n * n * sizeof *c2);
    double *d1 = malloc(n * n * sizeof *d1), *d2 = malloc(n * n * sizeof *d2);
    for (int t = 1; t <= 2; t++) {
        openblas_set_num_threads(t);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, d, 1.0f, qf, d, kf, d, 0.0f, t == 1 ? c1 : c2, n);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, d, 1.0, q, d, k, d, 0.0, t == 1 ? d1 : d2, n);
    }
    CHECK_MSG(openblas_get_num_threads() == 2, "openblas_set_num_threads(2) gave %d threads",
              openblas_get_num_threads());
    int sdiff = 0, ddiff = 0;
    for (int i = 0; i < n * n; i++) {
        sdiff += c1[i] != c2[i];
        ddiff += d1[i] != d2[i];
    }
    fprintf(stderr, "  bare OpenBLAS %dx%dx%d, 1 vs 2 threads: sgemm %d, dgemm %d elements differ\n", n, n, d,
            sdiff, ddiff);

    /* the score kernel: same bits for any OpenBLAS thread setting, and the setting survives */
    for (int g = 0; g < AS_ACT_GEMM_COUNT; g++) {
        struct as_act_moments f[3], h[3][heads];
        int64_t p[3][51];
        memset(p, 0, sizeof p);
        static const int threads[3] = { 1, 2, 1 };
        for (int t = 0; t < 3; t++) {
            openblas_set_num_threads(threads[t]);
            CHECK(!as_act_scores(qf, kf, AS_DTYPE_F32, n, d, heads, (enum as_act_gemm)g, 64, &pb, &f[t], h[t],
                                 p[t], &err));
            CHECK(openblas_get_num_threads() == threads[t]);
        }
        for (int t = 1; t < 3; t++)
            CHECK_MSG(!memcmp(&f[t], &f[0], sizeof f[0]) && !memcmp(h[t], h[0], sizeof h[0]) &&
                      !memcmp(p[t], p[0], sizeof p[0]),
                      "%s scores differ: %d threads vs 1 (std %.17g vs %.17g)", g ? "dgemm" : "sgemm", threads[t],
                      std_of(&f[t]), std_of(&f[0]));
    }
    openblas_set_num_threads(saved);
    free(q), free(k), free(qf), free(kf), free(c1), free(c2), free(d1), free(d2);
    as_act_logbins_release(&pb);
}

static void test_activations__stage_threads_bitwise(void)
{
    const char *spec = "synthetic:layers=2,heads=4,seq_len=300,batch=1,head_dim=64,seed=5,model=thr";
    struct stage_run r1, r2;
    struct as_error err = { 0 };
    int saved = openblas_get_num_threads();
    openblas_set_num_threads(1);
    CHECK_MSG(!stage_run_synth(&r1, "heads: 4\n", spec, &err), "%s", err.msg);
    openblas_set_num_threads(2);
    CHECK_MSG(!stage_run_synth(&r2, "heads: 4\n", spec, &err), "%s", err.msg);
    openblas_set_num_threads(saved);
    CHECK(r1.ex.schema.row_size == r2.ex.schema.row_size && r1.ex.rows && r2.ex.rows && !memcmp(r1.ex.rows, r2.ex.rows, 2 * r1.ex.schema.row_size));
    stage_run_release(&r1);
    stage_run_release(&r2);
}

/* ---- the stage */

/* Expected row values from plain loops over (L, B, T, D) double data. */
static void expect_layer(const double *q, const double *k, const double *v, int64_t B, int64_t T, int64_t D,
                         int64_t H, int skip, const struct stage_run *r, int64_t l, double rtol)
{
    int64_t s0 = skip, n = T - s0, hd = D / H, npb;
    const double *pe = field(r, "prob_hist_edges", 0, &npb);
    npb -= 1;
    struct as_act_linbins hb;
    struct as_error err = { 0 };
    AS_ASSERT(!as_act_linbins_init(&hb, -5, 5, 100, &err));
    const double *xs[3] = { q, k, v };
    static const char *const hn[3] = { "q_hist", "k_hist", "v_hist" }, *const vn[3] = { "q_var", "k_var", "v_var" };
    double *all = malloc((size_t)(B * n * D) * sizeof *all);
    for (int t = 0; t < 3; t++) {
        size_t m = 0;
        for (int64_t b = 0; b < B; b++)
            for (int64_t i = s0; i < T; i++)
                for (int64_t c = 0; c < D; c++)
                    all[m++] = xs[t][((l * B + b) * T + i) * D + c];
        int64_t cnt[100] = { 0 }, nn;
        double dens[100];
        as_act_hist_ref(hb.edges, 100, all, m, cnt);
        as_act_density(cnt, hb.edges, 100, dens);
        CHECK_ARRAY(field(r, hn[t], l, &nn), dens, 100, 0, 1e-15);
        struct as_act_moments mm;
        as_act_moments_ref(all, m, &mm);
        CHECK_CLOSE(*field(r, vn[t], l, &nn), as_act_moments_var(&mm), 0, VAR_RTOL);
    }
    /* pooled scores of every batch item */
    double *s = malloc((size_t)(B * n * n) * sizeof *s), *qb = malloc((size_t)(n * D) * sizeof *qb),
           *kb = malloc((size_t)(n * D) * sizeof *kb);
    int64_t *pc = calloc((size_t)npb, sizeof *pc), nn;
    struct as_act_moments fm, hm, *hdummy = calloc((size_t)H, sizeof *hdummy), fdummy;
    for (int64_t hh = -1; hh < H; hh++) {
        for (int64_t b = 0; b < B; b++)
            for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j < n; j++) {
                    double dot = 0;
                    for (int64_t c = hh < 0 ? 0 : hh * hd; c < (hh < 0 ? D : (hh + 1) * hd); c++)
                        dot += q[((l * B + b) * T + s0 + i) * D + c] * k[((l * B + b) * T + s0 + j) * D + c];
                    s[(b * n + i) * n + j] = dot / sqrt((double)hd);
                }
        as_act_moments_ref(s, (size_t)(B * n * n), hh < 0 ? &fm : &hm);
        if (hh >= 0) {
            CHECK_CLOSE(field(r, "qk_head_mean", l, &nn)[hh], hm.mean, 1e-12, 1e-9);
            CHECK_CLOSE(field(r, "qk_head_std", l, &nn)[hh], std_of(&hm), 0, rtol);
        }
    }
    CHECK_CLOSE(*field(r, "qk_mean", l, &nn), fm.mean, 1e-12, 1e-9);
    CHECK_CLOSE(*field(r, "qk_std", l, &nn), std_of(&fm), 0, rtol);
    for (int64_t b = 0; b < B; b++) {
        for (int64_t i = 0; i < n * D; i++) {
            qb[i] = q[((l * B + b) * T + s0) * D + i];
            kb[i] = k[((l * B + b) * T + s0) * D + i];
        }
        as_act_scores_ref(qb, kb, n, D, H, pe, npb, &fdummy, hdummy, pc, &err);
    }
    const double *ph = field(r, "prob_hist", l, &nn);
    double total = (double)(B * H * n * (n + 1) / 2), sum = 0, moved = 0;
    for (int64_t i = 0; i < npb; i++) {
        sum += ph[i];
        moved += fabs(ph[i] * total - (double)pc[i]);
    }
    CHECK_CLOSE(sum, 1.0, 1e-12, 0);
    CHECK_MSG(moved <= PROB_MOVED_DGEMM + PROB_MOVED_SGEMM_FRAC * total, "%g probabilities moved", moved);
    free(all), free(s), free(qb), free(kb), free(pc), free(hdummy);
    as_act_linbins_release(&hb);
}

static void test_activations__stage_batch_and_options(void)
{
    enum { L = 2, B = 2, T = 6, D = 12, H = 3 };
    size_t ne = L * B * T * D;
    double *x[3];
    float *xf[3];
    char paths3[3][64], paths4[3][64], pathsb[3][64];
    const char *p3[3], *p4[3], *pb[3];
    for (int t = 0; t < 3; t++) {
        x[t] = malloc(ne * sizeof(double));
        xf[t] = malloc(ne * sizeof(float));
        random_acts(x[t], L * B * T, D, t == 0 ? 1.5 : 0.0);
        x[t][7] = -5.0;      /* exactly on the edges */
        x[t][8] = 5.0;
        x[t][9] = 0.1;
        x[t][10] = 7.0;      /* outside */
        to_f32(x[t], xf[t], ne);
        to_f64(xf[t], x[t], ne);
        snprintf(paths4[t], sizeof paths4[t], "/tmp/test_act4_%d_%d.npy", (int)getpid(), t);
        snprintf(paths3[t], sizeof paths3[t], "/tmp/test_act3_%d_%d.npy", (int)getpid(), t);
        snprintf(pathsb[t], sizeof pathsb[t], "/tmp/test_actb_%d_%d.npy", (int)getpid(), t);
        as_test_write_npy(paths4[t], "<f4", 4, (int64_t[4]){ L, B, T, D }, xf[t]);
        p3[t] = paths3[t];
        p4[t] = paths4[t];
        pb[t] = pathsb[t];
    }
    struct stage_run r;
    struct as_error err = { 0 };
    for (int g = 0; g < 2; g++) {
        const char *yaml = g ? "heads: 3\ngemm: float64\n" : "heads: 3\n";
        CHECK_MSG(!stage_run_paths(&r, yaml, p4, &err), "%s", err.msg);
        CHECK(r.ex.shape.n_layers == L && r.ex.shape.n_heads == H && r.ex.shape.seq_len == T && r.ex.schema.n == 13);
        for (int64_t l = 0; l < L; l++)
            expect_layer(x[0], x[1], x[2], B, T, D, H, 1, &r, l, g ? DGEMM_RTOL : SGEMM_RTOL);
        CHECK(strstr(as_strbuf_str(&r.ex.log), "test activations qk_std | min="));
        stage_run_release(&r);
    }
    /* skip_first_token: false keeps token 0 */
    CHECK_MSG(!stage_run_paths(&r, "heads: 3\nskip_first_token: false\ngemm: float64\n", p4, &err), "%s", err.msg);
    for (int64_t l = 0; l < L; l++)
        expect_layer(x[0], x[1], x[2], B, T, D, H, 0, &r, l, DGEMM_RTOL);
    stage_run_release(&r);

    /* (L, T, D) = (L, 1, T, D), bitwise; float16 input = its float32 widening, bitwise */
    struct stage_run r4, r3;
    for (int t = 0; t < 3; t++) {
        float *one = malloc((size_t)(L * T * D) * sizeof *one);
        uint16_t *h = malloc((size_t)(L * T * D) * sizeof *h);
        for (int64_t l = 0; l < L; l++)
            memcpy(one + l * T * D, xf[t] + l * B * T * D, (size_t)(T * D) * sizeof *one);
        as_test_write_npy(paths3[t], "<f4", 3, (int64_t[3]){ L, T, D }, one);
        as_test_write_npy(paths4[t], "<f4", 4, (int64_t[4]){ L, 1, T, D }, one);
        for (int64_t i = 0; i < L * T * D; i++) { /* multiples of 1/16 below 60: exact in float16 */
            double v = round(one[i] * 16) / 16;
            v = fmax(-60, fmin(60, v));
            one[i] = (float)v;
            /* float16 bits of v */
            int e;
            double m = frexp(fabs(v), &e);
            h[i] = v == 0 ? 0 : (uint16_t)((v < 0) << 15 | (uint16_t)(e - 1 + 15) << 10 |
                                           (uint16_t)((m * 2 - 1) * 1024));
        }
        snprintf(pathsb[t], sizeof pathsb[t], "/tmp/test_actb_%d_%d.npy", (int)getpid(), t);
        as_test_write_npy(pathsb[t], "<f2", 3, (int64_t[3]){ L, T, D }, h);
        char tmp[64];
        snprintf(tmp, sizeof tmp, "/tmp/test_actc_%d_%d.npy", (int)getpid(), t);
        as_test_write_npy(tmp, "<f4", 3, (int64_t[3]){ L, T, D }, one);
        free(one);
        free(h);
    }
    CHECK_MSG(!stage_run_paths(&r3, "heads: 3\n", p3, &err), "%s", err.msg);
    CHECK_MSG(!stage_run_paths(&r4, "heads: 3\n", p4, &err), "%s", err.msg);
    CHECK(r3.ex.rows && r4.ex.rows && r3.ex.schema.row_size == r4.ex.schema.row_size && !memcmp(r3.ex.rows, r4.ex.rows, L * r3.ex.schema.row_size));
    stage_run_release(&r3);
    stage_run_release(&r4);
    char cpaths[3][64];
    const char *pc[3];
    for (int t = 0; t < 3; t++) {
        snprintf(cpaths[t], sizeof cpaths[t], "/tmp/test_actc_%d_%d.npy", (int)getpid(), t);
        pc[t] = cpaths[t];
    }
    CHECK_MSG(!stage_run_paths(&r3, "heads: 3\n", pb, &err), "%s", err.msg);
    CHECK_MSG(!stage_run_paths(&r4, "heads: 3\n", pc, &err), "%s", err.msg);
    CHECK_MSG(r3.ex.rows && r4.ex.rows && !memcmp(r3.ex.rows, r4.ex.rows, L * r3.ex.schema.row_size), "float16 input differs from float32");
    stage_run_release(&r3);
    stage_run_release(&r4);

    /* prob_hist: false drops the softmax and its two fields; everything else is bitwise the same */
    struct stage_run rp;
    CHECK_MSG(!stage_run_paths(&r, "heads: 3\n", p4, &err), "%s", err.msg);
    CHECK_MSG(!stage_run_paths(&rp, "heads: 3\nprob_hist: false\n", p4, &err), "%s", err.msg);
    CHECK(r.ex.schema.n == 13 && rp.ex.schema.n == 11);
    for (int k = 0; k < rp.ex.schema.n; k++) {
        CHECK(!strcmp(rp.ex.schema.fields[k].name, r.ex.schema.fields[k].name));
        for (int64_t l = 0; l < (rp.ex.schema.fields[k].per_layer ? L : 1); l++) {
            int64_t na, nb;
            const double *va = field(&r, rp.ex.schema.fields[k].name, l, &na), *vb = field(&rp, rp.ex.schema.fields[k].name, l, &nb);
            CHECK_MSG(na == nb && !memcmp(va, vb, (size_t)na * sizeof *va), "%s differs without prob_hist",
                      rp.ex.schema.fields[k].name);
        }
    }
    int64_t nn0;
    CHECK(!field(&rp, "prob_hist", 0, &nn0) && !field(&rp, "prob_hist_edges", 0, &nn0));
    stage_run_release(&r);
    stage_run_release(&rp);

    /* options: edges, prob_bins */
    CHECK_MSG(!stage_run_paths(&r, "heads: 1\nedges: {min: -2, max: 3, bins: 7}\nprob_bins: {min: 1e-4, bins: 4}\n",
                               p3, &err), "%s", err.msg);
    int64_t nn;
    const double *he = field(&r, "hist_edges", 0, &nn);
    CHECK(nn == 8 && he[0] == -2 && he[7] == 3);
    const double *pe = field(&r, "prob_hist_edges", 0, &nn);
    CHECK(nn == 6 && pe[0] == 0 && pe[1] == 1e-4 && pe[5] == 1 && fabs(pe[3] - 1e-2) < 1e-17);
    field(&r, "prob_hist", 0, &nn);
    CHECK(nn == 5);
    field(&r, "qk_head_std", 0, &nn);
    CHECK(nn == 1);
    stage_run_release(&r);

    /* T = 1 without skipping: one token; std of one score is NaN (torch) */
    for (int t = 0; t < 3; t++)
        as_test_write_npy(paths3[t], "<f4", 3, (int64_t[3]){ 1, 1, D }, xf[t]);
    CHECK_MSG(!stage_run_paths(&r, "heads: 3\nskip_first_token: false\n", p3, &err), "%s", err.msg);
    CHECK(isnan(*field(&r, "qk_std", 0, &nn)) && isfinite(*field(&r, "qk_mean", 0, &nn)) &&
          isfinite(*field(&r, "q_var", 0, &nn)));
    CHECK(*field(&r, "prob_hist", 0, &nn) == 0 && field(&r, "prob_hist", 0, &nn)[50] == 1.0); /* p = 1 */
    stage_run_release(&r);
    /* ... and with skipping nothing is left */
    CHECK(stage_run_paths(&r, "heads: 3\n", p3, &err) == -1 && err.status == AS_ERR_INPUT);
    stage_run_release(&r);

    for (int t = 0; t < 3; t++) {
        unlink(paths3[t]);
        unlink(paths4[t]);
        unlink(pathsb[t]);
        unlink(cpaths[t]);
        free(x[t]);
        free(xf[t]);
    }
}

static void test_activations__bad_config_and_inputs(void)
{
    static const char *const bad[] = { "heads: 0\n", "heads: 3\nbogus: 1\n",
                                       "heads: 3\nedges: {min: 1, max: 1}\n", "heads: 3\nedges: {bins: 0}\n",
                                       "heads: 3\nprob_bins: {min: 0}\n", "heads: 3\nprob_bins: {max: 1}\n",
                                       "heads: 3\ngemm: float16\n", "heads: x\n", "heads: 3\nq: ''\n" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct as_ydoc doc;
        struct as_error err = { 0 };
        void *cfg = NULL;
        AS_ASSERT(!as_ydoc_parse_string(&doc, "bad.yaml", bad[i], strlen(bad[i]), &err));
        int rc = as_stage_activations.configure(&cfg, doc.root, &err);
        CHECK_MSG(rc == -1 && err.status == AS_ERR_CONFIG && !cfg, "config '%s' accepted", bad[i]);
        as_ydoc_release(&doc);
    }
    struct as_error err = { 0 };
    void *cfg = NULL;
    /* no heads: the model's own count (the driver's hint in shape->n_heads) is used, and a
     * model whose count nobody knows is a config error */
    CHECK(as_stage_activations.configure(&cfg, NULL, &err) == 0);
    {
        struct as_tensor_info ti = { .dtype = AS_DTYPE_F32, .ndim = 3, .shape = { 2, 5, 12 }, .stride = { 60, 12, 1 } };
        const struct as_tensor_info *in3[3] = { &ti, &ti, &ti };
        struct as_exec ex;
        CHECK(as_exec_shape(&ex, &as_stage_activations, cfg, in3, 0, &err) == -1 && err.status == AS_ERR_CONFIG);
        CHECK_MSG(strstr(err.msg, "the head count is unknown") != NULL, "%s", err.msg);
        as_exec_release(&ex);
        CHECK(as_exec_shape(&ex, &as_stage_activations, cfg, in3, 3, &err) == 0 && ex.shape.n_heads == 3);
        as_exec_release(&ex);
        CHECK(as_exec_shape(&ex, &as_stage_activations, cfg, in3, 5, &err) == -1);
        as_exec_release(&ex);
        CHECK_MSG(strstr(err.msg, "5 heads do not divide the width 12") != NULL, "%s", err.msg);
        as_stage_activations.release(cfg);
        cfg = NULL;
    }

    /* heads must divide D; shapes must agree; non-finite values are input errors */
    enum { L = 1, T = 4, D = 12 };
    float v[L * T * D];
    for (int i = 0; i < L * T * D; i++)
        v[i] = (float)nrand();
    char paths[3][64];
    const char *p[3];
    for (int t = 0; t < 3; t++) {
        snprintf(paths[t], sizeof paths[t], "/tmp/test_actbad_%d_%d.npy", (int)getpid(), t);
        as_test_write_npy(paths[t], "<f4", 3, (int64_t[3]){ L, T, D }, v);
        p[t] = paths[t];
    }
    struct stage_run r;
    CHECK(stage_run_paths(&r, "heads: 5\n", p, &err) == -1 && err.status == AS_ERR_CONFIG &&
          strstr(err.msg, "do not divide"));
    stage_run_release(&r);
    as_test_write_npy(paths[2], "<f4", 3, (int64_t[3]){ L, T - 1, D }, v);
    CHECK(stage_run_paths(&r, "heads: 3\n", p, &err) == -1 && err.status == AS_ERR_INPUT &&
          strstr(err.msg, "shape"));
    stage_run_release(&r);
    as_test_write_npy(paths[2], "<f4", 2, (int64_t[2]){ T, D }, v);
    CHECK(stage_run_paths(&r, "heads: 3\n", p, &err) == -1 && err.status == AS_ERR_INPUT);
    stage_run_release(&r);
    v[2 * D + 5] = INFINITY;
    as_test_write_npy(paths[2], "<f4", 3, (int64_t[3]){ L, T, D }, v);
    CHECK(stage_run_paths(&r, "heads: 3\n", p, &err) == -1 && err.status == AS_ERR_INPUT &&
          strstr(err.msg, "non-finite") && strstr(err.msg, "token 2 dim 5"));
    stage_run_release(&r);
    v[2 * D + 5] = 3e30f; /* finite, but q.k overflows float32 products */
    for (int t = 0; t < 3; t++)
        as_test_write_npy(paths[t], "<f4", 3, (int64_t[3]){ L, T, D }, v);
    CHECK(stage_run_paths(&r, "heads: 3\n", p, &err) == -1 && err.status == AS_ERR_INPUT &&
          strstr(err.msg, "overflow"));
    stage_run_release(&r);
    for (int t = 0; t < 3; t++)
        unlink(paths[t]);
}

/* ---- synthetic generators */

static void test_activations__synthetic(void)
{
    const char *spec = "synthetic:layers=3,heads=4,seq_len=40,batch=1,head_dim=16,seed=9,model=acts";
    struct as_tensor_file tf;
    struct as_error err = { 0 };
    CHECK(as_synth_acts_gens[0] && as_synth_acts_gens[3] == NULL);
    CHECK_MSG(!as_tensor_file_open(&tf, &as_reader_synth, spec, "k_acts", &err), "%s", err.msg);
    const struct as_tensor_info *ti = as_tensor_file_info(&tf);
    CHECK(ti->ndim == 3 && ti->shape[0] == 3 && ti->shape[1] == 40 && ti->shape[2] == 64);
    enum { T = 40, D = 64 };
    float *a = malloc(T * D * sizeof *a), *b = malloc(T * D * sizeof *b);
    int64_t s2[3] = { 2, 0, 0 }, s0[3] = { 0, 0, 0 }, c[3] = { 1, T, D };
    CHECK(!as_tensor_file_read(&tf, s2, c, AS_DTYPE_F32, a, &err));
    CHECK(!as_tensor_file_read(&tf, s0, c, AS_DTYPE_F32, b, &err));
    CHECK(!as_tensor_file_read(&tf, s2, c, AS_DTYPE_F32, b, &err));
    CHECK(!memcmp(a, b, T * D * sizeof *a)); /* any order, same values */
    /* outlier dims: a few dims' mean |x| far above the median dim's */
    double colm[D], sorted[D];
    for (int d = 0; d < D; d++) {
        colm[d] = 0;
        for (int i = 1; i < T; i++)
            colm[d] += fabs(a[i * D + d]) / (T - 1);
        sorted[d] = colm[d];
    }
    for (int i = 0; i < D; i++)
        for (int j = i + 1; j < D; j++)
            if (sorted[j] < sorted[i]) {
                double t = sorted[i];
                sorted[i] = sorted[j];
                sorted[j] = t;
            }
    CHECK_MSG(sorted[D - 1] > 5 * sorted[D / 2] && sorted[D - 3] < 3 * sorted[D / 2],
              "outlier dims: max %g, 3rd largest %g, median %g", sorted[D - 1], sorted[D - 3], sorted[D / 2]);
    as_tensor_file_close(&tf);
    /* the sink: V's token 0 is small */
    CHECK(!as_tensor_file_open(&tf, &as_reader_synth, spec, "v_acts", &err));
    CHECK(!as_tensor_file_read(&tf, s0, c, AS_DTYPE_F32, a, &err));
    double n0 = 0, n1 = 0;
    for (int d = 0; d < D; d++) {
        n0 += (double)a[d] * a[d];
        n1 += (double)a[D + d] * a[D + d];
    }
    CHECK_MSG(n0 < 0.1 * n1, "token 0 of V is not small: %g vs %g", n0, n1);
    as_tensor_file_close(&tf);
    free(a);
    free(b);

    struct stage_run r;
    CHECK_MSG(!stage_run_synth(&r, "heads: 4\n", spec, &err), "%s", err.msg);
    for (int64_t l = 0; l < 3; l++) {
        int64_t nn;
        double sum = 0;
        const double *ph = field(&r, "prob_hist", l, &nn);
        for (int64_t i = 0; i < nn; i++)
            sum += ph[i];
        CHECK_CLOSE(sum, 1.0, 1e-12, 0);
        CHECK(isfinite(*field(&r, "qk_std", l, &nn)) && *field(&r, "qk_std", l, &nn) > 0);
        CHECK(*field(&r, "v_var", l, &nn) > 0);
    }
    int64_t nn;
    CHECK(*field(&r, "q_var", 2, &nn) > *field(&r, "q_var", 0, &nn)); /* grows with depth */
    stage_run_release(&r);
}

/* ---- parity with the fixture */

static int flatten(json_t *a, double *out, size_t cap, size_t *n)
{
    if (json_is_number(a)) {
        if (*n >= cap)
            return -1;
        out[(*n)++] = json_number_value(a);
        return 0;
    }
    if (!json_is_array(a))
        return -1;
    for (size_t i = 0; i < json_array_size(a); i++)
        if (flatten(json_array_get(a, i), out, cap, n))
            return -1;
    return 0;
}

static void parity(const char *yaml)
{
    const char *paths[3] = { FIXTURE_DIR "/q_acts.npy", FIXTURE_DIR "/k_acts.npy", FIXTURE_DIR "/v_acts.npy" };
    json_error_t jerr;
    json_t *root = json_load_file(FIXTURE_DIR "/reference.json", 0, &jerr);
    json_t *ref = root ? json_object_get(root, "activations") : NULL;
    CHECK_MSG(ref, "no 'activations' in %s/reference.json: %s", FIXTURE_DIR, root ? "" : jerr.text);
    struct stage_run r;
    struct as_error err = { 0 };
    int ok = !stage_run_paths(&r, yaml, paths, &err);
    CHECK_MSG(ok, "%s", err.msg);
    if (!ref || !ok) {
        json_decref(root);
        stage_run_release(&r);
        return;
    }
    int compared = 0;
    for (size_t k = 0; k < sizeof ref_tol / sizeof ref_tol[0]; k++) {
        json_t *a = json_object_get(ref, ref_tol[k].name);
        if (!a)
            continue;
        size_t cap = 100000, n = 0;
        double *want = malloc(cap * sizeof *want), *got = malloc(cap * sizeof *got);
        CHECK(!flatten(a, want, cap, &n));
        int64_t cnt, per = 0;
        int f;
        for (f = 0; f < r.ex.schema.n && strcmp(r.ex.schema.fields[f].name, ref_tol[k].name); f++)
            ;
        CHECK_MSG(f < r.ex.schema.n, "no field '%s'", ref_tol[k].name);
        if (f == r.ex.schema.n) {
            free(want), free(got);
            continue;
        }
        int64_t L = r.ex.schema.fields[f].per_layer ? r.ex.shape.n_layers : 1;
        for (int64_t l = 0; l < L; l++) {
            const double *v = field(&r, ref_tol[k].name, l, &cnt);
            for (int64_t i = 0; i < cnt && per < (int64_t)cap; i++)
                got[per++] = v[i];
        }
        CHECK_MSG(per == (int64_t)n, "%s: %lld values, reference has %zu", ref_tol[k].name, (long long)per, n);
        double maxd = 0;
        for (size_t i = 0; i < n && i < (size_t)per; i++)
            maxd = fmax(maxd, fabs(got[i] - want[i]));
        fprintf(stderr, "  parity (%s) %-10s max|d| = %.3g (atol %g rtol %g)\n", strchr(yaml, 'g') ? "dgemm" : "sgemm",
                ref_tol[k].name, maxd, ref_tol[k].atol, ref_tol[k].rtol);
        CHECK_ARRAY(got, want, n < (size_t)per ? n : (size_t)per, ref_tol[k].atol, ref_tol[k].rtol);
        compared++;
        free(want), free(got);
    }
    CHECK_MSG(compared == (int)(sizeof ref_tol / sizeof ref_tol[0]), "compared %d of the reference's fields",
              compared);
    json_decref(root);
    stage_run_release(&r);
}

static void test_activations__parity_tiny(void)
{
    if (access(FIXTURE_DIR "/reference.json", R_OK) || access(FIXTURE_DIR "/q_acts.npy", R_OK)) {
        fprintf(stderr, "  skipped: %s has no activations fixture\n", FIXTURE_DIR);
        return;
    }
    parity("heads: 4\n");
    parity("heads: 4\ngemm: float64\n");
}

int main(void)
{
    TEST_RUN(test_activations__linspace_numpy);
    TEST_RUN(test_activations__hist_edges);
    TEST_RUN(test_activations__logbins);
    TEST_RUN(test_activations__moments);
    TEST_RUN(test_activations__scores_vs_ref);
    TEST_RUN(test_activations__half_inputs);
    TEST_RUN(test_activations__softmax_hist_vs_ref);
    TEST_RUN(test_activations__simd_bitwise);
    TEST_RUN(test_activations__threads_bitwise);
    TEST_RUN(test_activations__stage_threads_bitwise);
    TEST_RUN(test_activations__stage_batch_and_options);
    TEST_RUN(test_activations__bad_config_and_inputs);
    TEST_RUN(test_activations__synthetic);
    TEST_RUN(test_activations__parity_tiny);
    return as_test_done();
}
